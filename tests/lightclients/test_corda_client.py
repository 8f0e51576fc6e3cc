"""Corda-model light client: proofs produced by a real host on an embedded network (real notary,
SQLite) verify against the notary key; every altered, misplaced or forged proof is refused."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from kakehashi.errors import VerificationError
from kakehashi.ibc.clients.corda import CordaClient
from kakehashi.ibc.corda_host import CordaIbcHost, HostAdvance
from kakehashi.ibc.types import Height
from kakehashi.ledgers.corda.merkle import ComponentGroup
from kakehashi.ledgers.corda.model.crypto import KeyPair, random_bytes, sign_transaction_id
from kakehashi.ledgers.corda.model.serialization import deserialize, serialize
from kakehashi.ledgers.corda.model.states import (
    Command,
    TimeWindow,
    TransactionState,
    UniqueIdentifier,
)
from kakehashi.ledgers.corda.model.transactions import SignedTransaction, WireTransaction
from kakehashi.ledgers.corda.node.setup import EmbeddedNetwork
from kakehashi.ledgers.corda.smt import EMPTY_ROOT
from kakehashi.lightclients.corda import (
    HOST_CONTRACT,
    CommitmentProof,
    CordaConsensusState,
    HostStateAttestation,
    IbcHostState,
    decode_commitment_proof,
    update_client,
    verify_host_state,
    verify_membership,
    verify_non_membership,
)

OPERATOR = "O=Bank A, L=London, C=GB"
OTHER = "O=Bank B, L=Tokyo, C=JP"
PATH = b"commitments/ports/transfer/channels/channel-0/sequences/1"
OTHER_PATH = b"commitments/ports/transfer/channels/channel-0/sequences/2"
V1 = b"\x11" * 32
V2 = b"\x22" * 32


class Env:
    def __init__(self, net: EmbeddedNetwork, host: CordaIbcHost) -> None:
        self.net = net
        self.host = host
        self.client = host.client_state()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    net = EmbeddedNetwork.create(tmp_path_factory.mktemp("corda-lc") / "net")
    host = CordaIbcHost(net.node(OPERATOR))
    host.execute(lambda s: s.set(PATH, V1))  # version 2: PATH = V1
    host.execute(lambda s: s.set(OTHER_PATH, V2))  # version 3: both
    host.execute(lambda s: s.delete(PATH))  # version 4: only OTHER_PATH
    assert host.version == 4
    yield Env(net, host)
    net.close()


def test_proofs_at_every_version(env: Env) -> None:
    host, client = env.host, env.client
    expected = {1: {}, 2: {PATH: V1}, 3: {PATH: V1, OTHER_PATH: V2}, 4: {OTHER_PATH: V2}}
    for version, contents in expected.items():
        view = verify_host_state(client, host.attestation(version))
        assert view.version == version
        assert (view.version == 1) == (view.previous_tx is None)
        for path in (PATH, OTHER_PATH):
            proof = host.prove(path, version)
            if path in contents:
                got = verify_membership(client, proof, path, contents[path], version=version)
                with pytest.raises(VerificationError):
                    verify_non_membership(client, proof, path, version=version)
            else:
                got = verify_non_membership(client, proof, path, version=version)
                with pytest.raises(VerificationError):
                    verify_membership(client, proof, path, V1, version=version)
            assert got == view
    assert verify_host_state(client, host.attestation(1)).smt_root == EMPTY_ROOT


def test_versions_chain_and_time_moves_forward(env: Env) -> None:
    views = [verify_host_state(env.client, env.host.attestation(v)) for v in range(1, 5)]
    for before, after in itertools.pairwise(views):
        assert after.previous_tx == before.tx_id
        assert after.timestamp_ns > before.timestamp_ns


def test_wrong_version_path_value_or_trust_fails(env: Env) -> None:
    host, client = env.host, env.client
    proof = host.prove(PATH, 2)
    verify_membership(client, proof, PATH, V1, version=2)
    with pytest.raises(VerificationError, match="version 2, not 3"):
        verify_membership(client, proof, PATH, V1, version=3)
    with pytest.raises(VerificationError):
        verify_membership(client, proof, OTHER_PATH, V1, version=2)
    with pytest.raises(VerificationError):
        verify_membership(client, proof, PATH, V2, version=2)
    stranger = KeyPair.generate().public
    for wrong in (
        dataclasses.replace(client, notary_key=stranger),
        dataclasses.replace(client, operator_key=stranger),
        dataclasses.replace(client, linear_id=UniqueIdentifier()),
        dataclasses.replace(client, max_time_window_ns=1000),
        dataclasses.replace(client, frozen=True),
    ):
        with pytest.raises(VerificationError):
            verify_membership(wrong, proof, PATH, V1, version=2)
    # a consensus state the client holds for that version must be the proven one
    other = verify_host_state(client, host.attestation(3))
    trusted = CordaConsensusState(other.timestamp_ns, other.smt_root, other.tx_id)
    with pytest.raises(VerificationError, match="differs"):
        verify_membership(client, proof, PATH, V1, version=2, trusted=trusted)


def test_any_altered_byte_fails(env: Env) -> None:
    host, client = env.host, env.client
    proof = host.prove(PATH, 3)
    verify_membership(client, proof, PATH, V1, version=3)
    accepted = []
    for position in range(len(proof)):
        altered = bytearray(proof)
        altered[position] ^= 0x01
        try:
            verify_membership(client, bytes(altered), PATH, V1, version=3)
        except VerificationError:
            continue
        accepted.append(position)
    assert accepted == []
    for cut in (proof[:-1], proof + b"\x00", b"", b"\xa0"):
        with pytest.raises(VerificationError):
            verify_membership(client, cut, PATH, V1, version=3)


def test_each_part_of_a_proof_is_checked(env: Env) -> None:
    host, client = env.host, env.client
    decoded = decode_commitment_proof(host.prove(PATH, 2))
    att = decoded.attestation
    later = decode_commitment_proof(host.prove(PATH, 3)).attestation

    def check(attestation: HostStateAttestation, smt_proof: bytes = decoded.smt_proof) -> None:
        verify_membership(
            client, serialize(CommitmentProof(attestation, smt_proof)), PATH, V1, version=2
        )

    check(att)
    sig = att.notary_signature
    bad_sig = dataclasses.replace(sig, signature=bytes([sig.signature[0] ^ 1]) + sig.signature[1:])
    with pytest.raises(VerificationError, match="notary signature"):
        check(dataclasses.replace(att, notary_signature=bad_sig))
    with pytest.raises(VerificationError, match="notary signature"):  # another tx's signature
        check(dataclasses.replace(att, notary_signature=later.notary_signature))
    with pytest.raises(VerificationError, match="operator signature"):
        check(dataclasses.replace(att, operator_signature=later.operator_signature))
    with pytest.raises(VerificationError, match="not the trusted notary"):
        check(dataclasses.replace(att, notary_signature=att.operator_signature))
    # tear-off of another version, with this version's signatures
    with pytest.raises(VerificationError):
        check(dataclasses.replace(att, tear_off=later.tear_off))
    # hiding the time window (or the inputs) is refused
    groups = tuple(g for g in att.tear_off.groups if g.group != ComponentGroup.TIMEWINDOW)
    with pytest.raises(VerificationError, match="tear-off"):
        check(dataclasses.replace(att, tear_off=dataclasses.replace(att.tear_off, groups=groups)))
    # SMT proof of version 3 against version 2's attestation
    with pytest.raises(VerificationError):
        check(att, decode_commitment_proof(host.prove(PATH, 3)).smt_proof)


def test_a_host_state_forged_by_another_party_is_refused(env: Env) -> None:
    """A non-validating notary signs anything well-formed with a time window: the operator's
    signature is what ties a host state to the host."""
    host, client = env.host, env.client
    forger = env.net.node(OTHER)
    real = host.host_state
    fake = IbcHostState(real.operator, real.linear_id, 99, b"\x42" * 32, real.timestamp_ns + 1)
    micros = fake.timestamp_ns // 1000
    notary = host.notary
    wtx = WireTransaction.create(
        privacy_salt=random_bytes(32),
        outputs=[TransactionState(fake, HOST_CONTRACT, notary)],
        commands=[Command(HostAdvance(99), (forger.party.owning_key,))],
        notary=notary,
        time_window=TimeWindow(micros - 10_000_000, micros + 10_000_000),
    )
    stx = SignedTransaction(wtx, (sign_transaction_id(forger.key, wtx.id),))
    notary_sig = forger.notarise(stx)  # the notary does sign it
    shown = {ComponentGroup.INPUTS, ComponentGroup.NOTARY, ComponentGroup.TIMEWINDOW}
    tear_off = wtx.filtered(lambda g, _i, _d: g in shown or g == ComponentGroup.OUTPUTS)
    forged = HostStateAttestation(notary_sig, stx.sigs[0], tear_off)
    with pytest.raises(VerificationError, match="operator"):
        verify_host_state(client, serialize(forged))
    # even with a stolen operator signature slot filled by the forger's: still refused, and a
    # root-level version without inputs is refused on its own
    lenient = dataclasses.replace(client, operator_key=forger.party.owning_key)
    with pytest.raises(VerificationError, match=r"operator|genesis"):
        verify_host_state(lenient, serialize(forged))


def test_update_client_and_misbehaviour(env: Env) -> None:
    host, client = env.host, env.client
    consensus: dict[int, CordaConsensusState] = {}
    state = client
    for version in (2, 4, 3):  # out of order is fine
        state, got, cs = update_client(state, consensus, host.attestation(version))
        assert not state.frozen and got == version
        consensus[version] = cs
    assert state.latest_version == 4
    # a different host state already known at version 3: frozen
    forged = dataclasses.replace(consensus[3], smt_root=b"\x01" * 32)
    frozen, _v, _cs = update_client(state, {**consensus, 3: forged}, host.attestation(3))
    assert frozen.frozen
    # a neighbour that does not chain: frozen
    broken = dataclasses.replace(consensus[2], tx_id=b"\x02" * 32)
    frozen, _v, _cs = update_client(state, {2: broken}, host.attestation(3))
    assert frozen.frozen
    with pytest.raises(VerificationError, match="frozen"):
        verify_host_state(frozen, host.attestation(3))


def test_ics02_adapter(env: Env) -> None:
    host = env.host
    client = CordaClient.from_attestation(env.client, host.attestation(2))
    assert client.latest_height() == Height(0, 2)
    assert client.update(host.attestation(3), 0) == Height(0, 3)
    prefix = host.prefix
    client.verify_membership(Height(0, 3), host.prove(PATH, 3), prefix, PATH, V1)
    client.verify_non_membership(Height(0, 2), host.prove(OTHER_PATH, 2), prefix, OTHER_PATH)
    assert (
        client.timestamp_at(Height(0, 3))
        == verify_host_state(env.client, host.attestation(3)).timestamp_ns
    )
    with pytest.raises(VerificationError, match="update the client"):
        client.verify_membership(Height(0, 4), host.prove(OTHER_PATH, 4), prefix, OTHER_PATH, V2)
    with pytest.raises(VerificationError, match="prefix"):
        client.verify_membership(Height(0, 3), host.prove(PATH, 3), b"x" * 16, PATH, V1)
    with pytest.raises(VerificationError):  # proof of version 2 asked at height 3
        client.verify_membership(Height(0, 3), host.prove(PATH, 2), prefix, PATH, V1)
    restored = CordaClient.from_bytes(client.to_bytes())
    assert restored == client
    assert deserialize(client.client_state(), type(env.client)) == client.state


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_garbage_in_verification_error_out(env: Env, data: st.DataObject) -> None:
    """Bytes in, a result or VerificationError out: never another exception."""
    original = env.host.prove(PATH, 3)
    proof = bytearray(original)
    for _ in range(data.draw(st.integers(1, 4))):
        action = data.draw(st.sampled_from(["flip", "insert", "delete", "random"]))
        position = data.draw(st.integers(0, max(len(proof) - 1, 0)))
        if action == "flip" and proof:
            proof[position] ^= data.draw(st.integers(1, 255))
        elif action == "insert":
            proof[position:position] = data.draw(st.binary(min_size=1, max_size=8))
        elif action == "delete" and proof:
            del proof[position : position + data.draw(st.integers(1, 8))]
        else:
            proof = bytearray(data.draw(st.binary(max_size=64)))
    assume(bytes(proof) != original)
    for check in (
        lambda: verify_membership(env.client, bytes(proof), PATH, V1, version=3),
        lambda: verify_non_membership(env.client, bytes(proof), PATH),
    ):
        with pytest.raises(VerificationError):
            check()
    # the attestation part alone may survive an edit of the sparse-Merkle part
    with contextlib.suppress(VerificationError):
        assert verify_host_state(env.client, bytes(proof)).version == 3
