"""``kakehashi posttrade``: settlement instructions on the EVM chain, encrypted for their approval
route, each step taken by a named party from its own keys (``kakehashi.apps.posttrade.ledger``,
docs/posttrade.md "On the EVM chain").

A *network directory* (``--dir``, default ``$KAKEHASHI_POSTTRADE_DIR`` or ``./posttrade``),
made by ``kakehashi posttrade init``, holds:

* ``network.json``: the contract's address, the chain (``rpc``: a JSON-RPC URL, or ``null`` for
  the embedded chain kept in ``chain/``) and the parties (name, role, EVM account);
* ``parties/<name>/evm.key`` and ``parties/<name>/x25519.key``: each party's own keys (files
  only their owner can read); ``operator/evm.key``: the key that deployed the contract and
  registered the parties;
* ``sample-trade.json``: an instruction (ISO 20022 sese.023 fields) to submit or edit.

Every step acts ``--as NAME``: it sends from that party's account and opens envelopes with its
X25519 key only. Refusals (a typed error) exit with status 2 and say what to do.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from kakehashi.errors import ConfigurationError, KakehashiError

if TYPE_CHECKING:
    from kakehashi.apps.posttrade.form import Instruction
    from kakehashi.apps.posttrade.ledger import FormState, FormView, PostTradeLedger

posttrade_app = typer.Typer(
    help="Post-trade: settlement instructions shared on the EVM chain, encrypted for their "
    "approval route; approve / reject / amend / cancel as a named party.",
    no_args_is_help=True,
)
console = Console()
err_console = Console(stderr=True)

NETWORK_FILE = "network.json"
SAMPLE_TRADE = "sample-trade.json"

DEMO_PARTIES: tuple[tuple[str, str | None], ...] = (
    ("asset-manager", "ASSET_MANAGER"),
    ("custodian", "CUSTODIAN"),
    ("securities", "SECURITIES_COMPANY"),
    ("csd", "CSD"),
    ("outsider", None),
)
"""The demo network's parties and roles (None: a ledger member with no post-trade role)."""

DEMO_ROUTE = ("custodian", "securities", "csd")
DEV_ACCOUNT_COUNT = 10  # the development mnemonic's accounts a dev chain funds

_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


def _default_dir() -> Path:
    return Path(os.environ.get("KAKEHASHI_POSTTRADE_DIR", "posttrade"))


DirOption = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        help="The network directory (posttrade init); default $KAKEHASHI_POSTTRADE_DIR or "
        "./posttrade.",
    ),
]
AsOption = Annotated[str, typer.Option("--as", help="The party acting (its name).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
VersionOption = Annotated[
    int | None,
    typer.Option(
        "--version",
        min=1,
        help="The version you decide on (default: the current one, opened and checked now); "
        "refused when it is no longer current.",
    ),
]


def _fail(exc: KakehashiError) -> None:
    err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
    raise typer.Exit(2)


def slug(name: str) -> str:
    """A party name as a directory name."""
    return _SLUG.sub("_", name).strip("_") or "party"


def _write_secret(path: Path, text: str) -> None:
    """Write ``text`` to a file only its owner can read, from the moment it exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text + "\n")


def _read_hex(path: Path, what: str) -> bytes:
    try:
        return bytes.fromhex(path.read_text().strip().removeprefix("0x"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read {what} from {path}: {exc}") from None


# ------------------------------------------------------------------------------ the network
@dataclass
class Network:
    """An opened network directory: web3 on its chain, the contract, the parties' keys.

    Open it with :func:`open_network` (a context manager: it closes the embedded chain)."""

    directory: Path
    w3: Any
    contract: Any
    parties: dict[str, dict[str, Any]]

    def ledger(self, name: str) -> PostTradeLedger:
        """The client acting as ``name`` with its own keys from the directory."""
        from eth_account import Account

        from kakehashi.apps.posttrade.ledger import PostTradeLedger

        if name not in self.parties:
            known = ", ".join(self.parties) or "none"
            raise ConfigurationError(
                f"no party {name!r} in {self.directory / NETWORK_FILE} (parties: {known})"
            )
        folder = self.directory / "parties" / slug(name)
        account = Account.from_key(_read_hex(folder / "evm.key", f"{name}'s EVM key"))
        private = _read_hex(folder / "x25519.key", f"{name}'s X25519 key")
        return PostTradeLedger(self.w3, self.contract, name, account, private)


@contextmanager
def open_network(directory: Path) -> Iterator[Network]:
    """The network of ``directory`` (made by ``posttrade init``), its chain open."""
    from kakehashi.apps.posttrade.ledger import contract_at

    path = directory / NETWORK_FILE
    try:
        config = json.loads(path.read_text())
        address, rpc_url, parties = config["contract"], config["rpc"], config["parties"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(
            f"no post-trade network at {directory} ({exc}); run `kakehashi posttrade init "
            f"{directory}` first or pass --dir"
        ) from None
    with _chain(directory, rpc_url) as w3:
        yield Network(directory, w3, contract_at(w3, address), parties)


@contextmanager
def _chain(directory: Path, rpc_url: str | None) -> Iterator[Any]:
    if rpc_url:
        from kakehashi.ledgers.evm.client import connect

        yield connect(rpc_url)
        return
    from kakehashi.ledgers.evm.chain import EmbeddedChain
    from kakehashi.ledgers.evm.provider import embedded_web3

    with EmbeddedChain(directory / "chain") as chain:
        yield embedded_web3(chain)


def init_network(
    directory: Path, rpc_url: str | None = None, *, first_account: int = 1
) -> dict[str, Any]:
    """Make a demo network in ``directory``: deploy the contract (from the development
    mnemonic's account 0), give each demo party an EVM account (accounts ``first_account``
    on, 1 to 5 by default: funded on a development chain) and a fresh X25519 key pair,
    register them; returns network.json."""
    from kakehashi.apps.posttrade import sealing
    from kakehashi.apps.posttrade.codes import Role
    from kakehashi.apps.posttrade.ledger import deploy, register_party
    from kakehashi.ledgers.evm.chain import dev_accounts

    if (directory / NETWORK_FILE).exists() or (directory / "chain").exists():
        raise ConfigurationError(
            f"{directory} already holds a post-trade network; choose an empty directory"
        )
    directory.mkdir(parents=True, exist_ok=True)
    accounts = dev_accounts()
    operator = accounts[0]
    parties: dict[str, dict[str, Any]] = {}
    with _chain(directory, rpc_url) as w3:
        contract = deploy(w3, operator)
        for i, (name, role) in enumerate(DEMO_PARTIES, start=1):
            private, public = sealing.generate_keypair()
            account = accounts[first_account - 1 + i]
            register_party(
                w3, contract, operator, name, account.address, public, Role(role) if role else None
            )
            folder = directory / "parties" / slug(name)
            _write_secret(folder / "evm.key", account.key.hex())
            _write_secret(folder / "x25519.key", private.hex())
            parties[name] = {"role": role, "account": account.address, "x25519": public.hex()}
    _write_secret(directory / "operator" / "evm.key", operator.key.hex())
    config = {"contract": contract.address, "rpc": rpc_url, "parties": parties}
    (directory / NETWORK_FILE).write_text(json.dumps(config, indent=2) + "\n")
    (directory / SAMPLE_TRADE).write_text(json.dumps(sample_instruction(), indent=2) + "\n")
    return config


def sample_instruction() -> dict[str, str]:
    """An instruction to start from (the demo's): the asset manager receives 1,000 Toyota
    shares against JPY through the Japanese CSD."""
    from kakehashi.apps.posttrade.demo import sample_instruction as demo_instruction

    return demo_instruction().to_json()


def _instruction(path: Path) -> Instruction:
    from kakehashi.apps.posttrade.form import Instruction

    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read the trade from {path}: {exc}") from None
    return Instruction.from_json(raw)


def _route(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


# ------------------------------------------------------------------------------ printing
def _print_state(state: FormState, who: str) -> None:
    from kakehashi.apps.posttrade.codes import meaning

    console.print(
        f"[bold]form {escape(state.form_id)}[/] version {state.version}  "
        f"submitter {escape(state.submitter)}  processing: [bold]{escape(state.processing.label)}"
        "[/]",
        soft_wrap=True,
    )
    extra = []
    if state.matching.iso:
        extra.append(f"matching: {state.matching.iso} ({meaning(state.matching.iso)})")
    if state.settlement.iso:
        reason = f", {state.settlement_reason}" if state.settlement_reason else ""
        extra.append(f"settlement: {state.settlement.iso}{reason}")
    if extra:
        console.print("  " + "; ".join(extra), markup=False)
    table = Table(title="route", title_justify="left")
    for column in ("step", "party", "status", "reason"):
        table.add_column(column)
    marks = {
        "approved": "[green]OK[/]",
        "rejected": "[red]NG[/]",
        "awaiting": "[yellow]awaiting[/]",
    }
    for step in state.steps:
        reason = f"{step.reason} ({meaning(step.reason)})" if step.reason else ""
        party = step.party + (" (you)" if step.party == who else "")
        table.add_row(
            str(step.index + 1),
            escape(party),
            marks.get(step.state, step.state),
            escape(reason),
        )
    console.print(table)


def _print_view(view: FormView, who: str) -> None:
    _print_state(view.state, who)
    if view.narrative is not None and view.state.rejected_by:
        console.print(
            f"NG narrative from {view.state.rejected_by}: {view.narrative}",
            markup=False,
            soft_wrap=True,
        )
    if not view.readable:
        console.print(f"[bold red]{escape(view.refusal or 'unreadable')}[/]", soft_wrap=True)
        console.print(
            f"envelope: {len(view.envelope)} bytes of ciphertext, sha256 "
            f"{view.state.envelope_digest.hex()}, begins {view.envelope[:24].hex()}…",
            markup=False,
            soft_wrap=True,
        )
        return
    assert view.form is not None
    table = Table(title="settlement instruction (sese.023)", title_justify="left")
    table.add_column("field")
    table.add_column("value")
    for key, value in view.form.instruction.to_json().items():
        table.add_row(key, escape(value))
    console.print(table)
    console.print(f"version hash {view.state.version_hash.hex()} (checked)", markup=False)


def _step_as(
    party: str,
    directory: Path | None,
    step: Callable[[PostTradeLedger], FormState],
    what: str,
    as_json: bool,
) -> None:
    """Take ``step`` as ``party`` (its own keys) on the network of ``directory`` and print the
    form's state after it; a refusal exits 2 with its message."""
    try:
        with open_network(directory or _default_dir()) as net:
            state = step(net.ledger(party))
    except KakehashiError as exc:
        _fail(exc)
        return
    _done(state, what, as_json)


def _done(state: Any, what: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps(state.as_dict()))
        return
    after = f"; awaiting {state.awaiting}" if state.awaiting else ""
    if state.matching.iso:
        after += f"; matching {state.matching.iso}"
    if state.settlement.iso:
        why = f" ({state.settlement_reason})" if state.settlement_reason else ""
        after += f"; settlement {state.settlement.iso}{why}"
    console.print(
        f"{what}: form {state.form_id} version {state.version} is {state.processing.label}{after}",
        markup=False,
        soft_wrap=True,
    )


# ------------------------------------------------------------------------------ commands
@posttrade_app.command("init")
def init(
    directory: Annotated[Path, typer.Argument(help="An empty directory for the network.")],
    rpc: Annotated[
        str | None,
        typer.Option(
            "--rpc",
            help="A development EVM node's JSON-RPC URL (its dev accounts funded); default: an "
            "embedded chain kept in DIRECTORY/chain.",
        ),
    ] = None,
    first_account: Annotated[
        int,
        typer.Option(
            "--first-account",
            min=1,
            max=DEV_ACCOUNT_COUNT - len(DEMO_PARTIES),
            help="The development account of the first party (the others follow): keep the "
            "parties apart from accounts other processes send from (a relayer's).",
        ),
    ] = 1,
    as_json: JsonOption = False,
) -> None:
    """Make a demo network: deploy the contract, register the asset manager, custodian,
    securities company, CSD and an outsider, each with its own keys."""
    try:
        config = init_network(directory, rpc, first_account=first_account)
    except KakehashiError as exc:
        _fail(exc)
        return
    if as_json:
        print(json.dumps(config))
        return
    console.print(f"post-trade contract {config['contract']}", markup=False)
    table = Table(title=f"parties ({directory / 'parties'})", title_justify="left")
    for column in ("name", "role", "EVM account"):
        table.add_column(column)
    for name, party in config["parties"].items():
        table.add_row(escape(name), party["role"] or "(none)", party["account"])
    console.print(table)
    console.print(
        f"edit {directory / SAMPLE_TRADE} and submit it: kakehashi posttrade submit F-1 "
        f"--as asset-manager --trade {directory / SAMPLE_TRADE} --route "
        f"{','.join(DEMO_ROUTE)} --dir {directory}",
        markup=False,
        soft_wrap=True,
    )


TradeOption = Annotated[
    Path, typer.Option("--trade", help="The instruction: a JSON file of sese.023 fields.")
]


@posttrade_app.command("submit")
def submit(
    form_id: Annotated[str, typer.Argument(help="The new form's id (1-64 characters).")],
    party: AsOption,
    trade: TradeOption,
    route: Annotated[
        str,
        typer.Option("--route", help="The approval route: party names, comma-separated, CSD last."),
    ] = ",".join(DEMO_ROUTE),
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Enter a trade and its route (version 1): every party on the route is notified."""
    from kakehashi.apps.posttrade.form import Form

    _step_as(
        party,
        directory,
        lambda ledger: ledger.submit(Form(form_id, 1, _instruction(trade), _route(route), party)),
        f"{party} submitted",
        as_json,
    )


@posttrade_app.command("amend")
def amend(
    form_id: str,
    party: AsOption,
    trade: TradeOption,
    route: Annotated[
        str | None,
        typer.Option("--route", help="A new route (default: the current one)."),
    ] = None,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """The submitter's new version (after an NG, or while on the route): sealed for the new
    route only; the route starts over."""
    from kakehashi.apps.posttrade.form import Form

    try:
        with open_network(directory or _default_dir()) as net:
            ledger = net.ledger(party)
            current = ledger.state(form_id)
            new: Form = Form(
                form_id,
                current.version + 1,
                _instruction(trade),
                _route(route) if route else current.route,
                party,
            )
            state = ledger.amend(new)
    except KakehashiError as exc:
        _fail(exc)
        return
    _done(state, f"{party} amended", as_json)


@posttrade_app.command("show")
def show(
    form_id: str,
    party: AsOption,
    directory: DirOption = None,
    envelope: Annotated[
        Path | None,
        typer.Option(
            "--envelope",
            help="An envelope handed over by someone (a file of its bytes) instead of the "
            "chain's copy; checked against the digest on chain.",
        ),
    ] = None,
    history: Annotated[bool, typer.Option("--history", help="Also every step so far.")] = False,
    as_json: JsonOption = False,
) -> None:
    """The form as PARTY sees it: route, statuses and — for the route's parties and the
    submitter only — the instruction; anyone else gets the ciphertext and "not a recipient"."""
    try:
        given = None
        if envelope is not None:
            try:
                given = envelope.read_bytes()
            except OSError as exc:
                raise ConfigurationError(f"cannot read the envelope {envelope}: {exc}") from None
        with open_network(directory or _default_dir()) as net:
            ledger = net.ledger(party)
            view = ledger.show(form_id, envelope=given)
            steps = ledger.history(form_id) if history or as_json else []
    except KakehashiError as exc:
        _fail(exc)
        return
    if as_json:
        out = view.as_dict()
        out["history"] = [
            {"event": h.event, "party": h.party, "version": h.version, **h.detail} for h in steps
        ]
        print(json.dumps(out))
        return
    _print_view(view, party)
    if history:
        for h in steps:
            console.print(f"  block {h.block}: {_history_line(h)}", markup=False, soft_wrap=True)


def _history_line(h: Any) -> str:
    words = [h.event + (f" v{h.version}" if h.version else "")]
    if h.party:
        words.append(f"by {h.party}")
    detail = h.detail
    if "step" in detail:
        words.append(f"at step {detail['step'] + 1}")
    if "route" in detail:
        words.append("route " + " → ".join(detail["route"]))
    if detail.get("reason"):
        words.append(f"reason {detail['reason']}")
    if "matched" in detail:
        words.append("MACH" if detail["matched"] else "NMAT " + " ".join(detail["codes"]))
    if detail.get("status"):
        words.append(detail["status"])
    if detail.get("evidence"):
        words.append(f"cross transaction {detail['evidence']}")
    return " ".join(words)


@posttrade_app.command("approve")
def approve(
    form_id: str,
    party: AsOption,
    version: VersionOption = None,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """OK at your step: bound to the version you opened and its hash."""
    _step_as(
        party,
        directory,
        lambda ledger: ledger.approve(form_id, version),
        f"{party} approved (OK)",
        as_json,
    )


@posttrade_app.command("reject")
def reject(
    form_id: str,
    party: AsOption,
    reason: Annotated[
        str,
        typer.Option(
            "--reason",
            help="The ISO 20022 reason code (custodian: MONY CASH SAFE DDAT; securities "
            "company: LACK DQUA DSEC; CSD: CMIS DMON DEPT NCRR; anyone: DTRD REFE OTHR).",
        ),
    ],
    narrative: Annotated[
        str, typer.Option("--narrative", help="Free text, sealed for the route's parties.")
    ] = "",
    version: VersionOption = None,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """NG at your step with a reason code and a narrative: the form returns to the submitter."""
    _step_as(
        party,
        directory,
        lambda ledger: ledger.reject(form_id, reason, narrative, version),
        f"{party} rejected (NG {reason.upper()})",
        as_json,
    )


@posttrade_app.command("cancel")
def cancel(
    form_id: str,
    party: AsOption,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """The submitter cancels the form (CAND)."""
    _step_as(party, directory, lambda ledger: ledger.cancel(form_id), f"{party} cancelled", as_json)


@posttrade_app.command("list")
def list_forms(
    party: AsOption,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """PARTY's inbox: the forms it was notified of, newest first, and whose turn it is."""
    try:
        with open_network(directory or _default_dir()) as net:
            ledger = net.ledger(party)
            notices = ledger.inbox()
            forms = ledger.forms()
    except KakehashiError as exc:
        _fail(exc)
        return
    last = {n.form_id: n for n in notices}
    if as_json:
        rows = []
        for state in forms:
            row = state.as_dict()
            row["your_turn"] = state.awaiting == party
            row["last_notice"] = last[state.form_id].what
            rows.append(row)
        print(json.dumps({"party": party, "forms": rows, "notifications": len(notices)}))
        return
    if not forms:
        console.print(f"no forms for {party}", markup=False)
        return
    table = Table(title=f"{party}'s forms", title_justify="left")
    for column in ("form", "version", "processing", "awaiting", "matching", "settlement", "last"):
        table.add_column(column)
    for state in forms:
        awaiting = state.awaiting or ""
        if awaiting == party:
            awaiting = "[bold yellow]you[/]"
        else:
            awaiting = escape(awaiting)
        table.add_row(
            escape(state.form_id),
            str(state.version),
            escape(state.processing.label),
            awaiting,
            state.matching.iso or "",
            state.settlement.iso or "",
            last[state.form_id].what,
        )
    console.print(table)


@posttrade_app.command("match")
def match_forms(
    form_id: str,
    party: AsOption,
    counterpart: Annotated[
        str | None,
        typer.Argument(help="The counterparty's instruction (its form id); none: CMIS."),
    ] = None,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """As the CSD: match FORM_ID against the counterparty's instruction on the CSDR fields
    and record MACH, or NMAT with the unmatched codes, on the chain."""
    from kakehashi.apps.posttrade.codes import meaning

    try:
        with open_network(directory or _default_dir()) as net:
            result = net.ledger(party).match_counterpart(form_id, counterpart)
    except KakehashiError as exc:
        _fail(exc)
        return
    rows = [
        {"code": m.code.value, "field": m.field, "ours": m.ours, "theirs": m.theirs}
        for m in result.mismatches
    ]
    if as_json:
        print(json.dumps({"form_id": form_id, "status": result.status.value, "mismatches": rows}))
        return
    console.print(
        f"form {form_id}: {result.status.value} ({meaning(result.status.value)})", markup=False
    )
    if rows:
        table = Table(title="mismatches (delivering / receiving)", title_justify="left")
        for column in ("code", "field", "delivering", "receiving"):
            table.add_column(column)
        for row in rows:
            table.add_row(row["code"], row["field"], escape(row["ours"]), escape(row["theirs"]))
        console.print(table)


def _print_dvp(status: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(status.as_dict()))
        return
    order = status.order
    console.print(
        f"form {status.form_id}: {order.quantity} {order.isin} from {order.delivering.name} "
        f"against {order.amount} {order.currency} from {order.receiving.name}",
        markup=False,
        soft_wrap=True,
    )
    decision = {None: "not known to the IBC host", "UNKNOWN": "undecided"}.get(
        status.decision, status.decision
    )
    console.print(
        f"  cross transaction {status.tx_id.hex()} (attempt {status.attempt}): {decision}"
        + (", every part told" if status.done else ""),
        markup=False,
        soft_wrap=True,
    )
    if status.outcome is None and status.awaiting:
        console.print(
            "  awaiting the consent of " + ", ".join(status.awaiting) + " (kakehashi posttrade "
            f"consent {status.form_id} --as NAME)",
            markup=False,
            soft_wrap=True,
        )
    elif status.outcome is None and status.decision == "UNKNOWN":
        console.print(
            "  every consent is given: the relayer carries the rest; `kakehashi posttrade "
            f"settle {status.form_id} --as CSD --wait 60` records the outcome",
            markup=False,
            soft_wrap=True,
        )
    if status.outcome is not None:
        reason = f" {status.outcome.reason}" if status.outcome.reason else ""
        console.print(
            f"  {status.outcome.status.value}{reason}: {status.outcome.message}",
            markup=False,
            soft_wrap=True,
        )
    if status.state is not None and status.state.settlement.iso:
        console.print(f"  recorded on the chain: {status.state.settlement.iso}", markup=False)


@contextmanager
def _desk(directory: Path) -> Iterator[Any]:
    """The settlement desk of a network directory with a settlement.json."""
    from kakehashi.cli.posttrade_dvp import SETTLEMENT_FILE, SettlementDesk, load_settlement

    config = load_settlement(directory)
    if config is None:
        raise ConfigurationError(
            f"{directory} has no {SETTLEMENT_FILE}: this network settles by hand (kakehashi "
            "posttrade settle FORM --as CSD --status SETT|PENF|PEND); docs/posttrade.md says how "
            "to give it one"
        )
    with open_network(directory) as net:
        yield SettlementDesk(net, config)


@posttrade_app.command("settle")
def settle(
    form_id: str,
    party: AsOption,
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            help="Record PEND, PENF or SETT by hand (a network without settlement.json only).",
        ),
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why it fails (PENF): LACK, MONY, CLAC, CMON.")
    ] = None,
    wait: Annotated[
        float,
        typer.Option(
            "--wait",
            min=0,
            help="Seconds to wait for the cross transaction's outcome before returning (it is "
            "recorded once there).",
        ),
    ] = 0.0,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """As the CSD, the next step of an accepted form's settlement: with settlement.json, start
    the DVP through the Cross Framework (the settling parties then consent), and — once the
    IBC host has decided — record SETT or PENF with its reason; a failed one starts again.
    Without it, --status records a status by hand."""
    from kakehashi.apps.posttrade.ledger import Settlement
    from kakehashi.cli.posttrade_dvp import load_settlement

    where = directory or _default_dir()
    statuses = {s.iso: s for s in Settlement if s.iso}
    try:
        if status is None:
            with _desk(where) as desk:
                progress = desk.advance(form_id, party, wait_s=wait)
            _print_dvp(progress, as_json)
            return
        if load_settlement(where) is not None:
            raise ConfigurationError(
                f"{where} settles through the Cross Framework: run `kakehashi posttrade settle "
                f"{form_id} --as {party}` without --status"
            )
        if status.upper() not in statuses:
            raise ConfigurationError(f"--status {status!r}: use one of {', '.join(statuses)}")
        with open_network(where) as net:
            state = net.ledger(party).record_settlement(
                form_id, statuses[status.upper()], reason.upper() if reason else None
            )
    except KakehashiError as exc:
        _fail(exc)
        return
    _done(state, f"{party} recorded {status.upper()}", as_json)


@posttrade_app.command("consent")
def consent(
    form_id: str,
    party: AsOption,
    decline: Annotated[
        bool,
        typer.Option(
            "--decline",
            help="Sign without putting up the cash or the shares: the settlement fails now "
            "(PENF) rather than at its timeout.",
        ),
    ] = False,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """As a settling party, consent to a started settlement: the receiving agent's party
    deposits the cash on its Corda node and signs; the delivering agent's party approves the
    shares for the cross application and signs on the EVM chain. Each first checks that the
    transaction settles the form exactly as it reads it."""
    try:
        with _desk(directory or _default_dir()) as desk:
            progress = desk.consent(form_id, party, decline=decline)
    except KakehashiError as exc:
        _fail(exc)
        return
    _print_dvp(progress, as_json)


@posttrade_app.command("settlement")
def settlement_status(
    form_id: str,
    party: AsOption,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Where a form's settlement stands, read as PARTY (on its route): the cross transaction,
    the IBC host's decision, whose consent it awaits, the outcome."""
    try:
        with _desk(directory or _default_dir()) as desk:
            progress = desk.status(form_id, party)
    except KakehashiError as exc:
        _fail(exc)
        return
    _print_dvp(progress, as_json)
