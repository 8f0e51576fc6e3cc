# pragma version 0.4.3
"""
@title Cross Framework transaction (stateless module)
@notice The structs of a cross-ledger transaction, laid out so that `abi_encode(tx)` is exactly
        the canonical encoding `kakehashi.cross.tx.InitiateTx.encode()` writes, and its id
        `sha256(abi_encode(tx))` the one the Python side (and the Corda model) computes. Bounds
        are the Python side's MAX_* constants, small enough that a whole transaction fits in one
        IBC packet (8 KiB) and decodes in Vyper.
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


@internal
@pure
def tx_id(t: InitiateTx) -> bytes32:
    return sha256(abi_encode(t))


# ------------------------------------------------------------- packets (kakehashi.cross.packets)
MAX_PAYLOAD: constant(uint256) = 8000  # a PREPARE / CALL carries the encoded transaction
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


struct CrossAck:
    status: uint8
    return_value: Bytes[MAX_RETURN_VALUE]
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
def expired(t: InitiateTx) -> bool:
    """Whether the transaction's timeout passed on this chain (a revision-0 height: the block
    number; a timestamp in ns: the block time)."""
    if t.timeout_height.revision_number == 0 and t.timeout_height.revision_height != 0:
        if convert(block.number, uint64) >= t.timeout_height.revision_height:
            return True
    return t.timeout_timestamp != 0 and convert(block.timestamp, uint64) * 1_000_000_000 >= t.timeout_timestamp
