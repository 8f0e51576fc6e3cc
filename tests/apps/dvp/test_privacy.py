""" "The EVM chain sees only what its part needs": after a committed DVP on the in-process
sandbox, nothing the EVM chain holds — no transaction's input, no log — carries the Corda part's
call (the stablecoin move), the buyer's Corda key (part 0's signer) or the price; the EVM part's
own call is there (the chain ran it)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from kakehashi.cross.auth import corda_key_id
from kakehashi.cross.status import Decision
from kakehashi.cross.tx import ZERO_SALT, Account, SignerKind
from kakehashi.ledgers.corda.tokens.flows import balance_of, issue_tokens
from kakehashi.ops.sandbox import OPERATOR, World
from tests.apps.dvp.test_settlement import JPYC, SELLER, setting, settle

PRICE = 271_828_183  # distinctive: its encoding does not turn up by chance


def everything_the_evm_chain_holds(w3: Any) -> list[bytes]:
    """Every transaction's input data and every log's topics and data, in every block."""
    seen = []
    for number in range(w3.eth.block_number + 1):
        block = w3.eth.get_block(number, full_transactions=True)
        for tx in block["transactions"]:
            seen.append(bytes(tx["input"]))
            for log in w3.eth.get_transaction_receipt(tx["hash"])["logs"]:
                seen.append(bytes(log["data"]) + b"".join(bytes(t) for t in log["topics"]))
    return seen


def test_the_evm_chain_never_sees_the_corda_part_the_buyer_or_the_price(w: World) -> None:
    relayer = w.link()
    terms, _nft = setting(w)
    issue_tokens(w.network.node(OPERATOR), JPYC, PRICE, terms.buyer)  # enough for the price
    terms = replace(terms, price=PRICE)
    tx_id = settle(w, terms, relayer)
    c = w.cross.coordinator(tx_id)
    assert c is not None and c.decision is Decision.COMMIT and c.done
    assert balance_of(w.network.node(SELLER), terms.stablecoin) == PRICE
    corda_part, evm_part = c.tx.contract_transactions
    assert len({corda_part.salt, evm_part.salt, ZERO_SALT}) == 3  # salted at random

    held = everything_the_evm_chain_holds(w.w3)
    assert any(evm_part.call_info in data for data in held)  # its own part: it ran it
    buyer_key = corda_key_id(terms.buyer.owning_key)
    assert corda_part.signers == (Account(SignerKind.LOCAL, buyer_key),)
    hidden = {
        "the Corda part's call": corda_part.call_info,
        "the buyer's Corda key": buyer_key,
        "the price": PRICE.to_bytes(32, "big"),
        "the Corda part's salt": corda_part.salt,
    }
    for what, secret in hidden.items():
        assert not any(secret in data for data in held), f"{what} reached the EVM chain"
    # what it was given instead: part 0's digest, which opens to nothing without its salt
    assert any(corda_part.digest in data for data in held)
