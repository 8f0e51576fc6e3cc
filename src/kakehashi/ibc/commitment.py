"""ICS-04 / ICS-23 commitments: the 32-byte value each host stores under each ICS-24 path.

* packet commitment: ``sha256(timeout_timestamp u64be ‖ timeout_revision_number u64be ‖
  timeout_revision_height u64be ‖ sha256(data))`` (ICS-04);
* acknowledgement commitment: ``sha256(ack)`` (ICS-04);
* packet receipt: :data:`RECEIPT` (a non-zero marker; absence = not received);
* connection / channel end: ``keccak256(canonical encoding)`` (see :mod:`kakehashi.ibc.types`);
* next sequence: the sequence as a 32-byte big-endian word.

Every value is exactly 32 bytes, so the EVM host keeps each in one storage slot and the
Corda-model host in one sparse-Merkle leaf: the same bytes are proven on both sides.
"""

from __future__ import annotations

import hashlib
import struct

from eth_utils import keccak

from kakehashi.errors import IbcError
from kakehashi.ibc.types import ChannelEnd, ConnectionEnd, Packet

__all__ = [
    "RECEIPT",
    "ack_commitment",
    "end_commitment",
    "packet_commitment",
    "packet_commitment_of",
    "sequence_value",
]

#: The value stored under a receipt path once a packet is received (UNORDERED channels).
RECEIPT = (1).to_bytes(32, "big")


def packet_commitment(
    data: bytes, timeout_revision_number: int, timeout_revision_height: int, timeout_timestamp: int
) -> bytes:
    """ICS-04 packet commitment."""
    try:
        prefix = struct.pack(
            ">QQQ", timeout_timestamp, timeout_revision_number, timeout_revision_height
        )
    except struct.error as exc:
        raise IbcError(f"timeouts must be unsigned 64-bit integers: {exc}") from None
    return hashlib.sha256(prefix + hashlib.sha256(data).digest()).digest()


def packet_commitment_of(packet: Packet) -> bytes:
    return packet_commitment(
        packet.data,
        packet.timeout_height.revision_number,
        packet.timeout_height.revision_height,
        packet.timeout_timestamp,
    )


def ack_commitment(ack: bytes) -> bytes:
    """ICS-04 acknowledgement commitment."""
    if not ack:
        raise IbcError("an acknowledgement must not be empty (ICS-04)")
    return hashlib.sha256(ack).digest()


def end_commitment(end: ConnectionEnd | ChannelEnd) -> bytes:
    """The value stored under a connection or channel path."""
    return keccak(end.encode())


def sequence_value(sequence: int) -> bytes:
    if isinstance(sequence, bool) or not isinstance(sequence, int) or not 0 <= sequence < 2**64:
        raise IbcError(f"sequence must be an unsigned 64-bit integer, got {sequence!r}")
    return sequence.to_bytes(32, "big")
