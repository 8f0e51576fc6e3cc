"""Transactions: wire form (component groups + Merkle id), signed form, resolved ledger form.

``WireTransaction`` keeps the exact serialised components, so its id is always recomputed from
the bytes that were signed; the parsed view is derived from them. ``LedgerTransaction`` is the
form contracts see, with input and reference states resolved. Platform checks run before any
contract code, in Corda's order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kakehashi.errors import (
    ContractRejection,
    InvalidTransactionError,
    KakehashiError,
    SerializationError,
    SignatureError,
)
from kakehashi.ledgers.corda import merkle
from kakehashi.ledgers.corda.merkle import ComponentGroup, FilteredTransaction
from kakehashi.ledgers.corda.model.contracts import contract_for
from kakehashi.ledgers.corda.model.crypto import PublicKey, TransactionSignature
from kakehashi.ledgers.corda.model.identity import Party
from kakehashi.ledgers.corda.model.parameters import NetworkParameters
from kakehashi.ledgers.corda.model.serialization import deserialize, serializable, serialize
from kakehashi.ledgers.corda.model.states import (
    Command,
    CommandData,
    ContractState,
    StateAndRef,
    StateRef,
    TimeWindow,
    TransactionState,
)

S = TypeVar("S", bound=ContractState)
K = TypeVar("K", bound=CommandData)

serializable("corda.PartialMerkleTree")(merkle.PartialMerkleTree)
serializable("corda.FilteredComponentGroup")(merkle.FilteredComponentGroup)
serializable("corda.FilteredTransaction")(merkle.FilteredTransaction)


@dataclass(frozen=True)
class _Parsed:
    inputs: tuple[StateRef, ...]
    outputs: tuple[TransactionState, ...]
    commands: tuple[Command, ...]
    attachments: tuple[bytes, ...]
    notary: Party | None
    time_window: TimeWindow | None
    references: tuple[StateRef, ...]
    network_parameters_hash: bytes | None


def _parse_all(data: Sequence[bytes], kind: type[Any], what: str) -> tuple[Any, ...]:
    try:
        return tuple(deserialize(item, kind) for item in data)
    except SerializationError as exc:
        raise InvalidTransactionError(f"malformed {what} component: {exc}") from exc


def _parse_one(data: Sequence[bytes], kind: type[Any], what: str) -> Any:
    if len(data) > 1:
        raise InvalidTransactionError(f"a transaction may have only one {what}")
    return _parse_all(data, kind, what)[0] if data else None


def parse_components(groups: Mapping[int, Sequence[bytes]]) -> _Parsed:
    """Decode component groups and apply Corda's structural rules to them."""
    unknown = [g for g in groups if g not in set(ComponentGroup)]
    if unknown:
        raise InvalidTransactionError(f"unknown component group ordinal(s) {unknown}")
    empty = [g for g, items in groups.items() if not items]
    if empty:
        raise InvalidTransactionError(f"component group(s) {empty} are present but empty")

    def group(g: ComponentGroup) -> Sequence[bytes]:
        return groups.get(g, ())

    commands_data = _parse_all(group(ComponentGroup.COMMANDS), CommandData, "command")
    signer_lists = _parse_all(group(ComponentGroup.SIGNERS), tuple, "signers")
    if len(commands_data) != len(signer_lists):
        raise InvalidTransactionError(
            f"{len(commands_data)} commands but {len(signer_lists)} signer lists"
        )
    commands = []
    for value, signers in zip(commands_data, signer_lists, strict=True):
        if not all(isinstance(key, PublicKey) for key in signers):
            raise InvalidTransactionError("a command's signers must all be public keys")
        commands.append(Command(value, signers))
    attachments = tuple(group(ComponentGroup.ATTACHMENTS))
    return _Parsed(
        inputs=_parse_all(group(ComponentGroup.INPUTS), StateRef, "input"),
        outputs=_parse_all(group(ComponentGroup.OUTPUTS), TransactionState, "output"),
        commands=tuple(commands),
        attachments=attachments,
        notary=_parse_one(group(ComponentGroup.NOTARY), Party, "notary"),
        time_window=_parse_one(group(ComponentGroup.TIMEWINDOW), TimeWindow, "time window"),
        references=_parse_all(group(ComponentGroup.REFERENCES), StateRef, "reference"),
        network_parameters_hash=_parse_one(
            group(ComponentGroup.PARAMETERS), bytes, "network parameters hash"
        ),
    )


def _check_structure(p: _Parsed) -> None:
    """Corda's WireTransaction rules that need no resolved states."""
    if not p.inputs and not p.outputs:
        raise InvalidTransactionError("a transaction must contain at least one input or output")
    if not p.commands:
        raise InvalidTransactionError("a transaction must contain at least one command")
    if (p.inputs or p.references or p.time_window) and p.notary is None:
        what = "a time window" if p.time_window and not p.inputs else "inputs or references"
        raise InvalidTransactionError(f"a transaction with {what} must name a notary")
    if len(set(p.inputs)) != len(p.inputs):
        raise InvalidTransactionError("a transaction lists the same input twice")
    if len(set(p.references)) != len(p.references):
        raise InvalidTransactionError("a transaction lists the same reference state twice")
    both = set(p.inputs) & set(p.references)
    if both:
        raise InvalidTransactionError(
            f"state(s) {sorted(map(str, both))} cannot be both an input and a reference"
        )
    for i, attachment in enumerate(p.attachments):
        if len(attachment) != 32:
            raise InvalidTransactionError(f"attachment {i} is not a 32-byte hash")
    if p.network_parameters_hash is not None and len(p.network_parameters_hash) != 32:
        raise InvalidTransactionError("the network parameters hash must be 32 bytes")


@serializable("corda.WireTransaction")
@dataclass(frozen=True)
class WireTransaction:
    """A transaction as signed: serialised component groups and the privacy salt.

    Only non-empty groups are stored; the id follows DESIGN.md §2.2 over every ordinal up to the
    highest present one.
    """

    component_groups: dict[int, tuple[bytes, ...]]
    privacy_salt: bytes
    _parsed: _Parsed = field(init=False, repr=False, compare=False, metadata={"transient": True})
    _id: bytes = field(init=False, repr=False, compare=False, metadata={"transient": True})

    def __post_init__(self) -> None:
        parsed = parse_components(self.component_groups)
        _check_structure(parsed)
        object.__setattr__(self, "_parsed", parsed)
        object.__setattr__(
            self, "_id", merkle.transaction_id(self.component_groups, self.privacy_salt)
        )

    @classmethod
    def create(
        cls,
        *,
        privacy_salt: bytes,
        inputs: Sequence[StateRef] = (),
        outputs: Sequence[TransactionState] = (),
        commands: Sequence[Command] = (),
        attachments: Sequence[bytes] = (),
        notary: Party | None = None,
        time_window: TimeWindow | None = None,
        references: Sequence[StateRef] = (),
        network_parameters_hash: bytes | None = None,
    ) -> WireTransaction:
        """Serialise each component into its group and build the transaction."""
        groups: dict[int, tuple[bytes, ...]] = {
            ComponentGroup.INPUTS: tuple(serialize(ref) for ref in inputs),
            ComponentGroup.OUTPUTS: tuple(serialize(state) for state in outputs),
            ComponentGroup.COMMANDS: tuple(serialize(cmd.value) for cmd in commands),
            ComponentGroup.ATTACHMENTS: tuple(attachments),
            ComponentGroup.NOTARY: (serialize(notary),) if notary else (),
            ComponentGroup.TIMEWINDOW: (serialize(time_window),) if time_window else (),
            ComponentGroup.SIGNERS: tuple(serialize(cmd.signers) for cmd in commands),
            ComponentGroup.REFERENCES: tuple(serialize(ref) for ref in references),
            ComponentGroup.PARAMETERS: (
                (serialize(network_parameters_hash),) if network_parameters_hash else ()
            ),
        }
        present = {int(g): items for g, items in groups.items() if items}
        parsed = _Parsed(
            inputs=tuple(inputs),
            outputs=tuple(outputs),
            commands=tuple(Command(c.value, tuple(c.signers)) for c in commands),
            attachments=tuple(attachments),
            notary=notary,
            time_window=time_window,
            references=tuple(references),
            network_parameters_hash=network_parameters_hash,
        )
        return cls._from_parts(present, privacy_salt, parsed)

    @classmethod
    def _from_parts(
        cls, groups: dict[int, tuple[bytes, ...]], privacy_salt: bytes, parsed: _Parsed
    ) -> WireTransaction:
        """Build from components we serialised ourselves: no need to decode them again."""
        _check_structure(parsed)
        wtx = object.__new__(cls)
        object.__setattr__(wtx, "component_groups", groups)
        object.__setattr__(wtx, "privacy_salt", privacy_salt)
        object.__setattr__(wtx, "_parsed", parsed)
        object.__setattr__(wtx, "_id", merkle.transaction_id(groups, privacy_salt))
        return wtx

    @property
    def id(self) -> bytes:
        return self._id

    @property
    def inputs(self) -> tuple[StateRef, ...]:
        return self._parsed.inputs

    @property
    def outputs(self) -> tuple[TransactionState, ...]:
        return self._parsed.outputs

    @property
    def commands(self) -> tuple[Command, ...]:
        return self._parsed.commands

    @property
    def attachments(self) -> tuple[bytes, ...]:
        return self._parsed.attachments

    @property
    def notary(self) -> Party | None:
        return self._parsed.notary

    @property
    def time_window(self) -> TimeWindow | None:
        return self._parsed.time_window

    @property
    def references(self) -> tuple[StateRef, ...]:
        return self._parsed.references

    @property
    def network_parameters_hash(self) -> bytes | None:
        return self._parsed.network_parameters_hash

    def out_ref(self, index: int) -> StateAndRef:
        return StateAndRef(self.outputs[index], StateRef(self.id, index))

    def needs_notary_signature(self) -> bool:
        """Corda: the notary signs when there are inputs, references or a time window."""
        return bool(self.inputs or self.references or self.time_window)

    def required_signing_keys(self) -> frozenset[PublicKey]:
        keys = {key for cmd in self.commands for key in cmd.signers}
        if self.needs_notary_signature() and self.notary is not None:
            keys.add(self.notary.owning_key)
        return frozenset(keys)

    def dependencies(self) -> frozenset[bytes]:
        """Ids of the transactions whose outputs this one consumes or references."""
        return frozenset(ref.txhash for ref in (*self.inputs, *self.references))

    def filtered(self, reveal: Callable[[int, int, bytes], bool]) -> FilteredTransaction:
        """A tear-off revealing the components ``reveal(group, index, bytes)`` selects."""
        return merkle.filter_transaction(self.component_groups, self.privacy_salt, reveal)

    def notarisation_tear_off(self) -> FilteredTransaction:
        """What a non-validating notary sees: inputs, references, notary, time window, params."""
        shown = {
            ComponentGroup.INPUTS,
            ComponentGroup.REFERENCES,
            ComponentGroup.NOTARY,
            ComponentGroup.TIMEWINDOW,
            ComponentGroup.PARAMETERS,
        }
        return self.filtered(lambda group, _index, _data: group in shown)

    def to_ledger_transaction(
        self,
        resolve_state: Callable[[StateRef], TransactionState],
    ) -> LedgerTransaction:
        """Resolve input and reference states (``resolve_state`` raises if one is unknown)."""
        return LedgerTransaction(
            id=self.id,
            inputs=tuple(StateAndRef(resolve_state(ref), ref) for ref in self.inputs),
            outputs=self.outputs,
            commands=self.commands,
            attachments=self.attachments,
            notary=self.notary,
            time_window=self.time_window,
            references=tuple(StateAndRef(resolve_state(ref), ref) for ref in self.references),
            network_parameters_hash=self.network_parameters_hash,
        )


def notarisation_view(ftx: FilteredTransaction) -> _Parsed:
    """Check a notarisation tear-off shows every component a notary needs, and decode them."""
    needed = (
        ComponentGroup.INPUTS,
        ComponentGroup.REFERENCES,
        ComponentGroup.NOTARY,
        ComponentGroup.TIMEWINDOW,
        ComponentGroup.PARAMETERS,
    )
    merkle.verify_filtered(ftx)
    for group in needed:
        merkle.check_all_components_visible(ftx, group)
    groups = {int(g): ftx.components(g) for g in needed if ftx.components(g)}
    parsed = parse_components(groups)
    if (parsed.inputs or parsed.references or parsed.time_window) and parsed.notary is None:
        raise InvalidTransactionError("the transaction to notarise names no notary")
    return parsed


@serializable("corda.SignedTransaction")
@dataclass(frozen=True)
class SignedTransaction:
    """A wire transaction with the signatures collected so far."""

    tx: WireTransaction
    sigs: tuple[TransactionSignature, ...]

    @property
    def id(self) -> bytes:
        return self.tx.id

    def with_signatures(self, *extra: TransactionSignature) -> SignedTransaction:
        known = {sig.by for sig in self.sigs}
        added = tuple(sig for sig in extra if sig.by not in known)
        return dataclasses.replace(self, sigs=self.sigs + added)

    def signing_keys(self) -> frozenset[PublicKey]:
        return frozenset(sig.by for sig in self.sigs)

    def verify_signatures(self, allowed_missing: Iterable[PublicKey] = ()) -> None:
        """Every signature must verify; every required key must have signed unless allowed.

        Raises :class:`SignatureError` naming the missing keys.
        """
        for sig in self.sigs:
            sig.verify(self.id)
        missing = self.tx.required_signing_keys() - self.signing_keys() - set(allowed_missing)
        if missing:
            names = ", ".join(sorted(key.short() for key in missing))
            raise SignatureError(
                f"transaction {self.id.hex()} is missing signatures from key(s) {names}"
            )


@dataclass(frozen=True)
class LedgerTransaction:
    """A transaction with its inputs resolved: what contracts verify."""

    id: bytes
    inputs: tuple[StateAndRef, ...]
    outputs: tuple[TransactionState, ...]
    commands: tuple[Command, ...]
    attachments: tuple[bytes, ...]
    notary: Party | None
    time_window: TimeWindow | None
    references: tuple[StateAndRef, ...]
    network_parameters_hash: bytes | None = None

    @property
    def input_states(self) -> tuple[ContractState, ...]:
        return tuple(s.state.data for s in self.inputs)

    @property
    def output_states(self) -> tuple[ContractState, ...]:
        return tuple(s.data for s in self.outputs)

    @property
    def reference_states(self) -> tuple[ContractState, ...]:
        return tuple(s.state.data for s in self.references)

    def inputs_of_type(self, kind: type[S]) -> list[S]:
        return [s for s in self.input_states if isinstance(s, kind)]

    def outputs_of_type(self, kind: type[S]) -> list[S]:
        return [s for s in self.output_states if isinstance(s, kind)]

    def references_of_type(self, kind: type[S]) -> list[S]:
        return [s for s in self.reference_states if isinstance(s, kind)]

    def commands_of_type(self, kind: type[K]) -> list[Command]:
        return [c for c in self.commands if isinstance(c.value, kind)]

    def verify(self, parameters: NetworkParameters | None = None) -> None:
        """Platform checks, then every contract once (Corda's verification order)."""
        self.check_platform_rules(parameters)
        for name in sorted(self.contract_names()):
            verifier = contract_for(name)
            try:
                verifier.verify(self)
            except ContractRejection:
                raise
            except (KakehashiError, ValueError, TypeError, ArithmeticError, LookupError) as exc:
                raise ContractRejection(name, str(exc)) from exc
            except AttributeError as exc:
                raise ContractRejection(name, f"unexpected state shape: {exc}") from exc

    def contract_names(self) -> set[str]:
        return {s.state.contract for s in self.inputs} | {s.contract for s in self.outputs}

    def check_platform_rules(self, parameters: NetworkParameters | None = None) -> None:
        """Notary consistency, encumbrances, network parameters, installed contracts."""
        if self.notary is not None:
            for state in self.inputs:
                if state.state.notary != self.notary:
                    raise InvalidTransactionError(
                        f"input {state.ref} is controlled by notary {state.state.notary} but the "
                        f"transaction names {self.notary}; run a notary change first"
                    )
            for index, output in enumerate(self.outputs):
                if output.notary != self.notary:
                    raise InvalidTransactionError(
                        f"output {index} names notary {output.notary} but the transaction's "
                        f"notary is {self.notary}"
                    )
        if parameters is not None:
            if self.network_parameters_hash not in (None, parameters.hash()):
                raise InvalidTransactionError(
                    "the transaction was built for other network parameters than this node's"
                )
            notaries = [self.notary] if self.notary else []
            notaries += [output.notary for output in self.outputs]
            for notary in notaries:
                if parameters.notary(notary) is None:
                    raise InvalidTransactionError(
                        f"notary {notary} is not one of the network's notaries"
                    )
        self._check_input_encumbrances()
        self._check_output_encumbrances()
        for name in self.contract_names():
            contract_for(name)

    def _check_input_encumbrances(self) -> None:
        refs = {s.ref for s in self.inputs}
        for state in self.inputs:
            index = state.state.encumbrance
            if index is not None and StateRef(state.ref.txhash, index) not in refs:
                raise InvalidTransactionError(
                    f"input {state.ref} is encumbered by output {index} of the same transaction, "
                    "which must be consumed in this transaction too"
                )

    def _check_output_encumbrances(self) -> None:
        edges = {i: s.encumbrance for i, s in enumerate(self.outputs) if s.encumbrance is not None}
        encumbered_by: dict[int, int] = {}
        for source, target in edges.items():
            if target >= len(self.outputs) or target == source:
                raise InvalidTransactionError(
                    f"output {source} has an invalid encumbrance index {target}"
                )
            if target in encumbered_by:
                raise InvalidTransactionError(
                    f"output {target} encumbers both output {encumbered_by[target]} and {source}"
                )
            encumbered_by[target] = source
        for source, target in edges.items():
            if target not in edges:
                raise InvalidTransactionError(
                    f"output {source} is encumbered by output {target}, which must be encumbered "
                    "in turn (encumbrances must form a loop)"
                )
