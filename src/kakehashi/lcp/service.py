"""The LCP service: an HTTP API over one :class:`~kakehashi.lcp.enclave.Enclave`.

JSON in and out; every byte string is hex (``0x`` optional on input, none on output), heights are
``{"revision_number": n, "revision_height": h}``. Signed answers carry ``message`` (the encoded
proxy message), ``signature`` (65 bytes ``r ‖ s ‖ v``), ``signer`` (the enclave key's address)
and ``proof`` (``abi.encode(bytes message, bytes[] signatures)``, what an LCP client's membership
check reads). Typed errors answer 4xx with ``{"error": type, "message": text}``: a proof or
header that does not verify 422, malformed input 400, an unknown client 404.

* ``POST /clients`` — ``{"type": "qbft", "header", "validators": [...], "chain_id",
  "ibc_handler", "commitments_slot"?, "trusting_period_s"?, "max_clock_drift_s"?}`` or
  ``{"type": "corda", "client_state", "attestation"}``: creates an enclave light client; answers
  its ``client_id``, ``height``, ``state_id`` and the create-client message.
* ``POST /clients/{id}/update`` — ``{"header", "trusted_height"?}``: the signed UpdateState
  message (building on ``trusted_height`` when given, see ``Enclave.update_client``).
* ``POST /clients/{id}/verify_membership`` — ``{"height", "prefix", "path", "value", "proof"}``.
* ``POST /clients/{id}/verify_non_membership`` — ``{"height", "prefix", "path", "proof"}``.
* ``POST /clients/{id}/verify_batch`` — ``{"height", "items": [{"prefix", "path", "value"?,
  "proof"}]}`` (``value`` null: absence): ``{"signed": [...]}``, one signed VerifyMembership
  per item; and ``POST /clients/{id}/update`` takes the same ``"verify"`` items, verified at the
  new height, answered as ``"verified"``.
* ``POST /aggregate`` — ``{"messages": [{"message", "signature"}, ...]}``: consecutive
  UpdateState messages this enclave signed, as one signed UpdateState.
* ``GET /attestation`` — the current key's evidence: ``enclave_key``, ``avr``, ``signature``,
  ``signing_cert``, ``attested_at_ns``, ``mrenclave``, ``root_certificate`` (the simulation
  root), ``simulation: true``, and ``keys`` (every key's evidence, oldest first).
* ``POST /keys/rotate[?activate=false]`` — a new key and its evidence (earlier keys stay valid
  on the clients until they expire there); ``activate=false`` stages it (the current key keeps
  signing) and ``POST /keys/activate`` ``{"enclave_key"}`` switches signing to it once it is
  registered on every client.
* ``GET /health``.

No endpoint returns the enclave's private key, and nothing the service logs contains it.

The endpoints run on the event loop itself (``async def``), not in a thread pool: the enclave
does its work one call at a time under its lock anyway, and a thread hop per request would cost
more than it frees (about a third of a relayer's LCP time, measured). The answers of the hot
endpoints (update, verify_membership, verify_non_membership, verify_batch) are encoded here as
compact JSON and returned as they are, bypassing FastAPI's return-value validation and encoder.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from kakehashi.errors import KakehashiError, SerializationError, VerificationError
from kakehashi.lcp.enclave import (
    Attestation,
    Enclave,
    ProofItem,
    SealingError,
    SignedMessage,
    UnknownClientError,
    UnknownKeyError,
)
from kakehashi.lightclients.lcp import encode_commitment_proof
from kakehashi.lightclients.lcp_messages import Height

__all__ = ["create_app"]

log = logging.getLogger("kakehashi.lcp.service")


class HeightBody(BaseModel):
    revision_number: int = Field(0, ge=0, lt=2**64)
    revision_height: int = Field(ge=0, lt=2**64)

    def height(self) -> Height:
        return Height(self.revision_number, self.revision_height)


class CreateClientBody(BaseModel):
    type: str
    header: str | None = None
    validators: list[str] = []
    chain_id: int | None = None
    ibc_handler: str | None = None
    commitments_slot: int = Field(0, ge=0, lt=2**256)
    trusting_period_s: int = Field(14 * 24 * 3600, gt=0)
    max_clock_drift_s: int = Field(30, ge=0)
    client_state: str | None = None
    attestation: str | None = None


class ItemBody(BaseModel):
    prefix: str
    path: str
    value: str | None = None  # None: prove absence
    proof: str

    def item(self) -> ProofItem:
        value = None if self.value is None else _hex(self.value, "value")
        return ProofItem(
            _hex(self.prefix, "prefix"), _hex(self.path, "path"), value, _hex(self.proof, "proof")
        )


class UpdateBody(BaseModel):
    header: str
    trusted_height: HeightBody | None = None
    verify: list[ItemBody] = []


class BatchBody(BaseModel):
    height: HeightBody
    items: list[ItemBody]


class MembershipBody(BaseModel):
    height: HeightBody
    prefix: str
    path: str
    value: str
    proof: str


class SignedBody(BaseModel):
    message: str
    signature: str


class ActivateBody(BaseModel):
    enclave_key: str


class AggregateBody(BaseModel):
    messages: list[SignedBody]


class NonMembershipBody(BaseModel):
    height: HeightBody
    prefix: str
    path: str
    proof: str


def _hex(value: str | None, what: str) -> bytes:
    if value is None:
        raise SerializationError(f"{what} is required (hex)")
    text = value[2:] if value.startswith(("0x", "0X")) else value
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise SerializationError(f"{what} is not hex") from None


def _height(height: Height) -> dict[str, int]:
    return {"revision_number": height.revision_number, "revision_height": height.revision_height}


def _signed(signed: SignedMessage) -> dict[str, Any]:
    return {
        "message": signed.message.hex(),
        "signature": signed.signature.hex(),
        "signer": signed.signer.hex(),
        "proof": encode_commitment_proof(signed.message, [signed.signature]).hex(),
    }


def _json(body: dict[str, Any]) -> Response:
    """``body`` as a compact JSON answer, encoded here: the hot endpoints' answers are strings,
    ints and lists of them, and FastAPI's generic path (validating the return value against
    the annotation, then its ``jsonable_encoder``) cost more than the encoding itself."""
    return Response(json.dumps(body, separators=(",", ":")), media_type="application/json")


def _evidence(attestation: Attestation) -> dict[str, Any]:
    return {
        "enclave_key": attestation.address.hex(),
        "avr": attestation.avr,
        "signature": attestation.signature.hex(),
        "signing_cert": attestation.signing_cert.hex(),
        "attested_at_ns": attestation.attested_at_ns,
    }


def create_app(enclave: Enclave) -> FastAPI:
    """The HTTP face of ``enclave``."""
    app = FastAPI(title="Kakehashi LCP service (SIMULATION)", docs_url=None, redoc_url=None)

    @app.exception_handler(KakehashiError)
    async def _typed_error(_request: Request, exc: KakehashiError) -> JSONResponse:
        if isinstance(exc, UnknownClientError | UnknownKeyError):
            status = 404
        elif isinstance(exc, VerificationError):
            status = 422
        elif isinstance(exc, SerializationError | SealingError):
            status = 400
        else:
            status = 409
        log.info("event=lcp.refused error=%s message=%r", type(exc).__name__, str(exc))
        return JSONResponse({"error": type(exc).__name__, "message": str(exc)}, status)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "simulation": True, "enclave_key": enclave.address.hex()}

    @app.get("/attestation")
    async def attestation() -> dict[str, Any]:
        body = _evidence(enclave.attestation())
        body |= {
            "mrenclave": enclave.mrenclave.hex(),
            "root_certificate": enclave.root_certificate.hex(),
            "simulation": True,
            "keys": [_evidence(a) for a in enclave.attestations()],
        }
        return body

    @app.post("/keys/rotate")
    async def rotate(activate: bool = True) -> dict[str, Any]:
        new = enclave.rotate(activate=activate)
        log.info("event=lcp.key_rotated enclave_key=0x%s active=%s", new.address.hex(), activate)
        return _evidence(new) | {"active": enclave.address == new.address}

    @app.post("/keys/activate")
    async def activate(body: ActivateBody) -> dict[str, Any]:
        chosen = enclave.activate(_hex(body.enclave_key, "enclave_key"))
        log.info("event=lcp.key_activated enclave_key=0x%s", chosen.address.hex())
        return _evidence(chosen) | {"active": True}

    @app.post("/clients")
    async def create_client(body: CreateClientBody) -> dict[str, Any]:
        if body.type == "qbft":
            if body.chain_id is None:
                raise SerializationError("a qbft client needs chain_id")
            created = enclave.create_qbft_client(
                _hex(body.header, "header"),
                [_hex(v, "validator") for v in body.validators],
                chain_id=body.chain_id,
                ibc_handler=_hex(body.ibc_handler, "ibc_handler"),
                commitments_slot=body.commitments_slot,
                trusting_period_s=body.trusting_period_s,
                max_clock_drift_s=body.max_clock_drift_s,
            )
        elif body.type == "corda":
            created = enclave.create_corda_client(
                _hex(body.client_state, "client_state"), _hex(body.attestation, "attestation")
            )
        else:
            raise SerializationError(f"unknown client type {body.type!r} (qbft or corda)")
        log.info(
            "event=lcp.client_created client_id=%s height=%s", created.client_id, created.height
        )
        return {
            "client_id": created.client_id,
            "height": _height(created.height),
            "state_id": created.state_id.hex(),
            **_signed(created.message),
        }

    @app.post("/clients/{client_id}/update")
    async def update_client(client_id: str, body: UpdateBody) -> Response:
        trusted = body.trusted_height.height() if body.trusted_height is not None else None
        if body.verify:
            items = [i.item() for i in body.verify]
            height, signed, verified = enclave.update_and_verify(
                client_id, _hex(body.header, "header"), trusted, items
            )
            log.info(
                "event=lcp.update client_id=%s height=%s verified=%d signer=0x%s",
                client_id,
                height,
                len(items),
                signed.signer.hex(),
            )
            return _json(
                {
                    "height": _height(height),
                    **_signed(signed),
                    "verified": [_signed(v) for v in verified],
                }
            )
        height, signed = enclave.update_client(client_id, _hex(body.header, "header"), trusted)
        log.info(
            "event=lcp.update client_id=%s height=%s signer=0x%s",
            client_id,
            height,
            signed.signer.hex(),
        )
        return _json({"height": _height(height), **_signed(signed)})

    @app.post("/clients/{client_id}/verify_membership")
    async def verify_membership(client_id: str, body: MembershipBody) -> Response:
        signed = enclave.verify_membership(
            client_id,
            body.height.height(),
            _hex(body.prefix, "prefix"),
            _hex(body.path, "path"),
            _hex(body.value, "value"),
            _hex(body.proof, "proof"),
        )
        log.info(
            "event=lcp.verify_membership client_id=%s height=%s signer=0x%s",
            client_id,
            body.height.height(),
            signed.signer.hex(),
        )
        return _json(_signed(signed))

    @app.post("/clients/{client_id}/verify_non_membership")
    async def verify_non_membership(client_id: str, body: NonMembershipBody) -> Response:
        signed = enclave.verify_non_membership(
            client_id,
            body.height.height(),
            _hex(body.prefix, "prefix"),
            _hex(body.path, "path"),
            _hex(body.proof, "proof"),
        )
        log.info(
            "event=lcp.verify_non_membership client_id=%s height=%s signer=0x%s",
            client_id,
            body.height.height(),
            signed.signer.hex(),
        )
        return _json(_signed(signed))

    @app.post("/clients/{client_id}/verify_batch")
    async def verify_batch(client_id: str, body: BatchBody) -> Response:
        signed = enclave.verify_batch(
            client_id, body.height.height(), [i.item() for i in body.items]
        )
        log.info(
            "event=lcp.verify_batch client_id=%s height=%s items=%d",
            client_id,
            body.height.height(),
            len(signed),
        )
        return _json({"signed": [_signed(s) for s in signed]})

    @app.post("/aggregate")
    async def aggregate(body: AggregateBody) -> dict[str, Any]:
        signed = enclave.aggregate(
            [(_hex(m.message, "message"), _hex(m.signature, "signature")) for m in body.messages]
        )
        log.info(
            "event=lcp.aggregate messages=%d signer=0x%s", len(body.messages), signed.signer.hex()
        )
        return _signed(signed)

    return app
