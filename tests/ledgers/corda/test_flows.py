"""Flows on an embedded network: tokens, finality, need-to-know, notary checks, restarts."""

from __future__ import annotations

import pytest

from kakehashi.errors import (
    ConflictError,
    ContractRejection,
    FlowError,
    InsufficientBalanceError,
    InvalidTransactionError,
    NotaryError,
    SignatureError,
    TimeWindowError,
    TransportError,
    UnknownPartyError,
)
from kakehashi.ledgers.corda.model.crypto import KeyPair, random_bytes, sign_transaction_id
from kakehashi.ledgers.corda.model.identity import Party, X500Name
from kakehashi.ledgers.corda.model.states import Command, TimeWindow, TransactionState
from kakehashi.ledgers.corda.model.transactions import SignedTransaction, WireTransaction
from kakehashi.ledgers.corda.node.notary import now_micros
from kakehashi.ledgers.corda.node.setup import EmbeddedNetwork
from kakehashi.ledgers.corda.node.vault import StateStatus
from kakehashi.ledgers.corda.tokens.flows import (
    balance_of,
    issue_tokens,
    move_tokens,
    redeem_tokens,
    split_tokens,
)
from kakehashi.ledgers.corda.tokens.model import (
    FUNGIBLE_TOKEN_CONTRACT,
    Amount,
    FungibleToken,
    MoveTokenCommand,
)
from tests.ledgers.corda.conftest import ALICE, BOB, CAROL, ISSUER, JPY, jpy


def _snapshot(net: EmbeddedNetwork) -> dict[str, tuple[set[bytes], int]]:
    return {
        str(name): (node.db.transaction_ids(), node.db.count(StateStatus.ALL))
        for name, node in net.nodes.items()
    } | {"notary": (set(), net.notary.uniqueness.committed_count())}


def _handmade_move(
    net: EmbeddedNetwork,
    sender: str,
    receiver: str,
    *,
    quantity_out: int | None = None,
    time_window: TimeWindow | None = None,
    notary: Party | None = None,
    signer: KeyPair | None = None,
) -> SignedTransaction:
    """A move of the sender's oldest token state, built by hand so tests can break it."""
    node = net.node(sender)
    item = node.db.query(FungibleToken)[0]
    data = item.state.data
    assert isinstance(data, FungibleToken)
    out = FungibleToken(
        Amount(quantity_out or data.quantity, data.amount.token), net.node(receiver).party
    )
    notary = notary or item.state.notary
    wtx = WireTransaction.create(
        privacy_salt=random_bytes(),
        inputs=[item.ref],
        outputs=[TransactionState(out, FUNGIBLE_TOKEN_CONTRACT, notary)],
        commands=[Command(MoveTokenCommand(data.amount.token), (node.party.owning_key,))],
        notary=notary,
        time_window=time_window,
        network_parameters_hash=node.network.parameters.hash(),
    )
    return SignedTransaction(wtx, (sign_transaction_id(signer or node.key, wtx.id),))


def test_issue_move_and_balances(net: EmbeddedNetwork) -> None:
    issuer, alice, bob = net.node(ISSUER), net.node(ALICE), net.node(BOB)
    issue_tokens(issuer, JPY, 1_000, alice.party)
    token = jpy(net)
    assert balance_of(alice, token) == 1_000
    stx = move_tokens(alice, token, 300, bob.party)
    assert balance_of(alice, token) == 700
    assert balance_of(bob, token) == 300
    assert net.notary.uniqueness.log_entries() == {ref: stx.id for ref in stx.tx.inputs}
    # Both copies of the transaction carry the notary's signature.
    assert net.notary.party.owning_key in bob.db.get_transaction(stx.id).signing_keys()


def test_need_to_know(net: EmbeddedNetwork) -> None:
    issuer, alice, bob, carol = (net.node(n) for n in (ISSUER, ALICE, BOB, CAROL))
    issue_tokens(issuer, JPY, 100, alice.party)
    payment = move_tokens(alice, jpy(net), 40, bob.party)
    assert carol.db.transaction_ids() == set()
    assert payment.id not in issuer.db.transaction_ids()
    assert payment.id in bob.db.transaction_ids()


def test_backchain_resolution_on_receive(net: EmbeddedNetwork) -> None:
    issuer, alice, bob, carol = (net.node(n) for n in (ISSUER, ALICE, BOB, CAROL))
    issue = issue_tokens(issuer, JPY, 100, alice.party)
    first = move_tokens(alice, jpy(net), 100, bob.party)
    second = move_tokens(bob, jpy(net), 60, carol.party)
    # Carol resolved the whole chain she depends on from Bob, and nothing else.
    assert carol.db.transaction_ids() == {issue.id, first.id, second.id}
    assert balance_of(carol, jpy(net)) == 60
    assert carol.db.count(StateStatus.ALL) == 1


def test_fetch_refused_for_unrelated_transactions(net: EmbeddedNetwork) -> None:
    from kakehashi.ledgers.corda.node.messages import FetchRequest

    issuer, alice, carol = net.node(ISSUER), net.node(ALICE), net.node(CAROL)
    secret = issue_tokens(issuer, JPY, 5, alice.party)
    with pytest.raises(Exception, match="not entitled"):
        carol.messenger.request(alice.party, FetchRequest((secret.id,)))


def test_sequential_double_spend_is_refused_and_nothing_persisted(net: EmbeddedNetwork) -> None:
    issue_tokens(net.node(ISSUER), JPY, 10, net.node(ALICE).party)
    first = _handmade_move(net, ALICE, BOB)
    second = _handmade_move(net, ALICE, CAROL)
    net.node(ALICE).finalise(first)
    before = _snapshot(net)
    with pytest.raises(ConflictError) as info:
        net.node(ALICE).finalise(second)
    assert str(first.tx.inputs[0]) in info.value.consumed
    assert info.value.consumed[str(first.tx.inputs[0])] == first.id.hex()
    assert _snapshot(net) == before


def test_notarisation_is_idempotent(net: EmbeddedNetwork) -> None:
    issue_tokens(net.node(ISSUER), JPY, 10, net.node(ALICE).party)
    stx = _handmade_move(net, ALICE, BOB)
    alice = net.node(ALICE)
    first = alice.notarise(stx)
    again = alice.notarise(stx)
    first.verify(stx.id)
    again.verify(stx.id)
    assert net.notary.uniqueness.committed_count() == 2 - 1


def test_unbalanced_move_is_rejected(net: EmbeddedNetwork) -> None:
    issue_tokens(net.node(ISSUER), JPY, 10, net.node(ALICE).party)
    before = _snapshot(net)
    with pytest.raises(ContractRejection, match="conserve"):
        net.node(ALICE).finalise(_handmade_move(net, ALICE, BOB, quantity_out=11))
    assert _snapshot(net) == before


def test_missing_or_wrong_signature(net: EmbeddedNetwork) -> None:
    issue_tokens(net.node(ISSUER), JPY, 10, net.node(ALICE).party)
    stranger = KeyPair.generate()
    with pytest.raises(SignatureError, match="missing signatures"):
        net.node(ALICE).finalise(_handmade_move(net, ALICE, BOB, signer=stranger))
    forged = _handmade_move(net, ALICE, BOB)
    bad = forged.sigs[0]
    tampered = type(bad)(bytes(64), bad.by, bad.metadata)
    with pytest.raises(SignatureError):
        net.node(ALICE).finalise(SignedTransaction(forged.tx, (tampered,)))


def test_wrong_notary(net: EmbeddedNetwork) -> None:
    issue_tokens(net.node(ISSUER), JPY, 10, net.node(ALICE).party)
    fake = Party(X500Name.parse("O=Rogue Notary, L=Nowhere, C=XX"), KeyPair.generate().public)
    with pytest.raises(InvalidTransactionError, match="notary"):
        net.node(ALICE).finalise(_handmade_move(net, ALICE, BOB, notary=fake))


def test_notary_refuses_transactions_for_another_notary(net: EmbeddedNetwork) -> None:
    from kakehashi.ledgers.corda.node.messages import NotariseRequest

    issue_tokens(net.node(ISSUER), JPY, 10, net.node(ALICE).party)
    fake = Party(X500Name.parse("O=Other Notary, L=Nowhere, C=XX"), KeyPair.generate().public)
    stx = _handmade_move(net, ALICE, BOB, notary=fake)
    with pytest.raises(NotaryError, match="names notary"):
        net.node(ALICE).messenger.request(
            net.notary.party, NotariseRequest(filtered=stx.tx.notarisation_tear_off())
        )


def test_expired_time_window(net: EmbeddedNetwork) -> None:
    issue_tokens(net.node(ISSUER), JPY, 10, net.node(ALICE).party)
    now = now_micros()
    expired = TimeWindow(now - 10_000_000, now - 5_000_000)
    before = _snapshot(net)
    with pytest.raises(TimeWindowError):
        net.node(ALICE).finalise(_handmade_move(net, ALICE, BOB, time_window=expired))
    assert _snapshot(net) == before
    current = TimeWindow(now - 1_000_000, now + 60_000_000)
    net.node(ALICE).finalise(_handmade_move(net, ALICE, BOB, time_window=current))
    assert balance_of(net.node(BOB), jpy(net)) == 10


def test_insufficient_balance_and_bad_amounts(net: EmbeddedNetwork) -> None:
    issue_tokens(net.node(ISSUER), JPY, 10, net.node(ALICE).party)
    with pytest.raises(InsufficientBalanceError, match="holds 10"):
        move_tokens(net.node(ALICE), jpy(net), 11, net.node(BOB).party)
    with pytest.raises(InvalidTransactionError):
        move_tokens(net.node(ALICE), jpy(net), 0, net.node(BOB).party)
    assert balance_of(net.node(ALICE), jpy(net)) == 10
    assert net.node(ALICE).db.query(FungibleToken)[0].ref  # still unlocked and spendable
    move_tokens(net.node(ALICE), jpy(net), 10, net.node(BOB).party)


def test_unknown_party(net: EmbeddedNetwork) -> None:
    issue_tokens(net.node(ISSUER), JPY, 10, net.node(ALICE).party)
    stranger = Party(X500Name.parse("O=Stranger, L=Oslo, C=NO"), KeyPair.generate().public)
    with pytest.raises(UnknownPartyError):
        move_tokens(net.node(ALICE), jpy(net), 5, stranger)
    assert balance_of(net.node(ALICE), jpy(net)) == 10


def test_split_and_redeem(net: EmbeddedNetwork) -> None:
    issuer, alice = net.node(ISSUER), net.node(ALICE)
    issue_tokens(issuer, JPY, 1_000, alice.party)
    split = split_tokens(alice, jpy(net), 4)
    assert sorted(o.data.quantity for o in split.tx.outputs) == [250, 250, 250, 250]
    assert len(alice.db.query(FungibleToken)) == 4
    redeem = redeem_tokens(alice, jpy(net), 100)
    assert balance_of(alice, jpy(net)) == 900
    assert issuer.party.owning_key in redeem.signing_keys()
    assert redeem.id in issuer.db.transaction_ids()


def test_counterparty_check_can_refuse_to_sign(net: EmbeddedNetwork) -> None:
    issuer, alice = net.node(ISSUER), net.node(ALICE)
    issue_tokens(issuer, JPY, 100, alice.party)

    def refuse(_ltx: object, _sender: object) -> None:
        raise FlowError("the issuer does not accept redemptions today")

    issuer.sign_check = refuse
    with pytest.raises(FlowError, match="redemptions today"):
        redeem_tokens(alice, jpy(net), 10)
    assert balance_of(alice, jpy(net)) == 100


def test_restart_keeps_everything(net: EmbeddedNetwork) -> None:
    issue_tokens(net.node(ISSUER), JPY, 100, net.node(ALICE).party)
    stx = move_tokens(net.node(ALICE), jpy(net), 30, net.node(BOB).party)
    for name in (ALICE, BOB, str(net.notary.name)):
        net.restart(name)
    assert balance_of(net.node(ALICE), jpy(net)) == 70
    assert balance_of(net.node(BOB), jpy(net)) == 30
    assert net.notary.uniqueness.log_entries() == {ref: stx.id for ref in stx.tx.inputs}
    move_tokens(net.node(BOB), jpy(net), 30, net.node(ALICE).party)
    assert balance_of(net.node(ALICE), jpy(net)) == 100


def test_delivery_resumes_after_receiver_was_down(net: EmbeddedNetwork) -> None:
    issue_tokens(net.node(ISSUER), JPY, 100, net.node(ALICE).party)
    net.stop(BOB)
    stx = move_tokens(net.node(ALICE), jpy(net), 30, net.node(ISSUER).party)
    assert stx.id in net.node(ISSUER).db.transaction_ids()
    bob_party = net.map.party(BOB)
    pay_bob = move_tokens(net.node(ALICE), jpy(net), 20, bob_party)  # Bob is down: kept
    assert net.node(ALICE).db.checkpoints()[0][1] == [BOB]
    net.start(BOB)
    assert net.node(ALICE).recover() == []
    assert pay_bob.id in net.node(BOB).db.transaction_ids()
    assert balance_of(net.node(BOB), jpy(net)) == 20


def test_validating_notary(validating_net: EmbeddedNetwork) -> None:
    net = validating_net
    issue_tokens(net.node(ISSUER), JPY, 10, net.node(ALICE).party)
    stx = move_tokens(net.node(ALICE), jpy(net), 4, net.node(BOB).party)
    assert net.notary.db.get_transaction(stx.tx.inputs[0].txhash) is not None
    # A validating notary runs contracts itself: an unbalanced move is refused there too.
    bad = _handmade_move(net, ALICE, CAROL, quantity_out=7)
    with pytest.raises(ContractRejection):
        net.node(ALICE).notarise(bad)
    assert net.notary.uniqueness.consumed_by(bad.tx.inputs[0]) is None


def test_unreachable_notary_keeps_checkpoint(net: EmbeddedNetwork) -> None:
    issue_tokens(net.node(ISSUER), JPY, 10, net.node(ALICE).party)
    net.stop(str(net.notary.name))
    with pytest.raises(TransportError):
        move_tokens(net.node(ALICE), jpy(net), 4, net.node(BOB).party)
    assert len(net.node(ALICE).db.checkpoints()) == 1
    net.start(next(str(i.party.name) for i in net.map.nodes if i.notary))
    assert net.node(ALICE).recover() == []
    assert balance_of(net.node(BOB), jpy(net)) == 4
