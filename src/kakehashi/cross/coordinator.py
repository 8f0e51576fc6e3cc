"""The coordinator's state machine for Simple Commit and Two-Phase Commit (DESIGN.md §6).

Pure: a :class:`Coordinator` takes events (its own ledger prepared its part, a participant
acknowledged, a packet provably timed out, a decision was acknowledged) and answers the
:data:`Action` s its ledger must take — prepare the local part, send a packet over a part's
channel, commit or abort the local part. The ledger runs the actions and reports back; the
state machine never does I/O, so both ledgers' coordinators (Python on the Corda model, Vyper on
the EVM chain) follow the same rules, and the rules are tested exhaustively here.

**Simple Commit** (two parts, the coordinator runs one of them, ``local``): prepare locally
(locks); if that fails, ABORT and nothing is sent. Otherwise send CALL to the other part, whose
ledger runs it and commits at once, answering OK (with its return value) or FAILED. OK → COMMIT
the local part; FAILED, or the CALL proven timed out (never received) → ABORT it. The callee
checks its declared return value itself (it commits at once, so the coordinator could not undo
it).

**Two-Phase Commit** (two or more parts; the coordinator may run one, or none): PREPARE to every
remote part (and prepare the local one). When every part prepared with its declared return
value → COMMIT; the first FAILED, mismatched return value or proven timeout → ABORT. The decision
goes to every remote part that may hold a prepared state (DECIDE packets) and the local part is
finished with it. A DECIDE packet that times out is sent again: decisions are delivered until
acknowledged (:meth:`Coordinator.on_timeout`), so a relayer outage delays a decision, never
strands it.

**Idempotence.** Every event may arrive twice (two relayers, a restart): a repeated event
changes nothing and asks for nothing. An event that cannot happen (an ack from a part never
sent to) raises :class:`~kakehashi.cross.tx.CrossTxError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kakehashi.cross.packets import AckStatus, CrossAck, CrossPacket, PacketKind
from kakehashi.cross.status import Decision, PartStatus, advance_part, decide
from kakehashi.cross.tx import CommitProtocol, CrossTxError, InitiateTx

__all__ = ["Action", "Coordinator", "Finish", "PrepareLocal", "Send"]


@dataclass(frozen=True, slots=True)
class PrepareLocal:
    """Run (prepare, with locks) the coordinator ledger's own part ``index``."""

    index: int


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``packet`` over part ``index``'s channel."""

    index: int
    packet: CrossPacket


@dataclass(frozen=True, slots=True)
class Finish:
    """Commit or abort the coordinator ledger's own prepared part ``index``."""

    index: int
    decision: Decision


Action = PrepareLocal | Send | Finish


@dataclass
class Coordinator:
    tx: InitiateTx
    local: int | None = None  # the part this ledger runs itself (None: coordinator only)
    parts: dict[int, PartStatus] = field(default_factory=dict)
    returns: dict[int, bytes] = field(default_factory=dict)
    failures: dict[int, str] = field(default_factory=dict)  # parts that prepared nothing
    rejected: dict[int, str] = field(default_factory=dict)  # prepared, with a wrong return value
    decision: Decision = Decision.UNKNOWN
    sent: set[int] = field(default_factory=set)  # remote parts a PREPARE / CALL went to
    decided: set[int] = field(default_factory=set)  # remote parts that acknowledged the DECIDE
    started: bool = False

    def __post_init__(self) -> None:
        count = len(self.tx.contract_transactions)
        if self.local is not None and not 0 <= self.local < count:
            raise CrossTxError(f"the transaction has no part {self.local}")
        if self.tx.commit_protocol is CommitProtocol.SIMPLE and self.local is None:
            raise CrossTxError("in Simple Commit the coordinator runs one of the two parts")
        for index in range(count):
            self.parts.setdefault(index, PartStatus.NONE)

    # -- what is known -------------------------------------------------------------------------

    @property
    def simple(self) -> bool:
        return self.tx.commit_protocol is CommitProtocol.SIMPLE

    @property
    def remotes(self) -> tuple[int, ...]:
        return tuple(i for i in self.parts if i != self.local)

    @property
    def done(self) -> bool:
        """Decided, and every remote part that needs the decision has acknowledged it."""
        return self.decision is not Decision.UNKNOWN and not self._awaiting_decision_ack()

    def _awaiting_decision_ack(self) -> set[int]:
        if self.simple or self.decision is Decision.UNKNOWN:
            return set()
        return set(self._decision_targets()) - self.decided

    def _decision_targets(self) -> tuple[int, ...]:
        """Remote parts that may hold a prepared state: every one a PREPARE went to, except
        those that answered FAILED (they prepared nothing)."""
        return tuple(i for i in sorted(self.sent) if i not in self.failures)

    def _check_remote(self, index: int) -> None:
        if index not in self.parts or index == self.local:
            raise CrossTxError(f"part {index} is not a remote part of this transaction")
        if index not in self.sent:
            raise CrossTxError(f"nothing was sent to part {index}")

    # -- events --------------------------------------------------------------------------------

    def start(self) -> list[Action]:
        """The first actions (once; again: none)."""
        if self.started:
            return []
        self.started = True
        actions: list[Action] = []
        if self.local is not None:
            actions.append(PrepareLocal(self.local))
        if not self.simple:
            for index in self.remotes:
                self.sent.add(index)
                actions.append(Send(index, CrossPacket.prepare(self.tx, index)))
        return actions

    def on_local_prepared(
        self, ok: bool, return_value: bytes = b"", reason: str = ""
    ) -> list[Action]:
        """The local part ran: prepared (its states locked) or failed."""
        if self.local is None:
            raise CrossTxError("this coordinator runs no part itself")
        index = self.local
        if self.parts[index] is not PartStatus.NONE or index in self.failures:
            return []  # reported already
        if not ok:  # it locked nothing
            self.failures[index] = reason or "the local part failed"
            return self._decide(Decision.ABORT) if self.decision is Decision.UNKNOWN else []
        self.parts[index] = advance_part(self.parts[index], PartStatus.PREPARE)
        self.returns[index] = return_value
        if self._declared_mismatch(index, return_value):  # prepared: abort releases its locks
            self.rejected[index] = "the local part's return value is not the declared one"
            if self.decision is Decision.UNKNOWN:
                return self._decide(Decision.ABORT)
        if self.decision is Decision.ABORT:  # decided while preparing: undo at once
            self.parts[index] = advance_part(self.parts[index], PartStatus.ABORT)
            return [Finish(index, Decision.ABORT)]
        if self.simple:
            (other,) = self.remotes
            self.sent.add(other)
            return [Send(other, CrossPacket.call(self.tx, other))]
        return self._commit_if_all_prepared()

    def on_ack(self, index: int, ack: CrossAck) -> list[Action]:
        """Part ``index`` answered the PREPARE (or CALL)."""
        self._check_remote(index)
        if self.parts[index] is not PartStatus.NONE or index in self.failures:
            return []  # a repeated acknowledgement
        if ack.status is not AckStatus.OK:  # it prepared (or committed) nothing
            self.failures[index] = ack.reason or "FAILED"
            return self._decide(Decision.ABORT) if self.decision is Decision.UNKNOWN else []
        self.returns[index] = ack.return_value
        if self.simple:  # the callee committed at once (it checked its declared value itself)
            self.parts[index] = PartStatus.COMMIT
            return self._decide(Decision.COMMIT)
        # prepared: it holds locks until it receives the decision, whatever we think of it
        self.parts[index] = advance_part(self.parts[index], PartStatus.PREPARE)
        if self._declared_mismatch(index, ack.return_value):
            self.rejected[index] = "the return value is not the declared one"
            return self._decide(Decision.ABORT) if self.decision is Decision.UNKNOWN else []
        if self.decision is Decision.ABORT:
            # prepared after the abort: it was sent the decision with every other target
            return []
        return self._commit_if_all_prepared()

    def on_timeout(self, index: int, kind: PacketKind) -> list[Action]:
        """A ``kind`` packet to part ``index`` provably timed out (never received)."""
        self._check_remote(index)
        if kind is PacketKind.DECIDE:
            if self.decision is Decision.UNKNOWN or index in self.decided:
                return []
            # decisions are delivered until acknowledged: send it again
            return [Send(index, CrossPacket.decide(self.tx.tx_id, index, self.decision))]
        if self.parts[index] is not PartStatus.NONE or index in self.failures:
            return []  # it answered before; a stale timeout
        self.failures[index] = f"the {kind.name} packet to part {index} timed out"
        if self.decision is Decision.UNKNOWN:
            return self._decide(Decision.ABORT)
        return []

    def on_decision_ack(self, index: int) -> list[Action]:
        """Part ``index`` applied the decision."""
        self._check_remote(index)
        if self.decision is Decision.UNKNOWN:
            raise CrossTxError(f"part {index} acknowledged a decision that was not taken")
        if index not in self.decided:
            self.decided.add(index)
            final = PartStatus.COMMIT if self.decision is Decision.COMMIT else PartStatus.ABORT
            if self.parts[index] is PartStatus.PREPARE:
                self.parts[index] = advance_part(self.parts[index], final)
        return []

    # -- deciding ------------------------------------------------------------------------------

    def _declared_mismatch(self, index: int, actual: bytes) -> bool:
        declared = self.tx.contract_transactions[index].return_value
        return declared is not None and declared != actual

    def _commit_if_all_prepared(self) -> list[Action]:
        if not self.rejected and all(s is PartStatus.PREPARE for s in self.parts.values()):
            return self._decide(Decision.COMMIT)
        return []

    def _decide(self, decision: Decision) -> list[Action]:
        if self.decision is not Decision.UNKNOWN:
            decide(self.decision, decision)  # the same again is a no-op, a change raises
            return []
        self.decision = decide(self.decision, decision)
        actions: list[Action] = []
        if self.local is not None and self.parts[self.local] is PartStatus.PREPARE:
            final = PartStatus.COMMIT if decision is Decision.COMMIT else PartStatus.ABORT
            self.parts[self.local] = advance_part(PartStatus.PREPARE, final)
            actions.append(Finish(self.local, decision))
        if not self.simple:
            for index in self._decision_targets():
                actions.append(Send(index, CrossPacket.decide(self.tx.tx_id, index, decision)))
        return actions
