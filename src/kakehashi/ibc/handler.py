"""The IBC handler: ICS-02 client registry, ICS-03 connection and ICS-04 channel / packet logic.

Host-agnostic and pure: the handler reads and writes only the :class:`~kakehashi.ibc.store.IbcStore`
it is given, asks the host for its current height and time through two callables, verifies the
counterparty's state through :class:`~kakehashi.ibc.client.LightClient` objects, and calls the
application modules bound in a :class:`~kakehashi.ibc.router.Router`. The Corda-model host calls
it inside notarised transactions; the EVM host's Vyper contracts mirror it check for check.

**Atomicity.** Every method first validates its arguments and the stored state, verifies every
proof, then calls the application callback (the last step that may refuse), and only then writes.
So a call that raises (:class:`~kakehashi.errors.IbcError`, the client's
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

from kakehashi.ibc.client import LightClient
from kakehashi.ibc.router import Router
from kakehashi.ibc.store import IbcStore
from kakehashi.ibc.types import (
    ChannelCounterparty,
    ChannelEnd,
    ConnectionCounterparty,
    ConnectionEnd,
    Height,
    Order,
    Packet,
    Version,
)

__all__ = ["IbcHandler"]


class IbcHandler:
    """One host's IBC core. ``prefix`` is this host's commitment prefix (what the counterparty
    passes to its client with every path it verifies here)."""

    def __init__(
        self,
        store: IbcStore,
        *,
        prefix: bytes,
        host_height: Callable[[], Height],
        host_timestamp_ns: Callable[[], int],
        router: Router,
    ) -> None:
        self.store = store
        self.prefix = prefix
        self.host_height = host_height
        self.host_timestamp_ns = host_timestamp_ns
        self.router = router

    # ------------------------------------------------------------------ ICS-02 client registry

    def create_client(self, client: LightClient) -> str:
        """Register ``client``; returns its identifier ``{client_type}-{n}``."""
        raise NotImplementedError

    def update_client(self, client_id: str, message: bytes, now_ns: int) -> Height:
        """Update an ACTIVE client with a header / statement; returns the height it proved."""
        raise NotImplementedError

    def client(self, client_id: str) -> LightClient:
        """The client registered under ``client_id`` (IbcError when none is)."""
        raise NotImplementedError

    def connection(self, connection_id: str) -> ConnectionEnd:
        """The connection end ``connection_id`` (IbcError when there is none)."""
        raise NotImplementedError

    def channel(self, port_id: str, channel_id: str) -> ChannelEnd:
        """The channel end ``port_id``/``channel_id`` (IbcError when there is none)."""
        raise NotImplementedError

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
        """
        raise NotImplementedError

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
        client state (of this ledger) is not validated: see the module notes.
        """
        raise NotImplementedError

    def conn_open_ack(
        self,
        connection_id: str,
        counterparty_connection_id: str,
        version: Version,
        proof_try: bytes,
        proof_height: Height,
    ) -> None:
        """INIT → OPEN once the counterparty's TRYOPEN end (which chose ``version``) is proven."""
        raise NotImplementedError

    def conn_open_confirm(self, connection_id: str, proof_ack: bytes, proof_height: Height) -> None:
        """TRYOPEN → OPEN once the counterparty's OPEN end is proven."""
        raise NotImplementedError

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
        raise NotImplementedError

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
        raise NotImplementedError

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
        raise NotImplementedError

    def chan_open_confirm(
        self, port_id: str, channel_id: str, proof_ack: bytes, proof_height: Height
    ) -> None:
        """TRYOPEN → OPEN once the counterparty's OPEN end is proven."""
        raise NotImplementedError

    def chan_close_init(self, port_id: str, channel_id: str) -> None:
        """Close a channel from this end (the module may refuse)."""
        raise NotImplementedError

    def chan_close_confirm(
        self, port_id: str, channel_id: str, proof_init: bytes, proof_height: Height
    ) -> None:
        """Close this end once the counterparty's CLOSED end is proven."""
        raise NotImplementedError

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
        raise NotImplementedError

    def recv_packet(
        self, packet: Packet, proof_commitment: bytes, proof_height: Height
    ) -> bytes | None:
        """Receive a relayed packet; returns the acknowledgement written, or None when the
        application will acknowledge later (:meth:`write_acknowledgement`)."""
        raise NotImplementedError

    def write_acknowledgement(self, packet: Packet, acknowledgement: bytes) -> None:
        """Commit the acknowledgement of a received packet (asynchronous acknowledgement)."""
        raise NotImplementedError

    def acknowledge_packet(
        self, packet: Packet, acknowledgement: bytes, proof_acked: bytes, proof_height: Height
    ) -> None:
        """Close a sent packet with the counterparty's proven acknowledgement."""
        raise NotImplementedError

    def timeout_packet(
        self, packet: Packet, proof_unreceived: bytes, proof_height: Height, next_sequence_recv: int
    ) -> None:
        """Close a sent packet that the counterparty provably did not receive before its timeout.

        UNORDERED: ``proof_unreceived`` proves the receipt's absence. ORDERED: it proves the
        counterparty's next receive sequence ``next_sequence_recv`` (≤ the packet's sequence),
        and the channel closes. ``next_sequence_recv`` is ignored on UNORDERED channels.
        """
        raise NotImplementedError

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
        raise NotImplementedError
