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
