"""``kakehashi demo posttrade``: the whole scenario on the in-process network — shared, matched,
an NG with its reason and a resubmission, approved in route order, unreadable to an outsider,
settled as a DVP — and its ``--json``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from kakehashi.apps.posttrade.demo import ROUTE, run_posttrade
from tests.e2e.procs import child_env


def test_the_scenario_plays_to_settled(tmp_path: Path) -> None:
    result = run_posttrade(tmp_path)
    assert result.ok, result.as_dict()
    final = result.final_status
    assert (final["processing_code"], final["matching"], final["settlement"]) == (
        "PACK",
        "MACH",
        "SETT",
    )
    assert final["version"] == 2 and [s["party"] for s in final["steps"]] == list(ROUTE)
    assert all(s["state"] == "approved" for s in final["steps"])
    names = [s.name for s in result.steps]
    assert any("NG (SAFE)" in n for n in names) and any("resubmits" in n for n in names)
    view = result.outsider_view
    assert view["readable"] is False and view["form"] is None
    assert view["refusal"].startswith("not a recipient") and view["envelope_size"] > 0


def test_the_json_is_one_object() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kakehashi.cli.main", "demo", "posttrade", "--json"],
        capture_output=True,
        env=child_env(),
        timeout=300,
        check=True,
    )
    answer = json.loads(done.stdout)
    assert answer["ok"] and answer["form_id"] == "F-2026-0001"
    assert answer["final_status"]["settlement"] == "SETT"
    assert set(answer) >= {"ok", "form_id", "steps", "final_status", "outsider_view"}
    assert not answer["outsider_view"]["readable"]


def test_a_failing_settlement_is_recorded_with_its_reason_and_nothing_moves(
    tmp_path: Path,
) -> None:
    for scenario in ("lack", "mony"):
        result = run_posttrade(tmp_path / scenario, fail_at=scenario)
        assert result.ok, result.as_dict()
        final = result.final_status
        assert (final["processing_code"], final["settlement"]) == ("PACK", "PENF")
        assert final["settlement_reason"] == scenario.upper()
        assert result.failure  # names the party, the ledger and why
    listed = subprocess.run(
        [sys.executable, "-m", "kakehashi.cli.main", "demo", "posttrade", "--fail-at", "list"],
        capture_output=True,
        env=child_env(),
        timeout=60,
        check=True,
    )
    assert b"lack" in listed.stdout and b"mony" in listed.stdout
