"""Relayer harness between the embedded EVM chain and the embedded Corda-model network.

Two ledger endpoints with one interface (Hermes' ``ChainEndpoint``, in miniature):

* :class:`EvmEndpoint`: the Vyper IBC handler (:class:`~kakehashi.ibc.evm_host.EvmIbcHost`) on
  an :class:`~kakehashi.ledgers.evm.chain.EmbeddedChain`, the echo app bound on its port and a
  TEST-ONLY signed client of the Corda host;
* :class:`CordaEndpoint`: a :class:`~kakehashi.ibc.corda_host.CordaIbcHost` on one node of an
  :class:`~kakehashi.ledgers.corda.node.setup.EmbeddedNetwork` (real notary), a
  :class:`~tests.ibc.support.RecordingApp` bound on its port and the real
  :class:`~kakehashi.ibc.clients.qbft.QbftClient` of the EVM chain.

:class:`CrossRelayer` plays the relayer: it reads one ledger (headers, proofs, values, ends)
and submits bytes to the other (``Packet.encode()`` bytes, proofs, headers). It is trusted by
neither ledger. Towards the EVM chain it goes through :class:`CordaAttestor`, the stand-in (for
this issue only) of the LCP enclave of the next issue: it verifies every Corda-model header and
proof with the real Corda light client and signs a statement for the EVM's TEST-ONLY client only
when that verification passes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from eth_keys import keys
from eth_utils import keccak

from kakehashi.errors import VerificationError
from kakehashi.ibc import host as paths
from kakehashi.ibc.client import ClientStatus
from kakehashi.ibc.clients.corda import CordaClient
from kakehashi.ibc.clients.qbft import QbftClient
from kakehashi.ibc.corda_host import CordaIbcHost
from kakehashi.ibc.evm_host import (
    COMMITMENTS_SLOT,
    TEST_SIGNED_CLIENT_TYPE,
    EvmIbcHost,
    deploy_echo_app,
    deploy_test_signed_client,
    sign_test_membership,
    sign_test_update,
    signed_client_state,
    signed_consensus_state,
)
from kakehashi.ibc.router import Router
from kakehashi.ibc.types import (
    ChannelCounterparty,
    ChannelEnd,
    ConnectionCounterparty,
    ConnectionEnd,
    Height,
    Order,
    Packet,
    Version,
)
from kakehashi.ledgers.corda.node.setup import EmbeddedNetwork
from kakehashi.ledgers.evm.chain import EmbeddedChain, dev_accounts
from kakehashi.ledgers.evm.provider import embedded_web3
from kakehashi.lightclients.corda import CordaClientState
from tests.ibc.support import RecordingApp

__all__ = [
    "CORDA_PORT",
    "EVM_PORT",
    "GAS",
    "OPERATOR",
    "TEST_KEY",
    "VERSION",
    "CordaAttestor",
    "CordaEndpoint",
    "CrossRelayer",
    "Endpoint",
    "EvmEndpoint",
    "SkewedClock",
    "build",
]

TEST_KEY = keccak(b"kakehashi cross-ledger test signer (stand-in for the LCP enclave key)")
GAS = 5_000_000  # explicit: EvmIbcHost checks with one eth_call instead of estimating
EVM_PORT = "echo"
CORDA_PORT = "pyecho"
VERSION = "echo-1"
OPERATOR = "O=Bank A, L=London, C=GB"
_NS = 1_000_000_000


class Endpoint(Protocol):
    """One ledger as the relayer sees it: queries, proofs, and the IBC messages it accepts."""

    name: str
    port: str
    client_id: str  # this ledger's client of the other ledger

    @property
    def prefix(self) -> bytes: ...
    def height(self) -> Height: ...
    def timestamp_ns(self) -> int: ...
    def header(self, height: Height) -> bytes: ...
    def prove(self, path: bytes, height: Height) -> bytes: ...
    def value(self, path: bytes, height: Height | None = None) -> bytes | None: ...
    def state(self) -> tuple[Any, ...]: ...
    def connection(self, connection_id: str) -> ConnectionEnd | None: ...
    def channel(self, channel_id: str) -> ChannelEnd | None: ...
    def update_client(self, message: bytes, now_ns: int) -> Height: ...
    def conn_open_init(self, counterparty: ConnectionCounterparty, delay: int = 0) -> str: ...
    def conn_open_try(
        self,
        counterparty: ConnectionCounterparty,
        versions: tuple[Version, ...],
        proof: bytes,
        height: Height,
        delay: int = 0,
    ) -> str: ...
    def conn_open_ack(
        self, connection_id: str, cp_connection_id: str, version: Version, proof: bytes, h: Height
    ) -> None: ...
    def conn_open_confirm(self, connection_id: str, proof: bytes, height: Height) -> None: ...
    def chan_open_init(self, order: Order, connection_id: str, cp_port: str) -> str: ...
    def chan_open_try(
        self,
        order: Order,
        connection_id: str,
        counterparty: ChannelCounterparty,
        cp_version: str,
        proof: bytes,
        height: Height,
    ) -> str: ...
    def chan_open_ack(
        self, channel_id: str, cp_channel_id: str, cp_version: str, proof: bytes, h: Height
    ) -> None: ...
    def chan_open_confirm(self, channel_id: str, proof: bytes, height: Height) -> None: ...
    def chan_close_init(self, channel_id: str) -> None: ...
    def chan_close_confirm(self, channel_id: str, proof: bytes, height: Height) -> None: ...
    def send(
        self, channel_id: str, data: bytes, timeout_height: Height, timeout_timestamp: int
    ) -> Packet: ...
    def recv(self, packet: Packet, proof: bytes, height: Height) -> bytes | None: ...
    def acknowledge(self, packet: Packet, ack: bytes, proof: bytes, height: Height) -> None: ...
    def timeout(self, packet: Packet, proof: bytes, height: Height, next_recv: int) -> None: ...


# ------------------------------------------------------------------------------------ EVM


@dataclass
class EvmEndpoint:
    chain: EmbeddedChain
    ibc: EvmIbcHost
    app: Any  # web3 Contract of ibc/echo_app.vy
    sender: Any
    name: str = "evm"
    port: str = EVM_PORT
    client_id: str = ""

    @property
    def prefix(self) -> bytes:
        return self.ibc.prefix

    def height(self) -> Height:
        return self.ibc.height()

    def timestamp_ns(self) -> int:
        return self.ibc.timestamp_ns()

    def header(self, height: Height) -> bytes:
        return self.ibc.header(height.revision_height)

    def prove(self, path: bytes, height: Height) -> bytes:
        return self.ibc.prove(path, height.revision_height)

    def value(self, path: bytes, height: Height | None = None) -> bytes | None:
        block = "latest" if height is None else height.revision_height
        value = self.ibc.commitment(path, block)
        return None if value == bytes(32) else value

    def state(self) -> tuple[Any, ...]:
        """The head block, the handler's storage root and the app's counters."""
        account = self.ibc.get_proof(b"state")
        counters = tuple(
            getattr(self.app.functions, name)().call()
            for name in (
                "received",
                "acknowledged",
                "timed_out",
                "open_channels",
                "closed_channels",
            )
        )
        return self.height(), account["storageHash"], counters

    def mine(self, blocks: int = 1) -> None:
        """Advance the chain by ``blocks`` blocks (one self-transfer each)."""
        w3 = self.ibc.w3
        for _ in range(blocks):
            tx = {
                "to": self.sender.address,
                "value": 0,
                "gas": 21_000,
                "maxFeePerGas": 10**10,
                "maxPriorityFeePerGas": 1,
                "nonce": w3.eth.get_transaction_count(self.sender.address, "pending"),
                "chainId": w3.eth.chain_id,
            }
            w3.eth.send_raw_transaction(self.sender.sign_transaction(tx).raw_transaction)

    def connection(self, connection_id: str) -> ConnectionEnd | None:
        return self.ibc.connection(connection_id)

    def channel(self, channel_id: str) -> ChannelEnd | None:
        return self.ibc.channel(self.port, channel_id)

    def update_client(self, message: bytes, now_ns: int) -> Height:
        return self.ibc.update_client(self.client_id, message).value

    def conn_open_init(self, counterparty: ConnectionCounterparty, delay: int = 0) -> str:
        return self.ibc.conn_open_init(self.client_id, counterparty, delay).value

    def conn_open_try(
        self,
        counterparty: ConnectionCounterparty,
        versions: tuple[Version, ...],
        proof: bytes,
        height: Height,
        delay: int = 0,
    ) -> str:
        return self.ibc.conn_open_try(
            counterparty, self.client_id, versions, proof, height, delay
        ).value

    def conn_open_ack(
        self, connection_id: str, cp_connection_id: str, version: Version, proof: bytes, h: Height
    ) -> None:
        self.ibc.conn_open_ack(connection_id, cp_connection_id, version, proof, h)

    def conn_open_confirm(self, connection_id: str, proof: bytes, height: Height) -> None:
        self.ibc.conn_open_confirm(connection_id, proof, height)

    def chan_open_init(self, order: Order, connection_id: str, cp_port: str) -> str:
        counterparty = ChannelCounterparty(cp_port, "")
        return self.ibc.chan_open_init(
            self.port, order, [connection_id], counterparty, VERSION
        ).value

    def chan_open_try(
        self,
        order: Order,
        connection_id: str,
        counterparty: ChannelCounterparty,
        cp_version: str,
        proof: bytes,
        height: Height,
    ) -> str:
        return self.ibc.chan_open_try(
            self.port, order, [connection_id], counterparty, cp_version, cp_version, proof, height
        ).value

    def chan_open_ack(
        self, channel_id: str, cp_channel_id: str, cp_version: str, proof: bytes, h: Height
    ) -> None:
        self.ibc.chan_open_ack(self.port, channel_id, cp_version, cp_channel_id, proof, h)

    def chan_open_confirm(self, channel_id: str, proof: bytes, height: Height) -> None:
        self.ibc.chan_open_confirm(self.port, channel_id, proof, height)

    def chan_close_init(self, channel_id: str) -> None:
        self.ibc.chan_close_init(self.port, channel_id)

    def chan_close_confirm(self, channel_id: str, proof: bytes, height: Height) -> None:
        self.ibc.chan_close_confirm(self.port, channel_id, proof, height)

    def send(
        self, channel_id: str, data: bytes, timeout_height: Height, timeout_timestamp: int
    ) -> Packet:
        return self.ibc.send_packet(
            self.app.address,
            self.port,
            channel_id,
            data,
            timeout_height=timeout_height,
            timeout_timestamp=timeout_timestamp,
        ).value

    def recv(self, packet: Packet, proof: bytes, height: Height) -> bytes | None:
        return self.ibc.recv_packet(packet, proof, height).value

    def acknowledge(self, packet: Packet, ack: bytes, proof: bytes, height: Height) -> None:
        self.ibc.acknowledge_packet(packet, ack, proof, height)

    def timeout(self, packet: Packet, proof: bytes, height: Height, next_recv: int) -> None:
        self.ibc.timeout_packet(packet, proof, height, next_recv)


# ---------------------------------------------------------------------------------- Corda


@dataclass
class SkewedClock:
    """The Corda operator's clock, ``skew_ns`` ahead of the wall clock; a test moves it forward
    (by a few seconds: the notary accepts a host time within the transaction's time window,
    ±30 s around it) to let the host's time pass a packet's timeout timestamp."""

    skew_ns: int = 0

    def __call__(self) -> int:
        return time.time_ns() + self.skew_ns


@dataclass
class CordaEndpoint:
    host: CordaIbcHost
    app: RecordingApp
    clock: SkewedClock
    name: str = "corda"
    port: str = CORDA_PORT
    client_id: str = ""

    @property
    def prefix(self) -> bytes:
        return self.host.prefix

    def height(self) -> Height:
        return self.host.height

    def timestamp_ns(self) -> int:
        return self.host.timestamp_ns

    def header(self, height: Height) -> bytes:
        return self.host.attestation(height)

    def prove(self, path: bytes, height: Height) -> bytes:
        return self.host.prove(path, height)

    def value(self, path: bytes, height: Height | None = None) -> bytes | None:
        return self.host.value_at(path, height)

    def state(self) -> tuple[Any, ...]:
        """The host version and root, and what the app has seen."""
        app = self.app
        counts = (len(app.received), len(app.acknowledged), len(app.timed_out), len(app.events))
        return self.host.version, self.host.smt_root, counts

    def connection(self, connection_id: str) -> ConnectionEnd | None:
        return self.host.store.get_connection(connection_id)

    def channel(self, channel_id: str) -> ChannelEnd | None:
        return self.host.store.get_channel(self.port, channel_id)

    def update_client(self, message: bytes, now_ns: int) -> Height:
        height: Height = self.host.ibc.update_client(self.client_id, message, now_ns)
        return height

    def conn_open_init(self, counterparty: ConnectionCounterparty, delay: int = 0) -> str:
        return str(self.host.ibc.conn_open_init(self.client_id, counterparty, None, delay))

    def conn_open_try(
        self,
        counterparty: ConnectionCounterparty,
        versions: tuple[Version, ...],
        proof: bytes,
        height: Height,
        delay: int = 0,
    ) -> str:
        return str(
            self.host.ibc.conn_open_try(
                self.client_id, counterparty, versions, delay, proof, height
            )
        )

    def conn_open_ack(
        self, connection_id: str, cp_connection_id: str, version: Version, proof: bytes, h: Height
    ) -> None:
        self.host.ibc.conn_open_ack(connection_id, cp_connection_id, version, proof, h)

    def conn_open_confirm(self, connection_id: str, proof: bytes, height: Height) -> None:
        self.host.ibc.conn_open_confirm(connection_id, proof, height)

    def chan_open_init(self, order: Order, connection_id: str, cp_port: str) -> str:
        counterparty = ChannelCounterparty(cp_port, "")
        return str(
            self.host.ibc.chan_open_init(self.port, order, [connection_id], counterparty, VERSION)
        )

    def chan_open_try(
        self,
        order: Order,
        connection_id: str,
        counterparty: ChannelCounterparty,
        cp_version: str,
        proof: bytes,
        height: Height,
    ) -> str:
        return str(
            self.host.ibc.chan_open_try(
                self.port, order, [connection_id], counterparty, cp_version, proof, height
            )
        )

    def chan_open_ack(
        self, channel_id: str, cp_channel_id: str, cp_version: str, proof: bytes, h: Height
    ) -> None:
        self.host.ibc.chan_open_ack(self.port, channel_id, cp_channel_id, cp_version, proof, h)

    def chan_open_confirm(self, channel_id: str, proof: bytes, height: Height) -> None:
        self.host.ibc.chan_open_confirm(self.port, channel_id, proof, height)

    def chan_close_init(self, channel_id: str) -> None:
        self.host.ibc.chan_close_init(self.port, channel_id)

    def chan_close_confirm(self, channel_id: str, proof: bytes, height: Height) -> None:
        self.host.ibc.chan_close_confirm(self.port, channel_id, proof, height)

    def send(
        self, channel_id: str, data: bytes, timeout_height: Height, timeout_timestamp: int
    ) -> Packet:
        packet: Packet = self.host.ibc.send_packet(
            self.port, channel_id, timeout_height, timeout_timestamp, data
        )
        return packet

    def recv(self, packet: Packet, proof: bytes, height: Height) -> bytes | None:
        ack: bytes | None = self.host.ibc.recv_packet(packet, proof, height)
        return ack

    def acknowledge(self, packet: Packet, ack: bytes, proof: bytes, height: Height) -> None:
        self.host.ibc.acknowledge_packet(packet, ack, proof, height)

    def timeout(self, packet: Packet, proof: bytes, height: Height, next_recv: int) -> None:
        self.host.ibc.timeout_packet(packet, proof, height, next_recv)


# ------------------------------------------------------------- the LCP enclave stand-in


@dataclass
class CordaAttestor:
    """TEST-ONLY stand-in for the LCP enclave (next issue): it keeps the real Corda light client
    (:class:`~kakehashi.ibc.clients.corda.CordaClient`) of the Corda-model host and signs, with
    the test key, statements for the EVM's TEST-ONLY signed client — only about headers and
    proofs that client has verified. Whatever the light client rejects raises
    :class:`~kakehashi.errors.VerificationError` and nothing is signed."""

    key: bytes
    client: CordaClient
    evm_client_id: str = ""
    signed: list[tuple[str, Height, bytes]] = field(default_factory=list)

    __test__ = False

    @classmethod
    def trusting(cls, key: bytes, state: CordaClientState, attestation: bytes) -> CordaAttestor:
        return cls(key, CordaClient.from_attestation(state, attestation))

    @property
    def signer(self) -> str:
        return str(keys.PrivateKey(self.key).public_key.to_checksum_address())

    def _require_active(self) -> None:
        if self.client.status(time.time_ns()) is not ClientStatus.ACTIVE:
            raise VerificationError("the Corda light client is frozen: nothing more is signed")

    def initial_state(self) -> tuple[bytes, bytes]:
        """(client state, consensus state) for creating the EVM's client at the latest height."""
        height = self.client.latest_height()
        consensus = self.client.consensus[height.revision_height]
        return signed_client_state(self.signer), signed_consensus_state(
            height, consensus.timestamp_ns, consensus.smt_root
        )

    def update(self, attestation: bytes) -> bytes:
        """Verify a host state attestation; sign the EVM client's update message for it."""
        self._require_active()
        height = self.client.update(attestation, time.time_ns())
        self._require_active()  # a conflicting attestation froze the client: sign nothing
        consensus = self.client.consensus[height.revision_height]
        message = sign_test_update(
            self.key, self.evm_client_id, height, consensus.timestamp_ns, consensus.smt_root
        )
        self.signed.append(("update", height, consensus.smt_root))
        return message

    def membership(self, height: Height, proof: bytes, path: bytes, value: bytes) -> bytes:
        """Verify ``value`` under ``path`` at ``height``; sign the statement."""
        self._require_active()
        self.client.verify_membership(height, proof, self.client.prefix, path, value)
        self.signed.append(("membership", height, path))
        return sign_test_membership(
            self.key, self.evm_client_id, height, self.client.prefix, path, value
        )

    def non_membership(self, height: Height, proof: bytes, path: bytes) -> bytes:
        """Verify that nothing is under ``path`` at ``height``; sign the absence statement."""
        self._require_active()
        self.client.verify_non_membership(height, proof, self.client.prefix, path)
        self.signed.append(("non-membership", height, path))
        return sign_test_membership(
            self.key, self.evm_client_id, height, self.client.prefix, path, bytes(32)
        )


# ------------------------------------------------------------------------------ relayer


@dataclass
class CrossRelayer:
    """The relayer between the two ledgers; every method passes bytes read from one ledger to
    the other, which verifies them. Identifiers of the one path it serves are kept here."""

    evm: EvmEndpoint
    corda: CordaEndpoint
    attestor: CordaAttestor
    connection: dict[str, str] = field(default_factory=dict)  # endpoint name -> connection id
    channel: dict[str, str] = field(default_factory=dict)  # endpoint name -> channel id

    def other(self, side: Endpoint) -> Endpoint:
        return self.corda if side is self.evm else self.evm

    def now_ns(self) -> int:
        """What the relayer tells the Corda host is "now" for a QBFT header: the later of the
        Corda operator's clock and the chain's head. The embedded chain seals one block per
        transaction, each at least a second after its parent, so in a fast test its clock runs
        ahead of the wall clock (a real chain's does not)."""
        return max(self.corda.clock(), self.evm.timestamp_ns())

    # -- clients and proofs ------------------------------------------------------------------

    def update(self, dst: Endpoint) -> Height:
        """Bring ``dst``'s client of the other ledger to that ledger's latest height."""
        if dst is self.corda:
            height = self.evm.height()
            return self.corda.update_client(self.evm.header(height), self.now_ns())
        height = self.corda.height()
        message = self.attestor.update(self.corda.header(height))
        return self.evm.update_client(message, 0)

    def proof(self, dst: Endpoint, path: bytes) -> tuple[bytes, Height]:
        """Update ``dst``'s client, and prove the other ledger's value (or absence) under
        ``path`` at that height, in the form ``dst`` verifies."""
        src = self.other(dst)
        height = self.update(dst)
        proof = src.prove(path, height)
        if dst is self.evm:
            value = src.value(path, height)
            if value is None:
                return self.attestor.non_membership(height, proof, path), height
            return self.attestor.membership(height, proof, path, value), height
        return proof, height

    # -- handshakes --------------------------------------------------------------------------

    def create_clients(self) -> None:
        """The EVM's TEST-ONLY client of the Corda host (through the attestor) and the Corda
        host's QBFT client of the chain, each from a header the other ledger's operator trusts."""
        client_state, consensus = self.attestor.initial_state()
        self.evm.client_id = self.evm.ibc.create_client(
            TEST_SIGNED_CLIENT_TYPE, client_state, consensus
        ).value
        self.attestor.evm_client_id = self.evm.client_id
        block = self.evm.height()
        qbft = QbftClient.from_trusted_header(
            self.evm.header(block),
            list(self.evm.chain.validators),
            chain_id=self.evm.chain.chain_id,
            ibc_handler=self.evm.prefix,
            commitments_slot=COMMITMENTS_SLOT,
        )
        self.corda.client_id = str(self.corda.host.ibc.create_client(qbft))

    def open_connection(self, initiator: Endpoint) -> tuple[str, str]:
        """INIT on ``initiator`` → TRY → ACK → CONFIRM; returns (initiator's, other's) ids."""
        a, b = initiator, self.other(initiator)
        conn_a = a.conn_open_init(ConnectionCounterparty(b.client_id, "", b.prefix))
        init = a.connection(conn_a)
        assert init is not None
        proof, height = self.proof(b, paths.connection_path(conn_a))
        conn_b = b.conn_open_try(
            ConnectionCounterparty(a.client_id, conn_a, a.prefix), init.versions, proof, height
        )
        tried = b.connection(conn_b)
        assert tried is not None
        proof, height = self.proof(a, paths.connection_path(conn_b))
        a.conn_open_ack(conn_a, conn_b, tried.versions[0], proof, height)
        proof, height = self.proof(b, paths.connection_path(conn_a))
        b.conn_open_confirm(conn_b, proof, height)
        self.connection = {a.name: conn_a, b.name: conn_b}
        return conn_a, conn_b

    def open_channel(self, initiator: Endpoint, order: Order) -> tuple[str, str]:
        """Channel INIT on ``initiator`` → TRY → ACK → CONFIRM over the open connection."""
        a, b = initiator, self.other(initiator)
        chan_a = a.chan_open_init(order, self.connection[a.name], b.port)
        init = a.channel(chan_a)
        assert init is not None
        proof, height = self.proof(b, paths.channel_path(a.port, chan_a))
        chan_b = b.chan_open_try(
            order,
            self.connection[b.name],
            ChannelCounterparty(a.port, chan_a),
            init.version,
            proof,
            height,
        )
        tried = b.channel(chan_b)
        assert tried is not None
        proof, height = self.proof(a, paths.channel_path(b.port, chan_b))
        a.chan_open_ack(chan_a, chan_b, tried.version, proof, height)
        proof, height = self.proof(b, paths.channel_path(a.port, chan_a))
        b.chan_open_confirm(chan_b, proof, height)
        self.channel = {a.name: chan_a, b.name: chan_b}
        return chan_a, chan_b

    def close_channel(self, initiator: Endpoint) -> None:
        """CLOSE_INIT on ``initiator``, CLOSE_CONFIRM on the other with a proof of CLOSED."""
        self.close_init(initiator)
        self.close_confirm(self.other(initiator))

    def close_init(self, side: Endpoint) -> None:
        side.chan_close_init(self.channel[side.name])

    def close_confirm(self, side: Endpoint) -> None:
        """Confirm on ``side`` that the other end is CLOSED (by close_init or a timeout)."""
        src = self.other(side)
        proof, height = self.proof(side, paths.channel_path(src.port, self.channel[src.name]))
        side.chan_close_confirm(self.channel[side.name], proof, height)

    # -- packets -----------------------------------------------------------------------------

    def send(
        self,
        src: Endpoint,
        data: bytes,
        timeout_height: Height | None = None,
        timeout_timestamp: int = 0,
    ) -> bytes:
        """``src``'s application sends; returns the encoded packet the relayer carries."""
        if timeout_height is None and timeout_timestamp == 0:
            timeout_height = Height(0, 10**9)
        packet = src.send(
            self.channel[src.name], data, timeout_height or Height(), timeout_timestamp
        )
        return packet.encode()

    def deliver(self, dst: Endpoint, packet_bytes: bytes) -> bytes | None:
        """Prove the packet's commitment on its source and have ``dst`` receive it."""
        packet = Packet.decode(packet_bytes)
        path = paths.packet_commitment_path(
            packet.source_port, packet.source_channel, packet.sequence
        )
        proof, height = self.proof(dst, path)
        return dst.recv(packet, proof, height)

    def acknowledge(self, src: Endpoint, packet_bytes: bytes, ack: bytes) -> None:
        """Prove the destination's acknowledgement to ``src``, the packet's source."""
        packet = Packet.decode(packet_bytes)
        path = paths.ack_path(packet.destination_port, packet.destination_channel, packet.sequence)
        proof, height = self.proof(src, path)
        src.acknowledge(packet, ack, proof, height)

    def timeout_proof(self, src: Endpoint, packet: Packet) -> tuple[bytes, Height, int]:
        """Prove to ``src`` that the destination has not received ``packet``: the receipt's
        absence (UNORDERED) or the destination's next receive sequence (ORDERED)."""
        end = src.channel(packet.source_channel)
        assert end is not None
        dst = self.other(src)
        if end.ordering is Order.ORDERED:
            path = paths.next_sequence_recv_path(
                packet.destination_port, packet.destination_channel
            )
            proof, height = self.proof(src, path)
            value = dst.value(path, height)
            assert value is not None
            return proof, height, int.from_bytes(value, "big")
        path = paths.packet_receipt_path(
            packet.destination_port, packet.destination_channel, packet.sequence
        )
        proof, height = self.proof(src, path)
        return proof, height, 0

    def timeout(self, src: Endpoint, packet_bytes: bytes) -> None:
        packet = Packet.decode(packet_bytes)
        proof, height, next_recv = self.timeout_proof(src, packet)
        src.timeout(packet, proof, height, next_recv)


def build(chain: EmbeddedChain, network: EmbeddedNetwork) -> CrossRelayer:
    """Deploy the EVM host (handler, TEST-ONLY signed client, echo app on :data:`EVM_PORT`),
    open a Corda host on :data:`OPERATOR` (a RecordingApp on :data:`CORDA_PORT`), create both
    clients. Nothing is connected yet."""
    w3 = embedded_web3(chain)
    sender = dev_accounts()[0]
    ibc = EvmIbcHost.deploy(w3, sender=sender, gas=GAS)
    signed = deploy_test_signed_client(w3, ibc.address, sender=sender)
    ibc.register_client(TEST_SIGNED_CLIENT_TYPE, signed.address)
    app = deploy_echo_app(w3, ibc.address, sender=sender)
    ibc.bind_port(EVM_PORT, app.address)
    evm = EvmEndpoint(chain, ibc, app, sender)

    recording = RecordingApp()
    router = Router()
    router.bind(CORDA_PORT, recording)
    clock = SkewedClock()
    host = CordaIbcHost(network.node(OPERATOR), router=router, clock=clock)
    corda = CordaEndpoint(host, recording, clock)

    attestor = CordaAttestor.trusting(TEST_KEY, corda.host.client_state(), corda.host.attestation())
    relayer = CrossRelayer(evm, corda, attestor)
    relayer.create_clients()
    return relayer
