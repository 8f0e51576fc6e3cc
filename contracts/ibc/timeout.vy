# pragma version 0.4.3
"""
@title ICS-04 packet timeouts (logic contract; the handler delegate-calls it)
@notice timeout_packet (by height or timestamp, against the counterparty's height / time at
        the proof height) and timeout_on_close. The counterparty must provably not have
        received the packet: no receipt (UNORDERED) or its next sequence recv at most the
        packet's (ORDERED). On an ORDERED channel a timeout closes the channel.
"""

from ibc import types
from ibc import store

initializes: store


@internal
def _timeout_context(packet: types.Packet) -> (types.ChannelEnd, store.ConnectionRef):
    # A packet in flight when its channel closed can still be timed out (as in ibc-go).
    channel: types.ChannelEnd = store.channels[packet.source_port][packet.source_channel]
    assert channel.state != 0, "IBC: unknown channel"
    store.check_sent(packet, channel)
    connection: store.ConnectionRef = store.connection_ref(channel.connection_hops[0], False)
    return channel, connection


@internal
def _verify_unreceived(
    connection: store.ConnectionRef,
    channel: types.ChannelEnd,
    packet: types.Packet,
    proof: Bytes[types.MAX_PROOF],
    proof_height: types.Height,
    next_sequence_recv: uint64,
):
    # ICS-04: the counterparty had not received the packet at the proof height.
    if channel.ordering == types.ORDER_ORDERED:
        # ...its next sequence recv was still at most this packet's sequence.
        assert next_sequence_recv <= packet.sequence, "IBC: packet was received"
        assert store.verify_membership(
            connection, proof_height, proof,
            types.sequence_path(1, packet.destination_port, packet.destination_channel),
            convert(convert(next_sequence_recv, uint256), bytes32),
        ), "IBC: next sequence recv proof does not verify"
    else:
        assert store.verify_non_membership(
            connection, proof_height, proof,
            types.packet_path(2, packet.destination_port, packet.destination_channel, packet.sequence),
        ), "IBC: receipt absence proof does not verify"


@internal
def _execute_timeout(packet: types.Packet, channel: types.ChannelEnd):
    store.set_commitment(
        types.packet_path(0, packet.source_port, packet.source_channel, packet.sequence),
        empty(bytes32),
    )
    if channel.ordering == types.ORDER_ORDERED and channel.state != types.CHAN_CLOSED:
        # An ORDERED channel cannot skip a sequence, so a timeout ends it.
        closed: types.ChannelEnd = channel
        closed.state = types.CHAN_CLOSED
        store.set_channel(packet.source_port, packet.source_channel, closed)
    log types.TimeoutPacket(sequence=packet.sequence, packet=abi_encode(packet))
    extcall types.IIBCModule(store.module_of(packet.source_port)).on_timeout_packet(
        packet, msg.sender
    )


@external
def timeout_packet(
    packet: types.Packet,
    proof: Bytes[types.MAX_PROOF],
    proof_height: types.Height,
    next_sequence_recv: uint64,
):
    channel: types.ChannelEnd = empty(types.ChannelEnd)
    connection: store.ConnectionRef = empty(store.ConnectionRef)
    channel, connection = self._timeout_context(packet)
    # ICS-04 timeoutPacket: the counterparty had reached the timeout at the proof height.
    reached: bool = not types.height_is_zero(packet.timeout_height) and types.height_gte(
        proof_height, packet.timeout_height
    )
    if not reached and packet.timeout_timestamp != 0:
        client: address = store.client_of(connection.client_id)
        then: uint64 = staticcall types.ILightClient(client).timestamp_at(
            connection.client_id, proof_height
        )
        reached = then >= packet.timeout_timestamp
    assert reached, "IBC: packet timeout not reached"
    self._verify_unreceived(connection, channel, packet, proof, proof_height, next_sequence_recv)
    self._execute_timeout(packet, channel)


@external
def timeout_on_close(
    packet: types.Packet,
    proof_unreceived: Bytes[types.MAX_PROOF],
    proof_close: Bytes[types.MAX_PROOF],
    proof_height: types.Height,
    next_sequence_recv: uint64,
):
    # ICS-04 timeoutOnClose: the counterparty's end is CLOSED and never received the packet,
    # whatever the packet's timeouts.
    channel: types.ChannelEnd = empty(types.ChannelEnd)
    connection: store.ConnectionRef = empty(store.ConnectionRef)
    channel, connection = self._timeout_context(packet)
    expected: types.ChannelEnd = types.ChannelEnd(
        state=types.CHAN_CLOSED,
        ordering=channel.ordering,
        counterparty=types.ChannelCounterparty(
            port_id=packet.source_port, channel_id=packet.source_channel
        ),
        connection_hops=[connection.counterparty_connection_id],
        version=channel.version,
    )
    assert store.verify_membership(
        connection, proof_height, proof_close,
        types.channel_path(packet.destination_port, packet.destination_channel),
        keccak256(abi_encode(expected)),
    ), "IBC: channel proof does not verify"
    self._verify_unreceived(connection, channel, packet, proof_unreceived, proof_height, next_sequence_recv)
    self._execute_timeout(packet, channel)
