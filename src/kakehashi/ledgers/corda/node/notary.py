"""The notary: a uniqueness service over a SQL database, in validating or non-validating mode.

The commit log maps every consumed ``StateRef`` to the transaction that consumed it. Its primary
key is the state reference, so the database itself makes concurrent double spends impossible:
whichever of two racing workers commits second gets a unique-constraint violation and re-reads
the log, finding a conflict (or, for a retry of the same transaction, its own earlier commit).
Several notary workers may therefore share one PostgreSQL database.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    select,
)
from sqlalchemy.exc import IntegrityError, OperationalError

from kakehashi.errors import ConflictError, NotaryError, TimeWindowError
from kakehashi.ledgers.corda.model.crypto import KeyPair, TransactionSignature, sign_transaction_id
from kakehashi.ledgers.corda.model.identity import Party
from kakehashi.ledgers.corda.model.states import StateRef, TimeWindow
from kakehashi.ledgers.corda.node.storage import SQL, placeholders, write_transaction

log = logging.getLogger(__name__)

notary_metadata = MetaData()

commit_log = Table(
    "notary_commit_log",
    notary_metadata,
    Column("txhash", LargeBinary(32), primary_key=True),
    Column("output_index", Integer, primary_key=True),
    Column("consuming_tx", LargeBinary(32), nullable=False, index=True),
    Column("requester", String(512), nullable=False),
    Column("committed_at", BigInteger, nullable=False),
)

committed_transactions = Table(
    "notary_transactions",
    notary_metadata,
    Column("tx_id", LargeBinary(32), primary_key=True),
    Column("requester", String(512), nullable=False),
    Column("committed_at", BigInteger, nullable=False),
)


_COMMITTED = SQL("SELECT 1 FROM notary_transactions WHERE tx_id = :tx_id")
_INSERT_LOG = SQL(
    "INSERT INTO notary_commit_log (txhash, output_index, consuming_tx, requester, committed_at) "
    "VALUES (:txhash, :output_index, :consuming_tx, :requester, :committed_at)"
)
_INSERT_COMMITTED = SQL(
    "INSERT INTO notary_transactions (tx_id, requester, committed_at) "
    "VALUES (:tx_id, :requester, :committed_at)"
)


@functools.lru_cache(maxsize=64)
def _consumers(count: int) -> SQL:
    return SQL(
        "SELECT txhash, output_index, consuming_tx FROM notary_commit_log "
        f"WHERE (txhash, output_index) IN {placeholders('r', count, per_row=2)}"
    )


def now_micros() -> int:
    return time.time_ns() // 1000


class UniquenessProvider:
    """Commits transactions' inputs to the log exactly once (race-safe through the database)."""

    def __init__(self, engine: Engine, clock: Callable[[], int] = now_micros) -> None:
        notary_metadata.create_all(engine)
        self.engine = engine
        self.clock = clock

    def commit(
        self,
        tx_id: bytes,
        inputs: Sequence[StateRef],
        references: Sequence[StateRef],
        time_window: TimeWindow | None,
        requester: str,
    ) -> None:
        """Record ``tx_id`` as the consumer of ``inputs``, or raise.

        Raises :class:`ConflictError` naming every input or reference already consumed by another
        transaction, :class:`TimeWindowError` if the notary's clock is outside the window. A retry
        of an already committed transaction succeeds without changing anything.
        """
        for _attempt in range(5):
            try:
                self._commit_once(tx_id, inputs, references, time_window, requester)
                return
            except IntegrityError:
                # Another worker committed one of our refs between our read and our write: the
                # next attempt reads the log again and reports what it finds.
                log.info("commit race on %s; re-reading the commit log", tx_id.hex())
            except OperationalError as exc:
                log.warning("database busy while notarising %s: %s", tx_id.hex(), exc)
                time.sleep(0.05)
        raise NotaryError(f"could not commit {tx_id.hex()} after repeated database contention")

    def _commit_once(
        self,
        tx_id: bytes,
        inputs: Sequence[StateRef],
        references: Sequence[StateRef],
        time_window: TimeWindow | None,
        requester: str,
    ) -> None:
        with write_transaction(self.engine) as conn:
            if not inputs:  # nothing in the commit log can show a retry: ask the tx table
                already = _COMMITTED.run(conn, {"tx_id": tx_id}).fetchone()
                if already is not None:
                    return
            wanted = (*inputs, *references)
            consumed: dict[StateRef, bytes] = {}
            if wanted:
                params: dict[str, object] = {}
                for i, ref in enumerate(wanted):
                    params[f"r{i}_0"], params[f"r{i}_1"] = ref.txhash, ref.index
                rows = _consumers(len(wanted)).run(conn, params).fetchall()
                consumed = {StateRef(bytes(r[0]), r[1]): bytes(r[2]) for r in rows}
            if inputs and all(consumed.get(ref) == tx_id for ref in inputs):
                return  # a retry of a transaction we already notarised
            conflicts = {
                str(ref): consumed[ref].hex()
                for ref in (*inputs, *references)
                if ref in consumed and consumed[ref] != tx_id
            }
            if conflicts:
                listing = ", ".join(f"{ref} (spent by {tx})" for ref, tx in conflicts.items())
                raise ConflictError(
                    f"transaction {tx_id.hex()} conflicts: state(s) already consumed: {listing}",
                    conflicts,
                )
            now = self.clock()
            if time_window is not None and not time_window.contains(now):
                raise TimeWindowError(
                    f"notary time {now} µs is outside the transaction's time window "
                    f"[{time_window.from_time}, {time_window.until_time}); rebuild the "
                    "transaction with a current time window"
                )
            if inputs:
                _INSERT_LOG.run_many(
                    conn,
                    [
                        {
                            "txhash": ref.txhash,
                            "output_index": ref.index,
                            "consuming_tx": tx_id,
                            "requester": requester,
                            "committed_at": now,
                        }
                        for ref in inputs
                    ],
                )
            _INSERT_COMMITTED.run(
                conn,
                {"tx_id": tx_id, "requester": requester, "committed_at": now},
            )

    def consumed_by(self, ref: StateRef) -> bytes | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(commit_log.c.consuming_tx).where(
                    commit_log.c.txhash == ref.txhash, commit_log.c.output_index == ref.index
                )
            ).first()
        return None if row is None else bytes(row.consuming_tx)

    def log_entries(self) -> dict[StateRef, bytes]:
        """The whole commit log (for audits and tests)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(commit_log.c.txhash, commit_log.c.output_index, commit_log.c.consuming_tx)
            )
            return {StateRef(bytes(r.txhash), r.output_index): bytes(r.consuming_tx) for r in rows}

    def committed_count(self) -> int:
        with self.engine.connect() as conn:
            return len(conn.execute(select(committed_transactions.c.tx_id)).all())


class NotarySigner:
    """The notary's identity: signs a transaction id once uniqueness is committed."""

    def __init__(self, party: Party, key: KeyPair) -> None:
        if key.public != party.owning_key:
            raise NotaryError("the notary key does not match the notary's identity")
        self.party = party
        self._key = key

    def sign(self, tx_id: bytes) -> TransactionSignature:
        return sign_transaction_id(self._key, tx_id)
