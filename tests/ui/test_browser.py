"""The post-trade web UI in a real browser: Playwright driving Debian's headless chromium
(``/usr/bin/chromium``, installed by ``make browser-bins``; never a downloaded browser) against
``kakehashi ui`` served as its own process on 127.0.0.1 over a network directory made by
``kakehashi posttrade init``. Every screen is saved as a screenshot under
``artifacts/screenshots/`` in the repository root."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from kakehashi.apps.posttrade.demo import AM, CSD, CUSTODIAN, OUTSIDER, SECURITIES
from tests.ui.browser import Served, kakehashi_command, serve_ui, shot


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    directory = tmp_path_factory.mktemp("browser") / "net"
    subprocess.run(
        kakehashi_command("posttrade", "init", str(directory)), check=True, capture_output=True
    )
    with serve_ui(directory) as served:
        yield served


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
