# pragma version 0.4.3
"""
@title The transaction id, exposed (tests show both ledgers compute the same one)
"""

from cross import transaction


@external
@pure
def tx_id(t: transaction.InitiateTx) -> bytes32:
    return transaction.tx_id(t)


@external
@pure
def encode(t: transaction.InitiateTx) -> Bytes[65536]:
    return abi_encode(t)


@external
@pure
def view_id(v: transaction.TxView) -> bytes32:
    return transaction.view_id(v)


@external
@pure
def view_of(t: transaction.InitiateTx, index: uint8) -> Bytes[transaction.MAX_VIEW]:
    return transaction.view_of(t, transaction.digests(t), index)


@external
@pure
def part_digest(p: transaction.ContractTransaction) -> bytes32:
    return sha256(abi_encode(p))
