"""Contracts: pure ``verify(ledger_tx)`` functions looked up by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

from kakehashi.errors import InvalidTransactionError

if TYPE_CHECKING:
    from kakehashi.ledgers.corda.model.transactions import LedgerTransaction


class Contract(Protocol):
    """A contract accepts a transaction by returning and rejects it by raising."""

    def verify(self, tx: LedgerTransaction) -> None: ...


C = TypeVar("C")

_contracts: dict[str, Contract] = {}


def contract(name: str) -> Callable[[type[C]], type[C]]:
    """Register a contract class under ``name``; states name their contract with it."""

    def register(cls: type[C]) -> type[C]:
        if name in _contracts and type(_contracts[name]) is not cls:
            raise ValueError(f"contract name {name!r} already registered")
        _contracts[name] = cls()  # type: ignore[assignment]
        return cls

    return register


def contract_for(name: str) -> Contract:
    """The contract registered as ``name``."""
    try:
        return _contracts[name]
    except KeyError:
        raise InvalidTransactionError(
            f"no contract named {name!r} is installed on this node; install the CorDapp "
            "that defines it"
        ) from None


def require(condition: bool, message: str) -> None:
    """Contract helper: reject with ``message`` unless ``condition`` holds."""
    if not condition:
        raise InvalidTransactionError(message)
