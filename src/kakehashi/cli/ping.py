"""``kakehashi demo ping``: both ledgers, the LCP service and a relayer as separate processes on
127.0.0.1, linked, with echo packets crossing both ways.

:class:`PingNetwork` starts and owns the processes — ``kakehashi evm serve`` (embedded QBFT
chain), ``kakehashi corda serve`` for a notary and a node running the IBC host (``--ibc``),
``kakehashi lcp serve`` (simulation enclave) and ``kakehashi relayer start`` — deploys the IBC
contracts on the chain, writes the relayer's configuration and runs ``kakehashi relayer link``.
Every process logs to ``DIR/logs``; :meth:`PingNetwork.close` ends them all, whatever happened.
The end-to-end tests use the same class (to kill the relayer with SIGKILL and start it again);
the use cases' tests give it more Corda nodes (``nodes=``: each its own ``kakehashi corda serve``
process) and restart the host with ``--cross-timeout-blocks`` (:meth:`PingNetwork.restart_host`).
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from kakehashi.errors import ConfigurationError, KakehashiError, TransportError
from kakehashi.ibc import host as paths
from kakehashi.ibc.types import Height, Packet

__all__ = ["PingNetwork", "Process", "child_env", "port_free", "run_ping"]

HOST = "127.0.0.1"
START_DEADLINE_S = 60.0
CORDA_NODE = "O=Bank A, L=London, C=GB"
CORDA_NOTARY = "O=Notary, L=Zurich, C=CH"
PORT_ID = "echo"


def _kakehashi() -> list[str]:
    return [sys.executable, "-m", "kakehashi.cli.main"]


def child_env() -> dict[str, str]:
    """The environment for child processes: no proxies (only 127.0.0.1 is ever contacted)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in {"http_proxy", "https_proxy", "all_proxy"}
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("COLUMNS", "200")  # keep rich from wrapping log lines
    return env


def port_free(port: int) -> bool:
    """Whether ``port`` can be bound on 127.0.0.1 now."""
    with socket.socket() as sock:
        # uvicorn sets SO_REUSEADDR too: a port with only TIME_WAIT connections is usable.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive free ports on 127.0.0.1 (below the ephemeral range)."""
    rng = random.Random()
    for _ in range(500):
        base = rng.randrange(20_000, 32_000 - count)
        if all(port_free(base + i) for i in range(count)):
            return base
    raise ConfigurationError(f"no {count} consecutive free ports on {HOST}")


@dataclass
class Process:
    """One ``kakehashi`` process, logging to ``log``; restartable."""

    name: str
    args: list[str]
    log: Path
    ready_url: str = ""
    popen: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                [*_kakehashi(), *self.args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=child_env(),
                start_new_session=True,
            )

    def wait_ready(self, deadline_s: float = START_DEADLINE_S) -> None:
        """Until ``ready_url`` answers 200 (or the process died: its log tail is raised)."""
        deadline = time.monotonic() + deadline_s
        with httpx.Client(trust_env=False, timeout=2.0) as http:
            while True:
                if not self.running:
                    raise TransportError(f"{self.name} exited; its log ends:\n{self.tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if http.get(self.ready_url).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise TransportError(f"{self.name} did not start in {deadline_s:.0f} s")
                time.sleep(0.1)

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def stop(self, grace_s: float = 5.0) -> None:
        if not self.running:
            return
        assert self.popen is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(grace_s)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL the process group (a crash)."""
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(10)


@dataclass
class PingNetwork:
    """The processes of one linked path (module docstring), in ``directory``.

    ``nodes``: more Corda nodes (X.500 names), each served by its own ``kakehashi corda serve``
    process (the use cases' parties: :meth:`node_url`, :meth:`node_token`, :meth:`node_key`);
    the IBC host stays on :data:`CORDA_NODE`. ``cross_timeout_blocks``: the host's
    ``--cross-timeout-blocks`` (None: the default); :meth:`restart_host` changes it."""

    directory: Path
    progress: Callable[[str], None] = lambda _text: None
    processes: dict[str, Process] = field(default_factory=dict)
    nodes: tuple[str, ...] = ()
    cross_timeout_blocks: int | None = None
    evm_port: int = 0
    lcp_port: int = 0
    corda_base: int = 0
    metrics_port: int = 0
    deployment: Any = None
    record: Any = None

    # -- processes ------------------------------------------------------------------------------

    def _process(self, name: str, args: list[str], ready_url: str = "") -> Process:
        logs = self.directory / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        proc = Process(name, args, logs / f"{name}.log", ready_url)
        self.processes[name] = proc
        return proc

    @property
    def evm_url(self) -> str:
        return f"http://{HOST}:{self.evm_port}"

    @property
    def lcp_url(self) -> str:
        return f"http://{HOST}:{self.lcp_port}"

    @property
    def corda_url(self) -> str:
        return f"http://{HOST}:{self.corda_base + 1}"

    @property
    def config_path(self) -> Path:
        return self.directory / "relayer.toml"

    def start_ledgers(self) -> None:
        """The EVM node, the Corda notary and node (with its IBC host), the LCP service."""
        self.directory.mkdir(parents=True, exist_ok=True)
        base = free_ports(6 + len(self.nodes))
        self.evm_port, self.lcp_port, self.metrics_port = base, base + 1, base + 2
        self.corda_base = base + 3
        corda_dir = self.directory / "corda"
        if not (corda_dir / "network-map.toml").exists():
            init = subprocess.run(
                [
                    *_kakehashi(),
                    "corda",
                    "init",
                    str(corda_dir),
                    "--notary",
                    CORDA_NOTARY,
                    "--node",
                    CORDA_NODE,
                    *(arg for name in self.nodes for arg in ("--node", name)),
                    "--base-port",
                    str(self.corda_base),
                ],
                capture_output=True,
                env=child_env(),
                check=False,
            )
            if init.returncode != 0:
                raise ConfigurationError(f"corda init failed: {init.stderr.decode()[-2000:]}")
        else:
            self.corda_base = _base_port_of(corda_dir)
        secret = self.directory / "lcp-operator.secret"
        if not secret.exists():
            secret.write_text(secrets.token_hex(32) + "\n")
            secret.chmod(0o600)
        self._process(
            "evm",
            [
                "evm",
                "serve",
                "--data-dir",
                str(self.directory / "evm"),
                "--port",
                str(self.evm_port),
            ],
        )
        self._process(
            "notary",
            ["corda", "serve", str(corda_dir), "--name", CORDA_NOTARY],
            f"http://{HOST}:{self.corda_base}/health",
        )
        self._process("corda", self._host_args(), f"{self.corda_url}/ibc/info")
        for name in self.nodes:
            self._process(
                self._node_process(name),
                ["corda", "serve", str(corda_dir), "--name", name],
                f"{self.node_url(name)}/health",
            )
        self._process(
            "lcp",
            [
                "lcp",
                "serve",
                "--data-dir",
                str(self.directory / "lcp"),
                "--operator-secret-file",
                str(secret),
                "--port",
                str(self.lcp_port),
            ],
            f"{self.lcp_url}/health",
        )
        names = ["notary", "corda", *map(self._node_process, self.nodes), "lcp"]
        for name in ("evm", *names):
            self.processes[name].start()
        self._wait_evm()
        for name in names:
            self.processes[name].wait_ready()

    def _host_args(self) -> list[str]:
        args = ["corda", "serve", str(self.directory / "corda"), "--name", CORDA_NODE]
        args += ["--ibc", "--ibc-port", PORT_ID]
        if self.cross_timeout_blocks is not None:
            args += ["--cross-timeout-blocks", str(self.cross_timeout_blocks)]
        return args

    def restart_host(self, cross_timeout_blocks: int | None = None) -> None:
        """Stop the host node's process and start it again (on the same database) with
        ``--cross-timeout-blocks`` (None: the default); waits until it serves /ibc again."""
        self.cross_timeout_blocks = cross_timeout_blocks
        proc = self.processes["corda"]
        proc.stop()
        proc.args = self._host_args()
        proc.start()
        proc.wait_ready()

    @staticmethod
    def _node_process(name: str) -> str:
        return f"corda-{_slug(name)}"

    def node_url(self, name: str) -> str:
        """The URL of Corda node (or notary) ``name``, from the network map."""
        from kakehashi.ledgers.corda.node.network import NetworkMap

        url = NetworkMap.load(self.directory / "corda" / "network-map.toml").info(name).url
        if not url:
            raise ConfigurationError(f"the network map gives no URL for {name}")
        return url

    def node_token_file(self, name: str) -> Path:
        """The file holding Corda node ``name``'s RPC token."""
        return self.directory / "corda" / _slug(name) / "rpc.token"

    def node_token(self, name: str) -> str:
        """The RPC token of Corda node ``name`` (its ``rpc.token``)."""
        return self.node_token_file(name).read_text().strip()

    def node_key(self, name: str) -> Path:
        """The identity key file of Corda node ``name``."""
        return self.directory / "corda" / _slug(name) / "identity.key"

    def _wait_evm(self) -> None:
        proc = self.processes["evm"]
        deadline = time.monotonic() + START_DEADLINE_S
        body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
        with httpx.Client(trust_env=False, timeout=2.0) as http:
            while True:
                if not proc.running:
                    raise TransportError(f"the EVM node exited; its log ends:\n{proc.tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if http.post(self.evm_url, json=body).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise TransportError("the EVM node did not start in time")
                time.sleep(0.1)

    # -- setup ----------------------------------------------------------------------------------

    def deploy(self) -> None:
        """The IBC handler, LCP client (trusting the service's simulation root) and echo app."""
        from kakehashi.ibc.evm_deploy import deploy_lcp_stack
        from kakehashi.lcp.client import LcpServiceClient
        from kakehashi.ledgers.evm.client import connect, funded_accounts

        with LcpServiceClient(self.lcp_url) as lcp:
            root = lcp.attestation().root_certificate
        self.deployment = deploy_lcp_stack(
            connect(self.evm_url), sender=funded_accounts(n=1)[0], port=PORT_ID, root_der=root
        )

    def write_config(
        self,
        *,
        relayer_account: int = 1,
        name: str = "relayer",
        port: str = PORT_ID,
        version: str = "echo-1",
        link_file: str = "link.json",
    ) -> Path:
        from kakehashi.ledgers.evm.client import funded_accounts

        key_file = self.directory / f"{name}.key"
        key_file.write_text(funded_accounts(n=relayer_account + 1)[relayer_account].key.hex())
        key_file.chmod(0o600)
        path = self.directory / f"{name}.toml"
        path.write_text(
            f"""# written by kakehashi demo ping
[lcp]
url = "{self.lcp_url}"
development = true

[a]
type = "evm"
rpc = "{self.evm_url}"
handler = "{self.deployment.handler}"
port = "{port}"
private_key_file = "{key_file.name}"
from_block = {self.deployment.from_block}

[b]
type = "corda"
url = "{self.corda_url}"
port = "{port}"

[channel]
ordering = "unordered"
version = "{version}"

[relayer]
interval_s = 0.2
batch_size = 100
metrics_port = {self.metrics_port if name == "relayer" else 0}
link_file = "{link_file}"
"""
        )
        return path

    def link(self, config: Path | None = None, link_file: str = "link.json") -> Any:
        """``kakehashi relayer link`` (a separate process, like any relayer operator's); the
        link record (also kept as :attr:`record` for the default path)."""
        from kakehashi.relayer.link import LinkRecord

        name = "link" if config is None else f"link-{config.stem}"
        proc = self._process(name, ["relayer", "link", "--config", str(config or self.config_path)])
        proc.start()
        assert proc.popen is not None
        if proc.popen.wait(180) != 0:
            raise TransportError(f"relayer link failed; its log ends:\n{proc.tail()}")
        record = LinkRecord.load(self.directory / link_file)
        if config is None:
            self.record = record
        return record

    def start_relayer(self, name: str = "relayer", config: Path | None = None) -> Process:
        proc = self.processes.get(name) or self._process(
            name, ["relayer", "start", "--config", str(config or self.config_path)]
        )
        proc.start()
        return proc

    # -- packets --------------------------------------------------------------------------------

    def send_from_evm(self, data: bytes) -> Packet:
        from kakehashi.ibc.evm_host import EvmIbcHost
        from kakehashi.ledgers.evm.client import connect, funded_accounts

        ibc = EvmIbcHost(
            connect(self.evm_url),
            self.deployment.handler,
            sender=funded_accounts(n=1)[0],
            gas=5_000_000,
        )
        return ibc.send_packet(
            self.deployment.echo_app,
            PORT_ID,
            self.record.a_channel_id,
            data,
            timeout_height=Height(0, 10**9),
        ).value

    def send_from_corda(self, data: bytes) -> Packet:
        from kakehashi.ibc.corda_host.remote import RemoteCordaHost

        token = self.node_token(CORDA_NODE)
        with RemoteCordaHost(self.corda_url, app_token=token) as host:
            return host.send_packet(PORT_ID, self.record.b_channel_id, data, Height(0, 10**9))

    def acknowledgement(self, packet: Packet, *, from_evm: bool) -> bytes | None:
        """The acknowledgement of ``packet`` (sent on the EVM chain if ``from_evm``, else on the
        Corda host) once its source has processed it (its commitment is gone there and the
        destination holds the ack); None until then."""
        from kakehashi.ibc.corda_host.remote import RemoteCordaHost
        from kakehashi.ibc.evm_host import EvmIbcHost
        from kakehashi.ledgers.evm.client import connect, funded_accounts
        from kakehashi.relayer.chains import CordaEndpoint, EvmEndpoint

        evm = EvmEndpoint(
            EvmIbcHost(
                connect(self.evm_url), self.deployment.handler, sender=funded_accounts(n=1)[0]
            ),
            from_block=self.deployment.from_block,
        )
        with RemoteCordaHost(self.corda_url) as remote:
            corda = CordaEndpoint(remote)
            src, dst = (evm, corda) if from_evm else (corda, evm)
            path = paths.packet_commitment_path(
                packet.source_port, packet.source_channel, packet.sequence
            )
            if src.value(path) is not None:
                return None
            for written in dst.acks_written(
                packet.destination_port, packet.destination_channel, packet.sequence
            ):
                if written.packet.sequence == packet.sequence:
                    return written.acknowledgement
        return None

    def close(self) -> None:
        for proc in reversed(list(self.processes.values())):
            proc.stop()


def _slug(name: str) -> str:
    from kakehashi.ledgers.corda.model.identity import X500Name
    from kakehashi.ledgers.corda.node.setup import slug

    return slug(X500Name.parse(name))


def _base_port_of(corda_dir: Path) -> int:
    from kakehashi.ledgers.corda.node.network import NetworkMap

    network = NetworkMap.load(corda_dir / "network-map.toml")
    ports = [int(info.url.rsplit(":", 1)[1]) for info in network.nodes if info.url]
    return min(ports)


def _readable(ack: bytes) -> str:
    """An acknowledgement as text: a printable ``label:`` prefix (the echo app's ``echo:``)
    kept, the rest in hex (all of it in hex when there is no such prefix)."""
    label, colon, rest = ack.partition(b":")
    if colon and label and all(0x20 <= b < 0x7F for b in label):
        return label.decode() + ":" + rest.hex()
    return ack.hex()


@dataclass
class Step:
    name: str
    ledger: str
    seconds: float


def run_ping(
    directory: Path, *, packets: int = 2, progress: Callable[[Step], None] = lambda _s: None
) -> dict[str, Any]:
    """The whole demo; returns ``{"ok", "steps", "packets"}`` (see ``kakehashi demo ping``)."""
    steps: list[Step] = []
    results: list[dict[str, Any]] = []
    network = PingNetwork(directory)

    def step(name: str, ledger: str, action: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        value = action()
        done = Step(name, ledger, round(time.perf_counter() - start, 3))
        steps.append(done)
        progress(done)
        return value

    ok = False
    error = ""
    try:
        step("start both ledgers and the LCP service", "both", network.start_ledgers)
        step("deploy IBC handler, LCP client and echo app", "evm", network.deploy)
        network.write_config()
        step("link: LCP clients, connection, channel", "both", network.link)
        step("start the relayer", "relayer", lambda: network.start_relayer())
        sent: list[tuple[str, Packet]] = []
        for i in range(1, packets + 1):
            ping = f"ping {i}".encode()
            pong = f"pong {i}".encode()
            packet = step(
                f"send ping {i} on the EVM chain", "evm", partial(network.send_from_evm, ping)
            )
            sent.append(("evm->corda", packet))
            packet = step(
                f"send pong {i} on the Corda host", "corda", partial(network.send_from_corda, pong)
            )
            sent.append(("corda->evm", packet))

        def wait_acks() -> None:
            deadline = time.monotonic() + 120
            pending = dict(enumerate(sent))
            while pending and time.monotonic() < deadline:
                for index, (direction, packet) in list(pending.items()):
                    ack = network.acknowledgement(packet, from_evm=direction == "evm->corda")
                    if ack is not None:
                        results.append(
                            {
                                "direction": direction,
                                "sequence": packet.sequence,
                                "acknowledged": True,
                                "data": packet.data.decode(errors="replace"),
                                "acknowledgement": _readable(ack),
                            }
                        )
                        del pending[index]
                if pending:
                    relayer = network.processes["relayer"]
                    if not relayer.running:
                        raise TransportError(f"the relayer exited; its log ends:\n{relayer.tail()}")
                    time.sleep(0.1)
            for direction, packet in pending.values():
                results.append(
                    {
                        "direction": direction,
                        "sequence": packet.sequence,
                        "acknowledged": False,
                        "data": packet.data.decode(errors="replace"),
                        "acknowledgement": None,
                    }
                )

        step("relayer delivers every packet and brings every ack back", "relayer", wait_acks)
        ok = bool(results) and all(r["acknowledged"] for r in results)
    except KakehashiError as exc:
        error = str(exc)
    finally:
        step("stop every process", "both", network.close)
    answer: dict[str, Any] = {
        "ok": ok,
        "steps": [{"name": s.name, "ledger": s.ledger, "seconds": s.seconds} for s in steps],
        "packets": sorted(results, key=lambda r: (r["direction"], r["sequence"])),
        "directory": str(directory),
    }
    if error:
        answer["error"] = error
    return answer
