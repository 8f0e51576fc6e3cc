"""The post-trade web UI in process (FastAPI TestClient) over a real network directory made by
``kakehashi posttrade init`` (embedded chain): login, sessions that cannot be borrowed or
forged, CSRF, the whole workflow through POSTs, and the outsider's view."""

from __future__ import annotations

import html
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from kakehashi.apps.posttrade.demo import AM, CSD, CUSTODIAN, OUTSIDER, SECURITIES
from kakehashi.cli.main import app as cli
from kakehashi.cli.posttrade import open_network, sample_instruction
from kakehashi.errors import ConfigurationError
from kakehashi.ui.app import create_app
from kakehashi.ui.sessions import (
    CREDENTIALS_FILE,
    REVOKED_FILE,
    SESSION_COOKIE,
    Credentials,
    Revocations,
    load_or_create,
    new_session,
    sign,
)

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Net:
    network: Any

    def __init__(self, directory: Path, credentials: Credentials, web: object) -> None:
        self.directory = directory
        self.credentials = credentials
        self.web = web

    def login_fields(self, client: TestClient, party: str, secret: str = "") -> dict[str, str]:
        """The login form's fields (its CSRF token from the login page)."""
        token = csrf_of(client, "/login")
        return {"party": party, "secret": secret or self.credentials.secrets[party], "csrf": token}

    def client(self, party: str | None = None) -> TestClient:
        client = TestClient(self.web, follow_redirects=False)  # type: ignore[arg-type]
        if party is not None:
            response = client.post("/login", data=self.login_fields(client, party))
            assert response.status_code == 303, response.text
            assert response.headers["location"] == "/inbox?done=login"
        return client


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    directory = tmp_path_factory.mktemp("ui") / "net"
    result = CliRunner().invoke(cli, ["posttrade", "init", str(directory)])
    assert result.exit_code == 0, result.output
    with open_network(directory) as network:
        credentials, written = load_or_create(directory, network.parties)
        assert written
        served = Net(directory, credentials, create_app(network, credentials))
        served.network = network
        yield served


def csrf_of(client: TestClient, path: str = "/inbox") -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    match = CSRF.search(page.text)
    assert match, page.text
    return match.group(1)


def trade(form_id: str, **changes: str) -> dict[str, str]:
    fields = dict(sample_instruction())
    fields.update(form_id=form_id, route=f"{CUSTODIAN}, {SECURITIES}, {CSD}")
    fields.update(changes)
    return fields


def match(csd: TestClient, token: str, counterpart: str) -> None:
    response = csd.post("/forms/F-1/match", data={"csrf": token, "counterpart": counterpart})
    assert response.status_code == 303, response.text


def test_credentials_file_is_private_and_stable(net: Net) -> None:
    path = net.directory / CREDENTIALS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again, written = load_or_create(net.directory, net.credentials.secrets)
    assert not written and again == net.credentials
    assert len(set(net.credentials.secrets.values())) == 5


def test_login_refuses_a_wrong_secret_and_pages_need_a_session(net: Net) -> None:
    client = net.client()
    assert client.get("/inbox").headers["location"] == "/login"
    wrong = client.post(
        "/login", data=net.login_fields(client, CUSTODIAN, net.credentials.secrets[CSD])
    )
    assert wrong.status_code == 401 and "wrong party or secret" in wrong.text
    assert SESSION_COOKIE not in wrong.cookies
    nobody = client.post("/login", data=net.login_fields(client, "mallory", "x"))
    assert nobody.status_code == 401
    # a login POST without the login form's token (from another site): refused, no session
    fresh = net.client()
    secret = net.credentials.secrets[CUSTODIAN]
    cross = fresh.post("/login", data={"party": CUSTODIAN, "secret": secret})
    assert cross.status_code == 403 and "CSRF" in cross.text
    assert SESSION_COOKIE not in fresh.cookies
    # a pre-login cookie is no session
    fresh.cookies.set(SESSION_COOKIE, fresh.cookies["kakehashi_login"])
    assert fresh.get("/inbox").headers["location"] == "/login"
    # a POST without a session is refused with a page, not a redirect or a traceback
    refused = client.post("/forms/F-X/approve", data={"csrf": "x"})
    assert refused.status_code == 401 and "not logged in" in refused.text
    assert "Traceback" not in refused.text


def test_no_party_can_act_as_another(net: Net) -> None:
    am = net.client(AM)
    token = csrf_of(am, "/forms/new")
    assert am.post("/forms", data={**trade("F-AUTH"), "csrf": token}).status_code == 303

    # a cookie naming the custodian but signed with another key: no session at all
    forged = sign(new_session(CUSTODIAN), b"not the server's secret" * 2)
    mallory = net.client()
    mallory.cookies.set(SESSION_COOKIE, forged)
    page = mallory.post("/forms/F-AUTH/approve", data={"csrf": "x", "version": "1"})
    assert page.status_code == 401 and "not signed by this server" in page.text

    # the asset manager's own valid cookie edited to name the custodian: the tag no longer fits
    cookie = am.cookies[SESSION_COOKIE]
    payload, _, tag = cookie.partition(".")
    import base64
    import json

    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body["p"] = CUSTODIAN
    edited = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    mallory.cookies.set(SESSION_COOKIE, edited + "." + tag)
    assert mallory.post("/forms/F-AUTH/approve", data={"csrf": body["c"]}).status_code == 401

    # the asset manager's real session acts as the asset manager only (its own account, which
    # the contract refuses: not on the route)
    refused = am.post("/forms/F-AUTH/approve", data={"csrf": token, "version": "1"})
    assert refused.status_code == 403
    message = html.unescape(refused.text)
    assert "asset-manager's approval of form 'F-AUTH'" in message and "not on the route" in message
    assert "Traceback" not in refused.text
    # the custodian's session cannot enter trades (the two sides' page)
    custodian = net.client(CUSTODIAN)
    assert custodian.get("/forms/new").status_code == 403


def test_csrf_token_is_required(net: Net) -> None:
    am = net.client(AM)
    token = csrf_of(am, "/forms/new")
    missing = am.post("/forms", data=trade("F-CSRF"))
    assert missing.status_code == 403 and "CSRF" in missing.text
    other = net.client(AM)  # another session of the same party has another token
    stolen = am.post("/forms", data={**trade("F-CSRF"), "csrf": csrf_of(other)})
    assert stolen.status_code == 403
    assert token != csrf_of(other)
    # nothing was submitted
    assert am.get("/forms/F-CSRF").status_code == 404
    # logging out ends the session: its cookie no longer works
    assert am.post("/logout", data={"csrf": token}).status_code == 303
    am.cookies.set(SESSION_COOKIE, other.cookies[SESSION_COOKIE])
    other.post("/logout", data={"csrf": csrf_of(other)})
    assert am.get("/inbox").headers["location"] == "/login"


def test_the_whole_flow_through_the_pages(net: Net) -> None:
    am, cus, sec, csd, out = (net.client(p) for p in (AM, CUSTODIAN, SECURITIES, CSD, OUTSIDER))
    token = {p: csrf_of(c) for p, c in ((AM, am), (CUSTODIAN, cus), (SECURITIES, sec), (CSD, csd))}

    # a malformed trade: the entry page again with the field's error, 400
    bad = am.post("/forms", data={**trade("F-1", isin="JP3633400002"), "csrf": token[AM]})
    assert bad.status_code == 400 and "wrong check digit" in bad.text

    done = am.post("/forms", data={**trade("F-1"), "csrf": token[AM]})
    assert done.status_code == 303 and done.headers["location"] == "/forms/F-1?done=submitted"

    inbox = cus.get("/inbox").text
    assert "F-1" in inbox and 'class="turn"' in inbox and "your turn" in inbox
    assert "submitted" in inbox  # the Notified event
    assert "F-1" not in out.get("/inbox").text

    page = cus.get("/forms/F-1").text
    assert "JP3633400001" in page and "Your turn" in page and 'id="ok"' in page
    # the custodian's reason list: its role's codes with their meanings, no other role's
    assert 'value="SAFE">SAFE — safekeeping account missing or invalid' in page
    assert 'value="LACK"' not in page
    # not the securities company's turn yet: no buttons on its page
    assert 'id="ok"' not in sec.get("/forms/F-1").text

    # no OK before the CSD has matched the trade with the delivering side's instruction
    early = cus.post("/forms/F-1/approve", data={"csrf": token[CUSTODIAN], "version": "1"})
    assert early.status_code == 409 and "not matched" in early.text
    match(csd, token[CSD], "")  # no counterpart instruction yet: NMAT CMIS
    assert "NMAT CMIS" in csd.get("/forms/F-1").text
    # the securities company enters the delivering side (prefilled DELI, route: the CSD)
    entry = sec.get("/forms/new").text
    assert 'value="DELI" selected' in entry and 'value="csd"' in entry
    counterpart = trade("F-1-DELI", direction="DELI", route=CSD, sender_reference="DS-1")
    counterpart["counterparty"] = "Overseas AM"
    assert sec.post("/forms", data={**counterpart, "csrf": token[SECURITIES]}).status_code == 303
    match(csd, token[CSD], "F-1-DELI")
    page = cus.get("/forms/F-1").text
    assert "MACH — matched" in page

    # OK by the custodian, NG (LACK) by the securities company with a narrative
    ok = cus.post("/forms/F-1/approve", data={"csrf": token[CUSTODIAN], "version": "1"})
    assert ok.status_code == 303
    ng = sec.post(
        "/forms/F-1/reject",
        data={
            "csrf": token[SECURITIES],
            "version": "1",
            "reason": "LACK",
            "narrative": "only 600 shares <b>free</b>",
        },
    )
    assert ng.status_code == 303
    for client in (am, cus, csd):
        page = client.get("/forms/F-1").text
        assert "NG — rejected" in page and "LACK — lack of securities" in page
        assert "only 600 shares &lt;b&gt;free&lt;/b&gt;" in page  # escaped, never markup
    # a reason not allowed for the role is refused readably
    wrong = cus.post(
        "/forms/F-1/reject", data={"csrf": token[CUSTODIAN], "reason": "LACK", "version": "1"}
    )
    assert wrong.status_code == 400 and "may not reject with LACK" in wrong.text

    # the submitter amends (quantity 600) and the route starts over
    page = am.get("/forms/F-1").text
    assert 'id="amend"' in page and 'id="cancel"' in page
    assert 'value="1000"' in am.get("/forms/F-1/amend").text
    amended = am.post(
        "/forms/F-1/amend",
        data={**trade("F-1", quantity="600", settlement_amount="1710300"), "csrf": token[AM]},
    )
    assert amended.status_code == 303, amended.text
    # an OK bound to the old version is refused as stale
    stale = cus.post("/forms/F-1/approve", data={"csrf": token[CUSTODIAN], "version": "1"})
    assert stale.status_code == 409

    # the securities company's side now disagrees on the quantity: NMAT DQUA, then it amends
    match(csd, token[CSD], "F-1-DELI")
    assert "NMAT" in csd.get("/forms/F-1").text and "DQUA" in csd.get("/forms/F-1").text
    fixed = {**counterpart, "quantity": "600", "settlement_amount": "1710300"}
    assert (
        sec.post("/forms/F-1-DELI/amend", data={**fixed, "csrf": token[SECURITIES]}).status_code
        == 303
    )
    match(csd, token[CSD], "F-1-DELI")
    for client, party in ((cus, CUSTODIAN), (sec, SECURITIES), (csd, CSD)):
        assert (
            client.post(
                "/forms/F-1/approve", data={"csrf": token[party], "version": "2"}
            ).status_code
            == 303
        )
    final = csd.get("/forms/F-1").text
    assert "PACK" in final and final.count("OK — approved") == 3 and "600" in final
    assert 'id="ok"' not in final

    # the outsider: undecipherable, with the ciphertext's size and a hex excerpt
    outsider = out.get("/forms/F-1")
    assert outsider.status_code == 200
    assert "undecipherable for you" in outsider.text and "JP3633400001" not in outsider.text
    size = int(re.search(r'id="size">(\d+) bytes', outsider.text).group(1))  # type: ignore[union-attr]
    assert size > 100
    assert re.search(r'id="excerpt">[0-9a-f]{192}…', outsider.text)
    # ... and cannot act on it
    token_out = csrf_of(out)
    refused = out.post("/forms/F-1/cancel", data={"csrf": token_out})
    assert refused.status_code == 403 and "only the submitter" in html.unescape(refused.text)
    assert out.get("/forms/NOPE").status_code == 404


def test_cancel_after_an_ng(net: Net) -> None:
    am, cus = net.client(AM), net.client(CUSTODIAN)
    t_am, t_cus = csrf_of(am), csrf_of(cus)
    assert am.post("/forms", data={**trade("F-2"), "csrf": t_am}).status_code == 303
    cus.post("/forms/F-2/reject", data={"csrf": t_cus, "reason": "SAFE", "narrative": "unknown"})
    assert am.post("/forms/F-2/cancel", data={"csrf": t_am}).status_code == 303
    page = cus.get("/forms/F-2").text
    assert "CAND" in page and 'id="ok"' not in page


def test_ui_command_refuses_a_directory_without_a_network(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["ui", "--dir", str(tmp_path / "none")])
    assert result.exit_code == 2
    assert "run `kakehashi posttrade init" in " ".join(result.stderr.split())


def test_a_logout_holds_after_a_restart(net: Net) -> None:
    """Logging out is written to ui-revoked.log: a UI started again on the same directory
    still refuses the cookie; a session not logged out still works there."""
    am, custodian = net.client(AM), net.client(CUSTODIAN)
    ended = am.cookies[SESSION_COOKIE]
    assert am.post("/logout", data={"csrf": csrf_of(am)}).status_code == 303
    assert (net.directory / REVOKED_FILE).stat().st_mode & 0o777 == 0o600
    restarted = create_app(net.network, net.credentials)
    old = TestClient(restarted, follow_redirects=False)
    old.cookies.set(SESSION_COOKIE, ended)
    assert old.get("/inbox").headers["location"] == "/login"
    live = TestClient(restarted, follow_redirects=False)
    live.cookies.set(SESSION_COOKIE, custodian.cookies[SESSION_COOKIE])
    assert live.get("/inbox").status_code == 200


def test_revocations_drop_expired_lines_and_refuse_a_broken_file(tmp_path: Path) -> None:
    path = tmp_path / REVOKED_FILE
    old, fresh = new_session(AM, now=1_000), new_session(CSD, now=2_000_000_000)
    store = Revocations(path)
    store.add(old)
    store.add(fresh)
    store.add(fresh)  # once
    assert path.read_text().count("\n") == 2
    reopened = Revocations(path, now=old.expires + 1)
    assert old.sid not in reopened and fresh.sid in reopened
    assert path.read_text() == f"{fresh.sid} {fresh.expires}\n"  # the expired line dropped
    path.write_text("not-a-line\n")
    with pytest.raises(ConfigurationError, match="line 1"):
        Revocations(path)
