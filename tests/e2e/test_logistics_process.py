"""The logistics daily update (issue 7, use case 2) with every party its own process: contract
records on the EVM chain whose status follows the deliveries a carrier records on the Corda
model, checked by Two-Phase Commit cross transactions the EVM chain coordinates — with minimal
disclosure, then with full disclosure.

Processes, one network for the module (:class:`tests.e2e.use_cases.UseCaseNetwork`): the EVM
node, the Corda notary, the buyer's node (``corda serve --ibc``: the IBC host, a party of the
shipments), the carrier and an outsider (each ``corda serve``), the LCP service and the relayer.
The carrier records deliveries on its own node (``POST /rpc/logistics/deliveries``); the desk
runs ``kakehashi logistics deploy | register | run-now`` as processes against the EVM node.

Checked: the statuses on the EVM chain (``delivered`` where the deliveries match, unchanged
where they do not), the outsider's node holding nothing, and exactly what crossed the boundary
— the packets the EVM chain sent (the contract id and the expected count, no delivery record)
and the acknowledgements it took back (only ``b"yes"`` / ``b"no"``); with full disclosure
(contracts registered ``--full``, deliveries recorded with the carrier's ``kakehashi logistics
record``) the contract id only out, every record back, and the status the EVM chain derived
(``delivered`` / ``partial: n of m``), as ``kakehashi tx status`` shows it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from kakehashi.apps.logistics.deliveries import (
    decode_records,
    deliveries_call,
    full_deliveries_call,
)
from kakehashi.apps.logistics.desk import status_key
from kakehashi.cross.corda_module import CROSS_PORT
from kakehashi.cross.packets import AckStatus, CrossAck, CrossPacket, PacketKind
from kakehashi.ibc.corda_host.remote import RemoteCordaHost
from kakehashi.ibc.evm_host import EvmIbcHost
from kakehashi.ibc.types import Packet
from kakehashi.ledgers.evm.client import funded_accounts
from kakehashi.relayer.chains import CordaEndpoint
from tests.e2e.use_cases import HOST, UseCaseNetwork

ZERO = "0x" + "00" * 20  # reads only: no sender
BUYER = HOST  # the node running the IBC host is a party of every shipment
CARRIER = "O=Swift Carriers, L=Osaka, C=JP"
OUTSIDER = "O=Other Shipper, L=Busan, C=KR"
EXPECTED = {"C-1": 2, "C-2": 2}  # contract id -> deliveries that complete it


@dataclass
class Desk:
    """The logistics desk's view of the module's network."""

    net: UseCaseNetwork
    registry: str = ""
    shipments: list[str] = field(default_factory=list)

    def logistics(self, *args: str) -> Any:
        key = self.net.net.directory / "desk.key"
        if not key.exists():
            key.write_text(funded_accounts(n=3)[2].key.hex())
        common = ["--config", str(self.net.config), "--key", str(key)]
        return self.net.cli("logistics", *args, *common).stdout.decode()

    def deliver(self, contract_id: str, shipment: int, quantity: int = 40) -> None:
        """The carrier records a delivery on its own node, for the buyer."""
        shipment_id = f"{contract_id}/S-{shipment}"
        body = {
            "contract_id": contract_id,
            "shipment_id": shipment_id,
            "quantity": quantity,
            "parties": [BUYER],
        }
        self.net.ok(CARRIER, "POST", "/rpc/logistics/deliveries", body)
        self.shipments.append(shipment_id)

    def run_now(self) -> dict[str, str]:
        """``kakehashi logistics run-now``: each check's outcome by contract id."""
        import json

        where = ["--registry", self.registry, "--channel", self.net.record.a_channel_id]
        answer = json.loads(self.logistics("run-now", *where, "--wait", "90", "--json"))
        return {check["contract_id"]: check["outcome"] for check in answer["checks"]}

    def status(self, contract_id: str) -> bytes:
        return bytes(self.net.app.functions.value(status_key(contract_id)).call())

    def crossed(self) -> list[tuple[CrossPacket, bytes, CrossAck]]:
        """Every packet the EVM chain sent on its cross channel as its ``SendPacket`` logs
        show it (decoded, and its data), with the acknowledgement the Corda host wrote for it —
        the bytes the relayer carried back, which the EVM chain checked against the host's
        commitment (its ``AcknowledgePacket`` logs)."""
        net = self.net
        handler = EvmIbcHost(net.w3, net.net.deployment.handler, sender=ZERO).handler
        since = net.net.deployment.from_block

        def logged(event: str) -> list[Packet]:
            found = handler.events[event]().get_logs(from_block=since)
            return [
                p
                for p in (Packet.decode(bytes(e["args"]["packet"])) for e in found)
                if CROSS_PORT in (p.source_port, p.destination_port)
            ]

        sent = logged("SendPacket")
        assert logged("RecvPacket") == []  # the Corda ledger sent the EVM chain no packet
        acknowledged = {p.sequence for p in logged("AcknowledgePacket")}
        assert acknowledged == {p.sequence for p in sent}  # every one answered
        found = []
        with RemoteCordaHost(net.url(HOST)) as remote:
            acks = {
                w.packet.sequence: w.acknowledgement
                for w in CordaEndpoint(remote).acks_written(CROSS_PORT, net.record.b_channel_id)
            }
        for packet in sent:
            assert packet.source_channel == net.record.a_channel_id
            found.append(
                (
                    CrossPacket.decode(packet.data),
                    packet.data,
                    CrossAck.decode(acks[packet.sequence]),
                )
            )
        return found


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    net = UseCaseNetwork(tmp_path_factory.mktemp("logistics"), (CARRIER, OUTSIDER))
    try:
        net.start()
        yield Desk(net)
    finally:
        net.close()


def test_the_daily_update_sets_the_status_the_deliveries_support(desk: Desk) -> None:
    """Day one: C-1's deliveries are all recorded (delivered), C-2's only in part (unchanged).
    Day two: C-2's missing delivery arrives; the run checks only C-2, which is delivered."""
    net = desk.net
    desk.registry = desk.logistics("deploy").strip()
    for contract_id, count in EXPECTED.items():
        desk.logistics("register", contract_id, str(count), "--registry", desk.registry)
    desk.deliver("C-1", 1)
    desk.deliver("C-1", 2)
    desk.deliver("C-2", 1)  # one of two
    for party in (BUYER, CARRIER):  # a record is the carrier's and the shipment's parties'
        listed = net.ok(party, "GET", "/rpc/logistics/deliveries?contract_id=C-1")
        assert [d["shipment_id"] for d in listed["deliveries"]] == ["C-1/S-1", "C-1/S-2"]
        assert listed["deliveries"][0]["parties"] == [BUYER]

    assert desk.run_now() == {"C-1": "delivered", "C-2": "unchanged (deliveries missing)"}

    assert desk.status("C-1") == b"delivered"
    assert desk.status("C-2") == b""  # as it was
    _outsider_saw_nothing(net)
    _only_counts_out_and_yes_or_no_back(desk, {"C-1": [b"yes"], "C-2": [b"no"]})

    desk.deliver("C-2", 2)  # day two: the missing delivery arrives

    assert desk.run_now() == {"C-2": "delivered"}  # C-1 is delivered: not checked again

    assert desk.status("C-1") == desk.status("C-2") == b"delivered"
    _outsider_saw_nothing(net)
    _only_counts_out_and_yes_or_no_back(desk, {"C-1": [b"yes"], "C-2": [b"no", b"yes"]})


def test_full_disclosure_brings_every_record_and_the_status_they_support(desk: Desk) -> None:
    """C-3 (two deliveries expected, both recorded) and C-4 (two expected, one recorded),
    registered with full disclosure: both checks commit, C-3 ``delivered``, C-4 ``partial: 1
    of 2``; the Corda host was asked for the contract id only and answered with the records."""
    import json

    net = desk.net
    if not desk.registry:
        desk.registry = desk.logistics("deploy").strip()
    for contract_id in ("C-3", "C-4"):
        desk.logistics("register", contract_id, "2", "--registry", desk.registry, "--full")
    carrier = ["--node", net.url(CARRIER), "--token-file", str(net.net.node_token_file(CARRIER))]
    for contract_id, shipment in (("C-3", 1), ("C-3", 2), ("C-4", 1)):
        shipment_id = f"{contract_id}/S-{shipment}"
        recorded = net.cli_json(
            "logistics", "record", contract_id, shipment_id, "7", "--party", BUYER, *carrier
        )  # fmt: skip
        assert len(recorded["tx_id"]) == 64
        desk.shipments.append(shipment_id)

    outcomes = desk.run_now()
    assert outcomes == {"C-3": "delivered", "C-4": "partial: 1 of 2"}
    assert desk.status("C-3") == b"delivered" and desk.status("C-4") == b"partial: 1 of 2"
    _outsider_saw_nothing(net)

    asked = {
        cid: (cross, ack)
        for cross, data, ack in desk.crossed()
        if cross.kind is PacketKind.PREPARE
        for cid in ("C-3", "C-4")
        if full_deliveries_call(cid) in data
    }
    for contract_id, count in (("C-3", 2), ("C-4", 1)):
        cross, ack = asked[contract_id]
        assert not cross.view().revealed(0)  # the EVM chain's own part: only its digest
        answered_id, rows = decode_records(ack.return_value)
        assert answered_id == contract_id
        assert [(r[0], r[1], r[3]) for r in rows] == [
            (f"{contract_id}/S-{i + 1}", 7, CARRIER) for i in range(count)
        ]
        shown = json.loads(
            net.cli("tx", "status", cross.tx_id.hex(), "--config", str(net.config), "--json").stdout
        )
        events = [e["event"] for e in shown["evm"]["timeline"]]
        status = "delivered" if count == 2 else "partial: 1 of 2"
        assert f"part 0 takes part 1's answer: '{status}'" in events, events


def _outsider_saw_nothing(net: UseCaseNetwork) -> None:
    assert net.vault(OUTSIDER) == [] and net.transactions(OUTSIDER) == []
    listed = net.ok(OUTSIDER, "GET", "/rpc/logistics/deliveries?contract_id=C-1")
    assert listed == {"deliveries": []}


def _only_counts_out_and_yes_or_no_back(desk: Desk, answers: dict[str, list[bytes]]) -> None:
    """What the EVM chain sent across and took back (module docstring): each PREPARE carries
    the contract id and the expected count for the Corda part and no delivery record; each
    answer is b"yes" (the part's value) or b"no" (the part then fails its prepare: a FAILED
    acknowledgement saying it returned b"no", not the declared b"yes"); a DECIDE's
    acknowledgement is empty. ``answers``: each contract's answers, in order."""
    crossed = desk.crossed()
    found: dict[str, list[bytes]] = {}
    for cross, data, ack in crossed:
        assert cross.kind in (PacketKind.PREPARE, PacketKind.DECIDE)
        for shipment in desk.shipments:  # no record's content crosses, either way
            assert shipment.encode() not in data and shipment not in ack.reason
        assert CARRIER.encode() not in data and CARRIER not in ack.reason
        if cross.kind is PacketKind.DECIDE:
            assert (ack.status, ack.return_value) == (AckStatus.OK, b"")
            continue
        assert cross.index == 1  # the Corda ledger's part
        if any(full_deliveries_call(cid) in data for cid in ("C-3", "C-4")):
            continue  # the full-disclosure test's
        (contract_id,) = [
            cid for cid, n in EXPECTED.items() if deliveries_call(cid, n) in cross.payload
        ]
        if ack.status is AckStatus.OK:
            answer = ack.return_value
        else:
            assert ack.return_value == b""
            assert f"returned 0x{b'no'.hex()}," in ack.reason, ack.reason
            answer = b"no"
        found.setdefault(contract_id, []).append(answer)
    assert found == answers
