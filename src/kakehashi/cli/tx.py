"""``kakehashi tx status`` / ``tx list``: cross transactions as both ledgers see them; ``tx sign``:
a party's signature, so that a transaction waiting for it can run.

The ledgers are the ones a relayer configuration names (``--config``, see docs/relayer.md): the
EVM chain's Cross Framework module is the contract bound on port ``cross`` of its IBC handler;
the Corda node serves ``/cross`` (``kakehashi corda serve --ibc``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from kakehashi.cross.status import part_record
from kakehashi.cross.tx import CrossTxError, TxView
from kakehashi.errors import (
    ConfigurationError,
    KakehashiError,
    SignatureError,
    TransportError,
)

tx_app = typer.Typer(help="Cross-ledger transactions: status and open ones.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)

ConfigOption = Annotated[
    Path, typer.Option("--config", help="A relayer configuration naming both ledgers.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
_PARTS = {0: "NONE", 1: "PREPARE", 2: "COMMIT", 3: "ABORT"}
_DECISIONS = {0: "UNKNOWN", 1: "COMMIT", 2: "ABORT"}
_PROTOCOLS = {1: "SIMPLE", 2: "TPC"}
_STEPS = {  # contracts/cross/cross_kv.vy STEP_* codes
    1: "sent PREPARE",
    2: "sent CALL",
    3: "sent DECIDE",
    4: "answered OK",
    5: "answered FAILED",
    6: "packet timed out",
    7: "acknowledged the decision",
    8: "prepared here",
    9: "failed to prepare here",
    10: "committed here",
    11: "aborted here",
    12: "authenticated: every signer signed",
    13: "sent SIGN",
}
_KINDS = {1: "LOCAL", 2: "CHANNEL", 3: "EXTENSION"}


def _fail(exc: KakehashiError) -> None:
    err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
    raise typer.Exit(2)


_APP_EVENTS: dict[str, Any] = {
    "Refused": lambda a: f"part {a['index']} could not be prepared here: {a['reason']}",
    "AnswerRefused": lambda a: (
        f"part {a['source']}'s answer refused by part {a['index']}: {a['reason']}"
    ),
    "Evaluated": lambda a: (
        f"part {a['index']} takes part {a['source']}'s answer: "
        f"{bytes(a['value']).decode(errors='replace')!r}"
    ),
}


class Ledgers:
    """The EVM chain's cross contract and the Corda node's /cross API of a configuration."""

    def __init__(self, config_path: Path) -> None:
        from kakehashi.ibc.evm_deploy import (
            CROSS_APP_CONTRACT,
            CROSS_AUTH_CONTRACT,
            CROSS_CONTRACT,
            CROSS_PORT,
        )
        from kakehashi.ibc.evm_host import EvmIbcHost
        from kakehashi.ledgers.evm import toolchain
        from kakehashi.ledgers.evm.client import connect
        from kakehashi.relayer.config import load_config

        config = load_config(config_path)
        evm = config.a if config.a.type == "evm" else config.b
        corda = config.b if config.b.type == "corda" else config.a
        if evm.type != "evm" or corda.type != "corda":
            raise ConfigurationError("the configuration must name an EVM chain and a Corda node")
        self.w3 = connect(evm.rpc)
        handler = EvmIbcHost(self.w3, evm.handler, sender=evm.handler).handler
        self.handler = handler
        address = handler.functions.ports(CROSS_PORT).call()
        if int(address, 16) == 0:
            raise ConfigurationError(
                f"no module on port {CROSS_PORT!r} of the EVM handler {evm.handler}: deploy it "
                "with `kakehashi ibc deploy-evm`"
            )
        self.cross = self.w3.eth.contract(
            address=address, abi=toolchain.compile_contract(CROSS_CONTRACT).abi
        )
        self.auth = self.w3.eth.contract(
            address=self.cross.functions.authenticator().call(),
            abi=toolchain.compile_contract(CROSS_AUTH_CONTRACT).abi,
        )
        self.app = self.w3.eth.contract(
            address=self.cross.functions.app().call(),
            abi=toolchain.compile_contract(CROSS_APP_CONTRACT).abi,
        )
        self.from_block = evm.from_block
        self.http = httpx.Client(base_url=corda.url, trust_env=False, timeout=10)

    def corda_post(self, path: str, body: dict[str, Any]) -> Any:
        try:
            answer = self.http.post(path, json=body)
        except httpx.HTTPError as exc:
            raise TransportError(
                f"the Corda node at {self.http.base_url} is unreachable: {exc}"
            ) from None
        if answer.status_code == 422:
            raise SignatureError(answer.json().get("detail", answer.text))
        if answer.status_code != 200:
            detail = answer.json().get("detail", answer.text) if answer.content else ""
            raise CrossTxError(f"the Corda node refused ({answer.status_code}): {detail}")
        return answer.json()

    def corda(self, path: str) -> Any:
        try:
            answer = self.http.get(path)
        except httpx.HTTPError as exc:
            raise TransportError(
                f"the Corda node at {self.http.base_url} is unreachable: {exc}"
            ) from None
        if answer.status_code == 404:
            return None
        if answer.status_code != 200:
            raise TransportError(f"the Corda node answered {answer.status_code}: {answer.text}")
        return answer.json()

    def logs(self, event: str, tx_id: bytes | None = None, contract: Any = None) -> list[Any]:
        topics = {"tx_id": tx_id} if tx_id is not None else None
        found = (
            (contract or self.cross)
            .events[event]()
            .get_logs(from_block=self.from_block, argument_filters=topics)
        )
        return list(found)

    def _time(self, block: int) -> int:
        return int(self.w3.eth.get_block(block)["timestamp"]) * 1_000_000_000

    def evm(self, tx_id: bytes) -> dict[str, Any] | None:
        protocol, local, count, decision = self.cross.functions.coordination(tx_id).call()
        answer: dict[str, Any] = {}
        if count:
            parts = {}
            acked = []
            for i in range(count):
                status, failed, _sent, decided = self.cross.functions.coordination_part(
                    tx_id, i
                ).call()
                parts[str(i)] = _PARTS[status] + (" (failed)" if failed else "")
                if decided:
                    acked.append(i)
            answer["coordinator"] = {
                "protocol": _PROTOCOLS.get(protocol, str(protocol)),
                "decision": _DECISIONS[decision],
                "parts": parts,
                "decided": acked,
                "local": None if local == 255 else local,
                "authentication": self._authentication(tx_id),
            }
        entries = []
        for event in ("CrossInitiated", "CrossDecided", "CrossStep"):
            for e in self.logs(event, tx_id):
                args = e["args"]
                if event == "CrossInitiated":
                    text = "initiated"
                elif event == "CrossDecided":
                    text = f"decided {_DECISIONS[args['decision']]}"
                elif args["index"] == 255:  # the transaction as a whole
                    text = _STEPS.get(args["step"], "?")
                else:
                    text = f"part {args['index']} {_STEPS.get(args['step'], '?')}"
                entries.append(((e["blockNumber"], e["logIndex"]), text))
        for e in self.logs("CrossSigned", tx_id, self.auth):
            args = e["args"]
            signer = f"0x{bytes(args['signer']).hex()}"
            entries.append(
                ((e["blockNumber"], e["logIndex"]), f"{_KINDS[args['kind']]} {signer} signed")
            )
        for event, say in _APP_EVENTS.items():  # the application's reasons and evaluations
            for e in self.logs(event, tx_id, self.app):
                entries.append(((e["blockNumber"], e["logIndex"]), say(e["args"])))
        if entries:  # in chain order (several steps share a block and its time)
            answer["timeline"] = [
                {"time_ns": self._time(order[0]), "event": text} for order, text in sorted(entries)
            ]
        participant = {
            str(i): _PARTS[status]
            for i in range(4)
            if (status := self.cross.functions.parts(part_record(tx_id, i)).call())
        }
        if participant:
            answer["participant"] = participant
        shown = evm_view(self.handler, tx_id, self.from_block)
        if shown is not None:
            answer["view"] = shown.shown()
        return answer or None

    def _authentication(self, tx_id: bytes) -> str:
        """VERIFIED, PENDING (n of m signed) or EXPIRED (its timeout passed first)."""
        verified, signed = self.auth.functions.authentication(tx_id).call()
        if verified:
            return "VERIFIED"
        (initiated,) = self.logs("CrossInitiated", tx_id)[:1] or [None]
        if initiated is not None:
            args, head = initiated["args"], self.w3.eth.get_block("latest")
            height, timestamp = args["timeout_height"], args["timeout_timestamp"]
            if (height and head["number"] >= height) or (
                timestamp and head["timestamp"] * 1_000_000_000 >= timestamp
            ):
                return "EXPIRED"
        return f"PENDING ({bin(signed).count('1')} signer positions signed)"

    def open_on_evm(self) -> list[dict[str, Any]]:
        listed = []
        for entry in self.logs("CrossInitiated"):
            tx_id = bytes(entry["args"]["tx_id"])
            view = self.evm(tx_id)
            if view is None:
                continue
            c = view["coordinator"]
            done = c["decision"] != "UNKNOWN" and (
                c["protocol"] == "SIMPLE"
                or all(
                    int(i) in c["decided"]
                    for i in c["parts"]
                    if int(i) != c["local"] and "failed" not in c["parts"][i]
                )
            )
            if not done:
                listed.append(
                    {
                        "tx_id": tx_id.hex(),
                        "protocol": c["protocol"],
                        "decision": c["decision"],
                        "initiated_ns": self._time(entry["blockNumber"]),
                    }
                )
        return listed


def evm_view(handler: Any, tx_id: bytes, from_block: int | str = 0) -> TxView | None:
    """What the EVM chain was shown of ``tx_id`` as a participant: the views its PREPARE / CALL
    packets carried (read back from the IBC handler's ``RecvPacket`` events), merged; None when
    it received none."""
    from kakehashi.cross.packets import CrossPacket, PacketKind
    from kakehashi.ibc.evm_deploy import CROSS_PORT
    from kakehashi.ibc.types import Packet

    view = None
    for event in handler.events.RecvPacket().get_logs(from_block=from_block):
        packet = Packet.decode(bytes(event["args"]["packet"]))
        if packet.destination_port != CROSS_PORT:
            continue
        cross = CrossPacket.decode(packet.data)
        if cross.tx_id != tx_id or cross.kind not in (PacketKind.PREPARE, PacketKind.CALL):
            continue
        view = cross.view() if view is None else view.merged(cross.view())
    return view


def _hex_id(tx_id: str) -> bytes:
    try:
        raw = bytes.fromhex(tx_id.removeprefix("0x"))
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ConfigurationError(f"a transaction id is 32 bytes of hex, got {tx_id!r}")
    return raw


@tx_app.command("status")
def tx_status(tx_id: str, config_path: ConfigOption, as_json: JsonOption = False) -> None:
    """The transaction as each ledger sees it (coordinator, participant) and its timeline."""
    try:
        raw = _hex_id(tx_id)
        ledgers = Ledgers(config_path)
        views = {"evm": ledgers.evm(raw), "corda": ledgers.corda(f"/cross/tx/{raw.hex()}")}
    except KakehashiError as exc:
        _fail(exc)
        return
    if all(v is None for v in views.values()):
        _fail(ConfigurationError(f"neither ledger knows a cross transaction {raw.hex()}"))
    if as_json:
        print(json.dumps({"tx_id": raw.hex(), **views}))
        return
    console.rule(f"cross transaction {raw.hex()}")
    for ledger, view in views.items():
        if view is None:
            console.print(f"{ledger}: not involved")
            continue
        if "coordinator" in view:
            c = view["coordinator"]
            parts = ", ".join(f"part {i} {s}" for i, s in c["parts"].items())
            console.print(
                f"{ledger}: coordinator of a {c['protocol']} transaction, decision "
                f"{c['decision']}; {parts}",
                markup=False,
            )
            auth = c.get("authentication") or view.get("authentication", {}).get("status")
            if auth:
                console.print(f"{ledger}: authentication {auth}", markup=False)
        if "participant" in view:
            parts = ", ".join(f"part {i} {s}" for i, s in view["participant"].items())
            console.print(f"{ledger}: participant, {parts}", markup=False)
        if "view" in view:  # what the participant was shown of the transaction
            shown = ", ".join(
                f"part {i} {p['part']}"
                + (f" (digest {p['digest'][:16]}…)" if p["part"] == "hidden" else "")
                for i, p in view["view"].items()
            )
            console.print(f"{ledger}: was shown {shown}", markup=False)
    table = Table(title="timeline", title_justify="left")
    table.add_column("time (UTC)")
    table.add_column("ledger")
    table.add_column("event")
    events = sorted(  # by time; a stable sort keeps each ledger's own order within a tick
        (
            (e["time_ns"], ledger, e["event"])
            for ledger, view in views.items()
            if view
            for e in view.get("timeline", [])
        ),
        key=lambda entry: entry[0],
    )
    for time_ns, ledger, event in events:
        stamp = (
            time.strftime("%H:%M:%S", time.gmtime(time_ns / 1e9))
            + f".{time_ns // 1_000_000 % 1000:03d}"
        )
        table.add_row(stamp, ledger, escape(event))
    console.print(table)


@tx_app.command("list")
def tx_list(config_path: ConfigOption, as_json: JsonOption = False) -> None:
    """Open transactions (not yet decided, or decided but not acknowledged everywhere), oldest
    first, with their age."""
    try:
        ledgers = Ledgers(config_path)
        corda = ledgers.corda("/cross/tx?open_only=true") or {"transactions": []}
        rows = [dict(t, coordinator="corda") for t in corda["transactions"]] + [
            dict(t, coordinator="evm") for t in ledgers.open_on_evm()
        ]
    except KakehashiError as exc:
        _fail(exc)
        return
    now = time.time_ns()
    for row in rows:
        started = row.get("initiated_ns")
        row["age_s"] = None if started is None else round((now - started) / 1e9, 1)
    rows.sort(key=lambda r: r.get("initiated_ns") or 0)
    if as_json:
        print(json.dumps({"open": rows}))
        return
    table = Table(title=f"{len(rows)} open cross transaction(s)", title_justify="left")
    for column in ("tx id", "coordinator", "protocol", "decision", "age (s)"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["tx_id"][:16] + "…",
            row["coordinator"],
            row["protocol"],
            row["decision"],
            "" if row["age_s"] is None else f"{row['age_s']:.1f}",
        )
    console.print(table)


def _transaction(text: str) -> bytes:
    """A transaction's canonical encoding: hex, or a file holding it."""
    path = Path(text)
    raw = path.read_text().strip() if len(text) < 512 and path.is_file() else text
    try:
        return bytes.fromhex(raw.removeprefix("0x"))
    except ValueError:
        raise ConfigurationError(
            "TX is the transaction's canonical encoding in hex, or a file holding it"
        ) from None


@tx_app.command("sign")
def tx_sign(
    tx: Annotated[
        str, typer.Argument(help="The transaction's full encoding (hex), or a file of it.")
    ],
    config_path: ConfigOption,
    on: Annotated[str, typer.Option("--on", help="The ledger you sign on: evm or corda.")],
    key_file: Annotated[
        Path,
        typer.Option(
            "--key", help="Your key: an EVM private key (hex) or a Corda identity.key file."
        ),
    ],
    part: Annotated[
        int | None,
        typer.Option(
            "--part",
            help="Sign as a CHANNEL signer of this part of a transaction coordinated by the "
            "other ledger (needs --channel); without it, as a LOCAL signer of a transaction "
            "coordinated on this ledger.",
        ),
    ] = None,
    channel: Annotated[
        str | None,
        typer.Option("--channel", help="This ledger's cross channel to the coordinator."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Sign a cross transaction as one of its signers: LOCAL on the coordinating ledger, or
    CHANNEL on the ledger across a part's channel (a SIGN packet then proves it to the
    coordinator; a relayer carries it). The transaction runs once every signer has signed.
    A CHANNEL signature sends that ledger only the view of the transaction revealing the part
    (and the parts it links to), never the whole transaction."""
    from kakehashi.cross.auth import corda_key_id
    from kakehashi.cross.tx import InitiateTx
    from kakehashi.ledgers.corda.node.setup import load_key
    from kakehashi.ledgers.evm.client import transact

    try:
        if on not in ("evm", "corda"):
            raise ConfigurationError("--on is evm or corda")
        if (part is None) != (channel is None):
            raise ConfigurationError("--part and --channel go together (a CHANNEL signature)")
        transaction = InitiateTx.decode(_transaction(tx))
        tx_id = transaction.tx_id
        ledgers = Ledgers(config_path)
        kind = "LOCAL" if part is None else "CHANNEL"
        if on == "evm":
            from eth_account import Account

            try:
                account = Account.from_key(key_file.read_text().strip())
            except (OSError, ValueError) as exc:
                raise ConfigurationError(f"cannot read an EVM key from {key_file}: {exc}") from None
            functions = ledgers.auth.functions
            call = (
                functions.sign(transaction.encode())
                if part is None
                else functions.sign_remote(transaction.view(part).encode(), part, channel)
            )
            transact(ledgers.w3, call, sender=account, description=f"{kind} signature")
            signer = account.address
            verified, _ = functions.authentication(tx_id).call()
            status = "VERIFIED" if verified else ("SENT" if part is not None else "PENDING")
        else:
            key = load_key(key_file)
            key_id = corda_key_id(key.public)
            signature = key.sign(tx_id).hex()
            if part is None:
                body: dict[str, Any] = {"tx_id": tx_id.hex(), "kind": kind, "id": key_id.hex()}
                body["signature"] = signature
                status = ledgers.corda_post("/cross/sign", body)["authentication"]
            else:
                view = transaction.view(part).encode().hex()
                body = {"view": view, "index": part, "channel": channel}
                body |= {"id": key_id.hex(), "signature": signature}
                ledgers.corda_post("/cross/sign-remote", body)
                status = "SENT"
            signer = f"0x{key_id.hex()}"
    except KakehashiError as exc:
        _fail(exc)
        return
    answer = {"tx_id": tx_id.hex(), "ledger": on, "kind": kind, "signer": signer, "status": status}
    if as_json:
        print(json.dumps(answer))
        return
    what = "a SIGN packet is on its way to the coordinator" if status == "SENT" else status
    console.print(
        f"signed {tx_id.hex()[:16]}… as {kind} {signer} on the {on} ledger: {what}", markup=False
    )
