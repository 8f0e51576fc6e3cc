"""Several cross applications on one Corda-model host, each running the ops it declares.

Every application's part call starts the same way: ``abi.encode(uint8 op, bytes key, bytes
value)`` (:mod:`kakehashi.cross.kv`). :class:`CordaApps` reads the op and hands the part to the
application that declares it in its ``ops``; a commit or an abort goes to every application,
and each acts only on the parts it prepared (a part it never held is a no-op — the
:class:`~kakehashi.cross.participant.CrossApp` contract). The key-value application is always
there (``value``, ``locked_by`` and ``readers`` are its), so what works on one application works
on the set.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError

from kakehashi.cross.corda_kv import StateKeyValueApp
from kakehashi.cross.kv import KV_OPS
from kakehashi.cross.participant import PartCall
from kakehashi.cross.tx import CrossTxError
from kakehashi.ibc.corda_host.host import CordaIbcHost

__all__ = ["CordaApps", "OpApp", "apps_factory"]


class OpApp(Protocol):
    """A cross application that runs the ops in ``ops``."""

    ops: frozenset[int]

    def prepare(self, call: PartCall) -> bytes: ...

    def commit(self, tx_id: bytes, index: int) -> None: ...

    def abort(self, tx_id: bytes, index: int) -> None: ...

    def locks(self) -> bool: ...


def call_op(call_info: bytes) -> int:
    """The op of a part call (its first ABI word)."""
    try:
        (op,) = abi_decode(["uint8"], call_info[:32], strict=True)
    except (DecodingError, ValueError, TypeError, OverflowError):
        raise CrossTxError("a part call starts with abi.encode(uint8 op, ...)") from None
    return int(op)


class CordaApps:
    """The applications of one host, dispatched by op (module docstring)."""

    def __init__(self, host: CordaIbcHost, extra: Sequence[OpApp] = ()) -> None:
        self.kv = StateKeyValueApp(host)
        self.apps: list[Any] = [self.kv, *extra]
        self._by_op: dict[int, Any] = {op: self.kv for op in KV_OPS}
        for app in extra:
            for op in app.ops:
                if op in self._by_op:
                    raise CrossTxError(f"two cross applications claim op {op}")
                self._by_op[op] = app

    def prepare(self, call: PartCall) -> bytes:
        op = call_op(call.call_info)
        app = self._by_op.get(op)
        if app is None:
            raise CrossTxError(f"no cross application on this ledger runs op {op}")
        value: bytes = app.prepare(call)
        return value

    def commit(self, tx_id: bytes, index: int) -> None:
        for app in self.apps:
            app.commit(tx_id, index)

    def abort(self, tx_id: bytes, index: int) -> None:
        for app in self.apps:
            app.abort(tx_id, index)

    def locks(self) -> bool:
        """Whether any application holds anything for an undecided part."""
        return any(app.locks() for app in self.apps)

    # the key-value application's reads
    def value(self, key: bytes) -> bytes | None:
        return self.kv.value(key)

    def locked_by(self, key: bytes) -> bytes | None:
        return self.kv.locked_by(key)

    def readers(self, key: bytes) -> list[bytes]:
        return self.kv.readers(key)


def apps_factory(*makers: Callable[[CordaIbcHost], OpApp]) -> Callable[[CordaIbcHost], CordaApps]:
    """A ``CrossModule(app_factory=...)`` running the key-value application and ``makers``'
    applications: ``CrossModule(app_factory=apps_factory(TokenEscrowApp))``."""

    def make(host: CordaIbcHost) -> CordaApps:
        return CordaApps(host, [maker(host) for maker in makers])

    return make
