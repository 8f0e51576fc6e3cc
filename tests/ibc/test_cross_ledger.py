"""IBC across the two ledgers: the embedded EVM chain ↔ the embedded Corda-model network.

The EVM chain runs the Vyper IBC handler with the echo app on port ``echo``; one node of the
Corda-model network runs a :class:`~kakehashi.ibc.corda_host.CordaIbcHost` with a Python app on
port ``pyecho``. The Corda host verifies the chain through the real QBFT client (block headers,
``eth_getProof`` proofs); the chain verifies the Corda host through the TEST-ONLY signed client,
whose statements are signed (by :class:`~tests.ibc.cross_support.CordaAttestor`, the stand-in
for the next issue's LCP enclave) only after the real Corda light client has verified the host's
attestation or proof. The relayer (:class:`~tests.ibc.cross_support.CrossRelayer`) carries bytes
only. Every negative is rejected by the receiving ledger and leaves it exactly as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
import rlp
from eth_utils import keccak

from kakehashi.errors import KakehashiError, TransactionRevertedError, VerificationError
from kakehashi.ibc import host as paths
from kakehashi.ibc.commitment import ack_commitment, end_commitment, packet_commitment_of
from kakehashi.ibc.evm_host import sign_test_membership
from kakehashi.ibc.types import (
    DEFAULT_VERSION,
    ChannelState,
    ConnectionCounterparty,
    ConnectionState,
    Height,
    Order,
    Packet,
)
from kakehashi.ledgers.corda.model.serialization import serialize
from kakehashi.ledgers.corda.node.setup import EmbeddedNetwork
from kakehashi.ledgers.evm.chain import EmbeddedChain
from kakehashi.ledgers.evm.client import transact
from kakehashi.lightclients.corda import decode_commitment_proof
from tests.ibc.cross_support import (
    CORDA_PORT,
    EVM_PORT,
    GAS,
    CordaEndpoint,
    CrossRelayer,
    Endpoint,
    EvmEndpoint,
    build,
)

NS = 1_000_000_000


@pytest.fixture
def relayer(tmp_path: Path) -> Iterator[CrossRelayer]:
    network = EmbeddedNetwork.create(tmp_path / "corda")
    try:
        with EmbeddedChain() as chain:
            yield build(chain, network)
    finally:
        network.close()


def connected(relayer: CrossRelayer, order: Order, initiator: str = "evm") -> tuple[str, str]:
    """An open connection and channel (both initiated by ``initiator``): (EVM's, Corda's) ids."""
    side = relayer.evm if initiator == "evm" else relayer.corda
    relayer.open_connection(side)
    relayer.open_channel(side, order)
    return relayer.channel["evm"], relayer.channel["corda"]


@contextmanager
def rejected_by(side: Endpoint, match: str | None = None) -> Iterator[None]:
    """The block must be refused by ``side`` (a revert on the EVM chain, an error and no new
    version on the Corda host), and ``side`` must be exactly as before: head block, handler
    storage root and app counters (EVM); host version, root and app callbacks (Corda)."""
    error = TransactionRevertedError if isinstance(side, EvmEndpoint) else KakehashiError
    before = side.state()
    with pytest.raises(error, match=match):
        yield
    assert side.state() == before, f"{side.name} changed"


def echo_ack(data: bytes) -> bytes:
    import hashlib

    return b"echo:" + hashlib.sha256(data).digest()


def _abi_packet(p: Packet) -> tuple[object, ...]:
    timeout = (p.timeout_height.revision_number, p.timeout_height.revision_height)
    return (
        p.sequence,
        p.source_port,
        p.source_channel,
        p.destination_port,
        p.destination_channel,
        p.data,
        timeout,
        p.timeout_timestamp,
    )


def flip(proof: bytes, at: int) -> bytes:
    return proof[:at] + bytes([proof[at] ^ 1]) + proof[at + 1 :]


# ------------------------------------------------------------------------------ handshakes


@pytest.mark.parametrize("initiator", ["evm", "corda"])
def test_handshakes_initiated_from_either_ledger(relayer: CrossRelayer, initiator: str) -> None:
    """Connection and an UNORDERED channel initiated by one ledger, an ORDERED channel by the
    other; each TRY / ACK / CONFIRM verified the counterparty's end through its client."""
    evm, corda = relayer.evm, relayer.corda
    first = evm if initiator == "evm" else corda
    conn_first, conn_second = relayer.open_connection(first)
    conn = {first.name: conn_first, relayer.other(first).name: conn_second}
    for side in (evm, corda):
        other = relayer.other(side)
        end = side.connection(conn[side.name])
        assert end is not None and end.state is ConnectionState.OPEN
        assert end.versions == (DEFAULT_VERSION,)
        assert end.counterparty == ConnectionCounterparty(
            other.client_id, conn[other.name], other.prefix
        )
        # what each ledger committed is what the other verified
        assert side.value(paths.connection_path(conn[side.name])) == end_commitment(end)

    for opener, order in ((first, Order.UNORDERED), (relayer.other(first), Order.ORDERED)):
        chan_opener, chan_other = relayer.open_channel(opener, order)
        chan = {opener.name: chan_opener, relayer.other(opener).name: chan_other}
        for side in (evm, corda):
            other = relayer.other(side)
            chan_end = side.channel(chan[side.name])
            assert chan_end is not None and chan_end.state is ChannelState.OPEN
            assert (chan_end.ordering, chan_end.version) == (order, "echo-1")
            assert (chan_end.counterparty.port_id, chan_end.counterparty.channel_id) == (
                other.port,
                chan[other.name],
            )
            assert side.value(paths.channel_path(side.port, chan[side.name])) == end_commitment(
                chan_end
            )
    assert evm.app.functions.open_channels().call() == 2
    assert [e for e, _ in corda.app.events].count("open_try") == 1
    # each ledger's client of the other is at a height the other really reached
    assert corda.host.handler.client(corda.client_id).latest_height() <= evm.height()
    assert relayer.attestor.client.latest_height() <= corda.height()


def test_a_non_zero_delay_period_is_refused_by_both_hosts(relayer: CrossRelayer) -> None:
    evm, corda = relayer.evm, relayer.corda
    to_corda = ConnectionCounterparty(corda.client_id, "", corda.prefix)
    to_evm = ConnectionCounterparty(evm.client_id, "", evm.prefix)
    with rejected_by(evm, "delay period not supported"):
        evm.conn_open_init(to_corda, delay=1)
    with rejected_by(corda, "delay period"):
        corda.conn_open_init(to_evm, delay=1)
    # TRY: a proven INIT end with a delay cannot exist on either side, so the refusal is
    # checked before any proof
    conn_e = evm.conn_open_init(to_corda)
    proof, height = relayer.proof(corda, paths.connection_path(conn_e))
    counterparty = ConnectionCounterparty(evm.client_id, conn_e, evm.prefix)
    with rejected_by(corda, "delay period"):
        corda.conn_open_try(counterparty, (DEFAULT_VERSION,), proof, height, delay=5)
    conn_c = corda.conn_open_init(to_evm)
    proof, height = relayer.proof(evm, paths.connection_path(conn_c))
    counterparty = ConnectionCounterparty(corda.client_id, conn_c, corda.prefix)
    with rejected_by(evm, "delay period not supported"):
        evm.conn_open_try(counterparty, (DEFAULT_VERSION,), proof, height, delay=5)
    # with delay 0 the same TRY goes through
    assert evm.conn_open_try(counterparty, (DEFAULT_VERSION,), proof, height)


# ------------------------------------------------------------------------------ packets


@pytest.mark.parametrize("order", [Order.UNORDERED, Order.ORDERED], ids=["unordered", "ordered"])
def test_packets_both_ways_with_acknowledgements(relayer: CrossRelayer, order: Order) -> None:
    evm, corda = relayer.evm, relayer.corda
    chan_e, chan_c = connected(relayer, order)

    # EVM → Corda, two packets, acknowledged on the chain
    sent = [relayer.send(evm, b"to corda %d" % i) for i in (1, 2)]
    for i, packet_bytes in enumerate(sent, start=1):
        ack = relayer.deliver(corda, packet_bytes)
        assert ack == b"ok:to corda %d" % i
        relayer.acknowledge(evm, packet_bytes, ack)
    assert [p.encode() for p in corda.app.received] == sent
    assert evm.app.functions.acknowledged().call() == 2
    assert evm.app.functions.last_ack().call() == b"ok:to corda 2"
    for seq in (1, 2):
        assert evm.value(paths.packet_commitment_path(EVM_PORT, chan_e, seq)) is None
        assert corda.value(paths.ack_path(CORDA_PORT, chan_c, seq)) == ack_commitment(
            b"ok:to corda %d" % seq
        )

    # Corda → EVM, acknowledged on the Corda host
    back = relayer.send(corda, b"to the chain")
    packet = Packet.decode(back)
    assert (packet.source_port, packet.destination_port) == (CORDA_PORT, EVM_PORT)
    ack = relayer.deliver(evm, back)
    assert ack == echo_ack(b"to the chain")
    relayer.acknowledge(corda, back, ack)
    assert corda.app.acknowledged == [(packet, ack)]
    assert corda.value(paths.packet_commitment_path(CORDA_PORT, chan_c, 1)) is None
    assert evm.app.functions.received().call() == 1

    if order is Order.ORDERED:
        assert corda.value(paths.next_sequence_recv_path(CORDA_PORT, chan_c)) == (3).to_bytes(
            32, "big"
        )
        # an ORDERED channel refuses a packet ahead of its next sequence, on either ledger
        third, fourth = relayer.send(evm, b"3"), relayer.send(evm, b"4")
        proof, height = relayer.proof(
            corda, paths.packet_commitment_path(EVM_PORT, chan_e, Packet.decode(fourth).sequence)
        )
        with rejected_by(corda, "expects packet 3"):
            corda.recv(Packet.decode(fourth), proof, height)
        relayer.deliver(corda, third)
        relayer.deliver(corda, fourth)
        later = [relayer.send(corda, b"a"), relayer.send(corda, b"b")]
        proof, height = relayer.proof(
            evm, paths.packet_commitment_path(CORDA_PORT, chan_c, Packet.decode(later[1]).sequence)
        )
        with rejected_by(evm):
            evm.recv(Packet.decode(later[1]), proof, height)
        for packet_bytes in later:
            relayer.deliver(evm, packet_bytes)
        assert evm.app.functions.received().call() == 3


# ------------------------------------------------------------------------------ timeouts


def test_timeouts_by_height_both_ways(relayer: CrossRelayer) -> None:
    evm, corda = relayer.evm, relayer.corda
    chan_e, chan_c = connected(relayer, Order.UNORDERED)

    # EVM → Corda, timing out at Corda height v + 2
    deadline = Height(0, corda.height().revision_height + 2)
    late = relayer.send(evm, b"late for corda", timeout_height=deadline)
    packet = Packet.decode(late)
    proof, height = relayer.proof(corda, paths.packet_commitment_path(EVM_PORT, chan_e, 1))
    with rejected_by(corda, "timed out at height"):  # its next version is the deadline
        corda.recv(packet, proof, height)
    receipt = paths.packet_receipt_path(CORDA_PORT, chan_c, 1)
    proof, height = relayer.proof(evm, receipt)
    assert height < deadline
    with rejected_by(evm, "packet timeout not reached"):
        evm.timeout(packet, proof, height, 0)
    relayer.update(corda)  # the Corda host moves on (one more version)
    relayer.timeout(evm, late)
    assert evm.app.functions.timed_out().call() == 1
    assert evm.value(paths.packet_commitment_path(EVM_PORT, chan_e, 1)) is None
    assert corda.app.received == []

    # Corda → EVM, timing out at block n + 3
    deadline = Height(0, evm.height().revision_height + 3)
    late = relayer.send(corda, b"late for the chain", timeout_height=deadline)
    packet = Packet.decode(late)
    receipt = paths.packet_receipt_path(EVM_PORT, chan_e, 1)
    proof, height = relayer.proof(corda, receipt)
    with rejected_by(corda, "has not timed out"):
        corda.timeout(packet, proof, height, 0)
    evm.mine(3)
    proof, height = relayer.proof(evm, paths.packet_commitment_path(CORDA_PORT, chan_c, 1))
    with rejected_by(evm, "packet timed out"):
        evm.recv(packet, proof, height)
    relayer.timeout(corda, late)
    assert corda.app.timed_out == [packet]
    assert corda.value(paths.packet_commitment_path(CORDA_PORT, chan_c, 1)) is None
    assert evm.app.functions.received().call() == 0
    # a timed-out packet stays refused: neither ledger receives it any more
    proof, height = relayer.proof(evm, paths.packet_commitment_path(CORDA_PORT, chan_c, 1))
    with rejected_by(evm):
        evm.recv(packet, proof, height)


def test_timeouts_by_timestamp_both_ways(relayer: CrossRelayer) -> None:
    evm, corda = relayer.evm, relayer.corda
    chan_e, chan_c = connected(relayer, Order.UNORDERED)

    # EVM → Corda: the Corda host's time (notary-vouched) passes the deadline
    deadline = corda.clock() + 8 * NS
    late = relayer.send(evm, b"late for corda", timeout_timestamp=deadline)
    packet = Packet.decode(late)
    receipt = paths.packet_receipt_path(CORDA_PORT, chan_c, 1)
    proof, height = relayer.proof(evm, receipt)
    with rejected_by(evm, "packet timeout not reached"):
        evm.timeout(packet, proof, height, 0)
    corda.clock.skew_ns += 10 * NS
    proof, height = relayer.proof(corda, paths.packet_commitment_path(EVM_PORT, chan_e, 1))
    with rejected_by(corda, "timed out at"):
        corda.recv(packet, proof, height)
    relayer.timeout(evm, late)
    assert evm.app.functions.timed_out().call() == 1
    assert corda.app.received == []

    # Corda → EVM: the chain's block time passes the deadline
    deadline = evm.timestamp_ns() + 3 * NS
    late = relayer.send(corda, b"late for the chain", timeout_timestamp=deadline)
    packet = Packet.decode(late)
    receipt = paths.packet_receipt_path(EVM_PORT, chan_e, 1)
    proof, height = relayer.proof(corda, receipt)
    with rejected_by(corda, "has not timed out"):
        corda.timeout(packet, proof, height, 0)
    while evm.timestamp_ns() < deadline:
        evm.mine()
    proof, height = relayer.proof(evm, paths.packet_commitment_path(CORDA_PORT, chan_c, 1))
    with rejected_by(evm, "packet timed out"):
        evm.recv(packet, proof, height)
    relayer.timeout(corda, late)
    assert corda.app.timed_out == [packet]
    assert evm.app.functions.received().call() == 0


@pytest.mark.parametrize("source", ["evm", "corda"])
def test_ordered_timeout_closes_the_channel_then_the_other_end(
    relayer: CrossRelayer, source: str
) -> None:
    """A packet timing out on an ORDERED channel closes its source's end; the destination then
    closes its end on the proof of CLOSED; the packet received before still ends with its ack."""
    connected(relayer, Order.ORDERED)
    src = relayer.evm if source == "evm" else relayer.corda
    dst = relayer.other(src)
    on_time = relayer.send(src, b"on time")
    ack = relayer.deliver(dst, on_time)
    assert ack is not None
    deadline = Height(0, dst.height().revision_height + 3)
    late = relayer.send(src, b"late", timeout_height=deadline)
    if dst is relayer.evm:
        relayer.evm.mine(3)
    else:
        for _ in range(3):  # a new header each time: re-sending one makes no host version
            relayer.evm.mine(1)
            relayer.update(relayer.corda)
    packet = Packet.decode(late)
    proof, height, next_recv = relayer.timeout_proof(src, packet)
    assert next_recv == 2 and height >= deadline
    # claiming the destination had received it (a next sequence past it) does not verify
    with rejected_by(src):
        src.timeout(packet, proof, height, 3)
    src.timeout(packet, proof, height, next_recv)
    closed = src.channel(relayer.channel[src.name])
    assert closed is not None and closed.state is ChannelState.CLOSED
    assert src.value(paths.channel_path(src.port, relayer.channel[src.name])) == end_commitment(
        closed
    )
    with rejected_by(src):
        relayer.send(src, b"after close")
    # the other end closes on the proof of the CLOSED end
    relayer.close_confirm(dst)
    end = dst.channel(relayer.channel[dst.name])
    assert end is not None and end.state is ChannelState.CLOSED
    # the packet received before the timeout still ends, with its acknowledgement
    relayer.acknowledge(src, on_time, ack)
    assert src.value(paths.packet_commitment_path(src.port, relayer.channel[src.name], 1)) is None
    if isinstance(src, EvmEndpoint):
        assert src.app.functions.acknowledged().call() == 1
        assert src.app.functions.timed_out().call() == 1
    else:
        assert isinstance(src, CordaEndpoint)
        assert (len(src.app.acknowledged), len(src.app.timed_out)) == (1, 1)


@pytest.mark.parametrize("initiator", ["evm", "corda"])
def test_channel_close(relayer: CrossRelayer, initiator: str) -> None:
    connected(relayer, Order.UNORDERED)
    first = relayer.evm if initiator == "evm" else relayer.corda
    second = relayer.other(first)
    # CLOSE_CONFIRM before the other end closed: the proof of CLOSED does not exist
    channel_path = paths.channel_path(first.port, relayer.channel[first.name])
    if second is relayer.corda:
        proof, height = relayer.proof(second, channel_path)
    else:  # the attestor will not sign a CLOSED end the Corda host never committed
        height = relayer.update(second)
        corda_proof = relayer.corda.prove(channel_path, height)
        open_end = relayer.corda.channel(relayer.channel["corda"])
        assert open_end is not None
        claimed = end_commitment(replace(open_end, state=ChannelState.CLOSED))
        with pytest.raises(VerificationError):
            relayer.attestor.membership(height, corda_proof, channel_path, claimed)
        # what it does sign (the OPEN end) is not what CLOSE_CONFIRM needs
        proof = relayer.attestor.membership(
            height, corda_proof, channel_path, end_commitment(open_end)
        )
    with rejected_by(second):
        second.chan_close_confirm(relayer.channel[second.name], proof, height)
    relayer.close_channel(first)
    for side in (first, second):
        end = side.channel(relayer.channel[side.name])
        assert end is not None and end.state is ChannelState.CLOSED
    with rejected_by(first):
        relayer.send(first, b"after close")
    with rejected_by(second):
        relayer.send(second, b"after close")
    assert relayer.evm.app.functions.closed_channels().call() == 1
    assert [e for e, _ in relayer.corda.app.events if e.startswith("close")] == [
        "close_init" if first is relayer.corda else "close_confirm"
    ]


# ------------------------------------------------------------------------------ negatives


def test_the_corda_host_rejects_what_the_chain_did_not_commit(relayer: CrossRelayer) -> None:
    """The Corda host, verifying the chain through its QBFT client: an altered header or proof,
    a proof at the wrong height or of the wrong path, an altered packet, a replay, a second
    receive of the same sequence and an acknowledgement of a packet it never sent are refused,
    and each refusal leaves the host at the same version and root."""
    evm, corda = relayer.evm, relayer.corda
    chan_e, chan_c = connected(relayer, Order.UNORDERED)
    before_send = relayer.update(corda)
    packet_bytes = relayer.send(evm, b"pay 100")
    packet = Packet.decode(packet_bytes)
    path = paths.packet_commitment_path(EVM_PORT, chan_e, packet.sequence)

    # a forged header (another state root): the validators' seals no longer match
    fields = rlp.decode(evm.header(evm.height()))
    fields[3] = keccak(b"another state root")
    with rejected_by(corda, "seal"):
        corda.update_client(rlp.encode(fields), relayer.now_ns())
    proof, height = relayer.proof(corda, path)
    with rejected_by(corda):  # an altered proof (last storage node)
        corda.recv(packet, flip(proof, len(proof) - 40), height)
    with rejected_by(corda):  # the right proof claimed at an earlier (verified) height
        corda.recv(packet, proof, before_send)
    with rejected_by(corda, "update the client first"):  # a height never verified
        corda.recv(packet, proof, Height(0, height.revision_height + 5))
    with rejected_by(corda):  # the chain's proof at the earlier height: not committed yet
        corda.recv(packet, evm.prove(path, before_send), before_send)
    other_path = paths.packet_commitment_path(EVM_PORT, chan_e, packet.sequence + 1)
    channel_path = paths.channel_path(EVM_PORT, chan_e)
    for wrong in (other_path, channel_path):  # a proof of another path
        with rejected_by(corda):
            corda.recv(packet, evm.prove(wrong, height), height)
    altered = replace(packet, data=b"pay 999")
    with rejected_by(corda):
        corda.recv(altered, proof, height)
    assert corda.value(paths.packet_receipt_path(CORDA_PORT, chan_c, 1)) is None

    ack = corda.recv(packet, proof, height)
    assert ack == b"ok:pay 100" and corda.app.received == [packet]
    with rejected_by(corda, "already received"):  # replayed: the same bytes again
        corda.recv(packet, proof, height)
    proof, height = relayer.proof(corda, path)  # re-proven at a later height
    with rejected_by(corda, "already received"):
        corda.recv(packet, proof, height)

    # acknowledgements of packets the Corda host never sent
    back = Packet.decode(relayer.send(corda, b"sent"))
    evm_ack = relayer.deliver(evm, back.encode())
    assert evm_ack is not None
    ack_path = paths.ack_path(EVM_PORT, chan_e, back.sequence)
    proof, height = relayer.proof(corda, ack_path)
    never_sent = replace(back, sequence=back.sequence + 1)
    for unsent in (never_sent, replace(back, data=b"not sent")):
        with rejected_by(corda, "never sent|not the packet that was sent"):
            corda.acknowledge(unsent, evm_ack, proof, height)
    with rejected_by(corda):  # a different acknowledgement than the chain committed
        corda.acknowledge(back, b"forged", proof, height)
    corda.acknowledge(back, evm_ack, proof, height)
    with rejected_by(corda, "never sent"):  # acknowledged once only
        corda.acknowledge(back, evm_ack, proof, height)


def test_the_chain_rejects_what_the_corda_host_did_not_commit(relayer: CrossRelayer) -> None:
    """The chain, verifying the Corda host through statements of the attestor (the LCP
    stand-in): the attestor signs nothing the Corda light client rejects (an altered
    attestation or proof, a proof at the wrong height or of the wrong path, a value the host did
    not commit), and the chain reverts, unchanged, on an altered statement, a statement at the
    wrong height, of the wrong path or by another key, an altered packet, a replay, a second
    receive of the same sequence and an acknowledgement of a packet it never sent."""
    evm, corda, attestor = relayer.evm, relayer.corda, relayer.attestor
    chan_e, chan_c = connected(relayer, Order.UNORDERED)
    before_send = relayer.update(evm)
    packet = Packet.decode(relayer.send(corda, b"ship 5"))
    path = paths.packet_commitment_path(CORDA_PORT, chan_c, packet.sequence)
    value = packet_commitment_of(packet)

    # -- the attestor refuses whatever the Corda light client rejects
    signed = list(attestor.signed)
    attestation = corda.header(corda.height())
    for bad in (flip(attestation, len(attestation) // 2), flip(attestation, len(attestation) - 5)):
        with pytest.raises(KakehashiError):
            attestor.update(bad)
    height = relayer.update(evm)
    corda_proof = corda.prove(path, height)
    decoded = decode_commitment_proof(corda_proof)
    altered_smt = serialize(replace(decoded, smt_proof=flip(decoded.smt_proof, 40)))
    refused = [
        (height, flip(corda_proof, len(corda_proof) - 3), path, value),  # altered signature
        (height, altered_smt, path, value),  # altered sparse-Merkle proof
        (before_send, corda.prove(path, before_send), path, value),  # not committed yet there
        (before_send, corda_proof, path, value),  # the proof of another height
        (height, corda.prove(paths.channel_path(CORDA_PORT, chan_c), height), path, value),
        (height, corda_proof, paths.channel_path(CORDA_PORT, chan_c), value),  # wrong path
        (height, corda_proof, path, packet_commitment_of(replace(packet, data=b"x"))),
    ]
    signed = list(attestor.signed)
    for at, proof, claimed_path, claimed in refused:
        with pytest.raises(KakehashiError):
            attestor.membership(at, proof, claimed_path, claimed)
    with pytest.raises(KakehashiError):  # the commitment is there: absence is not signed
        attestor.non_membership(height, corda_proof, path)
    assert attestor.signed == signed, "the attestor signed something the light client rejected"

    # -- the chain refuses statements that do not match what it verifies
    statement = attestor.membership(height, corda_proof, path, value)
    with rejected_by(evm):  # an altered statement
        evm.recv(packet, flip(statement, 10), height)
    with rejected_by(evm):  # a statement of another height the client knows
        evm.recv(packet, statement, before_send)
    with rejected_by(evm):  # a height the client was never updated to
        evm.recv(packet, statement, Height(0, height.revision_height + 1))
    channel_path = paths.channel_path(CORDA_PORT, chan_c)
    other = attestor.membership(
        height, corda.prove(channel_path, height), channel_path, corda.value(channel_path) or b""
    )
    with rejected_by(evm):  # a statement about another path
        evm.recv(packet, other, height)
    forged = sign_test_membership(
        b"\x01" * 32, evm.client_id, height, corda.prefix, path, value
    )  # not the key the client trusts
    with rejected_by(evm):
        evm.recv(packet, forged, height)
    with rejected_by(evm):  # an altered packet
        evm.recv(replace(packet, data=b"ship 500"), statement, height)
    # mined anyway (no eth_call first): the transaction reverts in its block, the handler's
    # storage and the app are untouched
    (_, storage_root, counters) = evm.state()
    call = evm.ibc.handler.functions.recv_packet(
        _abi_packet(packet), forged, (height.revision_number, height.revision_height)
    )
    with pytest.raises(TransactionRevertedError, match="reverted in transaction"):
        transact(evm.ibc.w3, call, sender=evm.sender, gas=GAS)
    assert evm.state()[1:] == (storage_root, counters)
    assert evm.value(paths.packet_receipt_path(EVM_PORT, chan_e, 1)) is None

    ack = evm.recv(packet, statement, height)
    assert ack == echo_ack(b"ship 5")
    with rejected_by(evm, "already received"):  # replayed
        evm.recv(packet, statement, height)
    statement, height = relayer.proof(evm, path)  # re-proven at a later height
    with rejected_by(evm, "already received"):
        evm.recv(packet, statement, height)

    # acknowledgements of packets the chain never sent
    sent = Packet.decode(relayer.send(evm, b"sent"))
    corda_ack = relayer.deliver(corda, sent.encode())
    assert corda_ack is not None
    ack_path = paths.ack_path(CORDA_PORT, chan_c, sent.sequence)
    statement, height = relayer.proof(evm, ack_path)
    for unsent in (replace(sent, sequence=sent.sequence + 1), replace(sent, data=b"not sent")):
        with rejected_by(
            evm, "packet not sent or already settled|packet does not match its commitment"
        ):
            evm.acknowledge(unsent, corda_ack, statement, height)
    with rejected_by(evm):  # another acknowledgement than the Corda host committed
        evm.acknowledge(sent, b"forged", statement, height)
    evm.acknowledge(sent, corda_ack, statement, height)
    with rejected_by(evm, "packet not sent or already settled"):
        evm.acknowledge(sent, corda_ack, statement, height)


def test_the_attestor_signs_nothing_once_the_corda_operator_equivocates(
    relayer: CrossRelayer,
) -> None:
    """An operator that publishes a second host state for a version it already published (by
    consuming another of its states: the notary cannot tell) is caught by the Corda light
    client the attestor runs: it freezes, and from then on nothing is signed for the chain."""
    from kakehashi.ibc.corda_host import HostAdvance, IbcHostState
    from kakehashi.ledgers.corda.merkle import ComponentGroup
    from kakehashi.ledgers.corda.model.crypto import random_bytes
    from kakehashi.ledgers.corda.model.states import Command, TimeWindow, TransactionState
    from kakehashi.ledgers.corda.model.transactions import SignedTransaction, WireTransaction
    from kakehashi.ledgers.corda.tokens.flows import issue_tokens
    from kakehashi.ledgers.corda.tokens.model import TokenType
    from kakehashi.lightclients.corda import HOST_CONTRACT, HostStateAttestation

    evm, corda, attestor = relayer.evm, relayer.corda, relayer.attestor
    height = relayer.update(evm)
    operator = corda.host.node
    spare = issue_tokens(operator, TokenType("SPARE", 0), 1, operator.party)
    real = corda.host.host_state
    fake = IbcHostState(
        real.operator, real.linear_id, real.version, b"\x42" * 32, real.timestamp_ns
    )
    micros = fake.timestamp_ns // 1000
    wtx = WireTransaction.create(
        privacy_salt=random_bytes(32),
        inputs=[spare.tx.out_ref(0).ref],
        outputs=[TransactionState(fake, HOST_CONTRACT, corda.host.notary)],
        commands=[Command(HostAdvance(fake.version), (operator.party.owning_key,))],
        notary=corda.host.notary,
        time_window=TimeWindow(micros - 10_000_000, micros + 10_000_000),
    )
    stx = operator.sign(SignedTransaction(wtx, ()))
    notary_signature = operator.notarise(stx)
    shown = {ComponentGroup.INPUTS, ComponentGroup.NOTARY, ComponentGroup.TIMEWINDOW}
    tear_off = wtx.filtered(lambda g, _i, _d: g in shown or g == ComponentGroup.OUTPUTS)
    forged = serialize(HostStateAttestation(notary_signature, stx.sigs[0], tear_off))

    signed = list(attestor.signed)
    with pytest.raises(VerificationError, match="frozen"):
        attestor.update(forged)  # it verifies, but conflicts with the version already known
    assert attestor.client.state.frozen
    path = paths.connection_path("connection-0")
    with pytest.raises(VerificationError, match="frozen"):
        attestor.update(corda.header(corda.height()))
    with pytest.raises(VerificationError, match="frozen"):
        attestor.non_membership(height, corda.prove(path, height), path)
    assert attestor.signed == signed
