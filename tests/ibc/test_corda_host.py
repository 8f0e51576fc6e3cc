"""The Corda-model IBC host on a real embedded network (real notary, SQLite): one notarised
version per state change, proofs the light client accepts, atomic calls, restart."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kakehashi.errors import (
    ContractRejection,
    IbcError,
    NotaryError,
    TimeWindowError,
    TransportError,
    VerificationError,
)
from kakehashi.errors import (
    KakehashiError as KakehashiErrorType,
)
from kakehashi.ibc.clients.corda import CordaClient
from kakehashi.ibc.corda_host import CordaIbcHost, HostAdvance, IbcHostState
from kakehashi.ibc.corda_host.host import HostStore
from kakehashi.ibc.types import (
    ConnectionCounterparty,
    ConnectionEnd,
    ConnectionState,
    Height,
    Packet,
)
from kakehashi.ledgers.corda.model.crypto import random_bytes
from kakehashi.ledgers.corda.model.states import Command, TimeWindow, TransactionState
from kakehashi.ledgers.corda.model.transactions import SignedTransaction, WireTransaction
from kakehashi.ledgers.corda.node.setup import EmbeddedNetwork
from kakehashi.ledgers.corda.node.vault import StateStatus
from kakehashi.ledgers.corda.smt import EMPTY_ROOT
from kakehashi.lightclients.corda import (
    HOST_CONTRACT,
    verify_host_state,
    verify_membership,
    verify_non_membership,
)
from tests.ibc.support import RecordingApp

OPERATOR = "O=Bank A, L=London, C=GB"
NOTARY = "O=Notary, L=Zurich, C=CH"


def path(i: int) -> bytes:
    return f"commitments/ports/transfer/channels/channel-0/sequences/{i}".encode()


def value(i: int) -> bytes:
    return bytes([i % 255 + 1]) * 32


@pytest.fixture
def net(tmp_path: Path) -> Iterator[EmbeddedNetwork]:
    network = EmbeddedNetwork.create(tmp_path / "net")
    yield network
    network.close()


def _write(i: int):  # type: ignore[no-untyped-def]
    def action(store: HostStore) -> int:
        store.set(path(i), value(i))
        return i

    return action


def test_version_chain_each_notarised_and_provable(net: EmbeddedNetwork) -> None:
    node = net.node(OPERATOR)
    host = CordaIbcHost(node)
    assert (host.version, host.smt_root) == (1, EMPTY_ROOT)
    committed_before = net.notary.uniqueness.committed_count()
    for i in range(1, 6):
        assert host.execute(_write(i)) == i
        assert host.version == i + 1
    assert net.notary.uniqueness.committed_count() == committed_before + 5
    client = host.client_state()
    assert client.notary_key == net.notary.party.owning_key
    for version in range(1, 7):
        view = verify_host_state(client, host.attestation(version))
        assert view.version == version
        # the notary consumed the previous host state in exactly that transaction
        stx = node.db.get_transaction(view.tx_id)
        assert stx is not None
        for ref in stx.tx.inputs:
            assert net.notary.uniqueness.consumed_by(ref) == view.tx_id
        for i in range(1, 6):
            proof = host.prove(path(i), Height(0, version))
            # one walk of the tree answers what prove and value_at answer
            assert host.prove_value(path(i), version) == (proof, host.value_at(path(i), version))
            if i < version:
                verify_membership(client, proof, path(i), value(i), version=version)
                assert host.value_at(path(i), version) == value(i)
            else:
                verify_non_membership(client, proof, path(i), version=version)
                assert host.value_at(path(i), version) is None
    # only the latest host state is unconsumed in the vault
    states = node.db.query(IbcHostState, status=StateStatus.ALL)
    unconsumed = node.db.query(IbcHostState)
    assert len(states) == 6 and len(unconsumed) == 1
    assert unconsumed[0].state.data.version == 6  # type: ignore[attr-defined]
    assert host.store.get(path(3)) == value(3)
    # a read-only call makes no transaction
    assert host.execute(lambda store: store.get(path(1))) == value(1)
    assert host.version == 6
    # the version rows it remembers (read once; the latest kept in memory) are the recorded ones
    from sqlalchemy import select

    from kakehashi.ibc.corda_host.host import versions

    with host.engine.connect() as conn:
        recorded = [
            tuple(row) for row in conn.execute(select(versions).order_by(versions.c.version))
        ]
    remembered = [host._version(v) for v in range(1, 7)]
    assert [host._version(v) for v in range(1, 7)] == remembered
    assert [
        (v.version, v.tx_id, v.output_index, v.smt_root, v.timestamp_ns) for v in remembered
    ] == recorded
    assert remembered[-1] is host.latest
    # heights that do not exist (yet) or of another revision cannot be proven
    with pytest.raises(IbcError, match="does not exist"):
        host.prove(path(1), 7)
    with pytest.raises(IbcError, match="revision"):
        host.prove(path(1), Height(1, 3))


def test_restart_resumes_at_the_same_version_and_root(net: EmbeddedNetwork) -> None:
    host = CordaIbcHost(net.node(OPERATOR))
    for i in range(1, 4):
        host.execute(_write(i))

    def end(state: ConnectionState) -> ConnectionEnd:
        return ConnectionEnd(
            "07-tendermint-0", (), state, ConnectionCounterparty("client-x-0", "", b"ibc")
        )

    host.execute(
        lambda s: (
            s.set_connection("connection-0", end(ConnectionState.INIT)),
            s.set_counter("connections", 1),
        )
    )
    version, root, linear_id = host.version, host.smt_root, host.linear_id
    old_proof = host.prove(path(2), 3)

    node = net.restart(OPERATOR)
    again = CordaIbcHost(node)  # type: ignore[arg-type]
    assert (again.version, again.smt_root, again.linear_id) == (version, root, linear_id)
    assert again.prove(path(2), 3) != b""
    verify_membership(again.client_state(), old_proof, path(2), value(2), version=3)
    verify_membership(again.client_state(), again.prove(path(2), 3), path(2), value(2), version=3)
    assert again.store.get_connection("connection-0") == end(ConnectionState.INIT)
    assert again.store.get_counter("connections") == 1
    again.execute(_write(7))
    assert again.version == version + 1
    verify_membership(again.client_state(), again.prove(path(7)), path(7), value(7))


def test_a_failed_call_records_nothing(net: EmbeddedNetwork) -> None:
    node = net.node(OPERATOR)
    host = CordaIbcHost(node)
    host.execute(_write(1))
    before = (host.version, host.smt_root, node.db.transaction_ids())

    def fails(store: HostStore) -> None:
        store.set(path(2), value(2))
        store.set_counter("clients", 5)
        raise IbcError("refused by the handler")

    with pytest.raises(IbcError, match="refused"):
        host.execute(fails)
    assert (host.version, host.smt_root, node.db.transaction_ids()) == before
    assert host.store.get(path(2)) is None and host.store.get_counter("clients") == 0
    with pytest.raises(IbcError):  # bad value: refused before anything is built
        host.execute(lambda s: s.set(path(3), bytes(32)))
    with pytest.raises(IbcError, match="inside a host call"):
        host.store.set(path(3), value(3))
    assert (host.version, host.smt_root, node.db.transaction_ids()) == before
    host.execute(_write(2))
    assert host.version == before[0] + 1


def test_a_refused_notarisation_rolls_the_store_back(net: EmbeddedNetwork) -> None:
    node = net.node(OPERATOR)
    clock = {"skew": 0}
    import time

    host = CordaIbcHost(node, clock=lambda: time.time_ns() + clock["skew"])
    host.execute(_write(1))
    before = (host.version, host.smt_root, node.db.transaction_ids())
    clock["skew"] = 3600 * 10**9  # an hour ahead: outside the notary's clock
    with pytest.raises(TimeWindowError):
        host.execute(_write(2))
    assert (host.version, host.smt_root, node.db.transaction_ids()) == before
    assert host.store.get(path(2)) is None
    clock["skew"] = 0
    host.execute(_write(2))
    assert host.version == before[0] + 1
    verify_membership(host.client_state(), host.prove(path(2)), path(2), value(2))


def test_an_unreachable_notary_leaves_the_change_pending_until_it_is_back(
    net: EmbeddedNetwork,
) -> None:
    node = net.node(OPERATOR)
    host = CordaIbcHost(node)
    host.execute(_write(1))
    net.stop(NOTARY)
    with pytest.raises(TransportError):
        host.execute(_write(2))
    assert host.version == 2
    with pytest.raises(NotaryError, match="unreachable"):
        host.execute(_write(3))
    net.start(NOTARY)
    # the pending change (version 3, path 2) is completed first, then the new call
    host.execute(_write(3))
    assert host.version == 4
    client = host.client_state()
    verify_membership(client, host.prove(path(2), 3), path(2), value(2), version=3)
    verify_non_membership(client, host.prove(path(3), 3), path(3), version=3)
    verify_membership(client, host.prove(path(3), 4), path(3), value(3), version=4)


def test_pending_change_is_completed_on_restart(net: EmbeddedNetwork) -> None:
    host = CordaIbcHost(net.node(OPERATOR))
    net.stop(NOTARY)
    with pytest.raises(TransportError):
        host.execute(_write(1))
    net.start(NOTARY)
    again = CordaIbcHost(net.restart(OPERATOR))  # type: ignore[arg-type]
    assert again.version == 2
    verify_membership(again.client_state(), again.prove(path(1)), path(1), value(1))


def test_the_contract_keeps_one_history(net: EmbeddedNetwork) -> None:
    node = net.node(OPERATOR)
    host = CordaIbcHost(node)
    host.execute(_write(1))
    current = host.host_state
    micros = current.timestamp_ns // 1000 + 1

    def attempt(version: int, command_version: int, timestamp_ns: int) -> None:
        state = IbcHostState(current.operator, current.linear_id, version, EMPTY_ROOT, timestamp_ns)
        wtx = WireTransaction.create(
            privacy_salt=random_bytes(32),
            inputs=[host.state.ref],
            outputs=[TransactionState(state, HOST_CONTRACT, host.notary)],
            commands=[Command(HostAdvance(command_version), (node.party.owning_key,))],
            notary=host.notary,
            time_window=TimeWindow(micros - 10_000_000, micros + 10_000_000),
        )
        node.finalise(node.sign(SignedTransaction(wtx, ())))

    with pytest.raises(ContractRejection, match="next host version"):
        attempt(current.version + 2, current.version + 2, micros * 1000)
    with pytest.raises(ContractRejection, match="time must move forward"):
        attempt(current.version + 1, current.version + 1, current.timestamp_ns)
    with pytest.raises(ContractRejection, match="time window"):
        attempt(current.version + 1, current.version + 1, (micros + 20_000_000) * 1000)
    assert host.version == 2


def test_ics02_client_follows_the_host(net: EmbeddedNetwork) -> None:
    host = CordaIbcHost(net.node(OPERATOR))
    client = CordaClient.from_attestation(host.client_state(), host.attestation())
    for i in range(1, 4):
        host.execute(_write(i))
        height = client.update(host.attestation(), 0)
        assert height == host.height
        client.verify_membership(height, host.prove(path(i)), host.prefix, path(i), value(i))
    with pytest.raises(VerificationError):
        client.verify_membership(host.height, host.prove(path(1)), host.prefix, path(1), value(2))


BANK_B = "O=Bank B, L=Tokyo, C=JP"


def test_real_handler_calls_connection_handshake_between_two_hosts(
    net: EmbeddedNetwork,
) -> None:
    """Two Corda-model hosts (Bank A, Bank B) open a connection with real IbcHandler calls:
    every call is one notarised version, every counterparty proof is a host proof verified by
    the ICS-02 Corda client; a failing call records nothing."""
    import time

    from kakehashi.ibc.host import connection_path

    a = CordaIbcHost(net.node(OPERATOR))
    b = CordaIbcHost(net.node(BANK_B))
    now = time.time_ns()
    a_client = a.ibc.create_client(CordaClient.from_attestation(b.client_state(), b.attestation()))
    b_client = b.ibc.create_client(CordaClient.from_attestation(a.client_state(), a.attestation()))
    assert (a.version, b.version) == (2, 2)
    assert a.store.get_client(a_client) is not None

    a_conn = a.ibc.conn_open_init(a_client, ConnectionCounterparty(b_client, "", b.prefix))
    assert a.version == 3
    init_end = a.store.get_connection(a_conn)
    assert init_end is not None and init_end.state is ConnectionState.INIT

    # a TRY with a proof of the wrong host version fails and records nothing
    proof_height = b.ibc.update_client(b_client, a.attestation(), now)
    assert proof_height == a.height and b.version == 3
    before = (b.version, b.smt_root)
    with pytest.raises(VerificationError):
        b.ibc.conn_open_try(
            b_client,
            ConnectionCounterparty(a_client, a_conn, a.prefix),
            init_end.versions,
            0,
            a.prove(connection_path(a_conn), 2),  # version 2: no connection yet
            proof_height,
        )
    assert (b.version, b.smt_root) == before
    b_conn = b.ibc.conn_open_try(
        b_client,
        ConnectionCounterparty(a_client, a_conn, a.prefix),
        init_end.versions,
        0,
        a.prove(connection_path(a_conn), proof_height),
        proof_height,
    )
    try_end = b.store.get_connection(b_conn)
    assert try_end is not None and try_end.state is ConnectionState.TRYOPEN

    proof_height = a_knows = a.ibc.update_client(a_client, b.attestation(), now)
    a.ibc.conn_open_ack(
        a_conn, b_conn, try_end.versions[0], b.prove(connection_path(b_conn)), proof_height
    )
    proof_height = b.ibc.update_client(b_client, a.attestation(), now)
    b.ibc.conn_open_confirm(b_conn, a.prove(connection_path(a_conn)), proof_height)
    version = a.version
    assert a.ibc.connection(a_conn).state is ConnectionState.OPEN  # read-only: no version
    assert a.version == version
    for side, conn in ((a, a_conn), (b, b_conn)):
        end = side.store.get_connection(conn)
        assert end is not None and end.state is ConnectionState.OPEN
        # the connection end's commitment is provable to the other side's client
        verify_membership(
            side.client_state(),
            side.prove(connection_path(conn)),
            connection_path(conn),
            side.store.get(connection_path(conn)) or b"",
        )
    # the clients survive a restart of the node (persisted through their codec)
    again = CordaIbcHost(net.restart(OPERATOR))  # type: ignore[arg-type]
    client = again.store.get_client(a_client)
    assert isinstance(client, CordaClient) and client.latest_height() == a_knows


@dataclass
class TwoHosts:
    """Two Corda-model hosts with an OPEN UNORDERED channel on port ``transfer``."""

    a: CordaIbcHost
    b: CordaIbcHost
    app_a: RecordingApp
    app_b: RecordingApp
    ca: str
    cb: str
    chan_a: str
    chan_b: str
    now: int

    def update(self, dst: CordaIbcHost, src: CordaIbcHost) -> Height:
        """Update ``dst``'s client of ``src`` to ``src``'s latest version."""
        client_id = self.ca if dst is self.a else self.cb
        height: Height = dst.ibc.update_client(client_id, src.attestation(), self.now)
        return height


def open_channel(
    net: EmbeddedNetwork,
    port: str = "transfer",
    apps: tuple[Any, Any] | None = None,
    version: str = "app-1",
) -> TwoHosts:
    """Clients, connection and channel between Bank A and Bank B with real handler calls
    (``apps``: the modules bound on ``port`` on each host; default RecordingApps)."""
    import time

    from kakehashi.ibc import host as paths
    from kakehashi.ibc.router import Router
    from kakehashi.ibc.types import ChannelCounterparty, ChannelState, Order

    app_a, app_b = apps or (RecordingApp(), RecordingApp())
    router_a, router_b = Router(), Router()
    router_a.bind(port, app_a)
    router_b.bind(port, app_b)
    a = CordaIbcHost(net.node(OPERATOR), router=router_a)
    b = CordaIbcHost(net.node(BANK_B), router=router_b)
    ca = a.ibc.create_client(CordaClient.from_attestation(b.client_state(), b.attestation()))
    cb = b.ibc.create_client(CordaClient.from_attestation(a.client_state(), a.attestation()))
    hosts = TwoHosts(a, b, app_a, app_b, ca, cb, "", "", time.time_ns())
    update = hosts.update
    conn_a = a.ibc.conn_open_init(ca, ConnectionCounterparty(cb, "", b.prefix))
    versions = a.handler.connection(conn_a).versions
    h = update(b, a)
    conn_b = b.ibc.conn_open_try(
        cb,
        ConnectionCounterparty(ca, conn_a, a.prefix),
        versions,
        0,
        a.prove(paths.connection_path(conn_a), h),
        h,
    )
    h = update(a, b)
    a.ibc.conn_open_ack(
        conn_a,
        conn_b,
        b.handler.connection(conn_b).versions[0],
        b.prove(paths.connection_path(conn_b), h),
        h,
    )
    h = update(b, a)
    b.ibc.conn_open_confirm(conn_b, a.prove(paths.connection_path(conn_a), h), h)

    chan_a = a.ibc.chan_open_init(
        port, Order.UNORDERED, [conn_a], ChannelCounterparty(port, ""), version
    )
    h = update(b, a)
    chan_b = b.ibc.chan_open_try(
        port,
        Order.UNORDERED,
        [conn_b],
        ChannelCounterparty(port, chan_a),
        version,
        a.prove(paths.channel_path(port, chan_a), h),
        h,
    )
    h = update(a, b)
    a.ibc.chan_open_ack(
        port, chan_a, chan_b, version, b.prove(paths.channel_path(port, chan_b), h), h
    )
    h = update(b, a)
    b.ibc.chan_open_confirm(port, chan_b, a.prove(paths.channel_path(port, chan_a), h), h)
    assert a.handler.channel(port, chan_a).state is ChannelState.OPEN
    assert b.handler.channel(port, chan_b).state is ChannelState.OPEN
    hosts.chan_a, hosts.chan_b = chan_a, chan_b
    return hosts


def test_channel_and_packets_between_two_hosts(net: EmbeddedNetwork) -> None:
    """Channel handshake, send → recv → ack, a refused packet and a timeout between two
    Corda-model hosts, with real handler calls and host proofs only (the test relays bytes)."""
    from kakehashi.ibc import host as paths

    hosts = open_channel(net)
    a, b, app_a, app_b = hosts.a, hosts.b, hosts.app_a, hosts.app_b
    chan_a, chan_b = hosts.chan_a, hosts.chan_b

    # send → recv → ack
    packet = a.ibc.send_packet("transfer", chan_a, Height(0, 10_000), 0, b"hello")
    commitment_path = paths.packet_commitment_path("transfer", chan_a, packet.sequence)
    h = hosts.update(b, a)
    ack = b.ibc.recv_packet(packet, a.prove(commitment_path, h), h)
    assert ack == b"ok:hello" and app_b.received == [packet]
    # a second delivery of the same packet is refused and records nothing
    before = (b.version, b.smt_root)
    with pytest.raises(IbcError):
        b.ibc.recv_packet(packet, a.prove(commitment_path, h), h)
    assert (b.version, b.smt_root) == before
    h = hosts.update(a, b)
    ack_path = paths.ack_path("transfer", chan_b, packet.sequence)
    a.ibc.acknowledge_packet(packet, ack, b.prove(ack_path, h), h)
    assert app_a.acknowledged == [(packet, ack)]
    assert a.store.get(commitment_path) is None

    # an application refusing a packet: nothing recorded, the packet can then time out
    app_b.ack_mode = "refuse"
    late = a.ibc.send_packet("transfer", chan_a, Height(0, b.version + 2), 0, b"refused")
    h = hosts.update(b, a)
    before = (b.version, b.smt_root)
    with pytest.raises(KakehashiErrorType):
        b.ibc.recv_packet(
            late,
            a.prove(paths.packet_commitment_path("transfer", chan_a, late.sequence), h),
            h,
        )
    assert (b.version, b.smt_root) == before
    b.execute(lambda s: s.set(b"padding/1", value(1)))  # b moves past the timeout height
    b.execute(lambda s: s.set(b"padding/2", value(2)))
    h = hosts.update(a, b)
    assert h.revision_height >= late.timeout_height.revision_height
    receipt = paths.packet_receipt_path("transfer", chan_b, late.sequence)
    a.ibc.timeout_packet(late, b.prove(receipt, h), h, 0)
    assert app_a.timed_out == [late]


def test_host_under_a_validating_notary(tmp_path: Path) -> None:
    """A validating notary runs the host contract itself (resolving the back-chain)."""
    network = EmbeddedNetwork.create(tmp_path / "vnet", validating=True)
    try:
        host = CordaIbcHost(network.node(OPERATOR))
        for i in range(1, 4):
            host.execute(_write(i))
        client = host.client_state()
        for version in range(1, 5):
            assert verify_host_state(client, host.attestation(version)).version == version
        verify_membership(client, host.prove(path(2), 3), path(2), value(2), version=3)
        # what the validating notary verified, it kept
        assert host.latest.tx_id in network.notary.db.transaction_ids()
    finally:
        network.close()


def test_batched_calls_make_one_version_and_concurrent_calls_queue(net: EmbeddedNetwork) -> None:
    import threading

    host = CordaIbcHost(net.node(OPERATOR))

    def batch(store: HostStore) -> None:
        for i in range(1, 11):
            store.set(path(i), value(i))

    host.execute(batch)
    assert host.version == 2
    client = host.client_state()
    for i in range(1, 11):
        verify_membership(client, host.prove(path(i)), path(i), value(i))

    errors: list[BaseException] = []

    def worker(start: int) -> None:
        try:
            for i in range(start, start + 5):
                host.execute(_write(i))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(100 + 10 * t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert host.version == 2 + 20
    for t in range(4):
        for i in range(100 + 10 * t, 105 + 10 * t):
            verify_membership(client, host.prove(path(i)), path(i), value(i))


def test_other_threads_read_only_committed_versions(net: EmbeddedNetwork) -> None:
    """A reader on another thread (the node's HTTP API while a relayer's call runs) sees the
    committed store, never the running call's writes; the calling thread sees its own."""
    import threading

    host = CordaIbcHost(net.node(OPERATOR))
    seen: dict[str, object] = {}

    def read_elsewhere() -> None:
        seen["value"] = host.store.get(path(1))
        seen["object"] = host.store.get_object("app:test", "k")

    def action(store: HostStore) -> None:
        store.set(path(1), value(1))
        store.set_object("app:test", "k", b"v")
        reader = threading.Thread(target=read_elsewhere)
        reader.start()
        reader.join()
        seen["own"] = store.get_object("app:test", "k")

    host.execute(action)
    assert seen == {"value": None, "object": None, "own": b"v"}
    read_elsewhere()
    assert seen["value"] == value(1) and seen["object"] == b"v"


@pytest.mark.postgres
def test_host_on_postgres_survives_restart(net: EmbeddedNetwork, fresh_postgres_db: str) -> None:
    from kakehashi.ledgers.corda.model.identity import X500Name
    from kakehashi.ledgers.corda.node.setup import open_node

    def reopen() -> CordaIbcHost:
        name = X500Name.parse(OPERATOR)
        net.stop(name)
        node = open_node(net.directory, net.map, name, net.transport, db_url=fresh_postgres_db)
        net.nodes[name] = node
        net.transport.register(name, node.handle)
        return CordaIbcHost(node)

    host = reopen()
    assert host.engine.dialect.name == "postgresql"
    for i in range(1, 4):
        host.execute(_write(i))
    host.execute(lambda s: s.delete(path(1)))
    root = host.smt_root
    again = reopen()
    assert (again.version, again.smt_root) == (5, root)
    client = again.client_state()
    verify_membership(client, again.prove(path(1), 4), path(1), value(1), version=4)
    verify_non_membership(client, again.prove(path(1)), path(1))
    again.execute(_write(9))
    assert again.store.get(path(9)) == value(9)
    # the packet queries' join runs on PostgreSQL too (no packets on this host)
    assert again.sent_packets("transfer", "channel-0") == []
    assert again.written_acks("transfer", "channel-0") == []
    net.stop(OPERATOR)  # dispose the engine before the database is dropped


def test_operator_equivocation_freezes_the_counterparty_client(net: EmbeddedNetwork) -> None:
    """An operator that signs a second host state for a version it already published (here by
    consuming another of its states, which the notary cannot tell apart) is caught: the
    counterparty's client freezes, the freeze is recorded, and every later proof fails."""
    import time

    from kakehashi.ibc.client import ClientStatus
    from kakehashi.ledgers.corda.merkle import ComponentGroup
    from kakehashi.ledgers.corda.model.serialization import serialize
    from kakehashi.ledgers.corda.tokens.flows import issue_tokens
    from kakehashi.ledgers.corda.tokens.model import TokenType
    from kakehashi.lightclients.corda import HostStateAttestation

    a = CordaIbcHost(net.node(OPERATOR))
    b = CordaIbcHost(net.node(BANK_B))
    cb = b.ibc.create_client(CordaClient.from_attestation(a.client_state(), a.attestation()))
    a.execute(_write(1))
    b.ibc.update_client(cb, a.attestation(), time.time_ns())

    operator = net.node(OPERATOR)
    spare = issue_tokens(operator, TokenType("SPARE", 0), 1, operator.party)
    real = a.host_state
    fake = IbcHostState(
        real.operator, real.linear_id, real.version, b"\x42" * 32, real.timestamp_ns
    )
    micros = fake.timestamp_ns // 1000
    wtx = WireTransaction.create(
        privacy_salt=random_bytes(32),
        inputs=[spare.tx.out_ref(0).ref],
        outputs=[TransactionState(fake, HOST_CONTRACT, a.notary)],
        commands=[Command(HostAdvance(fake.version), (operator.party.owning_key,))],
        notary=a.notary,
        time_window=TimeWindow(micros - 10_000_000, micros + 10_000_000),
    )
    stx = operator.sign(SignedTransaction(wtx, ()))
    notary_signature = operator.notarise(stx)
    shown = {ComponentGroup.INPUTS, ComponentGroup.NOTARY, ComponentGroup.TIMEWINDOW}
    tear_off = wtx.filtered(lambda g, _i, _d: g in shown or g == ComponentGroup.OUTPUTS)
    forged = serialize(HostStateAttestation(notary_signature, stx.sigs[0], tear_off))
    assert verify_host_state(a.client_state(), forged).version == real.version  # it verifies

    b.ibc.update_client(cb, forged, time.time_ns())
    frozen = b.handler.client(cb)
    assert frozen.status(time.time_ns()) is ClientStatus.FROZEN
    assert frozen.latest_height() == a.height  # the forged state was not kept
    with pytest.raises(VerificationError, match="frozen"):
        frozen.verify_membership(a.height, a.prove(path(1)), a.prefix, path(1), value(1))
    with pytest.raises(IbcError, match="Frozen"):
        b.ibc.update_client(cb, a.attestation(), time.time_ns())


def test_client_updates_use_the_hosts_own_clock_by_default(net: EmbeddedNetwork) -> None:
    """A relayer cannot choose the time a client checks expiry and clock drift against."""
    a = CordaIbcHost(net.node(OPERATOR))
    b = CordaIbcHost(net.node(BANK_B))
    cb = b.ibc.create_client(CordaClient.from_attestation(a.client_state(), a.attestation()))
    a.execute(_write(1))
    assert b.ibc.update_client(cb, a.attestation()) == a.height


def test_an_lcp_client_is_persisted_and_reads_the_hosts_clock(net: EmbeddedNetwork) -> None:
    """The Corda host stores LCP clients (the EVM chain seen through LCP) and gives them its own
    clock for key expiry, never the wall clock or a caller's."""
    from kakehashi.ibc.clients.lcp import LcpIbcClient
    from tests.ibc.test_lcp_adapter import new_client

    host = CordaIbcHost(net.node(OPERATOR))
    created = new_client("client-02")
    client_id = host.ibc.create_client(created)
    stored = host.handler.client(client_id)
    assert isinstance(stored, LcpIbcClient)
    assert stored.to_bytes() == created.to_bytes()
    assert stored.clock() == host.pending_timestamp_ns()
    again = CordaIbcHost(net.node(OPERATOR))  # a restarted host decodes it the same way
    assert again.handler.client(client_id).client_state() == created.client_state()


def test_the_host_records_the_packets_it_sends_and_the_acks_it_writes(
    net: EmbeddedNetwork,
) -> None:
    """Packet and acknowledgement contents are recorded with the version that committed them:
    not for a failed call, yes for a change completed after the notary came back, kept across
    a restart; the queries return only what the host still commits to."""
    from sqlalchemy import select

    from kakehashi.ibc import host as paths
    from kakehashi.ibc.corda_host.host import sent_packets

    hosts = open_channel(net)
    a, b, chan_a, chan_b = hosts.a, hosts.b, hosts.chan_a, hosts.chan_b
    timeout = Height(0, 10_000)

    def send_then_fail(_store: HostStore) -> None:
        a.handler.send_packet("transfer", chan_a, timeout, 0, b"never committed")
        raise IbcError("the caller gives up")

    with pytest.raises(IbcError, match="gives up"):
        a.execute(send_then_fail)
    assert a.sent_packets("transfer", chan_a) == []

    # the notary is down: the change stays pending, and so does its packet
    net.stop(NOTARY)
    with pytest.raises(TransportError):
        a.ibc.send_packet("transfer", chan_a, timeout, 0, b"one")
    assert a.sent_packets("transfer", chan_a) == []
    net.start(NOTARY)
    router_a = a.handler.router
    a = CordaIbcHost(net.restart(OPERATOR), router=router_a)  # type: ignore[arg-type]
    hosts.a = a
    [one] = a.sent_packets("transfer", chan_a)
    assert (one.sequence, one.data, one.destination_channel) == (1, b"one", chan_b)

    # two packets sent in one host call (one version)
    batch = a.execute(
        lambda _s: [a.handler.send_packet("transfer", chan_a, timeout, 0, d) for d in (b"2", b"3")]
    )
    assert a.sent_packets("transfer", chan_a) == [one, *batch]
    assert a.sent_packets("transfer", chan_a, from_sequence=2) == batch
    with a.engine.connect() as conn:
        rows = conn.execute(select(sent_packets.c.sequence, sent_packets.c.version)).fetchall()
    assert sorted(rows) == [(1, a.version - 1), (2, a.version), (3, a.version)]

    # b acknowledges the first at once and the second later (asynchronously)
    def deliver(packet: Packet) -> bytes | None:
        h = hosts.update(b, a)
        path = paths.packet_commitment_path("transfer", chan_a, packet.sequence)
        ack: bytes | None = b.ibc.recv_packet(packet, a.prove(path, h), h)
        return ack

    assert deliver(one) == b"ok:one"
    assert b.written_acks("transfer", chan_b) == [(one, b"ok:one")]
    hosts.app_b.ack_mode = "async"
    assert deliver(batch[0]) is None
    assert b.written_acks("transfer", chan_b) == [(one, b"ok:one")]
    b.ibc.write_acknowledgement(batch[0], b"later")
    assert b.written_acks("transfer", chan_b) == [(one, b"ok:one"), (batch[0], b"later")]
    assert b.written_acks("transfer", chan_b, from_sequence=2) == [(batch[0], b"later")]
    assert b.sent_packets("transfer", chan_b) == []

    # acknowledged on a: its commitment is gone, so it is no longer returned
    h = hosts.update(a, b)
    a.ibc.acknowledge_packet(one, b"ok:one", b.prove(paths.ack_path("transfer", chan_b, 1), h), h)
    assert a.sent_packets("transfer", chan_a) == batch

    # a restart keeps them
    again = CordaIbcHost(net.restart(BANK_B))  # type: ignore[arg-type]
    assert again.written_acks("transfer", chan_b) == [(one, b"ok:one"), (batch[0], b"later")]
    again = CordaIbcHost(net.restart(OPERATOR), router=router_a)  # type: ignore[arg-type]
    assert again.sent_packets("transfer", chan_a) == batch
