"""Matching of the two sides' instructions (``kakehashi.apps.posttrade.matching``): every CSDR
art. 5 field reported with its ISO 20022 unmatched code, the art. 6 tolerance bands at their
edges, symmetry, and free-of-payment instructions."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kakehashi.apps.posttrade.codes import (
    Direction,
    MatchingStatus,
    Payment,
    QuantityType,
    UnmatchedReason,
)
from kakehashi.apps.posttrade.form import Instruction
from kakehashi.apps.posttrade.matching import (
    MatchResult,
    Mismatch,
    amounts_match,
    match,
    tolerance,
)
from kakehashi.errors import PostTradeError
from tests.apps.posttrade.test_form import instruction, instructions


def receiving(**changes: Any) -> Instruction:
    """The receiving side's instruction for the trade of ``instruction()``."""
    fields: dict[str, Any] = {
        "sender_reference": "MS-778",
        "direction": Direction.RECE,
        "counterparty": "Thames Asset Management",
        "safekeeping_account": "MS-OMNIBUS-1",
    }
    fields.update(changes)
    return instruction(**fields)


def test_the_two_sides_of_one_trade_match() -> None:
    result = match(instruction(), receiving())
    assert result == MatchResult(matched=True, mismatches=())
    assert result.status is MatchingStatus.MACH
    assert result.codes == ()


def test_references_counterparty_price_and_account_are_not_matching_fields() -> None:
    other = receiving(
        sender_reference="X-1",
        counterparty="Someone Else",
        deal_price=Decimal("99"),
        safekeeping_account="OTHER",
    )
    assert match(instruction(), other).matched


@pytest.mark.parametrize(
    ("changes", "code", "field", "theirs"),
    [
        (
            {"settlement_date": date(2026, 12, 3)},
            UnmatchedReason.DDAT,
            "settlement_date",
            "2026-12-03",
        ),
        ({"trade_date": date(2026, 11, 29)}, UnmatchedReason.DTRD, "trade_date", "2026-11-29"),
        ({"currency": "USD"}, UnmatchedReason.DMON, "currency", "USD"),
        (
            {"settlement_amount": Decimal("150300")},
            UnmatchedReason.DMON,
            "settlement_amount",
            "150300",
        ),
        ({"quantity": Decimal(999)}, UnmatchedReason.DQUA, "quantity", "999"),
        ({"quantity_type": QuantityType.FAMT}, UnmatchedReason.DQUA, "quantity_type", "FAMT"),
        ({"direction": Direction.DELI}, UnmatchedReason.DELN, "direction", "DELI"),
        ({"isin": "JP3633400001"}, UnmatchedReason.DSEC, "isin", "JP3633400001"),
        ({"delivering_agent": "HKTOJPJT"}, UnmatchedReason.ICAG, "delivering_agent", "HKTOJPJT"),
        (
            {"receiving_agent": "MNTOJPJTXXX"},
            UnmatchedReason.ICAG,
            "receiving_agent",
            "MNTOJPJTXXX",
        ),
        (
            {"place_of_settlement": "EUROBEBB"},
            UnmatchedReason.DEPT,
            "place_of_settlement",
            "EUROBEBB",
        ),
        (
            {"payment": Payment.FREE, "settlement_amount": Decimal(0)},
            UnmatchedReason.FRAP,
            "payment",
            "FREE",
        ),
    ],
)
def test_each_matching_field_is_reported_with_its_code(
    changes: dict[str, Any], code: UnmatchedReason, field: str, theirs: str
) -> None:
    ours = instruction().to_json()[field]
    result = match(instruction(), receiving(**changes))
    assert not result.matched
    assert result.status is MatchingStatus.NMAT
    assert result.mismatches == (Mismatch(code, field, ours, theirs),)
    assert result.codes == (code,)


def test_two_receiving_instructions_do_not_match() -> None:
    result = match(receiving(), receiving())
    assert result.mismatches == (Mismatch(UnmatchedReason.DELN, "direction", "RECE", "RECE"),)


def test_several_disagreements_are_all_listed_in_field_order() -> None:
    result = match(
        instruction(),
        receiving(isin="JP3633400001", quantity=Decimal(1), settlement_date=date(2026, 12, 9)),
    )
    assert [m.code for m in result.mismatches] == [
        UnmatchedReason.DDAT,
        UnmatchedReason.DQUA,
        UnmatchedReason.DSEC,
    ]


def test_codes_are_listed_once_even_when_two_fields_share_one() -> None:
    result = match(
        instruction(), receiving(delivering_agent="AAAAJPJT", receiving_agent="BBBBJPJT")
    )
    assert len(result.mismatches) == 2
    assert result.codes == (UnmatchedReason.ICAG,)


def test_free_of_payment_instructions_match_without_a_cash_leg() -> None:
    free = {"payment": Payment.FREE, "settlement_amount": Decimal(0)}
    assert match(instruction(**free), receiving(**free, currency="JPY")).matched


def test_a_missing_counterparty_instruction_is_cmis() -> None:
    result = MatchResult.missing_counterparty()
    assert not result.matched
    assert result.codes == (UnmatchedReason.CMIS,)


def test_a_match_result_cannot_contradict_itself() -> None:
    with pytest.raises(PostTradeError, match="matched exactly when it lists no mismatches"):
        MatchResult(matched=False)
    with pytest.raises(PostTradeError):
        MatchResult(matched=True, mismatches=MatchResult.missing_counterparty().mismatches)


# ---------------------------------------------------------------------------- tolerance


@pytest.mark.parametrize(
    ("ours", "theirs", "matched"),
    [
        # EUR 2 up to and including EUR 100,000
        ("100000", "100002", True),
        ("100000", "99998", True),
        ("100000", "100002.01", False),
        ("100000", "99997.99", False),
        ("50", "52", True),
        ("50", "52.00001", False),
        # EUR 25 only when both amounts are above EUR 100,000
        ("100000.01", "100025.01", True),
        ("100000.01", "100025.02", False),
        ("100000", "100025", False),  # the smaller amount is not above 100,000: EUR 2
        ("100001", "100026", True),
        ("150250", "150275", True),
        ("150250", "150275.00001", False),
        ("150250", "150225", True),
        ("1000000", "1000000", True),
    ],
)
def test_tolerance_bands_at_their_edges(ours: str, theirs: str, matched: bool) -> None:
    result = match(
        instruction(settlement_amount=Decimal(ours)),
        receiving(settlement_amount=Decimal(theirs)),
    )
    assert result.matched is matched
    assert amounts_match(Decimal(ours), Decimal(theirs)) is matched
    if not matched:
        assert result.mismatches == (
            Mismatch(UnmatchedReason.DMON, "settlement_amount", ours, theirs),
        )


def test_the_same_bands_apply_to_other_currencies_as_they_are() -> None:
    assert match(
        instruction(currency="JPY", settlement_amount=Decimal(22_500_000)),
        receiving(currency="JPY", settlement_amount=Decimal(22_500_025)),
    ).matched
    assert not match(
        instruction(currency="JPY", settlement_amount=Decimal(22_500_000)),
        receiving(currency="JPY", settlement_amount=Decimal(22_500_026)),
    ).matched


_amounts = st.decimals(
    min_value=Decimal("0.01"), max_value=Decimal(10**7), places=2, allow_nan=False
)


@given(_amounts, st.decimals(min_value=Decimal(-30), max_value=Decimal(30), places=2))
def test_amounts_match_exactly_within_the_band_of_the_smaller(
    amount: Decimal, difference: Decimal
) -> None:
    other = amount + difference
    if other <= 0:
        return
    band = Decimal(25) if min(amount, other) > 100_000 else Decimal(2)
    assert tolerance(amount, other) == band
    assert amounts_match(amount, other) is (abs(difference) <= band)
    assert amounts_match(amount, other) is amounts_match(other, amount)


# ---------------------------------------------------------------------------- symmetry


def _swapped(result: MatchResult) -> tuple[Mismatch, ...]:
    return tuple(Mismatch(m.code, m.field, m.theirs, m.ours) for m in result.mismatches)


@st.composite
def pairs(draw: st.DrawFn) -> tuple[Instruction, Instruction]:
    """Two instructions that often agree (the second is the first with a few changes)."""
    first = draw(instructions())
    changes: dict[str, Any] = {"direction": draw(st.sampled_from(Direction))}
    second_random = draw(instructions())
    for field in draw(st.sets(st.sampled_from(sorted(first.to_json())), max_size=3)):
        changes[field] = getattr(second_random, field)
    if "payment" in changes or "settlement_amount" in changes:
        changes["payment"] = changes.get("payment", first.payment)
        changes["settlement_amount"] = (
            Decimal(0)
            if changes["payment"] is Payment.FREE
            else max(Decimal(1), first.settlement_amount + draw(st.integers(-30, 30)))
        )
    if changes.get("trade_date", first.trade_date) > changes.get(
        "settlement_date", first.settlement_date
    ):
        changes["settlement_date"] = changes.get("trade_date", first.trade_date)
    fields = {**{name: getattr(first, name) for name in first.to_json()}, **changes}
    return first, Instruction(**fields)


@settings(max_examples=300, deadline=None)
@given(pairs())
def test_matching_is_symmetric(pair: tuple[Instruction, Instruction]) -> None:
    one, other = pair
    forward, backward = match(one, other), match(other, one)
    assert forward.matched is backward.matched
    assert backward.mismatches == _swapped(forward)
    assert forward.matched is (not forward.mismatches)


@settings(max_examples=100, deadline=None)
@given(instructions())
def test_an_instruction_matches_its_mirror(one: Instruction) -> None:
    mirror_direction = Direction.RECE if one.direction is Direction.DELI else Direction.DELI
    fields = {name: getattr(one, name) for name in one.to_json()}
    mirror = Instruction(**{**fields, "direction": mirror_direction})
    assert match(one, mirror).matched
    assert match(one, one).codes == (UnmatchedReason.DELN,)
