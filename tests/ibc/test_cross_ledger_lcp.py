"""IBC across the two ledgers with the REAL LCP path: the EVM chain verifies the Corda-model host
through the Vyper LCP client and a simulation enclave.

The EVM chain runs the Vyper IBC handler with the echo app on port ``echo`` and the LCP client
(``contracts/lightclients/lcp_client.vy``, client type ``lcp``, development mode trusting the
enclave's simulation root); one node of the Corda-model network runs a
:class:`~kakehashi.ibc.corda_host.CordaIbcHost` with a Python app on port ``pyecho`` and its real
QBFT client of the chain. The enclave key is registered on the chain from the enclave's simulated
AVR (checked on-chain), the client is created from the enclave's create-client message, every
update is the enclave's signed UpdateState after it verified the host's attestation, and every
proof the handler takes is the enclave's signed VerifyMembership statement over a real Corda
host proof (:class:`~tests.ibc.lcp_support.LcpAttestor`). The relayer carries bytes only; every
negative is refused by the EVM handler and leaves the chain as it was.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import coincurve
import pytest
from eth_utils import keccak, to_checksum_address

from kakehashi.errors import KakehashiError, TransactionRevertedError
from kakehashi.ibc import host as paths
from kakehashi.ibc.commitment import end_commitment
from kakehashi.ibc.types import ChannelState, ConnectionState, Height, Order, Packet
from kakehashi.lcp import messages
from kakehashi.lcp.evm_client import client_message
from kakehashi.lcp.messages import UpdateStateProxyMessage, VerifyMembershipProxyMessage
from kakehashi.ledgers.corda.node.setup import EmbeddedNetwork
from kakehashi.ledgers.evm.chain import EmbeddedChain
from tests.ibc.cross_support import CORDA_PORT, EVM_PORT, Endpoint, EvmEndpoint
from tests.ibc.lcp_support import (
    KEY_EXPIRATION_S,
    LcpAttestor,
    LcpEvmEndpoint,
    LcpRelayer,
    build_lcp,
)


@pytest.fixture
def relayer(tmp_path: Path) -> Iterator[LcpRelayer]:
    network = EmbeddedNetwork.create(tmp_path / "corda")
    try:
        with EmbeddedChain() as chain:
            yield build_lcp(chain, network, tmp_path / "lcp")
    finally:
        network.close()


def parts(relayer: LcpRelayer) -> tuple[LcpEvmEndpoint, LcpAttestor]:
    assert isinstance(relayer.evm, LcpEvmEndpoint)
    assert isinstance(relayer.attestor, LcpAttestor)
    return relayer.evm, relayer.attestor


def connected(relayer: LcpRelayer, order: Order, initiator: str = "evm") -> tuple[str, str]:
    side = relayer.evm if initiator == "evm" else relayer.corda
    relayer.open_connection(side)
    relayer.open_channel(side, order)
    return relayer.channel["evm"], relayer.channel["corda"]


@contextmanager
def rejected_by(side: Endpoint, match: str | None = None) -> Iterator[None]:
    """Refused by ``side`` (a revert on the chain, an error on the Corda host) and ``side``
    exactly as before (EVM: head block, handler storage, app counters, LCP client's latest
    height and storage)."""
    error = TransactionRevertedError if isinstance(side, EvmEndpoint) else KakehashiError
    before = side.state()
    with pytest.raises(error, match=match):
        yield
    assert side.state() == before, f"{side.name} changed"


NS = 1_000_000_000


def echo_ack(data: bytes) -> bytes:
    return b"echo:" + hashlib.sha256(data).digest()


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]


# ------------------------------------------------------------------------------ setup


def test_the_evm_client_of_the_corda_host_is_the_lcp_client(relayer: LcpRelayer) -> None:
    """Created from the enclave's create-client message; the enclave key registered from its
    simulated AVR (checked on-chain) until attestation time + key expiration."""
    evm, attestor = parts(relayer)
    init = attestor.init_message()
    assert not init.has_prev_state()
    assert evm.lcp_latest() == Height(0, init.post_height.revision_height)
    consensus = evm.lcp.functions.consensus_state(
        evm.client_id, (init.post_height.revision_number, init.post_height.revision_height)
    ).call()
    assert consensus[1] == init.post_state_id
    key = evm.lcp.functions.enclave_keys(
        evm.client_id, to_checksum_address(attestor.enclave.address)
    ).call()
    attested_s = attestor.enclave.attestation().attested_at_ns // NS
    assert key[0] == attested_s + KEY_EXPIRATION_S  # registered until attestation + expiration
    assert evm.lcp.functions.status(evm.client_id).call() == 0


# ------------------------------------------------------------------------------ handshakes


@pytest.mark.parametrize("initiator", ["evm", "corda"])
def test_handshakes_initiated_from_either_ledger(relayer: LcpRelayer, initiator: str) -> None:
    """Connection and channel handshakes: every TRY / ACK / CONFIRM on the chain verified the
    Corda host's end through the LCP client (the enclave's signed update and statement)."""
    evm, attestor = parts(relayer)
    corda = relayer.corda
    first = evm if initiator == "evm" else corda
    relayer.open_connection(first)
    relayer.open_channel(first, Order.UNORDERED)
    conn, chan = relayer.connection, relayer.channel
    for side in (evm, corda):
        other = relayer.other(side)
        end = side.connection(conn[side.name])
        assert end is not None and end.state is ConnectionState.OPEN
        assert end.counterparty.client_id == other.client_id
        assert end.counterparty.connection_id == conn[other.name]
        assert side.value(paths.connection_path(conn[side.name])) == end_commitment(end)
        chan_end = side.channel(chan[side.name])
        assert chan_end is not None and chan_end.state is ChannelState.OPEN
        assert chan_end.counterparty.channel_id == chan[other.name]
        assert side.value(paths.channel_path(side.port, chan[side.name])) == end_commitment(
            chan_end
        )
    assert evm.client_id.startswith("lcp-client-")
    # what the chain verified about the Corda host, the enclave signed: updates and statements
    assert {kind for kind, _, _ in attestor.signed} == {"update", "membership"}
    assert evm.lcp_latest() == attestor.latest_height() <= corda.height()
    assert evm.app.functions.open_channels().call() == 1


# ------------------------------------------------------------------------------ packets


@pytest.mark.parametrize("order", [Order.UNORDERED, Order.ORDERED], ids=["unordered", "ordered"])
def test_packets_both_ways_with_acknowledgements(relayer: LcpRelayer, order: Order) -> None:
    evm, corda = relayer.evm, relayer.corda
    chan_e, chan_c = connected(relayer, order)

    sent = [relayer.send(evm, b"to corda %d" % i) for i in (1, 2)]
    for i, packet_bytes in enumerate(sent, start=1):
        ack = relayer.deliver(corda, packet_bytes)
        assert ack == b"ok:to corda %d" % i
        relayer.acknowledge(evm, packet_bytes, ack)  # the Corda ack proven through LCP
    assert evm.app.functions.acknowledged().call() == 2
    assert evm.app.functions.last_ack().call() == b"ok:to corda 2"

    back = [relayer.send(corda, b"to the chain %d" % i) for i in (1, 2)]
    for packet_bytes in back:
        ack = relayer.deliver(evm, packet_bytes)  # the commitment proven through LCP
        assert ack == echo_ack(Packet.decode(packet_bytes).data)
        relayer.acknowledge(corda, packet_bytes, ack)
    assert evm.app.functions.received().call() == 2
    assert [p.encode() for p, _ in corda.app.acknowledged] == back
    assert corda.value(paths.packet_commitment_path(CORDA_PORT, chan_c, 1)) is None
    assert evm.value(paths.packet_commitment_path(EVM_PORT, chan_e, 1)) is None


# ------------------------------------------------------------------------------ timeouts


def test_timeouts_by_height_both_ways(relayer: LcpRelayer) -> None:
    evm, corda = relayer.evm, relayer.corda
    chan_e, chan_c = connected(relayer, Order.UNORDERED)

    # Corda → EVM, timing out at block n + 3: refused by the chain, its timeout proven on Corda
    deadline = Height(0, evm.height().revision_height + 3)
    late = relayer.send(corda, b"late for the chain", timeout_height=deadline)
    packet = Packet.decode(late)
    evm.mine(3)
    statement, height = relayer.proof(evm, paths.packet_commitment_path(CORDA_PORT, chan_c, 1))
    with rejected_by(evm, "packet timed out"):
        evm.recv(packet, statement, height)
    relayer.timeout(corda, late)
    assert corda.app.timed_out == [packet]
    assert corda.value(paths.packet_commitment_path(CORDA_PORT, chan_c, 1)) is None
    assert evm.app.functions.received().call() == 0

    # EVM → Corda, timing out at Corda version v + 2: the receipt's absence proven to the
    # chain by the enclave's non-membership statement
    deadline = Height(0, corda.height().revision_height + 2)
    late = relayer.send(evm, b"late for corda", timeout_height=deadline)
    packet = Packet.decode(late)
    proof, height = relayer.proof(corda, paths.packet_commitment_path(EVM_PORT, chan_e, 1))
    with rejected_by(corda, "timed out at height"):  # its next version is the deadline
        corda.recv(packet, proof, height)
    statement, height = relayer.proof(evm, paths.packet_receipt_path(CORDA_PORT, chan_c, 1))
    assert height < deadline
    with rejected_by(evm, "packet timeout not reached"):
        evm.timeout(packet, statement, height, 0)
    relayer.update(corda)  # the Corda host moves on
    relayer.timeout(evm, late)
    assert evm.app.functions.timed_out().call() == 1
    assert evm.value(paths.packet_commitment_path(EVM_PORT, chan_e, 1)) is None
    assert corda.app.received == []


# ------------------------------------------------------------------------------ security


def _statement(signed_message: bytes) -> VerifyMembershipProxyMessage:
    decoded = messages.decode(signed_message)
    assert isinstance(decoded, VerifyMembershipProxyMessage)
    return decoded


def test_the_chain_refuses_what_the_enclave_did_not_sign(relayer: LcpRelayer) -> None:
    """Unregistered key, altered proxy message, altered signature, an old update replayed, a
    statement at a height the client does not hold, an altered packet: each refused by the EVM
    handler, nothing changed; then the genuine statement goes through."""
    evm, attestor = parts(relayer)
    corda = relayer.corda
    _, chan_c = connected(relayer, Order.UNORDERED)
    packet = Packet.decode(relayer.send(corda, b"ship 1"))
    path = paths.packet_commitment_path(CORDA_PORT, chan_c, packet.sequence)
    height = relayer.update(evm)
    value = corda.value(path, height)
    assert value is not None
    signed = attestor.membership_signed(height, corda.prove(path, height), path, value)
    assert _statement(signed.message).value == keccak(value)

    # the genuine statement, signed by a key no AVR attested
    stranger = coincurve.PrivateKey(keccak(b"not an attested enclave key"))
    forged = stranger.sign_recoverable(keccak(signed.message), hasher=None)
    with rejected_by(evm, "not a registered enclave key"):
        evm.recv(packet, client_message(signed.message, [forged]), height)
    # an altered proxy message (the value hash: the signature no longer recovers the key)
    message = bytearray(signed.message)
    message[-1] ^= 1
    with rejected_by(evm, "not a registered enclave key"):
        evm.recv(packet, client_message(bytes(message), [signed.signature]), height)
    # an altered signature: r changed (no key, or another key, recovers), v out of range
    with rejected_by(evm, "invalid signature|not a registered enclave key"):
        evm.recv(packet, client_message(signed.message, [flip(signed.signature, 5)]), height)
    with rejected_by(evm, "bad signature v"):
        bad_v = signed.signature[:64] + bytes([5])
        evm.recv(packet, client_message(signed.message, [bad_v]), height)
    # an altered packet under the genuine statement
    for altered in (
        replace(packet, data=b"ship 1000"),
        replace(packet, timeout_height=Height(0, packet.timeout_height.revision_height + 1)),
    ):
        with rejected_by(evm, "value mismatch"):
            evm.recv(altered, attestor.wrap(signed), height)
    # the genuine statement, claimed at another height
    with rejected_by(evm, "height mismatch"):
        evm.recv(packet, attestor.wrap(signed), Height(0, height.revision_height - 1))

    # a statement at a height the chain's client does not hold: the enclave updated its own
    # client, the relayer did not pass the update on
    relayer.send(corda, b"ship 2")  # the host moves on
    newer, update = attestor.update_signed(corda.header(corda.height()))
    assert newer > evm.lcp_latest()
    ahead = attestor.membership_signed(newer, corda.prove(path, newer), path, value)
    with rejected_by(evm, "unknown height"):
        evm.recv(packet, attestor.wrap(ahead), newer)

    # an old update replayed: the enclave's create-client message is refused; an UpdateState
    # the client already applied is a harmless no-op (latest height and stored states as before)
    with rejected_by(evm, "unknown previous height"):
        evm.update_client(attestor.wrap(attestor.init), 0)
    first = attestor.updates[0]
    replayed = messages.decode(first.message)
    assert isinstance(replayed, UpdateStateProxyMessage)
    assert replayed.post_height.revision_height < height.revision_height
    before = evm.state()
    evm.update_client(attestor.wrap(first), 0)
    after = evm.state()
    assert (after[1], after[2], after[3:]) == (before[1], before[2], before[3:])

    # the genuine path still works, and the packet is then received once only
    evm.update_client(attestor.wrap(update), 0)
    assert evm.lcp_latest() == newer
    assert evm.recv(packet, attestor.wrap(ahead), newer) == echo_ack(b"ship 1")
    with rejected_by(evm, "already received"):
        evm.recv(packet, attestor.wrap(ahead), newer)
    assert evm.app.functions.received().call() == 1


def test_the_enclave_signs_nothing_for_a_tampered_corda_proof(relayer: LcpRelayer) -> None:
    _, attestor = parts(relayer)
    corda = relayer.corda
    connected(relayer, Order.UNORDERED)
    path = paths.connection_path(relayer.connection["corda"])
    height = relayer.update(relayer.evm)
    value = corda.value(path, height)
    assert value is not None
    proof = corda.prove(path, height)
    made = attestor.enclave.signatures_made
    for bad_proof, bad_value in (
        (flip(proof, len(proof) // 2), value),
        (flip(proof, len(proof) - 1), value),
        (proof, flip(value, 0)),
    ):
        with pytest.raises(KakehashiError):
            attestor.membership_signed(height, bad_proof, path, bad_value)
    with pytest.raises(KakehashiError):  # a present value claimed absent
        attestor.non_membership_signed(height, proof, path)
    tampered = bytearray(corda.header(corda.height()))
    tampered[len(tampered) // 2] ^= 1
    with pytest.raises(KakehashiError):
        attestor.update_signed(bytes(tampered))
    assert attestor.enclave.signatures_made == made
