"""The echo application as a Python ICS-26 module, for the Corda-model host.

:class:`EchoModule` behaves as the EVM chain's ``contracts/ibc/echo_app.vy``, so either ledger can
be the other's echo peer:

* it accepts every channel, ordered or not, with whatever version is proposed (an empty
  proposal becomes :data:`VERSION`, ``"echo-1"``), and every close;
* it acknowledges a received packet with ``b"echo:" ‖ sha256(data)`` — **synchronously**: the
  acknowledgement is written in the same host version as the packet's receipt. The one
  exception, as in the EVM app, is a packet whose data is ``b"no-ack"``: it is received without
  an acknowledgement (ICS-04 asynchronous acknowledgement), which the host's operator may write
  later with ``host.ibc.write_acknowledgement``; such packets are kept in :attr:`awaiting_ack`;
* it counts what happened to its own packets (acknowledged, timed out) and to received ones.

The counters live in memory (a process's view, lost on restart) and are counted when a callback
returns: a host call that fails afterwards (a notary refusal) leaves its count in place. The
ledger's truth is the host's store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from kakehashi.ibc.types import ChannelCounterparty, Order, Packet

__all__ = ["ECHO_PREFIX", "NO_ACK", "VERSION", "EchoModule", "echo_ack"]

VERSION = "echo-1"
"""The channel version proposed when the opener proposes none."""

ECHO_PREFIX = b"echo:"
NO_ACK = b"no-ack"
"""Packet data the module receives without acknowledging (acknowledged later, if ever)."""


def echo_ack(data: bytes) -> bytes:
    """The echo acknowledgement of ``data``: ``b"echo:" ‖ sha256(data)``."""
    return ECHO_PREFIX + hashlib.sha256(data).digest()


class EchoModule:
    """ICS-26 callbacks of the echo application (see the module docstring)."""

    def __init__(self) -> None:
        self.received = 0
        self.acknowledged = 0
        self.timed_out = 0
        self.open_channels = 0
        self.closed_channels = 0
        self.last_data: bytes | None = None  # data of the last packet received
        self.last_ack: bytes | None = None  # last acknowledgement of one of our packets
        self.awaiting_ack: list[Packet] = []  # received b"no-ack" packets

    # -- channel handshake ----------------------------------------------------------------------

    def on_chan_open_init(
        self,
        order: Order,
        connection_hops: Sequence[str],
        port_id: str,
        channel_id: str,
        counterparty: ChannelCounterparty,
        version: str,
    ) -> str:
        return version or VERSION

    def on_chan_open_try(
        self,
        order: Order,
        connection_hops: Sequence[str],
        port_id: str,
        channel_id: str,
        counterparty: ChannelCounterparty,
        counterparty_version: str,
    ) -> str:
        self.open_channels += 1
        return counterparty_version

    def on_chan_open_ack(
        self, port_id: str, channel_id: str, counterparty_channel_id: str, counterparty_version: str
    ) -> None:
        self.open_channels += 1

    def on_chan_open_confirm(self, port_id: str, channel_id: str) -> None:
        return None

    def on_chan_close_init(self, port_id: str, channel_id: str) -> None:
        self.closed_channels += 1

    def on_chan_close_confirm(self, port_id: str, channel_id: str) -> None:
        self.closed_channels += 1

    # -- packets --------------------------------------------------------------------------------

    def on_recv_packet(self, packet: Packet) -> bytes | None:
        self.received += 1
        self.last_data = packet.data
        if packet.data == NO_ACK:
            self.awaiting_ack.append(packet)
            return None
        return echo_ack(packet.data)

    def on_acknowledgement_packet(self, packet: Packet, acknowledgement: bytes) -> None:
        self.acknowledged += 1
        self.last_ack = acknowledgement

    def on_timeout_packet(self, packet: Packet) -> None:
        self.timed_out += 1
