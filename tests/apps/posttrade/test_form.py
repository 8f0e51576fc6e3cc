"""The post-trade form (``kakehashi.apps.posttrade.form``): sese.023 field validation, the
canonical encoding (round trip, and refusal of every other spelling) and the version hash."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kakehashi.apps.posttrade.codes import (
    Direction,
    MatchingStatus,
    Payment,
    PendingReason,
    ProcessingStatus,
    QuantityType,
    RejectionReason,
    Role,
    SettlementStatus,
    UnmatchedReason,
    code_bytes,
    code_from_bytes,
    meaning,
    rejection_reason,
    rejection_reasons_for,
)
from kakehashi.apps.posttrade.form import (
    MAX_ROUTE,
    SCHEMA,
    Form,
    Instruction,
    form_id_hash,
    is_valid_isin,
    isin_check_digit,
)
from kakehashi.errors import FormError, PostTradeError

ROUTE = ("Hokuto Custody Bank", "Minato Securities", "JASDEC")
SUBMITTER = "Thames Asset Management"


def instruction(**changes: Any) -> Instruction:
    """A valid delivering instruction (Apple shares against euro), with ``changes`` applied."""
    fields: dict[str, Any] = {
        "sender_reference": "TAM-2026-0001",
        "direction": Direction.DELI,
        "payment": Payment.APMT,
        "trade_date": date(2026, 11, 30),
        "settlement_date": date(2026, 12, 2),
        "isin": "US0378331005",
        "quantity": Decimal(1000),
        "quantity_type": QuantityType.UNIT,
        "deal_price": Decimal("150.25"),
        "settlement_amount": Decimal("150250.00"),
        "currency": "EUR",
        "safekeeping_account": "SAFE 0042",
        "delivering_agent": "HKTOJPJTXXX",
        "receiving_agent": "MNTOJPJT",
        "place_of_settlement": "JASDJPJT",
        "counterparty": "Minato Securities",
    }
    fields.update(changes)
    return Instruction(**fields)


def form(**changes: Any) -> Form:
    fields: dict[str, Any] = {
        "form_id": "TRADE-20261130-001",
        "version": 1,
        "instruction": instruction(),
        "route": ROUTE,
        "submitter": SUBMITTER,
    }
    fields.update(changes)
    return Form(**fields)


# ---------------------------------------------------------------------------- strategies

_names = st.text(
    alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "Zs")),
    min_size=1,
    max_size=30,
).filter(lambda name: name == name.strip() and name.isprintable())
_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,20}", fullmatch=True)
_bics = st.from_regex(r"[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?", fullmatch=True)


@st.composite
def isins(draw: st.DrawFn) -> str:
    body = draw(st.from_regex(r"[A-Z]{2}[A-Z0-9]{9}", fullmatch=True))
    return body + str(isin_check_digit(body))


def _decimals(fraction_digits: int) -> st.SearchStrategy[Decimal]:
    return st.decimals(
        min_value=Decimal(1) / 10**fraction_digits,
        max_value=Decimal(10**9),
        places=fraction_digits,
        allow_nan=False,
        allow_infinity=False,
    )


@st.composite
def instructions(draw: st.DrawFn) -> Instruction:
    trade = draw(st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 1, 1)))
    payment = draw(st.sampled_from(Payment))
    amount = draw(_decimals(5)) if payment is Payment.APMT else Decimal(0)
    return Instruction(
        sender_reference=draw(_ids),
        direction=draw(st.sampled_from(Direction)),
        payment=payment,
        trade_date=trade,
        settlement_date=trade + timedelta(days=draw(st.integers(0, 30))),
        isin=draw(isins()),
        quantity=draw(_decimals(6)),
        quantity_type=draw(st.sampled_from(QuantityType)),
        deal_price=draw(_decimals(8)),
        settlement_amount=amount,
        currency=draw(st.from_regex(r"[A-Z]{3}", fullmatch=True)),
        safekeeping_account=draw(
            st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,20}", fullmatch=True)
        ),
        delivering_agent=draw(_bics),
        receiving_agent=draw(_bics),
        place_of_settlement=draw(_bics),
        counterparty=draw(_names),
    )


@st.composite
def forms(draw: st.DrawFn) -> Form:
    return Form(
        form_id=draw(_ids),
        version=draw(st.integers(1, 2**64 - 1)),
        instruction=draw(instructions()),
        route=tuple(draw(st.lists(_names, min_size=1, max_size=MAX_ROUTE, unique=True))),
        submitter=draw(_names),
    )


# ---------------------------------------------------------------------------- ISIN


@pytest.mark.parametrize(
    "isin", ["US0378331005", "JP3633400001", "DE0007164600", "GB0002634946", "AU0000XVGZA3"]
)
def test_published_isins_have_valid_check_digits(isin: str) -> None:
    assert is_valid_isin(isin)
    assert isin_check_digit(isin[:11]) == int(isin[11])


@pytest.mark.parametrize("isin", ["US0378331006", "us0378331005", "US037833100", "1S0378331005"])
def test_malformed_or_wrong_check_digit_isins_are_refused(isin: str) -> None:
    assert not is_valid_isin(isin)
    with pytest.raises(FormError) as caught:
        instruction(isin=isin)
    assert caught.value.field == "isin"


def test_wrong_check_digit_message_gives_the_right_digit() -> None:
    with pytest.raises(FormError, match="ISO 6166 gives 5"):
        instruction(isin="US0378331009")


@given(isins())
def test_any_single_digit_change_breaks_the_check_digit(isin: str) -> None:
    # Luhn detects every single-digit substitution in the check digit itself.
    for digit in "0123456789":
        if digit != isin[11]:
            assert not is_valid_isin(isin[:11] + digit)


# ---------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("sender_reference", "", "is not a reference"),
        ("sender_reference", "has space", "is not a reference"),
        ("direction", "DELIVER", "is not DELI or RECE"),
        ("direction", 1, "is not DELI or RECE"),
        ("payment", "XXXX", "is not APMT or FREE"),
        ("quantity_type", "units", "is not UNIT or FAMT"),
        ("payment", Direction.DELI, "is not APMT or FREE"),
        ("trade_date", datetime(2026, 11, 30, 9, 0), "must be a datetime.date"),
        ("trade_date", "2026-11-30", "must be a datetime.date"),
        ("settlement_date", date(2026, 11, 29), "before the trade date"),
        ("quantity", Decimal(0), "must be above zero"),
        ("quantity", Decimal(-5), "must be above zero"),
        ("quantity", 1000, "must be a Decimal"),
        ("quantity", 1000.0, "must be a Decimal"),
        ("quantity", Decimal("NaN"), "not a finite number"),
        ("quantity", Decimal("Infinity"), "not a finite number"),
        ("quantity", Decimal("1E+18"), "more than 18 digits"),
        ("quantity", Decimal("1E-18"), "more than 17 decimal places"),
        ("deal_price", Decimal(0), "must be above zero"),
        ("settlement_amount", Decimal("-1"), "at least zero"),
        ("settlement_amount", Decimal("0"), "above zero against payment"),
        ("settlement_amount", Decimal("1.000001"), "more than 5 decimal places"),
        ("currency", "eur", "ISO 4217"),
        ("currency", "EURO", "ISO 4217"),
        ("safekeeping_account", " lead", "is not an account"),
        ("safekeeping_account", "A" * 36, "is not an account"),
        ("delivering_agent", "HKTOJPJ", "is not a BIC"),
        ("receiving_agent", "MNTOJPJTXX", "is not a BIC"),
        ("place_of_settlement", "jasdjpjt", "is not a BIC"),
        ("counterparty", "", "non-empty"),
        ("counterparty", " Minato", "without outer spaces"),
        ("counterparty", "Mina\nto", "printable"),
        ("counterparty", "名" * 43, "at most 128 UTF-8 bytes"),
    ],
)
def test_an_invalid_field_is_named_with_the_reason(field: str, value: object, why: str) -> None:
    with pytest.raises(FormError, match=why) as caught:
        instruction(**{field: value})
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
    assert isinstance(caught.value, PostTradeError)


def test_codes_given_as_text_become_their_enum_members() -> None:
    built = instruction(direction="RECE", payment="APMT", quantity_type="FAMT")
    assert built.direction is Direction.RECE
    assert built.payment is Payment.APMT
    assert built.quantity_type is QuantityType.FAMT
    assert built == instruction(
        direction=Direction.RECE, payment=Payment.APMT, quantity_type=QuantityType.FAMT
    )


def test_free_of_payment_carries_no_cash() -> None:
    free = instruction(payment=Payment.FREE, settlement_amount=Decimal(0))
    assert free.settlement_amount == 0
    with pytest.raises(FormError, match="must be zero free of payment") as caught:
        instruction(payment=Payment.FREE, settlement_amount=Decimal(1))
    assert caught.value.field == "settlement_amount"


def test_a_party_name_may_be_any_printable_text_up_to_128_bytes() -> None:
    assert instruction(counterparty="名" * 42).counterparty == "名" * 42
    assert form(route=("O=Minato Securities, L=Tokyo, C=JP",)).route[0].startswith("O=")


@pytest.mark.parametrize(
    ("changes", "field", "why"),
    [
        ({"form_id": ""}, "form_id", "is not a form id"),
        ({"form_id": "x" * 65}, "form_id", "is not a form id"),
        ({"version": 0}, "version", "count from 1"),
        ({"version": 2**64}, "version", "below 2\\*\\*64"),
        ({"version": True}, "version", "must be an integer"),
        ({"version": "1"}, "version", "must be an integer"),
        ({"route": ()}, "route", "a route has 1 to 8"),
        ({"route": tuple(f"P{i}" for i in range(MAX_ROUTE + 1))}, "route", "1 to 8"),
        ({"route": ["A", "B"]}, "route", "must be a tuple"),
        ({"route": ("A", "B", "A")}, "route", "names A more than once"),
        ({"route": ("A", "")}, "route[1]", "non-empty"),
        ({"submitter": "\tTAM"}, "submitter", "without outer spaces"),
        ({"instruction": None}, "instruction", "must be an Instruction"),
    ],
)
def test_an_invalid_form_is_refused_naming_the_field(
    changes: dict[str, Any], field: str, why: str
) -> None:
    with pytest.raises(FormError, match=why) as caught:
        form(**changes)
    assert caught.value.field == field


def test_role_is_reexported_by_the_form_module() -> None:
    assert Role.CSD.value == "CSD"


# ---------------------------------------------------------------------------- encoding


def test_encoding_is_sorted_compact_json_with_plain_decimals_and_iso_dates() -> None:
    raw = form().encode()
    text = raw.decode("utf-8")
    assert " " not in text.replace("SAFE 0042", "").replace("Hokuto Custody Bank", "").replace(
        "Minato Securities", ""
    ).replace("Thames Asset Management", "")
    obj = json.loads(raw)
    assert list(obj) == sorted(obj)
    assert list(obj["instruction"]) == sorted(obj["instruction"])
    assert obj["schema"] == SCHEMA
    assert obj["instruction"]["settlement_amount"] == "150250"  # 150250.00, trailing zeros gone
    assert obj["instruction"]["deal_price"] == "150.25"
    assert obj["instruction"]["settlement_date"] == "2026-12-02"
    assert obj["route"] == list(ROUTE)
    assert obj["version"] == 1


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("1E+2"), "100"),
        (Decimal("100.500"), "100.5"),
        (Decimal("0.010"), "0.01"),
        (Decimal("123456789012345678"), "123456789012345678"),
    ],
)
def test_equal_decimals_encode_to_one_spelling(value: Decimal, text: str) -> None:
    assert (
        json.loads(form(instruction=instruction(quantity=value)).encode())["instruction"][
            "quantity"
        ]
        == text
    )


def test_equal_forms_have_equal_bytes_and_version_hash() -> None:
    one = form(instruction=instruction(settlement_amount=Decimal("150250.00")))
    other = form(instruction=instruction(settlement_amount=Decimal("150250")))
    assert one == other
    assert one.encode() == other.encode()
    assert one.version_hash == other.version_hash == hashlib.sha256(one.encode()).digest()


def test_any_change_changes_the_version_hash() -> None:
    base = form()
    assert form(version=2).version_hash != base.version_hash
    assert form(route=ROUTE[:2]).version_hash != base.version_hash
    assert form(route=tuple(reversed(ROUTE))).version_hash != base.version_hash
    amended = form(instruction=instruction(settlement_amount=Decimal("150250.01")))
    assert amended.version_hash != base.version_hash


def test_form_id_hash_is_the_sha256_of_the_id() -> None:
    assert form().id_hash == hashlib.sha256(b"TRADE-20261130-001").digest()
    assert form_id_hash("TRADE-20261130-001") == form().id_hash


def test_decode_gives_back_the_form() -> None:
    original = form()
    assert Form.decode(original.encode()) == original
    assert Form.decode(bytearray(original.encode())) == original  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None)
@given(forms())
def test_canonical_encoding_round_trips(original: Form) -> None:
    raw = original.encode()
    decoded = Form.decode(raw)
    assert decoded == original
    assert decoded.encode() == raw
    assert decoded.version_hash == original.version_hash


def _respell(raw: bytes, **dumps: Any) -> bytes:
    return json.dumps(json.loads(raw), **dumps).encode("utf-8")


def _unsorted(raw: bytes) -> bytes:
    obj = json.loads(raw)
    reversed_obj = {key: obj[key] for key in reversed(list(obj))}
    return json.dumps(reversed_obj, separators=(",", ":"), ensure_ascii=False).encode()


def _edit(raw: bytes, edit: Any) -> bytes:
    obj = json.loads(raw)
    edit(obj)
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


_CANONICAL = form(instruction=instruction(counterparty="Société Générale")).encode()


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (_respell(_CANONICAL, sort_keys=True, ensure_ascii=False), "not in canonical form"),
        (_unsorted(_CANONICAL), "not in canonical"),
        (
            _respell(_CANONICAL, sort_keys=True, separators=(",", ":"), ensure_ascii=True),
            "not in canonical",
        ),
        (_CANONICAL + b"\n", "not in canonical"),
        (b" " + _CANONICAL, "not in canonical"),
        (_CANONICAL.replace(b'"150250"', b'"150250.00"'), "not a plain decimal"),
        (_CANONICAL.replace(b'"150250"', b'"1.5025E+5"'), "not a plain decimal"),
        (_CANONICAL.replace(b'"150250"', b'"0150250"'), "not a plain decimal"),
        (_CANONICAL.replace(b'"150250"', b'"+150250"'), "not a plain decimal"),
        (_CANONICAL.replace(b'"150250"', b"150250"), "must be a JSON string"),
        (_CANONICAL.replace(b'"150.25"', b"150.25"), "JSON float"),
        (_CANONICAL.replace(b'"version":1', b'"version":1.0'), "JSON float"),
        (_CANONICAL.replace(b'"version":1', b'"version":NaN'), "JSON float"),
        (_CANONICAL.replace(b"2026-12-02", b"20261202"), "not an ISO date"),
        (_CANONICAL.replace(b"2026-12-02", b"2026-13-02"), "month must be in"),
        (_CANONICAL.replace(b'"version":1', b'"version":1,"version":1'), "not in canonical"),
        (_edit(_CANONICAL, lambda o: o.update(extra="x")), "unknown field"),
        (_edit(_CANONICAL, lambda o: o.pop("submitter")), "missing submitter"),
        (_edit(_CANONICAL, lambda o: o["instruction"].pop("isin")), "missing isin"),
        (_edit(_CANONICAL, lambda o: o.update(schema="other/1")), "is not 'kakehashi"),
        (_edit(_CANONICAL, lambda o: o.update(route="JASDEC")), "must be a JSON list"),
        (_edit(_CANONICAL, lambda o: o.update(instruction=[])), "must be a JSON object"),
        (b"[]", "must be a JSON object"),
        (b"\xff\xfe", "not UTF-8 JSON"),
        (b"", "not UTF-8 JSON"),
    ],
)
def test_decode_refuses_every_other_spelling(raw: bytes, why: str) -> None:
    with pytest.raises(FormError, match=why):
        Form.decode(raw)


def test_decode_refuses_what_is_not_bytes() -> None:
    with pytest.raises(FormError, match="must be bytes"):
        Form.decode(_CANONICAL.decode())  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_decode_accepts_only_canonical_bytes(data: st.DataObject) -> None:
    """Whatever bytes decode, encode back to exactly those bytes (one spelling per form)."""
    raw = bytearray(_CANONICAL)
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    try:
        decoded = Form.decode(bytes(raw))
    except FormError:
        return
    assert decoded.encode() == bytes(raw)


def test_validation_runs_on_decode() -> None:
    wrong_digit = _CANONICAL.replace(b"US0378331005", b"US0378331006")
    with pytest.raises(FormError, match="wrong check digit") as caught:
        Form.decode(wrong_digit)
    assert caught.value.field == "isin"


def test_instructions_are_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        instruction().quantity = Decimal(1)  # type: ignore[misc]


# ---------------------------------------------------------------------------- codes


@pytest.mark.parametrize(
    ("role", "own"),
    [
        (Role.CUSTODIAN, {"MONY", "CASH", "SAFE", "DDAT"}),
        (Role.SECURITIES_COMPANY, {"LACK", "DQUA", "DSEC"}),
        (Role.CSD, {"CMIS", "DMON", "DEPT", "NCRR"}),
        (Role.ASSET_MANAGER, set()),
    ],
)
def test_each_role_rejects_with_its_own_reasons_and_the_common_ones(
    role: Role, own: set[str]
) -> None:
    allowed = set(rejection_reasons_for(role))
    assert allowed == own | {"DTRD", "REFE", "OTHR"}
    for code in allowed:
        assert rejection_reason(code, role) == code
    for code in set(RejectionReason) - allowed:
        with pytest.raises(
            PostTradeError, match=rf"role {role} may not reject with {code} \(.*\); use one of"
        ):
            rejection_reason(code, role)


def test_an_unknown_rejection_code_names_the_known_ones() -> None:
    with pytest.raises(PostTradeError, match="'XXXX' is not a rejection reason code; use one of"):
        rejection_reason("XXXX", Role.CSD)


def test_every_code_has_a_meaning() -> None:
    for kind in (
        Role,
        Direction,
        Payment,
        QuantityType,
        ProcessingStatus,
        MatchingStatus,
        SettlementStatus,
        RejectionReason,
        UnmatchedReason,
        PendingReason,
    ):
        for code in kind:
            assert meaning(code)
    assert meaning("LACK") == "lack of securities: the securities are not there"
    with pytest.raises(PostTradeError, match="unknown code 'ZZZZ'"):
        meaning("ZZZZ")


def test_codes_travel_as_bytes4() -> None:
    assert code_bytes(RejectionReason.MONY) == b"MONY"
    assert code_from_bytes(b"SETT") == SettlementStatus.SETT
    for bad in ("MON", "mony", "MONY1", "M0NY"):
        with pytest.raises(PostTradeError, match="not a four-letter ISO 20022 code"):
            code_bytes(bad)
    with pytest.raises(PostTradeError):
        code_from_bytes(b"\x00\x00\x00\x00")
