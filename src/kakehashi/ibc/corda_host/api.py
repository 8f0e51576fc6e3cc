"""What a relayer needs of a Corda-model IBC host, wherever it runs.

:class:`CordaHostApi` is implemented by :class:`~kakehashi.ibc.corda_host.host.CordaIbcHost`
itself (in process) and by the HTTP client of a node that serves its host
(:mod:`kakehashi.ibc.corda_host.remote`). Reads are of notarised host versions; writes are
batches of ICS-26 messages (:mod:`kakehashi.ibc.msgs`), each batch one host version.

:func:`default_client_factory` is how a host turns a ``MsgCreateClient`` into a light client:
it accepts LCP clients (:data:`~kakehashi.ibc.clients.lcp.CLIENT_TYPE`, state from
:func:`~kakehashi.ibc.clients.lcp.encode_client_state`, consensus state = the enclave's
create-client proxy message), checking key expiry against the host's own clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from kakehashi.errors import IbcError
from kakehashi.ibc import msgs
from kakehashi.ibc.client import LightClient
from kakehashi.ibc.clients import lcp as lcp_client
from kakehashi.ibc.types import ChannelEnd, ConnectionEnd, Height, Packet
from kakehashi.lightclients.corda import CordaClientState

__all__ = ["CordaHostApi", "Submission", "default_client_factory"]


@dataclass(frozen=True, slots=True)
class Submission:
    """A batch the host applied: each message's answer (:func:`kakehashi.ibc.msgs.apply`), the
    host height holding the change and the host transaction id (empty: nothing changed)."""

    values: tuple[Any, ...]
    height: Height
    tx_id: bytes = b""


@runtime_checkable
class CordaHostApi(Protocol):
    @property
    def prefix(self) -> bytes: ...

    @property
    def height(self) -> Height: ...

    def client_state(self) -> CordaClientState: ...

    def attestation(self, height: Height | None = None) -> bytes: ...

    def prove(self, path: bytes, height: Height | None = None) -> bytes: ...

    def value_at(self, path: bytes, height: Height | None = None) -> bytes | None: ...

    def prove_value(
        self, path: bytes, height: Height | None = None
    ) -> tuple[bytes, bytes | None]: ...

    def connection_end(self, connection_id: str) -> ConnectionEnd | None: ...

    def channel_end(self, port_id: str, channel_id: str) -> ChannelEnd | None: ...

    def sent_packets(
        self, port_id: str, channel_id: str, from_sequence: int = 1
    ) -> list[Packet]: ...

    def written_acks(
        self, port_id: str, channel_id: str, from_sequence: int = 1
    ) -> list[tuple[Packet, bytes]]: ...

    def client_latest_height(self, client_id: str) -> Height: ...

    def submit(self, batch: Sequence[msgs.Msg]) -> Submission: ...


def default_client_factory(
    clock: Callable[[], int] = time.time_ns,
) -> msgs.ClientFactory:
    """A host's ``MsgCreateClient`` rule: LCP clients only, on the host's ``clock``."""

    def create(client_type: str, client_state: bytes, consensus_state: bytes) -> LightClient:
        if client_type != lcp_client.CLIENT_TYPE:
            raise IbcError(
                f"this host creates {lcp_client.CLIENT_TYPE!r} clients from messages, not "
                f"{client_type!r}"
            )
        state = lcp_client.decode_client_state(client_state)
        return lcp_client.LcpIbcClient.create(state, consensus_state, clock(), clock)

    return create
