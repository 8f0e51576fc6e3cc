"""The DVP demo (``kakehashi demo dvp``): the settlement of :mod:`kakehashi.apps.dvp.settlement`
on the in-process sandbox (:mod:`kakehashi.ops.sandbox`: the embedded EVM chain, an embedded
Corda-model network of the bank — which runs the IBC host and issues the stablecoin — the buyer,
the seller and an outsider, the LCP service over HTTP, a relayer), step by step, with each
step's time and ledger, the round trip broken down as the seed analysis states it
(3 × Corda-model transaction + 2 × EVM transaction + 3 × relayer / LCP), and the final state
read back from both ledgers.

Failure scenarios (``fail_at``, :data:`SCENARIOS`), each ending with both assets where they
started — or, for ``relayer-crash``, the trade completed by a new relayer: atomic either way.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kakehashi.apps.dvp.settlement import Terms, dvp_transaction
from kakehashi.apps.result import DemoResult, DemoRun, Step, check_scenario
from kakehashi.cross.auth import corda_key_id, sign_party
from kakehashi.cross.corda_apps import apps_factory
from kakehashi.cross.corda_module import CROSS_PORT
from kakehashi.cross.corda_tokens import TokenEscrowApp, deposit, reclaim
from kakehashi.cross.http import event_stream
from kakehashi.cross.status import Decision
from kakehashi.cross.tx import Account, ChannelInfo, SignerKind
from kakehashi.errors import InsufficientBalanceError
from kakehashi.ledgers.corda.tokens.flows import balance_of, issue_tokens
from kakehashi.ledgers.corda.tokens.model import IssuedTokenType, TokenType
from kakehashi.ledgers.evm import toolchain
from kakehashi.ledgers.evm.chain import dev_accounts
from kakehashi.ledgers.evm.client import transact
from kakehashi.ops.sandbox import OPERATOR, World, world

__all__ = ["SCENARIOS", "DemoResult", "Step", "run_dvp"]

BUYER = "O=Buyer Trust, L=Tokyo, C=JP"
SELLER = "O=Seller Arts, L=Paris, C=FR"
OUTSIDER = "O=Someone Else, L=Seoul, C=KR"
JPYC = TokenType("JPYC", 0)
PRICE, FUNDS, TOKEN_ID = 300, 1_000, 7
PENDING_TIMEOUT_S = 4  # the no-signature scenario's transaction timeout
FORMULA = "3 x Corda-model transaction + 2 x EVM transaction + 3 x relayer/LCP"

SCENARIOS = {
    "balance": "the buyer's balance is too low: it cannot deposit the price; the lock fails",
    "nft-gone": "the seller transferred the NFT away after agreeing: the NFT move fails",
    "no-signature": "the seller never signs: the transaction expires, the buyer reclaims",
    "relayer-crash": "the relayer is killed after the lock and a new one completes the trade",
    "timeout": "the relayer is down until the NFT move's packet times out: the trade aborts",
}


class _Run(DemoRun):
    """One demo run on a sandbox (module docstring)."""

    def __init__(self, w: World, fail_at: str | None, show: Callable[[Step], None]) -> None:
        super().__init__(w, show)
        self.fail_at = fail_at
        self.bank = w.network.node(OPERATOR)
        self.buyer = w.network.node(BUYER)
        self.seller = w.network.node(SELLER)
        self.buyer_evm, self.seller_evm = dev_accounts()[4], dev_accounts()[5]

    # -- the story ----------------------------------------------------------------------------

    def setting(self) -> tuple[Terms, Any]:
        w = self.w
        issue_tokens(self.bank, JPYC, FUNDS, self.buyer.party)
        minter = dev_accounts()[0]
        nft = toolchain.deploy(w.w3, "tokens/erc721", "Art", "ART", "https://art/", sender=minter)
        mint = nft.functions.mint(self.seller_evm.address, TOKEN_ID, "7.json")
        transact(w.w3, mint, sender=minter)
        transact(w.w3, nft.functions.approve(w.app.address, TOKEN_ID), sender=self.seller_evm)
        terms = Terms(
            IssuedTokenType(self.bank.party, JPYC),
            PRICE if self.fail_at != "balance" else FUNDS * 5,
            bytes.fromhex(nft.address[2:]),
            TOKEN_ID,
            self.buyer.party,
            self.seller.party,
            bytes.fromhex(self.buyer_evm.address[2:]),
            bytes.fromhex(self.seller_evm.address[2:]),
        )
        return terms, nft

    def run(self) -> DemoResult:
        w = self.w
        assert w.record is not None
        terms, nft = self.step("① buyer and seller agree the trade", "both", self.setting)
        if self.fail_at == "nft-gone":
            other = dev_accounts()[6].address
            transact(
                w.w3,
                nft.functions.transferFrom(self.seller_evm.address, other, TOKEN_ID),
                sender=self.seller_evm,
            )
        timeout_s = PENDING_TIMEOUT_S if self.fail_at == "no-signature" else 600
        timeout = time.time_ns() + timeout_s * 10**9
        tx = dvp_transaction(
            terms,
            ChannelInfo(CROSS_PORT, w.record.b_channel_id),
            nonce=time.time_ns(),
            timeout_ns=timeout,
        )
        if self.fail_at == "timeout":
            w.cross.timeout_span = 2  # the CALL times out after 2 EVM blocks
        self.step(
            "② the cross-ledger transaction is created and sent to both",
            "corda",
            lambda: w.cross.initiate(tx),
        )
        self.listen(tx.tx_id)
        started = time.perf_counter()
        failure = ""

        def buyer_signs() -> None:
            with contextlib.suppress(InsufficientBalanceError):  # it signs anyway; no lock
                deposit(
                    self.buyer,
                    terms.stablecoin,
                    terms.price,
                    recipient=terms.seller,
                    operator=self.bank.party,
                    tx_id=tx.tx_id,
                    index=0,
                    expiry_ns=timeout,
                )
            me = Account(SignerKind.LOCAL, corda_key_id(self.buyer.party.owning_key))
            w.cross.sign(tx.tx_id, me, sign_party(self.buyer.key, tx.tx_id))

        signs = self.timed("corda", buyer_signs)
        self.step("③ the buyer deposits and signs (Corda model)", "corda", signs)
        if self.fail_at == "no-signature":
            return self.expire(tx, terms, nft, started)
        sign = w.auth.functions.sign_remote(tx.view(1).encode(), 1, w.record.a_channel_id)
        self.step(
            "③ the seller signs (EVM chain)",
            "evm",
            self.timed("evm", lambda: transact(w.w3, sign, sender=self.seller_evm)),
        )
        evm_to_corda, corda_to_evm = self.relayer.directions()
        locked = "④ the signature crosses; the stablecoin is locked (Corda model)"
        self.hop(locked, evm_to_corda, "corda")
        if self.fail_at == "relayer-crash":
            self.step("   the relayer is killed; a new one starts", "relayer", self.restart)
        if self.fail_at == "timeout":
            self.step("   the relayer is down; the EVM chain moves on", "evm", self.pass_blocks)
            self.hop("⑤ the relayer proves the NFT move's packet timed out", evm_to_corda, "corda")
        else:
            self.hop("⑤ the NFT moves to the buyer (EVM chain)", corda_to_evm, "evm")
            paid = "⑥-⑦ the move is reported back; the stablecoin moves (Corda model)"
            self.hop(paid, evm_to_corda, "corda")
        end_to_end = time.perf_counter() - started
        self.notified()
        c = w.cross.coordinator(tx.tx_id)
        assert c is not None
        if c.decision is Decision.ABORT:
            failure = (
                "; ".join(
                    f"part {i} ({'Corda model' if i == 0 else 'EVM chain'}): {why}"
                    for i, why in {**c.failures, **c.rejected}.items()
                )
                or "timed out"
            )
        outcome = {Decision.COMMIT: "committed", Decision.ABORT: "aborted"}.get(c.decision, "open")
        return self.result(tx.tx_id, outcome, terms, nft, end_to_end, failure)

    def restart(self) -> None:
        self.relayer = self.w.relayer()

    def listen(self, tx_id: bytes) -> None:
        """The initiating user's subscription to the host's Server-Sent Events (what
        ``GET /cross/events?tx_id=…`` streams), on its own thread."""
        self.events: list[tuple[float, str]] = []
        self.stop = threading.Event()

        def consume() -> None:
            for chunk in event_stream(self.w.cross, tx_id, poll_s=0.01, stop=self.stop):
                self.events.append((time.perf_counter(), chunk))

        self.listener = threading.Thread(target=consume, daemon=True)
        self.listener.start()

    def notified(self) -> None:
        """Wait (briefly) for the ``completed`` event and show it as a step."""
        finished = time.perf_counter()
        self.listener.join(timeout=2.0)
        self.stop.set()
        done = [(t, e) for t, e in self.events if e.startswith("event: completed")]
        if done:
            at, chunk = done[0]
            outcome = json.loads(chunk.split("data: ", 1)[1])["outcome"]
            self.notification = outcome
            step = Step(
                f"   the initiator is notified: {outcome} (a Server-Sent Event)",
                "corda",
                max(0.0, at - finished),
            )
            self.steps.append(step)
            self.show(step)

    def pass_blocks(self) -> None:
        minter = dev_accounts()[0]
        for _ in range(3):  # any transactions: blocks past the packet's timeout height
            toolchain.deploy(self.w.w3, "tokens/erc20", "T", "T", 0, 1, sender=minter)

    def expire(self, tx: Any, terms: Terms, nft: Any, started: float) -> DemoResult:
        self.step(
            "   the seller never signs; the transaction expires",
            "both",
            lambda: time.sleep(max(0.0, (tx.timeout_timestamp - time.time_ns()) / 1e9) + 0.1),
        )
        self.step(
            "   the buyer takes its deposit back (Corda model)",
            "corda",
            lambda: reclaim(self.buyer, tx.tx_id, 0),
        )
        self.stop.set()  # never authenticated: nothing to notify
        failure = f"part 1 (EVM chain): the seller {self.seller.party.name} never signed"
        return self.result(tx.tx_id, "expired", terms, nft, time.perf_counter() - started, failure)

    def result(
        self, tx_id: bytes, outcome: str, terms: Terms, nft: Any, end_to_end: float, failure: str
    ) -> DemoResult:
        token = terms.stablecoin
        final = {
            "nft_owner": nft.functions.ownerOf(TOKEN_ID).call(),
            "buyer_evm": self.buyer_evm.address,
            "seller_evm": self.seller_evm.address,
            "buyer_balance": balance_of(self.buyer, token),
            "seller_balance": balance_of(self.seller, token),
            "outsider_states": len(self.w.network.node(OUTSIDER).db.query()),
            "notified": getattr(self, "notification", None),
        }
        moved = final["nft_owner"] == self.buyer_evm.address
        paid = final["seller_balance"] == PRICE and final["buyer_balance"] == FUNDS - PRICE
        untouched = final["buyer_balance"] == FUNDS and final["seller_balance"] == 0
        expected = "committed" if self.fail_at in (None, "relayer-crash") else outcome
        atomic = (moved and paid) if outcome == "committed" else (not moved and untouched)
        heard = final["notified"] == outcome or outcome == "expired"
        ok = outcome == expected and atomic and final["outsider_states"] == 0 and heard
        breakdown = self.breakdown(FORMULA, end_to_end)
        return DemoResult(ok, tx_id.hex(), outcome, self.steps, breakdown, final, failure)


def run_dvp(
    directory: Path, *, fail_at: str | None = None, show: Callable[[Step], None] = lambda _: None
) -> DemoResult:
    """Build the sandbox in ``directory`` and run the DVP (module docstring)."""
    check_scenario(fail_at, SCENARIOS)
    with world(
        directory,
        cross=True,
        corda_nodes=(OPERATOR, BUYER, SELLER, OUTSIDER),
        cross_apps=apps_factory(TokenEscrowApp),
    ) as w:
        return _Run(w, fail_at, show).run()
