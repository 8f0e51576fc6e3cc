"""The Cross Framework module of a Corda node over HTTP (mounted by ``kakehashi corda serve
--ibc``): what a user or a test reads of its cross transactions, and starting one.

* ``GET /cross/tx/{tx_id}`` — this host's view: as coordinator (protocol, decision, each part's
  status, failures, decisions acknowledged, done) and as participant (each part it ran here);
  404 when it knows nothing of it.
* ``GET /cross/tx[?open_only=true]`` — the transactions this node coordinated (protocol,
  decision, done, time initiated); ``/cross/tx/{tx_id}`` also carries the ``timeline``.
* ``GET /cross/kv/{key}`` — the key-value application's committed value and lock (hex).
* ``POST /cross/initiate`` ``{"tx": HEX of InitiateTx.encode(), "local": 0}`` — start a
  transaction with this node as coordinator; needs the node's RPC token (as ``/ibc/send``).
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException
from pydantic import BaseModel

from kakehashi.cross.corda_module import CrossModule
from kakehashi.cross.tx import InitiateTx
from kakehashi.errors import KakehashiError, SerializationError

__all__ = ["create_cross_router"]


class InitiateBody(BaseModel):
    tx: str
    local: int | None = 0


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
        try:
            tx = InitiateTx.decode(_hex(body.tx, "tx"))
            tx_id = module.initiate(tx, body.local)
        except SerializationError as exc:
            raise HTTPException(400, str(exc)) from None
        except KakehashiError as exc:
            raise HTTPException(409, str(exc)) from None
        return {"tx_id": tx_id.hex()}

    return router
