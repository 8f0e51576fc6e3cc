"""The key-value cross application as Corda states (kakehashi.cross.corda_kv) on a real embedded
Corda network: record and lock states moved in the host's notarised versions, the contract
guarding the locks, read / write lock rules, crash safety, two hosts over a real channel, and a
property test against a model."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kakehashi.cross import kv
from kakehashi.cross.auth import corda_key_id
from kakehashi.cross.corda_kv import (
    KV_CONTRACT,
    KvLockState,
    KvRecordState,
    KvRelease,
    StateKeyValueApp,
    part_id,
)
from kakehashi.cross.corda_module import CROSS_PORT, CROSS_VERSION, CrossModule
from kakehashi.cross.participant import PartCall
from kakehashi.cross.status import Decision
from kakehashi.cross.tx import (
    Account,
    ChannelInfo,
    CommitProtocol,
    ContractTransaction,
    CrossTxError,
    InitiateTx,
    Link,
    SignerKind,
)
from kakehashi.errors import ConflictError, ContractRejection, TransportError
from kakehashi.ibc.corda_host import CordaIbcHost
from kakehashi.ibc.types import Height
from kakehashi.ledgers.corda.model.states import Command, StateAndRef, TransactionState
from kakehashi.ledgers.corda.node.setup import EmbeddedNetwork
from kakehashi.ledgers.corda.node.vault import StateStatus
from tests.cross.test_corda_module import relay
from tests.ibc.test_corda_host import BANK_B, OPERATOR, TwoHosts, open_channel

NOTARY = "O=Notary, L=Zurich, C=CH"
T = TypeVar("T")


def tx_id(n: int) -> bytes:
    return n.to_bytes(32, "big")


T1, T2, T3 = tx_id(1), tx_id(2), tx_id(3)


class Kv:
    """One host and its StateKeyValueApp, each step run as one host call."""

    def __init__(self, net: EmbeddedNetwork, name: str = OPERATOR) -> None:
        self.net = net
        self.host = CordaIbcHost(net.node(name))
        self.app = StateKeyValueApp(self.host)

    def run(self, step: Callable[[], T]) -> T:
        return self.host.execute(lambda _store: step())

    def prepare(
        self, tx: bytes, call_info: bytes, index: int = 0, linked: tuple[bytes, ...] = ()
    ) -> bytes:
        return self.run(lambda: self.app.prepare(PartCall(tx, index, call_info, (), linked)))

    def commit(self, tx: bytes, index: int = 0) -> None:
        self.run(lambda: self.app.commit(tx, index))

    def abort(self, tx: bytes, index: int = 0) -> None:
        self.run(lambda: self.app.abort(tx, index))

    def call(self, call: PartCall) -> bytes:
        """Prepare and commit ``call`` in one host call (Simple Commit's CALL)."""

        def both() -> bytes:
            result = self.app.prepare(call)
            self.app.commit(call.tx_id, call.index)
            return result

        return self.run(both)

    def decide(self, tx: bytes, parts: list[int], commit: bool) -> None:
        """Commit or abort ``parts`` of ``tx`` in one host call."""
        release = self.app.commit if commit else self.app.abort
        self.run(lambda: [release(tx, index) for index in parts])

    def set(self, key: bytes, value: bytes, tx: bytes = tx_id(99)) -> None:
        """Commit ``key = value`` in one call."""
        self.call(PartCall(tx, 0, kv.kv_call(key, value)))

    def states(self, kind: type, status: StateStatus = StateStatus.UNCONSUMED) -> list[StateAndRef]:
        return self.host.node.db.query(kind, status=status)

    def refused(self, error: type[Exception], match: str, step: Callable[[], object]) -> None:
        """``step`` raises ``error`` inside a host call having staged nothing at all."""
        before = self.host.version

        def action() -> None:
            with pytest.raises(error, match=match):
                step()
            staged = self.host.store.staged_states()
            assert staged.inputs == staged.outputs == staged.commands == ()

        self.run(action)
        assert self.host.version == before


@pytest.fixture
def net(tmp_path: Path) -> Iterator[EmbeddedNetwork]:
    network = EmbeddedNetwork.create(tmp_path / "net")
    yield network
    network.close()


@pytest.fixture
def one(net: EmbeddedNetwork) -> Kv:
    return Kv(net)


# ---------------------------------------------------------------------------- lock states


def test_prepare_moves_the_record_into_a_lock_state_notarised_with_the_host_version(
    one: Kv, net: EmbeddedNetwork
) -> None:
    one.set(b"k", b"old")
    (record,) = one.states(KvRecordState)
    assert record.state.data == KvRecordState(one.host.node.party, b"k", b"old")
    assert one.prepare(T1, kv.kv_call(b"k", b"new")) == kv.OK

    (lock,) = one.states(KvLockState)
    assert lock.state.contract == KV_CONTRACT
    assert lock.state.data == KvLockState(one.host.node.party, T1, 0, b"k", b"old", b"new")
    assert lock.ref.txhash == one.host.state.ref.txhash  # in this version's host transaction
    assert net.notary.uniqueness.consumed_by(record.ref) == lock.ref.txhash  # notarised
    assert one.states(KvRecordState) == []  # the record moved into the lock
    assert (one.app.value(b"k"), one.app.locked_by(b"k"), one.app.locks()) == (b"old", T1, True)

    one.commit(T1)
    assert net.notary.uniqueness.consumed_by(lock.ref) == one.host.state.ref.txhash
    assert one.states(KvLockState) == []
    (record,) = one.states(KvRecordState)
    assert record.state.data == KvRecordState(one.host.node.party, b"k", b"new")
    assert (one.app.value(b"k"), one.app.locked_by(b"k"), one.app.locks()) == (b"new", None, False)
    one.commit(T1)  # a repeated decision changes nothing
    assert one.app.value(b"k") == b"new"


def test_abort_spends_the_lock_back_into_the_old_record(one: Kv) -> None:
    one.set(b"k", b"old")
    one.prepare(T1, kv.kv_call(b"k", b"new"))
    one.abort(T1)
    assert one.app.value(b"k") == b"old" and not one.app.locks()
    one.prepare(T2, kv.kv_call(b"fresh", b"v"))  # a key without a record
    one.abort(T2)
    assert one.app.value(b"fresh") is None and not one.app.locks()
    assert [s.state.data.key for s in one.states(KvRecordState)] == [b"k"]  # type: ignore[attr-defined]


def _lock(one: Kv) -> StateAndRef:
    one.set(b"k", b"old")
    one.prepare(T1, kv.kv_call(b"k", b"new"))
    (lock,) = one.states(KvLockState)
    return lock


def _record(one: Kv, value: bytes | None) -> TransactionState:
    return TransactionState(
        KvRecordState(one.host.node.party, b"k", value), KV_CONTRACT, one.host.notary
    )


@pytest.mark.parametrize(
    ("release", "value", "reason"),
    [
        (None, b"new", "spent only by that part's KvRelease"),
        (KvRelease(T2, 0, b"k", True), b"new", "spent only by that part's KvRelease"),
        (KvRelease(T1, 1, b"k", True), b"new", "spent only by that part's KvRelease"),
        (KvRelease(T1, 0, b"k", True), b"old", "must produce"),  # COMMIT gives the new value
        (KvRelease(T1, 0, b"k", False), b"new", "must produce"),  # ABORT gives the old one
        (KvRelease(T1, 0, b"k", True), b"other", "must produce"),
    ],
)
def test_the_contract_spends_a_lock_only_by_its_release_into_the_right_record(
    one: Kv, release: KvRelease | None, value: bytes, reason: str
) -> None:
    lock = _lock(one)
    key = one.host.node.party.owning_key
    commands = [] if release is None else [Command(release, (key,))]
    before = one.host.version
    with pytest.raises(ContractRejection, match=reason):
        one.host.execute(
            lambda s: s.add_states(
                inputs=[lock.ref], outputs=[_record(one, value)], commands=commands
            )
        )
    assert one.host.version == before and one.states(KvLockState) == [lock]
    # the right release, through the same hook, is accepted (what the app itself does)
    one.host.execute(
        lambda s: s.add_states(
            inputs=[lock.ref],
            outputs=[_record(one, b"new")],
            commands=[Command(KvRelease(T1, 0, b"k", True), (key,))],
        )
    )
    assert one.states(KvLockState) == []


def test_the_contract_needs_the_host_transaction_and_the_operator(one: Kv) -> None:
    lock = _lock(one)
    node = one.host.node
    other = one.net.node(BANK_B).party
    with pytest.raises(ContractRejection, match="signs every key-value command"):
        one.host.execute(
            lambda s: s.add_states(
                inputs=[lock.ref],
                outputs=[_record(one, b"new")],
                commands=[Command(KvRelease(T1, 0, b"k", True), (other.owning_key,))],
            )
        )
    forged = TransactionState(KvRecordState(other, b"x", b"v"), KV_CONTRACT, one.host.notary)
    with pytest.raises(ContractRejection, match="the host's"):
        one.host.execute(lambda s: s.add_states(outputs=[forged]))
    assert node.db.query(KvLockState) == [lock]


# ---------------------------------------------------------------------------- lock rules


def test_read_locks_are_shared_and_block_a_writer(one: Kv) -> None:
    one.set(b"k", b"v")
    assert one.prepare(T1, kv.kv_get(b"k")) == b"v"
    assert one.prepare(T2, kv.kv_get(b"k")) == b"v"  # shared
    assert one.app.readers(b"k") == [T1, T2]
    (record,) = one.states(KvRecordState)
    assert record.state.data.readers == tuple(sorted([part_id(T1, 0), part_id(T2, 0)]))  # type: ignore[attr-defined]
    one.refused(
        ConflictError,
        "read-locked by",
        lambda: one.app.prepare(PartCall(T3, 0, kv.kv_call(b"k", b"w"))),
    )
    one.commit(T1)
    one.refused(
        ConflictError,
        "read-locked by",
        lambda: one.app.prepare(PartCall(T3, 0, kv.kv_delete(b"k"))),
    )
    one.abort(T2)
    assert one.app.readers(b"k") == [] and not one.app.locks()
    one.prepare(T3, kv.kv_call(b"k", b"w"))  # free now
    one.commit(T3)
    assert one.app.value(b"k") == b"w"


def test_a_read_of_an_absent_key_is_locked_too(one: Kv) -> None:
    assert one.prepare(T1, kv.kv_get(b"nothing")) == b""
    one.refused(
        ConflictError,
        "read-locked",
        lambda: one.app.prepare(PartCall(T2, 0, kv.kv_call(b"nothing", b"x"))),
    )
    one.commit(T1)
    assert one.states(KvRecordState) == [] and not one.app.locks()  # no value, no reader: no state


def test_a_write_lock_blocks_readers_and_writers_of_other_transactions(one: Kv) -> None:
    one.set(b"k", b"v")
    one.prepare(T1, kv.kv_call(b"k", b"w"))
    one.refused(
        ConflictError,
        "locked by cross transaction",
        lambda: one.app.prepare(PartCall(T2, 0, kv.kv_get(b"k"))),
    )
    one.refused(
        ConflictError,
        "locked by cross transaction",
        lambda: one.app.prepare(PartCall(T2, 0, kv.kv_call(b"k", b"x"))),
    )
    one.refused(
        ConflictError,
        "same cross transaction",
        lambda: one.app.prepare(PartCall(T1, 1, kv.kv_delete(b"k"))),
    )
    assert (
        one.prepare(T1, kv.kv_get(b"k"), index=1) == b"v"
    )  # its own transaction reads the committed value
    one.commit(T1, 0)
    assert one.app.readers(b"k") == [T1]  # the read part still holds its lock
    one.commit(T1, 1)
    assert one.app.value(b"k") == b"w" and not one.app.locks()


def test_a_transaction_may_write_what_it_read(one: Kv) -> None:
    one.set(b"k", b"v")
    one.prepare(T1, kv.kv_get(b"k"), index=0)
    one.prepare(T1, kv.kv_call(b"k", b"w"), index=1)
    assert one.app.locked_by(b"k") == T1 and one.app.readers(b"k") == [T1]
    one.abort(T1, 1)
    one.abort(T1, 0)
    assert one.app.value(b"k") == b"v" and not one.app.locks()


def test_deletes_are_honoured(one: Kv) -> None:
    one.set(b"k", b"v")
    one.prepare(T1, kv.kv_delete(b"k"))
    assert one.app.value(b"k") == b"v"  # not before the commit
    one.abort(T1)
    assert one.app.value(b"k") == b"v"
    one.prepare(T2, kv.kv_delete(b"k"))
    one.commit(T2)
    assert one.app.value(b"k") is None and one.states(KvRecordState) == [] and not one.app.locks()
    assert one.prepare(T3, kv.kv_get(b"k")) == b""


def test_set_linked_writes_the_first_links_value(one: Kv) -> None:
    assert one.prepare(T1, kv.kv_set_linked(b"k"), linked=(b"answer", b"ignored")) == kv.OK
    one.commit(T1)
    assert one.app.value(b"k") == b"answer"
    one.refused(
        CrossTxError,
        "needs a link",
        lambda: one.app.prepare(PartCall(T2, 0, kv.kv_set_linked(b"k"))),
    )


def test_bad_calls_are_refused_having_changed_nothing(one: Kv) -> None:
    one.set(b"big", b"x" * 97)
    refuse = one.refused
    refuse(CrossTxError, "at most 96", lambda: one.app.prepare(PartCall(T1, 0, kv.kv_get(b"big"))))
    erc20 = kv.asset_call(kv.OP_ERC20, b"\x01" * 20, b"\x02" * 20, b"\x03" * 20, 5)
    refuse(CrossTxError, "EVM assets", lambda: one.app.prepare(PartCall(T1, 0, erc20)))
    refuse(
        CrossTxError, "not a key-value call", lambda: one.app.prepare(PartCall(T1, 0, b"set k=v"))
    )
    one.prepare(T1, kv.kv_call(b"k", b"v"))
    refuse(
        CrossTxError,
        "already prepared",
        lambda: one.app.prepare(PartCall(T1, 0, kv.kv_call(b"j", b"v"))),
    )
    assert one.app.value(b"big") == b"x" * 97


def test_prepare_and_commit_in_one_call_never_materialise_the_lock(one: Kv) -> None:
    one.set(b"k", b"v1")
    one.set(b"k", b"v2", tx=T1)
    assert one.states(KvLockState, StateStatus.ALL) == []  # the lock never reached the ledger
    stx = one.host.node.db.get_transaction(one.host.state.ref.txhash)
    assert stx is not None
    assert [type(c.value).__name__ for c in stx.tx.commands] == [
        "HostAdvance",
        "KvPrepare",
        "KvRelease",
    ]
    assert one.app.value(b"k") == b"v2" and not one.app.locks()


# ---------------------------------------------------------------------------- crash safety


def test_locks_survive_a_crash_between_signing_and_notarising(net: EmbeddedNetwork) -> None:
    one = Kv(net)
    one.set(b"k", b"old")
    net.stop(NOTARY)
    with pytest.raises(TransportError):
        one.prepare(T1, kv.kv_call(b"k", b"new"))  # left pending
    net.start(NOTARY)
    again = Kv.__new__(Kv)
    again.net, again.host = net, CordaIbcHost(net.restart(OPERATOR))  # type: ignore[arg-type]
    again.app = StateKeyValueApp(again.host)
    # the pending change was completed on opening: the lock is in the vault and the index
    (lock,) = again.states(KvLockState)
    assert again.host.store.state_ref("app:kv-state", b"k".hex()) == lock.ref
    assert (again.app.value(b"k"), again.app.locked_by(b"k")) == (b"old", T1)
    net.stop(NOTARY)
    with pytest.raises(TransportError):
        again.commit(T1)
    net.start(NOTARY)
    again.abort(T2)  # any next call completes the pending commit first
    assert (again.app.value(b"k"), again.app.locked_by(b"k")) == (b"new", None)
    assert not again.app.locks()


def test_a_refused_notarisation_keeps_the_lock_as_it_was(net: EmbeddedNetwork) -> None:
    import time

    skew = {"ns": 0}
    host = CordaIbcHost(net.node(OPERATOR), clock=lambda: time.time_ns() + skew["ns"])
    app = StateKeyValueApp(host)
    host.execute(lambda _s: app.prepare(PartCall(T1, 0, kv.kv_call(b"k", b"v"))))
    skew["ns"] = 3600 * 10**9  # the notary refuses this host time
    with pytest.raises(Exception, match="time"):
        host.execute(lambda _s: app.commit(T1, 0))
    assert app.locked_by(b"k") == T1 and len(host.node.db.query(KvLockState)) == 1
    skew["ns"] = 0
    host.execute(lambda _s: app.commit(T1, 0))
    assert app.value(b"k") == b"v" and not app.locks()


# ---------------------------------------------------------------------------- two hosts


@pytest.fixture
def linked(net: EmbeddedNetwork) -> tuple[TwoHosts, CrossModule, CrossModule]:
    a, b = CrossModule(app_factory=StateKeyValueApp), CrossModule(app_factory=StateKeyValueApp)
    hosts = open_channel(net, CROSS_PORT, (a, b), CROSS_VERSION)
    a.attach(hosts.a)
    b.attach(hosts.b)
    return hosts, a, b


def transaction(
    hosts: TwoHosts,
    protocol: CommitProtocol,
    calls: tuple[bytes, bytes],
    nonce: int = 1,
    returns: tuple[bytes | None, bytes | None] = (kv.OK, kv.OK),
    links: tuple[tuple[Link, ...], tuple[Link, ...]] = ((), ()),
) -> InitiateTx:
    channel = ChannelInfo(CROSS_PORT, hosts.chan_a)
    initiator = Account(SignerKind.LOCAL, corda_key_id(hosts.a.node.party.owning_key))
    parts = tuple(
        ContractTransaction(channel, (initiator,), call, value, link)
        for call, value, link in zip(calls, returns, links, strict=True)
    )
    return InitiateTx("bank-a", nonce, protocol, parts, Height(0, 10**6))


@pytest.mark.parametrize("protocol", [CommitProtocol.SIMPLE, CommitProtocol.TPC])
def test_a_cross_transaction_between_two_hosts_commits_both_with_no_lock_left(
    linked: tuple[TwoHosts, CrossModule, CrossModule], protocol: CommitProtocol
) -> None:
    hosts, a, b = linked
    app_a, app_b = a.app, b.app
    assert isinstance(app_a, StateKeyValueApp) and isinstance(app_b, StateKeyValueApp)
    for nonce in (1, 2):  # the second overwrites: it consumes the first's records
        value = b"paid-%d" % nonce
        tx = transaction(
            hosts, protocol, (kv.kv_call(b"inv", value), kv.kv_call(b"inv", value)), nonce
        )
        a.initiate(tx)
        assert app_a.locked_by(b"inv") == tx.tx_id and app_a.locks()  # a lock state on A
        relay(hosts)
        c = a.coordinator(tx.tx_id)
        assert c is not None and c.decision is Decision.COMMIT and c.done
        assert app_a.value(b"inv") == value and app_b.value(b"inv") == value
        assert not app_a.locks() and not app_b.locks()


def test_a_read_lock_on_the_participant_aborts_a_write_everywhere(
    linked: tuple[TwoHosts, CrossModule, CrossModule],
) -> None:
    hosts, a, b = linked
    app_a, app_b = a.app, b.app
    assert isinstance(app_a, StateKeyValueApp) and isinstance(app_b, StateKeyValueApp)
    b.host.execute(lambda _s: app_b.prepare(PartCall(T1, 0, kv.kv_get(b"k"))))
    tx = transaction(hosts, CommitProtocol.TPC, (kv.kv_call(b"k", b"a"), kv.kv_call(b"k", b"b")))
    a.initiate(tx)
    relay(hosts)
    c = a.coordinator(tx.tx_id)
    assert c is not None and c.decision is Decision.ABORT and c.done
    assert "read-locked" in c.failures[1]
    assert app_a.value(b"k") is None and not app_a.locks()
    assert app_b.readers(b"k") == [T1]  # the other transaction keeps its read lock


def test_a_cross_chain_call_writes_what_the_other_host_read(
    linked: tuple[TwoHosts, CrossModule, CrossModule],
) -> None:
    hosts, a, b = linked
    app_a, app_b = a.app, b.app
    assert isinstance(app_a, StateKeyValueApp) and isinstance(app_b, StateKeyValueApp)
    a.host.execute(
        lambda _s: (
            app_a.prepare(PartCall(T1, 0, kv.kv_call(b"rate", b"1.07"))),
            app_a.commit(T1, 0),
        )
    )
    tx = transaction(
        hosts,
        CommitProtocol.TPC,
        (kv.kv_get(b"rate"), kv.kv_set_linked(b"rate")),
        returns=(b"1.07", kv.OK),
        links=((), (Link(0),)),
    )
    a.initiate(tx)
    relay(hosts)
    c = a.coordinator(tx.tx_id)
    assert c is not None and c.decision is Decision.COMMIT
    assert app_b.value(b"rate") == b"1.07" and not app_a.locks() and not app_b.locks()


# ---------------------------------------------------------------------------- property

_keys = st.sampled_from([b"a", b"b", b"c"])
_ops = st.one_of(
    st.tuples(st.just(kv.OP_SET), _keys, st.sampled_from([b"1", b"2", b"3"])),
    st.tuples(st.just(kv.OP_DELETE), _keys, st.just(b"")),
    st.tuples(st.just(kv.OP_GET), _keys, st.just(b"")),
)
_actions = st.lists(
    st.one_of(
        st.tuples(st.just("prepare"), st.integers(0, 3), st.integers(0, 1), _ops),
        st.tuples(st.just("decide"), st.integers(0, 3), st.booleans(), st.just(None)),
        st.tuples(st.just("call"), st.integers(0, 3), st.integers(0, 1), _ops),
    ),
    max_size=14,
)
_generation = itertools.count()


class Model:
    """What the application must do: committed values, write locks, read locks."""

    def __init__(self) -> None:
        self.values: dict[bytes, bytes] = {}
        self.writer: dict[bytes, tuple[bytes, int]] = {}
        self.readers: dict[bytes, set[tuple[bytes, int]]] = {}
        self.prepared: dict[tuple[bytes, int], tuple[int, bytes, bytes]] = {}

    def admits(self, tx: bytes, index: int, op: int, key: bytes) -> bool:
        writer = self.writer.get(key)
        if op == kv.OP_GET:
            return writer is None or writer[0] == tx
        others = {r for r in self.readers.get(key, set()) if r[0] != tx}
        return writer is None and not others

    def prepare(self, tx: bytes, index: int, op: int, key: bytes, value: bytes) -> bytes:
        self.prepared[(tx, index)] = (op, key, value)
        if op == kv.OP_GET:
            self.readers.setdefault(key, set()).add((tx, index))
            return self.values.get(key, b"")
        self.writer[key] = (tx, index)
        return kv.OK

    def decide(self, tx: bytes, index: int, commit: bool) -> None:
        op, key, value = self.prepared.pop((tx, index))
        if op == kv.OP_GET:
            self.readers[key].discard((tx, index))
            return
        del self.writer[key]
        if commit and op == kv.OP_SET:
            self.values[key] = value
        elif commit:
            self.values.pop(key, None)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kv]:
    network = EmbeddedNetwork.create(tmp_path_factory.mktemp("kvprop") / "net")
    yield Kv(network)
    network.close()


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(actions=_actions)
def test_random_prepare_commit_abort_sequences_match_the_model(
    shared: Kv, actions: list[tuple[str, int, object, object]]
) -> None:
    one, model = shared, Model()
    generation = next(_generation)
    prefix = b"%d/" % generation  # fresh keys and transactions for every example
    txs = [tx_id(1000 * (generation + 1) + i) for i in range(4)]
    decided: set[bytes] = set()
    for kind, t, arg, op in actions:
        tx = txs[t]
        if tx in decided:
            continue
        if kind == "decide":
            assert isinstance(arg, bool)
            parts = sorted(i for (x, i) in model.prepared if x == tx)
            one.decide(tx, parts, arg)
            for i in parts:
                model.decide(tx, i, arg)
            decided.add(tx)
            continue
        assert isinstance(arg, int) and isinstance(op, tuple)
        code, key, value = op
        key = prefix + key
        call = PartCall(tx, arg, kv.KvOp(code, key, value).encode())
        if (tx, arg) in model.prepared:
            continue
        if not model.admits(tx, arg, code, key):
            with pytest.raises(ConflictError):
                one.prepare(tx, call.call_info, index=arg)
            continue
        if kind == "call":  # prepared and committed in one host call (Simple Commit's CALL)
            assert one.call(call) == model.prepare(tx, arg, code, key, value)
            model.decide(tx, arg, True)
        else:
            assert one.prepare(tx, call.call_info, index=arg) == model.prepare(
                tx, arg, code, key, value
            )
    for tx in txs:  # every transaction decided in the end: abort what is left
        parts = sorted(i for (x, i) in model.prepared if x == tx)
        one.decide(tx, parts, False)
        for i in parts:
            model.decide(tx, i, False)
    assert not one.app.locks()
    for key in (b"a", b"b", b"c"):
        assert one.app.value(prefix + key) == model.values.get(prefix + key)
