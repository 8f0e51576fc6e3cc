"""Delivery records on the Corda-model ledger, and the cross-chain call that checks them.

**Records.** A carrier writes a :class:`DeliveryRecordState` (contract id, shipment id,
quantity, time delivered) for the parties of that shipment: the record's participants are the
carrier and those parties, so :func:`record_delivery` (a notarised transaction finalised to
them) puts it in their vaults and in no one else's. A record is never changed or consumed.

**The call** (op :data:`OP_DELIVERIES`, run by :class:`DeliveryCheckApp` on a Corda IBC host whose
operator is a party of the shipments): ``abi.encode(uint8 48, bytes contract_id, bytes
abi.encode(uint8 mode, uint32 expected))``, in one of two privacy patterns:

* *minimal disclosure* (:data:`MINIMAL`, :func:`deliveries_call`): the contract id and the
  number of deliveries expected cross the boundary, and the answer is only ``b"yes"`` (that many
  records for the contract in the operator's vault) or ``b"no"``; no record leaves the ledger. A
  part that declared ``b"yes"`` and gets ``b"no"`` fails its prepare and the whole cross
  transaction aborts (a contract record on the other ledger never shows a status this ledger
  does not support);
* *full disclosure* (:data:`FULL`, :func:`full_deliveries_call`, ``expected`` 0): only the
  contract id crosses, and the answer is every delivery record of the contract,
  ``abi.encode(string contract_id, (string shipment_id, uint64 quantity, uint64 delivered_at_ns,
  string carrier)[] records)`` oldest first (:func:`encode_records` / :func:`decode_records`)
  — at most :data:`MAX_ANSWER` bytes, one acknowledgement; a contract with more records than
  fit fails its check with a reason saying so. The part declares no return value: the
  coordinating ledger's own part takes the answer (a late link) and derives the status from it.

The part reads and changes nothing, so it holds no lock: records are never changed or consumed,
so the answer stays true (a record added later only makes a later check see more).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_abi.exceptions import DecodingError

from kakehashi.cross.packets import MAX_ANSWER
from kakehashi.cross.participant import PartCall
from kakehashi.cross.tx import CrossTxError
from kakehashi.errors import InvalidTransactionError
from kakehashi.ibc.corda_host.host import CordaIbcHost
from kakehashi.ledgers.corda.model.contracts import contract, require
from kakehashi.ledgers.corda.model.crypto import random_bytes
from kakehashi.ledgers.corda.model.identity import Party
from kakehashi.ledgers.corda.model.serialization import serializable
from kakehashi.ledgers.corda.model.states import (
    Command,
    CommandData,
    ContractState,
    TransactionState,
)
from kakehashi.ledgers.corda.model.transactions import (
    LedgerTransaction,
    SignedTransaction,
    WireTransaction,
)
from kakehashi.ledgers.corda.node.node import Node

__all__ = [
    "DELIVERY_CONTRACT",
    "FULL",
    "MAX_ANSWER",
    "MINIMAL",
    "OP_DELIVERIES",
    "DeliveryCheckApp",
    "DeliveryRecordState",
    "RecordDelivery",
    "decode_deliveries_call",
    "decode_records",
    "deliveries",
    "deliveries_call",
    "encode_records",
    "full_deliveries_call",
    "record_delivery",
]

DELIVERY_CONTRACT = "kakehashi.logistics.DeliveryContract"
OP_DELIVERIES = 48
MINIMAL, FULL = 1, 2
MAX_ID = 64
MAX_CARRIER = 256  # bytes of a carrier's X.500 name in an answer
_RECORDS_ABI = ["string", "(string,uint64,uint64,string)[]"]
YES, NO = b"yes", b"no"


@serializable("logistics.DeliveryRecord")
@dataclass(frozen=True, slots=True)
class DeliveryRecordState(ContractState):
    """One delivery of a shipment under a contract, shared by the carrier with the parties."""

    carrier: Party
    contract_id: str
    shipment_id: str
    quantity: int
    delivered_at_ns: int
    parties: tuple[Party, ...]

    @property
    def participants(self) -> tuple[Party, ...]:
        return (self.carrier, *self.parties)


@serializable("logistics.RecordDelivery")
@dataclass(frozen=True, slots=True)
class RecordDelivery(CommandData):
    """A carrier records deliveries."""


@contract(DELIVERY_CONTRACT)
class DeliveryContract:
    """Records are only created (never consumed), each by its carrier, with its ids and
    parties well formed."""

    def verify(self, tx: LedgerTransaction) -> None:
        require(not tx.inputs_of_type(DeliveryRecordState), "a delivery record is never consumed")
        created = tx.outputs_of_type(DeliveryRecordState)
        commands = tx.commands_of_type(RecordDelivery)
        require(len(commands) == 1, "recording deliveries needs one RecordDelivery command")
        require(bool(created), "recording deliveries creates at least one record")
        signers = set(commands[0].signers)
        for record in created:
            require(record.carrier.owning_key in signers, "a record is signed by its carrier")
            require(
                0 < len(record.contract_id) <= MAX_ID and 0 < len(record.shipment_id) <= MAX_ID,
                f"contract and shipment ids have 1 to {MAX_ID} characters",
            )
            require(0 < record.quantity < 2**64, "a delivery has a positive quantity (uint64)")
            require(0 <= record.delivered_at_ns < 2**64, "a delivery time is a uint64 (ns)")
            require(bool(record.parties), "a record is shared with the shipment's parties")
            require(
                len(set(record.parties)) == len(record.parties)
                and record.carrier not in record.parties,
                "a record's parties are distinct and other than its carrier",
            )


def record_delivery(
    carrier: Node,
    contract_id: str,
    shipment_id: str,
    quantity: int,
    parties: Sequence[Party],
    *,
    delivered_at_ns: int,
) -> SignedTransaction:
    """The carrier (``carrier``) records a delivery for ``parties`` (finalised to them only)."""
    known = tuple(carrier.network.party(p.name) for p in parties)
    record = DeliveryRecordState(
        carrier.party, contract_id, shipment_id, quantity, delivered_at_ns, known
    )
    wtx = WireTransaction.create(
        privacy_salt=random_bytes(32),
        network_parameters_hash=carrier.network.parameters.hash(),
        outputs=[TransactionState(record, DELIVERY_CONTRACT, carrier.network.default_notary())],
        commands=[Command(RecordDelivery(), (carrier.party.owning_key,))],
    )
    stx = carrier.sign(SignedTransaction(wtx, ()))
    return carrier.finalise(stx)


def deliveries(node: Node, contract_id: str) -> list[DeliveryRecordState]:
    """The delivery records for ``contract_id`` in ``node``'s vault, oldest first."""
    found: list[DeliveryRecordState] = []
    offset = 0
    while page := node.db.query(DeliveryRecordState, limit=200, offset=offset):
        found += [
            s.state.data
            for s in page
            if isinstance(s.state.data, DeliveryRecordState)
            and s.state.data.contract_id == contract_id
        ]
        offset += len(page)
    return found


def _call(contract_id: str, mode: int, expected: int) -> bytes:
    if not 0 < len(contract_id.encode()) <= MAX_ID or not 0 <= expected < 2**32:
        raise CrossTxError(f"a contract id has 1 to {MAX_ID} bytes; expected is a uint32")
    query = abi_encode(["uint8", "uint32"], [mode, expected])
    return bytes(
        abi_encode(["uint8", "bytes", "bytes"], [OP_DELIVERIES, contract_id.encode(), query])
    )


def deliveries_call(contract_id: str, expected: int) -> bytes:
    """The call info of "are there ``expected`` deliveries for ``contract_id``?" (minimal
    disclosure: the answer is ``b"yes"`` or ``b"no"``)."""
    return _call(contract_id, MINIMAL, expected)


def full_deliveries_call(contract_id: str) -> bytes:
    """The call info of "every delivery record of ``contract_id``" (full disclosure: the
    answer is :func:`encode_records` of them)."""
    return _call(contract_id, FULL, 0)


def encode_records(contract_id: str, records: Sequence[DeliveryRecordState]) -> bytes:
    """A full-disclosure answer: ``contract_id`` and ``records`` (module docstring)."""
    rows = [(r.shipment_id, r.quantity, r.delivered_at_ns, str(r.carrier.name)) for r in records]
    if any(len(row[3].encode()) > MAX_CARRIER for row in rows):
        raise CrossTxError(f"a carrier's name over {MAX_CARRIER} bytes does not fit an answer")
    return bytes(abi_encode(_RECORDS_ABI, [contract_id, rows]))


def decode_records(answer: bytes) -> tuple[str, list[tuple[str, int, int, str]]]:
    """(contract id, [(shipment id, quantity, delivered at ns, carrier)]) of a full-disclosure
    answer; CrossTxError for anything else."""
    try:
        contract_id, rows = abi_decode(_RECORDS_ABI, answer, strict=True)
    except (DecodingError, ValueError, TypeError, OverflowError, UnicodeDecodeError) as exc:
        raise CrossTxError(f"not a full-disclosure deliveries answer: {exc}") from None
    decoded = [(str(s), int(q), int(t), str(c)) for s, q, t, c in rows]
    if bytes(abi_encode(_RECORDS_ABI, [contract_id, decoded])) != answer:
        raise CrossTxError("the deliveries answer is not canonically encoded")
    return str(contract_id), decoded


def decode_deliveries_call(call_info: bytes) -> tuple[str, int, int]:
    """(contract id, mode, expected) of a deliveries call; CrossTxError for anything else."""
    try:
        op, contract_id, query = abi_decode(["uint8", "bytes", "bytes"], call_info, strict=True)
        mode, expected = abi_decode(["uint8", "uint32"], query, strict=True)
        text = bytes(contract_id).decode()
    except (DecodingError, ValueError, TypeError, OverflowError, UnicodeDecodeError) as exc:
        raise CrossTxError(f"not a deliveries call: {exc}") from None
    if op != OP_DELIVERIES or mode not in (MINIMAL, FULL):
        raise CrossTxError(f"not a deliveries call (op {op}, mode {mode})")
    if mode == FULL and expected != 0:
        raise CrossTxError("a full-disclosure deliveries call passes the contract id only")
    if _call(text, int(mode), int(expected)) != call_info:
        raise CrossTxError("the deliveries call is not canonically encoded")
    return text, int(mode), int(expected)


@dataclass
class DeliveryCheckApp:
    """The cross application answering deliveries calls from the host operator's vault
    (module docstring); add it with ``apps_factory(DeliveryCheckApp)``."""

    host: CordaIbcHost
    ops: frozenset[int] = frozenset({OP_DELIVERIES})

    def prepare(self, call: PartCall) -> bytes:
        contract_id, mode, expected = decode_deliveries_call(call.call_info)
        try:
            found = deliveries(self.host.node, contract_id)
        except InvalidTransactionError as exc:  # pragma: no cover - a corrupt vault row
            raise CrossTxError(f"cannot read the delivery records: {exc}") from None
        if mode == MINIMAL:
            return YES if len(found) == expected else NO
        found.sort(key=lambda r: (r.delivered_at_ns, r.shipment_id))
        answer = encode_records(contract_id, found)
        if len(answer) > MAX_ANSWER:
            raise CrossTxError(
                f"contract {contract_id} has {len(found)} delivery records, {len(answer)} bytes: "
                f"more than one answer carries ({MAX_ANSWER} bytes); check it with minimal "
                "disclosure"
            )
        return answer

    def commit(self, tx_id: bytes, index: int) -> None:
        """Nothing to apply: the call only read."""

    def abort(self, tx_id: bytes, index: int) -> None:
        """Nothing to drop: the call only read."""

    def locks(self) -> bool:
        return False
