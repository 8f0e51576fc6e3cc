"""ICS-03 version negotiation: which connection versions this host offers and accepts.

A version is an identifier and a set of features (for channels: which orderings the connection
allows). INIT offers every supported version (or one the caller chose), TRY picks one of the
counterparty's offers, ACK checks that the version the counterparty picked was one INIT offered.
The picked version carries the features both sides support, in this host's order, so the
version stored on each end — and therefore each end's commitment — is the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

from kakehashi.errors import IbcError
from kakehashi.ibc.types import DEFAULT_VERSION, Order, Version

__all__ = [
    "SUPPORTED_VERSIONS",
    "check_offered_version",
    "order_feature",
    "pick_version",
    "supports_order",
    "validate_version",
]

#: Every connection version this host accepts (ibc-go's ``GetCompatibleVersions``).
SUPPORTED_VERSIONS: tuple[Version, ...] = (DEFAULT_VERSION,)


def order_feature(order: Order) -> str:
    """The version feature that allows channels of ``order`` (``ORDER_ORDERED`` ...)."""
    return f"ORDER_{order.name}"


def validate_version(version: object) -> Version:
    """ICS-03 ``ValidateVersion``: a non-empty identifier and non-empty, distinct features."""
    if not isinstance(version, Version):
        raise IbcError(f"a connection version must be a Version, got {type(version).__name__}")
    if not isinstance(version.identifier, str) or not version.identifier.strip():
        raise IbcError("a connection version needs a non-empty identifier")
    if not version.features:
        raise IbcError(f"connection version {version.identifier!r} offers no features")
    if not all(isinstance(f, str) and f.strip() for f in version.features):
        raise IbcError(f"connection version {version.identifier!r} has an empty feature")
    if len(set(version.features)) != len(version.features):
        raise IbcError(f"connection version {version.identifier!r} repeats a feature")
    return version


def _supported(version: Version, supported: Sequence[Version]) -> Version | None:
    """The supported version ``version`` is a subset of (same identifier, fewer features)."""
    for candidate in supported:
        if candidate.identifier == version.identifier and set(version.features) <= set(
            candidate.features
        ):
            return candidate
    return None


def check_offered_version(
    version: Version, supported: Sequence[Version] = SUPPORTED_VERSIONS
) -> None:
    """Raise unless ``version`` is valid and (a subset of) one of ``supported``."""
    validate_version(version)
    if _supported(version, supported) is None:
        raise IbcError(
            f"connection version {version!r} is not supported; this host supports "
            f"{list(supported)!r}"
        )


def pick_version(
    counterparty_versions: Sequence[Version], supported: Sequence[Version] = SUPPORTED_VERSIONS
) -> Version:
    """ICS-03 ``pickVersion``: the first of this host's versions the counterparty also offers,
    with the features both support (in this host's order)."""
    if not counterparty_versions:
        raise IbcError("the counterparty offered no connection version")
    for version in counterparty_versions:
        validate_version(version)
    for ours in supported:
        for theirs in counterparty_versions:
            if theirs.identifier != ours.identifier:
                continue
            common = tuple(f for f in ours.features if f in theirs.features)
            if common:
                return Version(ours.identifier, common)
    raise IbcError(
        f"no connection version in common: the counterparty offers "
        f"{list(counterparty_versions)!r}, this host supports {list(supported)!r}"
    )


def supports_order(version: Version, order: Order) -> bool:
    return order_feature(order) in version.features
