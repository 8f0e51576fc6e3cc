"""The QBFT block format against a real Besu block, plus encoding rules and sealing round trips."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import rlp
from eth_hash.auto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from kakehashi.errors import ConfigurationError, SignatureError, VerificationError
from kakehashi.ledgers.evm.qbft import (
    BFT_MIX_HASH,
    MAX_ROUND,
    HeaderField,
    QbftExtraData,
    QbftVote,
    bft_block_hash,
    commit_hash,
    encode_header,
    encode_scalar,
    header_extra_data,
    header_fields,
    quorum,
    recover_seal,
    seal,
    sealing_header_rlp,
    validator_address,
    with_committed_seals,
)

# Block 7528 of a real Hyperledger Besu QBFT network (4 validators), as published in
# datachainlab/besu-qbft-elc's tests; the same data as shared/vectors/besu-qbft-block-7528.json,
# kept here so that a fresh clone runs these tests on its own.
BESU_HEADER = bytes.fromhex(
    "f9033fa00af93e70b1c6d3974a88a42eb70bb61adbd523bfac0c83027ba4637c52746a0fa01dcc4de8dec75d"
    "7aab85b567b6ccd41ad312451b948a7413f0a142fd40d4934794ee3353e587cfa91625a1adaef308a726de38"
    "03d3a0166ed98eea93ab2b6f6b1a425526994adc2d675bf9a0d77d600ed1e02d8f77dfa056e81f171bcc55a6"
    "ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421a056e81f171bcc55a6ff8345e692c0f86e5b48e0"
    "1b996cadc001622fb5e363b421b9010000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000001821d688347b76080846640618bb90147f90144a0000000000000000000000000000000"
    "0000000000000000000000000000000000f85494647bfdd19655e51e69d35454ff3a92f8828e630294a5c841"
    "6b9d13417b45b45ada76408f39d1e504ef94b92e91f4dcc9d28503be521afa2a8fbf3c1acf6094ee3353e587"
    "cfa91625a1adaef308a726de3803d3c001f8c9b841bc7633fd65570f610a595086e9a34e5bf6aacfb67b8f8c"
    "d01852e6b285147f046a50577b49378b86723ac9b456ef59ef7ab57cda7139d807f10f58e8cb10c67600b841"
    "ad1defc2b0b4a48158cff24778bb5ba4d9f373c171022ab0a42e37bdb0d4025718434d303a8d94df56ef9ad5"
    "219be9f27b2f67179a7fb82d3323dde29546f9f701b841e233d3670dd97c715f72b440eeb1ccb1e22c8c23f6"
    "ab470c46c99c2d0ee6509f0341a42e0e4569782557e93c3815e8ca4294043595f69a90f73f135de8ecf41e00"
    "a063746963616c2062797a616e74696e65206661756c7420746f6c6572616e6365880000000000000000"
)
BESU_SEALING_HEADER = bytes.fromhex(
    "f90273a00af93e70b1c6d3974a88a42eb70bb61adbd523bfac0c83027ba4637c52746a0fa01dcc4de8dec75d"
    "7aab85b567b6ccd41ad312451b948a7413f0a142fd40d4934794ee3353e587cfa91625a1adaef308a726de38"
    "03d3a0166ed98eea93ab2b6f6b1a425526994adc2d675bf9a0d77d600ed1e02d8f77dfa056e81f171bcc55a6"
    "ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421a056e81f171bcc55a6ff8345e692c0f86e5b48e0"
    "1b996cadc001622fb5e363b421b9010000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000001821d688347b76080846640618bb87cf87aa00000000000000000000000000000000000"
    "000000000000000000000000000000f85494647bfdd19655e51e69d35454ff3a92f8828e630294a5c8416b9d"
    "13417b45b45ada76408f39d1e504ef94b92e91f4dcc9d28503be521afa2a8fbf3c1acf6094ee3353e587cfa9"
    "1625a1adaef308a726de3803d3c001c0a063746963616c2062797a616e74696e65206661756c7420746f6c65"
    "72616e6365880000000000000000"
)
BESU_EXPECTED: dict[str, Any] = {
    "number": 7528,
    "timestamp": 1715495307,
    "round": 1,
    "state_root": "166ed98eea93ab2b6f6b1a425526994adc2d675bf9a0d77d600ed1e02d8f77df",
    "commit_hash": "75ea184f58cd3f0ef89032a069df01f07ec524ef3a85cf6d3e424d62130c0a32",
    "validators": [
        "647bfdd19655e51e69d35454ff3a92f8828e6302",
        "a5c8416b9d13417b45b45ada76408f39d1e504ef",
        "b92e91f4dcc9d28503be521afa2a8fbf3c1acf60",
        "ee3353e587cfa91625a1adaef308a726de3803d3",
    ],
    "committed_seal_count": 3,
}
EXTRA_1_VALIDATOR = bytes.fromhex(
    "f87ea00000000000000000000000000000000000000000000000000000000000000000d594cc4b2d4fbb236d"
    "5207b37a5cf739b8491b2b717cc080f843b84192782505a9fcf7d7352298df515282905a9e99c44a7dcffe30"
    "b75e9df44660aa76f1ed27e2b27e29712d62e7415ebb4e700e1d64fdc8bed818562391b5421d3500"
)
EXTRA_1_VALIDATOR_EXPECTED = {"round": 0, "validators": 1, "committed_seals": 1}
BESU_VALIDATORS = tuple(bytes.fromhex(v) for v in BESU_EXPECTED["validators"])

KEYS = tuple(keccak(b"kakehashi test validator %d" % i) for i in range(12))
ADDRESSES = tuple(validator_address(k) for k in KEYS)

# Byte sizes of the fields after ``nonce``, in fork order (London .. Prague).
_FORK_FIELDS = (
    encode_scalar(7),  # baseFeePerGas
    b"\x33" * 32,  # withdrawalsRoot
    encode_scalar(0),  # blobGasUsed
    encode_scalar(0),  # excessBlobGas
    b"\x44" * 32,  # parentBeaconBlockRoot
    b"\x55" * 32,  # requestsHash
)


def make_header(
    validators: Sequence[bytes],
    *,
    number: int = 1,
    timestamp: int = 1_700_000_000,
    round_: int = 0,
    vote: QbftVote | None = None,
    state_root: bytes = b"\x11" * 32,
    parent_hash: bytes = b"\x22" * 32,
    field_count: int = 21,
) -> bytes:
    """An unsealed QBFT header (``field_count`` 15 = pre-London .. 21 = Prague)."""
    extra = QbftExtraData(bytes(32), tuple(validators), vote, round_, ())
    fields = [
        parent_hash,
        keccak(rlp.encode([])),
        validators[0] if validators else bytes(20),
        state_root,
        keccak(b"\x80"),
        keccak(b"\x80"),
        bytes(256),
        encode_scalar(1),
        encode_scalar(number),
        encode_scalar(30_000_000),
        encode_scalar(21_000),
        encode_scalar(timestamp),
        extra.encode(),
        BFT_MIX_HASH,
        bytes(8),
        *_FORK_FIELDS,
    ]
    return encode_header(fields[:field_count])


def sealed_header(
    validators: Sequence[bytes], signer_keys: Sequence[bytes], **header_args: object
) -> bytes:
    """A header for ``validators`` carrying seals by ``signer_keys`` (in that order)."""
    unsealed = make_header(validators, **header_args)  # type: ignore[arg-type]
    digest = commit_hash(unsealed)
    return with_committed_seals(unsealed, [seal(digest, k) for k in signer_keys])


# --------------------------------------------------------------------------- the Besu vector

SHARED_VECTOR = (
    Path(__file__).resolve().parents[4] / "shared" / "vectors" / "besu-qbft-block-7528.json"
)


@pytest.mark.skipif(not SHARED_VECTOR.exists(), reason="shared/vectors not checked out here")
def test_embedded_vector_is_the_shared_one() -> None:
    shared = json.loads(SHARED_VECTOR.read_text())
    assert bytes.fromhex(shared["header_rlp_with_seals"]) == BESU_HEADER
    assert bytes.fromhex(shared["header_rlp_sealing"]) == BESU_SEALING_HEADER
    assert shared["expected"] == BESU_EXPECTED
    assert bytes.fromhex(shared["extra_1_validator"]["extra_data"]) == EXTRA_1_VALIDATOR
    assert shared["extra_1_validator"]["expected"] == EXTRA_1_VALIDATOR_EXPECTED


def test_besu_sealing_header_is_the_header_without_seals() -> None:
    assert sealing_header_rlp(BESU_HEADER) == BESU_SEALING_HEADER
    assert sealing_header_rlp(BESU_SEALING_HEADER) == BESU_SEALING_HEADER


def test_besu_commit_hash_matches_recorded_value_with_or_without_seals() -> None:
    expected = bytes.fromhex(BESU_EXPECTED["commit_hash"])
    assert commit_hash(BESU_HEADER) == expected
    assert commit_hash(BESU_SEALING_HEADER) == expected
    assert keccak(BESU_SEALING_HEADER) == expected


def test_besu_seals_recover_to_three_distinct_validators() -> None:
    digest = commit_hash(BESU_HEADER)
    extra = header_extra_data(BESU_HEADER)
    signers = [recover_seal(digest, s) for s in extra.committed_seals]
    assert len(signers) == BESU_EXPECTED["committed_seal_count"] == 3
    assert len(set(signers)) == 3
    assert set(signers) <= set(BESU_VALIDATORS)
    assert [s[64] for s in extra.committed_seals] == [0, 1, 0]  # Besu's v is the recovery id


def test_besu_extra_data_decodes_and_round_trips_byte_identically() -> None:
    fields = header_fields(BESU_HEADER)
    assert len(fields) == 15  # a pre-London header
    raw = fields[HeaderField.EXTRA_DATA]
    extra = QbftExtraData.decode(raw)
    assert extra.vanity == bytes(32)
    assert extra.validators == BESU_VALIDATORS
    assert extra.vote is None
    assert extra.round == BESU_EXPECTED["round"] == 1
    assert len(extra.committed_seals) == 3
    assert extra.encode() == raw
    assert encode_header(fields) == BESU_HEADER


def test_besu_header_fields() -> None:
    fields = header_fields(BESU_HEADER)
    assert int.from_bytes(fields[HeaderField.NUMBER], "big") == BESU_EXPECTED["number"]
    assert int.from_bytes(fields[HeaderField.TIMESTAMP], "big") == BESU_EXPECTED["timestamp"]
    assert fields[HeaderField.STATE_ROOT].hex() == BESU_EXPECTED["state_root"]
    assert fields[HeaderField.MIX_HASH] == BFT_MIX_HASH


def test_extra_with_one_validator_round_trips() -> None:
    extra = QbftExtraData.decode(EXTRA_1_VALIDATOR)
    assert extra.round == EXTRA_1_VALIDATOR_EXPECTED["round"] == 0
    assert len(extra.validators) == EXTRA_1_VALIDATOR_EXPECTED["validators"] == 1
    assert len(extra.committed_seals) == 1
    assert extra.vote is None
    assert extra.encode() == EXTRA_1_VALIDATOR


def test_bft_block_hash_ignores_seals_and_round_but_commit_hash_keeps_round() -> None:
    round_1 = BESU_HEADER
    fields = header_fields(BESU_HEADER)
    extra = QbftExtraData.decode(fields[HeaderField.EXTRA_DATA])
    fields[HeaderField.EXTRA_DATA] = replace(extra, round=0, committed_seals=()).encode()
    round_0_unsealed = encode_header(fields)
    assert bft_block_hash(round_1) == bft_block_hash(round_0_unsealed) == keccak(round_0_unsealed)
    assert commit_hash(round_1) != commit_hash(round_0_unsealed)


# --------------------------------------------------------------------------- encoding rules


def test_vote_encodings_match_besu() -> None:
    recipient = b"\xab" * 20
    add = QbftExtraData(bytes(32), (), QbftVote(recipient, True), 0, ())
    drop = QbftExtraData(bytes(32), (), QbftVote(recipient, False), 0, ())
    none = QbftExtraData(bytes(32), (), None, 0, ())
    # vote = [recipient, 0xff] to add, [recipient, RLP null] to drop, [] for no vote
    assert add.encode().endswith(b"\xc0\xd7\x94" + recipient + b"\x81\xff\x80\xc0")
    assert drop.encode().endswith(b"\xc0\xd6\x94" + recipient + b"\x80\x80\xc0")
    assert none.encode() == b"\xe5\xa0" + bytes(32) + b"\xc0\xc0\x80\xc0"
    for extra in (add, drop, none):
        assert QbftExtraData.decode(extra.encode()) == extra


@pytest.mark.parametrize(
    ("round_", "encoded"),
    [(0, b"\x80"), (1, b"\x01"), (127, b"\x7f"), (128, b"\x81\x80"), (256, b"\x82\x01\x00")],
)
def test_round_is_an_rlp_scalar(round_: int, encoded: bytes) -> None:
    extra = QbftExtraData(bytes(32), (), None, round_, ())
    assert extra.encode().endswith(b"\xc0" + encoded + b"\xc0")  # ... vote, round, seals
    assert QbftExtraData.decode(extra.encode()).round == round_


def _raw_extra(
    vanity: object, validators: object, vote: object, round_: object, seals: object
) -> bytes:
    return bytes(rlp.encode([vanity, validators, vote, round_, seals]))


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(_raw_extra(bytes(31), [], [], b"", []), id="vanity-31-bytes"),
        pytest.param(_raw_extra(bytes(33), [], [], b"", []), id="vanity-33-bytes"),
        pytest.param(_raw_extra(bytes(32), [bytes(19)], [], b"", []), id="short-validator"),
        pytest.param(_raw_extra(bytes(32), [], [], b"", [bytes(64)]), id="short-seal"),
        pytest.param(_raw_extra(bytes(32), [], [], b"\x00", []), id="round-leading-zero"),
        pytest.param(_raw_extra(bytes(32), [], [], b"\x01" * 5, []), id="round-5-bytes"),
        pytest.param(_raw_extra(bytes(32), [], [], [], []), id="round-is-list"),
        pytest.param(_raw_extra(bytes(32), [], b"", b"", []), id="vote-is-bytes"),
        pytest.param(_raw_extra(bytes(32), [], [bytes(20), b"\x00"], b"", []), id="vote-0x00"),
        pytest.param(_raw_extra(bytes(32), [], [bytes(20), b"\x01"], b"", []), id="vote-0x01"),
        pytest.param(_raw_extra(bytes(32), [], [bytes(20)], b"", []), id="vote-1-item"),
        pytest.param(_raw_extra(bytes(32), [], [bytes(19), b"\xff"], b"", []), id="vote-short"),
        pytest.param(_raw_extra(bytes(32), b"", [], b"", []), id="validators-not-list"),
        pytest.param(rlp.encode([bytes(32), [], [], b""]), id="4-items"),
        pytest.param(rlp.encode([bytes(32), [], [], b"", [], []]), id="6-items"),
        pytest.param(rlp.encode(bytes(32)), id="not-a-list"),
        pytest.param(EXTRA_1_VALIDATOR + b"\x00", id="trailing-byte"),
        pytest.param(EXTRA_1_VALIDATOR[:-1], id="truncated"),
        pytest.param(b"", id="empty"),
    ],
)
def test_malformed_extra_data_is_rejected(raw: bytes) -> None:
    with pytest.raises(VerificationError):
        QbftExtraData.decode(raw)


def test_extra_data_constructor_checks_sizes() -> None:
    with pytest.raises(VerificationError, match="round"):
        QbftExtraData(bytes(32), (), None, MAX_ROUND + 1, ())
    with pytest.raises(VerificationError, match="round"):
        QbftExtraData(bytes(32), (), None, -1, ())
    with pytest.raises(VerificationError, match="vote recipient"):
        QbftExtraData(bytes(32), (), QbftVote(bytes(21), True), 0, ())
    assert QbftExtraData.decode(
        QbftExtraData(bytes(32), (), None, MAX_ROUND, ()).encode()
    ).round == (MAX_ROUND)


@settings(max_examples=200)
@given(
    validators=st.lists(st.binary(min_size=20, max_size=20), max_size=8),
    vote=st.none() | st.builds(QbftVote, st.binary(min_size=20, max_size=20), st.booleans()),
    round_=st.integers(0, MAX_ROUND),
    seals=st.lists(st.binary(min_size=65, max_size=65), max_size=5),
    vanity=st.binary(min_size=32, max_size=32),
)
def test_extra_data_round_trips(
    validators: list[bytes], vote: QbftVote | None, round_: int, seals: list[bytes], vanity: bytes
) -> None:
    extra = QbftExtraData(vanity, tuple(validators), vote, round_, tuple(seals))
    assert QbftExtraData.decode(extra.encode()) == extra


@settings(max_examples=300)
@given(position=st.integers(0, len(EXTRA_1_VALIDATOR) - 1), value=st.integers(0, 255))
def test_decode_accepts_only_canonical_bytes(position: int, value: int) -> None:
    """Whatever decodes re-encodes to the very same bytes; the rest is a VerificationError."""
    mutated = bytearray(EXTRA_1_VALIDATOR)
    mutated[position] = value
    try:
        extra = QbftExtraData.decode(bytes(mutated))
    except VerificationError:
        return
    assert extra.encode() == bytes(mutated)


@given(st.binary(max_size=200))
def test_random_bytes_never_raise_anything_but_verification_error(data: bytes) -> None:
    for parse in (QbftExtraData.decode, header_fields, commit_hash, bft_block_hash):
        with contextlib.suppress(VerificationError):
            parse(data)


# --------------------------------------------------------------------------- headers of every fork


@pytest.mark.parametrize("field_count", [15, 16, 17, 20, 21])
def test_sealing_works_for_every_header_length(field_count: int) -> None:
    validators = ADDRESSES[:4]
    sealed = sealed_header(validators, KEYS[:3], field_count=field_count, round_=2)
    fields = header_fields(sealed)
    assert len(fields) == field_count
    extra = header_extra_data(sealed)
    assert extra.round == 2 and len(extra.committed_seals) == 3
    digest = commit_hash(sealed)
    assert digest == commit_hash(make_header(validators, field_count=field_count, round_=2))
    assert [recover_seal(digest, s) for s in extra.committed_seals] == list(ADDRESSES[:3])
    unsealed = header_fields(sealing_header_rlp(sealed))
    assert QbftExtraData.decode(unsealed[HeaderField.EXTRA_DATA]).committed_seals == ()
    # every field but extraData is untouched
    assert [f for i, f in enumerate(unsealed) if i != HeaderField.EXTRA_DATA] == [
        f for i, f in enumerate(fields) if i != HeaderField.EXTRA_DATA
    ]


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(encode_header([b"\x01"] * 14), id="14-fields"),
        pytest.param(encode_header([b"\x01"] * 22), id="22-fields"),
        pytest.param(rlp.encode([[b"\x01"]] + [b"\x01"] * 14), id="nested-list-field"),
        pytest.param(rlp.encode(b"header"), id="not-a-list"),
        pytest.param(BESU_HEADER + b"\x00", id="trailing-byte"),
        pytest.param(BESU_HEADER[:-1], id="truncated"),
    ],
)
def test_malformed_headers_are_rejected(header: bytes) -> None:
    with pytest.raises(VerificationError):
        header_fields(header)


def test_commit_hash_does_not_depend_on_the_seals() -> None:
    header = make_header(ADDRESSES[:4], round_=3)
    digest = commit_hash(header)
    one = with_committed_seals(header, [seal(digest, KEYS[0])])
    two = with_committed_seals(header, [seal(digest, KEYS[1]), seal(digest, KEYS[2])])
    assert commit_hash(one) == commit_hash(two) == digest == keccak(header)
    assert bft_block_hash(one) == bft_block_hash(two) == keccak(make_header(ADDRESSES[:4]))


def test_genesis_is_hashed_as_it_stands() -> None:
    genesis = make_header(ADDRESSES[:4], number=0, round_=5)
    assert commit_hash(genesis) == bft_block_hash(genesis) == keccak(genesis)


# --------------------------------------------------------------------------- seals


def test_seal_and_recover() -> None:
    digest = keccak(b"some block")
    for key, address in zip(KEYS, ADDRESSES):
        committed_seal = seal(digest, key)
        assert len(committed_seal) == 65 and committed_seal[64] in (0, 1)
        assert recover_seal(digest, committed_seal) == address
        assert recover_seal(keccak(b"another block"), committed_seal) != address


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: s[:64], "65 bytes"),
        (lambda s: s + b"\x00", "65 bytes"),
        (lambda s: s[:64] + b"\x02", "recovery id"),
        (lambda s: s[:64] + bytes([27 + s[64]]), "recovery id"),  # Ethereum-transaction style v
        (lambda s: bytes(32) + s[32:], "not a valid"),  # r = 0
        (lambda s: b"\xff" * 64 + s[64:], "not a valid"),  # r, s >= curve order
    ],
)
def test_malformed_seals_are_rejected(mutate: object, message: str) -> None:
    digest = keccak(b"block")
    bad = mutate(seal(digest, KEYS[0]))  # type: ignore[operator]
    with pytest.raises(SignatureError, match=message):
        recover_seal(digest, bad)


def test_commit_hash_must_be_32_bytes() -> None:
    with pytest.raises(VerificationError):
        seal(b"\x01" * 31, KEYS[0])
    with pytest.raises(VerificationError):
        recover_seal(b"\x01" * 33, bytes(65))


@pytest.mark.parametrize("key", [bytes(32), b"\xff" * 32, b"\x01" * 31])
def test_invalid_private_keys_are_configuration_errors(key: bytes) -> None:
    with pytest.raises(ConfigurationError):
        seal(keccak(b"block"), key)


@pytest.mark.parametrize(
    ("validators", "needed"),
    [(1, 1), (2, 2), (3, 2), (4, 3), (5, 4), (6, 4), (7, 5), (10, 7), (100, 67)],
)
def test_quorum_is_ceil_two_thirds(validators: int, needed: int) -> None:
    assert quorum(validators) == needed
