"""Deploy the IBC stack an EVM chain needs to talk to a ledger through LCP.

:func:`deploy_lcp_stack` deploys, in order: the IBC handler and its logic contracts, the AVR
verifier trusting one root (Intel's attestation root in production; the LCP service's
simulation root in development), the LCP client contract (registered on the handler as
:data:`~kakehashi.lcp.evm_client.LCP_CLIENT_TYPE`), the echo application bound on a port, and
the Cross Framework module (``contracts/cross/cross_kv.vy``) on port ``cross`` with its
application (``cross_app.vy``: key-value state with locks, ERC-20 / ERC-721 escrow) and its
authentication contract (``cross_auth.vy``).
The sender becomes the handler's admin. :class:`EvmDeployment` is what
``kakehashi ibc deploy-evm`` writes (JSON) and a relayer configuration names.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from web3 import Web3

from kakehashi.errors import ConfigurationError
from kakehashi.ibc.evm_host import EvmIbcHost, deploy_echo_app
from kakehashi.lcp.evm_client import LCP_CLIENT_TYPE, deploy_avr_verifier, deploy_lcp_client
from kakehashi.ledgers.evm import toolchain
from kakehashi.ledgers.evm.client import Sender, transact
from kakehashi.lightclients.lcp_attestation import INTEL_SGX_ATTESTATION_ROOT_CA_DER

__all__ = [
    "CROSS_APP_CONTRACT",
    "CROSS_AUTH_CONTRACT",
    "CROSS_CONTRACT",
    "CROSS_PORT",
    "EvmDeployment",
    "deploy_lcp_stack",
]

CROSS_CONTRACT = "cross/cross_kv"
CROSS_APP_CONTRACT = "cross/cross_app"
CROSS_AUTH_CONTRACT = "cross/cross_auth"
CROSS_PORT = "cross"


@dataclass(frozen=True)
class EvmDeployment:
    handler: str
    avr_verifier: str
    lcp_client: str
    echo_app: str
    port: str
    from_block: int
    cross: str = ""  # contracts/cross/cross_kv.vy on port "cross" ("": not deployed)
    cross_app: str = ""  # contracts/cross/cross_app.vy, the application parts run in
    cross_auth: str = ""  # contracts/cross/cross_auth.vy, who signed what

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> EvmDeployment:
        try:
            data = json.loads(path.read_text())
            return cls(**data)
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigurationError(f"{path} is not an EVM IBC deployment: {exc}") from None


def deploy_lcp_stack(
    w3: Web3,
    *,
    sender: Sender,
    port: str = "echo",
    root_der: bytes = INTEL_SGX_ATTESTATION_ROOT_CA_DER,
    gas: int | None = 5_000_000,
    cross_module: bool = True,
    packet_timeout_s: int = 600,
) -> EvmDeployment:
    """Deploy and wire the contracts (module docstring)."""
    from_block = int(w3.eth.block_number)
    ibc = EvmIbcHost.deploy(w3, sender=sender, gas=gas)
    verifier = deploy_avr_verifier(w3, root_der, sender=sender)
    lcp = deploy_lcp_client(w3, ibc.address, verifier.address, sender=sender)
    ibc.register_client(LCP_CLIENT_TYPE, lcp.address)
    app = deploy_echo_app(w3, ibc.address, sender=sender)
    ibc.bind_port(port, app.address)
    cross = cross_app = cross_auth = ""
    if cross_module:
        compiled = toolchain.compile_contract(CROSS_CONTRACT)
        contract = toolchain.deploy(w3, compiled, ibc.address, packet_timeout_s, sender=sender)
        application = toolchain.deploy(
            w3, toolchain.compile_contract(CROSS_APP_CONTRACT), contract.address, sender=sender
        )
        authentication = toolchain.deploy(
            w3, toolchain.compile_contract(CROSS_AUTH_CONTRACT), contract.address, sender=sender
        )
        transact(
            w3, contract.functions.bind(application.address, authentication.address), sender=sender
        )
        ibc.bind_port(CROSS_PORT, contract.address)
        cross, cross_app, cross_auth = (
            contract.address,
            application.address,
            authentication.address,
        )
    return EvmDeployment(
        ibc.address,
        verifier.address,
        lcp.address,
        app.address,
        port,
        from_block,
        cross,
        cross_app,
        cross_auth,
    )
