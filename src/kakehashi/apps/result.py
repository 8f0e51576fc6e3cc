"""What an application demo reports (its steps and its result, ``--json``) and how it runs."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kakehashi.errors import ConfigurationError
from kakehashi.relayer.path import Direction, RoundReport

__all__ = ["DemoResult", "DemoRun", "Step", "check_scenario"]


def check_scenario(fail_at: str | None, scenarios: dict[str, str]) -> None:
    """ConfigurationError unless ``fail_at`` is None or one of a demo's ``scenarios``."""
    if fail_at is not None and fail_at not in scenarios:
        raise ConfigurationError(
            f"no failure scenario {fail_at!r}; the scenarios: {', '.join(scenarios)}"
        )


@dataclass
class Step:
    name: str
    ledger: str  # "corda", "evm", "relayer", "both"
    seconds: float


@dataclass
class DemoResult:
    ok: bool
    tx_id: str
    outcome: str  # committed, aborted, expired
    steps: list[Step] = field(default_factory=list)
    round_trip: dict[str, Any] = field(default_factory=dict)
    final: dict[str, Any] = field(default_factory=dict)
    failure: str = ""  # which party, which ledger, why

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "tx_id": self.tx_id,
            "outcome": self.outcome,
            "steps": [s.__dict__ for s in self.steps],
            "round_trip": self.round_trip,
            "final": self.final,
            "failure": self.failure,
        }


class DemoRun:
    """A demo's run on a linked sandbox (``kakehashi.ops.sandbox.World``): each step timed,
    shown and recorded; each relayer hop split into relayer / LCP time (its reads and LCP
    calls) and the destination ledger's transaction (its submission), for the round-trip
    breakdown."""

    def __init__(self, w: Any, show: Callable[[Step], None]) -> None:
        self.w, self.show = w, show
        self.steps: list[Step] = []
        self.relayer = w.link()
        self.parts: dict[str, list[float]] = {"corda": [], "evm": [], "relayer": []}

    def step(self, name: str, ledger: str, action: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        result = action()
        step = Step(name, ledger, time.perf_counter() - started)
        self.steps.append(step)
        self.show(step)
        return result

    def timed(self, ledger: str, action: Callable[[], Any]) -> Callable[[], Any]:
        """``action``, its time counted as one of ``ledger``'s transactions."""

        def run() -> Any:
            started = time.perf_counter()
            try:
                return action()
            finally:
                self.parts[ledger].append(time.perf_counter() - started)

        return run

    def hop(self, name: str, direction: Direction, ledger: str) -> RoundReport:
        report: RoundReport = self.step(
            name, "relayer", lambda: self.relayer.relay_direction(direction)
        )
        relayed = report.timings.get("query", 0.0) + report.timings.get("lcp", 0.0)
        self.parts["relayer"].append(relayed)
        self.parts[ledger].append(report.timings.get("submit", 0.0))
        return report

    def breakdown(self, formula: str, end_to_end: float) -> dict[str, Any]:
        """Each component measured (ms), their sum, the end-to-end time, the overhead ratio
        (end to end / the ledgers' transactions)."""
        ms = {k: [round(v * 1000, 1) for v in vs] for k, vs in self.parts.items()}
        ledgers = sum(sum(v) for k, v in self.parts.items() if k != "relayer")
        return {
            "formula": formula,
            "corda_ms": ms["corda"],
            "evm_ms": ms["evm"],
            "relayer_lcp_ms": ms["relayer"],
            "sum_ms": round((ledgers + sum(self.parts["relayer"])) * 1000, 1),
            "end_to_end_ms": round(end_to_end * 1000, 1),
            "overhead_ratio": round(end_to_end / ledgers, 2) if ledgers else None,
        }
