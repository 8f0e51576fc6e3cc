"""``kakehashi relayer link``: LCP clients on both ledgers, then a connection and a channel.

For each ledger X of the path, with Y the other ledger:

1. the LCP service creates its light client of X from X's latest header (EVM: a QBFT header and
   the validator set the chain reports at that block; Corda model: the host's client state and
   latest attestation) and signs the create-client UpdateState;
2. Y gets an LCP client of X (``MsgCreateClient``) trusting the service's enclave build
   (MRENCLAVE) under the given key expiry — in development mode, the service's simulation root;
3. the enclave key is registered on that client from the service's attestation evidence
   (checked by the ledger: on the EVM chain the AVR's RSA signature is verified on-chain).

Then :meth:`~kakehashi.relayer.path.PathRelayer.open_connection` and
:meth:`~kakehashi.relayer.path.PathRelayer.open_channel` run the ICS-03 / ICS-04 handshakes.
Every identifier ends up in a :class:`LinkRecord` the relayer is started with.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from eth_utils import to_checksum_address

from kakehashi.errors import ConfigurationError, IbcError
from kakehashi.ibc import msgs
from kakehashi.ibc.clients import lcp as lcp_ibc_client
from kakehashi.ibc.evm_host import COMMITMENTS_SLOT
from kakehashi.ibc.types import Order
from kakehashi.lcp import evm_client
from kakehashi.lcp.enclave import CreatedClient
from kakehashi.lcp.messages import UpdateStateProxyMessage, decode
from kakehashi.ledgers.corda.model.serialization import serialize
from kakehashi.ledgers.evm import client as evm_rpc
from kakehashi.ledgers.evm import toolchain
from kakehashi.lightclients import lcp as lcp_lightclient
from kakehashi.lightclients.lcp_attestation import AvrEvidence
from kakehashi.relayer.chains import CordaEndpoint, EvmEndpoint, Failed, Submitted
from kakehashi.relayer.path import PathRelayer, Side

__all__ = ["LcpLinkApi", "LinkRecord", "create_clients", "link", "register_key", "rotate_key"]

log = logging.getLogger("kakehashi.relayer")

DEFAULT_KEY_EXPIRATION_S = 7 * 24 * 3600


class LcpLinkApi(Protocol):
    """What linking needs of the LCP service (:class:`~kakehashi.lcp.client.LcpServiceClient`)."""

    def attestation(self) -> Any: ...

    def create_qbft_client(
        self,
        header: bytes,
        validators: list[bytes],
        *,
        chain_id: int,
        ibc_handler: bytes,
        commitments_slot: int = 0,
    ) -> CreatedClient: ...

    def create_corda_client(self, client_state: bytes, attestation: bytes) -> CreatedClient: ...


@dataclass
class LinkRecord:
    """The identifiers of one linked path (what ``kakehashi relayer link`` writes)."""

    a_client_id: str
    a_enclave_client_id: str
    a_connection_id: str
    a_channel_id: str
    b_client_id: str
    b_enclave_client_id: str
    b_connection_id: str
    b_channel_id: str

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> LinkRecord:
        try:
            data = json.loads(path.read_text())
            return cls(**{k: str(data[k]) for k in cls.__dataclass_fields__})
        except FileNotFoundError:
            raise ConfigurationError(
                f"{path} does not exist: run `kakehashi relayer link --config ...` first"
            ) from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigurationError(f"{path} is not a link record: {exc}") from None

    def apply(self, a: Side, b: Side) -> None:
        a.client_id, a.enclave_client_id = self.a_client_id, self.a_enclave_client_id
        a.connection_id, a.channel_id = self.a_connection_id, self.a_channel_id
        b.client_id, b.enclave_client_id = self.b_client_id, self.b_enclave_client_id
        b.connection_id, b.channel_id = self.b_connection_id, self.b_channel_id

    @classmethod
    def of(cls, a: Side, b: Side) -> LinkRecord:
        return cls(
            a.client_id,
            a.enclave_client_id,
            a.connection_id,
            a.channel_id,
            b.client_id,
            b.enclave_client_id,
            b.connection_id,
            b.channel_id,
        )


def _enclave_client_of(side: Side, lcp: LcpLinkApi) -> CreatedClient:
    """The service's light client of ``side``'s ledger, from its latest header."""
    endpoint = side.endpoint
    height = endpoint.latest_height()
    header = endpoint.client_update_message(height)
    if isinstance(endpoint, EvmEndpoint):
        w3 = endpoint.ibc.w3
        validators = evm_rpc.rpc(
            w3, "qbft_getValidatorsByBlockNumber", [hex(height.revision_height)]
        )
        return lcp.create_qbft_client(
            header,
            [bytes.fromhex(str(v)[2:]) for v in validators],
            chain_id=int(w3.eth.chain_id),
            ibc_handler=endpoint.prefix,
            commitments_slot=COMMITMENTS_SLOT,
        )
    if isinstance(endpoint, CordaEndpoint):
        return lcp.create_corda_client(serialize(endpoint.host.client_state()), header)
    raise ConfigurationError(f"no LCP light client for a {type(endpoint).__name__}")


def _create_on(
    host: Side, created: CreatedClient, evidence: Any, key_expiration_s: int, development: bool
) -> str:
    """Create on ``host``'s ledger the LCP client of the other ledger; register the key."""
    endpoint = host.endpoint
    init = decode(created.message.message)
    assert isinstance(init, UpdateStateProxyMessage)
    mrenclave = bytes(evidence.mrenclave)
    if isinstance(endpoint, EvmEndpoint):
        state = evm_client.LcpClientState(mrenclave, key_expiration_s, development=development)
        msg = msgs.MsgCreateClient(
            evm_client.LCP_CLIENT_TYPE, state.encode(), evm_client.initial_consensus_state(init)
        )
        client_id = _submitted(host, msg)
        host.client_id = client_id
        register_key(host, evidence)
        return client_id
    if isinstance(endpoint, CordaEndpoint):
        policy = lcp_lightclient.LcpClientState(mrenclave, key_expiration_s)
        if development:  # trust the service's simulation root and debug enclaves
            policy = replace(
                policy,
                root_certificates=(bytes(evidence.root_certificate),),
                development=True,
                allow_debug_enclave=True,
            )
        msg = msgs.MsgCreateClient(
            lcp_ibc_client.CLIENT_TYPE,
            lcp_ibc_client.encode_client_state(policy),
            created.message.message,
        )
        client_id = _submitted(host, msg)
        host.client_id = client_id
        register_key(host, evidence)
        return client_id
    raise ConfigurationError(f"no LCP client for a {type(endpoint).__name__}")


def register_key(host: Side, evidence: Any) -> None:
    """Register the enclave key of ``evidence`` (an attestation with ``avr``, ``signature``,
    ``signing_cert``) on ``host``'s LCP client ``host.client_id``; the ledger checks the AVR."""
    endpoint = host.endpoint
    if isinstance(endpoint, EvmEndpoint):
        address = endpoint.ibc.handler.functions.client_impls(host.client_id).call()
        contract = endpoint.ibc.w3.eth.contract(
            address=to_checksum_address(address),
            abi=toolchain.compile_contract(evm_client.LCP_CLIENT_CONTRACT).abi,
        )
        evm_client.register_enclave_key(
            contract,
            host.client_id,
            _evidence(evidence),
            sender=endpoint.ibc.sender,
            gas=endpoint.ibc.gas,
        )
    elif isinstance(endpoint, CordaEndpoint):
        ev = _evidence(evidence)
        register = lcp_ibc_client.encode_register_enclave_key(ev.avr, ev.signature, ev.signing_cert)
        _submitted(host, msgs.MsgUpdateClient(host.client_id, register))
    else:
        raise ConfigurationError(f"no LCP client for a {type(endpoint).__name__}")
    log.info(
        "event=link.key_registered ledger=%s client_id=%s enclave_key=0x%s",
        host.name,
        host.client_id,
        bytes(getattr(evidence, "enclave_key", getattr(evidence, "address", b""))).hex(),
    )


def rotate_key(a: Side, b: Side, lcp: Any) -> bytes:
    """Rotate the LCP service's key with no gap: stage a new attested key (the current one keeps
    signing), register it on both ledgers' clients, then make it the signing key. Returns the
    new key's address. The old key stays registered until it expires on each client."""
    staged = lcp.rotate_key(activate=False)
    for side in (a, b):
        register_key(side, staged)
    lcp.activate_key(staged.address)
    log.info("event=link.key_rotated enclave_key=0x%s", staged.address.hex())
    return bytes(staged.address)


def _evidence(evidence: Any) -> AvrEvidence:
    return AvrEvidence(str(evidence.avr), bytes(evidence.signature), bytes(evidence.signing_cert))


def _submitted(side: Side, msg: msgs.Msg) -> str:
    outcome = side.endpoint.submit([msg])[0]
    if isinstance(outcome, Failed):
        raise outcome.error
    if not isinstance(outcome, Submitted):
        raise IbcError(f"{side.name} did not apply {type(msg).__name__}: {outcome}")
    return str(outcome.value)


def create_clients(
    a: Side,
    b: Side,
    lcp: LcpLinkApi,
    *,
    key_expiration_s: int = DEFAULT_KEY_EXPIRATION_S,
    development: bool = True,
) -> None:
    """Steps 1–3 of the module docstring for both ledgers; fills the sides' client ids."""
    evidence = lcp.attestation()
    for this, other in ((a, b), (b, a)):
        created = _enclave_client_of(this, lcp)
        this.enclave_client_id = created.client_id
        other.client_id = _create_on(other, created, evidence, key_expiration_s, development)
        log.info(
            "event=link.client ledger=%s client_id=%s tracks=%s enclave_client_id=%s",
            other.name,
            other.client_id,
            this.name,
            this.enclave_client_id,
        )


def link(
    relayer: PathRelayer,
    lcp: LcpLinkApi,
    *,
    ordering: Order = Order.UNORDERED,
    version: str,
    key_expiration_s: int = DEFAULT_KEY_EXPIRATION_S,
    development: bool = True,
) -> LinkRecord:
    """Clients, connection and channel for ``relayer``'s path (module docstring)."""
    create_clients(
        relayer.a, relayer.b, lcp, key_expiration_s=key_expiration_s, development=development
    )
    relayer.open_connection()
    relayer.open_channel(ordering, version)
    return LinkRecord.of(relayer.a, relayer.b)
