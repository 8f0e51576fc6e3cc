"""The daily contract-status update (issue 7, use case 2), initiated on the EVM chain.

For each contract registered in ``contracts/apps/logistics.vy`` whose status (the cross
application's key ``status/<id>``) is not yet ``delivered``, :meth:`LogisticsDesk.run_once`
initiates one Two-Phase Commit cross transaction coordinated by the EVM chain, signed by the
desk's account as it initiates. Part 0 runs on the EVM chain and holds a write lock on the
contract record (its status key) while the transaction runs; part 1 runs on the Corda-model
ledger across ``channel``. By the contract's privacy pattern:

* minimal disclosure: part 0 sets the status to ``delivered``, linked to part 1, the
  yes / no deliveries call (:func:`~kakehashi.apps.logistics.deliveries.deliveries_call`)
  declaring ``b"yes"``: on commit the status is ``delivered``; when the Corda ledger does not
  hold the expected deliveries part 1 fails and the status stays as it was;
* full disclosure: part 1 is the full deliveries call
  (:func:`~kakehashi.apps.logistics.deliveries.full_deliveries_call`, no declared answer) and
  part 0 sets the status to what the registry's ``evaluate`` makes of the records part 1
  answers (:func:`~kakehashi.cross.kv.kv_set_evaluated`: the EVM chain takes the answer from
  part 1's acknowledgement before it decides): ``delivered``, or ``partial: n of m``.

A relayer carries the rest.
:meth:`LogisticsDesk.outcome` reads a transaction's decision; :func:`next_run` is when a daily
schedule runs next.
"""

from __future__ import annotations

import datetime as dt
import itertools
import secrets
import time
from dataclasses import dataclass, field, replace
from typing import Any

from kakehashi.apps.logistics.deliveries import deliveries_call, full_deliveries_call
from kakehashi.cross.kv import kv_call, kv_set_evaluated
from kakehashi.cross.status import Decision
from kakehashi.cross.tx import (
    Account,
    ChannelInfo,
    CommitProtocol,
    ContractTransaction,
    InitiateTx,
    Link,
    SignerKind,
)
from kakehashi.errors import ConfigurationError
from kakehashi.ibc.types import Height
from kakehashi.ledgers.evm.client import transact

__all__ = ["DELIVERED", "Check", "LogisticsDesk", "next_run", "status_key"]

DELIVERED = b"delivered"
YES = b"yes"


def status_key(contract_id: str) -> bytes:
    """The cross application's key holding a contract's status."""
    return b"status/" + contract_id.encode()


@dataclass(frozen=True)
class Check:
    """One contract's check, initiated: its cross transaction."""

    contract_id: str
    expected: int
    tx: InitiateTx
    full: bool = False  # full disclosure


@dataclass
class LogisticsDesk:
    """The desk's view of the EVM chain (module docstring): ``cross`` the cross module,
    ``app`` its application, ``registry`` the contract records, ``initiator`` the account that
    initiates and signs, ``channel`` the EVM chain's cross channel to the Corda ledger."""

    w3: Any
    cross: Any
    app: Any
    registry: Any
    initiator: Any
    channel: ChannelInfo
    chain_id: str = "kakehashi-evm"
    timeout_s: int = 3600
    _nonces: Any = field(default_factory=lambda: itertools.count(time.time_ns()))

    def contracts(self) -> list[tuple[str, int, bytes]]:
        """Every registered contract: (id, deliveries expected, status)."""
        return [(cid, expected, status) for cid, expected, _, status in self.registered()]

    def registered(self) -> list[tuple[str, int, bool, bytes]]:
        """Every registered contract: (id, deliveries expected, full disclosure, status)."""
        found = []
        for index in range(int(self.registry.functions.count().call())):
            contract_id, expected, full = self.registry.functions.record(index).call()
            status = bytes(self.app.functions.value(status_key(contract_id)).call())
            found.append((str(contract_id), int(expected), bool(full), status))
        return found

    def transaction(self, contract_id: str, expected: int, *, full: bool = False) -> InitiateTx:
        """The check of one contract (module docstring)."""
        me = (Account(SignerKind.LOCAL, bytes.fromhex(self.initiator.address[2:])),)
        key = status_key(contract_id)
        if full:
            evaluator = bytes.fromhex(self.registry.address[2:])
            parts = (
                ContractTransaction(self.channel, me, kv_set_evaluated(key, evaluator, 1), b"ok"),
                ContractTransaction(self.channel, me, full_deliveries_call(contract_id)),
            )
        else:
            parts = (
                ContractTransaction(self.channel, me, kv_call(key, DELIVERED), b"ok", (Link(1),)),
                ContractTransaction(self.channel, me, deliveries_call(contract_id, expected), YES),
            )
        # salted at random: the Corda ledger is sent part 1 and only part 0's digest
        salted = tuple(replace(part, salt=secrets.token_bytes(32)) for part in parts)
        return InitiateTx(
            self.chain_id,
            next(self._nonces),
            CommitProtocol.TPC,
            salted,
            Height(0, 0),
            (time.time_ns() // 10**9 + self.timeout_s) * 10**9,
        )

    def run_once(self) -> list[Check]:
        """Initiate the check of every contract not yet delivered."""
        checks = []
        for contract_id, expected, full, status in self.registered():
            if status == DELIVERED:
                continue
            tx = self.transaction(contract_id, expected, full=full)
            transact(
                self.w3,
                self.cross.functions.initiate(tx.encode(), 0),
                sender=self.initiator,
                description=f"the delivery check of contract {contract_id}",
            )
            checks.append(Check(contract_id, expected, tx, full))
        return checks

    def outcome(self, check: Check) -> Decision:
        """The coordinator's decision on ``check`` (UNKNOWN while it runs)."""
        return Decision(self.cross.functions.coordination(check.tx.tx_id).call()[3])


def next_run(at: str, now: dt.datetime | None = None) -> dt.datetime:
    """The next time of day ``at`` (``HH:MM``, local time) after ``now``."""
    try:
        hour, minute = (int(part) for part in at.split(":"))
        when = dt.time(hour, minute)
    except ValueError:
        raise ConfigurationError(f"a time of day is HH:MM (24-hour), not {at!r}") from None
    now = now or dt.datetime.now()
    candidate = dt.datetime.combine(now.date(), when)
    return candidate if candidate > now else candidate + dt.timedelta(days=1)
