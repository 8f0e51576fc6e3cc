"""The Corda-model IBC host: the handler's store in a node's database, one notarised transaction
per IBC state change, and proofs of any store path at any host version.

**Versions.** The host is a linear state (:class:`~kakehashi.lightclients.corda.IbcHostState`)
held by the node that runs it (the *operator*). Its genesis transaction creates version 1 with
the empty store; every IBC state change — one :class:`~kakehashi.ibc.handler.IbcHandler` call, or
one :meth:`CordaIbcHost.execute` — is one transaction that consumes version ``v`` and produces
``v + 1`` carrying the sparse-Merkle root of the provable store after the change, the host's
timestamp and a time window around it, signed by the operator and notarised
(:mod:`kakehashi.ibc.corda_host.contract`). The notary lets version ``v`` be consumed once, so
the host has one history. The version is this ledger's IBC height ``(revision_number, v)``.

**Storage** (tables beside the vault, in the node's own database):

* ``ibc_host_versions``: version → (transaction id, output index, root, timestamp);
* ``ibc_smt_nodes``: the sparse Merkle tree's records, content-addressed and never deleted, so
  every version ever produced stays provable at any height a counterparty asks for (each path
  written adds about ``1 + log2(n)`` records for ``n`` paths in the store; pruning below a
  retention horizon is not implemented);
* ``ibc_store_values``: the current provable store (ICS-24 path → 32-byte value);
* ``ibc_store_private``: the handler's private objects (light clients through
  :mod:`~kakehashi.ibc.corda_host.codecs`, connection and channel ends, counters);
* ``ibc_sent_packets``, ``ibc_written_acks``: every packet the handler sent and every
  acknowledgement it wrote (packet and acknowledgement bytes), keyed by (port, channel,
  sequence), with the version that committed them: what a relayer needs and the store's hashes
  do not hold (the EVM handler's ``SendPacket`` / ``WriteAcknowledgement`` events). They are
  recorded with the version's writes, so a failed call records none; rows stay after their
  commitment is deleted, and :meth:`CordaIbcHost.sent_packets` / :meth:`~CordaIbcHost.
  written_acks` return only those whose commitment the store still holds;
* ``ibc_host_states``: where each *named* application state lives (kind, name → state
  reference and the serialised ``TransactionState``), see below;
* ``ibc_host_pending``: the one change being notarised (see below).

**Applications' Corda states.** A call may also consume and produce Corda states in its host
transaction (:meth:`HostStore.add_states`, or by name: :meth:`HostStore.put_state`,
:meth:`~HostStore.take_state`, :meth:`~HostStore.get_state`): the host state stays input 0 and
output 0 (a host contract rule), the call's inputs, outputs and commands follow in the order
added. They are verified by their contracts with the host transaction, notarised with it (so an
application state moves in the same version as the IBC change that caused it) and recorded in
the vault with it; a call that only adds states still makes a version. Output references exist
only once the transaction is built, so an application names the states it looks up again and
the host keeps the index, updated with the version. A named state produced and consumed in the
same call never reaches the ledger (a transaction cannot consume its own output): only the
commands of both steps remain, and the contracts must accept the net effect.

**Delivery.** A call may name parties its host transaction is sent to once recorded
(:meth:`HostStore.send_to`: a state it produces for them reaches their vaults; they fetch its
back-chain from the operator, the host's history included) and transactions of the operator's
to finalise after it (:meth:`HostStore.finalise_after`: e.g. an issuer's re-issue, which carries
no back-chain). Both are kept with the pending change, so they happen when it completes; an
unreachable recipient is retried by the node's recovery (its finality checkpoint).
:meth:`CordaIbcHost.send_version` sends a recorded version's transaction to parties.

**Atomicity.** A call runs against an overlay of the store; if it raises, the overlay is dropped
and nothing is recorded. Otherwise the host builds and verifies the next host transaction and,
in one database transaction, writes the new tree nodes and a *pending* record (the signed
transaction and the overlay's writes). It then asks the notary to notarise. If the notary
refuses, the pending record is deleted and the store is as before. If it signs, one database
transaction records the transaction in the vault (consuming the previous host state), applies
the writes, adds the version row and deletes the pending record. A crash or an unreachable
notary in between leaves the pending record: the next start (or call) asks the notary again —
notarisation is idempotent, so the change is then either completed or dropped — and the host
accepts no new call until it is resolved.

**Restart.** Opening a host on a node whose database already holds one resumes at the latest
version, after resolving a pending change; the vault's unconsumed host state must be that
version's output.

**Proofs.** :meth:`CordaIbcHost.prove` returns the canonical bytes of a
:class:`~kakehashi.lightclients.corda.CommitmentProof`: the notary's and the operator's
signatures over the transaction that produced the version, a tear-off revealing only its host
state output and its inputs, notary and time window, and the sparse-Merkle (non-)membership
proof of ``SHA256(path)``. :meth:`CordaIbcHost.attestation` is the same without the
sparse-Merkle part: the header a counterparty's client is updated with.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import cbor2
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    func,
    select,
)

from kakehashi.errors import (
    ConfigurationError,
    IbcError,
    KakehashiError,
    NotaryError,
    TransportError,
)
from kakehashi.ibc import host as paths
from kakehashi.ibc import msgs
from kakehashi.ibc.client import LightClient
from kakehashi.ibc.commitment import ack_commitment, packet_commitment_of
from kakehashi.ibc.corda_host.api import Submission, default_client_factory
from kakehashi.ibc.corda_host.codecs import decode_client, encode_client
from kakehashi.ibc.corda_host.contract import GENESIS_VERSION, HostAdvance, HostGenesis
from kakehashi.ibc.handler import IbcHandler
from kakehashi.ibc.msgs import ClientFactory
from kakehashi.ibc.router import Router
from kakehashi.ibc.types import ChannelEnd, ConnectionEnd, Height, Packet
from kakehashi.ledgers.corda.merkle import ComponentGroup
from kakehashi.ledgers.corda.model.crypto import random_bytes
from kakehashi.ledgers.corda.model.identity import Party
from kakehashi.ledgers.corda.model.serialization import deserialize, serialize
from kakehashi.ledgers.corda.model.states import (
    Command,
    StateAndRef,
    StateRef,
    TimeWindow,
    TransactionState,
    UniqueIdentifier,
)
from kakehashi.ledgers.corda.model.transactions import SignedTransaction, WireTransaction
from kakehashi.ledgers.corda.node.messages import RecordRequest
from kakehashi.ledgers.corda.node.node import Node
from kakehashi.ledgers.corda.node.storage import SQL, write_transaction
from kakehashi.ledgers.corda.smt import EMPTY_ROOT, SparseMerkleTree, key_for_path
from kakehashi.lightclients.corda import (
    DEFAULT_MAX_TIME_WINDOW_NS,
    HOST_CONTRACT,
    CommitmentProof,
    CordaClientState,
    HostStateAttestation,
    IbcHostState,
)

__all__ = ["CordaIbcHost", "HostStore", "StagedStates", "TransactionalHandler"]

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_TIME_TOLERANCE_NS = 30 * 1_000_000_000
"""Half-width of each host transaction's time window (the notary's clock must be inside)."""

NODE_CACHE_SIZE = 1 << 18
"""Sparse-Merkle nodes kept decoded in memory (they never change: caching is always safe)."""

host_metadata = MetaData()

versions = Table(
    "ibc_host_versions",
    host_metadata,
    Column("version", BigInteger, primary_key=True, autoincrement=False),
    Column("tx_id", LargeBinary(32), nullable=False),
    Column("output_index", Integer, nullable=False),
    Column("smt_root", LargeBinary(32), nullable=False),
    Column("timestamp_ns", BigInteger, nullable=False),
)

smt_nodes = Table(
    "ibc_smt_nodes",
    host_metadata,
    Column("hash", LargeBinary(32), primary_key=True),
    Column("data", LargeBinary, nullable=False),
)

store_values = Table(
    "ibc_store_values",
    host_metadata,
    Column("path", LargeBinary, primary_key=True),
    Column("value", LargeBinary(32), nullable=False),
)

store_private = Table(
    "ibc_store_private",
    host_metadata,
    Column("kind", String(16), primary_key=True),
    Column("name", String(512), primary_key=True),
    Column("data", LargeBinary, nullable=False),
)

sent_packets = Table(
    "ibc_sent_packets",
    host_metadata,
    Column("port_id", String(128), primary_key=True),
    Column("channel_id", String(64), primary_key=True),
    Column("sequence", BigInteger, primary_key=True, autoincrement=False),
    Column("version", BigInteger, nullable=False),
    Column("path", LargeBinary, nullable=False),  # the packet commitment's ICS-24 path
    Column("commitment", LargeBinary(32), nullable=False),
    Column("packet", LargeBinary, nullable=False),
)

written_acks = Table(
    "ibc_written_acks",
    host_metadata,
    Column("port_id", String(128), primary_key=True),  # the packet's destination
    Column("channel_id", String(64), primary_key=True),
    Column("sequence", BigInteger, primary_key=True, autoincrement=False),
    Column("version", BigInteger, nullable=False),
    Column("path", LargeBinary, nullable=False),  # the ack commitment's ICS-24 path
    Column("commitment", LargeBinary(32), nullable=False),
    Column("packet", LargeBinary, nullable=False),
    Column("acknowledgement", LargeBinary, nullable=False),
)

host_states = Table(
    "ibc_host_states",
    host_metadata,
    Column("kind", String(16), primary_key=True),
    Column("name", String(512), primary_key=True),
    Column("tx_id", LargeBinary(32), nullable=False),
    Column("output_index", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),  # the serialised TransactionState
)

pending = Table(
    "ibc_host_pending",
    host_metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("data", LargeBinary, nullable=False),
)

_GET_NODE = SQL("SELECT data FROM ibc_smt_nodes WHERE hash = :hash")
_PUT_NODE = SQL(
    "INSERT INTO ibc_smt_nodes (hash, data) VALUES (:hash, :data) ON CONFLICT DO NOTHING"
)
_GET_VALUE = SQL("SELECT value FROM ibc_store_values WHERE path = :path")
_SET_VALUE = SQL(
    "INSERT INTO ibc_store_values (path, value) VALUES (:path, :value) "
    "ON CONFLICT (path) DO UPDATE SET value = excluded.value"
)
_DELETE_VALUE = SQL("DELETE FROM ibc_store_values WHERE path = :path")
_GET_PRIVATE = SQL("SELECT data FROM ibc_store_private WHERE kind = :kind AND name = :name")
_SET_PRIVATE = SQL(
    "INSERT INTO ibc_store_private (kind, name, data) VALUES (:kind, :name, :data) "
    "ON CONFLICT (kind, name) DO UPDATE SET data = excluded.data"
)
_GET_STATE = SQL(
    "SELECT tx_id, output_index, data FROM ibc_host_states WHERE kind = :kind AND name = :name"
)
_SET_STATE = SQL(
    "INSERT INTO ibc_host_states (kind, name, tx_id, output_index, data) "
    "VALUES (:kind, :name, :tx_id, :output_index, :data) "
    "ON CONFLICT (kind, name) DO UPDATE SET tx_id = excluded.tx_id, "
    "output_index = excluded.output_index, data = excluded.data"
)
_DELETE_STATE = SQL("DELETE FROM ibc_host_states WHERE kind = :kind AND name = :name")
_INSERT_VERSION = SQL(
    "INSERT INTO ibc_host_versions (version, tx_id, output_index, smt_root, timestamp_ns) "
    "VALUES (:version, :tx_id, :output_index, :smt_root, :timestamp_ns)"
)
_GET_VERSION = SQL(
    "SELECT version, tx_id, output_index, smt_root, timestamp_ns FROM ibc_host_versions "
    "WHERE version = :version"
)
# Records of one channel whose commitment the store still holds (packet commitment / ack
# commitment under the recorded path), in sequence order.
_SENT_STILL_COMMITTED = SQL(
    "SELECT t.packet FROM ibc_sent_packets t JOIN ibc_store_values v "
    "ON v.path = t.path AND v.value = t.commitment "
    "WHERE t.port_id = :port_id AND t.channel_id = :channel_id AND t.sequence >= :sequence "
    "ORDER BY t.sequence"
)
_ACKS_STILL_COMMITTED = SQL(
    "SELECT t.packet, t.acknowledgement FROM ibc_written_acks t JOIN ibc_store_values v "
    "ON v.path = t.path AND v.value = t.commitment "
    "WHERE t.port_id = :port_id AND t.channel_id = :channel_id AND t.sequence >= :sequence "
    "ORDER BY t.sequence"
)
_PENDING_ID = 1
_REMEMBERED_VERSIONS = 1024
"""Older version rows (and their attestations) a host keeps in memory once read."""

_CLIENT, _CONNECTION, _CHANNEL, _COUNTER = "client", "connection", "channel", "counter"


def _app_kind(kind: str) -> str:
    if not kind.startswith("app:") or len(kind) > 16:  # the kind column holds 16 characters
        raise IbcError(
            f"an application's object kind is 'app:' and at most 12 more characters (got {kind!r})"
        )
    return kind


class _DbNodeStore:
    """The tree's :class:`~kakehashi.ledgers.corda.smt.NodeStore` over ``ibc_smt_nodes``.

    New nodes stay in ``fresh`` until :meth:`flush` writes them inside the caller's database
    transaction; reads see fresh nodes, then a bounded cache, then the database.
    """

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.fresh: dict[bytes, bytes] = {}
        self._cache: OrderedDict[bytes, bytes] = OrderedDict()

    def get(self, node: bytes) -> bytes | None:
        data = self.fresh.get(node) or self._cache.get(node)
        if data is not None:
            return data
        with self.engine.connect() as conn:
            row = _GET_NODE.run(conn, {"hash": node}).fetchone()
        if row is None:
            return None
        data = bytes(row[0])
        self._remember(node, data)
        return data

    def put(self, node: bytes, data: bytes) -> None:
        self.fresh[node] = data

    def flush(self, conn: Connection) -> None:
        _PUT_NODE.run_many(conn, [{"hash": h, "data": d} for h, d in self.fresh.items()])
        for node, data in self.fresh.items():
            self._remember(node, data)
        self.fresh.clear()

    def discard(self) -> None:
        self.fresh.clear()

    def _remember(self, node: bytes, data: bytes) -> None:
        self._cache[node] = data
        if len(self._cache) > NODE_CACHE_SIZE:
            self._cache.popitem(last=False)


_Name = tuple[str, str]  # an application's named state: (kind, name)


@dataclass
class _Call:
    """The overlay of one host call: its writes, and the version it will produce."""

    version: int
    timestamp_ns: int
    values: dict[bytes, bytes | None] = field(default_factory=dict)
    private: dict[tuple[str, str], bytes] = field(default_factory=dict)
    clients: dict[str, LightClient] = field(default_factory=dict)
    sent: list[Packet] = field(default_factory=list)
    acks: list[tuple[Packet, bytes]] = field(default_factory=list)
    # Corda states the call adds to its host transaction (after the host state's input and
    # output, which stay first): inputs, outputs (with their name, if named) and commands.
    inputs: list[StateRef] = field(default_factory=list)
    outputs: list[tuple[_Name | None, TransactionState]] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)
    taken: dict[_Name, StateRef] = field(default_factory=dict)  # named states it consumes
    # parties (X.500 names) the host transaction is sent to once recorded (HostStore.send_to)
    observers: set[str] = field(default_factory=set)
    # transactions the operator finalises once the version is recorded (HostStore.finalise_after)
    after: list[SignedTransaction] = field(default_factory=list)

    def has_writes(self) -> bool:
        return bool(self.values or self.private or self.inputs or self.outputs or self.commands)

    def produced(self, name: _Name) -> int | None:
        """Position in :attr:`outputs` of the state named ``name`` produced in this call."""
        for position, (named, _state) in enumerate(self.outputs):
            if named == name:
                return position
        return None


@dataclass(frozen=True)
class StagedStates:
    """The Corda states a running host call has added so far (besides the host state)."""

    inputs: tuple[StateRef, ...]
    outputs: tuple[TransactionState, ...]
    commands: tuple[Command, ...]


@dataclass(frozen=True)
class _Version:
    version: int
    tx_id: bytes
    output_index: int
    smt_root: bytes
    timestamp_ns: int


def _check_value(path: bytes, value: bytes) -> bytes:
    if not isinstance(path, bytes) or not path:
        raise IbcError("a store path must be non-empty bytes")
    if not isinstance(value, bytes) or len(value) != 32:
        raise IbcError(f"the value committed under {path!r} must be 32 bytes")
    if value == bytes(32):
        raise IbcError(f"the value committed under {path!r} must not be all zero")
    return value


class HostStore:
    """:class:`~kakehashi.ibc.store.IbcStore` of a :class:`CordaIbcHost`.

    Reads see the committed store, plus the current call's writes inside a call. Writes are
    accepted only inside a call (:meth:`CordaIbcHost.execute`), which records them atomically.
    """

    def __init__(self, host: CordaIbcHost) -> None:
        self._host = host

    def _writable(self) -> _Call:
        call = self._host._call
        if call is None:
            raise IbcError(
                "the Corda-model host's store changes only inside a host call "
                "(CordaIbcHost.execute or host.ibc.<handler method>)"
            )
        return call

    # -- provable -----------------------------------------------------------------------------

    def get(self, path: bytes) -> bytes | None:
        call = self._host._call
        if call is not None and path in call.values:
            return call.values[path]
        with self._host.engine.connect() as conn:
            row = _GET_VALUE.run(conn, {"path": path}).fetchone()
        return None if row is None else bytes(row[0])

    def set(self, path: bytes, value: bytes) -> None:
        self._writable().values[path] = _check_value(path, value)

    def delete(self, path: bytes) -> None:
        if not isinstance(path, bytes) or not path:
            raise IbcError("a store path must be non-empty bytes")
        call = self._writable()
        if self.get(path) is not None or path in call.values:
            call.values[path] = None

    # -- private ------------------------------------------------------------------------------

    def _get_private(self, kind: str, name: str) -> bytes | None:
        call = self._host._call
        if call is not None and (kind, name) in call.private:
            return call.private[(kind, name)]
        with self._host.engine.connect() as conn:
            row = _GET_PRIVATE.run(conn, {"kind": kind, "name": name}).fetchone()
        return None if row is None else bytes(row[0])

    def _set_private(self, kind: str, name: str, data: bytes) -> None:
        self._writable().private[(kind, name)] = data

    # -- applications' objects ------------------------------------------------------------------

    def get_object(self, kind: str, name: str) -> bytes | None:
        """An application's private object (``kind`` starts with ``app:``; not provable), as the
        running call sees it."""
        return self._get_private(_app_kind(kind), name)

    def set_object(self, kind: str, name: str, data: bytes) -> None:
        """Write an application's private object inside a host call: recorded atomically with
        the call's IBC changes (a module's state moves with the packets it handles)."""
        self._set_private(_app_kind(kind), name, bytes(data))

    # -- applications' Corda states ---------------------------------------------------------
    #
    # A call may add Corda states to the host transaction it makes: they are consumed and
    # produced in the same notarised transaction as the host version (the host state stays
    # input 0 and output 0), verified by their contracts first, and recorded in the vault with
    # it. An output's reference is only known once the transaction is built, so applications
    # *name* the states they keep: the host remembers where each named state lives.

    def add_states(
        self,
        inputs: Sequence[StateRef] = (),
        outputs: Sequence[TransactionState] = (),
        commands: Sequence[Command] = (),
    ) -> None:
        """Consume ``inputs`` (states the node holds), produce ``outputs`` and add ``commands``
        in this call's host transaction. Unnamed outputs are found in the vault afterwards;
        use :meth:`put_state` for a state the application looks up again."""
        call = self._writable()
        for ref in inputs:
            if ref in call.inputs or ref == self._host.state.ref:
                raise IbcError(f"state {ref} is consumed twice in one host transaction")
            if self._host.node.db.resolve_state(ref) is None:
                raise IbcError(f"the host's node does not know state {ref}")
        call.inputs.extend(inputs)
        call.outputs.extend((None, output) for output in outputs)
        call.commands.extend(commands)

    def add_command(self, command: Command) -> None:
        """Add ``command`` to this call's host transaction."""
        self._writable().commands.append(command)

    def send_to(self, parties: Sequence[Party]) -> None:
        """Send this call's host transaction to ``parties`` once it is notarised and recorded
        (Corda finality's delivery to observers: a state it produces for another party reaches
        that party's vault). Alone it makes no version; the host's operator is skipped."""
        call = self._writable()
        for party in parties:
            self._host.node.network.party(party.name)  # a party of the network map
            if party != self._host.node.party:
                call.observers.add(str(party.name))

    def finalise_after(self, stx: SignedTransaction) -> None:
        """Finalise ``stx`` (a transaction of the operator's that spends nothing of this host:
        e.g. an issuer's re-issue, whose back-chain must not be the host's history) once this
        call's version is recorded, and only then. It is kept with the pending change, so a
        crash before it was finalised finalises it when the change completes; finalising twice
        changes nothing, so ``stx`` must be deterministic if the call may run again. Alone it
        makes no version."""
        if set(stx.tx.inputs) | set(stx.tx.references):
            raise IbcError("a transaction finalised after a host version spends no states")
        self._writable().after.append(stx)

    def get_state(self, kind: str, name: str) -> TransactionState | None:
        """The application's state named ``(kind, name)`` as the running call sees it: produced
        earlier in this call, else the committed one (None: none, or consumed in this call)."""
        key = (_app_kind(kind), name)
        call = self._host._call
        if call is not None:
            position = call.produced(key)
            if position is not None:
                return call.outputs[position][1]
            if key in call.taken:
                return None
        row = self._state_row(key)
        return None if row is None else deserialize(row[1], TransactionState)

    def state_ref(self, kind: str, name: str) -> StateRef | None:
        """Where the committed state named ``(kind, name)`` lives (None: none committed)."""
        row = self._state_row((_app_kind(kind), name))
        return None if row is None else row[0]

    def take_state(self, kind: str, name: str) -> TransactionState:
        """Consume the state named ``(kind, name)`` in this call's host transaction and return
        it. A state produced earlier in the same call is dropped instead (it never reaches the
        ledger: a transaction cannot consume its own output)."""
        key = (_app_kind(kind), name)
        call = self._writable()
        position = call.produced(key)
        if position is not None:
            return call.outputs.pop(position)[1]
        row = None if key in call.taken else self._state_row(key)
        if row is None:
            raise IbcError(f"the host holds no state named {kind}/{name}")
        call.taken[key] = row[0]
        call.inputs.append(row[0])
        return deserialize(row[1], TransactionState)

    def put_state(self, kind: str, name: str, state: TransactionState) -> None:
        """Produce ``state`` under the name ``(kind, name)`` in this call's host transaction
        (a name holds one state at a time: :meth:`take_state` the current one first)."""
        if self.get_state(kind, name) is not None:
            raise IbcError(f"the host already holds a state named {kind}/{name}; take it first")
        self._writable().outputs.append(((kind, name), state))

    def staged_states(self) -> StagedStates:
        """What the running call has added to its host transaction so far."""
        call = self._writable()
        return StagedStates(
            tuple(call.inputs), tuple(s for _n, s in call.outputs), tuple(call.commands)
        )

    def _state_row(self, key: _Name) -> tuple[StateRef, bytes] | None:
        """The committed state named ``key``: its reference and serialised TransactionState."""
        with self._host.engine.connect() as conn:
            row = _GET_STATE.run(conn, {"kind": key[0], "name": key[1]}).fetchone()
        return None if row is None else (StateRef(bytes(row[0]), int(row[1])), bytes(row[2]))

    def get_client(self, client_id: str) -> LightClient | None:
        call = self._host._call
        if call is not None and client_id in call.clients:
            return call.clients[client_id]
        data = self._get_private(_CLIENT, client_id)
        if data is None:
            return None
        client = decode_client(data)
        if hasattr(client, "clock"):
            # A client whose checks need the time (LCP key expiry) reads this host's clock,
            # never the wall clock or a caller's.
            client.clock = self._host.pending_timestamp_ns
        if call is not None:  # the same object for the rest of the call
            call.clients[client_id] = client
        return client

    def set_client(self, client_id: str, client: LightClient) -> None:
        """Store ``client``; unchanged bytes are no write (a replayed update that the client
        took as a no-op must not make a host version)."""
        call = self._writable()
        data = encode_client(client)
        if self._get_private(_CLIENT, client_id) != data:
            call.private[(_CLIENT, client_id)] = data
        call.clients[client_id] = client

    def get_connection(self, connection_id: str) -> ConnectionEnd | None:
        data = self._get_private(_CONNECTION, connection_id)
        return None if data is None else ConnectionEnd.decode(data)

    def set_connection(self, connection_id: str, end: ConnectionEnd) -> None:
        self._set_private(_CONNECTION, connection_id, end.encode())

    def get_channel(self, port_id: str, channel_id: str) -> ChannelEnd | None:
        data = self._get_private(_CHANNEL, f"{port_id}/{channel_id}")
        return None if data is None else ChannelEnd.decode(data)

    def set_channel(self, port_id: str, channel_id: str, end: ChannelEnd) -> None:
        self._set_private(_CHANNEL, f"{port_id}/{channel_id}", end.encode())

    def get_counter(self, name: str) -> int:
        data = self._get_private(_COUNTER, name)
        return 0 if data is None else int.from_bytes(data, "big")

    def set_counter(self, name: str, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**64:
            raise IbcError(f"counter {name!r} must be an unsigned 64-bit integer")
        self._set_private(_COUNTER, name, value.to_bytes(8, "big"))


class TransactionalHandler:
    """The host's :class:`IbcHandler` with every method run as one host call (one version)."""

    def __init__(self, host: CordaIbcHost) -> None:
        self._host = host

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._host.handler, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._host.execute(lambda _store: attribute(*args, **kwargs))

        call.__name__ = name
        call.__doc__ = attribute.__doc__
        return call


class _RecordingHandler(IbcHandler):
    """The host's :class:`IbcHandler`: the same pure ICS-02/03/04 logic, plus a note in the
    running call of each packet sent and acknowledgement written, so that the host records
    their contents with the version that commits them (the Corda ledger has no event log).

    A note is taken only after the handler method returned, i.e. after it wrote its
    commitments into the same call; a call that raises drops its notes with its writes.
    """

    def __init__(self, host: CordaIbcHost, *, router: Router) -> None:
        super().__init__(
            host.store,
            prefix=host.prefix,
            host_height=host.pending_height,
            host_timestamp_ns=host.pending_timestamp_ns,
            router=router,
        )
        self._host = host

    def send_packet(
        self,
        source_port: str,
        source_channel: str,
        timeout_height: Height,
        timeout_timestamp: int,
        data: bytes,
    ) -> Packet:
        packet = super().send_packet(
            source_port, source_channel, timeout_height, timeout_timestamp, data
        )
        self._host.store._writable().sent.append(packet)
        return packet

    def recv_packet(
        self, packet: Packet, proof_commitment: bytes, proof_height: Height
    ) -> bytes | None:
        ack = super().recv_packet(packet, proof_commitment, proof_height)
        if ack is not None:
            self._host.store._writable().acks.append((packet, ack))
        return ack

    def write_acknowledgement(self, packet: Packet, acknowledgement: bytes) -> None:
        super().write_acknowledgement(packet, acknowledgement)
        self._host.store._writable().acks.append((packet, acknowledgement))


class CordaIbcHost:
    """The IBC host run by ``node`` (its operator); see the module docstring.

    Opening creates the host (a notarised genesis, version 1) if the node's database holds none,
    or resumes the one it holds. ``notary`` defaults to the network's default notary (only used
    at genesis: afterwards the host stays with the notary of its state).
    """

    def __init__(
        self,
        node: Node,
        *,
        router: Router | None = None,
        notary: Party | None = None,
        revision_number: int = 0,
        clock: Callable[[], int] = time.time_ns,
        time_tolerance_ns: int = DEFAULT_TIME_TOLERANCE_NS,
        client_factory: ClientFactory | None = None,
    ) -> None:
        if not 0 < 2 * time_tolerance_ns <= DEFAULT_MAX_TIME_WINDOW_NS:
            raise ConfigurationError(
                "the time tolerance must be positive and at most half the window clients accept "
                f"({DEFAULT_MAX_TIME_WINDOW_NS // 2} ns)"
            )
        self.node = node
        self.engine = node.db.engine
        self.revision_number = revision_number
        self._clock = clock
        self._tolerance_us = time_tolerance_ns // 1000
        self._lock = threading.RLock()
        self._nodes = _DbNodeStore(self.engine)
        self._running: tuple[int, _Call] | None = None  # (thread, call) of the running call
        self._attestations: OrderedDict[int, HostStateAttestation] = OrderedDict()
        self._versions: OrderedDict[int, _Version] = OrderedDict()
        host_metadata.create_all(self.engine)
        self.store = HostStore(self)
        with self._lock:
            self._resolve_pending()
            if not self._load():
                self._genesis(notary or node.network.default_notary())
        self.handler: IbcHandler = _RecordingHandler(self, router=router or Router())
        self.ibc = TransactionalHandler(self)
        self.client_factory: ClientFactory = client_factory or default_client_factory(clock)

    # -- what the host is ---------------------------------------------------------------------

    state: StateAndRef
    latest: _Version

    @property
    def host_state(self) -> IbcHostState:
        data = self.state.state.data
        assert isinstance(data, IbcHostState)
        return data

    @property
    def linear_id(self) -> UniqueIdentifier:
        return self.host_state.linear_id

    @property
    def prefix(self) -> bytes:
        """This host's commitment prefix: its host state's linear id."""
        return self.linear_id.id

    @property
    def notary(self) -> Party:
        return self.state.state.notary

    @property
    def version(self) -> int:
        return self.latest.version

    @property
    def time_tolerance_ns(self) -> int:
        """Half-width of each host transaction's time window around the host's timestamp."""
        return self._tolerance_us * 1000

    @property
    def smt_root(self) -> bytes:
        return self.latest.smt_root

    @property
    def timestamp_ns(self) -> int:
        return self.latest.timestamp_ns

    @property
    def height(self) -> Height:
        """This ledger's latest IBC height: ``(revision_number, version)``."""
        return Height(self.revision_number, self.version)

    def pending_height(self) -> Height:
        """The height the running call's writes will have (the latest height outside a call)."""
        call = self._call
        return Height(self.revision_number, call.version if call else self.version)

    def pending_timestamp_ns(self) -> int:
        call = self._call
        return call.timestamp_ns if call else self.timestamp_ns

    def client_state(self) -> CordaClientState:
        """What a counterparty's client of this host must trust (keys, linear id, revision)."""
        return CordaClientState(
            notary_key=self.notary.owning_key,
            operator_key=self.node.party.owning_key,
            linear_id=self.linear_id,
            revision_number=self.revision_number,
        )

    # -- calls --------------------------------------------------------------------------------

    @property
    def _call(self) -> _Call | None:
        """The running call, as the thread running it sees it: another thread (a reader serving
        HTTP while a relayer's call runs) sees only committed versions, never a call's
        uncommitted writes."""
        running = self._running
        if running is None or running[0] != threading.get_ident():
            return None
        return running[1]

    @_call.setter
    def _call(self, call: _Call | None) -> None:
        self._running = None if call is None else (threading.get_ident(), call)

    def execute(self, action: Callable[[HostStore], T]) -> T:
        """Run ``action`` on the store as one IBC state change (one notarised version).

        If ``action`` raises, nothing is recorded. If it wrote nothing, no transaction is made.
        A call made from inside another (an application callback) joins the outer one, so
        several handler calls made in one action (``host.handler.send_packet(...)`` in a loop)
        are batched into one version. Calls from several threads queue on the host's lock.
        """
        with self._lock:
            if self._call is not None:
                return action(self.store)
            self._resolve_pending()
            call = _Call(self.version + 1, max(self._clock(), self.timestamp_ns + 1))
            self._call = call
            try:
                result = action(self.store)
                if call.has_writes():
                    self._advance(call)
            finally:
                self._call = None
                self._nodes.discard()
            return result

    def _advance(self, call: _Call) -> None:
        changes = {key_for_path(path): value for path, value in call.values.items()}
        tree = SparseMerkleTree(self._nodes, self.smt_root)
        root = tree.update(changes)
        current = self.host_state
        state = IbcHostState(
            current.operator, current.linear_id, call.version, root, call.timestamp_ns
        )
        stx = self._build(state, HostAdvance(call.version), self.notary, self.state.ref, call)
        self._notarise_and_record(stx, call, state)

    def _genesis(self, notary: Party) -> None:
        timestamp = self._clock()
        state = IbcHostState(
            self.node.party, UniqueIdentifier(), GENESIS_VERSION, EMPTY_ROOT, timestamp
        )
        stx = self._build(state, HostGenesis(), notary, None)
        self._notarise_and_record(stx, _Call(GENESIS_VERSION, timestamp), state)
        log.info("ibc host %s created at version %d", state.linear_id, GENESIS_VERSION)

    def _build(
        self,
        state: IbcHostState,
        command: HostGenesis | HostAdvance,
        notary: Party,
        previous: StateRef | None,
        call: _Call | None = None,
    ) -> SignedTransaction:
        """The host transaction: the host state first (input 0, output 0: the host contract's
        rule, which light clients rely on), then the states and commands ``call`` added."""
        micros = state.timestamp_ns // 1000
        wtx = WireTransaction.create(
            privacy_salt=random_bytes(32),
            inputs=([previous] if previous else []) + (call.inputs if call else []),
            outputs=[TransactionState(state, HOST_CONTRACT, notary)]
            + ([output for _name, output in call.outputs] if call else []),
            commands=[Command(command, (self.node.party.owning_key,))]
            + (call.commands if call else []),
            notary=notary,
            time_window=TimeWindow(micros - self._tolerance_us, micros + self._tolerance_us),
            network_parameters_hash=self.node.network.parameters.hash(),
        )
        stx = self.node.sign(SignedTransaction(wtx, ()))
        # Our own contract first: a change it refuses is never sent to the notary.
        self.node.ledger_transaction(stx).verify(self.node.network.parameters)
        return stx

    def _notarise_and_record(
        self, stx: SignedTransaction, call: _Call, state: IbcHostState
    ) -> None:
        payload = _encode_pending(stx, call, state)
        with write_transaction(self.engine) as conn:
            self._nodes.flush(conn)
            conn.execute(pending.insert().values(id=_PENDING_ID, data=payload))
        try:
            signature = self.node.notarise(stx)
        except TransportError:
            log.warning("notary unreachable for host version %d; kept pending", state.version)
            raise
        except BaseException:
            self._drop_pending()
            raise
        self._finish(stx.with_signatures(signature), payload)

    def _finish(self, stx: SignedTransaction, payload: bytes) -> None:
        change = _decode_pending(payload)
        version, root, timestamp = change.version, change.root, change.timestamp_ns
        with write_transaction(self.engine) as conn:
            self.node.db.record(stx, conn=conn)
            for path, value in change.values:
                if value is None:
                    _DELETE_VALUE.run(conn, {"path": path})
                else:
                    _SET_VALUE.run(conn, {"path": path, "value": value})
            _SET_PRIVATE.run_many(
                conn, [{"kind": k, "name": n, "data": d} for k, n, d in change.private]
            )
            _INSERT_VERSION.run(
                conn,
                {
                    "version": version,
                    "tx_id": stx.id,
                    "output_index": 0,
                    "smt_root": root,
                    "timestamp_ns": timestamp,
                },
            )
            if change.sent:
                conn.execute(sent_packets.insert(), [_sent_row(p, version) for p in change.sent])
            if change.acks:
                conn.execute(
                    written_acks.insert(), [_ack_row(p, a, version) for p, a in change.acks]
                )
            _DELETE_STATE.run_many(conn, [{"kind": k, "name": n} for k, n in change.taken])
            _SET_STATE.run_many(
                conn,
                [
                    {
                        "kind": k,
                        "name": n,
                        "tx_id": stx.id,
                        "output_index": index,
                        "data": serialize(stx.tx.outputs[index]),
                    }
                    for k, n, index in change.named
                ],
            )
            conn.execute(pending.delete())
        self.state = stx.tx.out_ref(0)
        self.latest = _Version(version, stx.id, 0, root, timestamp)
        log.info("ibc host version %d recorded (tx %s, root %s)", version, stx.id.hex(), root.hex())
        if change.observers:
            self._deliver(stx, change.observers)
        for data in change.after:
            later = deserialize(data, SignedTransaction)
            try:
                self.node.finalise(later)  # its checkpoint retries an unreachable recipient
            except KakehashiError as exc:
                log.error(
                    "transaction %s after host version %d failed: %s", later.id.hex(), version, exc
                )

    def send_version(self, version: int, parties: Sequence[Party]) -> None:
        """Send the transaction of recorded host version ``version`` to ``parties`` (they verify
        it, fetch its back-chain from this node and record it), as :meth:`HostStore.send_to`
        does for a call's own version."""
        stx = self.node.db.get_transaction(self._version(version).tx_id)
        if stx is None:
            raise ConfigurationError(f"host version {version}'s transaction is not in the vault")
        for party in parties:
            self.node.network.party(party.name)
        names = sorted({str(p.name) for p in parties} - {str(self.node.name)})
        if names:
            self._deliver(stx, names)

    def _deliver(self, stx: SignedTransaction, recipients: Sequence[str]) -> None:
        """Send a recorded host transaction to ``recipients`` through the node's finality
        checkpoint: they may fetch its back-chain, and a recipient unreachable now is retried
        by :meth:`~kakehashi.ledgers.corda.node.node.Node.recover`. The version is recorded
        already, so a failed delivery never undoes it (it is logged)."""
        self.node.db.save_checkpoint(stx, list(recipients))
        undelivered = []
        for recipient in recipients:
            try:
                self.node.messenger.request(self.node.network.party(recipient), RecordRequest(stx))
            except TransportError as exc:
                log.warning("host tx %s not delivered to %s yet: %s", stx.id.hex(), recipient, exc)
                undelivered.append(recipient)
            except KakehashiError as exc:
                log.error("%s refused host tx %s: %s", recipient, stx.id.hex(), exc)
        self.node.db.finish_checkpoint(stx, undelivered)

    def _drop_pending(self) -> None:
        with write_transaction(self.engine) as conn:
            conn.execute(pending.delete())

    def _resolve_pending(self) -> None:
        """Finish or drop a change whose notarisation was interrupted (crash, notary down)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(pending.c.data)).first()
        if row is None:
            return
        payload = bytes(row.data)
        stx = deserialize(cbor2.loads(payload)["stx"], SignedTransaction)
        try:
            signature = self.node.notarise(stx)
        except TransportError as exc:
            raise NotaryError(
                f"the host's change to version {_decode_pending(payload).version} awaits the "
                f"notary, which is unreachable ({exc}); retry when it is back"
            ) from exc
        except KakehashiError as exc:
            log.warning("dropping the host change the notary refused: %s", exc)
            self._drop_pending()
            return
        self._finish(stx.with_signatures(signature), payload)

    def _load(self) -> bool:
        """Load the latest version; False when this database holds no host yet."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(versions).where(
                    versions.c.version == select(func.max(versions.c.version)).scalar_subquery()
                )
            ).first()
        mine = [
            s
            for s in self.node.db.query(IbcHostState)
            if isinstance(s.state.data, IbcHostState) and s.state.data.operator == self.node.party
        ]
        if row is None and not mine:
            return False
        if row is None or len(mine) != 1:
            raise ConfigurationError(
                "the node's vault and its IBC host tables disagree "
                f"({len(mine)} unconsumed host states); restore the database from a backup"
            )
        latest = _Version(
            row.version, bytes(row.tx_id), row.output_index, bytes(row.smt_root), row.timestamp_ns
        )
        if mine[0].ref != StateRef(latest.tx_id, latest.output_index):
            raise ConfigurationError(
                f"the vault's host state {mine[0].ref} is not version {latest.version}'s output"
            )
        self.state, self.latest = mine[0], latest
        return True

    # -- messages (what a relayer submits) -----------------------------------------------------

    def submit(self, batch: Sequence[msgs.Msg]) -> Submission:
        """Run ``batch`` (ICS-26 messages, in order) as ONE host version: every message applies
        or, if any raises, none does (the error is the first message's that failed, and nothing
        is recorded). ``MsgCreateClient`` builds its client with :attr:`client_factory`."""
        if not batch:
            raise IbcError("an empty batch of IBC messages")
        with self._lock:
            before = self.version
            values = self.execute(
                lambda _store: [msgs.apply(self.handler, m, self.client_factory) for m in batch]
            )
            tx_id = self.state.ref.txhash if self.version != before else b""
            return Submission(tuple(values), self.height, tx_id)

    def client_latest_height(self, client_id: str) -> Height:
        """The latest height of this host's client ``client_id`` (IbcError when none)."""
        return self.handler.client(client_id).latest_height()

    def connection_end(self, connection_id: str) -> ConnectionEnd | None:
        """The latest end of ``connection_id`` (None: none)."""
        return self.store.get_connection(connection_id)

    def channel_end(self, port_id: str, channel_id: str) -> ChannelEnd | None:
        """The latest end of ``port_id/channel_id`` (None: none)."""
        return self.store.get_channel(port_id, channel_id)

    # -- packets and acknowledgements (what a relayer needs) ------------------------------------

    def sent_packets(self, port_id: str, channel_id: str, from_sequence: int = 1) -> list[Packet]:
        """Packets sent on ``port_id/channel_id`` whose ICS-04 packet commitment the host holds
        at its latest version (neither acknowledged nor timed out), sequence ≥
        ``from_sequence``, in sequence order."""
        rows = self._still_committed(_SENT_STILL_COMMITTED, port_id, channel_id, from_sequence)
        return [Packet.decode(bytes(packet)) for (packet,) in rows]

    def written_acks(
        self, port_id: str, channel_id: str, from_sequence: int = 1
    ) -> list[tuple[Packet, bytes]]:
        """(packet, acknowledgement) written on ``port_id/channel_id`` (this host is the
        packets' destination) whose ack commitment the host holds at its latest version,
        sequence ≥ ``from_sequence``, in sequence order. ICS-04 never deletes an ack
        commitment, so this is every acknowledgement written there."""
        rows = self._still_committed(_ACKS_STILL_COMMITTED, port_id, channel_id, from_sequence)
        return [(Packet.decode(bytes(packet)), bytes(ack)) for packet, ack in rows]

    def _still_committed(
        self, query: SQL, port_id: str, channel_id: str, from_sequence: int
    ) -> list[Any]:
        """Rows of ``query`` (:data:`_SENT_STILL_COMMITTED`, :data:`_ACKS_STILL_COMMITTED`): one
        channel's records whose commitment the current store still holds (one statement, so
        one consistent snapshot; run on the DBAPI cursor, as every frequent host query)."""
        params = {"port_id": port_id, "channel_id": channel_id, "sequence": from_sequence}
        with self.engine.connect() as conn:
            return list(query.run(conn, params).fetchall())

    # -- proofs -------------------------------------------------------------------------------

    def _version(self, version: int) -> _Version:
        """The row of host version ``version``. A recorded version never changes (its row is
        written once, with the notarised transaction): the latest is the one this host holds
        in memory, older ones are remembered once read (the newest
        :data:`_REMEMBERED_VERSIONS`). A version not recorded yet is read every time."""
        latest = self.latest
        if version == latest.version:
            return latest
        known = self._versions.get(version)
        if known is not None:
            return known
        with self.engine.connect() as conn:
            row = _GET_VERSION.run(conn, {"version": version}).fetchone()
        if row is None:
            raise IbcError(
                f"host version {version} does not exist (latest {self.version}, first "
                f"{GENESIS_VERSION})"
            )
        number, tx_id, output_index, smt_root, timestamp_ns = row
        known = _Version(number, bytes(tx_id), output_index, bytes(smt_root), timestamp_ns)
        with self._lock:
            self._versions[version] = known
            if len(self._versions) > _REMEMBERED_VERSIONS:
                self._versions.popitem(last=False)
        return known

    def _height(self, height: Height | int) -> int:
        if isinstance(height, Height):
            if height.revision_number != self.revision_number:
                raise IbcError(f"height {height} is not of revision {self.revision_number}")
            return height.revision_height
        return height

    def _attestation(self, version: int) -> tuple[HostStateAttestation, _Version]:
        row = self._version(version)
        cached = self._attestations.get(version)
        if cached is not None:
            return cached, row
        stx = self.node.db.get_transaction(row.tx_id)
        if stx is None:
            raise ConfigurationError(
                f"host transaction {row.tx_id.hex()} is missing from the vault"
            )
        shown = {ComponentGroup.INPUTS, ComponentGroup.NOTARY, ComponentGroup.TIMEWINDOW}
        tear_off = stx.tx.filtered(
            lambda group, index, _data: (
                group in shown or (group == ComponentGroup.OUTPUTS and index == row.output_index)
            )
        )
        notary_key = stx.tx.outputs[row.output_index].notary.owning_key
        signatures = {sig.by: sig for sig in stx.sigs}
        attestation = HostStateAttestation(
            signatures[notary_key], signatures[self.node.party.owning_key], tear_off
        )
        self._attestations[version] = attestation
        if len(self._attestations) > _REMEMBERED_VERSIONS:
            self._attestations.popitem(last=False)
        return attestation, row

    def attestation(self, height: Height | int | None = None) -> bytes:
        """Header for a counterparty's client: proof of host version ``height`` (default latest)."""
        version = self.version if height is None else self._height(height)
        with self._lock:
            return serialize(self._attestation(version)[0])

    def prove(self, path: bytes, height: Height | int | None = None) -> bytes:
        """Proof of ``path``'s value (or absence) at ``height`` (default latest): canonical bytes
        of a :class:`~kakehashi.lightclients.corda.CommitmentProof`."""
        version = self.version if height is None else self._height(height)
        with self._lock:
            attestation, row = self._attestation(version)
            proof = SparseMerkleTree(self._nodes, row.smt_root).prove(key_for_path(path))
        return serialize(CommitmentProof(attestation, proof))

    def prove_value(
        self, path: bytes, height: Height | int | None = None
    ) -> tuple[bytes, bytes | None]:
        """:meth:`prove` and :meth:`value_at` of ``path`` at ``height`` (default latest), from
        one walk of the tree."""
        version = self.version if height is None else self._height(height)
        with self._lock:
            attestation, row = self._attestation(version)
            tree = SparseMerkleTree(self._nodes, row.smt_root)
            proof, value = tree.prove_value(key_for_path(path))
        return serialize(CommitmentProof(attestation, proof)), value

    def value_at(self, path: bytes, height: Height | int | None = None) -> bytes | None:
        """The value under ``path`` at ``height`` (default latest), read from the tree."""
        version = self.version if height is None else self._height(height)
        row = self._version(version)
        with self._lock:
            return SparseMerkleTree(self._nodes, row.smt_root).get(key_for_path(path))


def _sent_row(packet: Packet, version: int) -> dict[str, object]:
    return {
        "port_id": packet.source_port,
        "channel_id": packet.source_channel,
        "sequence": packet.sequence,
        "version": version,
        "path": paths.packet_commitment_path(
            packet.source_port, packet.source_channel, packet.sequence
        ),
        "commitment": packet_commitment_of(packet),
        "packet": packet.encode(),
    }


def _ack_row(packet: Packet, ack: bytes, version: int) -> dict[str, object]:
    return {
        "port_id": packet.destination_port,
        "channel_id": packet.destination_channel,
        "sequence": packet.sequence,
        "version": version,
        "path": paths.ack_path(
            packet.destination_port, packet.destination_channel, packet.sequence
        ),
        "commitment": ack_commitment(ack),
        "packet": packet.encode(),
        "acknowledgement": ack,
    }


@dataclass(frozen=True)
class _Pending:
    """A change being notarised, as its pending record keeps it."""

    values: list[tuple[bytes, bytes | None]]
    private: list[tuple[str, str, bytes]]
    version: int
    root: bytes
    timestamp_ns: int
    sent: list[Packet]
    acks: list[tuple[Packet, bytes]]
    taken: list[tuple[str, str]]  # named states consumed
    named: list[tuple[str, str, int]]  # named states produced, with their output index
    observers: list[str] = field(default_factory=list)  # parties the transaction is sent to
    after: list[bytes] = field(default_factory=list)  # serialised transactions to finalise then


def _encode_pending(stx: SignedTransaction, call: _Call, state: IbcHostState) -> bytes:
    return bytes(
        cbor2.dumps(
            {
                "stx": serialize(stx),
                "values": sorted(call.values.items()),
                "private": sorted([k, n, d] for (k, n), d in call.private.items()),
                "version": state.version,
                "root": state.smt_root,
                "timestamp_ns": state.timestamp_ns,
                "sent": [packet.encode() for packet in call.sent],
                "acks": [[packet.encode(), ack] for packet, ack in call.acks],
                "taken": sorted([k, n] for k, n in call.taken),
                "observers": sorted(call.observers),
                "after": [serialize(stx) for stx in call.after],
                # output 0 is the host state; the call's outputs follow in order
                "named": [
                    [name[0], name[1], 1 + position]
                    for position, (name, _state) in enumerate(call.outputs)
                    if name is not None
                ],
            },
            canonical=True,
        )
    )


def _decode_pending(payload: bytes) -> _Pending:
    raw = cbor2.loads(payload)
    return _Pending(
        values=[(bytes(p), None if v is None else bytes(v)) for p, v in raw["values"]],
        private=[(str(k), str(n), bytes(d)) for k, n, d in raw["private"]],
        version=int(raw["version"]),
        root=bytes(raw["root"]),
        timestamp_ns=int(raw["timestamp_ns"]),
        # a record written before the host kept packets has neither key
        sent=[Packet.decode(bytes(p)) for p in raw.get("sent", [])],
        acks=[(Packet.decode(bytes(p)), bytes(a)) for p, a in raw.get("acks", [])],
        # nor one written before calls could add Corda states
        taken=[(str(k), str(n)) for k, n in raw.get("taken", [])],
        named=[(str(k), str(n), int(i)) for k, n, i in raw.get("named", [])],
        observers=[str(name) for name in raw.get("observers", [])],
        after=[bytes(stx) for stx in raw.get("after", [])],
    )
