"""Benchmark of cross-ledger transactions (printed figures, never asserted).

Everything real and in this one process, as ``tests/relayer/support.py`` builds it with
``cross=True``: the embedded EVM chain with ``contracts/cross/cross_kv.vy`` on port ``cross``,
the embedded Corda-model network with a Corda IBC host running ``CrossModule``, the LCP service
over HTTP on 127.0.0.1, and a linked relayer (``PathRelayer``). Each transaction sets one key on
each ledger (``kv_call``).

* **Round trip** of one transaction (median of ``ROUNDS``), for Simple Commit and Two-Phase
  Commit, coordinated by the Corda host and by the EVM chain: the coordinator's initiation
  (its ledger's transaction: local prepare and the first packets), then relay rounds until the
  coordinator is done (decided, and for TPC every decision acknowledged). Broken down into the
  ledgers' transactions (initiation + every submission the relayer made: update, recv, ack on
  either ledger) and the relayer + LCP time (reads of both ledgers and LCP calls). Goal (issue
  6): relayer + LCP ≤ 30 % of the round trip.
* **Concurrency**: N two-phase transactions in flight at once (1, 4, 16; distinct keys, Corda
  coordinator), initiated together, then relayed until all are done: transactions per second
  and the ratio 16-in-flight / 1-in-flight (goal ≥ 4: batching lets one relay round carry many).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository (tests/)

from tests.relayer.support import World, world

from kakehashi.cross.corda_module import CROSS_PORT, kv_call
from kakehashi.cross.status import Decision
from kakehashi.cross.tx import (
    Account,
    ChannelInfo,
    CommitProtocol,
    ContractTransaction,
    InitiateTx,
    SignerKind,
)
from kakehashi.ibc.types import Height
from kakehashi.ledgers.evm.chain import dev_accounts
from kakehashi.ledgers.evm.client import transact
from kakehashi.relayer.path import PathRelayer, RoundReport

ROUNDS = 5
CONCURRENCY = (1, 4, 16)
GOAL_SHARE = 0.30
GOAL_RATIO = 4.0
SIGNER = Account(SignerKind.LOCAL, b"\x01" * 20)
_nonce = iter(range(1, 10**9))


def _tx(world: World, protocol: CommitProtocol, coordinator: str, key: bytes) -> InitiateTx:
    assert world.record is not None
    end = world.record.b_channel_id if coordinator == "corda" else world.record.a_channel_id
    channel = ChannelInfo(CROSS_PORT, end)
    call = kv_call(key, b"v")
    return InitiateTx(
        f"kakehashi-{coordinator}",
        next(_nonce),
        protocol,
        (
            ContractTransaction(channel, (SIGNER,), call, b"ok"),
            ContractTransaction(channel, (SIGNER,), call, b"ok"),
        ),
        Height(0, 10**9),
    )


def _initiate(world: World, tx: InitiateTx, coordinator: str) -> None:
    if coordinator == "corda":
        world.cross.initiate(tx)
    else:
        transact(world.w3, world.kv.functions.initiate(tx.encode(), 0), sender=dev_accounts()[0])


def _done(world: World, tx: InitiateTx, coordinator: str) -> bool:
    if coordinator == "corda":
        c = world.cross.coordinator(tx.tx_id)
        return c is not None and c.done and c.decision is Decision.COMMIT
    protocol, _local, count, decision = world.kv.functions.coordination(tx.tx_id).call()
    if decision != Decision.COMMIT:
        return False
    if protocol == CommitProtocol.SIMPLE:
        return True
    return all(world.kv.functions.coordination_part(tx.tx_id, i).call()[3] for i in range(1, count))


def _relay_until(relayer: PathRelayer, done: Callable[[], bool]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for _ in range(20):
        report: RoundReport = relayer.relay_once()
        if report.failed:
            raise RuntimeError(f"relaying failed: {report.failed[:2]}")
        for phase, seconds in report.timings.items():
            totals[phase] = totals.get(phase, 0.0) + seconds
        if done():
            return totals
    raise RuntimeError("the transaction did not finish")


def round_trip(
    world: World, relayer: PathRelayer, protocol: CommitProtocol, coordinator: str
) -> dict[str, float]:
    tx = _tx(world, protocol, coordinator, f"rt-{next(_nonce)}".encode())
    started = time.perf_counter()
    _initiate(world, tx, coordinator)
    initiated = time.perf_counter() - started
    phases = _relay_until(relayer, lambda: _done(world, tx, coordinator))
    total = time.perf_counter() - started
    return {
        "total": total,
        "ledgers": initiated + phases.get("submit", 0.0),
        "relayer": phases.get("query", 0.0) + phases.get("lcp", 0.0),
    }


def concurrent(world: World, relayer: PathRelayer, n: int) -> float:
    txs = [_tx(world, CommitProtocol.TPC, "corda", f"c{n}-{i}".encode()) for i in range(n)]
    started = time.perf_counter()
    for tx in txs:
        _initiate(world, tx, "corda")
    _relay_until(relayer, lambda: all(_done(world, tx, "corda") for tx in txs))
    return n / (time.perf_counter() - started)


def main() -> None:
    started = time.perf_counter()
    print("== Cross-ledger transactions (one process: embedded EVM chain, embedded Corda network,")
    print("   LCP service over HTTP, relayer; one key set on each ledger per transaction)")
    with (
        tempfile.TemporaryDirectory(prefix="kakehashi-cross-") as tmp,
        world(Path(tmp), cross=True) as w,
    ):
        relayer = w.link()
        print(
            f"{'protocol (coordinator)':28}{'round trip ms':>15}{'ledgers ms':>12}"
            f"{'relayer+LCP ms':>16}{'share':>8}"
        )
        shares = []
        for protocol in (CommitProtocol.SIMPLE, CommitProtocol.TPC):
            for coordinator in ("corda", "evm"):
                runs = [round_trip(w, relayer, protocol, coordinator) for _ in range(ROUNDS)]
                total = statistics.median(r["total"] for r in runs) * 1000
                ledgers = statistics.median(r["ledgers"] for r in runs) * 1000
                overhead = statistics.median(r["relayer"] for r in runs) * 1000
                share = overhead / total
                shares.append(share)
                print(
                    f"{protocol.name + ' (' + coordinator + ')':28}{total:>15.1f}{ledgers:>12.1f}"
                    f"{overhead:>16.1f}{share:>8.0%}"
                )
        rates = {n: concurrent(w, relayer, n) for n in CONCURRENCY}
    print()
    for n, rate in rates.items():
        print(f"{n:>3} TPC transactions in flight: {rate:6.1f} transactions/s")
    ratio = rates[CONCURRENCY[-1]] / rates[CONCURRENCY[0]]
    print()
    worst = max(shares)
    print(
        f"GOAL relayer + LCP <= {GOAL_SHARE:.0%} of the round trip: "
        f"{'met' if worst <= GOAL_SHARE else 'NOT MET'} (worst {worst:.0%})"
    )
    print(
        f"GOAL {CONCURRENCY[-1]}-in-flight / 1-in-flight >= {GOAL_RATIO:.0f}: "
        f"{'met' if ratio >= GOAL_RATIO else 'NOT MET'} ({ratio:.1f}x)"
    )
    print(f"(benchmark wall time {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
