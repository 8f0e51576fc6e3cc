"""The IBC handler between two in-memory hosts, relayed by bytes only.

Each negative case asserts the rejection *and* that the rejecting host's store (and
application) did not change.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from kakehashi.errors import IbcError, KakehashiError, VerificationError
from kakehashi.ibc import host
from kakehashi.ibc.commitment import RECEIPT, ack_commitment, end_commitment, sequence_value
from kakehashi.ibc.connection import pick_version
from kakehashi.ibc.store import MemoryStore
from kakehashi.ibc.types import (
    DEFAULT_VERSION,
    ChannelCounterparty,
    ChannelState,
    ConnectionCounterparty,
    ConnectionState,
    Height,
    Order,
    Packet,
    Version,
)
from tests.ibc.support import (
    BLOCK_TIME_NS,
    REVISION,
    MerkleTree,
    Relayer,
    SignedRootClient,
    TestChain,
    connected,
    verify_member,
    verify_non_member,
)

BOTH_ORDERS = pytest.mark.parametrize("order", [Order.UNORDERED, Order.ORDERED])


def flip(proof: bytes, at: int = -1) -> bytes:
    i = at % len(proof)
    return proof[:i] + bytes([proof[i] ^ 1]) + proof[i + 1 :]


# ---------------------------------------------------------------------------- test client


def test_merkle_proofs_of_the_test_client_are_real() -> None:
    items = {bytes([i]) * 32: bytes([i + 1]) * 32 for i in range(10, 200, 20)}
    tree = MerkleTree.of(items)
    for key, value in items.items():
        proof = tree.prove(key)
        verify_member(tree.root, proof, key, value)
        with pytest.raises(VerificationError):
            verify_member(tree.root, proof, key, bytes(32))
        with pytest.raises(VerificationError):
            verify_member(tree.root, flip(proof), key, value)
    for absent in (bytes(32), bytes([5]) * 32, bytes([255]) * 32):
        proof = tree.prove_absence(absent)
        verify_non_member(tree.root, proof, absent)
        with pytest.raises(VerificationError):
            verify_non_member(tree.root, flip(proof), absent)
        with pytest.raises(VerificationError):  # a present key is not absent
            verify_non_member(tree.root, proof, bytes([30]) * 32)
    empty = MerkleTree.of({})
    verify_non_member(empty.root, empty.prove_absence(bytes(32)), bytes(32))
    with pytest.raises(VerificationError):
        verify_non_member(tree.root, empty.prove_absence(bytes(32)), bytes(32))


# ---------------------------------------------------------------------------- handshakes


def test_connection_handshake_opens_both_ends() -> None:
    relayer = Relayer(TestChain("a"), TestChain("b"))
    relayer.open_connection()
    a, b, p = relayer.a, relayer.b, relayer.path
    assert (p.a_connection, p.b_connection) == ("connection-0", "connection-0")
    a_end, b_end = a.handler.connection(p.a_connection), b.handler.connection(p.b_connection)
    assert a_end.state is b_end.state is ConnectionState.OPEN
    assert a_end.versions == b_end.versions == (pick_version([DEFAULT_VERSION]),)
    assert a_end.counterparty == ConnectionCounterparty(p.b_client, p.b_connection, b.prefix)
    assert b_end.counterparty == ConnectionCounterparty(p.a_client, p.a_connection, a.prefix)
    # The provable store holds the commitment of exactly the end kept privately.
    assert a.store.get(host.connection_path(p.a_connection)) == end_commitment(a_end)
    assert p.a_client == "99-signed-root-0"


@BOTH_ORDERS
def test_channel_handshake_opens_both_ends(order: Order) -> None:
    relayer = connected(order)
    a, b, p = relayer.a, relayer.b, relayer.path
    a_end, b_end = a.handler.channel(a.port, p.a_channel), b.handler.channel(b.port, p.b_channel)
    assert a_end.state is b_end.state is ChannelState.OPEN
    assert a_end.ordering is b_end.ordering is order
    assert a_end.counterparty == ChannelCounterparty(b.port, p.b_channel)
    assert b_end.counterparty == ChannelCounterparty(a.port, p.a_channel)
    assert a_end.version == b_end.version == "app-1"
    assert [e for e, _ in a.app.events] == ["open_init", "open_ack"]
    assert [e for e, _ in b.app.events] == ["open_try", "open_confirm"]
    for chain, channel in ((a, p.a_channel), (b, p.b_channel)):
        for path in (host.next_sequence_send_path, host.next_sequence_recv_path):
            assert chain.store.get(path(chain.port, channel)) == sequence_value(1)


def test_channel_close_handshake() -> None:
    relayer = connected(Order.UNORDERED)
    a, b, p = relayer.a, relayer.b, relayer.path
    relayer.close_channel(a)
    assert a.handler.channel(a.port, p.a_channel).state is ChannelState.CLOSED
    assert b.handler.channel(b.port, p.b_channel).state is ChannelState.CLOSED
    with a.unchanged(), pytest.raises(IbcError, match="OPEN"):
        a.handler.send_packet(a.port, p.a_channel, Height(REVISION, 10**6), 0, b"late")


def test_close_confirm_needs_the_counterparty_closed() -> None:
    relayer = connected(Order.UNORDERED)
    a, b, p = relayer.a, relayer.b, relayer.path
    height = relayer.update(b)
    proof = a.prove(host.channel_path(a.port, p.a_channel))  # a is still OPEN
    with b.unchanged(), pytest.raises(VerificationError):
        b.handler.chan_close_confirm(b.port, p.b_channel, proof, height)


def test_application_may_refuse_to_close() -> None:
    relayer = connected(Order.UNORDERED)
    a = relayer.a
    a.app.refuse_close = True
    with a.unchanged(), pytest.raises(KakehashiError, match="refuses"):
        a.handler.chan_close_init(a.port, relayer.path.a_channel)


def test_handshake_steps_out_of_order_are_refused() -> None:
    relayer = connected(Order.UNORDERED)
    a, b, p = relayer.a, relayer.b, relayer.path
    height = relayer.update(a)
    proof = b.prove(host.connection_path(p.b_connection))
    with a.unchanged(), pytest.raises(IbcError, match="needs it INIT"):
        a.handler.conn_open_ack(p.a_connection, p.b_connection, DEFAULT_VERSION, proof, height)
    with a.unchanged(), pytest.raises(IbcError, match="needs it TRYOPEN"):
        a.handler.conn_open_confirm(p.a_connection, proof, height)
    with a.unchanged(), pytest.raises(IbcError, match="no connection"):
        a.handler.conn_open_confirm("connection-9", proof, height)


def test_try_with_a_forged_init_is_refused() -> None:
    """B will not answer an INIT that A never made (the proof is of a different end)."""
    a, b = TestChain("a"), TestChain("b")
    relayer = Relayer(a, b)
    p = relayer.path
    p.a_connection = a.run(
        lambda h: h.conn_open_init(p.a_client, ConnectionCounterparty(p.b_client, "", b.prefix))
    )
    height = relayer.update(b)
    proof = a.prove(host.connection_path(p.a_connection))
    forged = ConnectionCounterparty("99-signed-root-7", p.a_connection, a.prefix)
    with b.unchanged(), pytest.raises(VerificationError):
        b.handler.conn_open_try(p.b_client, forged, [DEFAULT_VERSION], 0, proof, height)
    with b.unchanged(), pytest.raises(VerificationError):  # other versions than A offered
        b.handler.conn_open_try(
            p.b_client,
            ConnectionCounterparty(p.a_client, p.a_connection, a.prefix),
            [Version("1", ("ORDER_ORDERED",))],
            0,
            proof,
            height,
        )
    with b.unchanged(), pytest.raises(IbcError, match="delay period"):
        b.handler.conn_open_try(
            p.b_client,
            ConnectionCounterparty(p.a_client, p.a_connection, a.prefix),
            [DEFAULT_VERSION],
            5,
            proof,
            height,
        )
    with b.unchanged(), pytest.raises(IbcError, match="no connection version in common"):
        b.handler.conn_open_try(
            p.b_client,
            ConnectionCounterparty(p.a_client, p.a_connection, a.prefix),
            [Version("2", ("ORDER_ORDERED",))],
            0,
            proof,
            height,
        )


def test_init_refuses_an_unsupported_version_and_a_chosen_counterparty_id() -> None:
    relayer = Relayer(TestChain("a"), TestChain("b"))
    a, p = relayer.a, relayer.path
    with a.unchanged(), pytest.raises(IbcError, match="not supported"):
        a.handler.conn_open_init(
            p.a_client,
            ConnectionCounterparty(p.b_client, "", b"ibc-b"),
            Version("1", ("ORDER_DAG",)),
        )
    with a.unchanged(), pytest.raises(IbcError, match="must be empty"):
        a.handler.conn_open_init(
            p.a_client, ConnectionCounterparty(p.b_client, "connection-0", b"ibc-b")
        )
    with a.unchanged(), pytest.raises(IbcError, match="no client"):
        a.handler.conn_open_init("07-nothing-3", ConnectionCounterparty(p.b_client, "", b"x"))


def test_version_negotiation() -> None:
    assert pick_version([DEFAULT_VERSION]) == DEFAULT_VERSION
    only_unordered = Version("1", ("ORDER_UNORDERED", "ORDER_DAG"))
    assert pick_version([Version("9", ("X",)), only_unordered]) == Version(
        "1", ("ORDER_UNORDERED",)
    )
    for bad in ([], [Version("1", ())], [Version("", ("ORDER_ORDERED",))]):
        with pytest.raises(IbcError):
            pick_version(bad)


def test_unordered_only_connection_refuses_ordered_channels() -> None:
    a, b = TestChain("a"), TestChain("b")
    relayer = Relayer(a, b)
    p = relayer.path
    p.a_connection = a.run(
        lambda h: h.conn_open_init(
            p.a_client,
            ConnectionCounterparty(p.b_client, "", b.prefix),
            Version("1", ("ORDER_UNORDERED",)),
        )
    )
    with a.unchanged(), pytest.raises(IbcError, match="does not allow ORDERED"):
        a.handler.chan_open_init(
            a.port, Order.ORDERED, [p.a_connection], ChannelCounterparty(b.port, ""), "v"
        )
    with a.unchanged(), pytest.raises(IbcError, match="delay period"):
        a.handler.conn_open_init(
            p.a_client, ConnectionCounterparty(p.b_client, "", b.prefix), None, 1
        )


def test_a_frozen_client_verifies_nothing() -> None:
    relayer, packet, proof, height = _sent()
    b = relayer.b
    client = b.handler.client(relayer.path.b_client)
    assert isinstance(client, SignedRootClient)
    client.frozen = True
    with b.unchanged(), pytest.raises(IbcError, match="Frozen"):
        b.handler.recv_packet(packet, proof, height)
    with b.unchanged(), pytest.raises(IbcError, match="Frozen"):
        b.handler.update_client(relayer.path.b_client, relayer.a.statement(), b.time_ns)


def test_channel_open_needs_an_open_connection_for_try() -> None:
    a, b = TestChain("a"), TestChain("b")
    relayer = Relayer(a, b)
    p = relayer.path
    p.a_connection = a.run(
        lambda h: h.conn_open_init(p.a_client, ConnectionCounterparty(p.b_client, "", b.prefix))
    )
    height = relayer.update(a)
    with a.unchanged(), pytest.raises(IbcError, match="not OPEN"):
        a.handler.chan_open_try(
            a.port,
            Order.ORDERED,
            [p.a_connection],
            ChannelCounterparty(b.port, "channel-0"),
            "app-1",
            b"proof",
            height,
        )
    with a.unchanged(), pytest.raises(IbcError, match="no application"):
        a.handler.chan_open_init(
            "unbound", Order.ORDERED, [p.a_connection], ChannelCounterparty(b.port, ""), "v"
        )


# ---------------------------------------------------------------------------- packets


@BOTH_ORDERS
def test_packets_flow_both_ways(order: Order) -> None:
    relayer = connected(order)
    a, b, p = relayer.a, relayer.b, relayer.path
    for src, dst, channel in ((a, b, p.a_channel), (b, a, p.b_channel)):
        sent = [relayer.send(src, f"hello {i} from {src.name}".encode()) for i in range(3)]
        for i, packet in enumerate(sent, start=1):
            assert Packet.decode(packet).sequence == i
            ack = relayer.deliver(src, packet)
            assert ack == b"ok:" + Packet.decode(packet).data
        assert [x.data for x in dst.app.received] == [Packet.decode(x).data for x in sent]
        for packet in sent:
            ack = b"ok:" + Packet.decode(packet).data
            relayer.acknowledge(src, packet, ack)
            commitment = host.packet_commitment_path(
                src.port, channel, Packet.decode(packet).sequence
            )
            assert src.store.get(commitment) is None
        assert [ack for _, ack in src.app.acknowledged] == [
            b"ok:" + Packet.decode(x).data for x in sent
        ]
        dst.app.received.clear()
    if order is Order.ORDERED:
        assert a.store.get(host.next_sequence_ack_path(a.port, p.a_channel)) == sequence_value(4)
        assert b.store.get(host.next_sequence_recv_path(b.port, p.b_channel)) == sequence_value(4)


def test_asynchronous_acknowledgement() -> None:
    relayer = connected(Order.UNORDERED, ack_mode="async")
    a, b, p = relayer.a, relayer.b, relayer.path
    packet_bytes = relayer.send(a, b"later")
    assert relayer.deliver(a, packet_bytes) is None
    packet = Packet.decode(packet_bytes)
    assert b.store.get(host.ack_path(b.port, p.b_channel, 1)) is None
    b.run(lambda h: h.write_acknowledgement(packet, b"done"))
    assert b.store.get(host.ack_path(b.port, p.b_channel, 1)) == ack_commitment(b"done")
    with b.unchanged(), pytest.raises(IbcError, match="already acknowledged"):
        b.handler.write_acknowledgement(packet, b"again")
    unsent = Packet(9, a.port, p.a_channel, b.port, p.b_channel, b"x", Height(REVISION, 10**9))
    with b.unchanged(), pytest.raises(IbcError, match="not received"):
        b.handler.write_acknowledgement(unsent, b"nope")
    relayer.acknowledge(a, packet_bytes, b"done")
    assert a.app.acknowledged == [(packet, b"done")]


@BOTH_ORDERS
def test_timeout_by_height(order: Order) -> None:
    relayer = connected(order)
    a, b, p = relayer.a, relayer.b, relayer.path
    deadline = Height(REVISION, b.height + 3)
    packet_bytes = relayer.send(a, b"too slow", timeout_height=deadline)
    packet = Packet.decode(packet_bytes)
    # Not yet timed out on B: A refuses the timeout (proof of absence at a height before it).
    proof, height, next_recv = relayer.timeout_proof(a, packet)
    with a.unchanged(), pytest.raises(IbcError, match="has not timed out"):
        a.handler.timeout_packet(packet, proof, height, next_recv)
    b.commit(3)  # B passes the timeout height with the packet unreceived
    height = relayer.update(b)
    proof = a.prove(host.packet_commitment_path(a.port, p.a_channel, 1))
    with b.unchanged(), pytest.raises(IbcError, match="timed out"):
        b.handler.recv_packet(packet, proof, height)
    relayer.timeout(a, packet_bytes)
    assert a.app.timed_out == [packet] and b.app.received == []
    assert a.store.get(host.packet_commitment_path(a.port, p.a_channel, 1)) is None
    expected = ChannelState.CLOSED if order is Order.ORDERED else ChannelState.OPEN
    assert a.handler.channel(a.port, p.a_channel).state is expected
    # The timed-out packet can no longer be acknowledged or timed out again.
    proof, height, next_recv = relayer.timeout_proof(a, packet)
    with a.unchanged(), pytest.raises(IbcError, match="no commitment"):
        a.handler.timeout_packet(packet, proof, height, next_recv)


@BOTH_ORDERS
def test_timeout_by_timestamp(order: Order) -> None:
    relayer = connected(order)
    a, b, p = relayer.a, relayer.b, relayer.path
    deadline = b.time_ns + 5 * BLOCK_TIME_NS
    packet_bytes = relayer.send(a, b"too slow", timeout_timestamp=deadline)
    packet = Packet.decode(packet_bytes)
    b.commit(6)
    assert b.time_ns >= deadline
    height = relayer.update(b)
    proof = a.prove(host.packet_commitment_path(a.port, p.a_channel, 1))
    with b.unchanged(), pytest.raises(IbcError, match="timed out"):
        b.handler.recv_packet(packet, proof, height)
    relayer.timeout(a, packet_bytes)
    assert a.app.timed_out == [packet]
    if order is Order.ORDERED:
        end = a.handler.channel(a.port, p.a_channel)
        assert end.state is ChannelState.CLOSED
        assert a.store.get(host.channel_path(a.port, p.a_channel)) == end_commitment(end)


def test_ordered_timeout_closes_the_channel_and_the_counterparty_can_confirm() -> None:
    relayer = connected(Order.ORDERED)
    a, b, p = relayer.a, relayer.b, relayer.path
    packet_bytes = relayer.send(a, b"x", timeout_height=Height(REVISION, b.height + 2))
    b.commit(2)
    relayer.timeout(a, packet_bytes)
    assert a.handler.channel(a.port, p.a_channel).state is ChannelState.CLOSED
    height = relayer.update(b)
    b.run(
        lambda h: h.chan_close_confirm(
            b.port, p.b_channel, a.prove(host.channel_path(a.port, p.a_channel)), height
        )
    )
    assert b.handler.channel(b.port, p.b_channel).state is ChannelState.CLOSED


def test_a_packet_received_before_its_ordered_channel_closed_can_still_be_acknowledged() -> None:
    relayer = connected(Order.ORDERED)
    a, b, p = relayer.a, relayer.b, relayer.path
    first = relayer.send(a, b"first")
    second = relayer.send(a, b"second", timeout_height=Height(REVISION, b.height + 3))
    assert relayer.deliver(a, first) == b"ok:first"
    b.commit(3)
    relayer.timeout(a, second)  # closes A's end
    assert a.handler.channel(a.port, p.a_channel).state is ChannelState.CLOSED
    relayer.acknowledge(a, first, b"ok:first")
    assert [x.data for x, _ in a.app.acknowledged] == [b"first"]
    assert [x.data for x in a.app.timed_out] == [b"second"]


def test_ordered_timeout_refused_once_received() -> None:
    relayer = connected(Order.ORDERED)
    a, b = relayer.a, relayer.b
    packet_bytes = relayer.send(a, b"x", timeout_height=Height(REVISION, b.height + 4))
    relayer.deliver(a, packet_bytes)
    b.commit(4)
    packet = Packet.decode(packet_bytes)
    proof, height, next_recv = relayer.timeout_proof(a, packet)
    assert next_recv == 2
    with a.unchanged(), pytest.raises(IbcError, match="was received"):
        a.handler.timeout_packet(packet, proof, height, next_recv)
    with a.unchanged(), pytest.raises(VerificationError):  # lying about the sequence
        a.handler.timeout_packet(packet, proof, height, 1)


def test_timeout_on_close() -> None:
    relayer = connected(Order.UNORDERED)
    a, b, p = relayer.a, relayer.b, relayer.path
    packet_bytes = relayer.send(a, b"in flight")
    packet = Packet.decode(packet_bytes)
    relayer.close_channel(b)
    height = relayer.update(a)
    receipt = host.packet_receipt_path(b.port, p.b_channel, 1)
    close_proof = b.prove(host.channel_path(b.port, p.b_channel))
    a.run(lambda h: h.timeout_on_close(packet, b.prove_absence(receipt), close_proof, height, 0))
    assert a.app.timed_out == [packet]


# ---------------------------------------------------------------------------- negatives


def _sent(order: Order = Order.UNORDERED) -> tuple[Relayer, Packet, bytes, Height]:
    """A packet sent by A, B's client of A updated; returns (relayer, packet, proof, height)."""
    relayer = connected(order)
    a, b = relayer.a, relayer.b
    packet = Packet.decode(relayer.send(a, b"payload"))
    height = relayer.update(b)
    path = host.packet_commitment_path(packet.source_port, packet.source_channel, 1)
    return relayer, packet, a.prove(path), height


def test_recv_with_an_altered_proof_is_refused() -> None:
    relayer, packet, proof, height = _sent()
    b = relayer.b
    for at in (0, 9, 20, len(proof) // 2, -1):
        with b.unchanged(), pytest.raises(VerificationError):
            b.handler.recv_packet(packet, flip(proof, at), height)
    with b.unchanged(), pytest.raises(VerificationError):
        b.handler.recv_packet(packet, proof[:-1], height)


def test_recv_with_a_proof_at_the_wrong_height_is_refused() -> None:
    relayer, packet, proof, height = _sent()
    a, b = relayer.a, relayer.b
    earlier = Height(REVISION, height.revision_height - 1)  # before the packet was committed
    with b.unchanged(), pytest.raises(VerificationError):
        b.handler.recv_packet(packet, proof, earlier)
    old_proof = a.prove_absence(host.packet_commitment_path(a.port, packet.source_channel, 1), 1)
    with b.unchanged(), pytest.raises(VerificationError):
        b.handler.recv_packet(packet, old_proof, Height(REVISION, 1))
    later = Height(REVISION, height.revision_height + 1)  # above the client's latest height
    with b.unchanged(), pytest.raises(IbcError, match="above the client's latest height"):
        b.handler.recv_packet(packet, proof, later)


def test_recv_with_a_proof_of_another_path_or_value_is_refused() -> None:
    relayer, packet, _, height = _sent()
    a, b = relayer.a, relayer.b
    wrong_path = a.prove(host.next_sequence_send_path(a.port, packet.source_channel))
    with b.unchanged(), pytest.raises(VerificationError, match="another path"):
        b.handler.recv_packet(packet, wrong_path, height)
    proof = a.prove(host.packet_commitment_path(a.port, packet.source_channel, 1))
    tampered = replace(packet, data=b"payload, altered")
    with b.unchanged(), pytest.raises(VerificationError, match="value"):
        b.handler.recv_packet(tampered, proof, height)


def test_recv_of_a_packet_never_sent_is_refused() -> None:
    relayer, packet, _, height = _sent()
    a, b = relayer.a, relayer.b
    ghost = replace(packet, sequence=2, data=b"ghost")
    path = host.packet_commitment_path(a.port, packet.source_channel, 2)
    with pytest.raises(KeyError):
        a.prove(path)
    with b.unchanged(), pytest.raises(VerificationError):
        b.handler.recv_packet(ghost, a.prove_absence(path), height)


@BOTH_ORDERS
def test_replayed_packet_is_refused(order: Order) -> None:
    relayer, packet, proof, height = _sent(order)
    b = relayer.b
    b.run(lambda h: h.recv_packet(packet, proof, height))
    assert len(b.app.received) == 1
    with b.unchanged(), pytest.raises(IbcError, match="already received"):
        b.handler.recv_packet(packet, proof, height)
    if order is Order.UNORDERED:
        assert b.store.get(host.packet_receipt_path(b.port, packet.destination_channel, 1)) == (
            RECEIPT
        )


def test_ordered_packets_must_arrive_in_order() -> None:
    relayer = connected(Order.ORDERED)
    a, b = relayer.a, relayer.b
    first, second = relayer.send(a, b"1"), relayer.send(a, b"2")
    height = relayer.update(b)
    packet = Packet.decode(second)
    proof = a.prove(host.packet_commitment_path(a.port, packet.source_channel, 2))
    with b.unchanged(), pytest.raises(IbcError, match="expects packet 1 next"):
        b.handler.recv_packet(packet, proof, height)
    relayer.deliver(a, first)
    relayer.deliver(a, second)
    assert [x.data for x in b.app.received] == [b"1", b"2"]


def test_recv_for_the_wrong_channel_is_refused() -> None:
    relayer, packet, proof, height = _sent()
    b = relayer.b
    impostor = replace(packet, source_channel="channel-42")
    with b.unchanged(), pytest.raises(IbcError, match="counterparty"):
        b.handler.recv_packet(impostor, proof, height)


def test_application_refusing_a_packet_changes_nothing() -> None:
    relayer, packet, proof, height = _sent()
    b = relayer.b
    b.app.ack_mode = "refuse"
    with b.unchanged(), pytest.raises(KakehashiError, match="refuses"):
        b.handler.recv_packet(packet, proof, height)
    b.app.ack_mode = "empty"
    before = b.snapshot()
    with pytest.raises(IbcError, match="non-empty"):
        b.handler.recv_packet(packet, proof, height)
    assert b.snapshot() == before
    b.app.received.clear()
    b.app.ack_mode = "sync"
    b.run(lambda h: h.recv_packet(packet, proof, height))  # still receivable afterwards


def test_ack_for_an_unsent_packet_is_refused() -> None:
    relayer = connected(Order.UNORDERED)
    a, b, p = relayer.a, relayer.b, relayer.path
    unsent = Packet(1, a.port, p.a_channel, b.port, p.b_channel, b"x", Height(REVISION, 10**9))
    height = relayer.update(a)
    with a.unchanged(), pytest.raises(IbcError, match="never sent"):
        a.handler.acknowledge_packet(unsent, b"ok:x", b"proof", height)


def test_ack_with_a_wrong_ack_or_proof_is_refused() -> None:
    relayer = connected(Order.UNORDERED)
    a, b = relayer.a, relayer.b
    packet_bytes = relayer.send(a, b"payload")
    relayer.deliver(a, packet_bytes)
    packet = Packet.decode(packet_bytes)
    height = relayer.update(a)
    proof = b.prove(host.ack_path(b.port, packet.destination_channel, 1))
    with a.unchanged(), pytest.raises(VerificationError, match="value"):
        a.handler.acknowledge_packet(packet, b"ok:forged", proof, height)
    with a.unchanged(), pytest.raises(VerificationError):
        a.handler.acknowledge_packet(packet, b"ok:payload", flip(proof, 30), height)
    altered = replace(packet, data=b"other")
    with a.unchanged(), pytest.raises(IbcError, match="not the packet that was sent"):
        a.handler.acknowledge_packet(altered, b"ok:payload", proof, height)
    a.run(lambda h: h.acknowledge_packet(packet, b"ok:payload", proof, height))
    with a.unchanged(), pytest.raises(IbcError, match="already acknowledged"):
        a.handler.acknowledge_packet(packet, b"ok:payload", proof, height)


def test_timeout_refused_for_a_received_packet_and_before_the_timeout() -> None:
    relayer = connected(Order.UNORDERED)
    a, b = relayer.a, relayer.b
    packet_bytes = relayer.send(a, b"x", timeout_height=Height(REVISION, b.height + 3))
    packet = Packet.decode(packet_bytes)
    relayer.deliver(a, packet_bytes)
    b.commit(3)
    height = relayer.update(a)
    receipt = host.packet_receipt_path(b.port, packet.destination_channel, 1)
    with pytest.raises(KeyError):  # the honest chain cannot prove the absence
        b.prove_absence(receipt)
    # ... and an absence proof from before the receipt is refused at this height.
    old = b.prove_absence(receipt, b.height - 5)
    with a.unchanged(), pytest.raises(VerificationError):
        a.handler.timeout_packet(packet, old, height, 0)
    early = Height(REVISION, b.height - 5)
    with a.unchanged(), pytest.raises((IbcError, VerificationError)):
        a.handler.timeout_packet(packet, old, early, 0)


def test_send_refuses_a_timeout_already_passed_on_the_counterparty() -> None:
    relayer = connected(Order.UNORDERED)
    a, b, p = relayer.a, relayer.b, relayer.path
    relayer.update(a)
    past = Height(REVISION, b.height)
    with a.unchanged(), pytest.raises(IbcError, match="already passed"):
        a.handler.send_packet(a.port, p.a_channel, past, 0, b"x")
    with a.unchanged(), pytest.raises(IbcError, match="already passed"):
        a.handler.send_packet(a.port, p.a_channel, Height(), b.time_ns - BLOCK_TIME_NS, b"x")
    with a.unchanged(), pytest.raises(IbcError, match="non-empty"):
        a.handler.send_packet(a.port, p.a_channel, Height(REVISION, 10**9), 0, b"")
    with a.unchanged(), pytest.raises(IbcError, match="timeout"):
        a.handler.send_packet(a.port, p.a_channel, Height(), 0, b"x")


def test_update_with_a_statement_from_another_key_is_refused() -> None:
    relayer = connected(Order.UNORDERED)
    a, b = relayer.a, relayer.b
    b.commit()
    with a.unchanged(), pytest.raises(VerificationError, match="trusted key"):
        a.handler.update_client(relayer.path.a_client, a.statement(), a.time_ns)
    with a.unchanged(), pytest.raises(VerificationError):
        a.handler.update_client(relayer.path.a_client, flip(b.statement(), 10), a.time_ns)


def test_memory_store_snapshot_restores_everything() -> None:
    relayer = connected(Order.UNORDERED)
    a = relayer.a
    snap = a.store.snapshot()
    relayer.send(a, b"x")
    assert a.store.snapshot() != snap
    a.store.restore(snap)
    assert a.store.snapshot() == snap
    store = MemoryStore()
    with pytest.raises(IbcError, match="32 bytes"):
        store.set(b"p", b"short")
    with pytest.raises(IbcError, match="all zero"):
        store.set(b"p", bytes(32))
