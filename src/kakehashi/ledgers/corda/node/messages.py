"""Peer-to-peer messages between nodes and notaries (all deterministic-CBOR dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass, field

from kakehashi.ledgers.corda.merkle import FilteredTransaction
from kakehashi.ledgers.corda.model.crypto import TransactionSignature
from kakehashi.ledgers.corda.model.identity import X500Name
from kakehashi.ledgers.corda.model.serialization import serializable
from kakehashi.ledgers.corda.model.transactions import SignedTransaction


@serializable("p2p.Envelope")
@dataclass(frozen=True, slots=True)
class Envelope:
    """A message signed by its sender's identity key; ``body`` is a serialised message."""

    sender: X500Name
    recipient: X500Name
    body: bytes
    timestamp: int
    nonce: bytes
    signature: bytes = b""


@serializable("p2p.SignRequest")
@dataclass(frozen=True, slots=True)
class SignRequest:
    """CollectSignatures: please check this transaction and sign it."""

    stx: SignedTransaction


@serializable("p2p.SignResponse")
@dataclass(frozen=True, slots=True)
class SignResponse:
    sigs: tuple[TransactionSignature, ...]


@serializable("p2p.RecordRequest")
@dataclass(frozen=True, slots=True)
class RecordRequest:
    """Finality: this notarised transaction involves you; verify and record it."""

    stx: SignedTransaction


@serializable("p2p.FetchRequest")
@dataclass(frozen=True, slots=True)
class FetchRequest:
    """Back-chain resolution: send me these transactions (only if I may see them)."""

    tx_ids: tuple[bytes, ...]


@serializable("p2p.FetchResponse")
@dataclass(frozen=True, slots=True)
class FetchResponse:
    txs: tuple[SignedTransaction, ...]


@serializable("p2p.NotariseRequest")
@dataclass(frozen=True, slots=True)
class NotariseRequest:
    """To a notary: a tear-off (non-validating) or the whole transaction (validating)."""

    filtered: FilteredTransaction | None = None
    stx: SignedTransaction | None = None


@serializable("p2p.NotariseResponse")
@dataclass(frozen=True, slots=True)
class NotariseResponse:
    signature: TransactionSignature


@serializable("p2p.Ack")
@dataclass(frozen=True, slots=True)
class Ack:
    pass


@serializable("p2p.ErrorResponse")
@dataclass(frozen=True, slots=True)
class ErrorResponse:
    """A refusal: the typed error's class name, its message, and for conflicts what was spent."""

    kind: str
    message: str
    consumed: dict[str, str] = field(default_factory=dict)
