"""Two-Phase Commit with three participants on three ledgers — the embedded EVM chain and two
Corda-model networks — every packet relayed through the LCP service
(:mod:`tests.cross.three_ledgers`): all three commit, or all three abort and no lock is left,
whichever part fails, whichever packet times out, in whatever order the paths are relayed."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kakehashi.cross.status import Decision, PartStatus
from kakehashi.cross.tx import CommitProtocol, InitiateTx
from tests.cross.three_ledgers import (
    CORDA_A,
    CORDA_B,
    EVM,
    LEDGERS,
    ThreeLedgers,
    corda_initiate,
    evm_initiate,
    three_ledgers,
)

TPC = CommitProtocol.TPC


@pytest.fixture
def w(tmp_path: Path) -> Iterator[ThreeLedgers]:
    with three_ledgers(tmp_path) as built:
        yield built


def assert_all(w: ThreeLedgers, tx: InitiateTx, status: PartStatus, where: tuple[str, ...]) -> None:
    """Part i of ``tx`` is ``status`` on ``where[i]``."""
    found = [w.part(ledger, tx, i) for i, ledger in enumerate(where)]
    assert found == [status] * len(where), found


def test_tpc_with_three_parts_commits_on_all_three_ledgers(w: ThreeLedgers) -> None:
    """The EVM chain coordinates and runs part 0, Corda A part 1, Corda B part 2."""
    tx = w.tx(
        EVM,
        TPC,
        [
            (EVM, b"order-1", b"paid"),
            (CORDA_A, b"order-1", b"shipped"),
            (CORDA_B, b"order-1", b"insured"),
        ],
    )
    evm_initiate(w, tx)
    assert w.locked_by(EVM, b"order-1") == tx.tx_id  # prepared locally
    w.relay([CORDA_A, CORDA_B])
    assert w.outcome(EVM, tx) == (Decision.COMMIT, True)  # both decisions acknowledged
    assert w.value(EVM, b"order-1") == b"paid"
    assert w.value(CORDA_A, b"order-1") == b"shipped"
    assert w.value(CORDA_B, b"order-1") == b"insured"
    assert_all(w, tx, PartStatus.COMMIT, LEDGERS)
    assert not w.any_lock([b"order-1"])


def test_a_key_locked_on_corda_b_aborts_on_all_three_with_no_lock_left(w: ThreeLedgers) -> None:
    """A first transaction's PREPARE locks k on Corda B; a second one writing k there fails its
    prepare on B: it aborts on the three ledgers (the EVM chain's and Corda A's prepared parts
    are released by the decision), and the first still commits."""
    first = w.tx(EVM, TPC, [(EVM, b"e1", b"1"), (CORDA_A, b"a1", b"1"), (CORDA_B, b"k", b"1")], 1)
    second = w.tx(EVM, TPC, [(EVM, b"e2", b"2"), (CORDA_A, b"a2", b"2"), (CORDA_B, b"k", b"2")], 2)
    evm_initiate(w, first)
    relayer = w.relayers[CORDA_B]
    relayer.relay_direction(relayer.directions()[0])  # first's PREPARE reaches Corda B
    assert w.locked_by(CORDA_B, b"k") == first.tx_id
    evm_initiate(w, second)
    w.relay()
    assert w.outcome(EVM, first) == (Decision.COMMIT, True)
    assert w.outcome(EVM, second) == (Decision.ABORT, True)
    assert w.kv.functions.coordination_part(second.tx_id, 2).call()[1]  # B's part failed
    assert_all(w, first, PartStatus.COMMIT, LEDGERS)
    # Corda A prepared second's part: the ABORT reached it; B never prepared it
    assert [w.part(x, second, i) for i, x in enumerate(LEDGERS)] == [
        PartStatus.ABORT,
        PartStatus.ABORT,
        PartStatus.ABORT,
    ]
    assert w.value(CORDA_B, b"k") == b"1"
    assert w.value(EVM, b"e2") is None and w.value(CORDA_A, b"a2") is None
    assert not w.any_lock([b"e1", b"e2", b"k"])


def test_a_prepare_that_times_out_on_one_path_aborts_everywhere(tmp_path: Path) -> None:
    """The PREPARE to Corda B is not relayed until its timeout (``packet_timeout_s`` after it
    was sent, by Corda B's clock) has passed; the relayer then proves it never arrived: the EVM
    coordinator aborts, the ABORT reaches Corda A, which had prepared, and no lock is left."""
    timeout_s = 3
    with three_ledgers(tmp_path, packet_timeout_s=timeout_s, corda_path=False) as w:
        tx = w.tx(EVM, TPC, [(EVM, b"x", b"v"), (CORDA_A, b"x", b"v"), (CORDA_B, b"x", b"v")])
        evm_initiate(w, tx)
        sent_ns = int(w.w3.eth.get_block("latest")["timestamp"]) * 10**9
        w.relay([CORDA_A], rounds=2)  # Corda A prepares; Corda B hears nothing
        assert w.part(CORDA_A, tx, 1) is PartStatus.PREPARE
        assert w.outcome(EVM, tx) == (Decision.UNKNOWN, False)
        while time.time_ns() <= sent_ns + timeout_s * 10**9:
            time.sleep(0.2)
        w.tick(CORDA_B)  # Corda B's clock is past the PREPARE's timeout
        (report,) = w.relay([CORDA_B], rounds=1)
        assert report.timed_out == {"corda->evm": 1} and not report.received
        assert w.outcome(EVM, tx) == (Decision.ABORT, False)  # Corda A not told yet
        w.relay([CORDA_A, CORDA_B], rounds=2)
        assert w.outcome(EVM, tx) == (Decision.ABORT, True)
        assert [w.part(x, tx, i) for i, x in enumerate(LEDGERS)] == [
            PartStatus.ABORT,
            PartStatus.ABORT,
            PartStatus.NONE,  # never received, and it can no longer be
        ]
        assert all(w.value(x, b"x") is None for x in LEDGERS)
        assert not w.any_lock([b"x"])


@pytest.mark.parametrize("blocked", [False, True])
def test_corda_a_coordinates_parts_on_corda_a_corda_b_and_the_evm_chain(
    w: ThreeLedgers, blocked: bool
) -> None:
    """Corda A coordinates (part 0) with Corda B (part 1, over the Corda A ↔ Corda B path) and
    the EVM chain (part 2). ``blocked``: an EVM-coordinated transaction already holds the EVM
    key, so the EVM part fails and the transaction aborts on all three."""
    blocker = w.tx(EVM, TPC, [(EVM, b"k", b"first"), (CORDA_A, b"o", b"1"), (CORDA_B, b"o", b"1")])
    if blocked:
        evm_initiate(w, blocker)  # its local part locks k on the EVM chain at once
    tx = w.tx(CORDA_A, TPC, [(CORDA_A, b"k", b"a"), (CORDA_B, b"k", b"b"), (EVM, b"k", b"e")], 2)
    corda_initiate(w.module(CORDA_A), tx)
    assert w.locked_by(CORDA_A, b"k") == tx.tx_id
    w.relay()
    where = (CORDA_A, CORDA_B, EVM)
    if not blocked:
        assert w.outcome(CORDA_A, tx) == (Decision.COMMIT, True)
        assert_all(w, tx, PartStatus.COMMIT, where)
        assert [w.value(x, b"k") for x in where] == [b"a", b"b", b"e"]
    else:
        assert w.outcome(CORDA_A, tx) == (Decision.ABORT, True)
        c = w.module(CORDA_A).coordinator(tx.tx_id)
        assert c is not None and "locked" in c.failures[2]
        assert [w.part(x, tx, i) for i, x in enumerate(where)] == [
            PartStatus.ABORT,
            PartStatus.ABORT,  # prepared on Corda B, released by the ABORT
            PartStatus.ABORT,
        ]
        assert w.value(CORDA_A, b"k") is None and w.value(CORDA_B, b"k") is None
        assert w.outcome(EVM, blocker) == (Decision.COMMIT, True)
        assert w.value(EVM, b"k") == b"first"
    assert not w.any_lock([b"k", b"o"])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_interleavings_of_the_paths_end_all_committed_or_all_aborted(
    w: ThreeLedgers, seed: int
) -> None:
    """Transactions coordinated by the EVM chain and by Corda A, with parts on the three
    ledgers and keys shared between them (so some lose a lock), are started and relayed one
    direction of one path at a time in a random order. Each ends decided and done, committed
    on all three or aborted on all three; every value is a committed transaction's; no lock
    remains."""
    rng = random.Random(seed)
    keys = [b"k%d" % i for i in range(6)]
    started: list[tuple[str, InitiateTx, list[tuple[str, bytes, bytes]]]] = []
    for nonce in range(1, 7):
        coordinator = rng.choice([EVM, CORDA_A])
        order = [coordinator] + [x for x in LEDGERS if x != coordinator]
        writes = [(x, rng.choice(keys), f"v{nonce}".encode()) for x in order]
        started.append((coordinator, w.tx(coordinator, TPC, writes, nonce), writes))
    directions = [(name, d) for name, r in w.relayers.items() for d in r.directions()]
    waiting = list(started)
    for _step in range(400):
        if waiting and rng.random() < 0.3:
            coordinator, tx, _ = waiting.pop(0)
            if coordinator == EVM:
                evm_initiate(w, tx)
            else:
                corda_initiate(w.module(coordinator), tx)
            continue
        name, direction = rng.choice(directions)
        report = w.relayers[name].relay_direction(direction)
        assert not report.failed, report.failed
        if not waiting and all(w.outcome(c, tx)[1] for c, tx, _ in started):
            break
    else:
        raise AssertionError("the transactions did not finish")
    committed: dict[tuple[str, bytes], set[bytes]] = {}
    decisions = []
    for coordinator, tx, writes in started:
        decision, done = w.outcome(coordinator, tx)
        assert done and decision is not Decision.UNKNOWN
        decisions.append(decision)
        for i, (ledger, key, value) in enumerate(writes):
            status = w.part(ledger, tx, i)
            if decision is Decision.COMMIT:
                assert status is PartStatus.COMMIT, (tx.nonce, i, status)
                committed.setdefault((ledger, key), set()).add(value)
            else:  # a part that never prepared (refused, or overtaken by the ABORT) may be NONE
                assert status in (PartStatus.ABORT, PartStatus.NONE), (tx.nonce, i, status)
    for ledger in LEDGERS:
        for key in keys:
            found = w.value(ledger, key)
            if (ledger, key) in committed:
                assert found in committed[ledger, key], (ledger, key, found)
            else:
                assert found is None, (ledger, key, found)
    assert set(decisions) == {Decision.COMMIT, Decision.ABORT}  # the seeds give both
    assert not w.any_lock(keys)


@pytest.mark.parametrize("twice", [EVM, CORDA_B])
def test_two_parts_on_one_ledger(w: ThreeLedgers, twice: str) -> None:
    """A three-part transaction whose parts 1 and 2 both run on ``twice`` (over the same
    channel) commits both writes there and leaves no lock."""
    coordinator = CORDA_A if twice == EVM else EVM
    tx = w.tx(
        coordinator, TPC, [(coordinator, b"c", b"0"), (twice, b"x", b"1"), (twice, b"y", b"2")]
    )
    if coordinator == EVM:
        evm_initiate(w, tx)
    else:
        corda_initiate(w.module(coordinator), tx)
    w.relay()
    assert w.outcome(coordinator, tx) == (Decision.COMMIT, True)
    assert (w.value(twice, b"x"), w.value(twice, b"y")) == (b"1", b"2")
    assert not w.any_lock([b"c", b"x", b"y"])
