"""Settlement of a post-trade instruction (issue 8, workflow step 5): after the final approval,
securities against cash across the two ledgers, as the DVP of
:mod:`kakehashi.apps.dvp.settlement` — both move, or neither does.

- part 0, the cash, on the Corda model: the settlement amount of the currency's stablecoin
  (an :class:`~kakehashi.ledgers.corda.tokens.model.IssuedTokenType`) from the receiving party
  (it receives the securities, it pays) to the delivering party;
- part 1, the securities, on the EVM chain: the quantity of the ERC-20 security token the
  :class:`SecuritiesRegistry` names for the ISIN, from the delivering party's EVM account to the
  receiving party's (an ERC-20 escrow of ``cross_app.vy``, op 16).

Simple Commit, coordinated by the Corda IBC host: the receiving party deposits the cash and
signs with its Corda key; the delivering party approves the cross application for the
quantity and signs on the EVM chain; the relayer carries the rest. The outcome is an ISO 20022
settlement status (sese.024): ``SETT`` settled, or ``PENF`` failing with the reason — ``LACK``
(lack of securities: the delivering party's ERC-20 escrow failed, it holds too few), ``MONY``
(insufficient money: the receiving party could not deposit the cash), ``OTHR`` (anything
else: a packet timed out, a part misconfigured; the message says which) — or ``PEND`` while
the cross transaction is undecided. A failing settlement leaves both assets where they were.

Amounts are plain values: ``quantity`` (units, or face amount — the security token counts
whichever the instruction's quantity type is, in its smallest unit: ``quantity × 10**decimals``
must be whole) and ``amount`` in the currency (``amount × 10**fraction digits`` of the
stablecoin must be whole).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from kakehashi.apps.dvp.settlement import Terms, dvp_transaction
from kakehashi.apps.posttrade.codes import Payment, PendingReason, SettlementStatus
from kakehashi.apps.posttrade.form import Instruction
from kakehashi.cross.auth import corda_key_id, sign_party
from kakehashi.cross.coordinator import Coordinator
from kakehashi.cross.corda_module import CROSS_PORT
from kakehashi.cross.corda_tokens import deposit
from kakehashi.cross.kv import OP_ERC20
from kakehashi.cross.status import Decision
from kakehashi.cross.tx import Account, ChannelInfo, SignerKind
from kakehashi.errors import ConfigurationError, InsufficientBalanceError, PostTradeError
from kakehashi.ledgers.corda.model.identity import Party
from kakehashi.ledgers.corda.tokens.model import IssuedTokenType
from kakehashi.ledgers.evm.client import transact
from kakehashi.ops.sandbox import World
from kakehashi.relayer.path import PathRelayer

__all__ = [
    "CASH_PART",
    "ERC20_ABI",
    "SECURITIES_PART",
    "SecuritiesRegistry",
    "SecurityToken",
    "SettlementOrder",
    "SettlementOutcome",
    "SettlementParty",
    "order_for",
    "outcome_from",
    "outcome_of",
    "settle",
    "settlement_terms",
    "smallest_units",
]

CASH_PART, SECURITIES_PART = 0, 1  # the parts of the cross transaction (dvp_transaction)

SETT, PENF, PEND = SettlementStatus.SETT, SettlementStatus.PENF, SettlementStatus.PEND
LACK, MONY = PendingReason.LACK, PendingReason.MONY
OTHR = "OTHR"  # ISO 20022 "other" (see the message); not among codes.PendingReason's four

# What settlement calls on the security token: any standard ERC-20 answers it.
ERC20_ABI: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "approve",
        "stateMutability": "nonpayable",
        "inputs": [{"name": "spender", "type": "address"}, {"name": "amount", "type": "uint256"}],
        "outputs": [{"name": "", "type": "bool"}],
    },
    {
        "type": "function",
        "name": "balanceOf",
        "stateMutability": "view",
        "inputs": [{"name": "owner", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
]


@dataclass(frozen=True)
class SecurityToken:
    """The ERC-20 standing for one security on the EVM chain: its 20-byte address and how many
    decimals its smallest unit has (0: one unit per share or per unit of face amount)."""

    address: bytes
    decimals: int = 0

    def __post_init__(self) -> None:
        if len(self.address) != 20:
            raise ConfigurationError("a security token's address is 20 bytes")
        if not 0 <= self.decimals <= 77:
            raise ConfigurationError("a security token's decimals are between 0 and 77")


@dataclass(frozen=True)
class SecuritiesRegistry:
    """ISIN (ISO 6166) → the ERC-20 security token settling it, as the caller configures it."""

    tokens: Mapping[str, SecurityToken]

    def token(self, isin: str) -> SecurityToken:
        found = self.tokens.get(isin)
        if found is None:
            known = ", ".join(sorted(self.tokens)) or "none"
            raise ConfigurationError(
                f"no security token on the EVM chain for ISIN {isin!r} (registered: {known})"
            )
        return found


@dataclass(frozen=True)
class SettlementParty:
    """A party's identity on both ledgers: its X.500 name on the Corda model and its 20-byte
    account on the EVM chain."""

    name: str
    evm: bytes


@dataclass(frozen=True)
class SettlementOrder:
    """What settles, as plain values (the fields of a matched, approved sese.023 instruction
    that settlement needs): ``quantity`` of ``isin`` from ``delivering`` to ``receiving``
    against ``amount`` of ``currency`` (ISO 4217) the other way."""

    reference: str
    isin: str
    quantity: Decimal
    amount: Decimal
    currency: str
    delivering: SettlementParty
    receiving: SettlementParty


@dataclass(frozen=True)
class SettlementOutcome:
    """An ISO 20022 settlement status (``SETT`` / ``PENF`` / ``PEND``), the pending/failing
    reason code (``LACK``, ``MONY``, ``OTHR``; ``None`` unless failing) and a message naming
    the party, the ledger and why; ``tx_id`` is the cross transaction's."""

    status: SettlementStatus
    reason: str | None  # a PendingReason, or OTHR
    message: str
    tx_id: bytes

    @property
    def settled(self) -> bool:
        return self.status == SETT


def order_for(instruction: Instruction, agents: Mapping[str, SettlementParty]) -> SettlementOrder:
    """The settlement order of a (matched, approved) sese.023 ``instruction``: its ISIN,
    quantity, settlement amount and currency; the delivering and receiving parties are its
    delivering and receiving agents' identities on the two ledgers (``agents``: BIC → party).
    Free of payment (FREE) has no cash leg and is no DVP: refused."""
    if instruction.payment is not Payment.APMT:
        raise PostTradeError(
            f"{instruction.sender_reference}: free of payment ({instruction.payment}) has no "
            "cash leg; settlement runs a delivery versus payment (APMT) only"
        )
    sides = []
    for role, bic in (
        ("delivering", instruction.delivering_agent),
        ("receiving", instruction.receiving_agent),
    ):
        party = agents.get(bic)
        if party is None:
            raise ConfigurationError(
                f"the {role} agent {bic} has no identity on the ledgers "
                f"(known agents: {', '.join(sorted(agents)) or 'none'})"
            )
        sides.append(party)
    return SettlementOrder(
        instruction.sender_reference,
        instruction.isin,
        instruction.quantity,
        instruction.settlement_amount,
        instruction.currency,
        sides[0],
        sides[1],
    )


def smallest_units(value: Decimal, decimals: int, what: str) -> int:
    """``value`` in a token's smallest unit (``value × 10**decimals``), refused unless whole
    and not negative — a settlement never rounds."""
    scaled = value.scaleb(decimals)
    if not value.is_finite() or scaled != scaled.to_integral_value() or scaled < 0:
        raise PostTradeError(
            f"{what} {value} is not a whole number of the token's smallest unit "
            f"({decimals} decimals)"
        )
    return int(scaled)


def settlement_terms(
    order: SettlementOrder,
    securities: SecuritiesRegistry,
    cash: Mapping[str, IssuedTokenType],
    parties: Mapping[str, Party],
) -> Terms:
    """The DVP terms of ``order``: the receiving party buys ``quantity`` of the ISIN's ERC-20
    with ``amount`` of the currency's stablecoin (``cash``: ISO 4217 code → stablecoin);
    ``parties`` resolves the Corda-model names."""
    coin = cash.get(order.currency)
    if coin is None:
        raise ConfigurationError(
            f"no stablecoin on the Corda model for currency {order.currency!r} "
            f"(configured: {', '.join(sorted(cash)) or 'none'})"
        )
    token = securities.token(order.isin)
    for side in (order.delivering, order.receiving):
        if side.name not in parties:
            raise ConfigurationError(f"{side.name} is not a party of the Corda-model network")
    return Terms(
        coin,
        smallest_units(order.amount, coin.token_type.fraction_digits, "the settlement amount"),
        token.address,
        smallest_units(order.quantity, token.decimals, f"the quantity of {order.isin}"),
        parties[order.receiving.name],
        parties[order.delivering.name],
        order.receiving.evm,
        order.delivering.evm,
        OP_ERC20,
    )


def outcome_of(
    order: SettlementOrder,
    c: Coordinator,
    *,
    cash_refused: str | None = None,
    securities_held: int | None = None,
    securities_due: int | None = None,
) -> SettlementOutcome:
    """The settlement status of ``order`` from its cross transaction's coordinator (see
    :func:`outcome_from`)."""
    return outcome_from(
        order,
        c.tx.tx_id,
        c.decision,
        {**c.failures, **c.rejected},
        cash_refused=cash_refused,
        securities_held=securities_held,
        securities_due=securities_due,
    )


def outcome_from(
    order: SettlementOrder,
    tx_id: bytes,
    decision: Decision,
    why: Mapping[int, str],
    *,
    cash_refused: str | None = None,
    securities_held: int | None = None,
    securities_due: int | None = None,
) -> SettlementOutcome:
    """The settlement status of ``order`` from its cross transaction's ``decision`` and why
    parts failed (``why``: part → reason): committed → ``SETT``; aborted → ``PENF`` with
    ``MONY`` when the receiving party's cash was not there (``cash_refused``: why its deposit
    was refused; or the cash part failed for want of a deposit), ``LACK`` when the securities
    part failed and the delivering party holds fewer than due (``securities_held`` <
    ``securities_due``), ``OTHR`` otherwise; undecided → ``PEND``."""
    deliverer, receiver = order.delivering, order.receiving
    if decision is Decision.COMMIT:
        return SettlementOutcome(
            SETT,
            None,
            f"settled: {order.quantity} {order.isin} delivered by {deliverer.name} to "
            f"{receiver.name} on the EVM chain against {order.amount} {order.currency} paid "
            f"by {receiver.name} to {deliverer.name} on the Corda model",
            tx_id,
        )
    if decision is Decision.UNKNOWN:
        return SettlementOutcome(PEND, None, "the cross transaction is not decided yet", tx_id)
    if cash_refused is None and "no deposit" in why.get(CASH_PART, ""):
        cash_refused = why[CASH_PART]  # the receiving party never deposited the cash
    if cash_refused is not None:
        return SettlementOutcome(
            PENF,
            MONY,
            f"{receiver.name} lacks the cash on the Corda model: it could not deposit "
            f"{order.amount} {order.currency} ({cash_refused}); nothing moved",
            tx_id,
        )
    failed = why.get(SECURITIES_PART)
    short = (
        securities_held is not None
        and securities_due is not None
        and securities_held < securities_due
    )
    if failed is not None and short:
        return SettlementOutcome(
            PENF,
            LACK,
            f"{deliverer.name} lacks the securities on the EVM chain: account "
            f"0x{deliverer.evm.hex()} holds {securities_held} of the {securities_due} units "
            f"of {order.isin} due ({failed}); nothing moved, the cash refunded to {receiver.name}",
            tx_id,
        )
    parts = "; ".join(
        f"part {i} ({'Corda model' if i == CASH_PART else 'EVM chain'}): {reason}"
        for i, reason in sorted(why.items())
    )
    return SettlementOutcome(PENF, OTHR, f"aborted: {parts or 'timed out'}", tx_id)


def settle(
    w: World,
    relayer: PathRelayer,
    order: SettlementOrder,
    securities: SecuritiesRegistry,
    cash: Mapping[str, IssuedTokenType],
    *,
    delivering_signer: LocalAccount,
    timeout_s: float = 600,
    max_rounds: int = 12,
) -> SettlementOutcome:
    """Settle ``order`` on the sandbox ``w`` (linked; ``relayer`` relays its path) the way the
    DVP demo does (module docstring): the host initiates, the receiving party deposits and
    signs on the Corda model (a refused deposit — too little cash — is recorded, and it signs
    anyway so that the transaction aborts everywhere rather than waits for its timeout), the
    delivering party (``delivering_signer``: its EVM key) approves and signs on the EVM chain,
    and the relayer runs until the host has decided (at most ``max_rounds`` rounds)."""
    if w.record is None:
        raise ConfigurationError("settlement needs a linked sandbox: call World.link() first")
    if bytes.fromhex(delivering_signer.address[2:]) != order.delivering.evm:
        raise ConfigurationError(
            f"the signer {delivering_signer.address} is not {order.delivering.name}'s "
            f"EVM account 0x{order.delivering.evm.hex()}"
        )
    receiver = w.network.node(order.receiving.name)
    parties = {
        side.name: receiver.network.party(side.name) for side in (order.delivering, order.receiving)
    }
    terms = settlement_terms(order, securities, cash, parties)
    timeout = time.time_ns() + int(timeout_s * 1e9)
    tx = dvp_transaction(
        terms,
        ChannelInfo(CROSS_PORT, w.record.b_channel_id),
        nonce=time.time_ns(),
        timeout_ns=timeout,
        chain_id="posttrade",
    )
    w.cross.initiate(tx)
    cash_refused: str | None = None
    try:
        deposit(
            receiver,
            terms.stablecoin,
            terms.price,
            recipient=terms.seller,
            operator=w.host.node.party,
            tx_id=tx.tx_id,
            index=CASH_PART,
            expiry_ns=timeout,
        )
    except InsufficientBalanceError as exc:
        cash_refused = str(exc)
    me = Account(SignerKind.LOCAL, corda_key_id(receiver.party.owning_key))
    w.cross.sign(tx.tx_id, me, sign_party(receiver.key, tx.tx_id))
    token = w.w3.eth.contract(address=to_checksum_address(terms.token), abi=ERC20_ABI)
    transact(w.w3, token.functions.approve(w.app.address, terms.amount), sender=delivering_signer)
    view = tx.view(SECURITIES_PART).encode()
    sign = w.auth.functions.sign_remote(view, SECURITIES_PART, w.record.a_channel_id)
    transact(w.w3, sign, sender=delivering_signer)
    c = w.cross.coordinator(tx.tx_id)
    for _ in range(max_rounds):
        relayer.relay_once()
        c = w.cross.coordinator(tx.tx_id)
        if c is not None and c.done:
            break
    assert c is not None
    held = int(token.functions.balanceOf(delivering_signer.address).call())
    return outcome_of(
        order, c, cash_refused=cash_refused, securities_held=held, securities_due=terms.amount
    )
