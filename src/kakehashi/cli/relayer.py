"""``kakehashi relayer ...`` and ``kakehashi ibc deploy-evm``."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from kakehashi.errors import ConfigurationError, KakehashiError

relayer_app = typer.Typer(
    help="Relay IBC packets between two ledgers through an LCP service (untrusted, stateless).",
    no_args_is_help=True,
)
ibc_app = typer.Typer(help="Set up IBC on a ledger.", no_args_is_help=True)

console = Console()
err_console = Console(stderr=True)

ConfigOption = Annotated[
    Path, typer.Option("--config", help="The relayer's TOML configuration (see docs/relayer.md).")
]


def _fail(exc: KakehashiError) -> None:
    err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
    raise typer.Exit(2)


def _open(config_path: Path) -> tuple[object, object, object]:
    from kakehashi.lcp.client import LcpServiceClient
    from kakehashi.relayer.config import load_config
    from kakehashi.relayer.path import PathRelayer

    config = load_config(config_path)
    lcp = LcpServiceClient(config.lcp_url)
    relayer = PathRelayer(config.a.side(), config.b.side(), lcp, batch_size=config.batch_size)
    return config, lcp, relayer


@relayer_app.command("link")
def relayer_link(config_path: ConfigOption) -> None:
    """Create LCP clients on both ledgers, open a connection and a channel (ids: link file)."""
    from kakehashi.relayer.config import RelayerConfig
    from kakehashi.relayer.link import link
    from kakehashi.relayer.path import PathRelayer
    from kakehashi.relayer.service import configure_logging

    configure_logging()
    try:
        config, lcp, relayer = _open(config_path)
        assert isinstance(config, RelayerConfig) and isinstance(relayer, PathRelayer)
        if config.link_file.exists():
            raise ConfigurationError(
                f"{config.link_file} already exists: this path is linked (delete the file to "
                "link a new channel)"
            )
        record = link(
            relayer,
            lcp,  # type: ignore[arg-type]
            ordering=config.ordering,
            version=config.version,
            key_expiration_s=config.key_expiration_s,
            development=config.development,
        )
        record.save(config.link_file)
    except KakehashiError as exc:
        _fail(exc)
        return
    console.print(
        f"linked: {config.a.name} {record.a_connection_id}/{record.a_channel_id} (client "
        f"{record.a_client_id}) <-> {config.b.name} {record.b_connection_id}/"
        f"{record.b_channel_id} (client {record.b_client_id}); written to {config.link_file}",
        markup=False,
        soft_wrap=True,
    )


@relayer_app.command("rotate-key")
def relayer_rotate_key(config_path: ConfigOption) -> None:
    """Rotate the LCP enclave key with no gap: stage, register on both ledgers, activate."""
    from kakehashi.relayer.config import RelayerConfig
    from kakehashi.relayer.link import LinkRecord, rotate_key
    from kakehashi.relayer.path import PathRelayer
    from kakehashi.relayer.service import configure_logging

    configure_logging()
    try:
        config, lcp, relayer = _open(config_path)
        assert isinstance(config, RelayerConfig) and isinstance(relayer, PathRelayer)
        LinkRecord.load(config.link_file).apply(relayer.a, relayer.b)
        address = rotate_key(relayer.a, relayer.b, lcp)
    except KakehashiError as exc:
        _fail(exc)
        return
    console.print(
        f"enclave key 0x{address.hex()} registered on {config.a.name} and {config.b.name} and "
        "now signing",
        markup=False,
        soft_wrap=True,
    )


@relayer_app.command("start")
def relayer_start(
    config_path: ConfigOption,
    rounds: Annotated[
        int | None, typer.Option(help="Stop after this many rounds (default: run until stopped).")
    ] = None,
    log_format: Annotated[
        str, typer.Option(help="Log lines as 'text' (key=value events) or 'json'.")
    ] = "text",
) -> None:
    """Relay packets, acknowledgements and timeouts both ways until SIGINT / SIGTERM."""
    from kakehashi.relayer.config import RelayerConfig
    from kakehashi.relayer.link import LinkRecord
    from kakehashi.relayer.path import PathRelayer
    from kakehashi.relayer.service import RelayerMetrics, RelayerService, configure_logging

    if log_format not in ("text", "json"):
        _fail(ConfigurationError("--log-format must be text or json"))
    configure_logging(json_lines=log_format == "json")
    try:
        config, _lcp, relayer = _open(config_path)
        assert isinstance(config, RelayerConfig) and isinstance(relayer, PathRelayer)
        LinkRecord.load(config.link_file).apply(relayer.a, relayer.b)
    except KakehashiError as exc:
        _fail(exc)
        return
    metrics = RelayerMetrics()
    if config.metrics_port:
        try:
            metrics.serve(config.metrics_port)
        except OSError as exc:
            _fail(ConfigurationError(f"cannot serve metrics on port {config.metrics_port}: {exc}"))
    service = RelayerService(relayer, interval_s=config.interval_s, metrics=metrics)
    console.print(
        f"relaying {config.a.name} {relayer.a.port_id}/{relayer.a.channel_id} <-> "
        f"{config.b.name} {relayer.b.port_id}/{relayer.b.channel_id}"
        + (
            f"; metrics on http://127.0.0.1:{config.metrics_port}/metrics"
            if config.metrics_port
            else ""
        ),
        markup=False,
        soft_wrap=True,
    )

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, service.stop)
        await service.run(rounds)

    asyncio.run(main())


@ibc_app.command("deploy-evm")
def ibc_deploy_evm(
    rpc: Annotated[str, typer.Option(help="JSON-RPC URL of the EVM node.")],
    out: Annotated[Path, typer.Option(help="Where to write the deployment (JSON).")],
    private_key_file: Annotated[
        Path | None,
        typer.Option(help="The deployer's key (hex); default: development account 0."),
    ] = None,
    lcp: Annotated[
        str | None,
        typer.Option(
            help="URL of a SIMULATION LCP service whose root the AVR verifier trusts "
            "(development only; without it, Intel's attestation root)."
        ),
    ] = None,
    port: Annotated[str, typer.Option(help="Port id the echo application binds.")] = "echo",
) -> None:
    """Deploy the IBC handler, the LCP client (with its AVR verifier) and the echo app."""
    from eth_account import Account

    from kakehashi.ibc.evm_deploy import deploy_lcp_stack
    from kakehashi.ledgers.evm.client import connect, funded_accounts
    from kakehashi.lightclients.lcp_attestation import INTEL_SGX_ATTESTATION_ROOT_CA_DER

    try:
        if private_key_file is None:
            sender = funded_accounts(n=1)[0]
        else:
            try:
                sender = Account.from_key(private_key_file.read_text().strip())
            except (OSError, ValueError) as exc:
                raise ConfigurationError(f"cannot use {private_key_file}: {exc}") from None
        root = INTEL_SGX_ATTESTATION_ROOT_CA_DER
        if lcp is not None:
            from kakehashi.lcp.client import LcpServiceClient

            with LcpServiceClient(lcp) as service:
                root = service.attestation().root_certificate
            err_console.print(
                "[bold yellow]development:[/] the LCP client trusts the simulation root of "
                f"{escape(lcp)}; never use this for real assets"
            )
        deployment = deploy_lcp_stack(connect(rpc), sender=sender, port=port, root_der=root)
        deployment.save(out)
    except KakehashiError as exc:
        _fail(exc)
        return
    console.print(
        f"IBC handler {deployment.handler}, LCP client {deployment.lcp_client}, echo app "
        f"{deployment.echo_app} on port '{port}'; written to {out}",
        markup=False,
        soft_wrap=True,
    )
