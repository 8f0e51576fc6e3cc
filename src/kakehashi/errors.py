"""Typed errors for every layer of Kakehashi.

Every error a user can meet derives from :class:`KakehashiError` and carries a message that says
what went wrong and what to do about it. Code that fails part-way must leave no half-written
state behind before raising one of these.
"""

from __future__ import annotations

from collections.abc import Sequence


class KakehashiError(Exception):
    """Base of every error Kakehashi raises on purpose."""


class ConfigurationError(KakehashiError):
    """A configuration file, setting or command-line value is missing or invalid."""


class SerializationError(KakehashiError):
    """Bytes could not be decoded into a known object (malformed, truncated or unknown type)."""


class VerificationError(KakehashiError):
    """A proof, signature, Merkle tree or header failed verification."""


class SignatureError(VerificationError):
    """A signature is missing, malformed or does not verify under the expected key."""


class InvalidTransactionError(KakehashiError):
    """A transaction breaks a platform rule (structure, notary, time window, encumbrance)."""


class ExecutionRevertedError(KakehashiError):
    """EVM execution reverted (or ran out of gas); ``data`` holds the revert data, if any."""

    def __init__(self, message: str, data: bytes = b"") -> None:
        super().__init__(message)
        self.data = data


class ContractRejection(InvalidTransactionError):
    """A contract's ``verify`` refused the transaction."""

    def __init__(self, contract: str, reason: str) -> None:
        super().__init__(f"contract {contract} rejected the transaction: {reason}")
        self.contract = contract
        self.reason = reason


class ConflictError(KakehashiError):
    """A state was already consumed by another transaction (a double spend).

    ``consumed`` maps each conflicting state reference (as ``"txhash:index"``) to the id of the
    transaction that consumed it first.
    """

    def __init__(self, message: str, consumed: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.consumed = dict(consumed or {})


class InsufficientBalanceError(KakehashiError):
    """Not enough unlocked, unconsumed value to pay the requested amount."""


class StatesNotAvailableError(KakehashiError):
    """States chosen for a transaction are soft-locked by another flow or already consumed."""

    def __init__(self, message: str, refs: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.refs = list(refs)


class UnknownPartyError(KakehashiError):
    """A party name or key is not in the network map."""


class TimeWindowError(InvalidTransactionError):
    """The notary's clock is outside the transaction's time window."""


class NotaryError(KakehashiError):
    """The notary refused or could not process a request."""


class TransportError(KakehashiError):
    """A message to a peer could not be delivered, or the peer's answer was not acceptable."""


class FlowError(KakehashiError):
    """A flow was refused by a counterparty or could not complete."""


class TransactionResolutionError(KakehashiError):
    """A transaction's dependencies (back-chain) could not be obtained or verified."""


class ContractCompileError(KakehashiError):
    """A Vyper contract did not compile; ``path`` and ``line`` locate the first error."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.line = line


class NodeUnavailableError(TransportError):
    """An EVM JSON-RPC node did not answer, or answered something that is not JSON-RPC."""


class TransactionRevertedError(ExecutionRevertedError):
    """An EVM transaction (or contract deployment) sent to a node reverted or ran out of gas.

    ``tx_hash`` is set when the transaction was mined (status 0); it is None when the node
    refused it before mining (a revert found while estimating gas). ``reason`` is the decoded
    revert reason when the node gave one.
    """

    def __init__(
        self,
        message: str,
        tx_hash: str | None = None,
        reason: str | None = None,
        data: bytes = b"",
    ) -> None:
        super().__init__(message, data)
        self.tx_hash = tx_hash
        self.reason = reason


class IbcError(KakehashiError):
    """An IBC message or state transition breaks a rule of ICS-02/03/04/24 (nothing changed)."""


class PostTradeError(KakehashiError):
    """A post-trade form, envelope or status breaks a rule of issue 8 (nothing changed)."""


class FormError(PostTradeError):
    """A settlement-instruction form is invalid or not in canonical form; ``field`` names it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class EnvelopeError(PostTradeError):
    """A sealed envelope is malformed, or cannot be sealed with the keys given."""


class NotARecipientError(EnvelopeError):
    """The party asked to open an envelope has no wrapped key in it (not on the route)."""


class EnvelopeOpenError(EnvelopeError):
    """An envelope did not open: the wrong private key, or bytes altered after sealing.

    ``part`` is ``"key"`` when the party's wrapped content key failed to open (wrong private
    key, or the wrapped key, form id or version altered) and ``"content"`` when the key opened
    but the content failed authentication (ciphertext, nonce, form id or version altered).
    """

    def __init__(self, message: str, part: str) -> None:
        super().__init__(message)
        self.part = part
