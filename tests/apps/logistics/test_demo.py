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
