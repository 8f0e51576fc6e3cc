"""The key-value cross application on the Corda model, its values and locks as Corda states.

A part's call is :mod:`kakehashi.cross.kv`'s encoding (SET / GET / DELETE / SET_LINKED; the
asset ops are refused here). Every key has at most one current state, held by the host operator
and named by the key in the IBC host (:meth:`~kakehashi.ibc.corda_host.host.HostStore.get_state`:
the host keeps the index key → state reference, so no lookup scans the vault):

* :class:`KvRecordState` ``(operator, key, value, readers)``: the committed value (``None``: the
  key has none and the record only carries read locks) and the parts holding a shared read lock;
* :class:`KvLockState` ``(operator, tx_id, index, key, old, new, readers)``: a prepared write of
  part ``index`` of cross transaction ``tx_id`` (``new = None``: a deletion) — the record moved
  into a lock that only that part's decision can spend.

Every change is made inside a host call (:class:`~kakehashi.cross.corda_module.CrossModule`
drives the app from the IBC packet handlers), so it is a move of these states in the host
transaction of that version: notarised like any transaction, verified by :class:`KvContract`.

**Contract** (:data:`KV_CONTRACT`). A transaction moving key-value states is a host
transaction (it carries the host's ``HostAdvance``), every key-value state in it belongs to the
host's operator, who signs every key-value command. Per key, the transaction consumes at most
one state and produces at most one, and the output is exactly what the key's commands, applied
in order to the input (:func:`step`), give:

* :class:`KvPrepare` ``(tx_id, index, key, new)``: a record (or nothing) becomes a lock of that
  part holding the old value and ``new``; refused if the key is write-locked or read-locked by
  another transaction;
* :class:`KvRead` ``(tx_id, index, key)``: the part joins the readers (of the record, or of its
  own transaction's lock); refused if another transaction holds the write lock;
* :class:`KvRelease` ``(tx_id, index, key, commit)``: the part's lock becomes the record of
  ``new`` (COMMIT) or of ``old`` (ABORT), keeping the readers; or the part leaves the readers.
  It is the ONLY way a lock state is spent, and only by the part it names.

A record with no value and no reader is no state at all. A part prepared and decided in the
same host call (Simple Commit's CALL) never materialises its lock: the transaction holds both
commands and the contract checks their net effect the same way.

**Application** (:class:`StateKeyValueApp`, a :class:`~kakehashi.cross.participant.CrossApp`).
Prepare checks the locks first and refuses a conflict with :class:`~kakehashi.errors.
ConflictError` (a bad call with :class:`~kakehashi.cross.tx.CrossTxError`) having changed
nothing; the transaction then aborts, nothing ever blocks. A GET returns the committed value
(``b""`` for none, at most :data:`~kakehashi.cross.tx.MAX_RETURN_VALUE` bytes); writes return
``b"ok"``. SET_LINKED writes the declared return value of the part's first link.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cbor2

from kakehashi.cross.kv import KV_OPS, OK, OP_DELETE, OP_SET, OP_SET_LINKED, decode_call
from kakehashi.cross.participant import PartCall
from kakehashi.cross.tx import MAX_RETURN_VALUE, CrossTxError
from kakehashi.errors import ConflictError, InvalidTransactionError
from kakehashi.ibc.corda_host.contract import HostAdvance
from kakehashi.ibc.corda_host.host import CordaIbcHost, HostStore
from kakehashi.ledgers.corda.model.contracts import contract, require
from kakehashi.ledgers.corda.model.identity import Party
from kakehashi.ledgers.corda.model.serialization import serializable
from kakehashi.ledgers.corda.model.states import (
    Command,
    CommandData,
    ContractState,
    TransactionState,
)
from kakehashi.ledgers.corda.model.transactions import LedgerTransaction
from kakehashi.lightclients.corda import IbcHostState

__all__ = [
    "KV_CONTRACT",
    "KvCommand",
    "KvContract",
    "KvLockState",
    "KvPrepare",
    "KvRead",
    "KvRecordState",
    "KvRelease",
    "StateKeyValueApp",
    "part_id",
    "step",
]

KV_CONTRACT = "kakehashi.cross.KvContract"
_STATE = "app:kv-state"  # the host's named states: one per key (record or lock)
_PART = "app:kv-part"  # what each prepared part holds: [key], b"" once decided


def part_id(tx_id: bytes, index: int) -> bytes:
    """How a part is named in ``readers``: ``tx_id ‖ index`` (one byte)."""
    return tx_id + bytes([index])


def _owner(part: bytes) -> bytes:
    return part[:-1]


# ---------------------------------------------------------------------------- states


@serializable("cross.KvRecord")
@dataclass(frozen=True, slots=True)
class KvRecordState(ContractState):
    """A key's committed value (``None``: none) and the parts holding a read lock on it."""

    operator: Party
    key: bytes
    value: bytes | None
    readers: tuple[bytes, ...] = ()  # sorted part ids

    @property
    def participants(self) -> tuple[Party, ...]:
        return (self.operator,)


@serializable("cross.KvLock")
@dataclass(frozen=True, slots=True)
class KvLockState(ContractState):
    """Part ``index`` of ``tx_id`` prepared a write of ``key``: ``old`` comes back on ABORT,
    ``new`` (``None``: deleted) on COMMIT; ``readers`` are its own transaction's read locks."""

    operator: Party
    tx_id: bytes
    index: int
    key: bytes
    old: bytes | None
    new: bytes | None
    readers: tuple[bytes, ...] = ()

    @property
    def participants(self) -> tuple[Party, ...]:
        return (self.operator,)


KvState = KvRecordState | KvLockState


class KvCommand(CommandData):
    """Marker base of the key-value contract's commands."""

    key: bytes
    tx_id: bytes
    index: int


@serializable("cross.KvPrepare")
@dataclass(frozen=True, slots=True)
class KvPrepare(KvCommand):
    """Part ``index`` of ``tx_id`` locks ``key`` to write ``new`` (``None``: delete)."""

    tx_id: bytes
    index: int
    key: bytes
    new: bytes | None


@serializable("cross.KvRead")
@dataclass(frozen=True, slots=True)
class KvRead(KvCommand):
    """Part ``index`` of ``tx_id`` takes a shared read lock on ``key``."""

    tx_id: bytes
    index: int
    key: bytes


@serializable("cross.KvRelease")
@dataclass(frozen=True, slots=True)
class KvRelease(KvCommand):
    """Part ``index`` of ``tx_id`` is decided (``commit``: COMMIT, else ABORT): its lock on
    ``key`` is spent."""

    tx_id: bytes
    index: int
    key: bytes
    commit: bool


def _normal(state: KvState | None) -> KvState | None:
    """A record with neither a value nor a reader is no state."""
    if isinstance(state, KvRecordState) and state.value is None and not state.readers:
        return None
    return state


def step(state: KvState | None, command: KvCommand, operator: Party) -> KvState | None:
    """The key's state after ``command`` (the contract's transition rule; see the module
    docstring). Raises :class:`~kakehashi.errors.InvalidTransactionError` when the command
    cannot apply: a lock of another part, a release of a lock the part does not hold."""
    part = part_id(command.tx_id, command.index)
    if isinstance(command, KvPrepare):
        if isinstance(state, KvLockState):
            raise InvalidTransactionError(
                f"key {command.key!r} is locked by cross transaction {state.tx_id.hex()} "
                f"(part {state.index})"
            )
        readers = () if state is None else state.readers
        require(
            all(_owner(r) == command.tx_id for r in readers),
            f"key {command.key!r} is read-locked by another cross transaction",
        )
        old = None if state is None else state.value
        return KvLockState(
            operator, command.tx_id, command.index, command.key, old, command.new, readers
        )
    if isinstance(command, KvRead):
        if isinstance(state, KvLockState) and state.tx_id != command.tx_id:
            raise InvalidTransactionError(
                f"key {command.key!r} is locked by cross transaction {state.tx_id.hex()}"
            )
        current = state or KvRecordState(operator, command.key, None)
        require(part not in current.readers, "a part reads a key once")
        return replace(current, readers=tuple(sorted((*current.readers, part))))
    if isinstance(command, KvRelease):
        if isinstance(state, KvLockState) and (state.tx_id, state.index) == (
            command.tx_id,
            command.index,
        ):
            value = state.new if command.commit else state.old
            return _normal(KvRecordState(operator, command.key, value, state.readers))
        require(
            state is not None and part in state.readers,
            f"part {command.index} of {command.tx_id.hex()} holds no lock on key {command.key!r}",
        )
        assert state is not None
        return _normal(replace(state, readers=tuple(r for r in state.readers if r != part)))
    raise InvalidTransactionError(f"unknown key-value command {type(command).__name__}")


# ---------------------------------------------------------------------------- the contract


@contract(KV_CONTRACT)
class KvContract:
    """The key-value states' rules (see the module docstring)."""

    def verify(self, tx: LedgerTransaction) -> None:
        hosts = tx.outputs_of_type(IbcHostState)
        require(
            len(hosts) == 1 and bool(tx.commands_of_type(HostAdvance)),
            "key-value states move only in a host transaction (HostAdvance)",
        )
        operator = hosts[0].operator
        inputs: dict[bytes, KvState] = {}
        outputs: dict[bytes, KvState] = {}
        for found, where in ((tx.input_states, inputs), (tx.output_states, outputs)):
            for data in found:
                if isinstance(data, KvRecordState | KvLockState):
                    require(data.operator == operator, "key-value states are the host's")
                    require(data.key not in where, f"key {data.key!r} has two states")
                    where[data.key] = data
        for output in tx.outputs:
            if isinstance(output.data, KvRecordState | KvLockState):
                require(output.contract == KV_CONTRACT, "a key-value state names its contract")
                require(output.encumbrance is None, "a key-value state is not encumbered")
        commands: dict[bytes, list[KvCommand]] = {}
        for command in tx.commands_of_type(KvCommand):
            require(
                operator.owning_key in command.signers,
                "the host operator signs every key-value command",
            )
            assert isinstance(command.value, KvCommand)
            commands.setdefault(command.value.key, []).append(command.value)
        for key in inputs.keys() | outputs.keys() | commands.keys():
            spent, produced = inputs.get(key), outputs.get(key)
            if isinstance(spent, KvLockState) and not (
                isinstance(produced, KvLockState)
                and (produced.tx_id, produced.index) == (spent.tx_id, spent.index)
            ):
                # step() lets only the part's KvRelease end its lock; say so plainly
                require(
                    any(
                        isinstance(c, KvRelease)
                        and (c.tx_id, c.index) == (spent.tx_id, spent.index)
                        for c in commands.get(key, [])
                    ),
                    f"the lock of part {spent.index} of {spent.tx_id.hex()} on key {key!r} is "
                    "spent only by that part's KvRelease",
                )
            state = spent
            for kv_command in commands.get(key, []):
                state = step(state, kv_command, operator)
            require(
                state == produced,
                f"key {key!r}: the transaction must produce {state}, not {produced}",
            )


# ---------------------------------------------------------------------------- the application


@dataclass
class StateKeyValueApp:
    """Key-value state as Corda states with shared read and exclusive write locks (module
    docstring); a :class:`~kakehashi.cross.participant.CrossApp` run inside host calls."""

    host: CordaIbcHost

    @property
    def store(self) -> HostStore:
        return self.host.store

    @property
    def operator(self) -> Party:
        return self.host.node.party

    def _state(self, key: bytes) -> KvState | None:
        found = self.store.get_state(_STATE, key.hex())
        if found is None:
            return None
        assert isinstance(found.data, KvRecordState | KvLockState)
        return found.data

    # -- reads ------------------------------------------------------------------------------

    def value(self, key: bytes) -> bytes | None:
        """The committed value of ``key`` (None: none); a prepared write is not visible."""
        state = self._state(key)
        if isinstance(state, KvLockState):
            return state.old
        return None if state is None else state.value

    def locked_by(self, key: bytes) -> bytes | None:
        """The transaction holding the write lock on ``key`` (None: none)."""
        state = self._state(key)
        return state.tx_id if isinstance(state, KvLockState) else None

    def readers(self, key: bytes) -> list[bytes]:
        """The transactions holding a read lock on ``key``."""
        state = self._state(key)
        found = [] if state is None else [_owner(r) for r in state.readers]
        return list(dict.fromkeys(found))

    def locks(self) -> bool:
        """Whether any lock or read lock is left (tests: none outlives its transaction)."""
        db = self.host.node.db
        if db.query(KvLockState, limit=1):
            return True
        offset = 0
        while page := db.query(KvRecordState, limit=200, offset=offset):
            if any(isinstance(s.state.data, KvRecordState) and s.state.data.readers for s in page):
                return True
            offset += len(page)
        return False

    # -- CrossApp ---------------------------------------------------------------------------

    def prepare(self, call: PartCall) -> bytes:
        op = decode_call(call.call_info)
        if op.op not in KV_OPS:
            raise CrossTxError(
                f"op {op.op} moves EVM assets; the Corda model's key-value application runs "
                "SET, GET, DELETE and SET_LINKED only"
            )
        if self._held(call.tx_id, call.index) is not None:
            raise CrossTxError(f"part {call.index} of {call.tx_id.hex()} is already prepared")
        state = self._state(op.key)
        command: KvCommand
        if op.writes:
            self._check_write(call, op.key, state)
            if op.op == OP_SET:
                new: bytes | None = op.value
            elif op.op == OP_DELETE:
                new = None
            else:
                assert op.op == OP_SET_LINKED
                if not call.linked:
                    raise CrossTxError("SET_LINKED needs a link to another part's return value")
                new = call.linked[0]
            command, result = KvPrepare(call.tx_id, call.index, op.key, new), OK
        else:
            if isinstance(state, KvLockState) and state.tx_id != call.tx_id:
                raise ConflictError(
                    f"key {op.key!r} is locked by cross transaction {state.tx_id.hex()}"
                )
            committed = state.old if isinstance(state, KvLockState) else state and state.value
            result = committed or b""
            if len(result) > MAX_RETURN_VALUE:
                raise CrossTxError(
                    f"the value of key {op.key!r} is {len(result)} bytes; a GET returns at most "
                    f"{MAX_RETURN_VALUE}"
                )
            command = KvRead(call.tx_id, call.index, op.key)
        self._move(op.key, state, command)
        self.store.set_object(_PART, _part_name(call.tx_id, call.index), cbor2.dumps([op.key]))
        return result

    def _check_write(self, call: PartCall, key: bytes, state: KvState | None) -> None:
        if isinstance(state, KvLockState):
            who = (
                f"part {state.index} of the same cross transaction"
                if state.tx_id == call.tx_id
                else f"cross transaction {state.tx_id.hex()}"
            )
            raise ConflictError(f"key {key!r} is locked by {who}")
        others = [r for r in (state.readers if state else ()) if _owner(r) != call.tx_id]
        if others:
            raise ConflictError(
                f"key {key!r} is read-locked by cross transaction {_owner(others[0]).hex()}"
            )

    def commit(self, tx_id: bytes, index: int) -> None:
        self._release(tx_id, index, commit=True)

    def abort(self, tx_id: bytes, index: int) -> None:
        self._release(tx_id, index, commit=False)

    def _release(self, tx_id: bytes, index: int, *, commit: bool) -> None:
        key = self._held(tx_id, index)
        if key is None:  # never prepared here, or decided already
            return
        self._move(key, self._state(key), KvRelease(tx_id, index, key, commit))
        self.store.set_object(_PART, _part_name(tx_id, index), b"")

    def _held(self, tx_id: bytes, index: int) -> bytes | None:
        data = self.store.get_object(_PART, _part_name(tx_id, index))
        return bytes(cbor2.loads(data)[0]) if data else None

    def _move(self, key: bytes, state: KvState | None, command: KvCommand) -> None:
        """Apply ``command`` to ``key``'s state in the running host call's transaction."""
        after = step(state, command, self.operator)  # raises before anything is staged
        name = key.hex()
        if state is not None:
            self.store.take_state(_STATE, name)
        if after is not None:
            self.store.put_state(_STATE, name, TransactionState(after, KV_CONTRACT, self._notary))
        self.store.add_command(Command(command, (self.operator.owning_key,)))

    @property
    def _notary(self) -> Party:
        return self.host.notary


def _part_name(tx_id: bytes, index: int) -> str:
    return f"{tx_id.hex()}:{index}"
