"""Several cross applications on one Corda host, dispatched by op (corda_apps.CordaApps)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from eth_abi import encode as abi_encode

from kakehashi.cross.corda_apps import CordaApps, apps_factory, call_op
from kakehashi.cross.corda_module import CrossModule
from kakehashi.cross.kv import kv_call
from kakehashi.cross.participant import PartCall
from kakehashi.cross.tx import CrossTxError
from kakehashi.ibc.corda_host import CordaIbcHost
from tests.cross.test_corda_module import linked
from tests.ibc.test_corda_host import TwoHosts

__all__ = ["linked"]  # the fixture
TX = b"\x07" * 32


@dataclass
class Recorder:
    """An application of op 99 that records what it is asked."""

    host: CordaIbcHost
    ops: frozenset[int] = frozenset({99})
    calls: list[tuple[str, bytes, int]] = field(default_factory=list)

    def prepare(self, call: PartCall) -> bytes:
        self.calls.append(("prepare", call.tx_id, call.index))
        return b"recorded"

    def commit(self, tx_id: bytes, index: int) -> None:
        self.calls.append(("commit", tx_id, index))

    def abort(self, tx_id: bytes, index: int) -> None:
        self.calls.append(("abort", tx_id, index))

    def locks(self) -> bool:
        return False


def test_parts_go_to_the_application_of_their_op(
    linked: tuple[TwoHosts, CrossModule, CrossModule],
) -> None:
    hosts, _, _ = linked
    apps = apps_factory(Recorder)(hosts.a)
    recorder = apps.apps[1]
    own = abi_encode(["uint8", "bytes", "bytes"], [99, b"x", b""])
    assert call_op(own) == 99
    assert hosts.a.execute(lambda _s: apps.prepare(PartCall(TX, 0, own))) == b"recorded"
    assert hosts.a.execute(lambda _s: apps.prepare(PartCall(TX, 1, kv_call(b"k", b"v")))) == b"ok"
    assert apps.locked_by(b"k") == TX and apps.locks()
    hosts.a.execute(lambda _s: apps.commit(TX, 1))  # every application hears it
    assert apps.value(b"k") == b"v" and not apps.locks()
    assert recorder.calls == [("prepare", TX, 0), ("commit", TX, 1)]
    unknown = abi_encode(["uint8", "bytes", "bytes"], [98, b"x", b""])
    with pytest.raises(CrossTxError, match="no cross application on this ledger runs op 98"):
        apps.prepare(PartCall(TX, 2, unknown))
    with pytest.raises(CrossTxError, match="starts with abi"):
        apps.prepare(PartCall(TX, 2, b"\x01"))


def test_two_applications_cannot_claim_one_op(
    linked: tuple[TwoHosts, CrossModule, CrossModule],
) -> None:
    hosts, _, _ = linked
    with pytest.raises(CrossTxError, match="two cross applications claim op 99"):
        CordaApps(hosts.a, [Recorder(hosts.a), Recorder(hosts.a)])
