# pragma version 0.4.3
"""
@title ECDSA secp256k1 extension signatures over a tx id, as the EVM side checks them
@notice `signer(tx_id, signature)` is the address `ecrecover` gives for a 65-byte r ‖ s ‖ v
        signature over the 32-byte tx id (no prefix): the account id of an EXTENSION signer
        of scheme 0x01 (`kakehashi.cross.auth`).
"""


@external
@pure
def signer(tx_id: bytes32, signature: Bytes[65]) -> address:
    assert len(signature) == 65, "CROSS: a signature is 65 bytes"
    r: uint256 = extract32(signature, 0, output_type=uint256)
    s: uint256 = extract32(signature, 32, output_type=uint256)
    v: uint256 = convert(slice(signature, 64, 1), uint256)
    return ecrecover(tx_id, v, r, s)
