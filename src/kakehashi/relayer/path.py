"""One relayer path between two ledgers through an LCP service: the handshakes (:func:`link`)
and the packet rounds (:class:`PathRelayer`).

A path has two :class:`Side` objects. Each side names its ledger's :class:`ChainEndpoint`, the
LCP client *on that ledger* of the other ledger (``client_id``), the LCP enclave's light client
*of that ledger* (``enclave_client_id``), and the port / channel / connection of the path on it.

**Towards a destination**, everything the relayer submits is proven by the source through the
enclave: the enclave verifies the source's header (:meth:`LcpApi.update_client`) and signs an
UpdateState; the destination's LCP client checks that signature against its registered enclave
keys. Each proof of a source value (packet commitment, acknowledgement, receipt absence, next
receive sequence, connection or channel end) is verified by the enclave against the same
header and signed as a VerifyMembership message, which the destination checks against the
state id its client stored. The relayer itself is trusted by neither ledger.

**Stateless.** A round reads what to do from the ledgers (:mod:`kakehashi.relayer.chains`),
reads the destination client's latest height, and asks the enclave for an UpdateState from
exactly that height (``trusted_height``), so that it builds on what the destination holds
whatever other relayers did; nothing is remembered between rounds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from kakehashi.errors import IbcError, KakehashiError
from kakehashi.ibc import host as paths
from kakehashi.ibc import msgs
from kakehashi.ibc.types import (
    ChannelCounterparty,
    ChannelState,
    ConnectionCounterparty,
    Height,
    Order,
    Packet,
)
from kakehashi.lcp.enclave import ProofItem, SignedMessage
from kakehashi.lightclients import lcp_messages
from kakehashi.lightclients.lcp import encode_commitment_proof
from kakehashi.relayer.chains import (
    AlreadyRelayed,
    ChainEndpoint,
    Failed,
    Outcome,
    Submitted,
    is_timed_out,
    pending_packets,
    unrelayed_acks,
)

__all__ = [
    "Direction",
    "LcpApi",
    "PathRelayer",
    "RoundReport",
    "Side",
    "lcp_height",
]

log = logging.getLogger("kakehashi.relayer")


class LcpApi(Protocol):
    """What the relayer asks of an LCP service: :class:`~kakehashi.lcp.enclave.Enclave` in
    process, or :class:`~kakehashi.lcp.client.LcpServiceClient` over HTTP."""

    def update_client(
        self, client_id: str, header: bytes, trusted_height: lcp_messages.Height | None = None
    ) -> tuple[lcp_messages.Height, SignedMessage]: ...

    def verify_membership(
        self,
        client_id: str,
        height: lcp_messages.Height,
        prefix: bytes,
        path: bytes,
        value: bytes,
        proof: bytes,
    ) -> SignedMessage: ...

    def verify_non_membership(
        self, client_id: str, height: lcp_messages.Height, prefix: bytes, path: bytes, proof: bytes
    ) -> SignedMessage: ...

    def verify_batch(
        self, client_id: str, height: lcp_messages.Height, items: Sequence[ProofItem]
    ) -> list[SignedMessage]: ...

    def update_and_verify(
        self,
        client_id: str,
        header: bytes,
        trusted_height: lcp_messages.Height | None,
        items: Sequence[ProofItem],
    ) -> tuple[lcp_messages.Height, SignedMessage, list[SignedMessage]]: ...


def lcp_height(height: Height) -> lcp_messages.Height:
    return lcp_messages.Height(height.revision_number, height.revision_height)


def _ibc_height(height: lcp_messages.Height) -> Height:
    return Height(height.revision_number, height.revision_height)


@dataclass
class Side:
    """One end of the path (module docstring). ``update_tag``: the byte this ledger's LCP client
    expects before a signed UpdateState (the Python client's tag 0x01; none on the EVM)."""

    endpoint: ChainEndpoint
    client_id: str = ""
    enclave_client_id: str = ""
    port_id: str = ""
    connection_id: str = ""
    channel_id: str = ""
    update_tag: bytes = b""

    @property
    def name(self) -> str:
        return self.endpoint.name

    def update_message(self, signed: SignedMessage) -> bytes:
        return self.update_tag + encode_commitment_proof(signed.message, [signed.signature])


@dataclass(frozen=True)
class Direction:
    """Source and destination of one half of a round."""

    src: Side
    dst: Side

    def __str__(self) -> str:
        return f"{self.src.name}->{self.dst.name}"


@dataclass
class RoundReport:
    """What one round did, per direction ``"src->dst"``."""

    received: dict[str, int] = field(default_factory=dict)
    acknowledged: dict[str, int] = field(default_factory=dict)
    timed_out: dict[str, int] = field(default_factory=dict)
    already_relayed: int = 0
    failed: list[str] = field(default_factory=list)
    pending: dict[str, int] = field(default_factory=dict)
    closed: list[str] = field(default_factory=list)  # channel ends this round closed
    client_heights: dict[str, Height] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)  # phase -> seconds (summed)

    def add_time(self, phase: str, seconds: float) -> None:
        self.timings[phase] = self.timings.get(phase, 0.0) + seconds

    @property
    def relayed(self) -> int:
        return sum(sum(d.values()) for d in (self.received, self.acknowledged, self.timed_out))


class _Timer:
    def __init__(self, report: RoundReport, phase: str) -> None:
        self.report, self.phase = report, phase

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *_: object) -> None:
        self.report.add_time(self.phase, time.perf_counter() - self.start)


@dataclass
class PathRelayer:
    """Relays packets, acknowledgements and timeouts both ways on one path (module docstring).

    ``batch_size``: at most this many packet messages per submission (each submission is one
    client update followed by the messages: one host version on the Corda model, pipelined
    transactions on an EVM chain). ``close_check_every``: every this many rounds (and in the
    round after a timeout) the relayer looks for a channel end closed on one ledger and open on
    the other, to confirm the close there.
    """

    a: Side
    b: Side
    lcp: LcpApi
    batch_size: int = 100
    on_outcome: Callable[[Direction, msgs.Msg, Outcome], None] | None = None
    close_check_every: int = 10
    # A height the destination's client is known to hold (it keeps every consensus state it
    # verified, so an update built on it stays valid even after other relayers moved the
    # client on); read from the ledger when unknown, forgotten when an update is refused.
    _held: dict[str, Height] = field(default_factory=dict, init=False, repr=False)
    _rounds: int = field(default=0, init=False, repr=False)
    _timed_out: bool = field(default=False, init=False, repr=False)

    def directions(self) -> tuple[Direction, Direction]:
        return Direction(self.a, self.b), Direction(self.b, self.a)

    # -- proofs through the enclave -------------------------------------------------------------

    def update(
        self, direction: Direction, report: RoundReport | None = None
    ) -> tuple[Height, msgs.MsgUpdateClient | None]:
        """The height the destination's client will be at and the update message to get it
        there (None: it is there already)."""
        src, dst = direction.src, direction.dst
        report = report or RoundReport()
        with _Timer(report, "query"):
            height = src.endpoint.latest_height()
            trusted = self._held_height(dst)
        if trusted >= height:
            return trusted, None
        with _Timer(report, "query"):
            header = src.endpoint.client_update_message(height)
        with _Timer(report, "lcp"):
            post, signed = self.lcp.update_client(
                src.enclave_client_id, header, lcp_height(trusted)
            )
        return _ibc_height(post), msgs.MsgUpdateClient(dst.client_id, dst.update_message(signed))

    def prove(
        self, direction: Direction, path: bytes, height: Height, report: RoundReport | None = None
    ) -> tuple[bytes, bytes | None]:
        """(proof the destination verifies, the value proven or None for absence) of ``path``
        on the source at ``height``."""
        src = direction.src
        report = report or RoundReport()
        with _Timer(report, "query"):
            proof, value = src.endpoint.prove_value(path, height)
        with _Timer(report, "lcp"):
            if value is None:
                signed = self.lcp.verify_non_membership(
                    src.enclave_client_id, lcp_height(height), src.endpoint.prefix, path, proof
                )
            else:
                signed = self.lcp.verify_membership(
                    src.enclave_client_id,
                    lcp_height(height),
                    src.endpoint.prefix,
                    path,
                    value,
                    proof,
                )
        return encode_commitment_proof(signed.message, [signed.signature]), value

    # -- rounds ---------------------------------------------------------------------------------

    def relay_once(self) -> RoundReport:
        """One round both ways: discover, update, prove, submit. Refusals are reported, not
        raised; an unreachable ledger or LCP service raises (the next round tries again).

        Packets in flight are read once per round for each way (what the destination has not
        received, split into deliverable and timed out); acknowledgements are read per
        direction, after the first direction may have written some."""
        report = RoundReport()
        a_to_b, b_to_a = self.directions()
        with _Timer(report, "query"):
            from_a = pending_packets(
                self.a.endpoint, self.b.endpoint, self.a.port_id, self.a.channel_id
            )
            from_b = pending_packets(
                self.b.endpoint, self.a.endpoint, self.b.port_id, self.b.channel_id
            )
        self._rounds += 1
        check_close = self._rounds % self.close_check_every == 1 or self._timed_out
        self._timed_out = False
        # a -> b delivers a's live packets and times out b's expired ones (proven by a)
        self._relay(a_to_b, from_a[0], from_b[1], report, check_close)
        self._relay(b_to_a, from_b[0], from_a[1], report, check_close)
        return report

    def relay_direction(
        self, direction: Direction, report: RoundReport | None = None
    ) -> RoundReport:
        """Half a round: only ``direction`` (its source's packets delivered, acknowledgements
        written on its source brought back, its destination's expired packets timed out)."""
        report = report or RoundReport()
        src, dst = direction.src, direction.dst
        with _Timer(report, "query"):
            recvs, _ = pending_packets(src.endpoint, dst.endpoint, src.port_id, src.channel_id)
            _, timeouts = pending_packets(dst.endpoint, src.endpoint, dst.port_id, dst.channel_id)
        self._relay(direction, recvs, timeouts, report, check_close=False)
        return report

    def _relay(
        self,
        direction: Direction,
        recvs: list[Packet],
        timeouts: list[Packet],
        report: RoundReport,
        check_close: bool,
    ) -> None:
        key = str(direction)
        src, dst = direction.src, direction.dst
        with _Timer(report, "query"):
            # acknowledgements written on src for packets dst sent
            acks = [
                (w.packet, w.acknowledgement)
                for w in unrelayed_acks(dst.endpoint, src.endpoint, src.port_id, src.channel_id)
            ]
        if check_close:
            self._close_confirm(direction, report)
        work: list[tuple[str, Any]] = (
            [("recv", p) for p in recvs]
            + [("ack", pa) for pa in acks]
            + [("timeout", p) for p in timeouts]
        )
        report.pending[key] = len(work)
        for start in range(0, len(work), self.batch_size):
            self._relay_batch(direction, work[start : start + self.batch_size], report)

    def _close_confirm(self, direction: Direction, report: RoundReport) -> None:
        """The source's channel end closed (a CLOSE_INIT, or a timeout on an ORDERED channel)
        while the destination's is still open: prove CLOSED and confirm the close there."""
        src, dst = direction.src, direction.dst
        with _Timer(report, "query"):
            src_end = src.endpoint.channel(src.port_id, src.channel_id)
            if src_end is None or src_end.state is not ChannelState.CLOSED:
                return
            dst_end = dst.endpoint.channel(dst.port_id, dst.channel_id)
        if dst_end is None or dst_end.state is ChannelState.CLOSED:
            return
        height, update = self.update(direction, report)
        proof, _ = self.prove(direction, paths.channel_path(src.port_id, src.channel_id), height)
        batch: list[msgs.Msg] = [] if update is None else [update]
        batch.append(msgs.MsgChannelCloseConfirm(dst.port_id, dst.channel_id, proof, height))
        with _Timer(report, "submit"):
            outcomes = dst.endpoint.submit(batch)
        self._remember_update(direction, update, outcomes[0], height)
        outcome = outcomes[-1]
        if isinstance(outcome, Failed):
            report.failed.append(f"{direction} MsgChannelCloseConfirm: {outcome.error}")
        else:
            report.closed.append(f"{dst.name} {dst.port_id}/{dst.channel_id}")
            log.info("event=relay.channel_closed ledger=%s channel=%s", dst.name, dst.channel_id)

    def _relay_batch(
        self, direction: Direction, work: list[tuple[str, Any]], report: RoundReport
    ) -> None:
        """Prove ``work`` on the source at one height, have the enclave update the
        destination's client to it and vouch for every proof in one call, submit it all."""
        key = str(direction)
        src, dst = direction.src, direction.dst
        with _Timer(report, "query"):
            latest = src.endpoint.latest_height()
            trusted = self._held_height(dst)
        height = trusted if trusted >= latest else latest
        planned: list[tuple[str, Any, bytes]] = []  # (kind, item, path)
        for kind, item in work:
            path = self._path_of(direction, kind, item, height, report)
            if path is not None:
                planned.append((kind, item, path))
        if not planned:
            return
        with _Timer(report, "query"):
            proven = src.endpoint.prove_values([path for _, _, path in planned], height)
        items = [
            ProofItem(src.endpoint.prefix, path, value, proof)
            for (_, _, path), (proof, value) in zip(planned, proven, strict=True)
        ]
        update: msgs.MsgUpdateClient | None = None
        try:
            if height > trusted:
                with _Timer(report, "query"):
                    header = src.endpoint.client_update_message(height)
                with _Timer(report, "lcp"):
                    post, signed, vouched = self.lcp.update_and_verify(
                        src.enclave_client_id, header, lcp_height(trusted), items
                    )
                update = msgs.MsgUpdateClient(dst.client_id, dst.update_message(signed))
                height = _ibc_height(post)
            else:
                with _Timer(report, "lcp"):
                    vouched = self.lcp.verify_batch(
                        src.enclave_client_id, lcp_height(height), items
                    )
        except KakehashiError as exc:  # the enclave refused one of them: find which, one by one
            log.warning("event=relay.batch_unprovable direction=%s error=%s", key, exc)
            self._relay_each(direction, planned, report)
            return
        batch: list[msgs.Msg] = [] if update is None else [update]
        kinds: list[str] = [] if update is None else ["update"]
        for (kind, item, _), statement, (_, value) in zip(planned, vouched, proven, strict=True):
            proof = encode_commitment_proof(statement.message, [statement.signature])
            batch.append(self._msg(kind, item, proof, value, height))
            kinds.append(kind)
        self._submit(direction, batch, kinds, update, height, report)

    def _relay_each(
        self, direction: Direction, planned: list[tuple[str, Any, bytes]], report: RoundReport
    ) -> None:
        """The slow path: update, then prove and submit each message on its own, so that the
        one the enclave refuses is reported and the others still go."""
        key = str(direction)
        height, update = self.update(direction, report)
        batch: list[msgs.Msg] = [] if update is None else [update]
        kinds: list[str] = [] if update is None else ["update"]
        for kind, item, path in planned:
            try:
                proof, value = self.prove(direction, path, height, report)
            except KakehashiError as exc:  # the enclave refused to vouch: nothing to submit
                report.failed.append(f"{key} {kind}: {exc}")
                log.warning("event=relay.unprovable direction=%s kind=%s error=%s", key, kind, exc)
                continue
            batch.append(self._msg(kind, item, proof, value, height))
            kinds.append(kind)
        self._submit(direction, batch, kinds, update, height, report)

    def _submit(
        self,
        direction: Direction,
        batch: list[msgs.Msg],
        kinds: list[str],
        update: msgs.MsgUpdateClient | None,
        height: Height,
        report: RoundReport,
    ) -> None:
        if not batch:
            return
        key = str(direction)
        with _Timer(report, "submit"):
            outcomes = direction.dst.endpoint.submit(batch)
        for kind, msg, outcome in zip(kinds, batch, outcomes, strict=True):
            if self.on_outcome is not None:
                self.on_outcome(direction, msg, outcome)
            if isinstance(outcome, Failed):
                report.failed.append(f"{key} {type(msg).__name__}: {outcome.error}")
                log.warning(
                    "event=relay.refused direction=%s msg=%s error=%s",
                    key,
                    type(msg).__name__,
                    outcome.error,
                )
            elif isinstance(outcome, AlreadyRelayed):
                report.already_relayed += 1
            elif kind != "update":
                counter = {
                    "recv": report.received,
                    "ack": report.acknowledged,
                    "timeout": report.timed_out,
                }[kind]
                counter[key] = counter.get(key, 0) + 1
        report.client_heights[direction.dst.name] = height
        self._remember_update(direction, update, outcomes[0], height)
        if "timeout" in kinds:
            self._timed_out = True  # an ORDERED timeout closes a channel: look next round

    def _held_height(self, dst: Side) -> Height:
        """A height ``dst``'s client holds: the one this relayer last brought it to, else read
        from the ledger."""
        held = self._held.get(dst.name)
        return held if held is not None else dst.endpoint.client_latest_height(dst.client_id)

    def _remember_update(
        self,
        direction: Direction,
        update: msgs.MsgUpdateClient | None,
        outcome: Outcome,
        height: Height,
    ) -> None:
        if update is None:
            return
        if isinstance(outcome, Submitted | AlreadyRelayed):
            self._held[direction.dst.name] = height
        else:  # refused: read the client's height from the ledger next time
            self._held.pop(direction.dst.name, None)

    def _path_of(
        self, direction: Direction, kind: str, item: Any, height: Height, report: RoundReport
    ) -> bytes | None:
        """The source path proving ``item`` (None: a timeout not provable at ``height`` yet)."""
        src = direction.src
        if kind == "recv":
            packet: Packet = item
            return paths.packet_commitment_path(
                packet.source_port, packet.source_channel, packet.sequence
            )
        if kind == "ack":
            packet = item[0]
            return paths.ack_path(
                packet.destination_port, packet.destination_channel, packet.sequence
            )
        packet = item
        with _Timer(report, "query"):
            timestamp = src.endpoint.timestamp_at(height) if packet.timeout_timestamp else 0
            if not is_timed_out(packet, height, timestamp):
                return None  # not yet at the height the destination's client can prove
            ordering = src.endpoint.ordering(packet.destination_port, packet.destination_channel)
        if ordering is Order.ORDERED:
            return paths.next_sequence_recv_path(
                packet.destination_port, packet.destination_channel
            )
        return paths.packet_receipt_path(
            packet.destination_port, packet.destination_channel, packet.sequence
        )

    @staticmethod
    def _msg(kind: str, item: Any, proof: bytes, value: bytes | None, height: Height) -> msgs.Msg:
        if kind == "recv":
            return msgs.MsgRecvPacket(item, proof, height)
        if kind == "ack":
            packet, ack = item
            return msgs.MsgAcknowledgement(packet, ack, proof, height)
        # a timeout: ORDERED proves nextSequenceRecv (a value), UNORDERED the receipt's absence
        next_recv = int.from_bytes(value, "big") if value is not None else 0
        return msgs.MsgTimeout(item, proof, height, next_recv)

    # -- handshakes -----------------------------------------------------------------------------

    def _step(self, side: Side, msg: msgs.Msg) -> Any:
        outcome = side.endpoint.submit([msg])[0]
        if isinstance(outcome, Failed):
            raise outcome.error
        if not isinstance(outcome, Submitted):
            raise IbcError(f"{side.name} did not apply {type(msg).__name__}: {outcome}")
        log.info(
            "event=link.step ledger=%s msg=%s value=%s",
            side.name,
            type(msg).__name__,
            outcome.value,
        )
        return outcome.value

    def _proven(self, direction: Direction, path: bytes) -> tuple[bytes, Height]:
        """Update the destination's client and prove ``path`` of the source there."""
        height, update = self.update(direction)
        if update is not None:
            self._step(direction.dst, update)
            self._held[direction.dst.name] = height
        proof, _ = self.prove(direction, path, height)
        return proof, height

    def open_connection(self) -> tuple[str, str]:
        """ICS-03 handshake from side ``a``: INIT, TRY, ACK, CONFIRM."""
        a, b = self.a, self.b
        a_to_b, b_to_a = Direction(a, b), Direction(b, a)
        a.connection_id = self._step(
            a,
            msgs.MsgConnectionOpenInit(
                a.client_id, ConnectionCounterparty(b.client_id, "", b.endpoint.prefix)
            ),
        )
        init = a.endpoint.connection(a.connection_id)
        assert init is not None
        proof, height = self._proven(a_to_b, paths.connection_path(a.connection_id))
        b.connection_id = self._step(
            b,
            msgs.MsgConnectionOpenTry(
                b.client_id,
                ConnectionCounterparty(a.client_id, a.connection_id, a.endpoint.prefix),
                init.versions,
                proof,
                height,
            ),
        )
        tried = b.endpoint.connection(b.connection_id)
        assert tried is not None
        proof, height = self._proven(b_to_a, paths.connection_path(b.connection_id))
        self._step(
            a,
            msgs.MsgConnectionOpenAck(
                a.connection_id, b.connection_id, tried.versions[0], proof, height
            ),
        )
        proof, height = self._proven(a_to_b, paths.connection_path(a.connection_id))
        self._step(b, msgs.MsgConnectionOpenConfirm(b.connection_id, proof, height))
        return a.connection_id, b.connection_id

    def open_channel(self, ordering: Order, version: str) -> tuple[str, str]:
        """ICS-04 channel handshake from side ``a`` over the open connection."""
        a, b = self.a, self.b
        a_to_b, b_to_a = Direction(a, b), Direction(b, a)
        a.channel_id = self._step(
            a,
            msgs.MsgChannelOpenInit(
                a.port_id,
                ordering,
                (a.connection_id,),
                ChannelCounterparty(b.port_id, ""),
                version,
            ),
        )
        init = a.endpoint.channel(a.port_id, a.channel_id)
        assert init is not None
        proof, height = self._proven(a_to_b, paths.channel_path(a.port_id, a.channel_id))
        b.channel_id = self._step(
            b,
            msgs.MsgChannelOpenTry(
                b.port_id,
                ordering,
                (b.connection_id,),
                ChannelCounterparty(a.port_id, a.channel_id),
                init.version,
                proof,
                height,
            ),
        )
        tried = b.endpoint.channel(b.port_id, b.channel_id)
        assert tried is not None
        proof, height = self._proven(b_to_a, paths.channel_path(b.port_id, b.channel_id))
        self._step(
            a,
            msgs.MsgChannelOpenAck(
                a.port_id, a.channel_id, b.channel_id, tried.version, proof, height
            ),
        )
        proof, height = self._proven(a_to_b, paths.channel_path(a.port_id, a.channel_id))
        self._step(b, msgs.MsgChannelOpenConfirm(b.port_id, b.channel_id, proof, height))
        return a.channel_id, b.channel_id
