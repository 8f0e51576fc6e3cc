"""``make demo``: a short story on an embedded Corda-model network.

An issuer creates a yen stablecoin for Bank A; Bank A pre-splits it so payments can run in
parallel, pays Bank B four times at once, and every node's vault is shown — including that the
issuer, who took part in none of the payments, learnt nothing about them.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rich.console import Console
from rich.table import Table

from kakehashi.ledgers.corda.model.transactions import SignedTransaction
from kakehashi.ledgers.corda.node.node import Node
from kakehashi.ledgers.corda.node.setup import EmbeddedNetwork
from kakehashi.ledgers.corda.tokens.flows import (
    balance_of,
    issue_tokens,
    move_tokens,
    split_tokens,
)
from kakehashi.ledgers.corda.tokens.model import Amount, FungibleToken, IssuedTokenType, TokenType

ISSUER = "O=Kakehashi Trust Bank, L=Tokyo, C=JP"
ISSUER_ORG = "Kakehashi Trust Bank"
BANK_A = "O=Bank A, L=London, C=GB"
BANK_B = "O=Bank B, L=Singapore, C=SG"
NOTARY = "O=Notary, L=Zurich, C=CH"


def _vault_table(node: Node, participants: dict[bytes, set[str]]) -> Table:
    table = Table(title=f"{node.name.organisation}'s vault", title_justify="left")
    table.add_column("state")
    table.add_column("amount", justify="right")
    table.add_column("holder")
    for item in node.db.query(FungibleToken):
        data = item.state.data
        assert isinstance(data, FungibleToken)
        table.add_row(
            f"{item.ref.txhash.hex()[:12]}…:{item.ref.index}",
            data.amount.display(),
            data.holder.name.organisation,
        )
    known = node.db.transaction_ids()
    took_part = sum(1 for t in known if node.name.organisation in participants.get(t, set()))
    if not table.row_count:
        table.add_row("(none)", "", "")
    table.caption = f"{len(known)} transaction(s) stored: {took_part} it took part in" + (
        f", {len(known) - took_part} back-chain it verified" if len(known) > took_part else ""
    )
    return table


def run_demo(directory: Path, console: Console) -> None:
    console.rule("[bold]Kakehashi · Corda-model ledger demo")
    console.print(f"Network folder: {directory}")
    net = EmbeddedNetwork.create(directory, NOTARY, [ISSUER, BANK_A, BANK_B])
    issuer, bank_a, bank_b = net.node(ISSUER), net.node(BANK_A), net.node(BANK_B)
    console.print(
        f"Started a notary ({net.notary.name}, non-validating, SQLite commit log) and three nodes, "
        "each with its own vault database, talking through signed messages."
    )
    participants: dict[bytes, set[str]] = {}

    def note(stx: SignedTransaction, parties: set[str]) -> SignedTransaction:
        participants[stx.id] = parties
        return stx

    jpy = TokenType("JPYS", 2)
    token = IssuedTokenType(issuer.party, jpy)

    console.print("\n[bold]① Issue[/]: the trust bank issues ¥1,000,000.00 of JPYS to Bank A")
    stx = note(issue_tokens(issuer, jpy, 100_000_000, bank_a.party), {"Bank A", ISSUER_ORG})
    console.print(f"   tx {stx.id.hex()[:16]}… (issuer-signed; no inputs, so no notarisation)")

    console.print("\n[bold]② Pre-split[/]: Bank A splits its balance into 4 states")
    stx = note(split_tokens(bank_a, token, 4), {"Bank A"})
    console.print(f"   tx {stx.id.hex()[:16]}… notarised: {len(stx.tx.outputs)} states")

    console.print("\n[bold]③ Pay[/]: Bank A pays Bank B four times, concurrently")
    amounts = [12_500_000, 5_000_000, 7_500_000, 2_500_000]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda q: move_tokens(bank_a, token, q, bank_b.party), amounts))
    elapsed = time.perf_counter() - started
    for quantity, paid in zip(amounts, results, strict=True):
        note(paid, {"Bank A", "Bank B"})
        console.print(
            f"   {Amount(quantity, token).display():>16} → Bank B   tx {paid.id.hex()[:16]}…"
        )
    console.print(f"   4 notarised payments in {elapsed * 1000:.0f} ms, each on its own state")

    console.print("\n[bold]④ Double spend[/]: Bank A tries to spend an already spent state")
    from kakehashi.errors import ConflictError
    from kakehashi.ledgers.corda.model.crypto import random_bytes, sign_transaction_id
    from kakehashi.ledgers.corda.model.states import Command, TransactionState
    from kakehashi.ledgers.corda.model.transactions import WireTransaction
    from kakehashi.ledgers.corda.tokens.model import FUNGIBLE_TOKEN_CONTRACT, MoveTokenCommand

    spent = results[0].tx.inputs[0]
    old = bank_a.resolve_state(spent)
    assert isinstance(old.data, FungibleToken)
    wtx = WireTransaction.create(
        privacy_salt=random_bytes(),
        inputs=[spent],
        outputs=[
            TransactionState(
                FungibleToken(old.data.amount, bank_b.party), FUNGIBLE_TOKEN_CONTRACT, old.notary
            )
        ],
        commands=[Command(MoveTokenCommand(token), (bank_a.party.owning_key,))],
        notary=old.notary,
        network_parameters_hash=bank_a.network.parameters.hash(),
    )
    try:
        bank_a.finalise(SignedTransaction(wtx, (sign_transaction_id(bank_a.key, wtx.id),)))
        console.print("   [red]unexpectedly accepted[/]")
    except ConflictError as exc:
        console.print(f"   refused by the notary: [yellow]{type(exc).__name__}[/]: {exc}")

    console.print("\n[bold]⑤ Vaults[/] (need-to-know: each node holds only what concerns it)")
    for node in (issuer, bank_a, bank_b):
        console.print(_vault_table(node, participants))
    console.print(
        f"Balances: Bank A {Amount(balance_of(bank_a, token), token).display()}, "
        f"Bank B {Amount(balance_of(bank_b, token), token).display()}; "
        f"the issuer stores {len(issuer.db.transaction_ids())} transaction(s) — only its issue, "
        "none of the payments."
    )
    net.close()
    console.rule("done")
