"""Nodes and notaries of the Corda-model network, with the core flows.

* CollectSignatures: the initiator signs first; each counterparty verifies the transaction
  (signatures so far, back-chain, contracts, its own business check) before signing.
* Finality: notarise when needed, record, then send the transaction to its participants only
  (need-to-know). Receivers verify everything and resolve missing dependencies from the sender,
  who serves only what the receiver is entitled to see.
* A checkpoint written before notarisation lets a restarted node finish a flow it was in the
  middle of: notarisation is idempotent, recording is idempotent, delivery is retried.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Sequence

from kakehashi.errors import (
    FlowError,
    InvalidTransactionError,
    KakehashiError,
    NotaryError,
    SignatureError,
    TransactionResolutionError,
    TransportError,
)
from kakehashi.ledgers.corda.model.crypto import KeyPair, TransactionSignature, sign_transaction_id
from kakehashi.ledgers.corda.model.identity import Party, X500Name
from kakehashi.ledgers.corda.model.states import StateRef, TransactionState
from kakehashi.ledgers.corda.model.transactions import (
    LedgerTransaction,
    SignedTransaction,
    notarisation_view,
)
from kakehashi.ledgers.corda.node.messages import (
    Ack,
    FetchRequest,
    FetchResponse,
    NotariseRequest,
    NotariseResponse,
    RecordRequest,
    SignRequest,
    SignResponse,
)
from kakehashi.ledgers.corda.node.network import NetworkMap
from kakehashi.ledgers.corda.node.notary import NotarySigner, UniquenessProvider
from kakehashi.ledgers.corda.node.resolution import resolve_dependencies, to_ledger
from kakehashi.ledgers.corda.node.storage import write_transaction
from kakehashi.ledgers.corda.node.transport import Messenger, Transport
from kakehashi.ledgers.corda.node.vault import NodeDatabase

log = logging.getLogger(__name__)

SignCheck = Callable[[LedgerTransaction, Party], None]


class _Peer:
    """What nodes and notaries share: identity, signed messaging, a transaction store."""

    def __init__(
        self,
        party: Party,
        key: KeyPair,
        db: NodeDatabase,
        network: NetworkMap,
        transport: Transport,
    ) -> None:
        self.party = party
        self.key = key
        self.db = db
        self.network = network
        self.messenger = Messenger(party, key, network, transport)

    @property
    def name(self) -> X500Name:
        return self.party.name

    def handle(self, data: bytes) -> bytes:
        """Entry point for every incoming message (from any transport)."""
        return self.messenger.serve(data, self._dispatch)

    def _dispatch(self, sender: Party, body: object) -> object:
        raise FlowError(f"{self.name} does not accept {type(body).__name__} messages")

    def _fetch_from(self, peer: Party) -> Callable[[Sequence[bytes]], Sequence[SignedTransaction]]:
        def fetch(tx_ids: Sequence[bytes]) -> Sequence[SignedTransaction]:
            answer = self.messenger.request(peer, FetchRequest(tuple(tx_ids)))
            if not isinstance(answer, FetchResponse):
                raise TransactionResolutionError(f"{peer.name} answered a fetch with nonsense")
            return answer.txs

        return fetch

    def verify_from_peer(
        self,
        stx: SignedTransaction,
        sender: Party,
        allowed_missing: Iterable[object] = (),
    ) -> list[SignedTransaction]:
        """Check signatures, resolve the back-chain from ``sender``, run every contract.

        Returns the newly fetched, verified dependencies (oldest first) for recording.
        """
        stx.verify_signatures(allowed_missing)  # type: ignore[arg-type]
        deps = resolve_dependencies(
            stx,
            self.db.has_transactions,
            self._fetch_from(sender),
            self.db.resolve_state,
            self.network.parameters,
        )
        known = {dep.id: dep for dep in deps}
        to_ledger(stx, self.db.resolve_state, known).verify(self.network.parameters)
        return deps


class Node(_Peer):
    """A participant node: a vault, flows, and the handlers counterparties call."""

    def __init__(
        self,
        party: Party,
        key: KeyPair,
        db: NodeDatabase,
        network: NetworkMap,
        transport: Transport,
        sign_check: SignCheck | None = None,
    ) -> None:
        super().__init__(party, key, db, network, transport)
        self.sign_check = sign_check

    # -- local helpers ------------------------------------------------------------------------

    def ledger_transaction(self, stx: SignedTransaction) -> LedgerTransaction:
        return to_ledger(stx, self.db.resolve_state, {})

    def resolve_state(self, ref: StateRef) -> TransactionState:
        state = self.db.resolve_state(ref)
        if state is None:
            raise TransactionResolutionError(f"this node does not know state {ref}")
        return state

    def sign(self, stx: SignedTransaction) -> SignedTransaction:
        return stx.with_signatures(sign_transaction_id(self.key, stx.id))

    def new_flow_id(self) -> str:
        return uuid.uuid4().hex

    # -- CollectSignatures --------------------------------------------------------------------

    def collect_signatures(
        self, stx: SignedTransaction, counterparties: Sequence[Party]
    ) -> SignedTransaction:
        """Ask each counterparty to check and sign ``stx`` (we must have signed already)."""
        required = stx.tx.required_signing_keys()
        for peer in counterparties:
            if peer == self.party:
                continue
            if peer.owning_key not in required:
                raise FlowError(f"{peer.name} is not a required signer of {stx.id.hex()}")
            self.db.authorise(str(peer.name), stx.tx.dependencies())
            answer = self.messenger.request(peer, SignRequest(stx))
            if not isinstance(answer, SignResponse):
                raise FlowError(f"{peer.name} answered a signature request with nonsense")
            for sig in answer.sigs:
                if sig.by != peer.owning_key:
                    raise SignatureError(f"{peer.name} returned a signature by another key")
                sig.verify(stx.id)
            stx = stx.with_signatures(*answer.sigs)
        return stx

    # -- Finality -----------------------------------------------------------------------------

    def finalise(
        self, stx: SignedTransaction, observers: Sequence[Party] = ()
    ) -> SignedTransaction:
        """Notarise (when needed), record and distribute ``stx`` to its participants.

        Raises a typed error and records nothing if the transaction is invalid, a signature is
        missing or the notary refuses it (double spend, time window, wrong notary).
        """
        notary_key = {stx.tx.notary.owning_key} if stx.tx.notary else set()
        stx.verify_signatures(allowed_missing=notary_key)
        ltx = self.ledger_transaction(stx)
        ltx.verify(self.network.parameters)
        recipients = sorted(
            {str(p.name) for p in self._participants(ltx)} | {str(p.name) for p in observers}
        )
        recipients = [r for r in recipients if r != str(self.name)]
        self.db.save_checkpoint(stx, recipients)
        return self._complete(stx, recipients)

    def _participants(self, ltx: LedgerTransaction) -> set[Party]:
        """Everyone with a state in the transaction (must be on the network map)."""
        parties = {
            p for state in (*ltx.input_states, *ltx.output_states) for p in state.participants
        }
        return {self.network.party(party.name) for party in parties}

    def _complete(self, stx: SignedTransaction, recipients: list[str]) -> SignedTransaction:
        notary = stx.tx.notary
        if (
            stx.tx.needs_notary_signature()
            and notary
            and notary.owning_key not in stx.signing_keys()
        ):
            try:
                stx = stx.with_signatures(self.notarise(stx))
            except TransportError:
                raise  # outcome unknown: keep the checkpoint so recovery can ask again
            except KakehashiError:
                self.db.drop_checkpoint(stx.id)
                raise
        # Deliver first, then record and close the checkpoint in one database transaction: a
        # crash anywhere before that commit makes recovery redo the (idempotent) steps.
        undelivered = []
        for recipient in recipients:
            try:
                self.messenger.request(self.network.party(recipient), RecordRequest(stx))
            except TransportError as exc:
                log.warning("could not deliver %s to %s yet: %s", stx.id.hex(), recipient, exc)
                undelivered.append(recipient)
        self.db.finish_checkpoint(stx, undelivered)
        return stx

    def notarise(self, stx: SignedTransaction) -> TransactionSignature:
        notary = stx.tx.notary
        if notary is None:
            raise InvalidTransactionError("the transaction names no notary to notarise it")
        info = self.network.parameters.notary(notary)
        if info is None:
            raise NotaryError(f"{notary.name} is not a notary of this network")
        if info.validating:
            self.db.authorise(str(notary.name), stx.tx.dependencies())
            request = NotariseRequest(stx=stx)
        else:
            request = NotariseRequest(filtered=stx.tx.notarisation_tear_off())
        answer = self.messenger.request(notary, request)
        if not isinstance(answer, NotariseResponse) or answer.signature.by != notary.owning_key:
            raise NotaryError(f"{notary.name} did not return its signature")
        answer.signature.verify(stx.id)
        return answer.signature

    def recover(self) -> list[bytes]:
        """Finish every flow interrupted by a crash; returns the ids still not fully delivered."""
        pending = []
        for stx, recipients in self.db.checkpoints():
            try:
                self._complete(stx, recipients)
            except KakehashiError as exc:
                log.warning("recovery of %s failed: %s", stx.id.hex(), exc)
            if any(tx.id == stx.id for tx, _ in self.db.checkpoints()):
                pending.append(stx.id)
        return pending

    # -- responders ---------------------------------------------------------------------------

    def _dispatch(self, sender: Party, body: object) -> object:
        if isinstance(body, RecordRequest):
            return self._on_record(sender, body.stx)
        if isinstance(body, SignRequest):
            return self._on_sign(sender, body.stx)
        if isinstance(body, FetchRequest):
            return self._on_fetch(sender, body.tx_ids)
        return super()._dispatch(sender, body)

    def _on_record(self, sender: Party, stx: SignedTransaction) -> Ack:
        # A duplicate is verified again and then recorded as a no-op: cheaper than a lookup
        # on every delivery.
        deps = self.verify_from_peer(stx, sender)
        self.db.record(stx, dependencies=deps)
        return Ack()

    def _on_sign(self, sender: Party, stx: SignedTransaction) -> SignResponse:
        required = stx.tx.required_signing_keys()
        if self.party.owning_key not in required:
            raise FlowError(f"{self.name} is not a required signer of {stx.id.hex()}")
        if sender.owning_key in required and sender.owning_key not in stx.signing_keys():
            raise SignatureError(f"{sender.name} must sign before asking others to sign")
        deps = self.verify_from_peer(stx, sender, allowed_missing=required)
        if self.sign_check is not None:
            self.sign_check(to_ledger(stx, self.db.resolve_state, {d.id: d for d in deps}), sender)
        if deps:
            with write_transaction(self.db.engine) as conn:
                for dep in deps:
                    self.db.record(dep, relevant=False, conn=conn)
        return SignResponse((sign_transaction_id(self.key, stx.id),))

    def _on_fetch(self, sender: Party, tx_ids: Sequence[bytes]) -> FetchResponse:
        peer = str(sender.name)
        found = []
        for tx_id in tx_ids:
            if not self.db.is_authorised(peer, tx_id):
                raise TransactionResolutionError(
                    f"{sender.name} asked for transaction {tx_id.hex()} it is not entitled to see"
                )
            stx = self.db.get_transaction(tx_id)
            if stx is None:
                raise TransactionResolutionError(f"transaction {tx_id.hex()} is unknown here")
            found.append(stx)
        self.db.authorise(peer, {d for stx in found for d in stx.tx.dependencies()})
        return FetchResponse(tuple(found))


class NotaryNode(_Peer):
    """A notary: uniqueness + time-window checks, in validating or non-validating mode."""

    def __init__(
        self,
        party: Party,
        key: KeyPair,
        db: NodeDatabase,
        uniqueness: UniquenessProvider,
        network: NetworkMap,
        transport: Transport,
        validating: bool = False,
    ) -> None:
        super().__init__(party, key, db, network, transport)
        self.uniqueness = uniqueness
        self.validating = validating
        self.signer = NotarySigner(party, key)

    def _dispatch(self, sender: Party, body: object) -> object:
        if isinstance(body, NotariseRequest):
            return NotariseResponse(self.process(sender, body))
        return super()._dispatch(sender, body)

    def process(self, sender: Party, request: NotariseRequest) -> TransactionSignature:
        """Check a request, commit its inputs, sign its id."""
        deps: list[SignedTransaction] = []
        if self.validating:
            if request.stx is None:
                raise NotaryError(
                    f"{self.name} is a validating notary: send the whole signed transaction"
                )
            stx = request.stx
            self._check_notary(stx.tx.notary)
            deps = self.verify_from_peer(stx, sender, allowed_missing={self.party.owning_key})
            tx_id, inputs, refs, window = (
                stx.id,
                stx.tx.inputs,
                stx.tx.references,
                stx.tx.time_window,
            )
        else:
            if request.filtered is None:
                raise NotaryError(f"{self.name} is non-validating: send a notarisation tear-off")
            view = notarisation_view(request.filtered)
            self._check_notary(view.notary)
            tx_id, inputs, refs, window = (
                request.filtered.id,
                view.inputs,
                view.references,
                view.time_window,
            )
        self.uniqueness.commit(tx_id, inputs, refs, window, str(sender.name))
        signature = self.signer.sign(tx_id)
        if request.stx is not None and self.validating:
            # Keep what we verified so the next transaction's back-chain is shorter.
            self.db.record(
                request.stx.with_signatures(signature), relevant=False, dependencies=deps
            )
        return signature

    def _check_notary(self, notary: Party | None) -> None:
        if notary != self.party:
            raise NotaryError(
                f"the transaction names notary {notary.name if notary else 'none'}, but this "
                f"is {self.name}; send it to the notary it names"
            )
