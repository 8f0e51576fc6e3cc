"""The logistics demo (``kakehashi demo logistics``): the daily contract-status update of
:mod:`kakehashi.apps.logistics.desk` on the in-process network (:mod:`kakehashi.ops.sandbox`:
the embedded EVM chain with the contract registry, an embedded Corda-model network of the
buyer — whose node runs the IBC host and is a party to the shipments — a carrier and an
outsider, the LCP service over HTTP, a relayer).

Two contracts are registered; the carrier records every delivery of the first and one of the
second's two; one daily run checks both: the first becomes ``delivered``, the second stays as it
was. The run's round trip is broken down as the seed analysis states it for this use case
(2 × Corda-model transaction + 3 × EVM transaction + 3 × relayer / LCP; the run also measures
the fourth hop that brings the decisions' acknowledgements back, and reports it); the day's
checks travel together, so each figure is for all of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from kakehashi.apps.logistics.deliveries import DeliveryCheckApp, record_delivery
from kakehashi.apps.logistics.desk import LogisticsDesk, status_key
from kakehashi.apps.result import DemoResult, DemoRun, Step
from kakehashi.cross.corda_apps import apps_factory
from kakehashi.cross.corda_module import CROSS_PORT
from kakehashi.cross.status import Decision
from kakehashi.cross.tx import ChannelInfo
from kakehashi.ledgers.evm import toolchain
from kakehashi.ledgers.evm.chain import dev_accounts
from kakehashi.ledgers.evm.client import transact
from kakehashi.ops.sandbox import OPERATOR, World, world

__all__ = ["CONTRACTS", "run_logistics"]

CARRIER = "O=Swift Carriers, L=Osaka, C=JP"
OUTSIDER = "O=Other Shipper, L=Busan, C=KR"
CONTRACTS = (("SC-2026-001", 2, 2), ("SC-2026-002", 2, 1))  # (id, expected, delivered)
FORMULA = (
    "2 x Corda-model transaction + 3 x EVM transaction + 3 x relayer/LCP (+ the hop bringing "
    "the decisions' acknowledgements back); the daily run's checks travel together, so each "
    "figure is for all of them"
)


def run_logistics(directory: Path, *, show: Callable[[Step], None] = lambda _: None) -> DemoResult:
    """Build the sandbox in ``directory`` and run one daily update (module docstring)."""
    with world(
        directory,
        cross=True,
        corda_nodes=(OPERATOR, CARRIER, OUTSIDER),
        cross_apps=apps_factory(DeliveryCheckApp),
    ) as w:
        return _Run(w, show).run()


class _Run(DemoRun):
    def __init__(self, w: World, show: Callable[[Step], None]) -> None:
        super().__init__(w, show)
        self.desk_account = dev_accounts()[0]

    def setting(self) -> LogisticsDesk:
        w = self.w
        assert w.record is not None
        registry = toolchain.deploy(w.w3, "apps/logistics", sender=self.desk_account)
        for contract_id, expected, _ in CONTRACTS:
            register = registry.functions.register(contract_id, expected)
            transact(w.w3, register, sender=self.desk_account)
        return LogisticsDesk(
            w.w3,
            w.kv,
            w.app,
            registry,
            self.desk_account,
            ChannelInfo(CROSS_PORT, w.record.a_channel_id),
        )

    def deliveries(self) -> None:
        carrier = self.w.network.node(CARRIER)
        buyer = self.w.network.node(OPERATOR).party
        for contract_id, _, delivered in CONTRACTS:
            for i in range(delivered):
                record_delivery(
                    carrier, contract_id, f"{contract_id}/S-{i + 1}", 40, [buyer],
                    delivered_at_ns=time.time_ns(),
                )  # fmt: skip

    def run(self) -> DemoResult:
        desk = self.step("contracts registered on the EVM chain", "evm", self.setting)
        self.step("the carrier records deliveries (Corda model)", "corda", self.deliveries)
        started = time.perf_counter()
        checks = self.step(
            "the daily run: a check per open contract (EVM chain)", "evm", desk.run_once
        )
        self.parts["evm"].append(self.steps[-1].seconds / max(1, len(checks)))
        evm_to_corda, corda_to_evm = self.relayer.directions()
        self.hop("the checks cross; the Corda model answers (prepare)", evm_to_corda, "corda")
        self.hop("the answers come back; the EVM chain decides", corda_to_evm, "evm")
        self.hop("the decisions cross (Corda model)", evm_to_corda, "corda")
        self.hop("their acknowledgements come back (EVM chain)", corda_to_evm, "evm")
        end_to_end = time.perf_counter() - started
        statuses = {
            contract_id: bytes(self.w.app.functions.value(status_key(contract_id)).call()).decode()
            or "open"
            for contract_id, _, _ in CONTRACTS
        }
        outcomes = {c.contract_id: desk.outcome(c) for c in checks}
        expected = {cid: ("delivered" if got == want else "open") for cid, want, got in CONTRACTS}
        ok = statuses == expected and all(
            outcomes[cid] is (Decision.COMMIT if expected[cid] == "delivered" else Decision.ABORT)
            for cid in outcomes
        )
        round_trip = self.breakdown(FORMULA, end_to_end) | {"checks": len(checks)}
        first = checks[0].tx.tx_id.hex() if checks else ""
        final = {
            "statuses": statuses,
            "outsider_states": len(self.w.network.node(OUTSIDER).db.query()),
        }
        ok = ok and final["outsider_states"] == 0
        outcome = "committed" if outcomes.get(CONTRACTS[0][0]) is Decision.COMMIT else "aborted"
        failure = "; ".join(
            f"{cid}: the Corda model holds fewer deliveries than expected: left open"
            for cid, d in outcomes.items()
            if d is Decision.ABORT
        )
        return DemoResult(ok, first, outcome, self.steps, round_trip, final, failure)
