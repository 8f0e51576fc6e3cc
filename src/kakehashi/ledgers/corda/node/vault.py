"""A node's database: its transaction store and its vault of states.

The vault records the states relevant to the node (one of its keys is a participant), marks them
consumed when a recorded transaction spends them, and indexes them by type, linear id, holder and
token so that queries cost the same at 1k or 100k states. Soft locks reserve states for a flow so
that two flows of the same node never pick the same coins.
"""

from __future__ import annotations

import enum
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
    bindparam,
    delete,
    func,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

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
from kakehashi.ledgers.corda.node.storage import write_transaction

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
            row = conn.execute(
                select(transactions.c.data).where(transactions.c.tx_id == tx_id)
            ).first()
        if row is None:
            return None
        stx = deserialize(row.data, SignedTransaction)
        self._cached(stx)
        return stx

    def has_transactions(self, tx_ids: Iterable[bytes]) -> set[bytes]:
        ids = set(tx_ids)
        with self._cache_lock:
            found = {tx_id for tx_id in ids if tx_id in self._cache}
        rest = list(ids - found)
        if rest:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(transactions.c.tx_id).where(transactions.c.tx_id.in_(rest))
                )
                found |= {bytes(r.tx_id) for r in rows}
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
        dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        inserted = conn.execute(
            # psycopg reports rowcount -1 for an INSERT unless SQLAlchemy is asked to keep it.
            dialect_insert(transactions)
            .on_conflict_do_nothing()
            .execution_options(preserve_rowcount=True),
            {"tx_id": stx.id, "data": serialize(stx), "recorded_at": time.time_ns() // 1000},
        )
        if inserted.rowcount == 0:  # recorded before: nothing to do
            return []
        if stx.tx.inputs:
            conn.execute(
                update(vault_states)
                .where(
                    vault_states.c.txhash == bindparam("ref_txhash"),
                    vault_states.c.output_index == bindparam("ref_index"),
                )
                .values(status=StateStatus.CONSUMED, consumed_by=stx.id),
                [{"ref_txhash": ref.txhash, "ref_index": ref.index} for ref in stx.tx.inputs],
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
            if rows:
                conn.execute(insert(vault_states), rows)
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
        dialect = conn.dialect.name
        stmt = (pg_insert if dialect == "postgresql" else sqlite_insert)(authorised)
        conn.execute(stmt.on_conflict_do_nothing(), rows)

    def is_authorised(self, peer: str, tx_id: bytes) -> bool:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(authorised.c.tx_id).where(
                    authorised.c.peer == peer, authorised.c.tx_id == tx_id
                )
            ).first()
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
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    vault_states.c.txhash,
                    vault_states.c.output_index,
                    vault_states.c.quantity,
                    vault_states.c.data,
                )
                .where(
                    vault_states.c.holder == holder.to_text(),
                    vault_states.c.token == token,
                    vault_states.c.status == StateStatus.UNCONSUMED,
                )
                .order_by(vault_states.c.seq)
            ).all()
        balance = sum(int(r.quantity) for r in rows)
        with self._locks_lock:
            chosen, total = [], 0
            for row in rows:
                ref = StateRef(row.txhash, row.output_index)
                if ref in self._soft_locks:
                    continue
                chosen.append((ref, row))
                total += int(row.quantity)
                if total >= quantity:
                    break
            if total < quantity:
                return [], 0, balance
            for ref, _row in chosen:
                self._soft_locks[ref] = lock_id
        states = [StateAndRef(deserialize(row.data, TransactionState), ref) for ref, row in chosen]
        return states, total, balance

    def soft_lock(self, refs: Sequence[StateRef], lock_id: str) -> None:
        """Reserve exactly these states for ``lock_id`` or raise StatesNotAvailableError."""
        with self.engine.connect() as conn:
            unconsumed = {
                StateRef(r.txhash, r.output_index)
                for r in conn.execute(
                    select(vault_states.c.txhash, vault_states.c.output_index).where(
                        tuple_(vault_states.c.txhash, vault_states.c.output_index).in_(
                            [(ref.txhash, ref.index) for ref in refs]
                        ),
                        vault_states.c.status == StateStatus.UNCONSUMED,
                    )
                )
            }
        with self._locks_lock:
            for ref in refs:
                if ref not in unconsumed or self._soft_locks.get(ref, lock_id) != lock_id:
                    raise StatesNotAvailableError(
                        f"state {ref} is consumed, unknown or soft-locked by another flow",
                        [str(ref)],
                    )
            for ref in refs:
                self._soft_locks[ref] = lock_id

    def release_soft_locks(self, lock_id: str) -> None:
        with self._locks_lock:
            for ref in [r for r, owner in self._soft_locks.items() if owner == lock_id]:
                del self._soft_locks[ref]

    def _forget_locks(self, refs: Iterable[StateRef]) -> None:
        with self._locks_lock:
            for ref in refs:
                self._soft_locks.pop(ref, None)

    # -- checkpoints --------------------------------------------------------------------------

    def save_checkpoint(self, stx: SignedTransaction, recipients: Sequence[str]) -> None:
        """Remember a flow about to notarise ``stx``; let ``recipients`` fetch its back-chain."""
        with write_transaction(self.engine) as conn:
            conn.execute(delete(checkpoints).where(checkpoints.c.tx_id == stx.id))
            conn.execute(
                insert(checkpoints),
                {
                    "tx_id": stx.id,
                    "data": serialize(stx),
                    "recipients": "\n".join(recipients),
                    "created_at": time.time_ns() // 1000,
                },
            )
            for peer in recipients:
                self.authorise(peer, [stx.id, *stx.tx.dependencies()], conn)

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
            conn.execute(
                update(checkpoints)
                .where(checkpoints.c.tx_id == tx_id)
                .values(recipients="\n".join(recipients))
            )
        else:
            conn.execute(delete(checkpoints).where(checkpoints.c.tx_id == tx_id))

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
