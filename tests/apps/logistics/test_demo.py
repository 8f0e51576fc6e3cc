"""``kakehashi demo logistics``: one daily update on the in-process network."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from kakehashi.apps.logistics.demo import CONTRACTS, run_logistics
from tests.e2e.procs import child_env


def test_the_delivered_contract_moves_and_the_other_stays(tmp_path: Path) -> None:
    result = run_logistics(tmp_path / "direct")
    assert result.ok, result.as_dict()
    (done, _, _), (open_one, _, _) = CONTRACTS
    assert result.final["statuses"] == {done: "delivered", open_one: "open"}
    assert result.final["outsider_states"] == 0 and open_one in result.failure
    rt = result.round_trip
    assert (len(rt["corda_ms"]), len(rt["evm_ms"]), len(rt["relayer_lcp_ms"])) == (2, 3, 4)

    done_json = subprocess.run(
        [sys.executable, "-m", "kakehashi.cli.main", "demo", "logistics", "--json"],
        capture_output=True,
        env=child_env(),
        timeout=180,
        check=True,
    )
    answer = json.loads(done_json.stdout)
    assert answer["ok"] and answer["final"]["statuses"][done] == "delivered"
