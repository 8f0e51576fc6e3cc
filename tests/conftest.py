"""Shared pytest fixtures.

PostgreSQL: ``postgres_server`` (session) runs one real, throwaway PostgreSQL server per test
process (per xdist worker) on 127.0.0.1, started lazily the first time a test asks for it and
stopped at the end of the session. See ``tests/pg.py``.

- ``postgres_url``: SQLAlchemy URL ``postgresql+psycopg://kakehashi@127.0.0.1:PORT/DBNAME`` of a
  database created once for the session.
- ``fresh_postgres_db``: SQLAlchemy URL of a new, empty database for one test (dropped after).

Tests using either fixture get the ``postgres`` marker automatically.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_TESTS_DIR = str(Path(__file__).resolve().parent)
if _TESTS_DIR not in sys.path:  # so `import pg` works under any --import-mode
    sys.path.insert(0, _TESTS_DIR)

from pg import PostgresServer  # noqa: E402

_POSTGRES_FIXTURES = frozenset({"postgres_server", "postgres_url", "fresh_postgres_db"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _POSTGRES_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A running throwaway PostgreSQL server (stop/start/restart allowed, e.g. for HA tests)."""
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """SQLAlchemy URL of a database created once for the whole session."""
    return postgres_server.url(postgres_server.create_database("kakehashi_test"))


@pytest.fixture
def fresh_postgres_db(postgres_server: PostgresServer) -> Iterator[str]:
    """SQLAlchemy URL of a new, empty database, dropped after the test."""
    name = postgres_server.create_database()
    yield postgres_server.url(name)
    if postgres_server.running:
        postgres_server.drop_database(name)
