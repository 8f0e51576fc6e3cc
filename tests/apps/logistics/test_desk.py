"""The daily contract-status update (``kakehashi.apps.logistics.desk``): registered contracts
checked against the Corda ledger's deliveries in cross transactions the EVM chain initiates."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from kakehashi.apps.logistics.desk import DELIVERED, LogisticsDesk, next_run, status_key
from kakehashi.cross.corda_module import CROSS_PORT
from kakehashi.cross.status import Decision
from kakehashi.cross.tx import ChannelInfo
from kakehashi.errors import ConfigurationError
from kakehashi.ledgers.evm import toolchain
from kakehashi.ledgers.evm.chain import dev_accounts
from kakehashi.ledgers.evm.client import transact
from kakehashi.relayer.path import PathRelayer
from tests.apps.logistics.support import deliver, logistics_world
from tests.relayer.support import World

OWNER = dev_accounts()[0]


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with logistics_world(tmp_path) as built:
        yield built


def relay(relayer: PathRelayer) -> None:
    for _ in range(4):
        assert not relayer.relay_once().failed


def test_each_contract_becomes_delivered_when_its_deliveries_are_recorded(w: World) -> None:
    relayer = w.link()
    assert w.record is not None
    registry = toolchain.deploy(w.w3, "apps/logistics", sender=OWNER)
    for contract_id, expected in (("C-1", 2), ("C-2", 1), ("C-3", 3)):
        transact(w.w3, registry.functions.register(contract_id, expected), sender=OWNER)
    for contract_id, count in (("C-1", 2), ("C-3", 3)):
        for i in range(count):
            deliver(w, contract_id, f"{contract_id}/S-{i}")
    desk = LogisticsDesk(
        w.w3, w.kv, w.app, registry, OWNER, ChannelInfo(CROSS_PORT, w.record.a_channel_id)
    )
    checks = desk.run_once()
    assert [c.contract_id for c in checks] == ["C-1", "C-2", "C-3"]
    relay(relayer)
    assert [desk.outcome(c) for c in checks] == [Decision.COMMIT, Decision.ABORT, Decision.COMMIT]
    assert [status for _, _, status in desk.contracts()] == [DELIVERED, b"", DELIVERED]

    deliver(w, "C-2", "C-2/S-0")  # the next day: C-2 delivered too; the others are not re-run
    (again,) = desk.run_once()
    assert again.contract_id == "C-2"
    relay(relayer)
    assert desk.outcome(again) is Decision.COMMIT
    assert bytes(w.app.functions.value(status_key("C-2")).call()) == DELIVERED
    assert desk.run_once() == [] and int(w.app.functions.locks_held().call()) == 0


def test_the_registry_belongs_to_its_owner(w: World) -> None:
    from kakehashi.errors import TransactionRevertedError

    registry = toolchain.deploy(w.w3, "apps/logistics", sender=OWNER)
    with pytest.raises(TransactionRevertedError, match="only the owner"):
        transact(w.w3, registry.functions.register("C-9", 1), sender=dev_accounts()[5])
    transact(w.w3, registry.functions.register("C-9", 1), sender=OWNER)
    with pytest.raises(TransactionRevertedError, match="registered already"):
        transact(w.w3, registry.functions.register("C-9", 2), sender=OWNER)


def test_next_run_is_the_next_time_of_day() -> None:
    morning = dt.datetime(2026, 11, 30, 6, 0)
    assert next_run("07:30", morning) == dt.datetime(2026, 11, 30, 7, 30)
    assert next_run("05:00", morning) == dt.datetime(2026, 12, 1, 5, 0)
    assert next_run("06:00", morning) == dt.datetime(2026, 12, 1, 6, 0)
    with pytest.raises(ConfigurationError, match="HH:MM"):
        next_run("7h30", morning)
