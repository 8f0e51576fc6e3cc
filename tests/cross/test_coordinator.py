"""The coordinator's state machine (pure): Simple Commit and Two-Phase Commit, step by step and
under random orders, duplicates, failures and timeouts (hypothesis)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kakehashi.cross.coordinator import Coordinator, Finish, PrepareLocal, Send
from kakehashi.cross.packets import CrossAck, CrossPacket, PacketKind
from kakehashi.cross.status import Decision, PartStatus
from kakehashi.cross.tx import (
    ChannelInfo,
    CommitProtocol,
    ContractTransaction,
    CrossTxError,
    InitiateTx,
)
from kakehashi.errors import SerializationError
from kakehashi.ibc.types import Height
from tests.cross.test_tx import CORDA_SELLER, dvp


def tpc(parts: int, declared: bytes | None = None) -> InitiateTx:
    part = ContractTransaction(ChannelInfo("cross", "channel-0"), (CORDA_SELLER,), b"call")
    return InitiateTx(
        "kakehashi-corda",
        1,
        CommitProtocol.TPC,
        tuple(
            replace(
                part,
                cross_chain_channel=ChannelInfo("cross", f"channel-{i}"),
                return_value=declared,
            )
            for i in range(parts)
        ),
        Height(0, 100),
    )


def sends(actions: list[object], kind: PacketKind) -> dict[int, CrossPacket]:
    return {a.index: a.packet for a in actions if isinstance(a, Send) and a.packet.kind is kind}


# ----------------------------------------------------------------------------- packets


def test_packets_and_acks_round_trip_and_check_their_transaction() -> None:
    tx = dvp()
    for packet in (
        CrossPacket.prepare(tx, 1),
        CrossPacket.call(tx, 1),
        CrossPacket.decide(tx.tx_id, 1, Decision.ABORT),
    ):
        assert CrossPacket.decode(packet.encode()) == packet
    assert CrossPacket.call(tx, 1).view() == tx.view(1)  # part 1 links to part 0: both shown
    assert CrossPacket.prepare(tx, 0).view().parts[1] == tx.contract_transactions[1].digest
    assert CrossPacket.decide(tx.tx_id, 0, Decision.COMMIT).decision is Decision.COMMIT
    with pytest.raises(SerializationError, match="not of the transaction"):
        CrossPacket(PacketKind.CALL, dvp(nonce=1).tx_id, 1, tx.view(1).encode())
    with pytest.raises(SerializationError):  # the whole transaction is not a view
        CrossPacket(PacketKind.CALL, tx.tx_id, 1, tx.encode())
    with pytest.raises(SerializationError, match="one byte"):
        CrossPacket(PacketKind.DECIDE, tx.tx_id, 1, b"\x07")
    with pytest.raises(CrossTxError, match="no part 5"):
        CrossPacket.call(tx, 5)
    for ack in (CrossAck.ok(b"ok"), CrossAck.failed("no balance")):
        assert CrossAck.decode(ack.encode()) == ack
    with pytest.raises(SerializationError):
        CrossAck.decode(CrossAck.ok().encode() + b"\0")


# ----------------------------------------------------------------------------- Simple Commit


def test_simple_commit_happy_path() -> None:
    tx = dvp()
    c = Coordinator(tx, local=0)
    assert c.start() == [PrepareLocal(0)]
    assert c.start() == []  # once
    actions = c.on_local_prepared(True, b"ok")
    assert actions == [Send(1, CrossPacket.call(tx, 1))]
    assert c.on_ack(1, CrossAck.ok(b"delivered")) == [Finish(0, Decision.COMMIT)]
    assert c.decision is Decision.COMMIT and c.done
    assert c.on_ack(1, CrossAck.ok(b"delivered")) == []  # a duplicate
    assert c.parts == {0: PartStatus.COMMIT, 1: PartStatus.COMMIT}


@pytest.mark.parametrize("failure", ["local", "remote", "timeout", "declared"])
def test_simple_commit_aborts_on_any_failure(failure: str) -> None:
    c = Coordinator(dvp(), local=0)
    c.start()
    if failure == "local":
        assert c.on_local_prepared(False, reason="balance too low") == []
    elif failure == "declared":  # the local part ran (locked) but returned something else
        assert c.on_local_prepared(True, b"other") == [Finish(0, Decision.ABORT)]
    else:
        c.on_local_prepared(True, b"ok")
        actions = (
            c.on_ack(1, CrossAck.failed("the seller no longer owns the NFT"))
            if failure == "remote"
            else c.on_timeout(1, PacketKind.CALL)
        )
        assert actions == [Finish(0, Decision.ABORT)]
    assert c.decision is Decision.ABORT and c.done


# ----------------------------------------------------------------------------- Two-Phase Commit


@pytest.mark.parametrize("local", [None, 0])
def test_two_phase_commit_commits_when_everyone_prepared(local: int | None) -> None:
    tx = tpc(3, b"ok")
    c = Coordinator(tx, local=local)
    actions = c.start()
    assert set(sends(actions, PacketKind.PREPARE)) == set(c.remotes)
    if local is not None:
        assert PrepareLocal(0) in actions and c.on_local_prepared(True, b"ok") == []
    decision: list[object] = []
    for index in c.remotes:
        decision = c.on_ack(index, CrossAck.ok(b"ok"))
    assert c.decision is Decision.COMMIT and not c.done
    assert set(sends(decision, PacketKind.DECIDE)) == set(c.remotes)
    assert (Finish(0, Decision.COMMIT) in decision) == (local is not None)
    for index in c.remotes:
        c.on_decision_ack(index)
    assert c.done and all(s is PartStatus.COMMIT for s in c.parts.values())


def test_two_phase_commit_aborts_everywhere_and_redelivers_decisions() -> None:
    tx = tpc(3, b"ok")
    c = Coordinator(tx, local=0)
    c.start()
    c.on_local_prepared(True, b"ok")
    c.on_ack(1, CrossAck.ok(b"ok"))
    actions = c.on_ack(2, CrossAck.ok(b"not what was declared"))
    assert c.decision is Decision.ABORT
    assert Finish(0, Decision.ABORT) in actions
    # part 2 prepared (with the wrong value): it holds locks, so it gets the decision too
    assert set(sends(actions, PacketKind.DECIDE)) == {1, 2}
    assert c.rejected == {2: "the return value is not the declared one"}
    # the decision packet to part 1 timed out: it is sent again until acknowledged
    again = c.on_timeout(1, PacketKind.DECIDE)
    assert again == [Send(1, CrossPacket.decide(tx.tx_id, 1, Decision.ABORT))]
    c.on_decision_ack(1)
    assert c.on_timeout(1, PacketKind.DECIDE) == [] and not c.done  # part 2 has not answered
    c.on_decision_ack(2)
    assert c.done and c.parts == {0: PartStatus.ABORT, 1: PartStatus.ABORT, 2: PartStatus.ABORT}
    with pytest.raises(CrossTxError):
        c.on_ack(7, CrossAck.ok())


# ----------------------------------------------------------------------------- properties


@st.composite
def runs(draw: st.DrawFn) -> tuple[InitiateTx, int | None, list[tuple[str, int, object]]]:
    simple = draw(st.booleans())
    if simple:
        tx, local = dvp(), 0
    else:
        tx = tpc(draw(st.integers(2, 4)), b"ok")
        local = draw(st.sampled_from([None, 0]))
    count = len(tx.contract_transactions)
    outcomes = {
        i: draw(st.sampled_from(["ok", "failed", "timeout", "wrong"])) for i in range(count)
    }
    events: list[tuple[str, int, object]] = []
    for i in range(count):
        if i == local:
            events.append(("local", i, outcomes[i]))
        else:
            events.append(("ack", i, outcomes[i]))
            events.append(("decide-timeout", i, None))
            events.append(("decide-ack", i, None))
    events = draw(st.permutations(events))
    events += draw(st.lists(st.sampled_from(events), max_size=6))  # duplicates
    return tx, local, events


@settings(max_examples=300, deadline=None)
@given(runs())
def test_every_run_is_atomic_and_idempotent(
    run: tuple[InitiateTx, int | None, list[tuple[str, int, object]]],
) -> None:
    tx, local, events = run
    c = Coordinator(tx, local=local)
    actions: list[object] = list(c.start())
    outcomes: dict[int, object] = {}
    processed: list[tuple[str, int, object]] = []
    for kind, index, outcome in events:
        if kind in ("local", "ack") and (kind == "local" or index in c.sent):
            processed.append((kind, index, outcome))
        if kind == "local":
            value = b"ok" if outcome != "wrong" else b"x"
            actions += c.on_local_prepared(outcome in ("ok", "wrong"), value)
            outcomes[index] = outcome
        elif kind == "ack" and index in c.sent:
            if outcome == "timeout":
                actions += c.on_timeout(index, PacketKind.CALL if c.simple else PacketKind.PREPARE)
            elif outcome == "failed":
                actions += c.on_ack(index, CrossAck.failed("no"))
            else:
                actions += c.on_ack(index, CrossAck.ok(b"ok" if outcome == "ok" else b"x"))
            outcomes[index] = outcome
        elif kind == "decide-timeout" and index in c.sent:
            actions += c.on_timeout(index, PacketKind.DECIDE)
        elif kind == "decide-ack" and index in c.sent and c.decision is not Decision.UNKNOWN:
            actions += c.on_decision_ack(index)
    finishes = {a.decision for a in actions if isinstance(a, Finish)}
    decided = {
        a.packet.decision
        for a in actions
        if isinstance(a, Send) and a.packet.kind is PacketKind.DECIDE
    }
    # atomicity: one decision, and every local finish / decision packet carries it
    assert len(finishes | decided) <= 1
    all_ok = len(outcomes) == len(tx.contract_transactions) and all(
        o == "ok" or (c.simple and o == "wrong" and i != local) for i, o in outcomes.items()
    )
    if c.decision is Decision.COMMIT:
        assert all_ok
        assert all(s is not PartStatus.ABORT for s in c.parts.values())
    if all_ok and len(outcomes) == len(tx.contract_transactions):
        assert c.decision is Decision.COMMIT
    if any(o in ("failed", "timeout") for o in outcomes.values()):
        assert c.decision is not Decision.COMMIT
    if c.decision is not Decision.UNKNOWN:
        assert finishes | decided <= {c.decision}
        # every remote part that may hold a prepared state was sent the decision
        if not c.simple:
            for index in c.sent:
                if outcomes.get(index) in (None, "ok", "wrong"):
                    assert index in {
                        a.index
                        for a in actions
                        if isinstance(a, Send) and a.packet.kind is PacketKind.DECIDE
                    }
    # idempotence: replaying every event that was applied asks for nothing
    replay: list[object] = c.start()
    for kind, index, outcome in processed:
        if kind == "local":
            replay += c.on_local_prepared(outcome in ("ok", "wrong"), b"ok")
        elif kind == "ack" and index in c.sent and outcome != "timeout":
            replay += c.on_ack(index, CrossAck.ok(b"ok"))
    assert replay == []
