"""The Cross Framework on a Corda-model IBC host: an ICS-26 module on port ``cross``.

:class:`CrossModule` is both roles at once: the **coordinator** of the transactions this ledger
initiates (:meth:`CrossModule.initiate`; it reacts to acknowledgements and timeouts of its
packets) and a **participant** in others' (it answers PREPARE / CALL / DECIDE packets). Every
step runs inside one host call, so the module's state (coordinator and participant records,
the application's locks and values) is written in the same notarised host version as the IBC
change that caused it: a packet is received together with its effect, or not at all, and a
crash loses nothing.

Nothing runs before every signer the transaction names has signed (:meth:`CrossModule.initiate`
with this node's party and given signatures, :meth:`CrossModule.sign`, SIGN packets from the
ledgers across the parts' channels; :meth:`CrossModule.sign_remote` sends one for a party of
this ledger). A participant is sent only the view of a transaction its part needs
(:meth:`~kakehashi.cross.tx.InitiateTx.view`) and keeps it (:meth:`CrossModule.view`: the parts
it saw, the others' digests); the coordinator keeps the whole transaction. Parts run in
:class:`~kakehashi.cross.corda_apps.CordaApps`: the key-value application
(:class:`~kakehashi.cross.corda_kv.StateKeyValueApp`: records as Corda states, moved into lock
states by a prepare, in the same notarised host version; calls: :mod:`kakehashi.cross.kv`) and
any other application added by op.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cbor2

from kakehashi.cross.auth import Authentication, corda_key_id, verify_party_signature
from kakehashi.cross.coordinator import Coordinator, Finish, PrepareLocal, Send
from kakehashi.cross.corda_apps import CordaApps
from kakehashi.cross.packets import AckStatus, CrossAck, CrossPacket, PacketKind
from kakehashi.cross.participant import PartCall, Participant, PartRecord
from kakehashi.cross.status import AuthStatus, Decision, PartStatus
from kakehashi.cross.tx import (
    MAX_CONTRACT_TRANSACTIONS,
    Account,
    ChannelInfo,
    CrossTxError,
    InitiateTx,
    SignerKind,
    TxView,
    check_initiation,
)
from kakehashi.errors import KakehashiError
from kakehashi.ibc.corda_host.host import CordaIbcHost, HostStore
from kakehashi.ibc.types import ChannelCounterparty, Height, Order, Packet

__all__ = [
    "CROSS_PORT",
    "CROSS_VERSION",
    "CrossModule",
]

CROSS_PORT = "cross"
CROSS_VERSION = "cross-1"
_KV, _LOCK, _STAGED = "app:kv", "app:kv-lock", "app:kv-staged"
_COORDINATOR, _PARTICIPANT = "app:cross-c", "app:cross-p"
_TIMELINE, _INDEX, _AUTH = "app:cross-t", "app:cross-i", "app:cross-a"
_VIEW = "app:cross-v"  # a participant's view of a transaction (the parts it was shown)
_COORDINATED = "coordinated"


# ---------------------------------------------------------------------------- persistence


def _save_auth(store: HostStore, auth: Authentication) -> None:
    record = [[int(a.kind), a.id, t] for a, t in auth.signed.items()]
    store.set_object(_AUTH, auth.tx.tx_id.hex(), bytes(cbor2.dumps(record)))


def _load_auth(store: HostStore, tx: InitiateTx) -> Authentication:
    data = store.get_object(_AUTH, tx.tx_id.hex())
    signed = (
        {Account(SignerKind(k), bytes(i)): int(t) for k, i, t in cbor2.loads(data)} if data else {}
    )
    return Authentication(tx, signed)


def _save_coordinator(store: HostStore, c: Coordinator) -> None:
    record = [
        c.tx.encode(),
        -1 if c.local is None else c.local,
        {i: int(s) for i, s in c.parts.items()},
        c.returns,
        c.failures,
        c.rejected,
        int(c.decision),
        sorted(c.sent),
        sorted(c.decided),
        c.started,
    ]
    store.set_object(_COORDINATOR, c.tx.tx_id.hex(), bytes(cbor2.dumps(record, canonical=True)))


def _load_coordinator(store: HostStore, tx_id: bytes) -> Coordinator | None:
    data = store.get_object(_COORDINATOR, tx_id.hex())
    if data is None:
        return None
    tx, local, parts, returns, failures, rejected, decision, sent, decided, started = cbor2.loads(
        data
    )
    return Coordinator(
        InitiateTx.decode(tx),
        None if local < 0 else local,
        {int(i): PartStatus(s) for i, s in parts.items()},
        {int(i): bytes(v) for i, v in returns.items()},
        {int(i): str(v) for i, v in failures.items()},
        {int(i): str(v) for i, v in rejected.items()},
        Decision(decision),
        set(sent),
        set(decided),
        bool(started),
    )


class _StoredRecords(dict[tuple[bytes, int], PartRecord]):
    """A participant's records, read from and written to the host store by key."""

    def __init__(self, store: HostStore) -> None:
        super().__init__()
        self.store = store

    def setdefault(self, key: tuple[bytes, int], default: Any = None) -> PartRecord:
        record = self.get(key)
        if record is None:
            data = self.store.get_object(_PARTICIPANT, f"{key[0].hex()}:{key[1]}")
            if data:
                status, ack = cbor2.loads(data)
                record = PartRecord(
                    PartStatus(status), None if ack is None else CrossAck.decode(ack)
                )
            else:
                record = default if default is not None else PartRecord()
            self[key] = record
        return record

    def save(self) -> None:
        for (tx_id, index), record in self.items():
            ack = None if record.ack is None else record.ack.encode()
            data = bytes(cbor2.dumps([int(record.status), ack]))
            self.store.set_object(_PARTICIPANT, f"{tx_id.hex()}:{index}", data)


# ---------------------------------------------------------------------------- the module


class CrossModule:
    """The ``cross`` port's module on ``host`` (module docstring). Bind it on the host's router
    before opening the host: ``router.bind(CROSS_PORT, module)``, then :meth:`attach`."""

    def __init__(self, app_factory: Any = CordaApps, timeout_span: int = 1_000) -> None:
        self._host: CordaIbcHost | None = None
        self._app_factory = app_factory
        self.timeout_span = timeout_span  # packet timeout: this many counterparty heights

    def attach(self, host: CordaIbcHost) -> None:
        self._host = host
        self.app = self._app_factory(host)

    @property
    def host(self) -> CordaIbcHost:
        if self._host is None:
            raise CrossTxError("the cross module is not attached to a host yet")
        return self._host

    # -- coordinator ---------------------------------------------------------------------------

    def initiate(
        self,
        tx: InitiateTx,
        local: int | None = 0,
        signatures: Mapping[Account, bytes] | None = None,
    ) -> bytes:
        """Start ``tx`` with this ledger as coordinator (running part ``local``), in one host
        version. This node's party signs if the transaction names it as a LOCAL signer, with
        the ``signatures`` given (LOCAL: a party's over the tx id; EXTENSION). Once every
        signer has signed (now, or later through :meth:`sign` and SIGN packets) the local part
        is prepared and the first packets sent, in the same version as the last signature."""

        def action(store: HostStore) -> bytes:
            known = {tx.tx_id} if store.get_object(_COORDINATOR, tx.tx_id.hex()) else set()
            tx_id = check_initiation(
                tx,
                known_ids=known,
                height=self.host.pending_height(),
                timestamp_ns=self.host.pending_timestamp_ns(),
            )
            coordinator = Coordinator(tx, local)
            index = self.coordinated()
            store.set_object(_INDEX, _COORDINATED, bytes(cbor2.dumps([*index, tx_id])))
            self._note(
                tx_id,
                f"initiated {tx.commit_protocol.name} with {len(tx.contract_transactions)} parts "
                f"(this host coordinates"
                + ("" if local is None else f" and runs part {local}")
                + ")",
            )
            auth = Authentication(tx)
            operator = Account(SignerKind.LOCAL, corda_key_id(self.host.node.party.owning_key))
            if operator in auth.required:
                self._take(auth, operator, None)
            for account, signature in (signatures or {}).items():
                self._take(auth, account, signature)
            self._authenticated(store, coordinator, auth)
            return tx_id

        return self.host.execute(action)

    def sign(self, tx_id: bytes, account: Account, signature: bytes) -> AuthStatus:
        """A LOCAL signer's signature over the tx id with its Corda-model key, or an
        EXTENSION signer's, for a transaction coordinated here (signing twice is a no-op).
        The last signature starts the commit protocol in the same host version."""

        def action(store: HostStore) -> AuthStatus:
            c = self._coordinated(tx_id)
            auth = _load_auth(store, c.tx)
            if auth.status(self.host.pending_height(), self.host.pending_timestamp_ns()) is (
                AuthStatus.VERIFIED
            ):
                return AuthStatus.VERIFIED
            self._take(auth, account, signature)
            return self._authenticated(store, c, auth)

        return self.host.execute(action)

    def sign_remote(
        self,
        tx: TxView | InitiateTx,
        index: int,
        channel_id: str,
        account: Account,
        signature: bytes,
    ) -> None:
        """A party of this ledger, a CHANNEL signer of part ``index`` of a transaction
        coordinated across this host's ``channel_id`` (port ``cross``), signs the tx id with
        its key; a SIGN packet proves it to the coordinator. ``tx``: the view revealing part
        ``index`` and the parts it links to (a whole transaction is sent as that view)."""
        view = tx.view(index) if isinstance(tx, InitiateTx) else tx
        part = view.part(index)
        tx_id = view.tx_id
        if account.kind is not SignerKind.CHANNEL or account not in part.signers:
            raise CrossTxError(
                f"0x{account.id.hex()} is not a CHANNEL signer of part {index} of {tx_id.hex()}"
            )
        verify_party_signature(account, tx_id, signature)

        def action(store: HostStore) -> None:
            if view.expired(self.host.pending_height(), self.host.pending_timestamp_ns()):
                raise CrossTxError(f"cross transaction {tx_id.hex()} timed out: no more signatures")
            self._note(tx_id, f"CHANNEL signer of part {index} signed here: sent SIGN")
            self._send(CROSS_PORT, channel_id, CrossPacket.sign(view, index, account.id))

        self.host.execute(action)

    def authentication(self, tx_id: bytes) -> Authentication | None:
        """Who signed a transaction coordinated here, and when."""
        c = self.coordinator(tx_id)
        return None if c is None else _load_auth(self.host.store, c.tx)

    def _coordinated(self, tx_id: bytes) -> Coordinator:
        c = _load_coordinator(self.host.store, tx_id)
        if c is None:
            raise CrossTxError(f"no cross transaction {tx_id.hex()} is coordinated here")
        return c

    def _take(self, auth: Authentication, account: Account, signature: bytes | None) -> None:
        """Check and record one signature (None: this node's own party, which submits)."""
        height, now = self.host.pending_height(), self.host.pending_timestamp_ns()
        tx_id = auth.tx.tx_id
        if account.kind is SignerKind.CHANNEL:
            raise CrossTxError(
                "a CHANNEL signer signs on the ledger across its part's channel, which proves it "
                "here over IBC"
            )
        if account.kind is SignerKind.EXTENSION:
            auth.sign_extension(account, signature or b"", height, now)
        else:
            if signature is not None:
                verify_party_signature(account, tx_id, signature)
            auth.sign_local(account, height, now)
        self._note(tx_id, f"{account.kind.name} signer 0x{account.id.hex()[:16]}… signed")

    def _authenticated(self, store: HostStore, c: Coordinator, auth: Authentication) -> AuthStatus:
        """Save ``auth``; the first time every signer has signed, start the commit protocol."""
        _save_auth(store, auth)
        status = auth.status(self.host.pending_height(), self.host.pending_timestamp_ns())
        if status is AuthStatus.VERIFIED and not c.started:
            self._note(c.tx.tx_id, "every signer signed: authenticated")
            self._act(store, c, c.start())
        else:
            _save_coordinator(store, c)
        return status

    def coordinator(self, tx_id: bytes) -> Coordinator | None:
        return _load_coordinator(self.host.store, tx_id)

    def coordinated(self) -> list[bytes]:
        """Every transaction this host coordinated, oldest first."""
        data = self.host.store.get_object(_INDEX, _COORDINATED)
        return [bytes(t) for t in cbor2.loads(data)] if data else []

    def participant(self, tx_id: bytes) -> dict[int, PartStatus]:
        """The parts of ``tx_id`` this host ran as a participant, with their status."""
        found = {}
        for index in range(MAX_CONTRACT_TRANSACTIONS):
            data = self.host.store.get_object(_PARTICIPANT, f"{tx_id.hex()}:{index}")
            if data:
                found[index] = PartStatus(cbor2.loads(data)[0])
        return found

    def view(self, tx_id: bytes) -> TxView | None:
        """The view of ``tx_id`` this host was sent as a participant (parts it ran, the parts
        they link to; the others only as digests)."""
        data = self.host.store.get_object(_VIEW, tx_id.hex())
        return None if data is None else TxView.decode(data)

    def timeline(self, tx_id: bytes) -> list[tuple[int, str]]:
        """What this host did for ``tx_id``, with the host time (ns) of each step."""
        data = self.host.store.get_object(_TIMELINE, tx_id.hex())
        return [(int(t), str(e)) for t, e in cbor2.loads(data)] if data else []

    def _note(self, tx_id: bytes, event: str) -> None:
        entries = self.timeline(tx_id)
        entries.append((self.host.pending_timestamp_ns(), event))
        self.host.store.set_object(
            _TIMELINE, tx_id.hex(), bytes(cbor2.dumps([list(e) for e in entries]))
        )

    def _act(self, store: HostStore, c: Coordinator, actions: list[Any]) -> None:
        tx_id = c.tx.tx_id
        decided = c.decision
        queue = list(actions)
        while queue:
            action = queue.pop(0)
            if isinstance(action, PrepareLocal):
                try:
                    value = self.app.prepare(PartCall.of(c.tx, action.index))
                except KakehashiError as exc:
                    self._note(tx_id, f"part {action.index} (here) failed to prepare: {exc}")
                    queue += c.on_local_prepared(False, reason=str(exc))
                else:
                    self._note(tx_id, f"part {action.index} (here) prepared")
                    queue += c.on_local_prepared(True, value)
            elif isinstance(action, Finish):
                if action.decision is Decision.COMMIT:
                    self.app.commit(tx_id, action.index)
                else:
                    self.app.abort(tx_id, action.index)
                self._note(tx_id, f"part {action.index} (here) {action.decision.name.lower()}ed")
            elif isinstance(action, Send):
                self._note(tx_id, f"sent {action.packet.kind.name} to part {action.index}")
                channel = c.tx.contract_transactions[action.index].cross_chain_channel
                self._send(channel.port, channel.channel, action.packet)
            if c.decision is not decided:
                decided = c.decision
                self._note(tx_id, f"decided {decided.name}")
        _save_coordinator(store, c)

    def _send(self, port: str, channel_id: str, packet: CrossPacket) -> None:
        """Send ``packet``, timing out ``timeout_span`` heights of the counterparty from now."""
        counterparty = self.host.handler.channel(port, channel_id)
        client = self.host.handler.connection(counterparty.connection_hops[0]).client_id
        peer = self.host.handler.client(client).latest_height()
        timeout = Height(peer.revision_number, peer.revision_height + self.timeout_span)
        self.host.handler.send_packet(port, channel_id, timeout, 0, packet.encode())

    def _coordinator_event(self, packet: Packet, event: Any) -> None:
        cross = CrossPacket.decode(packet.data)
        c = self._coordinated(cross.tx_id)
        self._act(self.host.store, c, event(c, cross))

    # -- ICS-26 callbacks ------------------------------------------------------------------------

    def on_chan_open_init(
        self,
        order: Order,
        connection_hops: Any,
        port_id: str,
        channel_id: str,
        counterparty: ChannelCounterparty,
        version: str,
    ) -> str:
        if order is not Order.UNORDERED:
            raise CrossTxError("cross channels are UNORDERED")
        return version or CROSS_VERSION

    def on_chan_open_try(
        self,
        order: Order,
        connection_hops: Any,
        port_id: str,
        channel_id: str,
        counterparty: ChannelCounterparty,
        counterparty_version: str,
    ) -> str:
        if counterparty_version != CROSS_VERSION:
            raise CrossTxError(f"cross channels speak {CROSS_VERSION!r}")
        return CROSS_VERSION

    def on_chan_open_ack(
        self, port_id: str, channel_id: str, counterparty_channel_id: str, version: str
    ) -> None:
        if version != CROSS_VERSION:
            raise CrossTxError(f"cross channels speak {CROSS_VERSION!r}")

    def on_chan_open_confirm(self, port_id: str, channel_id: str) -> None:
        pass

    def on_chan_close_init(self, port_id: str, channel_id: str) -> None:
        raise CrossTxError("a cross channel is not closed while transactions may use it")

    def on_chan_close_confirm(self, port_id: str, channel_id: str) -> None:
        pass

    def on_recv_packet(self, packet: Packet) -> bytes | None:
        """Participant: answer the coordinator's packet (its effect in this host version);
        coordinator: take a CHANNEL signer's signature from a SIGN packet."""
        cross = CrossPacket.decode(packet.data)
        if cross.kind is PacketKind.SIGN:
            return self._recv_sign(packet, cross).encode()
        if cross.kind is not PacketKind.DECIDE:
            self._keep_view(cross)
        records = _StoredRecords(self.host.store)
        participant = Participant(self.app, records)
        try:
            ack = participant.on_packet(
                cross, self.host.pending_height(), self.host.pending_timestamp_ns()
            )
        except CrossTxError as exc:  # a decision that cannot apply here: an error ack
            ack = CrossAck.failed(str(exc))
        records.save()
        status = participant.status(cross.tx_id, cross.index).name
        answer = "OK" if ack.status is AckStatus.OK else f"FAILED ({ack.reason})"
        self._note(
            cross.tx_id,
            f"{cross.kind.name} for part {cross.index} received: {answer}, part {status}",
        )
        return ack.encode()

    def _keep_view(self, cross: CrossPacket) -> None:
        """Remember the view a PREPARE / CALL showed, merged with one already kept (a
        transaction may run two parts here)."""
        view = cross.view()
        kept = self.view(cross.tx_id)
        if kept is not None:
            view = kept.merged(view)
        self.host.store.set_object(_VIEW, cross.tx_id.hex(), view.encode())

    def _recv_sign(self, packet: Packet, cross: CrossPacket) -> CrossAck:
        """A CHANNEL signer of part ``index`` signed on the ledger across its channel: its
        view must reveal part ``index``, name a transaction coordinated here, and the signer
        must be one of that part's CHANNEL signers, the part reached over this channel."""
        account = Account(SignerKind.CHANNEL, cross.signer)
        try:
            part = cross.view().part(cross.index)
        except CrossTxError as exc:
            return CrossAck.failed(str(exc))
        c = _load_coordinator(self.host.store, cross.tx_id)
        if c is None:
            return CrossAck.failed("no such cross transaction is coordinated here")
        over = ChannelInfo(packet.destination_port, packet.destination_channel)
        if part.cross_chain_channel != over or account not in part.signers:
            return CrossAck.failed(
                f"not a CHANNEL signer of part {cross.index} reached over this channel"
            )
        auth = _load_auth(self.host.store, c.tx)
        try:
            auth.sign_channel(account, self.host.pending_height(), self.host.pending_timestamp_ns())
        except CrossTxError as exc:
            return CrossAck.failed(str(exc))
        self._note(
            c.tx.tx_id,
            f"CHANNEL signer 0x{account.id.hex()[:16]}… signed (SIGN over {over.channel})",
        )
        self._authenticated(self.host.store, c, auth)
        return CrossAck.ok()

    def on_acknowledgement_packet(self, packet: Packet, acknowledgement: bytes) -> None:
        """Coordinator: a participant answered (participant: our SIGN arrived)."""
        ack = CrossAck.decode(acknowledgement)
        sent = CrossPacket.decode(packet.data)
        if sent.kind is PacketKind.SIGN:
            answer = "took" if ack.status is AckStatus.OK else f"refused ({ack.reason})"
            self._note(sent.tx_id, f"the coordinator {answer} the SIGN for part {sent.index}")
            return

        def event(c: Coordinator, cross: CrossPacket) -> list[Any]:
            answer = "OK" if ack.status is AckStatus.OK else f"FAILED ({ack.reason})"
            self._note(c.tx.tx_id, f"part {cross.index} answered {cross.kind.name}: {answer}")
            if cross.kind is PacketKind.DECIDE:
                return c.on_decision_ack(cross.index)
            return c.on_ack(cross.index, ack)

        self._coordinator_event(packet, event)

    def on_timeout_packet(self, packet: Packet) -> None:
        """Coordinator: a packet provably never arrived (a PREPARE / CALL aborts the
        transaction; a DECIDE is sent again). Participant: a SIGN never arrived."""
        sent = CrossPacket.decode(packet.data)
        if sent.kind is PacketKind.SIGN:
            self._note(sent.tx_id, f"SIGN for part {sent.index} timed out")
            return

        def event(c: Coordinator, cross: CrossPacket) -> list[Any]:
            self._note(c.tx.tx_id, f"{cross.kind.name} to part {cross.index} timed out")
            return c.on_timeout(cross.index, cross.kind)

        self._coordinator_event(packet, event)
