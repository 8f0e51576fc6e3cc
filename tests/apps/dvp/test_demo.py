"""``kakehashi demo dvp``: the settlement on the in-process network, and each failure scenario
ending atomic (both assets where they started, or the trade completed by a new relayer)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kakehashi.apps.dvp.demo import PRICE, SCENARIOS, run_dvp
from kakehashi.errors import ConfigurationError
from tests.e2e.procs import child_env


@pytest.mark.parametrize("fail_at", [None, *SCENARIOS])
def test_every_scenario_ends_atomic(tmp_path: Path, fail_at: str | None) -> None:
    result = run_dvp(tmp_path, fail_at=fail_at)
    assert result.ok, result.as_dict()
    final = result.final
    if fail_at in (None, "relayer-crash"):
        assert result.outcome == "committed" and final["nft_owner"] == final["buyer_evm"]
        assert final["seller_balance"] == PRICE
    else:
        assert result.outcome in ("aborted", "expired") and final["nft_owner"] != final["buyer_evm"]
        assert final["seller_balance"] == 0 and result.failure  # which part, which ledger, why
    assert final["outsider_states"] == 0
    if result.outcome != "expired":  # the initiator heard how it ended, pushed to it
        assert final["notified"] == result.outcome
    rt = result.round_trip
    if fail_at is None:  # the seed formula: 3 Corda-model, 2 EVM, 3 relayer / LCP
        assert (len(rt["corda_ms"]), len(rt["evm_ms"]), len(rt["relayer_lcp_ms"])) == (3, 2, 3)
        assert rt["end_to_end_ms"] >= sum(rt["corda_ms"]) + sum(rt["evm_ms"])


def test_an_unknown_scenario_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="the scenarios: balance, nft-gone"):
        run_dvp(tmp_path, fail_at="meteor")


def test_the_command_prints_one_json_object_and_lists_the_scenarios(tmp_path: Path) -> None:
    cli = [sys.executable, "-m", "kakehashi.cli.main", "demo", "dvp"]
    listed = subprocess.run(
        [*cli, "--fail-at", "list"], capture_output=True, env=child_env(), timeout=60, check=True
    )
    assert all(name in listed.stdout.decode() for name in SCENARIOS)
    done = subprocess.run(
        [*cli, "--json", "--dir", str(tmp_path)],
        capture_output=True,
        env=child_env(),
        timeout=180,
        check=True,
    )
    answer = json.loads(done.stdout)
    assert answer["ok"] and answer["outcome"] == "committed" and len(answer["tx_id"]) == 64
    assert {s["ledger"] for s in answer["steps"]} >= {"corda", "evm", "relayer"}
    assert set(answer["round_trip"]) >= {"corda_ms", "evm_ms", "relayer_lcp_ms", "overhead_ratio"}
    assert answer["final"]["nft_owner"] == answer["final"]["buyer_evm"]
