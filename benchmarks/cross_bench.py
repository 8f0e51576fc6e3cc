"""Benchmark of cross-ledger transactions (printed figures, never asserted).

Everything real and in this one process, as ``kakehashi.ops.sandbox`` builds it with
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
* **Three ledgers**: the same round trip for a Two-Phase Commit with three participants — the
  EVM chain and two Corda-model networks (``tests/cross/three_ledgers.py``: one LCP service,
  paths EVM ↔ Corda A, EVM ↔ Corda B and Corda A ↔ Corda B, each with its relayer), coordinated
  by the EVM chain (parts: EVM, Corda A, Corda B) and by Corda A (parts: Corda A, Corda B, EVM);
  a relay round is one round of each of the coordinator's two paths.
* Every row splits the ledgers' time by ledger (the coordinator's initiation and the
  submissions the relayers made to that ledger).
* **Concurrency**: N two-phase transactions in flight at once (1, 4, 16; distinct keys, Corda
  coordinator), initiated together, then relayed until all are done: transactions per second
  and the ratio 16-in-flight / 1-in-flight (goal ≥ 4: batching lets one relay round carry many).
  Measured twice: with the chain sealing a block every ``INTERVAL_MS`` ms (as a QBFT network
  does, at its block period) — the goal's setting — and in the development chain's auto mode
  (a block per transaction, no waiting: one transaction in flight already runs at the rate
  EVM execution allows, so concurrency gains only what batching saves).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository (tests/)

from tests.cross.three_ledgers import (
    CORDA_A,
    CORDA_B,
    EVM,
    ThreeLedgers,
    corda_initiate,
    evm_initiate,
    three_ledgers,
)
from tests.relayer.support import World, world

from kakehashi.cross.auth import corda_key_id
from kakehashi.cross.corda_module import CROSS_PORT
from kakehashi.cross.kv import kv_call
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
INTERVAL_MS = 100
GOAL_SHARE = 0.30
GOAL_RATIO = 4.0
EVM_SIGNER = Account(SignerKind.LOCAL, bytes.fromhex(dev_accounts()[0].address[2:]))
_nonce = iter(range(1, 10**9))


def _tx(world: World, protocol: CommitProtocol, coordinator: str, key: bytes) -> InitiateTx:
    assert world.record is not None
    end = world.record.b_channel_id if coordinator == "corda" else world.record.a_channel_id
    channel = ChannelInfo(CROSS_PORT, end)
    call = kv_call(key, b"v")
    signer = EVM_SIGNER  # the initiator signs as it initiates
    if coordinator == "corda":
        signer = Account(SignerKind.LOCAL, corda_key_id(world.host.node.party.owning_key))
    return InitiateTx(
        f"kakehashi-{coordinator}",
        next(_nonce),
        protocol,
        (
            ContractTransaction(channel, (signer,), call, b"ok"),
            ContractTransaction(channel, (signer,), call, b"ok"),
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


# seconds each ledger spent on the relayers' submissions ("evm", "a", "b"), see _time_submissions
_submitted: dict[str, float] = {}


def _time_submissions(relayer: PathRelayer, ledgers: tuple[str, str]) -> None:
    """Count the time of every submission ``relayer`` makes to side a / side b against
    ``ledgers`` (the relayer's own "submit" phase, split by destination)."""
    for side, ledger in zip((relayer.a, relayer.b), ledgers, strict=True):
        submit = side.endpoint.submit

        def timed(batch: list, _submit=submit, _ledger=ledger):  # type: ignore[no-untyped-def]
            started = time.perf_counter()
            try:
                return _submit(batch)
            finally:
                _submitted[_ledger] = _submitted.get(_ledger, 0.0) + time.perf_counter() - started

        side.endpoint.submit = timed  # type: ignore[method-assign]


def _relay_until(relayers: Iterable[PathRelayer], done: Callable[[], bool]) -> dict[str, float]:
    """Rounds of every relayer until ``done``: the phases' seconds, summed."""
    totals: dict[str, float] = {}
    for _ in range(20):
        for relayer in relayers:
            report: RoundReport = relayer.relay_once()
            if report.failed:
                raise RuntimeError(f"relaying failed: {report.failed[:2]}")
            for phase, seconds in report.timings.items():
                totals[phase] = totals.get(phase, 0.0) + seconds
        if done():
            return totals
    raise RuntimeError("the transaction did not finish")


def _measure(
    initiate: Callable[[], None], coordinator: str, relay: Callable[[], dict[str, float]]
) -> dict[str, float]:
    """Time ``initiate`` (a transaction on ``coordinator``'s ledger) and ``relay``."""
    _submitted.clear()
    started = time.perf_counter()
    initiate()
    initiated = time.perf_counter() - started
    phases = relay()
    total = time.perf_counter() - started
    per_ledger = {ledger: _submitted.get(ledger, 0.0) for ledger in (EVM, CORDA_A, CORDA_B)}
    per_ledger[coordinator] += initiated
    return {
        "total": total,
        "ledgers": initiated + phases.get("submit", 0.0),
        "relayer": phases.get("query", 0.0) + phases.get("lcp", 0.0),
        **per_ledger,
    }


def round_trip(
    world: World, relayer: PathRelayer, protocol: CommitProtocol, coordinator: str
) -> dict[str, float]:
    tx = _tx(world, protocol, coordinator, f"rt-{next(_nonce)}".encode())
    return _measure(
        lambda: _initiate(world, tx, coordinator),
        EVM if coordinator == "evm" else CORDA_A,
        lambda: _relay_until([relayer], lambda: _done(world, tx, coordinator)),
    )


# the paths of tests/cross/three_ledgers.py a coordinator's packets cross
_PATHS_FROM = {EVM: (CORDA_A, CORDA_B), CORDA_A: (CORDA_A, "ab")}


def round_trip_3(world: ThreeLedgers, coordinator: str) -> dict[str, float]:
    """A three-part TPC coordinated by ``coordinator`` (running part 0), one key set on each
    ledger, until decided and the decision acknowledged by both other parts."""
    key = f"rt3-{next(_nonce)}".encode()
    others = [x for x in (EVM, CORDA_A, CORDA_B) if x != coordinator]
    writes = [(x, key, b"v") for x in (coordinator, *others)]
    tx = world.tx(coordinator, CommitProtocol.TPC, writes, next(_nonce))

    def initiate() -> None:
        if coordinator == EVM:
            evm_initiate(world, tx)
        else:
            corda_initiate(world.module(coordinator), tx)

    def done() -> bool:
        return world.outcome(coordinator, tx) == (Decision.COMMIT, True)

    paths = [world.relayers[name] for name in _PATHS_FROM[coordinator]]
    return _measure(initiate, coordinator, lambda: _relay_until(paths, done))


def _row(label: str, runs: list[dict[str, float]]) -> float:
    """Print the medians of ``runs``; the relayer + LCP share of the round trip."""
    med = {k: statistics.median(r[k] for r in runs) * 1000 for k in runs[0]}
    share = med["relayer"] / med["total"]
    corda_b = f"{med[CORDA_B]:>9.1f}" if any(r[CORDA_B] for r in runs) else f"{'-':>9}"
    print(
        f"{label:24}{med['total']:>11.1f}{med['ledgers']:>10.1f}{med[EVM]:>8.1f}"
        f"{med[CORDA_A]:>9.1f}{corda_b}{med['relayer']:>14.1f}{share:>7.0%}"
    )
    return share


def concurrent(world: World, relayer: PathRelayer, n: int) -> float:
    txs = [_tx(world, CommitProtocol.TPC, "corda", f"c{n}-{i}".encode()) for i in range(n)]
    started = time.perf_counter()
    for tx in txs:
        _initiate(world, tx, "corda")
    _relay_until([relayer], lambda: all(_done(world, tx, "corda") for tx in txs))
    return n / (time.perf_counter() - started)


def main() -> None:
    started = time.perf_counter()
    print("== Cross-ledger transactions (one process: embedded EVM chain, embedded Corda networks,")
    print("   LCP service over HTTP, relayers; one key set on each ledger per transaction;")
    print("   ledgers ms = the ledgers' transactions, split by ledger: EVM, Corda A, Corda B)")
    print(
        f"{'protocol (coordinator)':24}{'round trip':>11}{'ledgers':>10}{'EVM':>8}{'Corda A':>9}"
        f"{'Corda B':>9}{'relayer+LCP':>14}{'share':>7}"
    )
    shares = []
    with tempfile.TemporaryDirectory(prefix="kakehashi-cross-") as tmp:
        with world(Path(tmp) / "two", cross=True) as w:
            relayer = w.link()
            _time_submissions(relayer, (EVM, CORDA_A))
            for protocol in (CommitProtocol.SIMPLE, CommitProtocol.TPC):
                for coordinator in ("corda", "evm"):
                    runs = [round_trip(w, relayer, protocol, coordinator) for _ in range(ROUNDS)]
                    label = f"{protocol.name} 2 parts ({coordinator})"
                    shares.append(_row(label, runs))
            auto = {n: concurrent(w, relayer, n) for n in CONCURRENCY}
        with world(Path(tmp) / "interval", cross=True, block_interval_ms=INTERVAL_MS) as w:
            relayer = w.link()
            concurrent(w, relayer, 1)  # warm-up
            rates = {n: concurrent(w, relayer, n) for n in CONCURRENCY}
        with three_ledgers(Path(tmp) / "three") as w3:
            for name, path in w3.relayers.items():
                _time_submissions(path, (EVM, name) if name != "ab" else (CORDA_A, CORDA_B))
            for coordinator in (CORDA_A, EVM):
                runs = [round_trip_3(w3, coordinator) for _ in range(ROUNDS)]
                label = f"TPC 3 parts ({'corda A' if coordinator == CORDA_A else 'evm'})"
                shares.append(_row(label, runs))
    print()
    print(f"TPC transactions in flight   {INTERVAL_MS} ms blocks   auto mode (a block per tx)")
    for n in CONCURRENCY:
        print(f"{n:>27}   {rates[n]:8.1f} tx/s   {auto[n]:8.1f} tx/s")
    ratio = rates[CONCURRENCY[-1]] / rates[CONCURRENCY[0]]
    auto_ratio = auto[CONCURRENCY[-1]] / auto[CONCURRENCY[0]]
    print(f"{'ratio 16 / 1':>27}   {ratio:8.1f}x        {auto_ratio:8.1f}x")
    print()
    worst = max(shares)
    print(
        f"GOAL relayer + LCP <= {GOAL_SHARE:.0%} of the round trip: "
        f"{'met' if worst <= GOAL_SHARE else 'NOT MET'} (worst {worst:.0%})"
    )
    print(
        f"GOAL {CONCURRENCY[-1]}-in-flight / 1-in-flight >= {GOAL_RATIO:.0f} ({INTERVAL_MS} ms "
        f"blocks): {'met' if ratio >= GOAL_RATIO else 'NOT MET'} ({ratio:.1f}x; auto mode "
        f"{auto_ratio:.1f}x)"
    )
    print(f"(benchmark wall time {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
