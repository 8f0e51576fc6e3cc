"""ICS-24 host requirements: identifier validation and the store paths both hosts use.

Paths are ASCII byte strings exactly as ICS-24 spells them (``channelEnds/ports/{port}/channels/
{channel}`` ...). Each host keeps one 32-byte value per path (see :mod:`kakehashi.ibc.commitment`):
the EVM host in a storage mapping keyed by ``keccak256(path)``, the Corda-model host in a sparse
Merkle tree keyed by ``sha256(path)``.
"""

from __future__ import annotations

import re

from kakehashi.errors import IbcError

__all__ = [
    "ack_path",
    "channel_path",
    "client_state_path",
    "connection_path",
    "consensus_state_path",
    "next_sequence_ack_path",
    "next_sequence_recv_path",
    "next_sequence_send_path",
    "packet_commitment_path",
    "packet_receipt_path",
    "validate_channel_id",
    "validate_client_id",
    "validate_connection_id",
    "validate_port_id",
]

# ICS-24: identifiers are made of alphanumerics and . _ + - # [ ] < >.
_ALLOWED = re.compile(r"^[a-zA-Z0-9._+\-#\[\]<>]+$")


def _validate(identifier: object, what: str, low: int, high: int) -> str:
    if not isinstance(identifier, str):
        raise IbcError(f"{what} must be a string, got {type(identifier).__name__}")
    if not low <= len(identifier) <= high:
        raise IbcError(f"{what} {identifier!r} must be {low} to {high} characters long")
    if not _ALLOWED.match(identifier):
        raise IbcError(
            f"{what} {identifier!r} may only contain letters, digits and . _ + - # [ ] < >"
        )
    return identifier


def validate_client_id(identifier: object) -> str:
    """ICS-24 client identifier: 9 to 64 characters."""
    return _validate(identifier, "client identifier", 9, 64)


def validate_connection_id(identifier: object) -> str:
    """ICS-24 connection identifier: 10 to 64 characters."""
    return _validate(identifier, "connection identifier", 10, 64)


def validate_channel_id(identifier: object) -> str:
    """ICS-24 channel identifier: 8 to 64 characters."""
    return _validate(identifier, "channel identifier", 8, 64)


def validate_port_id(identifier: object) -> str:
    """ICS-24 port identifier: 2 to 128 characters."""
    return _validate(identifier, "port identifier", 2, 128)


def _sequence(sequence: int) -> int:
    if isinstance(sequence, bool) or not isinstance(sequence, int) or not 0 < sequence < 2**64:
        raise IbcError(f"packet sequence must be an integer in 1..2**64-1, got {sequence!r}")
    return sequence


def client_state_path(client_id: str) -> bytes:
    return f"clients/{validate_client_id(client_id)}/clientState".encode()


def consensus_state_path(client_id: str, revision_number: int, revision_height: int) -> bytes:
    return (
        f"clients/{validate_client_id(client_id)}/consensusStates/"
        f"{revision_number}-{revision_height}"
    ).encode()


def connection_path(connection_id: str) -> bytes:
    return f"connections/{validate_connection_id(connection_id)}".encode()


def channel_path(port_id: str, channel_id: str) -> bytes:
    return (
        f"channelEnds/ports/{validate_port_id(port_id)}/channels/{validate_channel_id(channel_id)}"
    ).encode()


def _packet_path(prefix: str, port_id: str, channel_id: str, sequence: int) -> bytes:
    return (
        f"{prefix}/ports/{validate_port_id(port_id)}/channels/{validate_channel_id(channel_id)}"
        f"/sequences/{_sequence(sequence)}"
    ).encode()


def packet_commitment_path(port_id: str, channel_id: str, sequence: int) -> bytes:
    return _packet_path("commitments", port_id, channel_id, sequence)


def ack_path(port_id: str, channel_id: str, sequence: int) -> bytes:
    return _packet_path("acks", port_id, channel_id, sequence)


def packet_receipt_path(port_id: str, channel_id: str, sequence: int) -> bytes:
    return _packet_path("receipts", port_id, channel_id, sequence)


def _sequence_path(kind: str, port_id: str, channel_id: str) -> bytes:
    return (
        f"{kind}/ports/{validate_port_id(port_id)}/channels/{validate_channel_id(channel_id)}"
    ).encode()


def next_sequence_send_path(port_id: str, channel_id: str) -> bytes:
    return _sequence_path("nextSequenceSend", port_id, channel_id)


def next_sequence_recv_path(port_id: str, channel_id: str) -> bytes:
    return _sequence_path("nextSequenceRecv", port_id, channel_id)


def next_sequence_ack_path(port_id: str, channel_id: str) -> bytes:
    return _sequence_path("nextSequenceAck", port_id, channel_id)
