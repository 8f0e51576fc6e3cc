"""The Python client of the LCP service, against the REAL service (``create_app`` over a real
:class:`~kakehashi.lcp.enclave.Enclave`) served by uvicorn on a 127.0.0.1 socket, over a real
embedded EVM chain and Corda-model host.

Every answer the client returns is checked by the LCP light client (which the ledgers run), not
by the client; errors come back as the enclave's own error classes; a service that is gone is an
:class:`~kakehashi.lcp.client.LcpUnavailableError`; and a restarted service continues its light
clients from the sealed files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from kakehashi.errors import SerializationError, VerificationError
from kakehashi.ibc import host as paths
from kakehashi.ibc.types import ConnectionCounterparty
from kakehashi.lcp.client import LcpServiceClient, LcpUnavailableError
from kakehashi.lcp.enclave import MRENCLAVE, Enclave, SignedMessage, UnknownClientError
from kakehashi.lcp.messages import (
    Height,
    UpdateStateProxyMessage,
    VerifyMembershipProxyMessage,
    decode,
)
from kakehashi.lcp.service import create_app
from kakehashi.ledgers.corda.model.serialization import serialize
from kakehashi.lightclients.lcp import (
    LcpClientState,
    create_client,
    encode_commitment_proof,
    register_enclave_key,
    update_state,
    verify_membership,
    verify_non_membership,
)
from kakehashi.ops.serving import serve
from tests.lcp.test_enclave import SECRET, World, world  # noqa: F401

KEY_EXPIRATION_S = 3600


def proof_of(signed: SignedMessage) -> bytes:
    return encode_commitment_proof(signed.message, [signed.signature])


def test_every_method_round_trips_through_the_real_service(world: World) -> None:  # noqa: F811
    enclave, evm, corda = world.enclave, world.evm, world.corda
    with serve(create_app(enclave)) as url, LcpServiceClient(url) as lcp:
        health = lcp.health()
        assert health == {"status": "ok", "simulation": True, "enclave_key": enclave.address.hex()}

        evidence = lcp.attestation()
        assert evidence.enclave_key == enclave.address and evidence.simulation
        assert evidence.mrenclave == MRENCLAVE
        assert evidence.root_certificate == enclave.root_certificate
        assert evidence.keys == (enclave.attestation(),) and evidence.current == evidence.keys[0]
        state = LcpClientState(
            MRENCLAVE,
            KEY_EXPIRATION_S,
            root_certificates=(evidence.root_certificate,),
            development=True,
        )

        # EVM chain: create, update, prove a commitment and an absence.
        created = lcp.create_qbft_client(
            evm.header(evm.height()),
            list(world.chain.validators),
            chain_id=world.chain.chain_id,
            ibc_handler=evm.prefix,
        )
        assert created.client_id in enclave.client_ids()
        assert created.height == enclave.latest_height(created.client_id)
        now = world.clock()
        client = create_client(state, created.message.message, now)
        current = evidence.current
        client = register_enclave_key(
            client, current.avr, current.signature, current.signing_cert, None, now
        )
        connection = evm.conn_open_init(ConnectionCounterparty(corda.client_id, "", corda.prefix))
        path = paths.connection_path(connection)
        height = evm.height()
        value = evm.value(path, height)
        assert value is not None
        post, update = lcp.update_client(created.client_id, evm.header(height))
        assert post == Height(0, height.revision_height) and update.signer == enclave.address
        client, held = update_state(client, update.message, [update.signature], world.clock())
        assert held == post

        member = lcp.verify_membership(
            created.client_id, post, evm.prefix, path, value, evm.prove(path, height)
        )
        assert isinstance(decode(member.message), VerifyMembershipProxyMessage)
        verify_membership(client, post, proof_of(member), evm.prefix, path, value, world.clock())
        absent = paths.connection_path("connection-99")
        non_member = lcp.verify_non_membership(
            created.client_id, post, evm.prefix, absent, evm.prove(absent, height)
        )
        verify_non_membership(client, post, proof_of(non_member), evm.prefix, absent, world.clock())

        # Aggregation of two consecutive updates, accepted by the light client.
        evm.conn_open_init(ConnectionCounterparty(corda.client_id, "", corda.prefix))
        later_post, later = lcp.update_client(created.client_id, evm.header(evm.height()))
        aggregated = lcp.aggregate([update, later])
        message = decode(aggregated.message)
        assert isinstance(message, UpdateStateProxyMessage) and message.post_height == later_post
        fresh = register_enclave_key(
            create_client(state, created.message.message, world.clock()),
            current.avr,
            current.signature,
            current.signing_cert,
            None,
            world.clock(),
        )
        _, aggregated_height = update_state(
            fresh, aggregated.message, [aggregated.signature], world.clock()
        )
        assert aggregated_height == later_post

        # Corda host: create and update.
        host = lcp.create_corda_client(
            serialize(corda.host.client_state()), corda.host.attestation()
        )
        assert host.client_id.startswith("corda-host-")
        assert host.height == Height(0, corda.height().revision_height)
        corda.conn_open_init(ConnectionCounterparty(evm.client_id, "", evm.prefix))
        corda_post, _ = lcp.update_client(host.client_id, corda.header(corda.height()))
        assert corda_post == enclave.latest_height(host.client_id)

        # Rotation: the new key signs from now on; both keys are listed.
        rotated = lcp.rotate_key()
        assert rotated.address == enclave.address != current.address
        assert [k.address for k in lcp.attestation().keys] == [current.address, rotated.address]
        evm.conn_open_init(ConnectionCounterparty(corda.client_id, "", corda.prefix))
        _, after_rotation = lcp.update_client(created.client_id, evm.header(evm.height()))
        assert after_rotation.signer == rotated.address


def test_errors_come_back_typed(world: World) -> None:  # noqa: F811
    enclave, evm, corda = world.enclave, world.evm, world.corda
    with serve(create_app(enclave)) as url, LcpServiceClient(url) as lcp:
        created = lcp.create_qbft_client(
            evm.header(evm.height()),
            list(world.chain.validators),
            chain_id=world.chain.chain_id,
            ibc_handler=evm.prefix,
        )
        connection = evm.conn_open_init(ConnectionCounterparty(corda.client_id, "", corda.prefix))
        path = paths.connection_path(connection)
        height = evm.height()
        post, update = lcp.update_client(created.client_id, evm.header(height))
        signed_before = enclave.signatures_made

        with pytest.raises(UnknownClientError, match="qbft-evm-42"):
            lcp.update_client("qbft-evm-42", evm.header(height))
        with pytest.raises(UnknownClientError):  # quoted: never another route
            lcp.update_client("../aggregate", evm.header(height))
        with pytest.raises(VerificationError, match="does not commit"):
            lcp.verify_membership(
                created.client_id, post, evm.prefix, path, b"\x11" * 32, evm.prove(path, height)
            )
        with pytest.raises(VerificationError, match="commits a value"):
            lcp.verify_non_membership(
                created.client_id, post, evm.prefix, path, evm.prove(path, height)
            )
        with pytest.raises(VerificationError, match="at least two"):
            lcp.aggregate([update])
        with pytest.raises(SerializationError, match="malformed Corda client state"):
            lcp.create_corda_client(b"not a client state", corda.host.attestation())
        with pytest.raises(SerializationError, match="malformed"):  # the request's schema
            lcp.create_qbft_client(
                evm.header(height),
                list(world.chain.validators),
                chain_id=world.chain.chain_id,
                ibc_handler=evm.prefix,
                trusting_period_s=0,
            )
        assert enclave.signatures_made == signed_before
        kept = LcpServiceClient(url)
        assert kept.health()["status"] == "ok"  # a kept-alive connection to the service

    # The service is gone: the clients say so, naming where they looked.
    try:
        with pytest.raises(LcpUnavailableError, match=r"kakehashi lcp serve. running") as gone:
            kept.health()
        assert url in str(gone.value)
    finally:
        kept.close()
    with LcpServiceClient(url, timeout=2) as fresh, pytest.raises(LcpUnavailableError):
        fresh.attestation()


def test_a_server_that_is_not_the_lcp_service_is_refused() -> None:
    impostor = FastAPI()

    @impostor.get("/attestation")
    def attestation() -> dict[str, object]:
        return {"enclave_key": "not hex", "avr": "{}"}

    @impostor.post("/keys/rotate")
    def rotate() -> dict[str, object]:
        return {"enclave_key": "ab" * 19, "avr": "{}"}

    @impostor.get("/health")
    def health() -> list[int]:
        return [1, 2]

    with serve(impostor) as url, LcpServiceClient(url) as lcp:
        with pytest.raises(SerializationError, match="not hex"):
            lcp.attestation()
        with pytest.raises(SerializationError, match="19 bytes, not 20"):
            lcp.rotate_key()
        with pytest.raises(SerializationError, match="not a JSON object"):
            lcp.health()
        with pytest.raises(UnknownClientError):  # the impostor's own 404 (no such route)
            lcp.update_client("qbft-evm-0", b"\x00")


def test_a_restarted_service_continues_its_clients(
    world: World,  # noqa: F811
    tmp_path: Path,
) -> None:
    """``kakehashi lcp serve`` restarted on the same data directory: the relayer's client goes
    on updating the light client it created before the restart."""
    evm, corda = world.evm, world.corda
    data_dir = tmp_path / "restarted-lcp"
    with serve(create_app(Enclave(data_dir, SECRET, clock=world.clock))) as url:
        with LcpServiceClient(url) as lcp:
            host = lcp.create_corda_client(
                serialize(corda.host.client_state()), corda.host.attestation()
            )
            corda.conn_open_init(ConnectionCounterparty(evm.client_id, "", evm.prefix))
            first, before = lcp.update_client(host.client_id, corda.header(corda.height()))
    with serve(create_app(Enclave(data_dir, SECRET, clock=world.clock))) as url:
        with LcpServiceClient(url) as lcp:
            corda.conn_open_init(ConnectionCounterparty(evm.client_id, "", evm.prefix))
            second, after = lcp.update_client(host.client_id, corda.header(corda.height()))
            other = lcp.create_corda_client(
                serialize(corda.host.client_state()), corda.host.attestation()
            )
    assert second.revision_height > first.revision_height
    assert other.client_id != host.client_id
    old, new = decode(before.message), decode(after.message)
    assert isinstance(old, UpdateStateProxyMessage) and isinstance(new, UpdateStateProxyMessage)
    assert (new.prev_height, new.prev_state_id) == (first, old.post_state_id)
    assert new.post_height == second


def test_a_connection_the_service_closed_while_idle_is_replaced() -> None:
    """The client keeps one connection alive; when the service closes it between calls (an
    idle timeout, a restart), the next call opens a new one instead of failing. A URL that is
    not http(s)://host:port is refused up front; a closed port is an LcpUnavailableError."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from kakehashi.errors import ConfigurationError

    connections: list[int] = []

    class OneAnswerPerConnection(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, yet each connection closes after one answer

        def setup(self) -> None:
            super().setup()
            connections.append(1)

        def do_GET(self) -> None:
            body = json.dumps({"status": "ok", "path": self.path}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True  # as an idle timeout would, without saying so

        def log_message(self, *_: object) -> None:
            pass

    closed = threading.Semaphore(0)

    class Server(ThreadingHTTPServer):
        def shutdown_request(self, request: Any) -> None:
            super().shutdown_request(request)
            closed.release()  # the connection is closed now

    server = Server(("127.0.0.1", 0), OneAnswerPerConnection)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/prefix"
        with LcpServiceClient(url) as lcp:
            for _ in range(3):
                assert lcp.health() == {"status": "ok", "path": "/prefix/health"}
                assert closed.acquire(timeout=10)  # closed while the client is idle
        assert len(connections) == 3
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(LcpUnavailableError, match="cannot reach"):
        LcpServiceClient(url, timeout=2).health()
    for bad in ("127.0.0.1:8080", "ftp://host:1", "http://host:port"):
        with pytest.raises(ConfigurationError):
            LcpServiceClient(bad)
