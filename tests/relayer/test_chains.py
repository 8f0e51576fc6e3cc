"""The relayer's chain endpoints on the embedded EVM chain and the embedded Corda-model network.

Set up as ``tests/ibc/cross_support.build`` does (clients, connection and channel through its
harness); everything after the handshake goes through :mod:`kakehashi.relayer.chains`:
discovery of unreceived packets, unrelayed acknowledgements and timed-out packets, proofs,
client updates and submissions. Towards the EVM chain, whose client of the Corda host is the
TEST-ONLY signed client, the Corda host's proofs pass through
:class:`~tests.ibc.cross_support.CordaAttestor` (the stand-in for the LCP enclave).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kakehashi.errors import KakehashiError, TransactionRevertedError
from kakehashi.ibc import host as paths
from kakehashi.ibc.types import Height, Order, Packet
from kakehashi.ledgers.corda.node.setup import EmbeddedNetwork
from kakehashi.ledgers.evm.chain import EmbeddedChain
from kakehashi.relayer.chains import (
    AlreadyRelayed,
    ChainEndpoint,
    CordaEndpoint,
    EvmEndpoint,
    Submitted,
    WrittenAck,
    is_timed_out,
    timed_out_packets,
    unreceived_packets,
    unrelayed_acks,
)
from tests.ibc.cross_support import CORDA_PORT, EVM_PORT, CrossRelayer, build


@dataclass
class Link:
    """One path: the harness (handshakes, app sends) and the endpoints under test."""

    harness: CrossRelayer
    evm: EvmEndpoint
    corda: CordaEndpoint
    chan_e: str = ""
    chan_c: str = ""

    def other(self, side: ChainEndpoint) -> ChainEndpoint:
        return self.evm if isinstance(side, CordaEndpoint) else self.corda

    def fresh(self, side: ChainEndpoint) -> ChainEndpoint:
        """Another endpoint instance on the same ledger (a second relayer's)."""
        if isinstance(side, CordaEndpoint):
            return CordaEndpoint(self.corda.host)
        return EvmEndpoint(self.evm.ibc)

    def proof(self, dst: ChainEndpoint, path: bytes) -> tuple[bytes, Height]:
        """Update ``dst``'s client of the other ledger to its latest height through the
        endpoints, and prove ``path`` there in the form ``dst`` verifies."""
        if isinstance(dst, CordaEndpoint):
            height = self.evm.latest_height()
            update = dst.update_client(
                self.harness.corda.client_id, self.evm.client_update_message(height)
            )
            assert update.value == height
            return self.evm.prove(path, height), height
        attestor = self.harness.attestor
        height = self.corda.latest_height()
        message = attestor.update(self.corda.client_update_message(height))
        assert dst.update_client(self.harness.evm.client_id, message).value == height
        proof = self.corda.prove(path, height)
        value = self.corda.value(path, height)
        if value is None:
            return attestor.non_membership(height, proof, path), height
        return attestor.membership(height, proof, path, value), height

    def pending(self) -> tuple[list[Packet], list[Packet], list[WrittenAck], list[WrittenAck]]:
        """(unreceived EVM → Corda, unreceived Corda → EVM, acks to relay to the EVM chain,
        acks to relay to the Corda host), read by fresh endpoint instances."""
        evm, corda = EvmEndpoint(self.evm.ibc), CordaEndpoint(self.corda.host)
        return (
            unreceived_packets(evm, corda, EVM_PORT, self.chan_e),
            unreceived_packets(corda, evm, CORDA_PORT, self.chan_c),
            unrelayed_acks(evm, corda, CORDA_PORT, self.chan_c),
            unrelayed_acks(corda, evm, EVM_PORT, self.chan_e),
        )

    def send(self, src: ChainEndpoint, data: bytes, **timeouts: object) -> Packet:
        side = self.harness.corda if isinstance(src, CordaEndpoint) else self.harness.evm
        return Packet.decode(self.harness.send(side, data, **timeouts))  # type: ignore[arg-type]

    def deliver(self, dst: ChainEndpoint, packet: Packet) -> object:
        path = paths.packet_commitment_path(
            packet.source_port, packet.source_channel, packet.sequence
        )
        proof, height = self.proof(dst, path)
        return dst.recv_packet(packet, proof, height)

    def acknowledge(self, src: ChainEndpoint, written: WrittenAck) -> object:
        p = written.packet
        proof, height = self.proof(
            src, paths.ack_path(p.destination_port, p.destination_channel, p.sequence)
        )
        return src.acknowledge_packet(p, written.acknowledgement, proof, height)

    def timeout(self, src: ChainEndpoint, packet: Packet, order: Order) -> object:
        dst = self.other(src)
        port, channel = packet.destination_port, packet.destination_channel
        if order is Order.ORDERED:
            path = paths.next_sequence_recv_path(port, channel)
            proof, height = self.proof(src, path)
            next_recv = dst.next_sequence_recv(port, channel, height)
            return src.timeout_packet(packet, proof, height, next_recv)
        path = paths.packet_receipt_path(port, channel, packet.sequence)
        proof, height = self.proof(src, path)
        return src.timeout_packet(packet, proof, height)


def open_link(harness: CrossRelayer, order: Order) -> Link:
    link = Link(harness, EvmEndpoint(harness.evm.ibc), CordaEndpoint(harness.corda.host))
    harness.open_connection(harness.evm)
    link.chan_e, link.chan_c = harness.open_channel(harness.evm, order)
    return link


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[CrossRelayer]:
    network = EmbeddedNetwork.create(tmp_path / "corda")
    try:
        with EmbeddedChain() as chain:
            yield build(chain, network)
    finally:
        network.close()


def test_both_endpoints_are_chain_endpoints(harness: CrossRelayer) -> None:
    link = open_link(harness, Order.UNORDERED)
    for side in (link.evm, link.corda):
        assert isinstance(side, ChainEndpoint)
        height = side.latest_height()
        assert side.timestamp_at(height) > 0
        assert side.client_update_message(height)
        port, channel = (EVM_PORT, link.chan_e) if side is link.evm else (CORDA_PORT, link.chan_c)
        end = side.channel(port, channel)
        assert end is not None and end.ordering is Order.UNORDERED
    assert link.corda.timestamp_at(link.corda.latest_height()) == harness.corda.timestamp_ns()
    assert link.evm.timestamp_at(link.evm.latest_height()) == harness.evm.timestamp_ns()


@pytest.mark.parametrize("order", [Order.UNORDERED, Order.ORDERED], ids=["unordered", "ordered"])
def test_discovery_relay_and_duplicates_both_ways(harness: CrossRelayer, order: Order) -> None:
    link = open_link(harness, order)
    evm, corda = link.evm, link.corda
    assert link.pending() == ([], [], [], [])

    to_corda = [link.send(evm, b"to corda %d" % i) for i in (1, 2)]
    to_evm = [link.send(corda, b"to the chain")]
    assert link.pending() == (to_corda, to_evm, [], [])
    assert evm.packets_sent(EVM_PORT, link.chan_e, from_sequence=2) == to_corda[1:]
    assert timed_out_packets(evm, corda, EVM_PORT, link.chan_e) == []

    # the first packet received on the Corda host: gone from the unreceived, its ack appears
    first = link.deliver(corda, to_corda[0])
    assert isinstance(first, Submitted) and first.value == b"ok:to corda 1"
    assert first.height == corda.latest_height() and first.tx_id
    ack_1 = WrittenAck(to_corda[0], b"ok:to corda 1")
    assert link.pending() == (to_corda[1:], to_evm, [ack_1], [])

    # a second relayer (another endpoint instance) replays it: refused, nothing changes
    before = harness.corda.state()
    replay = link.deliver(link.fresh(corda), to_corda[0])
    assert isinstance(replay, AlreadyRelayed) and "already received" in replay.reason
    # (the replay's own client update made a version: compare what the packet touched)
    assert harness.corda.state()[2] == before[2]
    assert link.pending() == (to_corda[1:], to_evm, [ack_1], [])

    delivered = link.deliver(corda, to_corda[1])
    assert isinstance(delivered, Submitted)
    back = link.deliver(evm, to_evm[0])
    assert isinstance(back, Submitted) and back.value is not None
    assert back.height == evm.latest_height()
    before_evm = harness.evm.state()
    second = EvmEndpoint(evm.ibc)
    proof, height = link.proof(second, paths.packet_commitment_path(CORDA_PORT, link.chan_c, 1))
    after_update = harness.evm.state()
    assert after_update[2] == before_evm[2]
    replay = second.recv_packet(to_evm[0], proof, height)
    assert isinstance(replay, AlreadyRelayed)
    assert harness.evm.state() == after_update  # nothing mined, nothing changed

    acks_to_evm = [ack_1, WrittenAck(to_corda[1], b"ok:to corda 2")]
    acks_to_corda = [WrittenAck(to_evm[0], back.value)]
    assert link.pending() == ([], [], acks_to_evm, acks_to_corda)

    # acknowledgements: relayed once each, the duplicates are AlreadyRelayed
    for written in acks_to_evm:
        done = link.acknowledge(evm, written)
        assert isinstance(done, Submitted)
        again = link.acknowledge(link.fresh(evm), written)
        assert isinstance(again, AlreadyRelayed) and "already acknowledged" in again.reason
    done = link.acknowledge(corda, acks_to_corda[0])
    assert isinstance(done, Submitted)
    apps_before = harness.corda.state()[2]
    again = link.acknowledge(link.fresh(corda), acks_to_corda[0])
    assert isinstance(again, AlreadyRelayed)
    assert harness.corda.state()[2] == apps_before
    assert harness.corda.app.acknowledged == [(to_evm[0], back.value)]
    assert harness.evm.app.functions.acknowledged().call() == 2

    # nothing left on either side
    assert link.pending() == ([], [], [], [])
    assert evm.packets_sent(EVM_PORT, link.chan_e) == []
    assert corda.packets_sent(CORDA_PORT, link.chan_c) == []
    # the written acks stay on the destinations (ICS-04 never deletes them)
    assert corda.acks_written(CORDA_PORT, link.chan_c) == acks_to_evm
    assert evm.acks_written(EVM_PORT, link.chan_e) == acks_to_corda


@pytest.mark.parametrize("order", [Order.UNORDERED, Order.ORDERED], ids=["unordered", "ordered"])
@pytest.mark.parametrize("source", ["evm", "corda"])
def test_timed_out_packets_are_discovered_and_timed_out_once(
    harness: CrossRelayer, order: Order, source: str
) -> None:
    link = open_link(harness, order)
    src: ChainEndpoint = link.evm if source == "evm" else link.corda
    dst = link.other(src)
    port, channel = (EVM_PORT, link.chan_e) if src is link.evm else (CORDA_PORT, link.chan_c)

    deadline = Height(0, dst.latest_height().revision_height + 3)
    late = link.send(src, b"late", timeout_height=deadline)
    on_time = link.send(src, b"on time")
    assert unreceived_packets(src, dst, port, channel) == [late, on_time]
    assert timed_out_packets(src, dst, port, channel) == []

    # the destination moves past the deadline
    if dst is link.evm:
        harness.evm.mine(3)
    else:
        for _ in range(3):  # one host version each (a new header: an unchanged client is no
            harness.evm.mine(1)  # write, so re-sending the same header makes no version)
            harness.update(harness.corda)
    assert dst.latest_height() >= deadline
    assert timed_out_packets(src, dst, port, channel) == [late]
    assert unreceived_packets(src, dst, port, channel) == [on_time]
    with pytest.raises(KakehashiError):  # the destination refuses it now: not AlreadyRelayed
        link.deliver(dst, late)

    timed_out = link.timeout(src, late, order)
    assert isinstance(timed_out, Submitted)
    again = link.timeout(link.fresh(src), late, order)
    assert isinstance(again, AlreadyRelayed) and "timed out" in again.reason
    assert timed_out_packets(src, dst, port, channel) == []
    assert src.packets_sent(port, channel) == [on_time]
    if order is Order.UNORDERED:
        assert unreceived_packets(src, dst, port, channel) == [on_time]


def test_a_refusal_that_is_not_a_duplicate_still_raises(harness: CrossRelayer) -> None:
    link = open_link(harness, Order.UNORDERED)
    to_corda = link.send(link.evm, b"to corda")
    to_evm = link.send(link.corda, b"to the chain")
    forged = Packet(
        to_corda.sequence,
        to_corda.source_port,
        to_corda.source_channel,
        to_corda.destination_port,
        to_corda.destination_channel,
        b"not what was sent",
        to_corda.timeout_height,
    )
    proof, height = link.proof(link.corda, paths.packet_commitment_path(EVM_PORT, link.chan_e, 1))
    with pytest.raises(KakehashiError):
        link.corda.recv_packet(forged, proof, height)
    proof, height = link.proof(link.evm, paths.packet_commitment_path(CORDA_PORT, link.chan_c, 1))
    with pytest.raises(TransactionRevertedError):
        link.evm.recv_packet(to_evm, proof[:-1] + bytes([proof[-1] ^ 1]), height)
    assert link.pending() == ([to_corda], [to_evm], [], [])


def test_is_timed_out_by_height_or_timestamp() -> None:
    packet = Packet(1, "a1", "channel-0", "b1", "channel-0", b"x", Height(0, 10), 5_000)
    assert not is_timed_out(packet, Height(0, 9), 4_999)
    assert is_timed_out(packet, Height(0, 10), 0)
    assert is_timed_out(packet, Height(0, 1), 5_000)
    by_time = Packet(1, "a1", "channel-0", "b1", "channel-0", b"x", Height(), 5_000)
    assert not is_timed_out(by_time, Height(9, 9), 4_999)
    assert is_timed_out(by_time, Height(0, 0), 5_000)


def test_a_packet_of_a_failed_host_call_is_never_discovered(harness: CrossRelayer) -> None:
    link = open_link(harness, Order.UNORDERED)
    host = link.corda.host

    def send_then_give_up(_store: object) -> None:
        host.handler.send_packet(CORDA_PORT, link.chan_c, Height(0, 10**9), 0, b"never committed")
        raise KakehashiError("the caller gives up: the host call records nothing")

    with pytest.raises(KakehashiError, match="gives up"):
        host.execute(send_then_give_up)
    assert link.corda.packets_sent(CORDA_PORT, link.chan_c) == []

    sent = link.send(link.corda, b"committed")  # the same sequence, other contents
    assert sent.sequence == 1
    assert CordaEndpoint(host).packets_sent(CORDA_PORT, link.chan_c) == [sent]
    assert unreceived_packets(link.corda, link.evm, CORDA_PORT, link.chan_c) == [sent]


def test_packets_and_acks_from_before_the_endpoint_existed_are_relayed(
    harness: CrossRelayer,
) -> None:
    """The Corda host records what it sends and acknowledges itself: an endpoint opened later
    (a relayer started after the applications) discovers and relays all of it."""
    harness.open_connection(harness.evm)
    chan_e, chan_c = harness.open_channel(harness.evm, Order.UNORDERED)
    to_evm = Packet.decode(
        harness.send(harness.corda, b"sent before any endpoint")  # type: ignore[arg-type]
    )
    sent = harness.send(harness.evm, b"to corda")  # type: ignore[arg-type]
    assert harness.deliver(harness.corda, sent) == b"ok:to corda"  # type: ignore[arg-type]
    to_corda = Packet.decode(sent)

    link = Link(harness, EvmEndpoint(harness.evm.ibc), CordaEndpoint(harness.corda.host))
    link.chan_e, link.chan_c = chan_e, chan_c
    ack = WrittenAck(to_corda, b"ok:to corda")
    assert link.pending() == ([], [to_evm], [ack], [])
    delivered = link.deliver(link.evm, to_evm)
    assert isinstance(delivered, Submitted) and delivered.value is not None
    assert isinstance(link.acknowledge(link.evm, ack), Submitted)
    assert link.pending() == ([], [], [], [WrittenAck(to_evm, delivered.value)])


def test_a_packet_timed_out_by_the_destinations_clock_is_discovered(harness: CrossRelayer) -> None:
    link = open_link(harness, Order.UNORDERED)
    deadline = harness.corda.clock() + 8 * 1_000_000_000
    late = link.send(link.evm, b"late for corda", timeout_timestamp=deadline)
    assert unreceived_packets(link.evm, link.corda, EVM_PORT, link.chan_e) == [late]
    harness.corda.clock.skew_ns += 10 * 1_000_000_000
    harness.evm.mine(1)  # a new header, so the update below makes a host version
    harness.update(harness.corda)  # a host version at the later (notarised) time
    assert link.corda.timestamp_at(link.corda.latest_height()) >= deadline
    assert timed_out_packets(link.evm, link.corda, EVM_PORT, link.chan_e) == [late]
    assert unreceived_packets(link.evm, link.corda, EVM_PORT, link.chan_e) == []
    assert isinstance(link.timeout(link.evm, late, Order.UNORDERED), Submitted)
    assert link.evm.packets_sent(EVM_PORT, link.chan_e) == []


@pytest.mark.parametrize("order", [Order.UNORDERED, Order.ORDERED], ids=["unordered", "ordered"])
def test_batched_reads_answer_as_one_read_per_path(harness: CrossRelayer, order: Order) -> None:
    """``values``, ``prove_values``, ``received`` and ``unsettled`` (one batch each: a JSON-RPC
    batch of eth_getStorageAt, one eth_getProof naming every slot) answer what the one-path
    reads answer, on fresh endpoints with nothing remembered."""
    link = open_link(harness, order)
    evm, corda = link.evm, link.corda
    to_corda = [link.send(evm, b"batch %d" % i) for i in range(4)]
    to_evm = [link.send(corda, b"back %d" % i) for i in range(3)]
    link.deliver(corda, to_corda[0])
    link.deliver(corda, to_corda[1])
    link.deliver(evm, to_evm[0])
    ack = WrittenAck(to_corda[0], b"ok:batch 0")
    assert isinstance(link.acknowledge(evm, ack), Submitted)

    for side, own, other_port, other_chan in (
        (evm, to_corda, CORDA_PORT, link.chan_c),
        (corda, to_evm, EVM_PORT, link.chan_e),
    ):
        src = link.fresh(side)
        height = src.latest_height()
        commitment_paths = [
            paths.packet_commitment_path(p.source_port, p.source_channel, p.sequence) for p in own
        ]
        mixed = [*commitment_paths, paths.packet_receipt_path("nowhere", "channel-9", 1)]
        assert src.values(mixed, height) == [src.value(p, height) for p in mixed]
        assert src.values(mixed) == [src.value(p) for p in mixed]
        proven = src.prove_values(mixed, height)
        assert proven == [src.prove_value(p, height) for p in mixed]
        assert [v for _, v in proven] == [src.value(p, height) for p in mixed]
        assert src.unsettled(own) == [p for p in own if not link.fresh(side).is_settled(p)]
        dst = link.fresh(link.other(side))
        sequences = [p.sequence for p in own] + [99]
        expected = {
            s
            for s in sequences
            if link.fresh(link.other(side)).is_received(other_port, other_chan, s)
        }
        assert dst.received(other_port, other_chan, sequences) == expected
        assert src.values([]) == [] and src.prove_values([], height) == []
    assert evm.unsettled(to_corda) == to_corda[1:]
    assert corda.received(CORDA_PORT, link.chan_c, [1, 2, 3, 4]) == {1, 2}
    assert evm.received(EVM_PORT, link.chan_e, [1, 2, 3]) == {1}


def test_what_a_ledger_accepted_is_remembered_without_reading_again(
    harness: CrossRelayer,
) -> None:
    """After a receive / acknowledgement the endpoint submitted was accepted, the endpoint
    knows the packet received at that height / settled, and reads nothing to say so; a fresh
    endpoint reads the same answers from the ledger."""
    link = open_link(harness, Order.UNORDERED)
    evm, corda = link.evm, link.corda
    packet = link.send(evm, b"remember me")
    received = link.deliver(corda, packet)
    assert isinstance(received, Submitted)
    written = corda.acks_written(CORDA_PORT, link.chan_c)
    assert isinstance(link.acknowledge(evm, written[0]), Submitted)

    def unread(*_: object) -> list[bytes | None]:
        raise AssertionError("read the ledger for a fact the endpoint was told")

    corda.values = unread  # type: ignore[method-assign]
    evm.values = unread  # type: ignore[method-assign]
    corda.value = unread  # type: ignore[method-assign,assignment]
    evm.value = unread  # type: ignore[method-assign,assignment]
    assert corda.is_received(CORDA_PORT, link.chan_c, packet.sequence, received.height)
    assert corda.received(CORDA_PORT, link.chan_c, [packet.sequence]) == {packet.sequence}
    assert evm.is_settled(packet) and evm.unsettled([packet]) == []
    assert link.fresh(corda).is_received(CORDA_PORT, link.chan_c, packet.sequence)
    assert link.fresh(evm).is_settled(packet)


def test_each_handler_log_is_decoded_once(
    harness: CrossRelayer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The EVM endpoint keeps the packets of the logs it read decoded: a discovery call decodes
    only the logs of blocks it had not read, and answers as a fresh endpoint does."""
    link = open_link(harness, Order.UNORDERED)
    evm = link.evm
    sent = [link.send(evm, b"decoded once %d" % i) for i in range(3)]
    decoded: list[bytes] = []
    original = Packet.decode

    def counting(data: bytes) -> Packet:
        decoded.append(data)
        return original(data)

    monkeypatch.setattr(Packet, "decode", staticmethod(counting))
    assert evm.packets_sent(EVM_PORT, link.chan_e) == sent
    assert len(decoded) == 3
    assert evm.packets_sent(EVM_PORT, link.chan_e) == sent
    assert evm.acks_written(EVM_PORT, link.chan_e) == []
    assert len(decoded) == 3  # nothing new: nothing decoded again
    more = link.send(evm, b"one more")
    before = len(decoded)  # (sending decodes the packet of its own receipt)
    assert evm.packets_sent(EVM_PORT, link.chan_e) == [*sent, more]
    assert len(decoded) == before + 1
    assert link.fresh(evm).packets_sent(EVM_PORT, link.chan_e) == [*sent, more]
