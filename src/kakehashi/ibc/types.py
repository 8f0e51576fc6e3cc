"""ICS-02/03/04 objects: heights, connection and channel ends, packets, and their encoding.

The canonical encoding of an end is its Ethereum ABI encoding (``eth_abi``; Vyper's
``abi_encode`` of the same struct gives the same bytes), and the value a host stores under the
end's path is ``keccak256`` of it (:func:`kakehashi.ibc.commitment.end_commitment`). Both hosts
therefore agree byte for byte on what the other must prove.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from functools import lru_cache

from eth_abi import decode, encode

from kakehashi.errors import IbcError

__all__ = [
    "DEFAULT_VERSION",
    "ChannelCounterparty",
    "ChannelEnd",
    "ChannelState",
    "ConnectionCounterparty",
    "ConnectionEnd",
    "ConnectionState",
    "Height",
    "Order",
    "Packet",
    "Version",
]

_U64 = 2**64


def _u64(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _U64:
        raise IbcError(f"{what} must be an unsigned 64-bit integer, got {value!r}")
    return value


@dataclass(frozen=True, order=True, slots=True)
class Height:
    """ICS-02 height: (revision number, revision height); zero means 'no height'."""

    revision_number: int = 0
    revision_height: int = 0

    def __post_init__(self) -> None:
        _u64(self.revision_number, "revision number")
        _u64(self.revision_height, "revision height")

    def is_zero(self) -> bool:
        return self.revision_number == 0 and self.revision_height == 0

    def __str__(self) -> str:
        return f"{self.revision_number}-{self.revision_height}"


class ConnectionState(IntEnum):
    """ICS-03 connection states."""

    UNINITIALIZED = 0
    INIT = 1
    TRYOPEN = 2
    OPEN = 3


class ChannelState(IntEnum):
    """ICS-04 channel states."""

    UNINITIALIZED = 0
    INIT = 1
    TRYOPEN = 2
    OPEN = 3
    CLOSED = 4


class Order(IntEnum):
    """ICS-04 channel ordering."""

    NONE = 0
    UNORDERED = 1
    ORDERED = 2


@dataclass(frozen=True, slots=True)
class Version:
    """ICS-03 connection version: an identifier and the features it supports."""

    identifier: str
    features: tuple[str, ...]


#: The one connection version both hosts offer (ibc-go's default).
DEFAULT_VERSION = Version("1", ("ORDER_ORDERED", "ORDER_UNORDERED"))


@dataclass(frozen=True, slots=True)
class ConnectionCounterparty:
    client_id: str
    connection_id: str  # empty until the counterparty has chosen it
    prefix: bytes  # the counterparty's commitment prefix (store key) as ICS-23 requires


@dataclass(frozen=True, slots=True)
class ConnectionEnd:
    """ICS-03 connection end."""

    client_id: str
    versions: tuple[Version, ...]
    state: ConnectionState
    counterparty: ConnectionCounterparty
    delay_period: int = 0

    _ABI = "(string,(string,string[])[],uint8,(string,string,bytes),uint64)"

    def encode(self) -> bytes:
        """Canonical bytes (ABI)."""
        return encode(
            [self._ABI],
            [
                (
                    self.client_id,
                    [(v.identifier, list(v.features)) for v in self.versions],
                    int(self.state),
                    (
                        self.counterparty.client_id,
                        self.counterparty.connection_id,
                        self.counterparty.prefix,
                    ),
                    _u64(self.delay_period, "delay period"),
                )
            ],
        )

    @classmethod
    def decode(cls, data: bytes) -> ConnectionEnd:
        try:
            ((client_id, versions, state, cp, delay),) = decode([cls._ABI], data)
            return cls(
                client_id,
                tuple(Version(i, tuple(f)) for i, f in versions),
                ConnectionState(state),
                ConnectionCounterparty(cp[0], cp[1], bytes(cp[2])),
                delay,
            )
        except IbcError:
            raise
        except Exception as exc:  # eth_abi raises several types on malformed input
            raise IbcError(f"malformed connection end: {exc}") from None


@dataclass(frozen=True, slots=True)
class ChannelCounterparty:
    port_id: str
    channel_id: str  # empty until the counterparty has chosen it


@dataclass(frozen=True, slots=True)
class ChannelEnd:
    """ICS-04 channel end."""

    state: ChannelState
    ordering: Order
    counterparty: ChannelCounterparty
    connection_hops: tuple[str, ...]
    version: str

    _ABI = "(uint8,uint8,(string,string),string[],string)"

    def encode(self) -> bytes:
        """Canonical bytes (ABI)."""
        return encode(
            [self._ABI],
            [
                (
                    int(self.state),
                    int(self.ordering),
                    (self.counterparty.port_id, self.counterparty.channel_id),
                    list(self.connection_hops),
                    self.version,
                )
            ],
        )

    @classmethod
    def decode(cls, data: bytes) -> ChannelEnd:
        try:
            ((state, ordering, cp, hops, version),) = decode([cls._ABI], data)
            return cls(
                ChannelState(state),
                Order(ordering),
                ChannelCounterparty(cp[0], cp[1]),
                tuple(hops),
                version,
            )
        except Exception as exc:
            raise IbcError(f"malformed channel end: {exc}") from None


@dataclass(frozen=True, slots=True)
class Packet:
    """ICS-04 packet."""

    sequence: int
    source_port: str
    source_channel: str
    destination_port: str
    destination_channel: str
    data: bytes
    timeout_height: Height = field(default_factory=Height)
    timeout_timestamp: int = 0  # nanoseconds since the Unix epoch; 0 = none

    _ABI = "(uint64,string,string,string,string,bytes,(uint64,uint64),uint64)"

    def __post_init__(self) -> None:
        _u64(self.sequence, "packet sequence")
        _u64(self.timeout_timestamp, "timeout timestamp")
        if self.timeout_height.is_zero() and self.timeout_timestamp == 0:
            raise IbcError("a packet needs a timeout height or a timeout timestamp (ICS-04)")

    def encode(self) -> bytes:
        """Canonical bytes (ABI), for carrying a packet between ledgers."""
        return encode(
            [self._ABI],
            [
                (
                    self.sequence,
                    self.source_port,
                    self.source_channel,
                    self.destination_port,
                    self.destination_channel,
                    self.data,
                    (self.timeout_height.revision_number, self.timeout_height.revision_height),
                    self.timeout_timestamp,
                )
            ],
        )

    @classmethod
    def decode(cls, data: bytes) -> Packet:
        """The packet of canonical bytes (:meth:`encode`); :class:`IbcError` if malformed.

        A pure function of the bytes, and a packet is immutable: the newest
        :data:`PACKET_DECODINGS` decodings are remembered (a relayer's discovery reads every
        packet still in flight, and every acknowledgement a ledger wrote, each round; the ABI
        decoder costs tens of microseconds a packet)."""
        return _decode_packet(bytes(data))


PACKET_DECODINGS = 4096
"""Packet decodings remembered by :meth:`Packet.decode` (the newest)."""


@lru_cache(maxsize=PACKET_DECODINGS)
def _decode_packet(data: bytes) -> Packet:
    try:
        ((seq, sp, sc, dp, dc, payload, th, tt),) = decode([Packet._ABI], data)
        return Packet(seq, sp, sc, dp, dc, bytes(payload), Height(th[0], th[1]), tt)
    except IbcError:
        raise
    except Exception as exc:
        raise IbcError(f"malformed packet: {exc}") from None
