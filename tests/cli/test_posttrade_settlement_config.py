"""settlement.json of a post-trade network (kakehashi.cli.posttrade_dvp.load_settlement) and how
a decided cross transaction becomes an ISO 20022 settlement status (outcome_from)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kakehashi.apps.posttrade.settlement import SettlementOrder, SettlementParty, outcome_from
from kakehashi.cli.posttrade_dvp import load_settlement
from kakehashi.cross.status import Decision
from kakehashi.errors import ConfigurationError


def _config(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "relayer_config": "cross-relayer.toml",
        "network_map": "corda/network-map.toml",
        "host": {"operator": "O=Bank A, L=London, C=GB", "token_file": "bank/rpc.token"},
        "agents": {
            "BOTKJPJT": {
                "party": "custodian",
                "corda": "O=Domestic Custodian, L=Tokyo, C=JP",
                "node": "http://127.0.0.1:9001",
                "token_file": "custodian/rpc.token",
                "key_file": "custodian/identity.key",
            },
            "MHCBJPJT": {"party": "securities", "corda": "O=Domestic Securities, L=Tokyo, C=JP"},
        },
        "securities": {"JP3633400001": {"token": "0x" + "11" * 20, "decimals": 0}},
        "cash": {"JPY": {"issuer": "O=Bank A, L=London, C=GB", "token": "JPYC"}},
    }
    base.update(changes)
    return base


def test_no_file_means_settlement_by_hand(tmp_path: Path) -> None:
    assert load_settlement(tmp_path) is None


def test_a_configuration_is_read_with_paths_relative_to_the_directory(tmp_path: Path) -> None:
    (tmp_path / "settlement.json").write_text(json.dumps(_config()))
    config = load_settlement(tmp_path)
    assert config is not None
    assert config.relayer_config == (tmp_path / "cross-relayer.toml").resolve()
    assert config.host_token_file == (tmp_path / "bank" / "rpc.token").resolve()
    assert config.timeout_s == 600
    custodian = config.agents["BOTKJPJT"]
    assert (custodian.party, custodian.node) == ("custodian", "http://127.0.0.1:9001")
    assert custodian.key_file == (tmp_path / "custodian" / "identity.key").resolve()
    assert config.agents["MHCBJPJT"].node is None  # the delivering side signs on the EVM chain
    assert config.securities.token("JP3633400001").address == b"\x11" * 20
    assert config.cash["JPY"].fraction_digits == 0


@pytest.mark.parametrize(
    ("broken", "why"),
    [
        ("{not json", "not a settlement configuration"),
        (json.dumps(_config(host={})), "KeyError"),
        (json.dumps(_config(securities={"X": {"token": "0x12"}})), "20 bytes"),
        (json.dumps(_config(securities={"X": {"token": "zz"}})), "ValueError"),
        (json.dumps(_config(agents=[])), "AttributeError"),
        (json.dumps(_config(timeout_s=0)), "timeout_s must be positive"),
    ],
)
def test_a_broken_configuration_is_a_configuration_error(
    tmp_path: Path, broken: str, why: str
) -> None:
    (tmp_path / "settlement.json").write_text(broken)
    with pytest.raises(ConfigurationError, match=why):
        load_settlement(tmp_path)


ORDER = SettlementOrder(
    "AM-1",
    "JP3633400001",
    Decimal(1000),
    Decimal(2850500),
    "JPY",
    SettlementParty("O=Domestic Securities, L=Tokyo, C=JP", b"\x05" * 20),
    SettlementParty("O=Domestic Custodian, L=Tokyo, C=JP", b"\x04" * 20),
)
TX = b"\x99" * 32


def test_commit_is_sett_and_undecided_is_pend() -> None:
    settled = outcome_from(ORDER, TX, Decision.COMMIT, {})
    assert (settled.status.value, settled.reason, settled.settled) == ("SETT", None, True)
    pending = outcome_from(ORDER, TX, Decision.UNKNOWN, {})
    assert (pending.status.value, pending.reason) == ("PEND", None)


def test_a_cash_part_with_no_deposit_is_mony() -> None:
    why = {0: "no deposit for part 0 on O=Bank A: the holder must first deposit 2850500 JPYC"}
    failed = outcome_from(ORDER, TX, Decision.ABORT, why, securities_held=1000, securities_due=1000)
    assert (failed.status.value, failed.reason) == ("PENF", "MONY")
    assert "O=Domestic Custodian" in failed.message and "no deposit" in failed.message


def test_a_securities_part_short_of_shares_is_lack_and_otherwise_othr() -> None:
    why = {1: "ERC20: transfer amount exceeds balance"}
    lack = outcome_from(ORDER, TX, Decision.ABORT, why, securities_held=400, securities_due=1000)
    assert (lack.status.value, lack.reason) == ("PENF", "LACK")
    assert "holds 400 of the 1000" in lack.message
    other = outcome_from(ORDER, TX, Decision.ABORT, why, securities_held=1000, securities_due=1000)
    assert (other.status.value, other.reason) == ("PENF", "OTHR")
    assert "part 1 (EVM chain)" in other.message
    timed_out = outcome_from(ORDER, TX, Decision.ABORT, {})
    assert timed_out.reason == "OTHR" and "timed out" in timed_out.message
    odd_cash = outcome_from(ORDER, TX, Decision.ABORT, {0: "the deposit is not what it moves"})
    assert odd_cash.reason == "OTHR"  # a cash part failing otherwise is no lack of money
