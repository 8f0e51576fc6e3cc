"""Benchmark of the DVP (issue 7, use case 1; printed figures, never asserted).

On the in-process network of ``kakehashi demo dvp`` (``kakehashi.ops.sandbox``: embedded EVM
chain, embedded Corda-model network of the issuing bank with its IBC host, the buyer, the seller
and an outsider, the LCP service over HTTP, one relayer), with the EVM chain sealing a block every
``INTERVAL_MS`` ms (as a QBFT network does):

* **Formula breakdown** of one settlement (``kakehashi.apps.dvp.demo``): 3 Corda-model
  transactions + 2 EVM transactions + 3 relayer / LCP hops, each measured, their sum, the
  end-to-end time and the overhead ratio.
* **Settlements per second with 1, 4 and 16 in flight**: N trades (distinct NFTs) initiated by
  the host, the buyer's deposits made concurrently (one thread per trade, as N payment flows of a
  node would run) and signed, the seller's signatures sent together (one transaction each,
  not waiting for each block), then relay rounds until every trade is
  committed; DVP/s = N / the whole time; p50 / p95 of each trade's round trip (from its
  initiation to the round that saw it committed). With the buyer's balance in **one state**
  (every deposit spends the change of the previous one: they queue) and **pre-split into 16**
  (each deposit spends its own state); the ratio of the two at 16 in flight.

Goal (issue 7): >= 10 DVP/s sustained with 16 in flight, and the formula breakdown printed.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from breakdown import print_breakdown

from kakehashi.apps.dvp.demo import BUYER, OUTSIDER, SELLER, run_dvp
from kakehashi.apps.dvp.settlement import Terms, dvp_transaction
from kakehashi.cross.auth import corda_key_id, sign_party
from kakehashi.cross.corda_apps import apps_factory
from kakehashi.cross.corda_module import CROSS_PORT
from kakehashi.cross.corda_tokens import TokenEscrowApp, deposit
from kakehashi.cross.tx import Account, ChannelInfo, SignerKind
from kakehashi.ledgers.corda.tokens.flows import issue_tokens, split_tokens
from kakehashi.ledgers.corda.tokens.model import IssuedTokenType, TokenType
from kakehashi.ledgers.evm import toolchain
from kakehashi.ledgers.evm.chain import dev_accounts
from kakehashi.ledgers.evm.client import transact
from kakehashi.ops.sandbox import OPERATOR, World, world

GOAL_DVP_S = 10.0
IN_FLIGHT = (1, 4, 16)
INTERVAL_MS = 100
PRICE = 10
_nonce = iter(range(1, 10**9))


@contextmanager
def market(directory: Path, splits: int) -> Iterator[tuple[World, Any, Terms]]:
    """The network, 200 NFTs minted to the seller (all approved to the cross application), the
    buyer holding 10,000 JPYC in ``splits`` states."""
    with world(
        directory,
        cross=True,
        corda_nodes=(OPERATOR, BUYER, SELLER, OUTSIDER),
        cross_apps=apps_factory(TokenEscrowApp),
        block_interval_ms=INTERVAL_MS,
    ) as w:
        w.link()
        bank, buyer = w.network.node(OPERATOR), w.network.node(BUYER)
        seller_evm, buyer_evm, minter = dev_accounts()[5], dev_accounts()[4], dev_accounts()[0]
        jpyc = TokenType("JPYC", 0)
        issue_tokens(bank, jpyc, 10_000, buyer.party)
        coin = IssuedTokenType(bank.party, jpyc)
        if splits > 1:
            split_tokens(buyer, coin, splits)
        nft = toolchain.deploy(w.w3, "tokens/erc721", "Art", "ART", "https://a/", sender=minter)
        for token_id in range(1, 201):
            transact(w.w3, nft.functions.mint(seller_evm.address, token_id, ""), sender=minter)
        transact(w.w3, nft.functions.setApprovalForAll(w.app.address, True), sender=seller_evm)
        terms = Terms(
            coin,
            PRICE,
            bytes.fromhex(nft.address[2:]),
            0,
            buyer.party,
            w.network.node(SELLER).party,
            bytes.fromhex(buyer_evm.address[2:]),
            bytes.fromhex(seller_evm.address[2:]),
        )
        yield w, nft, terms


def settle_many(w: World, terms: Terms, first_id: int, n: int) -> tuple[float, list[float]]:
    """``n`` trades in flight (module docstring): (seconds, each trade's round trip)."""
    from dataclasses import replace

    assert w.record is not None
    buyer = w.network.node(BUYER)
    seller_evm = dev_accounts()[5]
    timeout = time.time_ns() + 600 * 10**9
    channel = ChannelInfo(CROSS_PORT, w.record.b_channel_id)
    txs = [
        dvp_transaction(
            replace(terms, amount=first_id + i), channel, nonce=next(_nonce), timeout_ns=timeout
        )
        for i in range(n)
    ]
    started = time.perf_counter()
    began: dict[bytes, float] = {}
    for tx in txs:
        w.cross.initiate(tx)
        began[tx.tx_id] = time.perf_counter()
    errors: list[BaseException] = []

    def consent(tx: Any) -> None:
        try:
            deposit(
                buyer,
                terms.stablecoin,
                PRICE,
                recipient=terms.seller,
                operator=w.host.node.party,
                tx_id=tx.tx_id,
                index=0,
                expiry_ns=timeout,
            )
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=consent, args=(tx,)) for tx in txs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    me = Account(SignerKind.LOCAL, corda_key_id(buyer.party.owning_key))
    for tx in txs:
        w.cross.sign(tx.tx_id, me, sign_party(buyer.key, tx.tx_id))
    # the seller signs every trade, sending its transactions without waiting for each block
    nonce = w.w3.eth.get_transaction_count(seller_evm.address, "pending")
    sent = []
    for i, tx in enumerate(txs):
        call = w.auth.functions.sign_remote(tx.view(1).encode(), 1, w.record.a_channel_id)
        built = call.build_transaction(
            {"from": seller_evm.address, "nonce": nonce + i, "gas": 2_000_000}
        )
        signed = seller_evm.sign_transaction(built)
        sent.append(w.w3.eth.send_raw_transaction(signed.raw_transaction))
    for tx_hash in sent:
        receipt = w.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60, poll_latency=0.01)
        if receipt["status"] != 1:
            raise RuntimeError("a seller's signature was refused")
    relayer = w.relayer()
    finished: dict[bytes, float] = {}
    for _ in range(40):
        report = relayer.relay_once()
        if report.failed:
            raise RuntimeError(f"relaying failed: {report.failed[:2]}")
        now = time.perf_counter()
        for tx in txs:
            c = w.cross.coordinator(tx.tx_id)
            if tx.tx_id not in finished and c is not None and c.done:
                finished[tx.tx_id] = now
        if len(finished) == n:
            break
    else:
        raise RuntimeError("the trades did not finish")
    return time.perf_counter() - started, [finished[t] - began[t] for t in finished]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    started = time.perf_counter()
    print("== DVP: a Corda-model stablecoin against an ERC-721 (one process: embedded EVM chain")
    print(f"   with {INTERVAL_MS} ms blocks, embedded Corda network, LCP service, relayer)")
    with tempfile.TemporaryDirectory(prefix="kakehashi-dvp-") as tmp:
        one = run_dvp(Path(tmp) / "formula")
        rt = one.round_trip
        print_breakdown(f"formula breakdown of one settlement ({one.outcome}): {rt['formula']}", rt)
        print()
        print(f"{'buyer balance':16}{'in flight':>10}{'DVP/s':>9}{'p50 ms':>9}{'p95 ms':>9}")
        rates: dict[int, dict[int, float]] = {}
        for splits in (1, 16):
            with market(Path(tmp) / f"split-{splits}", splits) as (w, _nft, terms):
                next_id = 1
                for n in IN_FLIGHT:
                    seconds, trips = settle_many(w, terms, next_id, n)
                    next_id += n
                    rates.setdefault(splits, {})[n] = n / seconds
                    label = "one state" if splits == 1 else f"{splits} states"
                    print(
                        f"{label:16}{n:>10}{n / seconds:>9.1f}{_pct(trips, 0.5):>9.0f}"
                        f"{_pct(trips, 0.95):>9.0f}"
                    )
    top = IN_FLIGHT[-1]
    ratio = rates[16][top] / rates[1][top]
    print(f"pre-split 16 states / one state at {top} in flight: {ratio:.2f}x")
    best = max(rates[16][top], rates[1][top])
    print(
        f"GOAL >= {GOAL_DVP_S:.0f} DVP/s with {top} in flight: "
        f"{'met' if best >= GOAL_DVP_S else 'NOT MET'} ({best:.1f} DVP/s)"
    )
    print(f"(benchmark wall time {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
