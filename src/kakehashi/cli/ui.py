"""``kakehashi ui``: the post-trade web UI over a network directory (``kakehashi posttrade
init``), each party logging in with its own secret (docs/posttrade.md, "Web UI")."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from kakehashi.errors import KakehashiError

console = Console()
err_console = Console(stderr=True)


def ui(
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            help="The network directory (posttrade init); default $KAKEHASHI_POSTTRADE_DIR or "
            "./posttrade.",
        ),
    ] = None,
    port: Annotated[int, typer.Option("--port", min=1, max=65_535, help="Port to serve.")] = 8000,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
) -> None:
    """Serve the post-trade web UI: one screen per party (inbox, forms, OK / NG, entering a
    trade); parties log in with the secrets in DIR/ui-credentials.json (written on first
    start, readable by its owner only)."""
    import uvicorn

    from kakehashi.cli.posttrade import _default_dir, open_network
    from kakehashi.cli.posttrade_dvp import SettlementDesk, load_settlement
    from kakehashi.ui.app import create_app
    from kakehashi.ui.sessions import CREDENTIALS_FILE, load_or_create

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    where = directory or _default_dir()
    try:
        with open_network(where) as network:
            credentials, written = load_or_create(where, network.parties)
            path = where / CREDENTIALS_FILE
            if written:
                console.print(
                    f"wrote the parties' login secrets to {path} (mode 0600)",
                    markup=False,
                    soft_wrap=True,
                )
            else:
                console.print(f"parties' login secrets: {path}", markup=False, soft_wrap=True)
            desk = None
            config = load_settlement(where)
            if config is not None:
                desk = SettlementDesk(network, config)
                console.print(
                    f"settlement: a DVP through the Cross Framework ({config.relayer_config})",
                    markup=False,
                    soft_wrap=True,
                )
            web = create_app(network, credentials, desk)
            console.print(
                f"post-trade UI on http://{host}:{port}/ ({len(network.parties)} parties)",
                markup=False,
                soft_wrap=True,
            )
            uvicorn.run(web, host=host, port=port, log_level="warning")
    except KakehashiError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from None
