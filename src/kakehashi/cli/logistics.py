"""``kakehashi logistics``: the contract records on the EVM chain and their daily update from
the deliveries recorded on the Corda-model ledger (``kakehashi.apps.logistics``, docs/apps.md).

The ledgers are the ones a relayer configuration names (``--config``); a relayer linking that
path on port ``cross`` carries the checks. ``--key`` is the desk's EVM private key (hex file):
it deploys the registry, registers contracts, and initiates and signs each check.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from kakehashi.errors import ConfigurationError, KakehashiError

logistics_app = typer.Typer(
    help="Logistics: contract records on the EVM chain, updated from Corda delivery records.",
    no_args_is_help=True,
)
console = Console()
err_console = Console(stderr=True)

ConfigOption = Annotated[
    Path, typer.Option("--config", help="A relayer configuration naming both ledgers.")
]
KeyOption = Annotated[Path, typer.Option("--key", help="The desk's EVM private key (hex file).")]
RegistryOption = Annotated[
    str, typer.Option("--registry", help="The contract registry's address (logistics deploy).")
]
ChannelOption = Annotated[
    str, typer.Option("--channel", help="The EVM chain's cross channel to the Corda ledger.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _fail(exc: KakehashiError) -> None:
    err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
    raise typer.Exit(2)


def _account(key_file: Path) -> Any:
    from eth_account import Account

    try:
        return Account.from_key(key_file.read_text().strip())
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read an EVM key from {key_file}: {exc}") from None


def _registry(w3: Any, address: str) -> Any:
    from kakehashi.ledgers.evm import toolchain

    abi = toolchain.compile_contract("apps/logistics").abi
    return w3.eth.contract(address=cast(Any, address), abi=abi)


def _desk(config: Path, key: Path, registry: str, channel: str) -> Any:
    from kakehashi.apps.logistics.desk import LogisticsDesk
    from kakehashi.cli.tx import Ledgers
    from kakehashi.cross.corda_module import CROSS_PORT
    from kakehashi.cross.tx import ChannelInfo

    ledgers = Ledgers(config)
    records = _registry(ledgers.w3, registry)
    return LogisticsDesk(
        ledgers.w3,
        ledgers.cross,
        ledgers.app,
        records,
        _account(key),
        ChannelInfo(CROSS_PORT, channel),
    )


@logistics_app.command("deploy")
def deploy(config_path: ConfigOption, key_file: KeyOption) -> None:
    """Deploy the contract registry (contracts/apps/logistics.vy); prints its address."""
    from kakehashi.cli.tx import Ledgers
    from kakehashi.ledgers.evm import toolchain

    try:
        w3 = Ledgers(config_path).w3
        registry = toolchain.deploy(w3, "apps/logistics", sender=_account(key_file))
    except KakehashiError as exc:
        _fail(exc)
        return
    print(registry.address)


@logistics_app.command("register")
def register(
    contract_id: str,
    expected: int,
    config_path: ConfigOption,
    key_file: KeyOption,
    registry: RegistryOption,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Full disclosure: the Corda ledger answers with every delivery record (default: "
            "minimal disclosure, the answer is yes / no).",
        ),
    ] = False,
) -> None:
    """Register a contract completed by EXPECTED deliveries, with its privacy pattern."""
    from kakehashi.cli.tx import Ledgers
    from kakehashi.ledgers.evm.client import transact

    try:
        w3 = Ledgers(config_path).w3
        functions = _registry(w3, registry).functions
        register = (functions.register_full if full else functions.register)(contract_id, expected)
        transact(w3, register, sender=_account(key_file))
    except KakehashiError as exc:
        _fail(exc)
        return
    pattern = "full disclosure" if full else "minimal disclosure"
    console.print(
        f"registered {contract_id}: {expected} deliveries complete it ({pattern})", markup=False
    )


def _run(desk: Any, wait_s: float, as_json: bool) -> list[dict[str, Any]]:
    """One pass: initiate every check, then wait up to ``wait_s`` for the decisions."""
    from kakehashi.cross.status import Decision

    checks = desk.run_once()
    if not as_json:
        console.print(f"{time.strftime('%H:%M:%S')} {len(checks)} contract(s) to check")
    deadline = time.monotonic() + wait_s
    outcomes = {c.tx.tx_id: Decision.UNKNOWN for c in checks}
    while time.monotonic() < deadline and Decision.UNKNOWN in outcomes.values():
        time.sleep(0.5)
        outcomes = {c.tx.tx_id: desk.outcome(c) for c in checks}
    statuses = {cid: status for cid, _, status in desk.contracts()}

    def outcome(check: Any) -> str:
        decision = outcomes[check.tx.tx_id]
        if decision is Decision.COMMIT:
            return statuses[check.contract_id].decode(errors="replace")
        if decision is Decision.ABORT:
            return "unchanged (deliveries missing)"
        return "running"

    return [
        {
            "contract_id": c.contract_id,
            "pattern": "full" if c.full else "minimal",
            "tx_id": c.tx.tx_id.hex(),
            "outcome": outcome(c),
        }
        for c in checks
    ]


def _print(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print(json.dumps({"checks": rows}))
        return
    table = Table(title="delivery checks", title_justify="left")
    for column in ("contract", "disclosure", "outcome", "cross transaction"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["contract_id"], row["pattern"], row["outcome"], row["tx_id"][:16] + "…")
    console.print(table)


@logistics_app.command("record")
def record(
    contract_id: str,
    shipment_id: str,
    quantity: Annotated[int, typer.Argument(min=1, help="The quantity delivered.")],
    parties: Annotated[
        list[str],
        typer.Option(
            "--party", help="A party of the shipment (X.500 name; repeat for each).", min=1
        ),
    ],
    node: Annotated[str, typer.Option("--node", help="The carrier's node's URL.")],
    token_file: Annotated[
        Path, typer.Option("--token-file", help="The carrier node's rpc.token (in its folder).")
    ],
    as_json: JsonOption = False,
) -> None:
    """As a carrier: record a delivery on its own Corda node, shared with the shipment's
    parties only."""
    from kakehashi.cli.dvp import post_to_node

    body = {
        "contract_id": contract_id,
        "shipment_id": shipment_id,
        "quantity": quantity,
        "parties": parties,
    }
    try:
        answer = post_to_node(node, token_file, "/rpc/logistics/deliveries", body)
    except KakehashiError as exc:
        _fail(exc)
        return
    if as_json:
        print(json.dumps(answer))
    else:
        console.print(
            f"recorded {shipment_id} of {contract_id} ({quantity}) for {', '.join(parties)}: "
            f"transaction {answer['tx_id']}",
            markup=False,
        )


@logistics_app.command("run-now")
def run_now(
    config_path: ConfigOption,
    key_file: KeyOption,
    registry: RegistryOption,
    channel: ChannelOption,
    wait_s: Annotated[
        float, typer.Option("--wait", help="Seconds to wait for the decisions.")
    ] = 60.0,
    as_json: JsonOption = False,
) -> None:
    """Check every contract not yet delivered against the Corda ledger's deliveries, now."""
    try:
        _print(_run(_desk(config_path, key_file, registry, channel), wait_s, as_json), as_json)
    except KakehashiError as exc:
        _fail(exc)


@logistics_app.command("schedule")
def schedule(
    at: Annotated[str, typer.Option("--at", help="The time of day to run (HH:MM, local).")],
    config_path: ConfigOption,
    key_file: KeyOption,
    registry: RegistryOption,
    channel: ChannelOption,
    wait_s: Annotated[
        float, typer.Option("--wait", help="Seconds to wait for each run's decisions.")
    ] = 300.0,
) -> None:
    """Run the check every day at HH:MM until interrupted (Ctrl-C)."""
    from kakehashi.apps.logistics.desk import next_run

    try:
        desk = _desk(config_path, key_file, registry, channel)
        while True:
            when = next_run(at)
            console.print(f"next run at {when:%Y-%m-%d %H:%M}", markup=False)
            time.sleep(max(0.0, (when - dt.datetime.now()).total_seconds()))
            try:
                _print(_run(desk, wait_s, False), False)
            except KakehashiError as exc:  # one failed run does not stop the schedule
                err_console.print(f"[bold red]run failed:[/] {escape(str(exc))}", soft_wrap=True)
    except KakehashiError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        console.print("schedule stopped")
