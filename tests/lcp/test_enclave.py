"""The simulation LCP enclave: sealed keys, simulated attestation, and signed statements that the
LCP light client accepts about a REAL embedded EVM chain and a REAL Corda-model host.

The end-to-end tests run :class:`~kakehashi.ibc.evm_host.EvmIbcHost` on an
:class:`~kakehashi.ledgers.evm.chain.EmbeddedChain` and a
:class:`~kakehashi.ibc.corda_host.CordaIbcHost` on an
:class:`~kakehashi.ledgers.corda.node.setup.EmbeddedNetwork` (both from
``tests.ibc.cross_support.build``), write a connection commitment on each, and have a
:mod:`kakehashi.lightclients.lcp` client register the enclave key from its simulated AVR, be
created from the enclave's create-client message, and accept its signed updates and
(non-)membership statements. Whatever does not verify is refused and nothing is signed.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import coincurve
import pytest
import rlp
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from eth_hash.auto import keccak

from kakehashi.errors import ConfigurationError, VerificationError
from kakehashi.ibc import host as paths
from kakehashi.ibc.evm_host import COMMITMENTS_SLOT
from kakehashi.ibc.types import ConnectionCounterparty
from kakehashi.lcp import evm_client as evm_lcp
from kakehashi.lcp.attestation import AttestationPolicy, verify_avr
from kakehashi.lcp.enclave import (
    CLIENTS_DIR,
    MRENCLAVE,
    SEALED_FILE,
    Enclave,
    SealingError,
    SignedMessage,
    UnknownClientError,
)
from kakehashi.lcp.messages import (
    EmptyValidationContext,
    Height,
    TrustingPeriodValidationContext,
    UpdateStateProxyMessage,
    VerifyMembershipProxyMessage,
    decode,
    recover_signer,
)
from kakehashi.ledgers.corda.model.serialization import serialize
from kakehashi.ledgers.corda.node.setup import EmbeddedNetwork
from kakehashi.ledgers.evm.chain import EmbeddedChain
from kakehashi.ledgers.evm.qbft import HeaderField, encode_header, header_fields
from kakehashi.lightclients.lcp import (
    LcpClient,
    LcpClientState,
    create_client,
    encode_commitment_proof,
    register_enclave_key,
    update_state,
    verify_membership,
    verify_non_membership,
)
from tests.ibc.cross_support import GAS, CrossRelayer, build

SECRET = b"operator secret for the tests"
KEY_EXPIRATION_S = 3600
NS = 1_000_000_000


def unseal_independently(data_dir: Path, secret: bytes) -> list[bytes]:
    """The sealed private keys, opened by the documented scheme (not by the enclave's code):
    scrypt(secret, salt, n=2**14, r=8, p=1) → AES-256-GCM key; nonce ‖ ciphertext per key;
    associated data MRENCLAVE ‖ address."""
    document = json.loads((data_dir / SEALED_FILE).read_text())
    kdf = document["kdf"]
    assert kdf["name"] == "scrypt"
    key = Scrypt(
        salt=bytes.fromhex(kdf["salt"]), length=32, n=kdf["n"], r=kdf["r"], p=kdf["p"]
    ).derive(secret)
    opened = []
    for entry in document["keys"]:
        blob = bytes.fromhex(entry["sealed"])
        address = bytes.fromhex(entry["attestation"]["address"])
        private = AESGCM(key).decrypt(blob[:12], blob[12:], MRENCLAVE + address)
        public = coincurve.PrivateKey(private).public_key.format(compressed=False)[1:]
        assert keccak(public)[-20:] == address
        opened.append(private)
    return opened


# ---------------------------------------------------------------------------- sealing


def test_the_key_is_sealed_and_unsealed_on_restart(tmp_path: Path) -> None:
    first = Enclave(tmp_path, SECRET)
    address, evidence = first.address, first.attestation()
    again = Enclave(tmp_path, SECRET)
    assert again.address == address
    assert again.attestation() == evidence
    assert again.root_certificate == first.root_certificate  # the CA is kept too
    (private,) = unseal_independently(tmp_path, SECRET)

    stored = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    for form in (private, private.hex().encode(), private.hex().upper().encode()):
        assert form not in stored
    assert private.hex() not in repr(again) and private.hex() not in str(vars(again))
    assert private.hex() not in repr(again._keys)  # the key objects hide it too
    assert (tmp_path / SEALED_FILE).stat().st_mode & 0o077 == 0


def test_a_wrong_secret_opens_nothing(tmp_path: Path) -> None:
    Enclave(tmp_path, SECRET)
    with pytest.raises(SealingError, match="operator secret"):
        Enclave(tmp_path, b"not the operator secret")
    with pytest.raises(ConfigurationError, match="at least 8 bytes"):
        Enclave(tmp_path, b"short")


def test_an_altered_sealed_file_opens_nothing(tmp_path: Path) -> None:
    Enclave(tmp_path, SECRET)
    path = tmp_path / SEALED_FILE
    document = json.loads(path.read_text())
    sealed = bytearray.fromhex(document["keys"][0]["sealed"])
    sealed[20] ^= 1
    document["keys"][0]["sealed"] = sealed.hex()
    path.write_text(json.dumps(document))
    with pytest.raises(SealingError):
        Enclave(tmp_path, SECRET)


def test_a_key_sealed_under_another_address_opens_nothing(tmp_path: Path) -> None:
    Enclave(tmp_path, SECRET)
    path = tmp_path / SEALED_FILE
    document = json.loads(path.read_text())
    document["keys"][0]["attestation"]["address"] = "11" * 20
    path.write_text(json.dumps(document))
    with pytest.raises(SealingError):  # the address is associated data of the seal
        Enclave(tmp_path, SECRET)


# ---------------------------------------------------------------------------- attestation


def test_the_simulated_avr_verifies_in_development_mode_only(tmp_path: Path) -> None:
    operator = bytes.fromhex("ab" * 20)
    enclave = Enclave(tmp_path, SECRET, operator=operator)
    evidence = enclave.attestation()
    development = AttestationPolicy(
        root_certificates=(enclave.root_certificate,), development=True, mrenclave=MRENCLAVE
    )
    report = verify_avr(evidence.avr, evidence.signature, evidence.signing_cert, development)
    assert report.enclave_key_address == enclave.address
    assert report.operator_address == operator
    assert report.mrenclave == MRENCLAVE and report.quote_status == "OK" and report.debug
    assert report.timestamp_ns == evidence.attested_at_ns

    with pytest.raises(VerificationError, match="trusted root"):
        verify_avr(
            evidence.avr,
            evidence.signature,
            evidence.signing_cert,
            AttestationPolicy(mrenclave=MRENCLAVE),  # production: Intel's root only
        )
    other_build = AttestationPolicy(
        root_certificates=(enclave.root_certificate,), development=True, mrenclave=bytes(32)
    )
    with pytest.raises(VerificationError, match="MRENCLAVE"):
        verify_avr(evidence.avr, evidence.signature, evidence.signing_cert, other_build)
    with pytest.raises(VerificationError):
        verify_avr(
            evidence.avr.replace('"OK"', '"OK" '),
            evidence.signature,
            evidence.signing_cert,
            development,
        )


# ---------------------------------------------------------------------------- a real world


@dataclass
class World:
    relayer: CrossRelayer
    chain: EmbeddedChain
    enclave: Enclave
    clock: Callable[[], int]

    @property
    def evm(self):  # type: ignore[no-untyped-def]
        return self.relayer.evm

    @property
    def corda(self):  # type: ignore[no-untyped-def]
        return self.relayer.corda


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    network = EmbeddedNetwork.create(tmp_path / "corda")
    try:
        with EmbeddedChain() as chain:
            relayer = build(chain, network)

            # The enclave's clock: the later of the wall clock and the chain's head, so that a
            # header is never from the enclave's future (block times are whole seconds).
            def clock() -> int:
                return max(time.time_ns(), relayer.evm.timestamp_ns())

            yield World(relayer, chain, Enclave(tmp_path / "lcp", SECRET, clock=clock), clock)
    finally:
        network.close()


def lcp_state(enclave: Enclave) -> LcpClientState:
    return LcpClientState(
        MRENCLAVE,
        KEY_EXPIRATION_S,
        root_certificates=(enclave.root_certificate,),
        development=True,
    )


def register(client: LcpClient, enclave: Enclave, now: int) -> LcpClient:
    evidence = enclave.attestation()
    return register_enclave_key(
        client, evidence.avr, evidence.signature, evidence.signing_cert, None, now
    )


def proof_of(signed: SignedMessage) -> bytes:
    return encode_commitment_proof(signed.message, [signed.signature])


def test_evm_chain_through_the_enclave(world: World) -> None:
    enclave, evm, corda = world.enclave, world.evm, world.corda
    trusted = evm.height()
    created = enclave.create_qbft_client(
        evm.header(trusted),
        list(world.chain.validators),
        chain_id=world.chain.chain_id,
        ibc_handler=evm.prefix,
        commitments_slot=COMMITMENTS_SLOT,
    )
    init = decode(created.message.message)
    assert isinstance(init, UpdateStateProxyMessage) and not init.has_prev_state()
    assert init.post_height == Height(0, trusted.revision_height) == created.height
    assert init.context == EmptyValidationContext() and init.emitted_states

    client = create_client(lcp_state(enclave), created.message.message, world.clock())
    client = register(client, enclave, world.clock())

    # A commitment written on the chain: a connection end (ICS-24 connections/{id}).
    connection = evm.conn_open_init(ConnectionCounterparty(corda.client_id, "", corda.prefix))
    path = paths.connection_path(connection)
    height = evm.height()
    value = evm.value(path, height)
    assert value is not None

    post, update = enclave.update_client(created.client_id, evm.header(height))
    assert post == Height(0, height.revision_height)
    message = decode(update.message)
    assert isinstance(message, UpdateStateProxyMessage)
    assert (message.prev_height, message.prev_state_id) == (init.post_height, init.post_state_id)
    assert isinstance(message.context, TrustingPeriodValidationContext)
    assert message.timestamp == evm.ibc.timestamp_ns(height.revision_height)
    assert recover_signer(update.message, update.signature) == enclave.address
    client, held = update_state(client, update.message, [update.signature], world.clock())
    assert held == post == client.state.latest_height

    member = enclave.verify_membership(
        created.client_id, post, evm.prefix, path, value, evm.prove(path, height)
    )
    statement = decode(member.message)
    assert isinstance(statement, VerifyMembershipProxyMessage)
    assert statement.value == keccak(value) and statement.state_id == message.post_state_id
    verify_membership(client, post, proof_of(member), evm.prefix, path, value, world.clock())

    absent = paths.connection_path("connection-99")
    non_member = enclave.verify_non_membership(
        created.client_id, post, evm.prefix, absent, evm.prove(absent, height)
    )
    verify_non_membership(client, post, proof_of(non_member), evm.prefix, absent, world.clock())
    with pytest.raises(VerificationError):  # the statement is about that path only
        verify_non_membership(client, post, proof_of(non_member), evm.prefix, path, world.clock())


def test_corda_host_through_the_enclave(world: World) -> None:
    enclave, evm, corda = world.enclave, world.evm, world.corda
    created = enclave.create_corda_client(
        serialize(corda.host.client_state()), corda.host.attestation()
    )
    assert created.height == Height(0, corda.height().revision_height)
    now = time.time_ns()
    client = register(create_client(lcp_state(enclave), created.message.message, now), enclave, now)

    connection = corda.conn_open_init(ConnectionCounterparty(evm.client_id, "", evm.prefix))
    path = paths.connection_path(connection)
    height = corda.height()
    value = corda.value(path, height)
    assert value is not None

    post, update = enclave.update_client(created.client_id, corda.header(height))
    assert post == Height(height.revision_number, height.revision_height)
    message = decode(update.message)
    assert isinstance(message, UpdateStateProxyMessage)
    assert message.prev_height == created.height and message.prev_state_id == created.state_id
    assert message.timestamp == corda.host.timestamp_ns
    client, _ = update_state(client, update.message, [update.signature], time.time_ns())

    member = enclave.verify_membership(
        created.client_id, post, corda.prefix, path, value, corda.prove(path, height)
    )
    verify_membership(client, post, proof_of(member), corda.prefix, path, value, time.time_ns())
    absent = paths.connection_path("connection-99")
    non_member = enclave.verify_non_membership(
        created.client_id, post, corda.prefix, absent, corda.prove(absent, height)
    )
    verify_non_membership(client, post, proof_of(non_member), corda.prefix, absent, time.time_ns())


def test_the_enclave_signs_nothing_it_cannot_verify(world: World) -> None:
    enclave, evm, corda = world.enclave, world.evm, world.corda
    qbft = enclave.create_qbft_client(
        evm.header(evm.height()),
        list(world.chain.validators),
        chain_id=world.chain.chain_id,
        ibc_handler=evm.prefix,
    ).client_id
    host = enclave.create_corda_client(
        serialize(corda.host.client_state()), corda.host.attestation()
    ).client_id
    connection = evm.conn_open_init(ConnectionCounterparty(corda.client_id, "", corda.prefix))
    path = paths.connection_path(connection)
    height = evm.height()
    value = evm.value(path, height)
    assert value is not None
    signed_before = enclave.signatures_made
    latest_before = enclave.latest_height(qbft)

    fields = header_fields(evm.header(height))
    fields[HeaderField.STATE_ROOT] = keccak(b"another state")
    with pytest.raises(VerificationError):
        enclave.update_client(qbft, encode_header(fields))
    assert enclave.latest_height(qbft) == latest_before

    post, _ = enclave.update_client(qbft, evm.header(height))
    signed_before = enclave.signatures_made
    account_nodes, storage_nodes = rlp.decode(evm.prove(path, height))
    forged_leaf = bytearray(storage_nodes[-1])
    forged_leaf[-1] ^= 1
    forged = rlp.encode([account_nodes, [*storage_nodes[:-1], bytes(forged_leaf)]])
    refusals: list[Callable[[], object]] = [
        lambda: enclave.verify_membership(qbft, post, evm.prefix, path, value, forged),
        lambda: enclave.verify_membership(
            qbft, post, evm.prefix, path, keccak(b"other"), evm.prove(path, height)
        ),
        lambda: enclave.verify_non_membership(
            qbft, post, evm.prefix, path, evm.prove(path, height)
        ),
        lambda: enclave.verify_membership(
            qbft, post, corda.prefix, path, value, evm.prove(path, height)
        ),
        lambda: enclave.verify_membership(
            qbft, Height(0, post.revision_height + 5), evm.prefix, path, value, evm.ibc.prove(path)
        ),
    ]
    tampered = bytearray(corda.host.attestation())
    tampered[len(tampered) // 2] ^= 1
    refusals.append(lambda: enclave.update_client(host, bytes(tampered)))
    corda_path = paths.connection_path("connection-0")
    refusals.append(
        lambda: enclave.verify_membership(
            host,
            Height(0, corda.height().revision_height),
            corda.prefix,
            corda_path,
            value,
            corda.host.prove(corda_path),
        )
    )
    for refuse in refusals:
        with pytest.raises(VerificationError):
            refuse()
    with pytest.raises(UnknownClientError):
        enclave.update_client("qbft-evm-99", evm.header(height))
    assert enclave.signatures_made == signed_before


def test_rotation_keeps_both_keys_valid_during_the_overlap(world: World) -> None:
    enclave, evm, corda = world.enclave, world.evm, world.corda
    created = enclave.create_qbft_client(
        evm.header(evm.height()),
        list(world.chain.validators),
        chain_id=world.chain.chain_id,
        ibc_handler=evm.prefix,
    )
    client = create_client(lcp_state(enclave), created.message.message, world.clock())
    client = register(client, enclave, world.clock())
    old = enclave.address

    evm.conn_open_init(ConnectionCounterparty(corda.client_id, "", corda.prefix))
    first = evm.height()
    post1, update1 = enclave.update_client(created.client_id, evm.header(first))
    path = paths.connection_path("connection-99")
    old_statement = enclave.verify_non_membership(
        created.client_id, post1, evm.prefix, path, evm.prove(path, first)
    )

    new_evidence = enclave.rotate()
    assert enclave.address == new_evidence.address != old
    assert [a.address for a in enclave.attestations()] == [old, enclave.address]
    client = register(client, enclave, world.clock())  # the new key is registered ahead of use
    assert set(client.enclave_keys) == {old, enclave.address}

    evm.conn_open_init(ConnectionCounterparty(corda.client_id, "", corda.prefix))
    second = evm.height()
    _, update2 = enclave.update_client(created.client_id, evm.header(second))
    assert update1.signer == old and update2.signer == enclave.address
    client, _ = update_state(client, update1.message, [update1.signature], world.clock())
    client, _ = update_state(client, update2.message, [update2.signature], world.clock())
    verify_non_membership(client, post1, proof_of(old_statement), evm.prefix, path, world.clock())

    # Both keys stay sealed: a restart signs with the new one and still lists the old one.
    assert len(unseal_independently(world.enclave._dir, SECRET)) == 2
    restarted = Enclave(world.enclave._dir, SECRET)
    assert restarted.address == enclave.address
    assert [a.address for a in restarted.attestations()] == [old, enclave.address]


def test_consecutive_updates_aggregate_into_one_the_client_accepts(world: World) -> None:
    enclave, evm, corda = world.enclave, world.evm, world.corda
    created = enclave.create_qbft_client(
        evm.header(evm.height()),
        list(world.chain.validators),
        chain_id=world.chain.chain_id,
        ibc_handler=evm.prefix,
    )
    client = create_client(lcp_state(enclave), created.message.message, world.clock())
    client = register(client, enclave, world.clock())
    updates = []
    for _ in range(3):
        evm.conn_open_init(ConnectionCounterparty(corda.client_id, "", corda.prefix))
        updates.append(enclave.update_client(created.client_id, evm.header(evm.height()))[1])
    pairs = [(u.message, u.signature) for u in updates]

    aggregated = enclave.aggregate(pairs)
    message = decode(aggregated.message)
    first, last = decode(updates[0].message), decode(updates[-1].message)
    assert isinstance(message, UpdateStateProxyMessage)
    assert isinstance(first, UpdateStateProxyMessage) and isinstance(last, UpdateStateProxyMessage)
    assert (message.prev_height, message.prev_state_id) == (created.height, created.state_id)
    assert (message.post_height, message.post_state_id) == (last.post_height, last.post_state_id)
    assert isinstance(message.context, TrustingPeriodValidationContext)
    assert isinstance(first.context, TrustingPeriodValidationContext)
    assert message.context.trusted_state_timestamp == first.context.trusted_state_timestamp
    client, height = update_state(client, aggregated.message, [aggregated.signature], world.clock())
    assert height == last.post_height == client.state.latest_height

    signed_before = enclave.signatures_made
    for bad in (
        [pairs[0], pairs[2]],  # a gap: the second does not build on the first
        [pairs[1], pairs[0]],  # out of order
        [pairs[0]],  # nothing to aggregate
        [pairs[0], (pairs[1][0], pairs[2][1])],  # a signature over another message
        [(created.message.message, created.message.signature), pairs[0]],  # a create message
    ):
        with pytest.raises(VerificationError):
            enclave.aggregate(bad)
    assert enclave.signatures_made == signed_before


def test_the_evm_lcp_client_accepts_the_enclave_on_chain(world: World) -> None:
    """The Vyper LCP client on the EVM chain checks the simulated AVR on-chain (RSA against the
    simulation root), then accepts the enclave's statements about the REAL Corda host; after a
    rotation both keys are registered and both keys' statements verify."""
    enclave, evm, corda = world.enclave, world.evm, world.corda
    w3, sender = evm.ibc.w3, evm.sender
    verifier = evm_lcp.deploy_avr_verifier(w3, enclave.root_certificate, sender=sender)
    contract = evm_lcp.deploy_lcp_client(w3, evm.ibc.address, verifier.address, sender=sender)
    evm.ibc.register_client(evm_lcp.LCP_CLIENT_TYPE, contract.address)

    created = enclave.create_corda_client(
        serialize(corda.host.client_state()), corda.host.attestation()
    )
    init = decode(created.message.message)
    assert isinstance(init, UpdateStateProxyMessage)
    state = evm_lcp.LcpClientState(MRENCLAVE, KEY_EXPIRATION_S, development=True)
    client_id = evm.ibc.create_client(
        evm_lcp.LCP_CLIENT_TYPE, state.encode(), evm_lcp.initial_consensus_state(init)
    ).value
    evm_lcp.register_enclave_key(
        contract, client_id, enclave.attestation().evidence(), sender=sender, gas=GAS
    )

    def statements() -> tuple[SignedMessage, SignedMessage, Height, bytes, bytes]:
        connection = corda.conn_open_init(ConnectionCounterparty(evm.client_id, "", evm.prefix))
        path = paths.connection_path(connection)
        height = corda.height()
        value = corda.value(path, height)
        assert value is not None
        post, update = enclave.update_client(created.client_id, corda.header(height))
        member = enclave.verify_membership(
            created.client_id, post, corda.prefix, path, value, corda.prove(path, height)
        )
        return update, member, post, path, value

    def on_chain(
        update: SignedMessage, member: SignedMessage, post: Height, path: bytes, value: bytes
    ) -> bool:
        message = evm_lcp.client_message(update.message, [update.signature])
        assert (
            evm.ibc.update_client(client_id, message).value.revision_height == post.revision_height
        )
        proof = evm_lcp.client_message(member.message, [member.signature])
        height = (post.revision_number, post.revision_height)
        check = contract.functions.verify_membership_value(
            client_id, height, proof, corda.prefix, path, value
        )
        return bool(check.call())

    old = statements()
    assert on_chain(*old)
    enclave.rotate()
    evm_lcp.register_enclave_key(
        contract, client_id, enclave.attestation().evidence(), sender=sender, gas=GAS
    )
    new = statements()
    assert new[0].signer == enclave.address != old[0].signer
    assert on_chain(*new)
    # The old key's statement still verifies during the overlap.
    _, member, post, path, value = old
    proof = evm_lcp.client_message(member.message, [member.signature])
    assert contract.functions.verify_membership_value(
        client_id, (post.revision_number, post.revision_height), proof, corda.prefix, path, value
    ).call()


# ---------------------------------------------------------------------------- client persistence


def test_light_clients_continue_after_a_restart(world: World) -> None:
    """Both kinds of client are sealed to disk on create and update; a new Enclave on the same
    directory and secret holds them at the same heights, signs the next update on top of what
    it signed before the restart, and gives a new client an id never used."""
    enclave, evm, corda = world.enclave, world.evm, world.corda
    qbft = enclave.create_qbft_client(
        evm.header(evm.height()),
        list(world.chain.validators),
        chain_id=world.chain.chain_id,
        ibc_handler=evm.prefix,
        commitments_slot=COMMITMENTS_SLOT,
    )
    host = enclave.create_corda_client(
        serialize(corda.host.client_state()), corda.host.attestation()
    )
    client = register(
        create_client(lcp_state(enclave), qbft.message.message, world.clock()),
        enclave,
        world.clock(),
    )
    evm.conn_open_init(ConnectionCounterparty(corda.client_id, "", corda.prefix))
    first = evm.height()
    post1, update1 = enclave.update_client(qbft.client_id, evm.header(first))
    corda.conn_open_init(ConnectionCounterparty(evm.client_id, "", evm.prefix))
    corda_first = corda.height()
    corda_post1, corda_update1 = enclave.update_client(host.client_id, corda.header(corda_first))
    files = sorted(p.name for p in (enclave._dir / CLIENTS_DIR).iterdir())
    assert files == [f"{host.client_id}.json", f"{qbft.client_id}.json"]
    sealed = (enclave._dir / CLIENTS_DIR / f"{qbft.client_id}.json").read_bytes()
    state_root = header_fields(evm.header(first))[HeaderField.STATE_ROOT]
    assert state_root.hex().encode() not in sealed and state_root not in sealed  # encrypted
    assert (enclave._dir / CLIENTS_DIR / f"{qbft.client_id}.json").stat().st_mode & 0o077 == 0

    restarted = Enclave(enclave._dir, SECRET, clock=world.clock)
    assert restarted.client_ids() == (qbft.client_id, host.client_id)
    assert restarted.latest_height(qbft.client_id) == post1
    assert restarted.latest_height(host.client_id) == corda_post1
    # Statements at a height held before the restart name the state id signed before it.
    absent = paths.connection_path("connection-99")
    statement = decode(
        restarted.verify_non_membership(
            qbft.client_id, post1, evm.prefix, absent, evm.prove(absent, first)
        ).message
    )
    before = decode(update1.message)
    assert isinstance(statement, VerifyMembershipProxyMessage)
    assert isinstance(before, UpdateStateProxyMessage)
    assert statement.state_id == before.post_state_id

    # The next updates build on the states signed before the restart.
    evm.conn_open_init(ConnectionCounterparty(corda.client_id, "", corda.prefix))
    second = evm.height()
    post2, update2 = restarted.update_client(qbft.client_id, evm.header(second))
    after = decode(update2.message)
    assert isinstance(after, UpdateStateProxyMessage)
    assert (after.prev_height, after.prev_state_id) == (post1, before.post_state_id)
    client, _ = update_state(client, update1.message, [update1.signature], world.clock())
    client, held = update_state(client, update2.message, [update2.signature], world.clock())
    assert held == post2 == Height(0, second.revision_height)
    restarted.aggregate(
        [(update1.message, update1.signature), (update2.message, update2.signature)]
    )
    corda.conn_open_init(ConnectionCounterparty(evm.client_id, "", evm.prefix))
    corda_post2, corda_update2 = restarted.update_client(
        host.client_id, corda.header(corda.height())
    )
    corda_after = decode(corda_update2.message)
    corda_before = decode(corda_update1.message)
    assert isinstance(corda_after, UpdateStateProxyMessage)
    assert isinstance(corda_before, UpdateStateProxyMessage)
    assert corda_after.prev_state_id == corda_before.post_state_id
    assert corda_post2.revision_height > corda_post1.revision_height

    # A new client's id never collides with one created before the restart.
    third = restarted.create_corda_client(
        serialize(corda.host.client_state()), corda.host.attestation()
    )
    assert third.client_id == "corda-host-2"
    again = Enclave(enclave._dir, SECRET, clock=world.clock)
    assert again.client_ids() == (qbft.client_id, host.client_id, third.client_id)
    assert again.latest_height(qbft.client_id) == post2
    assert again.latest_height(host.client_id) == corda_post2


def test_a_client_file_that_does_not_open_stops_the_enclave(world: World) -> None:
    enclave, evm = world.enclave, world.evm
    created = enclave.create_qbft_client(
        evm.header(evm.height()),
        list(world.chain.validators),
        chain_id=world.chain.chain_id,
        ibc_handler=evm.prefix,
    )
    data_dir = enclave._dir
    path = data_dir / CLIENTS_DIR / f"{created.client_id}.json"
    good = path.read_bytes()
    assert Enclave(data_dir, SECRET).client_ids() == (created.client_id,)

    with pytest.raises(SealingError, match="operator secret"):
        Enclave(data_dir, b"not the operator secret")

    # A byte of the ciphertext flipped: the seal does not open.
    document = json.loads(good)
    sealed = bytearray.fromhex(document["sealed"])
    sealed[len(sealed) // 2] ^= 1
    path.write_text(json.dumps({**document, "sealed": sealed.hex()}))
    with pytest.raises(SealingError, match=r"does not open.*altered"):
        Enclave(data_dir, SECRET)
    # Any byte of the file flipped: damaged or not opening, never an enclave without the client.
    for index in (0, len(good) // 3, len(good) // 2, len(good) - 3):
        flipped = bytearray(good)
        flipped[index] ^= 1
        path.write_bytes(bytes(flipped))
        with pytest.raises(
            SealingError, match=re.escape(f"{CLIENTS_DIR}/{created.client_id}.json")
        ):
            Enclave(data_dir, SECRET)

    # Sealed as another client (its id is associated data): renamed, it does not open.
    path.unlink()
    renamed = data_dir / CLIENTS_DIR / "qbft-evm-7.json"
    renamed.write_text(json.dumps({**document, "client_id": "qbft-evm-7"}))
    with pytest.raises(SealingError, match="does not open"):
        Enclave(data_dir, SECRET)
    renamed.unlink()

    # A client sealed by another enclave (another operator secret and salt) does not open here.
    other = Enclave(data_dir.parent / "other-enclave", b"another operator secret")
    other.create_qbft_client(
        evm.header(evm.height()),
        list(world.chain.validators),
        chain_id=world.chain.chain_id,
        ibc_handler=evm.prefix,
    )
    path.write_bytes((other._dir / CLIENTS_DIR / f"{created.client_id}.json").read_bytes())
    with pytest.raises(SealingError, match="operator secret"):
        Enclave(data_dir, SECRET)

    # Clients without the sealed keys cannot be opened: refuse rather than start empty.
    path.write_bytes(good)
    assert Enclave(data_dir, SECRET).client_ids() == (created.client_id,)
    (data_dir / SEALED_FILE).unlink()
    with pytest.raises(SealingError, match=re.escape(f"{SEALED_FILE} is missing")):
        Enclave(data_dir, SECRET)


def test_a_client_keeps_only_the_newest_states_and_batches_verify(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An enclave client keeps at most MAX_CONSENSUS_STATES states (its sealed file does not
    grow for ever); update_and_verify and verify_batch sign one statement per proof."""
    import kakehashi.lcp.enclave as enclave_module
    from kakehashi.lcp.enclave import ProofItem

    monkeypatch.setattr(enclave_module, "MAX_CONSENSUS_STATES", 3)
    enclave, evm, corda = world.enclave, world.evm, world.corda
    created = enclave.create_corda_client(
        serialize(corda.host.client_state()), corda.host.attestation()
    )
    for _ in range(5):
        corda.conn_open_init(ConnectionCounterparty(evm.client_id, "", evm.prefix))
        enclave.update_client(created.client_id, corda.header(corda.height()))
    held = sorted(enclave._clients[created.client_id].consensus)
    assert len(held) == 3 and held[-1] == corda.height().revision_height
    with pytest.raises(VerificationError, match="trusted height"):
        enclave.update_client(
            created.client_id,
            corda.header(corda.height()),
            Height(0, created.height.revision_height),
        )

    connection = corda.conn_open_init(ConnectionCounterparty(evm.client_id, "", evm.prefix))
    path = paths.connection_path(connection)
    absent = paths.connection_path("connection-99")
    height = corda.height()
    items = [
        ProofItem(corda.prefix, path, corda.value(path, height), corda.prove(path, height)),
        ProofItem(corda.prefix, absent, None, corda.prove(absent, height)),
    ]
    post, update, vouched = enclave.update_and_verify(
        created.client_id, corda.header(height), Height(0, held[-1]), items
    )
    assert post.revision_height == height.revision_height and len(vouched) == 2
    assert decode(update.message).prev_height == Height(0, held[-1])  # type: ignore[union-attr]
    again = enclave.verify_batch(created.client_id, post, items)
    assert [decode(s.message) for s in again] == [decode(s.message) for s in vouched]
    wrong = ProofItem(corda.prefix, path, b"\x01" * 32, items[0].proof)
    with pytest.raises(VerificationError):
        enclave.verify_batch(created.client_id, post, [items[0], wrong])


def test_remembered_state_ids_are_those_of_the_states_held(world: World) -> None:
    """Every state id the enclave signs (remembered per client object) is the state id rule
    computed afresh from what the client holds, through updates of both client types; an
    update starts from a copy that remembers nothing of the client it copied."""
    from kakehashi.lcp.enclave import ProofItem, state_id

    enclave, evm, corda = world.enclave, world.evm, world.corda

    def fresh(client_id: str, height: Height) -> bytes:
        client = enclave._clients[client_id]
        return state_id(client.client_type, client.client_state(), client.consensus_state(height))

    qbft = enclave.create_qbft_client(
        evm.header(evm.height()),
        list(world.chain.validators),
        chain_id=world.chain.chain_id,
        ibc_handler=evm.prefix,
        commitments_slot=COMMITMENTS_SLOT,
    )
    host = enclave.create_corda_client(
        serialize(corda.host.client_state()), corda.host.attestation()
    )
    assert qbft.state_id == fresh(qbft.client_id, qbft.height)
    assert host.state_id == fresh(host.client_id, host.height)
    for _ in range(3):
        evm.conn_open_init(ConnectionCounterparty(corda.client_id, "", corda.prefix))
        corda.conn_open_init(ConnectionCounterparty(evm.client_id, "", evm.prefix))
        for client_id, ledger in ((qbft.client_id, evm), (host.client_id, corda)):
            before = enclave._clients[client_id]
            height = ledger.height()
            absent = paths.connection_path("connection-99")
            item = ProofItem(ledger.prefix, absent, None, ledger.prove(absent, height))
            post, update, vouched = enclave.update_and_verify(
                client_id, ledger.header(height), None, [item]
            )
            after = enclave._clients[client_id]
            assert after is not before and post not in before.state_ids
            message = decode(update.message)
            assert isinstance(message, UpdateStateProxyMessage)
            assert message.prev_state_id == fresh(client_id, message.prev_height)
            assert message.post_state_id == fresh(client_id, post)
            statement = decode(vouched[0].message)
            assert isinstance(statement, VerifyMembershipProxyMessage)
            assert statement.state_id == fresh(client_id, post)
            assert set(after.state_ids) == {message.prev_height, post}
