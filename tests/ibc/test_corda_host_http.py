"""The Corda-model IBC host over HTTP: a real uvicorn server on 127.0.0.1 serving the node app
with ``/ibc`` over a host on an embedded network, driven by :class:`RemoteCordaHost` as a relayer
in another process would drive it. The counterparty is a second host in process; the test relays
bytes and every proof is verified by the receiving host's real light client."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from kakehashi.errors import (
    ConfigurationError,
    IbcError,
    SerializationError,
    TransportError,
    VerificationError,
)
from kakehashi.ibc import host as paths
from kakehashi.ibc import msgs
from kakehashi.ibc.client import LightClient
from kakehashi.ibc.clients.corda import CLIENT_TYPE, CordaClient
from kakehashi.ibc.corda_host import CordaIbcHost
from kakehashi.ibc.corda_host.api import CordaHostApi
from kakehashi.ibc.corda_host.http import (
    MAX_BATCH_BYTES,
    MAX_BATCH_MESSAGES,
    create_ibc_router,
)
from kakehashi.ibc.corda_host.remote import RemoteCordaHost
from kakehashi.ibc.echo import NO_ACK, VERSION, EchoModule, echo_ack
from kakehashi.ibc.router import Router
from kakehashi.ibc.types import (
    ChannelCounterparty,
    ChannelState,
    ConnectionCounterparty,
    ConnectionState,
    Height,
    Order,
    Packet,
)
from kakehashi.ledgers.corda.model.serialization import deserialize, serialize
from kakehashi.ledgers.corda.node.http import create_app
from kakehashi.ledgers.corda.node.setup import EmbeddedNetwork
from kakehashi.lightclients.corda import CordaClientState
from kakehashi.ops.serving import serve

BANK_A = "O=Bank A, L=London, C=GB"
BANK_B = "O=Bank B, L=Tokyo, C=JP"
TOKEN = "test-rpc-token"
PORT = "echo"
FAR = Height(0, 1_000_000)


def corda_clients(client_type: str, client_state: bytes, consensus_state: bytes) -> LightClient:
    """Test host policy: ``MsgCreateClient`` of a Corda-host client (state, first attestation)."""
    if client_type != CLIENT_TYPE:
        raise IbcError(f"this test host creates {CLIENT_TYPE!r} clients only")
    return CordaClient.from_attestation(
        deserialize(client_state, CordaClientState), consensus_state
    )


@dataclass
class Served:
    net: EmbeddedNetwork
    a: CordaIbcHost  # served over HTTP
    b: CordaIbcHost  # the counterparty, in process
    echo_a: EchoModule
    echo_b: EchoModule
    remote: RemoteCordaHost
    url: str
    http: httpx.Client


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    net = EmbeddedNetwork.create(tmp_path / "net")
    echo_a, echo_b = EchoModule(), EchoModule()
    router_a, router_b = Router(), Router()
    router_a.bind(PORT, echo_a)
    router_b.bind(PORT, echo_b)
    a = CordaIbcHost(net.node(BANK_A), router=router_a, client_factory=corda_clients)
    b = CordaIbcHost(net.node(BANK_B), router=router_b)
    app = create_app(net.node(BANK_A), TOKEN)  # the node's own app, as `corda serve --ibc`
    app.include_router(create_ibc_router(a, app_token=TOKEN))
    with ExitStack() as stack:
        stack.callback(net.close)
        url = stack.enter_context(serve(app))
        remote = stack.enter_context(RemoteCordaHost(url, app_token=TOKEN))
        http = stack.enter_context(httpx.Client(base_url=url, trust_env=False, timeout=30))
        yield Served(net, a, b, echo_a, echo_b, remote, url, http)


@dataclass
class Channel:
    ca: str  # a's client of b
    cb: str  # b's client of a
    conn_a: str
    conn_b: str
    chan_a: str
    chan_b: str


def update_b(s: Served) -> Height:
    """b's client of a, updated from what the remote host serves."""
    height: Height = s.b.ibc.update_client("corda-host-0", s.remote.attestation())
    return height


def open_channel(s: Served) -> Channel:
    """Clients, connection and channel: a's side only through ``/ibc/submit`` batches."""
    ra, b = s.remote, s.b
    [ca] = ra.submit(
        [msgs.MsgCreateClient(CLIENT_TYPE, serialize(b.client_state()), b.attestation(b.height))]
    ).values
    cb = b.ibc.create_client(CordaClient.from_attestation(ra.client_state(), ra.attestation()))
    assert cb == "corda-host-0"

    [conn_a] = ra.submit(
        [msgs.MsgConnectionOpenInit(ca, ConnectionCounterparty(cb, "", b.prefix))]
    ).values
    end = ra.connection_end(conn_a)
    assert end is not None and end.state is ConnectionState.INIT
    h = update_b(s)
    conn_b = b.ibc.conn_open_try(
        cb,
        ConnectionCounterparty(ca, conn_a, ra.prefix),
        end.versions,
        0,
        ra.prove(paths.connection_path(conn_a), h),
        h,
    )
    # a batch of two messages: the update and the ack that uses it, one host version
    before = ra.height
    hb = b.height
    done = ra.submit(
        [
            msgs.MsgUpdateClient(ca, b.attestation(hb)),
            msgs.MsgConnectionOpenAck(
                conn_a,
                conn_b,
                b.handler.connection(conn_b).versions[0],
                b.prove(paths.connection_path(conn_b), hb),
                hb,
            ),
        ]
    )
    assert done.values == (hb, None)
    assert done.height == Height(0, before.revision_height + 1) == ra.height
    assert done.tx_id == s.a.latest.tx_id and len(done.tx_id) == 32
    h = update_b(s)
    b.ibc.conn_open_confirm(conn_b, ra.prove(paths.connection_path(conn_a), h), h)

    [chan_a] = ra.submit(
        [
            msgs.MsgChannelOpenInit(
                PORT, Order.UNORDERED, (conn_a,), ChannelCounterparty(PORT, ""), ""
            )
        ]
    ).values
    h = update_b(s)
    chan_b = b.ibc.chan_open_try(
        PORT,
        Order.UNORDERED,
        [conn_b],
        ChannelCounterparty(PORT, chan_a),
        VERSION,
        ra.prove(paths.channel_path(PORT, chan_a), h),
        h,
    )
    hb = b.height
    ra.submit(
        [
            msgs.MsgUpdateClient(ca, b.attestation(hb)),
            msgs.MsgChannelOpenAck(
                PORT, chan_a, chan_b, VERSION, b.prove(paths.channel_path(PORT, chan_b), hb), hb
            ),
        ]
    )
    h = update_b(s)
    b.ibc.chan_open_confirm(PORT, chan_b, ra.prove(paths.channel_path(PORT, chan_a), h), h)
    return Channel(ca, cb, conn_a, conn_b, chan_a, chan_b)


def test_remote_reads_equal_the_hosts_and_batches_relay_packets(served: Served) -> None:
    s, ra, a, b = served, served.remote, served.a, served.b
    assert isinstance(ra, CordaHostApi)
    ch = open_channel(s)
    end = ra.channel_end(PORT, ch.chan_a)
    assert end is not None and end.state is ChannelState.OPEN and end.version == VERSION
    assert s.echo_a.open_channels == s.echo_b.open_channels == 1

    # a's application sends (with the node's token); b receives, acknowledges synchronously
    packet = ra.send_packet(PORT, ch.chan_a, b"hello", FAR, 0)
    assert (packet.sequence, packet.data, packet.destination_channel) == (1, b"hello", ch.chan_b)
    h = update_b(s)
    commitment = paths.packet_commitment_path(PORT, ch.chan_a, 1)
    ack = b.ibc.recv_packet(packet, ra.prove(commitment, h), h)
    assert ack == echo_ack(b"hello") and s.echo_b.received == 1
    assert s.echo_b.last_data == b"hello"

    # b sends; a receives it through a batch (update + recv): its answer is the echo ack
    ping = b.ibc.send_packet(PORT, ch.chan_b, FAR, 0, b"ping")
    hb = b.height
    done = ra.submit(
        [
            msgs.MsgUpdateClient(ch.ca, b.attestation(hb)),
            msgs.MsgRecvPacket(
                ping, b.prove(paths.packet_commitment_path(PORT, ch.chan_b, 1), hb), hb
            ),
        ]
    )
    assert done.values == (hb, echo_ack(b"ping"))
    assert s.echo_a.received == 1 and s.echo_a.last_data == b"ping"

    # a second packet from a stays unrelayed: it is what sent_packets shows
    second = ra.send_packet(PORT, ch.chan_a, NO_ACK, FAR, 0)

    # every read the relayer makes equals the host's own
    assert ra.prefix == a.prefix and ra.height == a.height
    assert ra.client_state() == a.client_state()
    for version in (1, 3, a.version):
        assert ra.attestation(Height(0, version)) == a.attestation(version)
    assert ra.attestation() == a.attestation()
    missing = b"commitments/ports/echo/channels/channel-9/sequences/1"
    for p in (commitment, paths.connection_path(ch.conn_a), missing):
        for at in (Height(0, 2), a.height):
            assert ra.prove(p, at) == a.prove(p, at)
            assert ra.value_at(p, at) == a.value_at(p, at)
    assert ra.value_at(missing) is None
    assert ra.value_at(paths.connection_path(ch.conn_a)) is not None
    assert ra.connection_end(ch.conn_a) == a.connection_end(ch.conn_a)
    assert ra.connection_end("connection-9") is None
    assert ra.channel_end(PORT, ch.chan_a) == a.channel_end(PORT, ch.chan_a)
    assert ra.channel_end(PORT, "channel-9") is None
    assert ra.sent_packets(PORT, ch.chan_a) == a.sent_packets(PORT, ch.chan_a)
    assert ra.sent_packets(PORT, ch.chan_a) == [packet, second]
    assert ra.sent_packets(PORT, ch.chan_a, from_sequence=2) == [second]
    assert ra.written_acks(PORT, ch.chan_a) == a.written_acks(PORT, ch.chan_a)
    assert ra.written_acks(PORT, ch.chan_a) == [(ping, echo_ack(b"ping"))]
    assert ra.written_acks(PORT, ch.chan_a, from_sequence=2) == []
    assert s.http.get("/ibc/info").json()["ports"] == [PORT]
    assert ra.client_latest_height(ch.ca) == a.client_latest_height(ch.ca) == b.height
    answer = s.http.get("/ibc/clients/corda-host-9/height")
    assert answer.status_code == 404 and answer.json()["error"] == "IbcError"
    with pytest.raises(IbcError, match="corda-host-9"):
        ra.client_latest_height("corda-host-9")

    # the acknowledgement of "hello" back to a: its commitment is gone from sent_packets
    hb = b.height
    ra.submit(
        [
            msgs.MsgUpdateClient(ch.ca, b.attestation(hb)),
            msgs.MsgAcknowledgement(
                packet, ack, b.prove(paths.ack_path(PORT, ch.chan_b, 1), hb), hb
            ),
        ]
    )
    assert s.echo_a.acknowledged == 1 and s.echo_a.last_ack == echo_ack(b"hello")
    assert ra.sent_packets(PORT, ch.chan_a) == [second]

    # "no-ack" is received without an acknowledgement (written later, as on the EVM app)
    h = update_b(s)
    proof = ra.prove(paths.packet_commitment_path(PORT, ch.chan_a, 2), h)
    assert b.ibc.recv_packet(second, proof, h) is None
    assert s.echo_b.awaiting_ack == [second] and b.written_acks(PORT, ch.chan_b) == [
        (packet, echo_ack(b"hello"))
    ]


def test_a_failing_batch_changes_nothing_and_raises_the_typed_error(served: Served) -> None:
    s, ra, a, b = served, served.remote, served.a, served.b
    ch = open_channel(s)
    before = (ra.height, a.smt_root)
    bad = [
        msgs.MsgConnectionOpenInit(ch.ca, ConnectionCounterparty(ch.cb, "", b.prefix)),
        msgs.MsgUpdateClient("corda-host-9", b.attestation()),
    ]
    with pytest.raises(IbcError) as refused:
        ra.submit(bad)
    assert type(refused.value) is IbcError and "corda-host-9" in str(refused.value)
    assert (ra.height, a.smt_root) == before
    assert ra.connection_end("connection-1") is None

    # a proof that does not verify: VerificationError (HTTP 422), nothing recorded
    ping = b.ibc.send_packet(PORT, ch.chan_b, FAR, 0, b"ping")
    hb = b.height
    wrong = b.prove(paths.packet_commitment_path(PORT, ch.chan_b, 9), hb)
    batch = [
        msgs.MsgUpdateClient(ch.ca, b.attestation(hb)),
        msgs.MsgRecvPacket(ping, wrong, hb),
    ]
    with pytest.raises(VerificationError):
        ra.submit(batch)
    answer = s.http.post("/ibc/submit", json={"msgs": msgs.encode_batch(batch).hex()})
    assert answer.status_code == 422
    assert answer.json()["error"] in {"VerificationError", "SignatureError"}
    assert (ra.height, a.smt_root) == before and s.echo_a.received == 0
    with pytest.raises(IbcError, match="empty batch"):
        ra.submit([])

    # malformed input is 400 / SerializationError, a version that does not exist 404
    too_many = [msgs.MsgChannelCloseInit(PORT, "channel-0")] * (MAX_BATCH_MESSAGES + 1)
    too_long = "00" * (MAX_BATCH_BYTES + 1)
    for body in (
        {"msgs": "zz"},
        {"msgs": "a1"},
        {"nothing": 1},
        {"msgs": msgs.encode_batch(too_many).hex()},
        {"msgs": too_long},
    ):
        answer = s.http.post("/ibc/submit", json=body)
        assert answer.status_code == 400 and answer.json()["error"] == "SerializationError"
    answer = s.http.get(f"/ibc/packets/{PORT}/channel-0", params={"from_sequence": "-1"})
    assert answer.status_code == 400 and answer.json()["error"] == "SerializationError"
    answer = s.http.get("/ibc/proof", params={"path": "not hex"})
    assert answer.status_code == 400 and answer.json()["error"] == "SerializationError"
    with pytest.raises(SerializationError, match="hex"):
        ra._get("/ibc/proof", path="not hex")
    with pytest.raises(SerializationError, match="height"):
        ra._get("/ibc/value", path="00", height="yesterday")
    answer = s.http.get("/ibc/attestation", params={"height": str(a.version + 5)})
    assert answer.status_code == 404 and answer.json()["error"] == "IbcError"
    with pytest.raises(IbcError, match="does not exist"):
        ra.prove(b"clients/x", Height(0, a.version + 5))
    with pytest.raises(IbcError, match="revision"):
        ra.attestation(Height(3, 1))
    assert (ra.height, a.smt_root) == before


def test_send_needs_the_nodes_token(served: Served) -> None:
    s, ra, a = served, served.remote, served.a
    ch = open_channel(s)
    body = {
        "port_id": PORT,
        "channel_id": ch.chan_a,
        "data": b"x".hex(),
        "timeout_height": [0, 1_000_000],
        "timeout_timestamp": 0,
    }
    version = a.version
    assert s.http.post("/ibc/send", json=body).status_code == 401
    wrong = {"Authorization": f"Bearer {TOKEN}x"}
    assert s.http.post("/ibc/send", json=body, headers=wrong).status_code == 401
    with RemoteCordaHost(s.url, app_token="wrong") as impostor:
        with pytest.raises(ConfigurationError, match=r"rpc\.token"):
            impostor.send_packet(PORT, ch.chan_a, b"x", FAR)
    with RemoteCordaHost(s.url) as anonymous:
        with pytest.raises(ConfigurationError, match="token"):
            anonymous.send_packet(PORT, ch.chan_a, b"x", FAR)
        assert anonymous.height == a.height  # reads need no token
    assert a.version == version and a.sent_packets(PORT, ch.chan_a) == []

    answer = s.http.post("/ibc/send", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200
    assert Packet.decode(bytes.fromhex(answer.json()["packet"])).data == b"x"
    assert a.version == version + 1
    # a send the handler refuses (unknown channel) is the host's typed error, nothing recorded
    with pytest.raises(IbcError, match="channel-9"):
        ra.send_packet(PORT, "channel-9", b"x", FAR)
    assert a.version == version + 1

    # without an application token the endpoint does not exist
    router = create_ibc_router(a)
    assert "/ibc/send" not in {getattr(r, "path", "") for r in router.routes}
    assert "/ibc/submit" in {getattr(r, "path", "") for r in router.routes}


def test_unreachable_or_non_ibc_servers_are_transport_errors(served: Served) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]  # nothing listens once the socket is closed
    with RemoteCordaHost(f"http://127.0.0.1:{closed}", timeout=2) as nowhere:
        with pytest.raises(TransportError, match="--ibc"):
            _ = nowhere.height
    # a node served without --ibc: its app answers 404 for /ibc/*
    with (
        serve(create_app(served.net.node(BANK_B), TOKEN)) as plain,
        RemoteCordaHost(plain) as node_only,
        pytest.raises(TransportError, match="--ibc"),
    ):
        _ = node_only.prefix


@pytest.mark.multiprocess
@pytest.mark.timeout(120)
def test_corda_serve_ibc_serves_the_host_and_its_echo_module(tmp_path: Path) -> None:
    """``kakehashi corda serve --ibc`` as a separate process: the host is created, served under
    /ibc with the echo module bound, typed errors cross the process boundary, and a restart
    resumes the same host. A notary refuses --ibc."""
    import subprocess

    from tests.e2e.procs import ProcessNetwork, child_env, kakehashi_command

    notary = "O=Notary, L=Zurich, C=CH"
    net = ProcessNetwork(tmp_path, notary, [BANK_A])
    try:
        refused = subprocess.run(
            [*kakehashi_command(), "corda", "serve", str(net.directory), "--name", notary, "--ibc"],
            capture_output=True,
            env=child_env(),
            timeout=60,
            check=False,
        )
        assert refused.returncode == 2 and b"is a notary" in refused.stderr
        party = net.parties[BANK_A]
        party.extra_args = ["--ibc"]
        net.start_all()
        with RemoteCordaHost(party.url, app_token=net.token(BANK_A)) as remote:
            info = remote.info()
            # the echo module and the Cross Framework module
            assert info["ports"] == ["cross", PORT] and remote.height == Height(0, 1)
            prefix = remote.prefix
            log = party.log_tail()
            assert f"IBC host prefix 0x{prefix.hex()} at version 1" in log
            assert "echo module on port 'echo'" in log
            with pytest.raises(IbcError, match="channel-0"):
                remote.send_packet(PORT, "channel-0", b"x", FAR)
            with pytest.raises(IbcError, match="client"):
                remote.submit(
                    [
                        msgs.MsgConnectionOpenInit(
                            "07-tendermint-0", ConnectionCounterparty("c", "", b"p")
                        )
                    ]
                )
            assert remote.height == Height(0, 1)
            answer = net.client.post(f"{party.url}/ibc/send", json={})
            assert answer.status_code == 401
        net.restart(BANK_A)
        with RemoteCordaHost(party.url) as again:
            assert again.prefix == prefix and again.height == Height(0, 1)
    except BaseException:
        print(net.logs_text())
        raise
    finally:
        net.close()
