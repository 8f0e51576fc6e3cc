"""Token flows: issue, move, redeem, split, escrow, and coin selection with soft locks."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence

from kakehashi.errors import InsufficientBalanceError, InvalidTransactionError
from kakehashi.ledgers.corda.model.crypto import random_bytes, sign_transaction_id
from kakehashi.ledgers.corda.model.identity import Party
from kakehashi.ledgers.corda.model.states import Command, StateAndRef, TransactionState
from kakehashi.ledgers.corda.model.transactions import SignedTransaction, WireTransaction
from kakehashi.ledgers.corda.node.node import Node
from kakehashi.ledgers.corda.tokens.model import (
    FUNGIBLE_TOKEN_CONTRACT,
    Amount,
    FungibleToken,
    IssuedTokenType,
    IssueTokenCommand,
    MoveTokenCommand,
    RedeemTokenCommand,
    TokenType,
)

log = logging.getLogger(__name__)

SELECTION_RETRIES = 8
SELECTION_BACKOFF_S = 0.01


def _positive(quantity: int, what: str) -> None:
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity <= 0:
        raise InvalidTransactionError(f"{what} must be a positive whole number of units")


def _token_state(amount: Amount, holder: Party, notary: Party) -> TransactionState:
    return TransactionState(FungibleToken(amount, holder), FUNGIBLE_TOKEN_CONTRACT, notary)


def _wire(node: Node, **components: object) -> WireTransaction:
    return WireTransaction.create(
        privacy_salt=random_bytes(32),
        network_parameters_hash=node.network.parameters.hash(),
        **components,  # type: ignore[arg-type]
    )


def issue_tokens(
    node: Node,
    token_type: TokenType,
    quantity: int,
    holder: Party,
    *,
    notary: Party | None = None,
) -> SignedTransaction:
    """The issuer (``node``) creates ``quantity`` units of ``token_type`` held by ``holder``."""
    _positive(quantity, "the issued quantity")
    holder = node.network.party(holder.name)
    issued = IssuedTokenType(node.party, token_type)
    notary = notary or node.network.default_notary()
    wtx = _wire(
        node,
        outputs=[_token_state(Amount(quantity, issued), holder, notary)],
        commands=[Command(IssueTokenCommand(issued), (node.party.owning_key,))],
    )
    stx = node.sign(SignedTransaction(wtx, ()))
    return node.finalise(stx)


def select_tokens(
    node: Node, token: IssuedTokenType, quantity: int, lock_id: str
) -> list[StateAndRef]:
    """Oldest-first coin selection with soft locks, retrying with jittered backoff.

    Raises :class:`InsufficientBalanceError` when the balance is too low, or stays too low once
    other flows' soft-locked states are set aside.
    """
    holder = node.party.owning_key
    balance = 0
    for attempt in range(SELECTION_RETRIES):
        states, _total, balance = node.db.select_fungible(token.key, holder, quantity, lock_id)
        if states:
            return states
        if balance < quantity:
            break
        time.sleep(SELECTION_BACKOFF_S * (2**attempt) * random.uniform(0.5, 1.5))
    if balance < quantity:
        raise InsufficientBalanceError(
            f"{node.name} holds {balance} units of {token} but {quantity} are needed"
        )
    raise InsufficientBalanceError(
        f"{node.name} holds {balance} units of {token}, but too many are soft-locked by other "
        f"flows to pay {quantity}; retry when they finish or pre-split the balance"
    )


def _spend(
    node: Node,
    token: IssuedTokenType,
    quantity: int,
    payments: Sequence[tuple[Party, int]],
    *,
    redeem: bool = False,
    escrow: Callable[[Party], Sequence[TransactionState]] | None = None,
    commands: Sequence[Command] = (),
) -> SignedTransaction:
    lock_id = node.new_flow_id()
    try:
        inputs = select_tokens(node, token, quantity, lock_id)
        total = sum(
            s.state.data.quantity for s in inputs if isinstance(s.state.data, FungibleToken)
        )
        notaries = {s.state.notary for s in inputs}
        if len(notaries) != 1:
            raise InvalidTransactionError(
                f"the selected {token} states are under different notaries; run a notary change"
            )
        notary = notaries.pop()
        outputs = [_token_state(Amount(q, token), p, notary) for p, q in payments]
        if escrow is not None:
            outputs.extend(escrow(notary))
        change = total - quantity
        if change > 0:
            outputs.append(_token_state(Amount(change, token), node.party, notary))
        signers = {s.state.data.participants[0].owning_key for s in inputs}
        if redeem:
            command = Command(RedeemTokenCommand(token), tuple({*signers, token.issuer.owning_key}))
        else:
            command = Command(MoveTokenCommand(token), tuple(signers))
        wtx = _wire(
            node,
            inputs=[s.ref for s in inputs],
            outputs=outputs,
            commands=[command, *commands],
            notary=notary,
        )
        stx = SignedTransaction(wtx, (sign_transaction_id(node.key, wtx.id),))
        if redeem and token.issuer != node.party:
            stx = node.collect_signatures(stx, [token.issuer])
        return node.finalise(stx, observers=[token.issuer] if redeem else ())
    except BaseException:
        # On success recording the transaction consumed the states and cleared their locks.
        node.db.release_soft_locks(lock_id)
        raise


def move_tokens(
    node: Node, token: IssuedTokenType, quantity: int, recipient: Party
) -> SignedTransaction:
    """Pay ``quantity`` of ``token`` to ``recipient``; change comes back to ``node``."""
    _positive(quantity, "the amount to move")
    recipient = node.network.party(recipient.name)
    return _spend(node, token, quantity, [(recipient, quantity)])


def escrow_tokens(
    node: Node,
    token: IssuedTokenType,
    quantity: int,
    escrow: Callable[[Party], Sequence[TransactionState]],
    commands: Sequence[Command],
) -> SignedTransaction:
    """Move ``quantity`` of ``token`` from ``node`` into the escrow states ``escrow(notary)``
    builds (:class:`~kakehashi.ledgers.corda.tokens.model.EscrowedTokens` of another contract,
    holding ``quantity`` in all, under the selected tokens' notary), with that contract's
    ``commands``; change comes back to ``node``. Finality sends the transaction to the escrow
    states' participants."""
    _positive(quantity, "the amount to escrow")
    return _spend(node, token, quantity, [], escrow=escrow, commands=commands)


def redeem_tokens(node: Node, token: IssuedTokenType, quantity: int) -> SignedTransaction:
    """Give ``quantity`` back to the issuer, who signs and destroys it."""
    _positive(quantity, "the amount to redeem")
    return _spend(node, token, quantity, [], redeem=True)


def split_tokens(node: Node, token: IssuedTokenType, parts: int) -> SignedTransaction:
    """Pre-split the whole balance of ``token`` into ``parts`` states of (almost) equal size.

    One large state serialises every spend on it; ``parts`` states let up to ``parts``
    transactions spend in parallel.
    """
    if parts < 1:
        raise InvalidTransactionError("split into at least one part")
    balance = node.db.balance(token.key, node.party.owning_key)
    if balance < parts:
        raise InsufficientBalanceError(
            f"{node.name} holds {balance} units of {token}: too few for {parts} parts"
        )
    return _spend_all_to_self(node, token, balance, parts)


def _spend_all_to_self(
    node: Node, token: IssuedTokenType, balance: int, parts: int
) -> SignedTransaction:
    # A move of the whole balance to ourselves with ``parts`` outputs: pure change.
    sizes = [balance // parts + (1 if i < balance % parts else 0) for i in range(parts)]
    return _spend(node, token, balance, [(node.party, q) for q in sizes])


def balance_of(node: Node, token: IssuedTokenType) -> int:
    return node.db.balance(token.key, node.party.owning_key)
