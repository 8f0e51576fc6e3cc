"""The cross module's HTTP API (``kakehashi.cross.http``, mounted by ``corda serve --ibc``):
initiating with signatures, signing, signing for another ledger's coordinator, status."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from kakehashi.cross.auth import sign_party
from kakehashi.cross.corda_module import CrossModule
from kakehashi.cross.http import create_cross_router
from kakehashi.cross.tx import CommitProtocol, SignerKind
from tests.cross.test_corda_module import linked, operator, relay, transaction
from tests.ibc.test_corda_host import TwoHosts

__all__ = ["linked"]  # the fixture
TOKEN, INITIATE = "s3cret", "initiate-only"


def client(module: CrossModule) -> TestClient:
    app = FastAPI()
    app.include_router(create_cross_router(module, app_token=TOKEN, initiate_token=INITIATE))
    return TestClient(app)


def test_initiate_sign_and_read_over_http(
    linked: tuple[TwoHosts, CrossModule, CrossModule],
) -> None:
    hosts, a, b = linked
    partner, remote = operator(hosts.b), operator(hosts.b, SignerKind.CHANNEL)
    tx = transaction(
        hosts, CommitProtocol.TPC, b"k", b"v", signers=(operator(hosts.a), partner, remote)
    )
    http_a, http_b = client(a), client(b)
    body = {"tx": tx.encode().hex(), "local": 0}
    assert http_a.post("/cross/initiate", json=body).status_code == 401  # no RPC token
    wrong = {"Authorization": "Bearer nope"}
    assert http_a.post("/cross/initiate", json=body, headers=wrong).status_code == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    initiate_only = {"Authorization": f"Bearer {INITIATE}"}  # the initiate-only token works too
    assert http_a.post("/cross/initiate", json=body, headers=initiate_only).json() == {
        "tx_id": tx.tx_id.hex()
    }
    assert http_a.post("/cross/initiate", json=body, headers=auth).status_code == 409  # again
    status = http_a.get(f"/cross/tx/{tx.tx_id.hex()}").json()["authentication"]
    assert status["status"] == "PENDING" and len(status["missing"]) == 2

    sign = {"tx_id": tx.tx_id.hex(), "kind": "LOCAL", "id": partner.id.hex()}
    wrong = sign_party(hosts.a.node.key, tx.tx_id).hex()  # not the partner's key
    assert http_a.post("/cross/sign", json={**sign, "signature": wrong}).status_code == 422
    unknown = {**sign, "tx_id": "00" * 32, "signature": wrong}
    assert http_a.post("/cross/sign", json=unknown).status_code == 409
    assert (
        http_a.post("/cross/sign", json={**sign, "kind": "OTHER", "signature": wrong}).status_code
        == 400
    )
    good = sign_party(hosts.b.node.key, tx.tx_id).hex()
    assert http_a.post("/cross/sign", json={**sign, "signature": good}).json() == {
        "authentication": "PENDING"
    }

    remote_body = {
        "view": tx.view(1).encode().hex(),
        "index": 1,
        "channel": hosts.chan_b,
        "id": remote.id.hex(),
        "signature": good,
    }
    assert http_b.post("/cross/sign-remote", json={**remote_body, "index": 7}).status_code == 409
    hiding = {**remote_body, "view": tx.view(0).encode().hex()}  # part 1 only as its digest
    refused = http_b.post("/cross/sign-remote", json=hiding)
    assert refused.status_code == 409 and "hides part 1" in refused.json()["detail"]
    whole = {**remote_body, "view": tx.encode().hex()}  # the full form is not a view
    assert http_b.post("/cross/sign-remote", json=whole).status_code == 400
    assert http_b.post("/cross/sign-remote", json=remote_body).json()["sent"] == "SIGN"
    relay(hosts, back=True)
    assert http_a.get(f"/cross/tx/{tx.tx_id.hex()}").json()["authentication"]["status"] == (
        "VERIFIED"
    )
    relay(hosts)
    view = http_a.get(f"/cross/tx/{tx.tx_id.hex()}").json()
    assert view["coordinator"]["decision"] == "COMMIT" and view["coordinator"]["done"]
    shown = http_b.get(f"/cross/tx/{tx.tx_id.hex()}").json()["view"]  # the participant's
    assert shown == {
        str(i): {
            "part": "revealed" if i == 1 else "hidden",
            "digest": part.digest.hex(),
        }
        for i, part in enumerate(tx.contract_transactions)
    }
    assert http_b.get(f"/cross/kv/{b'k'.hex()}").json() == {"value": b"v".hex(), "locked_by": None}
