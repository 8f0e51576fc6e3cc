"""The logistics demo (``kakehashi demo logistics``): the daily contract-status update of
:mod:`kakehashi.apps.logistics.desk` on the in-process network (:mod:`kakehashi.ops.sandbox`:
the embedded EVM chain with the contract registry, an embedded Corda-model network of the
buyer — whose node runs the IBC host and is a party to the shipments — a carrier and an
outsider, the LCP service over HTTP, a relayer).

Four contracts are registered, two per privacy pattern; the carrier records every delivery of
the first of each pattern and only some of the second's; one daily run checks all four. With
minimal disclosure the first becomes ``delivered`` and the second stays as it was (its check
aborts); with full disclosure both checks commit, the first ``delivered``, the second
``partial: n of m`` — the EVM chain saw the records. ``final.crossed`` shows, per contract,
exactly what crossed the boundary: the call the Corda host received and the answer it sent
back. The run's round trip is broken down as the seed analysis states it for this use case
(2 × Corda-model transaction + 3 × EVM transaction + 3 × relayer / LCP; the run also measures
the fourth hop that brings the decisions' acknowledgements back, and reports it); the day's
checks travel together, so each figure is for all of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kakehashi.apps.logistics.deliveries import (
    FULL,
    DeliveryCheckApp,
    decode_deliveries_call,
    decode_records,
    record_delivery,
)
from kakehashi.apps.logistics.desk import LogisticsDesk, status_key
from kakehashi.apps.result import DemoResult, DemoRun, Step, check_scenario
from kakehashi.cross.corda_apps import apps_factory
from kakehashi.cross.corda_module import CROSS_PORT
from kakehashi.cross.packets import CrossAck, CrossPacket, PacketKind
from kakehashi.cross.status import Decision
from kakehashi.cross.tx import ChannelInfo
from kakehashi.ledgers.evm import toolchain
from kakehashi.ledgers.evm.chain import dev_accounts
from kakehashi.ledgers.evm.client import transact
from kakehashi.ops.sandbox import OPERATOR, World, world

__all__ = ["CONTRACTS", "SCENARIOS", "run_logistics"]

CARRIER = "O=Swift Carriers, L=Osaka, C=JP"
OUTSIDER = "O=Other Shipper, L=Busan, C=KR"
# (id, expected, delivered, full disclosure)
CONTRACTS = (
    ("SC-2026-001", 2, 2, False),
    ("SC-2026-002", 2, 1, False),
    ("SC-2026-003", 2, 2, True),
    ("SC-2026-004", 3, 1, True),
)
FORMULA = (
    "2 x Corda-model transaction + 3 x EVM transaction + 3 x relayer/LCP (+ the hop bringing "
    "the decisions' acknowledgements back); the daily run's checks travel together, so each "
    "figure is for all of them"
)


SCENARIOS = {
    "deliveries-missing": "the carrier recorded no delivery: every minimal-disclosure check "
    "aborts (status unchanged), every full-disclosure one reports partial: 0 of n",
    "relayer-crash": "the relayer is killed once the checks crossed; a new one completes them",
}


def run_logistics(
    directory: Path,
    *,
    show: Callable[[Step], None] = lambda _: None,
    contracts: tuple[tuple[str, int, int, bool], ...] = CONTRACTS,
    fail_at: str | None = None,
) -> DemoResult:
    """Build the sandbox in ``directory`` and run one daily update (module docstring) of
    ``contracts`` ((id, deliveries expected, deliveries recorded, full disclosure), default
    :data:`CONTRACTS`), or a failure scenario of :data:`SCENARIOS`."""
    check_scenario(fail_at, SCENARIOS)
    if fail_at == "deliveries-missing":
        contracts = tuple((cid, want, 0, full) for cid, want, _, full in contracts)
    with world(
        directory,
        cross=True,
        corda_nodes=(OPERATOR, CARRIER, OUTSIDER),
        cross_apps=apps_factory(DeliveryCheckApp),
    ) as w:
        return _Run(w, show, contracts, fail_at).run()


class _Run(DemoRun):
    def __init__(
        self,
        w: World,
        show: Callable[[Step], None],
        contracts: tuple[tuple[str, int, int, bool], ...],
        fail_at: str | None = None,
    ) -> None:
        super().__init__(w, show)
        self.contracts, self.fail_at = contracts, fail_at
        self.desk_account = dev_accounts()[0]

    def setting(self) -> LogisticsDesk:
        w = self.w
        assert w.record is not None
        registry = toolchain.deploy(w.w3, "apps/logistics", sender=self.desk_account)
        for contract_id, expected, _, full in self.contracts:
            functions = registry.functions
            register = (functions.register_full if full else functions.register)(
                contract_id, expected
            )
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
        for contract_id, _, delivered, _ in self.contracts:
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
        if self.fail_at == "relayer-crash":
            self.step("   the relayer is killed; a new one starts", "relayer", self.restart)
        self.hop("the answers come back; the EVM chain decides", corda_to_evm, "evm")
        self.hop("the decisions cross (Corda model)", evm_to_corda, "corda")
        self.hop("their acknowledgements come back (EVM chain)", corda_to_evm, "evm")
        end_to_end = time.perf_counter() - started
        statuses = {
            contract_id: bytes(self.w.app.functions.value(status_key(contract_id)).call()).decode()
            or "open"
            for contract_id, _, _, _ in self.contracts
        }
        outcomes = {c.contract_id: desk.outcome(c) for c in checks}
        expected = {
            cid: "delivered" if got == want else (f"partial: {got} of {want}" if full else "open")
            for cid, want, got, full in self.contracts
        }
        committed = {
            cid: full or got == want for cid, want, got, full in self.contracts if cid in outcomes
        }
        ok = statuses == expected and all(
            outcomes[cid] is (Decision.COMMIT if committed[cid] else Decision.ABORT)
            for cid in outcomes
        )
        round_trip = self.breakdown(FORMULA, end_to_end) | {"checks": len(checks)}
        first = checks[0].tx.tx_id.hex() if checks else ""
        final = {
            "statuses": statuses,
            "crossed": self.crossed({c.tx.tx_id: c.contract_id for c in checks}),
            "outsider_states": len(self.w.network.node(OUTSIDER).db.query()),
        }
        ok = ok and final["outsider_states"] == 0
        outcome = (
            "committed" if outcomes.get(self.contracts[0][0]) is Decision.COMMIT else "aborted"
        )
        wanted = {cid: want for cid, want, _, _ in self.contracts}
        failure = "; ".join(
            f"{cid}: part 1 on the Corda model ({OPERATOR}'s vault) answered no — fewer than "
            f"the {wanted[cid]} deliveries expected; the status on the EVM chain stays as it was"
            for cid, d in outcomes.items()
            if d is Decision.ABORT
        )
        return DemoResult(ok, first, outcome, self.steps, round_trip, final, failure)

    def restart(self) -> None:
        self.relayer = self.w.relayer()

    def crossed(self, contracts: dict[bytes, str]) -> dict[str, dict[str, Any]]:
        """Per contract, what the Corda host received (the call of the part it ran) and what it
        answered, as read back from the host's written acknowledgements."""
        w = self.w
        assert w.record is not None
        seen: dict[str, dict[str, Any]] = {}
        for packet, raw in w.host.written_acks(CROSS_PORT, w.record.b_channel_id):
            question = CrossPacket.decode(packet.data)
            if question.kind is not PacketKind.PREPARE or question.tx_id not in contracts:
                continue
            part = question.view().part(question.index)
            contract_id, mode, count = decode_deliveries_call(part.call_info)
            answer = CrossAck.decode(raw)
            entry: dict[str, Any] = {
                "pattern": "full" if mode == FULL else "minimal",
                "sent": {"contract_id": contract_id}
                | ({} if mode == FULL else {"expected": count}),
            }
            if mode == FULL and answer.return_value:
                _, rows = decode_records(answer.return_value)
                entry["answered"] = [
                    {"shipment": s, "quantity": q, "delivered_at_ns": t, "carrier": c}
                    for s, q, t, c in rows
                ]
            else:
                entry["answered"] = answer.return_value.decode() or f"failed: {answer.reason}"
            seen[contracts[question.tx_id]] = entry
        return seen
