"""Token escrow on the Corda model: a fungible token (:mod:`kakehashi.ledgers.corda.tokens`)
locked by a cross transaction's prepare, paid to the recipient on COMMIT, refunded on ABORT —
the Corda side of a delivery-versus-payment (issue 7, use case 1).

The host's operator cannot sign for the token holder, so the holder consents on its own ledger
first, and the host's part only moves what was deposited for it:

1. **Deposit** (:func:`deposit`, the holder's node, before the part runs): a normal notarised
   token transaction moves ``amount`` from the holder into a :class:`CrossTokenDeposit`
   ``(tx_id, index, amount, holder, recipient, operator, expiry_ns)`` — escrowed tokens
   (:class:`~kakehashi.ledgers.corda.tokens.model.EscrowedTokens`) that only the host's prepare
   of that part, or the holder after ``expiry_ns``, can spend. Its participants are the holder
   and the operator, so finality sends it to those two only.
2. **Prepare** (op :data:`~kakehashi.cross.kv.OP_TOKEN_MOVE`, :func:`token_call`): inside the
   host transaction, the part's deposit becomes a :class:`CrossTokenLock` with the same terms;
   refused, having staged nothing, when there is no such deposit (the holder's balance was too
   low to make one, or it was reclaimed), when its terms are not the call's, when it expires
   before the host transaction's time window ends, or when the holder is not a LOCAL or CHANNEL
   signer of the part.
3. **Commit / abort** pays the lock's amount to the recipient (COMMIT) or back to the holder
   (ABORT), in the host transaction:

   * when the operator issued the token (the bank runs the host): the host transaction
     redeems the lock, and once the version is recorded the operator issues the payee a fresh
     token (:meth:`~kakehashi.ibc.corda_host.host.HostStore.finalise_after`: deterministic,
     completed through the host's pending path after a crash). The payee receives that issue
     only — no back-chain, so never the host's history (every other trade's transactions);
   * otherwise the lock becomes a
     :class:`~kakehashi.ledgers.corda.tokens.model.FungibleToken` of the payee in the host
     transaction, which the host sends to holder and recipient
     (:meth:`~kakehashi.ibc.corda_host.host.HostStore.send_to`); they then fetch its back-chain,
     the host's history included (Corda's back-chain problem; prefer the issuer as operator).

   Nodes not party to the trade receive none of its transactions.

**Call.** ``abi.encode(uint8 32, bytes key, bytes value)`` with ``key = abi.encode(string
token_identifier, bytes32 issuer, bytes32 holder, bytes32 recipient)`` — each party as
``sha256(corda_key_id(key))`` (:func:`party_digest`): three 33-byte key ids would make the call
672 bytes, past the 384 a part's call may have — and ``value = abi.encode(uint256 amount)``.
Returns ``b"ok"``.

**Contract** (:data:`CROSS_TOKEN_CONTRACT`), per part ``(tx_id, index)``: the transaction
consumes at most one of its deposit / lock states and produces at most one, and its commands
for the part are one of

* ``[TokenDeposit]``: nothing → a deposit (its linear id :func:`deposit_id`), the holder signs;
* ``[TokenReclaim]``: the deposit → a token held by the holder, signed by the holder, with a
  time window starting at or after ``expiry_ns`` (the notary checks its clock is inside);
* ``[TokenPrepare]``: the deposit → a lock with the same terms, in a host transaction
  (``HostAdvance``) of the deposit's operator, who signs, whose time window ends by
  ``expiry_ns`` — so the notary lets a prepare and a reclaim happen only on either side of the
  expiry, and each consumes the deposit, so at most one ever happens;
* ``[TokenRelease(commit)]``: the lock → a token of its amount held by the recipient (commit)
  or the holder (abort) — or, when the operator issued the token, a Redeem of it (the issuer
  re-issues it to the payee) — in a host transaction of its operator, who signs. It is the ONLY
  way a lock is spent, and only by the part it names;
* ``[TokenPrepare, TokenRelease(commit)]``: the deposit → the token directly (Simple Commit's
  CALL prepares and commits in one host call: the lock is never materialised).

The token contract counts escrowed amounts in a Move, so the amount is conserved throughout.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from dataclasses import dataclass, field

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_abi.exceptions import DecodingError

from kakehashi.cross.auth import corda_key_id
from kakehashi.cross.kv import OK, OP_TOKEN_MOVE, KvOp
from kakehashi.cross.participant import PartCall
from kakehashi.cross.tx import CrossTxError, SignerKind
from kakehashi.errors import InvalidTransactionError
from kakehashi.ibc.corda_host.contract import HostAdvance
from kakehashi.ibc.corda_host.host import CordaIbcHost, HostStore
from kakehashi.ledgers.corda.model.contracts import contract, require
from kakehashi.ledgers.corda.model.crypto import PublicKey, random_bytes
from kakehashi.ledgers.corda.model.identity import Party
from kakehashi.ledgers.corda.model.serialization import serializable
from kakehashi.ledgers.corda.model.states import (
    Command,
    CommandData,
    LinearState,
    StateAndRef,
    TimeWindow,
    TransactionState,
    UniqueIdentifier,
)
from kakehashi.ledgers.corda.model.transactions import (
    LedgerTransaction,
    SignedTransaction,
    WireTransaction,
)
from kakehashi.ledgers.corda.node.node import Node
from kakehashi.ledgers.corda.tokens.flows import escrow_tokens
from kakehashi.ledgers.corda.tokens.model import (
    FUNGIBLE_TOKEN_CONTRACT,
    Amount,
    EscrowedTokens,
    FungibleToken,
    IssuedTokenType,
    IssueTokenCommand,
    MoveTokenCommand,
    RedeemTokenCommand,
)
from kakehashi.lightclients.corda import IbcHostState

__all__ = [
    "CROSS_TOKEN_CONTRACT",
    "CrossTokenCommand",
    "CrossTokenContract",
    "CrossTokenDeposit",
    "CrossTokenLock",
    "TokenDeposit",
    "TokenEscrowApp",
    "TokenMove",
    "TokenPrepare",
    "TokenReclaim",
    "TokenRelease",
    "decode_token_call",
    "deposit",
    "deposit_id",
    "find_deposit",
    "party_digest",
    "reclaim",
    "token_call",
]

CROSS_TOKEN_CONTRACT = "kakehashi.cross.CrossTokenContract"
_LOCK = "app:tok-lock"  # the host's named lock states, one per prepared part
_KEY_ABI = ["string", "bytes32", "bytes32", "bytes32"]


# ---------------------------------------------------------------------------- the call


def party_digest(key: PublicKey) -> bytes:
    """How a token call names a party: ``sha256(corda_key_id(key))``."""
    return hashlib.sha256(corda_key_id(key)).digest()


@dataclass(frozen=True, slots=True)
class TokenMove:
    """A decoded OP_TOKEN_MOVE call: move ``amount`` of the token ``token_identifier`` issued
    by the party with digest ``issuer`` from ``holder`` to ``recipient``."""

    token_identifier: str
    issuer: bytes
    holder: bytes
    recipient: bytes
    amount: int

    def encode(self) -> bytes:
        try:
            key = bytes(
                abi_encode(
                    _KEY_ABI, [self.token_identifier, self.issuer, self.holder, self.recipient]
                )
            )
            value = bytes(abi_encode(["uint256"], [self.amount]))
        except (TypeError, ValueError, OverflowError) as exc:
            raise CrossTxError(f"cannot encode the token call: {exc}") from None
        return KvOp(OP_TOKEN_MOVE, key, value).encode()

    def matches(self, token: IssuedTokenType, holder: Party, recipient: Party) -> bool:
        return (
            self.token_identifier == token.token_type.token_identifier
            and self.issuer == party_digest(token.issuer.owning_key)
            and self.holder == party_digest(holder.owning_key)
            and self.recipient == party_digest(recipient.owning_key)
        )


def token_call(token: IssuedTokenType, holder: Party, recipient: Party, amount: int) -> bytes:
    """The call info of "move ``amount`` of ``token`` from ``holder`` (who deposited it for the
    part and signs it) to ``recipient`` on commit; back to ``holder`` on abort"."""
    if isinstance(amount, bool) or not 0 < amount < 2**256:
        raise CrossTxError("the amount of a token move is a positive uint256")
    move = TokenMove(
        token.token_type.token_identifier,
        party_digest(token.issuer.owning_key),
        party_digest(holder.owning_key),
        party_digest(recipient.owning_key),
        amount,
    )
    return move.encode()


def decode_token_call(call_info: bytes) -> TokenMove:
    """Decode an OP_TOKEN_MOVE call; only canonical encodings are accepted."""
    try:
        op, key, value = abi_decode(["uint8", "bytes", "bytes"], call_info, strict=True)
        if op != OP_TOKEN_MOVE:
            raise CrossTxError(f"op {op} is not the token move ({OP_TOKEN_MOVE})")
        identifier, issuer, holder, recipient = abi_decode(_KEY_ABI, key, strict=True)
        (amount,) = abi_decode(["uint256"], value, strict=True)
    except (DecodingError, ValueError, TypeError, OverflowError, UnicodeDecodeError) as exc:
        raise CrossTxError(
            "not a token move (abi.encode(uint8 32, abi.encode(string, bytes32, bytes32, "
            f"bytes32), abi.encode(uint256))): {exc}"
        ) from None
    move = TokenMove(str(identifier), bytes(issuer), bytes(holder), bytes(recipient), int(amount))
    if move.encode() != call_info:
        raise CrossTxError("the token move is not canonically encoded")
    if move.amount == 0:
        raise CrossTxError("a token move moves a positive amount")
    return move


# ---------------------------------------------------------------------------- states


def deposit_id(tx_id: bytes, index: int) -> UniqueIdentifier:
    """The linear id of part ``index`` of ``tx_id``'s deposit (how the operator finds it)."""
    digest = hashlib.sha256(b"kakehashi.cross.deposit" + tx_id + bytes([index])).digest()
    return UniqueIdentifier(digest[:16])


@serializable("cross.CrossTokenDeposit")
@dataclass(frozen=True)
class CrossTokenDeposit(LinearState, EscrowedTokens):
    """``amount`` deposited by ``holder`` for part ``index`` of cross transaction ``tx_id``:
    spent by the operator's prepare of that part, or by the holder after ``expiry_ns``."""

    tx_id: bytes
    index: int
    amount: Amount
    holder: Party
    recipient: Party
    operator: Party
    expiry_ns: int
    linear_id: UniqueIdentifier = field(default_factory=UniqueIdentifier)

    @property
    def participants(self) -> tuple[Party, ...]:
        return (self.holder, self.operator)


@serializable("cross.CrossTokenLock")
@dataclass(frozen=True)
class CrossTokenLock(EscrowedTokens):
    """``amount`` locked by the prepare of part ``index`` of ``tx_id``: the part's decision
    pays it to ``recipient`` (COMMIT) or back to ``holder`` (ABORT)."""

    tx_id: bytes
    index: int
    amount: Amount
    holder: Party
    recipient: Party
    operator: Party

    @property
    def participants(self) -> tuple[Party, ...]:
        return (self.operator,)


CrossTokenState = CrossTokenDeposit | CrossTokenLock


class CrossTokenCommand(CommandData):
    """Marker base of the token escrow contract's commands (all name their part)."""

    tx_id: bytes
    index: int


@serializable("cross.TokenDeposit")
@dataclass(frozen=True, slots=True)
class TokenDeposit(CrossTokenCommand):
    tx_id: bytes
    index: int


@serializable("cross.TokenReclaim")
@dataclass(frozen=True, slots=True)
class TokenReclaim(CrossTokenCommand):
    tx_id: bytes
    index: int


@serializable("cross.TokenPrepare")
@dataclass(frozen=True, slots=True)
class TokenPrepare(CrossTokenCommand):
    tx_id: bytes
    index: int


@serializable("cross.TokenRelease")
@dataclass(frozen=True, slots=True)
class TokenRelease(CrossTokenCommand):
    tx_id: bytes
    index: int
    commit: bool


def _lock_of(d: CrossTokenDeposit) -> CrossTokenLock:
    return CrossTokenLock(d.tx_id, d.index, d.amount, d.holder, d.recipient, d.operator)


# ---------------------------------------------------------------------------- the contract


@dataclass
class _Part:
    ins: list[CrossTokenState] = field(default_factory=list)
    outs: list[CrossTokenState] = field(default_factory=list)
    commands: list[tuple[CrossTokenCommand, frozenset[PublicKey]]] = field(default_factory=list)


def _host_operator(tx: LedgerTransaction) -> Party | None:
    """The operator of the host whose transaction ``tx`` is (None: not a host transaction)."""
    hosts = tx.outputs_of_type(IbcHostState)
    if len(hosts) == 1 and tx.commands_of_type(HostAdvance):
        return hosts[0].operator
    return None


@contract(CROSS_TOKEN_CONTRACT)
class CrossTokenContract:
    """The token escrow's rules (see the module docstring)."""

    def verify(self, tx: LedgerTransaction) -> None:
        parts: dict[tuple[bytes, int], _Part] = {}
        for data in tx.input_states:
            if isinstance(data, CrossTokenDeposit | CrossTokenLock):
                parts.setdefault((data.tx_id, data.index), _Part()).ins.append(data)
        for output in tx.outputs:
            data = output.data
            if isinstance(data, CrossTokenDeposit | CrossTokenLock):
                require(output.contract == CROSS_TOKEN_CONTRACT, "an escrow names its contract")
                require(output.encumbrance is None, "an escrow is not encumbered")
                parts.setdefault((data.tx_id, data.index), _Part()).outs.append(data)
        for command in tx.commands_of_type(CrossTokenCommand):
            value = command.value
            assert isinstance(value, CrossTokenCommand)
            part = parts.setdefault((value.tx_id, value.index), _Part())
            part.commands.append((value, frozenset(command.signers)))
        payouts: Counter[tuple[Amount, Party]] = Counter()
        redeemed = {
            c.value.token
            for c in tx.commands_of_type(RedeemTokenCommand)
            if isinstance(c.value, RedeemTokenCommand)
        }
        for (tx_id, index), part in parts.items():
            payout = self._verify_part(tx, tx_id, index, part)
            if payout is None:
                continue
            amount, payee, operator = payout
            if amount.token in redeemed:
                # the token contract had its issuer sign the redeem; the issuer re-issues
                require(
                    amount.token.issuer == operator,
                    f"only an operator that issued {amount.token} pays part {index} of "
                    f"{tx_id.hex()} by redeeming and re-issuing",
                )
            else:
                payouts[(amount, payee)] += 1
        tokens = Counter((t.amount, t.holder) for t in tx.outputs_of_type(FungibleToken))
        for (amount, payee), count in payouts.items():
            require(
                tokens[(amount, payee)] >= count,
                f"the transaction must pay {amount.display()} to {payee.name}",
            )

    @staticmethod
    def _verify_part(
        tx: LedgerTransaction, tx_id: bytes, index: int, part: _Part
    ) -> tuple[Amount, Party, Party] | None:
        """Check one part's states and commands; returns what it must pay out, if anything:
        the amount, to whom, and the operator releasing it."""
        what = f"part {index} of {tx_id.hex()}"
        require(len(part.ins) <= 1 and len(part.outs) <= 1, f"{what} has one escrow at a time")
        spent = part.ins[0] if part.ins else None
        made = part.outs[0] if part.outs else None
        steps = [type(c) for c, _ in part.commands]
        if isinstance(spent, CrossTokenLock) and steps != [TokenRelease]:
            raise InvalidTransactionError(
                f"the lock of {what} is spent only by that part's TokenRelease"
            )
        window = tx.time_window

        def host_signed(escrow: CrossTokenState) -> None:
            require(
                _host_operator(tx) == escrow.operator,
                f"{what}'s escrow moves only in a host transaction (HostAdvance) of its operator",
            )
            require(
                all(escrow.operator.owning_key in signers for _, signers in part.commands),
                f"the host operator signs {what}'s commands",
            )

        def before_expiry(d: CrossTokenDeposit) -> None:
            require(
                window is not None
                and window.until_time is not None
                and window.until_time * 1000 <= d.expiry_ns,
                f"the deposit of {what} expired; only its holder can reclaim it",
            )

        if steps == [TokenDeposit]:
            require(spent is None and isinstance(made, CrossTokenDeposit), f"{what}: a deposit")
            assert isinstance(made, CrossTokenDeposit)
            require(made.linear_id == deposit_id(tx_id, index), f"{what}: the deposit's id")
            require(made.amount.quantity > 0 and made.expiry_ns > 0, f"{what}: deposit terms")
            require(made.holder.owning_key in part.commands[0][1], f"the holder deposits {what}")
            return None
        if steps == [TokenReclaim]:
            require(
                isinstance(spent, CrossTokenDeposit) and made is None,
                f"{what}: a reclaim spends the deposit",
            )
            assert isinstance(spent, CrossTokenDeposit)
            require(spent.holder.owning_key in part.commands[0][1], f"the holder reclaims {what}")
            require(
                window is not None
                and window.from_time is not None
                and window.from_time * 1000 >= spent.expiry_ns,
                f"the deposit of {what} can be reclaimed only after its expiry "
                f"({spent.expiry_ns} ns): a time window from then on",
            )
            return spent.amount, spent.holder, spent.operator
        if steps == [TokenPrepare]:
            require(
                isinstance(spent, CrossTokenDeposit) and isinstance(made, CrossTokenLock),
                f"{what}: a prepare turns the deposit into a lock",
            )
            assert isinstance(spent, CrossTokenDeposit)
            require(made == _lock_of(spent), f"{what}: the lock keeps the deposit's terms")
            host_signed(spent)
            before_expiry(spent)
            return None
        if steps in ([TokenRelease], [TokenPrepare, TokenRelease]):
            release = part.commands[-1][0]
            assert isinstance(release, TokenRelease)
            if steps == [TokenRelease]:
                require(
                    isinstance(spent, CrossTokenLock) and made is None,
                    f"{what}: a release spends the part's lock",
                )
            else:
                require(
                    isinstance(spent, CrossTokenDeposit) and made is None,
                    f"{what}: a prepare and release spends the deposit",
                )
                assert isinstance(spent, CrossTokenDeposit)
                before_expiry(spent)
            assert spent is not None
            host_signed(spent)
            return (
                spent.amount,
                spent.recipient if release.commit else spent.holder,
                spent.operator,
            )
        raise InvalidTransactionError(
            f"{what}: commands {[s.__name__ for s in steps]} are not a deposit, a reclaim, a "
            "prepare or a release"
        )


# ---------------------------------------------------------------------------- the application


@dataclass
class TokenEscrowApp:
    """Locks a deposited token for a part, pays it on commit, refunds it on abort (module
    docstring); a :class:`~kakehashi.cross.corda_apps.OpApp` run inside host calls."""

    host: CordaIbcHost
    ops: frozenset[int] = frozenset({OP_TOKEN_MOVE})

    @property
    def store(self) -> HostStore:
        return self.host.store

    @property
    def operator(self) -> Party:
        return self.host.node.party

    def locked(self, tx_id: bytes, index: int) -> CrossTokenLock | None:
        """The lock part ``index`` of ``tx_id`` holds (None: not prepared, or decided)."""
        found = self.store.get_state(_LOCK, _part_name(tx_id, index))
        return None if found is None else _as_lock(found.data)

    def locks(self) -> bool:
        """Whether any token is locked for an undecided part."""
        return bool(self.host.node.db.query(CrossTokenLock, limit=1))

    def prepare(self, call: PartCall) -> bytes:
        move = decode_token_call(call.call_info)
        what = f"part {call.index} of {call.tx_id.hex()}"
        if self.locked(call.tx_id, call.index) is not None:
            raise CrossTxError(f"{what} is already prepared")
        staged = set(self.store.staged_states().inputs)
        deposits = [
            s
            for s in self.host.node.db.query(
                CrossTokenDeposit, linear_id=deposit_id(call.tx_id, call.index).id
            )
            if s.ref not in staged
        ]
        found = next((s for s in deposits if _same_terms(move, s.state.data)), None) or next(
            iter(deposits), None
        )
        if found is None:
            raise CrossTxError(
                f"no deposit for {what} on {self.operator.name}: the holder must first deposit "
                f"{move.amount} {move.token_identifier} for it (deposit()); its balance may be "
                "too low, or it reclaimed the deposit"
            )
        d = found.state.data
        assert isinstance(d, CrossTokenDeposit)
        if not _same_terms(move, d):
            raise CrossTxError(
                f"the deposit for {what} ({d.amount.display()} of {d.amount.token} from "
                f"{d.holder.name} to {d.recipient.name}) is not what the part's call moves"
            )
        if d.operator != self.operator or found.state.notary != self.host.notary:
            raise CrossTxError(f"the deposit for {what} is not for this host's operator or notary")
        window_end = self.host.pending_timestamp_ns() + self.host.time_tolerance_ns
        if window_end > d.expiry_ns:
            raise CrossTxError(
                f"the deposit for {what} expires at {d.expiry_ns} ns, before this host "
                f"transaction's time window ends ({window_end} ns)"
            )
        holder = corda_key_id(d.holder.owning_key)
        if not any(
            a.kind in (SignerKind.LOCAL, SignerKind.CHANNEL) and a.id == holder
            for a in call.signers
        ):
            raise CrossTxError(
                f"the holder {d.holder.name} must sign {what} (LOCAL or CHANNEL) to move its tokens"
            )
        self.store.add_states(inputs=[found.ref])
        self.store.put_state(
            _LOCK,
            _part_name(call.tx_id, call.index),
            TransactionState(_lock_of(d), CROSS_TOKEN_CONTRACT, found.state.notary),
        )
        self.store.add_command(
            Command(TokenPrepare(call.tx_id, call.index), (self.operator.owning_key,))
        )
        return OK

    def commit(self, tx_id: bytes, index: int) -> None:
        self._release(tx_id, index, commit=True)

    def abort(self, tx_id: bytes, index: int) -> None:
        self._release(tx_id, index, commit=False)

    def _release(self, tx_id: bytes, index: int, *, commit: bool) -> None:
        name = _part_name(tx_id, index)
        if self.store.get_state(_LOCK, name) is None:  # never prepared here, or decided
            return
        found = self.store.take_state(_LOCK, name)
        lock = _as_lock(found.data)
        payee = lock.recipient if commit else lock.holder
        key = (self.operator.owning_key,)
        token = lock.amount.token
        reissue = token.issuer == self.operator
        kind = RedeemTokenCommand if reissue else MoveTokenCommand
        staged = any(
            isinstance(c.value, kind) and c.value.token == token
            for c in self.store.staged_states().commands
        )
        token_command = [] if staged else [Command(kind(token), key)]
        release = Command(TokenRelease(tx_id, index, commit), key)
        payout = TransactionState(
            FungibleToken(lock.amount, payee), FUNGIBLE_TOKEN_CONTRACT, found.notary
        )
        if reissue:
            # The issuer destroys the escrow in the host transaction and issues the payee a
            # fresh token once the version is recorded: the payee's token then has no back-chain
            # (a token paid out of the host transaction would carry the host's whole history,
            # every other trade's, to the payee).
            self.store.add_states(commands=[release, *token_command])
            self.store.finalise_after(self._reissue(tx_id, index, commit, payout))
        else:
            self.store.add_states(outputs=[payout], commands=[release, *token_command])
            self.store.send_to([lock.holder, lock.recipient])

    def _reissue(
        self, tx_id: bytes, index: int, commit: bool, payout: TransactionState
    ) -> SignedTransaction:
        """The issuer's payout of a released lock: deterministic (the same transaction each
        time the release runs), so finalising it twice pays once."""
        data = payout.data
        assert isinstance(data, FungibleToken)
        salt = hashlib.sha256(
            b"kakehashi.cross.payout" + tx_id + bytes([index, int(commit)])
        ).digest()
        wtx = WireTransaction.create(
            privacy_salt=salt,
            outputs=[payout],
            commands=[Command(IssueTokenCommand(data.amount.token), (self.operator.owning_key,))],
            network_parameters_hash=self.host.node.network.parameters.hash(),
        )
        return self.host.node.sign(SignedTransaction(wtx, ()))


def _same_terms(move: TokenMove, d: object) -> bool:
    return (
        isinstance(d, CrossTokenDeposit)
        and move.matches(d.amount.token, d.holder, d.recipient)
        and move.amount == d.amount.quantity
    )


def _as_lock(data: object) -> CrossTokenLock:
    assert isinstance(data, CrossTokenLock)
    return data


def _part_name(tx_id: bytes, index: int) -> str:
    return f"{tx_id.hex()}:{index}"


# ---------------------------------------------------------------------------- the holder's side


def find_deposit(node: Node, tx_id: bytes, index: int) -> StateAndRef | None:
    """The unconsumed deposit for part ``index`` of ``tx_id`` in ``node``'s vault."""
    found = node.db.query(CrossTokenDeposit, linear_id=deposit_id(tx_id, index).id, limit=1)
    return found[0] if found else None


def deposit(
    node: Node,
    token: IssuedTokenType,
    amount: int,
    *,
    recipient: Party,
    operator: Party,
    tx_id: bytes,
    index: int,
    expiry_ns: int,
) -> SignedTransaction:
    """The holder's consent (step ③): move ``amount`` of ``token`` from ``node`` into a deposit
    for part ``index`` of cross transaction ``tx_id`` run by ``operator``'s host, paying
    ``recipient`` if it commits; reclaimable by ``node`` alone after ``expiry_ns`` (the cross
    transaction's timeout). Sent to ``operator`` only. Raises
    :class:`~kakehashi.errors.InsufficientBalanceError` when the balance is too low."""
    recipient = node.network.party(recipient.name)
    operator = node.network.party(operator.name)
    if not 0 <= index < 256:
        raise InvalidTransactionError("a part index is 0 to 255")

    def escrow(notary: Party) -> list[TransactionState]:
        state = CrossTokenDeposit(
            tx_id,
            index,
            Amount(amount, token),
            node.party,
            recipient,
            operator,
            expiry_ns,
            deposit_id(tx_id, index),
        )
        return [TransactionState(state, CROSS_TOKEN_CONTRACT, notary)]

    command = Command(TokenDeposit(tx_id, index), (node.party.owning_key,))
    return escrow_tokens(node, token, amount, escrow, [command])


def reclaim(
    node: Node, tx_id: bytes, index: int, *, now_ns: int | None = None
) -> SignedTransaction:
    """The holder takes back its deposit for part ``index`` of ``tx_id`` after its expiry (the
    notary refuses it earlier, and refuses it once the host's prepare consumed the deposit).
    ``now_ns`` (default: the clock) is only the local check's time."""
    found = find_deposit(node, tx_id, index)
    if found is None:
        raise InvalidTransactionError(
            f"{node.name} holds no deposit for part {index} of {tx_id.hex()} (never made, "
            "reclaimed, or consumed by the cross transaction)"
        )
    d = found.state.data
    assert isinstance(d, CrossTokenDeposit)
    if d.holder != node.party:
        raise InvalidTransactionError(f"only the holder {d.holder.name} reclaims its deposit")
    now = time.time_ns() if now_ns is None else now_ns
    if now < d.expiry_ns:
        raise InvalidTransactionError(
            f"the deposit for part {index} of {tx_id.hex()} can be reclaimed after its expiry, "
            f"in {(d.expiry_ns - now) / 1e9:.1f} s; until then the cross transaction may lock it"
        )
    key = (node.party.owning_key,)
    wtx = WireTransaction.create(
        privacy_salt=random_bytes(32),
        inputs=[found.ref],
        outputs=[
            TransactionState(
                FungibleToken(d.amount, node.party), FUNGIBLE_TOKEN_CONTRACT, found.state.notary
            )
        ],
        commands=[
            Command(MoveTokenCommand(d.amount.token), key),
            Command(TokenReclaim(tx_id, index), key),
        ],
        notary=found.state.notary,
        time_window=TimeWindow(from_time=-(-d.expiry_ns // 1000)),
        network_parameters_hash=node.network.parameters.hash(),
    )
    return node.finalise(node.sign(SignedTransaction(wtx, ())))
