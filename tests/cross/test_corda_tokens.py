"""Token escrow on the Corda model (kakehashi.cross.corda_tokens), the Corda side of the DVP, on
a real embedded network of five nodes (the bank issues the stablecoin and runs the host, a
buyer, a seller, an outsider, the notary): the buyer's deposit, the prepare that locks it in the
host's notarised version, commit paying the seller and abort refunding the buyer on their own
nodes, reclaim after expiry, the contract's rules, crash safety, privacy, and a Simple Commit
between two hosts over a real channel."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from kakehashi.cross.auth import corda_key_id, sign_party
from kakehashi.cross.corda_apps import apps_factory
from kakehashi.cross.corda_module import CROSS_PORT, CROSS_VERSION, CrossModule
from kakehashi.cross.corda_tokens import (
    CROSS_TOKEN_CONTRACT,
    CrossTokenContract,
    CrossTokenDeposit,
    CrossTokenLock,
    TokenEscrowApp,
    TokenPrepare,
    TokenRelease,
    decode_token_call,
    deposit,
    deposit_id,
    find_deposit,
    reclaim,
    token_call,
)
from kakehashi.cross.kv import kv_call
from kakehashi.cross.participant import PartCall
from kakehashi.cross.status import AuthStatus, Decision
from kakehashi.cross.tx import (
    Account,
    ChannelInfo,
    CommitProtocol,
    ContractTransaction,
    CrossTxError,
    InitiateTx,
    SignerKind,
)
from kakehashi.errors import (
    ConflictError,
    ContractRejection,
    InsufficientBalanceError,
    InvalidTransactionError,
    TimeWindowError,
    TransportError,
)
from kakehashi.ibc.corda_host import CordaIbcHost, HostAdvance
from kakehashi.ibc.types import Height
from kakehashi.ledgers.corda.model.identity import Party
from kakehashi.ledgers.corda.model.states import (
    Command,
    StateAndRef,
    StateRef,
    TimeWindow,
    TransactionState,
    UniqueIdentifier,
)
from kakehashi.ledgers.corda.model.transactions import LedgerTransaction
from kakehashi.ledgers.corda.node.node import Node
from kakehashi.ledgers.corda.node.setup import EmbeddedNetwork
from kakehashi.ledgers.corda.node.vault import StateStatus
from kakehashi.ledgers.corda.tokens.flows import balance_of, issue_tokens
from kakehashi.ledgers.corda.tokens.model import (
    FUNGIBLE_TOKEN_CONTRACT,
    Amount,
    FungibleToken,
    FungibleTokenContract,
    IssuedTokenType,
    MoveTokenCommand,
    RedeemTokenCommand,
    TokenType,
)
from kakehashi.lightclients.corda import HOST_CONTRACT, IbcHostState
from tests.cross.test_corda_module import operator, relay
from tests.ibc.test_corda_host import BANK_B, OPERATOR, open_channel

NOTARY = "O=Notary, L=Zurich, C=CH"
BUYER = "O=Buyer, L=Osaka, C=JP"
SELLER = "O=Seller, L=Paris, C=FR"
OUTSIDER = "O=Outsider, L=Berlin, C=DE"
JPYC = TokenType("JPYC", 2)
HOUR_NS = 3600 * 10**9
T = TypeVar("T")


def tx_id(n: int) -> bytes:
    return n.to_bytes(32, "big")


T1, T2 = tx_id(1), tx_id(2)


class Dvp:
    """The bank's host with the token escrow application, and the trade's parties."""

    def __init__(self, net: EmbeddedNetwork, tolerance_ns: int = 2 * 10**9) -> None:
        self.net = net
        self.bank = net.node(OPERATOR)
        self.host = CordaIbcHost(self.bank, time_tolerance_ns=tolerance_ns)
        self.app = TokenEscrowApp(self.host)
        self.buyer, self.seller, self.outsider = (net.node(n) for n in (BUYER, SELLER, OUTSIDER))
        self.token = IssuedTokenType(self.bank.party, JPYC)

    def run(self, step: Callable[[], T]) -> T:
        return self.host.execute(lambda _store: step())

    def deposit(self, tx: bytes, amount: int, *, index: int = 0, expiry_ns: int = 0) -> bytes:
        stx = deposit(
            self.buyer,
            self.token,
            amount,
            recipient=self.seller.party,
            operator=self.bank.party,
            tx_id=tx,
            index=index,
            expiry_ns=expiry_ns or time.time_ns() + HOUR_NS,
        )
        return stx.id

    def call(
        self, tx: bytes, amount: int, *, index: int = 0, signer: Node | None = None
    ) -> PartCall:
        """The part moving ``amount`` from the buyer to the seller, signed by the buyer."""
        info = token_call(self.token, self.buyer.party, self.seller.party, amount)
        account = Account(SignerKind.LOCAL, corda_key_id((signer or self.buyer).party.owning_key))
        return PartCall(tx, index, info, (account,))

    def prepare(self, call: PartCall) -> bytes:
        return self.run(lambda: self.app.prepare(call))

    def decide(self, tx: bytes, commit: bool, index: int = 0) -> None:
        self.run(lambda: (self.app.commit if commit else self.app.abort)(tx, index))

    def balances(self) -> tuple[int, int]:
        """(buyer, seller) as their own vaults show them."""
        return balance_of(self.buyer, self.token), balance_of(self.seller, self.token)

    def refused(self, call: PartCall, match: str) -> None:
        """The prepare of ``call`` fails having staged nothing, and makes no version."""
        before = self.host.version

        def action() -> None:
            with pytest.raises(CrossTxError, match=match):
                self.app.prepare(call)
            staged = self.host.store.staged_states()
            assert staged.inputs == staged.outputs == staged.commands == ()

        self.run(action)
        assert self.host.version == before

    def versions(self) -> list[bytes]:
        """The transaction of every host version."""
        return [self.host._version(v).tx_id for v in range(1, self.host.version + 1)]


@pytest.fixture
def net(tmp_path: Path) -> Iterator[EmbeddedNetwork]:
    network = EmbeddedNetwork.create(tmp_path / "net", nodes=(OPERATOR, BUYER, SELLER, OUTSIDER))
    yield network
    network.close()


@pytest.fixture
def dvp(net: EmbeddedNetwork) -> Dvp:
    d = Dvp(net)
    issue_tokens(d.bank, JPYC, 1000, d.buyer.party)
    return d


def seen_by(node: Node, *tx_ids: bytes) -> bool:
    return bool(node.db.has_transactions(tx_ids))


# ---------------------------------------------------------------------------- the call


def test_the_call_round_trips_and_fits_a_part() -> None:
    from kakehashi.cross.tx import MAX_CALL_INFO
    from kakehashi.ledgers.corda.model.crypto import KeyPair
    from kakehashi.ledgers.corda.model.identity import X500Name

    parties = [
        Party(X500Name.parse(f"O=P{i}, L=X, C=GB"), KeyPair.generate().public) for i in range(3)
    ]
    token = IssuedTokenType(parties[0], TokenType("X" * 32))
    info = token_call(token, parties[1], parties[2], 2**255)
    assert len(info) <= MAX_CALL_INFO
    move = decode_token_call(info)
    assert move.matches(token, parties[1], parties[2]) and move.amount == 2**255
    assert not move.matches(token, parties[2], parties[1])
    with pytest.raises(CrossTxError, match="more than"):
        token_call(IssuedTokenType(parties[0], TokenType("X" * 33)), parties[1], parties[2], 1)
    with pytest.raises(CrossTxError, match="not the token move"):
        decode_token_call(kv_call(b"k", b"v"))
    with pytest.raises(CrossTxError):
        decode_token_call(info + b"\x00")


# ---------------------------------------------------------------------------- the DVP's Corda side


def test_deposit_prepare_commit_pays_the_seller_and_nobody_else_sees_it(dvp: Dvp) -> None:
    deposited = dvp.deposit(T1, 300)
    assert dvp.balances() == (700, 0)
    (held,) = dvp.bank.db.query(CrossTokenDeposit)  # the operator received the deposit
    assert isinstance(held.state.data, CrossTokenDeposit) and held.state.data.amount.quantity == 300
    assert not seen_by(dvp.seller, deposited)  # the seller need not see the buyer's deposit
    version = dvp.host.version
    assert dvp.prepare(dvp.call(T1, 300)) == b"ok"
    assert dvp.host.version == version + 1  # one notarised host version
    lock = dvp.app.locked(T1, 0)
    assert lock is not None and lock.amount.quantity == 300 and dvp.app.locks()
    (locked,) = dvp.bank.db.query(CrossTokenLock)
    assert locked.ref.txhash == dvp.host.state.ref.txhash  # in the host transaction itself
    assert dvp.bank.db.status_of(held.ref) is StateStatus.CONSUMED
    dvp.decide(T1, commit=True)
    assert dvp.balances() == (700, 300)  # each on its own node
    assert not dvp.app.locks() and dvp.app.locked(T1, 0) is None
    # the bank issued the token: it redeemed the escrow in the host transaction and issued the
    # seller a fresh token, so the seller got no back-chain: no host version, no deposit
    assert not seen_by(dvp.seller, deposited, *dvp.versions())
    assert not seen_by(dvp.buyer, *dvp.versions())
    dvp.decide(T1, commit=False)  # a second decision is a no-op
    assert dvp.balances() == (700, 300)
    # privacy: the outsider never received any of it
    everything = [deposited, *dvp.versions()]
    assert not seen_by(dvp.outsider, *everything)
    assert balance_of(dvp.outsider, dvp.token) == 0


def test_a_later_trade_s_parties_never_receive_an_earlier_trade(dvp: Dvp) -> None:
    first = dvp.deposit(T1, 300)
    dvp.prepare(dvp.call(T1, 300))
    dvp.decide(T1, commit=True)
    earlier = [first, *dvp.versions()]
    # the outsider sells to the buyer next: it is party to that trade only
    dvp.seller = dvp.outsider
    dvp.deposit(T2, 100)
    dvp.prepare(dvp.call(T2, 100))
    dvp.decide(T2, commit=True)
    assert balance_of(dvp.outsider, dvp.token) == 100
    assert not seen_by(dvp.outsider, *earlier)


def test_an_operator_that_did_not_issue_the_token_pays_in_the_host_transaction(
    tmp_path: Path,
) -> None:
    issuer = "O=Issuer, L=Tokyo, C=JP"
    net = EmbeddedNetwork.create(
        tmp_path / "net", nodes=(OPERATOR, BUYER, SELLER, OUTSIDER, issuer)
    )
    try:
        dvp = Dvp(net)
        dvp.token = IssuedTokenType(net.node(issuer).party, JPYC)
        issue_tokens(net.node(issuer), JPYC, 1000, dvp.buyer.party)
        dvp.deposit(T1, 300)
        dvp.prepare(dvp.call(T1, 300))
        dvp.decide(T1, commit=True)
        assert dvp.balances() == (700, 300)
        paid = dvp.host.state.ref.txhash  # the host version is the payment, sent to both
        assert seen_by(dvp.seller, paid) and seen_by(dvp.buyer, paid)
        assert find_deposit(dvp.buyer, T1, 0) is None  # the buyer's vault saw it consumed
        assert not seen_by(dvp.outsider, *dvp.versions())
        dvp.deposit(T2, 100)
        dvp.prepare(dvp.call(T2, 100))
        dvp.decide(T2, commit=False)
        assert dvp.balances() == (700, 300)
        # an operator may also send a recorded version to a party on purpose
        assert not seen_by(dvp.outsider, dvp.host.state.ref.txhash)
        dvp.host.send_version(dvp.host.version, [dvp.outsider.party])
        assert seen_by(dvp.outsider, dvp.host.state.ref.txhash)
    finally:
        net.close()


def test_abort_refunds_the_buyer(dvp: Dvp) -> None:
    dvp.deposit(T1, 250)
    dvp.prepare(dvp.call(T1, 250))
    dvp.decide(T1, commit=False)
    assert dvp.balances() == (1000, 0)
    assert not dvp.app.locks()
    assert not seen_by(dvp.outsider, *dvp.versions())


def test_a_call_prepares_and_commits_in_one_version_without_a_lock_state(dvp: Dvp) -> None:
    dvp.deposit(T1, 100)
    call = dvp.call(T1, 100)

    def both() -> None:
        dvp.app.prepare(call)
        dvp.app.commit(T1, 0)

    dvp.run(both)
    assert dvp.balances() == (900, 100)
    assert not dvp.bank.db.query(CrossTokenLock, status=StateStatus.ALL)


def test_two_parts_released_in_one_host_call(dvp: Dvp) -> None:
    dvp.deposit(T1, 100, index=0)
    dvp.deposit(T1, 200, index=1)
    dvp.run(lambda: [dvp.app.prepare(dvp.call(T1, a, index=i)) for i, a in ((0, 100), (1, 200))])
    dvp.run(lambda: [dvp.app.commit(T1, 0), dvp.app.abort(T1, 1)])
    assert dvp.balances() == (900, 100)


# ---------------------------------------------------------------------------- refusals


def test_no_deposit_or_a_balance_too_low_fails_the_prepare_cleanly(dvp: Dvp) -> None:
    dvp.refused(dvp.call(T1, 300), "no deposit for part 0")
    with pytest.raises(InsufficientBalanceError, match="holds 1000 units"):
        dvp.deposit(T1, 5000)
    dvp.refused(dvp.call(T1, 5000), "balance may be too low")
    assert dvp.balances() == (1000, 0)


def test_a_deposit_with_other_terms_or_an_unsigned_holder_fails_the_prepare(dvp: Dvp) -> None:
    dvp.deposit(T1, 300)
    dvp.refused(dvp.call(T1, 200), "is not what the part's call moves")
    other = token_call(dvp.token, dvp.buyer.party, dvp.outsider.party, 300)
    dvp.refused(PartCall(T1, 0, other, dvp.call(T1, 300).signers), "not what the part's call")
    dvp.refused(dvp.call(T1, 300, signer=dvp.seller), "must sign part 0")
    dvp.refused(dvp.call(T1, 300, index=1), "no deposit for part 1")
    dvp.prepare(dvp.call(T1, 300))
    dvp.refused(dvp.call(T1, 300), "already prepared")


def test_a_deposit_expiring_before_the_host_window_ends_is_refused(dvp: Dvp) -> None:
    dvp.deposit(T1, 300, expiry_ns=time.time_ns() + 10**9)  # the host's window is ±2 s
    dvp.refused(dvp.call(T1, 300), "expires at")


def test_reclaim_only_after_expiry_and_then_the_prepare_fails(dvp: Dvp) -> None:
    expiry = time.time_ns() + 3 * 10**9
    dvp.deposit(T1, 300, expiry_ns=expiry)
    with pytest.raises(InvalidTransactionError, match="can be reclaimed after its expiry"):
        reclaim(dvp.buyer, T1, 0)
    # pretending the time has come: the notary's clock disagrees
    with pytest.raises(TimeWindowError, match="outside the transaction's time window"):
        reclaim(dvp.buyer, T1, 0, now_ns=expiry)
    assert dvp.balances() == (700, 0)
    time.sleep(max(0.0, (expiry - time.time_ns()) / 1e9) + 0.1)
    reclaim(dvp.buyer, T1, 0)
    assert dvp.balances() == (1000, 0)
    assert find_deposit(dvp.bank, T1, 0) is None  # the operator learnt it is gone
    dvp.refused(dvp.call(T1, 300), "no deposit")


def test_a_prepared_deposit_cannot_be_reclaimed(dvp: Dvp) -> None:
    expiry = time.time_ns() + 3 * 10**9
    dvp.deposit(T1, 300, expiry_ns=expiry)
    dvp.prepare(dvp.call(T1, 300))
    time.sleep(max(0.0, (expiry - time.time_ns()) / 1e9) + 0.1)
    assert find_deposit(dvp.buyer, T1, 0) is not None  # the buyer was not told of the prepare
    with pytest.raises(ConflictError, match="already consumed"):
        reclaim(dvp.buyer, T1, 0)  # the notary: the host's prepare consumed it
    dvp.decide(T1, commit=True)
    assert dvp.balances() == (700, 300)


# ---------------------------------------------------------------------------- the contract


class Parts:
    """States and commands for pure contract checks (no network)."""

    def __init__(self, dvp: Dvp) -> None:
        self.d = dvp
        self.notary = dvp.host.notary
        self.op = dvp.bank.party
        self.key = (self.op.owning_key,)
        self.amount = Amount(300, dvp.token)
        self.lock = CrossTokenLock(T1, 0, self.amount, dvp.buyer.party, dvp.seller.party, self.op)

    def host(self, operator: Party | None = None) -> TransactionState:
        state = IbcHostState(operator or self.op, UniqueIdentifier(), 2, b"\x00" * 32, 1)
        return TransactionState(state, HOST_CONTRACT, self.notary)

    def token(self, quantity: int, holder: Party) -> TransactionState:
        return TransactionState(
            FungibleToken(Amount(quantity, self.d.token), holder),
            FUNGIBLE_TOKEN_CONTRACT,
            self.notary,
        )

    def release(
        self,
        *,
        command: object = None,
        payout: TransactionState | None = None,
        host: bool = True,
        signers: tuple[object, ...] | None = None,
        redeem: bool = False,
    ) -> LedgerTransaction:
        lock_in = StateAndRef(
            TransactionState(self.lock, CROSS_TOKEN_CONTRACT, self.notary),
            StateRef(b"\x01" * 32, 0),
        )
        commands = [
            Command(command or TokenRelease(T1, 0, True), signers or self.key),  # type: ignore[arg-type]
            Command(
                (RedeemTokenCommand if redeem else MoveTokenCommand)(self.lock.amount.token),
                self.key,
            ),
        ]
        if host:
            commands.append(Command(HostAdvance(2), self.key))
        return LedgerTransaction(
            id=b"\x02" * 32,
            inputs=(lock_in,),
            outputs=(self.host(),)
            + (() if redeem else (payout or self.token(300, self.d.seller.party),)),
            commands=tuple(commands),
            attachments=(),
            notary=self.notary,
            time_window=TimeWindow(1, 2),
            references=(),
        )


def test_the_lock_is_spendable_only_by_its_release(dvp: Dvp) -> None:
    p = Parts(dvp)
    contract, tokens = CrossTokenContract(), FungibleTokenContract()
    good = p.release()
    contract.verify(good)
    tokens.verify(good)
    contract.verify(
        p.release(command=TokenRelease(T1, 0, False), payout=p.token(300, dvp.buyer.party))
    )
    # the issuing operator may redeem the escrow instead (and re-issue outside the host chain)
    redeemed = p.release(redeem=True)
    contract.verify(redeemed)
    tokens.verify(redeemed)
    stranger = IssuedTokenType(dvp.outsider.party, JPYC)
    p.lock = CrossTokenLock(T1, 0, Amount(300, stranger), dvp.buyer.party, dvp.seller.party, p.op)
    with pytest.raises(InvalidTransactionError, match="only an operator that issued"):
        contract.verify(p.release(redeem=True))
    p.lock = CrossTokenLock(T1, 0, p.amount, dvp.buyer.party, dvp.seller.party, p.op)
    cases = {
        "spent only by that part's TokenRelease": p.release(command=TokenRelease(T2, 0, True)),
        "must pay 3.00 JPYC to O=Seller": p.release(payout=p.token(300, dvp.outsider.party)),
        "must pay 3.00 JPYC": p.release(payout=p.token(200, dvp.seller.party)),
        "only in a host transaction": p.release(host=False),
        "operator signs": p.release(signers=(dvp.buyer.party.owning_key,)),
        "spent only by": p.release(command=TokenPrepare(T1, 0)),
    }
    for message, ltx in cases.items():
        with pytest.raises(InvalidTransactionError, match=message):
            contract.verify(ltx)
    # the token contract conserves the amount across the escrow
    with pytest.raises(InvalidTransactionError, match="conserve the amount: 300 in, 400 out"):
        tokens.verify(p.release(payout=p.token(400, dvp.seller.party)))


def test_a_prepare_outside_the_deposit_terms_or_after_expiry_is_refused(dvp: Dvp) -> None:
    p = Parts(dvp)
    d = CrossTokenDeposit(
        T1, 0, p.amount, dvp.buyer.party, dvp.seller.party, p.op, 5_000_000, deposit_id(T1, 0)
    )
    deposit_in = StateAndRef(
        TransactionState(d, CROSS_TOKEN_CONTRACT, p.notary), StateRef(b"\x01" * 32, 0)
    )

    def prepare(lock: CrossTokenLock, window: TimeWindow) -> LedgerTransaction:
        return LedgerTransaction(
            id=b"\x02" * 32,
            inputs=(deposit_in,),
            outputs=(p.host(), TransactionState(lock, CROSS_TOKEN_CONTRACT, p.notary)),
            commands=(Command(TokenPrepare(T1, 0), p.key), Command(HostAdvance(2), p.key)),
            attachments=(),
            notary=p.notary,
            time_window=window,
            references=(),
        )

    CrossTokenContract().verify(prepare(p.lock, TimeWindow(1000, 5000)))
    other = CrossTokenLock(T1, 0, p.amount, dvp.buyer.party, dvp.outsider.party, p.op)
    with pytest.raises(InvalidTransactionError, match="keeps the deposit's terms"):
        CrossTokenContract().verify(prepare(other, TimeWindow(1000, 5000)))
    with pytest.raises(InvalidTransactionError, match="expired"):
        CrossTokenContract().verify(prepare(p.lock, TimeWindow(1000, 5001)))


def test_the_host_refuses_a_release_the_contract_refuses(dvp: Dvp) -> None:
    """End to end through the host: a transaction paying the wrong party never gets notarised."""
    dvp.deposit(T1, 300)
    dvp.prepare(dvp.call(T1, 300))
    version = dvp.host.version

    def steal() -> None:
        found = dvp.host.store.take_state("app:tok-lock", f"{T1.hex()}:0")
        dvp.host.store.add_states(
            outputs=[
                TransactionState(
                    FungibleToken(Amount(300, dvp.token), dvp.outsider.party),
                    FUNGIBLE_TOKEN_CONTRACT,
                    found.notary,
                )
            ],
            commands=[
                Command(TokenRelease(T1, 0, True), (dvp.bank.party.owning_key,)),
                Command(MoveTokenCommand(dvp.token), (dvp.bank.party.owning_key,)),
            ],
        )

    with pytest.raises(ContractRejection, match="must pay"):
        dvp.run(steal)
    assert dvp.host.version == version and dvp.app.locked(T1, 0) is not None


# ---------------------------------------------------------------------------- crash safety


def test_a_commit_interrupted_before_notarisation_completes_and_reaches_the_seller(
    dvp: Dvp, net: EmbeddedNetwork
) -> None:
    dvp.deposit(T1, 300)
    dvp.prepare(dvp.call(T1, 300))
    net.stop(NOTARY)
    with pytest.raises(TransportError):
        dvp.decide(T1, commit=True)  # left pending
    net.start(NOTARY)
    host = CordaIbcHost(net.restart(OPERATOR))  # completes the pending commit and delivers it
    assert TokenEscrowApp(host).locked(T1, 0) is None and not TokenEscrowApp(host).locks()
    assert dvp.balances() == (700, 300)


def test_an_unreachable_party_gets_the_payment_when_the_node_recovers(
    dvp: Dvp, net: EmbeddedNetwork
) -> None:
    dvp.deposit(T1, 300)
    dvp.prepare(dvp.call(T1, 300))
    net.stop(SELLER)
    dvp.decide(T1, commit=True)  # recorded; the seller is retried later
    seller = net.start(SELLER)
    assert isinstance(seller, Node) and balance_of(seller, dvp.token) == 0
    assert dvp.bank.recover() == []
    assert balance_of(seller, dvp.token) == 300


# ---------------------------------------------------------------------- two hosts, Simple Commit


def test_simple_commit_between_two_hosts_pays_the_seller(tmp_path: Path) -> None:
    """Bank A coordinates (a key-value part), Bank B runs the token part and issued the token;
    the buyer signs on A with its key (LOCAL), after depositing on its own node for B."""
    net = EmbeddedNetwork.create(
        tmp_path / "net", nodes=(OPERATOR, BANK_B, BUYER, SELLER, OUTSIDER)
    )
    try:
        a, b = CrossModule(), CrossModule(app_factory=apps_factory(TokenEscrowApp))
        hosts = open_channel(net, CROSS_PORT, (a, b), CROSS_VERSION)
        a.attach(hosts.a)
        b.attach(hosts.b)
        bank_b, buyer, seller = (net.node(n) for n in (BANK_B, BUYER, SELLER))
        token = IssuedTokenType(bank_b.party, JPYC)
        issue_tokens(bank_b, JPYC, 1000, buyer.party)
        channel = ChannelInfo(CROSS_PORT, hosts.chan_a)
        buyer_account = Account(SignerKind.LOCAL, corda_key_id(buyer.party.owning_key))
        signers = (operator(hosts.a), buyer_account)
        parts = (
            ContractTransaction(channel, signers, kv_call(b"nft-7", b"buyer"), b"ok"),
            ContractTransaction(
                channel, signers, token_call(token, buyer.party, seller.party, 400), b"ok"
            ),
        )
        tx = InitiateTx("bank-a", 1, CommitProtocol.SIMPLE, parts, Height(0, 10**6))
        deposit(
            buyer,
            token,
            400,
            recipient=seller.party,
            operator=bank_b.party,
            tx_id=tx.tx_id,
            index=1,
            expiry_ns=time.time_ns() + HOUR_NS,
        )
        a.initiate(tx)
        assert (
            a.sign(tx.tx_id, buyer_account, sign_party(buyer.key, tx.tx_id)) is AuthStatus.VERIFIED
        )
        relay(hosts)
        c = a.coordinator(tx.tx_id)
        assert c is not None and c.decision is Decision.COMMIT and c.done
        assert balance_of(buyer, token) == 600 and balance_of(seller, token) == 400
        assert a.app.value(b"nft-7") == b"buyer"
        assert not b.app.locks()
        outsider = net.node(OUTSIDER)
        assert not outsider.db.transaction_ids() & bank_b.db.transaction_ids()
    finally:
        net.close()
