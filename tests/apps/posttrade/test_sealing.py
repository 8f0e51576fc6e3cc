"""Sealed envelopes (``kakehashi.apps.posttrade.sealing``): the HPKE suite against RFC 9180's
published test vector, every route party opens and no one else, a party dropped in version 2
cannot read version 2, and any altered byte of an envelope fails for every recipient."""

from __future__ import annotations

import hashlib
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from pyhpke import AEADId, CipherSuite, KDFId, KEMId

from kakehashi.apps.posttrade.sealing import (
    ENC_SIZE,
    MAGIC,
    SUITE,
    WRAPPED_SIZE,
    Content,
    Envelope,
    generate_keypair,
    open_envelope,
    public_key,
    seal,
)
from kakehashi.errors import EnvelopeError, EnvelopeOpenError, NotARecipientError
from tests.apps.posttrade.test_form import ROUTE, form

KEYS = {name: generate_keypair() for name in (*ROUTE, "Thames Asset Management", "Outsider")}
ROUTE_KEYS = {name: KEYS[name][1] for name in ROUTE}


def sealed(plaintext: bytes | None = None, **changes: object) -> Envelope:
    the_form = form()
    return seal(
        plaintext if plaintext is not None else the_form.encode(),
        the_form.form_id,
        the_form.version,
        ROUTE_KEYS,
        **changes,  # type: ignore[arg-type]
    )


# ---------------------------------------------------------------------------- RFC 9180


class RFC9180A1:
    """RFC 9180 appendix A.1.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, base mode.

    The RFC publishes no vector for X25519 with AES-256-GCM; A.1 shares the KEM and the KDF with
    the suite the envelopes use, so it pins down the key encapsulation and the key schedule.
    """

    info = bytes.fromhex("4f6465206f6e2061204772656369616e2055726e")
    ikm_e = bytes.fromhex("7268600d403fce431561aef583ee1613527cff655c1343f29812e66706df3234")
    pk_em = bytes.fromhex("37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431")
    ikm_r = bytes.fromhex("6db9df30aa07dd42ee5e8181afdb977e538f5e1fec8a06223f33f7013e525037")
    pk_rm = bytes.fromhex("3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d")
    sk_rm = bytes.fromhex("4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8")
    shared_secret = bytes.fromhex(
        "fe0e18c9f024ce43799ae393c7e8fe8fce9d218875e8227b0187c04e7d2ea1fc"
    )
    pt = bytes.fromhex("4265617574792069732074727574682c20747275746820626561757479")
    messages = (
        (
            bytes.fromhex("436f756e742d30"),
            bytes.fromhex(
                "f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a9"
                "6d8770ac83d07bea87e13c512a"
            ),
        ),
        (
            bytes.fromhex("436f756e742d31"),
            bytes.fromhex(
                "af2d7e9ac9ae7e270f46ba1f975be53c09f8d875bdc8535458c2494e8a6eab25"
                "1c03d0c22a56b8ca42c2063b84"
            ),
        ),
    )


A1_SUITE = CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.AES128_GCM)


def test_rfc9180_a1_key_derivation() -> None:
    receiver = A1_SUITE.kem.derive_key_pair(RFC9180A1.ikm_r)
    assert receiver.private_key.to_private_bytes() == RFC9180A1.sk_rm
    assert receiver.public_key.to_public_bytes() == RFC9180A1.pk_rm
    assert public_key(RFC9180A1.sk_rm) == RFC9180A1.pk_rm
    ephemeral = A1_SUITE.kem.derive_key_pair(RFC9180A1.ikm_e)
    assert ephemeral.public_key.to_public_bytes() == RFC9180A1.pk_em


def test_rfc9180_a1_sender_gives_the_published_enc_and_ciphertexts() -> None:
    ephemeral = A1_SUITE.kem.derive_key_pair(RFC9180A1.ikm_e)
    receiver = A1_SUITE.kem.deserialize_public_key(RFC9180A1.pk_rm)
    enc, sender = A1_SUITE.create_sender_context(receiver, RFC9180A1.info, eks=ephemeral)
    assert enc == RFC9180A1.pk_em
    for aad, ct in RFC9180A1.messages:
        assert sender.seal(RFC9180A1.pt, aad) == ct


def test_rfc9180_a1_shared_secret_and_recipient_open() -> None:
    secret = A1_SUITE.kem.decap(
        RFC9180A1.pk_em, A1_SUITE.kem.deserialize_private_key(RFC9180A1.sk_rm)
    )
    assert secret == RFC9180A1.shared_secret
    recipient = A1_SUITE.create_recipient_context(
        RFC9180A1.pk_em, A1_SUITE.kem.deserialize_private_key(RFC9180A1.sk_rm), RFC9180A1.info
    )
    for aad, ct in RFC9180A1.messages:
        assert recipient.open(ct, aad) == RFC9180A1.pt


def test_envelopes_use_the_x25519_sha256_aes256gcm_suite() -> None:
    assert SUITE.kem.id is KEMId.DHKEM_X25519_HKDF_SHA256
    assert SUITE.kdf.id is KDFId.HKDF_SHA256
    assert SUITE.aead.id is AEADId.AES256_GCM
    assert SUITE.aead.key_size == 32


def test_a1_vector_shape_holds_for_the_aes256_suite() -> None:
    # Same KEM, so the same ephemeral key gives the same enc; the AEAD key is now 256 bits.
    ephemeral = SUITE.kem.derive_key_pair(RFC9180A1.ikm_e)
    receiver = SUITE.kem.deserialize_public_key(RFC9180A1.pk_rm)
    enc, sender = SUITE.create_sender_context(receiver, RFC9180A1.info, eks=ephemeral)
    assert enc == RFC9180A1.pk_em
    ct = sender.seal(RFC9180A1.pt, RFC9180A1.messages[0][0])
    assert ct != RFC9180A1.messages[0][1]
    recipient = SUITE.create_recipient_context(
        enc, SUITE.kem.deserialize_private_key(RFC9180A1.sk_rm), RFC9180A1.info
    )
    assert recipient.open(ct, RFC9180A1.messages[0][0]) == RFC9180A1.pt


# ---------------------------------------------------------------------------- keys


def test_generated_key_pairs_are_x25519() -> None:
    private, public = generate_keypair()
    assert len(private) == len(public) == 32
    expected = X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()
    assert public == expected == public_key(private)
    assert generate_keypair()[0] != private


# ---------------------------------------------------------------------------- who can open


def test_every_route_party_opens_the_form() -> None:
    envelope = sealed()
    assert envelope.recipients == tuple(sorted(ROUTE))
    for name in ROUTE:
        assert open_envelope(envelope, name, KEYS[name][0]) == form().encode()


def test_an_outsider_is_not_a_recipient() -> None:
    envelope = sealed()
    with pytest.raises(NotARecipientError, match="Outsider is not a recipient of form TRADE"):
        open_envelope(envelope, "Outsider", KEYS["Outsider"][0])


@pytest.mark.parametrize("name", ROUTE)
def test_an_outsiders_key_under_a_route_partys_name_does_not_open(name: str) -> None:
    with pytest.raises(EnvelopeOpenError, match="did not open") as caught:
        open_envelope(sealed(), name, KEYS["Outsider"][0])
    assert caught.value.part == "key"


def test_one_partys_key_does_not_open_anothers_wrapped_key() -> None:
    with pytest.raises(EnvelopeOpenError) as caught:
        open_envelope(sealed(), ROUTE[0], KEYS[ROUTE[1]][0])
    assert caught.value.part == "key"


def test_a_party_removed_in_version_2_cannot_read_version_2() -> None:
    the_form = form()
    first = seal(the_form.encode(), the_form.form_id, 1, ROUTE_KEYS)
    amended = form(version=2, route=ROUTE[1:])
    second = seal(
        amended.encode(), amended.form_id, 2, {name: KEYS[name][1] for name in amended.route}
    )
    removed = ROUTE[0]
    assert open_envelope(first, removed, KEYS[removed][0]) == the_form.encode()
    with pytest.raises(NotARecipientError):
        open_envelope(second, removed, KEYS[removed][0])
    # Nor by grafting its version-1 entry onto version 2: the entry is bound to version 1.
    grafted = Envelope(
        second.form_id,
        second.version,
        second.nonce,
        second.ciphertext,
        {**second.wrapped_keys, removed: first.wrapped_keys[removed]},
    )
    with pytest.raises(EnvelopeOpenError) as caught:
        open_envelope(grafted, removed, KEYS[removed][0])
    assert caught.value.part == "key"
    for name in amended.route:
        assert open_envelope(second, name, KEYS[name][0]) == amended.encode()


def test_every_seal_draws_a_fresh_content_key() -> None:
    one, other = sealed(), sealed()
    assert one.nonce != other.nonce
    assert one.ciphertext != other.ciphertext
    assert one.wrapped_keys[ROUTE[0]] != other.wrapped_keys[ROUTE[0]]
    # A wrapped key from one seal does not open the other's content.
    mixed = Envelope(
        one.form_id,
        one.version,
        one.nonce,
        one.ciphertext,
        {**one.wrapped_keys, **other.wrapped_keys},
    )
    with pytest.raises(EnvelopeOpenError):
        open_envelope(mixed, ROUTE[0], KEYS[ROUTE[0]][0])


def test_a_narrative_is_sealed_the_same_way_and_never_passes_for_a_form() -> None:
    narrative = b"cash account 0042 is closed; use 0043"
    envelope = sealed(narrative, kind=Content.NARRATIVE)
    assert envelope.kind is Content.NARRATIVE
    for name in ROUTE:
        assert open_envelope(envelope, name, KEYS[name][0]) == narrative
    as_form = Envelope(
        envelope.form_id,
        envelope.version,
        envelope.nonce,
        envelope.ciphertext,
        envelope.wrapped_keys,
        Content.FORM,
    )
    with pytest.raises(EnvelopeOpenError):
        open_envelope(as_form, ROUTE[0], KEYS[ROUTE[0]][0])


def test_an_empty_plaintext_seals_and_opens() -> None:
    assert open_envelope(sealed(b""), ROUTE[2], KEYS[ROUTE[2]][0]) == b""


# ---------------------------------------------------------------------------- tampering


def test_any_flipped_byte_fails_for_every_recipient() -> None:
    envelope = sealed()
    raw = envelope.encode()
    for at in range(len(raw)):
        altered = bytearray(raw)
        altered[at] ^= 0x01
        _assert_nobody_reads(bytes(altered), envelope)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_altered_bytes_fail_for_every_recipient(data: st.DataObject) -> None:
    envelope = _ENVELOPE
    raw = bytearray(envelope.encode())
    for at in data.draw(st.sets(st.integers(0, len(raw) - 1), min_size=1, max_size=4)):
        raw[at] ^= data.draw(st.integers(1, 255))
    _assert_nobody_reads(bytes(raw), envelope)


_ENVELOPE = sealed()


def _assert_nobody_reads(altered: bytes, original: Envelope) -> None:
    """The altered bytes do not decode, or decode and open for none of the recipients."""
    try:
        decoded = Envelope.decode(altered)
    except EnvelopeError:
        return
    assert decoded.encode() == altered
    assert decoded.digest != original.digest
    for name in ROUTE:
        with pytest.raises((EnvelopeOpenError, NotARecipientError)):
            open_envelope(decoded, name, KEYS[name][0])


@pytest.mark.parametrize(
    ("field", "part"),
    [("ciphertext", "content"), ("nonce", "content"), ("form_id", "key"), ("version", "key")],
)
def test_each_altered_field_is_reported_for_what_it_is(field: str, part: str) -> None:
    envelope = sealed()
    values = {
        "form_id": envelope.form_id,
        "version": envelope.version,
        "nonce": envelope.nonce,
        "ciphertext": envelope.ciphertext,
    }
    values[field] = {
        "ciphertext": bytes([envelope.ciphertext[0] ^ 0x80]) + envelope.ciphertext[1:],
        "nonce": bytes(12),
        "form_id": "TRADE-20261130-002",
        "version": 2,
    }[field]
    altered = Envelope(wrapped_keys=envelope.wrapped_keys, **values)  # type: ignore[arg-type]
    for name in ROUTE:
        with pytest.raises(EnvelopeOpenError, match="digest against the one on chain") as caught:
            open_envelope(altered, name, KEYS[name][0])
        assert caught.value.part == part


def test_an_altered_wrapped_key_fails_for_its_party_and_the_content_for_the_others() -> None:
    envelope = sealed()
    enc, wrapped = envelope.wrapped_keys[ROUTE[0]]
    altered = Envelope(
        envelope.form_id,
        envelope.version,
        envelope.nonce,
        envelope.ciphertext,
        {**envelope.wrapped_keys, ROUTE[0]: (enc, bytes([wrapped[0] ^ 1]) + wrapped[1:])},
    )
    with pytest.raises(EnvelopeOpenError) as caught:
        open_envelope(altered, ROUTE[0], KEYS[ROUTE[0]][0])
    assert caught.value.part == "key"
    for name in ROUTE[1:]:
        with pytest.raises(EnvelopeOpenError) as caught:
            open_envelope(altered, name, KEYS[name][0])
        assert caught.value.part == "content"


def test_dropping_a_recipient_breaks_the_envelope_for_the_others() -> None:
    envelope = sealed()
    kept = {name: entry for name, entry in envelope.wrapped_keys.items() if name != ROUTE[0]}
    altered = Envelope(
        envelope.form_id, envelope.version, envelope.nonce, envelope.ciphertext, kept
    )
    for name in ROUTE[1:]:
        with pytest.raises(EnvelopeOpenError):
            open_envelope(altered, name, KEYS[name][0])


# ---------------------------------------------------------------------------- encoding


def test_encoding_round_trips_and_digest_is_its_sha256() -> None:
    envelope = sealed(kind=Content.NARRATIVE)
    raw = envelope.encode()
    assert raw.startswith(MAGIC)
    decoded = Envelope.decode(raw)
    assert decoded == envelope
    assert decoded.encode() == raw
    assert envelope.digest == hashlib.sha256(raw).digest()
    assert {envelope, decoded} == {envelope}  # hashable, equal envelopes hash alike


@settings(max_examples=50, deadline=None)
@given(
    plaintext=st.binary(max_size=300),
    form_id=st.text(min_size=1, max_size=20),
    version=st.integers(1, 2**64 - 1),
    names=st.sets(st.text(min_size=1, max_size=12).filter(str.isprintable), min_size=1, max_size=4),
)
def test_any_envelope_round_trips(
    plaintext: bytes, form_id: str, version: int, names: set[str]
) -> None:
    keys = {name: generate_keypair() for name in names}
    envelope = seal(plaintext, form_id, version, {name: keys[name][1] for name in names})
    raw = envelope.encode()
    assert Envelope.decode(raw) == envelope
    assert Envelope.decode(raw).encode() == raw
    for name in names:
        assert open_envelope(Envelope.decode(raw), name, keys[name][0]) == plaintext


def test_equal_envelopes_encode_alike_whatever_the_order_of_recipients() -> None:
    envelope = sealed()
    reordered = Envelope(
        envelope.form_id,
        envelope.version,
        envelope.nonce,
        envelope.ciphertext,
        dict(reversed(list(envelope.wrapped_keys.items()))),
    )
    assert reordered.encode() == envelope.encode()


def _entries_offset(envelope: Envelope) -> int:
    return 4 + 4 + len(envelope.form_id.encode()) + 8 + 12 + 4 + len(envelope.ciphertext)


def _raw_with_entries(envelope: Envelope, entries: list[tuple[bytes, bytes, bytes]]) -> bytes:
    head = envelope.encode()[: _entries_offset(envelope)]
    body = b"".join(struct.pack(">H", len(n)) + n + enc + w for n, enc, w in entries)
    return head + struct.pack(">B", len(entries)) + body


def test_decode_refuses_recipients_out_of_order_or_twice() -> None:
    envelope = sealed()
    entries = [(n.encode(), *envelope.wrapped_keys[n]) for n in envelope.recipients]
    assert _raw_with_entries(envelope, entries) == envelope.encode()
    with pytest.raises(EnvelopeError, match="unique and in increasing order"):
        Envelope.decode(_raw_with_entries(envelope, list(reversed(entries))))
    with pytest.raises(EnvelopeError, match="unique and in increasing order"):
        Envelope.decode(_raw_with_entries(envelope, [entries[0], entries[0]]))


@pytest.mark.parametrize(
    ("mangle", "why"),
    [
        (lambda raw: b"XXXX" + raw[4:], "not a post-trade envelope"),
        (lambda raw: raw[:4] + b"\x02" + raw[5:], "format 2 is not supported"),
        (lambda raw: raw[:5] + b"\x09" + raw[6:], "unknown envelope content kind 9"),
        (lambda raw: raw[:-1], "truncated"),
        (lambda raw: raw + b"\x00", "stray bytes"),
        (lambda raw: raw[:3], "truncated"),
        (lambda raw: b"", "truncated"),
    ],
)
def test_decode_refuses_malformed_bytes(mangle: object, why: str) -> None:
    with pytest.raises(EnvelopeError, match=why):
        Envelope.decode(mangle(sealed().encode()))  # type: ignore[operator]


def test_decode_refuses_a_non_utf8_name() -> None:
    envelope = sealed()
    entries = [(b"\xff\xfe", *envelope.wrapped_keys[ROUTE[0]])]
    with pytest.raises(EnvelopeError, match="not UTF-8"):
        Envelope.decode(_raw_with_entries(envelope, entries))


def test_decode_refuses_zero_recipients() -> None:
    with pytest.raises(EnvelopeError, match="1 to 255 recipients"):
        Envelope.decode(_raw_with_entries(sealed(), []))


# ---------------------------------------------------------------------------- seal inputs


@pytest.mark.parametrize(
    ("args", "why"),
    [
        ((b"x", "F", 1, {}), "1 to 255 recipients, not 0"),
        ((b"x", "", 1, ROUTE_KEYS), "must be non-empty text"),
        ((b"x", "F", 0, ROUTE_KEYS), "integer from 1"),
        ((b"x", "F", True, ROUTE_KEYS), "integer from 1"),
        (("x", "F", 1, ROUTE_KEYS), "plaintext must be bytes"),
        ((b"x", "F", 1, {"A": b"short"}), "A's public key must be 32 raw X25519 bytes"),
        ((b"x", "F", 1, {"A": bytes(32)}), "A's public key is not usable"),
        ((b"x", "F", 1, {"": KEYS["Outsider"][1]}), "recipient name"),
        ((b"x", "F", 1, {"A\n": KEYS["Outsider"][1]}), "printable"),
    ],
)
def test_seal_refuses_what_it_cannot_seal(args: tuple[object, ...], why: str) -> None:
    with pytest.raises(EnvelopeError, match=why):
        seal(*args)  # type: ignore[arg-type]


def test_open_refuses_a_key_of_the_wrong_size() -> None:
    with pytest.raises(EnvelopeError, match="private key must be 32 raw X25519 bytes"):
        open_envelope(sealed(), ROUTE[0], b"short")


def test_envelope_fields_are_checked() -> None:
    envelope = sealed()
    enc, wrapped = envelope.wrapped_keys[ROUTE[0]]
    with pytest.raises(EnvelopeError, match="nonce must be 12 bytes"):
        Envelope("F", 1, b"n", envelope.ciphertext, envelope.wrapped_keys)
    with pytest.raises(EnvelopeError, match=f"enc must be {ENC_SIZE} bytes"):
        Envelope("F", 1, envelope.nonce, envelope.ciphertext, {"A": (enc[:5], wrapped)})
    with pytest.raises(EnvelopeError, match=f"wrapped key must be {WRAPPED_SIZE} bytes"):
        Envelope("F", 1, envelope.nonce, envelope.ciphertext, {"A": (enc, wrapped + b"!")})
    with pytest.raises(EnvelopeError, match="at least the 16-byte tag"):
        Envelope("F", 1, envelope.nonce, b"short", envelope.wrapped_keys)
