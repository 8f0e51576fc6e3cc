# pragma version 0.4.3
"""
@title Cross Framework transaction (stateless module)
@notice The structs of a cross-ledger transaction, laid out so that `abi_encode(tx)` is exactly
        the canonical encoding `kakehashi.cross.tx.InitiateTx.encode()` writes, and its id
        `sha256(abi_encode(tx))` the one the Python side (and the Corda model) computes. Bounds
        are the Python side's MAX_* constants.
"""

MAX_CHAIN_ID: constant(uint256) = 64
MAX_CONTRACT_TRANSACTIONS: constant(uint256) = 8
MAX_SIGNERS: constant(uint256) = 8
MAX_ACCOUNT_ID: constant(uint256) = 128
MAX_CALL_INFO: constant(uint256) = 4096
MAX_RETURN_VALUE: constant(uint256) = 1024
MAX_LINKS: constant(uint256) = 8
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
