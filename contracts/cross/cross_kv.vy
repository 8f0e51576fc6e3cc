# pragma version 0.4.3
"""
@title Cross Framework on the EVM chain (coordinator and participant), with a key-value lock store
@notice The ICS-26 module on port `cross`. As a participant it answers a coordinator's packets
        (`kakehashi.cross.participant` rules); as a coordinator (`initiate`) it runs the
        `kakehashi.cross.coordinator` rules for Simple Commit and Two-Phase Commit, reacting to
        acknowledgements and proven timeouts (a DECIDE that times out is sent again). A part's call is `abi.encode(bytes key, bytes
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
packet_timeout_s: public(immutable(uint64))  # a packet times out this long after it is sent

NO_PART: constant(uint8) = 255


interface IHandler:
    def send_packet(
        source_port: String[types.MAX_PORT],
        source_channel: String[types.MAX_ID],
        timeout_height: types.Height,
        timeout_timestamp: uint64,
        data: Bytes[types.MAX_DATA],
    ) -> uint64: nonpayable


struct Coordination:
    protocol: uint8
    local: uint8  # NO_PART: this chain runs no part
    count: uint8
    decision: uint8  # 0 unknown, DECISION_COMMIT, DECISION_ABORT


coordinations: HashMap[bytes32, Coordination]
c_status: HashMap[bytes32, HashMap[uint8, uint8]]  # tx id -> part -> PART_*
c_failed: HashMap[bytes32, HashMap[uint8, bool]]  # prepared nothing (FAILED, timed out)
c_rejected: HashMap[bytes32, HashMap[uint8, bool]]  # prepared with a wrong return value
c_sent: HashMap[bytes32, HashMap[uint8, bool]]
c_decided: HashMap[bytes32, HashMap[uint8, bool]]  # acknowledged the decision
c_has_declared: HashMap[bytes32, HashMap[uint8, bool]]
c_declared: HashMap[bytes32, HashMap[uint8, bytes32]]  # keccak256 of the declared value
c_port: HashMap[bytes32, HashMap[uint8, String[types.MAX_PORT]]]
c_channel: HashMap[bytes32, HashMap[uint8, String[types.MAX_ID]]]

event CrossInitiated:
    tx_id: indexed(bytes32)
    protocol: uint8

event CrossDecided:
    tx_id: indexed(bytes32)
    decision: uint8

# One step of a transaction's timeline (kakehashi tx status): STEP_* codes.
event CrossStep:
    tx_id: indexed(bytes32)
    index: uint8
    step: uint8

STEP_SENT_PREPARE: constant(uint8) = 1
STEP_SENT_CALL: constant(uint8) = 2
STEP_SENT_DECIDE: constant(uint8) = 3
STEP_ANSWERED_OK: constant(uint8) = 4
STEP_ANSWERED_FAILED: constant(uint8) = 5
STEP_TIMED_OUT: constant(uint8) = 6
STEP_DECISION_ACKNOWLEDGED: constant(uint8) = 7
STEP_PREPARED_HERE: constant(uint8) = 8
STEP_FAILED_HERE: constant(uint8) = 9
STEP_COMMITTED_HERE: constant(uint8) = 10
STEP_ABORTED_HERE: constant(uint8) = 11

values: HashMap[bytes32, Bytes[MAX_VALUE]]  # keccak256(key) -> committed value
locks: public(HashMap[bytes32, bytes32])  # keccak256(key) -> the tx id holding it
staged_key: HashMap[bytes32, bytes32]  # tx id -> keccak256(key)
staged_value: HashMap[bytes32, Bytes[MAX_VALUE]]  # tx id -> value
parts: public(HashMap[bytes32, uint8])  # keccak256(tx id ‖ index) -> PART_*
answers: HashMap[bytes32, Bytes[types.MAX_ACK]]  # keccak256(tx id ‖ index) -> first answer


@deploy
def __init__(ibc_handler: address, timeout_s: uint64):
    handler = ibc_handler
    packet_timeout_s = timeout_s


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
def _prepare(
    tx_id: bytes32, part: transaction.ContractTransaction
) -> String[transaction.MAX_REASON]:
    """Lock the part's key and stage its value; the reason it cannot ("" when prepared)."""
    if part.has_return_value and part.return_value != b"ok":
        return "the part returns b'ok', not the declared value"
    key: Bytes[MAX_KEY] = b""
    val: Bytes[MAX_VALUE] = b""
    key, val = abi_decode(part.call_info, (Bytes[MAX_KEY], Bytes[MAX_VALUE]))
    key_hash: bytes32 = keccak256(key)
    holder: bytes32 = self.locks[key_hash]
    if holder != empty(bytes32) and holder != tx_id:
        return "the key is locked by another cross transaction"
    self.locks[key_hash] = tx_id
    self.staged_key[tx_id] = key_hash
    self.staged_value[tx_id] = val
    return ""


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
    reason: String[transaction.MAX_REASON] = self._prepare(packet.tx_id, part)
    if len(reason) > 0:
        self.parts[record] = transaction.PART_ABORT
        log CrossStep(tx_id=packet.tx_id, index=packet.index, step=STEP_FAILED_HERE)
        return transaction.failed(reason)
    self.parts[record] = transaction.PART_PREPARE
    log CrossStep(tx_id=packet.tx_id, index=packet.index, step=STEP_PREPARED_HERE)
    if packet.kind == transaction.PACKET_CALL:  # Simple Commit: commit at once
        self._commit(packet.tx_id)
        self.parts[record] = transaction.PART_COMMIT
        log CrossStep(tx_id=packet.tx_id, index=packet.index, step=STEP_COMMITTED_HERE)
    return transaction.ok(b"ok")


@internal
def _apply_decision(packet: transaction.CrossPacket, record: bytes32) -> Bytes[types.MAX_ACK]:
    assert len(packet.payload) == 1, "CROSS: a decision is one byte"
    decision: uint8 = convert(convert(slice(packet.payload, 0, 1), bytes1), uint8)
    status: uint8 = self.parts[record]
    if status == transaction.PART_PREPARE:
        if decision == transaction.DECISION_COMMIT:
            self._commit(packet.tx_id)
            self.parts[record] = transaction.PART_COMMIT
            log CrossStep(tx_id=packet.tx_id, index=packet.index, step=STEP_COMMITTED_HERE)
        else:
            self._abort(packet.tx_id)
            self.parts[record] = transaction.PART_ABORT
            log CrossStep(tx_id=packet.tx_id, index=packet.index, step=STEP_ABORTED_HERE)
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
        return self._apply_decision(cross, record)
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


# ---------------------------------------------------------------------------- coordinator


@external
@view
def coordination(tx_id: bytes32) -> Coordination:
    return self.coordinations[tx_id]


@external
@view
def coordination_part(tx_id: bytes32, index: uint8) -> (uint8, bool, bool, bool):
    """(status, failed, sent, decision acknowledged) of part ``index``."""
    return (
        self.c_status[tx_id][index],
        self.c_failed[tx_id][index],
        self.c_sent[tx_id][index],
        self.c_decided[tx_id][index],
    )


@internal
def _send(tx_id: bytes32, index: uint8, kind: uint8, payload: Bytes[transaction.MAX_PAYLOAD]):
    data: Bytes[types.MAX_DATA] = abi_encode(
        transaction.CrossPacket(kind=kind, tx_id=tx_id, index=index, payload=payload)
    )
    log CrossStep(tx_id=tx_id, index=index, step=kind)  # STEP_SENT_PREPARE / CALL / DECIDE
    timeout: uint64 = (convert(block.timestamp, uint64) + packet_timeout_s) * 1_000_000_000
    extcall IHandler(handler).send_packet(
        self.c_port[tx_id][index],
        self.c_channel[tx_id][index],
        types.Height(revision_number=0, revision_height=0),
        timeout,
        data,
    )


@internal
def _decide(tx_id: bytes32, decision: uint8):
    c: Coordination = self.coordinations[tx_id]
    if c.decision != 0:
        return
    self.coordinations[tx_id].decision = decision
    log CrossDecided(tx_id=tx_id, decision=decision)
    final: uint8 = transaction.PART_ABORT
    if decision == transaction.DECISION_COMMIT:
        final = transaction.PART_COMMIT
    if c.local != NO_PART and self.c_status[tx_id][c.local] == transaction.PART_PREPARE:
        if decision == transaction.DECISION_COMMIT:
            self._commit(tx_id)
            log CrossStep(tx_id=tx_id, index=c.local, step=STEP_COMMITTED_HERE)
        else:
            self._abort(tx_id)
            log CrossStep(tx_id=tx_id, index=c.local, step=STEP_ABORTED_HERE)
        self.c_status[tx_id][c.local] = final
    if c.protocol == transaction.COMMIT_TPC:
        for i: uint8 in range(4):  # transaction.MAX_CONTRACT_TRANSACTIONS
            if i >= c.count:
                break
            if i != c.local and self.c_sent[tx_id][i] and not self.c_failed[tx_id][i]:
                self._send(tx_id, i, transaction.PACKET_DECIDE, slice(convert(decision, bytes32), 31, 1))


@internal
def _commit_if_all_prepared(tx_id: bytes32):
    c: Coordination = self.coordinations[tx_id]
    for i: uint8 in range(4):  # transaction.MAX_CONTRACT_TRANSACTIONS
        if i >= c.count:
            break
        if self.c_status[tx_id][i] != transaction.PART_PREPARE or self.c_rejected[tx_id][i]:
            return
    self._decide(tx_id, transaction.DECISION_COMMIT)


@external
def initiate(payload: Bytes[transaction.MAX_PAYLOAD], local: uint8) -> bytes32:
    """Start a cross transaction (its canonical encoding) with this chain as coordinator,
    running part ``local`` (NO_PART: none). Refuses a known tx id or a passed timeout."""
    t: transaction.InitiateTx = abi_decode(payload, transaction.InitiateTx)
    tx_id: bytes32 = sha256(payload)
    assert self.coordinations[tx_id].count == 0, "CROSS: cross transaction already initiated"
    assert t.timeout_height.revision_number != 0 or t.timeout_height.revision_height == 0 or convert(block.number, uint64) < t.timeout_height.revision_height, "CROSS: cross transaction timed out (height)"
    assert t.timeout_timestamp == 0 or convert(block.timestamp, uint64) * 1_000_000_000 < t.timeout_timestamp, "CROSS: cross transaction timed out (timestamp)"
    count: uint8 = convert(len(t.contract_transactions), uint8)
    assert count >= 2, "CROSS: a cross transaction has two parts or more"
    assert t.commit_protocol == transaction.COMMIT_TPC or count == 2, "CROSS: Simple Commit joins two parts"
    assert local < count or local == NO_PART, "CROSS: no such local part"
    assert t.commit_protocol == transaction.COMMIT_TPC or local != NO_PART, "CROSS: in Simple Commit the coordinator runs a part"
    self.coordinations[tx_id] = Coordination(
        protocol=t.commit_protocol, local=local, count=count, decision=0
    )
    log CrossInitiated(tx_id=tx_id, protocol=t.commit_protocol)
    for i: uint8 in range(4):  # transaction.MAX_CONTRACT_TRANSACTIONS
        if i >= count:
            break
        part: transaction.ContractTransaction = t.contract_transactions[i]
        self.c_port[tx_id][i] = part.cross_chain_channel.port
        self.c_channel[tx_id][i] = part.cross_chain_channel.channel
        self.c_has_declared[tx_id][i] = part.has_return_value
        self.c_declared[tx_id][i] = keccak256(part.return_value)
    if local != NO_PART:
        reason: String[transaction.MAX_REASON] = self._prepare(tx_id, t.contract_transactions[local])
        if len(reason) > 0:
            self.c_failed[tx_id][local] = True
            log CrossStep(tx_id=tx_id, index=local, step=STEP_FAILED_HERE)
            self._decide(tx_id, transaction.DECISION_ABORT)
            return tx_id
        self.c_status[tx_id][local] = transaction.PART_PREPARE
        log CrossStep(tx_id=tx_id, index=local, step=STEP_PREPARED_HERE)
    for i: uint8 in range(4):  # transaction.MAX_CONTRACT_TRANSACTIONS
        if i >= count:
            break
        if i == local:
            continue
        self.c_sent[tx_id][i] = True
        if t.commit_protocol == transaction.COMMIT_SIMPLE:
            self._send(tx_id, i, transaction.PACKET_CALL, payload)
        else:
            self._send(tx_id, i, transaction.PACKET_PREPARE, payload)
    return tx_id


@external
def on_acknowledgement_packet(
    packet: types.Packet, acknowledgement: Bytes[types.MAX_ACK], relayer: address
):
    self._only_handler()
    cross: transaction.CrossPacket = abi_decode(packet.data, transaction.CrossPacket)
    tx_id: bytes32 = cross.tx_id
    i: uint8 = cross.index
    c: Coordination = self.coordinations[tx_id]
    assert c.count != 0, "CROSS: no cross transaction coordinated here"
    if cross.kind == transaction.PACKET_DECIDE:
        if not self.c_decided[tx_id][i]:
            self.c_decided[tx_id][i] = True
            log CrossStep(tx_id=tx_id, index=i, step=STEP_DECISION_ACKNOWLEDGED)
            if self.c_status[tx_id][i] == transaction.PART_PREPARE:
                if c.decision == transaction.DECISION_COMMIT:
                    self.c_status[tx_id][i] = transaction.PART_COMMIT
                else:
                    self.c_status[tx_id][i] = transaction.PART_ABORT
        return
    if self.c_status[tx_id][i] != transaction.PART_NONE or self.c_failed[tx_id][i]:
        return  # a repeated acknowledgement
    ack: transaction.CrossAck = abi_decode(acknowledgement, transaction.CrossAck)
    if ack.status != transaction.ACK_OK:
        log CrossStep(tx_id=tx_id, index=i, step=STEP_ANSWERED_FAILED)
        self.c_failed[tx_id][i] = True
        self._decide(tx_id, transaction.DECISION_ABORT)
        return
    log CrossStep(tx_id=tx_id, index=i, step=STEP_ANSWERED_OK)
    if c.protocol == transaction.COMMIT_SIMPLE:  # the callee committed at once
        self.c_status[tx_id][i] = transaction.PART_COMMIT
        self._decide(tx_id, transaction.DECISION_COMMIT)
        return
    self.c_status[tx_id][i] = transaction.PART_PREPARE
    if self.c_has_declared[tx_id][i] and keccak256(ack.return_value) != self.c_declared[tx_id][i]:
        self.c_rejected[tx_id][i] = True
        self._decide(tx_id, transaction.DECISION_ABORT)
        return
    if c.decision == 0:
        self._commit_if_all_prepared(tx_id)


@external
def on_timeout_packet(packet: types.Packet, relayer: address):
    self._only_handler()
    cross: transaction.CrossPacket = abi_decode(packet.data, transaction.CrossPacket)
    tx_id: bytes32 = cross.tx_id
    i: uint8 = cross.index
    c: Coordination = self.coordinations[tx_id]
    assert c.count != 0, "CROSS: no cross transaction coordinated here"
    log CrossStep(tx_id=tx_id, index=i, step=STEP_TIMED_OUT)
    if cross.kind == transaction.PACKET_DECIDE:
        if c.decision != 0 and not self.c_decided[tx_id][i]:
            # decisions are delivered until acknowledged: send it again
            self._send(tx_id, i, transaction.PACKET_DECIDE, cross.payload)
        return
    if self.c_status[tx_id][i] != transaction.PART_NONE or self.c_failed[tx_id][i]:
        return
    self.c_failed[tx_id][i] = True
    self._decide(tx_id, transaction.DECISION_ABORT)


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
