"""X.500-style names and parties, with the rules Corda applies to node legal names."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kakehashi.errors import InvalidTransactionError
from kakehashi.ledgers.corda.model.crypto import PublicKey
from kakehashi.ledgers.corda.model.serialization import serializable

_ATTRIBUTES = {
    "CN": "common_name",
    "OU": "organisation_unit",
    "O": "organisation",
    "L": "locality",
    "ST": "state",
    "C": "country",
}
_ORDER = ("CN", "OU", "O", "L", "ST", "C")
_FORBIDDEN = re.compile(r"[,=$\"'\\\x00-\x1f]")
_COUNTRY = re.compile(r"[A-Z]{2}")


@serializable("corda.X500Name")
@dataclass(frozen=True, slots=True, order=True)
class X500Name:
    """A legal name: organisation, locality and country are required (as Corda requires)."""

    organisation: str
    locality: str
    country: str
    organisation_unit: str | None = None
    state: str | None = None
    common_name: str | None = None
    _text: str = field(init=False, repr=False, compare=False, metadata={"transient": True})

    def __post_init__(self) -> None:
        for attr, attribute in _ATTRIBUTES.items():
            value = getattr(self, attribute)
            if value is None:
                continue
            if value != value.strip() or not value:
                raise InvalidTransactionError(
                    f"X.500 attribute {attr} must be non-empty and trimmed"
                )
            if _FORBIDDEN.search(value):
                raise InvalidTransactionError(
                    f"X.500 attribute {attr}={value!r} contains a forbidden character"
                )
            if len(value) > 128:
                raise InvalidTransactionError(
                    f"X.500 attribute {attr} is longer than 128 characters"
                )
        if not _COUNTRY.fullmatch(self.country):
            raise InvalidTransactionError(
                f"country {self.country!r} must be a two-letter ISO 3166 code such as GB or JP"
            )
        parts = []
        for attr in _ORDER:
            value = getattr(self, _ATTRIBUTES[attr])
            if value is not None:
                parts.append(f"{attr}={value}")
        object.__setattr__(self, "_text", ", ".join(parts))

    @classmethod
    def parse(cls, text: str) -> X500Name:
        """Parse ``"O=Bank A, L=London, C=GB"`` (attributes in any order)."""
        values: dict[str, str] = {}
        for part in text.split(","):
            key, sep, value = part.partition("=")
            key = key.strip().upper()
            if not sep or key not in _ATTRIBUTES:
                raise InvalidTransactionError(
                    f"cannot parse X.500 name {text!r}: expected attributes like "
                    "'O=Bank A, L=London, C=GB' (allowed: CN, OU, O, L, ST, C)"
                )
            if key in values:
                raise InvalidTransactionError(f"X.500 name {text!r} repeats attribute {key}")
            values[_ATTRIBUTES[key]] = value.strip()
        missing = [a for a in ("O", "L", "C") if _ATTRIBUTES[a] not in values]
        if missing:
            raise InvalidTransactionError(
                f"X.500 name {text!r} lacks required attribute(s) {', '.join(missing)}"
            )
        return cls(**values)

    def __str__(self) -> str:
        return self._text


@serializable("corda.Party")
@dataclass(frozen=True, slots=True)
class Party:
    """A well-known identity: a legal name and the key that signs for it."""

    name: X500Name
    owning_key: PublicKey

    def __str__(self) -> str:
        return str(self.name)
