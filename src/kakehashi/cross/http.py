"""The Cross Framework module of a Corda node over HTTP (mounted by ``kakehashi corda serve
--ibc``): what a user or a test reads of its cross transactions, and starting one.

* ``GET /cross/tx/{tx_id}`` — this host's view: as coordinator (protocol, decision, each part's
  status, failures, decisions acknowledged, done) and as participant (each part it ran here);
  404 when it knows nothing of it.
* ``GET /cross/tx[?open_only=true]`` — the transactions this node coordinated (protocol,
  decision, done, time initiated); ``/cross/tx/{tx_id}`` also carries the ``timeline``.
* ``GET /cross/kv/{key}`` — the key-value application's committed value and lock (hex).
* ``POST /cross/initiate`` ``{"tx": HEX of InitiateTx.encode(), "local": 0, "signatures":
  [{"kind": "LOCAL" | "EXTENSION", "id": HEX, "signature": HEX}]}`` — start a transaction with
  this node as coordinator (its own party signs if named); needs the node's RPC token (as
  ``/ibc/send``).
* ``POST /cross/sign`` ``{"tx_id": HEX, "kind", "id", "signature"}`` — a LOCAL signer's
  signature over the tx id with its Corda-model key, or an EXTENSION signer's, for a
  transaction coordinated here. Public: the signature is the authentication.
* ``POST /cross/sign-remote`` ``{"tx": HEX, "index": 1, "channel": "channel-0", "id": HEX,
  "signature": HEX}`` — a party of this ledger, a CHANNEL signer of part ``index`` of a
  transaction coordinated across ``channel``, signs; a SIGN packet carries it there. Public.

Errors: 400 malformed input, 409 refused (unknown transaction, timed out, not a signer), 422 a
signature that does not verify.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException
from pydantic import BaseModel

from kakehashi.cross.corda_module import CrossModule
from kakehashi.cross.tx import Account, InitiateTx, SignerKind
from kakehashi.errors import KakehashiError, SerializationError, SignatureError

__all__ = ["create_cross_router"]


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
    tx: str
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


def create_cross_router(module: CrossModule, *, app_token: str) -> APIRouter:
    router = APIRouter(prefix="/cross", tags=["cross"])
    expected = f"Bearer {app_token}"

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
        if authorization is None or not hmac.compare_digest(authorization, expected):
            raise HTTPException(401, "missing or wrong RPC token (see the node's rpc.token)")
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
            tx = InitiateTx.decode(_hex(body.tx, "tx"))
            module.sign_remote(
                tx, body.index, body.channel, account, _hex(body.signature, "signature")
            )
        except KakehashiError as exc:
            raise _refused(exc) from None
        return {"tx_id": tx.tx_id.hex(), "sent": "SIGN"}

    return router
