"""IAS Attestation Verification Reports: the recorded LCP vectors, tampering, and policies."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from kakehashi.errors import ConfigurationError, SerializationError, VerificationError
from kakehashi.lcp.attestation import (
    INTEL_SGX_ATTESTATION_ROOT_CA_DER,
    AttestationPolicy,
    AvrEvidence,
    load_vector_avr,
    parse_avr_file,
    parse_ias_timestamp,
    verify_avr,
)

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "lcp"
INTEL_ROOT = (VECTORS / "certs" / "Intel_SGX_Attestation_RootCA.der").read_bytes()
SIMULATION_ROOT = (VECTORS / "certs" / "simulation_rootca.der").read_bytes()

CLIENT_01 = parse_avr_file((VECTORS / "client-01" / "001-avr").read_text())
CLIENT_02 = parse_avr_file((VECTORS / "client-02" / "001-avr").read_text())

# Facts of the recorded reports (read from the vectors, restated here so a change shows up).
CLIENT_01_STATUS = "GROUP_OUT_OF_DATE"
CLIENT_01_ADVISORIES = (
    "INTEL-SA-00219",
    "INTEL-SA-00289",
    "INTEL-SA-00334",
    "INTEL-SA-00477",
    "INTEL-SA-00614",
    "INTEL-SA-00615",
    "INTEL-SA-00617",
    "INTEL-SA-00828",
)
CLIENT_01_MRENCLAVE = "d5097b7629c003c1ff46581a46401d43f441dab919340172896ce9d50a35f0ad"
CLIENT_01_KEY = "836fec0cc99ed0242ed02fbaab648652b2372e41"
CLIENT_02_MRENCLAVE = "3280c08e19b54d15ca925e0a6c13fedaff2aff6c097f93841abd8d9e1a3072b8"
CLIENT_02_KEY = "ffc9bdf025ec63065572f86d8f3ee49fbc0dfb66"
MRSIGNER = "83d719e77deaca1470f6baf62a4d774303c899db69020f9c70ee1dfc08c7ce9e"


def production_policy_01(**overrides: Any) -> AttestationPolicy:
    """Intel's root, exactly the status and advisories client-01's platform had.

    Its enclave is a debug build (attribute flag DEBUG set), so the policy says so explicitly.
    """
    settings: dict[str, Any] = {
        "allowed_quote_statuses": frozenset({CLIENT_01_STATUS}),
        "allowed_advisories": frozenset(CLIENT_01_ADVISORIES),
        "mrenclave": bytes.fromhex(CLIENT_01_MRENCLAVE),
        "allow_debug_enclave": True,
    }
    settings.update(overrides)
    return AttestationPolicy(**settings)


def development_policy_02(**overrides: Any) -> AttestationPolicy:
    settings: dict[str, Any] = {
        "root_certificates": (SIMULATION_ROOT,),
        "development": True,
        "mrenclave": bytes.fromhex(CLIENT_02_MRENCLAVE),
    }
    settings.update(overrides)
    return AttestationPolicy(**settings)


def verify(evidence: AvrEvidence, policy: AttestationPolicy, **kwargs: Any) -> Any:
    return verify_avr(evidence.avr, evidence.signature, evidence.signing_cert, policy, **kwargs)


# ---------------------------------------------------------------------------- a test CA


@dataclass(frozen=True)
class SigningCa:
    root_der: bytes
    leaf_der: bytes
    leaf_key: rsa.RSAPrivateKey

    def sign(self, avr: bytes) -> bytes:
        return self.leaf_key.sign(avr, padding.PKCS1v15(), hashes.SHA256())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(
    not_before: datetime = datetime(2023, 1, 1, tzinfo=UTC),
    not_after: datetime = datetime(2050, 1, 1, tzinfo=UTC),
) -> SigningCa:
    """A root and a report-signing certificate shaped like Intel's (RSA, SHA-256)."""
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    root = (
        x509.CertificateBuilder()
        .subject_name(_name("Kakehashi test attestation root"))
        .issuer_name(_name("Kakehashi test attestation root"))
        .public_key(root_key.public_key())
        .serial_number(1)
        .not_valid_before(datetime(2020, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2050, 1, 1, tzinfo=UTC))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name("Kakehashi test report signing"))
        .issuer_name(root.subject)
        .public_key(leaf_key.public_key())
        .serial_number(2)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    return SigningCa(root.public_bytes(Encoding.DER), leaf.public_bytes(Encoding.DER), leaf_key)


@pytest.fixture(scope="module")
def test_ca() -> SigningCa:
    return make_ca()


def forge(
    ca: SigningCa,
    edit_report: Callable[[dict[str, Any]], None] | None = None,
    edit_quote: Callable[[bytearray], None] | None = None,
) -> AvrEvidence:
    """Client-02's report, optionally edited, re-serialised and signed by ``ca``."""
    report = json.loads(CLIENT_02.avr)
    if edit_quote is not None:
        quote = bytearray(base64.b64decode(report["isvEnclaveQuoteBody"]))
        edit_quote(quote)
        report["isvEnclaveQuoteBody"] = base64.b64encode(bytes(quote)).decode()
    if edit_report is not None:
        edit_report(report)
    avr = json.dumps(report, separators=(",", ":"))
    return AvrEvidence(avr, ca.sign(avr.encode()), ca.leaf_der)


def forged_policy(ca: SigningCa, **overrides: Any) -> AttestationPolicy:
    settings: dict[str, Any] = {"root_certificates": (ca.root_der,)}
    settings.update(overrides)
    return development_policy_02(**settings)


# ---------------------------------------------------------------------------- the vectors


def test_embedded_intel_root_is_the_vector_root() -> None:
    assert INTEL_SGX_ATTESTATION_ROOT_CA_DER == INTEL_ROOT
    assert AttestationPolicy().root_certificates == (INTEL_ROOT,)


def test_vector_files_load() -> None:
    assert CLIENT_01.mrenclave == bytes.fromhex(CLIENT_01_MRENCLAVE)
    assert CLIENT_01.enclave_key == bytes.fromhex(CLIENT_01_KEY)
    assert CLIENT_02.mrenclave == bytes.fromhex(CLIENT_02_MRENCLAVE)
    assert CLIENT_02.enclave_key == bytes.fromhex(CLIENT_02_KEY)
    assert (
        hashlib.sha256(CLIENT_01.signing_cert).digest()
        == hashlib.sha256((VECTORS / "certs" / "intel_signing.der").read_bytes()).digest()
    )


def test_client_01_real_intel_report_verifies_under_production_policy() -> None:
    report = verify(CLIENT_01, production_policy_01())
    assert report.enclave_key_address == CLIENT_01.enclave_key == bytes.fromhex(CLIENT_01_KEY)
    assert report.operator_address is None
    assert report.quote_status == CLIENT_01_STATUS
    assert report.advisory_ids == CLIENT_01_ADVISORIES
    assert report.mrenclave.hex() == CLIENT_01_MRENCLAVE
    assert report.mrsigner.hex() == MRSIGNER
    assert (report.isv_prod_id, report.isv_svn, report.version) == (0, 0, 4)
    assert report.debug is True
    assert report.id == "82305734235721330313258195182452685352"
    assert report.timestamp == datetime(2024, 6, 15, 14, 54, 5, 76187, tzinfo=UTC)
    assert report.timestamp_ns == 1_718_463_245_076_187_000
    assert report.report_data == b"\x01" + bytes.fromhex(CLIENT_01_KEY) + bytes(43)
    assert report.root_sha256 == hashlib.sha256(INTEL_ROOT).digest()


def test_client_02_simulation_report_verifies_under_development_policy() -> None:
    report = verify(CLIENT_02, development_policy_02())
    assert report.enclave_key_address == CLIENT_02.enclave_key == bytes.fromhex(CLIENT_02_KEY)
    assert report.operator_address is None
    assert report.quote_status == "OK"
    assert report.advisory_ids == ()
    assert report.mrenclave.hex() == CLIENT_02_MRENCLAVE
    assert report.timestamp == datetime(2024, 6, 15, 14, 18, 10, 991000, tzinfo=UTC)
    assert report.timestamp_ns == 1_718_461_090_991_000_000
    assert report.root_sha256 == hashlib.sha256(SIMULATION_ROOT).digest()


def test_stricter_status_policy_refuses_client_01_naming_status_and_advisories() -> None:
    with pytest.raises(VerificationError) as refused:
        verify(CLIENT_01, production_policy_01(allowed_quote_statuses=frozenset({"OK"})))
    message = str(refused.value)
    assert CLIENT_01_STATUS in message
    assert all(advisory in message for advisory in CLIENT_01_ADVISORIES)
    assert "allowed_quote_statuses" in message


def test_status_allowed_but_one_advisory_missing_is_refused() -> None:
    policy = production_policy_01(allowed_advisories=frozenset(CLIENT_01_ADVISORIES[:-1]))
    with pytest.raises(VerificationError, match="INTEL-SA-00828") as refused:
        verify(CLIENT_01, policy)
    assert "INTEL-SA-00219" not in str(refused.value)


def test_debug_enclave_refused_by_default_production_policy() -> None:
    with pytest.raises(VerificationError, match="debug mode"):
        verify(CLIENT_01, production_policy_01(allow_debug_enclave=False))


def test_simulation_report_refused_in_production() -> None:
    with pytest.raises(VerificationError, match="development policy"):
        verify(CLIENT_02, AttestationPolicy(mrenclave=bytes.fromhex(CLIENT_02_MRENCLAVE)))


def test_production_policy_cannot_trust_the_simulation_root() -> None:
    with pytest.raises(ConfigurationError, match="development=True"):
        AttestationPolicy(root_certificates=(SIMULATION_ROOT,))
    with pytest.raises(ConfigurationError, match="development=True"):
        AttestationPolicy(root_certificates=(INTEL_ROOT, SIMULATION_ROOT))


def test_policy_refuses_statuses_that_mean_an_invalid_quote() -> None:
    with pytest.raises(ConfigurationError, match="GROUP_REVOKED"):
        AttestationPolicy(allowed_quote_statuses=frozenset({"OK", "GROUP_REVOKED"}))


def test_wrong_root_fails(test_ca: SigningCa) -> None:
    with pytest.raises(VerificationError, match="does not chain to a trusted root"):
        verify(CLIENT_02, development_policy_02(root_certificates=(test_ca.root_der,)))
    with pytest.raises(VerificationError, match="does not chain to a trusted root"):
        verify(
            CLIENT_01, production_policy_01(root_certificates=(SIMULATION_ROOT,), development=True)
        )


def test_root_with_same_name_but_other_key_fails() -> None:
    """A root named like the simulation CA but holding another key: the signature decides."""
    impostor_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.load_der_x509_certificate(SIMULATION_ROOT).subject
    impostor = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(impostor_key.public_key())
        .serial_number(7)
        .not_valid_before(datetime(2020, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2050, 1, 1, tzinfo=UTC))
        .sign(impostor_key, hashes.SHA256())
    )
    with pytest.raises(VerificationError, match="signature check failed"):
        verify(
            CLIENT_02,
            development_policy_02(root_certificates=(impostor.public_bytes(Encoding.DER),)),
        )


def test_wrong_mrenclave_fails() -> None:
    with pytest.raises(VerificationError, match="MRENCLAVE") as refused:
        verify(CLIENT_01, production_policy_01(mrenclave=bytes.fromhex(CLIENT_02_MRENCLAVE)))
    assert CLIENT_01_MRENCLAVE in str(refused.value)
    with pytest.raises(VerificationError, match="MRENCLAVE"):
        verify(CLIENT_02, development_policy_02(mrenclave=bytes(32)))


def test_no_mrenclave_in_policy_accepts_any_enclave() -> None:
    assert verify(CLIENT_02, development_policy_02(mrenclave=None)).mrenclave.hex() == (
        CLIENT_02_MRENCLAVE
    )


# ---------------------------------------------------------------------------- tampering


def _flip(data: bytes, position: int) -> bytes:
    return data[:position] + bytes([data[position] ^ 0x01]) + data[position + 1 :]


# cryptography warns about malformed name attributes (a flipped length) while parsing them.
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(
    ("evidence", "make_policy"),
    [(CLIENT_01, production_policy_01), (CLIENT_02, development_policy_02)],
    ids=["client-01", "client-02"],
)
def test_every_altered_byte_fails(
    evidence: AvrEvidence, make_policy: Callable[[], AttestationPolicy]
) -> None:
    policy = make_policy()
    verify(evidence, policy)  # the unaltered evidence passes, so each failure is the alteration
    avr = evidence.avr.encode()
    for position in range(len(avr)):
        with pytest.raises(VerificationError):
            verify_avr(_flip(avr, position), evidence.signature, evidence.signing_cert, policy)
    for position in range(len(evidence.signature)):
        with pytest.raises(VerificationError):
            verify_avr(avr, _flip(evidence.signature, position), evidence.signing_cert, policy)
    for position in range(len(evidence.signing_cert)):
        with pytest.raises(VerificationError):
            verify_avr(avr, evidence.signature, _flip(evidence.signing_cert, position), policy)


def test_truncated_or_extended_evidence_fails() -> None:
    policy = development_policy_02()
    avr, signature, cert = CLIENT_02.avr.encode(), CLIENT_02.signature, CLIENT_02.signing_cert
    for bad in (avr[:-1], avr + b" ", b" " + avr):
        with pytest.raises(VerificationError):
            verify_avr(bad, signature, cert, policy)
    for bad in (signature[:-1], signature + b"\x00", b"", bytes(256)):
        with pytest.raises(VerificationError):
            verify_avr(avr, bad, cert, policy)
    for bad in (cert[:-1], cert + b"\x00", b""):
        with pytest.raises(VerificationError):
            verify_avr(avr, signature, bad, policy)


# ---------------------------------------------------------------------------- forged reports


def test_forged_report_from_test_ca_verifies_when_unaltered(test_ca: SigningCa) -> None:
    """The forging harness itself yields a valid report, so the failures below are meaningful."""
    operator = bytes.fromhex("11" * 20)

    def set_operator(quote: bytearray) -> None:
        quote[368 + 21 : 368 + 41] = operator

    evidence = forge(test_ca, edit_quote=set_operator)
    report = verify(evidence, forged_policy(test_ca))
    assert report.operator_address == operator
    assert report.enclave_key_address.hex() == CLIENT_02_KEY


def _set_byte(offset: int, value: int) -> Callable[[bytearray], None]:
    def edit(quote: bytearray) -> None:
        quote[offset] = value

    return edit


@pytest.mark.parametrize(
    ("edit_quote", "match"),
    [
        (_set_byte(368, 0x00), "version byte 0x00"),
        (_set_byte(368, 0x02), "version byte 0x02"),
        (_set_byte(368 + 63, 0x01), "reserved bytes"),
        (_set_byte(368 + 41, 0xFF), "reserved bytes"),
    ],
    ids=["version-0", "version-2", "reserved-last", "reserved-first"],
)
def test_bad_report_data_fails(
    test_ca: SigningCa, edit_quote: Callable[[bytearray], None], match: str
) -> None:
    with pytest.raises(VerificationError, match=match):
        verify(forge(test_ca, edit_quote=edit_quote), forged_policy(test_ca))


def test_zero_enclave_key_fails(test_ca: SigningCa) -> None:
    def zero_key(quote: bytearray) -> None:
        quote[369:389] = bytes(20)

    with pytest.raises(VerificationError, match="zero address"):
        verify(forge(test_ca, edit_quote=zero_key), forged_policy(test_ca))


def test_report_version_other_than_4_fails(test_ca: SigningCa) -> None:
    for version in (3, 5, "4", True):

        def set_version(report: dict[str, Any], version: Any = version) -> None:
            report["version"] = version

        with pytest.raises(VerificationError, match="version"):
            verify(forge(test_ca, edit_report=set_version), forged_policy(test_ca))


def test_quote_body_of_wrong_size_fails(test_ca: SigningCa) -> None:
    def shorten(report: dict[str, Any]) -> None:
        quote = base64.b64decode(report["isvEnclaveQuoteBody"])
        report["isvEnclaveQuoteBody"] = base64.b64encode(quote[:-3]).decode()

    with pytest.raises(VerificationError, match="432"):
        verify(forge(test_ca, edit_report=shorten), forged_policy(test_ca))


def test_duplicate_keys_in_report_fail(test_ca: SigningCa) -> None:
    report = json.loads(CLIENT_02.avr)
    body = json.dumps(report, separators=(",", ":"))
    # A second status after the first: parsers disagree on which wins, so refuse both.
    avr = body[:-1] + ',"isvEnclaveQuoteStatus":"OK"}'
    evidence = AvrEvidence(avr, test_ca.sign(avr.encode()), test_ca.leaf_der)
    with pytest.raises(VerificationError, match="twice"):
        verify(evidence, forged_policy(test_ca))


def test_advisories_checked_whatever_the_status(test_ca: SigningCa) -> None:
    def add_advisory(report: dict[str, Any]) -> None:
        report["advisoryIDs"] = ["INTEL-SA-00334"]

    evidence = forge(test_ca, edit_report=add_advisory)
    with pytest.raises(VerificationError, match="INTEL-SA-00334"):
        verify(evidence, forged_policy(test_ca))
    allowed = forged_policy(test_ca, allowed_advisories=frozenset({"INTEL-SA-00334"}))
    assert verify(evidence, allowed).advisory_ids == ("INTEL-SA-00334",)


def test_expired_signing_certificate_fails() -> None:
    expired = make_ca(
        not_before=datetime(2021, 1, 1, tzinfo=UTC), not_after=datetime(2022, 1, 1, tzinfo=UTC)
    )
    with pytest.raises(VerificationError, match="not at the report's time"):
        verify(forge(expired), forged_policy(expired))


def test_signing_certificate_not_yet_valid_fails() -> None:
    early = make_ca(not_before=datetime(2025, 1, 1, tzinfo=UTC))
    with pytest.raises(VerificationError, match="not at the report's time"):
        verify(forge(early), forged_policy(early))


def test_signing_certificate_without_digital_signature_usage_fails() -> None:
    ca = make_ca()
    leaf = x509.load_der_x509_certificate(ca.leaf_der)
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    root = (
        x509.CertificateBuilder()
        .subject_name(leaf.issuer)
        .issuer_name(leaf.issuer)
        .public_key(root_key.public_key())
        .serial_number(3)
        .not_valid_before(datetime(2020, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2050, 1, 1, tzinfo=UTC))
        .sign(root_key, hashes.SHA256())
    )
    usage = x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=True,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    restricted = (
        x509.CertificateBuilder()
        .subject_name(leaf.subject)
        .issuer_name(leaf.issuer)
        .public_key(ca.leaf_key.public_key())
        .serial_number(4)
        .not_valid_before(datetime(2023, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2050, 1, 1, tzinfo=UTC))
        .add_extension(usage, critical=True)
        .sign(root_key, hashes.SHA256())
    )
    good = forge(ca)
    evidence = replace(good, signing_cert=restricted.public_bytes(Encoding.DER))
    policy = forged_policy(ca, root_certificates=(root.public_bytes(Encoding.DER),))
    with pytest.raises(VerificationError, match="digitalSignature"):
        verify(evidence, policy)


# ---------------------------------------------------------------------------- time


def test_ias_timestamp_parsing() -> None:
    moment, nanos = parse_ias_timestamp("2023-05-15T07:47:05.436557")
    assert moment == datetime(2023, 5, 15, 7, 47, 5, 436557, tzinfo=UTC)
    assert nanos == 1_684_136_825_436_557_000
    assert parse_ias_timestamp("2023-05-15T07:47:05")[1] == 1_684_136_825_000_000_000
    assert parse_ias_timestamp("2023-05-15T07:47:05.123456789")[1] == 1_684_136_825_123_456_789
    for bad in (
        "2023-05-15T07:47:05Z",
        "2023-05-15T07:47:05+00:00",
        "2023-05-15 07:47:05",
        "2023-02-30T07:47:05",
        "2023-05-15T07:47:05.",
        "",
    ):
        with pytest.raises(VerificationError, match="timestamp"):
            parse_ias_timestamp(bad)


def test_freshness_against_now() -> None:
    taken = datetime(2024, 6, 15, 14, 18, 10, 991000, tzinfo=UTC)
    policy = development_policy_02(max_age=timedelta(hours=1))
    assert verify(CLIENT_02, policy, now=taken + timedelta(minutes=59)).enclave_key_address
    with pytest.raises(VerificationError, match="max_age"):
        verify(CLIENT_02, policy, now=taken + timedelta(hours=2))
    with pytest.raises(VerificationError, match="clock drift"):
        verify(CLIENT_02, policy, now=taken - timedelta(hours=1))
    with pytest.raises(VerificationError, match="needs now="):
        verify(CLIENT_02, policy)
    with pytest.raises(VerificationError, match="timezone-aware"):
        verify(CLIENT_02, development_policy_02(), now=datetime(2024, 6, 15, 15, 0))


def test_intel_signing_certificate_expired_after_client_01_was_attested() -> None:
    """Intel's report-signing cert in client-01 is valid until 2026-11-20 09:36:58 UTC.

    The report (2024-06-15) verifies at its own time; checked at a later ``now`` it does not.
    """
    policy = production_policy_01()
    assert verify(CLIENT_01, policy, now=datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    with pytest.raises(VerificationError, match="not at now"):
        verify(CLIENT_01, policy, now=datetime(2026, 11, 21, tzinfo=UTC))


# ---------------------------------------------------------------------------- evidence files


def test_evidence_loader_refuses_malformed_input() -> None:
    with pytest.raises(SerializationError):
        parse_avr_file("not json")
    with pytest.raises(SerializationError):
        parse_avr_file("[]")
    good = json.loads((VECTORS / "client-02" / "001-avr").read_text())
    with pytest.raises(SerializationError, match="avr"):
        load_vector_avr({**good, "avr": None})
    with pytest.raises(SerializationError, match="signature"):
        load_vector_avr({**good, "signature": "!!!"})
    with pytest.raises(SerializationError, match="enclave_key"):
        load_vector_avr({**good, "enclave_key": base64.b64encode(bytes(19)).decode()})
    assert load_vector_avr(good) == CLIENT_02
