# pragma version 0.4.3
"""
@title ICS-04 channel handshake and closing (logic contract; the handler delegate-calls it)
@notice INIT -> TRYOPEN -> OPEN, and close init / close confirm. Steps that depend on the
        counterparty verify the channel end it must have committed under
        `channelEnds/ports/{port}/channels/{channel}`. The application bound to the port is
        called back at every step and refuses by reverting.
"""

from ibc import types
from ibc import store

initializes: store


@internal
def _new_channel(
    port_id: String[types.MAX_PORT], end: types.ChannelEnd
) -> String[types.MAX_ID]:
    n: uint64 = store.next_channel_sequence
    store.next_channel_sequence = n + 1
    channel_id: String[types.MAX_ID] = concat("channel-", uint2str(n))
    store.set_channel(port_id, channel_id, end)
    one: bytes32 = convert(convert(1, uint256), bytes32)
    store.set_commitment(types.sequence_path(0, port_id, channel_id), one)
    store.set_commitment(types.sequence_path(1, port_id, channel_id), one)
    store.set_commitment(types.sequence_path(2, port_id, channel_id), one)
    return channel_id


@internal
@view
def _check_hops(
    connection_hops: DynArray[String[types.MAX_ID], 1], ordering: uint8, require_open: bool
) -> store.ConnectionRef:
    assert len(connection_hops) == 1, "IBC: exactly one connection hop"
    assert ordering == types.ORDER_ORDERED or ordering == types.ORDER_UNORDERED, "IBC: bad ordering"
    connection: store.ConnectionRef = store.connection_ref(connection_hops[0], require_open)
    # The negotiated connection version must allow this ordering (ICS-03 features).
    versions: DynArray[types.Version, types.MAX_VERSIONS] = store.connections[connection_hops[0]].versions
    assert len(versions) == 1, "IBC: connection version not negotiated"
    feature: String[32] = "ORDER_UNORDERED"
    if ordering == types.ORDER_ORDERED:
        feature = "ORDER_ORDERED"
    allowed: bool = False
    for f: String[32] in versions[0].features:
        if keccak256(f) == keccak256(feature):
            allowed = True
    assert allowed, "IBC: the connection version does not allow this ordering"
    return connection


@internal
@pure
def _counterparty_hops(connection: store.ConnectionRef) -> DynArray[String[types.MAX_ID], 1]:
    return [connection.counterparty_connection_id]


@external
def chan_open_init(
    port_id: String[types.MAX_PORT],
    ordering: uint8,
    connection_hops: DynArray[String[types.MAX_ID], 1],
    counterparty: types.ChannelCounterparty,
    version: String[types.MAX_VERSION],
) -> String[types.MAX_ID]:
    self._check_hops(connection_hops, ordering, False)
    assert len(counterparty.channel_id) == 0, "IBC: counterparty channel id must be empty"
    module: address = store.module_of(port_id)
    channel_id: String[types.MAX_ID] = self._new_channel(
        port_id,
        types.ChannelEnd(
            state=types.CHAN_INIT,
            ordering=ordering,
            counterparty=counterparty,
            connection_hops=connection_hops,
            version=version,
        ),
    )
    extcall types.IIBCModule(module).on_chan_open_init(port_id, channel_id, ordering, version)
    log types.ChannelOpen(step=1, port_id=port_id, channel_id=channel_id)
    return channel_id


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
    connection: store.ConnectionRef = self._check_hops(connection_hops, ordering, True)
    assert len(counterparty.channel_id) > 0, "IBC: counterparty channel id is empty"
    module: address = store.module_of(port_id)
    expected: types.ChannelEnd = types.ChannelEnd(
        state=types.CHAN_INIT,
        ordering=ordering,
        counterparty=types.ChannelCounterparty(port_id=port_id, channel_id=""),
        connection_hops=self._counterparty_hops(connection),
        version=counterparty_version,
    )
    assert store.verify_membership(
        connection, proof_height, proof_init,
        types.channel_path(counterparty.port_id, counterparty.channel_id),
        keccak256(abi_encode(expected))
    ), "IBC: channel proof does not verify"
    channel_id: String[types.MAX_ID] = self._new_channel(
        port_id,
        types.ChannelEnd(
            state=types.CHAN_TRYOPEN,
            ordering=ordering,
            counterparty=counterparty,
            connection_hops=connection_hops,
            version=version,
        ),
    )
    extcall types.IIBCModule(module).on_chan_open_try(
        port_id, channel_id, ordering, counterparty_version
    )
    log types.ChannelOpen(step=2, port_id=port_id, channel_id=channel_id)
    return channel_id


@external
def chan_open_ack(
    port_id: String[types.MAX_PORT],
    channel_id: String[types.MAX_ID],
    counterparty_version: String[types.MAX_VERSION],
    counterparty_channel_id: String[types.MAX_ID],
    proof_try: Bytes[types.MAX_PROOF],
    proof_height: types.Height,
):
    end: types.ChannelEnd = store.channels[port_id][channel_id]
    assert end.state == types.CHAN_INIT, "IBC: channel not in INIT"
    assert len(counterparty_channel_id) > 0, "IBC: counterparty channel id is empty"
    connection: store.ConnectionRef = store.open_connection_of(end)
    expected: types.ChannelEnd = types.ChannelEnd(
        state=types.CHAN_TRYOPEN,
        ordering=end.ordering,
        counterparty=types.ChannelCounterparty(port_id=port_id, channel_id=channel_id),
        connection_hops=self._counterparty_hops(connection),
        version=counterparty_version,
    )
    assert store.verify_membership(
        connection, proof_height, proof_try,
        types.channel_path(end.counterparty.port_id, counterparty_channel_id),
        keccak256(abi_encode(expected))
    ), "IBC: channel proof does not verify"
    end.state = types.CHAN_OPEN
    end.version = counterparty_version
    end.counterparty.channel_id = counterparty_channel_id
    store.set_channel(port_id, channel_id, end)
    extcall types.IIBCModule(store.module_of(port_id)).on_chan_open_ack(
        port_id, channel_id, counterparty_version
    )
    log types.ChannelOpen(step=3, port_id=port_id, channel_id=channel_id)


@external
def chan_open_confirm(
    port_id: String[types.MAX_PORT],
    channel_id: String[types.MAX_ID],
    proof_ack: Bytes[types.MAX_PROOF],
    proof_height: types.Height,
):
    end: types.ChannelEnd = store.channels[port_id][channel_id]
    assert end.state == types.CHAN_TRYOPEN, "IBC: channel not in TRYOPEN"
    connection: store.ConnectionRef = store.open_connection_of(end)
    expected: types.ChannelEnd = types.ChannelEnd(
        state=types.CHAN_OPEN,
        ordering=end.ordering,
        counterparty=types.ChannelCounterparty(port_id=port_id, channel_id=channel_id),
        connection_hops=self._counterparty_hops(connection),
        version=end.version,
    )
    assert store.verify_membership(
        connection, proof_height, proof_ack,
        types.channel_path(end.counterparty.port_id, end.counterparty.channel_id),
        keccak256(abi_encode(expected))
    ), "IBC: channel proof does not verify"
    end.state = types.CHAN_OPEN
    store.set_channel(port_id, channel_id, end)
    extcall types.IIBCModule(store.module_of(port_id)).on_chan_open_confirm(port_id, channel_id)
    log types.ChannelOpen(step=4, port_id=port_id, channel_id=channel_id)


@external
def chan_close_init(port_id: String[types.MAX_PORT], channel_id: String[types.MAX_ID]):
    end: types.ChannelEnd = store.channels[port_id][channel_id]
    assert end.state != 0, "IBC: unknown channel"
    assert end.state != types.CHAN_CLOSED, "IBC: channel already closed"
    store.open_connection_of(end)
    # The application decides whether its channel may be closed (ICS-04 chanCloseInit).
    extcall types.IIBCModule(store.module_of(port_id)).on_chan_close_init(port_id, channel_id)
    end.state = types.CHAN_CLOSED
    store.set_channel(port_id, channel_id, end)
    log types.ChannelOpen(step=5, port_id=port_id, channel_id=channel_id)


@external
def chan_close_confirm(
    port_id: String[types.MAX_PORT],
    channel_id: String[types.MAX_ID],
    proof_init: Bytes[types.MAX_PROOF],
    proof_height: types.Height,
):
    end: types.ChannelEnd = store.channels[port_id][channel_id]
    assert end.state != 0, "IBC: unknown channel"
    assert end.state != types.CHAN_CLOSED, "IBC: channel already closed"
    connection: store.ConnectionRef = store.open_connection_of(end)
    expected: types.ChannelEnd = types.ChannelEnd(
        state=types.CHAN_CLOSED,
        ordering=end.ordering,
        counterparty=types.ChannelCounterparty(port_id=port_id, channel_id=channel_id),
        connection_hops=self._counterparty_hops(connection),
        version=end.version,
    )
    assert store.verify_membership(
        connection, proof_height, proof_init,
        types.channel_path(end.counterparty.port_id, end.counterparty.channel_id),
        keccak256(abi_encode(expected))
    ), "IBC: channel proof does not verify"
    end.state = types.CHAN_CLOSED
    store.set_channel(port_id, channel_id, end)
    extcall types.IIBCModule(store.module_of(port_id)).on_chan_close_confirm(port_id, channel_id)
    log types.ChannelOpen(step=6, port_id=port_id, channel_id=channel_id)
