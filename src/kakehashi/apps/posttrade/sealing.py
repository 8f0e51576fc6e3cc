"""Sealed envelopes: a form version encrypted for the parties on its route, and no one else.

The construction (issue 8, "Confidentiality and integrity"):

* a fresh 256-bit content key and 96-bit nonce per envelope;
* the content key is wrapped for each recipient's X25519 public key with HPKE (RFC 9180) in base
  mode, suite DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / AES-256-GCM: ``info`` binds the kind,
  form id and version, the AEAD's associated data the recipient's name — so a wrapped key opens
  only for its own party, only for this form version;
* the plaintext (a form's canonical encoding, or an approval's narrative) is encrypted with
  AES-256-GCM, the associated data binding the content kind, the form id, the version and a
  hash of the whole recipient table (:func:`_content_aad`) — so altering any byte of an
  envelope makes it fail to open for every recipient;
* :meth:`Envelope.encode` lays it out in one canonical binary form, whose sha256
  (:attr:`Envelope.digest`) is what the chain stores.

An envelope names its recipients (the route is public on chain anyway) but nothing of the
content. Whoever is not named cannot open it; a party dropped from the route of version 2 is
simply not a recipient of version 2's envelope.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from types import MappingProxyType

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pyhpke import AEADId, CipherSuite, KDFId, KEMId
from pyhpke.exceptions import PyHPKEError

from kakehashi.errors import EnvelopeError, EnvelopeOpenError, NotARecipientError

MAGIC = b"KKPE"
"""The first four bytes of every encoded envelope."""

FORMAT = 1
"""The envelope layout version (the byte after :data:`MAGIC`)."""

KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
ENC_SIZE = 32  # an X25519 public key: HPKE's encapsulated key for this KEM
WRAPPED_SIZE = KEY_SIZE + TAG_SIZE
MAX_RECIPIENTS = 255

SUITE = CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.AES256_GCM)
"""HPKE (RFC 9180) DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM."""


class Content(IntEnum):
    """What an envelope holds; bound into every key, so one kind never passes for another."""

    FORM = 1
    NARRATIVE = 2


@dataclass(frozen=True)
class Envelope:
    """One sealed plaintext: header (kind, form id, version), AES-256-GCM nonce and ciphertext,
    and ``wrapped_keys``: party name -> (HPKE ``enc``, the wrapped content key)."""

    form_id: str
    version: int
    nonce: bytes
    ciphertext: bytes
    wrapped_keys: Mapping[str, tuple[bytes, bytes]]
    kind: Content = Content.FORM

    def __post_init__(self) -> None:
        _check_header(self.form_id, self.version)
        if not isinstance(self.kind, Content):
            raise EnvelopeError(
                f"kind {self.kind!r} is not one of {', '.join(Content.__members__)}"
            )
        if not isinstance(self.nonce, bytes) or len(self.nonce) != NONCE_SIZE:
            raise EnvelopeError(f"nonce must be {NONCE_SIZE} bytes")
        if not isinstance(self.ciphertext, bytes) or len(self.ciphertext) < TAG_SIZE:
            raise EnvelopeError(f"ciphertext must be bytes, at least the {TAG_SIZE}-byte tag")
        if len(self.ciphertext) >= 2**32:
            raise EnvelopeError("ciphertext is too long (at most 2**32 - 1 bytes)")
        if not 1 <= len(self.wrapped_keys) <= MAX_RECIPIENTS:
            raise EnvelopeError(f"an envelope has 1 to {MAX_RECIPIENTS} recipients")
        entries: dict[str, tuple[bytes, bytes]] = {}
        for name in sorted(self.wrapped_keys, key=_name_bytes):
            enc, wrapped = self.wrapped_keys[name]
            _check_name(name)
            if not isinstance(enc, bytes) or len(enc) != ENC_SIZE:
                raise EnvelopeError(f"{name}: enc must be {ENC_SIZE} bytes")
            if not isinstance(wrapped, bytes) or len(wrapped) != WRAPPED_SIZE:
                raise EnvelopeError(f"{name}: wrapped key must be {WRAPPED_SIZE} bytes")
            entries[name] = (enc, wrapped)
        # Sorted by name and read-only: equal envelopes encode to equal bytes.
        object.__setattr__(self, "wrapped_keys", MappingProxyType(entries))

    def __hash__(self) -> int:
        return hash(self.encode())

    @property
    def recipients(self) -> tuple[str, ...]:
        """The names of the parties that can open this envelope (sorted by UTF-8 bytes)."""
        return tuple(self.wrapped_keys)

    def encode(self) -> bytes:
        """The canonical bytes: the only bytes :meth:`decode` accepts for this envelope.

        ``MAGIC | u8 format | u8 kind | u16 len, form id | u64 version | nonce (12) |
        u32 len, ciphertext | u8 count | count x (u16 len, name | enc (32) | wrapped (48))``,
        integers big-endian, names UTF-8 in strictly increasing byte order.
        """
        form_id = self.form_id.encode("utf-8")
        parts = [
            MAGIC,
            struct.pack(">BBH", FORMAT, self.kind, len(form_id)),
            form_id,
            struct.pack(">Q", self.version),
            self.nonce,
            struct.pack(">I", len(self.ciphertext)),
            self.ciphertext,
            struct.pack(">B", len(self.wrapped_keys)),
        ]
        for name, (enc, wrapped) in self.wrapped_keys.items():
            raw_name = _name_bytes(name)
            parts += [struct.pack(">H", len(raw_name)), raw_name, enc, wrapped]
        return b"".join(parts)

    @classmethod
    def decode(cls, raw: bytes) -> Envelope:
        """The envelope encoded in ``raw``; EnvelopeError if malformed or not canonical."""
        reader = _Reader(bytes(raw))
        if reader.take(4, "magic") != MAGIC:
            raise EnvelopeError("not a post-trade envelope (the first bytes are not KKPE)")
        layout, kind, id_length = struct.unpack(">BBH", reader.take(4, "header"))
        if layout != FORMAT:
            raise EnvelopeError(f"envelope format {layout} is not supported (only {FORMAT})")
        try:
            content = Content(kind)
        except ValueError:
            raise EnvelopeError(f"unknown envelope content kind {kind}") from None
        form_id = reader.text(id_length, "form id")
        (version,) = struct.unpack(">Q", reader.take(8, "version"))
        nonce = reader.take(NONCE_SIZE, "nonce")
        (ct_length,) = struct.unpack(">I", reader.take(4, "ciphertext length"))
        ciphertext = reader.take(ct_length, "ciphertext")
        (count,) = struct.unpack(">B", reader.take(1, "recipient count"))
        entries: dict[str, tuple[bytes, bytes]] = {}
        previous = b""
        for _ in range(count):
            (name_length,) = struct.unpack(">H", reader.take(2, "name length"))
            name = reader.text(name_length, "recipient name")
            if entries and _name_bytes(name) <= previous:
                raise EnvelopeError("recipient names must be unique and in increasing order")
            previous = _name_bytes(name)
            entries[name] = (reader.take(ENC_SIZE, "enc"), reader.take(WRAPPED_SIZE, "wrapped key"))
        if reader.remaining:
            raise EnvelopeError(f"{reader.remaining} stray bytes after the envelope")
        envelope = cls(form_id, version, nonce, ciphertext, entries, content)
        if envelope.encode() != bytes(raw):  # e.g. a name that is not printable, re-spelt
            raise EnvelopeError("envelope bytes are not in canonical form")
        return envelope

    @property
    def digest(self) -> bytes:
        """sha256 of :meth:`encode`: what the chain stores for this envelope."""
        return hashlib.sha256(self.encode()).digest()


def generate_keypair() -> tuple[bytes, bytes]:
    """A fresh X25519 key pair for a party: (private 32 bytes, public 32 bytes)."""
    private = os.urandom(KEY_SIZE)
    return private, public_key(private)


def public_key(private_key: bytes) -> bytes:
    """The X25519 public key (32 bytes) of a 32-byte private key."""
    _check_key("private key", private_key)
    key = X25519PrivateKey.from_private_bytes(private_key)
    return key.public_key().public_bytes_raw()


def seal(
    plaintext: bytes,
    form_id: str,
    version: int,
    recipients: Mapping[str, bytes],
    *,
    kind: Content = Content.FORM,
) -> Envelope:
    """Encrypt ``plaintext`` for exactly the parties in ``recipients`` (name -> X25519 public key).

    A fresh content key and nonce are drawn for every call, so each form version (and each
    narrative) has its own key.
    """
    _check_header(form_id, version)
    if not isinstance(plaintext, bytes):
        raise EnvelopeError(f"plaintext must be bytes, got {type(plaintext).__name__}")
    if not 1 <= len(recipients) <= MAX_RECIPIENTS:
        raise EnvelopeError(f"seal for 1 to {MAX_RECIPIENTS} recipients, not {len(recipients)}")
    content_key = AESGCM.generate_key(bit_length=8 * KEY_SIZE)
    info = _wrap_info(kind, form_id, version)
    wrapped_keys: dict[str, tuple[bytes, bytes]] = {}
    for name, public in recipients.items():
        _check_name(name)
        _check_key(f"{name}'s public key", public)
        try:
            recipient_key = SUITE.kem.deserialize_public_key(public)
            enc, context = SUITE.create_sender_context(recipient_key, info)
            wrapped_keys[name] = (enc, context.seal(content_key, _name_bytes(name)))
        except (PyHPKEError, ValueError) as exc:
            # A low-order point gives an all-zero shared secret, which X25519 refuses.
            raise EnvelopeError(f"{name}'s public key is not usable for X25519: {exc}") from None
    nonce = os.urandom(NONCE_SIZE)
    aad = _content_aad(kind, form_id, version, wrapped_keys)
    ciphertext = AESGCM(content_key).encrypt(nonce, plaintext, aad)
    return Envelope(form_id, version, nonce, ciphertext, wrapped_keys, kind)


def open_envelope(envelope: Envelope, name: str, private_key: bytes) -> bytes:
    """The plaintext of ``envelope`` as party ``name`` with its X25519 private key.

    Raises NotARecipientError if ``name`` has no wrapped key, EnvelopeOpenError if the key does
    not open (``part="key"``) or the content does not authenticate (``part="content"``).
    """
    where = f"form {envelope.form_id} version {envelope.version}"
    if name not in envelope.wrapped_keys:
        raise NotARecipientError(
            f"{name} is not a recipient of {where}: its content is encrypted for the route's "
            "parties only; ask the submitter to put you on the route"
        )
    _check_key("private key", private_key)
    enc, wrapped = envelope.wrapped_keys[name]
    info = _wrap_info(envelope.kind, envelope.form_id, envelope.version)
    try:
        context = SUITE.create_recipient_context(
            enc, SUITE.kem.deserialize_private_key(private_key), info
        )
        content_key = context.open(wrapped, _name_bytes(name))
    except (PyHPKEError, ValueError):
        raise EnvelopeOpenError(
            f"{name}'s content key for {where} did not open: the private key is not the one "
            f"{name} registered, or the envelope (wrapped key, form id or version) was altered; "
            "check its digest against the one on chain",
            part="key",
        ) from None
    aad = _content_aad(envelope.kind, envelope.form_id, envelope.version, envelope.wrapped_keys)
    try:
        return AESGCM(content_key).decrypt(envelope.nonce, envelope.ciphertext, aad)
    except InvalidTag:
        raise EnvelopeOpenError(
            f"the content of {where} failed authentication: the ciphertext, nonce, header or "
            "recipient table was altered after sealing; check the envelope's digest against "
            "the one on chain",
            part="content",
        ) from None


def _header(kind: Content, form_id: str, version: int) -> bytes:
    raw_id = form_id.encode("utf-8")
    return struct.pack(">BH", kind, len(raw_id)) + raw_id + struct.pack(">Q", version)


def _content_aad(
    kind: Content, form_id: str, version: int, wrapped_keys: Mapping[str, tuple[bytes, bytes]]
) -> bytes:
    # The whole recipient table is bound too: renaming, dropping or swapping any recipient's
    # entry makes the content fail for every recipient, not only for the one altered.
    return (
        b"kakehashi/posttrade/content/v1" + _header(kind, form_id, version) + _table(wrapped_keys)
    )


def _table(wrapped_keys: Mapping[str, tuple[bytes, bytes]]) -> bytes:
    table = hashlib.sha256()
    for name in sorted(wrapped_keys, key=_name_bytes):
        enc, wrapped = wrapped_keys[name]
        raw_name = _name_bytes(name)
        table.update(struct.pack(">H", len(raw_name)) + raw_name + enc + wrapped)
    return table.digest()


def _wrap_info(kind: Content, form_id: str, version: int) -> bytes:
    return b"kakehashi/posttrade/key-wrap/v1" + _header(kind, form_id, version)


def _name_bytes(name: str) -> bytes:
    return name.encode("utf-8")


def _check_header(form_id: object, version: object) -> None:
    if not isinstance(form_id, str) or not form_id or len(form_id.encode("utf-8")) > 0xFFFF:
        raise EnvelopeError(f"form id {form_id!r} must be non-empty text")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version < 2**64:
        raise EnvelopeError(f"version {version!r} must be an integer from 1 (below 2**64)")


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not name or not name.isprintable():
        raise EnvelopeError(f"recipient name {name!r} must be non-empty printable text")
    if len(name.encode("utf-8")) > 0xFFFF:
        raise EnvelopeError("recipient name is too long")


def _check_key(what: str, key: object) -> None:
    if not isinstance(key, bytes) or len(key) != KEY_SIZE:
        raise EnvelopeError(f"{what} must be {KEY_SIZE} raw X25519 bytes")


class _Reader:
    def __init__(self, raw: bytes) -> None:
        self._raw = raw
        self._at = 0

    @property
    def remaining(self) -> int:
        return len(self._raw) - self._at

    def take(self, size: int, what: str) -> bytes:
        if size > self.remaining:
            raise EnvelopeError(f"envelope truncated in its {what}")
        chunk = self._raw[self._at : self._at + size]
        self._at += size
        return chunk

    def text(self, size: int, what: str) -> str:
        try:
            return self.take(size, what).decode("utf-8")
        except UnicodeDecodeError:
            raise EnvelopeError(f"envelope's {what} is not UTF-8") from None
