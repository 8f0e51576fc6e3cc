"""The IBC handler: ICS-02 client registry, ICS-03 connection and ICS-04 channel / packet logic.

Host-agnostic and pure: the handler reads and writes only the :class:`~kakehashi.ibc.store.IbcStore`
it is given, asks the host for its current height and time through two callables, verifies the
counterparty's state through :class:`~kakehashi.ibc.client.LightClient` objects, and calls the
application modules bound in a :class:`~kakehashi.ibc.router.Router`. The Corda-model host calls
it inside notarised transactions; the EVM host's Vyper contracts mirror it check for check.

**Atomicity.** Every method first validates its arguments and the stored state, verifies every
proof, then calls the application callback and checks its answer (the last steps that may
refuse: an application may raise, or return an invalid version or an empty acknowledgement), and
only then writes. So a call that raises (:class:`~kakehashi.errors.IbcError`, the client's
:class:`~kakehashi.errors.VerificationError`, or whatever an application callback raises) has
written nothing to the store. What an application callback wrote to its *own* state is the
application's (or the host's: :meth:`~kakehashi.ibc.store.MemoryStore.snapshot`) to undo.

**Host height and time.** ``host_height()`` and ``host_timestamp_ns()`` must give the height and
time of the block / host version that *will contain this call's writes*: a packet is received
only while that height and time are before the packet's timeouts, and a timeout is proven by the
receipt's absence at a counterparty height at or past the timeout — the two are exclusive only
if a write made "at height h" is visible in the state proven at h.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from kakehashi.errors import IbcError
from kakehashi.ibc import host
from kakehashi.ibc.client import ClientStatus, LightClient
from kakehashi.ibc.commitment import (
    RECEIPT,
    ack_commitment,
    end_commitment,
    packet_commitment_of,
    sequence_value,
)
from kakehashi.ibc.connection import (
    SUPPORTED_VERSIONS,
    check_offered_version,
    pick_version,
    supports_order,
)
from kakehashi.ibc.router import Router
from kakehashi.ibc.store import (
    COUNTER_CHANNELS,
    COUNTER_CLIENTS,
    COUNTER_CONNECTIONS,
    IbcStore,
)
from kakehashi.ibc.types import (
    ChannelCounterparty,
    ChannelEnd,
    ChannelState,
    ConnectionCounterparty,
    ConnectionEnd,
    ConnectionState,
    Height,
    Order,
    Packet,
    Version,
)

__all__ = ["IbcHandler"]


class IbcHandler:
    """One host's IBC core. ``prefix`` is this host's commitment prefix (what the counterparty
    passes to its client with every path it verifies here).

    Not done here, on purpose: a connection handshake does not check the counterparty's client
    of this ledger (ICS-03's ``verifyClientState`` / ``verifyClientConsensusState``): the two
    ledgers' clients are of different kinds and each host's client is chosen by its operators, so
    a TRY or ACK trusts the relayer to have created a suitable client on the other side (a bad
    one only hurts the side that holds it). For the same reason client and consensus states are
    kept privately (:meth:`~kakehashi.ibc.store.IbcStore.set_client`), not committed under the
    ICS-24 ``clients/...`` paths. Access control is the host's: only the module bound
    to a port may call :meth:`send_packet` / :meth:`write_acknowledgement` for it (ibc-go's
    capabilities), and only the host's operators :meth:`create_client`.
    """

    def __init__(
        self,
        store: IbcStore,
        *,
        prefix: bytes,
        host_height: Callable[[], Height],
        host_timestamp_ns: Callable[[], int],
        router: Router,
    ) -> None:
        if not prefix:
            raise IbcError("a host needs a non-empty commitment prefix")
        self.store = store
        self.prefix = prefix
        self.host_height = host_height
        self.host_timestamp_ns = host_timestamp_ns
        self.router = router

    # ------------------------------------------------------------------ ICS-02 client registry

    def create_client(self, client: LightClient) -> str:
        """Register ``client``; returns its identifier ``{client_type}-{n}``."""
        n = self.store.get_counter(COUNTER_CLIENTS)
        client_id = host.validate_client_id(f"{client.client_type}-{n}")
        status = client.status(self.host_timestamp_ns())
        if status is not ClientStatus.ACTIVE:
            raise IbcError(
                f"a new client must be Active, this {client.client_type} is {status.value}"
            )
        self.store.set_client(client_id, client)
        self.store.set_counter(COUNTER_CLIENTS, n + 1)
        return client_id

    def update_client(self, client_id: str, message: bytes, now_ns: int | None = None) -> Height:
        """Update an ACTIVE client with a header / statement; returns the height it proved.

        ``now_ns`` (the time the client checks expiry and clock drift against) defaults to this
        host's own clock; a host must never take it from an untrusted caller such as a relayer.
        The client's ``update`` raises before changing anything when the message does not verify.
        """
        now = self.host_timestamp_ns() if now_ns is None else now_ns
        client = self.client(client_id)
        status = client.status(now)
        if status is not ClientStatus.ACTIVE:
            raise IbcError(f"client {client_id} is {status.value}: it cannot be updated")
        height = client.update(message, now)
        self.store.set_client(client_id, client)
        return height

    def client(self, client_id: str) -> LightClient:
        """The client registered under ``client_id`` (IbcError when none is)."""
        client = self.store.get_client(host.validate_client_id(client_id))
        if client is None:
            raise IbcError(f"no client {client_id!r} on this host; create it first")
        return client

    def connection(self, connection_id: str) -> ConnectionEnd:
        """The connection end ``connection_id`` (IbcError when there is none)."""
        end = self.store.get_connection(host.validate_connection_id(connection_id))
        if end is None:
            raise IbcError(f"no connection {connection_id!r} on this host")
        return end

    def channel(self, port_id: str, channel_id: str) -> ChannelEnd:
        """The channel end ``port_id``/``channel_id`` (IbcError when there is none)."""
        end = self.store.get_channel(
            host.validate_port_id(port_id), host.validate_channel_id(channel_id)
        )
        if end is None:
            raise IbcError(f"no channel {channel_id!r} on port {port_id!r} on this host")
        return end

    # ------------------------------------------------------------------ ICS-03 connections

    def conn_open_init(
        self,
        client_id: str,
        counterparty: ConnectionCounterparty,
        version: Version | None = None,
        delay_period: int = 0,
    ) -> str:
        """Start a connection on ``client_id`` (state INIT); returns ``connection-{n}``.

        ``counterparty.connection_id`` must be empty; ``counterparty.prefix`` is the
        counterparty's commitment prefix. ``version`` None offers every supported version.
        ``delay_period`` must be 0 (see :func:`_check_delay_period`).
        """
        self._active_client(client_id)
        _check_connection_counterparty(counterparty, chosen=False)
        _check_delay_period(delay_period)
        if version is not None:
            check_offered_version(version)
        versions = SUPPORTED_VERSIONS if version is None else (version,)
        end = ConnectionEnd(client_id, versions, ConnectionState.INIT, counterparty, delay_period)
        connection_id, n = self._next_id(COUNTER_CONNECTIONS, "connection")
        self._write_connection(connection_id, end)
        self.store.set_counter(COUNTER_CONNECTIONS, n + 1)
        return connection_id

    def conn_open_try(
        self,
        client_id: str,
        counterparty: ConnectionCounterparty,
        counterparty_versions: Sequence[Version],
        delay_period: int,
        proof_init: bytes,
        proof_height: Height,
    ) -> str:
        """Answer a counterparty's INIT (state TRYOPEN); returns ``connection-{n}``.

        Verifies the counterparty's INIT end under ``counterparty.connection_id`` at
        ``proof_height``; picks a version among ``counterparty_versions``. The counterparty's
        client state (of this ledger) is not validated: see the class notes.
        """
        client = self._active_client(client_id)
        _check_connection_counterparty(counterparty, chosen=True)
        _check_delay_period(delay_period)
        version = pick_version(counterparty_versions)
        expected = ConnectionEnd(
            counterparty.client_id,
            tuple(counterparty_versions),
            ConnectionState.INIT,
            ConnectionCounterparty(client_id, "", self.prefix),
            delay_period,
        )
        self._verify_membership(
            client,
            proof_height,
            proof_init,
            counterparty.prefix,
            host.connection_path(counterparty.connection_id),
            end_commitment(expected),
            "the counterparty's INIT connection end",
        )
        end = ConnectionEnd(
            client_id, (version,), ConnectionState.TRYOPEN, counterparty, delay_period
        )
        connection_id, n = self._next_id(COUNTER_CONNECTIONS, "connection")
        self._write_connection(connection_id, end)
        self.store.set_counter(COUNTER_CONNECTIONS, n + 1)
        return connection_id

    def conn_open_ack(
        self,
        connection_id: str,
        counterparty_connection_id: str,
        version: Version,
        proof_try: bytes,
        proof_height: Height,
    ) -> None:
        """INIT → OPEN once the counterparty's TRYOPEN end (which chose ``version``) is proven."""
        end = self.connection(connection_id)
        _require_connection_state(connection_id, end, ConnectionState.INIT)
        host.validate_connection_id(counterparty_connection_id)
        check_offered_version(version)
        check_offered_version(version, end.versions)  # one of those INIT offered
        client = self._active_client(end.client_id)
        expected = ConnectionEnd(
            end.counterparty.client_id,
            (version,),
            ConnectionState.TRYOPEN,
            ConnectionCounterparty(end.client_id, connection_id, self.prefix),
            end.delay_period,
        )
        self._verify_membership(
            client,
            proof_height,
            proof_try,
            end.counterparty.prefix,
            host.connection_path(counterparty_connection_id),
            end_commitment(expected),
            "the counterparty's TRYOPEN connection end",
        )
        opened = replace(
            end,
            versions=(version,),
            state=ConnectionState.OPEN,
            counterparty=replace(end.counterparty, connection_id=counterparty_connection_id),
        )
        self._write_connection(connection_id, opened)

    def conn_open_confirm(self, connection_id: str, proof_ack: bytes, proof_height: Height) -> None:
        """TRYOPEN → OPEN once the counterparty's OPEN end is proven."""
        end = self.connection(connection_id)
        _require_connection_state(connection_id, end, ConnectionState.TRYOPEN)
        client = self._active_client(end.client_id)
        expected = ConnectionEnd(
            end.counterparty.client_id,
            end.versions,
            ConnectionState.OPEN,
            ConnectionCounterparty(end.client_id, connection_id, self.prefix),
            end.delay_period,
        )
        self._verify_membership(
            client,
            proof_height,
            proof_ack,
            end.counterparty.prefix,
            host.connection_path(end.counterparty.connection_id),
            end_commitment(expected),
            "the counterparty's OPEN connection end",
        )
        self._write_connection(connection_id, replace(end, state=ConnectionState.OPEN))

    # ------------------------------------------------------------------ ICS-04 channel handshake

    def chan_open_init(
        self,
        port_id: str,
        order: Order,
        connection_hops: Sequence[str],
        counterparty: ChannelCounterparty,
        version: str,
    ) -> str:
        """Open a channel from ``port_id`` (state INIT); returns ``channel-{n}``.

        ``counterparty.channel_id`` must be empty. The module on ``port_id`` may replace
        ``version`` (on_chan_open_init returns the version stored).
        """
        module = self.router.module(host.validate_port_id(port_id))
        hops = tuple(connection_hops)
        connection = self._channel_connection(hops, order, require_open=False)
        self._active_client(connection.client_id)
        _check_channel_counterparty(counterparty, chosen=False)
        channel_id, n = self._next_id(COUNTER_CHANNELS, "channel")
        agreed = module.on_chan_open_init(order, hops, port_id, channel_id, counterparty, version)
        end = ChannelEnd(ChannelState.INIT, order, counterparty, hops, _version(agreed))
        self._write_new_channel(port_id, channel_id, end)
        self.store.set_counter(COUNTER_CHANNELS, n + 1)
        return channel_id

    def chan_open_try(
        self,
        port_id: str,
        order: Order,
        connection_hops: Sequence[str],
        counterparty: ChannelCounterparty,
        counterparty_version: str,
        proof_init: bytes,
        proof_height: Height,
    ) -> str:
        """Answer a counterparty's channel INIT (state TRYOPEN); returns ``channel-{n}``."""
        module = self.router.module(host.validate_port_id(port_id))
        hops = tuple(connection_hops)
        connection = self._channel_connection(hops, order, require_open=True)
        client = self._active_client(connection.client_id)
        _check_channel_counterparty(counterparty, chosen=True)
        expected = ChannelEnd(
            ChannelState.INIT,
            order,
            ChannelCounterparty(port_id, ""),
            (connection.counterparty.connection_id,),
            counterparty_version,
        )
        self._verify_membership(
            client,
            proof_height,
            proof_init,
            connection.counterparty.prefix,
            host.channel_path(counterparty.port_id, counterparty.channel_id),
            end_commitment(expected),
            "the counterparty's INIT channel end",
        )
        channel_id, n = self._next_id(COUNTER_CHANNELS, "channel")
        agreed = module.on_chan_open_try(
            order, hops, port_id, channel_id, counterparty, counterparty_version
        )
        end = ChannelEnd(ChannelState.TRYOPEN, order, counterparty, hops, _version(agreed))
        self._write_new_channel(port_id, channel_id, end)
        self.store.set_counter(COUNTER_CHANNELS, n + 1)
        return channel_id

    def chan_open_ack(
        self,
        port_id: str,
        channel_id: str,
        counterparty_channel_id: str,
        counterparty_version: str,
        proof_try: bytes,
        proof_height: Height,
    ) -> None:
        """INIT → OPEN once the counterparty's TRYOPEN end is proven."""
        end = self.channel(port_id, channel_id)
        _require_channel_state(port_id, channel_id, end, ChannelState.INIT)
        host.validate_channel_id(counterparty_channel_id)
        connection = self._channel_connection(end.connection_hops, end.ordering, require_open=True)
        client = self._active_client(connection.client_id)
        expected = ChannelEnd(
            ChannelState.TRYOPEN,
            end.ordering,
            ChannelCounterparty(port_id, channel_id),
            (connection.counterparty.connection_id,),
            counterparty_version,
        )
        self._verify_membership(
            client,
            proof_height,
            proof_try,
            connection.counterparty.prefix,
            host.channel_path(end.counterparty.port_id, counterparty_channel_id),
            end_commitment(expected),
            "the counterparty's TRYOPEN channel end",
        )
        self.router.module(port_id).on_chan_open_ack(
            port_id, channel_id, counterparty_channel_id, counterparty_version
        )
        opened = replace(
            end,
            state=ChannelState.OPEN,
            version=counterparty_version,
            counterparty=replace(end.counterparty, channel_id=counterparty_channel_id),
        )
        self._write_channel(port_id, channel_id, opened)

    def chan_open_confirm(
        self, port_id: str, channel_id: str, proof_ack: bytes, proof_height: Height
    ) -> None:
        """TRYOPEN → OPEN once the counterparty's OPEN end is proven."""
        end = self.channel(port_id, channel_id)
        _require_channel_state(port_id, channel_id, end, ChannelState.TRYOPEN)
        self._verify_counterparty_channel(
            port_id, channel_id, end, ChannelState.OPEN, proof_ack, proof_height
        )
        self.router.module(port_id).on_chan_open_confirm(port_id, channel_id)
        self._write_channel(port_id, channel_id, replace(end, state=ChannelState.OPEN))

    def chan_close_init(self, port_id: str, channel_id: str) -> None:
        """Close a channel from this end (the module may refuse)."""
        end = self.channel(port_id, channel_id)
        if end.state is ChannelState.CLOSED:
            raise IbcError(f"channel {port_id}/{channel_id} is already CLOSED")
        self._channel_connection(end.connection_hops, end.ordering, require_open=True)
        self.router.module(port_id).on_chan_close_init(port_id, channel_id)
        self._write_channel(port_id, channel_id, replace(end, state=ChannelState.CLOSED))

    def chan_close_confirm(
        self, port_id: str, channel_id: str, proof_init: bytes, proof_height: Height
    ) -> None:
        """Close this end once the counterparty's CLOSED end is proven."""
        end = self.channel(port_id, channel_id)
        if end.state is ChannelState.CLOSED:
            raise IbcError(f"channel {port_id}/{channel_id} is already CLOSED")
        self._verify_counterparty_channel(
            port_id, channel_id, end, ChannelState.CLOSED, proof_init, proof_height
        )
        self.router.module(port_id).on_chan_close_confirm(port_id, channel_id)
        self._write_channel(port_id, channel_id, replace(end, state=ChannelState.CLOSED))

    # ------------------------------------------------------------------ ICS-04 packets

    def send_packet(
        self,
        source_port: str,
        source_channel: str,
        timeout_height: Height,
        timeout_timestamp: int,
        data: bytes,
    ) -> Packet:
        """Commit a packet on an OPEN channel; returns it (with its sequence) for relaying.

        Refused when the timeout has already passed on the counterparty as far as this host's
        client of it knows (its latest height and the timestamp there).
        """
        end = self.channel(source_port, source_channel)
        _require_channel_state(source_port, source_channel, end, ChannelState.OPEN)
        if not isinstance(data, bytes) or not data:
            raise IbcError("packet data must be non-empty bytes (ICS-04)")
        connection = self._channel_connection(end.connection_hops, end.ordering, require_open=False)
        client = self._active_client(connection.client_id)
        send_path = host.next_sequence_send_path(source_port, source_channel)
        sequence = self._sequence(send_path)
        packet = Packet(
            sequence,
            source_port,
            source_channel,
            end.counterparty.port_id,
            end.counterparty.channel_id,
            data,
            timeout_height,
            timeout_timestamp,
        )
        latest = client.latest_height()
        if not timeout_height.is_zero() and latest >= timeout_height:
            raise IbcError(
                f"timeout height {timeout_height} has already passed on the counterparty "
                f"(its latest verified height is {latest}); choose a later timeout"
            )
        latest_time = client.timestamp_at(latest)
        if timeout_timestamp != 0 and latest_time >= timeout_timestamp:
            raise IbcError(
                f"timeout timestamp {timeout_timestamp} has already passed on the counterparty "
                f"(its time at height {latest} is {latest_time}); choose a later timeout"
            )
        commitment = packet_commitment_of(packet)
        next_value = sequence_value(sequence + 1)
        self.store.set(
            host.packet_commitment_path(source_port, source_channel, sequence), commitment
        )
        self.store.set(send_path, next_value)
        return packet

    def recv_packet(
        self, packet: Packet, proof_commitment: bytes, proof_height: Height
    ) -> bytes | None:
        """Receive a relayed packet; returns the acknowledgement written, or None when the
        application will acknowledge later (:meth:`write_acknowledgement`)."""
        port, channel_id = packet.destination_port, packet.destination_channel
        end = self.channel(port, channel_id)
        _require_channel_state(port, channel_id, end, ChannelState.OPEN)
        _require_packet_from_counterparty(packet, end)
        connection = self._channel_connection(end.connection_hops, end.ordering, require_open=True)
        module = self.router.module(port)
        now_height, now_ns = self.host_height(), self.host_timestamp_ns()
        if not packet.timeout_height.is_zero() and now_height >= packet.timeout_height:
            raise IbcError(
                f"packet {packet.sequence} timed out at height {packet.timeout_height} "
                f"(this host is at {now_height}): it can only be timed out on its source now"
            )
        if packet.timeout_timestamp != 0 and now_ns >= packet.timeout_timestamp:
            raise IbcError(
                f"packet {packet.sequence} timed out at {packet.timeout_timestamp} ns "
                f"(this host's time is {now_ns}): it can only be timed out on its source now"
            )
        receipt_path = host.packet_receipt_path(port, channel_id, packet.sequence)
        recv_path = host.next_sequence_recv_path(port, channel_id)
        next_recv = 0
        if end.ordering is Order.UNORDERED:
            if self.store.get(receipt_path) is not None:
                raise IbcError(
                    f"packet {packet.sequence} on {port}/{channel_id} was already received"
                )
        else:
            next_recv = self._sequence(recv_path)
            if packet.sequence < next_recv:
                raise IbcError(
                    f"packet {packet.sequence} on {port}/{channel_id} was already received"
                )
            if packet.sequence > next_recv:
                raise IbcError(
                    f"ORDERED channel {port}/{channel_id} expects packet {next_recv} next, "
                    f"not {packet.sequence}: relay the earlier packets first"
                )
        self._verify_membership(
            self._active_client(connection.client_id),
            proof_height,
            proof_commitment,
            connection.counterparty.prefix,
            host.packet_commitment_path(packet.source_port, packet.source_channel, packet.sequence),
            packet_commitment_of(packet),
            f"the commitment of packet {packet.sequence}",
        )
        ack = module.on_recv_packet(packet)
        ack_value = None if ack is None else ack_commitment(_ack_bytes(ack))
        if end.ordering is Order.UNORDERED:
            self.store.set(receipt_path, RECEIPT)
        else:
            self.store.set(recv_path, sequence_value(next_recv + 1))
        if ack_value is not None:
            self.store.set(host.ack_path(port, channel_id, packet.sequence), ack_value)
        return ack

    def write_acknowledgement(self, packet: Packet, acknowledgement: bytes) -> None:
        """Commit the acknowledgement of a received packet (asynchronous acknowledgement)."""
        port, channel_id = packet.destination_port, packet.destination_channel
        end = self.channel(port, channel_id)
        _require_channel_state(port, channel_id, end, ChannelState.OPEN)
        _require_packet_from_counterparty(packet, end)
        if end.ordering is Order.UNORDERED:
            received = (
                self.store.get(host.packet_receipt_path(port, channel_id, packet.sequence))
                is not None
            )
        else:
            received = packet.sequence < self._sequence(
                host.next_sequence_recv_path(port, channel_id)
            )
        if not received:
            raise IbcError(
                f"packet {packet.sequence} on {port}/{channel_id} was not received: "
                f"nothing to acknowledge"
            )
        path = host.ack_path(port, channel_id, packet.sequence)
        if self.store.get(path) is not None:
            raise IbcError(
                f"packet {packet.sequence} on {port}/{channel_id} is already acknowledged"
            )
        self.store.set(path, ack_commitment(_ack_bytes(acknowledgement)))

    def acknowledge_packet(
        self, packet: Packet, acknowledgement: bytes, proof_acked: bytes, proof_height: Height
    ) -> None:
        """Close a sent packet with the counterparty's proven acknowledgement.

        The channel may be OPEN or CLOSED. ICS-04 and ibc-go require OPEN, but then a packet
        received just before its channel closed (an ORDERED channel closes when a later packet
        times out) could never end: its receipt rules out a timeout. Accepting the proven
        acknowledgement is safe — it proves the packet was received, which no timeout proof can
        also prove unreceived — and it lets every packet end exactly once.
        """
        port, channel_id = packet.source_port, packet.source_channel
        end = self.channel(port, channel_id)
        if end.state not in (ChannelState.OPEN, ChannelState.CLOSED):
            raise IbcError(
                f"channel {port}/{channel_id} is {end.state.name}: no packet was sent on it yet"
            )
        _require_packet_to_counterparty(packet, end)
        connection = self._channel_connection(end.connection_hops, end.ordering, require_open=True)
        commitment_path = self._check_commitment(packet)
        ack_value = ack_commitment(_ack_bytes(acknowledgement))
        ack_seq_path = host.next_sequence_ack_path(port, channel_id)
        next_ack = 0
        if end.ordering is Order.ORDERED:
            next_ack = self._sequence(ack_seq_path)
            if packet.sequence != next_ack:
                raise IbcError(
                    f"ORDERED channel {port}/{channel_id} expects the acknowledgement of packet "
                    f"{next_ack} next, not {packet.sequence}"
                )
        self._verify_membership(
            self._active_client(connection.client_id),
            proof_height,
            proof_acked,
            connection.counterparty.prefix,
            host.ack_path(packet.destination_port, packet.destination_channel, packet.sequence),
            ack_value,
            f"the acknowledgement of packet {packet.sequence}",
        )
        self.router.module(port).on_acknowledgement_packet(packet, acknowledgement)
        self.store.delete(commitment_path)
        if end.ordering is Order.ORDERED:
            self.store.set(ack_seq_path, sequence_value(next_ack + 1))

    def timeout_packet(
        self, packet: Packet, proof_unreceived: bytes, proof_height: Height, next_sequence_recv: int
    ) -> None:
        """Close a sent packet that the counterparty provably did not receive before its timeout.

        UNORDERED: ``proof_unreceived`` proves the receipt's absence. ORDERED: it proves the
        counterparty's next receive sequence ``next_sequence_recv`` (≤ the packet's sequence),
        and the channel closes. ``next_sequence_recv`` is ignored on UNORDERED channels.
        The channel may be in any state (as in ibc-go): a packet in flight when its channel
        closed can still be timed out.
        """
        end, client, connection, commitment_path = self._timeout_context(packet)
        self._check_proof_height(client, proof_height)
        counterparty_time = client.timestamp_at(proof_height)
        by_height = not packet.timeout_height.is_zero() and proof_height >= packet.timeout_height
        by_time = packet.timeout_timestamp != 0 and counterparty_time >= packet.timeout_timestamp
        if not (by_height or by_time):
            raise IbcError(
                f"packet {packet.sequence} has not timed out at counterparty height "
                f"{proof_height} (time {counterparty_time} ns; timeouts: height "
                f"{packet.timeout_height}, timestamp {packet.timeout_timestamp}): relay a later "
                f"header, or the packet itself"
            )
        self._verify_unreceived(
            client, connection, end, packet, proof_unreceived, proof_height, next_sequence_recv
        )
        self._execute_timeout(packet, end, commitment_path)

    def timeout_on_close(
        self,
        packet: Packet,
        proof_unreceived: bytes,
        proof_close: bytes,
        proof_height: Height,
        next_sequence_recv: int,
    ) -> None:
        """Close a sent packet whose counterparty channel end is CLOSED (proven by
        ``proof_close``) and which it provably did not receive (as in :meth:`timeout_packet`),
        whatever the packet's timeouts."""
        end, client, connection, commitment_path = self._timeout_context(packet)
        expected = ChannelEnd(
            ChannelState.CLOSED,
            end.ordering,
            ChannelCounterparty(packet.source_port, packet.source_channel),
            (connection.counterparty.connection_id,),
            end.version,
        )
        self._verify_membership(
            client,
            proof_height,
            proof_close,
            connection.counterparty.prefix,
            host.channel_path(packet.destination_port, packet.destination_channel),
            end_commitment(expected),
            "the counterparty's CLOSED channel end",
        )
        self._verify_unreceived(
            client, connection, end, packet, proof_unreceived, proof_height, next_sequence_recv
        )
        self._execute_timeout(packet, end, commitment_path)

    # ------------------------------------------------------------------ internals

    def _active_client(self, client_id: str) -> LightClient:
        client = self.client(client_id)
        status = client.status(self.host_timestamp_ns())
        if status is not ClientStatus.ACTIVE:
            raise IbcError(
                f"client {client_id} is {status.value}: nothing can be verified through it"
            )
        return client

    def _check_proof_height(self, client: LightClient, proof_height: Height) -> None:
        if proof_height.is_zero():
            raise IbcError("a proof height must not be zero")
        latest = client.latest_height()
        if proof_height > latest:
            raise IbcError(
                f"proof height {proof_height} is above the client's latest height {latest}: "
                f"update the client first"
            )

    def _verify_membership(
        self,
        client: LightClient,
        proof_height: Height,
        proof: bytes,
        prefix: bytes,
        path: bytes,
        value: bytes,
        what: str,
    ) -> None:
        self._check_proof_height(client, proof_height)
        if not proof:
            raise IbcError(f"a proof of {what} is required")
        client.verify_membership(proof_height, proof, prefix, path, value)

    def _next_id(self, counter: str, kind: str) -> tuple[str, int]:
        n = self.store.get_counter(counter)
        return f"{kind}-{n}", n

    def _sequence(self, path: bytes) -> int:
        value = self.store.get(path)
        if value is None:
            raise IbcError(f"no sequence is stored under {path.decode()}: corrupt channel state")
        return int.from_bytes(value, "big")

    def _write_connection(self, connection_id: str, end: ConnectionEnd) -> None:
        value = end_commitment(end)  # encodes, so validates, before anything is written
        self.store.set_connection(connection_id, end)
        self.store.set(host.connection_path(connection_id), value)

    def _write_channel(self, port_id: str, channel_id: str, end: ChannelEnd) -> None:
        value = end_commitment(end)
        self.store.set_channel(port_id, channel_id, end)
        self.store.set(host.channel_path(port_id, channel_id), value)

    def _write_new_channel(self, port_id: str, channel_id: str, end: ChannelEnd) -> None:
        one = sequence_value(1)
        self._write_channel(port_id, channel_id, end)
        self.store.set(host.next_sequence_send_path(port_id, channel_id), one)
        self.store.set(host.next_sequence_recv_path(port_id, channel_id), one)
        self.store.set(host.next_sequence_ack_path(port_id, channel_id), one)

    def _channel_connection(
        self, hops: tuple[str, ...], order: Order, *, require_open: bool
    ) -> ConnectionEnd:
        """The one connection a channel runs over; checks it allows ``order``."""
        if len(hops) != 1:
            raise IbcError(f"a channel runs over exactly one connection, got hops {list(hops)!r}")
        if order not in (Order.ORDERED, Order.UNORDERED):
            raise IbcError(f"channel ordering must be ORDERED or UNORDERED, got {order!r}")
        connection = self.connection(hops[0])
        if require_open and connection.state is not ConnectionState.OPEN:
            raise IbcError(
                f"connection {hops[0]} is {connection.state.name}, not OPEN: finish its handshake"
            )
        if len(connection.versions) != 1:
            raise IbcError(
                f"connection {hops[0]} has not negotiated a single version yet "
                f"(it offers {len(connection.versions)})"
            )
        if not supports_order(connection.versions[0], order):
            raise IbcError(f"connection {hops[0]}'s version does not allow {order.name} channels")
        return connection

    def _verify_counterparty_channel(
        self,
        port_id: str,
        channel_id: str,
        end: ChannelEnd,
        state: ChannelState,
        proof: bytes,
        proof_height: Height,
    ) -> None:
        """Verify that the counterparty's end of this channel is in ``state``."""
        connection = self._channel_connection(end.connection_hops, end.ordering, require_open=True)
        if not end.counterparty.channel_id:
            raise IbcError(
                f"channel {port_id}/{channel_id} does not know its counterparty channel yet"
            )
        expected = ChannelEnd(
            state,
            end.ordering,
            ChannelCounterparty(port_id, channel_id),
            (connection.counterparty.connection_id,),
            end.version,
        )
        self._verify_membership(
            self._active_client(connection.client_id),
            proof_height,
            proof,
            connection.counterparty.prefix,
            host.channel_path(end.counterparty.port_id, end.counterparty.channel_id),
            end_commitment(expected),
            f"the counterparty's {state.name} channel end",
        )

    def _check_commitment(self, packet: Packet) -> bytes:
        """The path of ``packet``'s commitment, after checking it is there and is this packet."""
        path = host.packet_commitment_path(
            packet.source_port, packet.source_channel, packet.sequence
        )
        stored = self.store.get(path)
        if stored is None:
            raise IbcError(
                f"no commitment for packet {packet.sequence} on "
                f"{packet.source_port}/{packet.source_channel}: it was never sent, or was "
                f"already acknowledged or timed out"
            )
        if stored != packet_commitment_of(packet):
            raise IbcError(
                f"packet {packet.sequence} on {packet.source_port}/{packet.source_channel} is "
                f"not the packet that was sent (data or timeouts differ)"
            )
        return path

    def _timeout_context(
        self, packet: Packet
    ) -> tuple[ChannelEnd, LightClient, ConnectionEnd, bytes]:
        end = self.channel(packet.source_port, packet.source_channel)
        _require_packet_to_counterparty(packet, end)
        connection = self._channel_connection(end.connection_hops, end.ordering, require_open=False)
        self.router.module(packet.source_port)
        commitment_path = self._check_commitment(packet)
        return end, self._active_client(connection.client_id), connection, commitment_path

    def _verify_unreceived(
        self,
        client: LightClient,
        connection: ConnectionEnd,
        end: ChannelEnd,
        packet: Packet,
        proof: bytes,
        proof_height: Height,
        next_sequence_recv: int,
    ) -> None:
        """ICS-04: the counterparty had not received ``packet`` at ``proof_height``."""
        prefix = connection.counterparty.prefix
        port, channel_id = packet.destination_port, packet.destination_channel
        if end.ordering is Order.ORDERED:
            value = sequence_value(next_sequence_recv)
            if next_sequence_recv > packet.sequence:
                raise IbcError(
                    f"packet {packet.sequence} was received (the counterparty's next receive "
                    f"sequence is {next_sequence_recv}): it cannot time out"
                )
            self._verify_membership(
                client,
                proof_height,
                proof,
                prefix,
                host.next_sequence_recv_path(port, channel_id),
                value,
                "the counterparty's next receive sequence",
            )
            return
        self._check_proof_height(client, proof_height)
        if not proof:
            raise IbcError("a proof of the packet receipt's absence is required")
        client.verify_non_membership(
            proof_height, proof, prefix, host.packet_receipt_path(port, channel_id, packet.sequence)
        )

    def _execute_timeout(self, packet: Packet, end: ChannelEnd, commitment_path: bytes) -> None:
        self.router.module(packet.source_port).on_timeout_packet(packet)
        self.store.delete(commitment_path)
        if end.ordering is Order.ORDERED and end.state is not ChannelState.CLOSED:
            # ICS-04: an ORDERED channel cannot skip a sequence, so a timeout ends it.
            self._write_channel(
                packet.source_port, packet.source_channel, replace(end, state=ChannelState.CLOSED)
            )


def _check_connection_counterparty(counterparty: ConnectionCounterparty, *, chosen: bool) -> None:
    host.validate_client_id(counterparty.client_id)
    if chosen:
        host.validate_connection_id(counterparty.connection_id)
    elif counterparty.connection_id:
        raise IbcError(
            "the counterparty's connection identifier must be empty at INIT: "
            "the counterparty chooses it in its TRY"
        )
    if not counterparty.prefix:
        raise IbcError("the counterparty's commitment prefix must not be empty")


def _check_delay_period(delay_period: int) -> None:
    """Only a zero ICS-03 delay period is accepted.

    A non-zero delay asks every packet proof to be older than the delay (in time and blocks)
    on this host, which needs the time and height at which each consensus state was *processed*
    here; the :class:`~kakehashi.ibc.client.LightClient` interface does not record them, so a
    delay would be stored but not enforced. Refusing it is the honest answer.
    """
    if delay_period != 0:
        raise IbcError(
            f"connection delay period {delay_period!r} is not supported: this host enforces no "
            f"delay, so it only opens connections with delay period 0"
        )


def _check_channel_counterparty(counterparty: ChannelCounterparty, *, chosen: bool) -> None:
    host.validate_port_id(counterparty.port_id)
    if chosen:
        host.validate_channel_id(counterparty.channel_id)
    elif counterparty.channel_id:
        raise IbcError(
            "the counterparty's channel identifier must be empty at INIT: "
            "the counterparty chooses it in its TRY"
        )


def _require_connection_state(
    connection_id: str, end: ConnectionEnd, state: ConnectionState
) -> None:
    if end.state is not state:
        raise IbcError(
            f"connection {connection_id} is {end.state.name}; this step needs it {state.name}"
        )


def _require_channel_state(
    port_id: str, channel_id: str, end: ChannelEnd, state: ChannelState
) -> None:
    if end.state is not state:
        raise IbcError(
            f"channel {port_id}/{channel_id} is {end.state.name}; this step needs it {state.name}"
        )


def _require_packet_from_counterparty(packet: Packet, end: ChannelEnd) -> None:
    if (packet.source_port, packet.source_channel) != (
        end.counterparty.port_id,
        end.counterparty.channel_id,
    ):
        raise IbcError(
            f"packet {packet.sequence} comes from {packet.source_port}/{packet.source_channel}, "
            f"but channel {packet.destination_port}/{packet.destination_channel}'s counterparty "
            f"is {end.counterparty.port_id}/{end.counterparty.channel_id}"
        )


def _require_packet_to_counterparty(packet: Packet, end: ChannelEnd) -> None:
    if (packet.destination_port, packet.destination_channel) != (
        end.counterparty.port_id,
        end.counterparty.channel_id,
    ):
        raise IbcError(
            f"packet {packet.sequence} is addressed to "
            f"{packet.destination_port}/{packet.destination_channel}, but channel "
            f"{packet.source_port}/{packet.source_channel}'s counterparty is "
            f"{end.counterparty.port_id}/{end.counterparty.channel_id}"
        )


def _version(version: object) -> str:
    if not isinstance(version, str):
        raise IbcError(
            f"an application must return its channel version as a string, got {version!r}"
        )
    return version


def _ack_bytes(ack: object) -> bytes:
    if not isinstance(ack, bytes) or not ack:
        raise IbcError(f"an acknowledgement must be non-empty bytes, got {ack!r}")
    return ack
