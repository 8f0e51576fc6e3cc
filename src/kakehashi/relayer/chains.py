"""The relayer's one view of a ledger (Hermes' ``ChainEndpoint``): queries, proofs, discovery of
pending work, and the IBC messages a relayer submits.

A relayer never touches a ledger except through a :class:`ChainEndpoint`. Two implementations:

* :class:`EvmEndpoint` over :class:`~kakehashi.ibc.evm_host.EvmIbcHost` (the Vyper handler on
  any EVM node): heights are blocks, client messages are RLP headers, proofs are
  ``eth_getProof`` answers, and sent packets / written acknowledgements are found in the
  handler's ``SendPacket`` / ``WriteAcknowledgement`` logs (``eth_getLogs``).
* :class:`CordaEndpoint` over :class:`~kakehashi.ibc.corda_host.CordaIbcHost`: heights are host
  versions, client messages are host-state attestations, proofs are commitment proofs, and
  sent packets / written acknowledgements are the ones the host records with the versions that
  committed them (:meth:`~kakehashi.ibc.corda_host.CordaIbcHost.sent_packets`,
  :meth:`~kakehashi.ibc.corda_host.CordaIbcHost.written_acks`).

**Stateless.** Every answer is read from the ledger when asked; an endpoint keeps no record of
what it relayed. Whatever a log says is checked against the ledger's commitments before it is
believed: a packet is pending only while its commitment is in the source's store.

**Two relayers on one path.** A submission refused because the work is already done (the
packet was received, the acknowledgement or timeout already settled the packet) returns
:class:`AlreadyRelayed` instead of raising. The endpoint decides that by reading the ledger
after the refusal, not by parsing the error text: a refusal for any other reason (a bad proof,
a stale client) still raises.

The ICS-04 relayer algorithms that combine two endpoints are plain functions at the end:
:func:`unreceived_packets`, :func:`timed_out_packets`, :func:`unrelayed_acks`.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from eth_abi import decode as abi_decode
from eth_utils import keccak

from kakehashi.errors import IbcError, KakehashiError, TransactionRevertedError
from kakehashi.ibc import host as paths
from kakehashi.ibc import msgs
from kakehashi.ibc.commitment import RECEIPT, ack_commitment, packet_commitment_of
from kakehashi.ibc.corda_host.api import CordaHostApi
from kakehashi.ibc.evm_host import EvmIbcHost
from kakehashi.ibc.types import ChannelEnd, ConnectionEnd, Height, Order, Packet
from kakehashi.ledgers.evm import client
from kakehashi.lightclients.corda import verify_host_state

__all__ = [
    "AlreadyRelayed",
    "ChainEndpoint",
    "CordaEndpoint",
    "EvmEndpoint",
    "Failed",
    "Outcome",
    "RelayOutcome",
    "Submitted",
    "WrittenAck",
    "is_timed_out",
    "pending_packets",
    "timed_out_packets",
    "unreceived_packets",
    "unrelayed_acks",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


# ---------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class Submitted(Generic[T]):
    """The ledger accepted the message: ``value`` is what it returned (the acknowledgement a
    receive wrote, the height an update proved), ``height`` the ledger height holding the
    change, ``tx_id`` the transaction (EVM transaction hash, Corda host transaction id)."""

    value: T
    height: Height
    tx_id: bytes = b""


@dataclass(frozen=True, slots=True)
class AlreadyRelayed:
    """The ledger refused the message because the work is already done (another relayer did
    it first): nothing changed and there is nothing left to do for this packet."""

    reason: str


@dataclass(frozen=True, slots=True)
class Failed:
    """The ledger refused the message for a reason other than "already done" (a proof that does
    not verify, a stale client...): ``error`` is the ledger's typed error. Only a batch
    (:meth:`ChainEndpoint.submit`) answers this; the one-message methods raise it."""

    error: KakehashiError


RelayOutcome = Submitted[T] | AlreadyRelayed
Outcome = Submitted[Any] | AlreadyRelayed | Failed


@dataclass(frozen=True, slots=True)
class WrittenAck:
    """An acknowledgement written on this ledger (the packet's destination), with the packet."""

    packet: Packet
    acknowledgement: bytes


# ---------------------------------------------------------------------------- the interface


@runtime_checkable
class ChainEndpoint(Protocol):
    """One ledger as a relayer sees it. ``height`` None means the latest height."""

    name: str

    # -- chain ---------------------------------------------------------------------------------
    @property
    def prefix(self) -> bytes:
        """This ledger's commitment prefix (what the counterparty verifies paths under)."""
        ...

    def latest_height(self) -> Height: ...

    def timestamp_at(self, height: Height) -> int:
        """This ledger's time at ``height``, in nanoseconds (what timeouts compare against)."""
        ...

    def client_update_message(self, height: Height) -> bytes:
        """What the counterparty's client of this ledger is updated with to reach ``height``."""
        ...

    # -- state and proofs ----------------------------------------------------------------------
    def prove(self, path: bytes, height: Height) -> bytes:
        """Proof of ``path``'s value, or of its absence, at ``height``."""
        ...

    def value(self, path: bytes, height: Height | None = None) -> bytes | None:
        """The 32-byte value under ``path`` (None: absent)."""
        ...

    def prove_value(self, path: bytes, height: Height) -> tuple[bytes, bytes | None]:
        """:meth:`prove` and :meth:`value` of ``path`` at ``height`` in one read."""
        ...

    def prove_values(
        self, paths: Sequence[bytes], height: Height
    ) -> list[tuple[bytes, bytes | None]]:
        """:meth:`prove_value` of every path in ``paths`` at ``height`` (in as few reads as the
        ledger allows)."""
        ...

    def values(self, paths: Sequence[bytes], height: Height | None = None) -> list[bytes | None]:
        """:meth:`value` of every path in ``paths`` at one height (in as few reads as the
        ledger allows)."""
        ...

    def connection(
        self, connection_id: str, height: Height | None = None
    ) -> ConnectionEnd | None: ...

    def channel(
        self, port_id: str, channel_id: str, height: Height | None = None
    ) -> ChannelEnd | None: ...

    # -- discovery -----------------------------------------------------------------------------
    def packets_sent(self, port_id: str, channel_id: str, from_sequence: int = 1) -> list[Packet]:
        """Packets sent on ``port_id/channel_id`` whose commitment is still in the store
        (neither acknowledged nor timed out), sequence ≥ ``from_sequence``, in order."""
        ...

    def acks_written(
        self, port_id: str, channel_id: str, from_sequence: int = 1
    ) -> list[WrittenAck]:
        """Acknowledgements committed on ``port_id/channel_id`` (this ledger is the packets'
        destination), sequence ≥ ``from_sequence``, in order."""
        ...

    def is_received(
        self, port_id: str, channel_id: str, sequence: int, height: Height | None = None
    ) -> bool:
        """ICS-04: packet ``sequence`` was received on ``port_id/channel_id`` (this ledger is
        its destination): its receipt exists (UNORDERED) or nextSequenceRecv > sequence
        (ORDERED)."""
        ...

    def received(
        self,
        port_id: str,
        channel_id: str,
        sequences: Sequence[int],
        height: Height | None = None,
    ) -> set[int]:
        """The sequences among ``sequences`` that :meth:`is_received` holds for, read at one
        height in one go."""
        ...

    def next_sequence_recv(
        self, port_id: str, channel_id: str, height: Height | None = None
    ) -> int: ...

    def is_settled(self, packet: Packet) -> bool:
        """The packet's commitment is gone from this ledger, its source."""
        ...

    def unsettled(self, packets: Sequence[Packet]) -> list[Packet]:
        """The packets among ``packets`` that are not :meth:`is_settled`, in order, read at
        one height in one go."""
        ...

    def ordering(self, port_id: str, channel_id: str) -> Order:
        """The channel's ordering."""
        ...

    def client_latest_height(self, client_id: str) -> Height:
        """The latest height this ledger's client ``client_id`` (of the counterparty) holds."""
        ...

    # -- submission ----------------------------------------------------------------------------
    def submit(self, batch: Sequence[msgs.Msg]) -> list[Outcome]:
        """Submit ``batch`` in order; one outcome per message (Submitted, AlreadyRelayed or
        Failed). Never raises for a refusal by the ledger."""
        ...

    def update_client(self, client_id: str, message: bytes) -> Submitted[Height]: ...

    def recv_packet(
        self, packet: Packet, proof: bytes, proof_height: Height
    ) -> RelayOutcome[bytes | None]: ...

    def acknowledge_packet(
        self, packet: Packet, acknowledgement: bytes, proof: bytes, proof_height: Height
    ) -> RelayOutcome[None]: ...

    def timeout_packet(
        self, packet: Packet, proof: bytes, proof_height: Height, next_sequence_recv: int = 0
    ) -> RelayOutcome[None]: ...


# ---------------------------------------------------------------------------- shared logic


def _commitment_path(packet: Packet) -> bytes:
    return paths.packet_commitment_path(packet.source_port, packet.source_channel, packet.sequence)


class _PacketQueries(ABC):
    """The ICS-04 receive-side queries both endpoints answer the same way from their store.

    **Facts that never change are remembered** (a cache, never state the relayer depends on: a
    new endpoint reads them again): a packet received at height ``h`` stays received at every
    later height (receipts are never deleted, ``nextSequenceRecv`` only grows); a packet whose
    commitment left its source (acknowledged or timed out) never comes back (sequences are
    never reused); a channel's ordering never changes. So a relayer's discovery reads only the
    packets still in flight, however long the channel's history.
    """

    name: str

    @abstractmethod
    def value(self, path: bytes, height: Height | None = None) -> bytes | None: ...

    @abstractmethod
    def channel(
        self, port_id: str, channel_id: str, height: Height | None = None
    ) -> ChannelEnd | None: ...

    @abstractmethod
    def latest_height(self) -> Height: ...

    def _facts(self) -> _Facts:
        facts: _Facts | None = getattr(self, "_cached_facts", None)
        if facts is None:
            facts = _Facts()
            self._cached_facts = facts
        return facts

    def ordering(self, port_id: str, channel_id: str) -> Order:
        """The channel's ordering (read once: it never changes)."""
        facts = self._facts()
        key = (port_id, channel_id)
        order = facts.ordering.get(key)
        if order is None:
            end = self.channel(port_id, channel_id)
            if end is None:
                raise IbcError(f"{self.name} has no channel {port_id}/{channel_id}")
            order = facts.ordering[key] = end.ordering
        return order

    def next_sequence_recv(
        self, port_id: str, channel_id: str, height: Height | None = None
    ) -> int:
        value = self.value(paths.next_sequence_recv_path(port_id, channel_id), height)
        return 0 if value is None else int.from_bytes(value, "big")

    def values(self, paths: Sequence[bytes], height: Height | None = None) -> list[bytes | None]:
        """:meth:`value` of each path (one read each; an endpoint that can batch overrides)."""
        return [self.value(path, height) for path in paths]

    def is_received(
        self, port_id: str, channel_id: str, sequence: int, height: Height | None = None
    ) -> bool:
        return sequence in self.received(port_id, channel_id, (sequence,), height)

    def received(
        self,
        port_id: str,
        channel_id: str,
        sequences: Sequence[int],
        height: Height | None = None,
    ) -> set[int]:
        """The sequences among ``sequences`` received on ``port_id/channel_id`` at ``height``
        (latest: None): remembered ones without a read, the others from one read of the
        channel's ``nextSequenceRecv`` (ORDERED) or of every receipt (:meth:`values`)."""
        facts = self._facts()
        done: set[int] = set()
        unknown: list[int] = []
        for sequence in sequences:
            known = facts.received.get((port_id, channel_id, sequence))
            if known is not None and (height is None or known <= height):
                done.add(sequence)
            else:
                unknown.append(sequence)
        if not unknown:
            return done
        at = height if height is not None else self.latest_height()
        if self.ordering(port_id, channel_id) is Order.ORDERED:
            next_recv = self.next_sequence_recv(port_id, channel_id, at)
            newly = [sequence for sequence in unknown if next_recv > sequence]
        else:
            receipts = self.values(
                [paths.packet_receipt_path(port_id, channel_id, seq) for seq in unknown], at
            )
            newly = [seq for seq, value in zip(unknown, receipts, strict=True) if value == RECEIPT]
        for sequence in newly:
            facts.received[(port_id, channel_id, sequence)] = at
        return done | set(newly)

    def is_settled(self, packet: Packet) -> bool:
        """The packet's commitment is gone from this ledger, its source (acknowledged or timed
        out), at the latest height."""
        return not self.unsettled((packet,))

    def unsettled(self, packets: Sequence[Packet]) -> list[Packet]:
        """The packets among ``packets`` whose commitment this ledger (their source) still
        holds at the latest height, in order: remembered settled ones without a read, the
        others' commitments in one read (:meth:`values`)."""
        facts = self._facts()
        unknown = [
            p for p in packets if (p.source_port, p.source_channel, p.sequence) not in facts.settled
        ]
        if not unknown:
            return []
        stored = self.values([_commitment_path(p) for p in unknown])
        live = []
        for packet, value in zip(unknown, stored, strict=True):
            if value == packet_commitment_of(packet):
                live.append(packet)
            else:
                facts.settled.add((packet.source_port, packet.source_channel, packet.sequence))
        return live

    def _learn(self, batch: Sequence[msgs.Msg], outcomes: Sequence[Outcome]) -> None:
        """Remember what this ledger just accepted and can never undo: a packet it received at
        the height holding the receive; a packet of its own whose commitment an
        acknowledgement or a timeout removed. (A refusal teaches nothing.)"""
        facts = self._facts()
        for msg, outcome in zip(batch, outcomes, strict=True):
            if not isinstance(outcome, Submitted):
                continue
            if isinstance(msg, msgs.MsgRecvPacket):
                p = msg.packet
                key = (p.destination_port, p.destination_channel, p.sequence)
                known = facts.received.get(key)
                if known is None or outcome.height < known:
                    facts.received[key] = outcome.height
            elif isinstance(msg, msgs.MsgAcknowledgement | msgs.MsgTimeout):
                p = msg.packet
                facts.settled.add((p.source_port, p.source_channel, p.sequence))


@dataclass
class _Facts:
    ordering: dict[tuple[str, str], Order] = field(default_factory=dict)
    received: dict[tuple[str, str, int], Height] = field(default_factory=dict)
    settled: set[tuple[str, str, int]] = field(default_factory=set)
    timestamps: dict[Height, int] = field(default_factory=dict)


def _settled(endpoint: ChainEndpoint, packet: Packet) -> bool:
    """The packet's commitment is gone from its source (acknowledged or timed out)."""
    return endpoint.is_settled(packet)


def _already_done(endpoint: ChainEndpoint, msg: msgs.Msg) -> str | None:
    """Why ``msg`` needs no submission any more (another relayer did the work), read from the
    ledger; None when it still does."""
    if isinstance(msg, msgs.MsgRecvPacket):
        packet = msg.packet
        if endpoint.is_received(
            packet.destination_port, packet.destination_channel, packet.sequence
        ):
            return f"packet {packet.sequence} was already received on {endpoint.name}"
    elif isinstance(msg, msgs.MsgAcknowledgement | msgs.MsgTimeout):
        packet = msg.packet
        if _settled(endpoint, packet):
            return (
                f"packet {packet.sequence} on {packet.source_port}/{packet.source_channel} was "
                f"already acknowledged or timed out on {endpoint.name}"
            )
    return None


def _refused(
    endpoint: ChainEndpoint, msg: msgs.Msg, exc: KakehashiError
) -> AlreadyRelayed | Failed:
    reason = _already_done(endpoint, msg)
    if reason is None:
        log.info("%s refused %s: %s", endpoint.name, type(msg).__name__, exc)
        return Failed(exc)
    log.info("%s: already relayed (%s); refusal was: %s", endpoint.name, reason, exc)
    return AlreadyRelayed(reason)


class _OneMessage(ABC):
    """The one-message methods of a :class:`ChainEndpoint`, over its :meth:`submit`."""

    @abstractmethod
    def submit(self, batch: Sequence[msgs.Msg]) -> list[Outcome]: ...

    def _one(self, msg: msgs.Msg) -> Any:
        outcome = self.submit([msg])[0]
        if isinstance(outcome, Failed):
            raise outcome.error
        return outcome

    def update_client(self, client_id: str, message: bytes) -> Submitted[Height]:
        outcome = self._one(msgs.MsgUpdateClient(client_id, message))
        if not isinstance(outcome, Submitted):
            raise IbcError(f"the update of client {client_id} was not applied: {outcome}")
        return outcome

    def recv_packet(
        self, packet: Packet, proof: bytes, proof_height: Height
    ) -> RelayOutcome[bytes | None]:
        outcome: RelayOutcome[bytes | None] = self._one(
            msgs.MsgRecvPacket(packet, proof, proof_height)
        )
        return outcome

    def acknowledge_packet(
        self, packet: Packet, acknowledgement: bytes, proof: bytes, proof_height: Height
    ) -> RelayOutcome[None]:
        outcome: RelayOutcome[None] = self._one(
            msgs.MsgAcknowledgement(packet, acknowledgement, proof, proof_height)
        )
        return outcome

    def timeout_packet(
        self, packet: Packet, proof: bytes, proof_height: Height, next_sequence_recv: int = 0
    ) -> RelayOutcome[None]:
        outcome: RelayOutcome[None] = self._one(
            msgs.MsgTimeout(packet, proof, proof_height, next_sequence_recv)
        )
        return outcome


# ---------------------------------------------------------------------------- EVM


class EvmEndpoint(_OneMessage, _PacketQueries):
    """:class:`ChainEndpoint` over the Vyper IBC handler (:class:`EvmIbcHost`).

    ``from_block``: the first block whose logs are searched (the handler's deployment block);
    each discovery call reads the logs from there with ``eth_getLogs`` and keeps the entries
    the handler's storage still commits to at one block.
    """

    def __init__(self, ibc: EvmIbcHost, *, name: str = "evm", from_block: int = 0) -> None:
        self.ibc = ibc
        self.name = name
        self.from_block = from_block

    @property
    def prefix(self) -> bytes:
        return self.ibc.prefix

    def _block(self, height: Height | None) -> int | str:
        return "latest" if height is None else height.revision_height

    # -- chain ---------------------------------------------------------------------------------

    def latest_height(self) -> Height:
        return self.ibc.height()

    def timestamp_at(self, height: Height) -> int:
        return self.ibc.timestamp_ns(height.revision_height)

    def client_update_message(self, height: Height) -> bytes:
        """The block header (RLP) at ``height``: what a QBFT client of this chain verifies."""
        return self.ibc.header(height.revision_height)

    # -- state and proofs ----------------------------------------------------------------------

    def prove(self, path: bytes, height: Height) -> bytes:
        return self.ibc.prove(path, height.revision_height)

    def prove_value(self, path: bytes, height: Height) -> tuple[bytes, bytes | None]:
        return self.ibc.prove_value(path, height.revision_height)

    def prove_values(
        self, paths: Sequence[bytes], height: Height
    ) -> list[tuple[bytes, bytes | None]]:
        """Every proof from one ``eth_getProof`` naming all the paths' slots."""
        return self.ibc.prove_values(paths, height.revision_height)

    def value(self, path: bytes, height: Height | None = None) -> bytes | None:
        value = self.ibc.commitment(path, self._block(height))
        return None if value == bytes(32) else value

    def values(self, paths: Sequence[bytes], height: Height | None = None) -> list[bytes | None]:
        """Every value from one JSON-RPC batch of ``eth_getStorageAt``, at one block."""
        if not paths:
            return []
        block = self._block(height)
        if block == "latest":  # one block for the whole batch, whatever is mined meanwhile
            block = self.latest_height().revision_height
        stored = self.ibc.commitments(paths, block)
        return [None if value == bytes(32) else value for value in stored]

    def connection(self, connection_id: str, height: Height | None = None) -> ConnectionEnd | None:
        return self.ibc.connection(connection_id, self._block(height))

    def channel(
        self, port_id: str, channel_id: str, height: Height | None = None
    ) -> ChannelEnd | None:
        return self.ibc.channel(port_id, channel_id, self._block(height))

    # -- discovery -----------------------------------------------------------------------------

    _RELAYED_EVENTS = ("SendPacket", "WriteAcknowledgement")

    def _logs(self, event: str, to_block: int) -> list[tuple[Any, ...]]:
        """The handler's ``event`` logs (``SendPacket`` or ``WriteAcknowledgement``) from
        :attr:`from_block` to ``to_block``, each as its decoded data fields (``(packet,)``,
        ``(packet, acknowledgement)``, the packet a :class:`Packet`). Both kinds come from one
        ``eth_getLogs`` of the handler's address and the two event topics per new range of
        blocks, decoded here from the raw answer, and what was read is kept decoded (a QBFT
        block is final: its logs never change), so each call asks the node only for the blocks
        since the last one and decodes only their logs (decoding every packet the channel ever
        carried, each call, cost ~0.3 ms a call after a few dozen packets)."""
        state: dict[str, Any] = self.__dict__.setdefault(
            "_log_cache", {"to": self.from_block - 1, **{e: [] for e in self._RELAYED_EVENTS}}
        )
        if to_block > state["to"]:
            kinds = _event_kinds()
            found = client.rpc(
                self.ibc.w3,
                "eth_getLogs",
                [
                    {
                        "address": self.ibc.handler.address,
                        "fromBlock": hex(state["to"] + 1),
                        "toBlock": hex(to_block),
                        "topics": [sorted(kinds)],
                    }
                ],
            )
            new: list[tuple[str, tuple[Any, ...]]] = []  # kept only once all decode
            for entry in found:
                topics = entry.get("topics") or []
                kind = kinds.get(str(topics[0]).lower()) if topics else None
                if kind is not None:
                    name, types = kind
                    data = bytes.fromhex(str(entry["data"]).removeprefix("0x"))
                    raw, *rest = (bytes(v) for v in abi_decode(types, data))
                    new.append((name, (Packet.decode(raw), *rest)))
            for name, fields in new:
                state[name].append(fields)
            state["to"] = to_block
        return list(state[event])

    def packets_sent(self, port_id: str, channel_id: str, from_sequence: int = 1) -> list[Packet]:
        """``SendPacket`` logs of ``port_id/channel_id`` whose commitment the handler still
        holds at the latest block (the logs are read up to that block, the commitments in one
        batch at it); packets already known settled are not read again."""
        block = self.latest_height()
        candidates: dict[int, Packet] = {}
        settled = self._facts().settled
        for (packet,) in self._logs("SendPacket", block.revision_height):
            if (packet.source_port, packet.source_channel) != (port_id, channel_id):
                continue
            if packet.sequence < from_sequence or packet.sequence in candidates:
                continue
            if (packet.source_port, packet.source_channel, packet.sequence) in settled:
                continue
            candidates[packet.sequence] = packet
        ordered = [candidates[seq] for seq in sorted(candidates)]
        stored = self.values([_commitment_path(p) for p in ordered], block)
        pending = []
        for packet, value in zip(ordered, stored, strict=True):
            if value == packet_commitment_of(packet):
                pending.append(packet)
            else:
                settled.add((packet.source_port, packet.source_channel, packet.sequence))
        return pending

    def acks_written(
        self, port_id: str, channel_id: str, from_sequence: int = 1
    ) -> list[WrittenAck]:
        """``WriteAcknowledgement`` logs of ``port_id/channel_id`` whose acknowledgement
        commitment the handler holds at the latest block (checked once, all unchecked ones in
        one batch: ICS-04 never deletes an acknowledgement commitment)."""
        block = self.latest_height()
        checked: set[tuple[str, str, int]] = self.__dict__.setdefault("_acks_checked", set())
        logged: dict[int, WrittenAck] = {}
        for packet, ack in self._logs("WriteAcknowledgement", block.revision_height):
            if (packet.destination_port, packet.destination_channel) != (port_id, channel_id):
                continue
            if packet.sequence >= from_sequence:
                logged[packet.sequence] = WrittenAck(packet, ack)
        unchecked = [seq for seq in logged if (port_id, channel_id, seq) not in checked]
        stored = self.values([paths.ack_path(port_id, channel_id, seq) for seq in unchecked], block)
        for seq, value in zip(unchecked, stored, strict=True):
            if value == ack_commitment(logged[seq].acknowledgement):
                checked.add((port_id, channel_id, seq))
            else:
                del logged[seq]
        return [logged[seq] for seq in sorted(logged)]

    def client_latest_height(self, client_id: str) -> Height:
        """Read from the client contract the handler routes ``client_id`` to (every client
        contract answers ``latest_height(client_id)``)."""
        return self.ibc.client_latest_height(client_id)

    # -- submission ----------------------------------------------------------------------------

    def submit(self, batch: Sequence[msgs.Msg]) -> list[Outcome]:
        """Client updates and handshake messages one transaction at a time, each checked with
        ``eth_call`` first; then packet messages (receive / acknowledge / timeout) pipelined:
        all signed with consecutive nonces and sent, then every receipt awaited (an interval
        block producer puts them in one block)."""
        outcomes: list[Outcome] = []
        index = 0
        while index < len(batch) and not _is_packet_msg(batch[index]):
            outcomes.append(self._submit_one(batch[index]))
            index += 1
        packets = list(batch[index:])
        if len(packets) == 1 or (packets and not self.ibc.can_pipeline):
            outcomes.extend(self._submit_one(msg) for msg in packets)
        elif packets:
            outcomes.extend(self._submit_pipelined(packets))
        self._learn(batch, outcomes)
        return outcomes

    def _submit_one(self, msg: msgs.Msg) -> Outcome:
        try:
            outcome = self.ibc.apply(msg)
        except TransactionRevertedError as exc:
            return _refused(self, msg, exc)
        return Submitted(outcome.value, Height(0, outcome.block_number), outcome.tx_hash)

    def _submit_pipelined(self, batch: list[msgs.Msg]) -> list[Outcome]:
        results = self.ibc.apply_pipelined(batch)
        outcomes: list[Outcome] = []
        for msg, result in zip(batch, results, strict=True):
            if isinstance(result, TransactionRevertedError):
                outcomes.append(_refused(self, msg, result))
            else:
                outcomes.append(
                    Submitted(result.value, Height(0, result.block_number), result.tx_hash)
                )
        return outcomes


@cache
def _event_kinds() -> dict[str, tuple[str, tuple[str, ...]]]:
    """The handler events a relayer reads, by topic (``0x`` hex of the event signature's
    keccak): (event name, the ABI types of its data, non-indexed fields)."""
    events = {
        "SendPacket": (("sequence", "uint64", True), ("packet", "bytes", False)),
        "WriteAcknowledgement": (
            ("sequence", "uint64", True),
            ("packet", "bytes", False),
            ("acknowledgement", "bytes", False),
        ),
    }
    kinds = {}
    for name, fields in events.items():
        signature = f"{name}({','.join(kind for _, kind, _ in fields)})"
        topic = "0x" + keccak(text=signature).hex()
        kinds[topic] = (name, tuple(kind for _, kind, indexed in fields if not indexed))
    return kinds


def _is_packet_msg(msg: msgs.Msg) -> bool:
    return isinstance(msg, msgs.MsgRecvPacket | msgs.MsgAcknowledgement | msgs.MsgTimeout)


# ---------------------------------------------------------------------------- Corda


class CordaEndpoint(_OneMessage, _PacketQueries):
    """:class:`ChainEndpoint` over a Corda-model IBC host, in process
    (:class:`~kakehashi.ibc.corda_host.host.CordaIbcHost`) or behind its node's HTTP API
    (:class:`~kakehashi.ibc.corda_host.remote.RemoteCordaHost`): anything with the
    :class:`~kakehashi.ibc.corda_host.api.CordaHostApi`.

    Reads go to the host's notarised versions, each at one fixed version, so a discovery answer
    is one consistent snapshot. Packet and acknowledgement contents are the host's own records,
    so an endpoint opened at any time discovers everything the host committed. A batch
    (:meth:`submit`) is one host version: if it is refused as a whole, its messages are
    submitted one by one so that those another relayer already delivered are told apart.
    """

    def __init__(self, host: CordaHostApi, *, name: str = "corda") -> None:
        self.host = host
        self.name = name

    @property
    def prefix(self) -> bytes:
        return self.host.prefix

    # -- chain ---------------------------------------------------------------------------------

    def latest_height(self) -> Height:
        return self.host.height

    def timestamp_at(self, height: Height) -> int:
        """The host version's timestamp, read from (and checked in) its attestation (once per
        height: a notarised version never changes)."""
        cache = self._facts().timestamps
        if height not in cache:
            view = verify_host_state(self.client_state(), self.host.attestation(height))
            cache[height] = view.timestamp_ns
        return cache[height]

    def client_state(self) -> Any:
        """The host's client state (read once: its keys and identity never change)."""
        state = self.__dict__.get("_client_state")
        if state is None:
            state = self.__dict__["_client_state"] = self.host.client_state()
        return state

    def client_update_message(self, height: Height) -> bytes:
        """The host-state attestation of version ``height``."""
        return self.host.attestation(height)

    def client_latest_height(self, client_id: str) -> Height:
        return self.host.client_latest_height(client_id)

    # -- state and proofs ----------------------------------------------------------------------

    def prove(self, path: bytes, height: Height) -> bytes:
        return self.host.prove(path, height)

    def prove_value(self, path: bytes, height: Height) -> tuple[bytes, bytes | None]:
        return self.host.prove_value(path, height)

    def prove_values(
        self, paths: Sequence[bytes], height: Height
    ) -> list[tuple[bytes, bytes | None]]:
        return [self.host.prove_value(path, height) for path in paths]

    def value(self, path: bytes, height: Height | None = None) -> bytes | None:
        return self.host.value_at(path, height)

    def connection(self, connection_id: str, height: Height | None = None) -> ConnectionEnd | None:
        """The connection end (the host keeps only the latest ends: ``height`` must be None or
        the latest height)."""
        self._latest_only(height)
        return self.host.connection_end(connection_id)

    def channel(
        self, port_id: str, channel_id: str, height: Height | None = None
    ) -> ChannelEnd | None:
        """The channel end (latest only, as :meth:`connection`)."""
        self._latest_only(height)
        return self.host.channel_end(port_id, channel_id)

    def _latest_only(self, height: Height | None) -> None:
        if height is not None and height != self.host.height:
            raise IbcError(
                f"the Corda-model host keeps only its latest connection and channel ends "
                f"(height {self.host.height}); prove the end's commitment at {height} instead"
            )

    # -- discovery -----------------------------------------------------------------------------

    def packets_sent(self, port_id: str, channel_id: str, from_sequence: int = 1) -> list[Packet]:
        """The packets the host recorded sending whose commitment it holds at its latest
        version (one query: one consistent snapshot)."""
        return self.host.sent_packets(port_id, channel_id, from_sequence)

    def acks_written(
        self, port_id: str, channel_id: str, from_sequence: int = 1
    ) -> list[WrittenAck]:
        """The acknowledgements the host recorded writing whose commitment it holds at its
        latest version."""
        return [
            WrittenAck(packet, ack)
            for packet, ack in self.host.written_acks(port_id, channel_id, from_sequence)
        ]

    # -- submission ----------------------------------------------------------------------------

    def submit(self, batch: Sequence[msgs.Msg]) -> list[Outcome]:
        """Submit ``batch`` as one host version; see the class docstring."""
        if not batch:
            return []
        try:
            done = self.host.submit(batch)
        except KakehashiError as exc:
            if len(batch) == 1:
                return [_refused(self, batch[0], exc)]
            log.info("%s: batch of %d refused (%s); one by one", self.name, len(batch), exc)
            return [self.submit([msg])[0] for msg in batch]
        outcomes: list[Outcome] = [
            Submitted(value, done.height, done.tx_id) for value in done.values
        ]
        self._learn(batch, outcomes)
        return outcomes


# ---------------------------------------------------------------------------- ICS-04 relaying


def is_timed_out(packet: Packet, height: Height, timestamp_ns: int) -> bool:
    """ICS-04: ``packet`` can no longer be received by a destination at ``height`` / time
    ``timestamp_ns`` (and a proof of its absence there proves the timeout)."""
    by_height = not packet.timeout_height.is_zero() and height >= packet.timeout_height
    by_time = packet.timeout_timestamp != 0 and timestamp_ns >= packet.timeout_timestamp
    return by_height or by_time


def _unreceived(
    src: ChainEndpoint, dst: ChainEndpoint, port_id: str, channel_id: str, from_sequence: int
) -> tuple[list[Packet], Height, int]:
    height = dst.latest_height()
    sent = src.packets_sent(port_id, channel_id, from_sequence)
    received: set[tuple[str, str, int]] = set()
    for port, channel in {(p.destination_port, p.destination_channel) for p in sent}:
        sequences = [
            p.sequence
            for p in sent
            if (p.destination_port, p.destination_channel) == (port, channel)
        ]
        received.update((port, channel, s) for s in dst.received(port, channel, sequences, height))
    pending = [
        p for p in sent if (p.destination_port, p.destination_channel, p.sequence) not in received
    ]
    # the destination's time matters only to a packet with a timeout timestamp
    now = dst.timestamp_at(height) if any(p.timeout_timestamp for p in pending) else 0
    return pending, height, now


def pending_packets(
    src: ChainEndpoint,
    dst: ChainEndpoint,
    port_id: str,
    channel_id: str,
    from_sequence: int = 1,
) -> tuple[list[Packet], list[Packet]]:
    """(:func:`unreceived_packets`, :func:`timed_out_packets`) from one read of both ledgers."""
    pending, height, now = _unreceived(src, dst, port_id, channel_id, from_sequence)
    live = [p for p in pending if not is_timed_out(p, height, now)]
    expired = [p for p in pending if is_timed_out(p, height, now)]
    return live, expired


def unreceived_packets(
    src: ChainEndpoint,
    dst: ChainEndpoint,
    port_id: str,
    channel_id: str,
    from_sequence: int = 1,
) -> list[Packet]:
    """Packets sent on ``src``'s ``port_id/channel_id`` that ``dst`` has not received and that
    have not timed out at ``dst``'s latest height and time: the ones to deliver (ICS-04
    relayer algorithm: commitment on the source, no receipt / nextSequenceRecv ≤ sequence on
    the destination)."""
    pending, height, now = _unreceived(src, dst, port_id, channel_id, from_sequence)
    return [p for p in pending if not is_timed_out(p, height, now)]


def timed_out_packets(
    src: ChainEndpoint,
    dst: ChainEndpoint,
    port_id: str,
    channel_id: str,
    from_sequence: int = 1,
) -> list[Packet]:
    """Packets sent on ``src`` that ``dst`` has not received and that have timed out at
    ``dst``'s latest height or time: the ones to time out on ``src``."""
    pending, height, now = _unreceived(src, dst, port_id, channel_id, from_sequence)
    return [p for p in pending if is_timed_out(p, height, now)]


def unrelayed_acks(
    src: ChainEndpoint,
    dst: ChainEndpoint,
    dst_port_id: str,
    dst_channel_id: str,
    from_sequence: int = 1,
) -> list[WrittenAck]:
    """Acknowledgements written on ``dst`` (the packets' destination ``dst_port_id /
    dst_channel_id``) whose packet commitment still exists on ``src``: the ones to relay
    back."""
    written = dst.acks_written(dst_port_id, dst_channel_id, from_sequence)
    live = {id(p) for p in src.unsettled([w.packet for w in written])}
    return [w for w in written if id(w.packet) in live]
