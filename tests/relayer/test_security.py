"""A malicious relayer against both ledgers of a path (:mod:`tests.relayer.support`).

The relayer is trusted by neither ledger (:mod:`kakehashi.relayer.path`): everything it submits
is an UpdateState or a VerifyMembership statement the LCP enclave signed, checked by the
destination's LCP client against the enclave keys registered from attestation evidence. Each
test here is a relayer that builds its messages from the same pieces as
:class:`~kakehashi.relayer.path.PathRelayer` (the enclave's signed messages, the source's
packets) and then forges, alters or replays them; every attack is made against both
destinations (the EVM chain, with the Corda host as source, and the Corda host, with the EVM
chain as source). Each is refused by the destination ledger — its endpoint answers
:class:`~kakehashi.relayer.chains.Failed` with the ledger's typed error, or
:class:`~kakehashi.relayer.chains.AlreadyRelayed` where that is the honest answer — and leaves
the destination exactly as it was (:func:`ledger_state`); then the honest message goes through,
so each refusal is owed to the attack alone.

An update replayed to the Corda host used to change none of its state but still make a new,
empty host version (the handler wrote the unchanged client back); the host now counts an
unchanged client as no write, and the replay test holds for both ledgers.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from eth_hash.auto import keccak

from kakehashi.errors import KakehashiError
from kakehashi.ibc import host as paths
from kakehashi.ibc import msgs
from kakehashi.ibc.clients import lcp as lcp_ibc_client
from kakehashi.ibc.types import Height, Order, Packet
from kakehashi.lcp import evm_client, messages
from kakehashi.lcp.client import LcpServiceClient
from kakehashi.lcp.enclave import Attestation
from kakehashi.ledgers.evm import toolchain
from kakehashi.ledgers.evm.chain import dev_accounts
from kakehashi.lightclients.lcp import decode_commitment_proof, encode_commitment_proof
from kakehashi.relayer.chains import (
    AlreadyRelayed,
    CordaEndpoint,
    EvmEndpoint,
    Failed,
    Outcome,
    Submitted,
)
from kakehashi.relayer.link import link
from kakehashi.relayer.path import Direction, PathRelayer, Side
from tests.ibc.test_cross_ledger_lcp import flip
from tests.relayer.support import GAS, PORT, VERSION, World, world

TO_EVM, TO_CORDA = "corda->evm", "evm->corda"
DESTINATIONS = pytest.mark.parametrize("towards", [TO_EVM, TO_CORDA])


# ------------------------------------------------------------------------------ the ledgers


def ledger_state(w: World, side: Side) -> tuple[Any, ...]:
    """Everything a refused message must leave as it was on ``side``'s ledger.

    EVM chain: the IBC handler's and the LCP client's storage roots at the latest block, the
    echo app's counters and the LCP client's latest height (a refused transaction still mines
    a block, so the block number is no part of it). Corda host: its height, version and
    sparse-Merkle root, the echo module's counters and its LCP client's latest height (a
    refused batch makes no host version).
    """
    client = side.endpoint.client_latest_height(side.client_id)
    if isinstance(side.endpoint, EvmEndpoint):
        roots = tuple(
            bytes(w.w3.eth.get_proof(address, [], "latest")["storageHash"])
            for address in (w.deployment.handler, w.deployment.lcp_client)
        )
        return ("evm", roots, w.evm_counters(), client)
    assert isinstance(side.endpoint, CordaEndpoint)
    host = w.host
    return ("corda", host.height, host.version, host.smt_root, counters(w, side), client)


def counters(w: World, side: Side) -> dict[str, int]:
    """What the echo application on ``side``'s ledger received, saw acknowledged, timed out."""
    if isinstance(side.endpoint, EvmEndpoint):
        return w.evm_counters()
    echo = w.echo
    return {
        "received": echo.received,
        "acknowledged": echo.acknowledged,
        "timed_out": echo.timed_out,
    }


def received(w: World, side: Side) -> int:
    return counters(w, side)["received"]


# ------------------------------------------------------------------------------ the attacker


@dataclass
class Attacker:
    """A relayer of ``direction`` that submits what it likes to the destination: PathRelayer's
    own steps (enclave updates and statements), each available to be tampered with."""

    w: World
    relayer: PathRelayer
    direction: Direction

    @classmethod
    def of(cls, w: World, relayer: PathRelayer, towards: str) -> Attacker:
        return cls(w, relayer, next(d for d in relayer.directions() if str(d) == towards))

    @property
    def src(self) -> Side:
        return self.direction.src

    @property
    def dst(self) -> Side:
        return self.direction.dst

    def state(self) -> tuple[Any, ...]:
        return ledger_state(self.w, self.dst)

    def client_height(self) -> Height:
        return self.dst.endpoint.client_latest_height(self.dst.client_id)

    def send(self, data: bytes, timeout_height: Height | None = None) -> Packet:
        """A packet sent on the source by its application (towards the destination)."""
        if isinstance(self.src.endpoint, EvmEndpoint):
            return self.w.send_from_evm(data, timeout_height)
        return self.w.send_from_corda(data, timeout_height)

    def update(self) -> tuple[Height, msgs.MsgUpdateClient]:
        """The enclave's signed update of the destination's client to the source's latest
        height (not submitted)."""
        height, update = self.relayer.update(self.direction)
        assert update is not None, "the source has not moved since the last update"
        return height, update

    def updated(self) -> Height:
        """Submit an honest update; the height the destination's client is now at."""
        height, update = self.update()
        self.accepted(update)
        assert self.client_height() == height
        return height

    def commitment_proof(self, packet: Packet, height: Height) -> bytes:
        """The enclave's statement of ``packet``'s commitment on the source at ``height``."""
        path = paths.packet_commitment_path(
            packet.source_port, packet.source_channel, packet.sequence
        )
        proof, value = self.relayer.prove(self.direction, path, height)
        assert value is not None
        return proof

    def submit(self, msg: msgs.Msg) -> Outcome:
        [outcome] = self.dst.endpoint.submit([msg])
        return outcome

    def accepted(self, msg: msgs.Msg) -> Any:
        outcome = self.submit(msg)
        assert isinstance(outcome, Submitted), outcome
        return outcome.value

    def refused(self, msg: msgs.Msg, match: dict[str, str]) -> Failed:
        """Submit ``msg``: the destination refuses it with its typed error (matching
        ``match[destination name]``) and is exactly as before."""
        before = self.state()
        outcome = self.submit(msg)
        assert isinstance(outcome, Failed), outcome
        assert isinstance(outcome.error, KakehashiError)
        assert re.search(match[self.dst.name], str(outcome.error)), outcome.error
        assert self.state() == before, f"{self.dst.name} changed"
        return outcome

    def wrap_update(self, message: bytes, signature: bytes) -> msgs.MsgUpdateClient:
        """An update of the destination's client carrying ``message`` under ``signature``."""
        body = encode_commitment_proof(message, [signature])
        return msgs.MsgUpdateClient(self.dst.client_id, self.dst.update_tag + body)

    def unwrap_update(self, update: msgs.MsgUpdateClient) -> tuple[bytes, bytes]:
        """(signed proxy message, signature) of an update this attacker built."""
        tag = self.dst.update_tag
        assert update.client_message.startswith(tag)
        message, signatures = decode_commitment_proof(update.client_message[len(tag) :])
        [signature] = signatures
        return message, signature


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as built:
        yield built


# What each destination says when it refuses (its typed error's message).
VALUE_MISMATCH = {"evm": "LCP: value mismatch", "corda": "does not prove that value"}
NOT_SIGNED = {
    "evm": "LCP: (signer is not a registered enclave key|invalid signature|bad signature v)",
    "corda": "(is not an enclave key registered|no secp256k1 public key recovers|v must be|"
    "not an LCP proxy message|LCP statement is (about state|for height))",
}
WRONG_HEIGHT = {
    "evm": "LCP: height mismatch",
    "corda": "(LCP statement is for height|above the client's latest height)",
}


def stranger_signature(message: bytes) -> bytes:
    """``message`` signed by a key no attestation vouches for."""
    return messages.sign_message(message, keccak(b"a key no enclave attested"))


# ------------------------------------------------------------------------------ 1-3: packets


@DESTINATIONS
def test_an_altered_packet_is_refused_under_its_genuine_proof(w: World, towards: str) -> None:
    """Attack 1: the packet's data (or timeout) is not what the source committed; the proof
    is the genuine statement of the committed packet."""
    attacker = Attacker.of(w, w.link(), towards)
    packet = attacker.send(b"pay 10 to alice")
    height = attacker.updated()
    proof = attacker.commitment_proof(packet, height)
    for altered in (
        replace(packet, data=b"pay 10000 to mallory"),
        replace(packet, timeout_height=Height(0, packet.timeout_height.revision_height + 1)),
    ):
        attacker.refused(msgs.MsgRecvPacket(altered, proof, height), VALUE_MISMATCH)
    assert received(w, attacker.dst) == 0
    attacker.accepted(msgs.MsgRecvPacket(packet, proof, height))
    assert received(w, attacker.dst) == 1


@DESTINATIONS
def test_an_altered_proof_is_refused(w: World, towards: str) -> None:
    """Attack 2: the signed VerifyMembership message altered (a field re-encoded, or a byte
    flipped) under the enclave's signature; the signature altered (a byte of r or s flipped,
    v out of range); the genuine message signed by a key no attestation registered."""
    attacker = Attacker.of(w, w.link(), towards)
    packet = attacker.send(b"ship 1")
    height = attacker.updated()
    proof = attacker.commitment_proof(packet, height)
    message, [signature] = decode_commitment_proof(proof)
    statement = messages.decode(message)
    assert isinstance(statement, messages.VerifyMembershipProxyMessage)
    # the signed statement says something else: another value, state, height; or its bytes no
    # longer decode
    forged = [
        encode_commitment_proof(messages.encode(altered), [signature])
        for altered in (
            replace(statement, value=keccak(b"another commitment")),
            replace(statement, state_id=flip(statement.state_id, 0)),
            replace(statement, height=replace(statement.height, revision_height=1)),
        )
    ]
    forged.append(encode_commitment_proof(flip(message, len(message) // 2), [signature]))
    # the signature altered: r, s, an out-of-range v; or another key's
    forged += [encode_commitment_proof(message, [flip(signature, at)]) for at in (5, 40)]
    forged.append(encode_commitment_proof(message, [signature[:64] + bytes([5])]))
    forged.append(encode_commitment_proof(message, [stranger_signature(message)]))
    for bad in forged:
        attacker.refused(msgs.MsgRecvPacket(packet, bad, height), NOT_SIGNED)
    attacker.accepted(msgs.MsgRecvPacket(packet, proof, height))
    assert received(w, attacker.dst) == 1


@DESTINATIONS
def test_a_genuine_proof_at_another_height_is_refused(w: World, towards: str) -> None:
    """Attack 3: the genuine statement claimed at another proof height: one the destination's
    client holds (an earlier update) and one it does not."""
    attacker = Attacker.of(w, w.link(), towards)
    earlier = attacker.client_height()
    packet = attacker.send(b"ship 2")
    height = attacker.updated()
    assert earlier < height
    proof = attacker.commitment_proof(packet, height)
    for other in (earlier, Height(0, height.revision_height + 1)):
        attacker.refused(msgs.MsgRecvPacket(packet, proof, other), WRONG_HEIGHT)
    attacker.accepted(msgs.MsgRecvPacket(packet, proof, height))


# ------------------------------------------------------------------------------ 4-5: updates


@DESTINATIONS
def test_an_altered_or_foreign_update_is_refused(w: World, towards: str) -> None:
    """Attack 4: the enclave's UpdateState with its post state id or post height changed under
    the enclave's signature, and the genuine UpdateState signed by a key no attestation
    registered."""
    attacker = Attacker.of(w, w.link(), towards)
    attacker.send(b"moves the source on")
    height, update = attacker.update()
    message, signature = attacker.unwrap_update(update)
    state = messages.decode(message)
    assert isinstance(state, messages.UpdateStateProxyMessage)
    ahead = replace(state.post_height, revision_height=state.post_height.revision_height + 1000)
    for altered in (
        replace(state, post_state_id=flip(state.post_state_id, 0)),
        replace(state, post_height=ahead),
    ):
        attacker.refused(attacker.wrap_update(messages.encode(altered), signature), NOT_SIGNED)
    attacker.refused(attacker.wrap_update(message, stranger_signature(message)), NOT_SIGNED)
    assert attacker.client_height() < height
    attacker.accepted(update)
    assert attacker.client_height() == height


@DESTINATIONS
def test_a_replayed_packet_is_already_relayed_and_changes_nothing(w: World, towards: str) -> None:
    """Attack 5 (packets): a delivered packet submitted again, with its genuine proof, is
    already relayed: the application does not see it twice and nothing changes."""
    attacker = Attacker.of(w, w.link(), towards)
    packet = attacker.send(b"deliver me once")
    height = attacker.updated()
    recv = msgs.MsgRecvPacket(packet, attacker.commitment_proof(packet, height), height)
    attacker.accepted(recv)
    assert received(w, attacker.dst) == 1
    for _ in range(2):
        before = attacker.state()
        outcome = attacker.submit(recv)
        assert isinstance(outcome, AlreadyRelayed), outcome
        assert attacker.state() == before
    assert received(w, attacker.dst) == 1


@pytest.mark.parametrize("towards", [TO_EVM, TO_CORDA])
def test_a_replayed_update_changes_nothing(w: World, towards: str) -> None:
    """Attack 5 (updates): updates the client already applied — an older one and the latest —
    submitted again never move the client back; whether the ledger ignores or refuses them,
    nothing changes."""
    attacker = Attacker.of(w, w.link(), towards)
    attacker.send(b"moves the source on")
    first_height, first = attacker.update()
    attacker.accepted(first)
    attacker.send(b"moves the source on again")
    second_height, second = attacker.update()
    attacker.accepted(second)
    assert first_height < second_height
    for old in (first, second):
        before = attacker.state()
        outcome = attacker.submit(old)
        assert not isinstance(outcome, AlreadyRelayed), outcome
        assert attacker.client_height() == second_height  # never back to first_height
        after = attacker.state()
        if towards == TO_CORDA:  # what holds on the Corda host: its store and its client
            assert (after[3], after[4], after[5]) == (before[3], before[4], before[5])
        assert after == before, f"{attacker.dst.name} changed"


# ------------------------------------------------------------------------------ 6: ordering


@DESTINATIONS
def test_an_ordered_channel_refuses_a_packet_ahead_of_its_turn(w: World, towards: str) -> None:
    """Attack 6: on an ORDERED channel, packet 2 delivered (with its genuine proof) before
    packet 1 is refused; then 1 and 2 in order are received."""
    attacker = Attacker.of(w, w.link(Order.ORDERED), towards)
    first, second = attacker.send(b"first"), attacker.send(b"second")
    height = attacker.updated()
    recv = {
        p.sequence: msgs.MsgRecvPacket(p, attacker.commitment_proof(p, height), height)
        for p in (first, second)
    }
    attacker.refused(
        recv[2], {"evm": "packet out of order", "corda": "expects packet 1 next, not 2"}
    )
    assert received(w, attacker.dst) == 0
    attacker.accepted(recv[1])
    attacker.accepted(recv[2])
    assert received(w, attacker.dst) == 2
    assert attacker.dst.endpoint.next_sequence_recv(PORT, attacker.dst.channel_id) == 3


# ------------------------------------------------------------------------------ 8: timeouts


@DESTINATIONS
def test_a_timed_out_packet_is_not_received_and_times_out_on_its_source(
    w: World, towards: str
) -> None:
    """Attack 8: a packet past its timeout height on the destination, delivered with its
    genuine proof, is refused; the honest relayer then proves its timeout on the source."""
    relayer = w.link()
    attacker = Attacker.of(w, relayer, towards)
    deadline = Height(0, attacker.dst.endpoint.latest_height().revision_height + 1)
    packet = attacker.send(b"too late", timeout_height=deadline)
    height = attacker.updated()  # the destination reaches the deadline with this update
    assert attacker.dst.endpoint.latest_height() >= deadline
    proof = attacker.commitment_proof(packet, height)
    attacker.refused(
        msgs.MsgRecvPacket(packet, proof, height),
        {"evm": r"packet timed out \(height\)", "corda": "timed out at height"},
    )

    report = relayer.relay_once()
    back = str(Direction(attacker.dst, attacker.src))
    assert report.timed_out == {back: 1} and not report.failed
    assert received(w, attacker.dst) == 0
    assert counters(w, attacker.src)["timed_out"] == 1
    path = paths.packet_commitment_path(packet.source_port, packet.source_channel, packet.sequence)
    assert attacker.src.endpoint.value(path) is None


# ------------------------------------------------------------------------------ 7: key expiry

KEY_EXPIRATION_S = 10
"""The clients' key expiration in the expiry test: long enough to link and to have the key
sign an update and a proof for each ledger, short enough to wait out."""
NS = 1_000_000_000


def mine_block(w: World) -> None:
    """One more EVM block (a self-transfer from a dev account no test otherwise uses)."""
    sender = dev_accounts()[5]
    w3 = w.w3
    tx = {
        "to": sender.address,
        "value": 0,
        "gas": 21_000,
        "maxFeePerGas": 10**10,
        "maxPriorityFeePerGas": 1,
        "nonce": w3.eth.get_transaction_count(sender.address, "pending"),
        "chainId": w3.eth.chain_id,
    }
    tx_hash = w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction)
    assert w3.eth.wait_for_transaction_receipt(tx_hash)["status"] == 1


def register_key(w: World, relayer: PathRelayer, attestation: Attestation) -> None:
    """Register the attested enclave key on both ledgers' LCP clients (as linking does)."""
    evidence = attestation.evidence()
    for side in (relayer.a, relayer.b):
        if isinstance(side.endpoint, EvmEndpoint):
            contract = w.w3.eth.contract(
                address=w.deployment.lcp_client,
                abi=toolchain.compile_contract(evm_client.LCP_CLIENT_CONTRACT).abi,
            )
            evm_client.register_enclave_key(
                contract, side.client_id, evidence, sender=dev_accounts()[0], gas=GAS
            )
        else:
            message = lcp_ibc_client.encode_register_enclave_key(
                evidence.avr, evidence.signature, evidence.signing_cert
            )
            side.endpoint.update_client(side.client_id, message)


def test_what_an_expired_enclave_key_signed_is_refused(w: World) -> None:
    """Attack 7: an update and a proof signed by the enclave key while it was valid, submitted
    after it expired, on both ledgers (each by its own clock: the EVM chain's block time, the
    Corda host's version time). The path is linked with a key expiration of
    ``KEY_EXPIRATION_S``; after the refusals a freshly attested key relays the same packets."""
    expiring = w.enclave.rotate()  # attested now: linking registers it on both ledgers
    relayer = w.relayer()
    with LcpServiceClient(w.lcp_url) as lcp:
        w.record = link(relayer, lcp, version=VERSION, key_expiration_s=KEY_EXPIRATION_S)
    expires_s = expiring.attested_at_ns // NS + KEY_EXPIRATION_S
    attackers = [Attacker.of(w, relayer, towards) for towards in (TO_EVM, TO_CORDA)]
    signed: list[tuple[Attacker, msgs.MsgRecvPacket, msgs.MsgUpdateClient]] = []
    for attacker in attackers:
        packet = attacker.send(b"signed before expiry")
        held = attacker.updated()  # the key still valid
        proof = attacker.commitment_proof(packet, held)
        message, [signature] = decode_commitment_proof(proof)
        assert messages.recover_signer(message, signature) == expiring.address
        recv = msgs.MsgRecvPacket(packet, proof, held)
        attacker.send(b"moves the source on")
        _, update = attacker.update()
        signed.append((attacker, recv, update))
    assert time.time() < expires_s, f"too slow: the key expired before use ({KEY_EXPIRATION_S} s)"

    time.sleep(max(0.0, expires_s + 1 - time.time()))
    # a block past the expiry first: the EVM client replays a failed transaction on its parent
    # block to read the revert reason, which must be past the expiry too
    mine_block(w)
    expired = {"evm": "LCP: enclave key expired", "corda": "expired at .* register a freshly"}
    for attacker, recv, update in signed:
        attacker.refused(recv, expired)
        attacker.refused(update, expired)
        assert received(w, attacker.dst) == 0

    register_key(w, relayer, w.enclave.rotate())
    report = relayer.relay_once()
    assert report.received == {TO_CORDA: 2, TO_EVM: 2} and not report.failed
