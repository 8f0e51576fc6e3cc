"""Matching of the delivering and the receiving side's instructions (CSDR RTS 2018/1229).

:func:`match` compares the mandatory matching fields of art. 5 and reports each disagreement
with its ISO 20022 unmatched reason code:

=====================================  ======================================  ====
field                                  rule                                    code
=====================================  ======================================  ====
payment (instruction type)             equal                                   FRAP
settlement_date (intended)             equal                                   DDAT
trade_date                             equal                                   DTRD
currency                               equal, when both are against payment    DMON
settlement_amount                      within the art. 6 tolerance, when both  DMON
                                       are against payment
quantity, quantity_type                equal                                   DQUA
direction                              one DELI and one RECE                   DELN
isin                                   equal                                   DSEC
delivering_agent, receiving_agent      equal (the counterparties, by BIC)      ICAG
place_of_settlement                    equal                                   DEPT
=====================================  ======================================  ====

Settlement amount tolerance (art. 6): EUR 25 when the amount is above EUR 100,000, EUR 2
otherwise. The band is chosen on the *smaller* of the two amounts, so one side cannot widen
the tolerance by overstating its amount, and the rule reads the same whichever side is asked.
Amounts in other currencies are held to the same bands applied to the amount as it is (no
conversion to euro: the form carries no exchange rate), which is stricter than the regulation
for currencies worth less than the euro. ``counterparty`` (a free-text name), the sender's
references, the deal price and the safekeeping account are not matching fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from kakehashi.apps.posttrade.codes import (
    Direction,
    MatchingStatus,
    Payment,
    UnmatchedReason,
)
from kakehashi.apps.posttrade.form import Instruction
from kakehashi.errors import PostTradeError

TOLERANCE_THRESHOLD = Decimal(100_000)
LOW_TOLERANCE = Decimal(2)
HIGH_TOLERANCE = Decimal(25)


class Mismatch(NamedTuple):
    """One disagreeing matching field: its unmatched code and both sides' values (as text)."""

    code: UnmatchedReason
    field: str
    ours: str
    theirs: str


@dataclass(frozen=True)
class MatchResult:
    """The outcome of matching two instructions: matched, or the list of disagreements."""

    matched: bool
    mismatches: tuple[Mismatch, ...] = ()

    def __post_init__(self) -> None:
        if self.matched == bool(self.mismatches):
            raise PostTradeError(
                "a match result is matched exactly when it lists no mismatches "
                f"(matched={self.matched}, {len(self.mismatches)} mismatches)"
            )

    @property
    def status(self) -> MatchingStatus:
        """MACH when matched, NMAT otherwise."""
        return MatchingStatus.MACH if self.matched else MatchingStatus.NMAT

    @property
    def codes(self) -> tuple[UnmatchedReason, ...]:
        """The distinct unmatched codes, in the order the fields are checked."""
        return tuple(dict.fromkeys(mismatch.code for mismatch in self.mismatches))

    @classmethod
    def missing_counterparty(cls) -> MatchResult:
        """Unmatched because the counterparty's instruction is not there (CMIS)."""
        missing = Mismatch(UnmatchedReason.CMIS, "instruction", "present", "missing")
        return cls(matched=False, mismatches=(missing,))


def tolerance(ours: Decimal, theirs: Decimal) -> Decimal:
    """The art. 6 settlement-amount tolerance for two amounts (band of the smaller amount)."""
    return HIGH_TOLERANCE if min(ours, theirs) > TOLERANCE_THRESHOLD else LOW_TOLERANCE


def amounts_match(ours: Decimal, theirs: Decimal) -> bool:
    """Whether two settlement amounts agree within the art. 6 tolerance (bounds included)."""
    return abs(ours - theirs) <= tolerance(ours, theirs)


def match(delivering: Instruction, receiving: Instruction) -> MatchResult:
    """Match two instructions on the CSDR RTS 2018/1229 art. 5 fields (see the module doc).

    Symmetric: swapping the arguments gives the same verdict and the same mismatches with
    ``ours`` and ``theirs`` swapped. ``ours`` is always ``delivering``'s value.
    """
    ours, theirs = delivering.to_json(), receiving.to_json()
    found: list[Mismatch] = []

    def differs(code: UnmatchedReason, *fields: str) -> None:
        for field in fields:
            if ours[field] != theirs[field]:
                found.append(Mismatch(code, field, ours[field], theirs[field]))

    differs(UnmatchedReason.FRAP, "payment")
    differs(UnmatchedReason.DDAT, "settlement_date")
    differs(UnmatchedReason.DTRD, "trade_date")
    if delivering.payment is Payment.APMT and receiving.payment is Payment.APMT:
        differs(UnmatchedReason.DMON, "currency")
        if not amounts_match(delivering.settlement_amount, receiving.settlement_amount):
            found.append(
                Mismatch(
                    UnmatchedReason.DMON,
                    "settlement_amount",
                    ours["settlement_amount"],
                    theirs["settlement_amount"],
                )
            )
    differs(UnmatchedReason.DQUA, "quantity_type", "quantity")
    if {delivering.direction, receiving.direction} != {Direction.DELI, Direction.RECE}:
        found.append(
            Mismatch(UnmatchedReason.DELN, "direction", ours["direction"], theirs["direction"])
        )
    differs(UnmatchedReason.DSEC, "isin")
    differs(UnmatchedReason.ICAG, "delivering_agent", "receiving_agent")
    differs(UnmatchedReason.DEPT, "place_of_settlement")
    return MatchResult(matched=not found, mismatches=tuple(found))
