# pragma version 0.4.3
"""
@title IBC handler: the EVM host's single entry point and the account that holds IBC state
@notice Client registry (ICS-02) and port binding (ICS-05) are here; connection, channel,
        packet and timeout logic live in four logic contracts this handler delegate-calls with the
        caller's calldata (as yui-ibc-solidity's IBCHandler does), so their code runs on this
        contract's storage. Each logic contract initialises the same `ibc/store.vy` module, so
        every provable value is in `commitments` (storage slot 0) of THIS account:
        keccak256(ICS-24 path) -> 32-byte value, proven by eth_getProof.
        This host's commitment prefix is this contract's 20-byte address.
"""

from ibc import types
from ibc import store

initializes: store

exports: (
    store.commitments,
    store.admin,
    store.connection_logic,
    store.channel_logic,
    store.packet_logic,
    store.timeout_logic,
    store.client_registry,
    store.client_impls,
    store.ports,
)


@deploy
def __init__(
    connection_logic: address, channel_logic: address, packet_logic: address, timeout_logic: address
):
    store.admin = msg.sender
    store.connection_logic = connection_logic
    store.channel_logic = channel_logic
    store.packet_logic = packet_logic
    store.timeout_logic = timeout_logic


# --------------------------------------------------------------------- ICS-02 clients
@external
def register_client(client_type: String[32], client: address):
    assert msg.sender == store.admin, "IBC: only the admin registers client types"
    assert store.client_registry[client_type] == empty(address), "IBC: client type already registered"
    assert client != empty(address), "IBC: client address is zero"
    store.client_registry[client_type] = client


@external
def create_client(
    client_type: String[32],
    client_state: Bytes[types.MAX_CLIENT_STATE],
    consensus_state: Bytes[types.MAX_CLIENT_STATE],
) -> String[types.MAX_ID]:
    client: address = store.client_registry[client_type]
    assert client != empty(address), "IBC: unknown client type"
    n: uint64 = store.next_client_sequence
    store.next_client_sequence = n + 1
    client_id: String[types.MAX_ID] = concat(client_type, "-", uint2str(n))
    store.client_impls[client_id] = client
    height: types.Height = extcall types.ILightClient(client).create_client(
        client_id, client_state, consensus_state
    )
    log types.ClientCreated(client_id=client_id, client_type=client_type)
    log types.ClientUpdated(
        client_id=client_id,
        revision_number=height.revision_number,
        revision_height=height.revision_height,
    )
    return client_id


@external
def update_client(
    client_id: String[types.MAX_ID], client_message: Bytes[types.MAX_CLIENT_MESSAGE]
) -> types.Height:
    client: address = store.client_of(client_id)
    height: types.Height = extcall types.ILightClient(client).update_client(client_id, client_message)
    log types.ClientUpdated(
        client_id=client_id,
        revision_number=height.revision_number,
        revision_height=height.revision_height,
    )
    return height


# --------------------------------------------------------------------- ICS-05 ports
@external
def bind_port(port_id: String[types.MAX_PORT], module: address):
    assert msg.sender == store.admin, "IBC: only the admin binds ports"
    assert len(port_id) >= 2, "IBC: port identifier too short"
    assert store.ports[port_id] == empty(address), "IBC: port already bound"
    assert module != empty(address), "IBC: module address is zero"
    store.ports[port_id] = module


# --------------------------------------------------------------------- queries
@external
@view
def get_commitment_prefix() -> Bytes[types.MAX_PREFIX]:
    return store.prefix()


@external
@view
def get_connection(connection_id: String[types.MAX_ID]) -> Bytes[4096]:
    """abi_encode of the connection end (kakehashi.ibc.types.ConnectionEnd.decode reads it)."""
    return abi_encode(store.connections[connection_id])


@external
@view
def get_channel(port_id: String[types.MAX_PORT], channel_id: String[types.MAX_ID]) -> Bytes[4096]:
    """abi_encode of the channel end (kakehashi.ibc.types.ChannelEnd.decode reads it)."""
    return abi_encode(store.channels[port_id][channel_id])


@external
@view
def get_commitment(path: Bytes[types.MAX_PATH]) -> bytes32:
    return store.get_commitment(path)


# --------------------------------------------------------------------- ICS-03 (delegated)
@external
def conn_open_init(
    client_id: String[types.MAX_ID],
    counterparty: types.ConnectionCounterparty,
    delay_period: uint64,
) -> String[types.MAX_ID]:
    r: Bytes[256] = raw_call(store.connection_logic, msg.data, max_outsize=256, is_delegate_call=True)
    return abi_decode(r, String[types.MAX_ID])


@external
def conn_open_try(
    counterparty: types.ConnectionCounterparty,
    delay_period: uint64,
    client_id: String[types.MAX_ID],
    counterparty_versions: DynArray[types.Version, types.MAX_VERSIONS],
    proof_init: Bytes[types.MAX_PROOF],
    proof_height: types.Height,
) -> String[types.MAX_ID]:
    r: Bytes[256] = raw_call(store.connection_logic, msg.data, max_outsize=256, is_delegate_call=True)
    return abi_decode(r, String[types.MAX_ID])


@external
def conn_open_ack(
    connection_id: String[types.MAX_ID],
    counterparty_connection_id: String[types.MAX_ID],
    version: types.Version,
    proof_try: Bytes[types.MAX_PROOF],
    proof_height: types.Height,
):
    raw_call(store.connection_logic, msg.data, is_delegate_call=True)


@external
def conn_open_confirm(
    connection_id: String[types.MAX_ID],
    proof_ack: Bytes[types.MAX_PROOF],
    proof_height: types.Height,
):
    raw_call(store.connection_logic, msg.data, is_delegate_call=True)


# --------------------------------------------------------------------- ICS-04 channels (delegated)
@external
def chan_open_init(
    port_id: String[types.MAX_PORT],
    ordering: uint8,
    connection_hops: DynArray[String[types.MAX_ID], 1],
    counterparty: types.ChannelCounterparty,
    version: String[types.MAX_VERSION],
) -> String[types.MAX_ID]:
    r: Bytes[256] = raw_call(store.channel_logic, msg.data, max_outsize=256, is_delegate_call=True)
    return abi_decode(r, String[types.MAX_ID])


@external
def chan_open_try(
    port_id: String[types.MAX_PORT],
    ordering: uint8,
    connection_hops: DynArray[String[types.MAX_ID], 1],
    counterparty: types.ChannelCounterparty,
    version: String[types.MAX_VERSION],
    counterparty_version: String[types.MAX_VERSION],
    proof_init: Bytes[types.MAX_PROOF],
    proof_height: types.Height,
) -> String[types.MAX_ID]:
    r: Bytes[256] = raw_call(store.channel_logic, msg.data, max_outsize=256, is_delegate_call=True)
    return abi_decode(r, String[types.MAX_ID])


@external
def chan_open_ack(
    port_id: String[types.MAX_PORT],
    channel_id: String[types.MAX_ID],
    counterparty_version: String[types.MAX_VERSION],
    counterparty_channel_id: String[types.MAX_ID],
    proof_try: Bytes[types.MAX_PROOF],
    proof_height: types.Height,
):
    raw_call(store.channel_logic, msg.data, is_delegate_call=True)


@external
def chan_open_confirm(
    port_id: String[types.MAX_PORT],
    channel_id: String[types.MAX_ID],
    proof_ack: Bytes[types.MAX_PROOF],
    proof_height: types.Height,
):
    raw_call(store.channel_logic, msg.data, is_delegate_call=True)


@external
def chan_close_init(port_id: String[types.MAX_PORT], channel_id: String[types.MAX_ID]):
    raw_call(store.channel_logic, msg.data, is_delegate_call=True)


@external
def chan_close_confirm(
    port_id: String[types.MAX_PORT],
    channel_id: String[types.MAX_ID],
    proof_init: Bytes[types.MAX_PROOF],
    proof_height: types.Height,
):
    raw_call(store.channel_logic, msg.data, is_delegate_call=True)


# --------------------------------------------------------------------- ICS-04 packets (delegated)
@external
def send_packet(
    source_port: String[types.MAX_PORT],
    source_channel: String[types.MAX_ID],
    timeout_height: types.Height,
    timeout_timestamp: uint64,
    data: Bytes[types.MAX_DATA],
) -> uint64:
    r: Bytes[32] = raw_call(store.packet_logic, msg.data, max_outsize=32, is_delegate_call=True)
    return abi_decode(r, uint64)


@external
def recv_packet(
    packet: types.Packet, proof: Bytes[types.MAX_PROOF], proof_height: types.Height
) -> Bytes[types.MAX_ACK]:
    r: Bytes[2112] = raw_call(store.packet_logic, msg.data, max_outsize=2112, is_delegate_call=True)
    return abi_decode(r, Bytes[types.MAX_ACK])


@external
def acknowledge_packet(
    packet: types.Packet,
    acknowledgement: Bytes[types.MAX_ACK],
    proof: Bytes[types.MAX_PROOF],
    proof_height: types.Height,
):
    raw_call(store.packet_logic, msg.data, is_delegate_call=True)


@external
def write_acknowledgement(packet: types.Packet, acknowledgement: Bytes[types.MAX_ACK]):
    raw_call(store.packet_logic, msg.data, is_delegate_call=True)


@external
def timeout_packet(
    packet: types.Packet,
    proof: Bytes[types.MAX_PROOF],
    proof_height: types.Height,
    next_sequence_recv: uint64,
):
    raw_call(store.timeout_logic, msg.data, is_delegate_call=True)


@external
def timeout_on_close(
    packet: types.Packet,
    proof_unreceived: Bytes[types.MAX_PROOF],
    proof_close: Bytes[types.MAX_PROOF],
    proof_height: types.Height,
    next_sequence_recv: uint64,
):
    raw_call(store.timeout_logic, msg.data, is_delegate_call=True)
