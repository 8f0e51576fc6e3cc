"""The post-trade web UI in a real browser: Playwright driving Debian's headless chromium
(``/usr/bin/chromium``, installed by ``make browser-bins``; never a downloaded browser) against
``kakehashi ui`` served as its own process on 127.0.0.1 over a network directory made by
``kakehashi posttrade init``. Every screen is saved as a screenshot under
``artifacts/screenshots/`` in the repository root."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
AM, CUSTODIAN, SECURITIES, CSD, OUTSIDER = (
    "asset-manager",
    "custodian",
    "securities",
    "csd",
    "outsider",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _kakehashi(*args: str) -> list[str]:
    return [sys.executable, "-m", "kakehashi.cli.main", *args]


class Served:
    def __init__(self, url: str, secrets: dict[str, str], browser: Any) -> None:
        self.url, self.secrets, self.browser = url, secrets, browser

    def login(self, party: str) -> Any:
        """A fresh browser context (its own cookies) logged in as ``party``."""
        page = self.browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
        page.set_default_timeout(10_000)
        page.goto(self.url + "/login")
        page.select_option("select[name=party]", party)
        page.fill("input[name=secret]", self.secrets[party])
        page.click("#login")
        page.wait_for_url("**/inbox**")
        assert page.inner_text("#party") == party
        return page


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests drive Debian's chromium; run "
            "`make browser-bins` (as root: apt-get install chromium)",
            pytrace=False,
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: run `make venv` (dev extras)", pytrace=False)
    directory = tmp_path_factory.mktemp("browser") / "net"
    subprocess.run(_kakehashi("posttrade", "init", str(directory)), check=True, capture_output=True)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (directory.parent / "ui.log").open("w")
    proc = subprocess.Popen(
        _kakehashi("ui", "--dir", str(directory), "--port", str(port)),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"kakehashi ui exited: {(directory.parent / 'ui.log').read_text()}")
            try:
                if httpx.get(url + "/login", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("kakehashi ui did not answer within 30 s")
            time.sleep(0.2)
        secrets = json.loads((directory / "ui-credentials.json").read_text())["parties"]
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
            try:
                yield Served(url, secrets, browser)
            finally:
                browser.close()
        print(f"\nscreenshots: {SHOTS}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_a_wrong_secret_is_refused(served: Served) -> None:
    page = served.browser.new_context().new_page()
    page.set_default_timeout(10_000)
    page.goto(served.url + "/login")
    page.select_option("select[name=party]", CUSTODIAN)
    page.fill("input[name=secret]", served.secrets[CSD])
    page.click("#login")
    assert "wrong party or secret" in page.inner_text("#error")
    shot(page, "00-login-refused")
    page.context.close()


def test_the_workflow_in_the_browser(served: Served) -> None:
    am = served.login(AM)
    # the asset manager enters the trade and its route
    am.click("#enter")
    am.fill("#form_id", "F-WEB-1")
    am.fill("#safekeeping_account", "SAFE-9")
    shot(am, "01-asset-manager-enters-trade")
    am.click("#send")
    am.wait_for_url("**/forms/F-WEB-1?done=submitted")
    assert am.inner_text("#processing").startswith("PPRC")
    shot(am, "02-asset-manager-form-submitted")

    # the securities company enters the delivering side; the CSD matches both
    sec = served.login(SECURITIES)
    sec.click("#enter")
    assert sec.input_value("#direction") == "DELI"
    sec.fill("#form_id", "F-WEB-2")
    sec.click("#send")
    sec.wait_for_url("**/forms/F-WEB-2?done=submitted")
    csd = served.login(CSD)
    csd.goto(served.url + "/forms/F-WEB-1")
    csd.fill("#counterpart", "F-WEB-2")
    csd.click("#match")
    csd.wait_for_url("**done=matched")
    assert csd.inner_text("#matching").startswith("MACH")
    shot(csd, "03-csd-matched")

    # the custodian: its inbox marks its turn; NG with SAFE and a narrative
    cus = served.login(CUSTODIAN)
    assert "your turn" in cus.inner_text("#forms")
    shot(cus, "04-custodian-inbox-your-turn")
    cus.click("#forms >> text=F-WEB-1")
    assert "Your turn" in cus.inner_text("#your-turn")
    options = cus.eval_on_selector_all("#reason option", "els => els.map(e => e.value)")
    assert options == ["MONY", "CASH", "SAFE", "DDAT", "DTRD", "REFE", "OTHR"]
    cus.select_option("#reason", "SAFE")
    cus.fill("#narrative", "SAFE-9 is not the fund's account with us: use SAFE-001")
    shot(cus, "05-custodian-ng-with-reason")
    cus.click("#ng")
    cus.wait_for_url("**done=rejected")
    assert "SAFE" in cus.inner_text("#rejection")

    # back with the asset manager: it sees the reason, amends and resubmits
    am.goto(served.url + "/forms/F-WEB-1")
    assert "use SAFE-001" in am.inner_text("#rejection")
    shot(am, "06-asset-manager-sees-ng")
    am.click("#amend")
    am.fill("#safekeeping_account", "SAFE-001")
    am.click("#send")
    am.wait_for_url("**done=amended")

    csd.goto(served.url + "/forms/F-WEB-1")
    csd.fill("#counterpart", "F-WEB-2")
    csd.click("#match")
    csd.wait_for_url("**done=matched")
    for page in (cus, sec, csd):
        page.goto(served.url + "/forms/F-WEB-1")
        page.click("#ok")
        page.wait_for_url("**done=approved")
    assert csd.inner_text("#processing").startswith("PACK")
    assert csd.inner_text("#route").count("OK — approved") == 3
    shot(csd, "07-csd-accepted")

    # the outsider enters the form id: undecipherable, with what it got
    out = served.login(OUTSIDER)
    out.fill("input[name=form_id]", "F-WEB-1")
    out.click("#open")
    out.wait_for_url("**/forms/F-WEB-1")
    assert "undecipherable for you" in out.inner_text("#undecipherable")
    assert int(out.inner_text("#size").split()[0]) > 100
    assert "SAFE-001" not in out.content()
    shot(out, "08-outsider-undecipherable")
