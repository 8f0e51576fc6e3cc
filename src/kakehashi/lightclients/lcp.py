"""LCP light client: does a quorum of attested enclave keys vouch for this statement?

The client of a ledger seen through a Light Client Proxy (Datachain's LCP): instead of headers it
checks proxy messages (:mod:`kakehashi.lightclients.lcp_messages`) signed by enclave keys that
were registered with attestation evidence (:mod:`kakehashi.lightclients.lcp_attestation`). The
semantics are those of LCP's own clients (lcp-solidity's ``LCPClientBase`` and LCP's
``lcp-client`` module); the code is ours.
Pure functions of bytes and a caller-supplied clock (``now_ns``, nanoseconds since the Unix
epoch): every operation returns a new :class:`LcpClient` or raises
:class:`~kakehashi.errors.VerificationError` and changes nothing. The rules:

* **Creation rule.** A client starts from its client state (enclave measurement, key expiration,
  attestation policy, operators and threshold) and the enclave's create-client message: an
  UpdateState with a zero previous height and state id and at least one emitted state. The host
  operator who creates the client vouches for it, as with every ICS-02 client's initial
  consensus state, so it need not be signed (LCP returns it unsigned).
* **Registration rule.** An enclave key is registered from an IAS report that verifies under the
  client's policy with the client's MRENCLAVE; it expires at ``attestation time +
  key_expiration`` and a report already expired at ``now`` is refused. When the report names an
  operator, an operator signature is required and must recover to it; an operator signature on a
  report naming none binds the key to its signer (as LCP does). The signature is raw secp256k1
  over LCP's EIP-712 digest ``keccak256(0x1901 ‖ domain ‖ keccak256(abi.encode(
  keccak256("RegisterEnclaveKey(string avr)"), keccak256(avr))))`` with lcp-solidity's fixed
  domain (name ``LCPClient``, version ``1``, chain id 0, zero contract, EVM chain-type salt), so
  one operator signature registers a key on either ledger. With operators configured, the key's
  operator must be one of them (any other key could never count towards the threshold).
  Registering a key again is a no-op when expiry and operator agree and refused otherwise.
* **Signature rule.** A signed statement carries one or more 65-byte signatures over
  ``keccak256(message)`` (empty entries are skipped, so LCP's positional lists verify too). Each
  must recover to a distinct registered key unexpired at ``now`` (``now < expires_at``). Without
  operators one such key suffices; with operators every signer key's operator must be in the
  operator set and at least ``operators_threshold`` distinct operators must be represented.
* **Update rule.** An UpdateState must name a previous state the client holds (``prev_height``
  stored with ``prev_state_id``; a zero previous state is only the creation message), its
  validation context must hold at ``now``, and the client must not be frozen. A statement for a
  height already held is a no-op when identical (a resubmission) and refused when different: the
  client does not freeze on it, because a conflicting state is proven only by a Misbehaviour
  message the enclave signs after checking the evidence (misbehaviour rule).
* **Misbehaviour rule.** A Misbehaviour message signed under the signature rule, naming at least
  one previous state, each held by the client, with a validation context that holds at ``now``,
  freezes the client; a frozen client verifies and accepts nothing.
* **Membership rule.** A membership proof is ``abi.encode(bytes message, bytes[] signatures)``
  (LCP's ``CommitmentProofs``) of a VerifyMembership message signed under the signature rule,
  whose height is the proof height, whose state id is the one the client holds at that height,
  whose prefix and path are the ones asked about and whose value is ``keccak256(value)``, or zero
  for non-membership.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import TypeVar

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_abi.exceptions import DecodingError
from eth_hash.auto import keccak

from kakehashi.errors import KakehashiError, SignatureError, VerificationError
from kakehashi.ledgers.evm.qbft import recover_seal
from kakehashi.lightclients.lcp_attestation import (
    INTEL_SGX_ATTESTATION_ROOT_CA_DER,
    AttestationPolicy,
    VerifiedReport,
    verify_avr,
)
from kakehashi.lightclients.lcp_messages import (
    ADDRESS_SIZE,
    SIGNATURE_SIZE,
    STATE_ID_SIZE,
    Height,
    MisbehaviourProxyMessage,
    ProxyMessage,
    UpdateStateProxyMessage,
    VerifyMembershipProxyMessage,
    decode,
    recover_signer,
)

__all__ = [
    "REGISTER_ENCLAVE_KEY_DOMAIN_SEPARATOR",
    "ConsensusState",
    "EnclaveKey",
    "LcpClient",
    "LcpClientState",
    "create_client",
    "decode_commitment_proof",
    "encode_commitment_proof",
    "recover_operator",
    "register_enclave_key",
    "register_enclave_key_digest",
    "submit_misbehaviour",
    "update_state",
    "verify_membership",
    "verify_non_membership",
    "verify_signatures",
]

_M = TypeVar("_M", UpdateStateProxyMessage, VerifyMembershipProxyMessage, MisbehaviourProxyMessage)
_NS = 1_000_000_000
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_ZERO32 = bytes(STATE_ID_SIZE)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _eip712_domain_separator() -> bytes:
    """lcp-solidity's ``LCPOperator.domainSeparator(0, address(0))`` (EVM chain-type salt)."""
    type_hash = keccak(
        b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract,"
        b"bytes32 salt)"
    )
    salt = keccak((1).to_bytes(2, "big"))  # keccak256(abi.encodePacked(uint16(CHAIN_TYPE_EVM)))
    return keccak(type_hash + keccak(b"LCPClient") + keccak(b"1") + bytes(32) + bytes(32) + salt)


#: The EIP-712 domain separator of enclave-key registrations (lcp-solidity's constant).
REGISTER_ENCLAVE_KEY_DOMAIN_SEPARATOR = _eip712_domain_separator()
_REGISTER_ENCLAVE_KEY_TYPEHASH = keccak(b"RegisterEnclaveKey(string avr)")


def register_enclave_key_digest(avr_json: str | bytes) -> bytes:
    """What an operator signs to vouch for the enclave key of ``avr_json`` (registration rule)."""
    avr = avr_json.encode("utf-8") if isinstance(avr_json, str) else bytes(avr_json)
    struct_hash = keccak(_REGISTER_ENCLAVE_KEY_TYPEHASH + keccak(avr))
    return keccak(b"\x19\x01" + REGISTER_ENCLAVE_KEY_DOMAIN_SEPARATOR + struct_hash)


# ---------------------------------------------------------------------------- state


@dataclass(frozen=True, slots=True)
class LcpClientState:
    """What the client trusts: which enclave, for how long a key, under which policy, whose keys.

    ``key_expiration_s`` is how long (seconds) a key stays usable after its attestation time.
    ``root_certificates`` / ``allowed_*`` / ``development`` / ``allow_debug_enclave`` make the
    :class:`~kakehashi.lightclients.lcp_attestation.AttestationPolicy` (``development`` lets a
    simulation root in). ``operators`` are 20-byte addresses in ascending order (empty: any
    attested key signs alone); ``operators_threshold`` is ``k`` of the k-of-n operator policy.
    """

    mrenclave: bytes
    key_expiration_s: int
    root_certificates: tuple[bytes, ...] = (INTEL_SGX_ATTESTATION_ROOT_CA_DER,)
    allowed_quote_statuses: frozenset[str] = frozenset({"OK"})
    allowed_advisories: frozenset[str] = frozenset()
    development: bool = False
    allow_debug_enclave: bool = False
    operators: tuple[bytes, ...] = ()
    operators_threshold: int = 0
    latest_height: Height = field(default_factory=Height)
    frozen: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.mrenclave, bytes) or len(self.mrenclave) != 32:
            raise VerificationError("an LCP client's mrenclave must be 32 bytes")
        if isinstance(self.key_expiration_s, bool) or not (
            isinstance(self.key_expiration_s, int) and self.key_expiration_s > 0
        ):
            raise VerificationError("an LCP client's key expiration must be a positive integer")
        for operator in self.operators:
            if not isinstance(operator, bytes) or len(operator) != ADDRESS_SIZE:
                raise VerificationError("an LCP operator is a 20-byte address")
            if not any(operator):
                raise VerificationError("the zero address cannot be an LCP operator")
        if list(self.operators) != sorted(set(self.operators)):
            raise VerificationError("LCP operators must be unique and in ascending order")
        if self.operators and not 1 <= self.operators_threshold <= len(self.operators):
            raise VerificationError(
                f"an operator threshold must be between 1 and {len(self.operators)} operators, "
                f"got {self.operators_threshold}"
            )
        if not self.operators and self.operators_threshold != 0:
            raise VerificationError("an operator threshold needs operators (none are set)")

    def attestation_policy(self) -> AttestationPolicy:
        """The policy an enclave key's report must pass (with this client's MRENCLAVE)."""
        try:
            return AttestationPolicy(
                root_certificates=self.root_certificates,
                allowed_quote_statuses=self.allowed_quote_statuses,
                allowed_advisories=self.allowed_advisories,
                mrenclave=self.mrenclave,
                development=self.development,
                allow_debug_enclave=self.allow_debug_enclave,
            )
        except KakehashiError as exc:
            raise VerificationError(
                f"the LCP client's attestation policy is invalid: {exc}"
            ) from exc


@dataclass(frozen=True, slots=True)
class ConsensusState:
    """What the client holds at a height: the enclave's state id and the state's time (ns)."""

    state_id: bytes
    timestamp_ns: int


@dataclass(frozen=True, slots=True)
class EnclaveKey:
    """A registered enclave key: usable while ``now < expires_at_ns``, vouched for by
    ``operator`` (None: no operator)."""

    address: bytes
    expires_at_ns: int
    operator: bytes | None


@dataclass(frozen=True)
class LcpClient:
    """The whole client: its state, consensus states by height, and registered enclave keys.

    Immutable: every operation of this module returns a new client.
    """

    state: LcpClientState
    consensus_states: Mapping[Height, ConsensusState] = field(default_factory=dict)
    enclave_keys: Mapping[bytes, EnclaveKey] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "consensus_states", MappingProxyType(dict(self.consensus_states)))
        object.__setattr__(self, "enclave_keys", MappingProxyType(dict(self.enclave_keys)))

    def consensus_state(self, height: Height) -> ConsensusState:
        """The consensus state at ``height`` (VerificationError when the client has none)."""
        consensus = self.consensus_states.get(height)
        if consensus is None:
            raise VerificationError(
                f"the LCP client holds no state at height {height} (latest "
                f"{self.state.latest_height}): update the client first"
            )
        return consensus

    def active_keys(self, now_ns: int) -> tuple[EnclaveKey, ...]:
        """The registered keys still usable at ``now_ns``."""
        return tuple(k for k in self.enclave_keys.values() if now_ns < k.expires_at_ns)

    @classmethod
    def with_test_keys(
        cls,
        state: LcpClientState,
        keys: Iterable[EnclaveKey],
        consensus_states: Mapping[Height, ConsensusState] | None = None,
    ) -> LcpClient:
        """TEST ONLY: a client whose enclave keys were not registered from attestation evidence.

        For exercising the signature rule (k-of-n operators) with generated keys; never use it
        for a client a ledger relies on — every real key goes through :func:`register_enclave_key`.
        """
        return cls(state, dict(consensus_states or {}), {k.address: k for k in keys})


# ---------------------------------------------------------------------------- proofs


def encode_commitment_proof(message: bytes, signatures: Sequence[bytes]) -> bytes:
    """``abi.encode(bytes message, bytes[] signatures)``: the proof the membership rule reads."""
    return bytes(abi_encode(["bytes", "bytes[]"], [bytes(message), [bytes(s) for s in signatures]]))


def decode_commitment_proof(proof: bytes) -> tuple[bytes, tuple[bytes, ...]]:
    """The signed message and signatures of a proof (canonical ABI encoding only)."""
    try:
        message, signatures = abi_decode(["bytes", "bytes[]"], bytes(proof), strict=True)
    except (DecodingError, TypeError, ValueError, OverflowError) as exc:
        raise VerificationError(f"malformed LCP commitment proof: {exc}") from None
    result = (bytes(message), tuple(bytes(s) for s in signatures))
    if encode_commitment_proof(*result) != proof:
        raise VerificationError("the LCP commitment proof is not canonically encoded")
    return result


# ---------------------------------------------------------------------------- operations


def create_client(state: LcpClientState, init_message: bytes, now_ns: int) -> LcpClient:
    """A new client from its state and the enclave's create-client message (creation rule)."""
    if state.frozen or not state.latest_height.is_zero():
        raise VerificationError("a new LCP client must be unfrozen with a zero latest height")
    message = _decode(init_message, UpdateStateProxyMessage, "a create-client message")
    if message.has_prev_state():
        raise VerificationError(
            "a create-client message has a zero previous height and state id; this one names "
            f"a previous state at {message.prev_height}"
        )
    if not message.emitted_states:
        raise VerificationError("a create-client message must emit the enclave's client state")
    _check_state_id(message.post_state_id, "post state id")
    message.context.check(now_ns)
    consensus = {message.post_height: ConsensusState(message.post_state_id, message.timestamp)}
    return LcpClient(replace(state, latest_height=message.post_height), consensus, {})


def register_enclave_key(
    client: LcpClient,
    avr_json: str | bytes,
    signature: bytes,
    signing_cert_der: bytes,
    operator_signature: bytes | None,
    now_ns: int,
) -> LcpClient:
    """Register the enclave key an attestation report names (registration rule)."""
    _require_unfrozen(client)
    state = client.state
    report = _verify_report(state, avr_json, signature, signing_cert_der, now_ns)
    operator = report.operator_address
    if operator_signature:
        try:
            signer = recover_operator(register_enclave_key_digest(avr_json), operator_signature)
        except VerificationError as exc:
            raise VerificationError(f"the operator signature does not verify: {exc}") from None
        if operator is not None and signer != operator:
            raise VerificationError(
                f"the operator signature is by 0x{signer.hex()}, but the report names operator "
                f"0x{operator.hex()}"
            )
        operator = signer
    elif operator is not None:
        raise VerificationError(
            f"the report names operator 0x{operator.hex()}: its signature over the registration "
            "(EIP-712 RegisterEnclaveKey) is required"
        )
    if state.operators and operator not in state.operators:
        named = "no operator" if operator is None else f"operator 0x{operator.hex()}"
        raise VerificationError(
            f"the enclave key is vouched for by {named}, not by one of the client's operators"
        )
    expires_at = report.timestamp_ns + state.key_expiration_s * _NS
    if expires_at <= now_ns:
        raise VerificationError(
            f"the report (attested at {report.timestamp_ns} ns) expired at {expires_at} ns with a "
            f"key expiration of {state.key_expiration_s} s; obtain a fresh attestation"
        )
    key = EnclaveKey(report.enclave_key_address, expires_at, operator)
    known = client.enclave_keys.get(key.address)
    if known is not None:
        if known == key:
            return client  # registered already: nothing changes
        raise VerificationError(
            f"enclave key 0x{key.address.hex()} is registered already with a different expiry "
            "or operator"
        )
    keys = dict(client.enclave_keys)
    keys[key.address] = key
    return LcpClient(state, client.consensus_states, keys)


def verify_signatures(
    client: LcpClient, message: bytes, signatures: Sequence[bytes], now_ns: int
) -> tuple[bytes, ...]:
    """The enclave keys that signed ``message``, when they satisfy the signature rule."""
    present = [s for s in signatures if len(s) != 0]
    if not present:
        raise SignatureError("the LCP statement carries no signature")
    signers: list[bytes] = []
    operators: set[bytes] = set()
    state = client.state
    for signature in present:
        if len(signature) != SIGNATURE_SIZE:
            raise SignatureError(
                f"an LCP signature is {SIGNATURE_SIZE} bytes, got {len(signature)}"
            )
        address = recover_signer(message, signature)
        if address in signers:
            raise SignatureError(f"enclave key 0x{address.hex()} signed twice")
        key = client.enclave_keys.get(address)
        if key is None:
            raise SignatureError(
                f"0x{address.hex()} is not an enclave key registered on this client"
            )
        if now_ns >= key.expires_at_ns:
            raise SignatureError(
                f"enclave key 0x{address.hex()} expired at {key.expires_at_ns} ns (now {now_ns} "
                "ns): register a freshly attested key"
            )
        if state.operators:
            if key.operator is None or key.operator not in state.operators:
                raise SignatureError(
                    f"enclave key 0x{address.hex()} is not vouched for by one of the client's "
                    "operators"
                )
            operators.add(key.operator)
        signers.append(address)
    if state.operators and len(operators) < state.operators_threshold:
        raise SignatureError(
            f"keys of {len(operators)} distinct operators signed; the client requires "
            f"{state.operators_threshold} of {len(state.operators)}"
        )
    return tuple(signers)


def update_state(
    client: LcpClient, message: bytes, signatures: Sequence[bytes], now_ns: int
) -> tuple[LcpClient, Height]:
    """Apply a signed UpdateState message (update rule); returns the new client and its height."""
    _require_unfrozen(client)
    update = _decode(message, UpdateStateProxyMessage, "an update")
    verify_signatures(client, message, signatures, now_ns)
    if not update.has_prev_state():
        raise VerificationError(
            "an update must name the previous state it builds on; a zero previous state only "
            "creates a client"
        )
    prev = client.consensus_states.get(update.prev_height)
    if prev is None:
        raise VerificationError(
            f"the update builds on height {update.prev_height}, which this client does not hold"
        )
    if prev.state_id != update.prev_state_id:
        raise VerificationError(
            f"the update builds on state 0x{update.prev_state_id.hex()} at {update.prev_height}, "
            f"but the client holds 0x{prev.state_id.hex()} there"
        )
    _check_state_id(update.post_state_id, "post state id")
    update.context.check(now_ns)
    new = ConsensusState(update.post_state_id, update.timestamp)
    known = client.consensus_states.get(update.post_height)
    if known is not None:
        if known == new:
            return client, update.post_height  # a resubmission: nothing changes
        raise VerificationError(
            f"the client already holds a different state at height {update.post_height}; "
            "a conflicting state is refused (misbehaviour is proven by a Misbehaviour message)"
        )
    consensus = dict(client.consensus_states)
    consensus[update.post_height] = new
    latest = max(client.state.latest_height, update.post_height)
    return (
        LcpClient(replace(client.state, latest_height=latest), consensus, client.enclave_keys),
        update.post_height,
    )


def submit_misbehaviour(
    client: LcpClient, message: bytes, signatures: Sequence[bytes], now_ns: int
) -> LcpClient:
    """Freeze the client on a signed Misbehaviour message (misbehaviour rule)."""
    _require_unfrozen(client)
    misbehaviour = _decode(message, MisbehaviourProxyMessage, "a misbehaviour submission")
    verify_signatures(client, message, signatures, now_ns)
    if not misbehaviour.prev_states:
        raise VerificationError("a misbehaviour message must name the client's states it checked")
    for prev in misbehaviour.prev_states:
        held = client.consensus_states.get(prev.height)
        if held is None or held.state_id != prev.state_id:
            raise VerificationError(
                f"the misbehaviour message names state 0x{prev.state_id.hex()} at {prev.height}, "
                "which this client does not hold"
            )
    misbehaviour.context.check(now_ns)
    return LcpClient(
        replace(client.state, frozen=True), client.consensus_states, client.enclave_keys
    )


def verify_membership(
    client: LcpClient,
    height: Height,
    proof: bytes,
    prefix: bytes,
    path: bytes,
    value: bytes,
    now_ns: int,
) -> None:
    """Raise unless ``value`` is committed under ``prefix ‖ path`` at ``height`` (membership
    rule)."""
    statement = _verify_statement(client, height, proof, prefix, path, now_ns)
    if statement.is_non_membership() or statement.value != keccak(bytes(value)):
        raise VerificationError(f"the LCP statement does not prove that value under {path!r}")


def verify_non_membership(
    client: LcpClient, height: Height, proof: bytes, prefix: bytes, path: bytes, now_ns: int
) -> None:
    """Raise unless nothing is committed under ``prefix ‖ path`` at ``height``."""
    statement = _verify_statement(client, height, proof, prefix, path, now_ns)
    if not statement.is_non_membership():
        raise VerificationError(f"the LCP statement proves a value under {path!r}, not absence")


# ---------------------------------------------------------------------------- operator signatures


def recover_operator(digest: bytes, signature: bytes) -> bytes:
    """The address that signed the 32-byte ``digest``, under the signature acceptance rules of
    :func:`kakehashi.lightclients.lcp_messages.recover_signer` (65 bytes, ``v`` in {0, 1, 27,
    28}, low s)."""
    if len(signature) != SIGNATURE_SIZE:
        raise SignatureError(f"a signature is {SIGNATURE_SIZE} bytes, got {len(signature)}")
    v = signature[64] - 27 if signature[64] in (27, 28) else signature[64]
    if v not in (0, 1):
        raise SignatureError(f"a signature's v must be 0, 1, 27 or 28, got {signature[64]}")
    r = int.from_bytes(signature[0:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    if not (0 < r < _SECP256K1_N and 0 < s <= _SECP256K1_N // 2):
        raise SignatureError("a signature's r or s is out of range (s must be in the lower half)")
    return recover_seal(digest, signature[:64] + bytes([v]))


# ---------------------------------------------------------------------------- internals


def _require_unfrozen(client: LcpClient) -> None:
    if client.state.frozen:
        raise VerificationError("the LCP client is frozen (misbehaviour was proven)")


def _decode(message: bytes, kind: type[_M], what: str) -> _M:
    try:
        decoded: ProxyMessage = decode(bytes(message))
    except KakehashiError as exc:
        raise VerificationError(f"{what} is not an LCP proxy message: {exc}") from None
    if not isinstance(decoded, kind):
        raise VerificationError(f"{what} must be a {kind.__name__}, got a {type(decoded).__name__}")
    return decoded


def _check_state_id(state_id: bytes, what: str) -> None:
    if state_id == _ZERO32:
        raise VerificationError(f"the {what} must not be zero")


def _verify_report(
    state: LcpClientState,
    avr_json: str | bytes,
    signature: bytes,
    signing_cert_der: bytes,
    now_ns: int,
) -> VerifiedReport:
    now = _EPOCH + timedelta(microseconds=now_ns // 1000)
    try:
        return verify_avr(avr_json, signature, signing_cert_der, state.attestation_policy(), now)
    except KakehashiError as exc:
        raise VerificationError(f"the enclave key is not attested: {exc}") from None


def _verify_statement(
    client: LcpClient, height: Height, proof: bytes, prefix: bytes, path: bytes, now_ns: int
) -> VerifyMembershipProxyMessage:
    _require_unfrozen(client)
    message, signatures = decode_commitment_proof(proof)
    statement = _decode(message, VerifyMembershipProxyMessage, "a membership proof")
    if statement.height != height:
        raise VerificationError(f"the LCP statement is for height {statement.height}, not {height}")
    held = client.consensus_state(height)
    if statement.state_id != held.state_id:
        raise VerificationError(
            f"the LCP statement is about state 0x{statement.state_id.hex()} at {height}, but "
            f"the client holds 0x{held.state_id.hex()} there"
        )
    if statement.prefix != bytes(prefix):
        raise VerificationError(
            f"the LCP statement is under prefix {statement.prefix!r}, not {bytes(prefix)!r}"
        )
    if statement.path != bytes(path):
        raise VerificationError(
            f"the LCP statement is about path {statement.path!r}, not {bytes(path)!r}"
        )
    verify_signatures(client, message, signatures, now_ns)
    return statement
