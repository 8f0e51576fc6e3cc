# pragma version 0.4.3
"""
@title TEST-ONLY light client: trusts statements signed by one test key
@notice NEVER deployed by the CLI or any demo. It proves nothing about a real ledger: whoever
        holds the test key decides what "the counterparty" committed. It exists so that the EVM
        IBC host can be tested before the real client (LCP, next issue) exists; that issue
        replaces it in every test that crosses ledgers.

        Client state  = abi_encode(signer: address)
        Consensus     = abi_encode(height: (uint64, uint64), timestamp_ns: uint64, root: bytes32)
        Update message= abi_encode(height, timestamp_ns, root, signature: bytes)
                        signed digest keccak256(abi_encode("kakehashi/test-signed-client/update",
                        client_id, height, timestamp_ns, root))
        Membership    = proof is a 65-byte signature (r ‖ s ‖ v) over keccak256(abi_encode(
                        "kakehashi/test-signed-client/membership", client_id, height, prefix,
                        path, value)), value = bytes32(0) for non-membership, at a height the
                        client was updated to.
"""

from ibc import types

implements: types.ILightClient

handler: public(immutable(address))

signer: public(HashMap[String[types.MAX_ID], address])
latest: HashMap[String[types.MAX_ID], types.Height]
# client id -> (revision_number << 64 | revision_height) -> timestamp (ns); 0 = unknown height
timestamps: HashMap[String[types.MAX_ID], HashMap[uint256, uint64]]
roots: public(HashMap[String[types.MAX_ID], HashMap[uint256, bytes32]])


@deploy
def __init__(ibc_handler: address):
    handler = ibc_handler


@internal
@pure
def _key(h: types.Height) -> uint256:
    return convert(h.revision_number, uint256) << 64 | convert(h.revision_height, uint256)


@internal
def _store(client_id: String[types.MAX_ID], height: types.Height, timestamp: uint64, root: bytes32):
    assert timestamp != 0, "test client: timestamp is zero"
    assert not types.height_is_zero(height), "test client: height is zero"
    self.timestamps[client_id][self._key(height)] = timestamp
    self.roots[client_id][self._key(height)] = root
    if types.height_gte(height, self.latest[client_id]):
        self.latest[client_id] = height


@internal
@pure
def _recover(digest: bytes32, signature: Bytes[types.MAX_PROOF]) -> address:
    if len(signature) != 65:
        return empty(address)
    v: uint256 = convert(slice(signature, 64, 1), uint256)
    if v < 27:
        v += 27
    return ecrecover(digest, v, convert(extract32(signature, 0), uint256), convert(extract32(signature, 32), uint256))


@external
def create_client(
    client_id: String[types.MAX_ID],
    client_state: Bytes[types.MAX_CLIENT_STATE],
    consensus_state: Bytes[types.MAX_CLIENT_STATE],
) -> types.Height:
    assert msg.sender == handler, "test client: only the IBC handler creates clients"
    assert self.signer[client_id] == empty(address), "test client: client exists"
    key: address = abi_decode(client_state, address)
    assert key != empty(address), "test client: signer is zero"
    height: types.Height = empty(types.Height)
    timestamp: uint64 = 0
    root: bytes32 = empty(bytes32)
    height, timestamp, root = abi_decode(consensus_state, (types.Height, uint64, bytes32))
    self.signer[client_id] = key
    self._store(client_id, height, timestamp, root)
    return height


@external
def update_client(
    client_id: String[types.MAX_ID], client_message: Bytes[types.MAX_CLIENT_MESSAGE]
) -> types.Height:
    assert msg.sender == handler, "test client: only the IBC handler updates clients"
    key: address = self.signer[client_id]
    assert key != empty(address), "test client: unknown client"
    height: types.Height = empty(types.Height)
    timestamp: uint64 = 0
    root: bytes32 = empty(bytes32)
    signature: Bytes[65] = b""
    height, timestamp, root, signature = abi_decode(
        client_message, (types.Height, uint64, bytes32, Bytes[65])
    )
    digest: bytes32 = keccak256(
        abi_encode("kakehashi/test-signed-client/update", client_id, height, timestamp, root)
    )
    assert self._recover(digest, signature) == key, "test client: update not signed by the test key"
    self._store(client_id, height, timestamp, root)
    return height


@internal
@view
def _verify(
    client_id: String[types.MAX_ID],
    height: types.Height,
    proof: Bytes[types.MAX_PROOF],
    prefix: Bytes[types.MAX_PREFIX],
    path: Bytes[types.MAX_PATH],
    word: bytes32,
) -> bool:
    if self.timestamps[client_id][self._key(height)] == 0:
        return False  # a height this client was never updated to
    digest: bytes32 = keccak256(
        abi_encode("kakehashi/test-signed-client/membership", client_id, height, prefix, path, word)
    )
    key: address = self.signer[client_id]
    return key != empty(address) and self._recover(digest, proof) == key


@external
@view
def verify_membership(
    client_id: String[types.MAX_ID],
    height: types.Height,
    proof: Bytes[types.MAX_PROOF],
    prefix: Bytes[types.MAX_PREFIX],
    path: Bytes[types.MAX_PATH],
    commitment: bytes32,
) -> bool:
    return commitment != empty(bytes32) and self._verify(client_id, height, proof, prefix, path, commitment)


@external
@view
def verify_non_membership(
    client_id: String[types.MAX_ID],
    height: types.Height,
    proof: Bytes[types.MAX_PROOF],
    prefix: Bytes[types.MAX_PREFIX],
    path: Bytes[types.MAX_PATH],
) -> bool:
    return self._verify(client_id, height, proof, prefix, path, empty(bytes32))


@external
@view
def latest_height(client_id: String[types.MAX_ID]) -> types.Height:
    return self.latest[client_id]


@external
@view
def timestamp_at(client_id: String[types.MAX_ID], height: types.Height) -> uint64:
    timestamp: uint64 = self.timestamps[client_id][self._key(height)]
    assert timestamp != 0, "test client: unknown height"
    return timestamp


@external
@view
def status(client_id: String[types.MAX_ID]) -> uint8:
    assert self.signer[client_id] != empty(address), "test client: unknown client"
    return types.CLIENT_ACTIVE
