"""A Corda-model network as separate OS processes, driven over HTTP like an operator would.

A notary and three nodes (an issuer, Bank A, Bank B) each run as ``kakehashi corda serve`` in
their own process on 127.0.0.1, on SQLite files in a temporary folder. The tests use only the
nodes' RPC (bearer token) and their peer-to-peer endpoint (signed envelopes), and kill processes
with SIGKILL to check what survives a crash.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kakehashi.errors import ConflictError, SignatureError, TransportError
from kakehashi.ledgers.corda.model.crypto import KeyPair, random_bytes
from kakehashi.ledgers.corda.model.identity import Party, X500Name
from kakehashi.ledgers.corda.model.serialization import deserialize
from kakehashi.ledgers.corda.model.states import Command, StateRef, TransactionState
from kakehashi.ledgers.corda.model.transactions import SignedTransaction, WireTransaction
from kakehashi.ledgers.corda.node.messages import (
    Ack,
    Envelope,
    ErrorResponse,
    FetchRequest,
    FetchResponse,
    NotariseRequest,
    RecordRequest,
)
from kakehashi.ledgers.corda.node.setup import load_key, slug
from kakehashi.ledgers.corda.node.transport import Messenger
from kakehashi.ledgers.corda.tokens.model import (
    FUNGIBLE_TOKEN_CONTRACT,
    Amount,
    FungibleToken,
    IssuedTokenType,
    IssueTokenCommand,
    MoveTokenCommand,
    TokenType,
)
from tests.e2e.procs import ProcessNetwork

pytestmark = [pytest.mark.multiprocess, pytest.mark.timeout(120)]

NOTARY = "O=Notary, L=Zurich, C=CH"
ISSUER = "O=Issuer, L=Tokyo, C=JP"
BANK_A = "O=Bank A, L=London, C=GB"
BANK_B = "O=Bank B, L=Osaka, C=JP"
NODES = (ISSUER, BANK_A, BANK_B)


def _start_network(root: Path) -> ProcessNetwork:
    net = ProcessNetwork(root, NOTARY, NODES)
    try:
        net.start_all()
    except BaseException:
        net.close()
        raise
    return net


@pytest.fixture(scope="module")
def shared_net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessNetwork]:
    """One network shared by the tests that do not crash processes (each uses its own token)."""
    network = _start_network(tmp_path_factory.mktemp("e2e-shared"))
    try:
        yield network
    finally:
        network.close()


@pytest.fixture
def net(shared_net: ProcessNetwork) -> Iterator[ProcessNetwork]:
    yield shared_net
    # pytest shows this ("Captured stdout teardown") only when the test failed.
    print(shared_net.logs_text())


@pytest.fixture
def crash_net(tmp_path: Path) -> Iterator[ProcessNetwork]:
    """A network of its own for a test that kills and restarts processes."""
    network = _start_network(tmp_path)
    try:
        yield network
        print(network.logs_text())  # shown only when the test failed
    finally:
        network.close()


# -- helpers ------------------------------------------------------------------------------------


def expect(net: ProcessNetwork, response: httpx.Response, status: int = 200) -> dict[str, Any]:
    """The JSON body of ``response``, which must have ``status`` (else fail with the logs)."""
    assert response.status_code == status, (
        f"{response.request.method} {response.request.url} answered {response.status_code}, "
        f"expected {status}: {response.text}\n{net.logs_text()}"
    )
    body: dict[str, Any] = response.json()
    return body


def issued(net: ProcessNetwork, token: str) -> IssuedTokenType:
    return IssuedTokenType(net.map.party(ISSUER), TokenType(token, 0))


def balance(net: ProcessNetwork, name: str, token: str) -> int:
    balances = expect(net, net.rpc(name, "GET", "balances"))["balances"]
    return int(balances.get(issued(net, token).key, 0))


def transactions(net: ProcessNetwork, name: str) -> set[str]:
    return set(expect(net, net.rpc(name, "GET", "transactions"))["transactions"])


def issue(net: ProcessNetwork, token: str, quantity: int, holder: str) -> str:
    body = {"token": token, "quantity": quantity, "holder": holder}
    return str(expect(net, net.rpc(ISSUER, "POST", "issue", body))["tx_id"])


def move_body(token: str, quantity: int, recipient: str) -> dict[str, Any]:
    return {"token": token, "issuer": ISSUER, "quantity": quantity, "recipient": recipient}


def move(net: ProcessNetwork, sender: str, token: str, quantity: int, recipient: str) -> str:
    response = net.rpc(sender, "POST", "move", move_body(token, quantity, recipient))
    return str(expect(net, response)["tx_id"])


def recover(net: ProcessNetwork, name: str) -> list[str]:
    return list(expect(net, net.rpc(name, "POST", "recover"))["pending"])


def snapshot(net: ProcessNetwork) -> dict[str, tuple[dict[str, int], set[str]]]:
    """Every node's balances and transaction ids."""
    return {
        name: (expect(net, net.rpc(name, "GET", "balances"))["balances"], transactions(net, name))
        for name in NODES
    }


def messenger(net: ProcessNetwork, name: str, key: KeyPair | None = None) -> Messenger:
    """A messenger speaking as ``name`` over HTTP, with its real key from its folder by default.

    With another ``key`` it claims ``name``'s identity without owning its key (a forger).
    """
    real = net.map.party(name)
    if key is None:
        key = load_key(net.directory / slug(real.name) / "identity.key")
        return Messenger(real, key, net.map, net.transport)
    return Messenger(Party(real.name, key.public), key, net.map, net.transport)


def post_p2p(net: ProcessNetwork, name: str, data: bytes) -> object:
    """POST raw bytes to ``name``'s /p2p; the answer, decoded from its envelope."""
    response = net.client.post(
        f"{net.url(name)}/p2p", content=data, headers={"content-type": "application/cbor"}
    )
    assert response.status_code == 200, f"/p2p answered {response.status_code}: {response.text}"
    envelope = deserialize(response.content, Envelope)
    return deserialize(envelope.body)


def assert_refused(answer: object, kind: str, text: str = "") -> None:
    assert isinstance(answer, ErrorResponse), f"expected a refusal, got {answer!r}"
    assert answer.kind == kind, answer
    assert text in answer.message, answer


def double_spend_request(net: ProcessNetwork, ref: StateRef, token: str) -> NotariseRequest:
    """A well-formed tear-off spending ``ref`` again (Bank A tries to pay Bank B twice)."""
    notary = net.map.party(NOTARY)
    bank_a = net.map.party(BANK_A)
    output = TransactionState(
        FungibleToken(Amount(1, issued(net, token)), net.map.party(BANK_B)),
        FUNGIBLE_TOKEN_CONTRACT,
        notary,
    )
    wtx = WireTransaction.create(
        privacy_salt=random_bytes(32),
        inputs=[ref],
        outputs=[output],
        commands=[Command(MoveTokenCommand(issued(net, token)), (bank_a.owning_key,))],
        notary=notary,
        network_parameters_hash=net.map.parameters.hash(),
    )
    return NotariseRequest(filtered=wtx.notarisation_tear_off())


# -- 1. a payment across processes, need-to-know -------------------------------------------------


def test_issue_and_move_across_processes_with_need_to_know(net: ProcessNetwork) -> None:
    for name in (NOTARY, *NODES):
        health = expect(net, net.client.get(f"{net.url(name)}/health"))
        assert health == {
            "status": "ok",
            "name": name,
            "kind": "notary" if name == NOTARY else "node",
        }

    issue_id = issue(net, "JPY", 1_000, BANK_A)
    assert balance(net, BANK_A, "JPY") == 1_000
    move_id = move(net, BANK_A, "JPY", 300, BANK_B)

    assert balance(net, BANK_A, "JPY") == 700
    assert balance(net, BANK_B, "JPY") == 300
    assert balance(net, ISSUER, "JPY") == 0

    # Bank B resolved the back-chain (the issuance) from Bank A; the issuer never saw the move.
    assert {issue_id, move_id} <= transactions(net, BANK_A)
    assert {issue_id, move_id} <= transactions(net, BANK_B)
    issuer_txs = transactions(net, ISSUER)
    assert issue_id in issuer_txs
    assert move_id not in issuer_txs, (
        f"the issuer holds a move it had no part in\n{net.logs_text()}"
    )

    vault_b = expect(net, net.rpc(BANK_B, "GET", "vault"))["states"]
    held = [(s["quantity"], s["holder"], s["issuer"]) for s in vault_b if s.get("token") == "JPY"]
    assert held == [(300, BANK_B, ISSUER)]


# -- 2. RPC authentication and typed errors ------------------------------------------------------


def test_rpc_requires_the_nodes_token_and_answers_typed_errors(net: ProcessNetwork) -> None:
    issue(net, "USD", 100, BANK_A)
    before = snapshot(net)
    wrong_tokens = ["", "not-the-token", net.token(BANK_B), net.token(BANK_A) + "0"]
    for token in wrong_tokens:
        for method, path, body in (
            ("GET", "balances", None),
            ("GET", "transactions", None),
            ("POST", "move", move_body("USD", 10, BANK_B)),
            ("POST", "move", {"garbage": True}),  # authentication comes before validation
            ("POST", "recover", None),
        ):
            response = net.rpc(BANK_A, method, path, body, token=token)
            assert expect(net, response, 401)["detail"].startswith("missing or wrong RPC token")
    # A bearer scheme other than "Bearer", and the token without a scheme, are refused too.
    for header in (f"Basic {net.token(BANK_A)}", net.token(BANK_A)):
        response = net.client.get(
            f"{net.url(BANK_A)}/rpc/balances", headers={"Authorization": header}
        )
        expect(net, response, 401)

    too_much = net.rpc(BANK_A, "POST", "move", move_body("USD", 101, BANK_B))
    error = expect(net, too_much, 409)
    assert error["error"] == "InsufficientBalanceError"
    assert "100" in error["message"] and "101" in error["message"]

    nobody = net.rpc(BANK_A, "POST", "move", move_body("USD", 1, "O=Nobody, L=Nowhere, C=US"))
    error = expect(net, nobody, 404)
    assert error["error"] == "UnknownPartyError"
    assert "O=Nobody" in error["message"]

    unknown_issuer = {**move_body("USD", 1, BANK_B), "issuer": "O=Nobody, L=Nowhere, C=US"}
    error = expect(net, net.rpc(BANK_A, "POST", "move", unknown_issuer), 404)
    assert error["error"] == "UnknownPartyError"

    # Request validation (before any flow runs), and a typed error from another flow.
    expect(net, net.rpc(BANK_A, "POST", "move", move_body("USD", 0, BANK_B)), 422)
    split = {"token": "USD", "issuer": ISSUER, "parts": 101}
    error = expect(net, net.rpc(BANK_A, "POST", "split", split), 409)
    assert error["error"] == "InsufficientBalanceError"

    # A notary runs no flows and has no vault, even for a caller with its own RPC token.
    response = net.rpc(NOTARY, "GET", "balances")
    assert "notary runs no flows" in expect(net, response, 404)["detail"]

    assert snapshot(net) == before, net.logs_text()  # no refused call changed anything
    assert balance(net, BANK_A, "USD") == 100


# -- 3. crash safety -----------------------------------------------------------------------------


def test_killed_processes_lose_nothing(crash_net: ProcessNetwork) -> None:
    net = crash_net
    issue_id = issue(net, "JPY", 1_000, BANK_A)
    first_move = move(net, BANK_A, "JPY", 100, BANK_B)

    # Bank B crashes; Bank A's payment is notarised and recorded, its delivery kept for later.
    net.parties[BANK_B].kill()
    assert not net.parties[BANK_B].running
    second_move = move(net, BANK_A, "JPY", 250, BANK_B)
    assert balance(net, BANK_A, "JPY") == 650
    assert second_move in transactions(net, BANK_A)
    assert recover(net, BANK_A) == [second_move]  # B still down: still pending

    # Bank B restarts on its database; Bank A's redelivery (POST /rpc/recover) reaches it.
    net.restart(BANK_B)
    assert {issue_id, first_move} <= transactions(net, BANK_B)  # survived the crash
    assert recover(net, BANK_A) == []
    assert balance(net, BANK_B, "JPY") == 350
    assert {issue_id, first_move, second_move} <= transactions(net, BANK_B)
    assert recover(net, BANK_A) == []  # nothing left; a second recovery is a no-op
    assert balance(net, BANK_B, "JPY") == 350

    # The notary crashes. A payment while it is down fails with a typed error and moves nothing.
    net.parties[NOTARY].kill()
    down = net.rpc(BANK_A, "POST", "move", move_body("JPY", 50, BANK_B))
    assert expect(net, down, 409)["error"] == "TransportError"
    assert (balance(net, BANK_A, "JPY"), balance(net, BANK_B, "JPY")) == (650, 350)
    before_restart = snapshot(net)

    # The notary restarts on the same database: its commit log survived, so spending the
    # issuance output again (already spent by the first move) is still a double spend.
    net.restart(NOTARY)
    spent = StateRef(bytes.fromhex(issue_id), 0)
    with pytest.raises(ConflictError) as refused:
        messenger(net, BANK_A).request(
            net.map.party(NOTARY), double_spend_request(net, spent, "JPY")
        )
    assert refused.value.consumed == {str(spent): first_move}
    assert snapshot(net) == before_restart

    # The payment interrupted by the notary's crash is finished by recovery (its outcome was
    # unknown to Bank A, so it kept the checkpoint); then payments work as before.
    assert recover(net, BANK_A) == []
    assert (balance(net, BANK_A, "JPY"), balance(net, BANK_B, "JPY")) == (600, 400)
    move(net, BANK_A, "JPY", 10, BANK_B)
    assert (balance(net, BANK_A, "JPY"), balance(net, BANK_B, "JPY")) == (590, 410)
    assert transactions(net, ISSUER) == {issue_id}  # need-to-know held through every recovery


# -- 4. malformed and forged peer messages -------------------------------------------------------


def test_forged_and_malformed_peer_messages_are_refused(net: ProcessNetwork) -> None:
    issue_id = issue(net, "EUR", 500, BANK_A)
    move_id = move(net, BANK_A, "EUR", 200, BANK_B)
    bank_a = messenger(net, BANK_A)
    bank_b = messenger(net, BANK_B)
    bank_b_party = net.map.party(BANK_B)
    # A transaction Bank B already holds, fetched from Bank A the way Bank B itself may.
    fetched = bank_b.request(net.map.party(BANK_A), FetchRequest((bytes.fromhex(move_id),)))
    assert isinstance(fetched, FetchResponse)
    (stx,) = fetched.txs
    before = snapshot(net)

    # Random bytes, and an empty body.
    rng = random.Random(20_241_122)
    for size in (0, 1, 16, 300, 5_000):
        assert_refused(post_p2p(net, BANK_B, rng.randbytes(size)), "SerializationError")

    # An envelope that claims to come from Bank A but is signed by another key.
    forger = messenger(net, BANK_A, key=KeyPair.generate())
    forged = forger._seal(bank_b_party.name, RecordRequest(stx))
    assert_refused(post_p2p(net, BANK_B, forged), "SignatureError", "not signed by its key")
    with pytest.raises(TransportError, match=r"refused our message: .*not signed by its key"):
        forger.request(bank_b_party, RecordRequest(stx))

    # A valid envelope from Bank A, sent twice: the copy is refused.
    sealed = bank_a._seal(bank_b_party.name, RecordRequest(stx))
    assert isinstance(post_p2p(net, BANK_B, sealed), Ack)
    assert_refused(post_p2p(net, BANK_B, sealed), "TransportError", "replayed")

    # A valid envelope from Bank A addressed to the issuer, delivered to Bank B.
    to_issuer = bank_a._seal(X500Name.parse(ISSUER), RecordRequest(stx))
    assert_refused(post_p2p(net, BANK_B, to_issuer), "TransportError", "not to us")

    # A sender that is not on the network map, and a stale message from Bank A.
    stranger_key = KeyPair.generate()
    stranger = Party(X500Name.parse("O=Mallory, L=Nowhere, C=US"), stranger_key.public)
    mallory = Messenger(stranger, stranger_key, net.map, net.transport)
    unknown = mallory._seal(bank_b_party.name, RecordRequest(stx))
    assert_refused(post_p2p(net, BANK_B, unknown), "UnknownPartyError")
    an_hour_ago = time.time_ns() // 1000 - 3_600_000_000
    stale_a = Messenger(
        bank_a.party, bank_a._key, net.map, bank_a.transport, clock=lambda: an_hour_ago
    )
    stale = stale_a._seal(bank_b_party.name, RecordRequest(stx))
    assert_refused(post_p2p(net, BANK_B, stale), "TransportError", "stale")
    with pytest.raises(TransportError, match=r"refused our message: .*\(UnknownPartyError\)"):
        mallory.request(bank_b_party, RecordRequest(stx))
    with pytest.raises(TransportError, match=r"refused our message: .*check clocks"):
        stale_a.request(bank_b_party, RecordRequest(stx))

    # Correctly signed by Bank A, but the transaction inside is forged: an issuance of EUR in
    # the issuer's name that the issuer never signed. Bank B answers with a typed, signed error.
    token = issued(net, "EUR")
    minted = WireTransaction.create(
        privacy_salt=random_bytes(32),
        outputs=[
            TransactionState(
                FungibleToken(Amount(1_000_000, token), bank_b_party),
                FUNGIBLE_TOKEN_CONTRACT,
                net.map.party(NOTARY),
            )
        ],
        commands=[Command(IssueTokenCommand(token), (token.issuer.owning_key,))],
        network_parameters_hash=net.map.parameters.hash(),
    )
    with pytest.raises(SignatureError):
        bank_a.request(bank_b_party, RecordRequest(SignedTransaction(minted, ())))

    # A notary refuses a forged notarisation request the same way.
    forged_notarise = forger._seal(
        X500Name.parse(NOTARY),
        double_spend_request(net, StateRef(bytes.fromhex(issue_id), 0), "EUR"),
    )
    assert_refused(post_p2p(net, NOTARY, forged_notarise), "SignatureError")

    assert snapshot(net) == before, net.logs_text()
    assert balance(net, BANK_B, "EUR") == 200
    assert balance(net, BANK_A, "EUR") == 300
