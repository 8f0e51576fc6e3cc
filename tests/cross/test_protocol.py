"""Coordinators and participants together, over a network that reorders, duplicates and loses
packets, with lock conflicts between concurrent transactions (hypothesis): every transaction
ends all-committed or all-aborted on every ledger, values move only with a commit, and no lock
is left once decisions are delivered (the protocol level; the ledgers' own locks come next).

Each ledger here is a key-value store with exclusive write locks (:class:`LockingStore`); a part
``b"set KEY=VALUE"`` locks KEY and stages VALUE, returning b"ok", or refuses when KEY is locked.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kakehashi.cross.coordinator import Coordinator, Finish, PrepareLocal, Send
from kakehashi.cross.packets import CrossAck, CrossPacket, PacketKind
from kakehashi.cross.participant import PartCall, Participant
from kakehashi.cross.status import Decision, PartStatus
from kakehashi.cross.tx import (
    Account,
    ChannelInfo,
    CommitProtocol,
    ContractTransaction,
    InitiateTx,
    SignerKind,
)
from kakehashi.errors import ConflictError
from kakehashi.ibc.types import Height

NOW = Height(0, 10)


@dataclass
class LockingStore:
    """A ledger's key-value state with exclusive locks held by prepared transactions."""

    values: dict[bytes, bytes] = field(default_factory=dict)
    locks: dict[bytes, bytes] = field(default_factory=dict)  # key -> tx id
    staged: dict[bytes, tuple[bytes, bytes]] = field(default_factory=dict)  # tx id -> (k, v)

    def prepare(self, call: PartCall) -> bytes:
        tx_id = call.tx_id
        key, _, value = call.call_info.removeprefix(b"set ").partition(b"=")
        if self.locks.get(key, tx_id) != tx_id:
            raise ConflictError(f"{key!r} is locked by another transaction")
        self.locks[key] = tx_id
        self.staged[tx_id] = (key, value)
        return b"ok"

    def _release(self, tx_id: bytes) -> tuple[bytes, bytes] | None:
        staged = self.staged.pop(tx_id, None)
        if staged is not None:
            self.locks.pop(staged[0], None)
        return staged

    def commit(self, tx_id: bytes, index: int) -> None:
        staged = self._release(tx_id)
        if staged is not None:
            self.values[staged[0]] = staged[1]

    def abort(self, tx_id: bytes, index: int) -> None:
        self._release(tx_id)


def transaction(
    nonce: int, writes: list[tuple[int, bytes]], protocol: CommitProtocol
) -> InitiateTx:
    signer = Account(SignerKind.LOCAL, b"\x01" * 20)
    return InitiateTx(
        "coordinator",
        nonce,
        protocol,
        tuple(
            ContractTransaction(
                ChannelInfo("cross", f"channel-{ledger}"),
                (signer,),
                b"set " + key + b"=" + str(nonce).encode(),
                b"ok",
            )
            for ledger, key in writes
        ),
        Height(0, 1_000),
    )


@dataclass
class Network:
    """Ledger 0 coordinates and runs part 0 of every transaction; ledger i runs part i."""

    ledgers: list[LockingStore]
    rng: random.Random
    loss: float
    in_flight: list[tuple[int, int, CrossPacket]] = field(
        default_factory=list
    )  # (tx, part, packet)

    def run(self, txs: list[InitiateTx]) -> list[Coordinator]:
        participants = [Participant(store) for store in self.ledgers]
        coordinators = [Coordinator(tx, local=0) for tx in txs]

        def act(t: int, actions: list[object]) -> None:
            for action in actions:
                if isinstance(action, PrepareLocal):
                    tx = txs[t]
                    try:
                        value = self.ledgers[0].prepare(PartCall.of(tx, 0))
                    except ConflictError as exc:
                        act(t, coordinators[t].on_local_prepared(False, reason=str(exc)))
                    else:
                        act(t, coordinators[t].on_local_prepared(True, value))
                elif isinstance(action, Finish):
                    store = self.ledgers[0]
                    (store.commit if action.decision is Decision.COMMIT else store.abort)(
                        txs[t].tx_id, 0
                    )
                elif isinstance(action, Send):
                    self.in_flight.append((t, action.index, action.packet))

        for t in range(len(txs)):
            act(t, coordinators[t].start())
        steps = 0
        while self.in_flight:
            steps += 1
            assert steps < 10_000, "the protocol does not finish"
            t, part, packet = self.in_flight.pop(self.rng.randrange(len(self.in_flight)))
            coordinator = coordinators[t]
            if self.rng.random() < self.loss:  # lost: its timeout is proven to the coordinator
                act(t, coordinator.on_timeout(part, packet.kind))
                continue
            ack = participants[part].on_packet(packet, NOW, 0)
            if self.rng.random() < 0.2:  # delivered twice (two relayers)
                assert participants[part].on_packet(packet, NOW, 0) == ack
            if packet.kind is PacketKind.DECIDE:
                act(t, coordinator.on_decision_ack(part))
            else:
                act(t, coordinator.on_ack(part, ack))
        return coordinators


@st.composite
def workloads(draw: st.DrawFn) -> tuple[list[InitiateTx], float, int]:
    ledgers = draw(st.integers(2, 4))
    keys = [b"a", b"b", b"c"]
    txs = []
    for nonce in range(draw(st.integers(1, 6))):
        protocol = CommitProtocol.SIMPLE if draw(st.booleans()) else CommitProtocol.TPC
        others = (
            [draw(st.integers(1, ledgers - 1))]
            if protocol is CommitProtocol.SIMPLE
            else draw(
                st.lists(st.integers(1, ledgers - 1), min_size=1, max_size=ledgers - 1, unique=True)
            )
        )
        writes = [(0, draw(st.sampled_from(keys)))] + [
            (o, draw(st.sampled_from(keys))) for o in others
        ]
        txs.append(transaction(nonce, writes, protocol))
    return txs, draw(st.sampled_from([0.0, 0.1, 0.3])), draw(st.integers(0, 2**32))


@settings(max_examples=200, deadline=None)
@given(workloads())
def test_concurrent_transactions_are_atomic_and_leave_no_lock(
    workload: tuple[list[InitiateTx], float, int],
) -> None:
    txs, loss, seed = workload
    width = 1 + max(
        int(ct.cross_chain_channel.channel.split("-")[1])
        for tx in txs
        for ct in tx.contract_transactions
    )
    ledgers = [LockingStore() for _ in range(width)]
    coordinators = Network(ledgers, random.Random(seed), loss).run(txs)
    for store in ledgers:
        assert store.locks == {} and store.staged == {}  # no lock outlives its transaction
    for tx, c in zip(txs, coordinators, strict=True):
        assert c.decision is not Decision.UNKNOWN and c.done
        value = str(tx.nonce).encode()
        parts = tx.contract_transactions
        applied = [
            ledgers[int(ct.cross_chain_channel.channel.split("-")[1])].values.get(
                ct.call_info.split(b"=")[0].removeprefix(b"set ")
            )
            == value
            for ct in parts
        ]
        if c.decision is Decision.ABORT:
            assert not any(applied)  # nothing of an aborted transaction is visible
            assert all(s in (PartStatus.NONE, PartStatus.ABORT) for s in c.parts.values())
        else:  # committed everywhere (a later transaction may have overwritten a key since)
            assert all(s is PartStatus.COMMIT for s in c.parts.values())


def test_without_conflicts_or_losses_everything_commits() -> None:
    txs = [
        transaction(1, [(0, b"a"), (1, b"a")], CommitProtocol.SIMPLE),
        transaction(2, [(0, b"b"), (1, b"b"), (2, b"b")], CommitProtocol.TPC),
    ]
    ledgers = [LockingStore() for _ in range(3)]
    coordinators = Network(ledgers, random.Random(1), 0.0).run(txs)
    assert [c.decision for c in coordinators] == [Decision.COMMIT, Decision.COMMIT]
    assert ledgers[1].values == {b"a": b"1", b"b": b"2"} and ledgers[2].values == {b"b": b"2"}


def test_a_participant_refuses_a_late_prepare_and_a_commit_it_never_prepared() -> None:
    from kakehashi.cross.tx import CrossTxError

    tx = transaction(3, [(0, b"a"), (1, b"a")], CommitProtocol.TPC)
    store = LockingStore()
    participant = Participant(store)
    late = participant.on_packet(CrossPacket.prepare(tx, 1), Height(0, 5_000), 0)
    assert late == CrossAck.failed("the transaction timed out before this part ran")
    assert store.locks == {}
    with pytest.raises(CrossTxError, match="COMMIT"):
        participant.on_packet(CrossPacket.decide(tx.tx_id, 1, Decision.COMMIT), NOW, 0)
    # an ABORT that overtakes its PREPARE: the PREPARE is then refused without locking
    other = transaction(4, [(0, b"b"), (1, b"b")], CommitProtocol.TPC)
    assert (
        participant.on_packet(CrossPacket.decide(other.tx_id, 1, Decision.ABORT), NOW, 0)
        == CrossAck.ok()
    )
    refused = participant.on_packet(CrossPacket.prepare(other, 1), NOW, 0)
    assert refused.reason == "the transaction was already aborted" and store.locks == {}


def test_an_answer_larger_than_an_acknowledgement_carries_fails_the_part() -> None:
    from kakehashi.cross.packets import MAX_ANSWER
    from kakehashi.errors import SerializationError

    assert CrossAck.ok(b"r" * MAX_ANSWER).return_value == b"r" * MAX_ANSWER
    with pytest.raises(SerializationError, match=f"at most {MAX_ANSWER}"):
        CrossAck.ok(b"r" * (MAX_ANSWER + 1))

    class Talkative(LockingStore):
        def prepare(self, call: PartCall) -> bytes:
            super().prepare(call)
            return b"r" * (MAX_ANSWER + 1)

    store = Talkative()
    tx = InitiateTx(
        "t",
        1,
        CommitProtocol.TPC,
        tuple(
            ContractTransaction(
                ChannelInfo("cross", "channel-0"),
                (Account(SignerKind.LOCAL, b"\x01" * 20),),
                b"set k=v",  # no declared return value: any answer, up to the bound
            )
            for _ in range(2)
        ),
        Height(0, 1_000),
    )
    answer = Participant(store).on_packet(CrossPacket.prepare(tx, 1), NOW, 0)
    assert "more than an acknowledgement carries" in answer.reason
    assert store.locks == {} and store.staged == {}  # what it prepared was dropped
