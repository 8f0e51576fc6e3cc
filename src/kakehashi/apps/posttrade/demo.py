"""The post-trade demo (``kakehashi demo posttrade``): a cross-border trade's settlement
instruction shared, approved and settled by every party on its route, encrypted for everyone
else — on the in-process sandbox (:mod:`kakehashi.ops.sandbox`: the embedded EVM chain, which
holds the post-trade contract and the security token; an embedded Corda-model network of the
bank that runs the IBC host and issues the JPY stablecoin, the two settling parties and an
outsider; the LCP service over HTTP; a relayer).

The story, step by step:

1. the overseas asset manager enters the trade (a receive-against-payment sese.023 instruction)
   with its route — custodian bank → securities company → CSD; each is notified of the form ID;
2. the securities company enters the delivering side's instruction for the CSD;
3. each party on the route opens the form on its own client and sees the same content (the same
   version hash) and route;
4. the CSD matches the two instructions on the CSDR fields: matched;
5. the custodian rejects (NG, ``SAFE``: the safekeeping account is wrong) with a narrative every
   route party can read; the form returns to the asset manager, who amends and resubmits it;
6. the CSD matches the new version; the custodian, the securities company and the CSD approve in
   route order: accepted;
7. an outsider enters the form ID and gets only ciphertext;
8. settlement runs as a DVP through the Cross Framework (the shares on the EVM chain against JPY
   on the Corda model) and the CSD records it: settled — or, with ``fail_at`` (:data:`SCENARIOS`),
   failing with the reason (LACK, MONY) and both assets where they were.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from kakehashi.apps.posttrade import sealing
from kakehashi.apps.posttrade.codes import Direction, Payment, QuantityType, Role
from kakehashi.apps.posttrade.form import Form, Instruction
from kakehashi.apps.posttrade.ledger import (
    PostTradeLedger,
    Settlement,
    deploy,
    register_party,
)
from kakehashi.apps.posttrade.settlement import (
    SecuritiesRegistry,
    SecurityToken,
    SettlementParty,
    order_for,
    settle,
)
from kakehashi.apps.result import DemoRun, Step, check_scenario
from kakehashi.cross.corda_apps import apps_factory
from kakehashi.cross.corda_tokens import TokenEscrowApp
from kakehashi.ledgers.corda.tokens.flows import balance_of, issue_tokens
from kakehashi.ledgers.corda.tokens.model import IssuedTokenType, TokenType
from kakehashi.ledgers.evm import toolchain
from kakehashi.ledgers.evm.chain import dev_accounts
from kakehashi.ledgers.evm.client import transact
from kakehashi.ops.sandbox import OPERATOR, World, world

__all__ = ["SCENARIOS", "PostTradeResult", "run_posttrade", "sample_instruction"]

SCENARIOS = {
    "lack": "the securities company holds only 400 of the 1,000 shares: the DVP aborts, nothing "
    "moves, the CSD records PENF LACK",
    "mony": "the asset manager's side holds too little JPY: the DVP aborts, nothing moves, the CSD "
    "records PENF MONY",
}

AM, CUSTODIAN, SECURITIES, CSD, OUTSIDER = (
    "asset-manager",
    "custodian",
    "securities",
    "csd",
    "outsider",
)
ROUTE = (CUSTODIAN, SECURITIES, CSD)
ROLES: dict[str, Role | None] = {
    AM: Role.ASSET_MANAGER,
    CUSTODIAN: Role.CUSTODIAN,
    SECURITIES: Role.SECURITIES_COMPANY,
    CSD: Role.CSD,
    OUTSIDER: None,
}
# the settling parties on the Corda model (cash) and their EVM accounts (shares)
RECEIVER = "O=Overseas Asset Management, L=London, C=GB"
DELIVERER = "O=Domestic Securities, L=Tokyo, C=JP"
CORDA_OUTSIDER = "O=Someone Else, L=Seoul, C=KR"
RECEIVING_BIC, DELIVERING_BIC, CSD_BIC = "BOTKJPJT", "MHCBJPJT", "JJSDJPJT"
ISIN = "JP3633400001"
JPYC = TokenType("JPYC", 0)
SHARES, PRICE = 1_000, Decimal("2850.5")


@dataclass
class PostTradeResult:
    ok: bool
    form_id: str
    steps: list[Step] = field(default_factory=list)
    final_status: dict[str, Any] = field(default_factory=dict)
    outsider_view: dict[str, Any] = field(default_factory=dict)
    failure: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "form_id": self.form_id,
            "steps": [s.__dict__ for s in self.steps],
            "final_status": self.final_status,
            "outsider_view": self.outsider_view,
            "failure": self.failure,
        }


def sample_instruction(direction: Direction = Direction.RECE, **changes: Any) -> Instruction:
    """The demo's trade, as one side instructs it (``changes``: fields to differ): 1,000 Toyota
    shares at JPY 2,850.5 against payment, settled through the Japanese CSD."""
    base = Instruction(
        sender_reference="AM-2026-0001" if direction is Direction.RECE else "DS-2026-0001",
        direction=direction,
        payment=Payment.APMT,
        trade_date=date(2026, 11, 30),
        settlement_date=date(2026, 12, 2),
        isin=ISIN,
        quantity=Decimal(SHARES),
        quantity_type=QuantityType.UNIT,
        deal_price=PRICE,
        settlement_amount=PRICE * SHARES,
        currency="JPY",
        safekeeping_account="SAFE-001",
        delivering_agent=DELIVERING_BIC,
        receiving_agent=RECEIVING_BIC,
        place_of_settlement=CSD_BIC,
        counterparty="Domestic Securities" if direction is Direction.RECE else "Overseas AM",
    )
    return dataclasses.replace(base, **changes)


class _Run(DemoRun):
    def __init__(self, w: World, show: Callable[[Step], None], fail_at: str | None) -> None:
        super().__init__(w, show)  # links the path: self.relayer; timed steps
        self.fail_at = fail_at
        accounts = dev_accounts()
        # AM pays from its EVM account 4's twin on the Corda model; the securities company
        # delivers from account 5 (the settling parties), the others only approve
        self.evm = dict(zip((AM, SECURITIES, CUSTODIAN, CSD, OUTSIDER), accounts[4:9], strict=True))

    # -- the network ----------------------------------------------------------------------

    def setting(self) -> dict[str, PostTradeLedger]:
        w, operator = self.w, dev_accounts()[0]
        contract = deploy(w.w3, operator)
        keys = {name: sealing.generate_keypair() for name in ROLES}
        for name, role in ROLES.items():
            register_party(
                w.w3, contract, operator, name, self.evm[name].address, keys[name][1], role
            )
        return {
            name: PostTradeLedger(w.w3, contract, name, self.evm[name], keys[name][0])
            for name in ROLES
        }

    def market(self) -> tuple[SecuritiesRegistry, IssuedTokenType]:
        """JPY for the receiving party (Corda model), the shares for the delivering party (an
        ERC-20 on the EVM chain)."""
        w = self.w
        bank = w.network.node(OPERATOR)
        yen = 1_000_000 if self.fail_at == "mony" else 3_000_000  # the price is 2,850,500
        issue_tokens(bank, JPYC, yen, w.network.node(RECEIVER).party)
        issuer = dev_accounts()[0]
        stock = toolchain.deploy(
            w.w3, "tokens/erc20", "Toyota Motor", "7203", 0, 10_000, sender=issuer
        )
        transact(
            w.w3,
            stock.functions.transfer(
                self.evm[SECURITIES].address, 400 if self.fail_at == "lack" else SHARES
            ),
            sender=issuer,
        )
        token = SecurityToken(bytes.fromhex(stock.address[2:]))
        self.stock, self.jpy = stock, IssuedTokenType(bank.party, JPYC)
        self.before = self.assets()
        return SecuritiesRegistry({ISIN: token}), self.jpy

    def assets(self) -> dict[str, int]:
        """JPYC on each settling party's node, shares in each one's EVM account."""
        w = self.w
        return {
            "receiving_jpy": balance_of(w.network.node(RECEIVER), self.jpy),
            "delivering_jpy": balance_of(w.network.node(DELIVERER), self.jpy),
            "receiving_shares": int(self.stock.functions.balanceOf(self.evm[AM].address).call()),
            "delivering_shares": int(
                self.stock.functions.balanceOf(self.evm[SECURITIES].address).call()
            ),
        }

    # -- the story ------------------------------------------------------------------------

    def run(self) -> PostTradeResult:
        ledgers = self.step("parties registered; keys made", "evm", self.setting)
        securities, jpy = self.step("the market: JPY and the shares", "both", self.market)
        am, custodian, secco, csd = (ledgers[n] for n in (AM, CUSTODIAN, SECURITIES, CSD))
        wrong = sample_instruction(safekeeping_account="SAFE-9")  # the custodian will say NG
        form = Form("F-2026-0001", 1, wrong, ROUTE, AM)
        counterpart = Form("F-2026-0002", 1, sample_instruction(Direction.DELI), (CSD,), SECURITIES)
        self.step(
            "the asset manager enters the trade and its route; the route is notified",
            "evm",
            lambda: am.submit(form),
        )
        notified = {n: [x.form_id for x in ledgers[n].inbox()] for n in ROUTE}
        self.step(
            "the securities company enters the delivering side's instruction",
            "evm",
            lambda: secco.submit(counterpart),
        )
        seen = self.step(
            "each party on the route opens the form: the same content and route",
            "evm",
            lambda: {n: ledgers[n].show(form.form_id) for n in ROUTE},
        )
        same = {v.state.version_hash for v in seen.values()} == {form.version_hash}
        first = self.step(
            "the CSD matches both sides' instructions (CSDR fields): MACH",
            "evm",
            lambda: csd.match_counterpart(form.form_id, counterpart.form_id),
        )
        self.step(
            "the custodian: NG (SAFE) with a narrative; back to the asset manager",
            "evm",
            lambda: custodian.reject(
                form.form_id, "SAFE", "SAFE-9 is not the fund's account with us: use SAFE-001"
            ),
        )
        back = am.show(form.form_id)
        amended = dataclasses.replace(
            form, version=2, instruction=sample_instruction(Direction.RECE)
        )
        self.step(
            "the asset manager amends and resubmits (version 2)", "evm", lambda: am.amend(amended)
        )
        second = self.step(
            "the CSD matches the new version: MACH",
            "evm",
            lambda: csd.match_counterpart(form.form_id, counterpart.form_id),
        )
        for name in ROUTE:
            approve: Callable[[], Any] = partial(ledgers[name].approve, form.form_id)
            self.step(f"{name}: OK", "evm", approve)
        outsider = self.step(
            "an outsider enters the form ID: ciphertext only",
            "evm",
            lambda: ledgers[OUTSIDER].show(form.form_id),
        )
        agents = {
            RECEIVING_BIC: SettlementParty(RECEIVER, bytes.fromhex(self.evm[AM].address[2:])),
            DELIVERING_BIC: SettlementParty(
                DELIVERER, bytes.fromhex(self.evm[SECURITIES].address[2:])
            ),
        }
        outcome = self.step(
            "settlement: the shares against JPY, a DVP across both ledgers",
            "both",
            lambda: settle(
                self.w,
                self.relayer,
                order_for(amended.instruction, agents),
                securities,
                {"JPY": jpy},
                delivering_signer=self.evm[SECURITIES],
            ),
        )
        status = Settlement.SETTLED if outcome.settled else Settlement.FAILING
        final = self.step(
            f"the CSD records the settlement: {status.iso}",
            "evm",
            lambda: csd.record_settlement(
                form.form_id, status, outcome.reason or None, evidence=outcome.tx_id
            ),
        )
        outsider_view = {
            "readable": outsider.readable,
            "refusal": outsider.refusal,
            "envelope_size": len(outsider.envelope),
            "envelope_head": outsider.envelope[:48].hex(),
            "form": None if outsider.form is None else outsider.form.form_id,
        }
        final_status = final.as_dict() | {"assets": self.assets()}
        price = int(PRICE * SHARES)
        if outcome.settled:
            b = self.before
            moved = final_status["assets"] == {
                "receiving_jpy": b["receiving_jpy"] - price,
                "delivering_jpy": b["delivering_jpy"] + price,
                "receiving_shares": b["receiving_shares"] + SHARES,
                "delivering_shares": b["delivering_shares"] - SHARES,
            }
        else:
            moved = final_status["assets"] == self.before  # nothing moved
        expected = (
            final.settlement.iso == "SETT"
            if self.fail_at is None
            else (final.settlement.iso, final.settlement_reason) == ("PENF", self.fail_at.upper())
        )
        ok = (
            all(form.form_id in notified[n] for n in ROUTE)
            and same
            and first.matched
            and second.matched
            and back.narrative is not None
            and final.processing.iso == "PACK"
            and expected
            and moved
            and not outsider.readable
        )
        failure = "" if outcome.settled else outcome.message
        return PostTradeResult(ok, form.form_id, self.steps, final_status, outsider_view, failure)


def run_posttrade(
    directory: Path, *, show: Callable[[Step], None] = lambda _: None, fail_at: str | None = None
) -> PostTradeResult:
    """Build the sandbox in ``directory`` and play the scenario (module docstring), or with a
    failing settlement (``fail_at``, :data:`SCENARIOS`)."""
    check_scenario(fail_at, SCENARIOS)
    with world(
        directory,
        cross=True,
        corda_nodes=(OPERATOR, RECEIVER, DELIVERER, CORDA_OUTSIDER),
        cross_apps=apps_factory(TokenEscrowApp),
    ) as w:
        return _Run(w, show, fail_at).run()
