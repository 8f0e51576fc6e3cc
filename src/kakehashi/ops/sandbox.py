"""A whole path between the two ledgers in one process, every part real: the sandbox the tests,
the benchmarks and the in-process demos run on (development only: a simulation enclave with a
fixed operator secret, the development accounts).

* the embedded EVM chain (py-evm, QBFT seals) with the IBC handler, the AVR verifier trusting the
  LCP service's simulation root, the Vyper LCP client and the echo app on port ``echo``
  (:func:`~kakehashi.ibc.evm_deploy.deploy_lcp_stack`);
* the embedded Corda-model network (real notary) with a Corda IBC host on Bank A and the Python
  :class:`~kakehashi.ibc.echo.EchoModule` on port ``echo``; the host creates LCP clients from
  messages on its own clock;
* the LCP service (:func:`kakehashi.lcp.service.create_app` over a simulation
  :class:`~kakehashi.lcp.enclave.Enclave`) served by uvicorn on 127.0.0.1, reached by the
  relayer through :class:`~kakehashi.lcp.client.LcpServiceClient`;
* a :class:`~kakehashi.relayer.path.PathRelayer` whose side ``a`` is the EVM chain and ``b`` the
  Corda host, linked by :func:`~kakehashi.relayer.link.link`.

:meth:`World.relayer` makes more relayers of the same path (each with its own EVM account), as
separate relayer processes would be.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from eth_account.signers.local import LocalAccount

from kakehashi.cross.corda_module import CROSS_PORT, CROSS_VERSION, CrossModule
from kakehashi.ibc.clients.lcp import TAG_UPDATE_CLIENT
from kakehashi.ibc.corda_host import CordaIbcHost
from kakehashi.ibc.echo import EchoModule
from kakehashi.ibc.evm_deploy import (
    CROSS_APP_CONTRACT,
    CROSS_AUTH_CONTRACT,
    CROSS_CONTRACT,
    EvmDeployment,
    deploy_lcp_stack,
)
from kakehashi.ibc.evm_host import EvmIbcHost
from kakehashi.ibc.router import Router
from kakehashi.ibc.types import Height, Order, Packet
from kakehashi.lcp.client import LcpServiceClient
from kakehashi.lcp.enclave import Enclave
from kakehashi.lcp.service import create_app
from kakehashi.ledgers.corda.node.setup import EmbeddedNetwork
from kakehashi.ledgers.evm import toolchain
from kakehashi.ledgers.evm.chain import EmbeddedChain, dev_accounts
from kakehashi.ledgers.evm.provider import embedded_web3
from kakehashi.ops.serving import serve
from kakehashi.relayer.chains import CordaEndpoint, EvmEndpoint
from kakehashi.relayer.link import LinkRecord, link
from kakehashi.relayer.path import PathRelayer, Side

__all__ = ["GAS", "OPERATOR", "PORT", "SECRET", "VERSION", "World", "world"]

SECRET = b"kakehashi relayer test operator secret"  # the sandbox enclave's sealing secret
OPERATOR = "O=Bank A, L=London, C=GB"
PORT = "echo"
VERSION = "echo-1"
GAS = 5_000_000


@dataclass
class World:
    chain: EmbeddedChain
    network: EmbeddedNetwork
    host: CordaIbcHost
    echo: EchoModule
    enclave: Enclave
    lcp_url: str
    deployment: EvmDeployment
    record: LinkRecord | None = None
    port: str = PORT
    version: str = VERSION
    cross: Any = None  # the Corda host's CrossModule (cross worlds)
    kv: Any = None  # the EVM chain's cross module, contracts/cross/cross_kv.vy (cross worlds)
    app: Any = None  # its application, contracts/cross/cross_app.vy (cross worlds)
    auth: Any = None  # its authentication contract, contracts/cross/cross_auth.vy
    _closers: ExitStack = field(default_factory=ExitStack)

    __test__ = False

    @property
    def w3(self) -> Any:
        return embedded_web3(self.chain)

    def evm_host(self, account: LocalAccount | None = None) -> EvmIbcHost:
        sender = account or dev_accounts()[0]
        return EvmIbcHost(self.w3, self.deployment.handler, sender=sender, gas=GAS)

    def relayer(self, account_index: int = 1, batch_size: int = 100) -> PathRelayer:
        """A relayer of the path (linked or not) paying gas from dev account ``account_index``."""
        lcp = LcpServiceClient(self.lcp_url)
        self._closers.callback(lcp.close)
        evm = EvmEndpoint(
            self.evm_host(dev_accounts()[account_index]),
            from_block=self.deployment.from_block,
        )
        a = Side(evm, port_id=self.port)
        b = Side(CordaEndpoint(self.host), port_id=self.port, update_tag=bytes([TAG_UPDATE_CLIENT]))
        if self.record is not None:
            self.record.apply(a, b)
        return PathRelayer(a, b, lcp, batch_size=batch_size)

    def link(self, ordering: Order = Order.UNORDERED) -> PathRelayer:
        relayer = self.relayer()
        with LcpServiceClient(self.lcp_url) as lcp:
            self.record = link(relayer, lcp, ordering=ordering, version=self.version)
        return relayer

    # -- applications --------------------------------------------------------------------------

    def send_from_evm(
        self, data: bytes, timeout_height: Height | None = None, timeout_timestamp: int = 0
    ) -> Packet:
        assert self.record is not None
        if timeout_height is None and not timeout_timestamp:
            timeout_height = Height(0, 10**9)
        return (
            self.evm_host()
            .send_packet(
                self.deployment.echo_app,
                PORT,
                self.record.a_channel_id,
                data,
                timeout_height=timeout_height,
                timeout_timestamp=timeout_timestamp,
            )
            .value
        )

    def send_from_corda(
        self, data: bytes, timeout_height: Height | None = None, timeout_timestamp: int = 0
    ) -> Packet:
        assert self.record is not None
        if timeout_height is None and not timeout_timestamp:
            timeout_height = Height(0, 10**9)
        packet: Packet = self.host.ibc.send_packet(
            PORT, self.record.b_channel_id, timeout_height or Height(), timeout_timestamp, data
        )
        return packet

    def evm_counters(self) -> dict[str, int]:
        app = self.w3.eth.contract(
            address=self.deployment.echo_app,
            abi=[
                {
                    "type": "function",
                    "name": name,
                    "stateMutability": "view",
                    "inputs": [],
                    "outputs": [{"name": "", "type": "uint256"}],
                }
                for name in ("received", "acknowledged", "timed_out")
            ],
        )
        return {
            name: int(getattr(app.functions, name)().call())
            for name in ("received", "acknowledged", "timed_out")
        }


@contextmanager
def world(
    tmp_path: Path,
    *,
    cross: bool = False,
    block_interval_ms: int | None = None,
    corda_nodes: Sequence[str] | None = None,
    cross_apps: Any = None,
) -> Iterator[World]:
    """Every part of the path, unlinked (see the module docstring). ``cross``: the path is on
    port ``cross`` between the Corda host's :class:`~kakehashi.cross.corda_module.CrossModule`
    and the EVM chain's ``contracts/cross/cross_kv.vy``. ``block_interval_ms``: the chain seals
    a block at this interval (default: one block per transaction). ``corda_nodes``: the Corda
    network's nodes (the first runs the host); ``cross_apps``: the cross module's
    ``app_factory``."""
    with ExitStack() as stack:
        network = (
            EmbeddedNetwork.create(tmp_path / "corda")
            if corda_nodes is None
            else EmbeddedNetwork.create(tmp_path / "corda", nodes=corda_nodes)
        )
        stack.callback(network.close)
        chain = stack.enter_context(
            EmbeddedChain()
            if block_interval_ms is None
            else EmbeddedChain(block_mode="interval", interval_ms=block_interval_ms)
        )
        enclave = Enclave(tmp_path / "lcp", SECRET)
        url = stack.enter_context(serve(create_app(enclave)))
        w3 = embedded_web3(chain)
        deployment = deploy_lcp_stack(
            w3,
            sender=dev_accounts()[0],
            port=PORT,
            root_der=enclave.root_certificate,
            cross_module=cross,
        )
        echo = EchoModule()
        router = Router()
        router.bind(PORT, echo)
        module = kv = app = auth = None
        if cross:
            module = CrossModule() if cross_apps is None else CrossModule(app_factory=cross_apps)
            router.bind(CROSS_PORT, module)
            kv, app, auth = (
                w3.eth.contract(
                    address=cast(Any, address), abi=toolchain.compile_contract(name).abi
                )
                for address, name in (
                    (deployment.cross, CROSS_CONTRACT),
                    (deployment.cross_app, CROSS_APP_CONTRACT),
                    (deployment.cross_auth, CROSS_AUTH_CONTRACT),
                )
            )
        host = CordaIbcHost(network.node(OPERATOR), router=router)
        w = World(chain, network, host, echo, enclave, url, deployment)
        if cross:
            assert module is not None
            module.attach(host)
            w.port, w.version, w.cross, w.kv = CROSS_PORT, CROSS_VERSION, module, kv
            w.app, w.auth = app, auth
        stack.callback(w._closers.close)
        yield w
