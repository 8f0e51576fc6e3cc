"""The Corda-model IBC host over HTTP: what a relayer in another process reads and submits.

:func:`create_ibc_router` serves a node's :class:`~kakehashi.ibc.corda_host.host.CordaIbcHost`
under ``/ibc`` (mounted by ``kakehashi corda serve ... --ibc``); its client is
:class:`~kakehashi.ibc.corda_host.remote.RemoteCordaHost`. JSON throughout: bytes as hex,
heights as ``[revision_number, revision_height]``. A ``height`` query parameter is the host
version ``N`` or ``RN-RH`` (:class:`~kakehashi.ibc.types.Height`'s text form); absent, the latest.

**Trust.** A relayer is untrusted by design: the reads are public (they only show notarised host
versions and proofs), and every message it submits is verified by the host's handler and light
clients before anything is written. So ``/ibc/submit`` needs no token. Sending a packet is the
application's act, not the relayer's: ``POST /ibc/send`` requires the node's RPC token (as
``/rpc/*`` does) and is mounted only when one is given.

**Limits.** A batch is at most :data:`MAX_BATCH_BYTES` encoded and :data:`MAX_BATCH_MESSAGES`
messages (anything larger is refused as malformed before it is decoded or applied).

**Errors.** Every :class:`~kakehashi.errors.KakehashiError` is answered as
``{"error": class name, "message": text}``: 422 for a :class:`VerificationError` (a proof or
signature that does not verify), 400 for a :class:`SerializationError` or any malformed input
(bad hex, bad height, bad body), 404 for a host version that does not exist (yet), an unknown
client or party, 409 for any other refusal (an :class:`IbcError`, the notary's answer, ...).
The router answers them itself (a custom route class), so the node app's own
``KakehashiError`` handler, which answers 409 for everything, is neither needed nor changed.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from kakehashi.errors import (
    IbcError,
    KakehashiError,
    SerializationError,
    UnknownPartyError,
    VerificationError,
)
from kakehashi.ibc import msgs
from kakehashi.ibc.corda_host.contract import GENESIS_VERSION
from kakehashi.ibc.corda_host.host import CordaIbcHost
from kakehashi.ibc.types import Height
from kakehashi.ledgers.corda.model.serialization import serialize

__all__ = ["create_ibc_router", "error_status", "height_to_wire", "parse_height"]

_U64 = 2**64
_SEQUENCE = Query(1, ge=1, lt=2**63, description="first packet sequence to return")
_HEIGHT = re.compile(r"^(?:(\d{1,20})-)?(\d{1,20})$")


def error_status(exc: KakehashiError) -> int:
    """The HTTP status of a typed error (see the module docstring)."""
    if isinstance(exc, VerificationError):
        return 422
    if isinstance(exc, SerializationError):
        return 400
    if isinstance(exc, UnknownPartyError):
        return 404
    return 409


def _error(exc: KakehashiError, status: int | None = None) -> JSONResponse:
    body = {"error": type(exc).__name__, "message": str(exc)}
    return JSONResponse(body, status_code=status or error_status(exc))


class _NotFound(Exception):
    """A typed error to answer with 404 (a host version that does not exist)."""

    def __init__(self, error: KakehashiError) -> None:
        super().__init__(str(error))
        self.error = error


class _IbcRoute(APIRoute):
    """Every ``/ibc`` endpoint answers typed errors and malformed requests as JSON itself."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handle(request)
            except _NotFound as exc:
                return _error(exc.error, 404)
            except KakehashiError as exc:
                return _error(exc)
            except RequestValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
                    for e in exc.errors()
                )
                return _error(SerializationError(f"malformed request ({problems})"))

        return guarded


# ---------------------------------------------------------------------------- wire forms


def height_to_wire(height: Height) -> list[int]:
    return [height.revision_number, height.revision_height]


def parse_height(text: str, revision_number: int) -> Height:
    """``N`` (revision ``revision_number``) or ``RN-RH``; SerializationError otherwise."""
    match = _HEIGHT.match(text.strip())
    if match is None:
        raise SerializationError(
            f"height {text!r} is neither a host version N nor RN-RH (e.g. 12 or 0-12)"
        )
    rn = int(match.group(1)) if match.group(1) is not None else revision_number
    rh = int(match.group(2))
    if rn >= _U64 or rh >= _U64:
        raise SerializationError(f"height {text!r} does not fit in unsigned 64-bit integers")
    return Height(rn, rh)


def _hex(text: str, what: str) -> bytes:
    try:
        return bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raise SerializationError(f"{what} must be hex, got {text[:80]!r}") from None


def _height_of(host: CordaIbcHost, text: str | None) -> Height | None:
    """The requested height; a version the host does not (yet) have answers 404."""
    if text is None or text == "":
        return None
    height = parse_height(text, host.revision_number)
    if height.revision_number != host.revision_number:
        raise IbcError(f"height {height} is not of this host's revision {host.revision_number}")
    if not GENESIS_VERSION <= height.revision_height <= host.version:
        raise _NotFound(
            IbcError(
                f"host version {height.revision_height} does not exist (versions "
                f"{GENESIS_VERSION}..{host.version}); ask for a height up to the latest"
            )
        )
    return height


class SendBody(BaseModel):
    port_id: str
    channel_id: str
    data: str = Field(description="hex")
    timeout_height: tuple[int, int] = (0, 0)
    timeout_timestamp: int = Field(0, ge=0, lt=_U64)


MAX_BATCH_BYTES = 8 * 1024 * 1024
"""The largest encoded batch ``/ibc/submit`` takes (a relayer splits larger ones)."""
MAX_BATCH_MESSAGES = 1000
"""The most messages in one batch (each batch is one notarised host version)."""


class SubmitBody(BaseModel):
    msgs: str = Field(
        description="hex of kakehashi.ibc.msgs.encode_batch", max_length=2 * MAX_BATCH_BYTES
    )


# ---------------------------------------------------------------------------- the router


def create_ibc_router(host: CordaIbcHost, *, app_token: str | None = None) -> APIRouter:
    """``/ibc/*`` over ``host``: public reads, ``POST /ibc/submit`` of verified message batches,
    and (only when ``app_token`` is given) ``POST /ibc/send`` for the node's own application."""
    router = APIRouter(prefix="/ibc", route_class=_IbcRoute, tags=["ibc"])

    @router.get("/info")
    def info() -> dict[str, Any]:
        return {
            "prefix": host.prefix.hex(),
            "height": height_to_wire(host.height),
            "client_state": serialize(host.client_state()).hex(),
            "ports": host.handler.router.ports(),
        }

    @router.get("/attestation")
    def attestation(height: str | None = None) -> dict[str, Any]:
        at = _height_of(host, height) or host.height
        return {"attestation": host.attestation(at).hex(), "height": height_to_wire(at)}

    @router.get("/proof")
    def proof(path: str, height: str | None = None) -> dict[str, Any]:
        key = _hex(path, "path")
        at = _height_of(host, height) or host.height
        proof, value = host.prove_value(key, at)
        return {
            "proof": proof.hex(),
            "value": None if value is None else value.hex(),
            "height": height_to_wire(at),
        }

    @router.get("/value")
    def value(path: str, height: str | None = None) -> dict[str, Any]:
        key = _hex(path, "path")
        at = _height_of(host, height) or host.height
        found = host.value_at(key, at)
        return {"value": None if found is None else found.hex(), "height": height_to_wire(at)}

    @router.get("/clients/{client_id}/height")
    def client_height(client_id: str) -> dict[str, Any]:
        try:
            latest = host.client_latest_height(client_id)
        except IbcError as exc:  # no such client (or no such identifier)
            raise _NotFound(exc) from None
        return {"height": height_to_wire(latest)}

    @router.get("/connections/{connection_id}")
    def connection(connection_id: str) -> dict[str, Any]:
        end = host.connection_end(connection_id)
        return {"connection": None if end is None else end.encode().hex()}

    @router.get("/channels/{port_id}/{channel_id}")
    def channel(port_id: str, channel_id: str) -> dict[str, Any]:
        end = host.channel_end(port_id, channel_id)
        return {"channel": None if end is None else end.encode().hex()}

    @router.get("/packets/{port_id}/{channel_id}")
    def packets(port_id: str, channel_id: str, from_sequence: int = _SEQUENCE) -> dict[str, Any]:
        sent = host.sent_packets(port_id, channel_id, from_sequence)
        return {"packets": [p.encode().hex() for p in sent]}

    @router.get("/acks/{port_id}/{channel_id}")
    def acks(port_id: str, channel_id: str, from_sequence: int = _SEQUENCE) -> dict[str, Any]:
        written = host.written_acks(port_id, channel_id, from_sequence)
        return {"acks": [[p.encode().hex(), ack.hex()] for p, ack in written]}

    @router.post("/submit")
    def submit(body: SubmitBody) -> dict[str, Any]:
        batch = msgs.decode_batch(_hex(body.msgs, "msgs"))
        if len(batch) > MAX_BATCH_MESSAGES:
            raise SerializationError(
                f"a batch holds at most {MAX_BATCH_MESSAGES} messages, got {len(batch)}: "
                "submit it in parts"
            )
        done = host.submit(batch)
        return {
            "values": [msgs.result_to_wire(m, v) for m, v in zip(batch, done.values, strict=True)],
            "height": height_to_wire(done.height),
            "tx_id": done.tx_id.hex(),
        }

    if app_token is not None:
        expected = f"Bearer {app_token}"

        def authorised(authorization: Annotated[str | None, Header()] = None) -> None:
            # As the node's /rpc/*: the same token, compared in constant time.
            if authorization is None or not hmac.compare_digest(authorization, expected):
                raise HTTPException(401, "missing or wrong RPC token (see the node's rpc.token)")

        @router.post("/send", dependencies=[Depends(authorised)])
        def send(body: SendBody) -> dict[str, Any]:
            data = _hex(body.data, "data")
            rn, rh = body.timeout_height
            if not (0 <= rn < _U64 and 0 <= rh < _U64):
                raise SerializationError("timeout_height must be two unsigned 64-bit integers")
            packet = host.ibc.send_packet(
                body.port_id, body.channel_id, Height(rn, rh), body.timeout_timestamp, data
            )
            return {"packet": packet.encode().hex(), "height": height_to_wire(host.height)}

    return router
