"""LCP proxy messages: Datachain's recorded enclave output, an independent ABI codec, strictness.

The vectors (``tests/vectors/lcp``, copied from lcp-solidity's ``test/data``) are what a real LCP
enclave signed: once attested by Intel (client-01) and once in simulation mode (client-02).
"""

from __future__ import annotations

import base64
import contextlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import coincurve
import eth_abi
import pytest
from eth_hash.auto import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kakehashi.errors import SerializationError, SignatureError, VerificationError
from kakehashi.lcp.messages import (
    EmittedState,
    EmptyValidationContext,
    Height,
    MisbehaviourProxyMessage,
    PrevState,
    ProxyMessage,
    TrustingPeriodValidationContext,
    UpdateStateProxyMessage,
    ValidationContext,
    VerifyMembershipProxyMessage,
    decode,
    decode_validation_context,
    encode,
    encode_validation_context,
    message_hash,
    recover_signer,
    sign_message,
)
from kakehashi.ledgers.evm.qbft import validator_address

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "lcp"
FLOWS = ("client-01", "client-02")
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

# ---------------------------------------------------------------------------- vector helpers


def _load(flow: str, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / flow / name).read_text())
    return data


@dataclass(frozen=True)
class Step:
    flow: str
    name: str
    message: bytes
    signature: bytes
    input: dict[str, Any]


@cache
def _steps(flow: str) -> dict[str, Step]:
    steps = {}
    for path in sorted((VECTORS / flow).glob("*_result")):
        result = json.loads(path.read_text())
        proof = result.get("proof", result)  # init_client wraps it with the client id
        prefix = path.name.removesuffix("_result")
        steps[prefix[:3]] = Step(
            flow=flow,
            name=prefix,
            message=base64.b64decode(proof["message"]),
            signature=base64.b64decode(proof["signature"]),
            input=_load(flow, f"{prefix}_input"),
        )
    return steps


def _all_steps() -> list[Step]:
    return [step for flow in FLOWS for step in _steps(flow).values()]


def _signed_steps() -> list[Step]:
    return [step for step in _all_steps() if step.signature]


@cache
def _enclave_key(flow: str) -> bytes:
    return base64.b64decode(_load(flow, "001-avr")["enclave_key"])


def _step_id(step: Step) -> str:
    return f"{step.flow}/{step.name}"


def _protobuf(data: bytes) -> dict[int, list[int | bytes]]:
    """Fields of one protobuf message: varints as ints, length-delimited fields as bytes."""
    fields: dict[int, list[int | bytes]] = {}
    i = 0

    def varint() -> int:
        nonlocal i
        value = shift = 0
        while True:
            byte = data[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    while i < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value = varint()
        elif wire == 2:
            size = varint()
            value, i = data[i : i + size], i + size
        elif wire == 1:
            value, i = int.from_bytes(data[i : i + 8], "little"), i + 8
        elif wire == 5:
            value, i = int.from_bytes(data[i : i + 4], "little"), i + 4
        else:
            raise AssertionError(f"unexpected protobuf wire type {wire}")
        fields.setdefault(number, []).append(value)
    return fields


def _field(data: bytes, *path: int) -> int | bytes:
    value: int | bytes = data
    for number in path:
        assert isinstance(value, bytes)
        value = _protobuf(value).get(number, [0])[0]  # proto3: an absent scalar is zero
    return value


def _bytes_field(data: bytes, *path: int) -> bytes:
    value = _field(data, *path)
    assert isinstance(value, bytes)
    return value


def _int_field(data: bytes, *path: int) -> int:
    value = _field(data, *path)
    assert isinstance(value, int)
    return value


def _timestamp_ns(timestamp: bytes) -> int:
    """A google.protobuf.Timestamp in nanoseconds."""
    return _int_field(timestamp, 1) * 10**9 + _int_field(timestamp, 2)


def _height(height: bytes) -> Height:
    """An ibc.core.client.v1.Height."""
    return Height(_int_field(height, 1), _int_field(height, 2))


def _any(type_url: str, value: bytes) -> bytes:
    """google.protobuf.Any{type_url, value} (both fields are short enough for 1-byte lengths)."""
    url = type_url.encode()
    assert len(url) < 128 and len(value) < 128
    return bytes([0x0A, len(url)]) + url + bytes([0x12, len(value)]) + value


# ---------------------------------------------------------------------------- the vectors


def test_both_flows_have_all_steps() -> None:
    for flow in FLOWS:
        assert sorted(_steps(flow)) == ["002", "003", "004", "005", "006", "007"]


@pytest.mark.parametrize("flow", FLOWS)
def test_avr_names_the_enclave_key_in_the_quote_report_data(flow: str) -> None:
    avr = _load(flow, "001-avr")
    quote = base64.b64decode(json.loads(avr["avr"])["isvEnclaveQuoteBody"])
    report_data = quote[368 : 368 + 64]
    assert report_data[0] == 1
    assert report_data[1:21] == _enclave_key(flow)
    assert len(_enclave_key(flow)) == 20


@pytest.mark.parametrize("step", _all_steps(), ids=_step_id)
def test_vector_decodes_and_re_encodes_byte_identically(step: Step) -> None:
    message = decode(step.message)
    assert encode(message) == step.message
    expected = UpdateStateProxyMessage if "client" in step.name else VerifyMembershipProxyMessage
    assert type(message) is expected


@pytest.mark.parametrize("step", _signed_steps(), ids=_step_id)
def test_vector_signature_recovers_to_the_attested_enclave_key(step: Step) -> None:
    assert recover_signer(step.message, step.signature) == _enclave_key(step.flow)


@pytest.mark.parametrize("flow", FLOWS)
def test_create_client_message_is_unsigned(flow: str) -> None:
    # LCP returns the create-client message without a signature: the client trusts the initial
    # state it is created with, so no one checks one.
    step = _steps(flow)["002"]
    assert step.signature == b""
    with pytest.raises(SignatureError):
        recover_signer(step.message, step.signature)


@pytest.mark.parametrize("flow", FLOWS)
def test_create_client_message_carries_the_initial_state(flow: str) -> None:
    step = _steps(flow)["002"]
    message = decode(step.message)
    assert isinstance(message, UpdateStateProxyMessage)
    client_state = step.input["any_client_state"]
    consensus_state = base64.b64decode(step.input["any_consensus_state"]["value"])
    latest_height = _height(_bytes_field(base64.b64decode(client_state["value"]), 7))

    assert not message.has_prev_state()
    assert message.prev_height == Height(0, 0)
    assert message.prev_state_id == bytes(32)
    assert message.post_height == latest_height
    assert message.post_height.revision_number == 1  # chain id "ibc-1"
    assert message.post_state_id != bytes(32)
    assert message.timestamp == _timestamp_ns(_bytes_field(consensus_state, 1))
    assert message.context == EmptyValidationContext()
    # the emitted state is the client state the relayer supplied, as a protobuf Any
    assert message.emitted_states == (
        EmittedState(
            latest_height,
            _any(client_state["type_url"], base64.b64decode(client_state["value"])),
        ),
    )


@pytest.mark.parametrize("flow", FLOWS)
@pytest.mark.parametrize(("update", "previous"), [("003", "002"), ("005", "003")])
def test_update_message_follows_the_header_it_verified(
    flow: str, update: str, previous: str
) -> None:
    step = _steps(flow)[update]
    message = decode(step.message)
    before = decode(_steps(flow)[previous].message)
    assert isinstance(message, UpdateStateProxyMessage)
    assert isinstance(before, UpdateStateProxyMessage)

    # Tendermint Header{signed_header{header{chain_id 2, height 3, time 4}}, trusted_height 3}
    header = base64.b64decode(step.input["any_header"]["value"])
    assert step.input["any_header"]["type_url"] == "/ibc.lightclients.tendermint.v1.Header"
    header_time = _timestamp_ns(_bytes_field(header, 1, 1, 4))
    assert _bytes_field(header, 1, 1, 2) == b"ibc-1"
    assert message.post_height == Height(1, _int_field(header, 1, 1, 3))
    assert message.prev_height == _height(_bytes_field(header, 3))
    assert message.timestamp == header_time

    # it extends exactly the state the previous message produced
    assert message.has_prev_state()
    assert (message.prev_height, message.prev_state_id) == (
        before.post_height,
        before.post_state_id,
    )
    assert message.post_state_id not in (bytes(32), message.prev_state_id)
    assert message.post_height > message.prev_height

    # the validation context: the new header's time, the trusted state's time, 14 days, 5 s
    assert message.context == TrustingPeriodValidationContext(
        trusting_period=14 * 24 * 3600 * 10**9,
        clock_drift=5 * 10**9,
        untrusted_header_timestamp=header_time,
        trusted_state_timestamp=before.timestamp,
    )
    # the enclave signed it at the relayer's clock, where the context holds (and not forever)
    message.context.check(step.input["current_timestamp"] * 10**9)
    with pytest.raises(VerificationError, match="trusting period"):
        message.context.check(before.timestamp + 14 * 24 * 3600 * 10**9)

    # include_state: the client state after the update is emitted at the new height
    assert step.input["include_state"] is True
    assert [state.height for state in message.emitted_states] == [message.post_height]


@pytest.mark.parametrize("flow", FLOWS)
@pytest.mark.parametrize(("verify", "update"), [("004", "003"), ("006", "005"), ("007", "005")])
def test_verify_message_states_what_the_relayer_asked(flow: str, verify: str, update: str) -> None:
    step = _steps(flow)[verify]
    message = decode(step.message)
    state = decode(_steps(flow)[update].message)
    assert isinstance(message, VerifyMembershipProxyMessage)
    assert isinstance(state, UpdateStateProxyMessage)

    assert message.prefix == base64.b64decode(step.input["prefix"]) == b"ibc"
    assert message.path == step.input["path"].encode()
    # proven against the latest verified state
    assert (message.height, message.state_id) == (state.post_height, state.post_state_id)
    if "value" in step.input:
        value = base64.b64decode(step.input["value"])
        assert message.value == keccak(value)
        assert message.proves(value)
        assert not message.proves(value + b"\x00")
        assert not message.proves(None)
    else:  # a receipt's absence
        assert message.is_non_membership()
        assert message.proves(None)
        assert not message.proves(b"")


def test_flows_differ_only_where_the_enclave_and_the_chain_did() -> None:
    # the channel end proven in both flows is the same value (same relayer script)
    one = decode(_steps("client-01")["004"].message)
    two = decode(_steps("client-02")["004"].message)
    assert isinstance(one, VerifyMembershipProxyMessage)
    assert isinstance(two, VerifyMembershipProxyMessage)
    assert one.value == two.value
    assert one.state_id != two.state_id
    assert _enclave_key("client-01") != _enclave_key("client-02")


# ---------------------------------------------------------------------------- altered bytes


@pytest.mark.parametrize("step", _signed_steps(), ids=_step_id)
def test_every_altered_message_byte_is_caught(step: Step) -> None:
    enclave_key = _enclave_key(step.flow)
    decodable = 0
    for index in range(len(step.message)):
        for flip in (0x01, 0x80):
            altered = bytearray(step.message)
            altered[index] ^= flip
            altered_bytes = bytes(altered)
            try:
                message = decode(altered_bytes)
            except SerializationError:
                pass
            else:
                decodable += 1
                assert encode(message) == altered_bytes
            try:
                signer = recover_signer(altered_bytes, step.signature)
            except SignatureError:
                continue
            assert signer != enclave_key
    assert decodable > 0  # the fields themselves were altered too, not only the framing


@pytest.mark.parametrize("step", _signed_steps(), ids=_step_id)
def test_every_altered_signature_byte_is_caught(step: Step) -> None:
    enclave_key = _enclave_key(step.flow)
    for index in range(len(step.signature)):
        altered = bytearray(step.signature)
        altered[index] ^= 0x01
        with contextlib.suppress(SignatureError):
            assert recover_signer(step.message, bytes(altered)) != enclave_key


@pytest.mark.parametrize("step", _signed_steps()[:2], ids=_step_id)
def test_signature_forms_lcp_solidity_accepts_and_refuses(step: Step) -> None:
    key = _enclave_key(step.flow)
    rs, v = step.signature[:64], step.signature[64]
    assert v in (0, 1)
    assert recover_signer(step.message, rs + bytes([v + 27])) == key  # Ethereum's 27/28
    for bad_v in (2, 26, 29, 255):
        with pytest.raises(SignatureError, match="v must"):
            recover_signer(step.message, rs + bytes([bad_v]))
    # the malleable twin (n - s, other v) is a valid ECDSA signature by the same key, which
    # OpenZeppelin's ECDSA (so lcp-solidity) refuses: so do we
    s = int.from_bytes(rs[32:], "big")
    twin = rs[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([1 - v])
    public_key = coincurve.PublicKey.from_signature_and_message(
        twin, keccak(step.message), hasher=None
    )
    assert keccak(public_key.format(compressed=False)[1:])[-20:] == key
    with pytest.raises(SignatureError, match="lower half"):
        recover_signer(step.message, twin)
    for bad in (bytes(65), b"\xff" * 64 + b"\x00", rs, step.signature + b"\x00"):
        with pytest.raises(SignatureError):
            recover_signer(step.message, bad)


def test_sign_and_recover_round_trip() -> None:
    secret = keccak(b"kakehashi lcp test enclave key")
    message = encode(_sample_update())
    signature = sign_message(message, secret)
    assert len(signature) == 65 and signature[64] in (0, 1)
    assert int.from_bytes(signature[32:64], "big") <= SECP256K1_N // 2
    assert recover_signer(message, signature) == validator_address(secret)
    assert message_hash(message) == keccak(message)


# ---------------------------------------------------------------------------- independent codec
# eth_abi (a separate implementation of the ABI) must produce the same bytes for every message.

UPDATE_STATE_ABI = (
    "((uint64,uint64),bytes32,(uint64,uint64),bytes32,uint128,bytes,((uint64,uint64),bytes)[])"
)
VERIFY_MEMBERSHIP_ABI = "(bytes,bytes,bytes32,(uint64,uint64),bytes32)"
MISBEHAVIOUR_ABI = "(((uint64,uint64),bytes32)[],bytes,bytes)"


def _abi_height(height: Height) -> tuple[int, int]:
    return (height.revision_number, height.revision_height)


def _abi_context(context: ValidationContext) -> bytes:
    if isinstance(context, TrustingPeriodValidationContext):
        timestamps = (context.untrusted_header_timestamp << 128) | context.trusted_state_timestamp
        params = (context.trusting_period << 128) | context.clock_drift
        inner = eth_abi.encode(
            ["bytes32", "bytes32"], [timestamps.to_bytes(32), params.to_bytes(32)]
        )
        header = (1).to_bytes(2, "big") + bytes(30)
    else:
        inner, header = b"", bytes(32)
    return eth_abi.encode(["(bytes32,bytes)"], [(header, inner)])


def _abi_message(message: ProxyMessage) -> bytes:
    if isinstance(message, UpdateStateProxyMessage):
        kind, abi = 1, UPDATE_STATE_ABI
        values: tuple[Any, ...] = (
            _abi_height(message.prev_height),
            message.prev_state_id,
            _abi_height(message.post_height),
            message.post_state_id,
            message.timestamp,
            _abi_context(message.context),
            [(_abi_height(s.height), s.state) for s in message.emitted_states],
        )
    elif isinstance(message, VerifyMembershipProxyMessage):
        kind, abi = 2, VERIFY_MEMBERSHIP_ABI
        values = (
            message.prefix,
            message.path,
            message.value,
            _abi_height(message.height),
            message.state_id,
        )
    else:
        kind, abi = 3, MISBEHAVIOUR_ABI
        values = (
            [(_abi_height(p.height), p.state_id) for p in message.prev_states],
            _abi_context(message.context),
            message.client_message,
        )
    header = (1).to_bytes(2, "big") + kind.to_bytes(2, "big") + bytes(28)
    body = eth_abi.encode([abi], [values])
    return eth_abi.encode(["(bytes32,bytes)"], [(header, body)])


U64 = st.integers(0, 2**64 - 1)
U128 = st.integers(0, 2**128 - 1)
HEIGHTS = st.builds(Height, U64, U64)
B32 = st.binary(min_size=32, max_size=32)
SMALL_BYTES = st.binary(max_size=80)
CONTEXTS: st.SearchStrategy[ValidationContext] = st.one_of(
    st.just(EmptyValidationContext()),
    st.builds(TrustingPeriodValidationContext, U128, U128, U128, U128),
)
MESSAGES: st.SearchStrategy[ProxyMessage] = st.one_of(
    st.builds(
        UpdateStateProxyMessage,
        HEIGHTS,
        B32,
        HEIGHTS,
        B32,
        U128,
        CONTEXTS,
        st.lists(st.builds(EmittedState, HEIGHTS, SMALL_BYTES), max_size=4).map(tuple),
    ),
    st.builds(
        VerifyMembershipProxyMessage,
        SMALL_BYTES,
        SMALL_BYTES,
        st.one_of(st.just(bytes(32)), B32),
        HEIGHTS,
        B32,
    ),
    st.builds(
        MisbehaviourProxyMessage,
        st.lists(st.builds(PrevState, HEIGHTS, B32), max_size=4).map(tuple),
        CONTEXTS,
        SMALL_BYTES,
    ),
)


@given(MESSAGES)
@settings(max_examples=300, deadline=None)
def test_random_messages_round_trip_and_match_eth_abi(message: ProxyMessage) -> None:
    data = encode(message)
    assert data == _abi_message(message)
    assert decode(data) == message


@given(CONTEXTS)
def test_random_contexts_round_trip_and_match_eth_abi(context: ValidationContext) -> None:
    data = encode_validation_context(context)
    assert data == _abi_context(context)
    assert decode_validation_context(data) == context


def test_vectors_match_eth_abi() -> None:
    for step in _all_steps():
        assert _abi_message(decode(step.message)) == step.message


# ---------------------------------------------------------------------------- strictness


def _sample_update() -> UpdateStateProxyMessage:
    return UpdateStateProxyMessage(
        prev_height=Height(1, 10),
        prev_state_id=b"\x11" * 32,
        post_height=Height(1, 11),
        post_state_id=b"\x22" * 32,
        timestamp=1_718_463_240_849_489_006,
        context=TrustingPeriodValidationContext(10**15, 5 * 10**9, 2, 1),
        emitted_states=(EmittedState(Height(1, 11), b"any"),),
    )


def _envelope(header: bytes, body: bytes) -> bytes:
    return eth_abi.encode(["(bytes32,bytes)"], [(header, body)])


def _body(message: bytes) -> bytes:
    body: bytes = eth_abi.decode(["(bytes32,bytes)"], message)[0][1]
    return body


def test_header_must_be_version_1_of_a_known_type() -> None:
    body = _body(encode(_sample_update()))
    good = b"\x00\x01\x00\x01" + bytes(28)
    assert decode(_envelope(good, body)) == _sample_update()
    for header, match in [
        (b"\x00\x02\x00\x01" + bytes(28), "version"),
        (b"\x00\x00\x00\x01" + bytes(28), "version"),
        (b"\x00\x01\x00\x00" + bytes(28), "unknown proxy message type"),
        (b"\x00\x01\x00\x04" + bytes(28), "unknown proxy message type"),
        (b"\x00\x01\x00\x01" + bytes(27) + b"\x01", "reserved"),
        (b"\x00\x01\x00\x01\x80" + bytes(27), "reserved"),
    ]:
        with pytest.raises(SerializationError, match=match):
            decode(_envelope(header, body))
    # the right header for the wrong body
    with pytest.raises(SerializationError):
        decode(_envelope(b"\x00\x01\x00\x02" + bytes(28), body))


def test_trailing_and_missing_bytes_are_refused() -> None:
    data = encode(_sample_update())
    with pytest.raises(SerializationError, match="trailing"):
        decode(data + bytes(32))
    with pytest.raises(SerializationError, match="trailing"):
        decode(data + b"\x00")
    for cut in (1, 31, 32, len(data) // 2, len(data) - 1):
        with pytest.raises(SerializationError):
            decode(data[:cut])
    # a body with trailing bytes inside an otherwise canonical envelope
    with pytest.raises(SerializationError, match="trailing"):
        decode(_envelope(data[32:64], _body(data) + bytes(32)))
    with pytest.raises(SerializationError):
        decode(b"")


def test_non_canonical_offsets_are_refused() -> None:
    # eth_abi accepts a gap between the head and the tail; LCP's canonical encoder never makes one
    data = encode(_sample_update())
    gapped = data[:64] + (0x60).to_bytes(32, "big") + bytes(32) + data[96:]
    assert eth_abi.decode(["(bytes32,bytes)"], gapped)[0][1] == _body(data)
    with pytest.raises(SerializationError, match="offset"):
        decode(gapped)
    with pytest.raises(SerializationError, match="offset"):
        decode((0x40).to_bytes(32, "big") + bytes(32) + data[32:])


def test_dirty_integer_and_padding_bytes_are_refused() -> None:
    message = VerifyMembershipProxyMessage(b"ibc", b"path", bytes(32), Height(1, 2), b"\x01" * 32)
    data = encode(message)
    body = _body(data)
    header = data[32:64]
    # head: prefix offset, path offset, value, height (2 words), state id
    dirty_height = body[: 32 + 3 * 32] + b"\x01" + body[32 + 3 * 32 + 1 :]
    with pytest.raises(SerializationError, match="uint64"):
        decode(_envelope(header, dirty_height))
    # prefix tail: length word then "ibc" padded with zeros to 32 bytes
    prefix_tail = 32 + 6 * 32
    dirty_padding = bytearray(body)
    dirty_padding[prefix_tail + 32 + 31] = 1
    with pytest.raises(SerializationError, match="padding"):
        decode(_envelope(header, bytes(dirty_padding)))


def test_huge_lengths_are_refused_without_allocating() -> None:
    data = bytearray(encode(_sample_update()))
    # the envelope body's length word sits at 96
    data[96:128] = (2**255).to_bytes(32, "big")
    with pytest.raises(SerializationError, match="more than the input holds"):
        decode(bytes(data))
    body = bytearray(_body(encode(_sample_update())))
    emitted_at = int.from_bytes(body[32 + 8 * 32 : 32 + 9 * 32], "big") + 32
    body[emitted_at : emitted_at + 32] = (2**64).to_bytes(32, "big")
    with pytest.raises(SerializationError, match="more than the input holds"):
        decode(_envelope(b"\x00\x01\x00\x01" + bytes(28), bytes(body)))


def test_validation_context_rules() -> None:
    empty = encode_validation_context(EmptyValidationContext())
    assert len(empty) == 128
    EmptyValidationContext().check(0)
    with pytest.raises(SerializationError, match="no context bytes"):
        decode_validation_context(eth_abi.encode(["(bytes32,bytes)"], [(bytes(32), b"x")]))
    with pytest.raises(SerializationError, match="unknown validation context type 2"):
        decode_validation_context(
            eth_abi.encode(["(bytes32,bytes)"], [(b"\x00\x02" + bytes(30), b"")])
        )
    with pytest.raises(SerializationError, match="reserved"):
        decode_validation_context(eth_abi.encode(["(bytes32,bytes)"], [(bytes(31) + b"\x01", b"")]))
    trusting = b"\x00\x01" + bytes(30)
    for size in (0, 32, 63, 65, 96):
        with pytest.raises(SerializationError, match="64 bytes"):
            decode_validation_context(
                eth_abi.encode(["(bytes32,bytes)"], [(trusting, b"\x07" * size)])
            )
    parsed = decode_validation_context(
        eth_abi.encode(["(bytes32,bytes)"], [(trusting, bytes(range(64)))])
    )
    assert parsed == TrustingPeriodValidationContext(
        trusting_period=int.from_bytes(bytes(range(32, 48)), "big"),
        clock_drift=int.from_bytes(bytes(range(48, 64)), "big"),
        untrusted_header_timestamp=int.from_bytes(bytes(range(16)), "big"),
        trusted_state_timestamp=int.from_bytes(bytes(range(16, 32)), "big"),
    )


def test_trusting_period_context_boundaries() -> None:
    # trusted at 1000, trusting period 100 -> holds while now < 1100;
    # header at 2000, clock drift 950 -> holds while now + 950 > 2000, i.e. now > 1050
    context = TrustingPeriodValidationContext(100, 950, 2000, 1000)
    context.check(1051)
    context.check(1099)
    with pytest.raises(VerificationError, match="trusting period"):
        context.check(1100)
    with pytest.raises(VerificationError, match="future"):
        context.check(1050)


def test_invalid_fields_are_refused_at_construction() -> None:
    for bad in (-1, 2**64, True):
        with pytest.raises(SerializationError):
            Height(bad, 1)
        with pytest.raises(SerializationError):
            Height(1, bad)
    with pytest.raises(SerializationError, match="32 bytes"):
        PrevState(Height(1, 1), b"\x01" * 31)
    with pytest.raises(SerializationError, match="128-bit"):
        TrustingPeriodValidationContext(2**128, 0, 0, 0)
    with pytest.raises(SerializationError, match="128-bit"):
        UpdateStateProxyMessage(
            Height(), bytes(32), Height(1, 1), bytes(32), 2**128, EmptyValidationContext()
        )
    with pytest.raises(SerializationError, match="tuple of EmittedState"):
        UpdateStateProxyMessage(
            Height(),
            bytes(32),
            Height(1, 1),
            bytes(32),
            0,
            EmptyValidationContext(),
            [],  # type: ignore[arg-type]
        )
    with pytest.raises(SerializationError, match="validation context"):
        MisbehaviourProxyMessage((), None, b"")  # type: ignore[arg-type]
    with pytest.raises(SerializationError, match="bytes"):
        VerifyMembershipProxyMessage("ibc", b"", bytes(32), Height(), bytes(32))  # type: ignore[arg-type]
    with pytest.raises(SerializationError, match="not an LCP proxy message"):
        encode(Height())  # type: ignore[arg-type]


def test_misbehaviour_layout() -> None:
    message = MisbehaviourProxyMessage(
        prev_states=(PrevState(Height(1, 5), b"\x05" * 32), PrevState(Height(1, 6), b"\x06" * 32)),
        context=EmptyValidationContext(),
        client_message=b"\x0a\x03/x" + b"\x12\x01z",
    )
    data = encode(message)
    assert data[32:36] == b"\x00\x01\x00\x03"
    assert decode(data) == message
    body = _body(data)
    prev_states, context, client_message = eth_abi.decode([MISBEHAVIOUR_ABI], body)[0]
    assert prev_states == (((1, 5), b"\x05" * 32), ((1, 6), b"\x06" * 32))
    assert context == encode_validation_context(EmptyValidationContext())
    assert client_message == message.client_message


# ---------------------------------------------------------------------------- fuzz


def _decodes_canonically_or_refuses(data: bytes) -> None:
    try:
        message = decode(data)
    except SerializationError:
        return
    assert encode(message) == data


@given(st.binary(max_size=600))
@settings(max_examples=400, deadline=None)
def test_random_bytes_decode_canonically_or_raise_serialization_error(data: bytes) -> None:
    _decodes_canonically_or_refuses(data)
    try:
        context = decode_validation_context(data)
    except SerializationError:
        return
    assert encode_validation_context(context) == data


@given(MESSAGES, st.data())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_messages_decode_canonically_or_raise_serialization_error(
    message: ProxyMessage, data: st.DataObject
) -> None:
    encoded = bytearray(encode(message))
    for _ in range(data.draw(st.integers(1, 4))):
        action = data.draw(st.sampled_from(["flip", "set", "cut", "insert", "word"]))
        index = data.draw(st.integers(0, max(len(encoded) - 1, 0)))
        if action == "flip" and encoded:
            encoded[index] ^= 1 << data.draw(st.integers(0, 7))
        elif action == "set" and encoded:
            encoded[index] = data.draw(st.integers(0, 255))
        elif action == "cut":
            del encoded[index : index + data.draw(st.integers(1, 64))]
        elif action == "insert":
            encoded[index:index] = data.draw(st.binary(min_size=1, max_size=64))
        elif action == "word":  # overwrite a whole aligned word, e.g. an offset or a length
            start = index - index % 32
            encoded[start : start + 32] = data.draw(
                st.sampled_from([0, 1, 32, 64, 2**64, 2**256 - 1, len(encoded)])
            ).to_bytes(32, "big")
    _decodes_canonically_or_refuses(bytes(encoded))
    with pytest.raises(SerializationError):
        decode(bytes(encode(message)) + b"\x00")
