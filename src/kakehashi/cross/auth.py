"""Authentication of end users (DESIGN.md §6): who must sign a cross transaction, and proof that
they did, before anything executes.

**Accounts.** A signer is an :class:`~kakehashi.cross.tx.Account` ``(kind, id)``:

* ``LOCAL`` — a party of the ledger that coordinates the transaction, signing there: ``id`` is
  an EVM address (20 bytes; it signs by sending the transaction) or a Corda-model party's
  public key (:func:`corda_key_id`: scheme byte ‖ key; it signs the tx id with that key);
* ``CHANNEL`` — a party of the ledger at the other end of its part's channel (same ``id``
  forms), which signs there; that ledger proves the signature to the coordinator with a SIGN
  packet, and the coordinator takes it only from that channel;
* ``EXTENSION`` — a key checked by a registered verifier: ``id = scheme byte ‖ key``.
  Shipped: :data:`EXT_SECP256K1` (``0x01 ‖ 20-byte address``; a 65-byte ``r ‖ s ‖ v`` ECDSA
  signature over the 32-byte tx id, which Vyper checks with ``ecrecover``) and
  :data:`EXT_ED25519` (``0x02 ‖ 32-byte key``; a 64-byte RFC 8032 signature over the tx id,
  checked on the Corda model).

**Designation by name.** An :class:`IdentityRegistry` maps a party's X.500 name to its EVM
address and Corda-model key, so a user names counterparties and the registry gives the accounts.

**Progress.** :class:`Authentication` is one ledger's record for one transaction: the accounts
required, who signed and when; PENDING until all have, VERIFIED then, EXPIRED once the
transaction's timeout passed first (no signature is accepted after it).

Pure: bytes in; :class:`~kakehashi.errors.SignatureError` /
:class:`~kakehashi.cross.tx.CrossTxError` out.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import coincurve
import nacl.bindings
import nacl.exceptions
from eth_utils import keccak

from kakehashi.cross.status import AuthStatus
from kakehashi.cross.tx import Account, CrossTxError, InitiateTx, SignerKind
from kakehashi.errors import ConfigurationError, KakehashiError, SignatureError
from kakehashi.ibc.types import Height
from kakehashi.ledgers.corda.model.crypto import KeyPair, PublicKey, SignatureScheme
from kakehashi.ledgers.corda.model.identity import X500Name

__all__ = [
    "EXT_ED25519",
    "EXT_SECP256K1",
    "Authentication",
    "ExtensionVerifier",
    "IdentityRegistry",
    "PartyIdentity",
    "corda_key_id",
    "ed25519_account",
    "secp256k1_account",
    "sign_ed25519",
    "sign_party",
    "sign_secp256k1",
    "verify_extension",
    "verify_party_signature",
]

EXT_SECP256K1 = 0x01
EXT_ED25519 = 0x02


def corda_key_id(key: PublicKey) -> bytes:
    """A Corda-model party's account id: its key's scheme byte and encoding."""
    return bytes([int(key.scheme)]) + key.encoded


# ---------------------------------------------------------------------------- extensions


class ExtensionVerifier(Protocol):
    def verify(self, key: bytes, tx_id: bytes, signature: bytes) -> None:
        """Raise SignatureError unless ``signature`` by ``key`` is over ``tx_id``."""
        ...


class _Secp256k1:
    def verify(self, key: bytes, tx_id: bytes, signature: bytes) -> None:
        if len(key) != 20:
            raise SignatureError("a secp256k1 extension account is a 20-byte address")
        if len(signature) != 65 or signature[64] not in (0, 1, 27, 28):
            raise SignatureError("a secp256k1 extension signature is 65 bytes r ‖ s ‖ v")
        recoverable = signature[:64] + bytes([signature[64] % 27])
        try:
            public = coincurve.PublicKey.from_signature_and_message(recoverable, tx_id, hasher=None)
        except (ValueError, TypeError):
            raise SignatureError("the secp256k1 signature does not recover a key") from None
        if keccak(public.format(compressed=False)[1:])[12:] != key:
            raise SignatureError(f"the signature is not 0x{key.hex()}'s over the tx id")


class _Ed25519:
    def verify(self, key: bytes, tx_id: bytes, signature: bytes) -> None:
        if len(key) != 32 or len(signature) != 64:
            raise SignatureError("an Ed25519 extension is a 32-byte key and a 64-byte signature")
        try:
            nacl.bindings.crypto_sign_open(signature + tx_id, key)
        except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
            raise SignatureError("the Ed25519 signature does not verify over the tx id") from None


VERIFIERS: Mapping[int, ExtensionVerifier] = {EXT_SECP256K1: _Secp256k1(), EXT_ED25519: _Ed25519()}
"""The registered extension verifiers, by scheme byte."""


def verify_extension(account: Account, tx_id: bytes, signature: bytes) -> None:
    """Check an EXTENSION account's signature over ``tx_id`` with its registered verifier."""
    if account.kind is not SignerKind.EXTENSION or not account.id:
        raise SignatureError("not an extension account")
    verifier = VERIFIERS.get(account.id[0])
    if verifier is None:
        raise SignatureError(f"no verifier is registered for extension scheme {account.id[0]}")
    verifier.verify(account.id[1:], tx_id, signature)


def verify_party_signature(account: Account, tx_id: bytes, signature: bytes) -> None:
    """Check a Corda-model party's signature over ``tx_id`` with the key its account id holds
    (:func:`corda_key_id`): how a LOCAL or CHANNEL signer signs on the Corda model."""
    try:
        key = PublicKey(SignatureScheme(account.id[0]), account.id[1:])
    except (IndexError, ValueError, KakehashiError):
        raise SignatureError(
            f"0x{account.id.hex()} is not a Corda-model key (scheme byte and key)"
        ) from None
    key.verify(signature, tx_id)


def sign_party(key: KeyPair, tx_id: bytes) -> bytes:
    """A Corda-model party's signature over ``tx_id`` (what :func:`verify_party_signature`
    checks)."""
    return key.sign(tx_id)


def secp256k1_account(address: bytes) -> Account:
    return Account(SignerKind.EXTENSION, bytes([EXT_SECP256K1]) + address)


def ed25519_account(public_key: bytes) -> Account:
    return Account(SignerKind.EXTENSION, bytes([EXT_ED25519]) + public_key)


def sign_secp256k1(private_key: bytes, tx_id: bytes) -> bytes:
    """``r ‖ s ‖ v`` (v 27 / 28, as ``ecrecover`` takes it) over the 32-byte tx id."""
    signature = coincurve.PrivateKey(private_key).sign_recoverable(tx_id, hasher=None)
    return signature[:64] + bytes([signature[64] + 27])


def sign_ed25519(seed: bytes, tx_id: bytes) -> bytes:
    _, secret = nacl.bindings.crypto_sign_seed_keypair(seed)
    return bytes(nacl.bindings.crypto_sign(tx_id, secret)[:64])


# ---------------------------------------------------------------------------- identities


@dataclass(frozen=True)
class PartyIdentity:
    """One party: its X.500 name, EVM address and Corda-model key (either may be absent)."""

    name: X500Name
    evm_address: bytes | None = None
    corda_key: PublicKey | None = None

    def account(self, ledger: str, *, local: bool = True) -> Account:
        """The party's account on ``ledger`` ("evm" or "corda"): LOCAL when that ledger
        coordinates the transaction, CHANNEL when it is the ledger across the part's
        channel."""
        kind = SignerKind.LOCAL if local else SignerKind.CHANNEL
        if ledger == "evm" and self.evm_address is not None:
            return Account(kind, self.evm_address)
        if ledger == "corda" and self.corda_key is not None:
            return Account(kind, corda_key_id(self.corda_key))
        raise CrossTxError(f"{self.name} has no identity on the {ledger} ledger")


@dataclass
class IdentityRegistry:
    """Party names → identities on each ledger (module docstring)."""

    parties: dict[X500Name, PartyIdentity] = field(default_factory=dict)

    def add(self, identity: PartyIdentity) -> None:
        if identity.name in self.parties:
            raise ConfigurationError(f"{identity.name} is registered twice")
        self.parties[identity.name] = identity

    def party(self, name: str | X500Name) -> PartyIdentity:
        key = name if isinstance(name, X500Name) else X500Name.parse(name)
        found = self.parties.get(key)
        if found is None:
            raise CrossTxError(f"{key} is not in the identity registry")
        return found

    def account(self, name: str | X500Name, ledger: str, *, local: bool = True) -> Account:
        return self.party(name).account(ledger, local=local)

    @classmethod
    def load(cls, path: Path) -> IdentityRegistry:
        """``[[party]] name = "O=…", evm = "0x…", corda = "ed25519:…"`` (TOML)."""
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigurationError(f"cannot read the identity registry {path}: {exc}") from None
        registry = cls()
        for index, entry in enumerate(data.get("party", [])):
            try:
                evm = entry.get("evm")
                corda = entry.get("corda")
                address = bytes.fromhex(evm.removeprefix("0x")) if evm else None
                if address is not None and len(address) != 20:
                    raise ValueError("an EVM address is 20 bytes")
                registry.add(
                    PartyIdentity(
                        X500Name.parse(entry["name"]),
                        address,
                        PublicKey.from_text(corda) if corda else None,
                    )
                )
            except (KeyError, ValueError, AttributeError, KakehashiError) as exc:
                raise ConfigurationError(f"{path}: party {index}: {exc}") from None
        return registry


# ---------------------------------------------------------------------------- progress


@dataclass
class Authentication:
    """One ledger's record of who signed a transaction (module docstring)."""

    tx: InitiateTx
    signed: dict[Account, int] = field(default_factory=dict)  # account -> time signed (ns)

    @property
    def required(self) -> tuple[Account, ...]:
        return self.tx.signers()

    def expired(self, height: Height, timestamp_ns: int) -> bool:
        tx = self.tx
        by_height = not tx.timeout_height.is_zero() and height >= tx.timeout_height
        return by_height or (tx.timeout_timestamp != 0 and timestamp_ns >= tx.timeout_timestamp)

    def status(self, height: Height, timestamp_ns: int) -> AuthStatus:
        if all(a in self.signed for a in self.required):
            return AuthStatus.VERIFIED
        return AuthStatus.EXPIRED if self.expired(height, timestamp_ns) else AuthStatus.PENDING

    def missing(self) -> tuple[Account, ...]:
        return tuple(a for a in self.required if a not in self.signed)

    def _record(self, account: Account, height: Height, timestamp_ns: int) -> None:
        if account not in self.required:
            raise CrossTxError(
                f"{account.kind.name} account 0x{account.id.hex()} is not a signer of "
                f"{self.tx.tx_id.hex()}"
            )
        if self.expired(height, timestamp_ns):
            raise CrossTxError(
                f"cross transaction {self.tx.tx_id.hex()} timed out: no more signatures"
            )
        self.signed.setdefault(account, timestamp_ns)  # signing twice is a no-op

    def sign_local(self, submitter: Account, height: Height, timestamp_ns: int) -> None:
        """The ledger saw ``submitter`` submit (its own transaction signature checked)."""
        if submitter.kind is not SignerKind.LOCAL:
            raise CrossTxError("a local signature is the submitter's own account")
        self._record(submitter, height, timestamp_ns)

    def sign_channel(self, signer: Account, height: Height, timestamp_ns: int) -> None:
        """The other ledger's record of ``signer``'s signature, already verified over IBC."""
        if signer.kind is not SignerKind.CHANNEL:
            raise CrossTxError("a channel signature names a CHANNEL account")
        self._record(signer, height, timestamp_ns)

    def sign_extension(
        self, signer: Account, signature: bytes, height: Height, timestamp_ns: int
    ) -> None:
        """An extension account's signature over the tx id, checked by its verifier."""
        verify_extension(signer, self.tx.tx_id, signature)
        self._record(signer, height, timestamp_ns)
