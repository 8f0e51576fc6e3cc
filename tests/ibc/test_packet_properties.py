"""Property: on UNORDERED channels, whatever a relayer does, every packet ends exactly once.

Random interleavings of sends (both ways, with height, timestamp or no practical timeout),
deliveries of any sent packet in any order with proofs from any height at which its
commitment existed (including replays and deliveries after a timeout), acknowledgements,
timeout attempts with absence proofs from any height the relayer can prove, and empty blocks.
Every rejected call must leave the host's store unchanged. After a final honest drain, each
packet is, on its source, acknowledged or timed out — exactly once, never both — and the
destination received exactly the acknowledged ones, each once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kakehashi.errors import IbcError, VerificationError
from kakehashi.ibc import host
from kakehashi.ibc.handler import IbcHandler
from kakehashi.ibc.types import Height, Order, Packet
from tests.ibc.support import BLOCK_TIME_NS, REVISION, Relayer, TestChain, connected

FAR = Height(REVISION, 10**12)


@dataclass
class Sent:
    src: TestChain
    dst: TestChain
    packet: Packet


def _attempt(chain: TestChain, call: Callable[[IbcHandler], object]) -> bool:
    """Run a call that may legitimately be refused; a refusal must change nothing."""
    before = chain.snapshot()
    try:
        chain.run(call)
    except (IbcError, VerificationError):
        assert chain.snapshot() == before, "a refused call changed the store"
        return False
    return True


def _prove_at(relayer: Relayer, dst: TestChain, src: TestChain, height: int) -> Height:
    """Make ``dst``'s client of ``src`` trust ``src``'s statement for ``height``."""
    stmt = src.statement(height)
    client_id = relayer.client_on(dst)
    return dst.run(lambda h: h.update_client(client_id, stmt, dst.time_ns))  # type: ignore[no-any-return]


def _heights_with(chain: TestChain, path: bytes, present: bool) -> list[int]:
    key_present = []
    for height in sorted(chain.roots):
        try:
            if present:
                chain.prove(path, height)
            else:
                chain.prove_absence(path, height)
        except KeyError:
            continue
        key_present.append(height)
    return key_present


def _receipt(sent: Sent) -> bytes:
    p = sent.packet
    return host.packet_receipt_path(p.destination_port, p.destination_channel, p.sequence)


def _commitment(sent: Sent) -> bytes:
    p = sent.packet
    return host.packet_commitment_path(p.source_port, p.source_channel, p.sequence)


def _deliver(relayer: Relayer, sent: Sent, pick: int) -> None:
    heights = _heights_with(sent.src, _commitment(sent), present=True)
    if not heights:
        return
    height = _prove_at(relayer, sent.dst, sent.src, heights[pick % len(heights)])
    proof = sent.src.prove(_commitment(sent), height.revision_height)
    _attempt(sent.dst, lambda h: h.recv_packet(sent.packet, proof, height))


def _acknowledge(relayer: Relayer, sent: Sent) -> None:
    p = sent.packet
    ack_path = host.ack_path(p.destination_port, p.destination_channel, p.sequence)
    height = _prove_at(relayer, sent.src, sent.dst, sent.dst.height)
    try:
        proof = sent.dst.prove(ack_path, height.revision_height)
    except KeyError:  # not received: the relayer tries a proof of something else
        proof = sent.dst.prove(
            host.next_sequence_send_path(p.destination_port, p.destination_channel),
            height.revision_height,
        )
    _attempt(sent.src, lambda h: h.acknowledge_packet(p, b"ok:" + p.data, proof, height))


def _timeout(relayer: Relayer, sent: Sent, pick: int) -> None:
    heights = _heights_with(sent.dst, _receipt(sent), present=False)
    height = _prove_at(relayer, sent.src, sent.dst, heights[pick % len(heights)])
    proof = sent.dst.prove_absence(_receipt(sent), height.revision_height)
    _attempt(sent.src, lambda h: h.timeout_packet(sent.packet, proof, height, 0))


def _send(relayer: Relayer, src: TestChain, kind: str, blocks: int, n: int) -> Sent | None:
    dst = relayer.other(src)
    timeout_height, timeout_ns = FAR, 0
    if kind == "height":
        timeout_height = Height(REVISION, dst.height + blocks)
    elif kind == "time":
        timeout_height, timeout_ns = Height(), dst.time_ns + blocks * BLOCK_TIME_NS
    channel = relayer.channel_on(src)
    data = f"{src.name}-{n}".encode()
    before = src.snapshot()
    try:
        packet: Packet = src.run(
            lambda h: h.send_packet(src.port, channel, timeout_height, timeout_ns, data)
        )
    except IbcError:  # the timeout had already passed as far as src knows
        assert src.snapshot() == before
        return None
    return Sent(src, dst, Packet.decode(packet.encode()))


#: Which height a relayer proves at: half the time one of the latest three, else any.
PICK = st.one_of(st.integers(-3, -1), st.integers(0, 50))

operation = st.one_of(
    st.tuples(
        st.just("send"),
        st.booleans(),
        st.sampled_from(["height", "time", "far"]),
        st.integers(1, 6),
    ),
    st.tuples(st.just("deliver"), st.integers(0, 50), PICK),
    st.tuples(st.just("ack"), st.integers(0, 50)),
    st.tuples(st.just("timeout"), st.integers(0, 50), PICK),
    st.tuples(st.just("blocks"), st.booleans(), st.integers(1, 4)),
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(operation, min_size=5, max_size=60))
def test_every_packet_ends_exactly_once(ops: list[tuple[object, ...]]) -> None:
    relayer = connected(Order.UNORDERED)
    a, b = relayer.a, relayer.b
    sent: list[Sent] = []
    for op in ops:
        match op:
            case ("send", bool(from_a), str(kind), int(blocks)):
                item = _send(relayer, a if from_a else b, kind, blocks, len(sent))
                if item is not None:
                    sent.append(item)
            case ("deliver", int(i), int(pick)) if sent:
                _deliver(relayer, sent[i % len(sent)], pick)
            case ("ack", int(i)) if sent:
                _acknowledge(relayer, sent[i % len(sent)])
            case ("timeout", int(i), int(pick)) if sent:
                _timeout(relayer, sent[i % len(sent)], pick)
            case ("blocks", bool(on_a), int(n)):
                (a if on_a else b).commit(n)

    # Honest drain: deliver what can still be delivered, time out the rest, relay every ack.
    for item in sent:
        if item.src.store.get(_commitment(item)) is None:
            continue
        if item.dst.store.get(_receipt(item)) is None:
            _deliver(relayer, item, -1)
        if item.dst.store.get(_receipt(item)) is None:
            item.dst.commit(8)  # past every height or time timeout the sends chose
            _timeout(relayer, item, -1)
        else:
            _acknowledge(relayer, item)

    for src in (a, b):
        dst = relayer.other(src)
        mine = [s.packet for s in sent if s.src is src]
        acked = [p for p, _ in src.app.acknowledged]
        timed_out = src.app.timed_out
        assert sorted(p.sequence for p in acked + timed_out) == [p.sequence for p in mine]
        assert not {p.sequence for p in acked} & {p.sequence for p in timed_out}
        received = [p.sequence for p in dst.app.received]
        assert len(received) == len(set(received)), "a packet was received twice"
        assert sorted(received) == sorted(p.sequence for p in acked)
        for packet in mine:
            path = host.packet_commitment_path(src.port, packet.source_channel, packet.sequence)
            assert src.store.get(path) is None
        for packet, ack in src.app.acknowledged:
            assert ack == b"ok:" + packet.data


# ---------------------------------------------------------------------------- ORDERED


def _timeout_ordered(relayer: Relayer, sent: Sent, pick: int, on_close: bool) -> None:
    """Try to time ``sent`` out with the destination's next receive sequence at any height
    (and, ``on_close``, the destination's channel end there)."""
    p = sent.packet
    nsr_path = host.next_sequence_recv_path(p.destination_port, p.destination_channel)
    heights = sorted(sent.dst.roots)
    chosen = heights[pick % len(heights)]
    value = sent.dst.value_at(nsr_path, chosen)
    if value is None:
        return
    height = _prove_at(relayer, sent.src, sent.dst, chosen)
    proof = sent.dst.prove(nsr_path, chosen)
    next_recv = int.from_bytes(value, "big")
    if not on_close:
        _attempt(sent.src, lambda h: h.timeout_packet(p, proof, height, next_recv))
        return
    close_proof = sent.dst.prove(
        host.channel_path(p.destination_port, p.destination_channel), chosen
    )
    _attempt(sent.src, lambda h: h.timeout_on_close(p, proof, close_proof, height, next_recv))


def _confirm_close(relayer: Relayer, closed: TestChain) -> None:
    """Relay ``closed``'s channel end to the other chain's chan_close_confirm (may be refused)."""
    other = relayer.other(closed)
    height = _prove_at(relayer, other, closed, closed.height)
    proof = closed.prove(host.channel_path(closed.port, relayer.channel_on(closed)))
    channel = relayer.channel_on(other)
    _attempt(other, lambda h: h.chan_close_confirm(other.port, channel, proof, height))


_ORDERED_OPS = {
    "send": st.tuples(
        st.just("send"), st.sampled_from(["height", "time", "far"]), st.integers(2, 6)
    ),
    "deliver": st.tuples(st.just("deliver"), st.integers(0, 50), PICK),
    "ack": st.tuples(st.just("ack"), st.integers(0, 50)),
    "timeout": st.tuples(st.just("timeout"), st.integers(0, 50), PICK, st.booleans()),
    "confirm_close": st.tuples(st.just("confirm_close"), st.booleans()),
    "blocks": st.tuples(st.just("blocks"), st.booleans(), st.integers(1, 4)),
}
# Weighted so that races between a delivery, the destination passing the timeout and a timeout
# attempt happen often, and acknowledgements (which end the race) less often.
ordered_operation = st.sampled_from(
    ["send"] * 3 + ["deliver"] * 3 + ["ack"] + ["timeout"] * 3 + ["confirm_close"] + ["blocks"] * 3
).flatmap(lambda kind: _ORDERED_OPS[kind])


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(ordered_operation, min_size=5, max_size=50))
def test_ordered_packets_end_exactly_once_in_order(ops: list[tuple[object, ...]]) -> None:
    """ORDERED, A → B: B receives a prefix of the sequence; A acknowledges exactly that prefix
    and times out the rest (the first timeout closes the channel; packets behind it end by
    timeout-on-close once B has confirmed the close)."""
    relayer = connected(Order.ORDERED)
    a, b = relayer.a, relayer.b
    sent: list[Sent] = []
    for op in ops:
        match op:
            case ("send", str(kind), int(blocks)):
                item = _send(relayer, a, kind, blocks, len(sent))
                if item is not None:
                    sent.append(item)
            case ("deliver", int(i), int(pick)) if sent:
                _deliver(relayer, sent[i % len(sent)], pick)
            case ("ack", int(i)) if sent:
                _acknowledge(relayer, sent[i % len(sent)])
            case ("timeout", int(i), int(pick), bool(on_close)) if sent:
                _timeout_ordered(relayer, sent[i % len(sent)], pick, on_close)
            case ("confirm_close", bool(from_a)):
                _confirm_close(relayer, a if from_a else b)
            case ("blocks", bool(on_a), int(n)):
                (a if on_a else b).commit(n)

    # Honest drain, in sequence order.
    nsr_path = host.next_sequence_recv_path(b.port, relayer.path.b_channel)
    for item in sent:
        if a.store.get(_commitment(item)) is None:
            continue
        if b.store.get(nsr_path) is not None and item.packet.sequence >= int.from_bytes(
            b.store.get(nsr_path) or b"", "big"
        ):
            _deliver(relayer, item, -1)
        received = item.packet.sequence < int.from_bytes(b.store.get(nsr_path) or b"", "big")
        if received:
            _acknowledge(relayer, item)
            continue
        if a.handler.channel(a.port, relayer.path.a_channel).state.name == "OPEN":
            b.commit(8)  # past every timeout the sends chose, unless "far"
            _timeout_ordered(relayer, item, -1, on_close=False)
        if a.store.get(_commitment(item)) is not None:  # closed, or a "far" timeout
            if a.handler.channel(a.port, relayer.path.a_channel).state.name == "OPEN":
                a.run(lambda h: h.chan_close_init(a.port, relayer.path.a_channel))
            _confirm_close(relayer, a)
            _timeout_ordered(relayer, item, -1, on_close=True)

    acked = [p.sequence for p, _ in a.app.acknowledged]
    timed_out = [p.sequence for p in a.app.timed_out]
    received = [p.sequence for p in b.app.received]
    everything = [s.packet.sequence for s in sent]
    assert sorted(acked + timed_out) == everything, "a packet did not end exactly once"
    assert received == acked == list(range(1, len(acked) + 1)), "not a prefix, in order"
    for item in sent:
        assert a.store.get(_commitment(item)) is None
