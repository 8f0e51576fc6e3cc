"""ICS-05 port binding and ICS-26 routing: which application module owns which port.

An application implements :class:`IbcModule`; the host binds it to a port in a :class:`Router`
and hands the router to the :class:`~kakehashi.ibc.handler.IbcHandler`, which calls the module
after it has validated a message and verified its proofs, and before it writes anything. A
callback refuses by raising (any :class:`~kakehashi.errors.KakehashiError`, typically
:class:`~kakehashi.errors.IbcError`); the handler then writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from kakehashi.errors import IbcError
from kakehashi.ibc.host import validate_port_id
from kakehashi.ibc.types import ChannelCounterparty, Order, Packet

__all__ = ["IbcModule", "Router"]


class IbcModule(Protocol):
    """ICS-26 module callbacks (ibc-go's ``porttypes.IBCModule``, without capabilities)."""

    def on_chan_open_init(
        self,
        order: Order,
        connection_hops: Sequence[str],
        port_id: str,
        channel_id: str,
        counterparty: ChannelCounterparty,
        version: str,
    ) -> str:
        """Accept a channel this host opens; return the version to propose (``version`` or, when
        it is empty, the module's default)."""
        ...

    def on_chan_open_try(
        self,
        order: Order,
        connection_hops: Sequence[str],
        port_id: str,
        channel_id: str,
        counterparty: ChannelCounterparty,
        counterparty_version: str,
    ) -> str:
        """Accept a channel the counterparty opened; return the version this end agrees to."""
        ...

    def on_chan_open_ack(
        self, port_id: str, channel_id: str, counterparty_channel_id: str, counterparty_version: str
    ) -> None: ...

    def on_chan_open_confirm(self, port_id: str, channel_id: str) -> None: ...

    def on_chan_close_init(self, port_id: str, channel_id: str) -> None:
        """Raise to refuse closing the channel from this end."""
        ...

    def on_chan_close_confirm(self, port_id: str, channel_id: str) -> None: ...

    def on_recv_packet(self, packet: Packet) -> bytes | None:
        """Process a received packet; return its acknowledgement (non-empty bytes), or None to
        acknowledge later through :meth:`~kakehashi.ibc.handler.IbcHandler.write_acknowledgement`.
        Raising refuses the packet: it stays unreceived and may be relayed again or time out."""
        ...

    def on_acknowledgement_packet(self, packet: Packet, acknowledgement: bytes) -> None: ...

    def on_timeout_packet(self, packet: Packet) -> None: ...


class Router:
    """Port identifier → module (ICS-05 ``bindPort``; a port is bound once)."""

    def __init__(self) -> None:
        self._modules: dict[str, IbcModule] = {}

    def bind(self, port_id: str, module: IbcModule) -> None:
        validate_port_id(port_id)
        if port_id in self._modules:
            raise IbcError(f"port {port_id!r} is already bound to a module")
        self._modules[port_id] = module

    def module(self, port_id: str) -> IbcModule:
        try:
            return self._modules[port_id]
        except KeyError:
            raise IbcError(
                f"no application is bound to port {port_id!r}; bind one with Router.bind"
            ) from None

    def ports(self) -> list[str]:
        return sorted(self._modules)
