"""Benchmark of the daily contract-status update (issue 7, use case 2; printed figures, never
asserted).

On the in-process network of ``kakehashi demo logistics`` (``kakehashi.ops.sandbox``: embedded
EVM chain with the contract registry, embedded Corda-model network with the host, a carrier and
an outsider, the LCP service over HTTP, one relayer): one contract's check, once per privacy
pattern, its round trip broken down as the seed analysis states it — 2 × Corda-model
transaction + 3 × EVM transaction + 3 × relayer / LCP — each component measured, their sum,
the end-to-end time and the overhead ratio (end to end / the ledgers' transactions); then a
whole day of four contracts (both patterns, delivered and not) checked together.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from breakdown import print_breakdown

from kakehashi.apps.logistics.demo import CONTRACTS, run_logistics


def main() -> None:
    started = time.perf_counter()
    print("== Logistics: a contract's status from the Corda model's delivery records (one")
    print("   process: embedded EVM chain, embedded Corda network, LCP service, relayer)")
    with tempfile.TemporaryDirectory(prefix="kakehashi-logistics-") as tmp:
        run_logistics(Path(tmp) / "warm-up", contracts=(("C-W", 1, 1, True),))  # not measured
        for name, contract in (
            ("minimal disclosure", ("C-MIN", 2, 2, False)),
            ("full disclosure", ("C-FULL", 2, 2, True)),
        ):
            result = run_logistics(Path(tmp) / name.split()[0], contracts=(contract,))
            rt = result.round_trip
            print_breakdown(f"one check, {name} ({result.outcome}): {rt['formula']}", rt)
        day = run_logistics(Path(tmp) / "day", contracts=CONTRACTS)
        print_breakdown(f"a day of {len(CONTRACTS)} checks together (ok: {day.ok})", day.round_trip)
        for contract_id, status in day.final["statuses"].items():
            print(f"  {contract_id}: {status}")
    print(f"(benchmark wall time {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
