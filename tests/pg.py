"""Throwaway PostgreSQL servers for the test-suite.

A :class:`PostgresServer` runs a real PostgreSQL server from the machine's own server binaries
(Debian's ``postgresql`` package: ``/usr/lib/postgresql/<major>/bin``), in a fresh temporary
cluster, listening on TCP ``127.0.0.1`` on a random free port, with ``trust`` authentication for
the superuser role :data:`PG_ROLE`. Nothing else of the machine is touched: no system cluster,
no service, no socket in ``/var/run/postgresql``.

``initdb`` and ``postgres`` refuse to run as root. When the tests run as root (as on CI here),
the cluster is created and run as an unprivileged OS account (``postgres`` if it exists, else
``nobody``; override with ``KAKEHASHI_PG_OS_USER``) in a temporary directory chowned to it.

This module imports only the standard library at import time, so that the Makefile can run
``python3 tests/pg.py find`` before the virtualenv exists. ``psycopg`` is imported lazily by the
methods that talk SQL.

Environment overrides:

``KAKEHASHI_PG_BINDIR``
    directory holding ``initdb``, ``pg_ctl`` and ``postgres``.
``KAKEHASHI_PG_OS_USER``
    OS account to run the server as when running as root.
``KAKEHASHI_PG_TMPDIR``
    parent directory for the temporary cluster (default: the system temp dir).
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import re
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, LiteralString

PG_ROLE = "kakehashi"
"""Superuser role created by ``initdb``; it authenticates with ``trust`` on 127.0.0.1."""

HOST = "127.0.0.1"

_REQUIRED = ("initdb", "pg_ctl", "postgres")

# Durability is irrelevant for a throwaway test cluster; speed is not.
_SERVER_SETTINGS: dict[str, str] = {
    "listen_addresses": f"'{HOST}'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "32MB",
    "log_min_messages": "warning",
    "log_line_prefix": "'%m [%p] '",
    "timezone": "'UTC'",
}

_DBNAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PostgresNotFound(RuntimeError):
    """No PostgreSQL server binaries (initdb, pg_ctl, postgres) were found."""


class PostgresError(RuntimeError):
    """The throwaway server could not be created, started or stopped."""


# ------------------------------------------------------------------------------- binaries
def _has_all(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) for name in _REQUIRED)


def _version_key(path: str) -> tuple[int, ...]:
    match = re.search(r"/postgresql/(\d+(?:\.\d+)*)/bin$", path)
    return tuple(int(p) for p in match.group(1).split(".")) if match else (0,)


def find_pg_bindir() -> Path:
    """Return the directory holding ``initdb``, ``pg_ctl`` and ``postgres``.

    Looks at ``$KAKEHASHI_PG_BINDIR``, then ``initdb`` on ``PATH`` (symlinks resolved, so
    ``/usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb`` works), then the newest
    ``/usr/lib/postgresql/*/bin``. Raises :class:`PostgresNotFound` if none has all three.
    """
    candidates: list[Path] = []
    override = os.environ.get("KAKEHASHI_PG_BINDIR")
    if override:
        candidates.append(Path(override))
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(os.path.realpath(on_path)).parent)
        candidates.append(Path(on_path).parent)
    candidates.extend(
        Path(p)
        for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    )
    for bindir in candidates:
        if _has_all(bindir):
            return bindir
    raise PostgresNotFound(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found on PATH or in "
        "/usr/lib/postgresql/*/bin. Install them with `apt-get install -y postgresql` "
        "(`make test` does this automatically when running as root), or set KAKEHASHI_PG_BINDIR."
    )


# ------------------------------------------------------------------------------ accounts
@dataclass(frozen=True)
class _Account:
    name: str
    uid: int
    gid: int


def _server_account() -> _Account | None:
    """The OS account to run the server as, or None to run it as the current user."""
    if os.geteuid() != 0:
        return None
    wanted = os.environ.get("KAKEHASHI_PG_OS_USER")
    names = [wanted] if wanted else ["postgres", "nobody"]
    for name in names:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        if entry.pw_uid == 0:
            continue
        return _Account(name=name, uid=entry.pw_uid, gid=entry.pw_gid)
    raise PostgresError(
        f"running as root but no unprivileged account to run PostgreSQL as (tried {names}); "
        "set KAKEHASHI_PG_OS_USER"
    )


def _check_traversable(path: Path, account: _Account) -> None:
    """Fail early if ``account`` cannot reach ``path`` (e.g. a temp dir under /root)."""
    for parent in [path, *path.parents]:
        st = parent.stat()
        if st.st_uid == account.uid:
            continue
        if not st.st_mode & stat.S_IXOTH:
            raise PostgresError(
                f"{parent} is not traversable by OS user {account.name!r}; "
                "set KAKEHASHI_PG_TMPDIR to a world-accessible directory such as /tmp"
            )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def random_db_name(prefix: str = "t") -> str:
    return f"{prefix}_{secrets.token_hex(6)}"


# -------------------------------------------------------------------------------- server
class PostgresServer:
    """One throwaway PostgreSQL cluster and server.

    ``start()`` creates the cluster on first use and starts the server; ``stop()`` stops it
    (data kept, so ``start()`` again brings the same databases back on the same port, which
    the HA tests use); ``cleanup()`` stops it and deletes everything. Usable as a context
    manager.
    """

    def __init__(self, bindir: Path | str | None = None, role: str = PG_ROLE) -> None:
        self.bindir = Path(bindir) if bindir else find_pg_bindir()
        self.role = role
        self.account = _server_account()
        parent = Path(os.environ.get("KAKEHASHI_PG_TMPDIR") or tempfile.gettempdir())
        if self.account is not None:
            _check_traversable(parent, self.account)
        self.base_dir = Path(tempfile.mkdtemp(prefix="kakehashi-pg-", dir=parent))
        self.data_dir = self.base_dir / "data"
        self.socket_dir = self.base_dir / "sock"
        self.log_file = self.base_dir / "server.log"
        self.port: int | None = None
        self._initialised = False
        self._cleaned = False
        self.socket_dir.mkdir()
        self.log_file.touch()
        if self.account is not None:
            for path in (self.base_dir, self.socket_dir, self.log_file):
                os.chown(path, self.account.uid, self.account.gid)
        atexit.register(self.cleanup)

    # -- process helpers
    def _run(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": f"{self.bindir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "LC_ALL": "C",
            "LANG": "C",
            "TZ": "UTC",
        }
        kwargs: dict[str, Any] = {}
        if self.account is not None:
            kwargs.update(user=self.account.uid, group=self.account.gid, extra_groups=[])
            env["HOME"] = str(self.base_dir)
            env["USER"] = env["LOGNAME"] = self.account.name
        proc = subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            cwd=self.base_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            **kwargs,
        )
        if check and proc.returncode != 0:
            raise PostgresError(
                f"{' '.join(args)} failed with exit code {proc.returncode}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}\n"
                f"server log (tail):\n{self.log_tail()}"
            )
        return proc

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    # -- lifecycle
    def _initdb(self) -> None:
        self._run(
            "initdb",
            "--pgdata", str(self.data_dir),
            "--username", self.role,
            "--auth", "trust",
            "--encoding", "UTF8",
            "--no-locale",
            "--no-sync",
        )  # fmt: skip
        settings = dict(_SERVER_SETTINGS)
        settings["unix_socket_directories"] = f"'{self.socket_dir}'"
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n# kakehashi test settings\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        self._initialised = True

    @property
    def running(self) -> bool:
        if not self._initialised:
            return False
        return self._run("pg_ctl", "status", "-D", str(self.data_dir), check=False).returncode == 0

    def start(self, attempts: int = 5) -> None:
        """Create the cluster if needed and start the server; waits until it accepts TCP."""
        if self._cleaned:
            raise PostgresError("server already cleaned up")
        if not self._initialised:
            self._initdb()
        if self.running:
            return
        # Keep the port across restarts; pick a new one only if it is taken.
        last: PostgresError | None = None
        for attempt in range(attempts):
            if self.port is None or attempt > 0:
                self.port = free_port()
            try:
                self._run(
                    "pg_ctl", "start",
                    "-D", str(self.data_dir),
                    "-l", str(self.log_file),
                    "-w", "-t", "60",
                    "-o", f"-p {self.port}",
                )  # fmt: skip
                return
            except PostgresError as exc:  # most likely the port was grabbed meanwhile
                last = exc
        raise PostgresError(f"could not start PostgreSQL after {attempts} attempts") from last

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``mode``: smart, fast or immediate). Keeps the data."""
        if self._initialised and self.running:
            self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", mode, "-w", "-t", "60")

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def cleanup(self) -> None:
        """Stop the server and delete the cluster. Idempotent."""
        if self._cleaned:
            return
        try:
            self.stop("immediate")
        except (PostgresError, subprocess.TimeoutExpired, OSError):
            pass
        finally:
            self._cleaned = True
            shutil.rmtree(self.base_dir, ignore_errors=True)
            atexit.unregister(self.cleanup)

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    # -- SQL
    def url(self, dbname: str = "postgres", driver: str = "postgresql+psycopg") -> str:
        """SQLAlchemy URL: ``postgresql+psycopg://ROLE@127.0.0.1:PORT/DBNAME``."""
        if self.port is None:
            raise PostgresError("server not started")
        return f"{driver}://{self.role}@{HOST}:{self.port}/{dbname}"

    def dsn(self, dbname: str = "postgres") -> str:
        """libpq connection string for psycopg / psql."""
        if self.port is None:
            raise PostgresError("server not started")
        return f"host={HOST} port={self.port} user={self.role} dbname={dbname}"

    def _admin(self, statement: LiteralString, name: str) -> None:
        """Run ``statement`` (a template with one ``{}`` for a database identifier)."""
        import psycopg  # lazy: this module must import without the virtualenv
        from psycopg import sql

        if not _DBNAME_RE.match(name):
            raise ValueError(f"unsafe database name {name!r}")
        query = sql.SQL(statement).format(sql.Identifier(name))
        with psycopg.connect(self.dsn("postgres"), autocommit=True, connect_timeout=10) as conn:
            conn.execute(query)

    def create_database(self, name: str | None = None) -> str:
        """CREATE DATABASE (random name by default); returns the name."""
        name = name or random_db_name()
        self._admin("CREATE DATABASE {}", name)
        return name

    def drop_database(self, name: str) -> None:
        """DROP DATABASE, disconnecting any sessions still using it."""
        self._admin("DROP DATABASE IF EXISTS {} WITH (FORCE)", name)


# ---------------------------------------------------------------------------------- CLI
def _main(argv: list[str]) -> int:
    """``python3 tests/pg.py find`` prints the bindir (exit 1 if none);
    ``python3 tests/pg.py smoke`` starts a server, prints its URL and stops it."""
    command = argv[1] if len(argv) > 1 else "find"
    try:
        if command == "find":
            print(find_pg_bindir())
            return 0
        if command == "smoke":
            with PostgresServer() as server:
                print(server.url())
            return 0
    except PostgresNotFound as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"usage: {argv[0]} [find|smoke]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv))
