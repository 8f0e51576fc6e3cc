"""QBFT light client: the real Besu block, each rule, tampering, quorum edges and properties."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from eth_hash.auto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from kakehashi.errors import VerificationError
from kakehashi.ledgers.evm.qbft import (
    HeaderField,
    QbftExtraData,
    QbftVote,
    bft_block_hash,
    encode_header,
    header_fields,
    quorum,
    seal,
    sealing_header_rlp,
    with_committed_seals,
)
from kakehashi.lightclients.qbft import (
    QbftHeader,
    commit_hash,
    parse_header,
    recover_signers,
    verify_header,
    verify_parsed_header,
)
from tests.ledgers.evm.test_qbft_format import (
    ADDRESSES,
    BESU_EXPECTED,
    BESU_HEADER,
    BESU_SEALING_HEADER,
    BESU_VALIDATORS,
    KEYS,
    make_header,
    sealed_header,
)

TIMESTAMP = 1_700_000_000


def _replace_field(header_rlp: bytes, index: int, value: bytes) -> bytes:
    fields = header_fields(header_rlp)
    fields[index] = value
    return encode_header(fields)


def _replace_extra(header_rlp: bytes, **changes: object) -> bytes:
    fields = header_fields(header_rlp)
    extra = QbftExtraData.decode(fields[HeaderField.EXTRA_DATA])
    values = {
        "vanity": extra.vanity,
        "validators": extra.validators,
        "vote": extra.vote,
        "round": extra.round,
        "committed_seals": extra.committed_seals,
        **changes,
    }
    fields[HeaderField.EXTRA_DATA] = QbftExtraData(**values).encode()  # type: ignore[arg-type]
    return encode_header(fields)


# --------------------------------------------------------------------------- the Besu vector


def test_besu_block_verifies() -> None:
    header = verify_header(BESU_HEADER, BESU_VALIDATORS)
    assert isinstance(header, QbftHeader)
    assert header.number == BESU_EXPECTED["number"] == 7528
    assert header.timestamp == BESU_EXPECTED["timestamp"]
    assert header.state_root.hex() == BESU_EXPECTED["state_root"]
    assert header.round == 1
    assert header.validators == BESU_VALIDATORS
    assert header.commit_hash.hex() == BESU_EXPECTED["commit_hash"]
    assert header.parent_hash == header_fields(BESU_HEADER)[HeaderField.PARENT_HASH]
    assert header.hash == keccak(BESU_HEADER)
    assert header.bft_hash == bft_block_hash(BESU_SEALING_HEADER)
    assert commit_hash(BESU_HEADER).hex() == BESU_EXPECTED["commit_hash"]


@pytest.mark.parametrize("number", [0, 1, 7528])
@pytest.mark.parametrize("round_", [0, 3])
def test_parse_header_hashes_as_the_format_functions(number: int, round_: int) -> None:
    """parse_header decodes the bytes once; its hashes are still those of the format module
    (which decode them again each), genesis rule included."""
    header_rlp = sealed_header(ADDRESSES[:4], KEYS[:3], number=number, round_=round_)
    parsed = parse_header(header_rlp)
    assert parsed.hash == keccak(header_rlp)
    assert parsed.commit_hash == commit_hash(header_rlp) == keccak(sealing_header_rlp(header_rlp))
    assert parsed.bft_hash == bft_block_hash(header_rlp)
    assert parse_header(BESU_HEADER).bft_hash == bft_block_hash(BESU_HEADER)


def test_a_parsed_header_verifies_as_its_bytes() -> None:
    parsed = parse_header(BESU_HEADER)
    assert verify_parsed_header(parsed, BESU_VALIDATORS) == verify_header(
        BESU_HEADER, BESU_VALIDATORS
    )
    with pytest.raises(VerificationError, match="height rule"):
        verify_parsed_header(parsed, BESU_VALIDATORS, trusted_height=parsed.number)
    with pytest.raises(VerificationError, match="quorum"):
        verify_parsed_header(
            parse_header(_replace_extra(BESU_HEADER, committed_seals=())), BESU_VALIDATORS
        )


def test_besu_block_signers() -> None:
    signers = recover_signers(parse_header(BESU_HEADER))
    assert len(signers) == len(set(signers)) == 3
    assert set(signers) <= set(BESU_VALIDATORS)


def test_besu_block_verifies_with_time_and_height_options() -> None:
    ts = BESU_EXPECTED["timestamp"]
    verify_header(
        BESU_HEADER,
        BESU_VALIDATORS,
        trusted_height=7527,
        trusted_timestamp=ts - 2,
        now=ts + 10,
        trusting_period=3600,
        max_clock_drift=5,
    )


def test_besu_block_without_seals_fails_quorum() -> None:
    with pytest.raises(VerificationError, match=r"quorum rule failed: seals from 0 .* 3 needed"):
        verify_header(BESU_SEALING_HEADER, BESU_VALIDATORS)


def test_besu_block_from_one_trusted_set_to_another() -> None:
    v0, v1, v2, v3 = BESU_VALIDATORS  # v0, v1 and v3 sealed block 7528
    outsider, other = b"\x99" * 20, b"\x98" * 20
    # two of four trusted validators sealed: 2 > 4/3
    verify_header(BESU_HEADER, (v0, v1, v2, outsider))
    # one of four: 1 <= 4/3
    with pytest.raises(VerificationError, match=r"trust rule failed: .* only 1 of the 4"):
        verify_header(BESU_HEADER, (v2, v3, outsider, other))
    with pytest.raises(VerificationError, match=r"trust rule failed: .* only 0 of the 4"):
        verify_header(BESU_HEADER, ADDRESSES[:4])


def test_every_single_byte_change_of_the_besu_block_is_rejected() -> None:
    for position in range(len(BESU_HEADER)):
        tampered = bytearray(BESU_HEADER)
        tampered[position] ^= 0x01
        with pytest.raises(VerificationError):
            verify_header(bytes(tampered), BESU_VALIDATORS)


@settings(max_examples=300, deadline=None)
@given(position=st.integers(0, len(BESU_HEADER) - 1), value=st.integers(0, 255))
def test_any_byte_value_anywhere_in_the_besu_block_is_rejected(position: int, value: int) -> None:
    if BESU_HEADER[position] == value:
        return
    tampered = bytearray(BESU_HEADER)
    tampered[position] = value
    with pytest.raises(VerificationError):
        verify_header(bytes(tampered), BESU_VALIDATORS)


@pytest.mark.parametrize(
    ("index", "value"),
    [
        (HeaderField.STATE_ROOT, b"\x00" * 32),
        (HeaderField.PARENT_HASH, b"\x00" * 32),
        (HeaderField.NUMBER, (7529).to_bytes(2, "big")),
        (HeaderField.TIMESTAMP, (BESU_EXPECTED["timestamp"] + 1).to_bytes(4, "big")),
    ],
)
def test_besu_block_with_a_changed_field_is_rejected(index: int, value: bytes) -> None:
    with pytest.raises(VerificationError, match="not one of the block's 4 validators"):
        verify_header(_replace_field(BESU_HEADER, index, value), BESU_VALIDATORS)


@pytest.mark.parametrize(
    "changes",
    [
        {"round": 0},
        {"round": 2},
        {"validators": tuple(reversed(BESU_VALIDATORS))},
        {"validators": (*BESU_VALIDATORS[:3], b"\x01" * 20)},
        {"validators": BESU_VALIDATORS[:3]},
        {"vote": QbftVote(b"\x01" * 20, True)},
        {"vanity": b"\x01" * 32},
    ],
    ids=["round-0", "round-2", "reordered", "replaced", "removed", "vote", "vanity"],
)
def test_besu_block_with_changed_extra_data_is_rejected(changes: dict[str, object]) -> None:
    with pytest.raises(VerificationError):
        verify_header(_replace_extra(BESU_HEADER, **changes), BESU_VALIDATORS)


# --------------------------------------------------------------------------- seal and quorum rules


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7])
def test_quorum_edges(n: int) -> None:
    validators = ADDRESSES[:n]
    for signers in range(n + 1):
        header = sealed_header(validators, KEYS[:signers])
        if signers >= quorum(n):
            assert verify_header(header, validators).number == 1
        else:
            with pytest.raises(VerificationError, match="quorum rule failed"):
                verify_header(header, validators)


def test_duplicate_seals_count_once() -> None:
    validators = ADDRESSES[:4]
    with pytest.raises(VerificationError, match=r"seals from 2 distinct validators of 4"):
        verify_header(sealed_header(validators, [KEYS[0], KEYS[1], KEYS[0]]), validators)
    verify_header(sealed_header(validators, [KEYS[0], KEYS[1], KEYS[2], KEYS[0]]), validators)


def test_seal_by_a_non_validator_is_rejected_even_with_quorum() -> None:
    validators = ADDRESSES[:4]
    header = sealed_header(validators, [*KEYS[:4], KEYS[5]])
    with pytest.raises(VerificationError, match=f"seal 4 is by 0x{ADDRESSES[5].hex()}"):
        verify_header(header, validators)


def test_seal_over_another_round_is_rejected() -> None:
    validators = ADDRESSES[:4]
    round_0 = make_header(validators, round_=0)
    seals = [seal(commit_hash(round_0), k) for k in KEYS[:4]]
    round_1 = with_committed_seals(make_header(validators, round_=1), seals)
    with pytest.raises(VerificationError, match="not one of the block's"):
        verify_header(round_1, validators)


def test_malformed_seal_is_rejected() -> None:
    validators = ADDRESSES[:4]
    good = sealed_header(validators, KEYS[:3])
    seals = list(parse_header(good).committed_seals)
    seals[1] = seals[1][:64] + b"\x1b"
    with pytest.raises(VerificationError, match="committed seal 1 is invalid"):
        verify_header(with_committed_seals(good, seals), validators)


def test_header_validator_list_must_be_a_non_empty_set() -> None:
    with pytest.raises(VerificationError, match="lists no validators"):
        verify_header(sealed_header((), []), ADDRESSES[:1])
    twice = (ADDRESSES[0], ADDRESSES[1], ADDRESSES[0])
    with pytest.raises(VerificationError, match="twice"):
        verify_header(sealed_header(twice, KEYS[:2]), twice[:2])


@pytest.mark.parametrize(
    "trusted",
    [(), (b"\x01" * 19,), ("0x" + "01" * 20,), (ADDRESSES[0], ADDRESSES[0])],
    ids=["empty", "short", "str", "duplicate"],
)
def test_malformed_trusted_set_is_rejected(trusted: Sequence[bytes]) -> None:
    header = sealed_header(ADDRESSES[:1], KEYS[:1])
    with pytest.raises(VerificationError, match="trusted validator"):
        verify_header(header, trusted)


def test_same_set_in_another_order_is_the_same_set() -> None:
    header = sealed_header(ADDRESSES[:4], KEYS[:3])
    verify_header(header, tuple(reversed(ADDRESSES[:4])))


# --------------------------------------------------------------------------- trust rule


def test_validator_set_change_with_more_than_a_third_of_trusted_sealers_is_accepted() -> None:
    trusted = ADDRESSES[:6]
    new_set = (*ADDRESSES[:3], *ADDRESSES[6:9])  # 3 of 6 trusted stay: 3 > 6/3
    header = sealed_header(new_set, [*KEYS[:3], *KEYS[6:9]])
    assert verify_header(header, trusted).validators == new_set


def test_validator_set_change_with_a_third_or_less_of_trusted_sealers_is_rejected() -> None:
    trusted = ADDRESSES[:6]
    new_set = (*ADDRESSES[:2], *ADDRESSES[6:10])  # 2 of 6 trusted stay: 2 <= 6/3
    header = sealed_header(new_set, [*KEYS[:2], *KEYS[6:10]])
    verify_header(header, new_set)  # final under its own set ...
    with pytest.raises(VerificationError, match=r"only 2 of the 6 trusted .* \(3\) must"):
        verify_header(header, trusted)  # ... but not enough trusted validators vouch for it


def test_overlap_that_did_not_seal_does_not_count() -> None:
    trusted = ADDRESSES[:6]
    new_set = (*ADDRESSES[:3], *ADDRESSES[6:9])
    header = sealed_header(new_set, [KEYS[0], *KEYS[6:9]])  # quorum 4 of 6, one trusted
    with pytest.raises(VerificationError, match="only 1 of the 6 trusted"):
        verify_header(header, trusted)


@pytest.mark.parametrize(("vouching", "accepted"), [(0, False), (1, False), (2, True), (3, True)])
def test_trust_threshold_with_three_trusted(vouching: int, accepted: bool) -> None:
    trusted = ADDRESSES[:3]
    new_set = ADDRESSES[:9]  # quorum 6, met by the six newcomers alone
    header = sealed_header(new_set, [*KEYS[3:9], *KEYS[:vouching]])
    if accepted:
        verify_header(header, trusted)
    else:
        with pytest.raises(VerificationError, match=f"only {vouching} of the 3 trusted"):
            verify_header(header, trusted)


# --------------------------------------------------------------------------- height and time rules


def test_height_rule() -> None:
    header = sealed_header(ADDRESSES[:4], KEYS[:3], number=10)
    verify_header(header, ADDRESSES[:4], trusted_height=9)
    for trusted_height in (10, 11):
        with pytest.raises(VerificationError, match="height rule failed"):
            verify_header(header, ADDRESSES[:4], trusted_height=trusted_height)


def test_header_may_not_be_older_than_the_trusted_state() -> None:
    header = sealed_header(ADDRESSES[:4], KEYS[:3], timestamp=TIMESTAMP)
    verify_header(header, ADDRESSES[:4], trusted_timestamp=TIMESTAMP)
    with pytest.raises(VerificationError, match="before the trusted state"):
        verify_header(header, ADDRESSES[:4], trusted_timestamp=TIMESTAMP + 1)


def test_trusting_period() -> None:
    header = sealed_header(ADDRESSES[:4], KEYS[:3], timestamp=TIMESTAMP)
    trusted = TIMESTAMP - 100
    verify_header(
        header, ADDRESSES[:4], trusted_timestamp=trusted, now=trusted + 99.5, trusting_period=100
    )
    for now in (trusted + 100, trusted + 1000):
        with pytest.raises(VerificationError, match="expired"):
            verify_header(
                header, ADDRESSES[:4], trusted_timestamp=trusted, now=now, trusting_period=100
            )


def test_clock_drift() -> None:
    header = sealed_header(ADDRESSES[:4], KEYS[:3], timestamp=TIMESTAMP)
    verify_header(header, ADDRESSES[:4], now=TIMESTAMP - 5, max_clock_drift=5)
    verify_header(header, ADDRESSES[:4], now=TIMESTAMP + 3600, max_clock_drift=0)
    with pytest.raises(VerificationError, match="check the clocks"):
        verify_header(header, ADDRESSES[:4], now=TIMESTAMP - 5.5, max_clock_drift=5)


def test_time_options_need_now() -> None:
    header = sealed_header(ADDRESSES[:4], KEYS[:3])
    with pytest.raises(ValueError):
        verify_header(header, ADDRESSES[:4], trusting_period=100, trusted_timestamp=TIMESTAMP)
    with pytest.raises(ValueError):
        verify_header(header, ADDRESSES[:4], trusting_period=100, now=TIMESTAMP)
    with pytest.raises(ValueError):
        verify_header(header, ADDRESSES[:4], max_clock_drift=5)


# --------------------------------------------------------------------------- properties

POOL = range(len(KEYS))


@settings(max_examples=60, deadline=None)
@given(data=st.data(), n=st.integers(1, 10))
def test_accepted_iff_quorum_of_distinct_validators(data: st.DataObject, n: int) -> None:
    validators = ADDRESSES[:n]
    signers = data.draw(st.lists(st.integers(0, n - 1), max_size=2 * n), label="signers")
    header = sealed_header(validators, [KEYS[i] for i in signers])
    if len(set(signers)) >= quorum(n):
        verify_header(header, validators)
    else:
        with pytest.raises(VerificationError, match="quorum rule failed"):
            verify_header(header, validators)


@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_accepted_iff_every_rule_holds(data: st.DataObject) -> None:
    """A model of the rules: random trusted and header sets from one pool, random sealers."""
    trusted = data.draw(st.sets(st.sampled_from(POOL), min_size=1, max_size=7), label="trusted")
    header_set = data.draw(st.sets(st.sampled_from(POOL), min_size=1, max_size=7), label="header")
    sealers = data.draw(st.lists(st.sampled_from(POOL), max_size=9), label="sealers")
    ordered = sorted(header_set)
    header = sealed_header([ADDRESSES[i] for i in ordered], [KEYS[i] for i in sealers])

    distinct = set(sealers)
    expected = (
        distinct <= header_set
        and len(distinct) >= quorum(len(header_set))
        and (header_set == trusted or 3 * len(distinct & trusted) > len(trusted))
    )
    trusted_addresses = [ADDRESSES[i] for i in sorted(trusted)]
    if expected:
        verify_header(header, trusted_addresses)
    else:
        with pytest.raises(VerificationError):
            verify_header(header, trusted_addresses)


@given(st.binary(max_size=300))
def test_garbage_raises_only_verification_error(data: bytes) -> None:
    with pytest.raises(VerificationError):
        verify_header(data, BESU_VALIDATORS)
