"""``kakehashi evm``: run the embedded QBFT chain as a JSON-RPC node."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from kakehashi.errors import ConfigurationError, KakehashiError

evm_app = typer.Typer(help="Run the embedded EVM (QBFT) chain.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)


@evm_app.command("serve")
def evm_serve(
    data_dir: Annotated[
        Path,
        typer.Option("--data-dir", help="Where the chain keeps its database and validator keys."),
    ],
    port: Annotated[int, typer.Option(help="TCP port for JSON-RPC over HTTP.")] = 8545,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    validators: Annotated[
        int | None,
        typer.Option(help="Validator keys the chain holds and seals with (new chains; default 4)."),
    ] = None,
    block_mode: Annotated[
        str,
        typer.Option(
            "--block-mode",
            help="auto: one block per incoming transaction; interval: a block every "
            "--interval-ms with every pending transaction.",
        ),
    ] = "auto",
    interval_ms: Annotated[
        int, typer.Option("--interval-ms", help="Block interval in interval mode.")
    ] = 1000,
    genesis: Annotated[
        Path | None,
        typer.Option(
            help="Genesis config (JSON: chainId, gasLimit, baseFeePerGas, validators, alloc) "
            "for a new chain. Default: the development genesis."
        ),
    ] = None,
) -> None:
    """Serve Ethereum JSON-RPC from the embedded QBFT chain (restarts where it stopped)."""
    import uvicorn

    from kakehashi.ledgers.evm.chain import DEV_MNEMONIC, EmbeddedChain, Genesis, dev_accounts
    from kakehashi.ledgers.evm.rpc import RpcDispatcher, asgi_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        if block_mode not in ("auto", "interval"):
            raise ConfigurationError(f"--block-mode must be auto or interval, not {block_mode!r}")
        if validators is not None and validators < 1:
            raise ConfigurationError("--validators must be at least 1")
        config = Genesis.load(genesis) if genesis is not None else None
        chain = EmbeddedChain(
            data_dir,
            genesis=config,
            validators=validators,
            block_mode=block_mode,  # type: ignore[arg-type]
            interval_ms=interval_ms,
        )
    except KakehashiError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from None
    head = chain.block_number()
    console.print(
        f"kakehashi EVM chain {chain.chain_id}: {len(chain.validators)} QBFT validators, "
        f"block mode {chain.block_mode}, head block {head}, data in {data_dir}",
        markup=False,
        soft_wrap=True,
    )
    if chain.genesis.development:
        console.print(
            f"development genesis: the first 10 accounts of the mnemonic '{DEV_MNEMONIC}' "
            "(m/44'/60'/0'/0/i) hold 10000 ETH each:",
            markup=False,
            soft_wrap=True,
        )
        for i, account in enumerate(dev_accounts()):
            console.print(
                f"  ({i}) {account.address}  key 0x{account.key.hex().removeprefix('0x')}",
                markup=False,
                soft_wrap=True,
            )
    console.print(f"listening on http://{host}:{port}", markup=False, soft_wrap=True)
    try:
        uvicorn.run(
            asgi_app(RpcDispatcher(chain), on_shutdown=chain.close),
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
        )
    finally:
        chain.close()
