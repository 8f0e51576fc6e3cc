"""A cross transaction across the two ledgers with every part its own process (EVM node, Corda
notary and node serving its IBC host and Cross Framework module, LCP service, relayer): the EVM
chain coordinates a two-phase commit with the Corda node, signed by three parties (the initiator,
a second EVM account with ``kakehashi tx sign``, and the Corda node's party on its own ledger
with ``kakehashi tx sign --part``: a SIGN packet), and the relayer is killed with SIGKILL several
times while it relays; started again, it completes the transaction on both ledgers."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kakehashi.cli.ping import CORDA_NODE, PingNetwork
from kakehashi.cross.auth import corda_key_id
from kakehashi.cross.corda_module import CROSS_PORT, CROSS_VERSION
from kakehashi.cross.kv import kv_call
from kakehashi.cross.status import Decision
from kakehashi.cross.tx import (
    Account,
    ChannelInfo,
    CommitProtocol,
    ContractTransaction,
    InitiateTx,
    SignerKind,
)
from kakehashi.ibc.evm_deploy import CROSS_APP_CONTRACT, CROSS_CONTRACT
from kakehashi.ibc.types import Height
from kakehashi.ledgers.corda.model.identity import X500Name
from kakehashi.ledgers.corda.node.setup import load_key, slug
from kakehashi.ledgers.evm import toolchain
from kakehashi.ledgers.evm.client import connect, funded_accounts, transact
from tests.e2e.procs import child_env

DEADLINE_S = 120.0


@pytest.fixture
def network(tmp_path: Path) -> Iterator[PingNetwork]:
    net = PingNetwork(tmp_path)
    try:
        net.start_ledgers()
        net.deploy()
        yield net
    finally:
        net.close()


def test_a_killed_relayer_restarts_and_the_cross_transaction_completes(
    network: PingNetwork,
) -> None:
    config = network.write_config(
        name="cross-relayer", port=CROSS_PORT, version=CROSS_VERSION, link_file="cross-link.json"
    )
    record = network.link(config, "cross-link.json")
    w3 = connect(network.evm_url)
    cross = w3.eth.contract(
        address=network.deployment.cross, abi=toolchain.compile_contract(CROSS_CONTRACT).abi
    )
    channel = ChannelInfo(CROSS_PORT, record.a_channel_id)  # the EVM chain's end
    initiator, second = funded_accounts(n=2)
    signer = Account(SignerKind.LOCAL, bytes.fromhex(initiator.address[2:]))  # signs: initiates
    cosigner = Account(SignerKind.LOCAL, bytes.fromhex(second.address[2:]))
    corda_key = network.directory / "corda" / slug(X500Name.parse(CORDA_NODE)) / "identity.key"
    corda_party = Account(SignerKind.CHANNEL, corda_key_id(load_key(corda_key).public))
    tx = InitiateTx(
        "kakehashi-evm",
        1,
        CommitProtocol.TPC,
        (
            ContractTransaction(
                channel, (signer, cosigner), kv_call(b"order-1", b"shipped"), b"ok"
            ),
            ContractTransaction(channel, (corda_party,), kv_call(b"order-1", b"shipped"), b"ok"),
        ),
        Height(0, 10**9),
    )
    transact(w3, cross.functions.initiate(tx.encode(), 0), sender=initiator)
    tx_file = network.directory / "tx.hex"
    tx_file.write_text(tx.encode().hex())
    (network.directory / "second.key").write_text(second.key.hex())
    cli = [sys.executable, "-m", "kakehashi.cli.main", "tx"]
    sign = [*cli, "sign", str(tx_file), "--config", str(config), "--json"]
    channel_b = record.b_channel_id  # the Corda node's end
    signed = [
        [*sign, "--on", "evm", "--key", str(network.directory / "second.key")],
        [*sign, "--on", "corda", "--key", str(corda_key), "--part", "1", "--channel", channel_b],
    ]
    answers = [
        json.loads(
            subprocess.run(
                args, capture_output=True, env=child_env(), timeout=120, check=True
            ).stdout
        )
        for args in signed
    ]
    assert [a["status"] for a in answers] == ["PENDING", "SENT"]  # the SIGN packet waits

    relayer = network.start_relayer("cross-relayer", config)
    for delay in (0.5, 2.5, 3.0):  # while starting, mid-round, between rounds
        time.sleep(delay)
        relayer.kill()
        relayer.start()

    deadline = time.monotonic() + DEADLINE_S
    with httpx.Client(base_url=network.corda_url, trust_env=False, timeout=5) as http:
        while True:
            decision = cross.functions.coordination(tx.tx_id).call()[3]
            acked = cross.functions.coordination_part(tx.tx_id, 1).call()[3]
            corda = http.get(f"/cross/kv/{b'order-1'.hex()}").json()
            if decision == Decision.COMMIT and acked and corda["value"] == b"shipped".hex():
                break
            assert relayer.running, relayer.tail()
            assert time.monotonic() < deadline, f"not done: {decision=} {acked=} {corda=}"
            time.sleep(0.3)
        assert corda["locked_by"] is None
        status = http.get(f"/cross/tx/{tx.tx_id.hex()}").json()
        assert status["participant"] == {"1": "COMMIT"}
    app = w3.eth.contract(
        address=network.deployment.cross_app, abi=toolchain.compile_contract(CROSS_APP_CONTRACT).abi
    )
    assert bytes(app.functions.value(b"order-1").call()) == b"shipped"
    assert bytes(app.functions.writer(b"order-1").call()) == bytes(32)

    # kakehashi tx status / list read both ledgers
    shown = subprocess.run(
        [*cli, "status", tx.tx_id.hex(), "--config", str(config), "--json"],
        capture_output=True,
        env=child_env(),
        timeout=120,
        check=True,
    )
    status = json.loads(shown.stdout)
    assert status["evm"]["coordinator"]["decision"] == "COMMIT"
    assert status["evm"]["coordinator"]["authentication"] == "VERIFIED"
    assert status["evm"]["coordinator"]["parts"] == {"0": "COMMIT", "1": "COMMIT"}
    assert status["corda"]["participant"] == {"1": "COMMIT"}
    events = [e["event"] for e in status["corda"]["timeline"]]
    assert any("PREPARE for part 1 received: OK" in e for e in events)
    assert [e["event"] for e in status["evm"]["timeline"]] == [
        "initiated",
        f"LOCAL 0x{signer.id.hex()} signed",
        f"LOCAL 0x{cosigner.id.hex()} signed",
        f"CHANNEL 0x{corda_party.id.hex()} signed",
        "authenticated: every signer signed",
        "part 0 prepared here",
        "part 1 sent PREPARE",
        "part 1 answered OK",
        "decided COMMIT",
        "part 0 committed here",
        "part 1 sent DECIDE",
        "part 1 acknowledged the decision",
    ]
    listed = subprocess.run(
        [*cli, "list", "--config", str(config), "--json"],
        capture_output=True,
        env=child_env(),
        timeout=120,
        check=True,
    )
    assert json.loads(listed.stdout) == {"open": []}


def test_the_logistics_desk_from_the_command_line(network: PingNetwork) -> None:
    """``kakehashi logistics deploy / register / run-now`` against the processes: a contract
    whose deliveries the Corda ledger does not hold stays as it was, checked by a real cross
    transaction the relayer carries."""
    config = network.write_config(
        name="cross-relayer", port=CROSS_PORT, version=CROSS_VERSION, link_file="cross-link.json"
    )
    record = network.link(config, "cross-link.json")
    relayer = network.start_relayer("cross-relayer", config)
    desk_key = network.directory / "desk.key"
    desk_key.write_text(funded_accounts(n=3)[2].key.hex())
    cli = [sys.executable, "-m", "kakehashi.cli.main", "logistics"]
    common = ["--config", str(config), "--key", str(desk_key)]

    def run(*args: str) -> str:
        done = subprocess.run(
            [*cli, *args, *common], capture_output=True, env=child_env(), timeout=180
        )
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        return done.stdout.decode()

    registry = run("deploy").strip()
    run("register", "C-42", "2", "--registry", registry)
    where = ["--registry", registry, "--channel", record.a_channel_id]
    answer = json.loads(run("run-now", *where, "--wait", "90", "--json"))
    assert relayer.running, relayer.tail()
    (check,) = answer["checks"]
    assert check["contract_id"] == "C-42"
    assert check["outcome"] == "unchanged (deliveries missing)"
