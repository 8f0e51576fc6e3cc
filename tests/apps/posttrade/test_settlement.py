"""Post-trade settlement (issue 8, step 5) on the real in-process sandbox: an ERC-20 security
token on the EVM chain against a JPY stablecoin on the Corda model through the Cross
Framework — settled (both move), or failing with LACK / MONY and nothing moved."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kakehashi.apps.posttrade.codes import Direction, Payment, QuantityType
from kakehashi.apps.posttrade.form import Instruction
from kakehashi.apps.posttrade.settlement import (
    SecuritiesRegistry,
    SecurityToken,
    SettlementOrder,
    SettlementParty,
    order_for,
    settle,
    smallest_units,
)
from kakehashi.cross.corda_apps import apps_factory
from kakehashi.cross.corda_tokens import TokenEscrowApp
from kakehashi.errors import ConfigurationError, PostTradeError
from kakehashi.ledgers.corda.tokens.flows import balance_of, issue_tokens
from kakehashi.ledgers.corda.tokens.model import IssuedTokenType, TokenType
from kakehashi.ledgers.evm import toolchain
from kakehashi.ledgers.evm.chain import dev_accounts
from kakehashi.ledgers.evm.client import transact
from kakehashi.ops.sandbox import OPERATOR, World, world

RECEIVER = "O=Overseas Asset Management, L=London, C=GB"  # buys the shares, pays JPY
DELIVERER = "O=Domestic Securities, L=Tokyo, C=JP"  # delivers the shares, is paid
OUTSIDER = "O=Someone Else, L=Seoul, C=KR"
RECEIVER_EVM, DELIVERER_EVM, ISSUER = dev_accounts()[4], dev_accounts()[5], dev_accounts()[0]
ISIN = "JP3633400001"
JPYC = TokenType("JPYC", 0)
QUANTITY, AMOUNT = Decimal(1_000), Decimal(2_500_000)  # 1,000 shares at JPY 2,500


def address(account: Any) -> bytes:
    return bytes.fromhex(account.address[2:])


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(
        tmp_path,
        cross=True,
        corda_nodes=(OPERATOR, RECEIVER, DELIVERER, OUTSIDER),
        cross_apps=apps_factory(TokenEscrowApp),
    ) as built:
        yield built


def market(w: World, *, shares: int, yen: int) -> tuple[Any, SecuritiesRegistry, IssuedTokenType]:
    """The bank issues ``yen`` JPYC to the receiving party; the issuer's ERC-20 for the ISIN
    (any standard ERC-20: the repo's here) gives ``shares`` to the delivering party."""
    bank = w.network.node(OPERATOR)
    issue_tokens(bank, JPYC, yen, w.network.node(RECEIVER).party)
    stock = toolchain.deploy(w.w3, "tokens/erc20", "Toyota Motor", "7203", 0, 10_000, sender=ISSUER)
    transact(w.w3, stock.functions.transfer(DELIVERER_EVM.address, shares), sender=ISSUER)
    registry = SecuritiesRegistry({ISIN: SecurityToken(address(stock))})
    return stock, registry, IssuedTokenType(bank.party, JPYC)


def order() -> SettlementOrder:
    return SettlementOrder(
        "SR-0001",
        ISIN,
        QUANTITY,
        AMOUNT,
        "JPY",
        SettlementParty(DELIVERER, address(DELIVERER_EVM)),
        SettlementParty(RECEIVER, address(RECEIVER_EVM)),
    )


def holdings(w: World, stock: Any, coin: IssuedTokenType) -> dict[str, int]:
    return {
        "receiver_shares": stock.functions.balanceOf(RECEIVER_EVM.address).call(),
        "deliverer_shares": stock.functions.balanceOf(DELIVERER_EVM.address).call(),
        "receiver_yen": balance_of(w.network.node(RECEIVER), coin),
        "deliverer_yen": balance_of(w.network.node(DELIVERER), coin),
    }


def no_locks(w: World) -> bool:
    return not w.cross.app.locks() and int(w.app.functions.locks_held().call()) == 0


def test_settled_the_securities_and_the_cash_both_move(w: World) -> None:
    relayer = w.link()
    stock, registry, coin = market(w, shares=1_000, yen=3_000_000)
    outcome = settle(w, relayer, order(), registry, {"JPY": coin}, delivering_signer=DELIVERER_EVM)
    assert (outcome.status, outcome.reason, outcome.settled) == ("SETT", None, True)
    assert DELIVERER in outcome.message and RECEIVER in outcome.message
    assert holdings(w, stock, coin) == {
        "receiver_shares": 1_000,
        "deliverer_shares": 0,
        "receiver_yen": 500_000,
        "deliverer_yen": 2_500_000,
    }
    assert no_locks(w)
    assert w.network.node(OUTSIDER).db.query() == []  # no transaction of the trade reached it


def test_lack_the_delivering_party_holds_too_few_shares(w: World) -> None:
    relayer = w.link()
    stock, registry, coin = market(w, shares=400, yen=3_000_000)
    outcome = settle(w, relayer, order(), registry, {"JPY": coin}, delivering_signer=DELIVERER_EVM)
    assert (outcome.status, outcome.reason, outcome.settled) == ("PENF", "LACK", False)
    # the party, the ledger and why
    assert DELIVERER in outcome.message and "EVM chain" in outcome.message
    assert "holds 400 of the 1000 units" in outcome.message
    assert holdings(w, stock, coin) == {  # nothing moved; the receiver's deposit refunded
        "receiver_shares": 0,
        "deliverer_shares": 400,
        "receiver_yen": 3_000_000,
        "deliverer_yen": 0,
    }
    assert no_locks(w)


def test_mony_the_receiving_party_lacks_the_cash(w: World) -> None:
    relayer = w.link()
    stock, registry, coin = market(w, shares=1_000, yen=1_000_000)
    outcome = settle(w, relayer, order(), registry, {"JPY": coin}, delivering_signer=DELIVERER_EVM)
    assert (outcome.status, outcome.reason) == ("PENF", "MONY")
    assert RECEIVER in outcome.message and "Corda model" in outcome.message
    c = w.cross.coordinator(outcome.tx_id)
    assert c is not None and c.done  # aborted everywhere, not left to time out
    assert holdings(w, stock, coin) == {
        "receiver_shares": 0,
        "deliverer_shares": 1_000,
        "receiver_yen": 1_000_000,
        "deliverer_yen": 0,
    }
    assert no_locks(w)


def test_amounts_settle_in_whole_smallest_units_only() -> None:
    assert smallest_units(Decimal("12.5"), 2, "amount") == 1_250
    assert smallest_units(Decimal("1E+3"), 0, "quantity") == 1_000
    for bad in (Decimal("0.5"), Decimal("-1"), Decimal("NaN")):
        with pytest.raises(PostTradeError, match="whole number"):
            smallest_units(bad, 0, "quantity")


def test_an_isin_without_a_security_token_is_refused() -> None:
    registry = SecuritiesRegistry({ISIN: SecurityToken(b"\x11" * 20)})
    assert registry.token(ISIN).decimals == 0
    with pytest.raises(ConfigurationError, match="US0378331005"):
        registry.token("US0378331005")


def instruction(payment: Payment = Payment.APMT) -> Instruction:
    """The receiving side's sese.023 instruction of the trade :func:`order` settles."""
    return Instruction(
        sender_reference="SR-0001",
        direction=Direction.RECE,
        payment=payment,
        trade_date=date(2026, 11, 26),
        settlement_date=date(2026, 11, 30),
        isin=ISIN,
        quantity=QUANTITY,
        quantity_type=QuantityType.UNIT,
        deal_price=Decimal(2_500),
        settlement_amount=AMOUNT if payment is Payment.APMT else Decimal(0),
        currency="JPY",
        safekeeping_account="OVAM-0001",
        delivering_agent="DOMSJPJT",
        receiving_agent="OVAMGB2L",
        place_of_settlement="JJSDJPJT",
        counterparty=DELIVERER,
    )


AGENTS = {
    "DOMSJPJT": SettlementParty(DELIVERER, address(DELIVERER_EVM)),
    "OVAMGB2L": SettlementParty(RECEIVER, address(RECEIVER_EVM)),
}


def test_an_approved_instruction_gives_the_settlement_order() -> None:
    assert order_for(instruction(), AGENTS) == order()


def test_free_of_payment_or_an_unknown_agent_is_no_dvp() -> None:
    with pytest.raises(PostTradeError, match="free of payment"):
        order_for(instruction(Payment.FREE), AGENTS)
    with pytest.raises(ConfigurationError, match="receiving agent OVAMGB2L"):
        order_for(instruction(), {"DOMSJPJT": AGENTS["DOMSJPJT"]})
