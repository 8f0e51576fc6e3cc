"""Vault: relevancy, indexed queries (type, linear id, holder), soft locks; network map files."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from kakehashi.errors import ConfigurationError, InsufficientBalanceError, StatesNotAvailableError
from kakehashi.ledgers.corda.model.contracts import contract, require
from kakehashi.ledgers.corda.model.crypto import random_bytes
from kakehashi.ledgers.corda.model.identity import Party
from kakehashi.ledgers.corda.model.serialization import serializable
from kakehashi.ledgers.corda.model.states import (
    Command,
    CommandData,
    LinearState,
    StateAndRef,
    StateRef,
    TransactionState,
    UniqueIdentifier,
)
from kakehashi.ledgers.corda.model.transactions import (
    LedgerTransaction,
    SignedTransaction,
    WireTransaction,
)
from kakehashi.ledgers.corda.node import vault as vault_module
from kakehashi.ledgers.corda.node.network import NetworkMap
from kakehashi.ledgers.corda.node.node import Node
from kakehashi.ledgers.corda.node.setup import EmbeddedNetwork
from kakehashi.ledgers.corda.node.vault import StateStatus
from kakehashi.ledgers.corda.tokens import flows
from kakehashi.ledgers.corda.tokens.flows import issue_tokens, move_tokens, select_tokens
from kakehashi.ledgers.corda.tokens.model import FungibleToken
from tests.ledgers.corda.conftest import ALICE, BOB, CAROL, ISSUER, JPY, jpy

AGREEMENT_CONTRACT = "tests.AgreementContract"


@serializable("tests.Agreement")
@dataclass(frozen=True, slots=True)
class Agreement(LinearState):
    """A two-party linear state whose terms evolve."""

    terms: str
    a: Party
    b: Party
    linear_id: UniqueIdentifier

    @property
    def participants(self) -> tuple[Party, ...]:
        return (self.a, self.b)


@serializable("tests.Propose")
@dataclass(frozen=True, slots=True)
class Propose(CommandData):
    pass


@serializable("tests.Amend")
@dataclass(frozen=True, slots=True)
class Amend(CommandData):
    pass


@contract(AGREEMENT_CONTRACT)
class AgreementContract:
    def verify(self, tx: LedgerTransaction) -> None:
        ins, outs = tx.inputs_of_type(Agreement), tx.outputs_of_type(Agreement)
        require(len(outs) == 1, "exactly one agreement is output")
        signers = set(tx.commands[0].signers)
        require({outs[0].a.owning_key, outs[0].b.owning_key} <= signers, "both parties must sign")
        if ins:
            require(ins[0].linear_id == outs[0].linear_id, "an amendment keeps the linear id")


def _agree(node: Node, other: Party, terms: str, previous: StateAndRef | None = None) -> bytes:
    linear_id = UniqueIdentifier() if previous is None else previous.state.data.linear_id  # type: ignore[attr-defined]
    notary = node.network.default_notary()
    state = Agreement(terms, node.party, other, linear_id)
    wtx = WireTransaction.create(
        privacy_salt=random_bytes(),
        inputs=[previous.ref] if previous else [],
        outputs=[TransactionState(state, AGREEMENT_CONTRACT, notary)],
        commands=[
            Command(Amend() if previous else Propose(), (node.party.owning_key, other.owning_key))
        ],
        notary=notary if previous else None,
        network_parameters_hash=node.network.parameters.hash(),
    )

    stx = node.sign(SignedTransaction(wtx, ()))
    stx = node.collect_signatures(stx, [other])
    return node.finalise(stx).id


def test_linear_state_history_and_queries(net: EmbeddedNetwork) -> None:
    alice, bob, carol = net.node(ALICE), net.node(BOB), net.node(CAROL)
    _agree(alice, bob.party, "deliver 10 pallets")
    first = alice.db.query(Agreement)[0]
    linear = first.state.data.linear_id  # type: ignore[attr-defined]
    _agree(alice, bob.party, "deliver 12 pallets", previous=first)
    for node in (alice, bob):
        current = node.db.query(Agreement, linear_id=linear.id)
        assert [s.state.data.terms for s in current] == ["deliver 12 pallets"]  # type: ignore[attr-defined]
        history = node.db.query(Agreement, linear_id=linear.id, status=StateStatus.ALL)
        assert len(history) == 2
        assert node.db.status_of(first.ref) is StateStatus.CONSUMED
    assert carol.db.query(Agreement) == []
    assert carol.db.transaction_ids() == set()


def test_queries_by_type_and_holder(net: EmbeddedNetwork) -> None:
    issuer, alice, bob = net.node(ISSUER), net.node(ALICE), net.node(BOB)
    issue_tokens(issuer, JPY, 100, alice.party)
    move_tokens(alice, jpy(net), 40, bob.party)
    _agree(alice, bob.party, "terms")
    assert len(alice.db.query(FungibleToken)) == 1
    assert len(alice.db.query(Agreement)) == 1
    assert len(alice.db.query()) == 2
    held = alice.db.query(holder=alice.party.owning_key, token=jpy(net).key)
    assert [s.state.data.quantity for s in held] == [60]  # type: ignore[attr-defined]
    assert alice.db.query(holder=bob.party.owning_key) == []
    consumed = alice.db.query(FungibleToken, status=StateStatus.CONSUMED)
    assert [s.state.data.quantity for s in consumed] == [100]  # type: ignore[attr-defined]
    assert alice.db.query(FungibleToken, limit=1, offset=1) == []


def test_soft_locks(net: EmbeddedNetwork) -> None:
    alice = net.node(ALICE)
    issue_tokens(net.node(ISSUER), JPY, 10, alice.party)
    ref = alice.db.query(FungibleToken)[0].ref
    alice.db.soft_lock([ref], "flow-1")
    alice.db.soft_lock([ref], "flow-1")  # the same flow may lock again
    with pytest.raises(StatesNotAvailableError) as info:
        alice.db.soft_lock([ref], "flow-2")
    assert info.value.refs == [str(ref)]
    alice.db.release_soft_locks("flow-1")
    alice.db.soft_lock([ref], "flow-2")


def test_coin_selection_waits_for_locks_then_gives_up(
    net: EmbeddedNetwork, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = net.node(ALICE)
    issue_tokens(net.node(ISSUER), JPY, 10, alice.party)
    ref = alice.db.query(FungibleToken)[0].ref
    alice.db.soft_lock([ref], "other-flow")
    monkeypatch.setattr(flows, "SELECTION_BACKOFF_S", 0.001)
    with pytest.raises(InsufficientBalanceError, match="soft-locked"):
        select_tokens(alice, jpy(net), 5, "me")
    # Released while we back off: the retry succeeds.
    timer = threading.Timer(0.005, alice.db.release_soft_locks, args=("other-flow",))
    timer.start()
    monkeypatch.setattr(flows, "SELECTION_BACKOFF_S", 0.01)
    assert [s.ref for s in select_tokens(alice, jpy(net), 5, "me")] == [ref]
    timer.join()


def test_selection_never_returns_a_state_consumed_after_it_read_the_vault(
    net: EmbeddedNetwork, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flow reads the vault; before it locks, another flow spends the state and unlocks it."""
    alice, bob = net.node(ALICE), net.node(BOB)
    issue_tokens(net.node(ISSUER), JPY, 10, alice.party)
    first = alice.db.query(FungibleToken)[0].ref
    real = vault_module._UNCONSUMED_TOKENS
    started: list[bool] = []
    interleaved: list[SignedTransaction] = []

    class SpendInBetween:
        def run(self, conn: object, params: object) -> object:
            rows = real.run(conn, params)  # type: ignore[arg-type]
            stale = rows.fetchall()
            if not started:
                started.append(True)  # the other flow's own selection reads the real vault
                interleaved.append(move_tokens(alice, jpy(net), 4, bob.party))
            return _Rows(stale)

    monkeypatch.setattr(vault_module, "_UNCONSUMED_TOKENS", SpendInBetween())
    chosen = alice.db.select_fungible(jpy(net).key, alice.party.owning_key, 6, "late-flow")[0]
    assert interleaved, "the other flow did not run in between"
    assert first not in [s.ref for s in chosen]
    assert [s.ref for s in chosen] == [StateRef(interleaved[0].id, 1)]  # the change


class _Rows:
    def __init__(self, rows: list[object]) -> None:
        self._rows = rows

    def fetchall(self) -> list[object]:
        return self._rows


def test_network_map_file_round_trip_and_errors(net: EmbeddedNetwork, tmp_path: Path) -> None:
    path = tmp_path / "map.toml"
    path.write_text(net.map.to_toml())
    loaded = NetworkMap.load(path)
    assert [i.party for i in loaded.nodes] == [i.party for i in net.map.nodes]
    assert loaded.parameters.hash() == net.map.parameters.hash()
    with pytest.raises(ConfigurationError, match="does not exist"):
        NetworkMap.load(tmp_path / "missing.toml")
    path.write_text('[[nodes]]\nname = "O=A, L=B, C=GB"\n')
    with pytest.raises(ConfigurationError, match="lacks the field"):
        NetworkMap.load(path)
    path.write_text('[[nodes]]\nname = "not a name"\nkey = "ed25519:00"\n')
    with pytest.raises(ConfigurationError, match="bad node entry"):
        NetworkMap.load(path)
