# pragma version 0.4.3
"""
@title Cross Framework on the EVM chain: coordinator and participant (IBC port `cross`)
@notice As a coordinator (`initiate`) it runs the `kakehashi.cross.coordinator` rules for Simple
        Commit and Two-Phase Commit, after authentication: every signer the transaction names
        signs first — LOCAL signers here (`initiate` / `sign` from their address), EXTENSION
        signers with a secp256k1 signature over the tx id (`sign_extension`), CHANNEL signers on
        the ledger at the other end of their part's channel, which proves it with a SIGN packet
        (`sign_remote` there). Nothing is prepared before the last signature; none is taken
        after the transaction's timeout. It reacts to acknowledgements and proven timeouts (a
        DECIDE that times out is sent again). As a participant it answers PREPARE / CALL /
        DECIDE packets (`kakehashi.cross.participant` rules) and sends SIGN packets. The
        coordinator is given the whole transaction (`initiate`); each participant is sent only
        the view of it revealing its part and the parts that part links to (the others: their
        digests), and checks the view's id before running anything. Parts run
        in the bound application (`contracts/cross/cross_app.vy`: key-value state with locks,
        ERC-20 / ERC-721 escrow), which gets the part's call, its signers and the declared
        return values of the parts it links to; a part that returns anything but its declared
        value fails its prepare. Every packet's first answer is kept: a repeated packet gets it
        again and changes nothing.
"""

from ibc import types
from cross import transaction

implements: types.IIBCModule

handler: public(immutable(address))
packet_timeout_s: public(immutable(uint64))  # a packet times out this long after it is sent
deployer: immutable(address)
app: public(address)  # the application parts run in (bound once: bind)
authenticator: public(address)  # contracts/cross/cross_auth.vy (bound once: bind)

NO_PART: constant(uint8) = 255
CROSS_PORT: constant(String[5]) = "cross"


interface IHandler:
    def send_packet(
        source_port: String[types.MAX_PORT],
        source_channel: String[types.MAX_ID],
        timeout_height: types.Height,
        timeout_timestamp: uint64,
        data: Bytes[types.MAX_DATA],
    ) -> uint64: nonpayable


interface ICrossApp:
    def prepare(
        tx_id: bytes32,
        index: uint8,
        call_info: Bytes[transaction.MAX_CALL_INFO],
        signers: DynArray[transaction.Account, transaction.MAX_SIGNERS],
        linked: DynArray[Bytes[transaction.MAX_RETURN_VALUE], transaction.MAX_LINKS],
    ) -> (bool, Bytes[transaction.MAX_RETURN_VALUE], String[transaction.MAX_REASON]): nonpayable
    def commit(tx_id: bytes32, index: uint8): nonpayable
    def abort(tx_id: bytes32, index: uint8): nonpayable
    def answer(
        tx_id: bytes32, index: uint8, source: uint8, answer: Bytes[transaction.MAX_ANSWER]
    ) -> String[transaction.MAX_REASON]: nonpayable


struct Opened:  # cross_auth.open_view's answer
    reason: String[transaction.MAX_REASON]
    part: transaction.ContractTransaction
    linked: DynArray[Bytes[transaction.MAX_RETURN_VALUE], transaction.MAX_LINKS]


interface ICrossAuth:
    def register(tx_id: bytes32, payload: Bytes[transaction.MAX_TX], initiator: address) -> bool: nonpayable
    def view_of(payload: Bytes[transaction.MAX_TX], index: uint8) -> Bytes[transaction.MAX_VIEW]: pure
    def open_view(tx_id: bytes32, view: Bytes[transaction.MAX_PAYLOAD], index: uint8) -> Opened: view
    def on_sign_packet(
        tx_id: bytes32,
        view: Bytes[transaction.MAX_VIEW],
        index: uint8,
        signer: Bytes[transaction.MAX_ACCOUNT_ID],
        port: String[types.MAX_PORT],
        channel: String[types.MAX_ID],
    ) -> String[transaction.MAX_REASON]: nonpayable


struct Coordination:
    protocol: uint8
    local: uint8  # NO_PART: this chain runs no part
    count: uint8
    decision: uint8  # 0 unknown, DECISION_COMMIT, DECISION_ABORT


coordinations: HashMap[bytes32, Coordination]
c_started: HashMap[bytes32, bool]  # authenticated: the commit protocol runs
c_status: HashMap[bytes32, HashMap[uint8, uint8]]  # tx id -> part -> PART_*
c_failed: HashMap[bytes32, HashMap[uint8, bool]]  # prepared nothing (FAILED, timed out)
c_rejected: HashMap[bytes32, HashMap[uint8, bool]]  # prepared with a wrong return value
c_sent: HashMap[bytes32, HashMap[uint8, bool]]
c_decided: HashMap[bytes32, HashMap[uint8, bool]]  # acknowledged the decision
c_has_declared: HashMap[bytes32, HashMap[uint8, bool]]
c_declared: HashMap[bytes32, HashMap[uint8, bytes32]]  # keccak256 of the declared value
c_port: HashMap[bytes32, HashMap[uint8, String[types.MAX_PORT]]]
c_channel: HashMap[bytes32, HashMap[uint8, String[types.MAX_ID]]]
# the full encoding of a transaction initiated before all its signers signed (kept until it
# starts: a CHANNEL signer's SIGN packet carries only a view, not what the other parts need)
waiting: HashMap[bytes32, Bytes[transaction.MAX_TX]]

event CrossInitiated:
    tx_id: indexed(bytes32)
    protocol: uint8
    timeout_height: uint64  # revision 0 height; 0: none
    timeout_timestamp: uint64  # ns; 0: none

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
STEP_AUTHENTICATED: constant(uint8) = 12  # every signer signed (index NO_PART)
STEP_SENT_SIGN: constant(uint8) = 13  # a CHANNEL signer's signature sent to the coordinator

parts: public(HashMap[bytes32, uint8])  # keccak256(tx id ‖ index) -> PART_* (participant)
answers: HashMap[bytes32, Bytes[types.MAX_ACK]]  # keccak256(tx id ‖ index) -> first answer


@deploy
def __init__(ibc_handler: address, timeout_s: uint64):
    handler = ibc_handler
    packet_timeout_s = timeout_s
    deployer = msg.sender


@external
def bind(application: address, authentication: address):
    """Bind the application parts run in and the authentication contract (once, by the
    deployer)."""
    assert msg.sender == deployer, "CROSS: only the deployer binds the application"
    assert self.app == empty(address), "CROSS: the application is already bound"
    assert application != empty(address) and authentication != empty(address), "CROSS: no application"
    self.app = application
    self.authenticator = authentication


@internal
@view
def _only_handler():
    assert msg.sender == handler, "CROSS: only the IBC handler calls back"


@internal
@pure
def _tx(payload: Bytes[transaction.MAX_TX]) -> transaction.InitiateTx:
    return abi_decode(payload, transaction.InitiateTx)


# ---------------------------------------------------------------------------- the application


@internal
def _prepare(
    tx_id: bytes32,
    index: uint8,
    part: transaction.ContractTransaction,
    linked: DynArray[Bytes[transaction.MAX_RETURN_VALUE], transaction.MAX_LINKS],
) -> (bool, Bytes[transaction.MAX_RETURN_VALUE], String[transaction.MAX_REASON]):
    """Run part ``index`` in the application with locks: (prepared, return value, reason).
    A return value other than the declared one releases what was locked and fails."""
    if self.app == empty(address):
        return False, b"", "no cross application is bound on this chain"
    prepared: bool = False
    value: Bytes[transaction.MAX_RETURN_VALUE] = b""
    reason: String[transaction.MAX_REASON] = ""
    prepared, value, reason = extcall ICrossApp(self.app).prepare(
        tx_id, index, part.call_info, part.signers, linked
    )
    if not prepared:
        return False, b"", reason
    if part.has_return_value and keccak256(value) != keccak256(part.return_value):
        extcall ICrossApp(self.app).abort(tx_id, index)
        return False, b"", "the part did not return its declared value"
    return True, value, ""


@internal
def _finish(tx_id: bytes32, index: uint8, commit: bool):
    if commit:
        extcall ICrossApp(self.app).commit(tx_id, index)
        log CrossStep(tx_id=tx_id, index=index, step=STEP_COMMITTED_HERE)
    else:
        extcall ICrossApp(self.app).abort(tx_id, index)
        log CrossStep(tx_id=tx_id, index=index, step=STEP_ABORTED_HERE)


# ---------------------------------------------------------------------------- participant


@internal
def _run(packet: transaction.CrossPacket, record: bytes32) -> Bytes[types.MAX_ACK]:
    opened: Opened = staticcall ICrossAuth(self.authenticator).open_view(
        packet.tx_id, packet.payload, packet.index
    )
    if len(opened.reason) > 0:  # never runs: a wrong or hiding view, or too late
        self.parts[record] = transaction.PART_ABORT
        return transaction.failed(opened.reason)
    prepared: bool = False
    value: Bytes[transaction.MAX_RETURN_VALUE] = b""
    reason: String[transaction.MAX_REASON] = ""
    prepared, value, reason = self._prepare(packet.tx_id, packet.index, opened.part, opened.linked)
    if not prepared:
        self.parts[record] = transaction.PART_ABORT
        log CrossStep(tx_id=packet.tx_id, index=packet.index, step=STEP_FAILED_HERE)
        return transaction.failed(reason)
    self.parts[record] = transaction.PART_PREPARE
    log CrossStep(tx_id=packet.tx_id, index=packet.index, step=STEP_PREPARED_HERE)
    if packet.kind == transaction.PACKET_CALL:  # Simple Commit: commit at once
        self._finish(packet.tx_id, packet.index, True)
        self.parts[record] = transaction.PART_COMMIT
    return transaction.ok(value)


@internal
def _apply_decision(packet: transaction.CrossPacket, record: bytes32) -> Bytes[types.MAX_ACK]:
    assert len(packet.payload) == 1, "CROSS: a decision is one byte"
    decision: uint8 = convert(convert(slice(packet.payload, 0, 1), bytes1), uint8)
    status: uint8 = self.parts[record]
    if status == transaction.PART_PREPARE:
        self._finish(packet.tx_id, packet.index, decision == transaction.DECISION_COMMIT)
        if decision == transaction.DECISION_COMMIT:
            self.parts[record] = transaction.PART_COMMIT
        else:
            self.parts[record] = transaction.PART_ABORT
    elif status == transaction.PART_NONE and decision == transaction.DECISION_ABORT:
        self.parts[record] = transaction.PART_ABORT  # its PREPARE, should it come, is refused
    elif not (
        (status == transaction.PART_COMMIT and decision == transaction.DECISION_COMMIT)
        or (status == transaction.PART_ABORT and decision == transaction.DECISION_ABORT)
    ):
        return transaction.failed("the decision cannot apply to this part")
    return transaction.ok(b"")


@internal
def _recv_sign(packet: types.Packet, cross: transaction.CrossPacket) -> Bytes[types.MAX_ACK]:
    """Coordinator: a CHANNEL signer's signature, proven over IBC by the ledger it signed on."""
    signer: Bytes[transaction.MAX_ACCOUNT_ID] = b""
    view: Bytes[transaction.MAX_VIEW] = b""
    signer, view = abi_decode(
        cross.payload, (Bytes[transaction.MAX_ACCOUNT_ID], Bytes[transaction.MAX_VIEW])
    )
    reason: String[transaction.MAX_REASON] = extcall ICrossAuth(self.authenticator).on_sign_packet(
        cross.tx_id, view, cross.index, signer, packet.destination_port, packet.destination_channel
    )
    if len(reason) > 0:
        return transaction.failed(reason)
    return transaction.ok(b"")


@external
def on_recv_packet(packet: types.Packet, relayer: address) -> Bytes[types.MAX_ACK]:
    self._only_handler()
    cross: transaction.CrossPacket = abi_decode(packet.data, transaction.CrossPacket)
    if cross.kind == transaction.PACKET_SIGN:
        return self._recv_sign(packet, cross)
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
def _send_data(port: String[types.MAX_PORT], channel: String[types.MAX_ID], data: Bytes[types.MAX_DATA]):
    timeout: uint64 = (convert(block.timestamp, uint64) + packet_timeout_s) * 1_000_000_000
    extcall IHandler(handler).send_packet(
        port, channel, types.Height(revision_number=0, revision_height=0), timeout, data
    )


@external
def send_sign(
    source_channel: String[types.MAX_ID],
    tx_id: bytes32,
    index: uint8,
    data: Bytes[transaction.MAX_PAYLOAD],
):
    """Send a SIGN packet the authentication contract made (cross_auth.sign_remote)."""
    assert msg.sender == self.authenticator, "CROSS: only the authentication contract signs"
    log CrossStep(tx_id=tx_id, index=index, step=STEP_SENT_SIGN)
    self._send_data(
        CROSS_PORT,
        source_channel,
        abi_encode(
            transaction.CrossPacket(
                kind=transaction.PACKET_SIGN, tx_id=tx_id, index=index, payload=data
            )
        ),
    )


@internal
def _send(tx_id: bytes32, index: uint8, kind: uint8, payload: Bytes[transaction.MAX_PAYLOAD]):
    data: Bytes[types.MAX_DATA] = abi_encode(
        transaction.CrossPacket(kind=kind, tx_id=tx_id, index=index, payload=payload)
    )
    log CrossStep(tx_id=tx_id, index=index, step=kind)  # STEP_SENT_PREPARE / CALL / DECIDE
    self._send_data(self.c_port[tx_id][index], self.c_channel[tx_id][index], data)


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
        self._finish(tx_id, c.local, decision == transaction.DECISION_COMMIT)
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
def start(tx_id: bytes32):
    """Every signer signed (the authentication contract says so): run the commit protocol."""
    assert msg.sender == self.authenticator, "CROSS: only the authentication contract starts"
    payload: Bytes[transaction.MAX_TX] = self.waiting[tx_id]
    assert len(payload) != 0, "CROSS: not a transaction awaiting its start"
    self.waiting[tx_id] = b""
    self._start(tx_id, self._tx(payload), payload)


@internal
def _start(tx_id: bytes32, t: transaction.InitiateTx, payload: Bytes[transaction.MAX_TX]):
    """Every signer signed: prepare the local part, then send CALL / PREPARE packets, each with
    the view of the transaction for its part."""
    c: Coordination = self.coordinations[tx_id]
    assert c.count != 0 and not self.c_started[tx_id], "CROSS: not a transaction awaiting its start"
    self.c_started[tx_id] = True
    log CrossStep(tx_id=tx_id, index=NO_PART, step=STEP_AUTHENTICATED)
    if c.local != NO_PART:
        prepared: bool = False
        value: Bytes[transaction.MAX_RETURN_VALUE] = b""
        reason: String[transaction.MAX_REASON] = ""
        prepared, value, reason = self._prepare(
            tx_id, c.local, t.contract_transactions[c.local], transaction.linked(t, c.local)
        )
        if not prepared:
            self.c_failed[tx_id][c.local] = True
            log CrossStep(tx_id=tx_id, index=c.local, step=STEP_FAILED_HERE)
            self._decide(tx_id, transaction.DECISION_ABORT)
            return
        self.c_status[tx_id][c.local] = transaction.PART_PREPARE
        log CrossStep(tx_id=tx_id, index=c.local, step=STEP_PREPARED_HERE)
    for i: uint8 in range(4):  # transaction.MAX_CONTRACT_TRANSACTIONS
        if i >= c.count:
            break
        if i == c.local:
            continue
        self.c_sent[tx_id][i] = True
        view: Bytes[transaction.MAX_VIEW] = staticcall ICrossAuth(self.authenticator).view_of(
            payload, i
        )
        if t.commit_protocol == transaction.COMMIT_SIMPLE:
            self._send(tx_id, i, transaction.PACKET_CALL, view)
        else:
            self._send(tx_id, i, transaction.PACKET_PREPARE, view)


@external
def initiate(payload: Bytes[transaction.MAX_TX], local: uint8) -> bytes32:
    """Start a cross transaction (its full encoding) with this chain as coordinator,
    running part ``local`` (NO_PART: none). Refuses a known tx id or a passed timeout. The
    caller signs as a LOCAL signer if the transaction names it; the commit protocol starts
    once every signer has signed."""
    t: transaction.InitiateTx = self._tx(payload)
    tx_id: bytes32 = transaction.tx_id(t)
    assert self.coordinations[tx_id].count == 0, "CROSS: cross transaction already initiated"
    assert not transaction.expired(t.timeout_height, t.timeout_timestamp), "CROSS: cross transaction timed out"
    count: uint8 = convert(len(t.contract_transactions), uint8)
    assert count >= 2, "CROSS: a cross transaction has two parts or more"
    assert t.commit_protocol == transaction.COMMIT_TPC or count == 2, "CROSS: Simple Commit joins two parts"
    assert local < count or local == NO_PART, "CROSS: no such local part"
    assert t.commit_protocol == transaction.COMMIT_TPC or local != NO_PART, "CROSS: in Simple Commit the coordinator runs a part"
    self.coordinations[tx_id] = Coordination(
        protocol=t.commit_protocol, local=local, count=count, decision=0
    )
    timeout_height: uint64 = 0
    if t.timeout_height.revision_number == 0:
        timeout_height = t.timeout_height.revision_height
    log CrossInitiated(
        tx_id=tx_id,
        protocol=t.commit_protocol,
        timeout_height=timeout_height,
        timeout_timestamp=t.timeout_timestamp,
    )
    for i: uint8 in range(4):  # transaction.MAX_CONTRACT_TRANSACTIONS
        if i >= count:
            break
        part: transaction.ContractTransaction = t.contract_transactions[i]
        self.c_port[tx_id][i] = part.cross_chain_channel.port
        self.c_channel[tx_id][i] = part.cross_chain_channel.channel
        self.c_has_declared[tx_id][i] = part.has_return_value
        self.c_declared[tx_id][i] = keccak256(part.return_value)
    assert self.authenticator != empty(address), "CROSS: no authentication contract is bound"
    if extcall ICrossAuth(self.authenticator).register(tx_id, payload, msg.sender):
        self._start(tx_id, t, payload)  # the caller was the only signer
    else:
        self.waiting[tx_id] = payload
    return tx_id


@external
def on_acknowledgement_packet(
    packet: types.Packet, acknowledgement: Bytes[types.MAX_ACK], relayer: address
):
    self._only_handler()
    cross: transaction.CrossPacket = abi_decode(packet.data, transaction.CrossPacket)
    tx_id: bytes32 = cross.tx_id
    i: uint8 = cross.index
    ack: transaction.CrossAnswer = abi_decode(acknowledgement, transaction.CrossAnswer)
    if cross.kind == transaction.PACKET_SIGN:  # our signer's signature reached its coordinator
        if ack.status == transaction.ACK_OK:
            log CrossStep(tx_id=tx_id, index=i, step=STEP_ANSWERED_OK)
        else:
            log CrossStep(tx_id=tx_id, index=i, step=STEP_ANSWERED_FAILED)
        return
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
    refused: bool = self.c_has_declared[tx_id][i] and keccak256(ack.return_value) != self.c_declared[tx_id][i]
    if not refused and c.local != NO_PART and c.decision == 0:
        # the answer, for a local part that takes it (an evaluated write); a reason refuses it
        refused = len(extcall ICrossApp(self.app).answer(tx_id, c.local, i, ack.return_value)) > 0
    if refused:
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
    log CrossStep(tx_id=tx_id, index=i, step=STEP_TIMED_OUT)
    if cross.kind == transaction.PACKET_SIGN:
        return  # the signature never arrived; the transaction expires unless signed again
    c: Coordination = self.coordinations[tx_id]
    assert c.count != 0, "CROSS: no cross transaction coordinated here"
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
