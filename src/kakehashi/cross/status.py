"""What every ledger records about a cross-ledger transaction (DESIGN.md §6, "Status").

* :class:`AuthStatus` — the initiation: PENDING until every named signer has signed, then
  VERIFIED; EXPIRED when the transaction timed out first.
* :class:`PartStatus` — one contract transaction on one ledger: NONE → PREPARE → COMMIT | ABORT
  (ABORT also straight from NONE: a part aborted before it was prepared).
* :class:`Decision` — the coordinator's: UNKNOWN until it decides COMMIT or ABORT, once.

:func:`advance_part` and :func:`decide` are the only moves: a repeated move is a no-op (every
state machine step is idempotent: a decision packet delivered twice changes nothing), any other
move raises :class:`~kakehashi.cross.tx.CrossTxError`. :func:`part_record` is the key the EVM
cross module keeps a participant part's status under (``cross_kv.parts``). Pure.
"""

from __future__ import annotations

from enum import IntEnum

from eth_utils import keccak

from kakehashi.cross.tx import CrossTxError

__all__ = ["AuthStatus", "Decision", "PartStatus", "advance_part", "decide", "part_record"]


def part_record(tx_id: bytes, index: int) -> bytes:
    """``keccak256(tx id ‖ index)``: where ``contracts/cross/cross_kv.vy`` keeps the status of
    part ``index`` it runs as a participant (``parts(record)``)."""
    return bytes(keccak(tx_id + bytes([index])))


class AuthStatus(IntEnum):
    PENDING = 1
    VERIFIED = 2
    EXPIRED = 3


class PartStatus(IntEnum):
    NONE = 0
    PREPARE = 1
    COMMIT = 2
    ABORT = 3


class Decision(IntEnum):
    UNKNOWN = 0
    COMMIT = 1
    ABORT = 2


_PART_MOVES: dict[PartStatus, frozenset[PartStatus]] = {
    PartStatus.NONE: frozenset({PartStatus.PREPARE, PartStatus.ABORT}),
    PartStatus.PREPARE: frozenset({PartStatus.COMMIT, PartStatus.ABORT}),
    PartStatus.COMMIT: frozenset(),
    PartStatus.ABORT: frozenset(),
}


def advance_part(current: PartStatus, new: PartStatus) -> PartStatus:
    """``current`` → ``new`` if the part's state machine allows it (the same state again is a
    no-op); CrossTxError otherwise — a committed part never aborts and the other way round."""
    if new == current or new in _PART_MOVES[current]:
        return new
    raise CrossTxError(f"a contract transaction in {current.name} cannot move to {new.name}")


def decide(current: Decision, new: Decision) -> Decision:
    """Record the coordinator's decision: once, and the same decision again is a no-op."""
    if new is Decision.UNKNOWN:
        raise CrossTxError("a decision is COMMIT or ABORT")
    if current is Decision.UNKNOWN or current == new:
        return new
    raise CrossTxError(f"the transaction was decided {current.name}; it cannot become {new.name}")
