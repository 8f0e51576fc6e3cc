"""Token SDK-style fungible tokens: the model and contract, and the flows."""

from kakehashi.ledgers.corda.tokens.model import (
    FUNGIBLE_TOKEN_CONTRACT,
    Amount,
    EscrowedTokens,
    FungibleToken,
    FungibleTokenContract,
    IssuedTokenType,
    IssueTokenCommand,
    MoveTokenCommand,
    RedeemTokenCommand,
    TokenType,
)

__all__ = [
    "FUNGIBLE_TOKEN_CONTRACT",
    "Amount",
    "EscrowedTokens",
    "FungibleToken",
    "FungibleTokenContract",
    "IssueTokenCommand",
    "IssuedTokenType",
    "MoveTokenCommand",
    "RedeemTokenCommand",
    "TokenType",
]
