"""The post-trade web UI (issue 8, "Interfaces"): one screen per party, server-rendered.

A party logs in with its own secret (:mod:`kakehashi.ui.sessions`) and from then on every page
and every step uses *its* ledger client (``Network.ledger(party)``: its EVM key, its X25519 key),
so what a page shows is what that party's copy of the chain opens for it, and a step is sent
from its account. No request names the party it acts as: the party is the signed session's.

Pages: the inbox (``Notified`` events, forms with "your turn" marked), a form (instruction,
route and per-step status, processing / matching / settlement status, OK / NG when it is the
party's turn, amend / cancel for the submitter), the entry of a trade (asset manager) and its
amendment; a form the party cannot open shows that it is undecipherable and what it got.
Typed errors become a page with the message and a 4xx status, never a traceback.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from kakehashi.apps.posttrade.codes import (
    Direction,
    Payment,
    QuantityType,
    Role,
    meaning,
    rejection_reasons_for,
)
from kakehashi.apps.posttrade.form import Form, Instruction
from kakehashi.apps.posttrade.ledger import (
    FormState,
    FormStateError,
    Matching,
    NotOnRouteError,
    NotYourTurnError,
    PostTradeLedger,
    Processing,
    Settlement,
    StaleVersionError,
    UnknownFormError,
)
from kakehashi.errors import (
    ConfigurationError,
    FormError,
    KakehashiError,
    PostTradeError,
    UnknownPartyError,
    VerificationError,
)
from kakehashi.ui.sessions import (
    LOGIN_COOKIE,
    REVOKED_FILE,
    SESSION_COOKIE,
    SESSION_SECONDS,
    AuthError,
    Credentials,
    Revocations,
    Session,
    check_csrf,
    new_session,
    sign,
    verify,
)

if TYPE_CHECKING:
    from kakehashi.cli.posttrade import Network
    from kakehashi.cli.posttrade_dvp import DvpStatus, SettlementDesk

log = logging.getLogger(__name__)

FIELDS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("sender_reference", "Sender reference", ()),
    ("direction", "Deliver / receive", tuple(Direction)),
    ("payment", "Against payment / free", tuple(Payment)),
    ("trade_date", "Trade date", ()),
    ("settlement_date", "Settlement date", ()),
    ("isin", "ISIN", ()),
    ("quantity", "Quantity", ()),
    ("quantity_type", "Quantity type", tuple(QuantityType)),
    ("deal_price", "Deal price", ()),
    ("settlement_amount", "Settlement amount", ()),
    ("currency", "Currency", ()),
    ("safekeeping_account", "Safekeeping account", ()),
    ("delivering_agent", "Delivering agent (BIC)", ()),
    ("receiving_agent", "Receiving agent (BIC)", ()),
    ("place_of_settlement", "Place of settlement (BIC)", ()),
    ("counterparty", "Counterparty", ()),
)
"""The sese.023 fields of the entry form: name, label, choices (empty: free text)."""

ENTERING_ROLES = (Role.ASSET_MANAGER.value, Role.SECURITIES_COMPANY.value)
"""Who enters instructions: the trade's receiving and delivering sides."""

NOTICES = {
    "login": "Logged in.",
    "submitted": "Trade entered: every party on the route was notified.",
    "approved": "OK recorded on the chain.",
    "rejected": "NG recorded on the chain: the form went back to its submitter.",
    "amended": "New version entered: the route starts over.",
    "cancelled": "Form cancelled (CAND).",
    "matched": "Matching recorded on the chain.",
    "settlement": "Settlement moved on: see its status below.",
    "consented": "Your consent is given: the settlement runs once every settling party's is in.",
}


def _status_of(exc: KakehashiError) -> int:
    if isinstance(exc, AuthError):
        return 403 if "CSRF" in str(exc) else 401
    if isinstance(exc, UnknownFormError | UnknownPartyError):
        return 404
    if isinstance(exc, NotYourTurnError | NotOnRouteError):
        return 403
    if isinstance(exc, StaleVersionError | FormStateError):
        return 409
    if isinstance(exc, VerificationError):
        return 422
    return 400


def create_app(
    network: Network, credentials: Credentials, desk: SettlementDesk | None = None
) -> FastAPI:
    """The web UI over ``network`` (an opened network directory), parties logging in with
    ``credentials``; ``desk``: its settlement through the Cross Framework (a network with a
    settlement.json), None when the CSD records settlement by hand."""
    env = Environment(
        loader=PackageLoader("kakehashi.ui", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["meaning"] = _meaning
    app = FastAPI(title="Kakehashi post-trade", docs_url=None, redoc_url=None, openapi_url=None)
    ledgers: dict[str, PostTradeLedger] = {}
    revoked = Revocations(network.directory / REVOKED_FILE)

    def ledger_of(party: str) -> PostTradeLedger:
        if party not in ledgers:
            ledgers[party] = network.ledger(party)
        return ledgers[party]

    def role_of(party: str) -> str | None:
        role = network.parties.get(party, {}).get("role")
        return str(role) if role else None

    def render(
        name: str, status: int = 200, session: Session | None = None, **context: Any
    ) -> HTMLResponse:
        html = env.get_template(name).render(
            session=session,
            role=role_of(session.party) if session else None,
            **context,
        )
        return HTMLResponse(html, status_code=status)

    def current(request: Request) -> Session:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            raise AuthError("you are not logged in: log in as your party first")
        session = verify(cookie, credentials.server_secret)
        if session.sid in revoked or session.party not in network.parties:
            raise AuthError("this session has ended: log in again")
        return session

    async def posted(request: Request, session: Session | None) -> dict[str, str]:
        """The urlencoded form of a POST; its CSRF token checked against ``session``'s."""
        fields = {
            key: values[-1]
            for key, values in parse_qs(
                (await request.body()).decode("utf-8", errors="replace"), keep_blank_values=True
            ).items()
        }
        if session is not None:
            check_csrf(session, fields.get("csrf"))
        return fields

    def back_to(form_id: str, notice: str) -> RedirectResponse:
        return RedirectResponse(f"/forms/{quote(form_id, safe='')}?done={notice}", status_code=303)

    @app.exception_handler(KakehashiError)
    async def typed_error(request: Request, exc: KakehashiError) -> Response:
        status = _status_of(exc)
        if status == 401 and request.method == "GET":
            return RedirectResponse("/login", status_code=303)
        session = None
        with contextlib.suppress(KakehashiError):
            session = current(request)
        log.info("ui refused %s %s: %s", request.method, request.url.path, exc)
        return render(
            "error.html",
            status=status,
            session=session,
            kind=type(exc).__name__,
            message=str(exc),
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("ui error on %s %s", request.method, request.url.path)
        return render(
            "error.html",
            status=500,
            kind="internal error",
            message="the server could not complete this request; its log has the details",
        )

    # -- login ------------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse)
    async def home(request: Request) -> Response:
        try:
            current(request)
        except AuthError:
            return RedirectResponse("/login", status_code=303)
        return RedirectResponse("/inbox", status_code=303)

    def set_session_cookie(response: Response, name: str, session: Session, path: str) -> None:
        """``session`` signed into cookie ``name`` (HttpOnly, SameSite=Strict, for ``path``)."""
        response.set_cookie(
            name,
            sign(session, credentials.server_secret),
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="strict",
            path=path,
        )

    def login_form(pre: Session, status: int = 200, error: str | None = None) -> HTMLResponse:
        response = render(
            "login.html", status=status, parties=_party_rows(network), csrf=pre.csrf, error=error
        )
        set_session_cookie(response, LOGIN_COOKIE, pre, "/login")
        return response

    @app.get("/login", response_class=HTMLResponse)
    async def login_page() -> Response:
        # a pre-login session (no party) whose token the login form carries: a login POST
        # from another site, without that token, is refused (login CSRF)
        return login_form(new_session(""))

    @app.post("/login")
    async def login(request: Request) -> Response:
        try:
            pre = verify(request.cookies.get(LOGIN_COOKIE, ""), credentials.server_secret)
            fields = await posted(request, pre)
        except AuthError:
            return login_form(
                new_session(""),
                status=403,
                error="this login form has expired or did not come from this server (CSRF "
                "check): log in again",
            )
        party, secret = fields.get("party", ""), fields.get("secret", "")
        if not credentials.check_login(party, secret):
            return login_form(
                pre,
                status=401,
                error="wrong party or secret: use the secret written for your party in the "
                "network directory's ui-credentials.json",
            )
        session = new_session(party)
        response = RedirectResponse("/inbox?done=login", status_code=303)
        set_session_cookie(response, SESSION_COOKIE, session, "/")
        response.delete_cookie(LOGIN_COOKIE, path="/login")
        return response

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        session = current(request)
        await posted(request, session)
        revoked.add(session)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    # -- inbox ------------------------------------------------------------------------------
    @app.get("/inbox", response_class=HTMLResponse)
    async def inbox(request: Request, done: str = "") -> Response:
        session = current(request)
        ledger = ledger_of(session.party)
        notices = ledger.inbox()
        forms = ledger.forms()
        last = {n.form_id: n.what for n in notices}
        rows = []
        for state in forms:
            dvp = (
                settlement_of(state.form_id, session.party, state)
                if state.settlement is Settlement.PENDING
                else None
            )
            consent = dvp is not None and dvp.outcome is None and session.party in dvp.awaiting
            rows.append(
                {
                    "state": state,
                    "your_turn": state.awaiting == session.party,
                    "consent": consent,
                    "last": last.get(state.form_id, ""),
                }
            )
        return render(
            "inbox.html",
            session=session,
            notices=list(reversed(notices)),
            rows=rows,
            turns=sum(1 for row in rows if row["your_turn"] or row["consent"]),
            notice=NOTICES.get(done),
        )

    @app.get("/open")
    async def open_form(request: Request, form_id: str = "") -> Response:
        current(request)
        form_id = form_id.strip()
        if not form_id:
            raise UnknownFormError("enter a form id to open")
        return RedirectResponse(f"/forms/{quote(form_id, safe='')}", status_code=303)

    # -- entering a trade ---------------------------------------------------------------------
    def entry_page(
        session: Session,
        values: dict[str, str],
        *,
        amend: FormState | None = None,
        error: str | None = None,
        status: int = 200,
    ) -> HTMLResponse:
        return render(
            "entry.html",
            status=status,
            session=session,
            fields=FIELDS,
            values=values,
            amend=amend,
            error=error,
        )

    def require_submitter_role(session: Session) -> None:
        if role_of(session.party) not in ENTERING_ROLES:
            raise NotOnRouteError(
                f"{session.party!r} enters no instructions: only the trade's two sides (an "
                "asset manager, a securities company) do"
            )

    @app.get("/forms/new", response_class=HTMLResponse)
    async def new_form(request: Request) -> Response:
        session = current(request)
        require_submitter_role(session)
        from kakehashi.cli.posttrade import DEMO_ROUTE, sample_instruction

        values = dict(sample_instruction())
        values["form_id"] = ""
        values["route"] = ", ".join(DEMO_ROUTE)
        if role_of(session.party) == Role.SECURITIES_COMPANY.value:
            # the delivering side's instruction, for the CSD to match the trade against
            values.update(
                sender_reference="DS-2026-0001",
                direction=Direction.DELI.value,
                counterparty="Overseas AM",
                route=DEMO_ROUTE[-1],
            )
        return entry_page(session, values)

    @app.post("/forms", response_class=HTMLResponse)
    async def submit(request: Request) -> Response:
        session = current(request)
        fields = await posted(request, session)
        require_submitter_role(session)
        try:
            form = Form(
                fields.get("form_id", "").strip(),
                1,
                _instruction_of(fields),
                _route_of(fields.get("route", "")),
                session.party,
            )
            ledger_of(session.party).submit(form)
        except KakehashiError as exc:
            return entry_page(session, fields, error=str(exc), status=_status_of(exc))
        return back_to(form.form_id, "submitted")

    @app.get("/forms/{form_id}/amend", response_class=HTMLResponse)
    async def amend_page(request: Request, form_id: str) -> Response:
        session = current(request)
        view = ledger_of(session.party).show(form_id)
        _require_submitter(view.state, session.party)
        assert view.form is not None
        values = dict(view.form.instruction.to_json())
        values["form_id"] = form_id
        values["route"] = ", ".join(view.state.route)
        return entry_page(session, values, amend=view.state)

    @app.post("/forms/{form_id}/amend", response_class=HTMLResponse)
    async def amend(request: Request, form_id: str) -> Response:
        session = current(request)
        fields = await posted(request, session)
        ledger = ledger_of(session.party)
        state = ledger.state(form_id)
        _require_submitter(state, session.party)
        fields["form_id"] = form_id
        try:
            form = Form(
                form_id,
                state.version + 1,
                _instruction_of(fields),
                _route_of(fields.get("route", "")),
                session.party,
            )
            ledger.amend(form)
        except KakehashiError as exc:
            return entry_page(session, fields, amend=state, error=str(exc), status=_status_of(exc))
        return back_to(form_id, "amended")

    # -- a form ------------------------------------------------------------------------------
    @app.get("/forms/{form_id}", response_class=HTMLResponse)
    async def show(request: Request, form_id: str, done: str = "") -> Response:
        session = current(request)
        ledger = ledger_of(session.party)
        view = ledger.show(form_id)
        state = view.state
        if not view.readable:
            return render(
                "undecipherable.html",
                session=session,
                view=view,
                state=state,
                excerpt=view.envelope[:96].hex(),
            )
        role = role_of(session.party)
        reasons = (
            [(code.value, meaning(code)) for code in rejection_reasons_for(Role(role))]
            if role
            else []
        )
        history = ledger.history(form_id)
        dvp = settlement_of(form_id, session.party, state)
        return render(
            "form.html",
            dvp=dvp,
            can_settle=desk is not None
            and role == Role.CSD.value
            and state.processing is Processing.ACCEPTED
            and state.settlement is not Settlement.SETTLED,
            can_consent=dvp is not None
            and dvp.decision == "UNKNOWN"
            and session.party in dvp.awaiting,
            pays=dvp is not None and session.party == desk_party(dvp, "receiving"),
            session=session,
            view=view,
            state=state,
            fields=FIELDS,
            instruction=view.form.instruction.to_json() if view.form else {},
            your_turn=state.awaiting == session.party,
            is_submitter=state.submitter == session.party,
            can_amend=state.submitter == session.party
            and state.processing in (Processing.ON_ROUTE, Processing.REJECTED),
            can_match=role == Role.CSD.value
            and state.processing is Processing.ON_ROUTE
            and state.matching is not Matching.MATCHED,
            reasons=reasons,
            history=history,
            notice=NOTICES.get(done),
        )

    @app.post("/forms/{form_id}/approve")
    async def approve(request: Request, form_id: str) -> Response:
        session = current(request)
        fields = await posted(request, session)
        ledger_of(session.party).approve(form_id, _version_of(fields))
        return back_to(form_id, "approved")

    @app.post("/forms/{form_id}/reject")
    async def reject(request: Request, form_id: str) -> Response:
        session = current(request)
        fields = await posted(request, session)
        reason = fields.get("reason", "").strip()
        if not reason:
            raise FormError("reason", "choose a reason code for the NG")
        ledger_of(session.party).reject(
            form_id, reason, fields.get("narrative", "").strip(), _version_of(fields)
        )
        return back_to(form_id, "rejected")

    @app.post("/forms/{form_id}/match")
    async def match(request: Request, form_id: str) -> Response:
        session = current(request)
        fields = await posted(request, session)
        if role_of(session.party) != Role.CSD.value:
            raise NotOnRouteError(f"{session.party!r} is not the CSD: only the CSD matches")
        counterpart = fields.get("counterpart", "").strip() or None
        ledger_of(session.party).match_counterpart(form_id, counterpart)
        return back_to(form_id, "matched")

    def settlement_of(form_id: str, party: str, state: FormState) -> DvpStatus | None:
        """The form's settlement as ``party`` reads it, once started (None: not started, or
        no settlement desk)."""
        if desk is None or state.processing is not Processing.ACCEPTED:
            return None
        try:
            return desk.status(form_id, party)
        except PostTradeError:
            return None  # not started yet

    def desk_party(dvp: DvpStatus, side: str) -> str | None:
        return None if desk is None else desk.party_of(dvp.order, side)

    def settling_desk() -> SettlementDesk:
        if desk is None:
            raise ConfigurationError(
                "this network has no settlement.json: the CSD records settlement statuses "
                "with `kakehashi posttrade settle --status`"
            )
        return desk

    @app.post("/forms/{form_id}/settle")
    async def settle(request: Request, form_id: str) -> Response:
        session = current(request)
        await posted(request, session)
        if role_of(session.party) != Role.CSD.value:
            raise NotOnRouteError(f"{session.party!r} is not the CSD: only the CSD settles")
        settling_desk().advance(form_id, session.party)
        return back_to(form_id, "settlement")

    @app.post("/forms/{form_id}/consent")
    async def consent(request: Request, form_id: str) -> Response:
        session = current(request)
        fields = await posted(request, session)
        decline = fields.get("decline") == "yes"
        settling_desk().consent(form_id, session.party, decline=decline)
        return back_to(form_id, "consented")

    @app.post("/forms/{form_id}/cancel")
    async def cancel(request: Request, form_id: str) -> Response:
        session = current(request)
        await posted(request, session)
        ledger = ledger_of(session.party)
        _require_submitter(ledger.state(form_id), session.party)
        ledger.cancel(form_id)
        return back_to(form_id, "cancelled")

    return app


def _meaning(code: str | None) -> str:
    if not code:
        return ""
    try:
        return meaning(code)
    except KakehashiError:
        return ""


def _party_rows(network: Network) -> list[tuple[str, str]]:
    return [(name, str(info.get("role") or "no role")) for name, info in network.parties.items()]


def _instruction_of(fields: dict[str, str]) -> Instruction:
    return Instruction.from_json({name: fields.get(name, "").strip() for name, _, _ in FIELDS})


def _route_of(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _version_of(fields: dict[str, str]) -> int | None:
    text = fields.get("version", "").strip()
    if not text:
        return None
    if not text.isdigit():
        raise FormError("version", f"{text!r} is not a version number")
    return int(text)


def _require_submitter(state: FormState, party: str) -> None:
    if state.submitter != party:
        raise NotOnRouteError(
            f"only the submitter ({state.submitter}) may amend or cancel form {state.form_id!r}"
        )
