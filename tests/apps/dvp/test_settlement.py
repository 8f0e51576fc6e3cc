"""The DVP settled across the two ledgers over the real LCP path: a stablecoin on the Corda
model (issued by the bank that runs the IBC host, held by the buyer) against an ERC-721 on the
EVM chain — both move, or neither does; a node not party to the trade receives nothing."""

from __future__ import annotations

import time
from typing import Any

import pytest

from kakehashi.apps.dvp.settlement import Terms, dvp_transaction
from kakehashi.cross.auth import corda_key_id, sign_party
from kakehashi.cross.corda_module import CROSS_PORT
from kakehashi.cross.corda_tokens import deposit
from kakehashi.cross.status import Decision
from kakehashi.cross.tx import Account, ChannelInfo, SignerKind
from kakehashi.ledgers.corda.tokens.flows import balance_of, issue_tokens
from kakehashi.ledgers.corda.tokens.model import IssuedTokenType, TokenType
from kakehashi.ledgers.evm import toolchain
from kakehashi.ledgers.evm.chain import dev_accounts
from kakehashi.ledgers.evm.client import transact
from kakehashi.relayer.path import PathRelayer
from tests.relayer.support import OPERATOR, World

BUYER = "O=Buyer Trust, L=Tokyo, C=JP"
SELLER = "O=Seller Arts, L=Paris, C=FR"
OUTSIDER = "O=Someone Else, L=Seoul, C=KR"
BUYER_EVM, SELLER_EVM, MINTER = dev_accounts()[4], dev_accounts()[5], dev_accounts()[0]
JPYC = TokenType("JPYC", 0)


def address(account: Any) -> bytes:
    return bytes.fromhex(account.address[2:])


def run(relayer: PathRelayer, rounds: int = 6) -> None:
    for _ in range(rounds):
        assert not relayer.relay_once().failed


def setting(w: World) -> tuple[Terms, Any]:
    """The bank issues 1,000 JPYC to the buyer; an ERC-721 (any standard one: ours here) has
    token 7 minted to the seller, who lets the cross application move it."""
    bank = w.network.node(OPERATOR)
    buyer, seller = w.network.node(BUYER).party, w.network.node(SELLER).party
    issue_tokens(bank, JPYC, 1_000, buyer)
    nft = toolchain.deploy(w.w3, "tokens/erc721", "Art", "ART", "https://art/", sender=MINTER)
    transact(w.w3, nft.functions.mint(SELLER_EVM.address, 7, "7.json"), sender=MINTER)
    transact(w.w3, nft.functions.approve(w.app.address, 7), sender=SELLER_EVM)
    terms = Terms(
        IssuedTokenType(bank.party, JPYC),
        300,
        address(nft),
        7,
        buyer,
        seller,
        address(BUYER_EVM),
        address(SELLER_EVM),
    )
    return terms, nft


def settle(w: World, terms: Terms, relayer: PathRelayer) -> bytes:
    """Steps 2-7 of the settlement (kakehashi.apps.dvp.settlement)."""
    assert w.record is not None
    timeout = time.time_ns() + 600 * 10**9
    tx = dvp_transaction(
        terms, ChannelInfo(CROSS_PORT, w.record.b_channel_id), nonce=1, timeout_ns=timeout
    )
    w.cross.initiate(tx)  # ② the host initiates: nothing runs before both have signed
    buyer = w.network.node(BUYER)
    deposit(  # ③ the buyer consents on its ledger: the price deposited for part 0, and signs
        buyer,
        terms.stablecoin,
        terms.price,
        recipient=terms.seller,
        operator=w.host.node.party,
        tx_id=tx.tx_id,
        index=0,
        expiry_ns=timeout,
    )
    me = Account(SignerKind.LOCAL, corda_key_id(buyer.party.owning_key))
    w.cross.sign(tx.tx_id, me, sign_party(buyer.key, tx.tx_id))
    sign = w.auth.functions.sign_remote(tx.view(1).encode(), 1, w.record.a_channel_id)
    transact(w.w3, sign, sender=SELLER_EVM)  # ③ the seller signs on the EVM chain
    run(relayer)  # ④-⑦
    return tx.tx_id


def test_the_stablecoin_pays_for_the_nft(w: World) -> None:
    relayer = w.link()
    terms, nft = setting(w)
    tx_id = settle(w, terms, relayer)
    c = w.cross.coordinator(tx_id)
    assert c is not None and c.decision is Decision.COMMIT and c.done
    assert nft.functions.ownerOf(7).call() == BUYER_EVM.address
    assert balance_of(w.network.node(SELLER), terms.stablecoin) == 300
    assert balance_of(w.network.node(BUYER), terms.stablecoin) == 700
    assert w.network.node(OUTSIDER).db.query() == []  # no transaction of the trade reached it
    assert not w.cross.app.locks() and int(w.app.functions.locks_held().call()) == 0


def test_a_seller_who_no_longer_owns_the_nft_leaves_both_assets_where_they_were(
    w: World,
) -> None:
    relayer = w.link()
    terms, nft = setting(w)
    other = dev_accounts()[6]
    transact(  # after agreeing, the seller transfers the NFT away
        w.w3,
        nft.functions.transferFrom(SELLER_EVM.address, other.address, 7),
        sender=SELLER_EVM,
    )
    tx_id = settle(w, terms, relayer)
    c = w.cross.coordinator(tx_id)
    assert c is not None and c.decision is Decision.ABORT and c.done
    assert "transferFrom" in c.failures[1]  # which part, which ledger, why
    assert nft.functions.ownerOf(7).call() == other.address
    assert balance_of(w.network.node(BUYER), terms.stablecoin) == 1_000  # refunded
    assert balance_of(w.network.node(SELLER), terms.stablecoin) == 0
    assert not w.cross.app.locks() and int(w.app.functions.locks_held().call()) == 0


def test_a_buyer_who_cannot_pay_leaves_both_assets_where_they_were(w: World) -> None:
    """The buyer's balance is too low to deposit the price: it signs anyway, the host's
    prepare finds no deposit and fails, and the NFT never moves."""
    from dataclasses import replace

    from kakehashi.errors import InsufficientBalanceError

    relayer = w.link()
    terms, nft = setting(w)
    terms = replace(terms, price=5_000)
    with pytest.raises(InsufficientBalanceError):
        settle(w, terms, relayer)  # the deposit is refused before anything is signed
    assert w.record is not None
    # signing without the deposit: the prepare fails and the trade aborts everywhere
    (tx_id,) = w.cross.coordinated()
    c = w.cross.coordinator(tx_id)
    assert c is not None
    buyer = w.network.node(BUYER)
    me = Account(SignerKind.LOCAL, corda_key_id(buyer.party.owning_key))
    w.cross.sign(tx_id, me, sign_party(buyer.key, tx_id))
    transact(
        w.w3,
        w.auth.functions.sign_remote(c.tx.view(1).encode(), 1, w.record.a_channel_id),
        sender=SELLER_EVM,
    )
    run(relayer)
    c = w.cross.coordinator(tx_id)
    assert c is not None and c.decision is Decision.ABORT and c.done
    assert "deposit" in c.failures[0]
    assert nft.functions.ownerOf(7).call() == SELLER_EVM.address
    assert balance_of(buyer, terms.stablecoin) == 1_000
    assert int(w.app.functions.locks_held().call()) == 0
