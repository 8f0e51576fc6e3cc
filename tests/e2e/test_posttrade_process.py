"""Post-trade settlement (issue 8, workflow step 5) on a network of processes: after the final
OK, the CSD starts a DVP through the Cross Framework, the settling parties consent from their
own keys and nodes, a relayer carries it, and the CSD records SETT — or PENF with the reason.

Processes (:class:`tests.e2e.use_cases.UseCaseNetwork`): the EVM node (which also holds the
post-trade contract and the share token), the Corda notary, the bank (the IBC host, issuer of
the JPY stablecoin), the custodian's and the securities company's Corda nodes, an outsider's
node, the LCP service and the relayer. Every post-trade step is a ``kakehashi posttrade``
process acting ``--as`` a party from the network directory made by ``kakehashi posttrade init
--rpc``; its ``settlement.json`` names the ledgers.

The receiving agent (BOTKJPJT) is the custodian — it pays the JPY from its Corda node and the
shares arrive in its EVM account; the delivering agent (MHCBJPJT) is the securities company.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kakehashi.apps.posttrade.codes import Direction
from kakehashi.apps.posttrade.demo import sample_instruction
from kakehashi.cli.posttrade import open_network
from kakehashi.cli.posttrade_up import (
    CUSTODIAN_NODE,
    OUTSIDER_NODE,
    SECURITIES_NODE,
    SettlementNetwork,
    start_settlement_network,
)
from kakehashi.cross.tx import InitiateTx
from tests.e2e.use_cases import HOST, UseCaseNetwork, wait_for

ROUTE = "custodian,securities,csd"
SHARES, PRICE = 1_000, Decimal("2850.5")
YEN = int(SHARES * PRICE)  # 2,850,500
_FORMS = itertools.count(1)
KAKEHASHI = [sys.executable, "-m", "kakehashi.cli.main"]


class Desk:
    """The post-trade network on the module's processes (``kakehashi posttrade up``'s)."""

    def __init__(self, network: SettlementNetwork) -> None:
        self.network = network
        self.net = UseCaseNetwork.adopt(network.net, network.config)
        self.dir = network.posttrade
        parties = json.loads((self.dir / "network.json").read_text())["parties"]
        self.account = {name: p["account"] for name, p in parties.items()}
        self.shares = network.shares

    # -- the market -----------------------------------------------------------------------------

    def fund(self, *, yen: int = 0, shares: int = 0) -> None:
        """The bank issues ``yen`` JPYC to the custodian; the issuer gives the securities
        company ``shares``."""
        if yen:
            self.network.issue_yen(yen)
        if shares:
            self.network.give_shares(shares, self.account["securities"])

    def assets(self) -> dict[str, int]:
        """JPYC on each settling party's node; shares in each one's EVM account."""
        net, shares = self.net, self.shares.functions
        return {
            "custodian_jpy": net.balance(CUSTODIAN_NODE, "JPYC"),
            "securities_jpy": net.balance(SECURITIES_NODE, "JPYC"),
            "custodian_shares": int(shares.balanceOf(self.account["custodian"]).call()),
            "securities_shares": int(shares.balanceOf(self.account["securities"]).call()),
        }

    # -- the post-trade workflow ----------------------------------------------------------------

    def cli(self, *args: str, check: bool = True) -> Any:
        done = self.net.cli("posttrade", *args, "--dir", str(self.dir), check=check)
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--json").stdout)

    def accepted_form(self, *, price: Decimal = PRICE, as_processes: bool = False) -> str:
        """A trade entered by the asset manager, its counterpart entered by the securities
        company, matched by the CSD and approved along the route; its form id.
        ``as_processes``: every step a ``kakehashi posttrade`` process (else the same steps
        through the client library on the same EVM node)."""
        n = next(_FORMS)
        form_id, counter_id = f"F-{n}", f"F-{n}-DELI"
        amount = price * SHARES
        ours = sample_instruction(deal_price=price, settlement_amount=amount)
        theirs = sample_instruction(Direction.DELI, deal_price=price, settlement_amount=amount)
        if as_processes:
            for fid, who, instruction, route in (
                (form_id, "asset-manager", ours, ROUTE),
                (counter_id, "securities", theirs, "csd"),
            ):
                trade = self.dir / f"{fid}.json"
                trade.write_text(json.dumps(instruction.to_json()))
                self.cli("submit", fid, "--as", who, "--trade", str(trade), "--route", route)
            assert self.json("match", form_id, counter_id, "--as", "csd")["status"] == "MACH"
            for who in ROUTE.split(","):
                self.cli("approve", form_id, "--as", who)
            return form_id
        from kakehashi.apps.posttrade.form import Form

        with open_network(self.dir) as net:
            route = tuple(ROUTE.split(","))
            net.ledger("asset-manager").submit(Form(form_id, 1, ours, route, "asset-manager"))
            net.ledger("securities").submit(Form(counter_id, 1, theirs, ("csd",), "securities"))
            assert net.ledger("csd").match_counterpart(form_id, counter_id).matched
            for who in route:
                net.ledger(who).approve(form_id)
        return form_id

    def settle(self, form_id: str, *, wait: float = 0) -> dict[str, Any]:
        return dict(self.json("settle", form_id, "--as", "csd", "--wait", str(wait)))

    def record(self, form_id: str) -> dict[str, Any]:
        return dict(json.loads((self.dir / "settlement" / f"{form_id}.json").read_text()))


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    network = start_settlement_network(tmp_path_factory.mktemp("posttrade") / "net")
    try:
        yield Desk(network)
    finally:
        network.close()


def _settled(desk: Desk, before: dict[str, int], *, moved: bool, price: int = YEN) -> None:
    """Both moved or neither, as each party's own node and the EVM chain report it."""
    expected = before
    if moved:
        expected = {
            "custodian_jpy": before["custodian_jpy"] - price,
            "securities_jpy": before["securities_jpy"] + price,
            "custodian_shares": before["custodian_shares"] + SHARES,
            "securities_shares": before["securities_shares"] - SHARES,
        }
    wait_for("the assets to settle", lambda: desk.assets() == expected, 30)
    assert desk.net.vault(OUTSIDER_NODE) == []


def _both_consent_and_it_settles(desk: Desk, form_id: str) -> None:
    before = desk.assets()
    desk.json("consent", form_id, "--as", "custodian")
    desk.json("consent", form_id, "--as", "securities")
    assert desk.settle(form_id, wait=90)["status"] == "SETT"
    _settled(desk, before, moved=True)


def test_after_the_final_ok_the_trade_settles_as_a_dvp(desk: Desk) -> None:
    before = desk.assets()  # the market `posttrade up` made
    assert before == {
        "custodian_jpy": 3_000_000,
        "securities_jpy": 0,
        "custodian_shares": 0,
        "securities_shares": SHARES,
    }
    # the CSD holds the bank's initiate-only token: not the node's RPC (it cannot issue)
    config = json.loads((desk.dir / "settlement.json").read_text())
    token = Path(config["host"]["token_file"]).read_text().strip()
    assert token != desk.net.net.node_token(HOST)
    forged = desk.net.http.post(
        f"{desk.net.url(HOST)}/rpc/issue",
        json={"token": "JPYC", "quantity": 1, "holder": HOST},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert forged.status_code == 401
    form_id = desk.accepted_form(as_processes=True)

    started = desk.settle(form_id)
    assert started["decision"] == "UNKNOWN"
    assert started["awaiting"] == ["custodian", "securities"]
    assert (started["quantity"], started["amount"], started["currency"]) == (
        str(SHARES),
        str(YEN),
        "JPY",
    )
    state = desk.json("show", form_id, "--as", "asset-manager")
    assert state["settlement"] == "PEND"
    again = desk.settle(form_id)  # the same attempt, under way: nothing new
    assert (again["tx_id"], again["attempt"]) == (started["tx_id"], 1)

    outsider = desk.cli("consent", form_id, "--as", "outsider", check=False)
    assert outsider.returncode == 2
    assert b"cannot read" in outsider.stderr or b"not a recipient" in outsider.stderr
    csd = desk.cli("consent", form_id, "--as", "csd", check=False)
    assert csd.returncode == 2 and b"does not settle form" in csd.stderr

    desk.net.relayer.kill()  # type: ignore[union-attr]  # SIGKILL: the relayer is down
    paid = desk.json("consent", form_id, "--as", "custodian")
    assert paid["awaiting"] == ["securities"]
    assert desk.assets()["custodian_jpy"] == before["custodian_jpy"] - YEN  # deposited
    twice = desk.cli("consent", form_id, "--as", "custodian", check=False)
    assert twice.returncode == 2 and b"has consented" in twice.stderr
    delivered = desk.json("consent", form_id, "--as", "securities")
    assert delivered["awaiting"] == []  # its SIGN packet waits for the relayer
    resent = desk.cli("consent", form_id, "--as", "securities", check=False)
    assert resent.returncode == 2 and b"has consented" in resent.stderr
    desk.net.start_relayer()  # restarted: it finds what is not carried yet

    done = desk.settle(form_id, wait=90)
    assert (done["status"], done["reason"]) == ("SETT", None), done
    assert done["form"]["settlement"] == "SETT"
    _settled(desk, before, moved=True)
    for who in ("asset-manager", "custodian", "securities", "csd"):
        assert desk.json("show", form_id, "--as", who)["settlement"] == "SETT"
    history = desk.json("show", form_id, "--as", "custodian")["history"]
    recorded = [h for h in history if h["event"] == "settlement"]
    assert [h["status"] for h in recorded] == ["PEND", "SETT"]
    assert {h["evidence"] for h in recorded} == {started["tx_id"]}  # the DVP, for anyone
    seen = desk.json("settlement", form_id, "--as", "securities")
    assert seen["decision"] == "COMMIT" and seen["status"] == "SETT"
    view = desk.json("show", form_id, "--as", "outsider")
    assert view["readable"] is False and view["form"] is None
    settled_again = desk.cli("settle", form_id, "--as", "csd", check=False)
    assert settled_again.returncode == 2 and b"settled already" in settled_again.stderr


def test_the_securities_company_lacks_the_shares(desk: Desk) -> None:
    held = desk.assets()["securities_shares"]
    desk.fund(yen=YEN, shares=400 - held if held < 400 else 0)
    form_id = desk.accepted_form()
    before = desk.assets()
    assert before["securities_shares"] < SHARES
    desk.settle(form_id)
    desk.json("consent", form_id, "--as", "custodian")
    desk.json("consent", form_id, "--as", "securities")
    failed = desk.settle(form_id, wait=90)
    assert (failed["status"], failed["reason"]) == ("PENF", "LACK"), failed
    assert "securities" in failed["message"] or SECURITIES_NODE in failed["message"]
    assert failed["form"]["settlement"] == "PENF"
    assert failed["form"]["settlement_reason"] == "LACK"
    _settled(desk, before, moved=False)  # the custodian's deposit refunded

    # the securities company gets the shares: the CSD's next `settle` is a new attempt
    desk.fund(shares=SHARES - before["securities_shares"])
    retry = desk.settle(form_id)
    assert retry["attempt"] == 2 and retry["tx_id"] != failed["tx_id"]
    assert desk.json("show", form_id, "--as", "csd")["settlement"] == "PEND"
    _both_consent_and_it_settles(desk, form_id)


def test_the_custodian_lacks_the_cash(desk: Desk) -> None:
    desk.fund(shares=SHARES)
    price = Decimal(10_000)  # 10,000,000 JPY: more than the custodian holds
    form_id = desk.accepted_form(price=price)
    before = desk.assets()
    assert before["custodian_jpy"] < price * SHARES
    desk.settle(form_id)
    short = desk.cli("consent", form_id, "--as", "custodian", check=False)
    assert short.returncode == 2
    assert b"cannot pay" in short.stderr and b"--decline" in short.stderr
    desk.json("consent", form_id, "--as", "securities")
    declined = desk.json("consent", form_id, "--as", "custodian", "--decline")
    assert declined["awaiting"] == []
    failed = desk.settle(form_id, wait=90)
    assert (failed["status"], failed["reason"]) == ("PENF", "MONY"), failed
    assert CUSTODIAN_NODE in failed["message"]
    _settled(desk, before, moved=False)


def test_a_party_signs_only_the_settlement_of_the_form_it_reads(desk: Desk) -> None:
    """The record in the directory is not trusted: a transaction paying the deliverer less
    than the form says is refused by each party before it signs."""
    desk.fund(yen=YEN, shares=SHARES)
    form_id = desk.accepted_form()
    desk.settle(form_id)
    path = desk.dir / "settlement" / f"{form_id}.json"
    record = desk.record(form_id)
    tx = InitiateTx.decode(bytes.fromhex(record["tx"]))
    cash, shares = tx.contract_transactions
    cheap = dataclasses.replace(shares, call_info=shares.call_info[:-1] + b"\x01")
    forged = dataclasses.replace(tx, contract_transactions=(cash, cheap))
    path.write_text(json.dumps({**record, "tx": forged.encode().hex()}))
    for who in ("custodian", "securities"):
        refused = desk.cli("consent", form_id, "--as", who, check=False)
        assert refused.returncode == 2
        assert b"does not settle form" in refused.stderr
    path.write_text(json.dumps(record))  # put back: the real one is consented to and settles
    _both_consent_and_it_settles(desk, form_id)


def test_a_network_without_settlement_config_settles_by_hand(tmp_path: Path) -> None:
    """Without settlement.json, `settle` asks for --status (and with it, refuses --status)."""
    from typer.testing import CliRunner

    from kakehashi.cli.main import app

    runner = CliRunner()
    d = tmp_path / "net"
    assert runner.invoke(app, ["posttrade", "init", str(d)]).exit_code == 0
    result = runner.invoke(app, ["posttrade", "settle", "F-1", "--as", "csd", "--dir", str(d)])
    assert result.exit_code == 2
    assert "has no settlement.json" in result.output


def test_the_parties_settle_from_their_screens(desk: Desk) -> None:
    """`kakehashi ui` over the same network, in Debian's headless chromium: the CSD starts the
    settlement, the custodian consents to pay and the securities company to deliver, each
    logged in as itself; the CSD records SETT. Screenshots under artifacts/screenshots/."""
    from tests.ui.browser import serve_ui, shot

    form_id = desk.accepted_form()
    desk.fund(yen=max(0, YEN - desk.assets()["custodian_jpy"]))
    desk.fund(shares=max(0, SHARES - desk.assets()["securities_shares"]))
    before = desk.assets()
    with serve_ui(desk.dir) as served:
        csd = served.login("csd")
        csd.goto(f"{served.url}/forms/{form_id}")
        assert csd.inner_text("#settle") == "Start the settlement"
        csd.click("#settle")
        assert "PEND" in csd.inner_text("#settlement")
        assert csd.inner_text("#dvp-awaiting") == "custodian, securities"
        shot(csd, "settlement-1-csd-started")
        for who, button in (("custodian", "Consent: pay"), ("securities", "Consent: deliver")):
            page = served.login(who)  # its inbox: the consent awaited
            link = page.get_by_role("link", name=form_id, exact=True)
            row = page.locator("#forms tr").filter(has=link)
            assert "your consent to the settlement" in row.inner_text()
            page.goto(f"{served.url}/forms/{form_id}")
            assert page.inner_text("#consent").startswith(button)
            shot(page, f"settlement-2-{who}-consent")
            page.click("#consent")
            assert page.locator("#consent").count() == 0  # given: no second button
        out = served.login("outsider")
        out.goto(f"{served.url}/forms/{form_id}")
        assert out.locator("#dvp").count() == 0 and out.locator("#consent").count() == 0

        def recorded() -> bool:
            csd.goto(f"{served.url}/forms/{form_id}")
            if csd.locator("#settle").count():
                csd.click("#settle")
            return csd.inner_text("#settlement").startswith("SETT")

        wait_for("the CSD to record SETT", recorded, 90)
        assert csd.inner_text("#dvp-outcome").startswith("SETT")
        assert csd.locator("#settle").count() == 0
        shot(csd, "settlement-3-csd-settled")
    _settled(desk, before, moved=True)


def test_posttrade_up_runs_the_network_and_stops_it(tmp_path: Path) -> None:
    """`kakehashi posttrade up DIR` (the newcomer's command) as a process: everything starts,
    the UI answers, a CLI step works on the directory it made; SIGTERM stops every process."""
    import signal
    import subprocess
    import time

    import httpx

    from kakehashi.cli.ping import child_env, free_ports

    directory = tmp_path / "up"
    pt = directory / "posttrade"
    port = free_ports(1)
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*KAKEHASHI, "posttrade", "up", str(directory), "--ui-port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=child_env(),
        )
    try:

        def serving() -> bool:
            assert proc.poll() is None, log.read_text()
            try:
                return httpx.get(f"http://127.0.0.1:{port}/login", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for("the UI of posttrade up", serving, 180)
        listed = subprocess.run(
            [*KAKEHASHI, "posttrade", "list", "--as", "csd", "--dir", str(pt), "--json"],
            capture_output=True,
            env=child_env(),
            check=True,
        )
        assert json.loads(listed.stdout)["forms"] == []
        assert (directory / "posttrade" / "settlement.json").exists()
        text = log.read_text()
        assert "post-trade UI on" in text and "settlement: a DVP" in text
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, log.read_text()[-3000:]
    time.sleep(0.5)
    left = subprocess.run(["pgrep", "-f", str(directory)], capture_output=True, check=False)
    assert left.stdout == b"", "processes left running: " + left.stdout.decode()
    again = subprocess.run(
        [*KAKEHASHI, "posttrade", "up", str(directory)],
        capture_output=True,
        env=child_env(),
        check=False,
    )
    assert again.returncode == 2 and b"is not empty" in again.stderr
