"""Corda-model light client: is this IBC store value really committed by that Corda-model host?

A pure function of bytes (no I/O, no clock). The Corda-model IBC host keeps its provable store in
a sparse Merkle tree (:mod:`kakehashi.ledgers.corda.smt`) whose root it publishes, with a version
number and a timestamp, in a linear *host state* (:class:`IbcHostState`); each change of the store
is one notarised transaction consuming host version ``v`` and producing version ``v + 1``.

A **host state attestation** (:class:`HostStateAttestation`, the client's header) proves one host
version; :func:`verify_host_state` checks, in this order:

* **Encoding rule.** The bytes are the canonical (deterministic CBOR) encoding of the object.
* **Signature rule.** The notary's signature and the host operator's signature, by exactly the
  trusted keys, verify over the transaction id (Corda's ``SignableData``). The notary signs only a
  transaction whose inputs it has just committed as consumed, so host version ``v`` is consumed
  once: the host has a single history. The operator's signature rules out a host state made up by
  anyone else (a non-validating notary does not run contracts).
* **Tear-off rule.** The filtered transaction verifies against its id (``verify_filtered``); the
  INPUTS, NOTARY and TIMEWINDOW groups are revealed completely
  (``check_all_components_visible``) and exactly one OUTPUTS component is revealed.
* **Host state rule.** The revealed output is an :class:`IbcHostState` governed by
  :data:`HOST_CONTRACT`, under the trusted notary (the transaction's notary too), of the trusted
  linear id and operator, with a 32-byte root and a positive version.
* **Time rule.** The transaction has a time window no wider than the client allows and the host
  state's timestamp lies inside it: the notary, which checks its clock against the window before
  signing, vouches for the timestamp to within that width.

A **commitment proof** (:class:`CommitmentProof`) is an attestation plus a sparse-Merkle proof;
:func:`verify_membership` / :func:`verify_non_membership` check the attestation, then the
sparse-Merkle proof of ``SHA256(path)`` against the attested root. Every failure raises
:class:`~kakehashi.errors.VerificationError`.

**Proof format.** Deterministic CBOR (RFC 8949 §4.2; ``kakehashi.ledgers.corda.model
.serialization``) of registered types, every map carrying its type name under ``"$t"``::

    CommitmentProof      {"$t": "ibc.corda.CommitmentProof", attestation, smt_proof: bytes}
    HostStateAttestation {"$t": "ibc.corda.HostStateAttestation",
                          notary_signature, operator_signature: corda.TransactionSignature,
                          tear_off: corda.FilteredTransaction}

``smt_proof`` is the sparse-Merkle proof encoding of :mod:`kakehashi.ledgers.corda.smt` (32-byte
bitmap + non-default siblings). The tear-off reveals the host state output (a serialised
``corda.TransactionState`` holding an ``ibc.corda.HostState``), and all of INPUTS (input 0 is
the previous host state's reference, none at genesis; any further input is a state the host's
applications consume in the same version, such as a cross transaction's lock), NOTARY and
TIMEWINDOW; every other component stays hidden behind its group hash.

Client updates (:func:`update_client`) remember ``version → (timestamp, root, tx id, consumed
previous tx id)`` and freeze the client on misbehaviour: two different attested states for one
version, or adjacent versions whose transactions do not chain (version ``v + 1`` must consume an
output of the transaction of version ``v``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from kakehashi.errors import KakehashiError, VerificationError
from kakehashi.ledgers.corda import smt
from kakehashi.ledgers.corda.merkle import (
    ComponentGroup,
    FilteredTransaction,
    check_all_components_visible,
    verify_filtered,
)

# Imported for its side effect: it registers FilteredTransaction for (de)serialisation.
from kakehashi.ledgers.corda.model import transactions as _transactions  # noqa: F401
from kakehashi.ledgers.corda.model.crypto import PublicKey, TransactionSignature
from kakehashi.ledgers.corda.model.identity import Party
from kakehashi.ledgers.corda.model.serialization import deserialize, serializable, serialize
from kakehashi.ledgers.corda.model.states import (
    LinearState,
    StateRef,
    TimeWindow,
    TransactionState,
    UniqueIdentifier,
)

__all__ = [
    "DEFAULT_MAX_TIME_WINDOW_NS",
    "HOST_CONTRACT",
    "CommitmentProof",
    "CordaClientState",
    "CordaConsensusState",
    "HostStateAttestation",
    "HostStateView",
    "IbcHostState",
    "decode_commitment_proof",
    "update_client",
    "verify_host_state",
    "verify_membership",
    "verify_non_membership",
]

HOST_CONTRACT = "kakehashi.ibc.CordaHostContract"
"""The contract name every host state output must carry."""

DEFAULT_MAX_TIME_WINDOW_NS = 120 * 1_000_000_000
"""Widest notarisation time window a client accepts by default (±60 s around the timestamp)."""

_NS_PER_US = 1000


@serializable("ibc.corda.HostState")
@dataclass(frozen=True, slots=True)
class IbcHostState(LinearState):
    """The Corda-model IBC host at one version: the root of its provable store, and when.

    ``version`` is the ledger's IBC height (revision height); ``timestamp_ns`` the host's time
    at that version (ns since the epoch, notary-vouched through the time window).
    """

    operator: Party
    linear_id: UniqueIdentifier
    version: int
    smt_root: bytes
    timestamp_ns: int

    @property
    def participants(self) -> tuple[Party, ...]:
        return (self.operator,)


@serializable("ibc.corda.HostStateAttestation")
@dataclass(frozen=True, slots=True)
class HostStateAttestation:
    """Proof of one host version: notary and operator signatures + a tear-off of the tx."""

    notary_signature: TransactionSignature
    operator_signature: TransactionSignature
    tear_off: FilteredTransaction


@serializable("ibc.corda.CommitmentProof")
@dataclass(frozen=True, slots=True)
class CommitmentProof:
    """Proof of a store value (or its absence) at a host version: attestation + SMT proof."""

    attestation: HostStateAttestation
    smt_proof: bytes


@dataclass(frozen=True, slots=True)
class HostStateView:
    """What a verified attestation establishes."""

    version: int
    timestamp_ns: int
    smt_root: bytes
    tx_id: bytes
    previous_tx: bytes | None  # the transaction whose host state this one consumed


@serializable("ibc.corda.ClientState")
@dataclass(frozen=True, slots=True)
class CordaClientState:
    """What a client of a Corda-model host trusts, and how far it got.

    ``revision_number`` is the revision of the heights this client reports (the host's version
    is the revision height).
    """

    notary_key: PublicKey
    operator_key: PublicKey
    linear_id: UniqueIdentifier
    revision_number: int = 0
    max_time_window_ns: int = DEFAULT_MAX_TIME_WINDOW_NS
    latest_version: int = 0
    frozen: bool = False


@serializable("ibc.corda.ConsensusState")
@dataclass(frozen=True, slots=True)
class CordaConsensusState:
    """What the client remembers of one verified host version."""

    timestamp_ns: int
    smt_root: bytes
    tx_id: bytes
    previous_tx: bytes | None = None


# -- decoding ---------------------------------------------------------------------------------


def _decode_canonical(data: bytes, kind: type[object]) -> object:
    if not isinstance(data, bytes):
        raise VerificationError("a Corda host proof must be bytes")
    try:
        obj = deserialize(data, kind)
        canonical = serialize(obj)
    except KakehashiError as exc:
        raise VerificationError(f"malformed Corda host proof: {exc}") from None
    if canonical != data:
        raise VerificationError("the Corda host proof is not canonically encoded")
    return obj


def decode_attestation(data: bytes) -> HostStateAttestation:
    """Parse canonical attestation bytes (encoding rule)."""
    obj = _decode_canonical(data, HostStateAttestation)
    assert isinstance(obj, HostStateAttestation)
    return obj


def decode_commitment_proof(data: bytes) -> CommitmentProof:
    """Parse canonical commitment-proof bytes (encoding rule)."""
    obj = _decode_canonical(data, CommitmentProof)
    assert isinstance(obj, CommitmentProof)
    return obj


def _decode_component(data: bytes, kind: type[object], what: str) -> object:
    try:
        return deserialize(data, kind)
    except KakehashiError as exc:
        raise VerificationError(f"the revealed {what} is malformed: {exc}") from None


# -- the rules --------------------------------------------------------------------------------


def _check_signature(
    signature: TransactionSignature, key: PublicKey, tx_id: bytes, who: str
) -> None:
    if signature.by != key:
        raise VerificationError(
            f"the {who} signature is by key {signature.by.short()}, not the trusted {who}'s"
        )
    try:
        signature.verify(tx_id)
    except KakehashiError as exc:
        raise VerificationError(f"the {who} signature does not verify: {exc}") from None


def _verify_attestation(
    client: CordaClientState, attestation: HostStateAttestation
) -> HostStateView:
    ftx = attestation.tear_off
    # Tear-off rule first: the id the signatures are checked over must be the tear-off's.
    try:
        verify_filtered(ftx)
        for group in (ComponentGroup.INPUTS, ComponentGroup.NOTARY, ComponentGroup.TIMEWINDOW):
            check_all_components_visible(ftx, group)
    except KakehashiError as exc:
        raise VerificationError(f"the host state tear-off does not verify: {exc}") from None
    _check_signature(attestation.notary_signature, client.notary_key, ftx.id, "notary")
    _check_signature(attestation.operator_signature, client.operator_key, ftx.id, "operator")

    outputs = ftx.components(ComponentGroup.OUTPUTS)
    if len(outputs) != 1:
        raise VerificationError(
            f"the tear-off must reveal exactly one output (the host state), not {len(outputs)}"
        )
    output = _decode_component(outputs[0], TransactionState, "output")
    assert isinstance(output, TransactionState)
    state = output.data
    if not isinstance(state, IbcHostState):
        raise VerificationError("the revealed output is not an IBC host state")
    if output.contract != HOST_CONTRACT:
        raise VerificationError(f"the host state names contract {output.contract!r}")
    if output.encumbrance is not None:
        raise VerificationError("the host state must not be encumbered")
    if state.linear_id != client.linear_id:
        raise VerificationError(
            f"the host state has linear id {state.linear_id}, not the trusted {client.linear_id}"
        )
    if state.operator.owning_key != client.operator_key:
        raise VerificationError("the host state names another operator")
    if output.notary.owning_key != client.notary_key:
        raise VerificationError("the host state is under another notary")
    if not isinstance(state.smt_root, bytes) or len(state.smt_root) != smt.HASH_SIZE:
        raise VerificationError("the host state's root is not 32 bytes")
    if state.version < 1 or state.timestamp_ns < 0:
        raise VerificationError("the host state's version must be positive, its time not negative")

    notaries = ftx.components(ComponentGroup.NOTARY)
    if len(notaries) != 1:
        raise VerificationError("the host transaction must name its notary")
    notary = _decode_component(notaries[0], Party, "notary")
    if not isinstance(notary, Party) or notary.owning_key != client.notary_key:
        raise VerificationError("the host transaction names another notary")

    windows = ftx.components(ComponentGroup.TIMEWINDOW)
    if len(windows) != 1:
        raise VerificationError("the host transaction has no time window: its time is unproven")
    window = _decode_component(windows[0], TimeWindow, "time window")
    assert isinstance(window, TimeWindow)
    if window.from_time is None or window.until_time is None:
        raise VerificationError("the host transaction's time window must be bounded")
    if (window.until_time - window.from_time) * _NS_PER_US > client.max_time_window_ns:
        raise VerificationError(
            f"the host transaction's time window is wider than {client.max_time_window_ns} ns"
        )
    if not window.contains(state.timestamp_ns // _NS_PER_US):
        raise VerificationError("the host state's timestamp is outside its time window")

    previous: bytes | None = None
    # Input 0 is the previous host state (a rule of the host contract the operator signs
    # under); further inputs are states the host's applications consume in the same version.
    inputs = ftx.components(ComponentGroup.INPUTS)
    if inputs:
        ref = _decode_component(inputs[0], StateRef, "input")
        assert isinstance(ref, StateRef)
        previous = ref.txhash
    elif state.version != 1:
        raise VerificationError("only host version 1 (genesis) may consume nothing")
    return HostStateView(state.version, state.timestamp_ns, state.smt_root, ftx.id, previous)


def verify_host_state(client: CordaClientState, proof: bytes) -> HostStateView:
    """Verify an attestation or a commitment proof (its attestation part) of one host version.

    Raises :class:`VerificationError` if the client is frozen or any rule fails.
    """
    if client.frozen:
        raise VerificationError("the Corda client is frozen")
    try:
        attestation = decode_attestation(proof)
    except VerificationError:
        attestation = decode_commitment_proof(proof).attestation
    return _verify_attestation(client, attestation)


def _verify_commitment(
    client: CordaClientState,
    proof: bytes,
    version: int | None,
    trusted: CordaConsensusState | None,
) -> tuple[HostStateView, bytes]:
    if client.frozen:
        raise VerificationError("the Corda client is frozen")
    decoded = decode_commitment_proof(proof)
    view = _verify_attestation(client, decoded.attestation)
    if version is not None and view.version != version:
        raise VerificationError(f"the proof is for host version {view.version}, not {version}")
    if trusted is not None and (trusted.smt_root, trusted.tx_id) != (view.smt_root, view.tx_id):
        raise VerificationError(
            f"the proof's host version {view.version} differs from the one this client verified"
        )
    return view, decoded.smt_proof


def verify_membership(
    client: CordaClientState,
    proof: bytes,
    path: bytes,
    value: bytes,
    *,
    version: int | None = None,
    trusted: CordaConsensusState | None = None,
) -> HostStateView:
    """Raise unless ``proof`` shows ``value`` under ``path`` (at ``version``, if given).

    ``trusted`` is the consensus state the client already holds for that version, if any: the
    proof must be of that very host state.
    """
    view, smt_proof = _verify_commitment(client, proof, version, trusted)
    smt.verify_membership(view.smt_root, smt.key_for_path(path), value, smt_proof)
    return view


def verify_non_membership(
    client: CordaClientState,
    proof: bytes,
    path: bytes,
    *,
    version: int | None = None,
    trusted: CordaConsensusState | None = None,
) -> HostStateView:
    """Raise unless ``proof`` shows nothing under ``path`` (at ``version``, if given)."""
    view, smt_proof = _verify_commitment(client, proof, version, trusted)
    smt.verify_non_membership(view.smt_root, smt.key_for_path(path), smt_proof)
    return view


def update_client(
    client: CordaClientState,
    consensus: Mapping[int, CordaConsensusState],
    header: bytes,
) -> tuple[CordaClientState, int, CordaConsensusState]:
    """Verify a header (an attestation) and return the new client state and consensus state.

    Misbehaviour — another state already known at that version, a break in the chain of
    transactions with a known neighbouring version, or time running backwards between them —
    returns the client frozen so the caller can persist the freeze (check ``frozen``; the
    consensus state must then not be stored). Raises :class:`VerificationError` if the header
    does not verify.
    """
    view = verify_host_state(client, header)
    state = CordaConsensusState(view.timestamp_ns, view.smt_root, view.tx_id, view.previous_tx)
    known = consensus.get(view.version)
    before = consensus.get(view.version - 1)
    after = consensus.get(view.version + 1)
    if (
        (known is not None and known != state)
        or (
            before is not None
            and (before.tx_id != view.previous_tx or before.timestamp_ns > view.timestamp_ns)
        )
        or (
            after is not None
            and (after.previous_tx != view.tx_id or after.timestamp_ns < view.timestamp_ns)
        )
    ):
        return replace(client, frozen=True), view.version, state
    latest = max(client.latest_version, view.version)
    return replace(client, latest_version=latest), view.version, state
