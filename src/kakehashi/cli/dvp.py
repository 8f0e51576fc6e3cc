"""``kakehashi dvp``: the DVP buyer's steps on its own Corda node (docs/apps.md, "Running the
use cases as processes") — the deposit that consents to a cross transaction's token move, and
its reclaim after the transaction's timeout. Each calls the node's HTTP routes
(:mod:`kakehashi.cli.party_api`) with the node's RPC token.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape

from kakehashi.errors import ConfigurationError, KakehashiError, TransportError

dvp_app = typer.Typer(
    help="DVP: the buyer's deposit for a cross transaction, and its reclaim after expiry.",
    no_args_is_help=True,
)
console = Console()
err_console = Console(stderr=True)

NodeOption = Annotated[
    str, typer.Option("--node", help="The buyer's node's URL (kakehashi corda serve).")
]
TokenOption = Annotated[
    Path, typer.Option("--token-file", help="The node's rpc.token (in its folder).")
]
PartOption = Annotated[
    int, typer.Option("--part", min=0, max=255, help="The part that moves the buyer's tokens.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


class NodeRefused(KakehashiError):
    """The node answered with an error (its type and message are in the text)."""


def _fail(exc: KakehashiError) -> None:
    err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
    raise typer.Exit(2)


def post_to_node(node: str, token_file: Path, path: str, body: dict[str, Any]) -> Any:
    """POST ``body`` to a node's RPC route ``path`` with its token; NodeRefused when it says
    no."""
    try:
        token = token_file.read_text().strip()
    except OSError as exc:
        raise ConfigurationError(f"cannot read the RPC token {token_file}: {exc}") from None
    try:
        with httpx.Client(base_url=node, trust_env=False, timeout=60.0) as http:
            answer = http.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        raise TransportError(f"the node at {node} is unreachable: {exc}") from None
    if answer.status_code != 200:
        try:
            data = answer.json()
        except ValueError:
            data = {}
        what = data.get("message") or data.get("detail") or answer.text
        kind = data.get("error", f"HTTP {answer.status_code}")
        raise NodeRefused(f"the node refused ({kind}): {what}")
    return answer.json()


def _transaction(text: str) -> str:
    """A transaction's canonical encoding in hex: given, or read from a file."""
    path = Path(text)
    raw = path.read_text().strip() if len(text) < 512 and path.is_file() else text
    try:
        return bytes.fromhex(raw.removeprefix("0x")).hex()
    except ValueError:
        raise ConfigurationError(
            "TX is the transaction's canonical encoding in hex, or a file holding it"
        ) from None


@dvp_app.command("deposit")
def dvp_deposit(
    tx: Annotated[str, typer.Argument(help="The transaction's encoding (hex), or a file of it.")],
    node: NodeOption,
    token_file: TokenOption,
    operator: Annotated[
        str, typer.Option("--operator", help="X.500 name of the IBC host's operator (the bank).")
    ],
    part: PartOption = 0,
    as_json: JsonOption = False,
) -> None:
    """Deposit exactly what part PART of the transaction moves from this node's party (its
    consent: the host's prepare locks it); reclaimable after the transaction's timeout."""
    try:
        body = {"tx": _transaction(tx), "index": part, "operator": operator}
        answer = post_to_node(node, token_file, "/rpc/cross/deposit", body)
    except KakehashiError as exc:
        _fail(exc)
        return
    if as_json:
        print(json.dumps(answer))
        return
    console.print(
        f"deposited {answer['amount']} {answer['token']} for part {part} of "
        f"{answer['cross_tx_id'][:16]}…, paid to {answer['recipient']} if it commits; "
        f"reclaimable from {answer['expiry_ns']} ns (transaction {answer['tx_id'][:16]}…)",
        markup=False,
        soft_wrap=True,
    )


@dvp_app.command("reclaim")
def dvp_reclaim(
    tx_id: Annotated[str, typer.Argument(help="The cross transaction's id (hex).")],
    node: NodeOption,
    token_file: TokenOption,
    part: PartOption = 0,
    as_json: JsonOption = False,
) -> None:
    """Take back the deposit for part PART of a cross transaction that timed out."""
    try:
        body = {"tx_id": tx_id.removeprefix("0x"), "index": part}
        answer = post_to_node(node, token_file, "/rpc/cross/reclaim", body)
    except KakehashiError as exc:
        _fail(exc)
        return
    if as_json:
        print(json.dumps(answer))
        return
    console.print(f"reclaimed (transaction {answer['tx_id'][:16]}…)", markup=False)
