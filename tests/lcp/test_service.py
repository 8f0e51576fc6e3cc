"""The LCP service's HTTP API (FastAPI's TestClient) over a real embedded EVM chain and Corda
host, and ``kakehashi lcp serve`` as a real process on 127.0.0.1.

The enclave key never appears in any response or log line: the test opens the sealed key file
by the documented scheme to know the key, then searches everything the service said for it.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from kakehashi.ibc import host as paths
from kakehashi.ibc.types import ConnectionCounterparty
from kakehashi.lcp.enclave import MRENCLAVE, Enclave
from kakehashi.lcp.service import create_app
from kakehashi.ledgers.corda.model.serialization import serialize
from kakehashi.ledgers.evm.qbft import HeaderField, encode_header, header_fields
from kakehashi.lightclients.lcp import (
    LcpClientState,
    create_client,
    register_enclave_key,
    update_state,
    verify_membership,
    verify_non_membership,
)
from tests.lcp.test_enclave import SECRET, World, unseal_independently, world  # noqa: F401

KEY_EXPIRATION_S = 3600


def height_json(height: Any) -> dict[str, int]:
    return {
        "revision_number": height.revision_number,
        "revision_height": height.revision_height,
    }


def register_from(evidence: dict[str, Any], state: LcpClientState, message: bytes, now: int) -> Any:
    client = create_client(state, message, now)
    return register_enclave_key(
        client,
        evidence["avr"],
        bytes.fromhex(evidence["signature"]),
        bytes.fromhex(evidence["signing_cert"]),
        None,
        now,
    )


def test_the_api_end_to_end_and_the_key_never_leaks(
    world: World,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    enclave, evm, corda = world.enclave, world.evm, world.corda
    api = TestClient(create_app(enclave))
    answers: list[str] = []

    def call(method: str, url: str, status: int = 200, **kwargs: Any) -> dict[str, Any]:
        response = api.request(method, url, **kwargs)
        answers.append(response.text)
        assert response.status_code == status, response.text
        # every answer is JSON, the pre-encoded ones of the hot endpoints included
        assert response.headers["content-type"] == "application/json"
        body: dict[str, Any] = response.json()
        return body

    evidence = call("GET", "/attestation")
    assert evidence["enclave_key"] == enclave.address.hex() and evidence["simulation"] is True
    assert evidence["mrenclave"] == MRENCLAVE.hex()
    root = bytes.fromhex(evidence["root_certificate"])
    state = LcpClientState(MRENCLAVE, KEY_EXPIRATION_S, root_certificates=(root,), development=True)

    # EVM chain: create, write a commitment, update, prove it and prove an absence.
    created = call(
        "POST",
        "/clients",
        json={
            "type": "qbft",
            "header": "0x" + evm.header(evm.height()).hex(),
            "validators": [v.hex() for v in world.chain.validators],
            "chain_id": world.chain.chain_id,
            "ibc_handler": evm.prefix.hex(),
        },
    )
    client_id = created["client_id"]
    client = register_from(evidence, state, bytes.fromhex(created["message"]), world.clock())
    connection = evm.conn_open_init(ConnectionCounterparty(corda.client_id, "", corda.prefix))
    path = paths.connection_path(connection)
    height = evm.height()
    value = evm.value(path, height)
    assert value is not None
    update = call("POST", f"/clients/{client_id}/update", json={"header": evm.header(height).hex()})
    assert update["signer"] == enclave.address.hex()
    client, post = update_state(
        client,
        bytes.fromhex(update["message"]),
        [bytes.fromhex(update["signature"])],
        world.clock(),
    )
    assert height_json(post) == update["height"]
    member = call(
        "POST",
        f"/clients/{client_id}/verify_membership",
        json={
            "height": update["height"],
            "prefix": evm.prefix.hex(),
            "path": path.hex(),
            "value": value.hex(),
            "proof": evm.prove(path, height).hex(),
        },
    )
    verify_membership(
        client, post, bytes.fromhex(member["proof"]), evm.prefix, path, value, world.clock()
    )
    absent = paths.connection_path("connection-99")
    non_member = call(
        "POST",
        f"/clients/{client_id}/verify_non_membership",
        json={
            "height": update["height"],
            "prefix": evm.prefix.hex(),
            "path": absent.hex(),
            "proof": evm.prove(absent, height).hex(),
        },
    )
    verify_non_membership(
        client, post, bytes.fromhex(non_member["proof"]), evm.prefix, absent, world.clock()
    )

    # Corda host: create from its client state and attestation, update, prove.
    corda_created = call(
        "POST",
        "/clients",
        json={
            "type": "corda",
            "client_state": serialize(corda.host.client_state()).hex(),
            "attestation": corda.host.attestation().hex(),
        },
    )
    now = time.time_ns()
    corda_client = register_from(evidence, state, bytes.fromhex(corda_created["message"]), now)
    corda_connection = corda.conn_open_init(ConnectionCounterparty(evm.client_id, "", evm.prefix))
    corda_path = paths.connection_path(corda_connection)
    corda_height = corda.height()
    corda_value = corda.value(corda_path, corda_height)
    assert corda_value is not None
    corda_update = call(
        "POST",
        f"/clients/{corda_created['client_id']}/update",
        json={"header": corda.header(corda_height).hex()},
    )
    corda_client, corda_post = update_state(
        corda_client,
        bytes.fromhex(corda_update["message"]),
        [bytes.fromhex(corda_update["signature"])],
        time.time_ns(),
    )
    corda_member = call(
        "POST",
        f"/clients/{corda_created['client_id']}/verify_membership",
        json={
            "height": corda_update["height"],
            "prefix": corda.prefix.hex(),
            "path": corda_path.hex(),
            "value": corda_value.hex(),
            "proof": corda.prove(corda_path, corda_height).hex(),
        },
    )
    verify_membership(
        corda_client,
        corda_post,
        bytes.fromhex(corda_member["proof"]),
        corda.prefix,
        corda_path,
        corda_value,
        time.time_ns(),
    )

    # Two consecutive updates aggregate into one signed UpdateState.
    evm.conn_open_init(ConnectionCounterparty(corda.client_id, "", corda.prefix))
    later = call(
        "POST", f"/clients/{client_id}/update", json={"header": evm.header(evm.height()).hex()}
    )
    aggregated = call(
        "POST",
        "/aggregate",
        json={"messages": [{k: u[k] for k in ("message", "signature")} for u in (update, later)]},
    )
    assert aggregated["signer"] == enclave.address.hex()
    call("POST", "/aggregate", 422, json={"messages": [later, update]})

    # Typed errors: 422 for what does not verify, 404 for an unknown client, 400 for bad input.
    signed_before = enclave.signatures_made
    wrong = call(
        "POST",
        f"/clients/{client_id}/verify_membership",
        422,
        json={
            "height": update["height"],
            "prefix": evm.prefix.hex(),
            "path": path.hex(),
            "value": ("11" * 32),
            "proof": evm.prove(path, height).hex(),
        },
    )
    assert wrong["error"] == "VerificationError" and "does not commit" in wrong["message"]
    fields = header_fields(evm.header(height))
    fields[HeaderField.STATE_ROOT] = bytes(32)
    tampered = encode_header(fields)
    call("POST", f"/clients/{client_id}/update", 422, json={"header": tampered.hex()})
    unknown = call("POST", "/clients/qbft-evm-42/update", 404, json={"header": "00"})
    assert unknown["error"] == "UnknownClientError"
    call("POST", f"/clients/{client_id}/update", 400, json={"header": "not hex"})
    call("POST", "/clients", 400, json={"type": "besu"})
    assert enclave.signatures_made == signed_before

    # Rotation: a new key with its own evidence; both are listed.
    rotated = call("POST", "/keys/rotate")
    assert rotated["enclave_key"] == enclave.address.hex() != evidence["enclave_key"]
    listed = call("GET", "/attestation")
    assert [k["enclave_key"] for k in listed["keys"]] == [
        evidence["enclave_key"],
        rotated["enclave_key"],
    ]
    client = register_enclave_key(
        client,
        rotated["avr"],
        bytes.fromhex(rotated["signature"]),
        bytes.fromhex(rotated["signing_cert"]),
        None,
        world.clock(),
    )
    assert len(client.enclave_keys) == 2

    # Nothing the service said or logged holds a private key, in any spelling.
    secrets = unseal_independently(enclave._dir, SECRET)
    assert len(secrets) == 2
    said = "\n".join(answers + [r.getMessage() for r in caplog.records] + [caplog.text]).lower()
    assert "event=lcp.update" in said  # the log was captured
    for secret in secrets:
        assert secret.hex() not in said
        assert secret.hex() not in said.replace("0x", "")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_lcp_serve_runs_a_real_process_and_says_it_is_a_simulation(tmp_path: Path) -> None:
    secret_file = tmp_path / "operator.secret"
    secret_file.write_text(SECRET.decode() + "\n")
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "kakehashi.cli.main",
        "lcp",
        "serve",
        "--data-dir",
        str(tmp_path / "lcp"),
        "--port",
        str(port),
        "--operator-secret-file",
        str(secret_file),
        "--operator",
        "0x" + "ab" * 20,
    ]
    env = {**os.environ, "COLUMNS": "120"}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        evidence: dict[str, Any] | None = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            try:
                evidence = httpx.get(f"http://127.0.0.1:{port}/attestation", timeout=2).json()
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert evidence is not None, "the service did not answer"
        health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json()
        assert health == {
            "status": "ok",
            "simulation": True,
            "enclave_key": evidence["enclave_key"],
        }
    finally:
        process.terminate()
        out, err = process.communicate(timeout=30)
    assert "SIMULATION MODE" in err and "WITHOUT a hardware TEE" in err
    assert evidence["enclave_key"] in out
    (private,) = unseal_independently(tmp_path / "lcp", SECRET)
    assert private.hex() not in (out + err).lower()
    # The same key after a restart, from the sealed file.
    assert Enclave(tmp_path / "lcp", SECRET).address.hex() == evidence["enclave_key"]


def test_lcp_serve_refuses_a_wrong_secret(tmp_path: Path) -> None:
    Enclave(tmp_path / "lcp", SECRET)
    wrong = tmp_path / "wrong.secret"
    wrong.write_text("a different secret\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "kakehashi.cli.main",
            "lcp",
            "serve",
            "--data-dir",
            str(tmp_path / "lcp"),
            "--operator-secret-file",
            str(wrong),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "operator secret" in result.stderr and "SIMULATION MODE" in result.stderr
