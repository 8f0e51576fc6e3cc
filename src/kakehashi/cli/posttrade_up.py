"""``kakehashi posttrade up``: a whole post-trade network as processes on 127.0.0.1 — the ledgers,
the LCP service, a relayer, the post-trade contract with its parties, a market to settle in and
(unless ``--no-ui``) the web UI — so that a trade can be entered, approved and settled as a DVP
from the parties' screens or the command line (docs/posttrade.md, "Settlement on a network of
processes").

:func:`start_settlement_network` builds it (the end-to-end tests use it too):

* :class:`~kakehashi.cli.ping.PingNetwork` with three more Corda nodes — the custodian's, the
  securities company's and an outsider's — beside the bank's (the IBC host, issuer of the JPY
  stablecoin), the notary, the EVM node and the LCP service; a cross channel linked by
  ``kakehashi relayer link`` and relayed by ``kakehashi relayer start``;
* ``DIR/posttrade``: the post-trade network (``kakehashi posttrade init --rpc`` on the EVM node,
  parties on development accounts 4 to 8, apart from the relayer's) and its
  ``settlement.json``: the receiving agent BOTKJPJT is the custodian, the delivering agent
  MHCBJPJT the securities company; ISIN JP3633400001 is an ERC-20 on the EVM chain, JPY the
  bank's JPYC;
* the market: the bank issues the custodian JPY 3,000,000 on the Corda model, the securities
  company holds 1,000 shares — enough for the sample trade (1,000 shares at JPY 2,850.5).
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from kakehashi.cli.ping import CORDA_NODE as BANK
from kakehashi.errors import ConfigurationError, KakehashiError

__all__ = [
    "CUSTODIAN_NODE",
    "OUTSIDER_NODE",
    "SECURITIES_NODE",
    "SettlementNetwork",
    "start_settlement_network",
    "up",
]

console = Console()
err_console = Console(stderr=True)

CUSTODIAN_NODE = "O=Domestic Custodian, L=Tokyo, C=JP"
SECURITIES_NODE = "O=Domestic Securities, L=Tokyo, C=JP"
OUTSIDER_NODE = "O=Someone Else, L=Seoul, C=KR"
FIRST_ACCOUNT = 4  # the parties' development accounts: 4..8 (the relayer sends from 1)
START_YEN, START_SHARES = 3_000_000, 1_000
CASH_TOKEN = "JPYC"


@dataclass
class SettlementNetwork:
    """The processes and files of :func:`start_settlement_network`; :meth:`close` stops every
    process."""

    directory: Path
    net: Any  # PingNetwork
    config: Path  # the cross relayer's configuration
    shares: Any  # the ERC-20 contract of the ISIN
    issuer: Any  # the account holding the shares not given out

    @property
    def posttrade(self) -> Path:
        return self.directory / "posttrade"

    def close(self) -> None:
        self.net.close()

    def issue_yen(self, quantity: int, holder: str = CUSTODIAN_NODE) -> None:
        """The bank issues ``quantity`` JPYC to ``holder`` (over its RPC, with its token)."""
        from kakehashi.cli.dvp import post_to_node

        body = {"token": CASH_TOKEN, "quantity": quantity, "holder": holder}
        post_to_node(self.net.node_url(BANK), self.net.node_token_file(BANK), "/rpc/issue", body)

    def give_shares(self, quantity: int, account: str) -> None:
        """The issuer transfers ``quantity`` shares to the EVM ``account``."""
        from kakehashi.ledgers.evm.client import connect, transact

        w3 = connect(self.net.evm_url)
        transact(w3, self.shares.functions.transfer(account, quantity), sender=self.issuer)


def start_settlement_network(
    directory: Path, *, progress: Callable[[str], None] = lambda _text: None
) -> SettlementNetwork:
    """Start and set up everything (module docstring) in ``directory`` (new or empty); on any
    failure every process started is stopped again."""
    from kakehashi.apps.posttrade.demo import DELIVERING_BIC, ISIN, RECEIVING_BIC
    from kakehashi.cli.ping import PingNetwork
    from kakehashi.cli.posttrade import init_network
    from kakehashi.cli.posttrade_dvp import SETTLEMENT_FILE
    from kakehashi.cross.corda_module import CROSS_PORT, CROSS_VERSION
    from kakehashi.cross.http import CROSS_INITIATE_TOKEN
    from kakehashi.ledgers.evm import toolchain
    from kakehashi.ledgers.evm.client import connect, funded_accounts

    if directory.exists() and any(directory.iterdir()):
        raise ConfigurationError(
            f"{directory} is not empty: `kakehashi posttrade up` starts a new network in a new "
            "or empty directory"
        )
    net = PingNetwork(
        directory / "ledgers",
        progress=progress,
        nodes=(CUSTODIAN_NODE, SECURITIES_NODE, OUTSIDER_NODE),
    )
    try:
        progress("starting the EVM node, the notary, the bank and three more Corda nodes, LCP")
        net.start_ledgers()
        progress("deploying the IBC contracts and the Cross Framework on the EVM chain")
        net.deploy()
        config = net.write_config(
            name="cross-relayer",
            port=CROSS_PORT,
            version=CROSS_VERSION,
            link_file="cross-link.json",
        )
        progress("linking the cross channel (kakehashi relayer link)")
        net.link(config, "cross-link.json")
        net.start_relayer("cross-relayer", config)
        progress("the post-trade contract and its parties (kakehashi posttrade init)")
        posttrade = directory / "posttrade"
        parties = init_network(posttrade, net.evm_url, first_account=FIRST_ACCOUNT)["parties"]
        w3 = connect(net.evm_url)
        issuer = funded_accounts(n=1)[0]
        shares = toolchain.deploy(
            w3, "tokens/erc20", "Toyota Motor", "7203", 0, 100_000, sender=issuer
        )
        corda = net.directory / "corda"
        initiate_token = net.node_token_file(BANK).parent / CROSS_INITIATE_TOKEN
        settlement = {
            "relayer_config": str(config),
            "network_map": str(corda / "network-map.toml"),
            # the CSD may ask the host to coordinate, and nothing else of the bank's node
            "host": {"operator": BANK, "token_file": str(initiate_token)},
            "timeout_s": 600,
            "agents": {
                RECEIVING_BIC: {
                    "party": "custodian",
                    "corda": CUSTODIAN_NODE,
                    "node": net.node_url(CUSTODIAN_NODE),
                    "token_file": str(net.node_token_file(CUSTODIAN_NODE)),
                    "key_file": str(net.node_key(CUSTODIAN_NODE)),
                },
                DELIVERING_BIC: {"party": "securities", "corda": SECURITIES_NODE},
            },
            "securities": {ISIN: {"token": shares.address, "decimals": 0}},
            "cash": {"JPY": {"issuer": BANK, "token": CASH_TOKEN, "fraction_digits": 0}},
        }
        (posttrade / SETTLEMENT_FILE).write_text(json.dumps(settlement, indent=2) + "\n")
        network = SettlementNetwork(directory, net, config, shares, issuer)
        progress("the market: JPY 3,000,000 for the custodian, 1,000 shares for the securities")
        network.issue_yen(START_YEN)
        network.give_shares(START_SHARES, parties["securities"]["account"])
        return network
    except BaseException:
        net.close()
        raise


def up(
    directory: Annotated[Path, typer.Argument(help="A new or empty directory for everything.")],
    ui: Annotated[bool, typer.Option("--ui/--no-ui", help="Serve the web UI too.")] = True,
    ui_port: Annotated[
        int, typer.Option("--ui-port", min=1, max=65_535, help="The web UI's port.")
    ] = 8000,
) -> None:
    """Start a whole post-trade network as processes on 127.0.0.1 — both ledgers, LCP, a
    relayer, the post-trade contract and parties, a market, the web UI — and run until
    Ctrl-C (every process is stopped then). Trades entered on it settle as a DVP."""
    from kakehashi.cli.posttrade import DEMO_ROUTE, SAMPLE_TRADE

    def say(text: str) -> None:
        console.print(f"[dim]…[/] {escape(text)}", soft_wrap=True)

    def interrupt(*_: Any) -> None:
        raise KeyboardInterrupt  # SIGTERM as Ctrl-C: every process is stopped on the way out

    # (uvicorn, when it stops, raises the signal that stopped it again: this handler then)
    signal.signal(signal.SIGTERM, interrupt)
    try:
        network = start_settlement_network(directory, progress=say)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except KakehashiError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from None
    try:
        where = network.posttrade
        table = Table(title="processes (logs in " + str(network.net.directory / "logs") + ")")
        table.add_column("process")
        table.add_column("log")
        for name, proc in network.net.processes.items():
            table.add_row(escape(name), escape(str(proc.log)))
        console.print(table)
        console.print(
            f"post-trade network: {where}\n"
            f"  kakehashi posttrade submit F-1 --as asset-manager --trade {where / SAMPLE_TRADE} "
            f"--route {','.join(DEMO_ROUTE)} --dir {where}\n"
            f"  … approve as each, then: kakehashi posttrade settle F-1 --as csd --dir {where}; "
            f"kakehashi posttrade consent F-1 --as custodian / --as securities; settle again",
            markup=False,
            soft_wrap=True,
        )
        with contextlib.suppress(KeyboardInterrupt):
            if ui:
                from kakehashi.cli.ui import ui as serve_ui

                serve_ui(directory=where, port=ui_port)
            else:
                console.print("running; Ctrl-C stops every process", markup=False)
                threading.Event().wait()
    finally:
        console.print("stopping every process", markup=False)
        network.close()
