"""A Corda-model IBC host in another process, over HTTP (:mod:`kakehashi.ibc.corda_host.http`).

:class:`RemoteCordaHost` implements :class:`~kakehashi.ibc.corda_host.api.CordaHostApi`, so a
relayer drives a host served by ``kakehashi corda serve ... --ibc`` exactly as it drives one in
process. Errors the host answers come back as the same typed exceptions (looked up by class name
in :mod:`kakehashi.errors`) with the host's message; a host that cannot be reached, or that
answers something that is not the IBC API, raises :class:`~kakehashi.errors.TransportError`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, TypeVar

import httpx

from kakehashi import errors
from kakehashi.errors import ConfigurationError, KakehashiError, TransportError
from kakehashi.ibc import msgs
from kakehashi.ibc.corda_host.api import Submission
from kakehashi.ibc.types import ChannelEnd, ConnectionEnd, Height, Packet
from kakehashi.ledgers.corda.model.serialization import deserialize
from kakehashi.lightclients.corda import CordaClientState

__all__ = ["RemoteCordaHost", "typed_error"]

T = TypeVar("T")

_HINT = "is the node running with its IBC host ('kakehashi corda serve DIR --name NAME --ibc')?"


def typed_error(name: Any, message: str) -> KakehashiError:
    """The :mod:`kakehashi.errors` class called ``name`` carrying ``message`` (the nearest base
    that takes a message alone when the class needs more; KakehashiError when unknown)."""
    found = getattr(errors, name, None) if isinstance(name, str) else None
    if not (isinstance(found, type) and issubclass(found, KakehashiError)):
        return KakehashiError(message)
    for cls in found.__mro__:
        if isinstance(cls, type) and issubclass(cls, KakehashiError):
            try:
                return cls(message)
            except TypeError:  # e.g. ContractRejection(contract, reason)
                continue
    return KakehashiError(message)  # pragma: no cover - KakehashiError(message) always works


def _height(raw: Any) -> Height:
    rn, rh = raw
    return Height(int(rn), int(rh))


def _hex_or_none(raw: Any) -> bytes | None:
    return None if raw is None else bytes.fromhex(raw)


class RemoteCordaHost:
    """The IBC host of the node at ``base_url`` (e.g. ``http://127.0.0.1:10001``).

    ``app_token`` (the node's ``rpc.token``) is only needed for :meth:`send_packet`. One
    keep-alive HTTP connection pool, ignoring proxy settings from the environment.
    """

    def __init__(
        self, base_url: str, *, app_token: str | None = None, timeout: float = 30.0
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._app_token = app_token
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout, trust_env=False)
        self._prefix: bytes | None = None

    # -- plumbing -------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        url = f"{self.base_url}{path}"
        try:
            answer = self._client.request(method, path, params=params, json=json, headers=headers)
        except httpx.HTTPError as exc:
            raise TransportError(
                f"could not reach the Corda IBC host at {url} ({type(exc).__name__}: {exc}); "
                f"{_HINT}"
            ) from exc
        try:
            body = answer.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and "error" in body and "message" in body:
            raise typed_error(body["error"], str(body["message"]))
        if answer.status_code == 401:
            detail = body.get("detail") if isinstance(body, dict) else answer.text[:200]
            raise ConfigurationError(
                f"{url} refused the application token ({detail}); pass the node's rpc.token "
                "(in the node's folder) as app_token"
            )
        if answer.status_code != 200 or not isinstance(body, dict):
            advice = _HINT if answer.status_code == 404 else "see the node's log"
            raise TransportError(
                f"{url} answered HTTP {answer.status_code} ({answer.text[:200]!r}), not the "
                f"Corda IBC API; {advice}"
            )
        return body

    def _get(self, route: str, /, **params: Any) -> dict[str, Any]:
        return self._call("GET", route, params={k: v for k, v in params.items() if v is not None})

    def _read(self, what: str, decode: Callable[[], T]) -> T:
        """``decode()``; an answer of the wrong shape is the peer's fault: TransportError."""
        try:
            return decode()
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise TransportError(
                f"the Corda IBC host at {self.base_url} answered a malformed {what} ({exc})"
            ) from exc

    @staticmethod
    def _at(height: Height | None) -> str | None:
        return None if height is None else str(height)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RemoteCordaHost:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- what the host is -----------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """``GET /ibc/info`` as sent: prefix, height, client_state (hex), ports."""
        return self._get("/ibc/info")

    @property
    def prefix(self) -> bytes:
        """The host's commitment prefix (fixed for its life: read once)."""
        if self._prefix is None:
            body = self.info()
            self._prefix = self._read("prefix", lambda: bytes.fromhex(body["prefix"]))
        return self._prefix

    @property
    def height(self) -> Height:
        """The host's latest height, read now."""
        body = self.info()
        height: Height = self._read("height", lambda: _height(body["height"]))
        return height

    def client_state(self) -> CordaClientState:
        body = self.info()
        state: CordaClientState = self._read(
            "client state",
            lambda: deserialize(bytes.fromhex(body["client_state"]), CordaClientState),
        )
        return state

    # -- proofs ---------------------------------------------------------------------------------

    def attestation(self, height: Height | None = None) -> bytes:
        body = self._get("/ibc/attestation", height=self._at(height))
        data: bytes = self._read("attestation", lambda: bytes.fromhex(body["attestation"]))
        return data

    def prove(self, path: bytes, height: Height | None = None) -> bytes:
        body = self._get("/ibc/proof", path=path.hex(), height=self._at(height))
        data: bytes = self._read("proof", lambda: bytes.fromhex(body["proof"]))
        return data

    def prove_value(self, path: bytes, height: Height | None = None) -> tuple[bytes, bytes | None]:
        """The proof of ``path`` at ``height`` and the value it proves (one request)."""
        body = self._get("/ibc/proof", path=path.hex(), height=self._at(height))
        proof: bytes = self._read("proof", lambda: bytes.fromhex(body["proof"]))
        value: bytes | None = self._read("value", lambda: _hex_or_none(body["value"]))
        return proof, value

    def value_at(self, path: bytes, height: Height | None = None) -> bytes | None:
        body = self._get("/ibc/value", path=path.hex(), height=self._at(height))
        data: bytes | None = self._read("value", lambda: _hex_or_none(body["value"]))
        return data

    # -- ends, packets, acknowledgements --------------------------------------------------------

    def connection_end(self, connection_id: str) -> ConnectionEnd | None:
        body = self._get(f"/ibc/connections/{connection_id}")
        raw = self._read("connection end", lambda: _hex_or_none(body["connection"]))
        return None if raw is None else ConnectionEnd.decode(raw)

    def channel_end(self, port_id: str, channel_id: str) -> ChannelEnd | None:
        body = self._get(f"/ibc/channels/{port_id}/{channel_id}")
        raw = self._read("channel end", lambda: _hex_or_none(body["channel"]))
        return None if raw is None else ChannelEnd.decode(raw)

    def client_latest_height(self, client_id: str) -> Height:
        """The latest height of the host's client ``client_id`` (IbcError when none)."""
        body = self._get(f"/ibc/clients/{client_id}/height")
        return self._read("height", lambda: _height(body["height"]))

    def sent_packets(self, port_id: str, channel_id: str, from_sequence: int = 1) -> list[Packet]:
        body = self._get(f"/ibc/packets/{port_id}/{channel_id}", from_sequence=from_sequence)
        raws: list[bytes] = self._read(
            "packet list", lambda: [bytes.fromhex(p) for p in body["packets"]]
        )
        return [Packet.decode(raw) for raw in raws]

    def written_acks(
        self, port_id: str, channel_id: str, from_sequence: int = 1
    ) -> list[tuple[Packet, bytes]]:
        body = self._get(f"/ibc/acks/{port_id}/{channel_id}", from_sequence=from_sequence)
        pairs: list[tuple[bytes, bytes]] = self._read(
            "acknowledgement list",
            lambda: [(bytes.fromhex(p), bytes.fromhex(a)) for p, a in body["acks"]],
        )
        return [(Packet.decode(p), a) for p, a in pairs]

    # -- writes ---------------------------------------------------------------------------------

    def submit(self, batch: Sequence[msgs.Msg]) -> Submission:
        """Run ``batch`` on the host as one version (all or nothing); the host's typed error
        when it refuses."""
        body = self._call(
            "POST", "/ibc/submit", json={"msgs": msgs.encode_batch(list(batch)).hex()}
        )
        values = self._read("submission", lambda: body["values"])
        if not isinstance(values, list) or len(values) != len(batch):
            raise TransportError(
                f"the Corda IBC host at {self.base_url} answered {values!r} for a batch of "
                f"{len(batch)} messages"
            )
        return Submission(
            tuple(msgs.result_from_wire(m, v) for m, v in zip(batch, values, strict=True)),
            self._read("height", lambda: _height(body["height"])),
            self._read("transaction id", lambda: bytes.fromhex(body["tx_id"])),
        )

    def send_packet(
        self,
        port_id: str,
        channel_id: str,
        data: bytes,
        timeout_height: Height,
        timeout_timestamp: int = 0,
    ) -> Packet:
        """Have the node's application send ``data`` (needs the node's RPC token)."""
        if self._app_token is None:
            raise ConfigurationError(
                "sending a packet needs the node's RPC token: RemoteCordaHost(url, app_token=...)"
            )
        body = self._call(
            "POST",
            "/ibc/send",
            json={
                "port_id": port_id,
                "channel_id": channel_id,
                "data": data.hex(),
                "timeout_height": [timeout_height.revision_number, timeout_height.revision_height],
                "timeout_timestamp": timeout_timestamp,
            },
            headers={"Authorization": f"Bearer {self._app_token}"},
        )
        raw: bytes = self._read("packet", lambda: bytes.fromhex(body["packet"]))
        return Packet.decode(raw)
