# pragma version 0.4.3
"""
@title Cross Framework participant on the EVM chain, with a key-value lock store
@notice The ICS-26 module on port `cross`: it answers a coordinator's packets
        (`kakehashi.cross.participant` rules). A part's call is `abi.encode(bytes key, bytes
        value)`: set key to value. PREPARE locks the key (exclusive) and stages the value, CALL
        does the same and commits at once, DECIDE commits (the value becomes visible) or aborts
        (dropped); the lock is released either way. A key locked by another transaction, a
        declared return value other than b"ok", a malformed call or a passed timeout answer
        FAILED and lock nothing. Every packet's first answer is kept: a repeated packet gets it
        again and changes nothing.
"""

from ibc import types
from cross import transaction

implements: types.IIBCModule

MAX_KEY: constant(uint256) = 64
MAX_VALUE: constant(uint256) = 192

handler: public(immutable(address))

values: HashMap[bytes32, Bytes[MAX_VALUE]]  # keccak256(key) -> committed value
locks: public(HashMap[bytes32, bytes32])  # keccak256(key) -> the tx id holding it
staged_key: HashMap[bytes32, bytes32]  # tx id -> keccak256(key)
staged_value: HashMap[bytes32, Bytes[MAX_VALUE]]  # tx id -> value
parts: public(HashMap[bytes32, uint8])  # keccak256(tx id ‖ index) -> PART_*
answers: HashMap[bytes32, Bytes[types.MAX_ACK]]  # keccak256(tx id ‖ index) -> first answer


@deploy
def __init__(ibc_handler: address):
    handler = ibc_handler


@external
@view
def value(key: Bytes[MAX_KEY]) -> Bytes[MAX_VALUE]:
    return self.values[keccak256(key)]


@external
@view
def locked_by(key: Bytes[MAX_KEY]) -> bytes32:
    return self.locks[keccak256(key)]


@external
@view
def part_status(tx_id: bytes32, index: uint8) -> uint8:
    return self.parts[keccak256(concat(tx_id, convert(index, bytes1)))]


@internal
@view
def _only_handler():
    assert msg.sender == handler, "CROSS: only the IBC handler calls back"


@internal
def _release(tx_id: bytes32) -> bytes32:
    key_hash: bytes32 = self.staged_key[tx_id]
    if key_hash != empty(bytes32) and self.locks[key_hash] == tx_id:
        self.locks[key_hash] = empty(bytes32)
    self.staged_key[tx_id] = empty(bytes32)
    return key_hash


@internal
def _commit(tx_id: bytes32):
    key_hash: bytes32 = self._release(tx_id)
    if key_hash != empty(bytes32):
        self.values[key_hash] = self.staged_value[tx_id]
    self.staged_value[tx_id] = b""


@internal
def _abort(tx_id: bytes32):
    self._release(tx_id)
    self.staged_value[tx_id] = b""


@internal
def _run(packet: transaction.CrossPacket, record: bytes32) -> Bytes[types.MAX_ACK]:
    if sha256(packet.payload) != packet.tx_id:
        return transaction.failed("the packet's transaction does not hash to its tx id")
    t: transaction.InitiateTx = abi_decode(packet.payload, transaction.InitiateTx)
    if convert(packet.index, uint256) >= len(t.contract_transactions):
        return transaction.failed("the transaction has no such part")
    if not (t.timeout_height.revision_number == 0 and t.timeout_height.revision_height == 0):
        if t.timeout_height.revision_number == 0 and convert(block.number, uint64) >= t.timeout_height.revision_height:
            self.parts[record] = transaction.PART_ABORT
            return transaction.failed("the transaction timed out before this part ran")
    if t.timeout_timestamp != 0 and convert(block.timestamp, uint64) * 1_000_000_000 >= t.timeout_timestamp:
        self.parts[record] = transaction.PART_ABORT
        return transaction.failed("the transaction timed out before this part ran")
    part: transaction.ContractTransaction = t.contract_transactions[packet.index]
    if part.has_return_value and part.return_value != b"ok":
        self.parts[record] = transaction.PART_ABORT
        return transaction.failed("the part returns b'ok', not the declared value")
    key: Bytes[MAX_KEY] = b""
    val: Bytes[MAX_VALUE] = b""
    key, val = abi_decode(part.call_info, (Bytes[MAX_KEY], Bytes[MAX_VALUE]))
    key_hash: bytes32 = keccak256(key)
    holder: bytes32 = self.locks[key_hash]
    if holder != empty(bytes32) and holder != packet.tx_id:
        self.parts[record] = transaction.PART_ABORT
        return transaction.failed("the key is locked by another cross transaction")
    self.locks[key_hash] = packet.tx_id
    self.staged_key[packet.tx_id] = key_hash
    self.staged_value[packet.tx_id] = val
    self.parts[record] = transaction.PART_PREPARE
    if packet.kind == transaction.PACKET_CALL:  # Simple Commit: commit at once
        self._commit(packet.tx_id)
        self.parts[record] = transaction.PART_COMMIT
    return transaction.ok(b"ok")


@internal
def _decide(packet: transaction.CrossPacket, record: bytes32) -> Bytes[types.MAX_ACK]:
    assert len(packet.payload) == 1, "CROSS: a decision is one byte"
    decision: uint8 = convert(convert(slice(packet.payload, 0, 1), bytes1), uint8)
    status: uint8 = self.parts[record]
    if status == transaction.PART_PREPARE:
        if decision == transaction.DECISION_COMMIT:
            self._commit(packet.tx_id)
            self.parts[record] = transaction.PART_COMMIT
        else:
            self._abort(packet.tx_id)
            self.parts[record] = transaction.PART_ABORT
    elif status == transaction.PART_NONE and decision == transaction.DECISION_ABORT:
        self.parts[record] = transaction.PART_ABORT  # its PREPARE, should it come, is refused
    elif not (
        (status == transaction.PART_COMMIT and decision == transaction.DECISION_COMMIT)
        or (status == transaction.PART_ABORT and decision == transaction.DECISION_ABORT)
    ):
        return transaction.failed("the decision cannot apply to this part")
    return transaction.ok(b"")


@external
def on_recv_packet(packet: types.Packet, relayer: address) -> Bytes[types.MAX_ACK]:
    self._only_handler()
    cross: transaction.CrossPacket = abi_decode(packet.data, transaction.CrossPacket)
    record: bytes32 = keccak256(concat(cross.tx_id, convert(cross.index, bytes1)))
    if cross.kind == transaction.PACKET_DECIDE:
        return self._decide(cross, record)
    assert cross.kind == transaction.PACKET_PREPARE or cross.kind == transaction.PACKET_CALL, "CROSS: unknown packet kind"
    answer: Bytes[types.MAX_ACK] = self.answers[record]
    if len(answer) > 0:
        return answer  # a repeated PREPARE / CALL
    if self.parts[record] != transaction.PART_NONE:
        answer = transaction.failed("the transaction was already aborted")
    else:
        answer = self._run(cross, record)
    self.answers[record] = answer
    return answer


@external
def on_acknowledgement_packet(
    packet: types.Packet, acknowledgement: Bytes[types.MAX_ACK], relayer: address
):
    self._only_handler()  # this module coordinates nothing yet: it sends no packets


@external
def on_timeout_packet(packet: types.Packet, relayer: address):
    self._only_handler()


@external
def on_chan_open_init(
    port_id: String[types.MAX_PORT], channel_id: String[types.MAX_ID], ordering: uint8,
    version: String[types.MAX_VERSION]
):
    self._only_handler()
    assert ordering == types.ORDER_UNORDERED, "CROSS: cross channels are UNORDERED"


@external
def on_chan_open_try(
    port_id: String[types.MAX_PORT], channel_id: String[types.MAX_ID], ordering: uint8,
    counterparty_version: String[types.MAX_VERSION]
):
    self._only_handler()
    assert ordering == types.ORDER_UNORDERED, "CROSS: cross channels are UNORDERED"
    assert counterparty_version == "cross-1", "CROSS: cross channels speak cross-1"


@external
def on_chan_open_ack(
    port_id: String[types.MAX_PORT], channel_id: String[types.MAX_ID],
    counterparty_version: String[types.MAX_VERSION]
):
    self._only_handler()
    assert counterparty_version == "cross-1", "CROSS: cross channels speak cross-1"


@external
def on_chan_open_confirm(port_id: String[types.MAX_PORT], channel_id: String[types.MAX_ID]):
    self._only_handler()


@external
def on_chan_close_init(port_id: String[types.MAX_PORT], channel_id: String[types.MAX_ID]):
    raise "CROSS: a cross channel is not closed while transactions may use it"


@external
def on_chan_close_confirm(port_id: String[types.MAX_PORT], channel_id: String[types.MAX_ID]):
    self._only_handler()
