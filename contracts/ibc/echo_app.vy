# pragma version 0.4.3
"""
@title Echo application: a minimal IBC app (ICS-26 module) for tests and benchmarks
@notice Sends whatever its caller asks, acknowledges every received packet with
        b"echo:" ‖ sha256(data) and counts what happened to its own packets.
        A packet whose data is b"no-ack" is received without an acknowledgement; anyone may
        then have it written with write_acknowledgement (ICS-04 asynchronous acknowledgement).
"""

from ibc import types

implements: types.IIBCModule

handler: public(immutable(address))

received: public(uint256)
acknowledged: public(uint256)
timed_out: public(uint256)
last_ack: public(Bytes[types.MAX_ACK])
open_channels: public(uint256)
closed_channels: public(uint256)


@deploy
def __init__(ibc_handler: address):
    handler = ibc_handler


interface IHandler:
    def send_packet(
        source_port: String[types.MAX_PORT],
        source_channel: String[types.MAX_ID],
        timeout_height: types.Height,
        timeout_timestamp: uint64,
        data: Bytes[types.MAX_DATA],
    ) -> uint64: nonpayable
    def write_acknowledgement(
        packet: types.Packet, acknowledgement: Bytes[types.MAX_ACK]
    ): nonpayable


@external
def send_packet(
    source_port: String[types.MAX_PORT],
    source_channel: String[types.MAX_ID],
    timeout_height: types.Height,
    timeout_timestamp: uint64,
    data: Bytes[types.MAX_DATA],
) -> uint64:
    return extcall IHandler(handler).send_packet(
        source_port, source_channel, timeout_height, timeout_timestamp, data
    )


@external
def write_acknowledgement(packet: types.Packet, acknowledgement: Bytes[types.MAX_ACK]):
    # The asynchronous acknowledgement of a packet received without one.
    extcall IHandler(handler).write_acknowledgement(packet, acknowledgement)


@internal
@view
def _only_handler():
    assert msg.sender == handler, "echo: only the IBC handler calls back"


@external
def on_chan_open_init(
    port_id: String[types.MAX_PORT], channel_id: String[types.MAX_ID], ordering: uint8,
    version: String[types.MAX_VERSION]
):
    self._only_handler()


@external
def on_chan_open_try(
    port_id: String[types.MAX_PORT], channel_id: String[types.MAX_ID], ordering: uint8,
    counterparty_version: String[types.MAX_VERSION]
):
    self._only_handler()
    self.open_channels += 1


@external
def on_chan_open_ack(
    port_id: String[types.MAX_PORT], channel_id: String[types.MAX_ID],
    counterparty_version: String[types.MAX_VERSION]
):
    self._only_handler()
    self.open_channels += 1


@external
def on_chan_open_confirm(port_id: String[types.MAX_PORT], channel_id: String[types.MAX_ID]):
    self._only_handler()


@external
def on_chan_close_init(port_id: String[types.MAX_PORT], channel_id: String[types.MAX_ID]):
    self._only_handler()
    self.closed_channels += 1


@external
def on_chan_close_confirm(port_id: String[types.MAX_PORT], channel_id: String[types.MAX_ID]):
    self._only_handler()
    self.closed_channels += 1


@external
def on_recv_packet(packet: types.Packet, relayer: address) -> Bytes[types.MAX_ACK]:
    self._only_handler()
    self.received += 1
    if packet.data == b"no-ack":
        return b""
    return concat(b"echo:", sha256(packet.data))


@external
def on_acknowledgement_packet(
    packet: types.Packet, acknowledgement: Bytes[types.MAX_ACK], relayer: address
):
    self._only_handler()
    self.acknowledged += 1
    self.last_ack = acknowledgement


@external
def on_timeout_packet(packet: types.Packet, relayer: address):
    self._only_handler()
    self.timed_out += 1
