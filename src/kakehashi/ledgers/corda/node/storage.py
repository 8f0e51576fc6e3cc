"""Database engines for vaults and notaries (SQLite by default, PostgreSQL for HA).

SQLite is opened in WAL mode. Every transaction that writes is opened with
:func:`write_transaction`, which starts it with ``BEGIN IMMEDIATE`` so that concurrent writers
queue on the database lock instead of failing half-way; reads use plain deferred transactions and
never wait for writers. Writers of one process also queue on a Python lock first: SQLite's own
busy handler waits by sleeping, which would idle the flows of a busy node. PostgreSQL relies on
its own row locks and unique constraints.

The hot statements of flows and the notary are hand-written :class:`SQL` run on the driver's
cursor inside SQLAlchemy's connection and transaction: building and compiling Core statements
costs several times more than SQLite takes to run them. Everything else uses SQLAlchemy Core.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import StaticPool

from kakehashi.errors import ConfigurationError

_WRITE = "kakehashi_write"
_writer_locks: weakref.WeakKeyDictionary[Engine, threading.RLock] = weakref.WeakKeyDictionary()


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: committed on success, rolled back on any exception."""
    with _writer_locks.get(engine) or nullcontext(), engine.connect() as conn:
        conn.execution_options(**{_WRITE: True})
        with conn.begin():
            yield conn


class SQL:
    """A statement in ``:name`` parameter style, run straight on the DBAPI cursor.

    Raises SQLAlchemy's exception classes (``IntegrityError``, ``OperationalError``...) like
    Core statements do.
    """

    __slots__ = ("named", "pyformat")

    def __init__(self, text: str) -> None:
        self.named = " ".join(text.split())
        self.pyformat = re.sub(r":([A-Za-z_]\w*)", r"%(\1)s", self.named)

    def _text(self, conn: Connection) -> str:
        return self.pyformat if conn.dialect.name == "postgresql" else self.named

    def run(self, conn: Connection, params: Mapping[str, object] | None = None) -> Any:
        """Execute once; returns the DBAPI cursor (``fetchone``/``fetchall``/``rowcount``)."""
        text = self._text(conn)
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(text, params or {})
        except conn.dialect.loaded_dbapi.Error as exc:
            raise _translate(text, params, exc, conn) from exc
        return cursor

    def run_many(self, conn: Connection, rows: Sequence[Mapping[str, object]]) -> None:
        """Execute once per row of parameters."""
        if not rows:
            return
        text = self._text(conn)
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(text, rows)
        except conn.dialect.loaded_dbapi.Error as exc:
            raise _translate(text, rows, exc, conn) from exc
        finally:
            cursor.close()


def _translate(text: str, params: Any, exc: Exception, conn: Connection) -> BaseException:
    translated: BaseException = sa_exc.DBAPIError.instance(
        text, params, exc, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect
    )
    return translated


def placeholders(prefix: str, count: int, per_row: int = 1) -> str:
    """``:p0, :p1`` for a list, or ``(VALUES (:p0_0, :p0_1), ...)`` rows for a row-value IN."""
    if per_row == 1:
        return ", ".join(f":{prefix}{i}" for i in range(count))
    rows = ", ".join(
        "(" + ", ".join(f":{prefix}{i}_{j}" for j in range(per_row)) + ")" for i in range(count)
    )
    return f"(VALUES {rows})"


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def make_engine(url: str, metadata: MetaData | None = None) -> Engine:
    """Open ``url`` and create ``metadata``'s tables if they do not exist yet."""
    if url.startswith("sqlite"):
        engine = _sqlite_engine(url)
    elif url.startswith("postgresql"):
        engine = create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
    else:
        raise ConfigurationError(
            f"unsupported database URL {url!r}: use sqlite:///PATH or postgresql+psycopg://..."
        )
    if metadata is not None:
        metadata.create_all(engine)
    return engine


def _sqlite_engine(url: str) -> Engine:
    in_memory = url in ("sqlite://", "sqlite:///:memory:")
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
    if in_memory:
        kwargs["poolclass"] = StaticPool
    else:
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, **kwargs)
    _writer_locks[engine] = threading.RLock()

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's events control transactions (pysqlite would otherwise BEGIN lazily).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # 32 MiB of page cache per connection keeps the vault's indexes in memory at 100k states.
        cursor.execute("PRAGMA cache_size=-32768")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        writes = connection.get_execution_options().get(_WRITE, False)
        # Straight to the driver: SQLAlchemy's statement machinery costs more than the BEGIN.
        connection.connection.driver_connection.execute("BEGIN IMMEDIATE" if writes else "BEGIN")

    return engine
