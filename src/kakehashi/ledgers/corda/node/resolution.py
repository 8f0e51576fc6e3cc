"""Back-chain resolution: fetch and verify the transactions a received transaction depends on."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from kakehashi.errors import KakehashiError, TransactionResolutionError
from kakehashi.ledgers.corda.model.parameters import NetworkParameters
from kakehashi.ledgers.corda.model.states import StateRef, TransactionState
from kakehashi.ledgers.corda.model.transactions import LedgerTransaction, SignedTransaction

MAX_BACKCHAIN = 20_000
FETCH_BATCH = 200

Fetch = Callable[[Sequence[bytes]], Sequence[SignedTransaction]]
Lookup = Callable[[StateRef], TransactionState | None]


def to_ledger(
    stx: SignedTransaction, lookup: Lookup, extra: Mapping[bytes, SignedTransaction]
) -> LedgerTransaction:
    """Resolve ``stx``'s inputs and references from ``extra`` first, then ``lookup``."""

    def resolve(ref: StateRef) -> TransactionState:
        source = extra.get(ref.txhash)
        if source is not None:
            if ref.index >= len(source.tx.outputs):
                raise TransactionResolutionError(f"{ref} points past the outputs of its tx")
            return source.tx.outputs[ref.index]
        state = lookup(ref)
        if state is None:
            raise TransactionResolutionError(
                f"input or reference {ref} of {stx.id.hex()} cannot be resolved"
            )
        return state

    return stx.tx.to_ledger_transaction(resolve)


def resolve_dependencies(
    stx: SignedTransaction,
    have: Callable[[Iterable[bytes]], set[bytes]],
    fetch: Fetch,
    lookup: Lookup,
    parameters: NetworkParameters | None,
) -> list[SignedTransaction]:
    """Fetch every missing ancestor of ``stx``, verify each, and return them oldest first.

    Every fetched transaction must be the one asked for (its id is recomputed from its
    components), carry every required signature including the notary's, and pass its contracts.
    """
    fetched: dict[bytes, SignedTransaction] = {}
    wanted = set(stx.tx.dependencies())
    pending = wanted - have(wanted)
    while pending:
        batch = sorted(pending)[:FETCH_BATCH]
        answer = fetch(batch)
        by_id = {tx.id: tx for tx in answer}
        if set(by_id) != set(batch):
            missing = sorted(set(batch) - set(by_id))
            raise TransactionResolutionError(
                f"peer did not supply dependencies {[m.hex() for m in missing]} "
                "(or sent transactions we did not ask for)"
            )
        fetched.update(by_id)
        if len(fetched) > MAX_BACKCHAIN:
            raise TransactionResolutionError(
                f"back-chain of {stx.id.hex()} exceeds {MAX_BACKCHAIN} transactions"
            )
        pending -= set(batch)
        parents = {d for tx in answer for d in tx.tx.dependencies()} - set(fetched) - pending
        pending |= parents - have(parents)

    ordered = _oldest_first(fetched)
    verified: dict[bytes, SignedTransaction] = {}
    for tx in ordered:
        try:
            tx.verify_signatures()
            to_ledger(tx, lookup, verified).verify(parameters)
        except TransactionResolutionError:
            raise
        except KakehashiError as exc:
            raise TransactionResolutionError(
                f"dependency {tx.id.hex()} of {stx.id.hex()} is invalid: {exc}"
            ) from exc
        verified[tx.id] = tx
    return ordered


def _oldest_first(txs: Mapping[bytes, SignedTransaction]) -> list[SignedTransaction]:
    """Topological order: every transaction after the fetched transactions it depends on."""
    order: list[SignedTransaction] = []
    done: set[bytes] = set()
    for root in sorted(txs):
        stack: list[tuple[bytes, bool]] = [(root, False)]
        while stack:
            tx_id, expanded = stack.pop()
            if tx_id in done:
                continue
            if expanded:
                done.add(tx_id)
                order.append(txs[tx_id])
                continue
            stack.append((tx_id, True))
            for dep in sorted(txs[tx_id].tx.dependencies()):
                if dep in txs and dep not in done:
                    stack.append((dep, False))
    return order
