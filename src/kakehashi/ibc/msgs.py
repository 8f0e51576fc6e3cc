"""ICS-26 messages: what a relayer submits to a ledger, as typed values with one byte encoding.

A relayer never calls a host's handler methods directly: it builds messages (named after
ibc-go's ``MsgCreateClient``, ``MsgRecvPacket``, ...) and submits them, one or a batch at a time,
in process or over HTTP. :func:`encode` / :func:`decode` are the wire form (canonical CBOR
``[kind, field, ...]``; :func:`decode` of anything else raises
:class:`~kakehashi.errors.SerializationError`), and :func:`apply` runs a message against an
:class:`~kakehashi.ibc.handler.IbcHandler`, returning what ICS-26 returns (a client /
connection / channel id, a height, an acknowledgement, or None).

``MsgCreateClient`` carries a client type and bytes; turning them into a light client is the
host's choice (its ``client_factory``): a host decides which client types it accepts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import cbor2

from kakehashi.errors import KakehashiError, SerializationError
from kakehashi.ibc.client import LightClient
from kakehashi.ibc.handler import IbcHandler
from kakehashi.ibc.types import (
    ChannelCounterparty,
    ConnectionCounterparty,
    Height,
    Order,
    Packet,
    Version,
)

__all__ = [
    "ClientFactory",
    "Msg",
    "MsgAcknowledgement",
    "MsgChannelCloseConfirm",
    "MsgChannelCloseInit",
    "MsgChannelOpenAck",
    "MsgChannelOpenConfirm",
    "MsgChannelOpenInit",
    "MsgChannelOpenTry",
    "MsgConnectionOpenAck",
    "MsgConnectionOpenConfirm",
    "MsgConnectionOpenInit",
    "MsgConnectionOpenTry",
    "MsgCreateClient",
    "MsgRecvPacket",
    "MsgTimeout",
    "MsgUpdateClient",
    "apply",
    "decode",
    "decode_batch",
    "encode",
    "encode_batch",
    "result_from_wire",
    "result_to_wire",
]

#: ``(client_type, client_state, consensus_state) -> LightClient``; raise to refuse the type.
ClientFactory = Callable[[str, bytes, bytes], LightClient]


@dataclass(frozen=True, slots=True)
class MsgCreateClient:
    client_type: str
    client_state: bytes
    consensus_state: bytes  # for an LCP client: the enclave's create-client proxy message


@dataclass(frozen=True, slots=True)
class MsgUpdateClient:
    client_id: str
    client_message: bytes


@dataclass(frozen=True, slots=True)
class MsgConnectionOpenInit:
    client_id: str
    counterparty: ConnectionCounterparty
    delay_period: int = 0


@dataclass(frozen=True, slots=True)
class MsgConnectionOpenTry:
    client_id: str
    counterparty: ConnectionCounterparty
    counterparty_versions: tuple[Version, ...]
    proof_init: bytes
    proof_height: Height
    delay_period: int = 0


@dataclass(frozen=True, slots=True)
class MsgConnectionOpenAck:
    connection_id: str
    counterparty_connection_id: str
    version: Version
    proof_try: bytes
    proof_height: Height


@dataclass(frozen=True, slots=True)
class MsgConnectionOpenConfirm:
    connection_id: str
    proof_ack: bytes
    proof_height: Height


@dataclass(frozen=True, slots=True)
class MsgChannelOpenInit:
    port_id: str
    ordering: Order
    connection_hops: tuple[str, ...]
    counterparty: ChannelCounterparty
    version: str


@dataclass(frozen=True, slots=True)
class MsgChannelOpenTry:
    port_id: str
    ordering: Order
    connection_hops: tuple[str, ...]
    counterparty: ChannelCounterparty
    counterparty_version: str
    proof_init: bytes
    proof_height: Height


@dataclass(frozen=True, slots=True)
class MsgChannelOpenAck:
    port_id: str
    channel_id: str
    counterparty_channel_id: str
    counterparty_version: str
    proof_try: bytes
    proof_height: Height


@dataclass(frozen=True, slots=True)
class MsgChannelOpenConfirm:
    port_id: str
    channel_id: str
    proof_ack: bytes
    proof_height: Height


@dataclass(frozen=True, slots=True)
class MsgChannelCloseInit:
    port_id: str
    channel_id: str


@dataclass(frozen=True, slots=True)
class MsgChannelCloseConfirm:
    port_id: str
    channel_id: str
    proof_init: bytes
    proof_height: Height


@dataclass(frozen=True, slots=True)
class MsgRecvPacket:
    packet: Packet
    proof_commitment: bytes
    proof_height: Height


@dataclass(frozen=True, slots=True)
class MsgAcknowledgement:
    packet: Packet
    acknowledgement: bytes
    proof_acked: bytes
    proof_height: Height


@dataclass(frozen=True, slots=True)
class MsgTimeout:
    packet: Packet
    proof_unreceived: bytes
    proof_height: Height
    next_sequence_recv: int = 0


Msg = (
    MsgCreateClient
    | MsgUpdateClient
    | MsgConnectionOpenInit
    | MsgConnectionOpenTry
    | MsgConnectionOpenAck
    | MsgConnectionOpenConfirm
    | MsgChannelOpenInit
    | MsgChannelOpenTry
    | MsgChannelOpenAck
    | MsgChannelOpenConfirm
    | MsgChannelCloseInit
    | MsgChannelCloseConfirm
    | MsgRecvPacket
    | MsgAcknowledgement
    | MsgTimeout
)

_KINDS: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (
        MsgCreateClient,
        MsgUpdateClient,
        MsgConnectionOpenInit,
        MsgConnectionOpenTry,
        MsgConnectionOpenAck,
        MsgConnectionOpenConfirm,
        MsgChannelOpenInit,
        MsgChannelOpenTry,
        MsgChannelOpenAck,
        MsgChannelOpenConfirm,
        MsgChannelCloseInit,
        MsgChannelCloseConfirm,
        MsgRecvPacket,
        MsgAcknowledgement,
        MsgTimeout,
    )
}


# ---------------------------------------------------------------------------- codec


def _to_wire(value: Any) -> Any:
    if isinstance(value, Packet):
        return value.encode()
    if isinstance(value, Height):
        return [value.revision_number, value.revision_height]
    if isinstance(value, Version):
        return [value.identifier, list(value.features)]
    if isinstance(value, ConnectionCounterparty):
        return [value.client_id, value.connection_id, value.prefix]
    if isinstance(value, ChannelCounterparty):
        return [value.port_id, value.channel_id]
    if isinstance(value, Order):
        return int(value)
    if isinstance(value, tuple):
        return [_to_wire(v) for v in value]
    return value


def _str(raw: Any, what: str) -> str:
    if not isinstance(raw, str):
        raise SerializationError(f"{what} must be a string")
    return raw


def _bytes(raw: Any, what: str) -> bytes:
    if not isinstance(raw, bytes):
        raise SerializationError(f"{what} must be bytes")
    return raw


def _int(raw: Any, what: str) -> int:
    if not isinstance(raw, int) or isinstance(raw, bool) or raw < 0 or raw >= 2**64:
        raise SerializationError(f"{what} must be an unsigned 64-bit integer")
    return raw


def _pair(raw: Any, what: str) -> list[Any]:
    if not isinstance(raw, list) or len(raw) != 2:
        raise SerializationError(f"{what} must be a pair")
    return raw


def _version(raw: Any, what: str) -> Version:
    identifier, features = _pair(raw, what)
    if not isinstance(features, list):
        raise SerializationError(f"{what} features must be a list")
    return Version(_str(identifier, what), tuple(_str(f, what) for f in features))


def _from_wire(annotation: str, raw: Any, what: str) -> Any:
    if annotation == "str":
        return _str(raw, what)
    if annotation == "bytes":
        return _bytes(raw, what)
    if annotation == "int":
        return _int(raw, what)
    if annotation == "Height":
        rn, rh = _pair(raw, what)
        return Height(_int(rn, what), _int(rh, what))
    if annotation == "Packet":
        return Packet.decode(_bytes(raw, what))
    if annotation == "Order":
        try:
            return Order(_int(raw, what))
        except ValueError:
            raise SerializationError(f"{what} is not a channel order") from None
    if annotation == "Version":
        return _version(raw, what)
    if annotation == "tuple[Version, ...]":
        if not isinstance(raw, list):
            raise SerializationError(f"{what} must be a list")
        return tuple(_version(v, what) for v in raw)
    if annotation == "tuple[str, ...]":
        if not isinstance(raw, list):
            raise SerializationError(f"{what} must be a list")
        return tuple(_str(v, what) for v in raw)
    if annotation == "ConnectionCounterparty":
        if not isinstance(raw, list) or len(raw) != 3:
            raise SerializationError(f"{what} must be [client_id, connection_id, prefix]")
        return ConnectionCounterparty(_str(raw[0], what), _str(raw[1], what), _bytes(raw[2], what))
    if annotation == "ChannelCounterparty":
        port, channel = _pair(raw, what)
        return ChannelCounterparty(_str(port, what), _str(channel, what))
    raise AssertionError(f"no wire form for {annotation}")  # pragma: no cover - programming


def _wire(msg: Msg) -> list[Any]:
    if type(msg).__name__ not in _KINDS:
        raise SerializationError(f"{type(msg).__name__} is not an IBC message")
    return [type(msg).__name__, *(_to_wire(getattr(msg, f.name)) for f in fields(msg))]


def _unwire(raw: Any) -> Msg:
    if not isinstance(raw, list) or not raw or not isinstance(raw[0], str):
        raise SerializationError("an IBC message is [kind, field, ...]")
    kind = _KINDS.get(raw[0])
    if kind is None:
        raise SerializationError(f"unknown IBC message kind {raw[0]!r}")
    spec = fields(kind)
    if len(raw) - 1 != len(spec):
        raise SerializationError(f"{raw[0]} has {len(spec)} fields, got {len(raw) - 1}")
    try:
        values = [
            _from_wire(str(f.type), value, f"{raw[0]}.{f.name}")
            for f, value in zip(spec, raw[1:], strict=True)
        ]
        msg: Msg = kind(*values)
    except SerializationError:
        raise
    except (KakehashiError, ValueError, TypeError) as exc:
        raise SerializationError(f"malformed {raw[0]}: {exc}") from None
    return msg


def _loads(data: bytes) -> Any:
    try:
        return cbor2.loads(data)
    except (cbor2.CBORDecodeError, ValueError, TypeError, EOFError) as exc:
        raise SerializationError(f"an IBC message is not valid CBOR: {exc}") from None


def encode(msg: Msg) -> bytes:
    """The canonical CBOR bytes of ``msg``."""
    return bytes(cbor2.dumps(_wire(msg), canonical=True))


def decode(data: bytes) -> Msg:
    """The message :func:`encode` made; SerializationError for anything else."""
    msg = _unwire(_loads(data))
    if encode(msg) != data:
        raise SerializationError("the IBC message is not canonically encoded")
    return msg


def encode_batch(msgs: list[Msg]) -> bytes:
    return bytes(cbor2.dumps([_wire(m) for m in msgs], canonical=True))


def decode_batch(data: bytes) -> list[Msg]:
    raw = _loads(data)
    if not isinstance(raw, list):
        raise SerializationError("a batch of IBC messages is a list")
    return [_unwire(item) for item in raw]


# ---------------------------------------------------------------------------- handling


def apply(handler: IbcHandler, msg: Msg, client_factory: ClientFactory | None = None) -> Any:
    """Run ``msg`` on ``handler`` (ICS-26 routing); returns the handler's answer."""
    match msg:
        case MsgCreateClient():
            if client_factory is None:
                raise SerializationError("this host creates no clients from messages")
            client = client_factory(msg.client_type, msg.client_state, msg.consensus_state)
            return handler.create_client(client)
        case MsgUpdateClient():
            return handler.update_client(msg.client_id, msg.client_message)
        case MsgConnectionOpenInit():
            return handler.conn_open_init(msg.client_id, msg.counterparty, None, msg.delay_period)
        case MsgConnectionOpenTry():
            return handler.conn_open_try(
                msg.client_id,
                msg.counterparty,
                msg.counterparty_versions,
                msg.delay_period,
                msg.proof_init,
                msg.proof_height,
            )
        case MsgConnectionOpenAck():
            return handler.conn_open_ack(
                msg.connection_id,
                msg.counterparty_connection_id,
                msg.version,
                msg.proof_try,
                msg.proof_height,
            )
        case MsgConnectionOpenConfirm():
            return handler.conn_open_confirm(msg.connection_id, msg.proof_ack, msg.proof_height)
        case MsgChannelOpenInit():
            return handler.chan_open_init(
                msg.port_id, msg.ordering, msg.connection_hops, msg.counterparty, msg.version
            )
        case MsgChannelOpenTry():
            return handler.chan_open_try(
                msg.port_id,
                msg.ordering,
                msg.connection_hops,
                msg.counterparty,
                msg.counterparty_version,
                msg.proof_init,
                msg.proof_height,
            )
        case MsgChannelOpenAck():
            return handler.chan_open_ack(
                msg.port_id,
                msg.channel_id,
                msg.counterparty_channel_id,
                msg.counterparty_version,
                msg.proof_try,
                msg.proof_height,
            )
        case MsgChannelOpenConfirm():
            return handler.chan_open_confirm(
                msg.port_id, msg.channel_id, msg.proof_ack, msg.proof_height
            )
        case MsgChannelCloseInit():
            return handler.chan_close_init(msg.port_id, msg.channel_id)
        case MsgChannelCloseConfirm():
            return handler.chan_close_confirm(
                msg.port_id, msg.channel_id, msg.proof_init, msg.proof_height
            )
        case MsgRecvPacket():
            return handler.recv_packet(msg.packet, msg.proof_commitment, msg.proof_height)
        case MsgAcknowledgement():
            return handler.acknowledge_packet(
                msg.packet, msg.acknowledgement, msg.proof_acked, msg.proof_height
            )
        case MsgTimeout():
            return handler.timeout_packet(
                msg.packet, msg.proof_unreceived, msg.proof_height, msg.next_sequence_recv
            )
    raise SerializationError(f"{type(msg).__name__} is not an IBC message")


# ---------------------------------------------------------------------------- results

_ID_RESULTS = (
    MsgCreateClient,
    MsgConnectionOpenInit,
    MsgConnectionOpenTry,
    MsgChannelOpenInit,
    MsgChannelOpenTry,
)


def result_to_wire(msg: Msg, value: Any) -> Any:
    """What :func:`apply` returned for ``msg``, as plain CBOR / JSON-able data (a string id,
    ``[revision_number, revision_height]``, hex of an acknowledgement, or None)."""
    if isinstance(msg, _ID_RESULTS):
        return str(value)
    if isinstance(msg, MsgUpdateClient):
        assert isinstance(value, Height)
        return [value.revision_number, value.revision_height]
    if isinstance(msg, MsgRecvPacket):
        return None if value is None else bytes(value).hex()
    return None


def result_from_wire(msg: Msg, raw: Any) -> Any:
    """The inverse of :func:`result_to_wire` (SerializationError for a malformed answer)."""
    if isinstance(msg, _ID_RESULTS):
        return _str(raw, f"{type(msg).__name__} result")
    if isinstance(msg, MsgUpdateClient):
        rn, rh = _pair(raw, "MsgUpdateClient result")
        return Height(_int(rn, "revision number"), _int(rh, "revision height"))
    if isinstance(msg, MsgRecvPacket):
        if raw is None:
            return None
        try:
            return bytes.fromhex(_str(raw, "acknowledgement"))
        except ValueError:
            raise SerializationError("the acknowledgement is not hex") from None
    if raw is not None:
        raise SerializationError(f"{type(msg).__name__} returns nothing, got {raw!r}")
    return None
