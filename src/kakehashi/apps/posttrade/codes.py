"""ISO 20022 codes of the post-trade workflow (sese.023 instruction, sese.024 status).

Each code is a four-letter ISO 20022 code (``str`` enums, so ``Direction.DELI == "DELI"``), and
:func:`meaning` gives its one-line meaning for screens and logs. The three status dimensions are
kept apart, as sese.024 keeps them: processing (the form on its route), matching (against the
counterparty's instruction) and settlement. :data:`REJECTION_REASONS` says which role may give
which reason when it rejects a form (NG).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

from kakehashi.errors import PostTradeError


class Role(StrEnum):
    """The part a party plays on a trade's approval route (issue 8)."""

    ASSET_MANAGER = "ASSET_MANAGER"
    CUSTODIAN = "CUSTODIAN"
    SECURITIES_COMPANY = "SECURITIES_COMPANY"
    CSD = "CSD"


class Direction(StrEnum):
    """sese.023 SecuritiesMovementType: which way the securities move for the sender."""

    DELI = "DELI"
    RECE = "RECE"


class Payment(StrEnum):
    """sese.023 Payment: securities against cash, or free of payment."""

    APMT = "APMT"
    FREE = "FREE"


class QuantityType(StrEnum):
    """sese.023 FinancialInstrumentQuantity choice: a number of units or a face amount."""

    UNIT = "UNIT"
    FAMT = "FAMT"


class ProcessingStatus(StrEnum):
    """sese.024 ProcessingStatus: where the form stands on its route."""

    PPRC = "PPRC"
    PACK = "PACK"
    REJT = "REJT"
    CAND = "CAND"


class MatchingStatus(StrEnum):
    """sese.024 MatchingStatus: whether the two sides' instructions agree."""

    MACH = "MACH"
    NMAT = "NMAT"


class SettlementStatus(StrEnum):
    """sese.024 SettlementStatus: pending, failing (past the settlement date) or settled."""

    PEND = "PEND"
    PENF = "PENF"
    SETT = "SETT"


class RejectionReason(StrEnum):
    """sese.024 rejection reasons a route party gives with an NG."""

    MONY = "MONY"
    CASH = "CASH"
    SAFE = "SAFE"
    DDAT = "DDAT"
    LACK = "LACK"
    DQUA = "DQUA"
    DSEC = "DSEC"
    CMIS = "CMIS"
    DMON = "DMON"
    DEPT = "DEPT"
    NCRR = "NCRR"
    DTRD = "DTRD"
    REFE = "REFE"
    OTHR = "OTHR"


class UnmatchedReason(StrEnum):
    """sese.024 unmatched reasons: which matching field disagrees (CSDR RTS 2018/1229 art. 5)."""

    CMIS = "CMIS"
    DDAT = "DDAT"
    DTRD = "DTRD"
    DMON = "DMON"
    NCRR = "NCRR"
    DQUA = "DQUA"
    DSEC = "DSEC"
    DELN = "DELN"
    FRAP = "FRAP"
    DEPT = "DEPT"
    ICAG = "ICAG"


class PendingReason(StrEnum):
    """sese.024 pending / failing reasons: why a matched instruction has not settled."""

    LACK = "LACK"
    MONY = "MONY"
    CLAC = "CLAC"
    CMON = "CMON"


_MEANINGS: Mapping[str, str] = MappingProxyType(
    {
        # roles
        "ASSET_MANAGER": "asset manager: enters the trade and its route",
        "CUSTODIAN": "custodian bank: checks the settlement instruction and the cash",
        "SECURITIES_COMPANY": "securities company: checks the securities balance",
        "CSD": "central securities depository: approves last and settles",
        # instruction
        "DELI": "deliver: the sender delivers the securities",
        "RECE": "receive: the sender receives the securities",
        "APMT": "against payment: securities move against cash",
        "FREE": "free of payment: securities move without cash",
        "UNIT": "quantity is a number of units (shares)",
        "FAMT": "quantity is a face amount (bonds)",
        # statuses
        "PPRC": "pending processing: the form is on its approval route",
        "PACK": "accepted: every party on the route approved",
        "REJT": "rejected: a party on the route answered NG; back with the submitter",
        "CAND": "cancelled by the submitter",
        "MACH": "matched with the counterparty's instruction",
        "NMAT": "unmatched: the counterparty's instruction disagrees or is missing",
        "PEND": "pending settlement",
        "PENF": "failing: settlement was attempted and did not complete",
        "SETT": "settled",
        # reasons (rejection, unmatched, pending)
        "MONY": "insufficient money: the cash is not there",
        "CASH": "cash account missing or invalid",
        "SAFE": "safekeeping account missing or invalid",
        "DDAT": "settlement date invalid or differs",
        "LACK": "lack of securities: the securities are not there",
        "DQUA": "quantity invalid or differs",
        "DSEC": "security (ISIN) invalid or differs",
        "CMIS": "the counterparty's settlement instruction is missing",
        "DMON": "settlement amount or currency invalid or differs",
        "DEPT": "place of settlement invalid or differs",
        "NCRR": "common reference missing or differs",
        "DTRD": "trade date invalid or differs",
        "REFE": "sender's reference missing, invalid or a duplicate",
        "OTHR": "other reason: see the narrative",
        "DELN": "delivery / receipt: the two instructions are not one DELI and one RECE",
        "FRAP": "free / against payment differs",
        "ICAG": "delivering or receiving agent differs (counterparties)",
        "CLAC": "the counterparty lacks the securities",
        "CMON": "the counterparty lacks the money",
    }
)

_ANYONE = frozenset({RejectionReason.DTRD, RejectionReason.REFE, RejectionReason.OTHR})

REJECTION_REASONS: Mapping[Role, frozenset[RejectionReason]] = MappingProxyType(
    {
        Role.ASSET_MANAGER: _ANYONE,
        Role.CUSTODIAN: _ANYONE
        | {RejectionReason.MONY, RejectionReason.CASH, RejectionReason.SAFE, RejectionReason.DDAT},
        Role.SECURITIES_COMPANY: _ANYONE
        | {RejectionReason.LACK, RejectionReason.DQUA, RejectionReason.DSEC},
        Role.CSD: _ANYONE
        | {RejectionReason.CMIS, RejectionReason.DMON, RejectionReason.DEPT, RejectionReason.NCRR},
    }
)
"""Which rejection reasons each role may give (issue 8, workflow step 3)."""


def meaning(code: str) -> str:
    """The one-line meaning of an ISO 20022 code or role used here."""
    try:
        return _MEANINGS[str(code)]
    except KeyError:
        raise PostTradeError(f"unknown code {code!r}: not one of {', '.join(_MEANINGS)}") from None


def rejection_reasons_for(role: Role) -> tuple[RejectionReason, ...]:
    """The reasons ``role`` may give with an NG, in declaration order (for a reason list)."""
    allowed = REJECTION_REASONS[Role(role)]
    return tuple(reason for reason in RejectionReason if reason in allowed)


def rejection_reason(code: str, role: Role) -> RejectionReason:
    """Parse ``code`` as a rejection reason that ``role`` may give, or raise PostTradeError."""
    try:
        reason = RejectionReason(code)
    except ValueError:
        known = ", ".join(RejectionReason)
        raise PostTradeError(
            f"{code!r} is not a rejection reason code; use one of {known}"
        ) from None
    if reason not in REJECTION_REASONS[Role(role)]:
        allowed = ", ".join(rejection_reasons_for(role))
        raise PostTradeError(
            f"a party with role {Role(role).value} may not reject with {reason.value} "
            f"({meaning(reason)}); use one of {allowed}"
        )
    return reason


def code_bytes(code: str) -> bytes:
    """A four-letter code as the ``bytes4`` the contract stores."""
    raw = str(code).encode("ascii")
    if len(raw) != 4 or not raw.isalpha() or not raw.isupper():
        raise PostTradeError(f"{code!r} is not a four-letter ISO 20022 code")
    return raw


def code_from_bytes(raw: bytes) -> str:
    """The four-letter code held in a contract's ``bytes4`` (inverse of :func:`code_bytes`)."""
    if len(raw) != 4 or not raw.isalpha() or not raw.isupper():
        raise PostTradeError(f"{raw!r} is not a four-letter ISO 20022 code")
    return raw.decode("ascii")
