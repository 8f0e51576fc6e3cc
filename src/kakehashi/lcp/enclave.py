"""The LCP enclave boundary, in SIMULATION mode: no hardware TEE protects anything here.

What runs "inside" (:class:`Enclave`) is what an SGX enclave of Datachain's LCP runs: it generates
its secp256k1 enclave key itself, never hands the private key out (no attribute, method or
``repr`` returns it), keeps it sealed on disk, obtains attestation evidence for it, runs the light
clients of the counterparty ledgers and signs LCP proxy messages
(:mod:`kakehashi.lcp.messages`) only about what those light clients verified. Without SGX the
boundary is a Python object in the service's process: the host can read its memory, which is why
the attestation it produces is signed by a *simulation* CA that only development clients trust.

The rules implemented here:

* **Measurement rule.** The simulation enclave's MRENCLAVE is ``sha256(IDENTITY ‖ b"/" ‖
  version)`` (:data:`MRENCLAVE`): one value per released version of this code, as a build of an
  SGX enclave has one.
* **Sealing rule.** Each private key is sealed with AES-256-GCM under ``scrypt(operator secret,
  salt, n=2**14, r=8, p=1, 32 bytes)``; the associated data is ``MRENCLAVE ‖ key address`` so a
  sealed key opens only for this enclave build and only as the key it claims to be. The sealed
  file (``enclave-keys.json``, mode 0600, replaced atomically) holds the salt, one ``nonce ‖
  ciphertext`` per key and the keys' public attestation evidence. A wrong secret (or another
  MRENCLAVE) fails with :class:`SealingError` and opens nothing.
* **Simulation attestation rule.** :class:`SimulationCa` (an RSA-2048 self-signed root and a
  report-signing certificate it issues, kept in ``simulation-ca/``) signs, with RSASSA-PKCS1-v1_5
  SHA-256, an IAS version-4 report: status ``OK``, no advisories, and a 432-byte quote body whose
  MRENCLAVE is :data:`MRENCLAVE`, attribute flags ``INIT | DEBUG | MODE64BIT`` (as LCP's
  simulation enclave: a simulated enclave is a debug one), and report data ``0x01 ‖ enclave key
  address ‖ operator address (zero: none) ‖ zeros``.
  :func:`kakehashi.lcp.attestation.verify_avr` accepts it under a development policy trusting the
  simulation root, and a production policy refuses it (root and debug flag).
* **State id rule.** ``state_id = keccak256(abi.encode(string client_type, bytes client_state,
  bytes consensus_state))`` of the enclave light client's canonical encodings:

  - ``qbft-evm``: ``client_state = RLP([chain_id, ibc_handler, commitments_slot,
    trusting_period_s, max_clock_drift_s])``, ``consensus_state = RLP([revision_height,
    timestamp_s, state_root, [validators]])``;
  - ``corda-host``: ``client_state`` = canonical CBOR of the :class:`CordaClientState` with
    ``latest_version = 0`` and ``frozen = false``, ``consensus_state`` = canonical CBOR of
    ``[version, CordaConsensusState]``.

* **Create rule.** Creating a client returns LCP's create-client message: an UpdateState with a
  zero previous state, the trusted state as post state, an empty validation context and the
  client state emitted as a protobuf ``Any`` (``/kakehashi.lcp.<type>.ClientState``).
* **Update rule.** A header / attestation is verified by the real light client
  (:mod:`kakehashi.lightclients.qbft`, :mod:`kakehashi.lightclients.corda`) from the highest
  state the enclave holds below it; the signed UpdateState names that state as ``prev`` (a state
  this enclave created or signed before), the new one as ``post``, the new state's time, and a
  trusting-period validation context (QBFT; the Corda host client has no trusting period, so its
  context is empty). Anything that does not verify raises and nothing is signed; evidence of
  misbehaviour freezes the enclave's client and nothing is signed either.
* **Membership rule.** A proof is verified by the light client at a height the enclave holds;
  the signed VerifyMembership message carries ``keccak256(value)`` (or 32 zero bytes for
  absence) and that height's state id.
* **Aggregation rule** (LCP's ``aggregate_messages``). Consecutive UpdateState messages signed
  by this enclave (each one's prev state is the one before's post state) become one: the first's
  prev state, the last's post state and time, every emitted state, and the strictest context
  (same trusting period and drift; the oldest trusted state, the newest header).
* **Rotation rule.** :meth:`Enclave.rotate` generates and attests a new key that signs from then
  on; earlier keys stay sealed and their evidence listed, so clients keep accepting what they
  signed until the key expires on each client (``attestation time + key expiration``). With
  ``activate=False`` the new key is only staged: the current key signs until
  :meth:`Enclave.activate`, so the new key can be registered on every client first and no
  statement is ever signed by a key a client does not know (``kakehashi relayer rotate-key``).
  The sealed key file records which key signs.
* **Client persistence rule.** Every light client is sealed in its own file,
  ``clients/<client id>.json`` (mode 0600, written to a temporary file, fsynced and moved into
  place with ``os.replace``), before the create or update that changed it is signed (and when
  misbehaviour freezes it). The file holds ``nonce ‖ AES-256-GCM ciphertext`` under the same
  scrypt-derived key as the sealed keys, with associated data ``MRENCLAVE ‖ "client/" ‖ client
  id``; the plaintext is canonical CBOR of the client's whole trusted state: its type, its
  parameters (QBFT: chain id, IBC handler, commitments slot, trusting period, clock drift, frozen
  flag; Corda host: the full :class:`CordaClientState`, frozen flag included) and every consensus
  state it holds. :class:`Enclave` opens every client file when it is constructed; the id counter
  continues after the highest client number found, so ids never repeat. A client file that does
  not open (wrong secret, altered, renamed, damaged) fails the construction with
  :class:`SealingError`: the enclave never starts without a client it had. One file per client
  keeps each write to the one client that changed; it rewrites that client's consensus states,
  which is linear in their number. Sealing authenticates each file but cannot detect a whole file
  being rolled back to an older sealed version or deleted (SGX needs monotonic counters for that).

Not implemented: misbehaviour messages (the enclave's clients freeze on evidence and sign nothing
more, but no Misbehaviour message is produced).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any, Protocol

import cbor2
import coincurve
import rlp
from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from cryptography.x509.oid import NameOID
from eth_abi import encode as abi_encode
from eth_hash.auto import keccak

from kakehashi import __version__
from kakehashi.errors import (
    ConfigurationError,
    KakehashiError,
    SerializationError,
    VerificationError,
)
from kakehashi.ledgers.corda.model.serialization import deserialize, serialize
from kakehashi.ledgers.evm.proofs import mapping_entry_slot, verify_slot_proof
from kakehashi.ledgers.evm.qbft import seal
from kakehashi.lightclients import corda as corda_lc
from kakehashi.lightclients.lcp_attestation import AvrEvidence
from kakehashi.lightclients.lcp_messages import (
    EmittedState,
    EmptyValidationContext,
    Height,
    TrustingPeriodValidationContext,
    UpdateStateProxyMessage,
    ValidationContext,
    VerifyMembershipProxyMessage,
    decode,
    encode,
    message_hash,
    recover_signer,
)
from kakehashi.lightclients.qbft import parse_header, verify_header, verify_parsed_header

__all__ = [
    "CLIENTS_DIR",
    "IDENTITY",
    "MRENCLAVE",
    "MRSIGNER",
    "SEALED_FILE",
    "Attestation",
    "CreatedClient",
    "Enclave",
    "ProofItem",
    "SealingError",
    "SignedMessage",
    "SimulationCa",
    "UnknownClientError",
    "UnknownKeyError",
    "state_id",
]

IDENTITY = b"kakehashi LCP simulation enclave"
MRENCLAVE = hashlib.sha256(IDENTITY + b"/" + __version__.encode()).digest()
"""The simulation enclave's measurement (measurement rule)."""
MRSIGNER = hashlib.sha256(b"kakehashi LCP simulation enclave signer").digest()

SEALED_FILE = "enclave-keys.json"
CLIENTS_DIR = "clients"
"""The directory of the sealed light clients, one ``<client id>.json`` each (persistence rule)."""
CA_DIR = "simulation-ca"
_SEALED_FORMAT = "kakehashi-lcp-sealed-v1"
_CLIENT_FORMAT = "kakehashi-lcp-sealed-client-v1"
_CLIENT_ID = re.compile(r"(qbft-evm|corda-host)-(0|[1-9][0-9]{0,18})")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_NS = 1_000_000_000
_QUOTE_SIZE = 432
_SGX_FLAGS = 0x07  # INIT | DEBUG | MODE64BIT, as LCP's simulation enclave reports


class SealingError(KakehashiError):
    """Sealed enclave keys could not be opened (wrong operator secret, other MRENCLAVE, damage)."""


class UnknownClientError(KakehashiError):
    """The enclave holds no light client with that id."""


class UnknownKeyError(KakehashiError):
    """The enclave holds no key with that address."""


# ---------------------------------------------------------------------------- evidence


@dataclass(frozen=True)
class Attestation:
    """An enclave key's public attestation evidence (an IAS-format AVR and its signature)."""

    address: bytes
    avr: str
    signature: bytes
    signing_cert: bytes
    attested_at_ns: int

    def evidence(self) -> AvrEvidence:
        return AvrEvidence(self.avr, self.signature, self.signing_cert, MRENCLAVE, self.address)

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address.hex(),
            "avr": self.avr,
            "signature": base64.b64encode(self.signature).decode(),
            "signing_cert": base64.b64encode(self.signing_cert).decode(),
            "attested_at_ns": self.attested_at_ns,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Attestation:
        return cls(
            bytes.fromhex(data["address"]),
            data["avr"],
            base64.b64decode(data["signature"]),
            base64.b64decode(data["signing_cert"]),
            int(data["attested_at_ns"]),
        )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Kakehashi (SIMULATION, no TEE)"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


@dataclass(frozen=True)
class SimulationCa:
    """The simulation attestation CA: a self-signed RSA-2048 root and a report-signing cert."""

    root_der: bytes
    signing_cert_der: bytes
    _signing_key: rsa.RSAPrivateKey = field(repr=False)

    @classmethod
    def load_or_create(cls, directory: Path) -> SimulationCa:
        """The CA kept in ``directory`` (made on first use)."""
        root_path = directory / "root.der"
        cert_path = directory / "signing.der"
        key_path = directory / "signing-key.pem"
        if root_path.exists() and cert_path.exists() and key_path.exists():
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            if not isinstance(key, rsa.RSAPrivateKey):
                raise SealingError(f"{key_path} is not an RSA key")
            return cls(root_path.read_bytes(), cert_path.read_bytes(), key)
        ca = cls.generate()
        directory.mkdir(parents=True, exist_ok=True)
        root_path.write_bytes(ca.root_der)
        cert_path.write_bytes(ca.signing_cert_der)
        pem = ca._signing_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_private(key_path, pem)
        return ca

    @classmethod
    def generate(cls) -> SimulationCa:
        now = datetime.now(UTC)
        root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        root_name = _name("Kakehashi LCP Simulation Attestation Root CA")
        root = (
            x509.CertificateBuilder()
            .subject_name(root_name)
            .issuer_name(root_name)
            .public_key(root_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .sign(root_key, hashes.SHA256())
        )
        leaf = (
            x509.CertificateBuilder()
            .subject_name(_name("Kakehashi LCP Simulation Attestation Report Signing"))
            .issuer_name(root_name)
            .public_key(leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .sign(root_key, hashes.SHA256())
        )
        return cls(
            root.public_bytes(serialization.Encoding.DER),
            leaf.public_bytes(serialization.Encoding.DER),
            leaf_key,
        )

    def attest(self, address: bytes, operator: bytes | None, now_ns: int) -> Attestation:
        """A signed IAS-format report for the key ``address`` (simulation attestation rule)."""
        report_data = bytes([1]) + address + (operator or bytes(20))
        report_data += bytes(64 - len(report_data))
        quote = bytearray(_QUOTE_SIZE)
        quote[0:2] = (2).to_bytes(2, "little")  # quote version
        quote[96:104] = _SGX_FLAGS.to_bytes(8, "little")
        quote[104:112] = (0x07).to_bytes(8, "little")  # XFRM: x87, SSE, AVX
        quote[112:144] = MRENCLAVE
        quote[176:208] = MRSIGNER
        quote[368:432] = report_data
        seconds, nanos = divmod(now_ns, _NS)
        stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        report = {
            "id": str(secrets.randbelow(10**38)),
            "timestamp": f"{stamp}.{nanos // 1000:06d}",
            "version": 4,
            "advisoryURL": "https://security-center.intel.com",
            "advisoryIDs": [],
            "isvEnclaveQuoteStatus": "OK",
            "platformInfoBlob": None,
            "isvEnclaveQuoteBody": base64.b64encode(bytes(quote)).decode(),
        }
        avr = json.dumps(report, separators=(",", ":"))
        signature = self._signing_key.sign(avr.encode(), padding.PKCS1v15(), hashes.SHA256())
        # Keys expire from the report's time as IAS writes it (microseconds).
        return Attestation(address, avr, signature, self.signing_cert_der, now_ns - now_ns % 1000)


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, readable by its owner only from the start."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


# ---------------------------------------------------------------------------- keys


def _address(public_key: coincurve.PublicKey) -> bytes:
    return bytes(keccak(public_key.format(compressed=False)[1:])[-20:])


class _EnclaveKey:
    """An enclave key: signs, and says its address; its private half never leaves."""

    __slots__ = ("__key", "address", "attestation")

    def __init__(self, key: coincurve.PrivateKey, attestation: Attestation) -> None:
        self.__key = key
        self.address = _address(key.public_key)
        self.attestation = attestation

    def sign(self, message: bytes) -> bytes:
        return seal(message_hash(message), self.__key)

    def sealed(self, aead: AESGCM) -> bytes:
        nonce = os.urandom(12)
        return nonce + aead.encrypt(nonce, self.__key.secret, MRENCLAVE + self.address)

    def __repr__(self) -> str:
        return f"<enclave key 0x{self.address.hex()} (private key sealed)>"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("an enclave key cannot be pickled or copied out of the enclave")


def _derive(secret: bytes, salt: bytes) -> AESGCM:
    return AESGCM(Scrypt(salt=salt, length=32, **_SCRYPT).derive(secret))


# ---------------------------------------------------------------------------- light clients


def state_id(client_type: str, client_state: bytes, consensus_state: bytes) -> bytes:
    """The state id rule (module docstring)."""
    return bytes(
        keccak(
            abi_encode(["string", "bytes", "bytes"], [client_type, client_state, consensus_state])
        )
    )


def _any(type_url: str, value: bytes) -> bytes:
    """A protobuf ``Any`` (field 1 type_url, field 2 value)."""

    def varint(n: int) -> bytes:
        out = bytearray()
        while True:
            byte, n = n & 0x7F, n >> 7
            out.append(byte | (0x80 if n else 0))
            if not n:
                return bytes(out)

    url = type_url.encode()
    return b"\x0a" + varint(len(url)) + url + b"\x12" + varint(len(value)) + value


class _Client(Protocol):
    client_type: str
    consensus: dict[int, Any]
    state_ids: dict[Height, bytes]
    """State ids computed for this object, by height (see :meth:`Enclave._state_id`)."""

    @property
    def frozen(self) -> bool: ...

    def latest(self) -> Height: ...
    def client_state(self) -> bytes: ...
    def consensus_state(self, height: Height) -> bytes: ...
    def timestamp_ns(self, height: Height) -> int: ...
    def update(
        self, header: bytes, now_ns: int, trusted: Height | None = None
    ) -> tuple[Height, Height, ValidationContext]: ...
    def verify(
        self, height: Height, prefix: bytes, path: bytes, value: bytes | None, proof: bytes
    ) -> None: ...
    def record(self) -> dict[str, Any]:
        """The client's whole trusted state, as plain CBOR-encodable values (persistence rule)."""
        ...


@dataclass
class _QbftConsensus:
    timestamp: int
    state_root: bytes
    validators: tuple[bytes, ...]


@dataclass
class _QbftClient:
    """The enclave's client of a QBFT EVM chain: :func:`verify_header` + ``eth_getProof``
    proofs (``RLP([account proof nodes, storage proof nodes])``) of the IBC handler's
    ``commitments`` mapping, as :class:`kakehashi.ibc.clients.qbft.QbftClient` reads them."""

    chain_id: int
    ibc_handler: bytes
    commitments_slot: int
    trusting_period_s: int
    max_clock_drift_s: int
    consensus: dict[int, _QbftConsensus] = field(default_factory=dict)
    frozen: bool = False
    client_type: str = "qbft-evm"
    state_ids: dict[Height, bytes] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def latest(self) -> Height:
        return Height(0, max(self.consensus))

    def client_state(self) -> bytes:
        return bytes(
            rlp.encode(
                [
                    self.chain_id,
                    self.ibc_handler,
                    self.commitments_slot,
                    self.trusting_period_s,
                    self.max_clock_drift_s,
                ]
            )
        )

    def _at(self, height: Height) -> _QbftConsensus:
        consensus = (
            self.consensus.get(height.revision_height) if height.revision_number == 0 else None
        )
        if consensus is None:
            raise VerificationError(
                f"the enclave's QBFT client holds no state at height {height} (latest "
                f"{self.latest()}): update the client first"
            )
        return consensus

    def consensus_state(self, height: Height) -> bytes:
        c = self._at(height)
        return bytes(
            rlp.encode([height.revision_height, c.timestamp, c.state_root, list(c.validators)])
        )

    def timestamp_ns(self, height: Height) -> int:
        return self._at(height).timestamp * _NS

    def update(
        self, header: bytes, now_ns: int, trusted: Height | None = None
    ) -> tuple[Height, Height, ValidationContext]:
        self.state_ids.clear()  # this object is about to change (Enclave._state_id)
        header_parsed = parse_header(header)  # decoded once, verified below
        number = header_parsed.number
        below = [h for h in self.consensus if h < number]
        if not below:
            raise VerificationError(
                f"header {number} is not above any height the enclave trusts (earliest "
                f"{min(self.consensus)})"
            )
        trusted_number = max(below) if trusted is None else _trusted(trusted, below, number, 0)
        anchor = self.consensus[trusted_number]
        parsed = verify_parsed_header(
            header_parsed,
            list(anchor.validators),
            trusted_height=trusted_number,
            trusted_timestamp=anchor.timestamp,
            now=now_ns // _NS,
            trusting_period=self.trusting_period_s,
            max_clock_drift=self.max_clock_drift_s,
        )
        new = _QbftConsensus(parsed.timestamp, parsed.state_root, parsed.validators)
        known = self.consensus.get(parsed.number)
        if known is not None and known != new:
            self.frozen = True
            raise VerificationError(
                f"two valid headers for block {parsed.number}: the validators equivocated; the "
                "enclave's client is frozen and signs nothing more"
            )
        self.consensus[parsed.number] = new
        context = TrustingPeriodValidationContext(
            trusting_period=self.trusting_period_s * _NS,
            clock_drift=self.max_clock_drift_s * _NS,
            untrusted_header_timestamp=parsed.timestamp * _NS,
            trusted_state_timestamp=anchor.timestamp * _NS,
        )
        return Height(0, trusted_number), Height(0, parsed.number), context

    def verify(
        self, height: Height, prefix: bytes, path: bytes, value: bytes | None, proof: bytes
    ) -> None:
        proven = self._proven(height, prefix, path, proof)
        if value is None and proven is not None:
            raise VerificationError(f"the chain commits a value under {path!r}, not absence")
        if value is not None and proven != value:
            raise VerificationError(f"the chain does not commit that value under {path!r}")

    def record(self) -> dict[str, Any]:
        return {
            "type": self.client_type,
            "chain_id": self.chain_id,
            "ibc_handler": self.ibc_handler,
            "commitments_slot": self.commitments_slot,
            "trusting_period_s": self.trusting_period_s,
            "max_clock_drift_s": self.max_clock_drift_s,
            "frozen": self.frozen,
            "consensus": [
                [number, c.timestamp, c.state_root, list(c.validators)]
                for number, c in sorted(self.consensus.items())
            ],
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> _QbftClient:
        client = cls(
            int(record["chain_id"]),
            bytes(record["ibc_handler"]),
            int(record["commitments_slot"]),
            int(record["trusting_period_s"]),
            int(record["max_clock_drift_s"]),
            frozen=bool(record["frozen"]),
        )
        for number, timestamp, state_root, validators in record["consensus"]:
            client.consensus[int(number)] = _QbftConsensus(
                int(timestamp), bytes(state_root), tuple(bytes(v) for v in validators)
            )
        return client

    def _proven(self, height: Height, prefix: bytes, path: bytes, proof: bytes) -> bytes | None:
        if prefix != self.ibc_handler:
            raise VerificationError(
                f"prefix {prefix.hex()} is not the tracked IBC handler {self.ibc_handler.hex()}"
            )
        consensus = self._at(height)
        slot = mapping_entry_slot(self.commitments_slot, path)
        value = verify_slot_proof(consensus.state_root, self.ibc_handler, slot, proof)
        return None if value == 0 else value.to_bytes(32, "big")


@dataclass
class _CordaClient:
    """The enclave's client of a Corda-model IBC host (:mod:`kakehashi.lightclients.corda`)."""

    state: corda_lc.CordaClientState
    consensus: dict[int, corda_lc.CordaConsensusState] = field(default_factory=dict)
    client_type: str = "corda-host"
    state_ids: dict[Height, bytes] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def frozen(self) -> bool:
        return self.state.frozen

    def latest(self) -> Height:
        return Height(self.state.revision_number, self.state.latest_version)

    def client_state(self) -> bytes:
        return serialize(replace(self.state, latest_version=0, frozen=False))

    def _at(self, height: Height) -> corda_lc.CordaConsensusState:
        consensus = None
        if height.revision_number == self.state.revision_number:
            consensus = self.consensus.get(height.revision_height)
        if consensus is None:
            raise VerificationError(
                f"the enclave's Corda client holds no state at height {height} (latest "
                f"{self.latest()}): update the client first"
            )
        return consensus

    def consensus_state(self, height: Height) -> bytes:
        c = self._at(height)
        return bytes(cbor2.dumps([height.revision_height, serialize(c)], canonical=True))

    def timestamp_ns(self, height: Height) -> int:
        return self._at(height).timestamp_ns

    def update(
        self, header: bytes, now_ns: int, trusted: Height | None = None
    ) -> tuple[Height, Height, ValidationContext]:
        self.state_ids.clear()  # this object is about to change (Enclave._state_id)
        state, version, consensus = corda_lc.update_client(self.state, self.consensus, header)
        if state.frozen:
            self.state = state
            raise VerificationError(
                f"the attestation of host version {version} conflicts with what the enclave "
                "verified (misbehaviour); the enclave's client is frozen and signs nothing more"
            )
        below = [v for v in self.consensus if v < version]
        if not below:
            raise VerificationError(
                f"host version {version} is not above any version the enclave trusts"
            )
        rn = state.revision_number
        prev = max(below) if trusted is None else _trusted(trusted, below, version, rn)
        self.state = state
        self.consensus[version] = consensus
        # A notary-signed host state does not expire: no trusting period to check.
        return Height(rn, prev), Height(rn, version), EmptyValidationContext()

    def verify(
        self, height: Height, prefix: bytes, path: bytes, value: bytes | None, proof: bytes
    ) -> None:
        if prefix != self.state.linear_id.id:
            raise VerificationError(
                f"prefix {prefix.hex()} is not the tracked host's {self.state.linear_id.id.hex()}"
            )
        trusted = self._at(height)
        version = height.revision_height
        if value is None:
            corda_lc.verify_non_membership(
                self.state, proof, path, version=version, trusted=trusted
            )
        else:
            corda_lc.verify_membership(
                self.state, proof, path, value, version=version, trusted=trusted
            )

    def record(self) -> dict[str, Any]:
        return {
            "type": self.client_type,
            "state": serialize(self.state),
            "consensus": [[v, serialize(c)] for v, c in sorted(self.consensus.items())],
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> _CordaClient:
        state = deserialize(bytes(record["state"]), corda_lc.CordaClientState)
        consensus = {
            int(version): deserialize(bytes(data), corda_lc.CordaConsensusState)
            for version, data in record["consensus"]
        }
        return cls(state, consensus)


def _client_from_record(record: dict[str, Any]) -> _Client:
    """The client :meth:`_Client.record` describes."""
    if not record["consensus"]:
        raise SerializationError("a client holds at least one consensus state")
    if record["type"] == _QbftClient.client_type:
        return _QbftClient.from_record(record)
    if record["type"] == _CordaClient.client_type:
        return _CordaClient.from_record(record)
    raise SerializationError(f"unknown client type {record['type']!r}")


def _client_aad(client_id: str) -> bytes:
    """The associated data of a sealed client: it opens only for this build, as that client."""
    return MRENCLAVE + b"client/" + client_id.encode()


MAX_CONSENSUS_STATES = 1024
"""Consensus states an enclave light client keeps (the newest; older ones are dropped after each
update). A relayer builds each update on the height its destination's client holds, which is
one of the newest unless that destination was left behind by more than this many updates."""


def _prune(consensus: dict[int, Any], keep: set[int]) -> None:
    """Drop the oldest consensus states beyond :data:`MAX_CONSENSUS_STATES` (never ``keep``)."""
    excess = len(consensus) - MAX_CONSENSUS_STATES
    if excess <= 0:
        return
    for height in sorted(consensus)[: excess + len(keep)]:
        if excess <= 0:
            break
        if height not in keep:
            del consensus[height]
            excess -= 1


def _trusted(trusted: Height, below: list[int], number: int, revision_number: int) -> int:
    """The trusted height a caller asked an update to build on: one the client holds, below
    the header's."""
    if trusted.revision_number != revision_number or trusted.revision_height not in below:
        raise VerificationError(
            f"the enclave's client holds no state at trusted height {trusted} below {number} "
            f"(it holds {sorted(below)[-5:]}...): update from a height it holds"
        )
    return trusted.revision_height


def _stricter(a: ValidationContext, b: ValidationContext) -> ValidationContext:
    """The context under which both ``a`` and ``b`` hold: the oldest trusted state and the
    newest header, with one trusting period and clock drift."""
    if isinstance(a, EmptyValidationContext):
        return b
    if isinstance(b, EmptyValidationContext):
        return a
    if (a.trusting_period, a.clock_drift) != (b.trusting_period, b.clock_drift):
        raise VerificationError(
            "the messages' validation contexts have different trusting periods or clock drifts"
        )
    return replace(
        a,
        untrusted_header_timestamp=max(a.untrusted_header_timestamp, b.untrusted_header_timestamp),
        trusted_state_timestamp=min(a.trusted_state_timestamp, b.trusted_state_timestamp),
    )


# ---------------------------------------------------------------------------- the enclave


@dataclass(frozen=True)
class SignedMessage:
    """A proxy message and the enclave key's signature over it."""

    message: bytes
    signature: bytes
    signer: bytes


@dataclass(frozen=True)
class ProofItem:
    """One proof to verify: ``value`` under ``prefix ‖ path`` (None: nothing is there)."""

    prefix: bytes
    path: bytes
    value: bytes | None
    proof: bytes


@dataclass(frozen=True)
class CreatedClient:
    client_id: str
    height: Height
    state_id: bytes
    message: SignedMessage


class Enclave:
    """The simulation enclave of one LCP service (module docstring for the rules)."""

    def __init__(
        self,
        data_dir: Path,
        operator_secret: bytes,
        *,
        operator: bytes | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        """Open the enclave in ``data_dir``: unseal its keys (or generate and seal a first one)
        and its light clients (persistence rule).

        Raises :class:`SealingError` when the sealed keys or a sealed client do not open with
        ``operator_secret``.
        """
        if len(operator_secret) < 8:
            raise ConfigurationError("the operator secret must be at least 8 bytes")
        if operator is not None and (len(operator) != 20 or not any(operator)):
            raise ConfigurationError("the operator is a non-zero 20-byte address")
        self._dir = Path(data_dir)
        self._dir.mkdir(parents=True, exist_ok=True)
        self._operator = operator
        self._clock = clock
        self._lock = threading.RLock()
        self._ca = SimulationCa.load_or_create(self._dir / CA_DIR)
        self._clients: dict[str, _Client] = {}
        self._next_client = 0
        self.signatures_made = 0
        sealed = self._dir / SEALED_FILE
        if sealed.exists():
            self._salt, self._aead, self._keys, self._signing = self._unseal(
                sealed.read_bytes(), operator_secret
            )
        else:
            if self._client_files():
                raise SealingError(
                    f"{self._dir / CLIENTS_DIR} holds sealed light clients but {sealed} is "
                    f"missing, so they cannot be opened: restore {SEALED_FILE} from a backup, or "
                    f"move {CLIENTS_DIR}/ away to start an enclave without clients"
                )
            self._salt = os.urandom(16)
            self._aead = _derive(operator_secret, self._salt)
            self._keys = []
            self._signing = b""
            self._add_key()
        self._load_clients()

    # -- keys ---------------------------------------------------------------------------------

    @property
    def mrenclave(self) -> bytes:
        return MRENCLAVE

    @property
    def root_certificate(self) -> bytes:
        """DER of the simulation root a development client must trust."""
        return self._ca.root_der

    @property
    def address(self) -> bytes:
        """The address of the key that signs now."""
        return self._signing_key().address

    def attestation(self) -> Attestation:
        """The current key's attestation evidence."""
        return self._signing_key().attestation

    def _signing_key(self) -> _EnclaveKey:
        for key in self._keys:
            if key.address == self._signing:
                return key
        raise SealingError("the signing key is not among the sealed keys")  # pragma: no cover

    def attestations(self) -> tuple[Attestation, ...]:
        """Every key's evidence, oldest first (the last one signs)."""
        return tuple(k.attestation for k in self._keys)

    def rotate(self, *, activate: bool = True) -> Attestation:
        """Generate and attest a new key (rotation rule). ``activate`` False stages it: the
        current key keeps signing until :meth:`activate` — time to register the new key on
        every ledger's client first, so that no statement is ever signed by a key a client
        does not know yet."""
        with self._lock:
            return self._add_key(activate=activate)

    def activate(self, address: bytes) -> Attestation:
        """Make the staged (or any earlier) key ``address`` the one that signs."""
        with self._lock:
            for key in self._keys:
                if key.address == bytes(address):
                    self._seal(self._keys, signing=key.address)
                    self._signing = key.address
                    return key.attestation
        raise UnknownKeyError(f"the enclave holds no key 0x{bytes(address).hex()}")

    def _add_key(self, *, activate: bool = True) -> Attestation:
        private = coincurve.PrivateKey()
        attestation = self._ca.attest(_address(private.public_key), self._operator, self._clock())
        key = _EnclaveKey(private, attestation)
        del private
        signing = key.address if activate or not self._keys else self._signing
        self._seal([*self._keys, key], signing=signing)
        self._keys.append(key)
        self._signing = signing
        return attestation

    def _seal(self, keys: Sequence[_EnclaveKey], *, signing: bytes) -> None:
        document = {
            "signing": signing.hex(),
            "format": _SEALED_FORMAT,
            "mrenclave": MRENCLAVE.hex(),
            "kdf": {"name": "scrypt", **_SCRYPT, "salt": self._salt.hex()},
            "cipher": "AES-256-GCM, associated data MRENCLAVE || address",
            "keys": [
                {"sealed": k.sealed(self._aead).hex(), "attestation": k.attestation.to_json()}
                for k in keys
            ],
        }
        _write_private(self._dir / SEALED_FILE, json.dumps(document, indent=1).encode())

    @staticmethod
    def _unseal(data: bytes, secret: bytes) -> tuple[bytes, AESGCM, list[_EnclaveKey], bytes]:
        try:
            document = json.loads(data)
            if document["format"] != _SEALED_FORMAT:
                raise SealingError(f"unknown sealed-key format {document['format']!r}")
            if bytes.fromhex(document["mrenclave"]) != MRENCLAVE:
                raise SealingError(
                    "the keys were sealed by another enclave build (MRENCLAVE "
                    f"{document['mrenclave']}); this one is {MRENCLAVE.hex()}"
                )
            salt = bytes.fromhex(document["kdf"]["salt"])
            signing_hex = document.get("signing")
            entries = [
                (bytes.fromhex(k["sealed"]), Attestation.from_json(k["attestation"]))
                for k in document["keys"]
            ]
        except SealingError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise SealingError(f"the sealed key file is damaged: {exc}") from None
        aead = _derive(secret, salt)
        keys = []
        for blob, attestation in entries:
            try:
                secret_key = aead.decrypt(blob[:12], blob[12:], MRENCLAVE + attestation.address)
            except InvalidTag:
                raise SealingError(
                    "the sealed enclave keys do not open with this operator secret (wrong secret, "
                    "or the file was altered)"
                ) from None
            key = _EnclaveKey(coincurve.PrivateKey(secret_key), attestation)
            del secret_key
            if key.address != attestation.address:
                raise SealingError("a sealed key does not match the address it is stored under")
            keys.append(key)
        if not keys:
            raise SealingError("the sealed key file holds no key")
        signing = keys[-1].address if signing_hex is None else bytes.fromhex(signing_hex)
        if signing not in {k.address for k in keys}:
            raise SealingError("the sealed key file names a signing key it does not hold")
        return salt, aead, keys, signing

    # -- sealed light clients (persistence rule) -----------------------------------------------

    def _client_files(self) -> list[Path]:
        directory = self._dir / CLIENTS_DIR
        return sorted(directory.glob("*.json")) if directory.is_dir() else []

    def _persist(self, client_id: str, client: _Client) -> None:
        """Seal ``client`` to its file, replacing the previous version atomically."""
        plaintext = bytes(cbor2.dumps(client.record(), canonical=True))
        nonce = os.urandom(12)
        sealed = nonce + self._aead.encrypt(nonce, plaintext, _client_aad(client_id))
        document = {
            "format": _CLIENT_FORMAT,
            "mrenclave": MRENCLAVE.hex(),
            "client_id": client_id,
            "cipher": "AES-256-GCM (the sealed keys' scrypt key), associated data MRENCLAVE || "
            "'client/' || client id",
            "sealed": sealed.hex(),
        }
        path = self._dir / CLIENTS_DIR / f"{client_id}.json"
        try:
            path.parent.mkdir(mode=0o700, exist_ok=True)
            _write_private(path, json.dumps(document, indent=1).encode())
        except OSError as exc:
            raise SealingError(
                f"could not seal light client {client_id} to {path} ({exc}); nothing was signed: "
                "make the data directory writable (and free space), then retry"
            ) from None

    def _load_clients(self) -> None:
        """Open every sealed client, in creation order, and continue the id counter."""
        loaded: list[tuple[int, str, _Client]] = []
        for path in self._client_files():
            client_id, client = self._unseal_client(path)
            loaded.append((int(client_id.rsplit("-", 1)[1]), client_id, client))
        for number, client_id, client in sorted(loaded, key=lambda entry: entry[0]):
            self._clients[client_id] = client
            self._next_client = max(self._next_client, number + 1)

    def _unseal_client(self, path: Path) -> tuple[str, _Client]:
        advice = (
            "restore it from a backup of the data directory, or move it away to drop that client "
            "(the counterparty must then be followed through a new one)"
        )
        try:
            document = json.loads(path.read_bytes())
            if document["format"] != _CLIENT_FORMAT:
                raise SealingError(
                    f"{path} has unknown sealed-client format {document['format']!r}"
                )
            if bytes.fromhex(document["mrenclave"]) != MRENCLAVE:
                raise SealingError(
                    f"{path} was sealed by another enclave build (MRENCLAVE "
                    f"{document['mrenclave']}); this one is {MRENCLAVE.hex()}"
                )
            client_id = document["client_id"]
            if client_id != path.stem or not _CLIENT_ID.fullmatch(client_id):
                raise SealingError(f"{path} holds client {client_id!r}, not the one it is named")
            blob = bytes.fromhex(document["sealed"])
        except SealingError as exc:
            raise SealingError(f"{exc}: {advice}") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SealingError(
                f"the sealed client file {path} is damaged ({exc}): {advice}"
            ) from None
        try:
            plaintext = self._aead.decrypt(blob[:12], blob[12:], _client_aad(client_id))
        except (InvalidTag, ValueError):
            raise SealingError(
                f"the sealed client file {path} does not open with this operator secret (wrong "
                f"secret, or the file was altered): {advice}"
            ) from None
        try:
            record = cbor2.loads(plaintext)
            client = _client_from_record(record)
        except Exception as exc:  # a record this build cannot read: never start without it
            raise SealingError(
                f"the sealed client file {path} opened but holds no client this build reads "
                f"({exc}): {advice}"
            ) from None
        if client.client_type != client_id.rsplit("-", 1)[0]:
            raise SealingError(f"{path} holds a {client.client_type} client: {advice}")
        return client_id, client

    def _sign(self, message: bytes) -> SignedMessage:
        key = self._signing_key()
        self.signatures_made += 1
        return SignedMessage(message, key.sign(message), key.address)

    def __repr__(self) -> str:
        return f"<Enclave SIMULATION 0x{self.address.hex()} in {self._dir}>"

    # -- light clients ------------------------------------------------------------------------

    def _client(self, client_id: str) -> _Client:
        client = self._clients.get(client_id)
        if client is None:
            raise UnknownClientError(f"the enclave holds no client {client_id!r}")
        return client

    def _state_id(self, client: _Client, height: Height) -> bytes:
        """The state id of ``client`` at ``height`` (state id rule), remembered in the client
        object's ``state_ids``: an update works on a fresh copy (whose ``state_ids`` starts
        empty, and which ``update`` empties again before changing anything), and a client
        object never changes once stored, so an id remembered there is the id of what it
        holds. A QBFT update used to compute three per call (prev, post, and post again for
        each proof)."""
        sid = client.state_ids.get(height)
        if sid is None:
            sid = state_id(
                client.client_type, client.client_state(), client.consensus_state(height)
            )
            client.state_ids[height] = sid
        return sid

    def _register(self, client: _Client) -> CreatedClient:
        client_id = f"{client.client_type}-{self._next_client}"
        height = client.latest()
        sid = self._state_id(client, height)
        type_name = client.client_type.split("-")[0]
        message = UpdateStateProxyMessage(
            prev_height=Height(),
            prev_state_id=bytes(32),
            post_height=height,
            post_state_id=sid,
            timestamp=client.timestamp_ns(height),
            context=EmptyValidationContext(),
            emitted_states=(
                EmittedState(
                    height, _any(f"/kakehashi.lcp.{type_name}.ClientState", client.client_state())
                ),
            ),
        )
        self._persist(client_id, client)
        self._next_client += 1
        self._clients[client_id] = client
        return CreatedClient(client_id, height, sid, self._sign(encode(message)))

    def create_qbft_client(
        self,
        header: bytes,
        validators: Sequence[bytes],
        *,
        chain_id: int,
        ibc_handler: bytes,
        commitments_slot: int = 0,
        trusting_period_s: int = 14 * 24 * 3600,
        max_clock_drift_s: int = 30,
    ) -> CreatedClient:
        """A client of an EVM chain from a trusted header, checked against ``validators``."""
        if len(ibc_handler) != 20:
            raise VerificationError("the IBC handler is a 20-byte address")
        if trusting_period_s <= 0 or max_clock_drift_s < 0:
            raise VerificationError("the trusting period must be positive, the clock drift >= 0")
        parsed = verify_header(header, [bytes(v) for v in validators])
        client = _QbftClient(
            chain_id, bytes(ibc_handler), commitments_slot, trusting_period_s, max_clock_drift_s
        )
        client.consensus[parsed.number] = _QbftConsensus(
            parsed.timestamp, parsed.state_root, parsed.validators
        )
        with self._lock:
            return self._register(client)

    def create_corda_client(self, client_state: bytes, attestation: bytes) -> CreatedClient:
        """A client of a Corda-model host from its client state (canonical CBOR of a
        :class:`~kakehashi.lightclients.corda.CordaClientState`) and a trusted attestation."""
        try:
            state = deserialize(client_state, corda_lc.CordaClientState)
        except KakehashiError as exc:
            raise SerializationError(f"malformed Corda client state: {exc}") from None
        if not isinstance(state, corda_lc.CordaClientState) or state.frozen:
            raise VerificationError("a Corda client state must be an unfrozen CordaClientState")
        state = replace(state, latest_version=0)
        new_state, version, consensus = corda_lc.update_client(state, {}, attestation)
        client = _CordaClient(new_state, {version: consensus})
        with self._lock:
            return self._register(client)

    def update_client(
        self, client_id: str, header: bytes, trusted_height: Height | None = None
    ) -> tuple[Height, SignedMessage]:
        """Verify ``header`` and sign the UpdateState message (update rule).

        ``trusted_height``: the height the message builds on (its prev height), which must be a
        height the client holds below the header's — a relayer passes the latest height the
        destination's LCP client holds, so that the message applies there whatever other
        relayers did. None: the highest height the client holds below the header's."""
        with self._lock:
            client = self._client(client_id)
            if client.frozen:
                raise VerificationError(f"the enclave's client {client_id} is frozen")
            # a copy the update may change (it adds a consensus state, may freeze the client):
            # the states themselves are never changed once stored
            work = replace(client, consensus=dict(client.consensus))  # type: ignore[type-var]
            try:
                prev, post, context = work.update(bytes(header), self._clock(), trusted_height)
            except Exception:
                if work.frozen:  # misbehaviour evidence is kept even though nothing is signed
                    self._clients[client_id] = work
                    self._persist(client_id, work)
                raise
            message = UpdateStateProxyMessage(
                prev_height=prev,
                prev_state_id=self._state_id(work, prev),
                post_height=post,
                post_state_id=self._state_id(work, post),
                timestamp=work.timestamp_ns(post),
                context=context,
            )
            _prune(work.consensus, keep={prev.revision_height, post.revision_height})
            self._persist(client_id, work)
            signed = self._sign(encode(message))
            self._clients[client_id] = work
            return post, signed

    def _membership(
        self,
        client_id: str,
        height: Height,
        prefix: bytes,
        path: bytes,
        value: bytes | None,
        proof: bytes,
    ) -> SignedMessage:
        with self._lock:
            client = self._client(client_id)
            if client.frozen:
                raise VerificationError(f"the enclave's client {client_id} is frozen")
            client.verify(height, bytes(prefix), bytes(path), value, bytes(proof))
            message = VerifyMembershipProxyMessage(
                prefix=bytes(prefix),
                path=bytes(path),
                value=bytes(32) if value is None else bytes(keccak(bytes(value))),
                height=height,
                state_id=self._state_id(client, height),
            )
            return self._sign(encode(message))

    def verify_membership(
        self, client_id: str, height: Height, prefix: bytes, path: bytes, value: bytes, proof: bytes
    ) -> SignedMessage:
        """Verify ``value`` under ``prefix ‖ path`` at ``height`` and sign the statement."""
        return self._membership(client_id, height, prefix, path, bytes(value), proof)

    def verify_non_membership(
        self, client_id: str, height: Height, prefix: bytes, path: bytes, proof: bytes
    ) -> SignedMessage:
        """Verify that nothing is under ``prefix ‖ path`` at ``height`` and sign the statement."""
        return self._membership(client_id, height, prefix, path, None, proof)

    def verify_batch(
        self, client_id: str, height: Height, items: Sequence[ProofItem]
    ) -> list[SignedMessage]:
        """Each item verified at ``height`` and signed as its own VerifyMembership message
        (what :meth:`verify_membership` / :meth:`verify_non_membership` sign one at a time; an
        item's ``value`` None asks for absence). The first item that does not verify raises
        and nothing is returned."""
        with self._lock:
            return [
                self._membership(client_id, height, i.prefix, i.path, i.value, i.proof)
                for i in items
            ]

    def update_and_verify(
        self,
        client_id: str,
        header: bytes,
        trusted_height: Height | None,
        items: Sequence[ProofItem],
    ) -> tuple[Height, SignedMessage, list[SignedMessage]]:
        """:meth:`update_client`, then :meth:`verify_batch` of ``items`` at the new height (the
        proofs are of the header's height): one call for a relayer's update and its proofs."""
        with self._lock:
            post, signed = self.update_client(client_id, header, trusted_height)
            return post, signed, self.verify_batch(client_id, post, items)

    def aggregate(self, messages: Sequence[tuple[bytes, bytes]]) -> SignedMessage:
        """One UpdateState message for several consecutive ones (aggregation rule).

        ``messages`` are ``(message, signature)`` pairs, each an UpdateState this enclave signed
        (with any of its keys), each building on the one before (its prev height and state id
        are the previous one's post height and state id).
        """
        if len(messages) < 2:
            raise VerificationError("aggregate at least two UpdateState messages")
        mine = {key.address for key in self._keys}
        updates: list[UpdateStateProxyMessage] = []
        for index, (message, signature) in enumerate(messages):
            if recover_signer(bytes(message), bytes(signature)) not in mine:
                raise VerificationError(f"message {index} is not signed by this enclave")
            update = decode(bytes(message))
            if not isinstance(update, UpdateStateProxyMessage) or not update.has_prev_state():
                raise VerificationError(
                    f"message {index} is not an UpdateState building on a previous state"
                )
            updates.append(update)
        context: ValidationContext = EmptyValidationContext()
        for index, (before, after) in enumerate(pairwise(updates), start=1):
            if (before.post_height, before.post_state_id) != (
                after.prev_height,
                after.prev_state_id,
            ):
                raise VerificationError(
                    f"message {index} does not build on message {index - 1}'s post state"
                )
        for update in updates:
            context = _stricter(context, update.context)
        first, last = updates[0], updates[-1]
        aggregated = UpdateStateProxyMessage(
            prev_height=first.prev_height,
            prev_state_id=first.prev_state_id,
            post_height=last.post_height,
            post_state_id=last.post_state_id,
            timestamp=last.timestamp,
            context=context,
            emitted_states=tuple(e for u in updates for e in u.emitted_states),
        )
        with self._lock:
            return self._sign(encode(aggregated))

    def client_ids(self) -> tuple[str, ...]:
        return tuple(self._clients)

    def latest_height(self, client_id: str) -> Height:
        return self._client(client_id).latest()
