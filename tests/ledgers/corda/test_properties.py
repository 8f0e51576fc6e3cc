"""Property tests: random token histories on a fresh embedded network keep the ledger sound.

A hypothesis state machine issues, moves, splits and redeems two issued token types among four
parties (the issuer of each type among them). Operations asking for more than a party holds
must raise :class:`InsufficientBalanceError` and change nothing. After every step:

* supply: for each issued token type, the balances of all parties add up to issued − redeemed,
  and each party's balance is what the model says;
* uniqueness: the notary's commit log is exactly the inputs of the notarised transactions, each
  consumed by one of them; every stored transaction's inputs are logged as consumed by it; a
  state a vault marks consumed is logged with the same consuming transaction, and an unconsumed
  one is not in the log;
* need-to-know: a node stores exactly the transactions it is entitled to (it holds an input or
  output state, or must sign, as the issuer does for a redemption) plus their back-chains, and
  every finalised transaction reached each party entitled to it.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from sqlalchemy import select

from kakehashi.errors import InsufficientBalanceError
from kakehashi.ledgers.corda.model.states import StateRef
from kakehashi.ledgers.corda.model.transactions import SignedTransaction
from kakehashi.ledgers.corda.node.node import Node
from kakehashi.ledgers.corda.node.setup import EmbeddedNetwork
from kakehashi.ledgers.corda.node.vault import StateStatus, vault_states
from kakehashi.ledgers.corda.tokens.flows import (
    balance_of,
    issue_tokens,
    move_tokens,
    redeem_tokens,
    split_tokens,
)
from kakehashi.ledgers.corda.tokens.model import FungibleToken, IssuedTokenType, TokenType
from tests.ledgers.corda.conftest import ALICE, BOB, CAROL, ISSUER, JPY, make_network

PARTIES = (ISSUER, ALICE, BOB, CAROL)
USD = TokenType("USD", 2)
TOKENS = ((ISSUER, JPY), (ALICE, USD))  # (issuer, token type): Alice issues and holds USD

party = st.sampled_from(PARTIES)
token = st.integers(0, len(TOKENS) - 1)

VaultRow = tuple[bytes, int, int, bytes | None]


def vault_rows(node: Node) -> set[VaultRow]:
    """Every vault row as (txhash, index, status, consumed_by)."""
    with node.db.engine.connect() as conn:
        rows = conn.execute(
            select(
                vault_states.c.txhash,
                vault_states.c.output_index,
                vault_states.c.status,
                vault_states.c.consumed_by,
            )
        ).all()
    return {
        (
            bytes(r.txhash),
            r.output_index,
            r.status,
            None if r.consumed_by is None else bytes(r.consumed_by),
        )
        for r in rows
    }


class TokenLedger(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory(prefix="kakehashi-props-")
        self.net: EmbeddedNetwork | None = None
        self.tokens: list[IssuedTokenType] = []
        self.balances: Counter[tuple[str, int]] = Counter()  # (party, token) -> units
        self.issued: Counter[int] = Counter()
        self.redeemed: Counter[int] = Counter()
        self.finalised: list[SignedTransaction] = []

    @initialize(
        validating=st.booleans(),
        holdings=st.lists(st.tuples(token, party, st.integers(1, 1_000)), min_size=1, max_size=5),
    )
    def start_network(self, validating: bool, holdings: list[tuple[int, str, int]]) -> None:
        self.net = make_network(Path(self.tmp.name) / "net", validating=validating)
        self.tokens = [
            IssuedTokenType(self.net.node(issuer).party, token_type)
            for issuer, token_type in TOKENS
        ]
        for t, holder, quantity in holdings:
            self.issue(t, holder, quantity)

    def teardown(self) -> None:
        if self.net is not None:
            self.net.close()
        self.tmp.cleanup()

    # -- helpers -------------------------------------------------------------------------------

    @property
    def network(self) -> EmbeddedNetwork:
        assert self.net is not None
        return self.net

    def node(self, name: str) -> Node:
        return self.network.node(name)

    def snapshot(self) -> object:
        net = self.network
        nodes = {
            name: (
                node.db.transaction_ids(),
                vault_rows(node),
                len(node.db.checkpoints()),
            )
            for name, node in net.nodes.items()
        }
        notary = net.notary
        return (
            nodes,
            notary.db.transaction_ids(),
            notary.uniqueness.log_entries(),
            notary.uniqueness.committed_count(),
        )

    def done(self, stx: SignedTransaction, kind: str) -> None:
        self.finalised.append(stx)
        event(f"finalised {kind}")

    def refuse(self, operation: Callable[..., object], *args: object) -> None:
        """The operation must fail for want of balance and leave every database as it was."""
        before = self.snapshot()
        with pytest.raises(InsufficientBalanceError):
            operation(*args)
        assert self.snapshot() == before
        event(f"refused {getattr(operation, '__name__', operation)}")

    # -- operations ----------------------------------------------------------------------------

    @rule(t=token, holder=party, quantity=st.integers(1, 1_000))
    def issue(self, t: int, holder: str, quantity: int) -> None:
        issuer, token_type = TOKENS[t]
        stx = issue_tokens(self.node(issuer), token_type, quantity, self.node(holder).party)
        self.done(stx, "issue")
        self.issued[t] += quantity
        self.balances[holder, t] += quantity

    @rule(t=token, sender=party, receiver=party, quantity=st.integers(1, 400))
    def move(self, t: int, sender: str, receiver: str, quantity: int) -> None:
        node, to = self.node(sender), self.node(receiver).party
        if self.balances[sender, t] < quantity:
            self.refuse(move_tokens, node, self.tokens[t], quantity, to)
            return
        self.done(move_tokens(node, self.tokens[t], quantity, to), "move")
        self.balances[sender, t] -= quantity
        self.balances[receiver, t] += quantity

    @rule(t=token, holder=party, parts=st.integers(1, 4))
    def split(self, t: int, holder: str, parts: int) -> None:
        node = self.node(holder)
        if self.balances[holder, t] < parts:
            self.refuse(split_tokens, node, self.tokens[t], parts)
            return
        stx = split_tokens(node, self.tokens[t], parts)
        self.done(stx, "split")
        assert len(stx.tx.outputs) == parts
        sizes = [out.data.quantity for out in stx.tx.outputs if isinstance(out.data, FungibleToken)]
        assert sum(sizes) == self.balances[holder, t]
        assert max(sizes) - min(sizes) <= 1

    @rule(t=token, holder=party, quantity=st.integers(1, 400))
    def redeem(self, t: int, holder: str, quantity: int) -> None:
        node = self.node(holder)
        if self.balances[holder, t] < quantity:
            self.refuse(redeem_tokens, node, self.tokens[t], quantity)
            return
        self.done(redeem_tokens(node, self.tokens[t], quantity), "redeem")
        self.balances[holder, t] -= quantity
        self.redeemed[t] += quantity

    # -- invariants ----------------------------------------------------------------------------

    @invariant()
    def supply_is_conserved(self) -> None:
        if self.net is None:
            return
        for t, issued in enumerate(self.tokens):
            held = {name: balance_of(self.node(name), issued) for name in PARTIES}
            assert held == {name: self.balances[name, t] for name in PARTIES}
            assert sum(held.values()) == self.issued[t] - self.redeemed[t]

    @invariant()
    def every_state_is_consumed_once(self) -> None:
        if self.net is None:
            return
        log = self.network.notary.uniqueness.log_entries()
        expected: dict[StateRef, bytes] = {}
        for stx in self.finalised:
            for ref in stx.tx.inputs:
                assert ref not in expected, f"{ref} spent by two finalised transactions"
                expected[ref] = stx.id
        assert log == expected
        for node in self.network.nodes.values():
            for tx_id in node.db.transaction_ids():
                stored = node.db.get_transaction(tx_id)
                assert stored is not None
                for ref in stored.tx.inputs:
                    assert log.get(ref) == tx_id
            unconsumed = []
            for txhash, index, status, consumed_by in vault_rows(node):
                ref = StateRef(txhash, index)
                if status == StateStatus.CONSUMED:
                    assert consumed_by is not None
                    assert log.get(ref) == consumed_by
                else:
                    assert status == StateStatus.UNCONSUMED
                    assert ref not in log
                    unconsumed.append(ref)
            # Finished flows left no soft lock: every unconsumed state can be reserved anew.
            node.db.soft_lock(unconsumed, "invariant-probe")
            node.db.release_soft_locks("invariant-probe")
            assert node.db.checkpoints() == []

    @invariant()
    def need_to_know(self) -> None:
        if self.net is None:
            return
        nodes = self.network.nodes
        stored = {name: node.db.transaction_ids() for name, node in nodes.items()}
        every: dict[bytes, SignedTransaction] = {}
        for name, ids in stored.items():
            for tx_id in ids:
                stx = nodes[name].db.get_transaction(tx_id)
                assert stx is not None
                every[tx_id] = stx
        for stx in self.finalised:
            assert stx.id in every

        def entitled(stx: SignedTransaction) -> set[str]:
            states = [out.data for out in stx.tx.outputs]
            for ref in stx.tx.inputs:
                states.append(every[ref.txhash].tx.outputs[ref.index].data)
            keys = {p.owning_key for state in states for p in state.participants}
            keys |= {key for command in stx.tx.commands for key in command.signers}
            return {str(name) for name, node in nodes.items() if node.party.owning_key in keys}

        for name in nodes:
            roots = {tx_id for tx_id, stx in every.items() if str(name) in entitled(stx)}
            closure, todo = set(), list(roots)
            while todo:
                tx_id = todo.pop()
                if tx_id not in closure:
                    closure.add(tx_id)
                    todo.extend(every[tx_id].tx.dependencies())
            assert stored[name] == closure, f"{name} stores more or less than it needs to know"
            for stx in self.finalised:
                if str(name) in entitled(stx):
                    assert stx.id in stored[name], f"{name} never got {stx.id.hex()}"


TokenLedger.TestCase.settings = settings(
    max_examples=15,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TestTokenLedger = TokenLedger.TestCase
