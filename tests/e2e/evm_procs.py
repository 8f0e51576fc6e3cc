"""``kakehashi evm serve`` as a separate OS process, for end-to-end tests and benchmarks.

:class:`ServedEvmNode` reuses the process handling of :class:`tests.e2e.procs.ServedParty` (own
session so the node is signalled as a group, SIGKILL if the test process dies, log file, SIGTERM
then SIGKILL on stop, SIGKILL as a crash) and adds what an EVM node needs: the ``evm serve``
command line and a readiness check that the node answers ``eth_chainId`` over JSON-RPC.

Also: :func:`rpc_call` / :func:`rpc_batch` (plain JSON-RPC over httpx, one request or a batch
in one POST) and :func:`storage_slot` / :func:`mapping_slot` (where a Vyper contract keeps a
variable, for ``eth_getProof``).

Only 127.0.0.1 is ever contacted; HTTP clients ignore proxy settings from the environment.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from eth_utils import keccak

from tests.e2e.procs import (
    HOST,
    START_DEADLINE_S,
    STOP_GRACE_S,
    ServedParty,
    free_port_block,
    kakehashi_command,
    spawn,
)


class ServedEvmNode(ServedParty):
    """One ``kakehashi evm serve`` process on 127.0.0.1, restartable on the same data dir.

    ``options`` are extra ``evm serve`` options (``--block-mode interval``, ...), used on every
    start unless :meth:`start` is given others.
    """

    def __init__(
        self,
        data_dir: Path,
        log_path: Path,
        *,
        port: int | None = None,
        options: Sequence[str] = (),
    ) -> None:
        self.port = port if port is not None else free_port_block(1)
        super().__init__(data_dir, "evm-node", f"http://{HOST}:{self.port}", log_path)
        self.options = list(options)

    def start(self, options: Sequence[str] | None = None) -> None:
        """Start the process (does not wait for it: see :meth:`wait_ready`)."""
        if self.running:
            raise RuntimeError("the EVM node is already running")
        self.starts += 1
        command = [
            *kakehashi_command(),
            "evm",
            "serve",
            "--data-dir",
            str(self.directory),
            "--host",
            HOST,
            "--port",
            str(self.port),
            *(self.options if options is None else options),
        ]
        self.proc = spawn(command, self.log_path, self.starts)

    def wait_ready(self, deadline: float | None = None) -> None:
        """Poll ``eth_chainId`` until the node answers, or fail with the log."""
        deadline = time.monotonic() + START_DEADLINE_S if deadline is None else deadline
        with httpx.Client(timeout=1.0, trust_env=False) as client:
            while True:
                if self.proc is None or self.proc.poll() is not None:
                    code = None if self.proc is None else self.proc.returncode
                    raise AssertionError(f"the EVM node exited (code {code})\n{self.log_tail()}")
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    answer = client.post(
                        self.url,
                        json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
                    )
                    if answer.status_code == 200 and "result" in answer.json():
                        return
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"the EVM node did not answer eth_chainId at {self.url}\n{self.log_tail()}"
                    )
                time.sleep(0.05)

    wait_healthy = wait_ready

    def start_ready(self, options: Sequence[str] | None = None) -> None:
        self.start(options)
        self.wait_ready()

    def stop_with(self, sig: signal.Signals) -> int:
        """Send ``sig`` (SIGTERM or SIGINT: a clean stop) and return the exit code."""
        assert self.proc is not None and self.proc.poll() is None, "the EVM node is not running"
        self._signal(sig)
        try:
            return self.proc.wait(timeout=STOP_GRACE_S * 2)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"the EVM node did not stop on {sig.name} within {STOP_GRACE_S * 2}s\n"
                f"{self.log_tail()}"
            ) from None


def rpc_call(client: httpx.Client, url: str, method: str, params: list[Any]) -> Any:
    """One JSON-RPC call: its ``result``, or AssertionError with the node's error."""
    answer = client.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    body = answer.json()
    if "error" in body:
        raise AssertionError(f"{method}{params} failed: {body['error']}")
    return body["result"]


def rpc_batch(client: httpx.Client, url: str, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
    """A JSON-RPC batch (one HTTP POST); the answers ordered as ``calls`` (results or errors)."""
    body = [
        {"jsonrpc": "2.0", "id": i, "method": method, "params": params}
        for i, (method, params) in enumerate(calls)
    ]
    answers = client.post(url, json=body).json()
    if not isinstance(answers, list):
        raise AssertionError(f"batch answered with {answers!r}")
    by_id = {a.get("id"): a for a in answers}
    return [by_id.get(i) for i in range(len(calls))]


def storage_slot(contract: str, module: str, variable: str) -> int:
    """The storage slot of ``module.variable`` in ``contracts/<contract>.vy``, from Vyper's
    storage layout (the toolchain compiles with the same search paths but outputs no layout)."""
    from vyper.compiler import outputs_from_compiler_data
    from vyper.compiler.input_bundle import FilesystemInputBundle
    from vyper.compiler.phases import CompilerData
    from vyper.compiler.settings import Settings

    from kakehashi.ledgers.evm import toolchain

    bundle = FilesystemInputBundle([toolchain.snekmate_search_path(), toolchain.contracts_dir()])
    source = bundle.load_file(toolchain.contracts_dir() / f"{contract}.vy")
    data = CompilerData(source, bundle, settings=Settings(evm_version=toolchain.EVM_VERSION))
    layout = outputs_from_compiler_data(data, ["layout"])["layout"]["storage_layout"]
    return int(layout[module][variable]["slot"])


def mapping_slot(base: int, key: int) -> int:
    """The slot of a Vyper ``HashMap`` entry: keccak256(slot ‖ key), both as 32-byte words."""
    return int.from_bytes(keccak(base.to_bytes(32, "big") + key.to_bytes(32, "big")), "big")
