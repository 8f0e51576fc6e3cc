"""The DVP (issue 7, use case 1) with every party its own process: a stablecoin on the Corda
model against an ERC-721 on the EVM chain, settled atomically by a Simple Commit cross
transaction coordinated by the bank's node (the IBC host, issuer of the stablecoin).

Processes, one network for the module (:class:`tests.e2e.use_cases.UseCaseNetwork`): the EVM
node, the Corda notary, the bank (``corda serve --ibc``), the buyer, the seller and an outsider
(each ``corda serve``), the LCP service and the relayer. Each party acts from its own process:
the bank issues and initiates over its RPC; the buyer deposits the price on its node
(``POST /rpc/cross/deposit``) and signs with its Corda key (``kakehashi tx sign --on corda``);
the seller signs on the EVM chain (``kakehashi tx sign --on evm --part 1``: a SIGN packet).

Every scenario checks the NFT's owner on the EVM chain, the buyer's and the seller's balances
as their own nodes report them (both moved or neither), and that the outsider's node holds
nothing (privacy); the seller's node receives only its payout.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kakehashi.apps.dvp.settlement import Terms, dvp_transaction
from kakehashi.cli.ping import child_env
from kakehashi.cross.corda_module import CROSS_PORT
from kakehashi.cross.tx import ChannelInfo, InitiateTx
from kakehashi.ledgers.corda.node.network import NetworkMap
from kakehashi.ledgers.corda.tokens.model import IssuedTokenType, TokenType
from kakehashi.ledgers.evm import toolchain
from kakehashi.ledgers.evm.client import funded_accounts, transact
from tests.apps.dvp.test_privacy import everything_the_evm_chain_holds
from tests.e2e.use_cases import HOST, EventListener, UseCaseNetwork, wait_for

BANK = HOST
BUYER = "O=Buyer Trust, L=Tokyo, C=JP"
SELLER = "O=Seller Arts, L=Paris, C=FR"
OUTSIDER = "O=Someone Else, L=Seoul, C=KR"
FUNDS, PRICE = 1_000, 300
_IDS = itertools.count(1)


@dataclass
class Trade:
    """One scenario's trade: its token type, NFT id, terms and cross transaction."""

    token: str
    token_id: int
    terms: Terms
    tx: InitiateTx
    tx_file: Path


class Dvp:
    """The DVP's parties on the module's network."""

    def __init__(self, net: UseCaseNetwork) -> None:
        self.net = net
        accounts = funded_accounts(n=7)
        self.minter, self.buyer_evm, self.seller_evm, self.other = (
            accounts[0],
            accounts[4],
            accounts[5],
            accounts[6],
        )
        self.seller_key = net.net.directory / "seller-evm.key"
        self.seller_key.write_text(self.seller_evm.key.hex())
        self.nft = toolchain.deploy(
            net.w3, "tokens/erc721", "Art", "ART", "https://art/", sender=self.minter
        )
        self.map = NetworkMap.load(net.net.directory / "corda" / "network-map.toml")

    # -- the story --------------------------------------------------------------------------

    def agree(self, *, price: int = PRICE, timeout_s: float = 600) -> Trade:
        """① The bank issues the buyer FUNDS of a fresh stablecoin; the seller owns a fresh NFT
        and approves the cross application for it; both agree the trade; the bank's node
        initiates the cross transaction."""
        n = next(_IDS)
        token = f"JPYC{n}"
        self.net.ok(
            BANK, "POST", "/rpc/issue", {"token": token, "quantity": FUNDS, "holder": BUYER}
        )
        token_id = 1000 + n
        w3 = self.net.w3
        transact(w3, self.nft.functions.mint(self.seller_evm.address, token_id, "x.json"),
                 sender=self.minter)  # fmt: skip
        approve = self.nft.functions.approve(self.net.net.deployment.cross_app, token_id)
        transact(w3, approve, sender=self.seller_evm)
        terms = Terms(
            IssuedTokenType(self.map.party(BANK), TokenType(token, 0)),
            price,
            bytes.fromhex(self.nft.address[2:]),
            token_id,
            self.map.party(BUYER),
            self.map.party(SELLER),
            bytes.fromhex(self.buyer_evm.address[2:]),
            bytes.fromhex(self.seller_evm.address[2:]),
        )
        tx = dvp_transaction(
            terms,
            ChannelInfo(CROSS_PORT, self.net.record.b_channel_id),
            nonce=time.time_ns(),
            timeout_ns=time.time_ns() + int(timeout_s * 1e9),
        )
        tx_file = self.net.net.directory / f"dvp-{n}.tx"
        tx_file.write_text(tx.encode().hex())
        started = self.net.ok(BANK, "POST", "/cross/initiate", {"tx": tx.encode().hex()})
        assert started == {"tx_id": tx.tx_id.hex()}
        return Trade(token, token_id, terms, tx, tx_file)

    def deposit(self, trade: Trade) -> Any:
        """The buyer's consent, on its own node: the price into a deposit for part 0."""
        return self.net.rpc(
            BUYER,
            "POST",
            "/rpc/cross/deposit",
            {"tx": trade.tx.encode().hex(), "index": 0, "operator": BANK},
        )

    def buyer_cli(self, *args: str) -> Any:
        """``kakehashi dvp ARGS`` as the buyer: its node and RPC token."""
        net = self.net.net
        node = ["--node", net.node_url(BUYER), "--token-file", str(net.node_token_file(BUYER))]
        return self.net.cli_json("dvp", *args, *node)

    def sign(self, trade: Trade, *, buyer: bool = True, seller: bool = True) -> None:
        """③ ``kakehashi tx sign`` processes (at once): the buyer with its Corda key on the
        bank's node (LOCAL), the seller with its EVM account on the EVM chain (CHANNEL signer
        of part 1: a SIGN packet); checks what each answered."""
        sign = [sys.executable, "-m", "kakehashi.cli.main", "tx", "sign", str(trade.tx_file)]
        sign += ["--config", str(self.net.config), "--json"]
        commands = []
        if buyer:
            commands.append([*sign, "--on", "corda", "--key", str(self.net.net.node_key(BUYER))])
        if seller:
            channel = self.net.record.a_channel_id  # the EVM chain's end
            commands.append(
                [*sign, "--on", "evm", "--key", str(self.seller_key), "--part", "1", "--channel",
                 channel]
            )  # fmt: skip
        procs = [
            subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env())
            for cmd in commands
        ]
        statuses = []
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err.decode()[-2000:]
            statuses.append(json.loads(out)["status"])
        if seller:  # a SIGN packet; the relayer may bring it before the buyer has signed
            assert statuses.pop() == "SENT"
        if buyer:
            assert statuses.pop() in (("PENDING", "VERIFIED") if seller else ("PENDING",))

    # -- what each ledger shows -------------------------------------------------------------

    def owner(self, trade: Trade) -> str:
        return str(self.nft.functions.ownerOf(trade.token_id).call())

    def settled(self, trade: Trade, *, committed: bool, seller_txs: int) -> None:
        """Both moved (``committed``) or neither: the NFT's owner on the EVM chain, each
        party's balance on its own node; the outsider holds nothing; the seller's node has
        received only its payout (no back-chain: never the bank's history)."""
        net = self.net
        buyer_funds = FUNDS - PRICE if committed else FUNDS
        seller_funds = PRICE if committed else 0
        # the payee's token is issued once the host's version is recorded: wait for it
        wait_for(
            f"the balances of {trade.token}",
            lambda: (
                net.balance(BUYER, trade.token) == buyer_funds
                and net.balance(SELLER, trade.token) == seller_funds
            ),
            30,
        )
        if committed:
            assert self.owner(trade) == self.buyer_evm.address
        else:
            assert self.owner(trade) != self.buyer_evm.address
        assert net.vault(OUTSIDER) == []
        assert net.transactions(OUTSIDER) == []
        received = len(net.transactions(SELLER)) - seller_txs
        assert received == (1 if committed else 0)
        assert {s["type"] for s in net.vault(SELLER)} <= {"FungibleToken"}


@pytest.fixture(scope="module")
def dvp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dvp]:
    net = UseCaseNetwork(tmp_path_factory.mktemp("dvp"), (BUYER, SELLER, OUTSIDER))
    try:
        net.start()
        yield Dvp(net)
    finally:
        net.close()


@pytest.fixture
def fresh(dvp: Dvp) -> Dvp:
    """The network as a scenario expects it: the host with its default packet timeout, the
    relayer running."""
    if dvp.net.net.cross_timeout_blocks is not None:
        dvp.net.net.restart_host(None)
    dvp.net.start_relayer()
    return dvp


def test_the_trade_commits(fresh: Dvp) -> None:
    dvp, net = fresh, fresh.net
    seller_txs = len(net.transactions(SELLER))
    trade = dvp.agree()
    events = EventListener(net.url(BANK), trade.tx.tx_id)  # the initiator's subscription
    body = {"tx": trade.tx.encode().hex(), "index": 0, "operator": BANK}
    not_mine = net.rpc(SELLER, "POST", "/rpc/cross/deposit", body)  # the seller holds none
    assert not_mine.status_code == 409 and not_mine.json()["error"] == "CrossTxError"
    no_token = net.http.post(f"{net.url(BUYER)}/rpc/cross/deposit", json=body)
    assert no_token.status_code == 401
    deposited = dvp.buyer_cli("deposit", str(trade.tx_file), "--operator", BANK)
    assert deposited["cross_tx_id"] == trade.tx.tx_id.hex()
    assert (deposited["amount"], deposited["token"]) == (PRICE, trade.token)
    assert deposited["recipient"] == SELLER
    assert net.balance(BUYER, trade.token) == FUNDS - PRICE  # deposited, not yet paid
    dvp.sign(trade)
    completed = events.completed()
    assert completed == {
        "tx_id": trade.tx.tx_id.hex(),
        "decision": "COMMIT",
        "outcome": "committed",
    }
    assert events.names == ["authenticated", "decided", "completed"]
    c = net.wait_done(trade.tx.tx_id)
    assert c["decision"] == "COMMIT" and c["parts"] == {"0": "COMMIT", "1": "COMMIT"}
    dvp.settled(trade, committed=True, seller_txs=seller_txs)

    # the EVM node holds its own part, and of the stablecoin part only the salted digest
    held = everything_the_evm_chain_holds(net.w3)
    corda_part, nft_part = trade.tx.contract_transactions
    assert any(nft_part.call_info in data for data in held)
    assert any(corda_part.digest in data for data in held)
    for secret in (corda_part.call_info, corda_part.salt, corda_part.signers[0].id):
        assert not any(secret in data for data in held)


def test_the_buyers_balance_is_too_low(fresh: Dvp) -> None:
    dvp, net = fresh, fresh.net
    seller_txs = len(net.transactions(SELLER))
    trade = dvp.agree(price=FUNDS * 5)
    refused = dvp.deposit(trade)
    assert refused.status_code == 409
    assert refused.json()["error"] == "InsufficientBalanceError"
    dvp.sign(trade)  # it signs anyway: nothing is locked
    c = net.wait_done(trade.tx.tx_id)
    assert c["decision"] == "ABORT"
    assert "deposit" in c["failures"]["0"]
    assert dvp.owner(trade) == dvp.seller_evm.address
    dvp.settled(trade, committed=False, seller_txs=seller_txs)


def test_the_seller_no_longer_owns_the_nft(fresh: Dvp) -> None:
    dvp, net = fresh, fresh.net
    seller_txs = len(net.transactions(SELLER))
    trade = dvp.agree()
    gone = dvp.nft.functions.transferFrom(dvp.seller_evm.address, dvp.other.address, trade.token_id)
    transact(net.w3, gone, sender=dvp.seller_evm)  # after agreeing
    events = EventListener(net.url(BANK), trade.tx.tx_id)
    assert dvp.deposit(trade).status_code == 200
    dvp.sign(trade)
    assert events.completed()["outcome"] == "aborted"
    c = net.wait_done(trade.tx.tx_id)
    assert c["decision"] == "ABORT" and "1" in {**c["failures"], **c["rejected"]}
    assert dvp.owner(trade) == dvp.other.address
    dvp.settled(trade, committed=False, seller_txs=seller_txs)  # the buyer is refunded


def test_the_seller_never_signs_and_the_buyer_reclaims(fresh: Dvp) -> None:
    dvp, net = fresh, fresh.net
    seller_txs = len(net.transactions(SELLER))
    trade = dvp.agree(timeout_s=7)
    assert dvp.deposit(trade).status_code == 200
    dvp.sign(trade, seller=False)
    reclaim = {"tx_id": trade.tx.tx_id.hex(), "index": 0}
    early = net.rpc(BUYER, "POST", "/rpc/cross/reclaim", reclaim)
    assert early.status_code == 409, early.text  # the transaction may still lock it
    assert "after its expiry" in early.json()["message"]
    assert net.balance(BUYER, trade.token) == FUNDS - PRICE
    time.sleep(max(0.0, (trade.tx.timeout_timestamp - time.time_ns()) / 1e9) + 0.2)
    dvp.buyer_cli("reclaim", trade.tx.tx_id.hex())
    view = net.cross_tx(trade.tx.tx_id)
    assert view is not None and view["coordinator"]["decision"] == "UNKNOWN"  # never ran
    dvp.settled(trade, committed=False, seller_txs=seller_txs)
    assert dvp.owner(trade) == dvp.seller_evm.address


def test_a_killed_relayer_restarts_and_the_trade_completes(fresh: Dvp) -> None:
    dvp, net = fresh, fresh.net
    seller_txs = len(net.transactions(SELLER))
    trade = dvp.agree()
    assert dvp.deposit(trade).status_code == 200
    dvp.sign(trade)

    def locked() -> bool:
        auth = ((net.cross_tx(trade.tx.tx_id) or {}).get("authentication") or {}).get("status")
        return auth == "VERIFIED"  # the SIGN arrived: the deposit is locked, CALL sent

    deadline = time.monotonic() + 60
    while not locked():
        assert time.monotonic() < deadline, net.logs()
        time.sleep(0.05)
    relayer = net.start_relayer()
    relayer.kill()  # SIGKILL, mid-way
    assert not relayer.running
    time.sleep(1.0)
    relayer.start()
    c = net.wait_done(trade.tx.tx_id)
    assert c["decision"] == "COMMIT"
    dvp.settled(trade, committed=True, seller_txs=seller_txs)


def test_the_nft_move_times_out_and_the_trade_aborts(dvp: Dvp) -> None:
    """The relayer is down until the CALL packet times out on the EVM chain: the host (its
    cross packets timing out after 2 EVM blocks) aborts and refunds the buyer."""
    net = dvp.net
    assert net.relayer is not None
    net.relayer.stop()
    net.net.restart_host(cross_timeout_blocks=2)
    seller_txs = len(net.transactions(SELLER))
    trade = dvp.agree()
    events = EventListener(net.url(BANK), trade.tx.tx_id)
    assert dvp.deposit(trade).status_code == 200
    dvp.sign(trade)
    net.relay_one_round()  # the SIGN arrives; the CALL it makes the host send stays there
    view = net.cross_tx(trade.tx.tx_id)
    assert view is not None and view["authentication"]["status"] == "VERIFIED"
    assert any("sent CALL" in e["event"] for e in view["timeline"]), view["timeline"]
    for i in range(4):  # the EVM chain moves on: blocks past the CALL's timeout height
        mint = dvp.nft.functions.mint(dvp.minter.address, 10**6 + trade.token_id * 10 + i, "")
        transact(net.w3, mint, sender=dvp.minter)
    net.start_relayer()
    assert events.completed()["outcome"] == "aborted"
    c = net.wait_done(trade.tx.tx_id)
    assert c["decision"] == "ABORT"
    timeline = [e["event"] for e in (net.cross_tx(trade.tx.tx_id) or {})["timeline"]]
    assert "CALL to part 1 timed out" in timeline, timeline
    assert dvp.owner(trade) == dvp.seller_evm.address
    dvp.settled(trade, committed=False, seller_txs=seller_txs)
