"""How the application benchmarks print a round trip broken down as the seed analysis states it
(``kakehashi.apps.result.DemoRun.breakdown``)."""

from __future__ import annotations

from typing import Any


def print_breakdown(title: str, rt: dict[str, Any]) -> None:
    """``title``, then each component measured, their sum, the end-to-end time and the overhead
    ratio."""
    print(title)
    print(f"  Corda-model transactions (ms): {rt['corda_ms']}")
    print(f"  EVM transactions (ms):         {rt['evm_ms']}")
    print(f"  relayer / LCP hops (ms):       {rt['relayer_lcp_ms']}")
    print(
        f"  sum {rt['sum_ms']} ms; end to end {rt['end_to_end_ms']} ms; overhead ratio "
        f"(end to end / ledgers' transactions) {rt['overhead_ratio']}"
    )
