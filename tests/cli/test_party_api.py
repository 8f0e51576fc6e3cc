"""The use cases' routes every node serves for its party (``kakehashi.cli.party_api``), on an
embedded network through the node's own HTTP app, and the ``kakehashi dvp`` command line's
refusals. The routes over real processes: tests/e2e/test_dvp_process.py and
tests/e2e/test_logistics_process.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from kakehashi.apps.dvp.settlement import Terms, dvp_transaction
from kakehashi.cli.main import app as cli
from kakehashi.cli.party_api import create_party_router
from kakehashi.cross.tx import ChannelInfo, InitiateTx
from kakehashi.ibc.types import Height
from kakehashi.ledgers.corda.node.http import create_app
from kakehashi.ledgers.corda.node.setup import EmbeddedNetwork
from kakehashi.ledgers.corda.tokens.flows import balance_of, issue_tokens
from kakehashi.ledgers.corda.tokens.model import IssuedTokenType, TokenType

BANK = "O=Bank A, L=London, C=GB"
BUYER = "O=Buyer Trust, L=Tokyo, C=JP"
SELLER = "O=Seller Arts, L=Paris, C=FR"
TOKEN = "secret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JPYC = TokenType("JPYC", 0)


@pytest.fixture
def network(tmp_path: Path) -> Iterator[EmbeddedNetwork]:
    net = EmbeddedNetwork.create(tmp_path / "corda", nodes=(BANK, BUYER, SELLER))
    try:
        issue_tokens(net.node(BANK), JPYC, 1_000, net.node(BUYER).party)
        yield net
    finally:
        net.close()


def client(net: EmbeddedNetwork, name: str) -> TestClient:
    """``name``'s node app as ``kakehashi corda serve`` mounts it."""
    node = net.node(name)
    web = create_app(node, TOKEN)
    web.include_router(create_party_router(node, app_token=TOKEN))
    return TestClient(web)


def trade(net: EmbeddedNetwork, price: int = 300, timeout_s: float = 600) -> InitiateTx:
    bank, buyer, seller = (net.node(n).party for n in (BANK, BUYER, SELLER))
    terms = Terms(
        IssuedTokenType(bank, JPYC), price, b"\x11" * 20, 7, buyer, seller, b"\x22" * 20,
        b"\x33" * 20,
    )  # fmt: skip
    return dvp_transaction(
        terms,
        ChannelInfo("cross", "channel-0"),
        nonce=time.time_ns(),
        timeout_ns=time.time_ns() + int(timeout_s * 1e9),
    )


def deposit_body(tx: InitiateTx, index: int = 0) -> dict[str, object]:
    return {"tx": tx.encode().hex(), "index": index, "operator": BANK}


def test_the_buyer_deposits_what_its_part_moves(network: EmbeddedNetwork) -> None:
    tx = trade(network)
    answer = client(network, BUYER).post("/rpc/cross/deposit", json=deposit_body(tx), headers=AUTH)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["cross_tx_id"] == tx.tx_id.hex()
    assert (body["token"], body["issuer"], body["amount"]) == ("JPYC", BANK, 300)
    assert (body["recipient"], body["expiry_ns"]) == (SELLER, tx.timeout_timestamp)
    buyer = network.node(BUYER)
    issued = IssuedTokenType(network.node(BANK).party, JPYC)
    assert balance_of(buyer, issued) == 700  # 300 escrowed for the part
    assert body["existing"] is False
    again = client(network, BUYER).post("/rpc/cross/deposit", json=deposit_body(tx), headers=AUTH)
    assert again.status_code == 200 and again.json()["existing"] is True  # a consent run again
    assert again.json()["tx_id"] == body["tx_id"]
    assert balance_of(buyer, issued) == 700  # one deposit, not two


@pytest.mark.parametrize(
    ("who", "index", "change", "status", "error"),
    [
        (SELLER, 0, None, 409, "CrossTxError"),  # another holder's tokens
        (BUYER, 1, None, 409, "CrossTxError"),  # part 1 moves the NFT, not tokens
        (BUYER, 2, None, 409, "CrossTxError"),  # no such part
        (BUYER, 0, {"price": 5_000}, 409, "InsufficientBalanceError"),
        (BUYER, 0, {"timeout": 0}, 409, "CrossTxError"),  # never reclaimable: refused
    ],
)
def test_a_deposit_is_refused_with_a_typed_error(
    network: EmbeddedNetwork,
    who: str,
    index: int,
    change: dict[str, int] | None,
    status: int,
    error: str,
) -> None:
    tx = trade(network, price=(change or {}).get("price", 300))
    if change and "timeout" in change:
        tx = replace(tx, timeout_height=Height(0, 10**9), timeout_timestamp=0)
    answer = client(network, who).post(
        "/rpc/cross/deposit", json=deposit_body(tx, index), headers=AUTH
    )
    assert answer.status_code == status, answer.text
    assert answer.json()["error"] == error
    assert answer.json()["message"]


def test_the_routes_need_the_token_and_well_formed_input(network: EmbeddedNetwork) -> None:
    buyer = client(network, BUYER)
    body = deposit_body(trade(network))
    assert buyer.post("/rpc/cross/deposit", json=body).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert buyer.post("/rpc/cross/deposit", json=body, headers=wrong).status_code == 401
    bad = buyer.post("/rpc/cross/deposit", json=body | {"tx": "zz"}, headers=AUTH)
    assert bad.status_code == 400
    not_a_tx = buyer.post("/rpc/cross/deposit", json=body | {"tx": "00"}, headers=AUTH)
    assert not_a_tx.status_code == 409
    assert buyer.get("/rpc/logistics/deliveries?contract_id=C").status_code == 401


def test_a_deposit_is_reclaimed_only_after_its_expiry(network: EmbeddedNetwork) -> None:
    tx = trade(network, timeout_s=1.0)
    buyer = client(network, BUYER)
    assert buyer.post("/rpc/cross/deposit", json=deposit_body(tx), headers=AUTH).status_code == 200
    reclaim = {"tx_id": tx.tx_id.hex(), "index": 0}
    early = buyer.post("/rpc/cross/reclaim", json=reclaim, headers=AUTH)
    assert early.status_code == 409 and "after its expiry" in early.json()["message"]
    time.sleep(max(0.0, (tx.timeout_timestamp - time.time_ns()) / 1e9) + 0.05)
    assert buyer.post("/rpc/cross/reclaim", json=reclaim, headers=AUTH).status_code == 200
    issued = IssuedTokenType(network.node(BANK).party, JPYC)
    assert balance_of(network.node(BUYER), issued) == 1_000
    again = buyer.post("/rpc/cross/reclaim", json=reclaim, headers=AUTH)
    assert again.status_code == 409 and "no deposit" in again.json()["message"]


def test_a_carrier_records_a_delivery_for_the_shipments_parties(
    network: EmbeddedNetwork,
) -> None:
    carrier = client(network, SELLER)  # any node can be a carrier
    body = {"contract_id": "C-1", "shipment_id": "C-1/S-1", "quantity": 40, "parties": [BANK]}
    body |= {"delivered_at_ns": 123}
    assert carrier.post("/rpc/logistics/deliveries", json=body, headers=AUTH).status_code == 200
    listed = client(network, BANK).get("/rpc/logistics/deliveries?contract_id=C-1", headers=AUTH)
    assert listed.json() == {
        "deliveries": [
            {
                "carrier": SELLER,
                "contract_id": "C-1",
                "shipment_id": "C-1/S-1",
                "quantity": 40,
                "delivered_at_ns": 123,
                "parties": [BANK],
            }
        ]
    }
    outsider = client(network, BUYER).get("/rpc/logistics/deliveries?contract_id=C-1", headers=AUTH)
    assert outsider.json() == {"deliveries": []}
    unknown = carrier.post(
        "/rpc/logistics/deliveries", json=body | {"parties": ["O=Nobody, L=X, C=US"]}, headers=AUTH
    )
    assert unknown.status_code == 404 and unknown.json()["error"] == "UnknownPartyError"


def test_the_dvp_command_line_refuses_cleanly(tmp_path: Path) -> None:
    runner = CliRunner()
    token = tmp_path / "rpc.token"
    node = ["--node", "http://127.0.0.1:9", "--token-file", str(token)]
    missing = runner.invoke(cli, ["dvp", "reclaim", "ab" * 32, *node])
    assert missing.exit_code == 2 and "cannot read the RPC token" in missing.output
    token.write_text("t\n")
    down = runner.invoke(cli, ["dvp", "reclaim", "ab" * 32, *node])
    assert down.exit_code == 2 and "unreachable" in down.output
    not_hex = runner.invoke(cli, ["dvp", "deposit", "zz", *node, "--operator", BANK])
    assert not_hex.exit_code == 2 and "canonical encoding in hex" in not_hex.output


def test_the_carrier_command_line_refuses_cleanly(tmp_path: Path) -> None:
    runner = CliRunner()
    token = tmp_path / "rpc.token"
    args = ["logistics", "record", "C-1", "S-1", "3", "--party", BANK]
    node = ["--node", "http://127.0.0.1:9", "--token-file", str(token)]
    missing = runner.invoke(cli, [*args, *node])
    assert missing.exit_code == 2 and "cannot read the RPC token" in missing.output
    token.write_text("t\n")
    down = runner.invoke(cli, [*args, *node])
    assert down.exit_code == 2 and "unreachable" in down.output
    no_party = runner.invoke(cli, ["logistics", "record", "C-1", "S-1", "3", *node])
    assert no_party.exit_code == 2 and "--party" in no_party.output
    zero = runner.invoke(cli, ["logistics", "record", "C-1", "S-1", "0", "--party", BANK, *node])
    assert zero.exit_code == 2


def test_cross_timeout_blocks_needs_ibc(tmp_path: Path) -> None:
    runner = CliRunner()
    directory = tmp_path / "net"
    made = runner.invoke(cli, ["corda", "init", str(directory), "--base-port", "21000"])
    assert made.exit_code == 0, made.output
    served = runner.invoke(
        cli, ["corda", "serve", str(directory), "--name", BANK, "--cross-timeout-blocks", "2"]
    )
    assert served.exit_code == 2 and "add --ibc" in served.output
