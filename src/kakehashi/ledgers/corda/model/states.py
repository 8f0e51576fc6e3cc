"""States and the objects that point at them (Corda's ``ContractState`` family)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kakehashi.errors import InvalidTransactionError
from kakehashi.ledgers.corda.model.crypto import PublicKey
from kakehashi.ledgers.corda.model.identity import Party
from kakehashi.ledgers.corda.model.serialization import serializable

if TYPE_CHECKING:
    from collections.abc import Sequence


class ContractState:
    """A fact on the ledger. Subclasses are frozen, registered dataclasses.

    ``participants`` are the parties that must learn of (and usually consent to) the state; the
    vault of a node records a state when one of its keys is a participant.
    """

    @property
    def participants(self) -> tuple[Party, ...]:
        raise NotImplementedError


@serializable("corda.UniqueIdentifier")
@dataclass(frozen=True, slots=True)
class UniqueIdentifier:
    """The identity of a linear state across its whole history (a UUID, optionally labelled)."""

    id: bytes = field(default_factory=lambda: uuid.uuid4().bytes)
    external_id: str | None = None

    def __post_init__(self) -> None:
        if len(self.id) != 16:
            raise InvalidTransactionError("a UniqueIdentifier's id must be 16 bytes (a UUID)")

    def __str__(self) -> str:
        return str(uuid.UUID(bytes=self.id))

    @classmethod
    def parse(cls, text: str) -> UniqueIdentifier:
        try:
            return cls(uuid.UUID(text).bytes)
        except ValueError:
            raise InvalidTransactionError(f"{text!r} is not a linear id (UUID)") from None


class LinearState(ContractState):
    """A state that evolves over time, each version sharing the same ``linear_id``."""

    linear_id: UniqueIdentifier


class OwnableState(ContractState):
    """A state with one owner whose signature is needed to move it."""

    @property
    def owner(self) -> Party:
        raise NotImplementedError


class FungibleState(OwnableState):
    """A quantity of something interchangeable, held by its owner.

    ``token_key`` names what is counted (for tokens: the issued token type), so that the vault
    can index balances and select coins without understanding the state.
    """

    @property
    def quantity(self) -> int:
        raise NotImplementedError

    @property
    def token_key(self) -> str:
        raise NotImplementedError


@serializable("corda.StateRef")
@dataclass(frozen=True, slots=True, order=True)
class StateRef:
    """A pointer to output ``index`` of transaction ``txhash``."""

    txhash: bytes
    index: int

    def __post_init__(self) -> None:
        if len(self.txhash) != 32:
            raise InvalidTransactionError("a StateRef's transaction hash must be 32 bytes")
        if self.index < 0:
            raise InvalidTransactionError("a StateRef's output index cannot be negative")

    def __str__(self) -> str:
        return f"{self.txhash.hex()}:{self.index}"

    @classmethod
    def parse(cls, text: str) -> StateRef:
        txhash, _, index = text.partition(":")
        try:
            return cls(bytes.fromhex(txhash), int(index))
        except ValueError:
            raise InvalidTransactionError(
                f"{text!r} is not a state reference; expected TXHASH:INDEX"
            ) from None


@serializable("corda.TransactionState")
@dataclass(frozen=True, slots=True)
class TransactionState:
    """A state as an output: its data, the contract that governs it, its notary, encumbrance."""

    data: ContractState
    contract: str
    notary: Party
    encumbrance: int | None = None

    def __post_init__(self) -> None:
        if not self.contract:
            raise InvalidTransactionError("a TransactionState must name its contract")
        if self.encumbrance is not None and self.encumbrance < 0:
            raise InvalidTransactionError("an encumbrance index cannot be negative")


@serializable("corda.StateAndRef")
@dataclass(frozen=True, slots=True)
class StateAndRef:
    """A state together with the reference that locates it on the ledger."""

    state: TransactionState
    ref: StateRef


class CommandData:
    """Marker base for a command's value; subclasses are registered dataclasses."""


@serializable("corda.Command")
@dataclass(frozen=True, slots=True)
class Command:
    """A command: what the transaction does and whose signatures it requires."""

    value: CommandData
    signers: tuple[PublicKey, ...]

    def __post_init__(self) -> None:
        if not self.signers:
            raise InvalidTransactionError("a command needs at least one signer")


@serializable("corda.TimeWindow")
@dataclass(frozen=True, slots=True)
class TimeWindow:
    """When a transaction may be notarised: [from_time, until_time) in microseconds since epoch."""

    from_time: int | None = None
    until_time: int | None = None

    def __post_init__(self) -> None:
        if self.from_time is None and self.until_time is None:
            raise InvalidTransactionError("a time window needs a start, an end or both")
        if (
            self.from_time is not None
            and self.until_time is not None
            and self.until_time <= self.from_time
        ):
            raise InvalidTransactionError("a time window must end after it starts")

    def contains(self, instant: int) -> bool:
        if self.from_time is not None and instant < self.from_time:
            return False
        return not (self.until_time is not None and instant >= self.until_time)


def participant_keys(states: Sequence[ContractState]) -> set[PublicKey]:
    """Owning keys of every participant of the given states."""
    return {party.owning_key for state in states for party in state.participants}
