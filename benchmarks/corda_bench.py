"""Benchmarks of the Corda-model ledger (printed figures, never timed assertions).

* Notarised token moves per second, in-process: sequential, then with the payer's balance
  pre-split into k = 1, 2, 4, 8, 16 states spent by k concurrent flows (speed-up against k = 1).
* Vault query latency with 1k, 10k and 100k states in the vault (ratio 100k / 1k).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kakehashi.errors import InsufficientBalanceError
from kakehashi.ledgers.corda.model.crypto import KeyPair, random_bytes, sign_transaction_id
from kakehashi.ledgers.corda.model.identity import Party, X500Name
from kakehashi.ledgers.corda.model.states import Command, StateRef, TransactionState
from kakehashi.ledgers.corda.model.transactions import SignedTransaction, WireTransaction
from kakehashi.ledgers.corda.node.setup import EmbeddedNetwork
from kakehashi.ledgers.corda.node.storage import make_engine, sqlite_url
from kakehashi.ledgers.corda.node.vault import NodeDatabase
from kakehashi.ledgers.corda.tokens.flows import issue_tokens, move_tokens, split_tokens
from kakehashi.ledgers.corda.tokens.model import (
    FUNGIBLE_TOKEN_CONTRACT,
    Amount,
    FungibleToken,
    IssuedTokenType,
    IssueTokenCommand,
    TokenType,
)

ISSUER, PAYER, PAYEE = (
    "O=Issuer, L=Tokyo, C=JP",
    "O=Payer Bank, L=London, C=GB",
    "O=Payee Bank, L=Paris, C=FR",
)
TOKEN = TokenType("JPY", 0)
MOVE_GOAL = 300.0
QUERY_RATIO_GOAL = 2.0


def _network(directory: Path) -> tuple[EmbeddedNetwork, IssuedTokenType]:
    net = EmbeddedNetwork.create(directory, nodes=[ISSUER, PAYER, PAYEE])
    issue_tokens(net.node(ISSUER), TOKEN, 10**12, net.node(PAYER).party)
    return net, IssuedTokenType(net.node(ISSUER).party, TOKEN)


CONCURRENT_PAYMENTS = 16


def moves_per_second(moves: int, k: int | None) -> float:
    """Notarised moves/s.

    ``k=None``: one payment flow after another. Otherwise the payer's balance is pre-split into
    ``k`` states and :data:`CONCURRENT_PAYMENTS` payment flows run at once, as when one bank
    serves many payment requests: with few states most flows wait for a state another flow
    has soft-locked (and for its change output), with ``k`` states up to ``k`` flows proceed.
    """
    with tempfile.TemporaryDirectory() as tmp:
        net, token = _network(Path(tmp))
        payer, payee = net.node(PAYER), net.node(PAYEE).party
        for _ in range(min(10, moves)):  # warm-up
            move_tokens(payer, token, 1, payee)
        if k is not None:
            split_tokens(payer, token, k)
        workers = 1 if k is None else CONCURRENT_PAYMENTS

        def run(count: int) -> None:
            done = 0
            while done < count:
                try:
                    move_tokens(payer, token, 1, payee)
                    done += 1
                except InsufficientBalanceError:
                    pass  # every state soft-locked by other flows for too long: ask again

        per_worker = [moves // workers + (1 if i < moves % workers else 0) for i in range(workers)]
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(run, per_worker))
        elapsed = time.perf_counter() - started
        net.close()
    return moves / elapsed


def _fill_vault(
    db: NodeDatabase, holder: Party, issuer_key: KeyPair, notary: Party, n: int, already: int
) -> None:
    issued = IssuedTokenType(
        Party(X500Name.parse("O=Issuer, L=Tokyo, C=JP"), issuer_key.public), TOKEN
    )
    per_tx = 500
    remaining = n - already
    while remaining > 0:
        count = min(per_tx, remaining)
        outputs = [
            TransactionState(
                FungibleToken(Amount(i + 1, issued), holder), FUNGIBLE_TOKEN_CONTRACT, notary
            )
            for i in range(count)
        ]
        wtx = WireTransaction.create(
            privacy_salt=random_bytes(),
            outputs=outputs,
            commands=[Command(IssueTokenCommand(issued), (issuer_key.public,))],
        )
        db.record(SignedTransaction(wtx, (sign_transaction_id(issuer_key, wtx.id),)))
        remaining -= count


def query_latencies(
    sizes: tuple[int, ...] = (1_000, 10_000, 100_000), runs: int = 300
) -> dict[int, dict[str, float]]:
    """Median latency (ms) of indexed vault queries as the vault grows."""
    holder_key, issuer_key, notary_key = KeyPair.generate(), KeyPair.generate(), KeyPair.generate()
    holder = Party(X500Name.parse("O=Holder, L=Oslo, C=NO"), holder_key.public)
    notary = Party(X500Name.parse("O=Notary, L=Zurich, C=CH"), notary_key.public)
    results: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        db = NodeDatabase(make_engine(sqlite_url(Path(tmp) / "vault.sqlite")), [holder_key.public])
        filled = 0
        token_key = IssuedTokenType(
            Party(X500Name.parse("O=Issuer, L=Tokyo, C=JP"), issuer_key.public), TOKEN
        ).key
        for size in sizes:
            _fill_vault(db, holder, issuer_key, notary, size, filled)
            filled = size
            some = db.query(FungibleToken, limit=1, offset=size // 2)[0].ref
            probes = {
                "page of 50 by type": lambda: db.query(FungibleToken, limit=50),
                "page of 50 by holder+token": lambda: db.query(
                    holder=holder_key.public, token=token_key, limit=50
                ),
                "one state by ref": lambda ref=some: db.status_of(StateRef(ref.txhash, ref.index)),
            }
            results[size] = {}
            for name, probe in probes.items():
                samples = []
                for _ in range(runs):
                    started = time.perf_counter()
                    probe()
                    samples.append(time.perf_counter() - started)
                results[size][name] = statistics.median(samples) * 1000
            print(f"  vault filled to {size:,} states", file=sys.stderr, flush=True)
    return results


def main() -> None:
    print("== Corda-model ledger: notarised token moves (in-process, SQLite, non-validating)")
    sequential = moves_per_second(600, None)
    print(f"sequential:     {sequential:8.1f} moves/s   (goal >= {MOVE_GOAL:.0f})")
    print(f"{CONCURRENT_PAYMENTS} concurrent payment flows, balance pre-split into k states:")
    baseline = None
    for k in (1, 2, 4, 8, 16):
        rate = moves_per_second(480, k)
        baseline = baseline or rate
        print(f"  k={k:<2}:         {rate:8.1f} moves/s   speed-up vs k=1: {rate / baseline:5.2f}x")
    print()
    print("== Corda-model ledger: vault query latency (median of 300, ms)")
    latencies = query_latencies()
    names = list(next(iter(latencies.values())))
    print(f"{'query':30}" + "".join(f"{size:>12,}" for size in latencies) + "   100k/1k")
    for name in names:
        row = [latencies[size][name] for size in latencies]
        ratio = row[-1] / row[0]
        print(
            f"{name:30}" + "".join(f"{v:12.3f}" for v in row) + f"   {ratio:6.2f}"
            f"  (goal <= {QUERY_RATIO_GOAL:.0f})"
        )


if __name__ == "__main__":
    main()
