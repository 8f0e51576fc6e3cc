"""A Corda-model host call that moves Corda states in its host transaction (HostStore.add_states,
put_state / take_state / get_state): verified by their contracts, notarised with the host
version, recorded in the vault, carried through the pending path, proven by the light client."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kakehashi.errors import (
    ContractRejection,
    IbcError,
    TransportError,
)
from kakehashi.ibc.corda_host import CordaIbcHost, HostAdvance, IbcHostState
from kakehashi.ibc.corda_host.host import HostStore
from kakehashi.ledgers.corda.model.contracts import contract, require
from kakehashi.ledgers.corda.model.crypto import random_bytes
from kakehashi.ledgers.corda.model.identity import Party
from kakehashi.ledgers.corda.model.serialization import serializable
from kakehashi.ledgers.corda.model.states import (
    Command,
    CommandData,
    ContractState,
    StateRef,
    TimeWindow,
    TransactionState,
)
from kakehashi.ledgers.corda.model.transactions import SignedTransaction, WireTransaction
from kakehashi.ledgers.corda.node.setup import EmbeddedNetwork
from kakehashi.ledgers.corda.node.vault import StateStatus
from kakehashi.ledgers.corda.smt import EMPTY_ROOT
from kakehashi.lightclients.corda import HOST_CONTRACT, verify_host_state

OPERATOR = "O=Bank A, L=London, C=GB"
NOTARY = "O=Notary, L=Zurich, C=CH"
NOTE_CONTRACT = "tests.HostNoteContract"
KIND = "app:note"


@serializable("tests.HostNote")
@dataclass(frozen=True, slots=True)
class Note(ContractState):
    """A test state the host operator keeps."""

    operator: Party
    text: str

    @property
    def participants(self) -> tuple[Party, ...]:
        return (self.operator,)


@serializable("tests.Scribble")
@dataclass(frozen=True, slots=True)
class Scribble(CommandData):
    pass


@contract(NOTE_CONTRACT)
class NoteContract:
    """Notes move only in a host transaction, and never say "forbidden"."""

    def verify(self, tx: object) -> None:
        from kakehashi.ledgers.corda.model.transactions import LedgerTransaction

        assert isinstance(tx, LedgerTransaction)
        require(bool(tx.commands_of_type(HostAdvance)), "notes move in host transactions")
        require(bool(tx.commands_of_type(Scribble)), "notes need a Scribble command")
        for note in tx.outputs_of_type(Note):
            require(note.text != "forbidden", "a forbidden note")


@pytest.fixture
def net(tmp_path: Path) -> Iterator[EmbeddedNetwork]:
    network = EmbeddedNetwork.create(tmp_path / "net")
    yield network
    network.close()


def note(host: CordaIbcHost, text: str) -> TransactionState:
    return TransactionState(Note(host.node.party, text), NOTE_CONTRACT, host.notary)


def scribble(host: CordaIbcHost) -> Command:
    return Command(Scribble(), (host.node.party.owning_key,))


def put(host: CordaIbcHost, name: str, text: str) -> None:
    def action(store: HostStore) -> None:
        if store.get_state(KIND, name) is not None:
            store.take_state(KIND, name)
        store.put_state(KIND, name, note(host, text))
        store.add_command(scribble(host))

    host.execute(action)


def notes(host: CordaIbcHost, status: StateStatus = StateStatus.UNCONSUMED) -> list[str]:
    return sorted(s.state.data.text for s in host.node.db.query(Note, status=status))  # type: ignore[attr-defined]


def test_a_call_that_only_adds_states_makes_one_notarised_version(net: EmbeddedNetwork) -> None:
    host = CordaIbcHost(net.node(OPERATOR))
    before = net.notary.uniqueness.committed_count()
    put(host, "n", "first")
    assert host.version == 2 and host.smt_root == EMPTY_ROOT  # a version, no store write
    stx = host.node.db.get_transaction(host.state.ref.txhash)
    assert stx is not None
    assert isinstance(stx.tx.outputs[0].data, IbcHostState)  # the host state stays output 0
    assert isinstance(stx.tx.outputs[1].data, Note)
    assert host.store.state_ref(KIND, "n") == stx.tx.out_ref(1).ref
    assert notes(host) == ["first"]
    put(host, "n", "second")  # consumes the first note: input 1 of the next version
    stx = host.node.db.get_transaction(host.state.ref.txhash)
    assert stx is not None
    assert stx.tx.inputs[1] == host.node.db.query(Note, status=StateStatus.CONSUMED)[0].ref
    assert net.notary.uniqueness.consumed_by(stx.tx.inputs[1]) == stx.id
    assert net.notary.uniqueness.committed_count() == before + 2
    assert notes(host) == ["second"]
    assert host.store.get_state(KIND, "n") == note(host, "second")


def test_the_contracts_run_before_the_notary_and_a_refusal_records_nothing(
    net: EmbeddedNetwork,
) -> None:
    node = net.node(OPERATOR)
    host = CordaIbcHost(node)
    put(host, "n", "kept")
    before = (host.version, node.db.transaction_ids(), notes(host))
    with pytest.raises(ContractRejection, match="forbidden"):
        put(host, "n", "forbidden")
    with pytest.raises(ContractRejection, match="Scribble"):
        host.execute(lambda s: s.add_states(outputs=[note(host, "silent")]))
    assert (host.version, node.db.transaction_ids(), notes(host)) == before
    assert host.store.get_state(KIND, "n") == note(host, "kept")
    with pytest.raises(IbcError, match="inside a host call"):
        host.store.put_state(KIND, "m", note(host, "outside"))
    with pytest.raises(IbcError, match="take it first"):
        host.execute(lambda s: s.put_state(KIND, "n", note(host, "again")))
    with pytest.raises(IbcError, match="twice"):
        host.execute(lambda s: s.add_states(inputs=[host.state.ref]))


def test_a_state_produced_and_consumed_in_one_call_never_reaches_the_ledger(
    net: EmbeddedNetwork,
) -> None:
    host = CordaIbcHost(net.node(OPERATOR))
    put(host, "n", "committed")

    def action(store: HostStore) -> tuple[object, ...]:
        seen = []
        store.take_state(KIND, "n")
        seen.append(store.get_state(KIND, "n"))  # consumed in this call: gone
        store.put_state(KIND, "n", note(host, "interim"))
        seen.append(store.get_state(KIND, "n"))  # produced in this call: visible before commit
        staged = store.staged_states()
        seen.append((len(staged.inputs), [s.data.text for s in staged.outputs]))  # type: ignore[attr-defined]
        store.take_state(KIND, "n")  # the interim note is dropped, not spent
        store.put_state(KIND, "n", note(host, "final"))
        store.add_command(scribble(host))
        return tuple(seen)

    gone, interim, staged = host.execute(action)
    assert gone is None and interim == note(host, "interim") and staged == (1, ["interim"])
    stx = host.node.db.get_transaction(host.state.ref.txhash)
    assert stx is not None
    assert [type(o.data) for o in stx.tx.outputs] == [IbcHostState, Note]
    assert notes(host) == ["final"]
    assert notes(host, StateStatus.ALL) == ["committed", "final"]


def test_the_pending_path_records_the_states_and_their_index(net: EmbeddedNetwork) -> None:
    host = CordaIbcHost(net.node(OPERATOR))
    put(host, "n", "before")
    net.stop(NOTARY)
    with pytest.raises(TransportError):
        put(host, "n", "during")
    net.start(NOTARY)
    again = CordaIbcHost(net.restart(OPERATOR))  # type: ignore[arg-type]
    assert again.version == 3
    assert again.store.get_state(KIND, "n") == note(again, "during")
    assert again.store.state_ref(KIND, "n") == StateRef(again.state.ref.txhash, 1)
    assert notes(again) == ["during"]
    put(again, "n", "after")
    assert notes(again) == ["after"]


def test_the_host_contract_keeps_the_host_state_first(net: EmbeddedNetwork) -> None:
    node = net.node(OPERATOR)
    host = CordaIbcHost(node)
    put(host, "n", "x")
    current = host.host_state
    micros = current.timestamp_ns // 1000 + 1
    state = IbcHostState(
        current.operator, current.linear_id, current.version + 1, EMPTY_ROOT, micros * 1000
    )
    host_output = TransactionState(state, HOST_CONTRACT, host.notary)
    note_ref = host.store.state_ref(KIND, "n")
    assert note_ref is not None

    def attempt(inputs: list[StateRef], outputs: list[TransactionState]) -> None:
        wtx = WireTransaction.create(
            privacy_salt=random_bytes(32),
            inputs=inputs,
            outputs=outputs,
            commands=[
                Command(HostAdvance(current.version + 1), (node.party.owning_key,)),
                scribble(host),
            ],
            notary=host.notary,
            time_window=TimeWindow(micros - 10_000_000, micros + 10_000_000),
        )
        node.finalise(node.sign(SignedTransaction(wtx, ())))

    with pytest.raises(ContractRejection, match="output 0"):
        attempt([host.state.ref], [note(host, "y"), host_output])
    with pytest.raises(ContractRejection, match="input 0"):
        attempt([note_ref, host.state.ref], [host_output])
    assert host.version == 2


def test_the_light_client_accepts_a_version_that_moves_other_states(
    net: EmbeddedNetwork,
) -> None:
    host = CordaIbcHost(net.node(OPERATOR))
    put(host, "n", "one")
    put(host, "n", "two")  # version 3 consumes the host state and a note
    previous = verify_host_state(host.client_state(), host.attestation(2))
    view = verify_host_state(host.client_state(), host.attestation(3))
    assert view.version == 3
    assert view.previous_tx == previous.tx_id  # input 0: the previous host version's output
