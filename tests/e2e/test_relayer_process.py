"""The relayer as a separate OS process between the EVM node and a Corda node, through the LCP
service process (:class:`kakehashi.cli.ping.PingNetwork`, the processes ``kakehashi demo ping``
runs): the demo itself, a relayer killed with SIGKILL at several points and started again, and
two relayers on one path.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kakehashi.cli.ping import PingNetwork
from kakehashi.ibc.evm_host import ECHO_APP_CONTRACT
from kakehashi.ibc.types import Packet
from kakehashi.ledgers.evm import toolchain
from kakehashi.ledgers.evm.client import connect
from tests.e2e.procs import child_env

DEADLINE_S = 120.0


def echo(data: bytes) -> str:
    return "echo:" + hashlib.sha256(data).hexdigest()


def test_demo_ping_json_reports_every_step_and_every_acknowledgement(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "kakehashi.cli.main",
            "demo",
            "ping",
            "--json",
            "--dir",
            str(tmp_path),
        ],
        capture_output=True,
        env=child_env(),
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    result = json.loads(done.stdout)
    assert result["ok"] is True
    names = [s["name"] for s in result["steps"]]
    assert any("link" in n for n in names) and any("relayer" in n for n in names)
    for step in result["steps"]:
        assert set(step) == {"name", "ledger", "seconds"} and step["seconds"] >= 0
    packets = result["packets"]
    assert {(p["direction"], p["sequence"]) for p in packets} == {
        ("evm->corda", 1),
        ("evm->corda", 2),
        ("corda->evm", 1),
        ("corda->evm", 2),
    }
    for packet in packets:
        assert packet["acknowledged"] is True
        assert packet["acknowledgement"] == echo(packet["data"].encode())


@pytest.fixture
def linked(tmp_path: Path) -> Iterator[PingNetwork]:
    network = PingNetwork(tmp_path)
    try:
        network.start_ledgers()
        network.deploy()
        network.write_config()
        network.link()
        yield network
    finally:
        network.close()


def _all_acknowledged(network: PingNetwork, sent: list[tuple[bool, Packet]]) -> list[Packet]:
    """The packets of ``sent`` not yet acknowledged (with the right acknowledgement)."""
    missing = []
    for from_evm, packet in sent:
        ack = network.acknowledgement(packet, from_evm=from_evm)
        if ack is None:
            missing.append(packet)
        else:
            assert ack == b"echo:" + hashlib.sha256(packet.data).digest()
    return missing


def _wait_acknowledged(network: PingNetwork, sent: list[tuple[bool, Packet]]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while missing := _all_acknowledged(network, sent):
        assert time.monotonic() < deadline, f"{len(missing)} packets never acknowledged"
        time.sleep(0.2)


def _send_both_ways(network: PingNetwork, n: int, tag: str) -> list[tuple[bool, Packet]]:
    sent = []
    for i in range(n):
        sent.append((True, network.send_from_evm(f"{tag} evm {i}".encode())))
        sent.append((False, network.send_from_corda(f"{tag} corda {i}".encode())))
    return sent


def test_a_relayer_killed_at_any_point_completes_every_packet_after_restart(
    linked: PingNetwork,
) -> None:
    network = linked
    sent = _send_both_ways(network, 8, "before")
    relayer = network.start_relayer()
    # kill it at several points of its life: while importing, mid-round, between rounds
    for delay in (0.3, 2.5, 3.2):
        time.sleep(delay)
        relayer.kill()
        assert not relayer.running
        sent += _send_both_ways(network, 2, f"after-kill-{delay}")
        relayer.start()
    _wait_acknowledged(network, sent)
    metrics = httpx.get(
        f"http://127.0.0.1:{network.metrics_port}/metrics", trust_env=False, timeout=5
    ).text
    assert "kakehashi_relayer_rounds_total" in metrics
    assert "kakehashi_relayer_client_height" in metrics


def test_two_relayer_processes_deliver_each_packet_once(linked: PingNetwork) -> None:
    network = linked
    second = network.write_config(relayer_account=2, name="relayer-2")
    network.start_relayer()
    network.start_relayer("relayer-2", second)
    sent = _send_both_ways(network, 10, "pair")
    _wait_acknowledged(network, sent)
    w3 = connect(network.evm_url)
    app = w3.eth.contract(
        address=network.deployment.echo_app, abi=toolchain.compile_contract(ECHO_APP_CONTRACT).abi
    )
    assert app.functions.received().call() == 10  # each EVM-bound packet delivered once
    assert app.functions.acknowledged().call() == 10
    for name in ("relayer", "relayer-2"):
        proc = network.processes[name]
        assert proc.running, proc.tail()
        assert "Traceback" not in proc.tail(20_000)
