"""What an application demo reports: its steps and its result (``--json``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["DemoResult", "Step"]


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
