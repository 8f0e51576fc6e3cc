"""Verification of Intel IAS Attestation Verification Reports (AVRs) for LCP enclave keys.

An LCP enclave proves which key it holds with an AVR: a JSON report that Intel's Attestation
Service (EPID attestation API, version 4) signs with its report-signing key, over a quote whose
report data names the enclave key. Pure functions only (bytes / str in, a
:class:`VerifiedReport` or :class:`~kakehashi.errors.VerificationError` out). The rules
implemented here:

* **Chain rule.** The signing certificate must be signed directly by one of the policy's root
  certificates (the issuer name must equal the root's subject), and both must be valid at the
  report's timestamp (and at ``now`` when the caller gives it). A ``keyUsage`` extension, when
  present, must allow ``digitalSignature`` on the signing certificate and ``keyCertSign`` on the
  root; a root with ``basicConstraints`` must be a CA.
* **Root rule.** Production accepts only Intel's SGX Attestation Report Signing CA
  (:data:`INTEL_SGX_ATTESTATION_ROOT_CA_DER`). Any other root, such as the simulation CA LCP uses
  without SGX hardware, is accepted only by a policy with ``development=True``.
* **Signature rule.** The signature is RSASSA-PKCS1-v1_5 with SHA-256 over the exact bytes of the
  report string (the UTF-8 of the ``avr`` string, never a re-serialisation), by an RSA key of at
  least 2048 bits.
* **Report rule.** The report is a JSON object without duplicate keys, ``version`` is 4, the
  ``timestamp`` is UTC written without a zone (``2024-06-15T14:54:05.076187``).
* **Status rule.** ``isvEnclaveQuoteStatus`` must be in the policy's allowed statuses (``OK``
  only, by default) and every ID in ``advisoryIDs`` in its allowed advisories (none, by default):
  ``GROUP_OUT_OF_DATE``, ``SW_HARDENING_NEEDED``, ``CONFIGURATION_NEEDED`` ... each name a
  platform that lacks a fix and are refused unless the operator chose to accept them.
* **Quote rule** (``sgx_quote_t``, 432 bytes without signature). The report body starts at byte
  48; MRENCLAVE is at quote byte 112, MRSIGNER at 176, ISVPRODID / ISVSVN (little endian) at 304
  / 306, the attribute flags at 96 (bit 1: DEBUG) and the 64-byte report data at 368. MRENCLAVE
  must equal the policy's when it names one. A debug enclave (its memory readable by the host) is
  refused unless the policy is for development or says ``allow_debug_enclave``.
* **Report data rule** (LCP). ``0x01 ‖ enclave key address (20) ‖ operator address (20) ‖ 23
  zero bytes``; a zero operator address means "no operator".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from kakehashi.errors import ConfigurationError, SerializationError, VerificationError

__all__ = [
    "ADDRESS_SIZE",
    "IAS_REPORT_VERSION",
    "INTEL_SGX_ATTESTATION_ROOT_CA_DER",
    "INTEL_SGX_ATTESTATION_ROOT_CA_SHA256",
    "QUOTE_BODY_SIZE",
    "REPORT_DATA_SIZE",
    "REPORT_DATA_VERSION",
    "AttestationPolicy",
    "AvrEvidence",
    "VerifiedReport",
    "load_vector_avr",
    "parse_avr_file",
    "parse_ias_timestamp",
    "verify_avr",
]

IAS_REPORT_VERSION = 4
"""The IAS attestation API version whose reports this module reads."""

QUOTE_BODY_SIZE = 432
"""``sgx_quote_t`` without its signature: what IAS puts in ``isvEnclaveQuoteBody``."""

REPORT_BODY_OFFSET = 48
ATTRIBUTES_OFFSET = REPORT_BODY_OFFSET + 48
MRENCLAVE_OFFSET = REPORT_BODY_OFFSET + 64
MRSIGNER_OFFSET = REPORT_BODY_OFFSET + 128
ISV_PROD_ID_OFFSET = REPORT_BODY_OFFSET + 256
ISV_SVN_OFFSET = REPORT_BODY_OFFSET + 258
REPORT_DATA_OFFSET = REPORT_BODY_OFFSET + 320
REPORT_DATA_SIZE = 64
MEASUREMENT_SIZE = 32
ADDRESS_SIZE = 20

REPORT_DATA_VERSION = 1
"""First byte of LCP's report data layout."""

SGX_FLAGS_DEBUG = 0x02
"""``SGX_FLAGS_DEBUG`` in the low byte of the report body's attribute flags."""

MIN_RSA_BITS = 2048

INTEL_SGX_ATTESTATION_ROOT_CA_DER = base64.b64decode(
    "MIIFSzCCA7OgAwIBAgIJANEHdl0yo7CUMA0GCSqGSIb3DQEBCwUAMH4xCzAJBgNVBAYTAlVTMQswCQYDVQQIDAJDQTEUMBIG"
    "A1UEBwwLU2FudGEgQ2xhcmExGjAYBgNVBAoMEUludGVsIENvcnBvcmF0aW9uMTAwLgYDVQQDDCdJbnRlbCBTR1ggQXR0ZXN0"
    "YXRpb24gUmVwb3J0IFNpZ25pbmcgQ0EwIBcNMTYxMTE0MTUzNzMxWhgPMjA0OTEyMzEyMzU5NTlaMH4xCzAJBgNVBAYTAlVT"
    "MQswCQYDVQQIDAJDQTEUMBIGA1UEBwwLU2FudGEgQ2xhcmExGjAYBgNVBAoMEUludGVsIENvcnBvcmF0aW9uMTAwLgYDVQQD"
    "DCdJbnRlbCBTR1ggQXR0ZXN0YXRpb24gUmVwb3J0IFNpZ25pbmcgQ0EwggGiMA0GCSqGSIb3DQEBAQUAA4IBjwAwggGKAoIB"
    "gQCfPGR+tXc8u1EtJzLA10Feu1Wg+p7eLmSRmeaCHbkQ1TF3Nwl3RmpqXkeGzNLd69QUnWovYyVSndEMyYc3sHecGgfinEeh"
    "rgBJSEdsSJ9FpaFdesjsxqzGRa20PYdnnfWcCTvFoulpbFR4VBuXnnVLVzkUvlXTL/TAnd8nIZk0zZkFJ7P5LtePvykkar7L"
    "cSQO85wtcQe0R1Raf/sQ6wYKaKmFgCGeNpEJUmg4ktal4qgIAxk+QHUxQE42sxViN5mqglB0QJdUot/o9a/V/mMeH8KvOAiQ"
    "byinkNndn+Bgk5sSV5DFgF0DffVqmVMblt5p3jPtImzBIH0QQrXJq39AT8cRwP5HafuVeLHcDsRp6hol4P+ZFIhu8mmbI1u0"
    "hH3W/0C2BuYXB5PC+5izFFh/nP0lc2Lf6rELO9LZdnOhpL1ExFOq9H/B8tPQ84T3Sgb4nAifDabNt/zu6MmCGo5U8lwEFtGM"
    "RoOaX4AS+909x00lYnmtwsDVWv9vBiJCXRsCAwEAAaOByTCBxjBgBgNVHR8EWTBXMFWgU6BRhk9odHRwOi8vdHJ1c3RlZHNl"
    "cnZpY2VzLmludGVsLmNvbS9jb250ZW50L0NSTC9TR1gvQXR0ZXN0YXRpb25SZXBvcnRTaWduaW5nQ0EuY3JsMB0GA1UdDgQW"
    "BBR4Q3t2pn680K9+QjfrNXw7hwFRPDAfBgNVHSMEGDAWgBR4Q3t2pn680K9+QjfrNXw7hwFRPDAOBgNVHQ8BAf8EBAMCAQYw"
    "EgYDVR0TAQH/BAgwBgEB/wIBADANBgkqhkiG9w0BAQsFAAOCAYEAeF8tYMXICvQqeXYQITkV2oLJsp6J4JAqJabHWxYJHGir"
    "IEqucRiJSSx+HjIJEUVaj8E0QjEud6Y5lNmXlcjqRXaCPOqK0eGRz6hi+ripMtPZsFNaBwLQVV905SDjAzDzNIDnrcnXyB4g"
    "cDFCvwDFKKgLRjOB/WAqgscDUoGq5ZVizLUzTqiQPmULAQaB9c6Oti6snEFJiCQ67JLyW/E83/frzCmO5Ru6WjU4tmsmy8Ra"
    "Ud4APK0wZTGtfPXU7w+IBdG5Ez0kE1qzxGQaL4gINJ1zMyleDnbuS8UicjJijvqA152Sq049ESDz+1rRGc2NVEqh1KaGXmtX"
    "vqxXcTB+Ljy5Bw2ke0v8iGngFBPqCTVB3op5KBG3RjbF6RRSzwzuWfL7QErNC8WEy5yDVARzTA5+xmBc388v9Dm21HGfcC8O"
    "DD+gT9sSpssq0ascmvH49MOgjt1yoysLtdCtJW/9FZpoOypaHx0R+mJTLwPXVMrvDaVzWh5aiEx+idkSGMnX"
)
"""Intel's SGX Attestation Report Signing CA (self-signed, valid 2016-11-14 to 2049-12-31)."""

INTEL_SGX_ATTESTATION_ROOT_CA_SHA256 = hashlib.sha256(INTEL_SGX_ATTESTATION_ROOT_CA_DER).digest()

NEVER_ACCEPTABLE_STATUSES = frozenset(
    {"SIGNATURE_INVALID", "GROUP_REVOKED", "SIGNATURE_REVOKED", "KEY_REVOKED"}
    | {"SIGRL_VERSION_MISMATCH"}
)
"""Quote statuses that mean the quote itself is not trustworthy; no policy may allow them."""

_T = TypeVar("_T")

_TIMESTAMP = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?")


@dataclass(frozen=True)
class AttestationPolicy:
    """What a verifier accepts: trusted roots, quote statuses, advisories and the enclave.

    ``max_age`` (with the ``now`` given to :func:`verify_avr`) refuses reports older than that;
    ``max_clock_drift`` bounds how far in the future of ``now`` a report may be dated.
    """

    root_certificates: tuple[bytes, ...] = (INTEL_SGX_ATTESTATION_ROOT_CA_DER,)
    allowed_quote_statuses: frozenset[str] = frozenset({"OK"})
    allowed_advisories: frozenset[str] = frozenset()
    mrenclave: bytes | None = None
    development: bool = False
    allow_debug_enclave: bool = False
    max_age: timedelta | None = None
    max_clock_drift: timedelta = timedelta(minutes=5)
    _roots: tuple[x509.Certificate, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        roots = tuple(self.root_certificates)
        if not roots:
            raise ConfigurationError("an attestation policy needs at least one root certificate")
        parsed = []
        for index, der in enumerate(roots):
            cert = _load_certificate(der, f"root certificate #{index}", ConfigurationError)
            if not self.development and hashlib.sha256(der).digest() != (
                INTEL_SGX_ATTESTATION_ROOT_CA_SHA256
            ):
                raise ConfigurationError(
                    f"root certificate #{index} ({cert.subject.rfc4514_string()}) is not Intel's "
                    "SGX Attestation Report Signing CA; a production policy trusts only Intel's "
                    "root. A simulation root is for development: set development=True"
                )
            parsed.append(cert)
        statuses = frozenset(self.allowed_quote_statuses)
        forbidden = sorted(statuses & NEVER_ACCEPTABLE_STATUSES)
        if forbidden:
            raise ConfigurationError(
                f"quote status {', '.join(forbidden)} means the quote is invalid or revoked and "
                "cannot be allowed; remove it from allowed_quote_statuses"
            )
        if self.mrenclave is not None and len(self.mrenclave) != MEASUREMENT_SIZE:
            raise ConfigurationError(
                f"mrenclave must be {MEASUREMENT_SIZE} bytes, got {len(self.mrenclave)}"
            )
        if self.max_age is not None and self.max_age <= timedelta(0):
            raise ConfigurationError("max_age must be positive (or None for no freshness limit)")
        object.__setattr__(self, "root_certificates", roots)
        object.__setattr__(self, "allowed_quote_statuses", statuses)
        object.__setattr__(self, "allowed_advisories", frozenset(self.allowed_advisories))
        object.__setattr__(self, "_roots", tuple(parsed))


@dataclass(frozen=True)
class VerifiedReport:
    """The facts of an AVR that passed :func:`verify_avr`."""

    id: str
    timestamp: datetime
    """Report time (UTC, microsecond precision)."""
    timestamp_ns: int
    """Report time in nanoseconds since the Unix epoch (exact, as written by IAS)."""
    version: int
    quote_status: str
    advisory_ids: tuple[str, ...]
    mrenclave: bytes
    mrsigner: bytes
    isv_prod_id: int
    isv_svn: int
    debug: bool
    report_data: bytes
    enclave_key_address: bytes
    operator_address: bytes | None
    """None when the report data's operator field is zero (no operator)."""
    root_sha256: bytes
    """SHA-256 of the DER of the root the signing certificate chains to."""


@dataclass(frozen=True)
class AvrEvidence:
    """A signed AVR as LCP hands it over: the report string, signature and signing certificate.

    ``mrenclave`` and ``enclave_key`` are what a recorded vector says they should be (None when
    the source does not say).
    """

    avr: str
    signature: bytes
    signing_cert: bytes
    mrenclave: bytes | None = None
    enclave_key: bytes | None = None


def parse_ias_timestamp(text: str) -> tuple[datetime, int]:
    """IAS report time: ``YYYY-MM-DDTHH:MM:SS[.fraction]`` in UTC, written without a zone.

    Returns the time as an aware UTC datetime (microseconds) and as exact epoch nanoseconds.
    """
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        raise VerificationError(
            f"report timestamp {text!r} is not an IAS timestamp (YYYY-MM-DDTHH:MM:SS.ffffff, UTC)"
        )
    try:
        seconds = datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError as exc:
        raise VerificationError(f"report timestamp {text!r} is not a valid date: {exc}") from exc
    fraction = match.group(2) or ""
    nanos = int(fraction.ljust(9, "0")) if fraction else 0
    epoch_ns = int(seconds.timestamp()) * 1_000_000_000 + nanos
    return seconds + timedelta(microseconds=nanos // 1000), epoch_ns


def verify_avr(
    avr_json: str | bytes,
    signature: bytes,
    signing_cert_der: bytes,
    policy: AttestationPolicy,
    now: datetime | None = None,
) -> VerifiedReport:
    """Verify a signed IAS Attestation Verification Report against ``policy`` (module rules).

    ``avr_json`` is the report exactly as signed (a ``str`` is taken as its UTF-8). ``now`` (an
    aware datetime) enables the freshness checks and the certificates' validity at ``now``;
    without it the certificates are checked at the report's own time only.
    """
    if now is not None and now.tzinfo is None:
        raise VerificationError("now must be timezone-aware (UTC); got a naive datetime")
    if policy.max_age is not None and now is None:
        raise VerificationError(
            "the policy sets max_age, so verify_avr needs now= to check the report's age"
        )
    signed = avr_json.encode("utf-8") if isinstance(avr_json, str) else bytes(avr_json)

    leaf = _load_certificate(signing_cert_der, "the AVR signing certificate", VerificationError)
    root_index = _chain_to_root(leaf, policy)
    root = policy._roots[root_index]
    _verify_report_signature(leaf, signed, signature)

    report = _parse_report(signed)
    timestamp, timestamp_ns = parse_ias_timestamp(_field(report, "timestamp", str))
    for moment, what in ((timestamp, "the report's time"), (now, "now")):
        if moment is None:
            continue
        _check_validity(leaf, moment, "the AVR signing certificate", what)
        _check_validity(root, moment, "the root certificate", what)
    if now is not None:
        if timestamp - now > policy.max_clock_drift:
            raise VerificationError(
                f"the report is dated {timestamp.isoformat()}, after now ({now.isoformat()}) "
                f"by more than the allowed clock drift ({policy.max_clock_drift}); check clocks"
            )
        if policy.max_age is not None and now - timestamp > policy.max_age:
            raise VerificationError(
                f"the report is dated {timestamp.isoformat()}, older than max_age "
                f"({policy.max_age}) at {now.isoformat()}; obtain a fresh attestation"
            )

    version = _field(report, "version", int)
    if version != IAS_REPORT_VERSION:
        raise VerificationError(
            f"the report is IAS API version {version}; only version {IAS_REPORT_VERSION} "
            "reports are accepted"
        )
    report_id = _field(report, "id", str)
    status = _field(report, "isvEnclaveQuoteStatus", str)
    advisories = _advisory_ids(report)
    _check_status(status, advisories, policy)

    quote = _decode_quote(_field(report, "isvEnclaveQuoteBody", str))
    mrenclave = quote[MRENCLAVE_OFFSET : MRENCLAVE_OFFSET + MEASUREMENT_SIZE]
    if policy.mrenclave is not None and mrenclave != policy.mrenclave:
        raise VerificationError(
            f"the enclave's MRENCLAVE is {mrenclave.hex()}, but the policy expects "
            f"{policy.mrenclave.hex()}: the report is for a different enclave build"
        )
    debug = bool(quote[ATTRIBUTES_OFFSET] & SGX_FLAGS_DEBUG)
    if debug and not (policy.development or policy.allow_debug_enclave):
        raise VerificationError(
            "the enclave runs in debug mode (its memory is readable by the host), which a "
            "production policy refuses; use a release-built enclave, or set "
            "allow_debug_enclave=True (or development=True) if that is intended"
        )
    report_data = quote[REPORT_DATA_OFFSET : REPORT_DATA_OFFSET + REPORT_DATA_SIZE]
    enclave_key, operator = _parse_report_data(report_data)

    return VerifiedReport(
        id=report_id,
        timestamp=timestamp,
        timestamp_ns=timestamp_ns,
        version=version,
        quote_status=status,
        advisory_ids=advisories,
        mrenclave=mrenclave,
        mrsigner=quote[MRSIGNER_OFFSET : MRSIGNER_OFFSET + MEASUREMENT_SIZE],
        isv_prod_id=int.from_bytes(quote[ISV_PROD_ID_OFFSET : ISV_PROD_ID_OFFSET + 2], "little"),
        isv_svn=int.from_bytes(quote[ISV_SVN_OFFSET : ISV_SVN_OFFSET + 2], "little"),
        debug=debug,
        report_data=report_data,
        enclave_key_address=enclave_key,
        operator_address=operator,
        root_sha256=hashlib.sha256(policy.root_certificates[root_index]).digest(),
    )


def load_vector_avr(data: Mapping[str, Any]) -> AvrEvidence:
    """Read LCP's ``001-avr`` object: ``avr`` string, base64 ``signature`` and ``signing_cert``,
    and optionally base64 ``mrenclave`` (32 bytes) and ``enclave_key`` (a 20-byte address)."""
    avr = data.get("avr")
    if not isinstance(avr, str):
        raise SerializationError("AVR evidence needs an 'avr' string (the report JSON as signed)")
    mrenclave = _optional_b64(data, "mrenclave", MEASUREMENT_SIZE)
    enclave_key = _optional_b64(data, "enclave_key", ADDRESS_SIZE)
    signature = _optional_b64(data, "signature", None)
    signing_cert = _optional_b64(data, "signing_cert", None)
    if signature is None or signing_cert is None:
        raise SerializationError("AVR evidence needs base64 'signature' and 'signing_cert'")
    return AvrEvidence(avr, signature, signing_cert, mrenclave, enclave_key)


def parse_avr_file(text: str) -> AvrEvidence:
    """Parse the text of an LCP ``001-avr`` file (see :func:`load_vector_avr`)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SerializationError(f"AVR evidence is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise SerializationError("AVR evidence must be a JSON object")
    return load_vector_avr(data)


# ---------------------------------------------------------------------------- certificates


def _load_certificate(
    der: bytes, what: str, error: type[ConfigurationError] | type[VerificationError]
) -> x509.Certificate:
    try:
        cert = x509.load_der_x509_certificate(bytes(der))
        # cryptography decodes fields lazily: touch every one this module reads, so a malformed
        # certificate fails here with a clear message rather than midway through verification.
        _ = (cert.issuer, cert.subject, cert.not_valid_before_utc, cert.not_valid_after_utc)
        _ = (cert.extensions, cert.public_key(), cert.signature_hash_algorithm)
    except (ValueError, TypeError, x509.InvalidVersion, UnsupportedAlgorithm) as exc:
        raise error(f"{what} is not a well-formed DER X.509 certificate: {exc}") from exc
    if not _unsigned_parts_canonical(bytes(der)):
        raise error(
            f"{what} was altered outside its signed part: its outer signature algorithm differs "
            "from the signed one (RFC 5280 4.1.1.2) or its signature has unused bits"
        )
    return cert


def _der_element(der: bytes, offset: int) -> tuple[int, int, int]:
    """``(tag, content start, end)`` of the DER element at ``offset`` (definite length)."""
    first = der[offset + 1]
    if first < 0x80:
        return der[offset], offset + 2, offset + 2 + first
    size = first & 0x7F
    length = int.from_bytes(der[offset + 2 : offset + 2 + size], "big")
    return der[offset], offset + 2 + size, offset + 2 + size + length


def _unsigned_parts_canonical(der: bytes) -> bool:
    """The parts of a certificate its signature does not cover leave no room for alteration.

    RFC 5280 4.1.1.2: ``signatureAlgorithm`` equals ``tbsCertificate.signature``; and the
    ``signatureValue`` BIT STRING has no unused bits (a signature is whole octets).
    """
    try:
        _, tbs_start, cert_end = _der_element(der, 0)
        _, inner, tbs_end = _der_element(der, tbs_start)
        tag, _, end = _der_element(der, inner)
        if tag == 0xA0:  # explicit version
            inner = end
        _, _, inner = _der_element(der, inner)  # serial number
        _, _, inner_end = _der_element(der, inner)
        _, _, outer_end = _der_element(der, tbs_end)
        tag, bits_start, bits_end = _der_element(der, outer_end)
        unused_bits = der[bits_start]
    except IndexError:
        return False
    return (
        der[inner:inner_end] == der[tbs_end:outer_end]
        and tag == 0x03
        and bits_end == cert_end
        and unused_bits == 0
    )


def _chain_to_root(leaf: x509.Certificate, policy: AttestationPolicy) -> int:
    """Index of the policy root that directly issued ``leaf`` (chain rule)."""
    failures = []
    for index, root in enumerate(policy._roots):
        if leaf.issuer != root.subject:
            continue
        _check_key_usage(root, ca=True)
        try:
            leaf.verify_directly_issued_by(root)
        except (ValueError, TypeError, InvalidSignature) as exc:
            failures.append(f"{root.subject.rfc4514_string()}: {str(exc) or type(exc).__name__}")
            continue
        _check_key_usage(leaf, ca=False)
        return index
    trusted = "; ".join(root.subject.rfc4514_string() for root in policy._roots)
    detail = f" (signature check failed: {'; '.join(failures)})" if failures else ""
    hint = (
        ""
        if policy.development
        else "; a simulation-mode report is accepted only by a development policy"
    )
    raise VerificationError(
        f"the AVR signing certificate (issuer {leaf.issuer.rfc4514_string()}) does not chain to "
        f"a trusted root{detail}; trusted roots: {trusted}{hint}"
    )


def _check_key_usage(cert: x509.Certificate, *, ca: bool) -> None:
    what = "root certificate" if ca else "AVR signing certificate"
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is not None:
        allowed = usage.key_cert_sign if ca else usage.digital_signature
        if not allowed:
            need = "keyCertSign" if ca else "digitalSignature"
            raise VerificationError(f"the {what}'s keyUsage does not allow {need}")
    if ca:
        try:
            constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            return
        if not constraints.ca:
            raise VerificationError(f"the {what} is not a CA (basicConstraints CA:FALSE)")


def _check_validity(cert: x509.Certificate, moment: datetime, what: str, when: str) -> None:
    not_before = cert.not_valid_before_utc
    not_after = cert.not_valid_after_utc
    if not not_before <= moment <= not_after:
        raise VerificationError(
            f"{what} ({cert.subject.rfc4514_string()}) is valid from {not_before.isoformat()} "
            f"to {not_after.isoformat()}, not at {when} ({moment.isoformat()})"
        )


def _verify_report_signature(leaf: x509.Certificate, signed: bytes, signature: bytes) -> None:
    key = leaf.public_key()
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < MIN_RSA_BITS:
        raise VerificationError(
            f"the AVR signing certificate must carry an RSA key of at least {MIN_RSA_BITS} bits"
        )
    try:
        key.verify(bytes(signature), signed, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise VerificationError(
            "the AVR signature does not verify under the signing certificate's key "
            "(RSA PKCS#1 v1.5 SHA-256 over the exact report string): the report, signature "
            "or certificate was altered"
        ) from None


# ---------------------------------------------------------------------------- report


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise VerificationError(f"the report has the key {key!r} twice")
        result[key] = value
    return result


def _parse_report(signed: bytes) -> dict[str, Any]:
    try:
        text = signed.decode("utf-8")
        report = json.loads(text, object_pairs_hook=_no_duplicates)
    except ValueError as exc:
        raise VerificationError(f"the signed report is not UTF-8 JSON: {exc}") from exc
    if not isinstance(report, dict):
        raise VerificationError("the signed report is not a JSON object")
    return report


def _field(report: Mapping[str, Any], key: str, kind: type[_T]) -> _T:
    value = report.get(key)
    # bool is an int in Python; a JSON true is not a version number.
    if not isinstance(value, kind) or isinstance(value, bool):
        raise VerificationError(
            f"the report's {key!r} must be a {kind.__name__}, got {type(value).__name__}"
        )
    return value


def _advisory_ids(report: Mapping[str, Any]) -> tuple[str, ...]:
    value = report.get("advisoryIDs", [])
    if value is None:
        value = []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise VerificationError("the report's 'advisoryIDs' must be a list of strings")
    return tuple(value)


def _check_status(status: str, advisories: Iterable[str], policy: AttestationPolicy) -> None:
    advisories = tuple(advisories)
    listed = f" (advisories: {', '.join(advisories)})" if advisories else ""
    if status not in policy.allowed_quote_statuses:
        raise VerificationError(
            f"quote status {status}{listed} is not allowed by the policy (allowed: "
            f"{', '.join(sorted(policy.allowed_quote_statuses))}); update the platform, or add "
            "the status to allowed_quote_statuses and its advisories to allowed_advisories if "
            "the risk is accepted"
        )
    refused = [advisory for advisory in advisories if advisory not in policy.allowed_advisories]
    if refused:
        raise VerificationError(
            f"quote status {status} comes with advisories not in the policy's allowed "
            f"advisories: {', '.join(refused)}; review them and add them to allowed_advisories "
            "if the risk is accepted"
        )


def _decode_quote(body: str) -> bytes:
    try:
        quote = base64.b64decode(body, validate=True)
    except binascii.Error as exc:
        raise VerificationError(f"the report's isvEnclaveQuoteBody is not base64: {exc}") from exc
    if len(quote) != QUOTE_BODY_SIZE:
        raise VerificationError(
            f"the quote body is {len(quote)} bytes; an IAS quote body is {QUOTE_BODY_SIZE}"
        )
    return quote


def _parse_report_data(report_data: bytes) -> tuple[bytes, bytes | None]:
    """LCP report data: ``0x01 ‖ enclave key address ‖ operator address ‖ zeros``."""
    if report_data[0] != REPORT_DATA_VERSION:
        raise VerificationError(
            f"the report data starts with version byte {report_data[0]:#04x}; LCP's layout "
            f"starts with {REPORT_DATA_VERSION:#04x}: the enclave is not an LCP enclave or uses "
            "an unknown layout"
        )
    key = report_data[1 : 1 + ADDRESS_SIZE]
    operator = report_data[1 + ADDRESS_SIZE : 1 + 2 * ADDRESS_SIZE]
    if any(report_data[1 + 2 * ADDRESS_SIZE :]):
        raise VerificationError("the report data's reserved bytes (41..63) are not zero")
    if not any(key):
        raise VerificationError("the report data names the zero address as enclave key")
    return key, operator if any(operator) else None


def _optional_b64(data: Mapping[str, Any], key: str, size: int | None) -> bytes | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise SerializationError(f"AVR evidence field {key!r} must be a base64 string")
    try:
        decoded = base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise SerializationError(f"AVR evidence field {key!r} is not base64: {exc}") from exc
    if size is not None and len(decoded) != size:
        raise SerializationError(
            f"AVR evidence field {key!r} is {len(decoded)} bytes, expected {size}"
        )
    return decoded
