"""Token SDK model: token types, issued token types, fungible tokens and their contract.

Rules of the fungible token contract, applied per issued token type found in a transaction:

* exactly one token command for each issued token type present;
* Issue: no inputs of that type, at least one output, the issuer signs;
* Move: at least one input and one output, the sum of inputs equals the sum of outputs, every
  input holder signs;
* Redeem: at least one input, at most one (change) output, less out than in, the issuer and
  every input holder sign;
* no output holds zero (or a negative) amount.

**Escrowed tokens.** A state of another contract may hold an amount out of any holder's reach
(:class:`EscrowedTokens`: a deposit, a lock). A Move counts escrowed amounts with the fungible
tokens, so moving tokens into escrow and out of it conserves the amount; whether an escrowed
amount may be released is the escrowing contract's rule (it runs, since its state names it),
so no holder signature is asked for an escrowed input. A Redeem may destroy escrowed inputs
(the issuer signs, as for any redeem: an issuer paying out of escrow by re-issuing, which gives
the payee a token without the escrow's history); nothing is issued or redeemed into escrow.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from kakehashi.errors import InvalidTransactionError
from kakehashi.ledgers.corda.model.contracts import contract, require
from kakehashi.ledgers.corda.model.identity import Party
from kakehashi.ledgers.corda.model.serialization import serializable
from kakehashi.ledgers.corda.model.states import CommandData, ContractState, FungibleState
from kakehashi.ledgers.corda.model.transactions import LedgerTransaction

FUNGIBLE_TOKEN_CONTRACT = "kakehashi.tokens.FungibleTokenContract"


@serializable("tokens.TokenType")
@dataclass(frozen=True, slots=True, order=True)
class TokenType:
    """What is counted, e.g. ``TokenType("JPYC", 2)``: an identifier and its decimal places."""

    token_identifier: str
    fraction_digits: int = 0

    def __post_init__(self) -> None:
        if not self.token_identifier or len(self.token_identifier) > 64:
            raise InvalidTransactionError("a token identifier must have 1 to 64 characters")
        if not 0 <= self.fraction_digits <= 18:
            raise InvalidTransactionError("fraction digits must be between 0 and 18")


@serializable("tokens.IssuedTokenType")
@dataclass(frozen=True, slots=True)
class IssuedTokenType:
    """A token type together with the party that issued it (and answers for it)."""

    issuer: Party
    token_type: TokenType

    @property
    def key(self) -> str:
        """Stable text identifying this issued type (vault index key)."""
        return (
            f"{self.token_type.token_identifier}/{self.token_type.fraction_digits}"
            f"@{self.issuer.owning_key.to_text()}"
        )

    def __str__(self) -> str:
        return f"{self.token_type.token_identifier} issued by {self.issuer.name}"


@serializable("tokens.Amount")
@dataclass(frozen=True, slots=True)
class Amount:
    """A quantity of an issued token type, in its smallest unit."""

    quantity: int
    token: IssuedTokenType

    def display(self) -> str:
        digits = self.token.token_type.fraction_digits
        whole = f"{self.quantity / 10**digits:,.{digits}f}" if digits else f"{self.quantity:,}"
        return f"{whole} {self.token.token_type.token_identifier}"


@serializable("tokens.FungibleToken")
@dataclass(frozen=True, slots=True)
class FungibleToken(FungibleState):
    """An amount of an issued token type held by ``holder``."""

    amount: Amount
    holder: Party

    @property
    def participants(self) -> tuple[Party, ...]:
        return (self.holder,)

    @property
    def owner(self) -> Party:
        return self.holder

    @property
    def quantity(self) -> int:
        return self.amount.quantity

    @property
    def token_key(self) -> str:
        return self.amount.token.key

    @property
    def issued_token(self) -> IssuedTokenType:
        return self.amount.token


class EscrowedTokens(ContractState):
    """An amount of an issued token held by a state of another contract (module docstring)."""

    amount: Amount


class TokenCommand(CommandData):
    token: IssuedTokenType


@serializable("tokens.IssueTokenCommand")
@dataclass(frozen=True, slots=True)
class IssueTokenCommand(TokenCommand):
    token: IssuedTokenType


@serializable("tokens.MoveTokenCommand")
@dataclass(frozen=True, slots=True)
class MoveTokenCommand(TokenCommand):
    token: IssuedTokenType


@serializable("tokens.RedeemTokenCommand")
@dataclass(frozen=True, slots=True)
class RedeemTokenCommand(TokenCommand):
    token: IssuedTokenType


@contract(FUNGIBLE_TOKEN_CONTRACT)
class FungibleTokenContract:
    """Token SDK fungible token rules (see the module docstring)."""

    def verify(self, tx: LedgerTransaction) -> None:
        inputs: dict[IssuedTokenType, list[FungibleToken]] = defaultdict(list)
        outputs: dict[IssuedTokenType, list[FungibleToken]] = defaultdict(list)
        for state in tx.inputs_of_type(FungibleToken):
            inputs[state.issued_token].append(state)
        for state in tx.outputs_of_type(FungibleToken):
            outputs[state.issued_token].append(state)
        escrow_in: dict[IssuedTokenType, list[int]] = defaultdict(list)
        escrow_out: dict[IssuedTokenType, list[int]] = defaultdict(list)
        for escrow in tx.inputs_of_type(EscrowedTokens):
            escrow_in[escrow.amount.token].append(escrow.amount.quantity)
        for escrow in tx.outputs_of_type(EscrowedTokens):
            escrow_out[escrow.amount.token].append(escrow.amount.quantity)
        for out in tx.outputs:
            if isinstance(out.data, FungibleToken) and out.contract != FUNGIBLE_TOKEN_CONTRACT:
                raise InvalidTransactionError("a fungible token must name the token contract")
            if isinstance(out.data, EscrowedTokens) and out.contract == FUNGIBLE_TOKEN_CONTRACT:
                raise InvalidTransactionError(
                    "escrowed tokens name the contract that releases them, not the token contract"
                )
        commands: dict[IssuedTokenType, list[tuple[TokenCommand, frozenset[object]]]] = defaultdict(
            list
        )
        for command in tx.commands_of_type(TokenCommand):
            value = command.value
            assert isinstance(value, TokenCommand)
            commands[value.token].append((value, frozenset(command.signers)))
        tokens = sorted(
            set(inputs) | set(outputs) | set(commands) | set(escrow_in) | set(escrow_out),
            key=lambda t: t.key,
        )
        for token in tokens:
            require(
                len(commands.get(token, [])) == 1,
                f"exactly one token command is needed for {token}",
            )
        for token in tokens:
            value, signers = commands[token][0]
            escrowed = (escrow_in.get(token, []), escrow_out.get(token, []))
            if escrowed != ([], []):
                self._verify_escrow(value, escrowed[0], escrowed[1])
            self._verify_group(
                value,
                signers,
                inputs.get(token, []),
                outputs.get(token, []),
                sum(escrowed[0]),
                sum(escrowed[1]),
            )

    @staticmethod
    def _verify_escrow(command: TokenCommand, ins: list[int], outs: list[int]) -> None:
        token = command.token
        require(
            isinstance(command, MoveTokenCommand)
            or (isinstance(command, RedeemTokenCommand) and not outs),
            f"escrowed {token} moves with a Move or is redeemed (never issued into escrow)",
        )
        require(all(q > 0 for q in (*ins, *outs)), f"escrowed {token} must be a positive amount")

    @staticmethod
    def _verify_group(
        command: TokenCommand,
        signers: frozenset[object],
        ins: list[FungibleToken],
        outs: list[FungibleToken],
        escrowed_in: int = 0,
        escrowed_out: int = 0,
    ) -> None:
        token = command.token
        require(
            all(o.quantity > 0 for o in outs), f"outputs of {token} must hold a positive amount"
        )
        total_in = sum(i.quantity for i in ins) + escrowed_in
        total_out = sum(o.quantity for o in outs) + escrowed_out
        holders_signed = all(i.holder.owning_key in signers for i in ins)
        if isinstance(command, IssueTokenCommand):
            require(not ins, f"an issue of {token} cannot consume {token} inputs")
            require(bool(outs), f"an issue of {token} must create at least one output")
            require(token.issuer.owning_key in signers, f"the issuer must sign an issue of {token}")
        elif isinstance(command, MoveTokenCommand):
            require(bool(ins) or escrowed_in > 0, f"a move of {token} needs at least one input")
            require(bool(outs) or escrowed_out > 0, f"a move of {token} needs at least one output")
            require(
                total_in == total_out,
                f"a move of {token} must conserve the amount: {total_in} in, {total_out} out",
            )
            require(holders_signed, f"every holder of a moved {token} input must sign")
        elif isinstance(command, RedeemTokenCommand):
            require(bool(ins) or escrowed_in > 0, f"a redeem of {token} needs at least one input")
            require(len(outs) <= 1, f"a redeem of {token} may have at most one change output")
            require(total_out < total_in, f"a redeem of {token} must destroy a positive amount")
            require(token.issuer.owning_key in signers, f"the issuer must sign a redeem of {token}")
            require(holders_signed, f"every holder of a redeemed {token} input must sign")
        else:
            raise InvalidTransactionError(f"unknown token command {type(command).__name__}")
