"""LCP light client: Datachain's recorded enclave flows (real Intel and simulation) are accepted
in order; unattested, unregistered, expired, mis-chained, conflicting, altered, misplaced and
under-signed statements are refused; k-of-n operators; misbehaviour freezes.

``tests/vectors/lcp`` (lcp-solidity's ``test/data``): ``001-avr`` attests the enclave key,
``002-init_client_result`` is the unsigned create-client message, 003/005 update the client,
004/006 prove membership and 007 proves a receipt's absence, each signed by the enclave key.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from eth_hash.auto import keccak

from kakehashi.errors import SignatureError, VerificationError
from kakehashi.lcp.attestation import AvrEvidence, parse_avr_file
from kakehashi.lcp.messages import (
    EmittedState,
    EmptyValidationContext,
    Height,
    MisbehaviourProxyMessage,
    PrevState,
    TrustingPeriodValidationContext,
    UpdateStateProxyMessage,
    VerifyMembershipProxyMessage,
    decode,
    encode,
    sign_message,
)
from kakehashi.ledgers.evm.qbft import seal, validator_address
from kakehashi.lightclients.lcp import (
    REGISTER_ENCLAVE_KEY_DOMAIN_SEPARATOR,
    ConsensusState,
    EnclaveKey,
    LcpClient,
    LcpClientState,
    create_client,
    decode_commitment_proof,
    encode_commitment_proof,
    register_enclave_key,
    register_enclave_key_digest,
    submit_misbehaviour,
    update_state,
    verify_membership,
    verify_non_membership,
    verify_signatures,
)
from tests.lcp.test_attestation import SigningCa, make_ca

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "lcp"
SIMULATION_ROOT = (VECTORS / "certs" / "simulation_rootca.der").read_bytes()
FLOWS = ("client-01", "client-02")
NS = 1_000_000_000
KEY_EXPIRATION_S = 7 * 24 * 3600  # lcp-solidity's test setting


# ---------------------------------------------------------------------------- vectors


@dataclass(frozen=True)
class Signed:
    message: bytes
    signature: bytes
    input: dict[str, Any]


def _step(flow: str, prefix: str) -> Signed:
    result = json.loads((VECTORS / flow / f"{prefix}_result").read_text())
    proof = result.get("proof", result)
    return Signed(
        base64.b64decode(proof["message"]),
        base64.b64decode(proof["signature"]),
        json.loads((VECTORS / flow / f"{prefix}_input").read_text()),
    )


@cache
def evidence(flow: str) -> AvrEvidence:
    return parse_avr_file((VECTORS / flow / "001-avr").read_text())


def report(flow: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(evidence(flow).avr)
    return data


def client_state(flow: str, **overrides: Any) -> LcpClientState:
    """The client-01 policy names the real report's status and advisories and its debug build;
    client-02 is a development client trusting LCP's simulation root."""
    settings: dict[str, Any]
    if flow == "client-01":
        settings = {
            "allowed_quote_statuses": frozenset({report(flow)["isvEnclaveQuoteStatus"]}),
            "allowed_advisories": frozenset(report(flow)["advisoryIDs"]),
            "allow_debug_enclave": True,
        }
    else:
        settings = {"root_certificates": (SIMULATION_ROOT,), "development": True}
    settings.update(overrides)
    mrenclave = evidence(flow).mrenclave
    assert mrenclave is not None
    return LcpClientState(mrenclave, KEY_EXPIRATION_S, **settings)


def attested_at(flow: str) -> int:
    """The report's time in ns (IAS writes it in UTC without a zone)."""
    from kakehashi.lcp.attestation import parse_ias_timestamp

    return parse_ias_timestamp(report(flow)["timestamp"])[1]


def now_of(flow: str) -> int:
    """A minute after the attestation: after every recorded message, within every context."""
    return attested_at(flow) + 60 * NS


def created(flow: str) -> LcpClient:
    return create_client(client_state(flow), _step(flow, "002-init_client").message, now_of(flow))


def registered(flow: str) -> LcpClient:
    ev = evidence(flow)
    return register_enclave_key(
        created(flow), ev.avr, ev.signature, ev.signing_cert, None, now_of(flow)
    )


def proof_of(step: Signed) -> bytes:
    return encode_commitment_proof(step.message, [step.signature])


def membership_args(step: Signed) -> tuple[Height, bytes, bytes, bytes]:
    statement = decode(step.message)
    assert isinstance(statement, VerifyMembershipProxyMessage)
    return (
        statement.height,
        proof_of(step),
        base64.b64decode(step.input["prefix"]),
        step.input["path"].encode(),
    )


def updated(flow: str, through: str = "005") -> LcpClient:
    client = registered(flow)
    for prefix in ("003-update_client", "005-update_client"):
        step = _step(flow, prefix)
        client, _ = update_state(client, step.message, [step.signature], now_of(flow))
        if prefix.startswith(through):
            break
    return client


# ---------------------------------------------------------------------------- recorded flows


@pytest.mark.parametrize("flow", FLOWS)
def test_recorded_flow_is_accepted_in_order(flow: str) -> None:
    now = now_of(flow)
    ev = evidence(flow)
    client = created(flow)
    init = decode(_step(flow, "002-init_client").message)
    assert isinstance(init, UpdateStateProxyMessage)
    assert client.state.latest_height == init.post_height
    assert client.consensus_state(init.post_height) == ConsensusState(
        init.post_state_id, init.timestamp
    )

    client = register_enclave_key(client, ev.avr, ev.signature, ev.signing_cert, None, now)
    key = client.enclave_keys[ev.enclave_key or b""]
    assert key == EnclaveKey(ev.enclave_key or b"", attested_at(flow) + KEY_EXPIRATION_S * NS, None)

    heights = []
    for prefix in (
        "003-update_client",
        "004-verify_channel",
        "005-update_client",
        "006-verify_packet",
        "007-verify_packet_receipt_absence",
    ):
        step = _step(flow, prefix)
        if "update" in prefix:
            client, height = update_state(client, step.message, [step.signature], now)
            message = decode(step.message)
            assert isinstance(message, UpdateStateProxyMessage)
            assert height == message.post_height == client.state.latest_height
            assert client.consensus_state(height).timestamp_ns == message.timestamp
            heights.append(height)
        elif "absence" in prefix:
            verify_non_membership(client, *membership_args(step), now)
        else:
            value = base64.b64decode(step.input["value"])
            verify_membership(client, *membership_args(step), value, now)
    assert heights[0] < heights[1]
    assert not client.state.frozen


def test_real_intel_flow_needs_its_status_advisories_and_debug_allowance() -> None:
    ev = evidence("client-01")
    for overrides in (
        {"allowed_quote_statuses": frozenset({"OK"})},
        {"allowed_advisories": frozenset()},
        {"allow_debug_enclave": False},
    ):
        client = create_client(
            client_state("client-01", **overrides),
            _step("client-01", "002-init_client").message,
            now_of("client-01"),
        )
        with pytest.raises(VerificationError, match="not attested"):
            register_enclave_key(
                client, ev.avr, ev.signature, ev.signing_cert, None, now_of("client-01")
            )


# ---------------------------------------------------------------------------- registration


def test_registering_the_same_key_again_is_a_no_op() -> None:
    client = registered("client-02")
    ev = evidence("client-02")
    again = register_enclave_key(
        client, ev.avr, ev.signature, ev.signing_cert, None, now_of("client-02") + NS
    )
    assert again == client


def test_a_conflicting_registration_of_a_known_key_is_refused() -> None:
    ev = evidence("client-02")
    assert ev.enclave_key is not None
    base = created("client-02")
    other = EnclaveKey(ev.enclave_key, attested_at("client-02") + 1 * NS, None)
    client = LcpClient.with_test_keys(base.state, [other], base.consensus_states)
    with pytest.raises(VerificationError, match="different expiry or operator"):
        register_enclave_key(
            client, ev.avr, ev.signature, ev.signing_cert, None, now_of("client-02")
        )


@pytest.mark.parametrize("part", ["avr", "signature", "signing_cert"])
def test_an_altered_report_is_unattested_and_refused(part: str) -> None:
    ev = evidence("client-02")
    fields = {"avr": ev.avr.encode(), "signature": ev.signature, "signing_cert": ev.signing_cert}
    data = bytearray(fields[part])
    data[len(data) // 2] ^= 0x01
    fields[part] = bytes(data)
    with pytest.raises(VerificationError, match="not attested"):
        register_enclave_key(
            created("client-02"),
            fields["avr"],
            fields["signature"],
            fields["signing_cert"],
            None,
            now_of("client-02"),
        )


def test_a_simulation_report_is_refused_by_a_production_client() -> None:
    ev = evidence("client-02")
    production = client_state(
        "client-02",
        root_certificates=client_state("client-01").root_certificates,
        development=False,
    )
    client = create_client(
        production, _step("client-02", "002-init_client").message, now_of("client-02")
    )
    with pytest.raises(VerificationError, match="not attested"):
        register_enclave_key(
            client, ev.avr, ev.signature, ev.signing_cert, None, now_of("client-02")
        )


def test_a_report_of_another_enclave_is_refused() -> None:
    ev = evidence("client-02")
    state = replace(client_state("client-02"), mrenclave=bytes(32))
    client = create_client(
        state, _step("client-02", "002-init_client").message, now_of("client-02")
    )
    with pytest.raises(VerificationError, match="MRENCLAVE"):
        register_enclave_key(
            client, ev.avr, ev.signature, ev.signing_cert, None, now_of("client-02")
        )


def test_an_expired_report_is_refused() -> None:
    ev = evidence("client-02")
    expiry = attested_at("client-02") + KEY_EXPIRATION_S * NS
    with pytest.raises(VerificationError, match="expired"):
        register_enclave_key(
            created("client-02"), ev.avr, ev.signature, ev.signing_cert, None, expiry
        )
    # one nanosecond earlier it is still registrable
    register_enclave_key(
        created("client-02"), ev.avr, ev.signature, ev.signing_cert, None, expiry - 1
    )


def test_operator_signature_digest_is_lcp_solidity_s() -> None:
    # LCPOperator.DOMAIN_SEPARATOR_REGISTER_ENCLAVE_KEY in lcp-solidity
    assert REGISTER_ENCLAVE_KEY_DOMAIN_SEPARATOR.hex() == (
        "e33d217bff42bc015bf037be8386bf5055ec6019e58e8c5e89b5c74b8225fa6a"
    )
    avr = evidence("client-02").avr
    type_hash = keccak(b"RegisterEnclaveKey(string avr)")
    assert register_enclave_key_digest(avr) == keccak(
        b"\x19\x01"
        + REGISTER_ENCLAVE_KEY_DOMAIN_SEPARATOR
        + keccak(type_hash + keccak(avr.encode()))
    )


# -- registration with an operator: a report naming an operator, signed by a test CA ---------

OPERATOR_KEYS = [bytes([0x10 + i]) * 32 for i in range(3)]
OPERATORS = sorted(validator_address(k) for k in OPERATOR_KEYS)
OPERATOR_KEY = {validator_address(k): k for k in OPERATOR_KEYS}
REPORT_DATA_OFFSET = 368


@pytest.fixture(scope="module")
def test_ca() -> SigningCa:
    return make_ca()


def report_naming(ca: SigningCa, operator: bytes) -> AvrEvidence:
    """client-02's report with ``operator`` in its report data, signed by ``ca``."""
    data = json.loads(evidence("client-02").avr)
    quote = bytearray(base64.b64decode(data["isvEnclaveQuoteBody"]))
    quote[REPORT_DATA_OFFSET + 21 : REPORT_DATA_OFFSET + 41] = operator
    data["isvEnclaveQuoteBody"] = base64.b64encode(bytes(quote)).decode()
    avr = json.dumps(data, separators=(",", ":"))
    return AvrEvidence(avr, ca.sign(avr.encode()), ca.leaf_der)


def operator_client(ca: SigningCa, operators: tuple[bytes, ...] = tuple(OPERATORS)) -> LcpClient:
    state = client_state(
        "client-02",
        root_certificates=(ca.root_der,),
        operators=operators,
        operators_threshold=min(2, len(operators)),
    )
    return create_client(state, _step("client-02", "002-init_client").message, now_of("client-02"))


def operator_signature(operator: bytes, avr: str) -> bytes:
    return seal(register_enclave_key_digest(avr), OPERATOR_KEY[operator])


def test_a_report_naming_an_operator_registers_with_its_signature(test_ca: SigningCa) -> None:
    operator = OPERATORS[1]
    ev = report_naming(test_ca, operator)
    client = register_enclave_key(
        operator_client(test_ca),
        ev.avr,
        ev.signature,
        ev.signing_cert,
        operator_signature(operator, ev.avr),
        now_of("client-02"),
    )
    (key,) = client.enclave_keys.values()
    assert key.operator == operator


def test_a_report_naming_an_operator_needs_that_operator_s_signature(test_ca: SigningCa) -> None:
    ev = report_naming(test_ca, OPERATORS[1])
    client = operator_client(test_ca)
    now = now_of("client-02")
    with pytest.raises(VerificationError, match="signature over the registration"):
        register_enclave_key(client, ev.avr, ev.signature, ev.signing_cert, None, now)
    with pytest.raises(VerificationError, match="report names operator"):
        register_enclave_key(
            client,
            ev.avr,
            ev.signature,
            ev.signing_cert,
            operator_signature(OPERATORS[0], ev.avr),
            now,
        )
    other_report = report_naming(test_ca, OPERATORS[2]).avr
    with pytest.raises(VerificationError, match="report names operator"):
        register_enclave_key(
            client,
            ev.avr,
            ev.signature,
            ev.signing_cert,
            operator_signature(OPERATORS[1], other_report),
            now,
        )


def test_an_operator_outside_the_client_s_set_is_refused(test_ca: SigningCa) -> None:
    ev = report_naming(test_ca, OPERATORS[2])
    client = operator_client(test_ca, operators=tuple(OPERATORS[:2]))
    with pytest.raises(VerificationError, match="not by one of the client's operators"):
        register_enclave_key(
            client,
            ev.avr,
            ev.signature,
            ev.signing_cert,
            operator_signature(OPERATORS[2], ev.avr),
            now_of("client-02"),
        )
    # a key without any operator cannot serve an operator client either
    plain = evidence("client-02")
    resigned = AvrEvidence(plain.avr, test_ca.sign(plain.avr.encode()), test_ca.leaf_der)
    with pytest.raises(VerificationError, match="no operator"):
        register_enclave_key(
            client,
            resigned.avr,
            resigned.signature,
            resigned.signing_cert,
            None,
            now_of("client-02"),
        )


# ---------------------------------------------------------------------------- updates

ENCLAVE_KEYS = [bytes([0x40 + i]) * 32 for i in range(4)]


def keyed_client(
    operators: tuple[bytes, ...] = (),
    threshold: int = 0,
    key_operators: tuple[bytes | None, ...] = (None,),
    expires_at: int | None = None,
) -> LcpClient:
    """client-02 created from its init message, with generated enclave keys (test-only
    constructor: these keys bypass attestation, for the signature rule's logic only)."""
    base = created("client-02")
    state = replace(base.state, operators=operators, operators_threshold=threshold)
    expiry = expires_at if expires_at is not None else now_of("client-02") + 3600 * NS
    keys = [
        EnclaveKey(validator_address(ENCLAVE_KEYS[i]), expiry, operator)
        for i, operator in enumerate(key_operators)
    ]
    return LcpClient.with_test_keys(state, keys, base.consensus_states)


def init_state() -> tuple[Height, bytes, int]:
    init = decode(_step("client-02", "002-init_client").message)
    assert isinstance(init, UpdateStateProxyMessage)
    return init.post_height, init.post_state_id, init.timestamp


def make_update(
    prev: tuple[Height, bytes] | None = None,
    post_height: Height = Height(1, 60),
    post_state_id: bytes = b"\x77" * 32,
    timestamp: int | None = None,
) -> bytes:
    height, state_id, ts = init_state()
    prev_height, prev_state_id = prev if prev is not None else (height, state_id)
    now = now_of("client-02")
    return encode(
        UpdateStateProxyMessage(
            prev_height,
            prev_state_id,
            post_height,
            post_state_id,
            timestamp if timestamp is not None else now - NS,
            TrustingPeriodValidationContext(14 * 24 * 3600 * NS, 5 * NS, now - NS, ts),
            (EmittedState(post_height, b"state"),),
        )
    )


def sigs(message: bytes, *key_indexes: int) -> list[bytes]:
    return [sign_message(message, ENCLAVE_KEYS[i]) for i in key_indexes]


def test_an_update_signed_by_an_unregistered_key_is_refused() -> None:
    step = _step("client-02", "003-update_client")
    with pytest.raises(SignatureError, match="not an enclave key registered"):
        update_state(created("client-02"), step.message, [step.signature], now_of("client-02"))
    message = make_update()
    client = keyed_client()
    with pytest.raises(SignatureError, match="not an enclave key registered"):
        update_state(client, message, sigs(message, 1), now_of("client-02"))


def test_an_expired_key_is_refused_for_every_use() -> None:
    flow = "client-02"
    client = updated(flow)
    expiry = client.enclave_keys[evidence(flow).enclave_key or b""].expires_at_ns
    step = _step(flow, "006-verify_packet")
    value = base64.b64decode(step.input["value"])
    verify_membership(client, *membership_args(step), value, expiry - 1)
    with pytest.raises(SignatureError, match="expired"):
        verify_membership(client, *membership_args(step), value, expiry)
    absent = _step(flow, "007-verify_packet_receipt_absence")
    with pytest.raises(SignatureError, match="expired"):
        verify_non_membership(client, *membership_args(absent), expiry)
    update = _step(flow, "003-update_client")
    with pytest.raises(SignatureError, match="expired"):
        update_state(registered(flow), update.message, [update.signature], expiry)


def test_an_update_must_build_on_the_held_state() -> None:
    client = keyed_client()
    now = now_of("client-02")
    height, state_id, _ = init_state()
    wrong_id = make_update(prev=(height, b"\x01" * 32))
    with pytest.raises(VerificationError, match="but the client holds"):
        update_state(client, wrong_id, sigs(wrong_id, 0), now)
    unknown_height = make_update(prev=(Height(1, 48), state_id))
    with pytest.raises(VerificationError, match="does not hold"):
        update_state(client, unknown_height, sigs(unknown_height, 0), now)
    no_prev = make_update(prev=(Height(), bytes(32)))
    with pytest.raises(VerificationError, match="only creates a client"):
        update_state(client, no_prev, sigs(no_prev, 0), now)
    # the recorded 005 builds on 003's state, which a client without 003 does not hold
    step = _step("client-02", "005-update_client")
    with pytest.raises(VerificationError, match="does not hold"):
        update_state(registered("client-02"), step.message, [step.signature], now)


def test_the_validation_context_must_hold_at_now() -> None:
    client = keyed_client(expires_at=2**80)
    message = make_update()
    _, _, trusted = init_state()
    with pytest.raises(VerificationError, match="trusting period"):
        update_state(client, message, sigs(message, 0), trusted + 14 * 24 * 3600 * NS)


def test_resubmitting_an_update_changes_nothing() -> None:
    client = updated("client-02", through="003")
    step = _step("client-02", "003-update_client")
    again, height = update_state(client, step.message, [step.signature], now_of("client-02"))
    assert again == client
    assert height == client.state.latest_height


def test_a_conflicting_state_for_a_held_height_is_refused_without_freezing() -> None:
    client = keyed_client()
    now = now_of("client-02")
    first = make_update(post_state_id=b"\x77" * 32)
    client, height = update_state(client, first, sigs(first, 0), now)
    conflicting = make_update(post_state_id=b"\x78" * 32)
    with pytest.raises(VerificationError, match="different state"):
        update_state(client, conflicting, sigs(conflicting, 0), now)
    other_time = make_update(post_state_id=b"\x77" * 32, timestamp=now - 2 * NS)
    with pytest.raises(VerificationError, match="different state"):
        update_state(client, other_time, sigs(other_time, 0), now)
    assert not client.state.frozen
    assert client.consensus_state(height).state_id == b"\x77" * 32


def test_an_update_to_a_lower_height_keeps_the_latest() -> None:
    client = keyed_client()
    now = now_of("client-02")
    high = make_update(post_height=Height(1, 70))
    client, _ = update_state(client, high, sigs(high, 0), now)
    low = make_update(post_height=Height(1, 60), post_state_id=b"\x66" * 32)
    client, height = update_state(client, low, sigs(low, 0), now)
    assert height == Height(1, 60)
    assert client.state.latest_height == Height(1, 70)


def test_altered_message_or_signature_bytes_are_refused() -> None:
    client = registered("client-02")
    step = _step("client-02", "003-update_client")
    now = now_of("client-02")
    for position in range(0, len(step.message), 7):
        altered = bytearray(step.message)
        altered[position] ^= 0x01
        with pytest.raises(VerificationError):
            update_state(client, bytes(altered), [step.signature], now)
    for position in range(len(step.signature)):
        altered = bytearray(step.signature)
        altered[position] ^= 0x01
        with pytest.raises(VerificationError):
            update_state(client, step.message, [bytes(altered)], now)
    with pytest.raises(SignatureError, match="no signature"):
        update_state(client, step.message, [], now)


def test_a_create_client_message_must_have_no_previous_state() -> None:
    step = _step("client-02", "003-update_client")
    with pytest.raises(VerificationError, match="zero previous height"):
        create_client(client_state("client-02"), step.message, now_of("client-02"))
    membership = _step("client-02", "004-verify_channel")
    with pytest.raises(VerificationError, match="UpdateStateProxyMessage"):
        create_client(client_state("client-02"), membership.message, now_of("client-02"))


def test_client_state_is_validated() -> None:
    mrenclave = b"\x01" * 32
    with pytest.raises(VerificationError, match="ascending"):
        LcpClientState(mrenclave, 1, operators=(OPERATORS[1], OPERATORS[0]), operators_threshold=1)
    with pytest.raises(VerificationError, match="between 1 and 2"):
        LcpClientState(mrenclave, 1, operators=tuple(OPERATORS[:2]), operators_threshold=3)
    with pytest.raises(VerificationError, match="positive"):
        LcpClientState(mrenclave, 0)
    with pytest.raises(VerificationError, match="32 bytes"):
        LcpClientState(b"\x01", 1)


# ---------------------------------------------------------------------------- membership


def test_membership_at_a_height_the_client_does_not_hold_is_refused() -> None:
    step = _step("client-02", "004-verify_channel")
    value = base64.b64decode(step.input["value"])
    with pytest.raises(VerificationError, match="holds no state"):
        verify_membership(
            registered("client-02"), *membership_args(step), value, now_of("client-02")
        )


def test_membership_must_match_height_state_prefix_path_and_value() -> None:
    flow = "client-02"
    client = updated(flow)
    now = now_of(flow)
    step = _step(flow, "006-verify_packet")
    height, proof, prefix, path = membership_args(step)
    value = base64.b64decode(step.input["value"])
    verify_membership(client, height, proof, prefix, path, value, now)
    with pytest.raises(VerificationError, match="not 1-51"):
        verify_membership(client, Height(1, 51), proof, prefix, path, value, now)
    with pytest.raises(VerificationError, match="prefix"):
        verify_membership(client, height, proof, b"ibd", path, value, now)
    with pytest.raises(VerificationError, match="path"):
        verify_membership(client, height, proof, prefix, path + b"0", value, now)
    with pytest.raises(VerificationError, match="does not prove that value"):
        verify_membership(client, height, proof, prefix, path, value + b"\x00", now)
    with pytest.raises(VerificationError, match="not absence"):
        verify_non_membership(client, height, proof, prefix, path, now)
    absent = _step(flow, "007-verify_packet_receipt_absence")
    with pytest.raises(VerificationError, match="does not prove that value"):
        verify_membership(client, *membership_args(absent), b"\x01", now)
    # a statement about another state id at a held height (signed by a test key)
    keyed = LcpClient.with_test_keys(
        client.state,
        [EnclaveKey(validator_address(ENCLAVE_KEYS[0]), now + NS, None)],
        client.consensus_states,
    )
    forged = encode(VerifyMembershipProxyMessage(prefix, path, keccak(value), height, b"\x99" * 32))
    with pytest.raises(VerificationError, match="but the client holds"):
        verify_membership(
            keyed,
            height,
            encode_commitment_proof(forged, sigs(forged, 0)),
            prefix,
            path,
            value,
            now,
        )


def test_a_non_canonical_or_truncated_proof_is_refused() -> None:
    step = _step("client-02", "006-verify_packet")
    proof = proof_of(step)
    assert decode_commitment_proof(proof) == (step.message, (step.signature,))
    with pytest.raises(VerificationError):
        decode_commitment_proof(proof + b"\x00" * 32)
    with pytest.raises(VerificationError):
        decode_commitment_proof(proof[:-32])


# ---------------------------------------------------------------------------- k-of-n


def test_no_operators_any_registered_key_signs_alone() -> None:
    client = keyed_client(key_operators=(None, None))
    message = make_update()
    now = now_of("client-02")
    assert verify_signatures(client, message, sigs(message, 0), now) == (
        validator_address(ENCLAVE_KEYS[0]),
    )
    assert len(verify_signatures(client, message, sigs(message, 0, 1), now)) == 2
    with pytest.raises(SignatureError, match="signed twice"):
        verify_signatures(client, message, sigs(message, 0, 0), now)


def test_k_of_n_operators() -> None:
    a, b, c = OPERATORS
    client = keyed_client(operators=(a, b, c), threshold=2, key_operators=(a, b, a, None))
    message = make_update()
    now = now_of("client-02")
    verify_signatures(client, message, sigs(message, 0, 1), now)  # operators a and b
    client, _ = update_state(client, message, sigs(message, 1, 0), now)  # any order
    with pytest.raises(SignatureError, match="1 distinct operators"):
        verify_signatures(client, message, sigs(message, 0), now)
    with pytest.raises(SignatureError, match="1 distinct operators"):
        verify_signatures(client, message, sigs(message, 0, 2), now)  # two keys of operator a
    with pytest.raises(SignatureError, match="not vouched for"):
        verify_signatures(client, message, sigs(message, 0, 1, 3), now)  # key without operator
    # LCP's positional form: an empty entry stands for an operator that did not sign
    verify_signatures(client, message, [sigs(message, 0)[0], sigs(message, 1)[0], b""], now)
    with pytest.raises(SignatureError, match="1 distinct operators"):
        verify_signatures(client, message, [sigs(message, 0)[0], b"", b""], now)


def test_k_of_n_registered_through_attestation(test_ca: SigningCa) -> None:
    """Two keys attested with different operators satisfy a 2-of-3 client end to end."""
    now = now_of("client-02")
    client = operator_client(test_ca)
    # each report names its operator; both reports carry client-02's enclave key, so the second
    # registration conflicts: keys of the same enclave are one key
    first = report_naming(test_ca, OPERATORS[0])
    client = register_enclave_key(
        client,
        first.avr,
        first.signature,
        first.signing_cert,
        operator_signature(OPERATORS[0], first.avr),
        now,
    )
    second = report_naming(test_ca, OPERATORS[1])
    with pytest.raises(VerificationError, match="different expiry or operator"):
        register_enclave_key(
            client,
            second.avr,
            second.signature,
            second.signing_cert,
            operator_signature(OPERATORS[1], second.avr),
            now,
        )
    step = _step("client-02", "003-update_client")
    with pytest.raises(SignatureError, match="1 distinct operators"):
        update_state(client, step.message, [step.signature], now)


# ---------------------------------------------------------------------------- misbehaviour


def make_misbehaviour(prev_states: tuple[PrevState, ...]) -> bytes:
    return encode(MisbehaviourProxyMessage(prev_states, EmptyValidationContext(), b"evidence"))


def test_misbehaviour_freezes_the_client() -> None:
    client = keyed_client()
    now = now_of("client-02")
    height, state_id, _ = init_state()
    message = make_misbehaviour((PrevState(height, state_id),))
    frozen = submit_misbehaviour(client, message, sigs(message, 0), now)
    assert frozen.state.frozen and not client.state.frozen
    update = make_update()
    with pytest.raises(VerificationError, match="frozen"):
        update_state(frozen, update, sigs(update, 0), now)
    with pytest.raises(VerificationError, match="frozen"):
        submit_misbehaviour(frozen, message, sigs(message, 0), now)
    ev = evidence("client-02")
    with pytest.raises(VerificationError, match="frozen"):
        register_enclave_key(frozen, ev.avr, ev.signature, ev.signing_cert, None, now)


def test_frozen_client_verifies_nothing() -> None:
    client = updated("client-02")
    frozen = LcpClient(
        replace(client.state, frozen=True), client.consensus_states, client.enclave_keys
    )
    step = _step("client-02", "006-verify_packet")
    with pytest.raises(VerificationError, match="frozen"):
        verify_membership(
            frozen,
            *membership_args(step),
            base64.b64decode(step.input["value"]),
            now_of("client-02"),
        )


def test_misbehaviour_must_name_held_states_and_be_signed() -> None:
    client = keyed_client()
    now = now_of("client-02")
    height, state_id, _ = init_state()
    unheld = make_misbehaviour((PrevState(height, b"\x05" * 32),))
    with pytest.raises(VerificationError, match="does not hold"):
        submit_misbehaviour(client, unheld, sigs(unheld, 0), now)
    empty = make_misbehaviour(())
    with pytest.raises(VerificationError, match="must name"):
        submit_misbehaviour(client, empty, sigs(empty, 0), now)
    good = make_misbehaviour((PrevState(height, state_id),))
    with pytest.raises(SignatureError, match="not an enclave key registered"):
        submit_misbehaviour(client, good, sigs(good, 2), now)
    with pytest.raises(VerificationError, match="MisbehaviourProxyMessage"):
        update = make_update()
        submit_misbehaviour(client, update, sigs(update, 0), now)
