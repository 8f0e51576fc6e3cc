"""A Python client of the LCP service's HTTP API (:mod:`kakehashi.lcp.service`).

:class:`LcpServiceClient` is what a relayer uses to talk to ``kakehashi lcp serve``: one
synchronous, keep-alive HTTP/1.1 connection (:mod:`http.client`: a relayer makes one call per
batch and waits for it, and the standard library's client costs about half of what
:mod:`httpx`'s layers did per call, a quarter of a millisecond), one method per endpoint,
answers as the enclave's own types (:class:`~kakehashi.lcp.enclave.SignedMessage`,
:class:`~kakehashi.lcp.enclave.CreatedClient`, :class:`~kakehashi.lcp.enclave.Attestation`,
:class:`~kakehashi.lightclients.lcp_messages.Height`).

* **Trust rule.** The client verifies nothing: the ledgers' LCP clients check every signature,
  attestation and message. It only checks that each answer is well-formed (JSON of the
  documented shape, hex where bytes are due, 65-byte signatures, 20-byte addresses) and raises
  :class:`~kakehashi.errors.SerializationError` when it is not.
* **Error rule.** A typed error answer (``{"error", "message"}``) is raised again as the same
  class the enclave raised (:class:`~kakehashi.errors.VerificationError` for 422,
  :class:`~kakehashi.lcp.enclave.UnknownClientError` for 404,
  :class:`~kakehashi.errors.SerializationError` or :class:`~kakehashi.lcp.enclave.SealingError`
  for 400, :class:`~kakehashi.errors.KakehashiError` otherwise) with the service's message. A
  request FastAPI refuses before it reaches the enclave (422 without an ``error`` field) is a
  :class:`~kakehashi.errors.SerializationError`. A service that cannot be reached, or does not
  answer in time, is an :class:`LcpUnavailableError`.
"""

from __future__ import annotations

import http.client
import json
import select
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, NoReturn
from urllib.parse import quote, urlsplit

from kakehashi.errors import (
    ConfigurationError,
    KakehashiError,
    SerializationError,
    SignatureError,
    TransportError,
    VerificationError,
)
from kakehashi.lcp.enclave import (
    Attestation,
    CreatedClient,
    ProofItem,
    SealingError,
    SignedMessage,
    UnknownClientError,
    UnknownKeyError,
)
from kakehashi.lightclients.lcp_messages import Height

__all__ = ["LcpServiceClient", "LcpUnavailableError", "ServiceAttestation"]


class LcpUnavailableError(TransportError):
    """The LCP service could not be reached, or did not answer in time."""


# Error names the service may answer, raised again as the same class (error rule).
_ERRORS: dict[str, type[KakehashiError]] = {
    cls.__name__: cls
    for cls in (
        KakehashiError,
        ConfigurationError,
        SerializationError,
        VerificationError,
        SignatureError,
        SealingError,
        UnknownClientError,
        UnknownKeyError,
    )
}
_BY_STATUS: dict[int, type[KakehashiError]] = {
    422: VerificationError,
    404: UnknownClientError,
    400: SerializationError,
}


@dataclass(frozen=True)
class ServiceAttestation:
    """``GET /attestation``: the signing key's evidence, the enclave's identity and every key."""

    enclave_key: bytes
    avr: str
    signature: bytes
    signing_cert: bytes
    attested_at_ns: int
    mrenclave: bytes
    root_certificate: bytes
    simulation: bool
    keys: tuple[Attestation, ...]
    """Every key's evidence, oldest first (the last one signs)."""

    @property
    def current(self) -> Attestation:
        """The signing key's evidence as an :class:`Attestation`."""
        return Attestation(
            self.enclave_key, self.avr, self.signature, self.signing_cert, self.attested_at_ns
        )


# ---------------------------------------------------------------------------- answer shapes


def _field(body: Mapping[str, Any], name: str, kind: type[Any]) -> Any:
    value = body.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise SerializationError(
            f"the LCP service's answer has no {kind.__name__} {name!r}: {dict(body)!r:.200}"
        )
    return value


def _bytes(body: Mapping[str, Any], name: str, size: int | None = None) -> bytes:
    text = _field(body, name, str)
    try:
        value = bytes.fromhex(text[2:] if text.startswith(("0x", "0X")) else text)
    except ValueError:
        raise SerializationError(f"the LCP service's {name!r} is not hex: {text:.80}") from None
    if size is not None and len(value) != size:
        raise SerializationError(
            f"the LCP service's {name!r} is {len(value)} bytes, not {size}: {text:.80}"
        )
    return value


def _height(body: Mapping[str, Any], name: str = "height") -> Height:
    value = _field(body, name, dict)
    return Height(_field(value, "revision_number", int), _field(value, "revision_height", int))


def _signed(body: Mapping[str, Any]) -> SignedMessage:
    return SignedMessage(
        _bytes(body, "message"), _bytes(body, "signature", 65), _bytes(body, "signer", 20)
    )


def _evidence(body: Mapping[str, Any]) -> Attestation:
    return Attestation(
        _bytes(body, "enclave_key", 20),
        _field(body, "avr", str),
        _bytes(body, "signature"),
        _bytes(body, "signing_cert"),
        _field(body, "attested_at_ns", int),
    )


def _item_json(item: ProofItem) -> dict[str, Any]:
    return {
        "prefix": item.prefix.hex(),
        "path": item.path.hex(),
        "value": None if item.value is None else item.value.hex(),
        "proof": item.proof.hex(),
    }


def _signed_list(body: Mapping[str, Any], name: str, count: int) -> list[SignedMessage]:
    entries = _field(body, name, list)
    if len(entries) != count or not all(isinstance(e, dict) for e in entries):
        raise SerializationError(f"the LCP service answered {name} for {count} items wrongly")
    return [_signed(e) for e in entries]


def _client_path(client_id: str, action: str) -> str:
    return f"/clients/{quote(client_id, safe='')}/{action}"


def _height_json(height: Height) -> dict[str, int]:
    return {"revision_number": height.revision_number, "revision_height": height.revision_height}


# ---------------------------------------------------------------------------- the client


class LcpServiceClient:
    """A synchronous client of one LCP service (module docstring for its rules).

    ``base_url``: ``http://host:port`` or ``https://host:port``, optionally with a path prefix.
    No proxy from the environment is used between a relayer and its enclave. Calls from
    several threads are made one at a time, on the one connection."""

    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        url = urlsplit(self.base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ConfigurationError(
                f"the LCP service URL must be http://host:port or https://host:port, not "
                f"{base_url!r}"
            )
        try:
            port = url.port
        except ValueError:
            raise ConfigurationError(f"the LCP service URL {base_url!r} has a bad port") from None
        self._https = url.scheme == "https"
        self._host, self._port, self._prefix = url.hostname, port, url.path
        self._timeout = timeout
        self._connection: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<LcpServiceClient {self.base_url}>"

    # -- transport ----------------------------------------------------------------------------

    def _connected(self) -> http.client.HTTPConnection:
        """The kept-alive connection, or a new one when there is none or the service closed
        it while it was idle (its socket then reads as ready: end of file, or a reset)."""
        connection = self._connection
        if connection is not None and connection.sock is not None:
            ready, _, _ = select.select([connection.sock], [], [], 0)
            if ready:
                connection.close()
                connection = None
        if connection is None:
            kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            connection = kind(self._host, self._port, timeout=self._timeout)
            self._connection = connection
        return connection

    def _exchange(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        """One request and its answer (status, body) on the kept-alive connection; any
        transport failure closes the connection (the next call opens a new one)."""
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        with self._lock:
            connection = self._connected()
            try:
                connection.request(method, self._prefix + path, body=body, headers=headers)
                response = connection.getresponse()
                return response.status, response.read()
            except TimeoutError:
                connection.close()
                raise LcpUnavailableError(
                    f"the LCP service at {self.base_url} did not answer {method} {path} in time "
                    f"({self._timeout} s): is it overloaded or stuck? Check `kakehashi lcp "
                    "serve`'s log, or raise the client's timeout"
                ) from None
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                raise LcpUnavailableError(
                    f"cannot reach the LCP service at {self.base_url} "
                    f"({exc or type(exc).__name__}): is `kakehashi lcp serve` running, and on "
                    "this host and port?"
                ) from None

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        status, raw = self._exchange(method, path, data)
        text = raw.decode("utf-8", "replace")
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = None
        if 200 <= status < 300:
            if answer is None:
                raise SerializationError(
                    f"the LCP service at {self.base_url} answered {method} {path} with something "
                    f"that is not JSON: {text:.200}"
                )
            return answer
        self._raise(f"{method} {path.split('?')[0]}", status, text, answer)

    def _raise(self, request: str, status: int, text: str, answer: Any) -> NoReturn:
        if isinstance(answer, dict) and isinstance(answer.get("error"), str):
            message = str(answer.get("message", ""))
            cls = _ERRORS.get(answer["error"]) or _BY_STATUS.get(status, KakehashiError)
            raise cls(message)
        if status == 422:  # FastAPI refused the request's shape before the enclave saw it
            raise SerializationError(f"the LCP service refused {request} as malformed: {text:.300}")
        if status in _BY_STATUS:
            raise _BY_STATUS[status](
                f"the LCP service at {self.base_url} answered {request} with HTTP {status}: "
                f"{text:.300}"
            )
        raise KakehashiError(
            f"the LCP service at {self.base_url} failed {request} (HTTP {status}): "
            f"{text:.300}; see `kakehashi lcp serve`'s log"
        )

    def _object(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        answer = self._call(method, path, body)
        if not isinstance(answer, dict):
            raise SerializationError(f"the LCP service's answer to {path} is not a JSON object")
        return answer

    def close(self) -> None:
        """Close the connection (a later call opens a new one)."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def __enter__(self) -> LcpServiceClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- endpoints ----------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """``GET /health``: ``status``, ``simulation`` and the signing ``enclave_key`` (hex)."""
        answer: dict[str, Any] = self._object("GET", "/health")
        _field(answer, "status", str)
        return answer

    def attestation(self) -> ServiceAttestation:
        """``GET /attestation``: the evidence an LCP client registers the enclave key from."""
        body = self._object("GET", "/attestation")
        current = _evidence(body)
        keys = _field(body, "keys", list)
        if not all(isinstance(k, dict) for k in keys):
            raise SerializationError("the LCP service's 'keys' are not JSON objects")
        return ServiceAttestation(
            enclave_key=current.address,
            avr=current.avr,
            signature=current.signature,
            signing_cert=current.signing_cert,
            attested_at_ns=current.attested_at_ns,
            mrenclave=_bytes(body, "mrenclave", 32),
            root_certificate=_bytes(body, "root_certificate"),
            simulation=_field(body, "simulation", bool),
            keys=tuple(_evidence(k) for k in keys),
        )

    def rotate_key(self, *, activate: bool = True) -> Attestation:
        """``POST /keys/rotate``: a new key and its evidence; ``activate`` False stages it (the
        current key keeps signing until :meth:`activate_key`)."""
        path = "/keys/rotate" if activate else "/keys/rotate?activate=false"
        return _evidence(self._object("POST", path))

    def activate_key(self, address: bytes) -> Attestation:
        """``POST /keys/activate``: key ``address`` signs from now on."""
        return _evidence(self._object("POST", "/keys/activate", {"enclave_key": address.hex()}))

    def _created(self, body: Mapping[str, Any]) -> CreatedClient:
        answer = self._object("POST", "/clients", body)
        return CreatedClient(
            _field(answer, "client_id", str),
            _height(answer),
            _bytes(answer, "state_id", 32),
            _signed(answer),
        )

    def create_qbft_client(
        self,
        header: bytes,
        validators: Sequence[bytes],
        *,
        chain_id: int,
        ibc_handler: bytes,
        commitments_slot: int = 0,
        trusting_period_s: int = 14 * 24 * 3600,
        max_clock_drift_s: int = 30,
    ) -> CreatedClient:
        """``POST /clients`` (``qbft``): an enclave client of an EVM chain from a trusted header."""
        return self._created(
            {
                "type": "qbft",
                "header": header.hex(),
                "validators": [bytes(v).hex() for v in validators],
                "chain_id": chain_id,
                "ibc_handler": ibc_handler.hex(),
                "commitments_slot": commitments_slot,
                "trusting_period_s": trusting_period_s,
                "max_clock_drift_s": max_clock_drift_s,
            }
        )

    def create_corda_client(self, client_state: bytes, attestation: bytes) -> CreatedClient:
        """``POST /clients`` (``corda``): an enclave client of a Corda-model host."""
        return self._created(
            {"type": "corda", "client_state": client_state.hex(), "attestation": attestation.hex()}
        )

    def update_client(
        self, client_id: str, header: bytes, trusted_height: Height | None = None
    ) -> tuple[Height, SignedMessage]:
        """``POST /clients/{id}/update``: the new height and the signed UpdateState (building on
        ``trusted_height`` when given)."""
        body: dict[str, Any] = {"header": header.hex()}
        if trusted_height is not None:
            body["trusted_height"] = _height_json(trusted_height)
        answer = self._object("POST", _client_path(client_id, "update"), body)
        return _height(answer), _signed(answer)

    def verify_membership(
        self,
        client_id: str,
        height: Height,
        prefix: bytes,
        path: bytes,
        value: bytes,
        proof: bytes,
    ) -> SignedMessage:
        """``POST /clients/{id}/verify_membership``: the signed VerifyMembership statement."""
        body = {
            "height": _height_json(height),
            "prefix": prefix.hex(),
            "path": path.hex(),
            "value": value.hex(),
            "proof": proof.hex(),
        }
        return _signed(self._object("POST", _client_path(client_id, "verify_membership"), body))

    def verify_non_membership(
        self, client_id: str, height: Height, prefix: bytes, path: bytes, proof: bytes
    ) -> SignedMessage:
        """``POST /clients/{id}/verify_non_membership``: the signed statement of absence."""
        body = {
            "height": _height_json(height),
            "prefix": prefix.hex(),
            "path": path.hex(),
            "proof": proof.hex(),
        }
        return _signed(self._object("POST", _client_path(client_id, "verify_non_membership"), body))

    def verify_batch(
        self, client_id: str, height: Height, items: Sequence[ProofItem]
    ) -> list[SignedMessage]:
        """``POST /clients/{id}/verify_batch``: one signed statement per item."""
        body = {"height": _height_json(height), "items": [_item_json(i) for i in items]}
        answer = self._object("POST", _client_path(client_id, "verify_batch"), body)
        return _signed_list(answer, "signed", len(items))

    def update_and_verify(
        self,
        client_id: str,
        header: bytes,
        trusted_height: Height | None,
        items: Sequence[ProofItem],
    ) -> tuple[Height, SignedMessage, list[SignedMessage]]:
        """``POST /clients/{id}/update`` with ``verify`` items: the new height, the signed
        UpdateState and one signed statement per item at that height."""
        body: dict[str, Any] = {"header": header.hex(), "verify": [_item_json(i) for i in items]}
        if trusted_height is not None:
            body["trusted_height"] = _height_json(trusted_height)
        answer = self._object("POST", _client_path(client_id, "update"), body)
        return _height(answer), _signed(answer), _signed_list(answer, "verified", len(items))

    def aggregate(self, messages: Sequence[SignedMessage]) -> SignedMessage:
        """``POST /aggregate``: consecutive UpdateState messages as one signed UpdateState."""
        body = {
            "messages": [
                {"message": m.message.hex(), "signature": m.signature.hex()} for m in messages
            ]
        }
        return _signed(self._object("POST", "/aggregate", body))
