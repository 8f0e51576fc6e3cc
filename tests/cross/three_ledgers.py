"""Three ledgers joined by the Cross Framework, every part real, in one test process.

* the embedded EVM chain with the IBC handler, the LCP client and ``contracts/cross/cross_kv.vy``
  on port ``cross`` (as :func:`tests.relayer.support.world` deploys it with ``cross=True``);
* two embedded Corda-model networks, **A** (Bank A) and **B** (Bank B), each with a Corda IBC
  host running its own :class:`~kakehashi.cross.corda_module.CrossModule` on port ``cross``;
* one LCP service (simulation enclave over HTTP on 127.0.0.1) holding a light client of every
  ledger for every path: it keeps any number of clients;
* three linked paths, each relayed by its own :class:`~kakehashi.relayer.path.PathRelayer`
  through the LCP service: ``"a"`` EVM ↔ Corda A and ``"b"`` EVM ↔ Corda B (two ``cross``
  channels on the EVM chain), and ``"ab"`` Corda A ↔ Corda B (each host holds an LCP client of
  the other, as it does of the EVM chain).

Each EVM path is a :class:`tests.relayer.support.World` sharing the chain, the LCP service and
the deployment. Transactions are built by :func:`kv_tx` only and started by :func:`evm_initiate`
/ :func:`corda_initiate` only, so a change in how cross transactions are written or signed is
made in one place.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kakehashi.cross.auth import corda_key_id
from kakehashi.cross.corda_module import (
    CROSS_PORT,
    CROSS_VERSION,
    CrossModule,
)
from kakehashi.cross.kv import kv_call
from kakehashi.cross.status import Decision, PartStatus, part_record
from kakehashi.cross.tx import (
    Account,
    ChannelInfo,
    CommitProtocol,
    ContractTransaction,
    InitiateTx,
    SignerKind,
)
from kakehashi.ibc.clients.lcp import TAG_UPDATE_CLIENT
from kakehashi.ibc.corda_host import CordaIbcHost
from kakehashi.ibc.echo import EchoModule
from kakehashi.ibc.evm_deploy import (
    CROSS_APP_CONTRACT,
    CROSS_AUTH_CONTRACT,
    CROSS_CONTRACT,
    deploy_lcp_stack,
)
from kakehashi.ibc.router import Router
from kakehashi.ibc.types import Height, Order
from kakehashi.lcp.client import LcpServiceClient
from kakehashi.lcp.enclave import Enclave
from kakehashi.lcp.service import create_app
from kakehashi.ledgers.corda.node.setup import EmbeddedNetwork
from kakehashi.ledgers.evm import toolchain
from kakehashi.ledgers.evm.chain import EmbeddedChain, dev_accounts
from kakehashi.ledgers.evm.client import transact
from kakehashi.ledgers.evm.provider import embedded_web3
from kakehashi.ops.serving import serve
from kakehashi.relayer.chains import CordaEndpoint
from kakehashi.relayer.link import link
from kakehashi.relayer.path import PathRelayer, RoundReport, Side
from tests.relayer.support import OPERATOR, PORT, SECRET, World

__all__ = [
    "BANK_B",
    "CORDA_A",
    "CORDA_B",
    "EVM",
    "LEDGERS",
    "ThreeLedgers",
    "corda_initiate",
    "evm_initiate",
    "kv_tx",
    "three_ledgers",
]

EVM, CORDA_A, CORDA_B = "evm", "a", "b"
LEDGERS = (EVM, CORDA_A, CORDA_B)
BANK_B = "O=Bank B, L=Tokyo, C=JP"
EVM_SIGNER = Account(SignerKind.LOCAL, bytes.fromhex(dev_accounts()[0].address[2:]))
NO_PART = 255  # cross_kv.vy: the coordinator runs no part


# ---------------------------------------------------------------------------- transactions


def kv_tx(
    chain_id: str,
    protocol: CommitProtocol,
    parts: Iterable[tuple[ChannelInfo, bytes, bytes]],
    *,
    nonce: int = 1,
    timeout: Height = Height(0, 10**6),
    signer: Account = EVM_SIGNER,
) -> InitiateTx:
    """The cross transaction setting, for each ``(channel, key, value)`` part, ``key`` to
    ``value`` on the ledger at the other end of the coordinator's ``channel`` (for the part the
    coordinator runs itself, any of its cross channels), each part declaring ``b"ok"`` and
    signed by ``signer`` (a LOCAL signer of the coordinator, who initiates)."""
    return InitiateTx(
        chain_id,
        nonce,
        protocol,
        tuple(
            ContractTransaction(channel, (signer,), kv_call(key, value), b"ok")
            for channel, key, value in parts
        ),
        timeout,
    )


def evm_initiate(world: ThreeLedgers, tx: InitiateTx, local: int | None = 0) -> None:
    """The EVM chain coordinates ``tx``, running part ``local`` (None: no part)."""
    index = NO_PART if local is None else local
    transact(world.w3, world.kv.functions.initiate(tx.encode(), index), sender=dev_accounts()[0])


def corda_initiate(module: CrossModule, tx: InitiateTx, local: int | None = 0) -> None:
    """The Corda host of ``module`` coordinates ``tx``, running part ``local``."""
    module.initiate(tx, local)


# ---------------------------------------------------------------------------- the world


@dataclass
class ThreeLedgers:
    """The ledgers, their cross modules and the three relayed paths (module docstring)."""

    evm_a: World  # the path EVM (side a) ↔ Corda A (side b)
    evm_b: World  # the path EVM (side a) ↔ Corda B (side b)
    relayers: dict[str, PathRelayer]  # "a", "b", "ab"
    channels: dict[tuple[str, str], str]  # (this ledger, the other) -> this ledger's channel id

    __test__ = False

    @property
    def w3(self) -> Any:
        return self.evm_a.w3

    @property
    def kv(self) -> Any:
        """The EVM chain's cross module (cross_kv.vy)."""
        return self.evm_a.kv

    @property
    def app(self) -> Any:
        """The EVM chain's cross application (cross_app.vy)."""
        return self.evm_a.app

    def module(self, ledger: str) -> CrossModule:
        """The Corda host ``ledger``'s (``"a"`` / ``"b"``) cross module."""
        module: CrossModule = {CORDA_A: self.evm_a.cross, CORDA_B: self.evm_b.cross}[ledger]
        return module

    def channel(self, here: str, there: str) -> ChannelInfo:
        """``here``'s end of its cross channel to ``there``."""
        return ChannelInfo(CROSS_PORT, self.channels[here, there])

    def tx(
        self,
        coordinator: str,
        protocol: CommitProtocol,
        writes: Iterable[tuple[str, bytes, bytes]],
        nonce: int = 1,
    ) -> InitiateTx:
        """``coordinator``'s transaction with one part per ``(ledger, key, value)``, in order."""
        others = [x for x in LEDGERS if x != coordinator and (coordinator, x) in self.channels]
        parts = [
            (self.channel(coordinator, others[0] if ledger == coordinator else ledger), key, value)
            for ledger, key, value in writes
        ]
        signer = EVM_SIGNER
        if coordinator != EVM:
            key_id = corda_key_id(self.module(coordinator).host.node.party.owning_key)
            signer = Account(SignerKind.LOCAL, key_id)
        return kv_tx(f"kakehashi-{coordinator}", protocol, parts, nonce=nonce, signer=signer)

    # -- reading each ledger ----------------------------------------------------------------------

    def value(self, ledger: str, key: bytes) -> bytes | None:
        """The committed value of ``key`` on ``ledger`` (None: never set)."""
        if ledger == EVM:
            found = bytes(self.app.functions.value(key).call())
            return found or None
        value: bytes | None = self.module(ledger).app.value(key)
        return value

    def locked_by(self, ledger: str, key: bytes) -> bytes | None:
        if ledger == EVM:
            holder = bytes(self.app.functions.writer(key).call())
            return None if holder == bytes(32) else holder
        found: bytes | None = self.module(ledger).app.locked_by(key)
        return found or None

    def any_lock(self, keys: Iterable[bytes] = ()) -> bool:
        """Whether any ledger holds a lock (the EVM chain: also a read lock or an escrow;
        ``keys``: check those keys' write locks by name too)."""
        return (
            any(self.module(x).app.locks() for x in (CORDA_A, CORDA_B))
            or int(self.app.functions.locks_held().call()) > 0
            or any(self.locked_by(EVM, key) is not None for key in keys)
        )

    def outcome(self, coordinator: str, tx: InitiateTx) -> tuple[Decision, bool]:
        """The coordinator's decision on ``tx`` and whether it is done (decided, and every part
        that may hold a prepared state acknowledged the decision)."""
        if coordinator != EVM:
            c = self.module(coordinator).coordinator(tx.tx_id)
            assert c is not None, f"{coordinator} coordinates no {tx.tx_id.hex()}"
            return Decision(c.decision), c.done
        protocol, local, count, decision = self.kv.functions.coordination(tx.tx_id).call()
        assert count, f"the EVM chain coordinates no {tx.tx_id.hex()}"
        if not decision:
            return Decision.UNKNOWN, False
        if protocol == CommitProtocol.SIMPLE:
            return Decision(decision), True
        parts = [self.kv.functions.coordination_part(tx.tx_id, i).call() for i in range(count)]
        targets = [p for i, p in enumerate(parts) if i != local and p[2] and not p[1]]
        return Decision(decision), all(p[3] for p in targets)

    def part(self, ledger: str, tx: InitiateTx, index: int) -> PartStatus:
        """Part ``index`` of ``tx`` as ``ledger`` holds it (as participant or as the coordinator
        running it)."""
        if ledger == EVM:
            status = int(self.kv.functions.parts(part_record(tx.tx_id, index)).call())
            c = self.kv.functions.coordination(tx.tx_id).call()
            if not status and c[2] and c[1] == index:
                status = int(self.kv.functions.coordination_part(tx.tx_id, index).call()[0])
            return PartStatus(status)
        module = self.module(ledger)
        found = module.participant(tx.tx_id).get(index)
        if found is not None:
            return found
        c = module.coordinator(tx.tx_id)
        return c.parts[index] if c is not None and c.local == index else PartStatus.NONE

    def tick(self, ledger: str) -> None:
        """Corda host ``ledger`` makes a new version (stamped with the time now): its clock
        moves on for the other ledgers' clients, with no packet."""
        host = self.module(ledger).host
        host.execute(lambda store: store.set_object("app:tick", "now", time.time_ns().to_bytes(8)))

    # -- relaying ---------------------------------------------------------------------------------

    def relay(self, paths: Iterable[str] | None = None, rounds: int = 4) -> list[RoundReport]:
        """``rounds`` rounds of each path of ``paths`` (default all), path after path; a
        refused message fails."""
        reports = []
        chosen = list(paths) if paths is not None else list(self.relayers)
        for _ in range(rounds):
            for name in chosen:
                report = self.relayers[name].relay_once()
                assert not report.failed, (name, report.failed)
                reports.append(report)
        return reports


def _evm_path(
    stack: ExitStack,
    directory: Path,
    operator: str,
    chain: EmbeddedChain,
    enclave: Enclave,
    url: str,
    deployment: Any,
    contracts: tuple[Any, Any, Any],
) -> World:
    """A Corda network with one node whose host runs a CrossModule, as a support.World of the
    EVM chain (unlinked)."""
    network = EmbeddedNetwork.create(directory, nodes=(operator,))
    stack.callback(network.close)
    echo, module, router = EchoModule(), CrossModule(), Router()
    router.bind(PORT, echo)
    router.bind(CROSS_PORT, module)
    host = CordaIbcHost(network.node(operator), router=router)
    module.attach(host)
    w = World(chain, network, host, echo, enclave, url, deployment)
    w.port, w.version, w.cross = CROSS_PORT, CROSS_VERSION, module
    w.kv, w.app, w.auth = contracts
    stack.callback(w._closers.close)
    return w


def _corda_path(stack: ExitStack, url: str, a: CordaIbcHost, b: CordaIbcHost) -> PathRelayer:
    """The path Corda A ↔ Corda B, linked through the LCP service."""
    lcp = stack.enter_context(LcpServiceClient(url))
    tag = bytes([TAG_UPDATE_CLIENT])
    relayer = PathRelayer(
        Side(CordaEndpoint(a, name="corda-a"), port_id=CROSS_PORT, update_tag=tag),
        Side(CordaEndpoint(b, name="corda-b"), port_id=CROSS_PORT, update_tag=tag),
        lcp,
    )
    link(relayer, lcp, ordering=Order.UNORDERED, version=CROSS_VERSION)
    return relayer


@contextmanager
def three_ledgers(
    tmp_path: Path, *, packet_timeout_s: int = 600, corda_path: bool = True
) -> Iterator[ThreeLedgers]:
    """The three ledgers, linked (module docstring). ``packet_timeout_s``: how long after it is
    sent an EVM coordinator's packet times out; ``corda_path``: link Corda A ↔ Corda B too."""
    with ExitStack() as stack:
        chain = stack.enter_context(EmbeddedChain())
        enclave = Enclave(tmp_path / "lcp", SECRET)
        url = stack.enter_context(serve(create_app(enclave)))
        w3: Any = embedded_web3(chain)
        deployment = deploy_lcp_stack(
            w3,
            sender=dev_accounts()[0],
            port=PORT,
            root_der=enclave.root_certificate,
            cross_module=True,
            packet_timeout_s=packet_timeout_s,
        )
        contracts = tuple(
            w3.eth.contract(address=address, abi=toolchain.compile_contract(name).abi)
            for address, name in (
                (deployment.cross, CROSS_CONTRACT),
                (deployment.cross_app, CROSS_APP_CONTRACT),
                (deployment.cross_auth, CROSS_AUTH_CONTRACT),
            )
        )
        common = (chain, enclave, url, deployment, contracts)
        evm_a = _evm_path(stack, tmp_path / "corda-a", OPERATOR, *common)
        evm_b = _evm_path(stack, tmp_path / "corda-b", BANK_B, *common)
        evm_a.link()
        evm_b.link()
        # each path's relayer pays gas from its own account, as separate relayer processes would
        relayers = {CORDA_A: evm_a.relayer(1), CORDA_B: evm_b.relayer(2)}
        channels: dict[tuple[str, str], str] = {}
        for name, w in ((CORDA_A, evm_a), (CORDA_B, evm_b)):
            assert w.record is not None
            channels[EVM, name] = w.record.a_channel_id
            channels[name, EVM] = w.record.b_channel_id
        if corda_path:
            ab = _corda_path(stack, url, evm_a.host, evm_b.host)
            relayers["ab"] = ab
            channels[CORDA_A, CORDA_B] = ab.a.channel_id
            channels[CORDA_B, CORDA_A] = ab.b.channel_id
        yield ThreeLedgers(evm_a, evm_b, relayers, channels)
