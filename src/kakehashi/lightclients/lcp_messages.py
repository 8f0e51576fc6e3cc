"""LCP proxy messages: the statements an LCP enclave signs, byte for byte as Datachain's LCP.

Pure functions and frozen dataclasses only (bytes in, typed objects or a typed error out), shared
by the LCP service that signs these messages and by the LCP light clients that check them. The
layout is the Ethereum ABI one of LCP's ``commitments`` module and of lcp-solidity's
``LCPCommitment`` library, so a message signed here verifies there and the other way round:

* **Envelope rule.** A proxy message is ``abi.encode((bytes32 header, bytes body))``. Header bytes
  0–1 are the version (big-endian ``1``), bytes 2–3 the message type (``1`` UpdateState, ``2``
  State / VerifyMembership, ``3`` Misbehaviour), bytes 4–31 zero.
* **UpdateState rule** (type 1). ``body = abi.encode(((uint64,uint64) prev_height, bytes32
  prev_state_id, (uint64,uint64) post_height, bytes32 post_state_id, uint128 timestamp, bytes
  context, ((uint64,uint64) height, bytes state)[] emitted_states))``. A zero ``prev_height`` and
  ``prev_state_id`` mean "no previous state" (the first update after creating a client);
  ``timestamp`` is nanoseconds since the Unix epoch; each emitted state is a protobuf ``Any``.
* **VerifyMembership rule** (type 2). ``body = abi.encode((bytes prefix, bytes path, bytes32
  value, (uint64,uint64) height, bytes32 state_id))`` where ``value`` is ``keccak256`` of the
  proven value, or 32 zero bytes to prove absence.
* **Misbehaviour rule** (type 3). ``body = abi.encode((((uint64,uint64) height, bytes32
  state_id)[] prev_states, bytes context, bytes client_message))``; ``client_message`` is the
  protobuf ``Any`` of the evidence the enclave checked.
* **Validation context rule.** ``context = abi.encode((bytes32 header, bytes context_bytes))``
  with header bytes 0–1 the context type and bytes 2–31 zero. Type ``0`` (empty) has empty
  ``context_bytes``; type ``1`` (trusting period) has ``context_bytes = abi.encode((bytes32
  timestamps, bytes32 params))``, 64 bytes: ``timestamps`` = untrusted header timestamp ‖ trusted
  state timestamp, ``params`` = trusting period ‖ clock drift, each a big-endian ``uint128`` of
  nanoseconds.
* **Signature rule.** The enclave key signs ``keccak256(message)`` with secp256k1; the signature
  is 65 bytes ``r ‖ s ‖ v`` with ``v`` in {0, 1} (27 and 28 are accepted as Ethereum writes them,
  as lcp-solidity does) and ``s`` in the lower half of the curve order (OpenZeppelin's ``ECDSA``,
  which lcp-solidity uses, refuses the other half).

Decoding is strict: only the canonical ABI encoding is accepted (offsets where an encoder puts
them, zero padding, no trailing bytes, reserved header bytes zero), so
``encode(decode(data)) == data`` for every ``data`` that decodes, and two different byte strings
never decode to the same message.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import TypeVar

from eth_hash.auto import keccak

from kakehashi.errors import SerializationError, SignatureError, VerificationError
from kakehashi.ledgers.evm.qbft import recover_seal, seal

__all__ = [
    "ADDRESS_SIZE",
    "MESSAGE_VERSION",
    "SIGNATURE_SIZE",
    "STATE_ID_SIZE",
    "ContextType",
    "EmittedState",
    "EmptyValidationContext",
    "Height",
    "MessageType",
    "MisbehaviourProxyMessage",
    "PrevState",
    "ProxyMessage",
    "TrustingPeriodValidationContext",
    "UpdateStateProxyMessage",
    "ValidationContext",
    "VerifyMembershipProxyMessage",
    "decode",
    "decode_validation_context",
    "encode",
    "encode_validation_context",
    "message_hash",
    "recover_signer",
    "sign_message",
]

#: The one message schema version LCP defines.
MESSAGE_VERSION = 1
#: A state id (LCP's ``StateID``) and a VerifyMembership value commitment are 32 bytes.
STATE_ID_SIZE = 32
#: ``r ‖ s ‖ v``.
SIGNATURE_SIZE = 65
#: An Ethereum address: the last 20 bytes of ``keccak256`` of the public key.
ADDRESS_SIZE = 20

_WORD = 32
_ZERO32 = bytes(_WORD)
_U64 = 2**64
_U128 = 2**128
# secp256k1 group order; OpenZeppelin's ECDSA.recover refuses s above half of it (malleability).
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_SECP256K1_HALF_N = _SECP256K1_N // 2


class MessageType(IntEnum):
    """Header bytes 2–3 of a proxy message (LCP's ``LCP_MESSAGE_TYPE_*``)."""

    UPDATE_STATE = 1
    STATE = 2  # VerifyMembership / VerifyNonMembership
    MISBEHAVIOUR = 3


class ContextType(IntEnum):
    """Header bytes 0–1 of a validation context (LCP's ``LCP_MESSAGE_CONTEXT_TYPE_*``)."""

    EMPTY = 0
    TRUSTING_PERIOD = 1


# ---------------------------------------------------------------------------- field checks


def _uint(value: int, bits: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**bits:
        raise SerializationError(f"{what} must be an unsigned {bits}-bit integer, got {value!r}")
    return value


def _bytes(value: bytes, what: str, size: int | None = None) -> bytes:
    if not isinstance(value, bytes):
        raise SerializationError(f"{what} must be bytes, got {type(value).__name__}")
    if size is not None and len(value) != size:
        raise SerializationError(f"{what} must be {size} bytes, got {len(value)}")
    return value


# ---------------------------------------------------------------------------- objects


@dataclass(frozen=True, order=True, slots=True)
class Height:
    """An IBC height as LCP encodes it: ``(uint64 revision_number, uint64 revision_height)``.

    LCP's own type, kept here rather than borrowed from the IBC layer, which sits above LCP.
    The zero height means "none" (no previous state).
    """

    revision_number: int = 0
    revision_height: int = 0

    def __post_init__(self) -> None:
        _uint(self.revision_number, 64, "revision number")
        _uint(self.revision_height, 64, "revision height")

    def is_zero(self) -> bool:
        return self.revision_number == 0 and self.revision_height == 0

    def __str__(self) -> str:
        return f"{self.revision_number}-{self.revision_height}"


@dataclass(frozen=True, slots=True)
class EmptyValidationContext:
    """Context type 0: the message holds whatever the client's clock says."""

    def check(self, now: int) -> None:
        """Nothing to check at ``now`` (nanoseconds since the Unix epoch)."""


@dataclass(frozen=True, slots=True)
class TrustingPeriodValidationContext:
    """Context type 1: the message holds only while the trusted state is within its trusting
    period and the new header is not from the future. Every field is in nanoseconds (uint128)."""

    trusting_period: int
    clock_drift: int
    untrusted_header_timestamp: int
    trusted_state_timestamp: int

    def __post_init__(self) -> None:
        _uint(self.trusting_period, 128, "trusting period")
        _uint(self.clock_drift, 128, "clock drift")
        _uint(self.untrusted_header_timestamp, 128, "untrusted header timestamp")
        _uint(self.trusted_state_timestamp, 128, "trusted state timestamp")

    def check(self, now: int) -> None:
        """Raise :class:`VerificationError` unless the message holds at ``now`` (nanoseconds
        since the Unix epoch), as lcp-solidity's ``trustingPeriodContextEval``: the trusted state
        must still be within its trusting period (``now < trusted + trusting period``) and the
        new header must not be from the future (``now + clock drift > untrusted``)."""
        if now >= self.trusted_state_timestamp + self.trusting_period:
            raise VerificationError(
                f"the trusted state (at {self.trusted_state_timestamp} ns) is out of its trusting "
                f"period of {self.trusting_period} ns at {now} ns; update the client from a "
                "fresher trusted state"
            )
        if now + self.clock_drift <= self.untrusted_header_timestamp:
            raise VerificationError(
                f"the header (at {self.untrusted_header_timestamp} ns) is from the future at "
                f"{now} ns with a clock drift of {self.clock_drift} ns; check the host's clock"
            )


ValidationContext = EmptyValidationContext | TrustingPeriodValidationContext


@dataclass(frozen=True, slots=True)
class EmittedState:
    """A light-client state the enclave emitted at ``height`` (a protobuf ``Any``, as bytes)."""

    height: Height
    state: bytes

    def __post_init__(self) -> None:
        _height(self.height, "emitted state height")
        _bytes(self.state, "emitted state")


@dataclass(frozen=True, slots=True)
class UpdateStateProxyMessage:
    """Type 1: the client's state moved from ``prev_*`` to ``post_*``, verified in the enclave.

    ``timestamp`` is the post state's time in nanoseconds since the Unix epoch.
    """

    prev_height: Height
    prev_state_id: bytes
    post_height: Height
    post_state_id: bytes
    timestamp: int
    context: ValidationContext
    emitted_states: tuple[EmittedState, ...] = ()

    def __post_init__(self) -> None:
        _height(self.prev_height, "prev height")
        _bytes(self.prev_state_id, "prev state id", STATE_ID_SIZE)
        _height(self.post_height, "post height")
        _bytes(self.post_state_id, "post state id", STATE_ID_SIZE)
        _uint(self.timestamp, 128, "timestamp")
        _context(self.context)
        if not isinstance(self.emitted_states, tuple) or not all(
            isinstance(state, EmittedState) for state in self.emitted_states
        ):
            raise SerializationError("emitted states must be a tuple of EmittedState")

    def has_prev_state(self) -> bool:
        """False for the first update of a client: zero previous height and state id."""
        return not (self.prev_height.is_zero() and self.prev_state_id == _ZERO32)


@dataclass(frozen=True, slots=True)
class VerifyMembershipProxyMessage:
    """Type 2: at ``height`` (state ``state_id``) the counterparty holds ``value`` under
    ``prefix ‖ path``. ``value`` is ``keccak256`` of the stored value, or 32 zero bytes when the
    message proves that nothing is stored there (non-membership)."""

    prefix: bytes
    path: bytes
    value: bytes
    height: Height
    state_id: bytes

    def __post_init__(self) -> None:
        _bytes(self.prefix, "prefix")
        _bytes(self.path, "path")
        _bytes(self.value, "value commitment", STATE_ID_SIZE)
        _height(self.height, "height")
        _bytes(self.state_id, "state id", STATE_ID_SIZE)

    def is_non_membership(self) -> bool:
        return self.value == _ZERO32

    def proves(self, value: bytes | None) -> bool:
        """Whether this message proves ``value`` (``None``: absence) as lcp-solidity checks it."""
        if value is None:
            return self.is_non_membership()
        return not self.is_non_membership() and keccak(value) == self.value


@dataclass(frozen=True, slots=True)
class PrevState:
    """A state the client already holds, named by a misbehaviour message."""

    height: Height
    state_id: bytes

    def __post_init__(self) -> None:
        _height(self.height, "prev state height")
        _bytes(self.state_id, "prev state id", STATE_ID_SIZE)


@dataclass(frozen=True, slots=True)
class MisbehaviourProxyMessage:
    """Type 3: the enclave found evidence (``client_message``, a protobuf ``Any``) that the
    counterparty misbehaved, checked against the client's ``prev_states``."""

    prev_states: tuple[PrevState, ...]
    context: ValidationContext
    client_message: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.prev_states, tuple) or not all(
            isinstance(state, PrevState) for state in self.prev_states
        ):
            raise SerializationError("prev states must be a tuple of PrevState")
        _context(self.context)
        _bytes(self.client_message, "client message")


ProxyMessage = UpdateStateProxyMessage | VerifyMembershipProxyMessage | MisbehaviourProxyMessage


def _height(value: Height, what: str) -> None:
    if not isinstance(value, Height):
        raise SerializationError(f"{what} must be a Height, got {type(value).__name__}")


def _context(value: ValidationContext) -> None:
    if not isinstance(value, EmptyValidationContext | TrustingPeriodValidationContext):
        raise SerializationError(
            f"context must be a validation context, got {type(value).__name__}"
        )


# ---------------------------------------------------------------------------- ABI encoding
# Canonical Ethereum ABI encoding of the few shapes LCP uses: a tuple's head holds its static
# members in place and a 32-byte offset (from the tuple's start) for each dynamic member; the
# dynamic members' encodings follow the head, in order.


def _word(value: int) -> bytes:
    return value.to_bytes(_WORD, "big")


def _enc_bytes(value: bytes) -> bytes:
    padding = -len(value) % _WORD
    return _word(len(value)) + value + bytes(padding)


def _enc_height(height: Height) -> bytes:
    return _word(height.revision_number) + _word(height.revision_height)


def _enc_tuple(members: Sequence[tuple[bool, bytes]]) -> bytes:
    """``members`` are ``(is_dynamic, encoding)`` pairs."""
    head_size = sum(_WORD if dynamic else len(enc) for dynamic, enc in members)
    head, tail = bytearray(), bytearray()
    for dynamic, enc in members:
        if dynamic:
            head += _word(head_size + len(tail))
            tail += enc
        else:
            head += enc
    return bytes(head + tail)


def _enc_top(tuple_encoding: bytes) -> bytes:
    # ``abi.encode(x)`` for one dynamic tuple ``x``: an offset word (32) then ``x``.
    return _enc_tuple([(True, tuple_encoding)])


def _enc_header(first: int, second: int | None = None) -> bytes:
    header = bytearray(_WORD)
    header[0:2] = first.to_bytes(2, "big")
    if second is not None:
        header[2:4] = second.to_bytes(2, "big")
    return bytes(header)


def encode_validation_context(context: ValidationContext) -> bytes:
    """The ``context`` bytes of an UpdateState or Misbehaviour message (validation context rule)."""
    _context(context)
    if isinstance(context, TrustingPeriodValidationContext):
        timestamps = context.untrusted_header_timestamp.to_bytes(
            16, "big"
        ) + context.trusted_state_timestamp.to_bytes(16, "big")
        params = context.trusting_period.to_bytes(16, "big") + context.clock_drift.to_bytes(
            16, "big"
        )
        header = _enc_header(ContextType.TRUSTING_PERIOD)
        body = timestamps + params  # abi.encode((bytes32, bytes32)): static, no offsets
    else:
        header = _enc_header(ContextType.EMPTY)
        body = b""
    return _enc_top(_enc_tuple([(False, header), (True, _enc_bytes(body))]))


def _enc_body(message: ProxyMessage) -> bytes:
    if isinstance(message, UpdateStateProxyMessage):
        emitted = [
            (True, _enc_tuple([(False, _enc_height(s.height)), (True, _enc_bytes(s.state))]))
            for s in message.emitted_states
        ]
        members: list[tuple[bool, bytes]] = [
            (False, _enc_height(message.prev_height)),
            (False, message.prev_state_id),
            (False, _enc_height(message.post_height)),
            (False, message.post_state_id),
            (False, _word(message.timestamp)),
            (True, _enc_bytes(encode_validation_context(message.context))),
            (True, _word(len(emitted)) + _enc_tuple(emitted)),
        ]
    elif isinstance(message, VerifyMembershipProxyMessage):
        members = [
            (True, _enc_bytes(message.prefix)),
            (True, _enc_bytes(message.path)),
            (False, message.value),
            (False, _enc_height(message.height)),
            (False, message.state_id),
        ]
    elif isinstance(message, MisbehaviourProxyMessage):
        prev = b"".join(_enc_height(s.height) + s.state_id for s in message.prev_states)
        members = [
            (True, _word(len(message.prev_states)) + prev),
            (True, _enc_bytes(encode_validation_context(message.context))),
            (True, _enc_bytes(message.client_message)),
        ]
    else:
        raise SerializationError(f"not an LCP proxy message: {type(message).__name__}")
    return _enc_top(_enc_tuple(members))


def _message_type(message: ProxyMessage) -> MessageType:
    if isinstance(message, UpdateStateProxyMessage):
        return MessageType.UPDATE_STATE
    if isinstance(message, VerifyMembershipProxyMessage):
        return MessageType.STATE
    return MessageType.MISBEHAVIOUR


def encode(message: ProxyMessage) -> bytes:
    """The proxy message as the enclave signs it (envelope rule); the inverse of :func:`decode`."""
    body = _enc_body(message)  # refuses a non-message before its type is looked at
    header = _enc_header(MESSAGE_VERSION, _message_type(message))
    return _enc_top(_enc_tuple([(False, header), (True, _enc_bytes(body))]))


# ---------------------------------------------------------------------------- ABI decoding

_T = TypeVar("_T")


class _TupleReader:
    """Reads one ABI tuple encoded at ``start`` whose head is ``head_words`` words long.

    Static members are read from the head in order. A dynamic member's offset must point
    exactly where the canonical encoder would have put it (right after the head or after the
    previous dynamic member), so only canonical encodings are accepted and no byte is read
    twice: decoding is linear in the input's length.
    """

    __slots__ = ("_data", "_end_of_head", "_head", "_start", "_tail")

    def __init__(self, data: bytes, start: int, head_words: int, what: str) -> None:
        end_of_head = start + head_words * _WORD
        if end_of_head > len(data):
            raise SerializationError(f"{what} is truncated")
        self._data = data
        self._start = start
        self._head = start
        self._end_of_head = end_of_head
        self._tail = end_of_head

    def _next_word(self, what: str) -> bytes:
        if self._head + _WORD > self._end_of_head:
            raise SerializationError(f"{what} lies beyond its tuple's head")  # a bug, not input
        word = self._data[self._head : self._head + _WORD]
        self._head += _WORD
        return word

    def uint(self, bits: int, what: str) -> int:
        word = self._next_word(what)
        value = int.from_bytes(word, "big")
        if value >= 2**bits:
            raise SerializationError(f"{what} does not fit in uint{bits} (non-zero padding)")
        return value

    def bytes32(self, what: str) -> bytes:
        return self._next_word(what)

    def height(self, what: str) -> Height:
        return Height(self.uint(64, f"{what} revision number"), self.uint(64, f"{what} height"))

    def _dynamic(self, what: str) -> int:
        offset = int.from_bytes(self._next_word(what), "big")
        if self._start + offset != self._tail:
            raise SerializationError(f"{what} has a non-canonical ABI offset")
        return self._tail

    def bytes_(self, what: str) -> bytes:
        position = self._dynamic(what)
        length = _read_length(self._data, position, 1, what)
        begin = position + _WORD
        padded = begin + length + (-length % _WORD)
        if padded > len(self._data):
            raise SerializationError(f"{what} is truncated (its padding is missing)")
        if self._data[begin + length : padded] != bytes(padded - begin - length):
            raise SerializationError(f"{what} has non-zero padding")
        self._tail = padded
        return self._data[begin : begin + length]

    def dynamic_tuple(self, head_words: int, read: Callable[[_TupleReader], _T], what: str) -> _T:
        position = self._dynamic(what)
        inner = _TupleReader(self._data, position, head_words, what)
        value = read(inner)
        self._tail = inner.end()
        return value

    def array(
        self,
        item_words: int,
        dynamic_items: bool,
        read: Callable[[_TupleReader], _T],
        what: str,
    ) -> list[_T]:
        """``T[]``: a length word, then the items as a tuple of ``length`` members. A dynamic
        item (``dynamic_items``) is a tuple of ``item_words`` head words behind an offset; a
        static one is ``item_words`` words in place."""
        position = self._dynamic(what)
        count = _read_length(
            self._data, position, _WORD if dynamic_items else item_words * _WORD, what
        )
        if dynamic_items:
            items = _TupleReader(self._data, position + _WORD, count, what)
            values = [items.dynamic_tuple(item_words, read, what) for _ in range(count)]
        else:
            items = _TupleReader(self._data, position + _WORD, count * item_words, what)
            values = [read(items) for _ in range(count)]
        self._tail = items.end()
        return values

    def end(self) -> int:
        """Where this tuple's encoding ends (every head word must have been read)."""
        if self._head != self._end_of_head:
            raise SerializationError("tuple head not fully read")  # a bug, not input
        return self._tail


def _read_length(data: bytes, position: int, unit: int, what: str) -> int:
    """A length word at ``position``, checked against what the input can still hold."""
    if position + _WORD > len(data):
        raise SerializationError(f"{what} is truncated")
    length = int.from_bytes(data[position : position + _WORD], "big")
    if length * unit > len(data) - position - _WORD:
        raise SerializationError(f"{what} claims {length} items/bytes, more than the input holds")
    return length


def _decode_top(data: bytes, head_words: int, read: Callable[[_TupleReader], _T], what: str) -> _T:
    if not isinstance(data, bytes):
        raise SerializationError(f"{what} must be bytes, got {type(data).__name__}")
    top = _TupleReader(data, 0, 1, what)
    value = top.dynamic_tuple(head_words, read, what)
    if top.end() != len(data):
        raise SerializationError(f"{what} has {len(data) - top.end()} trailing bytes")
    return value


def decode_validation_context(context: bytes) -> ValidationContext:
    """The validation context carried in ``context`` bytes (strict; see the module rules)."""
    header, body = _decode_top(
        context,
        2,
        lambda r: (r.bytes32("context header"), r.bytes_("context bytes")),
        "validation context",
    )
    if header[2:] != bytes(_WORD - 2):
        raise SerializationError(
            "validation context header bytes 2-31 are reserved and must be zero"
        )
    kind = int.from_bytes(header[0:2], "big")
    if kind == ContextType.EMPTY:
        if body:
            raise SerializationError("an empty validation context must carry no context bytes")
        return EmptyValidationContext()
    if kind == ContextType.TRUSTING_PERIOD:
        if len(body) != 2 * _WORD:
            raise SerializationError(
                f"a trusting-period context is 64 bytes (timestamps, params), got {len(body)}"
            )
        return TrustingPeriodValidationContext(
            trusting_period=int.from_bytes(body[32:48], "big"),
            clock_drift=int.from_bytes(body[48:64], "big"),
            untrusted_header_timestamp=int.from_bytes(body[0:16], "big"),
            trusted_state_timestamp=int.from_bytes(body[16:32], "big"),
        )
    raise SerializationError(
        f"unknown validation context type {kind} (known: 0 empty, 1 trusting period)"
    )


def _read_update_state(r: _TupleReader) -> UpdateStateProxyMessage:
    prev_height = r.height("prev height")
    prev_state_id = r.bytes32("prev state id")
    post_height = r.height("post height")
    post_state_id = r.bytes32("post state id")
    timestamp = r.uint(128, "timestamp")
    context = decode_validation_context(r.bytes_("context"))
    emitted = r.array(
        3,
        True,
        lambda e: EmittedState(e.height("emitted state height"), e.bytes_("emitted state")),
        "emitted states",
    )
    return UpdateStateProxyMessage(
        prev_height, prev_state_id, post_height, post_state_id, timestamp, context, tuple(emitted)
    )


def _read_verify_membership(r: _TupleReader) -> VerifyMembershipProxyMessage:
    return VerifyMembershipProxyMessage(
        prefix=r.bytes_("prefix"),
        path=r.bytes_("path"),
        value=r.bytes32("value"),
        height=r.height("height"),
        state_id=r.bytes32("state id"),
    )


def _read_misbehaviour(r: _TupleReader) -> MisbehaviourProxyMessage:
    prev_states = r.array(
        3,
        False,
        lambda p: PrevState(p.height("prev state height"), p.bytes32("prev state id")),
        "prev states",
    )
    context = decode_validation_context(r.bytes_("context"))
    return MisbehaviourProxyMessage(tuple(prev_states), context, r.bytes_("client message"))


_BODIES: dict[int, tuple[int, Callable[[_TupleReader], ProxyMessage]]] = {
    MessageType.UPDATE_STATE: (9, _read_update_state),
    MessageType.STATE: (6, _read_verify_membership),
    MessageType.MISBEHAVIOUR: (3, _read_misbehaviour),
}


def decode(message: bytes) -> ProxyMessage:
    """The typed proxy message in ``message`` (envelope rule and the rule of its type).

    Raises :class:`SerializationError` for anything but the canonical encoding of a version-1
    message of a known type.
    """
    header, body = _decode_top(
        message,
        2,
        lambda r: (r.bytes32("message header"), r.bytes_("message body")),
        "proxy message",
    )
    version, kind = int.from_bytes(header[0:2], "big"), int.from_bytes(header[2:4], "big")
    if version != MESSAGE_VERSION:
        raise SerializationError(
            f"proxy message version {version} is not supported (only {MESSAGE_VERSION})"
        )
    if header[4:] != bytes(_WORD - 4):
        raise SerializationError("proxy message header bytes 4-31 are reserved and must be zero")
    if kind not in _BODIES:
        raise SerializationError(
            f"unknown proxy message type {kind} (known: 1 UpdateState, 2 State, 3 Misbehaviour)"
        )
    head_words, read = _BODIES[kind]
    return _decode_top(body, head_words, read, f"{MessageType(kind).name} body")


# ---------------------------------------------------------------------------- signatures


def message_hash(message: bytes) -> bytes:
    """``keccak256(message)``: the digest the enclave key signs (signature rule)."""
    return keccak(_bytes(message, "proxy message"))


def sign_message(message: bytes, private_key: bytes) -> bytes:
    """The enclave's signature over ``message``: 65 bytes ``r ‖ s ‖ v``, ``v`` in {0, 1}, low s."""
    return seal(message_hash(message), private_key)


def recover_signer(message: bytes, signature: bytes) -> bytes:
    """The 20-byte address of the key that signed ``message`` (signature rule).

    Accepts exactly what lcp-solidity's ``verifyECDSASignature`` accepts; raises
    :class:`SignatureError` (a ``VerificationError``) for anything else.
    """
    digest = message_hash(message)
    if not isinstance(signature, bytes) or len(signature) != SIGNATURE_SIZE:
        size = len(signature) if isinstance(signature, bytes) else type(signature).__name__
        raise SignatureError(f"an LCP signature is {SIGNATURE_SIZE} bytes (r ‖ s ‖ v), got {size}")
    v = signature[64]
    if v in (27, 28):
        v -= 27
    if v not in (0, 1):
        raise SignatureError(f"an LCP signature's v must be 0, 1, 27 or 28, got {signature[64]}")
    r = int.from_bytes(signature[0:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    if not 0 < r < _SECP256K1_N or not 0 < s < _SECP256K1_N:
        raise SignatureError("an LCP signature's r and s must lie in [1, n-1] of secp256k1")
    if s > _SECP256K1_HALF_N:
        raise SignatureError("an LCP signature's s must be in the lower half of the curve order")
    try:
        return recover_seal(digest, signature[:64] + bytes([v]))
    except SignatureError:
        raise SignatureError("no secp256k1 public key recovers from this LCP signature") from None
