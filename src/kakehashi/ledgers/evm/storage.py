"""The chain database: py-evm's key-value store kept in one SQLite file, written a block at a time.

py-evm writes trie nodes, headers, receipts and lookups one key at a time. Here every write lands
in an in-memory overlay first and reaches SQLite only when the chain calls :meth:`SqliteKV.commit`
after a whole block is sealed, in one SQLite transaction. A process killed at any moment (even
with ``kill -9`` half-way through a block) therefore restarts from the last complete block: SQLite
either has all of a block's keys or none.

SQLite copies the write-ahead log back into the database file (a checkpoint, with its fsyncs)
on a thread of its own instead of inside whichever block commit happens to cross the WAL size
limit: a commit only appends the block to the log, which is what makes it durable.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

from eth.db.atomic import AtomicDB
from eth.db.backends.base import BaseDB

log = logging.getLogger(__name__)

_DELETED = None
READ_CACHE_ENTRIES = 200_000


class SqliteKV(BaseDB):
    """A bytes → bytes store in SQLite with a write overlay committed explicitly."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a killed process (not a power cut of the machine itself).
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA cache_size=-65536")
        # Checkpoints run on the checkpointer thread, after each commit (see the module doc).
        self._conn.execute("PRAGMA wal_autocheckpoint=0")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS kv"
            " (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID"
        )
        self._overlay: dict[bytes, bytes | None] = {}
        # Committed values read recently: py-evm walks the same trie nodes for every account
        # and slot it touches, and a dict hit costs a fraction of a SQLite query.
        self._cache: dict[bytes, bytes] = {}
        self._guard = threading.Lock()
        self._checkpoint_due = threading.Event()
        self._closing = False
        self._checkpointer = threading.Thread(
            target=self._checkpoint_loop, name="sqlite-checkpoint", daemon=True
        )
        self._checkpointer.start()

    def _checkpoint_loop(self) -> None:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            while True:
                self._checkpoint_due.wait()
                self._checkpoint_due.clear()
                if self._closing:
                    return
                try:
                    # PASSIVE: copies what it can without waiting for (or blocking) the writer.
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # retried after the next commit
                    log.debug("WAL checkpoint of %s postponed: %s", self.path, exc)
        finally:
            conn.close()

    def __getitem__(self, key: bytes) -> bytes:
        if key in self._overlay:
            value = self._overlay[key]
            if value is _DELETED:
                raise KeyError(key)
            return value  # type: ignore[return-value]
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        with self._guard:
            row = self._conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        value = bytes(row[0])
        self._remember(key, value)
        return value

    def _remember(self, key: bytes, value: bytes) -> None:
        if len(self._cache) >= READ_CACHE_ENTRIES:
            self._cache.clear()  # crude but O(1) amortised; the hot nodes come back at once
        self._cache[key] = value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._overlay[key] = value

    def _exists(self, key: bytes) -> bool:
        try:
            self[key]
        except KeyError:
            return False
        return True

    def __delitem__(self, key: bytes) -> None:
        if not self._exists(key):
            raise KeyError(key)
        self._overlay[key] = _DELETED

    def commit(self) -> None:
        """Write every pending change in one SQLite transaction."""
        if not self._overlay:
            return
        puts = [(k, v) for k, v in self._overlay.items() if v is not _DELETED]
        deletes = [(k,) for k, v in self._overlay.items() if v is _DELETED]
        with self._guard:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(
                    "INSERT INTO kv (key, value) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    puts,
                )
                self._conn.executemany("DELETE FROM kv WHERE key = ?", deletes)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        self._checkpoint_due.set()
        for key, value in self._overlay.items():
            if value is _DELETED:
                self._cache.pop(key, None)
            else:
                self._remember(key, value)
        self._overlay.clear()

    def discard(self) -> None:
        """Forget uncommitted changes (a block that failed half-way)."""
        self._overlay.clear()

    def close(self) -> None:
        self._closing = True
        self._checkpoint_due.set()
        self._checkpointer.join()
        with self._guard:
            self._conn.close()  # the last connection to close checkpoints the rest


class ChainStore:
    """The atomic database py-evm runs on, and how to make its writes durable."""

    def __init__(self, path: Path | None) -> None:
        self.kv = SqliteKV(path) if path is not None else None
        self.db = AtomicDB(self.kv) if self.kv is not None else AtomicDB()

    def commit(self) -> None:
        if self.kv is not None:
            self.kv.commit()

    def discard(self) -> None:
        if self.kv is not None:
            self.kv.discard()

    def close(self) -> None:
        if self.kv is not None:
            self.kv.close()
