"""ICS-02: the light-client interface every host's clients implement.

A client tracks the counterparty ledger: it is created from an initial client state and
consensus state, updated with headers (or LCP statements), and asked whether a 32-byte value
(or its absence) is committed under a path at a height it has verified. Every method raises
:class:`~kakehashi.errors.VerificationError` when a proof or header does not verify.
"""

from __future__ import annotations

from enum import Enum
from typing import Protocol

from kakehashi.ibc.types import Height

__all__ = ["ClientStatus", "LightClient"]


class ClientStatus(Enum):
    ACTIVE = "Active"
    FROZEN = "Frozen"  # misbehaviour seen: every verification fails
    EXPIRED = "Expired"  # the trusted state is older than the trusting period


class LightClient(Protocol):
    """ICS-02 client of one counterparty ledger, as a host keeps it."""

    client_type: str

    def latest_height(self) -> Height:
        """The highest height this client has verified."""
        ...

    def status(self, now_ns: int) -> ClientStatus: ...

    def update(self, message: bytes, now_ns: int) -> Height:
        """Verify a header / update message and remember the consensus state it proves."""
        ...

    def timestamp_at(self, height: Height) -> int:
        """The counterparty's time (ns) at a verified height (for timestamp timeouts)."""
        ...

    def verify_membership(
        self, height: Height, proof: bytes, prefix: bytes, path: bytes, value: bytes
    ) -> None:
        """Raise unless ``value`` is committed under ``prefix ‖ path`` at ``height``."""
        ...

    def verify_non_membership(
        self, height: Height, proof: bytes, prefix: bytes, path: bytes
    ) -> None:
        """Raise unless nothing is committed under ``prefix ‖ path`` at ``height``."""
        ...

    def client_state(self) -> bytes:
        """Canonical bytes of the client state (what a counterparty may check)."""
        ...
