"""ICS-02 client of a ledger seen through LCP, over :mod:`kakehashi.lightclients.lcp`.

State: the LCP client state (MRENCLAVE, key expiration, attestation policy, operators and
threshold, latest height, frozen flag), one consensus state ``(state id, timestamp)`` per height
the enclave vouched for, and the registered enclave keys ``{address: (expires at, operator)}``.
Heights are the counterparty's own, as the enclave's messages carry them.

Client messages (what :meth:`LcpIbcClient.update` reads) are one tag byte and a body:

* ``0x01 ‖ abi.encode(bytes proxy_message, bytes[] signatures)`` — an UpdateState message
  (new consensus state) or a Misbehaviour message (freezes the client), signed by enclave keys;
* ``0x02 ‖ abi.encode(string avr, bytes signature, bytes signing_cert, bytes operator_signature)``
  — register the enclave key of an IAS report (an empty operator signature means none).

A membership / non-membership proof is ``abi.encode(bytes message, bytes[] signatures)`` of a
signed VerifyMembership message (:func:`kakehashi.lightclients.lcp.encode_commitment_proof`).

Status: ``Frozen`` after a misbehaviour message, else ``Active``. The client never reports
``Expired``: LCP clients have no trusting period of their own (each update's validation context
carries the counterparty's), and enclave keys expire one by one — a client whose keys all expired
stays Active so that a freshly attested key can still be registered through :meth:`update`
(a host refuses updates to a non-Active client), while every statement signed by an expired key
is refused.

Key expiry is checked at the time of every use. :meth:`update` receives the host's time;
membership checks, which the ICS-02 interface gives no time, read :attr:`LcpIbcClient.clock` —
a host must set it to its own clock (``host_timestamp_ns``); the default is the wall clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import cbor2
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_abi.exceptions import DecodingError

from kakehashi.errors import SerializationError, VerificationError
from kakehashi.ibc.client import ClientStatus
from kakehashi.ibc.types import Height
from kakehashi.lcp import messages as lcp_messages
from kakehashi.lightclients import lcp

__all__ = [
    "CLIENT_TYPE",
    "TAG_REGISTER_ENCLAVE_KEY",
    "TAG_UPDATE_CLIENT",
    "LcpIbcClient",
    "decode_client_state",
    "encode_client_state",
    "encode_register_enclave_key",
    "encode_update_client",
]

# ICS-24 client ids are at least 9 characters: the handler names clients "{type}-{n}".
CLIENT_TYPE = "lcp-client"
TAG_UPDATE_CLIENT = 0x01
TAG_REGISTER_ENCLAVE_KEY = 0x02
_REGISTER_TYPES = ["string", "bytes", "bytes", "bytes"]


def encode_update_client(proxy_message: bytes, signatures: Sequence[bytes]) -> bytes:
    """The client message carrying a signed UpdateState or Misbehaviour proxy message."""
    return bytes([TAG_UPDATE_CLIENT]) + lcp.encode_commitment_proof(proxy_message, signatures)


def encode_register_enclave_key(
    avr: str, signature: bytes, signing_cert: bytes, operator_signature: bytes = b""
) -> bytes:
    """The client message registering the enclave key of an IAS report."""
    body = abi_encode(_REGISTER_TYPES, [avr, signature, signing_cert, operator_signature])
    return bytes([TAG_REGISTER_ENCLAVE_KEY]) + bytes(body)


def _decode_register(body: bytes) -> tuple[str, bytes, bytes, bytes]:
    try:
        avr, signature, cert, operator_signature = abi_decode(_REGISTER_TYPES, body, strict=True)
    except (DecodingError, TypeError, ValueError, OverflowError, UnicodeDecodeError) as exc:
        raise VerificationError(f"malformed RegisterEnclaveKey message: {exc}") from None
    result = (str(avr), bytes(signature), bytes(cert), bytes(operator_signature))
    if bytes(abi_encode(_REGISTER_TYPES, list(result))) != body:
        raise VerificationError("the RegisterEnclaveKey message is not canonically encoded")
    return result


def _lcp_height(height: Height) -> lcp_messages.Height:
    return lcp_messages.Height(height.revision_number, height.revision_height)


def _ibc_height(height: lcp_messages.Height) -> Height:
    return Height(height.revision_number, height.revision_height)


@dataclass
class LcpIbcClient:
    """:class:`kakehashi.ibc.client.LightClient` of a ledger proxied by LCP enclaves."""

    client: lcp.LcpClient
    clock: Callable[[], int] = field(default=time.time_ns, compare=False, repr=False)
    client_type: str = CLIENT_TYPE

    @classmethod
    def create(
        cls,
        state: lcp.LcpClientState,
        init_message: bytes,
        now_ns: int,
        clock: Callable[[], int] = time.time_ns,
    ) -> LcpIbcClient:
        """Start from the client state and the enclave's create-client message (the host
        operator creating the client vouches for it; see the creation rule)."""
        return cls(lcp.create_client(state, init_message, now_ns), clock)

    # -- ICS-02 -------------------------------------------------------------------------------

    def latest_height(self) -> Height:
        return _ibc_height(self.client.state.latest_height)

    def status(self, now_ns: int) -> ClientStatus:
        return ClientStatus.FROZEN if self.client.state.frozen else ClientStatus.ACTIVE

    def update(self, message: bytes, now_ns: int) -> Height:
        """Apply a client message (module docstring); returns the height it concerns.

        Raises :class:`VerificationError` and changes nothing when it does not verify. A verified
        misbehaviour message freezes the client and returns normally (ICS-02
        ``CheckForMisbehaviour``), so that a host persisting the client after a successful
        update persists the freeze. A registration returns the latest height.
        """
        if not message:
            raise VerificationError("an empty LCP client message")
        tag, body = message[0], bytes(message[1:])
        if tag == TAG_REGISTER_ENCLAVE_KEY:
            avr, signature, cert, operator_signature = _decode_register(body)
            self.client = lcp.register_enclave_key(
                self.client, avr, signature, cert, operator_signature or None, now_ns
            )
            return self.latest_height()
        if tag != TAG_UPDATE_CLIENT:
            raise VerificationError(
                f"unknown LCP client message tag {tag:#04x} (0x01 update, 0x02 register key)"
            )
        proxy_message, signatures = lcp.decode_commitment_proof(body)
        try:
            decoded = lcp_messages.decode(proxy_message)
        except SerializationError as exc:
            raise VerificationError(f"not an LCP proxy message: {exc}") from None
        if isinstance(decoded, lcp_messages.MisbehaviourProxyMessage):
            self.client = lcp.submit_misbehaviour(self.client, proxy_message, signatures, now_ns)
            return self.latest_height()
        new_client, height = lcp.update_state(self.client, proxy_message, signatures, now_ns)
        self.client = new_client
        return _ibc_height(height)

    def timestamp_at(self, height: Height) -> int:
        return self.client.consensus_state(_lcp_height(height)).timestamp_ns

    def verify_membership(
        self, height: Height, proof: bytes, prefix: bytes, path: bytes, value: bytes
    ) -> None:
        lcp.verify_membership(
            self.client, _lcp_height(height), proof, prefix, path, value, self.clock()
        )

    def verify_non_membership(
        self, height: Height, proof: bytes, prefix: bytes, path: bytes
    ) -> None:
        lcp.verify_non_membership(
            self.client, _lcp_height(height), proof, prefix, path, self.clock()
        )

    def client_state(self) -> bytes:
        return bytes(cbor2.dumps(_state_fields(self.client.state), canonical=True))

    # -- persistence --------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """Canonical bytes of the whole client (state, consensus states, keys), for a store."""
        consensus = [
            [h.revision_number, h.revision_height, c.state_id, c.timestamp_ns]
            for h, c in sorted(self.client.consensus_states.items())
        ]
        keys = [
            [k.address, k.expires_at_ns, k.operator]
            for _, k in sorted(self.client.enclave_keys.items())
        ]
        return bytes(
            cbor2.dumps([_state_fields(self.client.state), consensus, keys], canonical=True)
        )

    @classmethod
    def from_bytes(cls, data: bytes, clock: Callable[[], int] = time.time_ns) -> LcpIbcClient:
        try:
            raw_state, raw_consensus, raw_keys = cbor2.loads(data)
            state = _state_from_fields(raw_state)
            consensus = {
                lcp_messages.Height(int(rn), int(rh)): lcp.ConsensusState(bytes(sid), int(ts))
                for rn, rh, sid, ts in raw_consensus
            }
            keys = {
                bytes(a): lcp.EnclaveKey(bytes(a), int(e), None if o is None else bytes(o))
                for a, e, o in raw_keys
            }
        except VerificationError as exc:
            raise SerializationError(f"malformed LCP client: {exc}") from None
        except SerializationError:
            raise
        except Exception as exc:
            raise SerializationError(f"malformed LCP client: {exc}") from None
        return cls(lcp.LcpClient(state, consensus, keys), clock)


def _state_fields(state: lcp.LcpClientState) -> list[object]:
    return [
        state.mrenclave,
        state.key_expiration_s,
        list(state.root_certificates),
        sorted(state.allowed_quote_statuses),
        sorted(state.allowed_advisories),
        state.development,
        state.allow_debug_enclave,
        list(state.operators),
        state.operators_threshold,
        [state.latest_height.revision_number, state.latest_height.revision_height],
        state.frozen,
    ]


def _state_from_fields(raw: Any) -> lcp.LcpClientState:
    (
        mrenclave,
        key_expiration,
        roots,
        statuses,
        advisories,
        development,
        allow_debug,
        operators,
        threshold,
        latest,
        frozen,
    ) = raw
    return lcp.LcpClientState(
        mrenclave=bytes(mrenclave),
        key_expiration_s=int(key_expiration),
        root_certificates=tuple(bytes(r) for r in roots),
        allowed_quote_statuses=frozenset(str(s) for s in statuses),
        allowed_advisories=frozenset(str(a) for a in advisories),
        development=bool(development),
        allow_debug_enclave=bool(allow_debug),
        operators=tuple(bytes(o) for o in operators),
        operators_threshold=int(threshold),
        latest_height=lcp_messages.Height(int(latest[0]), int(latest[1])),
        frozen=bool(frozen),
    )


def encode_client_state(state: lcp.LcpClientState) -> bytes:
    """Canonical bytes of an LCP client state (what ``MsgCreateClient.client_state`` carries
    for a client of type :data:`CLIENT_TYPE`, and what :meth:`LcpIbcClient.client_state`
    returns)."""
    return bytes(cbor2.dumps(_state_fields(state), canonical=True))


def decode_client_state(data: bytes) -> lcp.LcpClientState:
    """The inverse of :func:`encode_client_state` (VerificationError for anything else)."""
    try:
        state = _state_from_fields(cbor2.loads(data))
    except VerificationError:
        raise
    except (cbor2.CBORDecodeError, ValueError, TypeError, EOFError, IndexError) as exc:
        raise VerificationError(f"malformed LCP client state: {exc}") from None
    if encode_client_state(state) != data:
        raise VerificationError("the LCP client state is not canonically encoded")
    return state
