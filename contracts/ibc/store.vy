# pragma version 0.4.3
"""
@title IBC store: the handler's storage, shared by the handler and its logic contracts
@notice The handler (`ibc/handler.vy`) and every logic contract it delegate-calls
        (`ibc/connection.vy`, `ibc/channel.vy`, `ibc/packet.vy`, `ibc/timeout.vy`) initialise this one module
        and nothing else, so all of them see the same storage layout. `commitments` is declared
        first: it is storage slot 0 in every one of them (checked by the tests), and the value
        under an ICS-24 path is at slot keccak256(0 ‖ keccak256(path)) of the handler account,
        which eth_getProof proves against a block's state root.
"""

from ibc import types

# Every provable value (ICS-23/24): keccak256(path) -> 32-byte value. MUST stay first (slot 0).
commitments: public(HashMap[bytes32, bytes32])

admin: public(address)
connection_logic: public(address)
channel_logic: public(address)
packet_logic: public(address)
timeout_logic: public(address)

# ICS-02 client registry: client type -> light-client contract; client id -> contract
client_registry: public(HashMap[String[32], address])
client_impls: public(HashMap[String[types.MAX_ID], address])
next_client_sequence: public(uint64)

# ICS-03 / ICS-04 ends (their commitments are in `commitments`)
connections: HashMap[String[types.MAX_ID], types.ConnectionEnd]
next_connection_sequence: public(uint64)
channels: HashMap[String[types.MAX_PORT], HashMap[String[types.MAX_ID], types.ChannelEnd]]
next_channel_sequence: public(uint64)

# ICS-05 port -> application module
ports: public(HashMap[String[types.MAX_PORT], address])


@internal
def set_commitment(path: Bytes[types.MAX_PATH], word: bytes32):
    self.commitments[keccak256(path)] = word


@internal
@view
def get_commitment(path: Bytes[types.MAX_PATH]) -> bytes32:
    return self.commitments[keccak256(path)]


@internal
def set_connection(connection_id: String[types.MAX_ID], end: types.ConnectionEnd):
    self.connections[connection_id] = end
    self.set_commitment(types.connection_path(connection_id), keccak256(abi_encode(end)))


@internal
def set_channel(port_id: String[types.MAX_PORT], channel_id: String[types.MAX_ID], end: types.ChannelEnd):
    self.channels[port_id][channel_id] = end
    self.set_commitment(types.channel_path(port_id, channel_id), keccak256(abi_encode(end)))


@internal
@view
def client_of(client_id: String[types.MAX_ID]) -> address:
    client: address = self.client_impls[client_id]
    assert client != empty(address), "IBC: unknown client"
    assert staticcall types.ILightClient(client).status(client_id) == types.CLIENT_ACTIVE, "IBC: client not active"
    return client


struct ConnectionRef:
    # What packet and channel steps need of a connection end: reading only these fields of
    # the stored end saves ~15 cold storage reads per step.
    client_id: String[types.MAX_ID]
    prefix: Bytes[types.MAX_PREFIX]
    counterparty_connection_id: String[types.MAX_ID]


@internal
@view
def connection_ref(connection_id: String[types.MAX_ID], require_open: bool) -> ConnectionRef:
    state: uint8 = self.connections[connection_id].state
    assert state != 0, "IBC: unknown connection"
    assert not require_open or state == types.CONN_OPEN, "IBC: connection not open"
    return ConnectionRef(
        client_id=self.connections[connection_id].client_id,
        prefix=self.connections[connection_id].counterparty.prefix,
        counterparty_connection_id=self.connections[connection_id].counterparty.connection_id,
    )


@internal
@view
def verify_membership(
    connection: ConnectionRef,
    height: types.Height,
    proof: Bytes[types.MAX_PROOF],
    path: Bytes[types.MAX_PATH],
    commitment: bytes32,
) -> bool:
    # ICS-03: proofs about the counterparty are under its commitment prefix, via our client.
    client: address = self.client_of(connection.client_id)
    return staticcall types.ILightClient(client).verify_membership(
        connection.client_id, height, proof, connection.prefix, path, commitment
    )


@internal
@view
def verify_non_membership(
    connection: ConnectionRef,
    height: types.Height,
    proof: Bytes[types.MAX_PROOF],
    path: Bytes[types.MAX_PATH],
) -> bool:
    client: address = self.client_of(connection.client_id)
    return staticcall types.ILightClient(client).verify_non_membership(
        connection.client_id, height, proof, connection.prefix, path
    )


@internal
@view
def open_connection_of(channel: types.ChannelEnd) -> ConnectionRef:
    return self.connection_ref(channel.connection_hops[0], True)


@internal
@view
def module_of(port_id: String[types.MAX_PORT]) -> address:
    module: address = self.ports[port_id]
    assert module != empty(address), "IBC: port not bound"
    return module


@internal
@view
def prefix() -> Bytes[types.MAX_PREFIX]:
    # This host's commitment prefix: the handler's address (what a counterparty's client of
    # this chain proves storage of). Under delegatecall, self is the handler.
    return slice(convert(self, bytes32), 12, 20)


# ---------------------------------------------------------------- packet helpers
@internal
@view
def sequence(kind: uint8, port_id: String[types.MAX_PORT], channel_id: String[types.MAX_ID]) -> uint64:
    return convert(convert(self.get_commitment(types.sequence_path(kind, port_id, channel_id)), uint256), uint64)


@internal
def set_sequence(
    kind: uint8, port_id: String[types.MAX_PORT], channel_id: String[types.MAX_ID], n: uint64
):
    self.set_commitment(
        types.sequence_path(kind, port_id, channel_id), convert(convert(n, uint256), bytes32)
    )


@internal
@view
def check_sent(packet: types.Packet, channel: types.ChannelEnd):
    # The packet is ours, unacknowledged and not timed out: its commitment is still stored.
    assert types.same_string(packet.destination_port, channel.counterparty.port_id), "IBC: wrong destination port"
    assert types.same_string(packet.destination_channel, channel.counterparty.channel_id), "IBC: wrong destination channel"
    stored: bytes32 = self.get_commitment(
        types.packet_path(0, packet.source_port, packet.source_channel, packet.sequence)
    )
    assert stored != empty(bytes32), "IBC: packet not sent or already settled"
    assert stored == types.packet_commitment(
        packet.data, packet.timeout_height, packet.timeout_timestamp
    ), "IBC: packet does not match its commitment"
