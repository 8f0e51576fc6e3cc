"""Delivery records on the Corda-model ledger and the minimal-disclosure cross-chain call that
checks them (``kakehashi.apps.logistics.deliveries``), over the real LCP path: the EVM chain
marks a contract delivered only when the Corda ledger has the expected deliveries, and only the
contract id, the expected count and a yes / no cross the boundary."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kakehashi.apps.logistics.deliveries import (
    DELIVERY_CONTRACT,
    DeliveryRecordState,
    RecordDelivery,
    deliveries,
    deliveries_call,
)
from kakehashi.cross.corda_module import CROSS_PORT
from kakehashi.cross.kv import kv_call
from kakehashi.cross.packets import CrossAck, CrossPacket, PacketKind
from kakehashi.cross.status import Decision
from kakehashi.cross.tx import (
    Account,
    ChannelInfo,
    CommitProtocol,
    ContractTransaction,
    InitiateTx,
    Link,
    SignerKind,
)
from kakehashi.errors import KakehashiError
from kakehashi.ibc.types import Height
from kakehashi.ledgers.corda.model.crypto import random_bytes
from kakehashi.ledgers.corda.model.states import Command, TransactionState
from kakehashi.ledgers.corda.model.transactions import SignedTransaction, WireTransaction
from kakehashi.ledgers.evm.chain import dev_accounts
from kakehashi.ledgers.evm.client import transact
from tests.apps.logistics.support import CARRIER, OUTSIDER, deliver, logistics_world
from tests.relayer.support import OPERATOR, World

INITIATOR = dev_accounts()[0]


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with logistics_world(tmp_path) as built:
        yield built


def test_records_reach_the_shipment_parties_only(w: World) -> None:
    deliver(w, "C-1", "S-1")
    deliver(w, "C-2", "S-9")
    for name in (OPERATOR, CARRIER):
        assert [r.shipment_id for r in deliveries(w.network.node(name), "C-1")] == ["S-1"]
    assert deliveries(w.network.node(OUTSIDER), "C-1") == []
    assert w.network.node(OUTSIDER).db.query(DeliveryRecordState) == []


def test_the_contract_refuses_bad_records(w: World) -> None:
    carrier = w.network.node(CARRIER)
    buyer = w.network.node(OPERATOR).party
    notary = carrier.network.default_notary()

    def build(record: DeliveryRecordState, signer: object = None) -> None:
        key = (signer or carrier).party.owning_key  # type: ignore[attr-defined]
        wtx = WireTransaction.create(
            privacy_salt=random_bytes(32),
            network_parameters_hash=carrier.network.parameters.hash(),
            outputs=[TransactionState(record, DELIVERY_CONTRACT, notary)],
            commands=[Command(RecordDelivery(), (key,))],
        )
        stx = (signer or carrier).sign(SignedTransaction(wtx, ()))  # type: ignore[attr-defined]
        carrier.ledger_transaction(stx).verify(carrier.network.parameters)

    good = DeliveryRecordState(carrier.party, "C-1", "S-1", 3, 1, (buyer,))
    build(good)
    for bad, reason in [
        (DeliveryRecordState(carrier.party, "C-1", "S-1", 0, 1, (buyer,)), "positive quantity"),
        (DeliveryRecordState(carrier.party, "", "S-1", 3, 1, (buyer,)), "ids have"),
        (DeliveryRecordState(carrier.party, "C-1", "S-1", 3, 1, ()), "shared with"),
        (DeliveryRecordState(carrier.party, "C-1", "S-1", 3, 1, (carrier.party,)), "distinct"),
    ]:
        with pytest.raises(KakehashiError, match=reason):
            build(bad)
    with pytest.raises(KakehashiError, match="signed by its carrier"):
        build(good, signer=w.network.node(OPERATOR))


@pytest.mark.parametrize("delivered", [2, 1])
def test_the_evm_contract_becomes_delivered_only_as_the_records_say(
    w: World, delivered: int
) -> None:
    relayer = w.link()
    assert w.record is not None
    for i in range(delivered):
        deliver(w, "C-7", f"S-{i}")
    channel = ChannelInfo(CROSS_PORT, w.record.a_channel_id)
    me = (Account(SignerKind.LOCAL, bytes.fromhex(INITIATOR.address[2:])),)
    tx = InitiateTx(
        "kakehashi-evm",
        delivered,
        CommitProtocol.TPC,
        (
            ContractTransaction(
                channel, me, kv_call(b"status/C-7", b"delivered"), b"ok", (Link(1),)
            ),
            ContractTransaction(channel, me, deliveries_call("C-7", 2), b"yes"),
        ),
        Height(0, 10**6),
    )
    transact(w.w3, w.kv.functions.initiate(tx.encode(), 0), sender=INITIATOR)
    for _ in range(4):
        assert not relayer.relay_once().failed
    decision = Decision(w.kv.functions.coordination(tx.tx_id).call()[3])
    status = bytes(w.app.functions.value(b"status/C-7").call())
    if delivered == 2:
        assert decision is Decision.COMMIT and status == b"delivered"
    else:
        assert decision is Decision.ABORT and status == b""
    assert int(w.app.functions.locks_held().call()) == 0

    # what crossed the boundary, as the Corda host received and answered it: the question
    # (contract id, expected count) one way, yes / no (or the failure) the other
    (exchange,) = [
        (CrossPacket.decode(packet.data), CrossAck.decode(ack))
        for packet, ack in w.host.written_acks(CROSS_PORT, w.record.b_channel_id)
        if CrossPacket.decode(packet.data).tx_id == tx.tx_id
        and CrossPacket.decode(packet.data).kind is PacketKind.PREPARE
    ]
    question, answer = exchange
    assert question.view().part(1).call_info == deliveries_call("C-7", 2)
    if delivered == 2:
        assert answer.return_value == b"yes"
    else:
        assert answer.return_value == b"" and "declared" in answer.reason
    crossed = question.encode() + answer.encode()
    assert b"S-0" not in crossed and b"Swift" not in crossed  # no record, no carrier
