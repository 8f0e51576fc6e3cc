"""The ``kakehashi`` command line."""

from __future__ import annotations

import logging
import os
import secrets
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlparse

import typer
from rich.console import Console
from rich.markup import escape

from kakehashi import __version__
from kakehashi.cli.dvp import dvp_app
from kakehashi.cli.evm import evm_app
from kakehashi.cli.lcp import lcp_app
from kakehashi.cli.logistics import logistics_app
from kakehashi.cli.posttrade import posttrade_app
from kakehashi.cli.posttrade_up import up as posttrade_up
from kakehashi.cli.relayer import ibc_app, relayer_app
from kakehashi.cli.tx import tx_app
from kakehashi.cli.ui import ui
from kakehashi.errors import ConfigurationError, KakehashiError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from kakehashi.ledgers.corda.node.node import Node

app = typer.Typer(
    help="Kakehashi (架け橋): one business transaction across an EVM chain and a Corda-model "
    "ledger, verified by each ledger itself.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
corda_app = typer.Typer(help="Run and use a Corda-model network.", no_args_is_help=True)
app.add_typer(corda_app, name="corda")
app.add_typer(evm_app, name="evm")
app.add_typer(lcp_app, name="lcp")
app.add_typer(relayer_app, name="relayer")
app.add_typer(ibc_app, name="ibc")
app.add_typer(tx_app, name="tx")
app.add_typer(logistics_app, name="logistics")
app.add_typer(dvp_app, name="dvp")
posttrade_app.command("up")(posttrade_up)
app.add_typer(posttrade_app, name="posttrade")
app.command("ui")(ui)
demo_app = typer.Typer(
    help="Demos: with no command, the Corda-model stablecoin story; `ping` for packets across "
    "both ledgers; `dvp` for the stablecoin against an NFT across both; `logistics` for the "
    "daily contract-status update.",
    invoke_without_command=True,
)
app.add_typer(demo_app, name="demo")

console = Console()
err_console = Console(stderr=True)


def _fail(exc: KakehashiError) -> None:
    # User input and file contents are no rich markup; long paths must not be broken either.
    err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
    raise typer.Exit(2)


@app.command()
def version() -> None:
    """Print the Kakehashi version."""
    console.print(f"kakehashi {__version__}")


DirOption = Annotated[
    Path | None,
    typer.Option("--dir", help="Where the demo keeps its databases and logs (default: temp)."),
]


@demo_app.callback()
def demo(ctx: typer.Context, directory: DirOption = None) -> None:
    """Run the demo: a stablecoin issued, pre-split and paid on an embedded Corda-model network."""
    if ctx.invoked_subcommand is not None:
        return
    from kakehashi.cli.demo import run_demo

    try:
        if directory is None:
            with tempfile.TemporaryDirectory(prefix="kakehashi-demo-") as tmp:
                run_demo(Path(tmp), console)
        else:
            run_demo(directory, console)
    except KakehashiError as exc:
        _fail(exc)


@demo_app.command("ping")
def demo_ping(
    directory: DirOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object (ok, steps, packets).")
    ] = False,
    packets: Annotated[int, typer.Option(min=1, max=50, help="Packets each way.")] = 2,
) -> None:
    """Both ledgers, the LCP service and a relayer as processes; packets cross both ways."""
    import json

    from kakehashi.cli.ping import Step, run_ping

    def show(step: Step) -> None:
        if not as_json:
            console.print(
                f"[green]✓[/] {escape(step.name)} [dim]({step.ledger}, {step.seconds:.2f} s)[/]"
            )

    if not as_json:
        console.rule("[bold]Kakehashi · ping across the EVM chain and the Corda-model ledger")
    if directory is None:
        with tempfile.TemporaryDirectory(prefix="kakehashi-ping-") as tmp:
            result = run_ping(Path(tmp), packets=packets, progress=show)
    else:
        result = run_ping(directory, packets=packets, progress=show)
    if as_json:
        print(json.dumps(result))
    else:
        for packet in result["packets"]:
            mark = (
                "[green]acknowledged[/]" if packet["acknowledged"] else "[red]not acknowledged[/]"
            )
            console.print(
                f"  {packet['direction']:11} #{packet['sequence']} {escape(packet['data'])!r} "
                f"→ ack {escape(str(packet['acknowledgement']))!r}: {mark}"
            )
        if result.get("error"):
            err_console.print(f"[bold red]error:[/] {escape(result['error'])}", soft_wrap=True)
        console.print("[bold green]ok[/]" if result["ok"] else "[bold red]failed[/]")
    if not result["ok"]:
        raise typer.Exit(1)


def _app_demo(
    title: str,
    directory: Path | None,
    as_json: bool,
    run: Any,
    summary: Any,
) -> None:
    """Run an application demo (``run(directory, show)`` → DemoResult) in ``directory`` (a
    temporary one by default): its steps as they happen, then ``summary(result)`` and the
    round-trip breakdown — or one JSON object; exit 1 unless it went as intended."""
    import json

    from kakehashi.apps.result import Step

    def show(step: Step) -> None:
        if not as_json:
            console.print(
                f"[green]✓[/] {escape(step.name)} [dim]({step.ledger}, {step.seconds:.2f} s)[/]"
            )

    if not as_json:
        console.rule(f"[bold]Kakehashi · {escape(title)}")
    try:
        if directory is None:
            with tempfile.TemporaryDirectory(prefix="kakehashi-demo-") as tmp:
                result = run(Path(tmp), show)
        else:
            result = run(directory, show)
    except KakehashiError as exc:
        _fail(exc)
        return
    if as_json:
        print(json.dumps(result.as_dict()))
    else:
        summary(result)
        if result.failure:
            console.print(f"why: {escape(result.failure)}")
        rt = result.round_trip
        console.print(
            f"round trip ({rt['formula']}): Corda {rt['corda_ms']} ms, EVM {rt['evm_ms']} ms, "
            f"relayer/LCP {rt['relayer_lcp_ms']} ms; sum {rt['sum_ms']} ms; end to end "
            f"{rt['end_to_end_ms']} ms; overhead ratio {rt['overhead_ratio']}",
            markup=False,
        )
        console.print("[bold green]ok[/]" if result.ok else "[bold red]failed[/]")
    if not result.ok:
        raise typer.Exit(1)


def _listed(fail_at: str | None, scenarios: dict[str, str]) -> bool:
    """``--fail-at list``: print a demo's failure scenarios (and say so)."""
    if fail_at != "list":
        return False
    width = max(map(len, scenarios)) + 2
    for name, what in scenarios.items():
        console.print(f"{name:{width}} {what}", markup=False)
    return True


@demo_app.command("dvp")
def demo_dvp(
    directory: DirOption = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print one JSON object (ok, tx_id, outcome, steps, round_trip, final)."
        ),
    ] = False,
    fail_at: Annotated[
        str | None,
        typer.Option("--fail-at", help="A failure scenario to play; `list` names them."),
    ] = None,
) -> None:
    """The DVP: a Corda-model stablecoin against an ERC-721 on the EVM chain, settled
    atomically on the in-process network (both ledgers, LCP service, relayer)."""
    from kakehashi.apps.dvp.demo import SCENARIOS, run_dvp

    if _listed(fail_at, SCENARIOS):
        return

    def summary(result: Any) -> None:
        f = result.final
        owner = {f["buyer_evm"]: "buyer", f["seller_evm"]: "seller"}.get(
            f["nft_owner"], f["nft_owner"]
        )
        tx = result.tx_id[:16]
        console.print(f"outcome: [bold]{result.outcome}[/] (cross transaction {tx}…)")
        console.print(
            f"NFT owner: {owner}; JPYC: buyer {f['buyer_balance']}, seller {f['seller_balance']}; "
            f"states at the outsider's node: {f['outsider_states']}",
            markup=False,
        )

    title = "DVP: stablecoin (Corda model) against an NFT (EVM chain)"
    _app_demo(
        title + (f" · --fail-at {fail_at}" if fail_at else ""),
        directory,
        as_json,
        lambda where, show: run_dvp(where, fail_at=fail_at, show=show),
        summary,
    )


@demo_app.command("logistics")
def demo_logistics(
    directory: DirOption = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print one JSON object (ok, steps, round_trip, final)."),
    ] = False,
    fail_at: Annotated[
        str | None,
        typer.Option("--fail-at", help="A failure scenario to play; `list` names them."),
    ] = None,
) -> None:
    """The daily contract-status update: contracts on the EVM chain checked against delivery
    records on the Corda model (minimal and full disclosure), on the in-process network."""
    from kakehashi.apps.logistics.demo import SCENARIOS, run_logistics

    if _listed(fail_at, SCENARIOS):
        return

    def summary(result: Any) -> None:
        for contract_id, status in result.final["statuses"].items():
            console.print(f"contract {contract_id}: {status}", markup=False)

    _app_demo(
        "logistics: contract status from delivery records"
        + (f" · --fail-at {fail_at}" if fail_at else ""),
        directory,
        as_json,
        lambda where, show: run_logistics(where, show=show, fail_at=fail_at),
        summary,
    )


@demo_app.command("posttrade")
def demo_posttrade(
    directory: DirOption = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print one JSON object (ok, form_id, steps, final_status, outsider_view).",
        ),
    ] = False,
    fail_at: Annotated[
        str | None,
        typer.Option("--fail-at", help="A failing settlement to play; `list` names them."),
    ] = None,
) -> None:
    """Post-trade: a settlement instruction shared on the EVM chain encrypted for its route,
    matched, rejected and resubmitted, approved, read by an outsider as ciphertext only, and
    settled as a DVP across both ledgers — on the in-process network."""
    import json

    from kakehashi.apps.posttrade.demo import SCENARIOS, run_posttrade
    from kakehashi.apps.result import Step

    if _listed(fail_at, SCENARIOS):
        return

    def show(step: Step) -> None:
        if not as_json:
            console.print(
                f"[green]✓[/] {escape(step.name)} [dim]({step.ledger}, {step.seconds:.2f} s)[/]"
            )

    if not as_json:
        console.rule("[bold]Kakehashi · post-trade: an instruction on its approval route")
    try:
        if directory is None:
            with tempfile.TemporaryDirectory(prefix="kakehashi-demo-") as tmp:
                result = run_posttrade(Path(tmp), show=show, fail_at=fail_at)
        else:
            result = run_posttrade(directory, show=show, fail_at=fail_at)
    except KakehashiError as exc:
        _fail(exc)
        return
    if as_json:
        print(json.dumps(result.as_dict()))
    else:
        f = result.final_status
        console.print(
            f"form {result.form_id} version {f['version']}: processing {f['processing_code']}, "
            f"matching {f['matching']}, settlement {f['settlement']}",
            markup=False,
        )
        view = result.outsider_view
        console.print(
            f"the outsider got {view['envelope_size']} bytes of ciphertext "
            f"({view['envelope_head'][:32]}…): {view['refusal']}",
            markup=False,
        )
        if result.failure:
            console.print(f"why: {escape(result.failure)}")
        console.print("[bold green]ok[/]" if result.ok else "[bold red]failed[/]")
    if not result.ok:
        raise typer.Exit(1)


@corda_app.command("init")
def corda_init(
    directory: Annotated[Path, typer.Argument(help="Empty folder for the network.")],
    notary: Annotated[str, typer.Option(help="X.500 name of the notary.")] = (
        "O=Notary, L=Zurich, C=CH"
    ),
    node: Annotated[
        list[str] | None,
        typer.Option(help="X.500 name of a node (repeat the option for each node)."),
    ] = None,
    validating: Annotated[bool, typer.Option(help="Make the notary validating.")] = False,
    base_port: Annotated[
        int,
        typer.Option(min=1, max=65_535, help="Port of the notary; nodes take the following ports."),
    ] = 10_000,
) -> None:
    """Create keys, RPC tokens and the network map of a new network."""
    from kakehashi.ledgers.corda.node.setup import init_network, slug

    nodes = node or ["O=Bank A, L=London, C=GB", "O=Bank B, L=Tokyo, C=JP"]
    try:
        if base_port + len(nodes) > 65_535:
            raise ConfigurationError(
                f"--base-port {base_port} leaves no room for {len(nodes) + 1} parties "
                "(ports go up to 65535)"
            )
        _refuse_existing_keys(directory, [notary, *nodes])
        network = init_network(directory, notary, nodes, validating=validating, base_port=base_port)
        for info in network.nodes:
            _write_secret(directory / slug(info.party.name) / "rpc.token", secrets.token_hex(16))
    except KakehashiError as exc:
        _fail(exc)
        return
    except OSError as exc:
        _fail(ConfigurationError(f"cannot create the network in {directory}: {exc}"))
        return
    for info in network.nodes:
        role = "notary" if info.notary else "node"
        console.print(
            f"{role:6} {info.party.name}  {info.url}  ({directory / slug(info.party.name)})",
            markup=False,
            soft_wrap=True,
        )
    console.print(
        f"network map written to {directory / 'network-map.toml'}", markup=False, soft_wrap=True
    )


def _refuse_existing_keys(directory: Path, names: list[str]) -> None:
    """Never overwrite a party's key (init_network itself refuses an existing network map)."""
    from kakehashi.ledgers.corda.model.identity import X500Name
    from kakehashi.ledgers.corda.node.setup import NETWORK_MAP, slug

    if (directory / NETWORK_MAP).exists():
        return
    for name in names:
        key = directory / slug(X500Name.parse(name)) / "identity.key"
        if key.exists():
            raise ConfigurationError(
                f"{key} already exists and would be overwritten; choose an empty directory"
            )


def _write_secret(path: Path, text: str) -> None:
    """Write ``text`` to a file only its owner can read, from the moment it exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # also when the file existed with a wider mode
    with os.fdopen(fd, "w") as handle:
        handle.write(text + "\n")


@corda_app.command("serve")
def corda_serve(
    directory: Annotated[Path, typer.Argument(help="The network folder made by 'corda init'.")],
    name: Annotated[str, typer.Option(help="X.500 name of the party to run.")],
    db_url: Annotated[
        str | None,
        typer.Option(
            help="Database URL (default: SQLite in the party's folder); "
            "postgresql+psycopg://... for a shared notary database."
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    ibc: Annotated[
        bool,
        typer.Option(
            "--ibc",
            help="Also run the node's IBC host (with the echo application) and serve it under "
            "/ibc for relayers. Not for a notary.",
        ),
    ] = False,
    ibc_port: Annotated[
        str, typer.Option("--ibc-port", help="Port id the echo application binds.")
    ] = "echo",
    cross_timeout_blocks: Annotated[
        int | None,
        typer.Option(
            "--cross-timeout-blocks",
            min=1,
            help="With --ibc: the Cross Framework's packets time out this many blocks of the "
            "counterparty chain after they are sent (default 1000; short values let a stalled "
            "transaction abort quickly, e.g. in tests).",
        ),
    ] = None,
) -> None:
    """Run one node or notary of a network as an HTTP server (port from the network map).

    Every node also serves its party's use-case routes with its RPC token (docs/apps.md,
    "Running the use cases as processes"): ``POST /rpc/cross/deposit`` and
    ``/rpc/cross/reclaim`` (a DVP buyer's deposit for a cross transaction and its reclaim after
    expiry), ``POST`` / ``GET /rpc/logistics/deliveries`` (a carrier's delivery records)."""
    import uvicorn

    from kakehashi.ledgers.corda.model.identity import X500Name
    from kakehashi.ledgers.corda.node.http import create_app
    from kakehashi.ledgers.corda.node.network import NetworkMap
    from kakehashi.ledgers.corda.node.setup import open_node, open_notary, slug
    from kakehashi.ledgers.corda.node.transport import HttpTransport

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        network = NetworkMap.load(directory / "network-map.toml")
        party = X500Name.parse(name)
        info = network.info(party)
        if not info.url:
            raise ConfigurationError(f"the network map gives no URL for {party}")
        transport = HttpTransport(network)
        peer = (
            open_notary(directory, network, party, transport, db_url=db_url)
            if info.notary
            else open_node(directory, network, party, transport, db_url=db_url)
        )
        token_file = directory / slug(party) / "rpc.token"
        rpc_token = token_file.read_text().strip() if token_file.exists() else secrets.token_hex(16)
        if ibc and info.notary:
            raise ConfigurationError(
                f"{party} is a notary: --ibc runs an IBC host on a node; serve a node with --ibc"
            )
        if cross_timeout_blocks is not None and not ibc:
            raise ConfigurationError("--cross-timeout-blocks sets the IBC host's: add --ibc")
    except KakehashiError as exc:
        _fail(exc)
        return
    from kakehashi.ledgers.corda.node.node import Node

    if isinstance(peer, Node):
        pending = peer.recover()
        if pending:
            console.print(f"{len(pending)} transaction(s) still await delivery; will retry")
    web = create_app(peer, rpc_token)
    if isinstance(peer, Node):
        from kakehashi.cli.party_api import create_party_router

        web.include_router(create_party_router(peer, app_token=rpc_token))
    if ibc:
        assert isinstance(peer, Node)
        try:
            _mount_ibc_host(
                web,
                peer,
                ibc_port,
                rpc_token,
                cross_timeout_blocks or 1_000,
                initiate_dir=token_file.parent,
            )
        except KakehashiError as exc:
            _fail(exc)
            return
    port = urlparse(info.url).port or 80
    console.print(f"{party} listening on {host}:{port}", markup=False, soft_wrap=True)
    uvicorn.run(web, host=host, port=port, log_level="warning")


IBC_NOTARY_WAIT_S = 30.0
"""How long ``corda serve --ibc`` waits for the notary to create or resume the IBC host."""


def _mount_ibc_host(
    web: FastAPI,
    node: Node,
    port_id: str,
    rpc_token: str,
    cross_timeout_blocks: int,
    initiate_dir: Path,
) -> None:
    """Open ``node``'s IBC host with the echo module on ``port_id`` and the Cross Framework
    module on port ``cross`` (its packets timing out ``cross_timeout_blocks`` counterparty
    blocks after they are sent); serve the host under /ibc and the cross module under /cross
    (``/cross/initiate`` also taking the token in ``initiate_dir``/cross-initiate.token, made
    on first start).

    Creating (or finishing a pending change of) the host needs the notary, which may be starting
    at the same time: wait for it a while, then fail with its error.
    """
    import time

    from kakehashi.apps.logistics.deliveries import DeliveryCheckApp
    from kakehashi.cross.corda_apps import apps_factory
    from kakehashi.cross.corda_module import CROSS_PORT, CrossModule
    from kakehashi.cross.corda_tokens import TokenEscrowApp
    from kakehashi.cross.http import CROSS_INITIATE_TOKEN, create_cross_router
    from kakehashi.errors import NotaryError, TransportError
    from kakehashi.ibc.corda_host.host import CordaIbcHost
    from kakehashi.ibc.corda_host.http import create_ibc_router
    from kakehashi.ibc.echo import EchoModule
    from kakehashi.ibc.router import Router

    router = Router()
    router.bind(port_id, EchoModule())
    # the key-value application (always), stablecoin escrow (DVP), delivery checks (logistics)
    cross = CrossModule(
        app_factory=apps_factory(TokenEscrowApp, DeliveryCheckApp),
        timeout_span=cross_timeout_blocks,
    )
    router.bind(CROSS_PORT, cross)
    deadline = time.monotonic() + IBC_NOTARY_WAIT_S
    while True:
        try:
            ibc_host = CordaIbcHost(node, router=router)
            break
        except (TransportError, NotaryError) as exc:
            if time.monotonic() > deadline:
                raise NotaryError(
                    f"the IBC host needs the notary, which did not answer within "
                    f"{IBC_NOTARY_WAIT_S:.0f} s ({exc}); start the notary, then this node"
                ) from exc
            time.sleep(0.5)
    cross.attach(ibc_host)
    # a token for POST /cross/initiate only, which the operator may hand to whoever asks the
    # host to coordinate (a post-trade CSD), without the rest of the node's RPC
    initiate_file = initiate_dir / CROSS_INITIATE_TOKEN
    if not initiate_file.exists():
        _write_secret(initiate_file, secrets.token_hex(16))
    initiate_token = initiate_file.read_text().strip()
    web.include_router(create_ibc_router(ibc_host, app_token=rpc_token))
    web.include_router(
        create_cross_router(cross, app_token=rpc_token, initiate_token=initiate_token)
    )
    console.print(
        f"IBC host prefix 0x{ibc_host.prefix.hex()} at version {ibc_host.version}; "
        f"echo module on port {port_id!r}, Cross Framework (key-value) on port {CROSS_PORT!r}",
        markup=False,
        soft_wrap=True,
    )


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
