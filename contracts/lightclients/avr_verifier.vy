# pragma version 0.4.3
"""
@title IAS Attestation Verification Report verifier (RSA over the modexp precompile)
@notice Checks, on-chain, what kakehashi.lcp.attestation checks off-chain (as lcp-solidity's
        AVRValidator): the report signing certificate is signed by the configured root
        (RSA-PKCS1v1.5-SHA256, modulus stored at deployment: Intel's SGX Attestation Report
        Signing CA in production, LCP's simulation root in development) and valid at the
        report's time; the report is signed by that certificate's key; then the report JSON
        gives the quote status, the timestamp and the quote body (base64), whose report data
        names the enclave key and operator. Stateless apart from the root; anyone may call it.
        The report's fields are read at their first occurrence, in the order IAS writes them
        (timestamp, version, isvEnclaveQuoteStatus, isvEnclaveQuoteBody): Intel signs the
        report, so a relayer cannot reorder or duplicate them.
"""

MAX_AVR: constant(uint256) = 2048
MAX_CERT: constant(uint256) = 2048
MAX_RSA: constant(uint256) = 512  # 4096-bit keys at most
QUOTE_B64: constant(uint256) = 576
MRENCLAVE_OFFSET: constant(uint256) = 112
ATTRIBUTES_OFFSET: constant(uint256) = 96
REPORT_DATA_OFFSET: constant(uint256) = 368
SGX_FLAGS_DEBUG: constant(uint256) = 2
# DER of AlgorithmIdentifier sha256WithRSAEncryption's OID, and rsaEncryption's.
SHA256_WITH_RSA: constant(Bytes[11]) = x"06092a864886f70d01010b"
RSA_ENCRYPTION: constant(Bytes[11]) = x"06092a864886f70d010101"
# PKCS#1 v1.5 DigestInfo prefix for SHA-256.
DIGEST_INFO: constant(Bytes[19]) = x"3031300d060960864801650304020105000420"
MODEXP: constant(address) = 0x0000000000000000000000000000000000000005


struct Report:
    attestation_time: uint64  # the report's timestamp, Unix seconds (fraction dropped)
    quote_status_ok: bool
    mrenclave: bytes32
    debug: bool
    enclave_key: address
    operator: address


struct Element:
    start: uint256  # first content byte
    length: uint256  # content length
    tag: uint256


root_modulus: public(Bytes[MAX_RSA])
root_exponent: public(uint256)
root_hash: public(bytes32)  # keccak256(modulus): lets a client require Intel's root


@deploy
def __init__(modulus: Bytes[MAX_RSA], exponent: uint256):
    assert len(modulus) >= 256, "AVR: root key under 2048 bits"
    assert convert(slice(modulus, 0, 1), uint256) != 0, "AVR: modulus has a leading zero"
    self.root_modulus = modulus
    self.root_exponent = exponent
    self.root_hash = keccak256(modulus)


# ----------------------------------------------------------------------------- RSA
@internal
@view
def _rsa_pkcs1_sha256(digest: bytes32, signature: Bytes[MAX_CERT], modulus: Bytes[MAX_CERT], exponent: uint256) -> bool:
    k: uint256 = len(modulus)
    if len(signature) != k or k < 256:
        return False
    ok: bool = False
    em: Bytes[MAX_RSA] = b""
    ok, em = raw_call(
        MODEXP,
        concat(
            convert(k, bytes32), convert(32, bytes32), convert(k, bytes32),
            signature, convert(exponent, bytes32), modulus
        ),
        max_outsize=MAX_RSA,
        is_static_call=True,
        revert_on_failure=False,
    )
    if not ok or len(em) != k:
        return False
    # EMSA-PKCS1-v1_5: 0x00 0x01 FF..FF 0x00 DigestInfo digest
    if convert(slice(em, 0, 2), uint256) != 1:
        return False
    pad_end: uint256 = k - 52  # index of the 0x00 separator
    # FF padding, a word at a time; the last word ends at pad_end (it may overlap the previous).
    for w: uint256 in range(MAX_RSA // 32):
        if 2 + 32 * w + 32 > pad_end:
            break
        if convert(extract32(em, 2 + 32 * w), uint256) != max_value(uint256):
            return False
    if convert(extract32(em, pad_end - 32), uint256) != max_value(uint256):
        return False
    return keccak256(slice(em, pad_end, 52)) == keccak256(concat(b"\x00", DIGEST_INFO, digest))


# ----------------------------------------------------------------------------- DER
@internal
@pure
def _byte(data: Bytes[MAX_CERT], at: uint256) -> uint256:
    return convert(slice(data, at, 1), uint256)


@internal
@pure
def _element(data: Bytes[MAX_CERT], at: uint256) -> Element:
    """One DER TLV at `at` (definite short or 1-2 byte long lengths), within the data."""
    tag: uint256 = self._byte(data, at)
    first: uint256 = self._byte(data, at + 1)
    start: uint256 = at + 2
    length: uint256 = first
    if first == 129:
        length = self._byte(data, at + 2)
        start = at + 3
    elif first == 130:
        length = self._byte(data, at + 2) * 256 + self._byte(data, at + 3)
        start = at + 4
    else:
        assert first < 128, "AVR: unsupported DER length"
    assert start + length <= len(data), "AVR: DER element out of bounds"
    return Element(start=start, length=length, tag=tag)


@internal
@pure
def _next(e: Element) -> uint256:
    return e.start + e.length


@internal
@pure
def _digits(data: Bytes[MAX_AVR], at: uint256, n: uint256) -> uint256:
    value: uint256 = 0
    for i: uint256 in range(4):
        if i >= n:
            break
        c: uint256 = convert(slice(data, at + i, 1), uint256)
        assert c >= 48 and c <= 57, "AVR: not a digit"
        value = value * 10 + c - 48
    return value


@internal
@pure
def _epoch(year: uint256, month: uint256, day: uint256, hour: uint256, minute: uint256, second: uint256) -> uint256:
    # days_from_civil (H. Hinnant), for years >= 1970
    assert month >= 1 and month <= 12 and day >= 1 and day <= 31, "AVR: bad date"
    assert hour < 24 and minute < 60 and second < 61, "AVR: bad time"
    y: uint256 = year
    if month <= 2:
        y -= 1
    era: uint256 = y // 400
    yoe: uint256 = y - era * 400
    mp: uint256 = (month + 9) % 12
    doy: uint256 = (153 * mp + 2) // 5 + day - 1
    doe: uint256 = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days: uint256 = era * 146097 + doe - 719468
    return days * 86400 + hour * 3600 + minute * 60 + second


@internal
@pure
def _der_time(cert: Bytes[MAX_CERT], e: Element) -> uint256:
    """UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ) to Unix seconds."""
    text: Bytes[MAX_AVR] = slice(cert, e.start, e.length)
    year: uint256 = 0
    at: uint256 = 0
    if e.tag == 23:
        assert e.length == 13, "AVR: bad UTCTime"
        year = self._digits(text, 0, 2)
        year += 1900 if year >= 50 else 2000
        at = 2
    else:
        assert e.tag == 24 and e.length == 15, "AVR: bad certificate time"
        year = self._digits(text, 0, 4)
        at = 4
    assert convert(slice(text, at + 10, 1), uint256) == 90, "AVR: certificate time not in UTC"
    return self._epoch(
        year, self._digits(text, at, 2), self._digits(text, at + 2, 2), self._digits(text, at + 4, 2),
        self._digits(text, at + 6, 2), self._digits(text, at + 8, 2)
    )


@internal
@view
def _check_cert(cert: Bytes[MAX_CERT], at_time: uint256) -> (Bytes[MAX_CERT], uint256):
    """The signing certificate, signed by the root and valid at `at_time`: its RSA key."""
    outer: Element = self._element(cert, 0)
    assert outer.tag == 48 and self._next(outer) == len(cert), "AVR: certificate is not one SEQUENCE"
    tbs: Element = self._element(cert, outer.start)
    assert tbs.tag == 48, "AVR: bad tbsCertificate"
    alg: Element = self._element(cert, self._next(tbs))
    assert alg.tag == 48 and keccak256(slice(cert, alg.start, 11)) == keccak256(SHA256_WITH_RSA), "AVR: certificate not signed with sha256WithRSAEncryption"
    sig: Element = self._element(cert, self._next(alg))
    assert sig.tag == 3 and self._next(sig) == len(cert), "AVR: bad certificate signature"
    assert self._byte(cert, sig.start) == 0, "AVR: signature has unused bits"
    tbs_der: Bytes[MAX_CERT] = slice(cert, outer.start, self._next(tbs) - outer.start)
    assert self._rsa_pkcs1_sha256(
        sha256(tbs_der), slice(cert, sig.start + 1, sig.length - 1), self.root_modulus, self.root_exponent
    ), "AVR: signing certificate not signed by the root"
    # tbsCertificate: [0] version?, serial, signature, issuer, validity, subject, spki
    at: uint256 = tbs.start
    e: Element = self._element(cert, at)
    if e.tag == 160:
        at = self._next(e)
    for i: uint256 in range(4):  # serial, signature, issuer -> validity
        e = self._element(cert, at)
        if i == 3:
            break
        at = self._next(e)
    assert e.tag == 48, "AVR: bad validity"
    not_before: Element = self._element(cert, e.start)
    not_after: Element = self._element(cert, self._next(not_before))
    assert self._der_time(cert, not_before) <= at_time, "AVR: signing certificate not yet valid"
    assert at_time <= self._der_time(cert, not_after), "AVR: signing certificate expired"
    subject: Element = self._element(cert, self._next(e))
    spki: Element = self._element(cert, self._next(subject))
    assert spki.tag == 48, "AVR: bad subjectPublicKeyInfo"
    spki_alg: Element = self._element(cert, spki.start)
    assert keccak256(slice(cert, spki_alg.start, 11)) == keccak256(RSA_ENCRYPTION), "AVR: signing key is not RSA"
    bits: Element = self._element(cert, self._next(spki_alg))
    assert bits.tag == 3 and self._byte(cert, bits.start) == 0, "AVR: bad public key bits"
    key: Element = self._element(cert, bits.start + 1)
    assert key.tag == 48, "AVR: bad RSAPublicKey"
    n: Element = self._element(cert, key.start)
    assert n.tag == 2, "AVR: bad modulus"
    start: uint256 = n.start
    length: uint256 = n.length
    if self._byte(cert, start) == 0:
        start += 1
        length -= 1
    assert length >= 256 and length <= MAX_RSA, "AVR: signing key size out of 2048..4096 bits"
    x: Element = self._element(cert, self._next(n))
    assert x.tag == 2 and x.length >= 1 and x.length <= 8, "AVR: bad exponent"
    exponent: uint256 = 0
    for i: uint256 in range(8):
        if i >= x.length:
            break
        exponent = exponent << 8 | self._byte(cert, x.start + i)
    return slice(cert, start, length), exponent


# ----------------------------------------------------------------------------- report JSON
@internal
@pure
def _find(data: Bytes[MAX_AVR], needle: Bytes[32], start: uint256) -> uint256:
    """Position just past the first occurrence of `needle` (a `"key":` prefix) at or after
    `start`. IAS writes the fields in a fixed order, so each search starts past the previous."""
    n: uint256 = len(needle)
    mask: uint256 = max_value(uint256) << (256 - 8 * n)
    target: uint256 = convert(extract32(concat(needle, empty(bytes32)), 0), uint256) & mask
    limit: uint256 = len(data)
    padded: Bytes[2080] = concat(data, empty(bytes32))
    for i: uint256 in range(MAX_AVR):
        at: uint256 = start + i
        if at + n > limit:
            break
        if convert(extract32(padded, at), uint256) & mask == target:
            return at + n
    raise "AVR: report field missing"


@internal
@pure
def _group(avr: Bytes[MAX_AVR], at: uint256) -> uint256:
    """The 24 bits of the 4 base64 characters at `at`."""
    chars: uint256 = convert(slice(avr, at, 4), uint256)
    v: uint256 = 0
    for j: uint256 in range(4):
        c: uint256 = (chars >> (24 - 8 * j)) & 255
        d: uint256 = 63
        if c >= 65 and c <= 90:
            d = c - 65
        elif c >= 97 and c <= 122:
            d = c - 71
        elif c >= 48 and c <= 57:
            d = c + 4
        elif c == 43:
            d = 62
        else:
            assert c == 47, "AVR: bad base64"
        v = v << 6 | d
    return v


@internal
@pure
def _quote_bytes(avr: Bytes[MAX_AVR], at: uint256, offset: uint256, n: uint256) -> uint256:
    """Bytes [offset, offset + n) of the base64 quote body at `at`, right-aligned (n <= 28)."""
    first: uint256 = offset // 3
    last: uint256 = (offset + n - 1) // 3
    acc: uint256 = 0
    for g: uint256 in range(10):
        if first + g > last:
            break
        acc = acc << 24 | self._group(avr, at + 4 * (first + g))
    # acc holds bytes [3 * first, 3 * last + 3); drop the tail past offset + n, keep n bytes
    acc = acc >> (8 * (3 * last + 3 - offset - n))
    return acc & ((1 << (8 * n)) - 1)


@external
@view
def verify(avr: Bytes[MAX_AVR], signature: Bytes[MAX_RSA], signing_cert: Bytes[MAX_CERT]) -> Report:
    """Verify a signed AVR against the root; revert with the reason, or return its facts."""
    t: uint256 = self._find(avr, b'"timestamp":"', 0)
    # 2024-06-15T14:18:10[.ffffff]
    assert convert(slice(avr, t + 4, 1), uint256) == 45 and convert(slice(avr, t + 10, 1), uint256) == 84, "AVR: bad timestamp"
    when: uint256 = self._epoch(
        self._digits(avr, t, 4), self._digits(avr, t + 5, 2), self._digits(avr, t + 8, 2),
        self._digits(avr, t + 11, 2), self._digits(avr, t + 14, 2), self._digits(avr, t + 17, 2)
    )
    modulus: Bytes[MAX_CERT] = b""
    exponent: uint256 = 0
    modulus, exponent = self._check_cert(signing_cert, when)
    assert self._rsa_pkcs1_sha256(sha256(avr), signature, modulus, exponent), "AVR: report signature invalid"
    v: uint256 = self._find(avr, b'"version":', t)
    assert self._digits(avr, v, 1) == 4 and convert(slice(avr, v + 1, 1), uint256) == 44, "AVR: report version is not 4"
    s: uint256 = self._find(avr, b'"isvEnclaveQuoteStatus":"', v)
    ok: bool = keccak256(slice(avr, s, 3)) == keccak256(b'OK"')
    q: uint256 = self._find(avr, b'"isvEnclaveQuoteBody":"', s)
    # 432 bytes are 576 base64 characters without padding, then the closing quote.
    assert convert(slice(avr, q + QUOTE_B64, 1), uint256) == 34, "AVR: quote body is not 432 bytes"
    # report data: 0x01 ‖ enclave key (20) ‖ operator (20) ‖ 23 zero bytes
    head: uint256 = self._quote_bytes(avr, q, REPORT_DATA_OFFSET, 21)
    assert head >> 160 == 1, "AVR: unknown report data version"
    operator: uint256 = self._quote_bytes(avr, q, REPORT_DATA_OFFSET + 21, 20)
    padding: uint256 = self._quote_bytes(avr, q, REPORT_DATA_OFFSET + 41, 23)
    assert padding == 0, "AVR: report data padding is not zero"
    flags: uint256 = self._quote_bytes(avr, q, ATTRIBUTES_OFFSET, 1)  # little-endian low byte
    mrenclave: uint256 = self._quote_bytes(avr, q, MRENCLAVE_OFFSET, 16) << 128 | self._quote_bytes(avr, q, MRENCLAVE_OFFSET + 16, 16)
    return Report(
        attestation_time=convert(when, uint64),
        quote_status_ok=ok,
        mrenclave=convert(mrenclave, bytes32),
        debug=flags & SGX_FLAGS_DEBUG != 0,
        enclave_key=convert(convert(head & (2**160 - 1), uint160), address),
        operator=convert(convert(operator, uint160), address),
    )
