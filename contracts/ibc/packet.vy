# pragma version 0.4.3
"""
@title ICS-04 packets (logic contract; the handler delegate-calls it)
@notice send, recv (receipt on UNORDERED channels, next sequence on ORDERED ones) with the
        acknowledgement written at once (or later by the module: write_acknowledgement),
        acknowledge. Timeouts are in `ibc/timeout.vy`. This chain's height is
        (0, block.number) and its time block.timestamp in nanoseconds.
"""

from ibc import types
from ibc import store

initializes: store


@internal
@view
def _open_channel(
    port_id: String[types.MAX_PORT], channel_id: String[types.MAX_ID]
) -> types.ChannelEnd:
    end: types.ChannelEnd = store.channels[port_id][channel_id]
    assert end.state == types.CHAN_OPEN, "IBC: channel not open"
    return end


@external
def send_packet(
    source_port: String[types.MAX_PORT],
    source_channel: String[types.MAX_ID],
    timeout_height: types.Height,
    timeout_timestamp: uint64,
    data: Bytes[types.MAX_DATA],
) -> uint64:
    # ICS-04 sendPacket: only the module bound to the port sends on it.
    assert msg.sender == store.module_of(source_port), "IBC: caller does not own the port"
    channel: types.ChannelEnd = self._open_channel(source_port, source_channel)
    assert len(data) > 0, "IBC: packet data is empty"
    assert not types.height_is_zero(timeout_height) or timeout_timestamp != 0, "IBC: packet has no timeout"
    connection: store.ConnectionRef = store.open_connection_of(channel)
    client: address = store.client_of(connection.client_id)
    latest: types.Height = staticcall types.ILightClient(client).latest_height(connection.client_id)
    assert types.height_is_zero(timeout_height) or not types.height_gte(latest, timeout_height), "IBC: timeout height already passed on the counterparty"
    if timeout_timestamp != 0:
        now: uint64 = staticcall types.ILightClient(client).timestamp_at(connection.client_id, latest)
        assert now < timeout_timestamp, "IBC: timeout timestamp already passed on the counterparty"
    sequence: uint64 = store.sequence(0, source_port, source_channel)
    store.set_sequence(0, source_port, source_channel, sequence + 1)
    store.set_commitment(
        types.packet_path(0, source_port, source_channel, sequence),
        types.packet_commitment(data, timeout_height, timeout_timestamp),
    )
    packet: types.Packet = types.Packet(
        sequence=sequence,
        source_port=source_port,
        source_channel=source_channel,
        destination_port=channel.counterparty.port_id,
        destination_channel=channel.counterparty.channel_id,
        data=data,
        timeout_height=timeout_height,
        timeout_timestamp=timeout_timestamp,
    )
    log types.SendPacket(sequence=sequence, packet=abi_encode(packet))
    return sequence


@external
def recv_packet(
    packet: types.Packet, proof: Bytes[types.MAX_PROOF], proof_height: types.Height
) -> Bytes[types.MAX_ACK]:
    port_id: String[types.MAX_PORT] = packet.destination_port
    channel_id: String[types.MAX_ID] = packet.destination_channel
    channel: types.ChannelEnd = self._open_channel(port_id, channel_id)
    assert types.same_string(packet.source_port, channel.counterparty.port_id), "IBC: wrong source port"
    assert types.same_string(packet.source_channel, channel.counterparty.channel_id), "IBC: wrong source channel"
    connection: store.ConnectionRef = store.open_connection_of(channel)
    # ICS-04: refuse a packet whose timeout has passed on this chain.
    assert types.height_is_zero(packet.timeout_height) or not types.height_gte(
        types.Height(revision_number=0, revision_height=convert(block.number, uint64)),
        packet.timeout_height,
    ), "IBC: packet timed out (height)"
    assert packet.timeout_timestamp == 0 or convert(block.timestamp, uint64) * types.NS_PER_SECOND < packet.timeout_timestamp, "IBC: packet timed out (timestamp)"
    assert store.verify_membership(
        connection, proof_height, proof,
        types.packet_path(0, packet.source_port, packet.source_channel, packet.sequence),
        types.packet_commitment(packet.data, packet.timeout_height, packet.timeout_timestamp),
    ), "IBC: packet commitment proof does not verify"
    if channel.ordering == types.ORDER_UNORDERED:
        receipt_path: Bytes[types.MAX_PATH] = types.packet_path(2, port_id, channel_id, packet.sequence)
        assert store.get_commitment(receipt_path) == empty(bytes32), "IBC: packet already received"
        store.set_commitment(receipt_path, types.RECEIPT)
    else:
        expected: uint64 = store.sequence(1, port_id, channel_id)
        assert packet.sequence >= expected, "IBC: packet already received"
        assert packet.sequence == expected, "IBC: packet out of order (next sequence recv)"
        store.set_sequence(1, port_id, channel_id, expected + 1)
    log types.RecvPacket(sequence=packet.sequence, packet=abi_encode(packet))
    ack: Bytes[types.MAX_ACK] = extcall types.IIBCModule(store.module_of(port_id)).on_recv_packet(
        packet, msg.sender
    )
    if len(ack) > 0:
        self._write_ack(packet, ack)  # synchronous acknowledgement
    return ack


@internal
def _write_ack(packet: types.Packet, ack: Bytes[types.MAX_ACK]):
    # ICS-04 writeAcknowledgement: once per packet, never empty.
    ack_path: Bytes[types.MAX_PATH] = types.packet_path(
        1, packet.destination_port, packet.destination_channel, packet.sequence
    )
    assert store.get_commitment(ack_path) == empty(bytes32), "IBC: acknowledgement already written"
    store.set_commitment(ack_path, sha256(ack))
    log types.WriteAcknowledgement(
        sequence=packet.sequence, packet=abi_encode(packet), acknowledgement=ack
    )


@external
def write_acknowledgement(packet: types.Packet, acknowledgement: Bytes[types.MAX_ACK]):
    # Asynchronous acknowledgement by the module that received the packet without one.
    port_id: String[types.MAX_PORT] = packet.destination_port
    channel_id: String[types.MAX_ID] = packet.destination_channel
    assert msg.sender == store.module_of(port_id), "IBC: caller does not own the port"
    channel: types.ChannelEnd = self._open_channel(port_id, channel_id)
    assert types.same_string(packet.source_port, channel.counterparty.port_id), "IBC: wrong source port"
    assert types.same_string(packet.source_channel, channel.counterparty.channel_id), "IBC: wrong source channel"
    assert len(acknowledgement) > 0, "IBC: empty acknowledgement"
    if channel.ordering == types.ORDER_UNORDERED:
        assert store.get_commitment(types.packet_path(2, port_id, channel_id, packet.sequence)) != empty(bytes32), "IBC: packet not received"
    else:
        assert packet.sequence < store.sequence(1, port_id, channel_id), "IBC: packet not received"
    self._write_ack(packet, acknowledgement)


@external
def acknowledge_packet(
    packet: types.Packet,
    acknowledgement: Bytes[types.MAX_ACK],
    proof: Bytes[types.MAX_PROOF],
    proof_height: types.Height,
):
    # OPEN or CLOSED (as kakehashi.ibc.handler): a packet received just before its ORDERED
    # channel closed on a later timeout must still end, and a proven ack shows it was received.
    channel: types.ChannelEnd = store.channels[packet.source_port][packet.source_channel]
    assert channel.state == types.CHAN_OPEN or channel.state == types.CHAN_CLOSED, "IBC: channel not open"
    store.check_sent(packet, channel)
    connection: store.ConnectionRef = store.open_connection_of(channel)
    assert len(acknowledgement) > 0, "IBC: empty acknowledgement"
    assert store.verify_membership(
        connection, proof_height, proof,
        types.packet_path(1, packet.destination_port, packet.destination_channel, packet.sequence),
        sha256(acknowledgement),
    ), "IBC: acknowledgement proof does not verify"
    if channel.ordering == types.ORDER_ORDERED:
        expected: uint64 = store.sequence(2, packet.source_port, packet.source_channel)
        assert packet.sequence == expected, "IBC: acknowledgement out of order"
        store.set_sequence(2, packet.source_port, packet.source_channel, expected + 1)
    store.set_commitment(
        types.packet_path(0, packet.source_port, packet.source_channel, packet.sequence),
        empty(bytes32),
    )
    log types.AcknowledgePacket(sequence=packet.sequence, packet=abi_encode(packet))
    extcall types.IIBCModule(store.module_of(packet.source_port)).on_acknowledgement_packet(
        packet, acknowledgement, msg.sender
    )
