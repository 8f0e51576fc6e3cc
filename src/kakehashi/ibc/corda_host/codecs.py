"""How the Corda-model host persists the light clients the handler keeps (client type → codec).

The handler hands the host live :class:`~kakehashi.ibc.client.LightClient` objects; the host
stores them as bytes in its node's database and decodes a fresh object for every call, so a
client changed by a call that is then rolled back is simply forgotten. Each client type needs a
codec; the QBFT, Corda-host and LCP clients are built in, others are added with
:func:`register_client_codec`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cbor2

from kakehashi.errors import IbcError, SerializationError
from kakehashi.ibc.client import LightClient
from kakehashi.ibc.clients import corda as corda_client
from kakehashi.ibc.clients import lcp as lcp_client
from kakehashi.ibc.clients import qbft as qbft_client
from kakehashi.ibc.types import Height

__all__ = ["ClientCodec", "decode_client", "encode_client", "register_client_codec"]


@dataclass(frozen=True, slots=True)
class ClientCodec:
    encode: Callable[[LightClient], bytes]
    decode: Callable[[bytes], LightClient]


_codecs: dict[str, ClientCodec] = {}


def register_client_codec(
    client_type: str,
    encode: Callable[[LightClient], bytes],
    decode: Callable[[bytes], LightClient],
) -> None:
    """Teach the host to persist clients of ``client_type`` (replaces an earlier codec)."""
    _codecs[client_type] = ClientCodec(encode, decode)


def encode_client(client: LightClient) -> bytes:
    """``[client_type, codec bytes]`` as canonical CBOR; IbcError for an unknown client type."""
    codec = _codecs.get(client.client_type)
    if codec is None:
        raise IbcError(
            f"the Corda-model host cannot persist {client.client_type!r} clients: "
            "register a codec with register_client_codec"
        )
    return bytes(cbor2.dumps([client.client_type, codec.encode(client)], canonical=True))


def decode_client(data: bytes) -> LightClient:
    try:
        client_type, body = cbor2.loads(data)
    except Exception as exc:
        raise SerializationError(f"malformed stored client: {exc}") from None
    codec = _codecs.get(client_type)
    if codec is None:
        raise IbcError(f"no codec for stored {client_type!r} client")
    return codec.decode(body)


# -- built-in codecs --------------------------------------------------------------------------


def _encode_corda(client: LightClient) -> bytes:
    assert isinstance(client, corda_client.CordaClient)
    return client.to_bytes()


def _encode_qbft(client: LightClient) -> bytes:
    assert isinstance(client, qbft_client.QbftClient)
    consensus = [
        [h.revision_number, h.revision_height, c.timestamp, c.state_root, list(c.validators)]
        for h, c in sorted(client.consensus.items())
    ]
    return bytes(
        cbor2.dumps(
            [
                client.chain_id,
                client.ibc_handler,
                client.commitments_slot,
                client.trusting_period_s,
                client.max_clock_drift_s,
                consensus,
                client.frozen,
            ],
            canonical=True,
        )
    )


def _decode_qbft(data: bytes) -> LightClient:
    try:
        chain_id, handler, slot, trusting, drift, consensus, frozen = cbor2.loads(data)
        states = {
            Height(rn, rh): qbft_client.ConsensusState(ts, bytes(root), tuple(map(bytes, vals)))
            for rn, rh, ts, root, vals in consensus
        }
    except Exception as exc:
        raise SerializationError(f"malformed stored QBFT client: {exc}") from None
    return qbft_client.QbftClient(
        chain_id, bytes(handler), slot, trusting, drift, states, bool(frozen)
    )


register_client_codec(corda_client.CLIENT_TYPE, _encode_corda, corda_client.CordaClient.from_bytes)
register_client_codec(qbft_client.CLIENT_TYPE, _encode_qbft, _decode_qbft)


def _encode_lcp(client: LightClient) -> bytes:
    assert isinstance(client, lcp_client.LcpIbcClient)
    return client.to_bytes()


register_client_codec(lcp_client.CLIENT_TYPE, _encode_lcp, lcp_client.LcpIbcClient.from_bytes)
