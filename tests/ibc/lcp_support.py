"""The cross-ledger relayer harness with the REAL LCP path towards the EVM chain.

Same ledgers and relayer as :mod:`tests.ibc.cross_support`, but the EVM chain verifies the
Corda-model host through the Vyper LCP client (``contracts/lightclients/lcp_client.vy``,
registered on the IBC handler as client type :data:`~kakehashi.lcp.evm_client.LCP_CLIENT_TYPE`)
instead of the TEST-ONLY signed client:

* the LCP client is a development-mode client trusting the simulation root of an
  :class:`~kakehashi.lcp.enclave.Enclave` (simulation mode); the enclave key is registered from
  the enclave's simulated AVR, checked on-chain by ``avr_verifier.vy``;
* the EVM client is created from the enclave's create-client message for its Corda client
  (``Enclave.create_corda_client`` of the Corda host's client state and attestation);
* :class:`LcpAttestor` takes :class:`~tests.ibc.cross_support.CordaAttestor`'s role: the enclave
  verifies each host attestation / proof and signs UpdateState / VerifyMembership proxy messages;
  the attestor hands them over as the client message / proof bytes the Vyper client verifies
  (``abi.encode(bytes proxy_message, bytes[] signatures)``).

The Corda host keeps its real QBFT client of the chain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kakehashi.ibc.clients.qbft import QbftClient
from kakehashi.ibc.corda_host import CordaIbcHost
from kakehashi.ibc.evm_host import COMMITMENTS_SLOT, EvmIbcHost, deploy_echo_app
from kakehashi.ibc.router import Router
from kakehashi.ibc.types import Height
from kakehashi.lcp import messages
from kakehashi.lcp.enclave import MRENCLAVE, Enclave, SignedMessage
from kakehashi.lcp.evm_client import (
    LCP_CLIENT_TYPE,
    LcpClientState,
    client_message,
    deploy_avr_verifier,
    deploy_lcp_client,
    initial_consensus_state,
    register_enclave_key,
)
from kakehashi.lcp.messages import UpdateStateProxyMessage
from kakehashi.ledgers.corda.model.serialization import serialize
from kakehashi.ledgers.corda.node.setup import EmbeddedNetwork
from kakehashi.ledgers.evm.chain import EmbeddedChain, dev_accounts
from kakehashi.ledgers.evm.provider import embedded_web3
from tests.ibc.cross_support import (
    CORDA_PORT,
    EVM_PORT,
    GAS,
    OPERATOR,
    CordaEndpoint,
    CrossRelayer,
    EvmEndpoint,
    SkewedClock,
)
from tests.ibc.support import RecordingApp

__all__ = [
    "KEY_EXPIRATION_S",
    "SECRET",
    "LcpAttestor",
    "LcpEvmEndpoint",
    "LcpRelayer",
    "build_lcp",
]

SECRET = b"kakehashi cross-ledger LCP test operator secret"
KEY_EXPIRATION_S = 24 * 3600


def _h(height: Any) -> Height:
    return Height(height.revision_number, height.revision_height)


@dataclass
class LcpEvmEndpoint(EvmEndpoint):
    """The EVM endpoint whose client of the Corda host is the Vyper LCP client ``lcp``."""

    lcp: Any = None  # web3 Contract of lightclients/lcp_client.vy

    def state(self) -> tuple[Any, ...]:
        """As :meth:`EvmEndpoint.state`, plus the LCP client's latest height and storage root."""
        lcp_root = self.ibc.w3.eth.get_proof(self.lcp.address, [], "latest")["storageHash"]
        latest = self.lcp.functions.latest_height(self.client_id).call()
        return (*super().state(), tuple(latest), bytes(lcp_root))

    def lcp_latest(self) -> Height:
        rn, rh = self.lcp.functions.latest_height(self.client_id).call()
        return Height(rn, rh)


@dataclass
class LcpAttestor:
    """The enclave side of the EVM's LCP client of the Corda host (CordaAttestor's role).

    ``update`` / ``membership`` / ``non_membership`` return the bytes the EVM handler takes
    (client message / proof: the enclave's signed proxy message); the ``*_signed`` variants
    return the enclave's :class:`SignedMessage` for tests that tamper with it. Whatever the
    enclave's Corda light client rejects raises and nothing is signed."""

    enclave: Enclave
    client_id: str  # the enclave's client of the Corda host
    init: SignedMessage  # the enclave's create-client message
    prefix: bytes  # the Corda host's commitment prefix
    evm_client_id: str = ""
    signed: list[tuple[str, Height, bytes]] = field(default_factory=list)  # (kind, height, msg)
    updates: list[SignedMessage] = field(default_factory=list)  # every UpdateState signed

    __test__ = False

    @classmethod
    def create(cls, enclave: Enclave, host: CordaIbcHost) -> LcpAttestor:
        created = enclave.create_corda_client(serialize(host.client_state()), host.attestation())
        return cls(enclave, created.client_id, created.message, host.prefix)

    def init_message(self) -> UpdateStateProxyMessage:
        message = messages.decode(self.init.message)
        assert isinstance(message, UpdateStateProxyMessage)
        return message

    def client_state(self) -> LcpClientState:
        """A development client trusting this enclave's build (its simulation root is the
        AVR verifier's root)."""
        return LcpClientState(MRENCLAVE, KEY_EXPIRATION_S, development=True)

    def initial_state(self) -> tuple[bytes, bytes]:
        """(client state, consensus state) for the handler's ``create_client``."""
        return self.client_state().encode(), initial_consensus_state(self.init_message())

    def latest_height(self) -> Height:
        return _h(self.enclave.latest_height(self.client_id))

    @staticmethod
    def wrap(signed: SignedMessage) -> bytes:
        return client_message(signed.message, [signed.signature])

    def update_signed(self, attestation: bytes) -> tuple[Height, SignedMessage]:
        post, signed = self.enclave.update_client(self.client_id, attestation)
        self.signed.append(("update", _h(post), signed.message))
        self.updates.append(signed)
        return _h(post), signed

    def update(self, attestation: bytes) -> bytes:
        """Have the enclave verify a host state attestation; its signed UpdateState."""
        return self.wrap(self.update_signed(attestation)[1])

    def membership_signed(
        self, height: Height, proof: bytes, path: bytes, value: bytes
    ) -> SignedMessage:
        """Have the enclave verify ``value`` under ``path`` at ``height``; its statement."""
        signed = self.enclave.verify_membership(
            self.client_id,
            messages.Height(height.revision_number, height.revision_height),
            self.prefix,
            path,
            value,
            proof,
        )
        self.signed.append(("membership", height, signed.message))
        return signed

    def non_membership_signed(self, height: Height, proof: bytes, path: bytes) -> SignedMessage:
        """Have the enclave verify nothing is under ``path`` at ``height``; its statement."""
        signed = self.enclave.verify_non_membership(
            self.client_id,
            messages.Height(height.revision_number, height.revision_height),
            self.prefix,
            path,
            proof,
        )
        self.signed.append(("non-membership", height, signed.message))
        return signed

    def membership(self, height: Height, proof: bytes, path: bytes, value: bytes) -> bytes:
        return self.wrap(self.membership_signed(height, proof, path, value))

    def non_membership(self, height: Height, proof: bytes, path: bytes) -> bytes:
        return self.wrap(self.non_membership_signed(height, proof, path))


@dataclass
class LcpRelayer(CrossRelayer):
    """:class:`CrossRelayer` with the LCP enclave in place of the TEST-ONLY attestor."""

    def create_clients(self) -> None:
        """The EVM's LCP client of the Corda host (created from the enclave's create-client
        message, the enclave key registered from its AVR) and the Corda host's QBFT client."""
        attestor: LcpAttestor = self.attestor  # type: ignore[assignment]
        evm: LcpEvmEndpoint = self.evm  # type: ignore[assignment]
        client_state, consensus = attestor.initial_state()
        evm.client_id = evm.ibc.create_client(LCP_CLIENT_TYPE, client_state, consensus).value
        attestor.evm_client_id = evm.client_id
        register_enclave_key(
            evm.lcp,
            evm.client_id,
            attestor.enclave.attestation().evidence(),
            sender=evm.sender,
            gas=GAS,
        )
        block = evm.height()
        qbft = QbftClient.from_trusted_header(
            evm.header(block),
            list(evm.chain.validators),
            chain_id=evm.chain.chain_id,
            ibc_handler=evm.prefix,
            commitments_slot=COMMITMENTS_SLOT,
        )
        self.corda.client_id = str(self.corda.host.ibc.create_client(qbft))


def build_lcp(chain: EmbeddedChain, network: EmbeddedNetwork, enclave_dir: Path) -> LcpRelayer:
    """Deploy the EVM host (handler, AVR verifier trusting the enclave's simulation root, LCP
    client registered as ``lcp``, echo app on :data:`EVM_PORT`), open a Corda host on
    :data:`OPERATOR` (a RecordingApp on :data:`CORDA_PORT`), open a simulation enclave in
    ``enclave_dir`` and create both clients. Nothing is connected yet."""
    w3 = embedded_web3(chain)
    sender = dev_accounts()[0]
    enclave = Enclave(enclave_dir, SECRET)
    ibc = EvmIbcHost.deploy(w3, sender=sender, gas=GAS)
    verifier = deploy_avr_verifier(w3, enclave.root_certificate, sender=sender)
    lcp = deploy_lcp_client(w3, ibc.address, verifier.address, sender=sender)
    ibc.register_client(LCP_CLIENT_TYPE, lcp.address)
    app = deploy_echo_app(w3, ibc.address, sender=sender)
    ibc.bind_port(EVM_PORT, app.address)
    evm = LcpEvmEndpoint(chain, ibc, app, sender, lcp=lcp)

    recording = RecordingApp()
    router = Router()
    router.bind(CORDA_PORT, recording)
    clock = SkewedClock()
    host = CordaIbcHost(network.node(OPERATOR), router=router, clock=clock)
    corda = CordaEndpoint(host, recording, clock)

    attestor = LcpAttestor.create(enclave, host)
    relayer = LcpRelayer(evm, corda, attestor)  # type: ignore[arg-type]
    relayer.create_clients()
    return relayer
