"""``kakehashi demo logistics``: one daily update on the in-process network, both privacy
patterns."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from kakehashi.apps.logistics.demo import CONTRACTS, run_logistics
from tests.e2e.procs import child_env


def test_each_contract_shows_the_status_its_records_support(tmp_path: Path) -> None:
    result = run_logistics(tmp_path / "direct")
    assert result.ok, result.as_dict()
    (done, _, _, _), (open_one, _, _, _), (full_done, _, _, _), (partial, want, got, _) = CONTRACTS
    assert result.final["statuses"] == {
        done: "delivered",
        open_one: "open",
        full_done: "delivered",
        partial: f"partial: {got} of {want}",
    }
    assert result.final["outsider_states"] == 0 and open_one in result.failure
    rt = result.round_trip
    assert (len(rt["corda_ms"]), len(rt["evm_ms"]), len(rt["relayer_lcp_ms"])) == (2, 3, 4)

    # what crossed: minimal disclosure — the id and the count out, yes / no back; full
    # disclosure — the id only out, every record back
    crossed = result.final["crossed"]
    assert crossed[done] == {
        "pattern": "minimal",
        "sent": {"contract_id": done, "expected": 2},
        "answered": "yes",
    }
    assert crossed[open_one]["answered"].startswith("failed: ")
    assert crossed[full_done]["sent"] == {"contract_id": full_done}
    assert [r["shipment"] for r in crossed[full_done]["answered"]] == [
        f"{full_done}/S-1",
        f"{full_done}/S-2",
    ]
    assert len(crossed[partial]["answered"]) == got

    done_json = subprocess.run(
        [sys.executable, "-m", "kakehashi.cli.main", "demo", "logistics", "--json"],
        capture_output=True,
        env=child_env(),
        timeout=180,
        check=True,
    )
    answer = json.loads(done_json.stdout)
    assert answer["ok"] and answer["final"]["statuses"][full_done] == "delivered"


def test_the_failure_scenarios_end_as_the_records_say(tmp_path: Path) -> None:
    missing = run_logistics(tmp_path / "missing", fail_at="deliveries-missing")
    assert missing.ok, missing.as_dict()
    minimal = [cid for cid, _, _, full in CONTRACTS if not full]
    assert all(missing.final["statuses"][cid] == "open" for cid in minimal)
    assert all(f"{cid}: part 1 on the Corda model" in missing.failure for cid in minimal)
    for cid, want, _, full in CONTRACTS:
        if full:
            assert missing.final["statuses"][cid] == f"partial: 0 of {want}"

    crashed = run_logistics(tmp_path / "crash", fail_at="relayer-crash")
    assert crashed.ok and any("relayer is killed" in s.name for s in crashed.steps)

    listed = subprocess.run(
        [sys.executable, "-m", "kakehashi.cli.main", "demo", "logistics", "--fail-at", "list"],
        capture_output=True,
        env=child_env(),
        timeout=60,
        check=True,
    )
    assert b"deliveries-missing" in listed.stdout and b"relayer-crash" in listed.stdout
    wrong = subprocess.run(
        [sys.executable, "-m", "kakehashi.cli.main", "demo", "logistics", "--fail-at", "nope"],
        capture_output=True,
        env=child_env(),
        timeout=60,
    )
    assert wrong.returncode == 2 and b"no failure scenario" in wrong.stderr
