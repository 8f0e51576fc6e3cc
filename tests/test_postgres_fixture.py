"""The PostgreSQL test fixtures start a real server on 127.0.0.1 and SQLAlchemy can use it."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from pg import HOST, PG_ROLE, PostgresServer


def _roundtrip(url: str) -> list[tuple[int, str]]:
    engine = sa.create_engine(url)
    try:
        metadata = sa.MetaData()
        notes = sa.Table(
            "notes",
            metadata,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("body", sa.Text, nullable=False),
        )
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(notes.insert(), [{"id": 1, "body": "架け橋"}, {"id": 2, "body": "bridge"}])
        with engine.connect() as conn:
            rows = conn.execute(sa.select(notes.c.id, notes.c.body).order_by(notes.c.id)).all()
        return [(row.id, row.body) for row in rows]
    finally:
        engine.dispose()


def test_postgres_url_is_real_postgres_over_tcp(postgres_url: str) -> None:
    url = make_url(postgres_url)
    assert url.drivername == "postgresql+psycopg"
    assert url.host == HOST
    assert url.username == PG_ROLE
    assert url.port is not None and url.port > 0

    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            version = conn.execute(sa.text("SHOW server_version_num")).scalar_one()
            addr = conn.execute(sa.text("SELECT host(inet_server_addr())")).scalar_one()
            port = conn.execute(sa.text("SELECT inet_server_port()")).scalar_one()
            db = conn.execute(sa.text("SELECT current_database()")).scalar_one()
    finally:
        engine.dispose()
    assert int(version) >= 130000
    assert addr == HOST  # a TCP connection, not a Unix socket
    assert port == url.port
    assert db == url.database


def test_postgres_url_create_insert_select(postgres_url: str) -> None:
    assert _roundtrip(postgres_url) == [(1, "架け橋"), (2, "bridge")]


def test_fresh_postgres_db_is_new_and_empty(fresh_postgres_db: str, postgres_url: str) -> None:
    assert make_url(fresh_postgres_db).database != make_url(postgres_url).database
    engine = sa.create_engine(fresh_postgres_db)
    try:
        assert sa.inspect(engine).get_table_names() == []
    finally:
        engine.dispose()
    assert _roundtrip(fresh_postgres_db) == [(1, "架け橋"), (2, "bridge")]


@pytest.mark.postgres
def test_server_survives_restart() -> None:
    """Stop/start keeps data and port (what the notary HA tests rely on).

    Uses its own server so that restarting it cannot disturb the session-wide one."""
    with PostgresServer() as server:
        url = server.url(server.create_database())
        assert _roundtrip(url)
        port = server.port
        server.stop()
        assert not server.running
        server.start()
        assert server.running
        assert server.port == port
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                count = conn.execute(sa.text("SELECT count(*) FROM notes")).scalar_one()
        finally:
            engine.dispose()
        assert count == 2
    assert not server.base_dir.exists()
