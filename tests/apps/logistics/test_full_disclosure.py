"""Full disclosure over the real LCP path: the EVM chain sends only the contract id, the Corda
host answers with every delivery record in the acknowledgement, and the EVM chain's own part
writes the status the registry's ``evaluate`` makes of them before it decides — or aborts when
the evaluator refuses the answer. Where an evaluated write cannot run, it fails its prepare
with a reason."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from kakehashi.apps.logistics.deliveries import decode_records, full_deliveries_call
from kakehashi.apps.logistics.desk import LogisticsDesk, status_key
from kakehashi.cross.corda_module import CROSS_PORT
from kakehashi.cross.kv import kv_set_evaluated
from kakehashi.cross.packets import CrossAck, CrossPacket, PacketKind
from kakehashi.cross.status import Decision
from kakehashi.cross.tx import (
    Account,
    ChannelInfo,
    CommitProtocol,
    ContractTransaction,
    InitiateTx,
    SignerKind,
)
from kakehashi.ibc.types import Height
from kakehashi.ledgers.evm import toolchain
from kakehashi.ledgers.evm.chain import dev_accounts
from kakehashi.ledgers.evm.client import transact
from kakehashi.relayer.path import PathRelayer
from tests.apps.logistics.support import deliver, logistics_world
from tests.relayer.support import World

OWNER = dev_accounts()[0]


@pytest.fixture(scope="module")
def linked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, PathRelayer, Any]]:
    with logistics_world(tmp_path_factory.mktemp("full")) as w:
        relayer = w.link()
        registry = toolchain.deploy(w.w3, "apps/logistics", sender=OWNER)
        yield w, relayer, registry


def _desk(w: World, registry: Any) -> LogisticsDesk:
    assert w.record is not None
    channel = ChannelInfo(CROSS_PORT, w.record.a_channel_id)
    return LogisticsDesk(w.w3, w.kv, w.app, registry, OWNER, channel)


def _relay(relayer: PathRelayer) -> None:
    for _ in range(4):
        assert not relayer.relay_once().failed


def _exchange(w: World, tx_id: bytes) -> tuple[CrossPacket, CrossAck]:
    assert w.record is not None
    (found,) = [
        (CrossPacket.decode(packet.data), CrossAck.decode(ack))
        for packet, ack in w.host.written_acks(CROSS_PORT, w.record.b_channel_id)
        if CrossPacket.decode(packet.data).tx_id == tx_id
        and CrossPacket.decode(packet.data).kind is PacketKind.PREPARE
    ]
    return found


def test_the_records_cross_and_the_status_is_what_they_support(
    linked: tuple[World, PathRelayer, Any],
) -> None:
    w, relayer, registry = linked
    for contract_id, expected, delivered in (("F-1", 2, 2), ("F-2", 3, 1)):
        transact(w.w3, registry.functions.register_full(contract_id, expected), sender=OWNER)
        for i in range(delivered):
            deliver(w, contract_id, f"{contract_id}/S-{i}")
    desk = _desk(w, registry)
    checks = desk.run_once()
    assert [(c.contract_id, c.full) for c in checks] == [("F-1", True), ("F-2", True)]
    _relay(relayer)
    assert [desk.outcome(c) for c in checks] == [Decision.COMMIT, Decision.COMMIT]
    statuses = {cid: status for cid, _, status in desk.contracts()}
    assert statuses == {"F-1": b"delivered", "F-2": b"partial: 1 of 3"}
    assert int(w.app.functions.locks_held().call()) == 0

    # what crossed: the contract id out (no count, no other part), every record back
    question, answer = _exchange(w, checks[0].tx.tx_id)
    view = question.view()
    assert view.part(1).call_info == full_deliveries_call("F-1")
    assert not view.revealed(0)  # the EVM part's call (its evaluator, the status key): hidden
    contract_id, rows = decode_records(answer.return_value)
    assert contract_id == "F-1" and [r[0] for r in rows] == ["F-1/S-0", "F-1/S-1"]
    assert all(r[3] == "O=Swift Carriers, L=Osaka, C=JP" and r[1] == 10 for r in rows)
    # a day later F-2 is still open and checked again; F-1 is not
    assert [c.contract_id for c in desk.run_once()] == ["F-2"]
    _relay(relayer)


def _transaction(w: World, call: bytes, answering: bytes, protocol: CommitProtocol) -> InitiateTx:
    assert w.record is not None
    channel = ChannelInfo(CROSS_PORT, w.record.a_channel_id)
    me = (Account(SignerKind.LOCAL, bytes.fromhex(OWNER.address[2:])),)
    return InitiateTx(
        "kakehashi-evm",
        time.time_ns(),
        protocol,
        (
            ContractTransaction(channel, me, call, b"ok"),
            ContractTransaction(channel, me, answering),
        ),
        Height(0, 10**6),
    )


def test_an_answer_the_evaluator_refuses_aborts_and_changes_nothing(
    linked: tuple[World, PathRelayer, Any],
) -> None:
    w, relayer, registry = linked
    transact(w.w3, registry.functions.register("M-1", 1), sender=OWNER)  # minimal disclosure
    deliver(w, "M-1", "M-1/S-0")
    evaluator = bytes.fromhex(registry.address[2:])
    call = kv_set_evaluated(status_key("M-1"), evaluator, 1)
    tx = _transaction(w, call, full_deliveries_call("M-1"), CommitProtocol.TPC)
    transact(w.w3, w.kv.functions.initiate(tx.encode(), 0), sender=OWNER)
    assert int(w.app.functions.locks_held().call()) == 1  # the status is locked while it runs
    _relay(relayer)
    assert Decision(w.kv.functions.coordination(tx.tx_id).call()[3]) is Decision.ABORT
    assert bytes(w.app.functions.value(status_key("M-1")).call()) == b""
    assert int(w.app.functions.locks_held().call()) == 0
    (refused,) = w.app.events.AnswerRefused().get_logs(from_block=0)
    assert refused.args.source == 1 and "refused part 1's answer" in refused.args.reason


@pytest.mark.parametrize(
    ("source", "protocol", "reason"),
    [
        (0, CommitProtocol.TPC, "names part 0, not another part"),
        (3, CommitProtocol.TPC, "names part 3, not another part"),
        (1, CommitProtocol.SIMPLE, "needs Two-Phase Commit"),
    ],
)
def test_an_evaluated_write_that_cannot_take_its_answer_fails_its_prepare(
    linked: tuple[World, PathRelayer, Any], source: int, protocol: CommitProtocol, reason: str
) -> None:
    w, _, registry = linked
    call = kv_set_evaluated(b"status/X", bytes.fromhex(registry.address[2:]), source)
    tx = _transaction(w, call, full_deliveries_call("X"), protocol)
    transact(w.w3, w.kv.functions.initiate(tx.encode(), 0), sender=OWNER)
    assert Decision(w.kv.functions.coordination(tx.tx_id).call()[3]) is Decision.ABORT
    assert int(w.app.functions.locks_held().call()) == 0
    assert reason in _refused(w, tx.tx_id)


def test_no_evaluator_contract_fails_the_prepare(linked: tuple[World, PathRelayer, Any]) -> None:
    w, _, _ = linked
    call = kv_set_evaluated(b"status/Y", bytes(19) + b"\x01", 1)  # no contract there
    tx = _transaction(w, call, full_deliveries_call("Y"), CommitProtocol.TPC)
    transact(w.w3, w.kv.functions.initiate(tx.encode(), 0), sender=OWNER)
    assert Decision(w.kv.functions.coordination(tx.tx_id).call()[3]) is Decision.ABORT
    assert "no evaluator contract at 0x00" in _refused(w, tx.tx_id)


def _refused(w: World, tx_id: bytes) -> str:
    (event,) = [e for e in w.app.events.Refused().get_logs(from_block=0) if e.args.tx_id == tx_id]
    assert event.args.index == 0
    return str(event.args.reason)


def test_more_records_than_one_answer_carries_fail_with_a_reason(
    linked: tuple[World, PathRelayer, Any],
) -> None:
    w, relayer, registry = linked
    transact(w.w3, registry.functions.register_full("MANY", 8), sender=OWNER)
    for i in range(8):
        deliver(w, "MANY", f"MANY/S-{i:02}")
    desk = _desk(w, registry)
    (check,) = [c for c in desk.run_once() if c.contract_id == "MANY"]
    _relay(relayer)
    assert desk.outcome(check) is Decision.ABORT
    _, answer = _exchange(w, check.tx.tx_id)
    assert "more than one answer carries" in answer.reason
    assert "minimal disclosure" in answer.reason
