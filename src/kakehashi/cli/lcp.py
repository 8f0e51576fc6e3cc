"""``kakehashi lcp``: run the Light Client Proxy service (SIMULATION mode: no hardware TEE)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel

from kakehashi.errors import ConfigurationError, KakehashiError

lcp_app = typer.Typer(help="Run the LCP (Light Client Proxy) service.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)

SIMULATION_WARNING = (
    "SIMULATION MODE: this LCP service runs WITHOUT a hardware TEE (no SGX enclave). "
    "The enclave key is sealed on disk under the operator secret, but the host can read the "
    "service's memory. Its attestation is signed by a SIMULATION CA that only clients "
    "configured for DEVELOPMENT accept. Do not use it to secure real value."
)


def _operator(value: str | None) -> bytes | None:
    if value is None:
        return None
    text = value[2:] if value.lower().startswith("0x") else value
    try:
        address = bytes.fromhex(text)
    except ValueError:
        address = b""
    if len(address) != 20:
        raise ConfigurationError(f"--operator must be a 20-byte hex address, got {value!r}")
    return address


@lcp_app.command("serve")
def lcp_serve(
    data_dir: Annotated[
        Path,
        typer.Option("--data-dir", help="Where the sealed enclave keys and simulation CA live."),
    ],
    operator_secret_file: Annotated[
        Path,
        typer.Option(
            "--operator-secret-file", help="File holding the secret that seals the enclave keys."
        ),
    ],
    port: Annotated[int, typer.Option(help="TCP port of the HTTP API.")] = 8600,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    operator: Annotated[
        str | None,
        typer.Option(help="Operator address (20-byte hex) named in the enclave key's report."),
    ] = None,
) -> None:
    """Serve the LCP API over the simulation enclave (keys unsealed from --data-dir)."""
    import uvicorn

    from kakehashi.lcp.enclave import Enclave
    from kakehashi.lcp.service import create_app

    err_console.print(
        Panel(SIMULATION_WARNING, title="WARNING", border_style="bold red"), style="bold red"
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        try:
            secret = operator_secret_file.read_bytes().rstrip(b"\r\n")
        except OSError as exc:
            raise ConfigurationError(f"cannot read {operator_secret_file}: {exc}") from None
        enclave = Enclave(data_dir, secret, operator=_operator(operator))
    except KakehashiError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from None
    console.print(
        f"LCP service (SIMULATION) enclave key 0x{enclave.address.hex()}, MRENCLAVE "
        f"{enclave.mrenclave.hex()}, simulation root {data_dir / 'simulation-ca' / 'root.der'}",
        markup=False,
        soft_wrap=True,
    )
    console.print(f"listening on http://{host}:{port}", markup=False, soft_wrap=True)
    uvicorn.run(create_app(enclave), host=host, port=port, log_level="warning")
