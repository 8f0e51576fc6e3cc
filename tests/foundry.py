"""anvil and cast (foundry) from the repository's npm packages, for the test-suite.

``make node-tools`` installs ``@foundry-rs/anvil`` and ``@foundry-rs/cast`` (pinned in
``package.json``) into ``node_modules/``. Each ships its native binary in a per-platform package,
``node_modules/@foundry-rs/<tool>-<os>-<arch>/bin/<tool>``; this module runs that binary directly
(not the ``node_modules/.bin`` wrapper script, which would start node first).

An :class:`AnvilNode` is a real anvil process listening on ``127.0.0.1`` on a free port, with
anvil's default development accounts (mnemonic ``test test ... junk``) funded. Nothing else of
the machine is touched.

This module imports only the standard library, so that the Makefile can run
``python3 tests/foundry.py find`` before the virtualenv exists.

Environment overrides:

``KAKEHASHI_ANVIL`` / ``KAKEHASHI_CAST``
    path of the anvil / cast binary to use instead of the one in ``node_modules``.
"""

from __future__ import annotations

import atexit
import json
import os
import platform
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

HOST = "127.0.0.1"
CHAIN_ID = 31337
"""anvil's default chain id, stated explicitly."""

HARDFORK = "prague"
"""The fork anvil runs: the one contracts are compiled for (``toolchain.EVM_VERSION``)."""

REPO_ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = REPO_ROOT / "node_modules"

_OS = {"linux": "linux", "darwin": "darwin", "win32": "win32"}
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


class FoundryNotFound(RuntimeError):
    """The anvil or cast binary is not installed (run ``make node-tools``)."""


class AnvilError(RuntimeError):
    """anvil could not be started, or stopped answering."""


# ------------------------------------------------------------------------------- binaries
def platform_package(tool: str) -> str:
    """The npm package holding ``tool``'s binary for this machine, e.g. ``anvil-linux-amd64``."""
    os_name = _OS.get(sys.platform)
    arch = _ARCH.get(platform.machine().lower())
    if os_name is None or arch is None:
        raise FoundryNotFound(
            f"no @foundry-rs/{tool} build for {sys.platform}/{platform.machine()}"
        )
    return f"{tool}-{os_name}-{arch}"


def find_binary(tool: str) -> Path:
    """Path of the ``tool`` (``anvil`` or ``cast``) binary, made executable if it was not."""
    override = os.environ.get(f"KAKEHASHI_{tool.upper()}")
    if override:
        path = Path(override)
    else:
        exe = f"{tool}.exe" if sys.platform == "win32" else tool
        path = NODE_MODULES / "@foundry-rs" / platform_package(tool) / "bin" / exe
    if not path.is_file():
        raise FoundryNotFound(
            f"{tool} not found at {path}. Run `make node-tools` (npm ci of package.json) "
            f"or set KAKEHASHI_{tool.upper()} to a {tool} binary."
        )
    if not os.access(path, os.X_OK):
        # Some npm versions unpack the platform package's binary without its mode bits.
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def json_rpc(url: str, method: str, params: list[object], timeout: float = 5.0) -> object:
    """One JSON-RPC call with the standard library; returns ``result`` or raises AnvilError."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        answer = json.loads(response.read())
    if "error" in answer:
        raise AnvilError(f"{method}: {answer['error']}")
    return answer["result"]


def cast(*args: str, timeout: float = 60) -> str:
    """Run ``cast ARGS`` and return its stdout (stripped); raises AnvilError if it fails."""
    proc = subprocess.run(
        [str(find_binary("cast")), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )
    if proc.returncode != 0:
        raise AnvilError(
            f"cast {' '.join(args)} failed with exit code {proc.returncode}\n{proc.stderr}"
        )
    return proc.stdout.strip()


# ---------------------------------------------------------------------------------- anvil
class AnvilNode:
    """One anvil process on 127.0.0.1; ``start()`` waits until it answers JSON-RPC."""

    def __init__(self, chain_id: int = CHAIN_ID, hardfork: str = HARDFORK) -> None:
        self.binary = find_binary("anvil")
        self.chain_id = chain_id
        self.hardfork = hardfork
        self.port: int | None = None
        self.base_dir = Path(tempfile.mkdtemp(prefix="kakehashi-anvil-"))
        self.log_file = self.base_dir / "anvil.log"
        self._proc: subprocess.Popen[bytes] | None = None
        atexit.register(self.stop)

    @property
    def url(self) -> str:
        if self.port is None:
            raise AnvilError("anvil not started")
        return f"http://{HOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def start(self, attempts: int = 3, timeout: float = 30.0) -> None:
        """Start anvil on a free port (another one if the port was taken meanwhile)."""
        if self.running:
            return
        last = ""
        for _ in range(attempts):
            self.port = free_port()
            command = [
                str(self.binary),
                "--host", HOST,
                "--port", str(self.port),
                "--chain-id", str(self.chain_id),
                "--hardfork", self.hardfork,
                "--silent",
            ]  # fmt: skip
            with self.log_file.open("ab") as log:
                self._proc = subprocess.Popen(
                    command,
                    cwd=self.base_dir,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            if self._wait_ready(timeout):
                return
            last = self.log_tail()
            self.stop()
        raise AnvilError(f"anvil did not answer after {attempts} attempts; log:\n{last}")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                return False  # exited: most likely the port was grabbed meanwhile
            try:
                if int(str(json_rpc(self.url, "eth_chainId", [], timeout=1.0)), 16) == (
                    self.chain_id
                ):
                    return True
            except (OSError, urllib.error.URLError, ValueError, AnvilError):
                pass
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL after 10 s). Idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def cleanup(self) -> None:
        """Stop anvil and delete its temporary directory."""
        self.stop()
        shutil.rmtree(self.base_dir, ignore_errors=True)
        atexit.unregister(self.stop)

    def __enter__(self) -> AnvilNode:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


# ---------------------------------------------------------------------------------- CLI
def _main(argv: list[str]) -> int:
    """``python3 tests/foundry.py find`` prints the anvil and cast paths (exit 1 if missing);
    ``python3 tests/foundry.py smoke`` starts anvil, prints its URL and block number, stops it."""
    command = argv[1] if len(argv) > 1 else "find"
    try:
        if command == "find":
            for tool in ("anvil", "cast"):
                print(find_binary(tool))
            return 0
        if command == "smoke":
            with AnvilNode() as node:
                print(node.url, cast("block-number", "--rpc-url", node.url))
            return 0
    except FoundryNotFound as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"usage: {argv[0]} [find|smoke]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv))
