"""Shared helpers of the use cases' end-to-end tests over processes (test_dvp_process.py,
test_logistics_process.py).

:class:`UseCaseNetwork` is one :class:`~kakehashi.cli.ping.PingNetwork` (the EVM node, the
Corda notary, the host node — Bank A, serving its IBC host and Cross Framework module — one
``kakehashi corda serve`` process per extra party, the LCP service) with a cross channel linked
by ``kakehashi relayer link`` and a ``kakehashi relayer start`` process relaying it. A test
module starts one and runs its scenarios on it one after the other (each with fresh token ids,
token types and nonces), so the processes start once per module.

Every party is reached over HTTP with its own RPC token; commands run as ``kakehashi``
processes (:meth:`UseCaseNetwork.cli`). Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx

from kakehashi.cli.ping import CORDA_NODE, PingNetwork, Process, child_env
from kakehashi.cross.corda_module import CROSS_PORT, CROSS_VERSION
from kakehashi.ibc.evm_deploy import CROSS_APP_CONTRACT, CROSS_CONTRACT
from kakehashi.ledgers.evm import toolchain
from kakehashi.ledgers.evm.client import connect

HOST = CORDA_NODE  # the node running the IBC host
DEADLINE_S = 90.0
T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], deadline_s: float = DEADLINE_S) -> T:
    """Poll ``probe`` until it returns something other than None / False; fail with ``what``."""
    deadline = time.monotonic() + deadline_s
    while True:
        found = probe()
        if found is not None and found is not False:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


class UseCaseNetwork:
    """The processes of one test module (module docstring)."""

    def __init__(self, directory: Path, nodes: Sequence[str]) -> None:
        self.net = PingNetwork(directory, nodes=tuple(nodes))
        self.http = httpx.Client(trust_env=False, timeout=60.0)
        self.relayer: Process | None = None
        self.once = 0

    @classmethod
    def adopt(
        cls, net: PingNetwork, config: Path, relayer: str = "cross-relayer"
    ) -> UseCaseNetwork:
        """The helpers over a network already started and linked (``config``: the cross
        relayer's configuration; ``relayer``: its process), e.g. by ``posttrade up``."""
        self = cls.__new__(cls)
        self.net, self.config = net, config
        self.http = httpx.Client(trust_env=False, timeout=60.0)
        self.relayer, self.once = net.processes[relayer], 0
        self.w3 = connect(net.evm_url)
        return self

    # -- life cycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start every process, deploy the IBC stack on the EVM chain, link the cross channel
        (``kakehashi relayer link``) and start the relayer."""
        net = self.net
        net.start_ledgers()
        net.deploy()
        self.config = net.write_config(
            name="cross-relayer",
            port=CROSS_PORT,
            version=CROSS_VERSION,
            link_file="cross-link.json",
        )
        self.record = net.link(self.config, "cross-link.json")
        self.w3 = connect(net.evm_url)
        self.cross = self.w3.eth.contract(
            address=net.deployment.cross, abi=toolchain.compile_contract(CROSS_CONTRACT).abi
        )
        self.app = self.w3.eth.contract(
            address=net.deployment.cross_app,
            abi=toolchain.compile_contract(CROSS_APP_CONTRACT).abi,
        )
        self.relayer = net.start_relayer("cross-relayer", self.config)

    def close(self) -> None:
        self.http.close()
        self.net.close()

    def logs(self) -> str:
        """The tail of every process's log (for a failing assertion)."""
        return "\n".join(
            f"--- {name}:\n{proc.tail(1500)}" for name, proc in self.net.processes.items()
        )

    # -- the relayer ----------------------------------------------------------------------------

    def start_relayer(self) -> Process:
        assert self.relayer is not None
        if not self.relayer.running:
            self.relayer.start()
        return self.relayer

    def relay_one_round(self) -> None:
        """``kakehashi relayer start --rounds 1`` as a process, to its end: one round both ways
        (each side's packets as they were when the round began, and the acknowledgements)."""
        self.once += 1
        proc = Process(
            f"relayer-once-{self.once}",
            ["relayer", "start", "--config", str(self.config), "--rounds", "1"],
            self.net.directory / "logs" / f"relayer-once-{self.once}.log",
        )
        self.net.processes[proc.name] = proc
        proc.start()
        assert proc.popen is not None
        assert proc.popen.wait(120) == 0, proc.tail()

    # -- parties --------------------------------------------------------------------------------

    def url(self, party: str) -> str:
        return self.net.node_url(party)

    def rpc(
        self, party: str, method: str, path: str, body: dict[str, Any] | None = None
    ) -> httpx.Response:
        """``party``'s node, with its own RPC token."""
        return self.http.request(
            method,
            f"{self.url(party)}{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.net.node_token(party)}"},
        )

    def ok(self, party: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        answer = self.rpc(party, method, path, body)
        assert answer.status_code == 200, f"{party} {path}: {answer.status_code} {answer.text}"
        return answer.json()

    def balance(self, party: str, token: str) -> int:
        """``party``'s balance of the token whose identifier is ``token`` (any issuer), as its
        node's ``/rpc/balances`` gives it (keys ``IDENTIFIER/DIGITS@ISSUER``)."""
        balances = self.ok(party, "GET", "/rpc/balances")["balances"]
        return sum(q for key, q in balances.items() if key.split("/", 1)[0] == token)

    def transactions(self, party: str) -> list[str]:
        return list(self.ok(party, "GET", "/rpc/transactions")["transactions"])

    def vault(self, party: str) -> list[dict[str, Any]]:
        return list(self.ok(party, "GET", "/rpc/vault")["states"])

    def cross_tx(self, tx_id: bytes) -> dict[str, Any] | None:
        """The host's ``/cross/tx/{tx_id}`` (None: it knows nothing of it)."""
        answer = self.http.get(f"{self.url(HOST)}/cross/tx/{tx_id.hex()}")
        return None if answer.status_code == 404 else dict(answer.json())

    def wait_done(self, tx_id: bytes, deadline_s: float = DEADLINE_S) -> dict[str, Any]:
        """The host's coordinator record once the transaction is done (every part told)."""

        def probe() -> dict[str, Any] | None:
            assert self.relayer is not None and self.relayer.running, self.logs()
            view = self.cross_tx(tx_id)
            c = (view or {}).get("coordinator")
            return c if c and c["done"] else None

        return wait_for(f"cross transaction {tx_id.hex()} done", probe, deadline_s)

    # -- commands -------------------------------------------------------------------------------

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        """``kakehashi ARGS`` as a process."""
        done = subprocess.run(
            [sys.executable, "-m", "kakehashi.cli.main", *args],
            capture_output=True,
            env=child_env(),
            timeout=180,
            check=False,
        )
        if check:
            assert done.returncode == 0, (done.stdout + done.stderr).decode()[-3000:]
        return done

    def cli_json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--json").stdout)


class EventListener:
    """A subscriber to the host's Server-Sent Events for one transaction
    (``GET /cross/events?tx_id=…``), on its own thread: the events as (name, data)."""

    def __init__(self, url: str, tx_id: bytes) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(url, tx_id), daemon=True)
        self._thread.start()

    def _run(self, url: str, tx_id: bytes) -> None:
        try:
            with (
                httpx.Client(trust_env=False, timeout=httpx.Timeout(5.0, read=None)) as http,
                http.stream("GET", f"{url}/cross/events", params={"tx_id": tx_id.hex()}) as rsp,
            ):
                name = ""
                for line in rsp.iter_lines():
                    if line.startswith("event: "):
                        name = line.removeprefix("event: ")
                    elif line.startswith("data: "):
                        self.events.append((name, json.loads(line.removeprefix("data: "))))
        except BaseException as exc:  # reported by completed()
            self.error = exc

    def completed(self, deadline_s: float = DEADLINE_S) -> dict[str, Any]:
        """The ``completed`` event's data (the stream ends after it)."""
        self._thread.join(deadline_s)
        assert self.error is None, f"the event stream failed: {self.error!r}"
        done = [data for name, data in self.events if name == "completed"]
        assert done, f"no completed event; got {self.events}"
        return done[0]

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.events]
