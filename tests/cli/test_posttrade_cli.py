"""``kakehashi posttrade``: the post-trade workflow driven from the command line, each step
``--as`` a party with its own keys, on an embedded chain kept in the network directory
(every command reopens it, as separate invocations would). Refusals exit 2 with a message that
says what to do, never a traceback."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from kakehashi.apps.posttrade.demo import AM, CSD, CUSTODIAN, OUTSIDER, SECURITIES
from kakehashi.cli.main import app


def run(directory: Path, *args: str) -> Result:
    return CliRunner().invoke(
        app, ["posttrade", *args, "--dir", str(directory)], prog_name="kakehashi"
    )


def ok_json(directory: Path, *args: str) -> Any:
    result = run(directory, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def refused(directory: Path, *args: str) -> str:
    result = run(directory, *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return " ".join(result.stderr.split())


def test_the_workflow_from_the_command_line(tmp_path: Path) -> None:
    net = tmp_path / "net"
    result = CliRunner().invoke(app, ["posttrade", "init", str(net), "--json"])
    assert result.exit_code == 0, result.output
    config = json.loads(result.stdout)
    assert set(config["parties"]) == {AM, CUSTODIAN, SECURITIES, CSD, OUTSIDER}
    for name in config["parties"]:
        for key in ("evm.key", "x25519.key"):
            mode = (net / "parties" / name / key).stat().st_mode
            assert stat.S_IMODE(mode) == 0o600
    assert "already holds" in " ".join(
        CliRunner().invoke(app, ["posttrade", "init", str(net)]).stderr.split()
    )
    trade = net / "sample-trade.json"

    state = ok_json(net, "submit", "F-1", "--as", AM, "--trade", str(trade))
    assert (state["version"], state["processing_code"], state["awaiting"]) == (1, "PPRC", CUSTODIAN)
    inbox = ok_json(net, "list", "--as", CUSTODIAN)
    assert [(f["form_id"], f["your_turn"], f["last_notice"]) for f in inbox["forms"]] == [
        ("F-1", True, "submitted")
    ]
    assert ok_json(net, "list", "--as", OUTSIDER)["forms"] == []
    view = ok_json(net, "show", "F-1", "--as", SECURITIES)
    assert view["readable"] and view["form"]["instruction"]["isin"] == "JP3633400001"

    # out of order, and an outsider acting: refused, with whose turn it is
    message = refused(net, "approve", "F-1", "--as", CSD)
    assert "not your turn" in message and "awaiting 'custodian' (step 1 of 3)" in message
    assert "not a recipient" in refused(net, "approve", "F-1", "--as", OUTSIDER)
    assert "may not reject with LACK" in refused(
        net, "reject", "F-1", "--as", CUSTODIAN, "--reason", "LACK"
    )

    # matching before anyone approves: no counterparty instruction (CMIS), then the
    # securities company's delivering side, matched
    assert "not matched" in refused(net, "approve", "F-1", "--as", CUSTODIAN)
    matched = ok_json(net, "match", "F-1", "--as", CSD)
    assert (matched["status"], [m["code"] for m in matched["mismatches"]]) == ("NMAT", ["CMIS"])
    delivering = tmp_path / "delivering.json"
    delivering.write_text(json.dumps(json.loads(trade.read_text()) | {"direction": "DELI"}))
    ok_json(net, "submit", "F-C", "--as", SECURITIES, "--trade", str(delivering), "--route", CSD)
    assert ok_json(net, "match", "F-1", "F-C", "--as", CSD)["status"] == "MACH"

    ok_json(net, "approve", "F-1", "--as", CUSTODIAN)
    state = ok_json(
        net, "reject", "F-1", "--as", SECURITIES, "--reason", "lack", "--narrative", "600 only"
    )
    assert state["processing_code"] == "REJT"
    assert state["rejection"] == {"party": SECURITIES, "step": 1, "reason": "LACK"}

    # the outsider gets the ciphertext and "not a recipient"; the route reads the narrative
    outsider = ok_json(net, "show", "F-1", "--as", OUTSIDER)
    assert not outsider["readable"] and outsider["form"] is None
    assert outsider["refusal"].startswith("not a recipient")
    assert outsider["envelope_size"] > 0 and outsider["rejection"]["narrative"] is None
    assert ok_json(net, "show", "F-1", "--as", CUSTODIAN)["rejection"]["narrative"] == "600 only"
    human = run(net, "show", "F-1", "--as", OUTSIDER)
    assert human.exit_code == 0 and "not a recipient" in human.stdout
    assert "JP3633400001" not in human.stdout

    # amend: version 2 without the securities company on the route
    edited = json.loads(trade.read_text()) | {"safekeeping_account": "SAFE-002"}
    trade2 = tmp_path / "trade2.json"
    trade2.write_text(json.dumps(edited))
    state = ok_json(
        net, "amend", "F-1", "--as", AM, "--trade", str(trade2), "--route", f"{CUSTODIAN},{CSD}"
    )
    assert (state["version"], state["route"], state["awaiting"]) == (2, [CUSTODIAN, CSD], CUSTODIAN)
    removed = ok_json(net, "show", "F-1", "--as", SECURITIES)
    assert not removed["readable"] and "not a recipient" in removed["refusal"]
    assert "stale version" in refused(net, "approve", "F-1", "--as", CUSTODIAN, "--version", "1")

    assert "not matched" in refused(net, "approve", "F-1", "--as", CUSTODIAN)  # a new version
    assert ok_json(net, "match", "F-1", "F-C", "--as", CSD)["status"] == "MACH"
    ok_json(net, "approve", "F-1", "--as", CUSTODIAN, "--version", "2")
    state = ok_json(net, "approve", "F-1", "--as", CSD)
    assert state["processing_code"] == "PACK"
    assert "only the CSD" in refused(net, "settle", "F-1", "--as", CUSTODIAN, "--status", "SETT")
    assert "use one of PEND, PENF, SETT" in refused(
        net, "settle", "F-1", "--as", CSD, "--status", "DONE"
    )
    state = ok_json(net, "settle", "F-1", "--as", CSD, "--status", "penf", "--reason", "lack")
    assert (state["settlement"], state["settlement_reason"]) == ("PENF", "LACK")
    assert ok_json(net, "settle", "F-1", "--as", CSD, "--status", "SETT")["settlement"] == "SETT"
    view = ok_json(net, "show", "F-1", "--as", CSD)
    assert view["form"]["instruction"]["safekeeping_account"] == "SAFE-002"
    assert [(h["event"], h["party"], h["version"]) for h in view["history"]] == [
        ("submitted", AM, 1),
        ("matching", CSD, 1),
        ("matching", CSD, 1),
        ("approved", CUSTODIAN, 1),
        ("rejected", SECURITIES, 1),
        ("submitted", AM, 2),
        ("matching", CSD, 2),
        ("approved", CUSTODIAN, 2),
        ("approved", CSD, 2),
        ("settlement", CSD, 2),
        ("settlement", CSD, 2),
    ]
    human = run(net, "show", "F-1", "--as", CSD, "--history")
    assert (
        human.exit_code == 0 and "rejected v1 by securities at step 2 reason LACK" in human.stdout
    )

    # an envelope handed over, tampered with: detected against the digest on chain
    ledger_envelope = _envelope(net, "F-1")
    good = tmp_path / "good.bin"
    good.write_bytes(ledger_envelope)
    assert ok_json(net, "show", "F-1", "--as", CSD, "--envelope", str(good))["readable"]
    bad = tmp_path / "bad.bin"
    bad.write_bytes(ledger_envelope[:-1] + bytes([ledger_envelope[-1] ^ 1]))
    assert "altered" in refused(net, "show", "F-1", "--as", CSD, "--envelope", str(bad))

    # cancel: the submitter only
    ok_json(net, "submit", "F-2", "--as", AM, "--trade", str(trade))
    assert "only the submitter cancels" in refused(net, "cancel", "F-2", "--as", CUSTODIAN)
    assert ok_json(net, "cancel", "F-2", "--as", AM)["processing_code"] == "CAND"
    assert "cancelled" in refused(net, "approve", "F-2", "--as", CUSTODIAN, "--version", "1")
    rows = {f["form_id"]: f for f in ok_json(net, "list", "--as", CUSTODIAN)["forms"]}
    assert (rows["F-1"]["processing_code"], rows["F-2"]["last_notice"]) == ("PACK", "cancelled")
    table = run(net, "list", "--as", CUSTODIAN)
    assert table.exit_code == 0 and "F-2" in table.stdout


def _envelope(net: Path, form_id: str) -> bytes:
    from kakehashi.cli.posttrade import open_network

    with open_network(net) as opened:
        return opened.ledger(CSD).envelope(form_id)


def test_mistakes_end_with_a_message_and_exit_2(tmp_path: Path) -> None:
    assert "run `kakehashi posttrade init" in refused(tmp_path, "list", "--as", AM)
    net = tmp_path / "net"
    assert CliRunner().invoke(app, ["posttrade", "init", str(net)]).exit_code == 0
    assert "no party 'nobody'" in refused(net, "list", "--as", "nobody")
    trade = net / "sample-trade.json"
    assert "no party named 'ghost'" in refused(
        net, "submit", "F-1", "--as", AM, "--trade", str(trade), "--route", "custodian,ghost"
    )
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(json.loads(trade.read_text()) | {"isin": "JP3633400002"}))
    assert "isin" in refused(net, "submit", "F-1", "--as", AM, "--trade", str(bad))
    assert "cannot read the trade" in refused(
        net, "submit", "F-1", "--as", AM, "--trade", str(tmp_path / "missing.json")
    )
    assert "no form 'F-9'" in refused(net, "show", "F-9", "--as", AM)


def test_the_installed_command_acts_as_a_party(tmp_path: Path) -> None:
    """The console entry point, as a process: init, submit, then the custodian's inbox."""
    net = tmp_path / "net"
    exe = [sys.executable, "-m", "kakehashi.cli.main", "posttrade"]
    env = {**os.environ, "KAKEHASHI_POSTTRADE_DIR": str(net)}

    def call(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*exe, *args], env=env, capture_output=True, text=True, timeout=120, check=False
        )

    assert call("init", str(net)).returncode == 0
    done = call("submit", "F-1", "--as", AM, "--trade", str(net / "sample-trade.json"))
    assert done.returncode == 0, done.stderr
    inbox = call("list", "--as", CUSTODIAN, "--json")
    assert inbox.returncode == 0, inbox.stderr
    assert json.loads(inbox.stdout)["forms"][0]["your_turn"] is True
    refusal = call("approve", "F-1", "--as", CSD)
    assert refusal.returncode == 2 and "not your turn" in refusal.stderr
    assert "Traceback" not in refusal.stderr
