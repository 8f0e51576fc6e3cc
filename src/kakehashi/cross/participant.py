"""A participant's side of a cross transaction: what a ledger does with the coordinator's
packets (DESIGN.md §6). Pure apart from the :class:`CrossApp` it drives.

Each PREPARE / CALL carries the view of the transaction for its part
(:meth:`~kakehashi.cross.tx.InitiateTx.view`): a view that hides the part, or a part it links
to, fails the part without running it (the coordinator then aborts).

* ``PREPARE`` (two-phase commit): run the part with locks (:meth:`CrossApp.prepare`). If the
  part declared a return value and the actual one differs, the prepare fails and what it locked
  is released at once. Answer OK with the return value, or FAILED with the reason.
* ``CALL`` (Simple Commit): the same, then commit at once.
* ``DECIDE``: commit or abort the prepared part. A decision for a part that never prepared
  (its PREPARE timed out, or failed) is recorded and changes nothing.

Every packet may arrive twice: the answer is the one given the first time, and nothing runs
again. A PREPARE or CALL past the transaction's timeout (at the ledger's height and time) fails
without running.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from kakehashi.cross.packets import MAX_ANSWER, CrossAck, CrossPacket, PacketKind
from kakehashi.cross.status import Decision, PartStatus, advance_part
from kakehashi.cross.tx import Account, CrossTxError, InitiateTx, TxView
from kakehashi.errors import KakehashiError
from kakehashi.ibc.types import Height

__all__ = ["CrossApp", "PartCall", "PartRecord", "Participant"]


@dataclass(frozen=True, slots=True)
class PartCall:
    """What an application needs to run one part: the call, the accounts that signed the
    transaction for it (authenticated before anything runs), and the declared return values of
    the parts it links to, in link order (a cross-chain call: the part acts on the other
    ledger's answer, which that ledger checks it really gives)."""

    tx_id: bytes
    index: int
    call_info: bytes
    signers: tuple[Account, ...] = ()
    linked: tuple[bytes, ...] = ()

    @classmethod
    def of(cls, tx: InitiateTx | TxView, index: int) -> PartCall:
        """Part ``index`` of the whole transaction (the coordinator's own part) or of the view
        a participant was sent (CrossTxError if it hides what the part needs)."""
        view = tx.view(index) if isinstance(tx, InitiateTx) else tx
        part = view.part(index)
        return cls(view.tx_id, index, part.call_info, part.signers, view.linked(index))


class CrossApp(Protocol):
    """The application a participant runs parts with. A transaction may run several parts on
    one ledger: each is staged and decided on its own, by ``(tx_id, index)``."""

    def prepare(self, call: PartCall) -> bytes:
        """Run the call, locking what it reads and writes; return its result. Raise a
        :class:`~kakehashi.errors.KakehashiError` (a lock conflict, a balance too low...) to
        refuse, having locked nothing."""
        ...

    def commit(self, tx_id: bytes, index: int) -> None:
        """Apply what ``prepare`` staged for part ``index`` and release its locks."""
        ...

    def abort(self, tx_id: bytes, index: int) -> None:
        """Drop what ``prepare`` staged for part ``index`` and release its locks."""
        ...


@dataclass
class PartRecord:
    """What a participant remembers of one part: its status and the answer it gave."""

    status: PartStatus = PartStatus.NONE
    ack: CrossAck | None = None


@dataclass
class Participant:
    app: CrossApp
    records: dict[tuple[bytes, int], PartRecord] = field(default_factory=dict)

    def status(self, tx_id: bytes, index: int) -> PartStatus:
        record = self.records.get((tx_id, index))
        return PartStatus.NONE if record is None else record.status

    def on_packet(self, packet: CrossPacket, height: Height, timestamp_ns: int) -> CrossAck:
        """Handle one packet (module docstring); the acknowledgement to write."""
        if packet.kind is PacketKind.SIGN:
            raise CrossTxError("a SIGN packet is for the coordinator, not a participant")
        key = (packet.tx_id, packet.index)
        record = self.records.setdefault(key, PartRecord())
        if packet.kind is PacketKind.DECIDE:
            return self._decide(record, packet)
        if record.ack is not None:
            return record.ack  # a repeated PREPARE / CALL
        if record.status is not PartStatus.NONE:  # decided (ABORT) before its PREPARE came
            record.ack = CrossAck.failed("the transaction was already aborted")
            return record.ack
        try:
            view = packet.view()
            view.part(packet.index)
        except CrossTxError as exc:  # it hides what the part needs: never run it
            record.status = PartStatus.ABORT
            record.ack = CrossAck.failed(str(exc))
            return record.ack
        record.ack = self._run(view, packet, record, height, timestamp_ns)
        return record.ack

    def _run(
        self,
        view: TxView,
        packet: CrossPacket,
        record: PartRecord,
        height: Height,
        timestamp_ns: int,
    ) -> CrossAck:
        if view.expired(height, timestamp_ns):
            record.status = PartStatus.ABORT
            return CrossAck.failed("the transaction timed out before this part ran")
        part = view.part(packet.index)
        try:
            value = self.app.prepare(PartCall.of(view, packet.index))
        except KakehashiError as exc:  # refused: nothing locked
            record.status = PartStatus.ABORT
            return CrossAck.failed(str(exc))
        if part.return_value is not None and value != part.return_value:
            self.app.abort(packet.tx_id, packet.index)
            record.status = PartStatus.ABORT
            return CrossAck.failed(
                f"the part returned 0x{value.hex()}, not the declared 0x{part.return_value.hex()}"
            )
        if len(value) > MAX_ANSWER:
            self.app.abort(packet.tx_id, packet.index)
            record.status = PartStatus.ABORT
            return CrossAck.failed(
                f"the part's answer is {len(value)} bytes, more than an acknowledgement carries "
                f"({MAX_ANSWER})"
            )
        record.status = advance_part(record.status, PartStatus.PREPARE)
        if packet.kind is PacketKind.CALL:  # Simple Commit: the callee commits at once
            self.app.commit(packet.tx_id, packet.index)
            record.status = advance_part(record.status, PartStatus.COMMIT)
        return CrossAck.ok(value)

    def _decide(self, record: PartRecord, packet: CrossPacket) -> CrossAck:
        decision = packet.decision
        final = PartStatus.COMMIT if decision is Decision.COMMIT else PartStatus.ABORT
        if record.status is PartStatus.PREPARE:
            if decision is Decision.COMMIT:
                self.app.commit(packet.tx_id, packet.index)
            else:
                self.app.abort(packet.tx_id, packet.index)
            record.status = final
        elif record.status is PartStatus.NONE and decision is Decision.ABORT:
            record.status = PartStatus.ABORT  # its PREPARE, should it ever come, is refused
        elif record.status is not final:  # COMMIT for a part that never prepared here
            raise CrossTxError(
                f"{decision.name} for part {packet.index} of {packet.tx_id.hex()}, which is "
                f"{record.status.name} here"
            )
        return CrossAck.ok()
