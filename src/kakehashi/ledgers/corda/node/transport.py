"""Transports and signed messaging between the parties of a network.

A :class:`Transport` only moves bytes: in-process for the embedded network, HTTP between node
processes. :class:`Messenger` sits on top and makes every message and every answer an
:class:`Envelope` signed by its sender's identity key; the receiver checks the signature against
the sender's key on the network map, that it is the addressee, and that the message is fresh and
not a replay. Typed errors raised by a handler travel back as :class:`ErrorResponse` and are
raised again, with the same type, at the caller.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

import httpx

from kakehashi import errors
from kakehashi.errors import (
    ConflictError,
    KakehashiError,
    SerializationError,
    SignatureError,
    TransportError,
)
from kakehashi.ledgers.corda.model.crypto import KeyPair, random_bytes
from kakehashi.ledgers.corda.model.identity import Party, X500Name
from kakehashi.ledgers.corda.model.serialization import deserialize, serialize
from kakehashi.ledgers.corda.node.messages import Envelope, ErrorResponse
from kakehashi.ledgers.corda.node.network import NetworkMap

log = logging.getLogger(__name__)

MAX_CLOCK_SKEW_US = 120_000_000
Handler = Callable[[bytes], bytes]


class Transport(Protocol):
    """Delivers a request's bytes to a named party and returns the answer's bytes."""

    def send(self, recipient: X500Name, data: bytes) -> bytes: ...


class InProcessTransport:
    """The embedded network: parties in one process, called directly (still signed messages)."""

    def __init__(self) -> None:
        self._handlers: dict[X500Name, Handler] = {}
        self._down: set[X500Name] = set()

    def register(self, name: X500Name, handler: Handler) -> None:
        self._handlers[name] = handler
        self._down.discard(name)

    def unregister(self, name: X500Name) -> None:
        """Take a party off the network (as if its process had stopped)."""
        self._handlers.pop(name, None)

    def send(self, recipient: X500Name, data: bytes) -> bytes:
        handler = self._handlers.get(recipient)
        if handler is None:
            raise TransportError(f"{recipient} is not reachable (not running on this network)")
        return handler(data)


class HttpTransport:
    """Node-to-node HTTP: ``POST {url}/p2p`` with the envelope as the body."""

    def __init__(
        self, network: NetworkMap, timeout: float = 30.0, client: httpx.Client | None = None
    ) -> None:
        self._network = network
        self._client = client if client is not None else httpx.Client(timeout=timeout)

    def send(self, recipient: X500Name, data: bytes) -> bytes:
        url = self._network.info(recipient).url
        if not url:
            raise TransportError(f"the network map has no URL for {recipient}")
        try:
            response = self._client.post(
                f"{url}/p2p", content=data, headers={"content-type": "application/cbor"}
            )
        except httpx.HTTPError as exc:
            raise TransportError(f"cannot reach {recipient} at {url}: {exc}") from exc
        if response.status_code != 200:
            raise TransportError(f"{recipient} answered HTTP {response.status_code}")
        return response.content

    def close(self) -> None:
        self._client.close()


def _envelope_digest(envelope: Envelope) -> bytes:
    """What the sender signs: every field but the signature, unambiguously framed."""
    digest = hashlib.sha256(b"kakehashi-envelope-v1")
    for part in (str(envelope.sender).encode(), str(envelope.recipient).encode(), envelope.nonce):
        digest.update(len(part).to_bytes(4, "big") + part)
    digest.update(envelope.timestamp.to_bytes(8, "big", signed=True))
    digest.update(hashlib.sha256(envelope.body).digest())
    return digest.digest()


def error_to_response(exc: KakehashiError) -> ErrorResponse:
    consumed = exc.consumed if isinstance(exc, ConflictError) else {}
    return ErrorResponse(type(exc).__name__, str(exc), consumed)


def error_from_response(response: ErrorResponse, peer: X500Name) -> KakehashiError:
    """Rebuild a peer's typed error (unknown kinds become a plain TransportError)."""
    message = f"{peer}: {response.message}"
    if response.kind == "ConflictError":
        return ConflictError(message, response.consumed)
    kind = getattr(errors, response.kind, None)
    if isinstance(kind, type) and issubclass(kind, KakehashiError):
        try:
            return kind(message)
        except TypeError:  # an error type with a richer constructor: keep type and message
            error = kind.__new__(kind)
            Exception.__init__(error, message)
            return error
    return TransportError(f"{message} ({response.kind})")


def _unsigned_refusal(data: bytes, peer: X500Name) -> ErrorResponse | None:
    """The reason in a peer's unsigned refusal (see :meth:`Messenger.serve`), if ``data`` is one."""
    try:
        envelope = deserialize(data, Envelope)
        if envelope.signature or envelope.sender != peer or envelope.recipient != peer:
            return None
        answer: object = deserialize(envelope.body)
    except KakehashiError:
        return None
    return answer if isinstance(answer, ErrorResponse) else None


class Messenger:
    """Signed request/response messaging for one party."""

    def __init__(
        self,
        party: Party,
        key: KeyPair,
        network: NetworkMap,
        transport: Transport,
        clock: Callable[[], int] | None = None,
    ) -> None:
        if key.public != party.owning_key:
            raise errors.ConfigurationError(f"the key given for {party.name} is not its own")
        self.party = party
        self._key = key
        self.network = network
        self.transport = transport
        self._clock = clock or (lambda: time.time_ns() // 1000)
        self._seen: OrderedDict[bytes, int] = OrderedDict()
        self._seen_lock = threading.Lock()

    def _seal(self, recipient: X500Name, body: object) -> bytes:
        envelope = Envelope(
            self.party.name, recipient, serialize(body), self._clock(), random_bytes(16)
        )
        signature = self._key.sign(_envelope_digest(envelope))
        return serialize(
            Envelope(
                envelope.sender,
                envelope.recipient,
                envelope.body,
                envelope.timestamp,
                envelope.nonce,
                signature,
            )
        )

    def _open(self, data: bytes, expected_sender: X500Name | None = None) -> tuple[Party, object]:
        envelope = deserialize(data, Envelope)
        if envelope.recipient != self.party.name:
            raise TransportError(f"message addressed to {envelope.recipient}, not to us")
        if expected_sender is not None and envelope.sender != expected_sender:
            raise TransportError(f"answer came from {envelope.sender}, not {expected_sender}")
        sender = self.network.party(envelope.sender)
        try:
            sender.owning_key.verify(envelope.signature, _envelope_digest(envelope))
        except SignatureError:
            raise SignatureError(
                f"message claiming to be from {envelope.sender} is not signed by its key"
            ) from None
        now = self._clock()
        if abs(now - envelope.timestamp) > MAX_CLOCK_SKEW_US:
            raise TransportError(
                f"message from {envelope.sender} is stale or from the future; check clocks"
            )
        self._remember(envelope.nonce, envelope.sender)
        return sender, deserialize(envelope.body)

    def _remember(self, nonce: bytes, sender: X500Name) -> None:
        with self._seen_lock:
            if nonce in self._seen:
                raise TransportError(f"replayed message from {sender} refused")
            self._seen[nonce] = self._clock()
            horizon = self._clock() - 2 * MAX_CLOCK_SKEW_US
            while self._seen and next(iter(self._seen.values())) < horizon:
                self._seen.popitem(last=False)

    def request(self, recipient: Party | X500Name, body: object) -> object:
        """Send ``body`` and return the verified answer, raising the peer's typed error."""
        name = recipient.name if isinstance(recipient, Party) else recipient
        reply = self.transport.send(name, self._seal(name, body))
        try:
            _, answer = self._open(reply, expected_sender=name)
        except TransportError:
            refusal = _unsigned_refusal(reply, name)
            if refusal is None:
                raise
            # Unauthenticated, so never a typed error: only the reason, for the operator.
            raise TransportError(
                f"{name} refused our message: {refusal.message} ({refusal.kind})"
            ) from None
        if isinstance(answer, ErrorResponse):
            raise error_from_response(answer, name)
        return answer

    def serve(self, data: bytes, handle: Callable[[Party, object], object]) -> bytes:
        """Open a request, run ``handle(sender, body)`` and seal its answer (or its error)."""
        try:
            sender, body = self._open(data)
        except (SerializationError, KakehashiError) as exc:
            log.warning("refused an incoming message: %s", exc)
            # We cannot trust who sent it, so answer to nobody in particular: unsigned error.
            return serialize(
                Envelope(
                    self.party.name,
                    self.party.name,
                    serialize(error_to_response(exc)),
                    self._clock(),
                    random_bytes(16),
                )
            )
        try:
            answer = handle(sender, body)
        except KakehashiError as exc:
            log.info("request from %s refused: %s", sender.name, exc)
            answer = error_to_response(exc)
        return self._seal(sender.name, answer)
