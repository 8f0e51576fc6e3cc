"""Helpers for end-to-end tests that run parties of a network as separate OS processes.

* :func:`free_port_block` finds ``n`` consecutive free TCP ports on 127.0.0.1.
* :class:`ServedParty` runs ``kakehashi corda serve DIR --name NAME`` in its own session (so
  that it and any child can be signalled as a group), writes its stdout and stderr to a log file,
  waits for ``/health`` with a deadline, and can be stopped (SIGTERM, then SIGKILL), killed
  (SIGKILL, as a crash) and started again on the same database.
* :class:`ProcessNetwork` does ``kakehashi corda init`` and owns one :class:`ServedParty` per
  party; :meth:`ProcessNetwork.close` ends every process it started, whatever happened.

Only 127.0.0.1 is ever contacted; HTTP clients ignore proxy settings from the environment.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from kakehashi.cli.ping import child_env, port_free
from kakehashi.ledgers.corda.model.identity import X500Name
from kakehashi.ledgers.corda.node.network import NetworkMap
from kakehashi.ledgers.corda.node.setup import NETWORK_MAP, slug
from kakehashi.ledgers.corda.node.transport import HttpTransport

HOST = "127.0.0.1"
START_DEADLINE_S = 30.0
STOP_GRACE_S = 5.0
LOG_TAIL_CHARS = 4000
# Below Linux's ephemeral range (32768-60999) so outgoing connections cannot take our ports.
_PORT_RANGE = (20_000, 32_000)


def kakehashi_command() -> list[str]:
    """The ``kakehashi`` console script of the running interpreter's environment."""
    script = Path(sys.executable).with_name("kakehashi")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "kakehashi.cli.main"]


_PR_SET_PDEATHSIG = 1
_LIBC = (
    ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True) if sys.platform == "linux" else None
)


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL me if the test process dies without cleaning up."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


def free_port_block(count: int, attempts: int = 200) -> int:
    """The first of ``count`` consecutive ports that are free on 127.0.0.1.

    Each pytest-xdist worker searches its own slice of the range, so parallel workers do not
    pick the same block.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    index = int(worker) if worker.isdigit() else 0
    slices = 8
    low, high = _PORT_RANGE
    width = (high - low) // slices
    start = low + (index % slices) * width
    rng = random.Random()
    for _ in range(attempts):
        base = rng.randrange(start, start + width - count)
        if all(port_free(base + i) for i in range(count)):
            return base
    raise RuntimeError(f"no block of {count} free ports found on {HOST}")


def spawn(command: list[str], log_path: Path, start: int) -> subprocess.Popen[bytes]:
    """Start ``command`` in its own session, logging to ``log_path``; it dies with this process."""
    with log_path.open("ab") as log:
        log.write(f"\n===== start #{start}: {command}\n".encode())
        log.flush()
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=child_env(),
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )


class ServedParty:
    """One ``kakehashi corda serve`` process (restartable on the same folder and database)."""

    def __init__(self, directory: Path, name: str, url: str, log_path: Path) -> None:
        self.directory = directory
        self.name = name
        self.url = url
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.extra_args: list[str] = []  # more `corda serve` options, e.g. ["--ibc"]

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        """Start the process (does not wait for it: see :meth:`wait_healthy`)."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        self.starts += 1
        command = [
            *kakehashi_command(),
            "corda",
            "serve",
            str(self.directory),
            "--name",
            self.name,
            *self.extra_args,
        ]
        self.proc = spawn(command, self.log_path, self.starts)

    def wait_healthy(self, deadline: float) -> None:
        """Poll ``GET /health`` until it answers for this party, or fail with the log."""
        with httpx.Client(timeout=1.0, trust_env=False) as client:
            while True:
                if self.proc is None or self.proc.poll() is not None:
                    code = None if self.proc is None else self.proc.returncode
                    raise AssertionError(f"{self.name} exited (code {code})\n{self.log_tail()}")
                try:
                    answer = client.get(f"{self.url}/health")
                    if answer.status_code == 200 and answer.json().get("name") == self.name:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"{self.name} did not answer {self.url}/health in time\n{self.log_tail()}"
                    )
                time.sleep(0.05)

    def _signal(self, sig: signal.Signals) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)  # its own session: pid == process group id

    def kill(self) -> None:
        """SIGKILL, as a crash: no shutdown code runs."""
        if self.proc is None:
            return
        self._signal(signal.SIGKILL)
        self.proc.wait(timeout=STOP_GRACE_S)

    def stop(self) -> None:
        """SIGTERM (graceful), then SIGKILL if it does not end within the grace period."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.proc.wait(timeout=STOP_GRACE_S)
        else:
            self._signal(signal.SIGKILL)  # reap anything left in its group

    def log_tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return f"--- {self.name}: no log at {self.log_path}"
        return f"--- {self.name} ({self.log_path}), last {chars} chars:\n{text[-chars:]}"


class ProcessNetwork:
    """A network made by ``kakehashi corda init`` whose parties run as separate processes."""

    def __init__(self, root: Path, notary: str, nodes: Sequence[str]) -> None:
        self.root = root
        self.directory = root / "net"
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.base_port = free_port_block(1 + len(nodes))
        args = ["--notary", notary]
        for node in nodes:
            args += ["--node", node]
        result = subprocess.run(
            [
                *kakehashi_command(),
                "corda",
                "init",
                str(self.directory),
                *args,
                "--base-port",
                str(self.base_port),
            ],
            capture_output=True,
            env=child_env(),
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(
                f"corda init failed ({result.returncode}):\n{result.stdout.decode()}"
                f"\n{result.stderr.decode()}"
            )
        self.map = NetworkMap.load(self.directory / NETWORK_MAP)
        self.parties: dict[str, ServedParty] = {}
        for info in self.map.nodes:
            name = str(info.party.name)
            assert info.url is not None and info.url.startswith(f"http://{HOST}:")
            log = self.logs / f"{slug(info.party.name)}.log"
            self.parties[name] = ServedParty(self.directory, name, info.url, log)
        self.client = httpx.Client(timeout=60.0, trust_env=False)
        self.transport = HttpTransport(self.map, client=self.client)

    def start_all(self) -> None:
        for party in self.parties.values():
            party.start()
        deadline = time.monotonic() + START_DEADLINE_S
        for party in self.parties.values():
            party.wait_healthy(deadline)

    def restart(self, name: str) -> None:
        party = self.parties[name]
        party.stop()
        party.start()
        party.wait_healthy(time.monotonic() + START_DEADLINE_S)

    def close(self) -> None:
        """End every process (even after a failure) and the HTTP client."""
        for party in self.parties.values():
            with contextlib.suppress(Exception):
                party.stop()
        self.client.close()

    # -- talking to the parties -------------------------------------------------------------

    def token(self, name: str) -> str:
        return (self.directory / slug(X500Name.parse(name)) / "rpc.token").read_text().strip()

    def url(self, name: str) -> str:
        return self.parties[name].url

    def rpc(
        self,
        name: str,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        token: str | None = None,
    ) -> httpx.Response:
        """Call ``/rpc/PATH`` of ``name`` with its bearer token (or ``token``, "" for none)."""
        token = self.token(name) if token is None else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.client.request(
            method, f"{self.url(name)}/rpc/{path}", json=body, headers=headers
        )

    def logs_text(self) -> str:
        return "\n".join(party.log_tail() for party in self.parties.values())
