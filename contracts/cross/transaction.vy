# pragma version 0.4.3
"""
@title Cross Framework transaction (stateless module)
@notice The structs of a cross-ledger transaction, laid out so that `abi_encode(tx)` is exactly
        the full encoding `kakehashi.cross.tx.InitiateTx.encode()` writes. Its id is built from
        salted part commitments, as the Python side (and the Corda model) computes it:
        part digest = sha256(abi_encode(part)), tx id = sha256(abi_encode(TxHeader)) — the
        header with the parts' digests. A `TxView` (what a participant is sent) carries per
        part either the part's encoding (revealed) or its digest (hidden), and gives the same
        id. Bounds are the Python side's MAX_* constants, small enough that every view fits in
        one IBC packet (8 KiB) and decodes in Vyper.
"""

MAX_CHAIN_ID: constant(uint256) = 64
MAX_CONTRACT_TRANSACTIONS: constant(uint256) = 4
MAX_SIGNERS: constant(uint256) = 3
MAX_ACCOUNT_ID: constant(uint256) = 64
MAX_CALL_INFO: constant(uint256) = 384
MAX_RETURN_VALUE: constant(uint256) = 96
MAX_LINKS: constant(uint256) = 3
MAX_PORT: constant(uint256) = 128
MAX_ID: constant(uint256) = 64
MAX_PART: constant(uint256) = 1856  # abi_encode(ContractTransaction) at its bounds
MAX_VIEW: constant(uint256) = 7680  # a view's encoding (kakehashi.cross.tx.MAX_VIEW)
# abi_decode takes an input at least as long as the type's bound: a full encoding's buffer
# (real ones: kakehashi.cross.tx.MAX_TX bytes at most) and a view's, widened to decode
MAX_TX: constant(uint256) = 7808
VIEW_BOUND: constant(uint256) = 8704

COMMIT_SIMPLE: constant(uint8) = 1
COMMIT_TPC: constant(uint8) = 2
SIGNER_LOCAL: constant(uint8) = 1
SIGNER_CHANNEL: constant(uint8) = 2
SIGNER_EXTENSION: constant(uint8) = 3


struct Account:
    kind: uint8
    id: Bytes[MAX_ACCOUNT_ID]


struct ChannelInfo:
    port: String[MAX_PORT]
    channel: String[MAX_ID]


struct ContractTransaction:
    cross_chain_channel: ChannelInfo
    signers: DynArray[Account, MAX_SIGNERS]
    call_info: Bytes[MAX_CALL_INFO]
    has_return_value: bool
    return_value: Bytes[MAX_RETURN_VALUE]
    links: DynArray[uint8, MAX_LINKS]
    salt: bytes32


struct Height:
    revision_number: uint64
    revision_height: uint64


struct InitiateTx:
    chain_id: String[MAX_CHAIN_ID]
    nonce: uint64
    commit_protocol: uint8
    contract_transactions: DynArray[ContractTransaction, MAX_CONTRACT_TRANSACTIONS]
    timeout_height: Height
    timeout_timestamp: uint64


struct TxHeader:  # the tx id's preimage
    chain_id: String[MAX_CHAIN_ID]
    nonce: uint64
    commit_protocol: uint8
    parts: DynArray[bytes32, MAX_CONTRACT_TRANSACTIONS]  # the parts' digests
    timeout_height: Height
    timeout_timestamp: uint64


struct PartEntry:  # hidden: (digest, b""); revealed: (empty, abi_encode(part))
    digest: bytes32
    body: Bytes[MAX_PART]


struct TxView:
    chain_id: String[MAX_CHAIN_ID]
    nonce: uint64
    commit_protocol: uint8
    parts: DynArray[PartEntry, MAX_CONTRACT_TRANSACTIONS]
    timeout_height: Height
    timeout_timestamp: uint64


@internal
@pure
def digests(t: InitiateTx) -> DynArray[bytes32, MAX_CONTRACT_TRANSACTIONS]:
    found: DynArray[bytes32, MAX_CONTRACT_TRANSACTIONS] = []
    for part: ContractTransaction in t.contract_transactions:
        found.append(sha256(abi_encode(part)))
    return found


@internal
@pure
def header_id(t: InitiateTx, parts: DynArray[bytes32, MAX_CONTRACT_TRANSACTIONS]) -> bytes32:
    return sha256(
        abi_encode(
            TxHeader(
                chain_id=t.chain_id,
                nonce=t.nonce,
                commit_protocol=t.commit_protocol,
                parts=parts,
                timeout_height=t.timeout_height,
                timeout_timestamp=t.timeout_timestamp,
            )
        )
    )


@internal
@pure
def tx_id(t: InitiateTx) -> bytes32:
    return self.header_id(t, self.digests(t))


@internal
@pure
def view_id(v: TxView) -> bytes32:
    """The id a view commits to; empty(bytes32) for a malformed entry (a revealed part with a
    digest, a hidden one without), which matches no transaction."""
    parts: DynArray[bytes32, MAX_CONTRACT_TRANSACTIONS] = []
    for entry: PartEntry in v.parts:
        if len(entry.body) == 0:
            if entry.digest == empty(bytes32):
                return empty(bytes32)
            parts.append(entry.digest)
        else:
            if entry.digest != empty(bytes32):
                return empty(bytes32)
            parts.append(sha256(entry.body))
    return sha256(
        abi_encode(
            TxHeader(
                chain_id=v.chain_id,
                nonce=v.nonce,
                commit_protocol=v.commit_protocol,
                parts=parts,
                timeout_height=v.timeout_height,
                timeout_timestamp=v.timeout_timestamp,
            )
        )
    )


@internal
@pure
def decode_view(data: Bytes[MAX_PAYLOAD]) -> TxView:
    wide: Bytes[VIEW_BOUND] = data
    return abi_decode(wide, TxView)


@internal
@pure
def body_part(body: Bytes[MAX_PART]) -> ContractTransaction:
    """A revealed part's entry, decoded (one call site: abi_decode's code is large)."""
    return abi_decode(body, ContractTransaction)


@internal
@pure
def reveals(v: TxView, index: uint8) -> bool:
    """Whether the view reveals part ``index`` and the parts it links to."""
    if convert(index, uint256) >= len(v.parts) or len(v.parts[index].body) == 0:
        return False
    for j: uint8 in self.body_part(v.parts[index].body).links:
        if convert(j, uint256) >= len(v.parts) or len(v.parts[j].body) == 0:
            return False
    return True


@internal
@pure
def view_part(v: TxView, index: uint8) -> ContractTransaction:
    """A revealed part (check `reveals` first)."""
    return self.body_part(v.parts[index].body)


@internal
@pure
def linked(
    t: InitiateTx, index: uint8
) -> DynArray[Bytes[MAX_RETURN_VALUE], MAX_LINKS]:
    """The declared return values of the parts part ``index`` links to, in link order."""
    values: DynArray[Bytes[MAX_RETURN_VALUE], MAX_LINKS] = []
    for j: uint8 in t.contract_transactions[index].links:
        values.append(t.contract_transactions[j].return_value)
    return values


@internal
@pure
def view_linked(
    v: TxView, part: ContractTransaction
) -> DynArray[Bytes[MAX_RETURN_VALUE], MAX_LINKS]:
    values: DynArray[Bytes[MAX_RETURN_VALUE], MAX_LINKS] = []
    for j: uint8 in part.links:
        values.append(self.body_part(v.parts[j].body).return_value)
    return values


@internal
@pure
def view_of(
    t: InitiateTx, parts: DynArray[bytes32, MAX_CONTRACT_TRANSACTIONS], index: uint8
) -> Bytes[MAX_VIEW]:
    """The view part ``index``'s ledger is sent: that part and the parts it links to revealed,
    the others' digests (``parts``)."""
    entries: DynArray[PartEntry, MAX_CONTRACT_TRANSACTIONS] = []
    links: DynArray[uint8, MAX_LINKS] = t.contract_transactions[index].links
    for i: uint8 in range(4):  # MAX_CONTRACT_TRANSACTIONS
        if convert(i, uint256) >= len(t.contract_transactions):
            break
        if i == index or i in links:
            entries.append(
                PartEntry(digest=empty(bytes32), body=abi_encode(t.contract_transactions[i]))
            )
        else:
            entries.append(PartEntry(digest=parts[i], body=b""))
    encoded: Bytes[VIEW_BOUND] = abi_encode(
        TxView(
            chain_id=t.chain_id,
            nonce=t.nonce,
            commit_protocol=t.commit_protocol,
            parts=entries,
            timeout_height=t.timeout_height,
            timeout_timestamp=t.timeout_timestamp,
        )
    )
    # the Python side bounds every view to MAX_VIEW bytes; narrow the type (checked)
    return abi_decode(abi_encode(encoded), Bytes[MAX_VIEW])


# ------------------------------------------------------------- packets (kakehashi.cross.packets)
MAX_PAYLOAD: constant(uint256) = 8000  # a PREPARE / CALL carries a view, a SIGN signer and view
MAX_REASON: constant(uint256) = 256

PACKET_PREPARE: constant(uint8) = 1
PACKET_CALL: constant(uint8) = 2
PACKET_DECIDE: constant(uint8) = 3
PACKET_SIGN: constant(uint8) = 4  # a CHANNEL signer's signature, for the coordinator
ACK_OK: constant(uint8) = 1
ACK_FAILED: constant(uint8) = 2
DECISION_COMMIT: constant(uint8) = 1
DECISION_ABORT: constant(uint8) = 2
PART_NONE: constant(uint8) = 0
PART_PREPARE: constant(uint8) = 1
PART_COMMIT: constant(uint8) = 2
PART_ABORT: constant(uint8) = 3


struct CrossPacket:
    kind: uint8
    tx_id: bytes32
    index: uint8
    payload: Bytes[MAX_PAYLOAD]


# an acknowledgement's return value (kakehashi.cross.packets.MAX_ANSWER): the largest whose
# CrossAnswer encoding (with the longest reason) fits an acknowledgement, types.MAX_ACK
MAX_ANSWER: constant(uint256) = 1600


struct CrossAck:  # what this chain answers (its parts return at most MAX_RETURN_VALUE)
    status: uint8
    return_value: Bytes[MAX_RETURN_VALUE]
    reason: String[MAX_REASON]


struct CrossAnswer:  # what this chain reads: the same encoding, a return value up to MAX_ANSWER
    status: uint8
    return_value: Bytes[MAX_ANSWER]
    reason: String[MAX_REASON]


@internal
@pure
def ok(return_value: Bytes[MAX_RETURN_VALUE]) -> Bytes[2048]:
    return abi_encode(CrossAck(status=ACK_OK, return_value=return_value, reason=""))


@internal
@pure
def failed(reason: String[MAX_REASON]) -> Bytes[2048]:
    return abi_encode(CrossAck(status=ACK_FAILED, return_value=b"", reason=reason))


@internal
@view
def expired(timeout_height: Height, timeout_timestamp: uint64) -> bool:
    """Whether a transaction's timeout passed on this chain (a revision-0 height: the block
    number; a timestamp in ns: the block time)."""
    if timeout_height.revision_number == 0 and timeout_height.revision_height != 0:
        if convert(block.number, uint64) >= timeout_height.revision_height:
            return True
    return timeout_timestamp != 0 and convert(block.timestamp, uint64) * 1_000_000_000 >= timeout_timestamp
