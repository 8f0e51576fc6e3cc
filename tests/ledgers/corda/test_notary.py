"""The notary: uniqueness on SQLite and real PostgreSQL, races between workers and flows.

``db_url`` runs each uniqueness test twice: on a SQLite file and on a fresh database of the
throwaway PostgreSQL server (``fresh_postgres_db``, marked ``postgres``).
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest
from sqlalchemy import Engine, select

from kakehashi.errors import ConflictError, TimeWindowError
from kakehashi.ledgers.corda.model.crypto import random_bytes, sign_transaction_id
from kakehashi.ledgers.corda.model.identity import X500Name
from kakehashi.ledgers.corda.model.states import Command, StateRef, TimeWindow, TransactionState
from kakehashi.ledgers.corda.model.transactions import SignedTransaction, WireTransaction
from kakehashi.ledgers.corda.node.node import Node, NotaryNode
from kakehashi.ledgers.corda.node.notary import UniquenessProvider
from kakehashi.ledgers.corda.node.setup import EmbeddedNetwork, open_node, open_notary
from kakehashi.ledgers.corda.node.storage import make_engine, sqlite_url
from kakehashi.ledgers.corda.node.vault import StateStatus, vault_states
from kakehashi.ledgers.corda.tokens.flows import (
    balance_of,
    issue_tokens,
    move_tokens,
    split_tokens,
)
from kakehashi.ledgers.corda.tokens.model import (
    FUNGIBLE_TOKEN_CONTRACT,
    Amount,
    FungibleToken,
    MoveTokenCommand,
)
from tests.ledgers.corda.conftest import ALICE, BOB, CAROL, ISSUER, JPY, jpy, make_network

if TYPE_CHECKING:
    from tests.pg import PostgresServer

T = TypeVar("T")

NOW = 1_700_000_000_000_000  # the fixed notary clock of the unit tests, µs since the epoch
REQUESTER = "O=Alice Bank, L=London, C=GB"


# ------------------------------------------------------------------------------- fixtures
@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A SQLite file URL, or the URL of a fresh, empty PostgreSQL database."""
    if request.param == "postgres":
        return str(request.getfixturevalue("fresh_postgres_db"))
    return sqlite_url(tmp_path / "notary.sqlite")


class _Engines:
    """Engines opened by a test, disposed at its end (before the PG database is dropped)."""

    def __init__(self) -> None:
        self.opened: list[Engine] = []

    def open(self, url: str) -> Engine:
        engine = make_engine(url)
        self.opened.append(engine)
        return engine


@pytest.fixture
def engines() -> Iterator[_Engines]:
    holder = _Engines()
    yield holder
    for engine in holder.opened:
        engine.dispose()


@pytest.fixture
def provider(db_url: str, engines: _Engines) -> UniquenessProvider:
    return UniquenessProvider(engines.open(db_url), clock=lambda: NOW)


# -------------------------------------------------------------------------------- helpers
def ref(label: str, index: int = 0) -> StateRef:
    """A deterministic, distinct state reference per label."""
    return StateRef(hashlib.sha256(label.encode()).digest(), index)


def tx_id(label: str) -> bytes:
    return hashlib.sha256(b"tx:" + label.encode()).digest()


def commit(
    provider: UniquenessProvider,
    tx: bytes,
    inputs: Sequence[StateRef] = (),
    references: Sequence[StateRef] = (),
    window: TimeWindow | None = None,
) -> None:
    provider.commit(tx, inputs, references, window, REQUESTER)


def race(jobs: Sequence[Callable[[], T]]) -> list[T | Exception]:
    """Run every job in its own thread, released together; results (or errors) in order."""
    barrier = threading.Barrier(len(jobs), timeout=60)

    def run(job: Callable[[], T]) -> T | Exception:
        barrier.wait()
        try:
            return job()
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        return list(pool.map(run, jobs))


def winners_and_losers(outcomes: Sequence[object]) -> tuple[list[int], list[ConflictError]]:
    unexpected = [
        o for o in outcomes if isinstance(o, Exception) and not isinstance(o, ConflictError)
    ]
    assert not unexpected, f"unexpected errors: {unexpected!r}"
    winners = [i for i, o in enumerate(outcomes) if not isinstance(o, Exception)]
    losers = [o for o in outcomes if isinstance(o, ConflictError)]
    return winners, losers


# ------------------------------------------------------------------ uniqueness, per backend
def test_commit_and_idempotent_retry(provider: UniquenessProvider) -> None:
    a, b = ref("a"), ref("b", 3)
    commit(provider, tx_id("t1"), [a, b])
    assert provider.log_entries() == {a: tx_id("t1"), b: tx_id("t1")}
    assert provider.consumed_by(a) == tx_id("t1")
    assert provider.consumed_by(ref("unknown")) is None
    assert provider.committed_count() == 1
    # A retry of the same transaction (e.g. after a lost answer) succeeds and changes nothing.
    commit(provider, tx_id("t1"), [a, b])
    commit(provider, tx_id("t1"), [a, b])
    assert provider.log_entries() == {a: tx_id("t1"), b: tx_id("t1")}
    assert provider.committed_count() == 1


def test_double_spend_is_a_conflict_naming_the_ref(provider: UniquenessProvider) -> None:
    a, b, c = ref("a"), ref("b"), ref("c")
    commit(provider, tx_id("t1"), [a, b])
    with pytest.raises(ConflictError) as info:
        commit(provider, tx_id("t2"), [b, c])
    assert info.value.consumed == {f"{b.txhash.hex()}:{b.index}": tx_id("t1").hex()}
    assert str(b) in str(info.value)
    assert tx_id("t1").hex() in str(info.value)
    # Every conflicting input is named, not only the first one.
    with pytest.raises(ConflictError) as info:
        commit(provider, tx_id("t3"), [a, c, b])
    assert info.value.consumed == {str(a): tx_id("t1").hex(), str(b): tx_id("t1").hex()}
    assert provider.log_entries() == {a: tx_id("t1"), b: tx_id("t1")}
    assert provider.committed_count() == 1


def test_reference_states_are_checked_but_not_consumed(provider: UniquenessProvider) -> None:
    r, a, b, c = ref("r"), ref("a"), ref("b"), ref("c")
    commit(provider, tx_id("t1"), [a], references=[r])
    commit(provider, tx_id("t2"), [b], references=[r])  # still unconsumed: many may refer to it
    assert provider.consumed_by(r) is None
    assert provider.log_entries() == {a: tx_id("t1"), b: tx_id("t2")}
    commit(provider, tx_id("t3"), [r])  # the referenced state can still be consumed later
    assert provider.consumed_by(r) == tx_id("t3")
    # Referring to a consumed state is a conflict, whether it was an input or a reference.
    with pytest.raises(ConflictError) as info:
        commit(provider, tx_id("t4"), [c], references=[r])
    assert info.value.consumed == {str(r): tx_id("t3").hex()}
    with pytest.raises(ConflictError) as info:
        commit(provider, tx_id("t5"), [c], references=[a])
    assert info.value.consumed == {str(a): tx_id("t1").hex()}
    assert provider.consumed_by(c) is None
    assert provider.committed_count() == 3


@pytest.mark.parametrize(
    "window",
    [
        TimeWindow(NOW + 1, NOW + 10_000_000),  # not yet open
        TimeWindow(NOW - 10_000_000, NOW),  # closed: the end is exclusive
        TimeWindow(from_time=NOW + 1),
        TimeWindow(until_time=NOW - 1),
    ],
    ids=["future", "ended-at-now", "from-only", "until-only"],
)
def test_time_window_outside_the_notary_clock(
    provider: UniquenessProvider, window: TimeWindow
) -> None:
    a = ref("a")
    with pytest.raises(TimeWindowError, match="outside"):
        commit(provider, tx_id("late"), [a], window=window)
    assert provider.log_entries() == {}
    assert provider.committed_count() == 0
    # The same input with a window around the notary's clock goes through.
    commit(provider, tx_id("on-time"), [a], window=TimeWindow(NOW - 1, NOW + 1))
    assert provider.log_entries() == {a: tx_id("on-time")}


def test_partly_consumed_request_records_nothing(provider: UniquenessProvider) -> None:
    spent = ref("spent")
    commit(provider, tx_id("t1"), [spent])
    fresh = [ref(f"fresh-{i}", i) for i in range(5)]
    with pytest.raises(ConflictError) as info:
        commit(provider, tx_id("t2"), [*fresh[:3], spent, *fresh[3:]], references=[ref("r")])
    assert info.value.consumed == {str(spent): tx_id("t1").hex()}
    assert provider.log_entries() == {spent: tx_id("t1")}
    assert provider.committed_count() == 1
    # Nothing of t2 was kept: the fresh inputs are still spendable by another transaction.
    commit(provider, tx_id("t3"), fresh)
    assert provider.log_entries() == {spent: tx_id("t1")} | {r: tx_id("t3") for r in fresh}


def test_log_survives_a_new_engine(db_url: str, engines: _Engines) -> None:
    first = UniquenessProvider(engines.open(db_url), clock=lambda: NOW)
    commit(first, tx_id("t1"), [ref("a"), ref("b")])
    first.engine.dispose()
    second = UniquenessProvider(engines.open(db_url), clock=lambda: NOW)
    assert second.log_entries() == {ref("a"): tx_id("t1"), ref("b"): tx_id("t1")}
    commit(second, tx_id("t1"), [ref("a"), ref("b")])  # idempotent across restarts too
    with pytest.raises(ConflictError):
        commit(second, tx_id("t2"), [ref("b")])


# -------------------------------------------------------- several workers on one database
WORKERS = 4
RACERS = 16


def _slow_clock() -> int:
    # The clock is read between the commit log check and the insert: a pause there lets every
    # racer read the log before any of them writes (on PostgreSQL; SQLite serialises writers).
    time.sleep(0.02)
    return NOW


def _workers(db_url: str, engines: _Engines) -> list[UniquenessProvider]:
    """Several notary workers, each with its own engine (connection pool), one database."""
    return [UniquenessProvider(engines.open(db_url), clock=_slow_clock) for _ in range(WORKERS)]


def test_workers_race_for_one_state(db_url: str, engines: _Engines) -> None:
    workers = _workers(db_url, engines)
    contested = ref("contested")
    txs = [tx_id(f"racer-{i}") for i in range(RACERS)]
    # Each racer also spends a state of its own: a loser must not leave it in the log.
    own = [ref(f"own-{i}") for i in range(RACERS)]
    outcomes = race(
        [partial(commit, workers[i % WORKERS], txs[i], [own[i], contested]) for i in range(RACERS)]
    )
    winners, losers = winners_and_losers(outcomes)
    assert len(winners) == 1, outcomes
    assert len(losers) == RACERS - 1
    winner = winners[0]
    for loser in losers:
        assert loser.consumed == {str(contested): txs[winner].hex()}
    for worker in workers:  # every worker sees the same single commit
        assert worker.log_entries() == {contested: txs[winner], own[winner]: txs[winner]}
        assert worker.committed_count() == 1


def test_workers_race_for_overlapping_inputs(db_url: str, engines: _Engines) -> None:
    """A spends {x, y}, B spends {y, z}, C spends {z, x}: every pair conflicts."""
    workers = _workers(db_url, engines)
    rounds = 5
    for n in range(rounds):
        x, y, z = ref(f"x{n}"), ref(f"y{n}"), ref(f"z{n}")
        spends = {"A": [x, y], "B": [y, z], "C": [z, x]}
        txs = {name: tx_id(f"{name}{n}") for name in spends}
        names = sorted(spends)
        outcomes = race(
            [
                partial(commit, workers[i % WORKERS], txs[name], spends[name])
                for i, name in enumerate(names)
            ]
        )
        winners, losers = winners_and_losers(outcomes)
        assert len(winners) == 1, outcomes
        won = names[winners[0]]
        for loser in losers:
            assert set(loser.consumed.values()) == {txs[won].hex()}
        round_log = {
            r: t for r, t in workers[0].log_entries().items() if r in (x, y, z)
        }  # no partial rows of a loser
        assert round_log == {r: txs[won] for r in spends[won]}
    assert workers[-1].committed_count() == rounds


# ------------------------------------------------------------------- end-to-end flow races
def _move_of(node: Node, item_index: int, receiver: Node) -> SignedTransaction:
    """A hand-built move of one of ``node``'s token states (a fresh salt: a distinct id)."""
    item = node.db.query(FungibleToken)[item_index]
    data = item.state.data
    assert isinstance(data, FungibleToken)
    out = FungibleToken(Amount(data.quantity, data.amount.token), receiver.party)
    wtx = WireTransaction.create(
        privacy_salt=random_bytes(),
        inputs=[item.ref],
        outputs=[TransactionState(out, FUNGIBLE_TOKEN_CONTRACT, item.state.notary)],
        commands=[Command(MoveTokenCommand(data.amount.token), (node.party.owning_key,))],
        notary=item.state.notary,
        network_parameters_hash=node.network.parameters.hash(),
    )
    return SignedTransaction(wtx, (sign_transaction_id(node.key, wtx.id),))


def _consumed_by(node: Node, state: StateRef) -> tuple[StateStatus, bytes | None]:
    with node.db.engine.connect() as conn:
        row = conn.execute(
            select(vault_states.c.status, vault_states.c.consumed_by).where(
                vault_states.c.txhash == state.txhash,
                vault_states.c.output_index == state.index,
            )
        ).one()
    return StateStatus(row.status), None if row.consumed_by is None else bytes(row.consumed_by)


def test_concurrent_finalise_of_one_state(net: EmbeddedNetwork) -> None:
    issuer, alice, bob, carol = (net.node(n) for n in (ISSUER, ALICE, BOB, CAROL))
    issue = issue_tokens(issuer, JPY, 80, alice.party)
    spent = StateRef(issue.id, 0)
    receivers = [bob, carol]
    attempts = [_move_of(alice, 0, receivers[i % 2]) for i in range(8)]
    assert len({stx.id for stx in attempts}) == len(attempts)
    outcomes = race([partial(alice.finalise, stx) for stx in attempts])
    winners, losers = winners_and_losers(outcomes)
    assert len(winners) == 1, outcomes
    assert len(losers) == len(attempts) - 1
    won = attempts[winners[0]]
    for loser in losers:
        assert loser.consumed == {str(spent): won.id.hex()}
    # Exactly one payment arrived, at the winner's receiver.
    paid, unpaid = receivers[winners[0] % 2], receivers[1 - winners[0] % 2]
    assert balance_of(paid, jpy(net)) == 80
    assert balance_of(unpaid, jpy(net)) == 0
    assert balance_of(alice, jpy(net)) == 0
    assert _consumed_by(alice, spent) == (StateStatus.CONSUMED, won.id)
    assert net.notary.uniqueness.log_entries() == {spent: won.id}
    assert net.notary.uniqueness.committed_count() == 2 - 1  # the issue needs no notary
    # Losers left nothing behind: no transaction, no checkpoint, no soft lock.
    assert alice.db.transaction_ids() == {issue.id, won.id}
    assert paid.db.transaction_ids() == {issue.id, won.id}
    assert unpaid.db.transaction_ids() == set()
    assert alice.db.checkpoints() == []
    assert alice.db.count(StateStatus.UNCONSUMED) == 0


# ------------------------------------------------------------------- the notary on PostgreSQL
def _move_to(net: EmbeddedNetwork, name: str | X500Name, db_url: str) -> Node | NotaryNode:
    """Stop a party and run it again on ``db_url`` (a process restart on another database)."""
    name = X500Name.parse(name) if isinstance(name, str) else name
    net.stop(name)
    peer: Node | NotaryNode
    if net.map.info(name).notary:
        peer = open_notary(net.directory, net.map, name, net.transport, db_url=db_url)
        net.notaries[name] = peer
    else:
        peer = open_node(net.directory, net.map, name, net.transport, db_url=db_url)
        net.nodes[name] = peer
    net.transport.register(name, peer.handle)
    return peer


def _notary_on(net: EmbeddedNetwork, db_url: str) -> NotaryNode:
    notary = _move_to(net, net.notary.name, db_url)
    assert isinstance(notary, NotaryNode)
    return notary


@pytest.mark.parametrize("validating", [False, True], ids=["non-validating", "validating"])
def test_notary_node_on_postgres_persists_across_restart(
    tmp_path: Path, fresh_postgres_db: str, validating: bool
) -> None:
    net = make_network(tmp_path / "net", validating=validating)
    try:
        notary = _notary_on(net, fresh_postgres_db)
        assert notary.uniqueness.engine.dialect.name == "postgresql"
        issuer, alice, bob = net.node(ISSUER), net.node(ALICE), net.node(BOB)
        issue_tokens(issuer, JPY, 100, alice.party)
        stale = _move_of(alice, 0, bob)  # built now, finalised after the state is spent
        first = move_tokens(alice, jpy(net), 30, bob.party)
        log = {r: first.id for r in first.tx.inputs}
        assert notary.uniqueness.log_entries() == log

        notary = _notary_on(net, fresh_postgres_db)  # a new engine on the same database
        assert notary.uniqueness.log_entries() == log
        assert notary.uniqueness.committed_count() == 1
        if validating:  # a validating notary keeps what it verified
            assert first.id in notary.db.transaction_ids()
        with pytest.raises(ConflictError) as info:
            alice.finalise(stale)
        assert info.value.consumed == {str(stale.tx.inputs[0]): first.id.hex()}
        second = move_tokens(bob, jpy(net), 30, alice.party)
        assert notary.uniqueness.consumed_by(second.tx.inputs[0]) == second.id
        assert balance_of(alice, jpy(net)) == 100
        assert balance_of(bob, jpy(net)) == 0
    finally:
        net.close()


def _notary_workers(net: EmbeddedNetwork, db_url: str, count: int) -> list[NotaryNode]:
    """Serve the notary's name with ``count`` workers (own engines) on one database, taking
    requests in turn (as several notary processes behind one address would)."""
    name = net.notary.name
    net.stop(name)
    workers = [
        open_notary(net.directory, net.map, name, net.transport, db_url=db_url)
        for _ in range(count)
    ]
    turn = itertools.count()
    net.notaries[name] = workers[0]
    net.transport.register(name, lambda data: workers[next(turn) % count].handle(data))
    return workers


@pytest.mark.parametrize("validating", [False, True], ids=["non-validating", "validating"])
def test_notary_workers_on_one_database_under_concurrent_flows(
    tmp_path: Path, db_url: str, validating: bool
) -> None:
    """Eight moves sharing a back-chain and eight rival spends of one state, all at once,
    through four notary workers on one database (SQLite file or PostgreSQL)."""
    net = make_network(tmp_path / "net", validating=validating)
    workers = _notary_workers(net, db_url, WORKERS)
    try:
        issuer, alice, bob, carol = (net.node(n) for n in (ISSUER, ALICE, BOB, CAROL))
        issue_tokens(issuer, JPY, 900, alice.party)
        split = split_tokens(alice, jpy(net), 9)
        receivers = [bob, carol]
        moves = [_move_of(alice, i, receivers[i % 2]) for i in range(8)]
        rivals = [_move_of(alice, 8, receivers[i % 2]) for i in range(8)]
        contested = rivals[0].tx.inputs[0]
        outcomes = race([partial(alice.finalise, stx) for stx in moves + rivals])
        failures = [o for o in outcomes[: len(moves)] if isinstance(o, Exception)]
        assert not failures, failures
        winners, losers = winners_and_losers(outcomes[len(moves) :])
        assert len(winners) == 1, outcomes
        won = rivals[winners[0]]
        assert [loser.consumed for loser in losers] == [{str(contested): won.id.hex()}] * 7
        assert balance_of(bob, jpy(net)) + balance_of(carol, jpy(net)) == 900
        assert balance_of(alice, jpy(net)) == 0
        notarised = [split, *moves, won]
        expected = {r: stx.id for stx in notarised for r in stx.tx.inputs}
        for worker in workers:  # one shared log, whichever worker answered
            assert worker.uniqueness.log_entries() == expected
            assert worker.uniqueness.committed_count() == len(notarised)
        assert alice.db.checkpoints() == []
        assert _consumed_by(alice, contested) == (StateStatus.CONSUMED, won.id)
    finally:
        net.close()
        for worker in workers:
            worker.db.engine.dispose()


def test_whole_network_on_postgres_with_recovery(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    """Every party on its own PostgreSQL database: a payment to a party that is down is kept
    as a checkpoint and finished by ``recover`` (which records the transaction again)."""
    net = make_network(tmp_path / "net")
    names = [str(net.notary.name), ISSUER, ALICE, BOB]
    databases = [postgres_server.create_database() for _ in names]
    try:
        for name, database in zip(names, databases, strict=True):
            _move_to(net, name, postgres_server.url(database))
        issuer, alice = net.node(ISSUER), net.node(ALICE)
        assert alice.db.engine.dialect.name == "postgresql"
        issue_tokens(issuer, JPY, 100, alice.party)
        net.stop(BOB)
        payment = move_tokens(alice, jpy(net), 40, net.map.party(BOB))
        assert [r for _, r in alice.db.checkpoints()] == [[BOB]]
        bob = _move_to(net, BOB, postgres_server.url(databases[names.index(BOB)]))
        assert isinstance(bob, Node)
        assert alice.recover() == []
        assert alice.db.checkpoints() == []
        assert payment.id in bob.db.transaction_ids()
        assert balance_of(bob, jpy(net)) == 40
        assert balance_of(alice, jpy(net)) == 60
        # Recording what a node already holds changes nothing, on PostgreSQL too.
        assert alice.db.record(payment) == []
        assert bob.db.record(payment) == []
        assert alice.db.count(StateStatus.ALL) == 2
        assert bob.db.count(StateStatus.ALL) == 1
        move_tokens(bob, jpy(net), 40, alice.party)
        assert balance_of(alice, jpy(net)) == 100
    finally:
        net.close()
        for database in databases:
            postgres_server.drop_database(database)
