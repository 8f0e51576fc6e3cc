"""Benchmark of post-trade (issue 8; printed figures, never asserted) on the network of processes
``kakehashi posttrade up`` starts (EVM node, notary, bank / IBC host, custodian, securities
company and outsider Corda nodes, LCP service, relayer — each its own process on 127.0.0.1).

For a handful of trades, each step as the parties take it through the client library (what the
``kakehashi posttrade`` commands run): the workflow to the final OK (two instructions entered,
matched, three approvals: eight EVM transactions, each envelope sealed / opened with HPKE), then
the settlement — the CSD starts the DVP (initiate at the host, PEND on the chain), the custodian
consents (deposit on its node, Corda signature), the securities company consents (ERC-20
approval, SIGN on the EVM chain), the relayer and host decide, the CSD records SETT. Medians and
the time from the final OK to SETT recorded; then the wall time of one ``kakehashi posttrade``
command as a process (what a person at a terminal waits for, start-up included).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from kakehashi.apps.posttrade.codes import Direction
from kakehashi.apps.posttrade.demo import SHARES, sample_instruction
from kakehashi.apps.posttrade.form import Form
from kakehashi.cli.ping import child_env
from kakehashi.cli.posttrade import open_network
from kakehashi.cli.posttrade_dvp import SettlementDesk, load_settlement
from kakehashi.cli.posttrade_up import start_settlement_network

TRADES = 5
ROUTE = ("custodian", "securities", "csd")


def _timed(into: dict[str, list[float]], name: str, action: Callable[[], Any]) -> Any:
    began = time.perf_counter()
    result = action()
    into.setdefault(name, []).append((time.perf_counter() - began) * 1000)
    return result


def main() -> None:
    started = time.perf_counter()
    print("== Post-trade: workflow and settlement on the network of processes of")
    print("   `kakehashi posttrade up` (EVM node, 5 Corda processes, LCP, relayer)")
    with tempfile.TemporaryDirectory(prefix="kakehashi-posttrade-") as tmp:
        t0 = time.perf_counter()
        network = start_settlement_network(Path(tmp) / "net")
        print(f"network up in {time.perf_counter() - t0:.1f} s")
        try:
            price = int(sample_instruction().settlement_amount)
            network.issue_yen(price * TRADES)
            config = load_settlement(network.posttrade)
            assert config is not None
            with open_network(network.posttrade) as net:
                network.give_shares(SHARES * TRADES, net.parties["securities"]["account"])
                desk = SettlementDesk(net, config)
                ledgers = {name: net.ledger(name) for name in net.parties}
                steps: dict[str, list[float]] = {}
                outcomes = []
                for n in range(TRADES + 1):  # the first is a warm-up, not measured
                    into: dict[str, list[float]] = {} if n == 0 else steps
                    fid, counter = f"B-{n}", f"B-{n}-DELI"
                    ours = Form(fid, 1, sample_instruction(), ROUTE, "asset-manager")
                    deli = sample_instruction(Direction.DELI)
                    theirs = Form(counter, 1, deli, ("csd",), "securities")
                    timed = partial(_timed, into)
                    timed("submit (seal, EVM tx)", partial(ledgers["asset-manager"].submit, ours))
                    ledgers["securities"].submit(theirs)
                    match = partial(ledgers["csd"].match_counterpart, fid, counter)
                    timed("match (open both, EVM tx)", match)
                    for who in ROUTE:
                        timed("approve (open, check, EVM tx)", partial(ledgers[who].approve, fid))
                    ok = time.perf_counter()
                    timed("settle: start (initiate, PEND)", partial(desk.start, fid, "csd"))
                    timed("consent: custodian pays", partial(desk.consent, fid, "custodian"))
                    timed("consent: securities delivers", partial(desk.consent, fid, "securities"))
                    finish = partial(desk.finish, fid, "csd", wait_s=120)
                    done = timed("decided and SETT recorded", finish)
                    into.setdefault("final OK → SETT recorded", []).append(
                        (time.perf_counter() - ok) * 1000
                    )
                    if n:
                        outcomes.append(done.outcome.status.value if done.outcome else "PEND")
            command = [sys.executable, "-m", "kakehashi.cli.main", "posttrade", "show", "B-1"]
            command += ["--as", "custodian", "--dir", str(network.posttrade), "--json"]
            walls = []
            for _ in range(3):
                began = time.perf_counter()
                subprocess.run(command, capture_output=True, env=child_env(), check=True)
                walls.append((time.perf_counter() - began) * 1000)
        finally:
            network.close()
    print(f"{TRADES} trades, outcomes: {', '.join(outcomes)}")
    print(f"{'step':<34}{'median ms':>10}{'min ms':>10}{'max ms':>10}")
    for name, values in steps.items():
        print(
            f"{name:<34}{statistics.median(values):>10.1f}{min(values):>10.1f}{max(values):>10.1f}"
        )
    print(
        f"one `kakehashi posttrade show` process (start-up included): median "
        f"{statistics.median(walls):.0f} ms"
    )
    print(f"(benchmark wall time {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
