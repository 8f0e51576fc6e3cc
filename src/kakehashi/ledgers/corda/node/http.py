"""HTTP between node processes (FastAPI server) and the node's RPC for operators.

* ``POST /p2p`` carries signed envelopes between parties (see ``transport.Messenger``): the
  body is checked by the node itself, so the HTTP layer needs no trust.
* ``/rpc/*`` lets the node's operator run flows and query the vault. It requires the bearer
  token stored in the node's folder (``rpc.token``), and listens on 127.0.0.1 by default.
"""

from __future__ import annotations

import hmac
import logging
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from kakehashi.errors import ConflictError, KakehashiError, UnknownPartyError
from kakehashi.ledgers.corda.model.identity import X500Name
from kakehashi.ledgers.corda.node.node import Node, NotaryNode
from kakehashi.ledgers.corda.node.vault import StateStatus
from kakehashi.ledgers.corda.tokens.flows import (
    issue_tokens,
    move_tokens,
    redeem_tokens,
    split_tokens,
)
from kakehashi.ledgers.corda.tokens.model import FungibleToken, IssuedTokenType, TokenType

log = logging.getLogger(__name__)


class IssueBody(BaseModel):
    token: str
    fraction_digits: int = Field(0, ge=0, le=18)
    quantity: int = Field(gt=0)
    holder: str


class MoveBody(BaseModel):
    token: str
    fraction_digits: int = Field(0, ge=0, le=18)
    issuer: str
    quantity: int = Field(gt=0)
    recipient: str


class SplitBody(BaseModel):
    token: str
    fraction_digits: int = Field(0, ge=0, le=18)
    issuer: str
    parts: int = Field(gt=0, le=10_000)


class RedeemBody(BaseModel):
    token: str
    fraction_digits: int = Field(0, ge=0, le=18)
    issuer: str
    quantity: int = Field(gt=0)


def _issued(node: Node, token: str, digits: int, issuer: str) -> IssuedTokenType:
    return IssuedTokenType(node.network.party(issuer), TokenType(token, digits))


def create_app(peer: Node | NotaryNode, rpc_token: str) -> FastAPI:
    """The HTTP face of one node or notary."""
    app = FastAPI(title=f"Kakehashi Corda-model node {peer.name}", docs_url=None, redoc_url=None)

    @app.exception_handler(KakehashiError)
    async def _typed_error(_request: Request, exc: KakehashiError) -> JSONResponse:
        body: dict[str, Any] = {"error": type(exc).__name__, "message": str(exc)}
        if isinstance(exc, ConflictError):
            body["consumed"] = exc.consumed
        status = 404 if isinstance(exc, UnknownPartyError) else 409
        return JSONResponse(body, status_code=status)

    @app.post("/p2p")
    def p2p(body: Annotated[bytes, Depends(_raw_body)]) -> Response:
        return Response(peer.handle(body), media_type="application/cbor")

    @app.get("/health")
    def health() -> dict[str, Any]:
        kind = "notary" if isinstance(peer, NotaryNode) else "node"
        return {"status": "ok", "name": str(peer.name), "kind": kind}

    def authorised(authorization: Annotated[str | None, Header()] = None) -> Node:
        expected = f"Bearer {rpc_token}"
        if authorization is None or not hmac.compare_digest(authorization, expected):
            raise HTTPException(401, "missing or wrong RPC token (see the node's rpc.token)")
        if not isinstance(peer, Node):
            raise HTTPException(404, "a notary runs no flows")
        return peer

    # A default (not an ``Annotated`` alias): with postponed annotations FastAPI resolves
    # annotation strings in the module's globals, where a local alias does not exist (the
    # parameter then silently becomes a required query parameter and every RPC answers 422).
    rpc = Depends(authorised)

    @app.post("/rpc/issue")
    def rpc_issue(body: IssueBody, node: Node = rpc) -> dict[str, Any]:
        holder = node.network.party(X500Name.parse(body.holder))
        stx = issue_tokens(node, TokenType(body.token, body.fraction_digits), body.quantity, holder)
        return {"tx_id": stx.id.hex()}

    @app.post("/rpc/move")
    def rpc_move(body: MoveBody, node: Node = rpc) -> dict[str, Any]:
        token = _issued(node, body.token, body.fraction_digits, body.issuer)
        recipient = node.network.party(X500Name.parse(body.recipient))
        return {"tx_id": move_tokens(node, token, body.quantity, recipient).id.hex()}

    @app.post("/rpc/split")
    def rpc_split(body: SplitBody, node: Node = rpc) -> dict[str, Any]:
        token = _issued(node, body.token, body.fraction_digits, body.issuer)
        return {"tx_id": split_tokens(node, token, body.parts).id.hex()}

    @app.post("/rpc/redeem")
    def rpc_redeem(body: RedeemBody, node: Node = rpc) -> dict[str, Any]:
        token = _issued(node, body.token, body.fraction_digits, body.issuer)
        return {"tx_id": redeem_tokens(node, token, body.quantity).id.hex()}

    @app.post("/rpc/recover")
    def rpc_recover(node: Node = rpc) -> dict[str, Any]:
        """Retry every unfinished flow (e.g. deliveries to a peer that was down)."""
        return {"pending": [tx_id.hex() for tx_id in node.recover()]}

    @app.get("/rpc/vault")
    def rpc_vault(node: Node = rpc, consumed: bool = False, limit: int = 200) -> dict[str, Any]:
        status = StateStatus.CONSUMED if consumed else StateStatus.UNCONSUMED
        states = []
        for item in node.db.query(status=status, limit=max(1, min(limit, 1000))):
            data = item.state.data
            entry: dict[str, Any] = {"ref": str(item.ref), "type": type(data).__name__}
            if isinstance(data, FungibleToken):
                entry |= {
                    "token": data.amount.token.token_type.token_identifier,
                    "issuer": str(data.amount.token.issuer.name),
                    "quantity": data.quantity,
                    "holder": str(data.holder.name),
                }
            states.append(entry)
        return {"states": states}

    @app.get("/rpc/balances")
    def rpc_balances(node: Node = rpc) -> dict[str, Any]:
        return {"balances": node.db.balances()}

    @app.get("/rpc/transactions")
    def rpc_transactions(node: Node = rpc) -> dict[str, Any]:
        return {"transactions": sorted(t.hex() for t in node.db.transaction_ids())}

    return app


async def _raw_body(request: Request) -> bytes:
    return await request.body()
