"""Keys and transaction signatures: Ed25519 and ECDSA over secp256k1.

As in Corda, a signature never covers the transaction id alone but the pair
``(tx id, signature metadata)`` (``SignableData``), so the signer commits to the platform version
and scheme it signed with.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from enum import IntEnum

import coincurve
import nacl.bindings
import nacl.exceptions

from kakehashi.errors import InvalidTransactionError, SignatureError
from kakehashi.ledgers.corda.model.serialization import serializable, serialize

PLATFORM_VERSION = 1


@serializable("corda.SignatureScheme")
class SignatureScheme(IntEnum):
    """Signature schemes a key can use (numbers are part of the wire format)."""

    ED25519 = 1
    ECDSA_SECP256K1 = 2


_KEY_SIZES = {SignatureScheme.ED25519: 32, SignatureScheme.ECDSA_SECP256K1: 33}


@serializable("corda.PublicKey")
@dataclass(frozen=True, slots=True)
class PublicKey:
    """A public key: its scheme and its encoding (Ed25519 raw 32 bytes, secp256k1 compressed)."""

    scheme: SignatureScheme
    encoded: bytes

    def __post_init__(self) -> None:
        if len(self.encoded) != _KEY_SIZES[self.scheme]:
            raise InvalidTransactionError(
                f"{self.scheme.name} public key must be {_KEY_SIZES[self.scheme]} bytes, "
                f"got {len(self.encoded)}"
            )

    def verify(self, signature: bytes, data: bytes) -> None:
        """Raise :class:`SignatureError` unless ``signature`` is this key's over ``data``."""
        if self.scheme is SignatureScheme.ED25519:
            # libsodium: strict RFC 8032 checks (canonical encodings, no small-order keys).
            if len(signature) == nacl.bindings.crypto_sign_BYTES:
                try:
                    nacl.bindings.crypto_sign_open(signature + data, self.encoded)
                    return
                except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
                    pass
        else:
            try:
                if coincurve.PublicKey(self.encoded).verify(signature, data, hasher=_sha256):
                    return
            except (ValueError, TypeError):
                pass
        raise SignatureError(f"signature does not verify under key {self.short()}")

    def is_valid(self, signature: bytes, data: bytes) -> bool:
        try:
            self.verify(signature, data)
        except SignatureError:
            return False
        return True

    def to_text(self) -> str:
        """Text form ``ed25519:HEX`` / ``secp256k1:HEX`` used in configuration files."""
        prefix = "ed25519" if self.scheme is SignatureScheme.ED25519 else "secp256k1"
        return f"{prefix}:{self.encoded.hex()}"

    @classmethod
    def from_text(cls, text: str) -> PublicKey:
        prefix, _, hex_part = text.partition(":")
        schemes = {"ed25519": SignatureScheme.ED25519, "secp256k1": SignatureScheme.ECDSA_SECP256K1}
        if prefix not in schemes:
            raise InvalidTransactionError(
                f"public key {text!r} must start with 'ed25519:' or 'secp256k1:'"
            )
        try:
            encoded = bytes.fromhex(hex_part)
        except ValueError:
            raise InvalidTransactionError(f"public key {text!r} is not valid hex") from None
        return cls(schemes[prefix], encoded)

    def short(self) -> str:
        """A short fingerprint for messages and logs."""
        return hashlib.sha256(self.encoded).hexdigest()[:16]


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


class KeyPair:
    """A private key with its public half. Never serialised onto the ledger."""

    __slots__ = ("_ed25519", "_secp256k1", "public")

    def __init__(self, scheme: SignatureScheme, private_bytes: bytes) -> None:
        # Ed25519: libsodium's 64-byte secret key (seed || public key).
        self._ed25519: bytes | None = None
        self._secp256k1: coincurve.PrivateKey | None = None
        if scheme is SignatureScheme.ED25519:
            if len(private_bytes) != nacl.bindings.crypto_sign_SEEDBYTES:
                raise InvalidTransactionError("an Ed25519 private key is 32 bytes")
            raw, self._ed25519 = nacl.bindings.crypto_sign_seed_keypair(bytes(private_bytes))
        else:
            self._secp256k1 = coincurve.PrivateKey(private_bytes)
            raw = self._secp256k1.public_key.format(compressed=True)
        self.public = PublicKey(scheme, raw)

    @classmethod
    def generate(cls, scheme: SignatureScheme = SignatureScheme.ED25519) -> KeyPair:
        if scheme is SignatureScheme.ED25519:
            return cls(scheme, os.urandom(nacl.bindings.crypto_sign_SEEDBYTES))
        return cls(scheme, coincurve.PrivateKey().secret)

    @property
    def scheme(self) -> SignatureScheme:
        return self.public.scheme

    def private_bytes(self) -> bytes:
        if self._ed25519 is not None:
            return self._ed25519[: nacl.bindings.crypto_sign_SEEDBYTES]
        assert self._secp256k1 is not None
        return bytes(self._secp256k1.secret)

    def sign(self, data: bytes) -> bytes:
        if self._ed25519 is not None:
            signed = nacl.bindings.crypto_sign(data, self._ed25519)
            return signed[: nacl.bindings.crypto_sign_BYTES]
        assert self._secp256k1 is not None
        return bytes(self._secp256k1.sign(data, hasher=_sha256))

    def to_text(self) -> str:
        """Private key text form (``ed25519:HEX``) for key files."""
        prefix = "ed25519" if self.scheme is SignatureScheme.ED25519 else "secp256k1"
        return f"{prefix}:{self.private_bytes().hex()}"

    @classmethod
    def from_text(cls, text: str) -> KeyPair:
        prefix, _, hex_part = text.strip().partition(":")
        schemes = {"ed25519": SignatureScheme.ED25519, "secp256k1": SignatureScheme.ECDSA_SECP256K1}
        if prefix not in schemes:
            raise InvalidTransactionError(
                "private key text must start with 'ed25519:' or 'secp256k1:'"
            )
        return cls(schemes[prefix], bytes.fromhex(hex_part))


@serializable("corda.SignatureMetadata")
@dataclass(frozen=True, slots=True)
class SignatureMetadata:
    """What a signer commits to besides the transaction id."""

    platform_version: int
    scheme: SignatureScheme


@serializable("corda.SignableData")
@dataclass(frozen=True, slots=True)
class SignableData:
    """The bytes actually signed: the transaction id together with the signature metadata."""

    tx_id: bytes
    metadata: SignatureMetadata


@serializable("corda.TransactionSignature")
@dataclass(frozen=True, slots=True)
class TransactionSignature:
    """A signature by ``by`` over ``SignableData(tx_id, metadata)``."""

    signature: bytes
    by: PublicKey
    metadata: SignatureMetadata

    def verify(self, tx_id: bytes) -> None:
        """Raise :class:`SignatureError` unless this signs ``tx_id``."""
        if self.metadata.scheme is not self.by.scheme:
            raise SignatureError(
                f"signature metadata names {self.metadata.scheme.name} but the key is "
                f"{self.by.scheme.name}"
            )
        try:
            self.by.verify(self.signature, serialize(SignableData(tx_id, self.metadata)))
        except SignatureError:
            raise SignatureError(
                f"signature by key {self.by.short()} does not verify over transaction {tx_id.hex()}"
            ) from None


def sign_transaction_id(key: KeyPair, tx_id: bytes) -> TransactionSignature:
    """Sign a transaction id with ``key`` (Corda's ``SignableData`` rule)."""
    metadata = SignatureMetadata(PLATFORM_VERSION, key.scheme)
    signature = key.sign(serialize(SignableData(tx_id, metadata)))
    return TransactionSignature(signature, key.public, metadata)


def random_bytes(size: int = 32) -> bytes:
    """Cryptographically random bytes that are never all zero (privacy salts, nonces)."""
    while True:
        value = os.urandom(size)
        if any(value):
            return value
