"""A node's database: its transaction store and its vault of states.

The vault records the states relevant to the node (one of its keys is a participant), marks them
consumed when a recorded transaction spends them, and indexes them by type, linear id, holder and
token so that queries cost the same at 1k or 100k states. Soft locks reserve states for a flow so
that two flows of the same node never pick the same coins.
"""

from __future__ import annotations

import enum
import functools
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    and_,
    func,
    select,
)

from kakehashi.errors import StatesNotAvailableError
from kakehashi.ledgers.corda.merkle import ComponentGroup
from kakehashi.ledgers.corda.model.crypto import PublicKey
from kakehashi.ledgers.corda.model.serialization import deserialize, serialize, type_name
from kakehashi.ledgers.corda.model.states import (
    ContractState,
    FungibleState,
    LinearState,
    OwnableState,
    StateAndRef,
    StateRef,
    TransactionState,
)
from kakehashi.ledgers.corda.model.transactions import SignedTransaction
from kakehashi.ledgers.corda.node.storage import SQL, placeholders, write_transaction

TX_CACHE_SIZE = 4096

node_metadata = MetaData()

transactions = Table(
    "transactions",
    node_metadata,
    Column("tx_id", LargeBinary(32), primary_key=True),
    Column("data", LargeBinary, nullable=False),
    Column("recorded_at", BigInteger, nullable=False),
)

# Which transactions a peer may fetch from us (Corda's data-vending rule: what we sent it and,
# transitively, the dependencies of what we served).
authorised = Table(
    "authorised_fetches",
    node_metadata,
    Column("peer", String(512), primary_key=True),
    Column("tx_id", LargeBinary(32), primary_key=True),
)

vault_states = Table(
    "vault_states",
    node_metadata,
    Column("txhash", LargeBinary(32), primary_key=True),
    Column("output_index", Integer, primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("state_type", String(200), nullable=False),
    Column("contract", String(200), nullable=False),
    Column("notary", String(512), nullable=False),
    Column("linear_id", LargeBinary(16)),
    Column("holder", String(200)),
    Column("token", String(512)),
    Column("quantity", BigInteger),
    Column("status", SmallInteger, nullable=False),
    Column("consumed_by", LargeBinary(32)),
    Column("data", LargeBinary, nullable=False),
    Index("ix_vault_type", "status", "state_type", "seq"),
    Index("ix_vault_linear", "linear_id", "status"),
    Index("ix_vault_holder_token", "holder", "token", "status", "seq"),
)

# Flows that must finish after a crash: a transaction signed but maybe not yet notarised,
# recorded or delivered to every participant.
checkpoints = Table(
    "checkpoints",
    node_metadata,
    Column("tx_id", LargeBinary(32), primary_key=True),
    Column("data", LargeBinary, nullable=False),
    Column("recipients", String, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)


class StateStatus(enum.IntEnum):
    UNCONSUMED = 0
    CONSUMED = 1
    ALL = 2


# The statements of every flow, hand-written for the driver (see ``storage``); the schema and
# the occasional queries use SQLAlchemy Core.
_GET_TX = SQL("SELECT data FROM transactions WHERE tx_id = :tx_id")
_INSERT_TX = SQL(
    "INSERT INTO transactions (tx_id, data, recorded_at) VALUES (:tx_id, :data, :recorded_at) "
    "ON CONFLICT DO NOTHING"
)
_CONSUME = SQL(
    f"UPDATE vault_states SET status = {int(StateStatus.CONSUMED)}, consumed_by = :consumer "
    "WHERE txhash = :txhash AND output_index = :output_index"
)
_STATE_COLUMNS = [column.name for column in vault_states.columns]
_INSERT_STATES = SQL(
    f"INSERT INTO vault_states ({', '.join(_STATE_COLUMNS)}) "
    f"VALUES ({', '.join(':' + name for name in _STATE_COLUMNS)})"
)
_AUTHORISE = SQL(
    "INSERT INTO authorised_fetches (peer, tx_id) VALUES (:peer, :tx_id) ON CONFLICT DO NOTHING"
)
_IS_AUTHORISED = SQL("SELECT 1 FROM authorised_fetches WHERE peer = :peer AND tx_id = :tx_id")
_UNCONSUMED_TOKENS = SQL(
    "SELECT txhash, output_index, quantity, data FROM vault_states "
    f"WHERE holder = :holder AND token = :token AND status = {int(StateStatus.UNCONSUMED)} "
    "ORDER BY seq"
)
_DELETE_CHECKPOINT = SQL("DELETE FROM checkpoints WHERE tx_id = :tx_id")
_INSERT_CHECKPOINT = SQL(
    "INSERT INTO checkpoints (tx_id, data, recipients, created_at) "
    "VALUES (:tx_id, :data, :recipients, :created_at)"
)
_SET_RECIPIENTS = SQL("UPDATE checkpoints SET recipients = :recipients WHERE tx_id = :tx_id")


@functools.lru_cache(maxsize=64)
def _has_txs(count: int) -> SQL:
    return SQL(f"SELECT tx_id FROM transactions WHERE tx_id IN ({placeholders('id', count)})")


@functools.lru_cache(maxsize=64)
def _unconsumed_of(count: int) -> SQL:
    return SQL(
        "SELECT txhash, output_index FROM vault_states "
        f"WHERE status = {int(StateStatus.UNCONSUMED)} "
        f"AND (txhash, output_index) IN {placeholders('r', count, per_row=2)}"
    )


class _Sequence:
    """Strictly increasing record numbers (oldest-first coin selection, stable paging)."""

    def __init__(self, start: int) -> None:
        self._last = start

    def next(self) -> int:
        self._last = max(self._last + 1, time.time_ns())
        return self._last


class NodeDatabase:
    """Transaction store + vault of one node, on its own database."""

    def __init__(self, engine: Engine, my_keys: Iterable[PublicKey]) -> None:
        node_metadata.create_all(engine)
        self.engine = engine
        self.my_keys = frozenset(my_keys)
        with engine.connect() as conn:
            last = conn.execute(select(func.max(vault_states.c.seq))).scalar()
        self._seq = _Sequence(int(last or 0))
        # Recorded transactions never change, so decoded copies can be shared; bounded LRU.
        self._cache: OrderedDict[bytes, SignedTransaction] = OrderedDict()
        self._cache_lock = threading.Lock()
        # Soft locks only coordinate the flows of this running node (Corda releases them when a
        # flow ends), so they live in memory: reserving coins costs no database write.
        self._soft_locks: dict[StateRef, str] = {}
        self._locks_lock = threading.Lock()
        # Bumped whenever a flow's locks go because its inputs were consumed: a selection that
        # read the vault before such a bump may hold a stale snapshot and must re-check.
        self._consumed_epoch = 0

    def _cached(self, stx: SignedTransaction) -> None:
        with self._cache_lock:
            self._cache[stx.id] = stx
            self._cache.move_to_end(stx.id)
            while len(self._cache) > TX_CACHE_SIZE:
                self._cache.popitem(last=False)

    # -- transactions -------------------------------------------------------------------------

    def get_transaction(self, tx_id: bytes) -> SignedTransaction | None:
        with self._cache_lock:
            hit = self._cache.get(tx_id)
        if hit is not None:
            return hit
        with self.engine.connect() as conn:
            row = _GET_TX.run(conn, {"tx_id": tx_id}).fetchone()
        if row is None:
            return None
        stx = deserialize(bytes(row[0]), SignedTransaction)
        self._cached(stx)
        return stx

    def has_transactions(self, tx_ids: Iterable[bytes]) -> set[bytes]:
        ids = set(tx_ids)
        with self._cache_lock:
            found = {tx_id for tx_id in ids if tx_id in self._cache}
        rest = list(ids - found)
        if rest:
            with self.engine.connect() as conn:
                params = {f"id{i}": tx_id for i, tx_id in enumerate(rest)}
                rows = _has_txs(len(rest)).run(conn, params).fetchall()
                found |= {bytes(r[0]) for r in rows}
        return found

    def transaction_ids(self) -> set[bytes]:
        with self.engine.connect() as conn:
            return {bytes(r.tx_id) for r in conn.execute(select(transactions.c.tx_id))}

    def resolve_state(self, ref: StateRef) -> TransactionState | None:
        stx = self.get_transaction(ref.txhash)
        if stx is None or ref.index >= len(stx.tx.outputs):
            return None
        return stx.tx.outputs[ref.index]

    def record(
        self,
        stx: SignedTransaction,
        *,
        relevant: bool = True,
        dependencies: Sequence[SignedTransaction] = (),
        conn: Connection | None = None,
    ) -> list[StateAndRef]:
        """Store ``stx`` (and verified ``dependencies``) and update the vault, atomically.

        Returns the states the vault gained. Recording a transaction twice changes nothing.
        Only the caller knows when a transaction it passes as ``conn`` commits, so only a
        self-committed record fills the cache of decoded transactions.
        """
        if conn is None:
            with write_transaction(self.engine) as own:
                gained = self.record(stx, relevant=relevant, dependencies=dependencies, conn=own)
            for tx in (*dependencies, stx):
                self._cached(tx)
                self._forget_locks(tx.tx.inputs)
            return gained
        for dep in dependencies:
            self._record_one(conn, dep, relevant=False)
        return self._record_one(conn, stx, relevant=relevant)

    def _record_one(
        self, conn: Connection, stx: SignedTransaction, *, relevant: bool
    ) -> list[StateAndRef]:
        inserted = _INSERT_TX.run(
            conn, {"tx_id": stx.id, "data": serialize(stx), "recorded_at": time.time_ns() // 1000}
        )
        if inserted.rowcount == 0:  # recorded before: nothing to do
            return []
        if stx.tx.inputs:
            _CONSUME.run_many(
                conn,
                [
                    {"txhash": ref.txhash, "output_index": ref.index, "consumer": stx.id}
                    for ref in stx.tx.inputs
                ],
            )
        gained = []
        if relevant:
            encoded = stx.tx.component_groups.get(ComponentGroup.OUTPUTS, ())
            rows = []
            for index, output in enumerate(stx.tx.outputs):
                if self.is_relevant(output.data):
                    ref = StateRef(stx.id, index)
                    rows.append(self._row(ref, output, encoded[index]))
                    gained.append(StateAndRef(output, ref))
            _INSERT_STATES.run_many(conn, rows)
        return gained

    def is_relevant(self, state: ContractState) -> bool:
        return any(party.owning_key in self.my_keys for party in state.participants)

    def _row(self, ref: StateRef, state: TransactionState, encoded: bytes) -> dict[str, object]:
        data = state.data
        holder = data.owner.owning_key.to_text() if isinstance(data, OwnableState) else None
        token, quantity = (
            (data.token_key, data.quantity) if isinstance(data, FungibleState) else (None, None)
        )
        return {
            "txhash": ref.txhash,
            "output_index": ref.index,
            "seq": self._seq.next(),
            "state_type": type_name(type(data)),
            "contract": state.contract,
            "notary": str(state.notary.name),
            "linear_id": data.linear_id.id if isinstance(data, LinearState) else None,
            "holder": holder,
            "token": token,
            "quantity": quantity,
            "status": StateStatus.UNCONSUMED,
            "consumed_by": None,
            "data": encoded,
        }

    # -- data vending -------------------------------------------------------------------------

    def authorise(self, peer: str, tx_ids: Iterable[bytes], conn: Connection | None = None) -> None:
        rows = [{"peer": peer, "tx_id": tx_id} for tx_id in set(tx_ids)]
        if not rows:
            return
        if conn is None:
            with write_transaction(self.engine) as own:
                self.authorise(peer, tx_ids, own)
            return
        _AUTHORISE.run_many(conn, rows)

    def authorise_many(
        self, peers: Iterable[str], tx_ids: Iterable[bytes], conn: Connection
    ) -> None:
        ids = set(tx_ids)
        _AUTHORISE.run_many(
            conn, [{"peer": peer, "tx_id": tx_id} for peer in peers for tx_id in ids]
        )

    def is_authorised(self, peer: str, tx_id: bytes) -> bool:
        with self.engine.connect() as conn:
            row = _IS_AUTHORISED.run(conn, {"peer": peer, "tx_id": tx_id}).fetchone()
        return row is not None

    # -- vault queries ------------------------------------------------------------------------

    def query(
        self,
        state_type: type[ContractState] | str | None = None,
        *,
        status: StateStatus = StateStatus.UNCONSUMED,
        linear_id: bytes | None = None,
        holder: PublicKey | None = None,
        token: str | None = None,
        limit: int = 200,
        offset: int = 0,
    ) -> list[StateAndRef]:
        """States matching every given criterion, oldest first."""
        clauses = []
        if status is not StateStatus.ALL:
            clauses.append(vault_states.c.status == status)
        if state_type is not None:
            name = state_type if isinstance(state_type, str) else type_name(state_type)
            clauses.append(vault_states.c.state_type == name)
        if linear_id is not None:
            clauses.append(vault_states.c.linear_id == linear_id)
        if holder is not None:
            clauses.append(vault_states.c.holder == holder.to_text())
        if token is not None:
            clauses.append(vault_states.c.token == token)
        stmt = (
            select(vault_states.c.txhash, vault_states.c.output_index, vault_states.c.data)
            .where(and_(*clauses))
            .order_by(vault_states.c.seq)
            .limit(limit)
            .offset(offset)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return [
            StateAndRef(deserialize(r.data, TransactionState), StateRef(r.txhash, r.output_index))
            for r in rows
        ]

    def count(self, status: StateStatus = StateStatus.UNCONSUMED) -> int:
        stmt = select(func.count()).select_from(vault_states)
        if status is not StateStatus.ALL:
            stmt = stmt.where(vault_states.c.status == status)
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar() or 0)

    def balance(self, token: str, holder: PublicKey | None = None) -> int:
        stmt = select(func.coalesce(func.sum(vault_states.c.quantity), 0)).where(
            vault_states.c.token == token, vault_states.c.status == StateStatus.UNCONSUMED
        )
        if holder is not None:
            stmt = stmt.where(vault_states.c.holder == holder.to_text())
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar() or 0)

    def balances(self) -> dict[str, int]:
        stmt = (
            select(vault_states.c.token, func.sum(vault_states.c.quantity))
            .where(
                vault_states.c.status == StateStatus.UNCONSUMED, vault_states.c.token.is_not(None)
            )
            .group_by(vault_states.c.token)
        )
        with self.engine.connect() as conn:
            return {row[0]: int(row[1]) for row in conn.execute(stmt)}

    def status_of(self, ref: StateRef) -> StateStatus | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(vault_states.c.status).where(
                    vault_states.c.txhash == ref.txhash, vault_states.c.output_index == ref.index
                )
            ).first()
        return None if row is None else StateStatus(row.status)

    # -- soft locks ---------------------------------------------------------------------------

    def select_fungible(
        self, token: str, holder: PublicKey, quantity: int, lock_id: str
    ) -> tuple[list[StateAndRef], int, int]:
        """Soft-lock the oldest unlocked states of ``token`` until they cover ``quantity``.

        Returns (locked states, their total, the holder's whole unconsumed balance). Locks nothing
        if the unlocked states are not enough.
        """
        while True:
            with self._locks_lock:
                epoch = self._consumed_epoch
            with self.engine.connect() as conn:
                rows = _UNCONSUMED_TOKENS.run(
                    conn, {"holder": holder.to_text(), "token": token}
                ).fetchall()
            balance = sum(int(r[2]) for r in rows)
            with self._locks_lock:
                chosen, total = [], 0
                for row in rows:
                    ref = StateRef(bytes(row[0]), row[1])
                    if ref in self._soft_locks:
                        continue
                    chosen.append((ref, row))
                    total += int(row[2])
                    if total >= quantity:
                        break
                if total < quantity:
                    return [], 0, balance
                for ref, _row in chosen:
                    self._soft_locks[ref] = lock_id
                stale = epoch != self._consumed_epoch
            refs = [ref for ref, _row in chosen]
            if stale and self._unconsumed(refs) != set(refs):
                # Another flow consumed one of them between our read and our lock: read again.
                self._unlock(refs, lock_id)
                continue
            states = [
                StateAndRef(deserialize(bytes(row[3]), TransactionState), ref)
                for ref, row in chosen
            ]
            return states, total, balance

    def soft_lock(self, refs: Sequence[StateRef], lock_id: str) -> None:
        """Reserve exactly these states for ``lock_id`` or raise StatesNotAvailableError."""
        with self._locks_lock:
            for ref in refs:
                if self._soft_locks.get(ref, lock_id) != lock_id:
                    raise StatesNotAvailableError(
                        f"state {ref} is soft-locked by another flow", [str(ref)]
                    )
            fresh = [ref for ref in refs if ref not in self._soft_locks]
            for ref in fresh:
                self._soft_locks[ref] = lock_id
        # Checked after locking: a flow that consumes a state commits before it unlocks, so a
        # state still unconsumed now cannot be consumed by another flow of this node meanwhile.
        missing = [ref for ref in refs if ref not in self._unconsumed(refs)]
        if missing:
            self._unlock(fresh, lock_id)
            raise StatesNotAvailableError(
                f"state(s) {', '.join(map(str, missing))} are consumed or unknown to this vault",
                [str(ref) for ref in missing],
            )

    def _unconsumed(self, refs: Sequence[StateRef]) -> set[StateRef]:
        with self.engine.connect() as conn:
            params: dict[str, object] = {}
            for i, ref in enumerate(refs):
                params[f"r{i}_0"], params[f"r{i}_1"] = ref.txhash, ref.index
            rows = _unconsumed_of(len(refs)).run(conn, params).fetchall()
            return {StateRef(bytes(r[0]), r[1]) for r in rows}

    def _unlock(self, refs: Iterable[StateRef], lock_id: str) -> None:
        with self._locks_lock:
            for ref in refs:
                if self._soft_locks.get(ref) == lock_id:
                    del self._soft_locks[ref]

    def release_soft_locks(self, lock_id: str) -> None:
        with self._locks_lock:
            for ref in [r for r, owner in self._soft_locks.items() if owner == lock_id]:
                del self._soft_locks[ref]

    def _forget_locks(self, refs: Iterable[StateRef]) -> None:
        with self._locks_lock:
            self._consumed_epoch += 1
            for ref in refs:
                self._soft_locks.pop(ref, None)

    # -- checkpoints --------------------------------------------------------------------------

    def save_checkpoint(self, stx: SignedTransaction, recipients: Sequence[str]) -> None:
        """Remember a flow about to notarise ``stx``; let ``recipients`` fetch its back-chain."""
        with write_transaction(self.engine) as conn:
            _DELETE_CHECKPOINT.run(conn, {"tx_id": stx.id})
            _INSERT_CHECKPOINT.run(
                conn,
                {
                    "tx_id": stx.id,
                    "data": serialize(stx),
                    "recipients": "\n".join(recipients),
                    "created_at": time.time_ns() // 1000,
                },
            )
            entitled = {stx.id, *stx.tx.dependencies()}
            self.authorise_many(recipients, entitled, conn)

    def finish_checkpoint(self, stx: SignedTransaction, undelivered: Sequence[str]) -> None:
        """Record our finalised ``stx`` and close its checkpoint (or keep who still waits)."""
        with write_transaction(self.engine) as conn:
            self.record(stx, conn=conn)
            self._set_recipients(conn, stx.id, undelivered)
        self._cached(stx)
        self._forget_locks(stx.tx.inputs)

    def drop_checkpoint(self, tx_id: bytes) -> None:
        with write_transaction(self.engine) as conn:
            self._set_recipients(conn, tx_id, [])

    @staticmethod
    def _set_recipients(conn: Connection, tx_id: bytes, recipients: Sequence[str]) -> None:
        if recipients:
            _SET_RECIPIENTS.run(conn, {"tx_id": tx_id, "recipients": "\n".join(recipients)})
        else:
            _DELETE_CHECKPOINT.run(conn, {"tx_id": tx_id})

    def checkpoints(self) -> list[tuple[SignedTransaction, list[str]]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(checkpoints.c.data, checkpoints.c.recipients).order_by(
                    checkpoints.c.created_at
                )
            ).all()
        return [
            (deserialize(r.data, SignedTransaction), [x for x in r.recipients.split("\n") if x])
            for r in rows
        ]
