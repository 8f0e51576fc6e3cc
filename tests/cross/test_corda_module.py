"""Cross transactions between two Corda-model hosts over a real IBC channel (notarised host
versions, the Corda light client on both sides, proofs relayed by the test): the coordinator on
Bank A, a participant on Bank B, each step in the same host version as its packet."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kakehashi.cross.corda_module import CROSS_PORT, CROSS_VERSION, CrossModule, kv_call
from kakehashi.cross.participant import PartCall
from kakehashi.cross.status import Decision, PartStatus
from kakehashi.cross.tx import (
    Account,
    ChannelInfo,
    CommitProtocol,
    ContractTransaction,
    CrossTxError,
    InitiateTx,
    SignerKind,
)
from kakehashi.ibc import host as paths
from kakehashi.ibc.types import Height
from kakehashi.ledgers.corda.node.setup import EmbeddedNetwork
from tests.ibc.test_corda_host import TwoHosts, open_channel

SIGNER = Account(SignerKind.LOCAL, b"\x01" * 20)


@pytest.fixture
def linked(tmp_path: Path) -> Iterator[tuple[TwoHosts, CrossModule, CrossModule]]:
    net = EmbeddedNetwork.create(tmp_path / "net")
    try:
        a, b = CrossModule(), CrossModule()
        hosts = open_channel(net, CROSS_PORT, (a, b), CROSS_VERSION)
        a.attach(hosts.a)
        b.attach(hosts.b)
        yield hosts, a, b
    finally:
        net.close()


def relay(hosts: TwoHosts, *, drop: set[int] | None = None) -> None:
    """Deliver every packet A sent that B has not received, and bring the acknowledgements back,
    until nothing is pending; packets whose sequence is in ``drop`` are not delivered: they are
    timed out on A once B has passed their timeout height."""
    a, b = hosts.a, hosts.b
    for _ in range(20):
        sent = a.sent_packets(CROSS_PORT, hosts.chan_a)
        if not sent:
            return
        for packet in sent:
            receipt = paths.packet_receipt_path(CROSS_PORT, hosts.chan_b, packet.sequence)
            if b.value_at(receipt) is None:
                if drop and packet.sequence in drop:
                    while b.version < packet.timeout_height.revision_height:
                        b.execute(lambda s: s.set(b"padding/x", b"\x01" * 32))  # time passes
                        b.execute(lambda s: s.set(b"padding/x", b"\x02" * 32))
                    h = hosts.update(a, b)
                    a.ibc.timeout_packet(packet, b.prove(receipt, h), h, 0)
                    continue
                h = hosts.update(b, a)
                commitment = paths.packet_commitment_path(CROSS_PORT, hosts.chan_a, packet.sequence)
                b.ibc.recv_packet(packet, a.prove(commitment, h), h)
            (ack,) = [
                x
                for p, x in b.written_acks(CROSS_PORT, hosts.chan_b, packet.sequence)
                if p.sequence == packet.sequence
            ]
            h = hosts.update(a, b)
            ack_path = paths.ack_path(CROSS_PORT, hosts.chan_b, packet.sequence)
            a.ibc.acknowledge_packet(packet, ack, b.prove(ack_path, h), h)
    raise AssertionError("relaying does not finish")


def transaction(
    hosts: TwoHosts, protocol: CommitProtocol, key: bytes, value: bytes, nonce: int = 1
) -> InitiateTx:
    local = ContractTransaction(
        ChannelInfo(CROSS_PORT, hosts.chan_a), (SIGNER,), kv_call(key, value), b"ok"
    )
    remote = ContractTransaction(
        ChannelInfo(CROSS_PORT, hosts.chan_a), (SIGNER,), kv_call(key, value), b"ok"
    )
    return InitiateTx("bank-a", nonce, protocol, (local, remote), Height(0, 10**6))


@pytest.mark.parametrize("protocol", [CommitProtocol.SIMPLE, CommitProtocol.TPC])
def test_a_cross_transaction_commits_on_both_hosts(
    linked: tuple[TwoHosts, CrossModule, CrossModule], protocol: CommitProtocol
) -> None:
    hosts, a, b = linked
    tx = transaction(hosts, protocol, b"invoice-7", b"paid")
    a.initiate(tx)
    assert a.app.locked_by(b"invoice-7") == tx.tx_id  # prepared locally: locked
    relay(hosts)
    c = a.coordinator(tx.tx_id)
    assert c is not None and c.decision is Decision.COMMIT and c.done
    assert a.app.value(b"invoice-7") == b"paid" and b.app.value(b"invoice-7") == b"paid"
    assert not a.app.locks() and not b.app.locks()
    with pytest.raises(CrossTxError, match="already initiated"):
        a.initiate(tx)


def test_a_lock_conflict_on_the_participant_aborts_everywhere(
    linked: tuple[TwoHosts, CrossModule, CrossModule],
) -> None:
    hosts, a, b = linked
    blocker = transaction(hosts, CommitProtocol.TPC, b"k", b"first", nonce=1)
    b.host.execute(
        lambda _s: b.app.prepare(PartCall(blocker.tx_id, 0, kv_call(b"k", b"first")))
    )  # k locked on B
    tx = transaction(hosts, CommitProtocol.TPC, b"k", b"second", nonce=2)
    a.initiate(tx)
    relay(hosts)
    c = a.coordinator(tx.tx_id)
    assert c is not None and c.decision is Decision.ABORT and c.done
    assert "locked by" in c.failures[1]
    assert a.app.value(b"k") is None and b.app.value(b"k") is None
    assert not a.app.locks()  # A's prepared part was released by the abort
    assert b.app.locked_by(b"k") == blocker.tx_id  # B's other transaction keeps its own lock


def test_a_prepare_that_times_out_aborts_and_leaves_no_lock(
    linked: tuple[TwoHosts, CrossModule, CrossModule],
) -> None:
    hosts, a, b = linked
    a.timeout_span = 2
    tx = transaction(hosts, CommitProtocol.TPC, b"k", b"v")
    a.initiate(tx)
    (prepare,) = a.host.sent_packets(CROSS_PORT, hosts.chan_a)
    relay(hosts, drop={prepare.sequence})
    c = a.coordinator(tx.tx_id)
    assert c is not None and c.decision is Decision.ABORT and c.done
    assert c.parts[0] is PartStatus.ABORT
    assert not a.app.locks() and not b.app.locks()
    assert b.app.value(b"k") is None
