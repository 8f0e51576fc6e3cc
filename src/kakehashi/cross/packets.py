"""What the Cross Framework sends over its IBC channels, and what comes back.

* :class:`CrossPacket` ``(kind, tx_id, index, payload)``: ``PREPARE`` (two-phase commit: prepare
  part ``index`` and hold it), ``CALL`` (Simple Commit: run part ``index`` and commit at once),
  both with the view of the transaction for part ``index`` as payload
  (:meth:`~kakehashi.cross.tx.InitiateTx.view`: the header, part ``index`` and the parts it links
  to, the other parts' digests) so the receiver checks that the view's id is ``tx_id`` and
  reads its own part — never the parts it has no business with; ``DECIDE`` (commit or abort a
  prepared part; payload one byte, :class:`~kakehashi.cross.status.Decision`); ``SIGN`` (from a
  participant ledger to the coordinator: a CHANNEL signer of part ``index`` signed there;
  payload ``abi.encode(bytes signer id, bytes view)``, the view of part ``index`` having the tx
  id — proven by IBC like any packet, so the coordinator takes the signature).
* :class:`CrossAck` ``(status, return_value, reason)``: OK with the part's actual return value
  (its answer, at most :data:`MAX_ANSWER` bytes), or FAILED with a reason a person can read.

Both encode as the Ethereum ABI of a tuple (:data:`PACKET_ABI`, :data:`ACK_ABI`) so the Vyper
module and the Python one read each other's bytes; decoding accepts only canonical bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_abi.exceptions import DecodingError

from kakehashi.cross.status import Decision
from kakehashi.cross.tx import MAX_ACCOUNT_ID, CrossTxError, InitiateTx, TxView
from kakehashi.errors import SerializationError

__all__ = [
    "ACK_ABI",
    "MAX_ANSWER",
    "MAX_REASON",
    "PACKET_ABI",
    "AckStatus",
    "CrossAck",
    "CrossPacket",
    "PacketKind",
]

PACKET_ABI = "(uint8,bytes32,uint8,bytes)"
ACK_ABI = "(uint8,bytes,string)"
MAX_REASON = 256
MAX_ANSWER = 1600
"""The longest return value an acknowledgement carries (a declared one is at most
:data:`~kakehashi.cross.tx.MAX_RETURN_VALUE`): the largest whose encoding, with the longest
reason, fits the EVM chain's acknowledgement bound (2 KiB; ``contracts/cross/transaction.vy``
``CrossAnswer``)."""


class PacketKind(IntEnum):
    PREPARE = 1
    CALL = 2
    DECIDE = 3
    SIGN = 4


class AckStatus(IntEnum):
    OK = 1
    FAILED = 2


@dataclass(frozen=True, slots=True)
class CrossPacket:
    kind: PacketKind
    tx_id: bytes
    index: int
    payload: bytes

    def __post_init__(self) -> None:
        if len(self.tx_id) != 32:
            raise SerializationError("a cross packet's tx id is 32 bytes")
        if not 0 <= self.index < 256:
            raise SerializationError("a cross packet's part index is 0..255")
        if self.kind is PacketKind.DECIDE:
            if len(self.payload) != 1 or self.payload[0] not in (Decision.COMMIT, Decision.ABORT):
                raise SerializationError("a DECIDE packet carries one byte: COMMIT or ABORT")
        elif TxView.decode(self._view_bytes()).tx_id != self.tx_id:
            raise SerializationError("the packet's view is not of the transaction it names")

    def _view_bytes(self) -> bytes:
        if self.kind is not PacketKind.SIGN:
            return self.payload
        try:
            signer, view = abi_decode(["bytes", "bytes"], self.payload, strict=True)
        except (DecodingError, ValueError, TypeError, OverflowError) as exc:
            raise SerializationError(f"not a SIGN packet's payload: {exc}") from None
        if not 0 < len(signer) <= MAX_ACCOUNT_ID:
            raise SerializationError(f"a signer id is 1 to {MAX_ACCOUNT_ID} bytes")
        if bytes(abi_encode(["bytes", "bytes"], [signer, view])) != self.payload:
            raise SerializationError("the SIGN packet's payload is not canonically encoded")
        return bytes(view)

    @classmethod
    def prepare(cls, tx: InitiateTx, index: int) -> CrossPacket:
        return cls(PacketKind.PREPARE, tx.tx_id, index, tx.view(index).encode())

    @classmethod
    def call(cls, tx: InitiateTx, index: int) -> CrossPacket:
        return cls(PacketKind.CALL, tx.tx_id, index, tx.view(index).encode())

    @classmethod
    def sign(cls, view: TxView, index: int, signer: bytes) -> CrossPacket:
        """A CHANNEL signer's signature of part ``index``, for the coordinator (``view``: the
        one part ``index``'s ledger was shown, :meth:`InitiateTx.view`)."""
        payload = bytes(abi_encode(["bytes", "bytes"], [signer, view.encode()]))
        return cls(PacketKind.SIGN, view.tx_id, index, payload)

    @property
    def signer(self) -> bytes:
        if self.kind is not PacketKind.SIGN:
            raise CrossTxError(f"a {self.kind.name} packet carries no signer")
        return bytes(abi_decode(["bytes", "bytes"], self.payload)[0])

    @classmethod
    def decide(cls, tx_id: bytes, index: int, decision: Decision) -> CrossPacket:
        return cls(PacketKind.DECIDE, tx_id, index, bytes([int(decision)]))

    @property
    def decision(self) -> Decision:
        if self.kind is not PacketKind.DECIDE:
            raise CrossTxError(f"a {self.kind.name} packet carries no decision")
        return Decision(self.payload[0])

    def view(self) -> TxView:
        """The view a PREPARE / CALL / SIGN packet carries (its id already checked; whether it
        reveals what part ``index`` needs is :meth:`TxView.part`'s to say)."""
        if self.kind is PacketKind.DECIDE:
            raise CrossTxError("a DECIDE packet carries no transaction")
        return TxView.decode(self._view_bytes())

    def encode(self) -> bytes:
        return bytes(
            abi_encode([PACKET_ABI], [(int(self.kind), self.tx_id, self.index, self.payload)])
        )

    @classmethod
    def decode(cls, data: bytes) -> CrossPacket:
        try:
            ((kind, tx_id, index, payload),) = abi_decode([PACKET_ABI], data, strict=True)
            packet = cls(PacketKind(kind), bytes(tx_id), int(index), bytes(payload))
        except (DecodingError, ValueError, TypeError, OverflowError) as exc:
            raise SerializationError(f"not a cross packet: {exc}") from None
        if packet.encode() != bytes(data):
            raise SerializationError("the cross packet is not canonically encoded")
        return packet


@dataclass(frozen=True, slots=True)
class CrossAck:
    status: AckStatus
    return_value: bytes = b""
    reason: str = ""

    def __post_init__(self) -> None:
        if len(self.return_value) > MAX_ANSWER:
            raise SerializationError(f"an answer is at most {MAX_ANSWER} bytes")
        if len(self.reason.encode()) > MAX_REASON:
            raise SerializationError(f"a failure reason is at most {MAX_REASON} bytes")

    @classmethod
    def ok(cls, return_value: bytes = b"") -> CrossAck:
        return cls(AckStatus.OK, return_value)

    @classmethod
    def failed(cls, reason: str) -> CrossAck:
        return cls(AckStatus.FAILED, b"", reason.encode()[:MAX_REASON].decode(errors="ignore"))

    def encode(self) -> bytes:
        return bytes(abi_encode([ACK_ABI], [(int(self.status), self.return_value, self.reason)]))

    @classmethod
    def decode(cls, data: bytes) -> CrossAck:
        try:
            ((status, value, reason),) = abi_decode([ACK_ABI], data, strict=True)
            ack = cls(AckStatus(status), bytes(value), str(reason))
        except (DecodingError, ValueError, TypeError, OverflowError, UnicodeDecodeError) as exc:
            raise SerializationError(f"not a cross acknowledgement: {exc}") from None
        if ack.encode() != bytes(data):
            raise SerializationError("the cross acknowledgement is not canonically encoded")
        return ack
