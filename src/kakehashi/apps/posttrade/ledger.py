"""A party's client of the post-trade contract (``contracts/apps/posttrade.vy``, issue 8).

:class:`PostTradeLedger` acts as one party: it sends from the party's own EVM account (the
transaction's signature is the party's signature) and opens envelopes with the party's X25519
private key. The chain is the only thing it trusts for who is who: the registry on the contract
gives each party's account, X25519 public key and role.

* ``submit`` / ``amend``: the form is encoded (``Form.encode``), sealed for its route's parties
  and the submitter (a fresh content key per version, ``sealing.seal``) and sent with its
  version hash and envelope digest; the contract checks the digest against the envelope.
* ``show``: the chain's record of the form (route, step, statuses, last NG) and the envelope
  from the ``FormVersion`` event (or one handed over by someone else), checked against the
  digest on chain, opened, and the plaintext checked against the version hash. An outsider
  gets the envelope and ``readable=False`` with the reason ("not a recipient").
* ``approve`` / ``reject``: bound to the version the party opened and its hash; a rejection
  carries an ISO 20022 reason code and a narrative sealed for the route.
* ``cancel``; ``record_matching`` / ``record_settlement`` (the CSD, the route's last party).
* ``inbox`` (the ``Notified`` events naming the party) and ``history`` (every step's event).

Revert reasons of the contract become typed errors (:func:`refusal`) whose messages say what to
do.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

from kakehashi.apps.posttrade import sealing
from kakehashi.apps.posttrade.codes import (
    Direction,
    Role,
    code_bytes,
    code_from_bytes,
    rejection_reason,
)
from kakehashi.apps.posttrade.form import Form, form_id_hash
from kakehashi.apps.posttrade.matching import MatchResult, match
from kakehashi.errors import (
    KakehashiError,
    NotARecipientError,
    PostTradeError,
    TransactionRevertedError,
    UnknownPartyError,
    VerificationError,
)
from kakehashi.ledgers.evm import toolchain
from kakehashi.ledgers.evm.client import transact

__all__ = [
    "CONTRACT",
    "FormState",
    "FormView",
    "HistoryEntry",
    "Matching",
    "Notification",
    "PartyInfo",
    "PostTradeLedger",
    "PostTradeRefused",
    "Processing",
    "Settlement",
    "contract_at",
    "deploy",
    "refusal",
    "register_party",
]

CONTRACT = "apps/posttrade"
"""The contract's name for :func:`kakehashi.ledgers.evm.toolchain.compile_contract`."""

MAX_ENVELOPE = 12288
"""The contract's bound on a form version's envelope (``Bytes[MAX_ENVELOPE]``)."""

MAX_NARRATIVE = 4096
"""The contract's bound on a sealed narrative (``Bytes[MAX_NARRATIVE]``)."""

ROLE_CODES: dict[Role, int] = {
    Role.ASSET_MANAGER: 1,
    Role.CUSTODIAN: 2,
    Role.SECURITIES_COMPANY: 3,
    Role.CSD: 4,
}
ROLE_OTHER = 5  # a ledger member with no post-trade role (an outsider to every form)


class Processing(enum.IntEnum):
    """The processing status on chain; :attr:`iso` is the ISO 20022 code, when one applies."""

    NONE = 0
    ON_ROUTE = 1  # awaiting approvals
    ACCEPTED = 2  # PACK: every step approved
    REJECTED = 3  # REJT: an NG returned it to the submitter
    CANCELLED = 4  # CAND

    @property
    def iso(self) -> str | None:
        return {1: "PPRC", 2: "PACK", 3: "REJT", 4: "CAND"}.get(self.value)

    @property
    def label(self) -> str:
        return {
            0: "none",
            1: "on its route (PPRC)",
            2: "accepted (PACK)",
            3: "returned to the submitter (REJT)",
            4: "cancelled (CAND)",
        }[self.value]


class Matching(enum.IntEnum):
    NONE = 0
    MATCHED = 1  # MACH
    UNMATCHED = 2  # NMAT

    @property
    def iso(self) -> str | None:
        return {1: "MACH", 2: "NMAT"}.get(self.value)


class Settlement(enum.IntEnum):
    NONE = 0
    PENDING = 1  # PEND
    FAILING = 2  # PENF
    SETTLED = 3  # SETT

    @property
    def iso(self) -> str | None:
        return {1: "PEND", 2: "PENF", 3: "SETT"}.get(self.value)


NOTICES = {
    1: "submitted",
    2: "approved",
    3: "rejected",
    4: "cancelled",
    5: "accepted",
    6: "matching",
    7: "settlement",
}
"""What a ``Notified`` event tells a party (its ``what`` field)."""


class PostTradeRefused(PostTradeError):
    """The post-trade contract refused a step; ``reason`` is its revert phrase."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


class NotYourTurnError(PostTradeRefused):
    """The party is on the route but another step awaits approval."""


class NotOnRouteError(PostTradeRefused):
    """The party is not on the form's route (nor, for the submitter's steps, its submitter)."""


class StaleVersionError(PostTradeRefused):
    """The step names a version (or version hash) that is not the form's current one."""


class FormStateError(PostTradeRefused):
    """The form's status does not allow the step (cancelled, returned, accepted, settled)."""


class UnknownFormError(PostTradeRefused):
    """No form with this id is on the chain."""


class DigestMismatchError(VerificationError):
    """An envelope does not hash to the digest the contract recorded for the version."""


# ------------------------------------------------------------------------------ records
@dataclass(frozen=True)
class PartyInfo:
    """A registered party: the contract's registry entry."""

    name: str
    account: str
    public_key: bytes  # X25519
    role: int

    @property
    def role_name(self) -> str:
        for role, code in ROLE_CODES.items():
            if code == self.role:
                return role.name
        return "OTHER"


@dataclass(frozen=True)
class StepState:
    """One route step of the current version: the party and where it stands."""

    index: int
    party: str
    state: str  # approved, rejected, awaiting, waiting, (not reached when returned/cancelled)
    reason: str | None = None


@dataclass(frozen=True)
class FormState:
    """What the chain shows anyone about a form: no content, only the route and statuses."""

    form_id: str
    key: bytes
    version: int
    version_hash: bytes
    envelope_digest: bytes
    route: tuple[str, ...]
    submitter: str
    step: int
    processing: Processing
    matching: Matching
    settlement: Settlement
    settlement_reason: str | None
    rejected_by: str | None
    rejected_step: int | None
    reject_reason: str | None
    submitted_block: int

    @property
    def awaiting(self) -> str | None:
        """The party whose approval is awaited, if any."""
        if self.processing is Processing.ON_ROUTE:
            return self.route[self.step]
        return None

    @property
    def steps(self) -> tuple[StepState, ...]:
        out = []
        for i, party in enumerate(self.route):
            reason = None
            if i < self.step:
                state = "approved"
            elif self.processing is Processing.REJECTED and i == self.rejected_step:
                state, reason = "rejected", self.reject_reason
            elif self.processing is Processing.ON_ROUTE and i == self.step:
                state = "awaiting"
            elif self.processing is Processing.ON_ROUTE:
                state = "waiting"
            else:
                state = "not reached"
            out.append(StepState(i, party, state, reason))
        return tuple(out)

    def as_dict(self) -> dict[str, Any]:
        return {
            "form_id": self.form_id,
            "version": self.version,
            "version_hash": self.version_hash.hex(),
            "envelope_digest": self.envelope_digest.hex(),
            "route": list(self.route),
            "submitter": self.submitter,
            "processing": self.processing.name.lower(),
            "processing_code": self.processing.iso,
            "matching": self.matching.iso,
            "settlement": self.settlement.iso,
            "settlement_reason": self.settlement_reason,
            "awaiting": self.awaiting,
            "steps": [{"party": s.party, "state": s.state, "reason": s.reason} for s in self.steps],
            "rejection": None
            if self.rejected_by is None
            else {
                "party": self.rejected_by,
                "step": self.rejected_step,
                "reason": self.reject_reason,
            },
        }


@dataclass(frozen=True)
class FormView:
    """A form as one party sees it: the chain's state, the envelope and — for a recipient —
    the form itself; for anyone else ``readable`` is False and ``refusal`` says why."""

    state: FormState
    envelope: bytes
    readable: bool
    form: Form | None = None
    refusal: str | None = None
    narrative: str | None = None  # the last NG's narrative, when readable

    def as_dict(self) -> dict[str, Any]:
        out = self.state.as_dict()
        out["readable"] = self.readable
        out["refusal"] = self.refusal
        out["envelope_size"] = len(self.envelope)
        out["envelope_head"] = self.envelope[:64].hex()
        out["form"] = None if self.form is None else _json_of(self.form)
        if out["rejection"] is not None:
            out["rejection"]["narrative"] = self.narrative
        return out


@dataclass(frozen=True)
class Notification:
    """A ``Notified`` event naming the party: which form, which version, what happened."""

    form_id: str
    version: int
    what: str
    block: int


@dataclass(frozen=True)
class HistoryEntry:
    """One step of a form's life, from the contract's events."""

    block: int
    log_index: int
    event: str  # submitted, approved, rejected, cancelled, matching, settlement
    party: str | None
    version: int | None
    detail: dict[str, Any] = field(default_factory=dict)


def _json_of(form: Form) -> Any:
    import json

    return json.loads(form.encode())


# ------------------------------------------------------------------------------ errors
_REFUSALS: tuple[tuple[str, type[PostTradeRefused]], ...] = (
    ("not your turn", NotYourTurnError),
    ("not on the route", NotOnRouteError),
    ("only the", NotOnRouteError),
    ("stale version", StaleVersionError),
    ("unknown form", UnknownFormError),
    ("the form is", FormStateError),
    ("not matched", FormStateError),
)


def refusal(exc: TransactionRevertedError, what: str, hint: str = "") -> KakehashiError:
    """The typed error for a contract revert (``POSTTRADE: <phrase>``): ``what`` names the
    step, ``hint`` says what to do."""
    text = exc.reason or str(exc)
    reason = text.split("POSTTRADE: ", 1)[1] if "POSTTRADE: " in text else text
    message = f"{what} refused by the contract: {reason}" + (f"; {hint}" if hint else "")
    if "envelope digest mismatch" in reason:
        return DigestMismatchError(message)
    for phrase, cls in _REFUSALS:
        if phrase in reason:
            return cls(message, reason)
    return PostTradeRefused(message, reason)


# ------------------------------------------------------------------------------ deploying
def deploy(w3: Web3, owner: LocalAccount | str) -> Contract:
    """Deploy the post-trade contract from ``owner`` (the operator who registers parties)."""
    return toolchain.deploy(w3, CONTRACT, sender=owner)


def contract_at(w3: Web3, address: str) -> Contract:
    """The post-trade contract at ``address``."""
    abi = toolchain.compile_contract(CONTRACT).abi
    return w3.eth.contract(address=cast(Any, Web3.to_checksum_address(address)), abi=abi)


def register_party(
    w3: Web3,
    contract: Contract,
    owner: LocalAccount | str,
    name: str,
    account: str,
    public_key: bytes,
    role: Role | None,
) -> None:
    """Register ``name`` (its account, X25519 public key, role; None: no post-trade role)."""
    code = ROLE_OTHER if role is None else ROLE_CODES[role]
    try:
        transact(
            w3,
            contract.functions.register_party(name, account, public_key, code),
            sender=owner,
        )
    except TransactionRevertedError as exc:
        raise refusal(exc, f"registering {name!r}") from exc


# ------------------------------------------------------------------------------ the client
class PostTradeLedger:
    """One party's client of the post-trade contract (module docstring)."""

    def __init__(
        self,
        w3: Web3,
        contract: Contract,
        party_name: str,
        evm_account: LocalAccount,
        x25519_private: bytes,
    ) -> None:
        self.w3 = w3
        self.contract = contract
        self.name = party_name
        self.account = evm_account
        self.private_key = x25519_private
        self._parties: dict[str, PartyInfo] = {}
        me = self.party(party_name)
        if me.account.lower() != evm_account.address.lower():
            raise UnknownPartyError(
                f"{party_name!r} is registered with account {me.account}, not "
                f"{evm_account.address}: use the party's own EVM key"
            )

    # -- registry ---------------------------------------------------------------------------
    def party(self, name: str) -> PartyInfo:
        """The registered party ``name``; :class:`UnknownPartyError` when there is none."""
        if name not in self._parties:
            account = self.contract.functions.account_of(name).call()
            if int(account, 16) == 0:
                raise UnknownPartyError(
                    f"no party named {name!r} is registered on the post-trade contract "
                    f"{self.contract.address}"
                )
            self._parties[name] = self._party_at(account)
        return self._parties[name]

    def _party_at(self, account: str) -> PartyInfo:
        raw = self.contract.functions.party(account).call()
        return PartyInfo(name=raw[0], account=raw[1], public_key=bytes(raw[2]), role=raw[3])

    def _name_of(self, account: str) -> str:
        if int(account, 16) == 0:
            return ""
        for info in self._parties.values():
            if info.account.lower() == account.lower():
                return info.name
        info = self._party_at(account)
        self._parties[info.name] = info
        return info.name

    def parties(self) -> list[PartyInfo]:
        """Every registered party, in registration order."""
        events = self.contract.events.PartyRegistered().get_logs(from_block=0)
        out = []
        for event in events:
            info = self._party_at(event["args"]["account"])
            self._parties[info.name] = info
            out.append(info)
        return out

    # -- reading ----------------------------------------------------------------------------
    def state(self, form_id: str) -> FormState:
        """The chain's record of ``form_id`` (anyone may read it: it holds no content)."""
        raw = self.contract.functions.form(form_id_hash(form_id)).call()
        if raw[1] == 0:
            raise UnknownFormError(
                f"no form {form_id!r} on the post-trade contract {self.contract.address}; "
                "check the form id (list shows your forms)",
                "unknown form",
            )
        (
            ref,
            version,
            version_hash,
            digest,
            route,
            submitter,
            step,
            processing,
            matching,
            settlement,
            settlement_reason,
            rejected_by,
            rejected_step,
            reject_reason,
            submitted_block,
        ) = raw
        rejected = int(rejected_by, 16) != 0
        return FormState(
            form_id=ref,
            key=form_id_hash(ref),
            version=version,
            version_hash=bytes(version_hash),
            envelope_digest=bytes(digest),
            route=tuple(self._name_of(a) for a in route),
            submitter=self._name_of(submitter),
            step=step,
            processing=Processing(processing),
            matching=Matching(matching),
            settlement=Settlement(settlement),
            settlement_reason=_code(settlement_reason),
            rejected_by=self._name_of(rejected_by) if rejected else None,
            rejected_step=rejected_step if rejected else None,
            reject_reason=_code(reject_reason) if rejected else None,
            submitted_block=submitted_block,
        )

    def envelope(self, form_id: str, version: int | None = None) -> bytes:
        """The envelope of ``version`` (default: the current one) from its ``FormVersion``
        event, checked against the digest on chain for the current version."""
        state = self.state(form_id)
        version = state.version if version is None else version
        if version == state.version:
            events = self.contract.events.FormVersion().get_logs(
                from_block=state.submitted_block,
                to_block=state.submitted_block,
                argument_filters={"form_id": state.key},
            )
        else:
            events = self.contract.events.FormVersion().get_logs(
                from_block=0, argument_filters={"form_id": state.key}
            )
        for event in events:
            if event["args"]["version"] == version:
                envelope = bytes(event["args"]["envelope"])
                if version == state.version:
                    self._check_digest(state, envelope)
                return envelope
        raise UnknownFormError(
            f"form {form_id!r} has no version {version} on chain (current: {state.version})",
            "unknown form",
        )

    @staticmethod
    def _check_digest(state: FormState, envelope: bytes) -> None:
        digest = hashlib.sha256(envelope).digest()
        if digest != state.envelope_digest:
            raise DigestMismatchError(
                f"the envelope of form {state.form_id!r} version {state.version} hashes to "
                f"{digest.hex()}, not to the digest on chain {state.envelope_digest.hex()}: "
                "it was altered; read it from the chain's FormVersion event instead"
            )

    def show(self, form_id: str, envelope: bytes | None = None) -> FormView:
        """The form as this party sees it (class :class:`FormView`).

        ``envelope``: one handed over by someone else (a peer, a relayer) instead of the
        chain's event; it must hash to the digest on chain (:class:`DigestMismatchError`).
        A recipient's plaintext must hash to the version hash and decode to the form id and
        version on chain (:class:`~kakehashi.errors.VerificationError`). Anyone else gets the
        envelope and ``readable=False`` with the reason.
        """
        state = self.state(form_id)
        if envelope is None:
            envelope = self.envelope(form_id)
        else:
            self._check_digest(state, envelope)
        try:
            opened = sealing.Envelope.decode(envelope)
            if opened.kind is not sealing.Content.FORM:
                raise VerificationError(
                    f"the envelope of form {form_id!r} holds a {opened.kind.name.lower()}, "
                    "not a form"
                )
            plaintext = sealing.open_envelope(opened, self.name, self.private_key)
        except KakehashiError as exc:
            if isinstance(exc, NotARecipientError):
                return FormView(
                    state,
                    envelope,
                    readable=False,
                    refusal=f"not a recipient: {self.name!r} is neither on the route of form "
                    f"{form_id!r} version {state.version} nor its submitter; the content is "
                    "encrypted for them only",
                )
            raise
        if hashlib.sha256(plaintext).digest() != state.version_hash:
            raise VerificationError(
                f"form {form_id!r} version {state.version}: the opened content does not hash "
                "to the version hash on chain; do not approve it and tell the submitter"
            )
        form = Form.decode(plaintext)
        if form.form_id != state.form_id or form.version != state.version:
            raise VerificationError(
                f"the envelope of form {form_id!r} version {state.version} holds form "
                f"{form.form_id!r} version {form.version}"
            )
        if tuple(form.route) != state.route:
            raise VerificationError(
                f"form {form_id!r} version {state.version}: the route inside "
                f"({', '.join(form.route)}) differs from the route on chain "
                f"({', '.join(state.route)})"
            )
        narrative = self._narrative(state) if state.rejected_by else None
        return FormView(state, envelope, readable=True, form=form, narrative=narrative)

    def _narrative(self, state: FormState) -> str | None:
        events = self.contract.events.Rejected().get_logs(
            from_block=state.submitted_block, argument_filters={"form_id": state.key}
        )
        for event in reversed(events):
            if event["args"]["version"] != state.version:
                continue
            sealed = bytes(event["args"]["narrative"])
            if not sealed:
                return ""
            try:
                envelope = sealing.Envelope.decode(sealed)
                if (envelope.kind, envelope.form_id, envelope.version) != (
                    sealing.Content.NARRATIVE,
                    state.form_id,
                    state.version,
                ):
                    return None  # not this version's narrative
                text = sealing.open_envelope(envelope, self.name, self.private_key)
            except KakehashiError:  # not a recipient, or not a sealed narrative
                return None
            return text.decode("utf-8", errors="replace")
        return None

    # -- steps --------------------------------------------------------------------------------
    def _send(self, call: Any, what: str, hint: str = "") -> None:
        try:
            transact(self.w3, call, sender=self.account, description=what)
        except TransactionRevertedError as exc:
            raise refusal(exc, what, hint) from exc

    def _recipients(self, form: Form) -> dict[str, bytes]:
        names = dict.fromkeys([form.submitter, *form.route])
        return {name: self.party(name).public_key for name in names}

    def _seal(self, form: Form) -> tuple[bytes, bytes]:
        envelope = sealing.seal(form.encode(), form.form_id, form.version, self._recipients(form))
        encoded = envelope.encode()
        if len(encoded) > MAX_ENVELOPE:
            raise PostTradeRefused(
                f"form {form.form_id!r} version {form.version} seals to {len(encoded)} bytes, "
                f"more than the contract's {MAX_ENVELOPE}: shorten its texts or its route"
            )
        return encoded, hashlib.sha256(encoded).digest()

    def _route_accounts(self, form: Form) -> list[str]:
        return [self.party(name).account for name in form.route]

    def submit(self, form: Form) -> FormState:
        """Enter ``form`` (version 1, submitted by this party) on its route."""
        if form.submitter != self.name:
            raise NotOnRouteError(
                f"{self.name!r} cannot submit a form whose submitter is {form.submitter!r}"
            )
        if form.version != 1:
            raise StaleVersionError(
                f"a new form is version 1, not {form.version}; use amend for a new version"
            )
        envelope, digest = self._seal(form)
        self._send(
            self.contract.functions.submit(
                form.form_id, form.version_hash, digest, envelope, self._route_accounts(form)
            ),
            f"submitting form {form.form_id!r}",
            "choose another form id",
        )
        return self.state(form.form_id)

    def amend(self, form: Form) -> FormState:
        """The submitter's new version ``form`` (its version one above the chain's), sealed for
        its own route: a party left off that route cannot open it."""
        envelope, digest = self._seal(form)
        self._send(
            self.contract.functions.amend(
                form_id_hash(form.form_id),
                form.version,
                form.version_hash,
                digest,
                envelope,
                self._route_accounts(form),
            ),
            f"amending form {form.form_id!r} to version {form.version}",
            "amend the current version with the next version number (show gives it)",
        )
        return self.state(form.form_id)

    def _decision_version(self, form_id: str, version: int | None) -> tuple[int, bytes]:
        """The version and version hash the party decides on: the one it opens now (checked),
        or the ``version`` it opened before (whose hash the chain's events recorded)."""
        if version is None:
            form = self._readable(form_id)
            return form.version, form.version_hash
        state = self.state(form_id)
        if version == state.version:
            return version, state.version_hash
        for event in self.contract.events.Submitted().get_logs(
            from_block=0, argument_filters={"form_id": state.key}
        ):
            if event["args"]["version"] == version:
                return version, bytes(event["args"]["version_hash"])
        return version, b"\0" * 32

    def _step_hint(self, form_id: str) -> str:
        try:
            state = self.state(form_id)
        except KakehashiError:
            return ""
        if state.processing is Processing.ON_ROUTE:
            return (
                f"form {form_id!r} is at version {state.version}, awaiting "
                f"{state.awaiting!r} (step {state.step + 1} of {len(state.route)})"
            )
        return f"form {form_id!r} version {state.version} is {state.processing.label}"

    def approve(self, form_id: str, version: int | None = None) -> FormState:
        """OK for ``form_id``: by default on the version this call opens and checks; with
        ``version``, on that version (refused when it is no longer the current one)."""
        version, version_hash = self._decision_version(form_id, version)
        self._send_step(
            self.contract.functions.approve(form_id_hash(form_id), version, version_hash),
            f"{self.name}'s approval of form {form_id!r} version {version}",
            form_id,
        )
        return self.state(form_id)

    def reject(
        self, form_id: str, reason: str, narrative: str = "", version: int | None = None
    ) -> FormState:
        """NG for ``form_id`` with the ISO 20022 reason code ``reason`` (four letters) and a
        narrative sealed for the route's parties and the submitter."""
        code = reason.strip().upper()
        code_bytes(code)
        _check_reason(code, self.party(self.name))
        version, version_hash = self._decision_version(form_id, version)
        state = self.state(form_id)
        sealed = b""
        if narrative:
            recipients = {
                name: self.party(name).public_key
                for name in dict.fromkeys([state.submitter, *state.route])
            }
            sealed = sealing.seal(
                narrative.encode(), form_id, version, recipients, kind=sealing.Content.NARRATIVE
            ).encode()
            if len(sealed) > MAX_NARRATIVE:
                raise PostTradeRefused(
                    f"the narrative seals to {len(sealed)} bytes, more than the contract's "
                    f"{MAX_NARRATIVE}: shorten it (the reason code says the rest)"
                )
        self._send_step(
            self.contract.functions.reject(
                form_id_hash(form_id), version, version_hash, code_bytes(code), sealed
            ),
            f"{self.name}'s NG ({code}) on form {form_id!r} version {version}",
            form_id,
        )
        return self.state(form_id)

    def _send_step(self, call: Any, what: str, form_id: str) -> None:
        try:
            transact(self.w3, call, sender=self.account, description=what)
        except TransactionRevertedError as exc:
            raise refusal(exc, what, self._step_hint(form_id)) from exc

    def cancel(self, form_id: str) -> FormState:
        """The submitter cancels ``form_id`` (CAND)."""
        self._send_step(
            self.contract.functions.cancel(form_id_hash(form_id)),
            f"{self.name}'s cancellation of form {form_id!r}",
            form_id,
        )
        return self.state(form_id)

    def record_matching(
        self,
        form_id: str,
        counterpart: str | None,
        matched: bool,
        codes: Sequence[str] = (),
        *,
        version_hash: bytes | None = None,
    ) -> FormState:
        """The CSD records the matching status of ``form_id`` against ``counterpart``'s
        instruction: matched (MACH), or unmatched (NMAT) with the unmatched reason codes —
        of the version whose hash is ``version_hash`` (default: the current one; refused as
        stale when superseded)."""
        other = form_id_hash(counterpart) if counterpart else b"\0" * 32
        bound = version_hash or self.state(form_id).version_hash
        self._send_step(
            self.contract.functions.record_matching(
                form_id_hash(form_id), bound, other, matched, [code_bytes(c) for c in codes]
            ),
            f"{self.name}'s matching status for form {form_id!r}",
            form_id,
        )
        return self.state(form_id)

    def match_counterpart(self, form_id: str, counterpart: str | None) -> MatchResult:
        """The CSD matches ``form_id`` against the counterparty's instruction ``counterpart``
        (both opened with its own key; None: there is none, CMIS) on the CSDR fields and
        records the result: MACH, or NMAT with the unmatched codes."""
        ours = self._readable(form_id)
        if counterpart is None:
            result = MatchResult.missing_counterparty()
        else:
            theirs = self._readable(counterpart)
            if ours.instruction.direction is Direction.DELI:
                result = match(ours.instruction, theirs.instruction)
            else:
                result = match(theirs.instruction, ours.instruction)
        codes = [c.value for c in result.codes]
        self.record_matching(
            form_id, counterpart, result.matched, codes, version_hash=ours.version_hash
        )
        return result

    def _readable(self, form_id: str) -> Form:
        view = self.show(form_id)
        if view.form is None:
            raise NotOnRouteError(
                f"{self.name!r} cannot open form {form_id!r}: {view.refusal}", "not on the route"
            )
        return view.form

    def record_settlement(
        self,
        form_id: str,
        status: Settlement,
        reason: str | None = None,
        *,
        evidence: bytes | None = None,
        version_hash: bytes | None = None,
    ) -> FormState:
        """The CSD records the settlement status: PEND, PENF (with a reason code) or SETT, of
        the version whose hash is ``version_hash`` (default: the current one); ``evidence``:
        the cross transaction's id (32 bytes), for anyone to look up."""
        code = code_bytes(reason) if reason else b"\0" * 4
        if evidence is not None and len(evidence) != 32:
            raise PostTradeError("the settlement's evidence is a 32-byte cross transaction id")
        bound = version_hash or self.state(form_id).version_hash
        call = self.contract.functions.record_settlement(
            form_id_hash(form_id), bound, int(status), code, evidence or b"\0" * 32
        )
        self._send_step(
            call,
            f"{self.name}'s settlement status {status.iso} for form {form_id!r}",
            form_id,
        )
        return self.state(form_id)

    # -- notifications --------------------------------------------------------------------------
    def inbox(self, from_block: int = 0) -> list[Notification]:
        """Every ``Notified`` event naming this party, oldest first."""
        events = self.contract.events.Notified().get_logs(
            from_block=from_block, argument_filters={"party": self.account.address}
        )
        refs: dict[bytes, str] = {}
        out = []
        for event in events:
            key = bytes(event["args"]["form_id"])
            if key not in refs:
                refs[key] = self.contract.functions.form(key).call()[0]
            out.append(
                Notification(
                    form_id=refs[key],
                    version=event["args"]["version"],
                    what=NOTICES.get(event["args"]["what"], str(event["args"]["what"])),
                    block=event["blockNumber"],
                )
            )
        return out

    def forms(self) -> list[FormState]:
        """The forms this party was notified of (on a route or submitted), newest first."""
        seen = dict.fromkeys(n.form_id for n in reversed(self.inbox()))
        return [self.state(form_id) for form_id in seen]

    def _sender_of(self, tx_hash: bytes) -> str:
        return str(self.w3.eth.get_transaction(cast(Any, tx_hash))["from"])

    def history(self, form_id: str) -> list[HistoryEntry]:
        """Every step of ``form_id`` on chain, in order: what happened, who, which version."""
        state = self.state(form_id)
        filters = {"form_id": state.key}
        out: list[HistoryEntry] = []
        for name, event_type in (
            ("submitted", self.contract.events.Submitted),
            ("approved", self.contract.events.Approved),
            ("rejected", self.contract.events.Rejected),
            ("cancelled", self.contract.events.Cancelled),
            ("matching", self.contract.events.MatchingRecorded),
            ("settlement", self.contract.events.SettlementRecorded),
        ):
            for event in event_type().get_logs(from_block=0, argument_filters=filters):
                out.append(_entry(name, event, self._name_of, self._sender_of, state))
        out.sort(key=lambda e: (e.block, e.log_index))
        return out


def _entry(name: str, event: Any, name_of: Any, sender_of: Any, state: FormState) -> HistoryEntry:
    args = event["args"]
    detail: dict[str, Any] = {}
    party: str | None = None
    if name == "submitted":
        party = name_of(args["submitter"])
        detail = {
            "route": [name_of(a) for a in args["route"]],
            "version_hash": bytes(args["version_hash"]).hex(),
        }
    elif name in ("approved", "rejected"):
        party = name_of(args["party"])
        detail = {"step": args["step"], "version_hash": bytes(args["version_hash"]).hex()}
        if name == "rejected":
            detail["reason"] = _code(args["reason"])
    elif name == "cancelled":
        party = state.submitter
    elif name in ("matching", "settlement"):
        # the events do not name the CSD: the transaction's sender is it
        party = name_of(sender_of(event["transactionHash"]))
    if name == "matching":
        detail = {"matched": args["matched"], "codes": [_code(c) for c in args["codes"]]}
        detail["version_hash"] = bytes(args["version_hash"]).hex()
    elif name == "settlement":
        detail = {"status": Settlement(args["status"]).iso, "reason": _code(args["reason"])}
        detail["version_hash"] = bytes(args["version_hash"]).hex()
        evidence = bytes(args["evidence"])
        detail["evidence"] = None if evidence == b"\0" * 32 else evidence.hex()
    return HistoryEntry(
        block=event["blockNumber"],
        log_index=event["logIndex"],
        event=name,
        party=party,
        version=args.get("version"),
        detail=detail,
    )


def _code(raw: bytes) -> str | None:
    """The four-letter code in a ``bytes4`` (None when empty)."""
    raw = bytes(raw)
    return None if raw == b"\0" * 4 else code_from_bytes(raw)


def _check_reason(code: str, party: PartyInfo) -> None:
    """Refuse, before sending, a reason code the party's role may not give (codes.py)."""
    if party.role_name in Role.__members__:
        rejection_reason(code, Role(party.role_name))
