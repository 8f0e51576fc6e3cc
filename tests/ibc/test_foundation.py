"""ICS-24 paths and identifiers, ICS-04 commitments, canonical encodings of ends and packets."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kakehashi.errors import IbcError
from kakehashi.ibc import host
from kakehashi.ibc.commitment import (
    RECEIPT,
    ack_commitment,
    end_commitment,
    packet_commitment,
    packet_commitment_of,
    sequence_value,
)
from kakehashi.ibc.types import (
    DEFAULT_VERSION,
    ChannelCounterparty,
    ChannelEnd,
    ChannelState,
    ConnectionCounterparty,
    ConnectionEnd,
    ConnectionState,
    Height,
    Order,
    Packet,
)


def test_paths_are_spelled_as_ics24() -> None:
    assert host.client_state_path("07-tendermint-0") == b"clients/07-tendermint-0/clientState"
    assert host.connection_path("connection-0") == b"connections/connection-0"
    assert (
        host.channel_path("transfer", "channel-0")
        == b"channelEnds/ports/transfer/channels/channel-0"
    )
    assert (
        host.packet_commitment_path("transfer", "channel-0", 1)
        == b"commitments/ports/transfer/channels/channel-0/sequences/1"
    )
    assert host.ack_path("p1", "channel-7", 9) == b"acks/ports/p1/channels/channel-7/sequences/9"
    assert host.packet_receipt_path("p1", "channel-7", 9).startswith(b"receipts/")
    assert (
        host.next_sequence_recv_path("p1", "channel-7")
        == b"nextSequenceRecv/ports/p1/channels/channel-7"
    )
    assert host.consensus_state_path("qbft-client-0", 0, 42).endswith(b"consensusStates/0-42")


@pytest.mark.parametrize(
    ("check", "value"),
    [
        (host.validate_client_id, "short"),
        (host.validate_connection_id, "conn/0-slash"),
        (host.validate_channel_id, "ch"),
        (host.validate_port_id, "p"),
        (host.validate_port_id, "x" * 129),
        (host.validate_channel_id, "channel 0"),
        (host.validate_client_id, 12),
    ],
)
def test_bad_identifiers_are_refused(check: object, value: object) -> None:
    with pytest.raises(IbcError):
        check(value)  # type: ignore[operator]


def test_packet_commitment_follows_ics04() -> None:
    data = b"hello"
    expected = hashlib.sha256(
        (5).to_bytes(8, "big")
        + (1).to_bytes(8, "big")
        + (100).to_bytes(8, "big")
        + hashlib.sha256(data).digest()
    ).digest()
    assert packet_commitment(data, 1, 100, 5) == expected
    packet = Packet(1, "p1", "channel-0", "p2", "channel-1", data, Height(1, 100), 5)
    assert packet_commitment_of(packet) == expected
    assert ack_commitment(b"ok") == hashlib.sha256(b"ok").digest()
    assert len(RECEIPT) == 32 and sequence_value(3) == (3).to_bytes(32, "big")
    with pytest.raises(IbcError):
        ack_commitment(b"")
    with pytest.raises(IbcError):
        packet_commitment(data, -1, 0, 0)


def test_a_packet_needs_a_timeout() -> None:
    with pytest.raises(IbcError, match="timeout"):
        Packet(1, "p1", "channel-0", "p2", "channel-1", b"x")


ident = st.text(alphabet="abcdefghij-0123456789", min_size=1, max_size=20)


@given(ident, ident, ident, st.binary(max_size=40), st.integers(0, 2**64 - 1))
def test_connection_ends_round_trip(
    client: str, cp_client: str, cp_conn: str, prefix: bytes, delay: int
) -> None:
    end = ConnectionEnd(
        client,
        (DEFAULT_VERSION,),
        ConnectionState.TRYOPEN,
        ConnectionCounterparty(cp_client, cp_conn, prefix),
        delay,
    )
    assert ConnectionEnd.decode(end.encode()) == end
    assert len(end_commitment(end)) == 32


@given(ident, ident, st.lists(ident, max_size=3), ident, st.sampled_from(list(Order)))
def test_channel_ends_and_packets_round_trip(
    port: str, channel: str, hops: list[str], version: str, order: Order
) -> None:
    end = ChannelEnd(
        ChannelState.OPEN, order, ChannelCounterparty(port, channel), tuple(hops), version
    )
    assert ChannelEnd.decode(end.encode()) == end
    packet = Packet(7, port, channel, port, channel, version.encode(), Height(0, 9), 0)
    assert Packet.decode(packet.encode()) == packet


def test_malformed_encodings_are_refused() -> None:
    for decoder in (ConnectionEnd.decode, ChannelEnd.decode, Packet.decode):
        with pytest.raises(IbcError):
            decoder(b"\x01\x02")


def test_a_remembered_packet_decoding_is_that_of_the_same_bytes() -> None:
    """Packet.decode remembers decodings by their bytes: the same bytes (any bytes-like
    object) give the same packet, other bytes their own, malformed bytes raise every time."""
    packet = Packet(3, "p1", "channel-0", "p2", "channel-1", b"data", Height(0, 9), 0)
    other = Packet(4, "p1", "channel-0", "p2", "channel-1", b"data", Height(0, 9), 0)
    encoded = packet.encode()
    assert Packet.decode(encoded) == packet
    assert Packet.decode(memoryview(encoded)) is Packet.decode(bytearray(encoded))
    assert Packet.decode(other.encode()) == other
    for _ in range(2):
        with pytest.raises(IbcError, match="malformed packet"):
            Packet.decode(encoded[:-1])
