"""The Corda host's ICS-02 client of the EVM chain: real QBFT headers and eth_getProof proofs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from eth_utils import keccak

from kakehashi.errors import VerificationError
from kakehashi.ibc.client import ClientStatus
from kakehashi.ibc.clients.qbft import QbftClient, encode_proof, storage_key
from kakehashi.ibc.types import Height
from kakehashi.ledgers.evm import client, toolchain
from kakehashi.ledgers.evm.chain import EmbeddedChain, dev_accounts
from kakehashi.ledgers.evm.provider import embedded_web3

STORE = """\
# pragma version 0.4.3
commitments: public(HashMap[bytes32, bytes32])

@external
def put(path: Bytes[256], commitment: bytes32):
    self.commitments[keccak256(path)] = commitment
"""
PATH = b"commitments/ports/transfer/channels/channel-0/sequences/1"
VALUE = keccak(b"a packet commitment")


@pytest.fixture
def env(tmp_path: Path) -> Any:
    source = tmp_path / "store.vy"
    source.write_text(STORE)
    with EmbeddedChain() as chain:
        w3 = embedded_web3(chain)
        owner = dev_accounts()[0]
        store = toolchain.deploy(w3, toolchain.compile_contract(source), sender=owner)
        client.transact(w3, store.functions.put(PATH, VALUE), sender=owner)
        handler = bytes.fromhex(store.address[2:])
        qbft = QbftClient.from_trusted_header(
            chain.raw_header(1),
            list(chain.validators),
            chain_id=chain.chain_id,  # type: ignore[arg-type]
            ibc_handler=handler,
            commitments_slot=0,
        )
        yield chain, w3, store, handler, qbft


def _now() -> int:
    """Now, read when used: a chain made later in a long test run has later timestamps."""
    return time.time_ns()


def _proof(w3: Any, address: str, path: bytes, block: int) -> bytes:
    raw = client.get_proof(w3, address, [storage_key(0, path)], block)
    return encode_proof(
        [bytes.fromhex(n[2:]) for n in raw["accountProof"]],
        [bytes.fromhex(n[2:]) for n in raw["storageProof"][0]["proof"]],
    )


def test_membership_and_absence_at_a_verified_height(env: Any) -> None:
    chain, w3, store, handler, qbft = env
    height = qbft.update(chain.raw_header(2), _now())
    assert height == Height(0, 2) and qbft.status(_now()) is ClientStatus.ACTIVE
    qbft.verify_membership(height, _proof(w3, store.address, PATH, 2), handler, PATH, VALUE)
    other = PATH.replace(b"/1", b"/2")
    qbft.verify_non_membership(height, _proof(w3, store.address, other, 2), handler, other)
    assert qbft.timestamp_at(height) == chain.header(2).timestamp * 10**9


def test_wrong_value_path_prefix_height_or_tampered_proof_fail(env: Any) -> None:
    chain, w3, store, handler, qbft = env
    height = qbft.update(chain.raw_header(2), _now())
    proof = _proof(w3, store.address, PATH, 2)
    with pytest.raises(VerificationError):
        qbft.verify_membership(height, proof, handler, PATH, keccak(b"other"))
    with pytest.raises(VerificationError):
        qbft.verify_membership(height, proof, handler, PATH + b"0", VALUE)
    with pytest.raises(VerificationError, match="prefix"):
        qbft.verify_membership(height, proof, b"\x11" * 20, PATH, VALUE)
    with pytest.raises(VerificationError, match="not been verified"):
        qbft.verify_membership(Height(0, 3), proof, handler, PATH, VALUE)
    with pytest.raises(VerificationError):
        qbft.verify_non_membership(height, proof, handler, PATH)
    for i in range(0, len(proof), 97):
        tampered = bytearray(proof)
        tampered[i] ^= 0x01
        with pytest.raises(VerificationError):
            qbft.verify_membership(height, bytes(tampered), handler, PATH, VALUE)


def test_headers_must_carry_a_quorum_of_trusted_seals(env: Any) -> None:
    chain, _w3, _store, _handler, qbft = env
    header = bytearray(chain.raw_header(2))
    header[-30] ^= 0x01  # inside the last seal
    with pytest.raises(VerificationError):
        qbft.update(bytes(header), _now())
    assert qbft.latest_height() == Height(0, 1)


def test_an_expired_or_frozen_client_refuses(env: Any) -> None:
    chain, _w3, _store, _handler, qbft = env
    later = _now() + (qbft.trusting_period_s + 10) * 10**9
    assert qbft.status(later) is ClientStatus.EXPIRED
    with pytest.raises(VerificationError, match="Expired"):
        qbft.update(chain.raw_header(2), later)
    qbft.frozen = True
    assert qbft.status(_now()) is ClientStatus.FROZEN


def test_equivocating_validators_freeze_the_client(env: Any) -> None:
    """Two validly sealed headers for one height: the client freezes and refuses everything."""
    from kakehashi.ledgers.evm import qbft as fmt

    chain, w3, store, handler, qbft = env
    honest = chain.raw_header(2)
    qbft.update(honest, _now())
    fields = fmt.header_fields(honest)
    fields[fmt.HeaderField.STATE_ROOT] = keccak(b"another history")
    forged = fmt.with_committed_seals(fmt.encode_header(fields), [])
    commit = fmt.commit_hash(forged)
    forged = fmt.with_committed_seals(forged, [fmt.seal(commit, k) for k in chain._keys])
    assert qbft.update(forged, _now()) == Height(0, 2)
    assert qbft.status(_now()) is ClientStatus.FROZEN
    with pytest.raises(VerificationError, match="frozen"):
        qbft.verify_membership(
            Height(0, 2), _proof(w3, store.address, PATH, 2), handler, PATH, VALUE
        )
