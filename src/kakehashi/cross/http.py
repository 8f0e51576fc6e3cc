"""The Cross Framework module of a Corda node over HTTP (mounted by ``kakehashi corda serve
--ibc``): what a user or a test reads of its cross transactions, and starting one.

* ``GET /cross/tx/{tx_id}`` — this host's view: as coordinator (protocol, decision, each part's
  status, failures, decisions acknowledged, done) and as participant (each part it ran here,
  and ``view``: per part of the transaction, ``revealed`` or ``hidden`` with its digest); 404
  when it knows nothing of it.
* ``GET /cross/tx[?open_only=true]`` — the transactions this node coordinated (protocol,
  decision, done, time initiated); ``/cross/tx/{tx_id}`` also carries the ``timeline``.
* ``GET /cross/kv/{key}`` — the key-value application's committed value and lock (hex).
* ``POST /cross/initiate`` ``{"tx": HEX of InitiateTx.encode(), "local": 0, "signatures":
  [{"kind": "LOCAL" | "EXTENSION", "id": HEX, "signature": HEX}]}`` — start a transaction with
  this node as coordinator (its own party signs if named); needs the node's RPC token (as
  ``/ibc/send``) or its ``cross-initiate.token``, good for this route alone.
* ``POST /cross/sign`` ``{"tx_id": HEX, "kind", "id", "signature"}`` — a LOCAL signer's
  signature over the tx id with its Corda-model key, or an EXTENSION signer's, for a
  transaction coordinated here. Public: the signature is the authentication.
* ``POST /cross/sign-remote`` ``{"view": HEX, "index": 1, "channel": "channel-0", "id": HEX,
  "signature": HEX}`` — a party of this ledger, a CHANNEL signer of part ``index`` of a
  transaction coordinated across ``channel``, signs; a SIGN packet carries it there. ``view``
  is ``TxView.encode()`` of the view revealing part ``index`` and the parts it links to
  (``InitiateTx.view(index)``): this ledger is never given the other parts. Public.

* ``GET /cross/events[?tx_id=HEX]`` — **Server-Sent Events**: the transactions this node
  coordinates as they move: ``authenticated`` (every signer signed), ``decided`` (COMMIT or
  ABORT) and ``completed`` (``outcome`` committed or aborted, every part told), each ``data`` a
  JSON object with ``tx_id``. With ``tx_id`` the stream starts with that transaction's state and
  ends after its ``completed`` (a late subscriber still gets it); without, it carries every
  change from the time it is opened. A ``: keep-alive`` comment every 15 s.

Errors: 400 malformed input, 409 refused (unknown transaction, timed out, not a signer), 422 a
signature that does not verify.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from kakehashi.cross.corda_module import CrossModule
from kakehashi.cross.status import Decision
from kakehashi.cross.tx import Account, InitiateTx, SignerKind, TxView
from kakehashi.errors import KakehashiError, SerializationError, SignatureError

__all__ = ["CROSS_INITIATE_TOKEN", "create_cross_router", "event_stream"]

CROSS_INITIATE_TOKEN = "cross-initiate.token"
"""In a host node's folder: the token ``POST /cross/initiate`` takes besides ``rpc.token``."""


class SignatureBody(BaseModel):
    kind: str
    id: str
    signature: str


class InitiateBody(BaseModel):
    tx: str
    local: int | None = 0
    signatures: list[SignatureBody] = []


class SignBody(SignatureBody):
    tx_id: str


class SignRemoteBody(BaseModel):
    view: str
    index: int
    channel: str
    id: str
    signature: str


def _account(body: SignatureBody) -> tuple[Account, bytes]:
    try:
        kind = SignerKind[body.kind.upper()]
    except KeyError:
        raise HTTPException(400, "kind is LOCAL, CHANNEL or EXTENSION") from None
    return Account(kind, _hex(body.id, "id")), _hex(body.signature, "signature")


def _refused(exc: KakehashiError) -> HTTPException:
    if isinstance(exc, SerializationError):
        return HTTPException(400, str(exc))
    if isinstance(exc, SignatureError):
        return HTTPException(422, str(exc))
    return HTTPException(409, str(exc))


def _hex(value: str, what: str) -> bytes:
    try:
        return bytes.fromhex(value.removeprefix("0x"))
    except ValueError:
        raise HTTPException(400, f"{what} is not hex") from None


def _progress(module: CrossModule, tx_id: bytes) -> tuple[str, ...]:
    """How far ``tx_id`` has come here, as the events it has earned, in order."""
    c = module.coordinator(tx_id)
    if c is None:
        return ()
    earned: tuple[str, ...] = ()
    if c.started:
        earned += ("authenticated",)
    if c.decision is not Decision.UNKNOWN:
        earned += ("decided",)
        if c.done:
            earned += ("completed",)
    return earned


def _event(module: CrossModule, tx_id: bytes, name: str) -> str:
    c = module.coordinator(tx_id)
    assert c is not None
    data: dict[str, Any] = {"tx_id": tx_id.hex()}
    if name != "authenticated":
        data["decision"] = c.decision.name
    if name == "completed":
        data["outcome"] = "committed" if c.decision is Decision.COMMIT else "aborted"
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


def event_stream(
    module: CrossModule,
    tx_id: bytes | None,
    *,
    poll_s: float = 0.2,
    keep_alive_s: float = 15.0,
    stop: threading.Event | None = None,
) -> Iterator[str]:
    """The Server-Sent Events of ``GET /cross/events`` (module docstring), polling the host's
    records every ``poll_s`` (they are in the node's database, whichever process wrote them)."""
    seen: dict[bytes, int] = {}
    if tx_id is None:  # changes from now on only
        seen = {t: len(_progress(module, t)) for t in module.coordinated()}
    quiet = 0.0
    while stop is None or not stop.is_set():
        watched = [tx_id] if tx_id is not None else module.coordinated()
        sent = False
        for t in watched:
            earned = _progress(module, t)
            for name in earned[seen.get(t, 0) :]:
                yield _event(module, t, name)
                sent = True
            seen[t] = len(earned)
            if tx_id is not None and "completed" in earned:
                return
        quiet = 0.0 if sent else quiet + poll_s
        if quiet >= keep_alive_s:
            yield ": keep-alive\n\n"
            quiet = 0.0
        time.sleep(poll_s)


def create_cross_router(
    module: CrossModule, *, app_token: str, initiate_token: str | None = None
) -> APIRouter:
    """The routes of the module docstring; ``/cross/initiate`` takes the node's RPC token
    ``app_token``, or ``initiate_token`` (a token good for that route alone)."""
    router = APIRouter(prefix="/cross", tags=["cross"])
    accepted = [f"Bearer {app_token}"]
    if initiate_token:
        accepted.append(f"Bearer {initiate_token}")

    @router.get("/tx/{tx_id}")
    def status(tx_id: str) -> dict[str, Any]:
        key = _hex(tx_id, "tx_id")
        answer: dict[str, Any] = {"tx_id": key.hex()}
        c = module.coordinator(key)
        if c is not None:
            answer["coordinator"] = {
                "protocol": c.tx.commit_protocol.name,
                "decision": c.decision.name,
                "parts": {str(i): s.name for i, s in sorted(c.parts.items())},
                "failures": {str(i): r for i, r in c.failures.items()},
                "rejected": {str(i): r for i, r in c.rejected.items()},
                "decided": sorted(c.decided),
                "done": c.done,
            }
            auth = module.authentication(key)
            if auth is not None:
                host = module.host
                answer["authentication"] = {
                    "status": auth.status(host.height, host.timestamp_ns).name,
                    "signed": [
                        {"kind": a.kind.name, "id": a.id.hex(), "time_ns": t}
                        for a, t in auth.signed.items()
                    ],
                    "missing": [{"kind": a.kind.name, "id": a.id.hex()} for a in auth.missing()],
                }
        participant = {str(i): s.name for i, s in module.participant(key).items()}
        if participant:
            answer["participant"] = participant
        view = module.view(key)
        if view is not None:
            answer["view"] = view.shown()
        timeline = module.timeline(key)
        if timeline:
            answer["timeline"] = [{"time_ns": t, "event": e} for t, e in timeline]
        if len(answer) == 1:
            raise HTTPException(404, f"this node knows no cross transaction {key.hex()}")
        return answer

    @router.get("/tx")
    def transactions(open_only: bool = False) -> dict[str, Any]:
        """The transactions this node coordinated (``open_only``: not done yet), with the time
        each was initiated."""
        listed = []
        for tx_id in module.coordinated():
            c = module.coordinator(tx_id)
            if c is None or (open_only and c.done):
                continue
            timeline = module.timeline(tx_id)
            listed.append(
                {
                    "tx_id": tx_id.hex(),
                    "protocol": c.tx.commit_protocol.name,
                    "decision": c.decision.name,
                    "done": c.done,
                    "initiated_ns": timeline[0][0] if timeline else None,
                }
            )
        return {"transactions": listed}

    @router.get("/events")
    def events(tx_id: str | None = None) -> StreamingResponse:
        wanted = None if tx_id is None else _hex(tx_id, "tx_id")
        return StreamingResponse(
            event_stream(module, wanted),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )

    @router.get("/kv/{key}")
    def kv(key: str) -> dict[str, Any]:
        raw = _hex(key, "key")
        value = module.app.value(raw)
        lock = module.app.locked_by(raw)
        return {
            "value": None if value is None else value.hex(),
            "locked_by": lock.hex() if lock else None,
        }

    @router.post("/initiate")
    def initiate(
        body: InitiateBody, authorization: Annotated[str | None, Header()] = None
    ) -> dict[str, Any]:
        given = authorization or ""
        if not any([hmac.compare_digest(given, token) for token in accepted]):
            raise HTTPException(
                401,
                "missing or wrong token (the node's rpc.token, or its cross-initiate.token)",
            )
        signatures = dict(_account(entry) for entry in body.signatures)
        try:
            tx = InitiateTx.decode(_hex(body.tx, "tx"))
            tx_id = module.initiate(tx, body.local, signatures)
        except KakehashiError as exc:
            raise _refused(exc) from None
        return {"tx_id": tx_id.hex()}

    @router.post("/sign")
    def sign(body: SignBody) -> dict[str, Any]:
        account, signature = _account(body)
        try:
            status = module.sign(_hex(body.tx_id, "tx_id"), account, signature)
        except KakehashiError as exc:
            raise _refused(exc) from None
        return {"authentication": status.name}

    @router.post("/sign-remote")
    def sign_remote(body: SignRemoteBody) -> dict[str, Any]:
        account = Account(SignerKind.CHANNEL, _hex(body.id, "id"))
        try:
            view = TxView.decode(_hex(body.view, "view"))
            module.sign_remote(
                view, body.index, body.channel, account, _hex(body.signature, "signature")
            )
        except KakehashiError as exc:
            raise _refused(exc) from None
        return {"tx_id": view.tx_id.hex(), "sent": "SIGN"}

    return router
