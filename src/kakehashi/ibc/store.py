"""The store an IBC host gives the handler: a provable part and a private part.

* **Provable** (ICS-23/24): one 32-byte value per ICS-24 path (see :mod:`kakehashi.ibc.host` and
  :mod:`kakehashi.ibc.commitment`). This is what the counterparty proves through its light client
  of this ledger: the EVM host keeps it in a storage mapping keyed by ``keccak256(path)``, the
  Corda-model host in a sparse Merkle tree keyed by ``sha256(path)``. Everything the handler ever
  proves or has proven lives here: connection and channel end commitments, packet commitments,
  receipts, acknowledgement commitments and the three next-sequence counters (as
  :func:`~kakehashi.ibc.commitment.sequence_value` words, ICS-24 ``nextSequenceSend/Recv/Ack``).
* **Private**: the full objects the handler needs to read back (a commitment is a hash, not the
  end it commits to) and the identifier counters. Only this host reads them.

The handler always writes both halves together: :meth:`IbcStore.set_connection` /
:meth:`IbcStore.set_channel` keep the object, and the handler itself writes
``end_commitment(end)`` under the end's path. A store never derives one from the other.

Atomicity is the handler's job, not the store's: every :class:`~kakehashi.ibc.handler.IbcHandler`
call validates its input and verifies every proof before its first write, so a failed call
writes nothing. :class:`MemoryStore` additionally offers :meth:`~MemoryStore.snapshot` /
:meth:`~MemoryStore.restore` so that a host can also roll back what an application callback did.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from kakehashi.errors import IbcError
from kakehashi.ibc.client import LightClient
from kakehashi.ibc.types import ChannelEnd, ConnectionEnd

__all__ = [
    "COUNTER_CHANNELS",
    "COUNTER_CLIENTS",
    "COUNTER_CONNECTIONS",
    "IbcStore",
    "MemorySnapshot",
    "MemoryStore",
]

#: Names of the identifier counters (ibc-go's nextClientSequence / nextConnectionSequence /
#: nextChannelSequence): the next ``n`` of ``{client_type}-{n}``, ``connection-{n}``,
#: ``channel-{n}``. Clients share one counter across client types, as in ibc-go.
COUNTER_CLIENTS = "clients"
COUNTER_CONNECTIONS = "connections"
COUNTER_CHANNELS = "channels"


class IbcStore(Protocol):
    """What an IBC host keeps for the handler (see the module docstring)."""

    # -- provable: 32-byte values under ICS-24 paths -------------------------------------------

    def get(self, path: bytes) -> bytes | None:
        """The 32-byte value committed under ``path``, or None when nothing is."""
        ...

    def set(self, path: bytes, value: bytes) -> None:
        """Commit ``value`` (exactly 32 bytes, never all zero) under ``path``."""
        ...

    def delete(self, path: bytes) -> None:
        """Remove whatever is committed under ``path`` (no-op when nothing is)."""
        ...

    # -- private: full objects and counters --------------------------------------------------

    def get_client(self, client_id: str) -> LightClient | None: ...

    def set_client(self, client_id: str, client: LightClient) -> None:
        """Keep ``client``; called on creation and again after every successful update, so a
        persistent host can re-serialise it."""
        ...

    def get_connection(self, connection_id: str) -> ConnectionEnd | None: ...

    def set_connection(self, connection_id: str, end: ConnectionEnd) -> None: ...

    def get_channel(self, port_id: str, channel_id: str) -> ChannelEnd | None: ...

    def set_channel(self, port_id: str, channel_id: str, end: ChannelEnd) -> None: ...

    def get_counter(self, name: str) -> int:
        """The counter ``name`` (one of the ``COUNTER_*`` names); 0 when never set."""
        ...

    def set_counter(self, name: str, value: int) -> None: ...


def _check_value(path: bytes, value: bytes) -> bytes:
    if not isinstance(value, bytes) or len(value) != 32:
        raise IbcError(f"the value committed under {path!r} must be 32 bytes")
    if value == bytes(32):
        # All-zero is what an EVM storage slot reads when empty: it would be unprovable.
        raise IbcError(f"the value committed under {path!r} must not be all zero")
    return value


@dataclass(frozen=True, slots=True)
class MemorySnapshot:
    """An immutable copy of a :class:`MemoryStore`; equal snapshots mean equal stores.

    Light clients are kept by reference: their own ``update`` must be atomic (raise before
    changing anything), which is all the handler relies on.
    """

    values: tuple[tuple[bytes, bytes], ...]
    clients: tuple[tuple[str, LightClient], ...]
    connections: tuple[tuple[str, ConnectionEnd], ...]
    channels: tuple[tuple[tuple[str, str], ChannelEnd], ...]
    counters: tuple[tuple[str, int], ...]


@dataclass(slots=True)
class MemoryStore:
    """:class:`IbcStore` in dictionaries, for tests and for hosts that persist it themselves."""

    values: dict[bytes, bytes] = field(default_factory=dict)
    clients: dict[str, LightClient] = field(default_factory=dict)
    connections: dict[str, ConnectionEnd] = field(default_factory=dict)
    channels: dict[tuple[str, str], ChannelEnd] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)

    def get(self, path: bytes) -> bytes | None:
        return self.values.get(path)

    def set(self, path: bytes, value: bytes) -> None:
        self.values[path] = _check_value(path, value)

    def delete(self, path: bytes) -> None:
        self.values.pop(path, None)

    def get_client(self, client_id: str) -> LightClient | None:
        return self.clients.get(client_id)

    def set_client(self, client_id: str, client: LightClient) -> None:
        self.clients[client_id] = client

    def get_connection(self, connection_id: str) -> ConnectionEnd | None:
        return self.connections.get(connection_id)

    def set_connection(self, connection_id: str, end: ConnectionEnd) -> None:
        self.connections[connection_id] = end

    def get_channel(self, port_id: str, channel_id: str) -> ChannelEnd | None:
        return self.channels.get((port_id, channel_id))

    def set_channel(self, port_id: str, channel_id: str, end: ChannelEnd) -> None:
        self.channels[(port_id, channel_id)] = end

    def get_counter(self, name: str) -> int:
        return self.counters.get(name, 0)

    def set_counter(self, name: str, value: int) -> None:
        self.counters[name] = value

    def snapshot(self) -> MemorySnapshot:
        """An immutable copy of everything (sorted, so equal stores give equal snapshots)."""
        return MemorySnapshot(
            tuple(sorted(self.values.items())),
            tuple(sorted(self.clients.items(), key=lambda item: item[0])),
            tuple(sorted(self.connections.items(), key=lambda item: item[0])),
            tuple(sorted(self.channels.items(), key=lambda item: item[0])),
            tuple(sorted(self.counters.items())),
        )

    def restore(self, snapshot: MemorySnapshot) -> None:
        """Put the store back exactly as it was when ``snapshot`` was taken."""
        self.values = dict(snapshot.values)
        self.clients = dict(snapshot.clients)
        self.connections = dict(snapshot.connections)
        self.channels = dict(snapshot.channels)
        self.counters = dict(snapshot.counters)

    def provable_items(self) -> list[tuple[bytes, bytes]]:
        """Every (path, value) of the provable part, sorted by path (what a host commits to)."""
        return sorted(self.values.items())
