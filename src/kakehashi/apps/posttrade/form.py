"""The post-trade form: an ISO 20022 sese.023 settlement instruction and its approval route.

A :class:`Form` has one canonical byte encoding (:meth:`Form.encode`): JSON with sorted keys, no
whitespace, UTF-8, Decimals as plain strings without exponent or trailing zeros ("100.5", never
"100.50" or "1.005E+2"), dates as ISO ``YYYY-MM-DD``. :meth:`Form.decode` refuses any other
spelling of the same form, so two parties holding the same form hold the same bytes and the
same :attr:`Form.version_hash` (sha256 of the encoding) — the hash every approval is bound to.

Identifiers: the ISIN is checked against ISO 6166 (its Luhn check digit); the delivering and
receiving agents and the place of settlement are BICs (ISO 9362: 8 or 11 characters); the
currency is three capital letters (ISO 4217 form, not checked against the list of currencies);
the counterparty and the route's parties are party names as registered on the ledger (printable
text, at most 128 UTF-8 bytes).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from kakehashi.apps.posttrade.codes import Direction, Payment, QuantityType
from kakehashi.apps.posttrade.codes import Role as Role
from kakehashi.errors import FormError

SCHEMA = "kakehashi/posttrade/form/1"
"""The schema tag every encoded form carries; a decoder refuses any other."""

MAX_ROUTE = 8
"""The longest approval route (the contract keeps the route as ``address[8]`` at most)."""

MAX_NAME_BYTES = 128
"""The longest party name, in UTF-8 bytes (the contract's ``String[128]``)."""

_Code = TypeVar("_Code", Direction, Payment, QuantityType)

_ISIN = re.compile(r"[A-Z]{2}[A-Z0-9]{9}[0-9]")
_BIC = re.compile(r"[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}(?:[A-Z0-9]{3})?")
_CURRENCY = re.compile(r"[A-Z]{3}")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}")
_ACCOUNT = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._:/-]{0,34}")
_DECIMAL = re.compile(r"(0|[1-9][0-9]*)(\.[0-9]*[1-9])?")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def isin_check_digit(body: str) -> int:
    """ISO 6166 check digit of the first 11 characters of an ISIN.

    Letters become two digits (A=10 … Z=35), then the Luhn rule applies to the digit string:
    from the right, every other digit (starting with the rightmost) is doubled.
    """
    digits = "".join(str(int(char, 36)) for char in body)
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 0:
            value *= 2
            value = value - 9 if value > 9 else value
        total += value
    return (10 - total % 10) % 10


def is_valid_isin(isin: str) -> bool:
    """Whether ``isin`` has the ISO 6166 form and a correct check digit."""
    return bool(_ISIN.fullmatch(isin)) and isin_check_digit(isin[:11]) == int(isin[11])


def _check_text(field: str, value: object, pattern: re.Pattern[str], what: str) -> None:
    if not isinstance(value, str):
        raise FormError(field, f"must be text, got {type(value).__name__}")
    if not pattern.fullmatch(value):
        raise FormError(field, f"{value!r} is not {what}")


def _check_name(field: str, value: object) -> None:
    if not isinstance(value, str):
        raise FormError(field, f"must be a party name (text), got {type(value).__name__}")
    if not value or value != value.strip():
        raise FormError(field, f"{value!r}: a party name is non-empty, without outer spaces")
    if not value.isprintable():
        raise FormError(field, f"{value!r}: a party name holds printable characters only")
    if len(value.encode("utf-8")) > MAX_NAME_BYTES:
        raise FormError(field, f"a party name is at most {MAX_NAME_BYTES} UTF-8 bytes")


def _check_decimal(
    field: str, value: object, *, fraction_digits: int, positive: bool = True
) -> None:
    # ISO 20022 DecimalNumber / ActiveCurrencyAndAmount: at most 18 digits in all.
    if not isinstance(value, Decimal):
        raise FormError(field, f"must be a Decimal, got {type(value).__name__}")
    if not value.is_finite():
        raise FormError(field, f"{value} is not a finite number")
    if value < 0 or (positive and value == 0):
        raise FormError(field, f"{value} must be {'above' if positive else 'at least'} zero")
    text = _decimal_text(value)
    whole, _, fraction = text.partition(".")
    if len(fraction) > fraction_digits:
        raise FormError(field, f"{text} has more than {fraction_digits} decimal places")
    if len(whole.lstrip("0")) + len(fraction) > 18:
        raise FormError(field, f"{text} has more than 18 digits")


def _check_date(field: str, value: object) -> None:
    # datetime is a subclass of date; a time of day has no place in a settlement date.
    if not isinstance(value, date) or type(value) is not date:
        raise FormError(field, f"must be a datetime.date, got {type(value).__name__}")


def _decimal_text(value: Decimal) -> str:
    """Plain notation, no exponent, no trailing zeros: the one spelling of a Decimal here."""
    text = format(value.normalize(), "f")
    return "0" if text in {"-0", "0"} else text


@dataclass(frozen=True)
class Instruction:
    """A settlement instruction with the ISO 20022 sese.023 fields the workflow uses.

    ``settlement_amount`` is the cash leg: above zero when against payment (APMT), zero when
    free of payment (FREE). ``counterparty`` names the other side of the trade.
    """

    sender_reference: str
    direction: Direction
    payment: Payment
    trade_date: date
    settlement_date: date
    isin: str
    quantity: Decimal
    quantity_type: QuantityType
    deal_price: Decimal
    settlement_amount: Decimal
    currency: str
    safekeeping_account: str
    delivering_agent: str
    receiving_agent: str
    place_of_settlement: str
    counterparty: str

    def __post_init__(self) -> None:
        _check_text(
            "sender_reference",
            self.sender_reference,
            _ID,
            "a reference (1-64 of A-Z a-z 0-9 . _ : / -)",
        )
        # The code as text ("DELI") is taken for its enum member, so that equal instructions
        # compare equal however they were built.
        object.__setattr__(self, "direction", _enum("direction", Direction, self.direction))
        object.__setattr__(self, "payment", _enum("payment", Payment, self.payment))
        object.__setattr__(
            self, "quantity_type", _enum("quantity_type", QuantityType, self.quantity_type)
        )
        _check_date("trade_date", self.trade_date)
        _check_date("settlement_date", self.settlement_date)
        if self.settlement_date < self.trade_date:
            raise FormError(
                "settlement_date",
                f"{self.settlement_date} is before the trade date {self.trade_date}",
            )
        _check_text("isin", self.isin, _ISIN, "an ISIN (2 letters, 9 letters/digits, 1 digit)")
        if not is_valid_isin(self.isin):
            expected = isin_check_digit(self.isin[:11])
            raise FormError("isin", f"{self.isin}: wrong check digit (ISO 6166 gives {expected})")
        _check_decimal("quantity", self.quantity, fraction_digits=17)
        _check_decimal("deal_price", self.deal_price, fraction_digits=17)
        _check_decimal(
            "settlement_amount", self.settlement_amount, fraction_digits=5, positive=False
        )
        if self.payment is Payment.APMT and self.settlement_amount == 0:
            raise FormError("settlement_amount", "must be above zero against payment (APMT)")
        if self.payment is Payment.FREE and self.settlement_amount != 0:
            raise FormError("settlement_amount", "must be zero free of payment (FREE)")
        _check_text("currency", self.currency, _CURRENCY, "an ISO 4217 code (3 capital letters)")
        _check_text(
            "safekeeping_account",
            self.safekeeping_account,
            _ACCOUNT,
            "an account (1-35 of A-Z a-z 0-9 space . _ : / -)",
        )
        for bic_field, bic in (
            ("delivering_agent", self.delivering_agent),
            ("receiving_agent", self.receiving_agent),
            ("place_of_settlement", self.place_of_settlement),
        ):
            _check_text(bic_field, bic, _BIC, "a BIC (ISO 9362: 8 or 11 capital letters/digits)")
        _check_name("counterparty", self.counterparty)

    def to_json(self) -> dict[str, str]:
        """The instruction as the JSON object inside a form's encoding (every value text)."""
        return {
            "sender_reference": self.sender_reference,
            "direction": self.direction.value,
            "payment": self.payment.value,
            "trade_date": self.trade_date.isoformat(),
            "settlement_date": self.settlement_date.isoformat(),
            "isin": self.isin,
            "quantity": _decimal_text(self.quantity),
            "quantity_type": self.quantity_type.value,
            "deal_price": _decimal_text(self.deal_price),
            "settlement_amount": _decimal_text(self.settlement_amount),
            "currency": self.currency,
            "safekeeping_account": self.safekeeping_account,
            "delivering_agent": self.delivering_agent,
            "receiving_agent": self.receiving_agent,
            "place_of_settlement": self.place_of_settlement,
            "counterparty": self.counterparty,
        }

    @classmethod
    def from_json(cls, obj: object) -> Instruction:
        """The instruction held in a decoded JSON object; raises FormError naming the field."""
        if not isinstance(obj, dict):
            raise FormError("instruction", "must be a JSON object")
        expected = set(_INSTRUCTION_FIELDS)
        _check_keys("instruction", obj, expected)
        for key in expected:
            if not isinstance(obj[key], str):
                raise FormError(key, f"must be a JSON string, got {type(obj[key]).__name__}")
        return cls(
            sender_reference=obj["sender_reference"],
            direction=_enum("direction", Direction, obj["direction"]),
            payment=_enum("payment", Payment, obj["payment"]),
            trade_date=_parse_date("trade_date", obj["trade_date"]),
            settlement_date=_parse_date("settlement_date", obj["settlement_date"]),
            isin=obj["isin"],
            quantity=_parse_decimal("quantity", obj["quantity"]),
            quantity_type=_enum("quantity_type", QuantityType, obj["quantity_type"]),
            deal_price=_parse_decimal("deal_price", obj["deal_price"]),
            settlement_amount=_parse_decimal("settlement_amount", obj["settlement_amount"]),
            currency=obj["currency"],
            safekeeping_account=obj["safekeeping_account"],
            delivering_agent=obj["delivering_agent"],
            receiving_agent=obj["receiving_agent"],
            place_of_settlement=obj["place_of_settlement"],
            counterparty=obj["counterparty"],
        )


_INSTRUCTION_FIELDS = tuple(Instruction.__dataclass_fields__)


@dataclass(frozen=True)
class Form:
    """One version of a settlement-instruction form with its approval route.

    ``route`` is the ordered tuple of the party names that approve, in order (the CSD last);
    ``submitter`` is the party that entered this version (it may or may not be on the route).
    A new version (``version`` + 1) is an amendment by the submitter after an NG.
    """

    form_id: str
    version: int
    instruction: Instruction
    route: tuple[str, ...]
    submitter: str

    def __post_init__(self) -> None:
        _check_text("form_id", self.form_id, _ID, "a form id (1-64 of A-Z a-z 0-9 . _ : / -)")
        if not isinstance(self.version, int) or isinstance(self.version, bool):
            raise FormError("version", f"must be an integer, got {type(self.version).__name__}")
        if not 1 <= self.version < 2**64:
            raise FormError("version", f"{self.version}: versions count from 1 (below 2**64)")
        if not isinstance(self.instruction, Instruction):
            raise FormError(
                "instruction", f"must be an Instruction, got {type(self.instruction).__name__}"
            )
        if not isinstance(self.route, tuple):
            raise FormError(
                "route", f"must be a tuple of party names, got {type(self.route).__name__}"
            )
        if not 1 <= len(self.route) <= MAX_ROUTE:
            raise FormError("route", f"has {len(self.route)} parties; a route has 1 to {MAX_ROUTE}")
        for index, name in enumerate(self.route):
            _check_name(f"route[{index}]", name)
        duplicates = sorted({name for name in self.route if self.route.count(name) > 1})
        if duplicates:
            raise FormError("route", f"names {', '.join(duplicates)} more than once")
        _check_name("submitter", self.submitter)

    def encode(self) -> bytes:
        """The canonical bytes of this form (the only bytes :meth:`decode` accepts for it)."""
        obj: dict[str, Any] = {
            "schema": SCHEMA,
            "form_id": self.form_id,
            "version": self.version,
            "instruction": self.instruction.to_json(),
            "route": list(self.route),
            "submitter": self.submitter,
        }
        return _canonical_json(obj)

    @classmethod
    def decode(cls, raw: bytes) -> Form:
        """The form encoded in ``raw``; FormError if malformed, invalid or not canonical."""
        if not isinstance(raw, bytes | bytearray):
            raise FormError("form", f"must be bytes, got {type(raw).__name__}")
        try:
            obj = json.loads(
                bytes(raw).decode("utf-8"),
                parse_float=_refuse_number,
                parse_constant=_refuse_number,
            )
        except (UnicodeDecodeError, ValueError) as exc:
            raise FormError("form", f"not UTF-8 JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise FormError("form", "must be a JSON object")
        _check_keys(
            "form", obj, {"schema", "form_id", "version", "instruction", "route", "submitter"}
        )
        if obj["schema"] != SCHEMA:
            raise FormError("schema", f"{obj['schema']!r} is not {SCHEMA!r}")
        if not isinstance(obj["route"], list):
            raise FormError("route", "must be a JSON list of party names")
        form = cls(
            form_id=obj["form_id"],
            version=obj["version"],
            instruction=Instruction.from_json(obj["instruction"]),
            route=tuple(obj["route"]),
            submitter=obj["submitter"],
        )
        if form.encode() != bytes(raw):
            raise FormError(
                "form",
                "bytes are not in canonical form (sorted keys, no whitespace, plain decimals, "
                "ISO dates, UTF-8 without escapes); re-encode the form with Form.encode()",
            )
        return form

    @property
    def version_hash(self) -> bytes:
        """sha256 of :meth:`encode`: the content every approval of this version is bound to."""
        return hashlib.sha256(self.encode()).digest()

    @property
    def id_hash(self) -> bytes:
        """sha256 of the form id (UTF-8): the form's ``bytes32`` key on chain."""
        return form_id_hash(self.form_id)


def form_id_hash(form_id: str) -> bytes:
    """sha256 of a form id (UTF-8): the form's ``bytes32`` key on chain."""
    return hashlib.sha256(form_id.encode("utf-8")).digest()


def _canonical_json(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def _refuse_number(text: str) -> object:
    # Floats lose precision; amounts and quantities travel as strings.
    raise FormError("form", f"{text} is a JSON float; decimals are written as strings")


def _check_keys(where: str, obj: dict[str, Any], expected: set[str]) -> None:
    missing = sorted(expected - obj.keys())
    if missing:
        raise FormError(where, f"missing {', '.join(missing)}")
    unknown = sorted(obj.keys() - expected)
    if unknown:
        raise FormError(where, f"unknown field(s) {', '.join(unknown)}")


def _enum(field: str, kind: type[_Code], value: object) -> _Code:
    if isinstance(value, kind):
        return value
    if isinstance(value, str):
        try:
            return kind(value)
        except ValueError:
            pass
    raise FormError(field, f"{value!r} is not {' or '.join(kind)}")


def _parse_date(field: str, text: str) -> date:
    if not _DATE.fullmatch(text):
        raise FormError(field, f"{text!r} is not an ISO date YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise FormError(field, f"{text!r}: {exc}") from None


def _parse_decimal(field: str, text: str) -> Decimal:
    if not _DECIMAL.fullmatch(text):
        raise FormError(
            field, f"{text!r} is not a plain decimal (digits, one point, no trailing zeros)"
        )
    try:
        return Decimal(text)
    except InvalidOperation:
        raise FormError(field, f"{text!r} is not a decimal") from None
