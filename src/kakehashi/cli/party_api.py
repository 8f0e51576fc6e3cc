"""What a party of a use case does from its own node, over HTTP: the routes ``kakehashi corda
serve`` adds to every node (beside the node's ``/rpc`` routes; same bearer token, the node's
``rpc.token``; typed errors answer 409 ``{"error", "message"}`` as the ``/rpc`` routes do).

The node layer (:mod:`kakehashi.ledgers.corda.node.http`) knows no application, so the command
line mounts these; they call the applications' own flows.

DVP (:mod:`kakehashi.apps.dvp.settlement`), the buyer's side:

* ``POST /rpc/cross/deposit`` ``{"tx": HEX of InitiateTx.encode(), "index": 0, "operator":
  X500}`` — the holder's consent to part ``index`` (a token move,
  :func:`~kakehashi.cross.corda_tokens.token_call`): deposits exactly what that part moves, to
  the recipient it names, reclaimable after the transaction's timeout
  (:func:`~kakehashi.cross.corda_tokens.deposit`). The call names parties by key digest; the
  node finds them in its network map, and refuses a part whose holder is not its own party.
  Answers ``{"tx_id", "cross_tx_id", "token", "issuer", "amount", "recipient", "expiry_ns"}``.
* ``POST /rpc/cross/reclaim`` ``{"tx_id": HEX, "index": 0}`` — take the deposit back after the
  expiry (:func:`~kakehashi.cross.corda_tokens.reclaim`; refused before it, or once the cross
  transaction consumed it). Answers ``{"tx_id"}``.

Logistics (:mod:`kakehashi.apps.logistics.deliveries`), a carrier's side:

* ``POST /rpc/logistics/deliveries`` ``{"contract_id", "shipment_id", "quantity", "parties":
  [X500, ...], "delivered_at_ns": optional (default now)}`` — record a delivery, finalised to
  the shipment's parties only. Answers ``{"tx_id"}``.
* ``GET /rpc/logistics/deliveries?contract_id=ID`` — the delivery records of a contract in this
  node's vault.
"""

from __future__ import annotations

import hmac
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException
from pydantic import BaseModel, Field

from kakehashi.ledgers.corda.model.identity import Party, X500Name
from kakehashi.ledgers.corda.node.node import Node

__all__ = ["create_party_router"]


class DepositBody(BaseModel):
    tx: str
    index: int = Field(0, ge=0, le=255)
    operator: str


class ReclaimBody(BaseModel):
    tx_id: str
    index: int = Field(0, ge=0, le=255)


class DeliveryBody(BaseModel):
    contract_id: str
    shipment_id: str
    quantity: int = Field(gt=0)
    parties: list[str] = Field(min_length=1)
    delivered_at_ns: int | None = Field(None, ge=0)


def _hex(value: str, what: str) -> bytes:
    try:
        return bytes.fromhex(value.removeprefix("0x"))
    except ValueError:
        raise HTTPException(400, f"{what} is not hex") from None


def _party_by_digest(node: Node, digest: bytes, role: str) -> Party:
    """The party of ``node``'s network map whose key digest (a token call's way of naming a
    party) is ``digest``."""
    from kakehashi.cross.corda_tokens import party_digest
    from kakehashi.cross.tx import CrossTxError

    for info in node.network.nodes:
        if party_digest(info.party.owning_key) == digest:
            return info.party
    raise CrossTxError(f"the part's {role} (key digest {digest.hex()}) is not in the network map")


def create_party_router(node: Node, *, app_token: str) -> APIRouter:
    """The routes of the module docstring, for ``node`` (its RPC token ``app_token``)."""
    router = APIRouter(prefix="/rpc", tags=["use cases"])
    expected = f"Bearer {app_token}"

    def authorised(authorization: Annotated[str | None, Header()] = None) -> Node:
        if authorization is None or not hmac.compare_digest(authorization, expected):
            raise HTTPException(401, "missing or wrong RPC token (see the node's rpc.token)")
        return node

    rpc = Depends(authorised)

    @router.post("/cross/deposit")
    def cross_deposit(body: DepositBody, me: Node = rpc) -> dict[str, Any]:
        from kakehashi.cross.corda_tokens import (
            CrossTokenDeposit,
            decode_token_call,
            deposit,
            deposit_id,
            party_digest,
        )
        from kakehashi.cross.tx import CrossTxError, InitiateTx
        from kakehashi.ledgers.corda.tokens.model import IssuedTokenType, TokenType

        tx = InitiateTx.decode(_hex(body.tx, "tx"))
        if body.index >= len(tx.contract_transactions):
            raise CrossTxError(f"the transaction has no part {body.index}")
        move = decode_token_call(tx.contract_transactions[body.index].call_info)
        if move.holder != party_digest(me.party.owning_key):
            raise CrossTxError(
                f"part {body.index} of {tx.tx_id.hex()} moves tokens of another holder, not of "
                f"{me.party.name}"
            )
        if tx.timeout_timestamp <= 0:
            raise CrossTxError(
                "the transaction has no timeout time: a deposit needs one (it is reclaimable "
                "from then)"
            )
        issuer = _party_by_digest(me, move.issuer, "token issuer")
        recipient = _party_by_digest(me, move.recipient, "recipient")
        operator = me.network.party(X500Name.parse(body.operator))
        # the token's fraction digits are not in the call: take them from the holder's vault
        digits = _fraction_digits(me, move.token_identifier, issuer)
        token = IssuedTokenType(issuer, TokenType(move.token_identifier, digits))
        made = me.db.query(CrossTokenDeposit, linear_id=deposit_id(tx.tx_id, body.index).id)
        if made:  # deposited already (a consent run again): the same deposit, not a second
            tx_hash = made[0].ref.txhash
        else:
            tx_hash = deposit(
                me,
                token,
                move.amount,
                recipient=recipient,
                operator=operator,
                tx_id=tx.tx_id,
                index=body.index,
                expiry_ns=tx.timeout_timestamp,
            ).id
        return {
            "tx_id": tx_hash.hex(),
            "existing": bool(made),
            "cross_tx_id": tx.tx_id.hex(),
            "token": move.token_identifier,
            "issuer": str(issuer.name),
            "amount": move.amount,
            "recipient": str(recipient.name),
            "expiry_ns": tx.timeout_timestamp,
        }

    @router.post("/cross/reclaim")
    def cross_reclaim(body: ReclaimBody, me: Node = rpc) -> dict[str, Any]:
        from kakehashi.cross.corda_tokens import reclaim

        return {"tx_id": reclaim(me, _hex(body.tx_id, "tx_id"), body.index).id.hex()}

    @router.post("/logistics/deliveries")
    def record(body: DeliveryBody, me: Node = rpc) -> dict[str, Any]:
        from kakehashi.apps.logistics.deliveries import record_delivery

        parties = [me.network.party(X500Name.parse(p)) for p in body.parties]
        when = time.time_ns() if body.delivered_at_ns is None else body.delivered_at_ns
        stx = record_delivery(
            me, body.contract_id, body.shipment_id, body.quantity, parties, delivered_at_ns=when
        )
        return {"tx_id": stx.id.hex()}

    @router.get("/logistics/deliveries")
    def listed(contract_id: str, me: Node = rpc) -> dict[str, Any]:
        from kakehashi.apps.logistics.deliveries import deliveries

        return {
            "deliveries": [
                {
                    "carrier": str(r.carrier.name),
                    "contract_id": r.contract_id,
                    "shipment_id": r.shipment_id,
                    "quantity": r.quantity,
                    "delivered_at_ns": r.delivered_at_ns,
                    "parties": [str(p.name) for p in r.parties],
                }
                for r in deliveries(me, contract_id)
            ]
        }

    return router


def _fraction_digits(node: Node, identifier: str, issuer: Party) -> int:
    """The fraction digits of ``identifier`` issued by ``issuer`` as ``node`` holds it (0 when
    it holds none: the deposit then fails for want of balance, as it should)."""
    from kakehashi.ledgers.corda.tokens.model import FungibleToken

    offset = 0
    while page := node.db.query(FungibleToken, limit=200, offset=offset):
        for item in page:
            data = item.state.data
            if (
                isinstance(data, FungibleToken)
                and data.amount.token.issuer == issuer
                and data.amount.token.token_type.token_identifier == identifier
            ):
                return int(data.amount.token.token_type.fraction_digits)
        offset += len(page)
    return 0
