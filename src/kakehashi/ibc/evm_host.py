"""The EVM IBC host: Python bindings of the Vyper handler in ``contracts/ibc/``.

The handler contract (``ibc/handler.vy``) is the one account that holds IBC state; connection,
channel, packet and timeout logic run in four logic contracts it delegate-calls
(``ibc/connection.vy``, ``ibc/channel.vy``, ``ibc/packet.vy``, ``ibc/timeout.vy``), all
initialising the same storage module (``ibc/store.vy``). Every provable value is in the
handler's storage mapping ``commitments: HashMap[bytes32, bytes32]`` at
:data:`COMMITMENTS_SLOT`, keyed by ``keccak256(path)`` with ``path`` the ICS-24 bytes of
:mod:`kakehashi.ibc.host` and the value what :mod:`kakehashi.ibc.commitment` computes. The
value under ``path`` is therefore in storage slot :func:`commitment_slot`
``= keccak256(COMMITMENTS_SLOT ‖ keccak256(path))`` (Vyper's HashMap rule), and
``eth_getProof`` of that slot proves it, or its absence, against a block's state root.

This host's height is ``Height(0, block number)``, its time the block timestamp in nanoseconds,
and its commitment prefix the handler's 20-byte address.

:class:`EvmIbcHost` deploys the contracts, builds and sends every IBC transaction (each call
returns an :class:`Outcome` with the gas used), reads ends and commitments, and produces proofs
(:meth:`EvmIbcHost.prove`: the proof bytes :class:`kakehashi.ibc.clients.qbft.QbftClient`
verifies) and block headers (:meth:`EvmIbcHost.header`) for the counterparty's client.

The last section drives ``contracts/lightclients/test_signed_client.vy``, a TEST-ONLY client that
trusts statements signed by a test key. Tests and benchmarks use it; nothing else may.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from eth_abi import encode
from eth_keys import keys
from eth_utils import (
    function_abi_to_4byte_selector,
    get_abi_input_types,
    keccak,
    to_checksum_address,
)
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD
from web3.types import BlockIdentifier, TxReceipt

from kakehashi.errors import IbcError, TransactionRevertedError
from kakehashi.ibc import host, msgs
from kakehashi.ibc.clients.qbft import encode_proof
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
from kakehashi.ledgers.evm import client, toolchain
from kakehashi.ledgers.evm.client import BlockRef, Sender

__all__ = [
    "COMMITMENTS_SLOT",
    "COMMITMENTS_VARIABLE",
    "ECHO_APP_CONTRACT",
    "HANDLER_CONTRACT",
    "LOGIC_CONTRACTS",
    "REVISION_NUMBER",
    "TEST_SIGNED_CLIENT_CONTRACT",
    "TEST_SIGNED_CLIENT_TYPE",
    "EvmIbcHost",
    "Outcome",
    "TestSignedProver",
    "commitment_key",
    "commitment_slot",
    "deploy_echo_app",
    "deploy_test_signed_client",
    "sign_test_membership",
    "sign_test_update",
    "signed_client_state",
    "signed_consensus_state",
]

COMMITMENTS_SLOT = 0
"""Storage slot of the handler's ``commitments`` mapping (``store.commitments``, declared first
in ``ibc/store.vy``; the tests check it with :func:`toolchain.storage_slot` for the handler and
every logic contract)."""

COMMITMENTS_VARIABLE = "store.commitments"
"""The mapping's name in the compiled handler's storage layout."""

REVISION_NUMBER = 0
"""This host's revision number: a height is ``Height(0, block number)``."""

HANDLER_CONTRACT = "ibc/handler"
LOGIC_CONTRACTS = ("ibc/connection", "ibc/channel", "ibc/packet", "ibc/timeout")
"""Deployed in this order; the handler's constructor takes their addresses in this order."""

ECHO_APP_CONTRACT = "ibc/echo_app"
TEST_SIGNED_CLIENT_CONTRACT = "lightclients/test_signed_client"
TEST_SIGNED_CLIENT_TYPE = "test-signed"

_NS = 1_000_000_000
_LATEST_HEIGHT_ABI: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "latest_height",
        "stateMutability": "view",
        "inputs": [{"name": "client_id", "type": "string"}],
        "outputs": [
            {
                "name": "",
                "type": "tuple",
                "components": [
                    {"name": "revision_number", "type": "uint64"},
                    {"name": "revision_height", "type": "uint64"},
                ],
            }
        ],
    }
]

T = TypeVar("T")


def commitment_key(path: bytes) -> bytes:
    """The ``commitments`` key of an ICS-24 path: ``keccak256(path)``."""
    return bytes(keccak(path))


def commitment_slot(path: bytes) -> int:
    """The handler's storage slot holding ``path``'s value: ``keccak256(0 ‖ keccak256(path))``."""
    return toolchain.mapping_slot(COMMITMENTS_SLOT, commitment_key(path))


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    """What one IBC transaction returned, and what it cost."""

    value: T
    gas_used: int
    block_number: int
    tx_hash: bytes


def _height(h: Height) -> tuple[int, int]:
    return (h.revision_number, h.revision_height)


def _version(v: Version) -> tuple[str, list[str]]:
    return (v.identifier, list(v.features))


def _packet(p: Packet) -> tuple[Any, ...]:
    return (
        p.sequence,
        p.source_port,
        p.source_channel,
        p.destination_port,
        p.destination_channel,
        p.data,
        _height(p.timeout_height),
        p.timeout_timestamp,
    )


def _fee_fields(w3: Web3) -> dict[str, int]:
    """EIP-1559 fees for transactions sent now (web3.py's own default rule: twice the base fee
    plus the node's suggested tip), read once for a whole pipelined batch."""
    tip = int(w3.eth.max_priority_fee)
    base = int(w3.eth.get_block("latest").get("baseFeePerGas", 0))
    return {"maxPriorityFeePerGas": tip, "maxFeePerGas": 2 * base + tip}


def _revert_data(exc: ContractLogicError) -> bytes:
    data = exc.data
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return bytes.fromhex(data[2:])
        except ValueError:
            return b""
    return data if isinstance(data, bytes) else b""


def _merged_abi(contracts: Sequence[toolchain.CompiledContract]) -> list[dict[str, Any]]:
    """The handler's ABI plus the events its logic contracts emit in its name."""
    abi = list(contracts[0].abi)
    events = {e["name"] for e in abi if e["type"] == "event"}
    for compiled in contracts[1:]:
        for entry in compiled.abi:
            if entry["type"] == "event" and entry["name"] not in events:
                abi.append(entry)
                events.add(entry["name"])
    return abi


@functools.cache
def _compiled(name: str) -> toolchain.CompiledContract:
    """``name`` compiled once per process (even a cache hit of the toolchain re-reads and
    re-parses every source to key its cache: ~0.1 s a contract)."""
    return toolchain.compile_contract(name)


def _compiled_handler() -> tuple[toolchain.CompiledContract, list[toolchain.CompiledContract]]:
    return _compiled(HANDLER_CONTRACT), [_compiled(name) for name in LOGIC_CONTRACTS]


class EvmIbcHost:
    """Bindings of one deployed IBC handler; transactions are sent by ``sender``.

    ``gas``: None estimates each transaction's gas with the node (``eth_estimateGas``); a
    number checks the call with one ``eth_call`` (a revert is refused before anything is mined,
    with its reason) and sends it with that gas limit — much faster on the embedded chain,
    whose estimate is a binary search of ~15 executions.
    """

    def __init__(self, w3: Web3, address: str, *, sender: Sender, gas: int | None = None) -> None:
        handler, logic = _compiled_handler()
        self.w3 = w3
        self.sender = sender
        self.gas = gas
        self.handler: Contract = w3.eth.contract(
            address=to_checksum_address(address), abi=_merged_abi([handler, *logic])
        )

    @classmethod
    def deploy(cls, w3: Web3, *, sender: Sender, gas: int | None = None) -> EvmIbcHost:
        """Deploy the logic contracts and the handler; ``sender`` becomes its admin."""
        handler, logic = _compiled_handler()
        addresses = [toolchain.deploy(w3, c, sender=sender).address for c in logic]
        deployed = toolchain.deploy(w3, handler, *addresses, sender=sender)
        return cls(w3, deployed.address, sender=sender, gas=gas)

    # -- identity -----------------------------------------------------------------------------

    @property
    def address(self) -> str:
        return str(self.handler.address)

    @property
    def prefix(self) -> bytes:
        """This host's commitment prefix: the handler's 20-byte address."""
        return bytes.fromhex(self.address[2:])

    # -- sending ------------------------------------------------------------------------------

    def _send(self, fn: Any, what: str) -> TxReceipt:
        if self.gas is None:
            return client.transact(self.w3, fn, sender=self.sender, description=what)
        origin = self.sender if isinstance(self.sender, str) else self.sender.address
        try:
            fn.call({"from": to_checksum_address(origin)})
        except ContractLogicError as exc:
            reason = str(exc.message or exc).removeprefix("execution reverted: ")
            raise TransactionRevertedError(
                f"{what} reverted: {reason}", reason=reason, data=_revert_data(exc)
            ) from exc
        return client.transact(self.w3, fn, sender=self.sender, description=what, gas=self.gas)

    @staticmethod
    def _outcome(receipt: TxReceipt, value: T) -> Outcome[T]:
        return Outcome(
            value=value,
            gas_used=int(receipt["gasUsed"]),
            block_number=int(receipt["blockNumber"]),
            tx_hash=bytes(receipt["transactionHash"]),
        )

    def _event_args(self, receipt: TxReceipt, event: str) -> list[Any]:
        return [
            log["args"]
            for log in self.handler.events[event]().process_receipt(receipt, errors=DISCARD)
        ]

    def _one_event(self, receipt: TxReceipt, event: str) -> Any:
        found = self._event_args(receipt, event)
        if len(found) != 1:
            raise IbcError(f"expected one {event} event in the receipt, found {len(found)}")
        return found[0]

    # -- ICS-02 / ICS-05 ----------------------------------------------------------------------

    def register_client(self, client_type: str, client_contract: str) -> Outcome[None]:
        """Plug a light-client contract in for ``client_type`` (admin only)."""
        fn = self.handler.functions.register_client(client_type, client_contract)
        return self._outcome(self._send(fn, f"register_client({client_type})"), None)

    def create_client(
        self, client_type: str, client_state: bytes, consensus_state: bytes
    ) -> Outcome[str]:
        """Create a client of a registered type; the value is its identifier."""
        fn = self.handler.functions.create_client(client_type, client_state, consensus_state)
        receipt = self._send(fn, f"create_client({client_type})")
        return self._outcome(receipt, str(self._one_event(receipt, "ClientCreated")["client_id"]))

    def update_client(self, client_id: str, message: bytes) -> Outcome[Height]:
        fn = self.handler.functions.update_client(client_id, message)
        receipt = self._send(fn, f"update_client({client_id})")
        args = self._one_event(receipt, "ClientUpdated")
        return self._outcome(receipt, Height(args["revision_number"], args["revision_height"]))

    def bind_port(self, port_id: str, module: str) -> Outcome[None]:
        """Route ``port_id`` to the application contract ``module`` (admin only)."""
        host.validate_port_id(port_id)
        fn = self.handler.functions.bind_port(port_id, to_checksum_address(module))
        return self._outcome(self._send(fn, f"bind_port({port_id})"), None)

    # -- ICS-03 -------------------------------------------------------------------------------

    def _connection_step(self, receipt: TxReceipt) -> str:
        return str(self._one_event(receipt, "ConnectionOpen")["connection_id"])

    def conn_open_init(
        self, client_id: str, counterparty: ConnectionCounterparty, delay_period: int = 0
    ) -> Outcome[str]:
        fn = self.handler.functions.conn_open_init(
            client_id,
            (counterparty.client_id, counterparty.connection_id, counterparty.prefix),
            delay_period,
        )
        receipt = self._send(fn, "conn_open_init")
        return self._outcome(receipt, self._connection_step(receipt))

    def conn_open_try(
        self,
        counterparty: ConnectionCounterparty,
        client_id: str,
        counterparty_versions: Sequence[Version],
        proof_init: bytes,
        proof_height: Height,
        delay_period: int = 0,
    ) -> Outcome[str]:
        fn = self.handler.functions.conn_open_try(
            (counterparty.client_id, counterparty.connection_id, counterparty.prefix),
            delay_period,
            client_id,
            [_version(v) for v in counterparty_versions],
            proof_init,
            _height(proof_height),
        )
        receipt = self._send(fn, "conn_open_try")
        return self._outcome(receipt, self._connection_step(receipt))

    def conn_open_ack(
        self,
        connection_id: str,
        counterparty_connection_id: str,
        version: Version,
        proof_try: bytes,
        proof_height: Height,
    ) -> Outcome[None]:
        fn = self.handler.functions.conn_open_ack(
            connection_id,
            counterparty_connection_id,
            _version(version),
            proof_try,
            _height(proof_height),
        )
        return self._outcome(self._send(fn, "conn_open_ack"), None)

    def conn_open_confirm(
        self, connection_id: str, proof_ack: bytes, proof_height: Height
    ) -> Outcome[None]:
        fn = self.handler.functions.conn_open_confirm(
            connection_id, proof_ack, _height(proof_height)
        )
        return self._outcome(self._send(fn, "conn_open_confirm"), None)

    # -- ICS-04 channels ----------------------------------------------------------------------

    def _channel_step(self, receipt: TxReceipt) -> str:
        return str(self._one_event(receipt, "ChannelOpen")["channel_id"])

    def chan_open_init(
        self,
        port_id: str,
        ordering: Order,
        connection_hops: Sequence[str],
        counterparty: ChannelCounterparty,
        version: str,
    ) -> Outcome[str]:
        fn = self.handler.functions.chan_open_init(
            port_id,
            int(ordering),
            list(connection_hops),
            (counterparty.port_id, counterparty.channel_id),
            version,
        )
        receipt = self._send(fn, "chan_open_init")
        return self._outcome(receipt, self._channel_step(receipt))

    def chan_open_try(
        self,
        port_id: str,
        ordering: Order,
        connection_hops: Sequence[str],
        counterparty: ChannelCounterparty,
        version: str,
        counterparty_version: str,
        proof_init: bytes,
        proof_height: Height,
    ) -> Outcome[str]:
        fn = self.handler.functions.chan_open_try(
            port_id,
            int(ordering),
            list(connection_hops),
            (counterparty.port_id, counterparty.channel_id),
            version,
            counterparty_version,
            proof_init,
            _height(proof_height),
        )
        receipt = self._send(fn, "chan_open_try")
        return self._outcome(receipt, self._channel_step(receipt))

    def chan_open_ack(
        self,
        port_id: str,
        channel_id: str,
        counterparty_version: str,
        counterparty_channel_id: str,
        proof_try: bytes,
        proof_height: Height,
    ) -> Outcome[None]:
        fn = self.handler.functions.chan_open_ack(
            port_id,
            channel_id,
            counterparty_version,
            counterparty_channel_id,
            proof_try,
            _height(proof_height),
        )
        return self._outcome(self._send(fn, "chan_open_ack"), None)

    def chan_open_confirm(
        self, port_id: str, channel_id: str, proof_ack: bytes, proof_height: Height
    ) -> Outcome[None]:
        fn = self.handler.functions.chan_open_confirm(
            port_id, channel_id, proof_ack, _height(proof_height)
        )
        return self._outcome(self._send(fn, "chan_open_confirm"), None)

    def chan_close_init(self, port_id: str, channel_id: str) -> Outcome[None]:
        fn = self.handler.functions.chan_close_init(port_id, channel_id)
        return self._outcome(self._send(fn, "chan_close_init"), None)

    def chan_close_confirm(
        self, port_id: str, channel_id: str, proof_init: bytes, proof_height: Height
    ) -> Outcome[None]:
        fn = self.handler.functions.chan_close_confirm(
            port_id, channel_id, proof_init, _height(proof_height)
        )
        return self._outcome(self._send(fn, "chan_close_confirm"), None)

    # -- ICS-04 packets -----------------------------------------------------------------------

    def send_packet(
        self,
        app: str,
        source_port: str,
        source_channel: str,
        data: bytes,
        *,
        timeout_height: Height | None = None,
        timeout_timestamp: int = 0,
    ) -> Outcome[Packet]:
        """Send ``data`` through ``app``, the module bound to ``source_port``.

        ICS-04 lets only the port's module send on it, so the transaction calls the app's
        ``send_packet`` (same arguments as the handler's; ``ibc/echo_app.vy`` has it). The
        value is the packet as committed, read back from the ``SendPacket`` event.
        """
        module = self.w3.eth.contract(
            address=to_checksum_address(app),
            abi=[e for e in self.handler.abi if e.get("name") == "send_packet"],
        )
        fn = module.functions.send_packet(
            source_port,
            source_channel,
            _height(timeout_height or Height()),
            timeout_timestamp,
            data,
        )
        receipt = self._send(fn, "send_packet")
        packet = Packet.decode(bytes(self._one_event(receipt, "SendPacket")["packet"]))
        return self._outcome(receipt, packet)

    def recv_packet(
        self, packet: Packet, proof: bytes, proof_height: Height
    ) -> Outcome[bytes | None]:
        """Deliver ``packet``; the value is the acknowledgement the app wrote (None: none)."""
        fn = self.handler.functions.recv_packet(_packet(packet), proof, _height(proof_height))
        receipt = self._send(fn, f"recv_packet(sequence {packet.sequence})")
        acks = self._event_args(receipt, "WriteAcknowledgement")
        return self._outcome(receipt, bytes(acks[0]["acknowledgement"]) if acks else None)

    def write_acknowledgement(
        self, app: str, packet: Packet, acknowledgement: bytes
    ) -> Outcome[None]:
        """Have ``app`` (the module on the destination port) acknowledge a packet it received
        without an acknowledgement (ICS-04 asynchronous acknowledgement)."""
        module = self.w3.eth.contract(
            address=to_checksum_address(app),
            abi=[e for e in self.handler.abi if e.get("name") == "write_acknowledgement"],
        )
        fn = module.functions.write_acknowledgement(_packet(packet), acknowledgement)
        return self._outcome(self._send(fn, f"write_acknowledgement({packet.sequence})"), None)

    def acknowledge_packet(
        self, packet: Packet, acknowledgement: bytes, proof: bytes, proof_height: Height
    ) -> Outcome[None]:
        fn = self.handler.functions.acknowledge_packet(
            _packet(packet), acknowledgement, proof, _height(proof_height)
        )
        return self._outcome(self._send(fn, f"acknowledge_packet({packet.sequence})"), None)

    def timeout_packet(
        self, packet: Packet, proof: bytes, proof_height: Height, next_sequence_recv: int = 0
    ) -> Outcome[None]:
        """Time ``packet`` out. ``next_sequence_recv`` (ORDERED channels only) is the
        counterparty's proven next sequence recv; UNORDERED channels prove the receipt absent."""
        fn = self.handler.functions.timeout_packet(
            _packet(packet), proof, _height(proof_height), next_sequence_recv
        )
        return self._outcome(self._send(fn, f"timeout_packet({packet.sequence})"), None)

    def timeout_on_close(
        self,
        packet: Packet,
        proof_unreceived: bytes,
        proof_close: bytes,
        proof_height: Height,
        next_sequence_recv: int = 0,
    ) -> Outcome[None]:
        """Time ``packet`` out because the counterparty's channel end is CLOSED (proven by
        ``proof_close``) and it provably did not receive the packet."""
        fn = self.handler.functions.timeout_on_close(
            _packet(packet),
            proof_unreceived,
            proof_close,
            _height(proof_height),
            next_sequence_recv,
        )
        return self._outcome(self._send(fn, f"timeout_on_close({packet.sequence})"), None)

    # -- ICS-26 messages ----------------------------------------------------------------------

    def apply(self, msg: msgs.Msg) -> Outcome[Any]:
        """Send ``msg`` as one transaction (what :func:`kakehashi.ibc.msgs.apply` does on a
        Python host); the outcome's value is the same answer."""
        match msg:
            case msgs.MsgCreateClient():
                return self.create_client(msg.client_type, msg.client_state, msg.consensus_state)
            case msgs.MsgUpdateClient():
                return self.update_client(msg.client_id, msg.client_message)
            case msgs.MsgConnectionOpenInit():
                return self.conn_open_init(msg.client_id, msg.counterparty, msg.delay_period)
            case msgs.MsgConnectionOpenTry():
                return self.conn_open_try(
                    msg.counterparty,
                    msg.client_id,
                    msg.counterparty_versions,
                    msg.proof_init,
                    msg.proof_height,
                    msg.delay_period,
                )
            case msgs.MsgConnectionOpenAck():
                return self.conn_open_ack(
                    msg.connection_id,
                    msg.counterparty_connection_id,
                    msg.version,
                    msg.proof_try,
                    msg.proof_height,
                )
            case msgs.MsgConnectionOpenConfirm():
                return self.conn_open_confirm(msg.connection_id, msg.proof_ack, msg.proof_height)
            case msgs.MsgChannelOpenInit():
                return self.chan_open_init(
                    msg.port_id, msg.ordering, msg.connection_hops, msg.counterparty, msg.version
                )
            case msgs.MsgChannelOpenTry():
                return self.chan_open_try(
                    msg.port_id,
                    msg.ordering,
                    msg.connection_hops,
                    msg.counterparty,
                    msg.counterparty_version,
                    msg.counterparty_version,
                    msg.proof_init,
                    msg.proof_height,
                )
            case msgs.MsgChannelOpenAck():
                return self.chan_open_ack(
                    msg.port_id,
                    msg.channel_id,
                    msg.counterparty_version,
                    msg.counterparty_channel_id,
                    msg.proof_try,
                    msg.proof_height,
                )
            case msgs.MsgChannelOpenConfirm():
                return self.chan_open_confirm(
                    msg.port_id, msg.channel_id, msg.proof_ack, msg.proof_height
                )
            case msgs.MsgChannelCloseInit():
                return self.chan_close_init(msg.port_id, msg.channel_id)
            case msgs.MsgChannelCloseConfirm():
                return self.chan_close_confirm(
                    msg.port_id, msg.channel_id, msg.proof_init, msg.proof_height
                )
            case msgs.MsgRecvPacket():
                return self.recv_packet(msg.packet, msg.proof_commitment, msg.proof_height)
            case msgs.MsgAcknowledgement():
                return self.acknowledge_packet(
                    msg.packet, msg.acknowledgement, msg.proof_acked, msg.proof_height
                )
            case msgs.MsgTimeout():
                return self.timeout_packet(
                    msg.packet, msg.proof_unreceived, msg.proof_height, msg.next_sequence_recv
                )
        raise IbcError(f"{type(msg).__name__} is not an IBC message")

    @property
    def can_pipeline(self) -> bool:
        """Transactions are signed here (a local account) with a fixed gas limit, so several
        can be signed with consecutive nonces and sent before any is mined."""
        return self.gas is not None and not isinstance(self.sender, str)

    def _packet_fn(self, msg: msgs.Msg) -> Any:
        match msg:
            case msgs.MsgRecvPacket():
                return self.handler.functions.recv_packet(
                    _packet(msg.packet), msg.proof_commitment, _height(msg.proof_height)
                )
            case msgs.MsgAcknowledgement():
                return self.handler.functions.acknowledge_packet(
                    _packet(msg.packet),
                    msg.acknowledgement,
                    msg.proof_acked,
                    _height(msg.proof_height),
                )
            case msgs.MsgTimeout():
                return self.handler.functions.timeout_packet(
                    _packet(msg.packet),
                    msg.proof_unreceived,
                    _height(msg.proof_height),
                    msg.next_sequence_recv,
                )
        raise IbcError(f"{type(msg).__name__} cannot be pipelined (packet messages only)")

    def _packet_call_data(self, msg: msgs.Msg) -> bytes:
        """The call data of ``msg``'s handler function (what :meth:`_packet_fn`'s transaction
        carries): its 4-byte selector, then its arguments ABI-encoded."""
        fn = self._packet_fn(msg)
        layouts: dict[str, tuple[bytes, list[str]]] = self.__dict__.setdefault("_call_layouts", {})
        layout = layouts.get(fn.fn_name)
        if layout is None:
            (abi,) = [
                e
                for e in self.handler.abi
                if e.get("type") == "function" and e.get("name") == fn.fn_name
            ]
            selector = bytes(function_abi_to_4byte_selector(abi))
            layout = layouts[fn.fn_name] = (selector, list(get_abi_input_types(abi)))
        return layout[0] + encode(layout[1], fn.args)

    def apply_pipelined(
        self, batch: Sequence[msgs.Msg], *, timeout: float = 120.0
    ) -> list[Outcome[Any] | TransactionRevertedError]:
        """Sign every packet message of ``batch`` with consecutive nonces, send them all, then
        wait for every receipt. A reverted one is answered by the error (its reason found by
        replaying the call on the latest state), not raised, so the others are still reported.
        Needs :attr:`can_pipeline`."""
        if not self.can_pipeline:
            raise IbcError("pipelining needs a local signing account and a fixed gas limit")
        account = cast(Any, self.sender)
        nonce = int(self.w3.eth.get_transaction_count(account.address, "pending"))
        fees = _fee_fields(self.w3)
        chain_id = self.w3.eth.chain_id
        gas = self._pipelined_gas(batch, account.address)
        full = self.gas
        assert full is not None

        to = to_checksum_address(self.address)

        def send(msg: msgs.Msg, nonce: int, limit: int) -> Any:
            # the transaction written out (what build_transaction fills in for these fields)
            # with the call data ABI-encoded here: web3's generic build costs ~1 ms a message
            tx: dict[str, Any] = {
                "type": 2,
                "to": to,
                "value": 0,
                "data": self._packet_call_data(msg),
                "nonce": nonce,
                "gas": limit,
                "chainId": chain_id,
                **fees,
            }
            signed = account.sign_transaction(tx)
            return self.w3.eth.send_raw_transaction(signed.raw_transaction)

        hashes = [send(msg, nonce + i, gas[type(msg)]) for i, msg in enumerate(batch)]
        nonce += len(batch)
        results: list[Outcome[Any] | TransactionRevertedError] = []
        for msg, tx_hash in zip(batch, hashes, strict=True):
            receipt = self.w3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=timeout, poll_latency=0.01
            )
            limit = gas[type(msg)]
            if receipt["status"] != 1 and receipt["gasUsed"] * 64 >= limit * 62 and limit < full:
                # out of the estimate's gas (a message costing more than the first of its kind,
                # e.g. an acknowledgement that completes a transaction; an inner call that runs
                # out leaves the caller its 1/64): again, with the full limit
                tx_hash, nonce = send(msg, nonce, full), nonce + 1
                receipt = self.w3.eth.wait_for_transaction_receipt(
                    tx_hash, timeout=timeout, poll_latency=0.01
                )
            if receipt["status"] != 1:
                results.append(self._revert_of(msg, receipt))
                continue
            value: Any = None
            if isinstance(msg, msgs.MsgRecvPacket):
                acks = self._event_args(receipt, "WriteAcknowledgement")
                value = bytes(acks[0]["acknowledgement"]) if acks else None
            results.append(self._outcome(receipt, value))
        return results

    def _pipelined_gas(self, batch: Sequence[msgs.Msg], origin: str) -> dict[type, int]:
        """A gas limit per message kind: the node's estimate for the first message of that kind
        with a margin (messages of one kind cost nearly the same), at most :attr:`gas` — so an
        interval block holds as many of them as its gas limit allows, not ``limit / gas``. A
        kind whose first message would revert gets :attr:`gas` (it will revert anyway)."""
        assert self.gas is not None
        limits: dict[type, int] = {}
        for msg in batch:
            if type(msg) in limits:
                continue
            try:
                estimate = int(self._packet_fn(msg).estimate_gas({"from": origin}))
            except (ContractLogicError, ValueError):
                limits[type(msg)] = self.gas
                continue
            limits[type(msg)] = min(self.gas, estimate * 3 // 2 + 50_000)
        return limits

    def _revert_of(self, msg: msgs.Msg, receipt: TxReceipt) -> TransactionRevertedError:
        what = f"{type(msg).__name__} (transaction {bytes(receipt['transactionHash']).hex()})"
        origin = cast(Any, self.sender).address
        try:
            self._packet_fn(msg).call({"from": origin})
        except ContractLogicError as exc:
            reason = str(exc.message or exc).removeprefix("execution reverted: ")
            return TransactionRevertedError(
                f"{what} reverted: {reason}", reason=reason, data=_revert_data(exc)
            )
        return TransactionRevertedError(f"{what} reverted", reason="")

    def client_latest_height(self, client_id: str) -> Height:
        """The latest height of client ``client_id``, read from its client contract."""
        contracts: dict[str, Any] = self.__dict__.setdefault("_client_contracts", {})
        contract = contracts.get(client_id)
        if contract is None:  # a client id is routed to one contract for good
            address = self.handler.functions.client_impls(client_id).call()
            if int(address, 16) == 0:
                raise IbcError(f"no client {client_id!r} on this handler; create it first")
            contract = contracts[client_id] = self.w3.eth.contract(
                address=address, abi=_LATEST_HEIGHT_ABI
            )
        revision_number, revision_height = contract.functions.latest_height(client_id).call()
        return Height(revision_number, revision_height)

    # -- reading ------------------------------------------------------------------------------

    def commitment(self, path: bytes, block: BlockRef = "latest") -> bytes:
        """The 32-byte value under ``path`` at ``block`` (32 zero bytes: absent), read straight
        from the handler's storage slot (``eth_getStorageAt``: no EVM execution, unlike a call
        of the ``commitments`` getter, which answers the same)."""
        value = self.w3.eth.get_storage_at(
            self.handler.address, commitment_slot(path), cast(BlockIdentifier, block)
        )
        return bytes(value).rjust(32, b"\0")

    def commitments(self, paths: Sequence[bytes], block: BlockRef = "latest") -> list[bytes]:
        """:meth:`commitment` of every path in ``paths`` at ``block``, from one JSON-RPC batch
        of ``eth_getStorageAt`` (one round trip to the node for all)."""
        at = client.block_param(block)
        address = self.handler.address
        answers = client.rpc_batch(
            self.w3,
            [("eth_getStorageAt", [address, f"0x{commitment_slot(p):064x}", at]) for p in paths],
        )
        return [int(str(value), 16).to_bytes(32, "big") for value in answers]

    def connection(self, connection_id: str, block: BlockRef = "latest") -> ConnectionEnd | None:
        call = self.handler.functions.get_connection(connection_id)
        end = ConnectionEnd.decode(bytes(call.call(block_identifier=cast(BlockIdentifier, block))))
        return None if int(end.state) == 0 else end

    def channel(
        self, port_id: str, channel_id: str, block: BlockRef = "latest"
    ) -> ChannelEnd | None:
        call = self.handler.functions.get_channel(port_id, channel_id)
        end = ChannelEnd.decode(bytes(call.call(block_identifier=cast(BlockIdentifier, block))))
        return None if int(end.state) == 0 else end

    def height(self, block: BlockRef = "latest") -> Height:
        if block == "latest":  # eth_blockNumber: no block to fetch (nor web3's formatting)
            return Height(REVISION_NUMBER, int(str(client.rpc(self.w3, "eth_blockNumber", [])), 16))
        return Height(REVISION_NUMBER, int(client.get_block(self.w3, block)["number"], 16))

    def timestamp_ns(self, block: BlockRef = "latest") -> int:
        """This chain's time at ``block``, in nanoseconds (what timeouts compare against)."""
        return int(client.get_block(self.w3, block)["timestamp"], 16) * _NS

    def header(self, block: BlockRef = "latest") -> bytes:
        """The RLP header of ``block``: the client message of the counterparty's QBFT client."""
        return client.raw_header(self.w3, block)

    def get_proof(self, path: bytes, block: BlockRef = "latest") -> dict[str, Any]:
        """``eth_getProof`` of ``path``'s slot in the handler's storage at ``block`` (raw JSON)."""
        return client.get_proof(self.w3, self.address, [commitment_slot(path)], block)

    def prove(self, path: bytes, block: BlockRef = "latest") -> bytes:
        """The proof of ``path``'s value (or absence) at ``block``.

        ``RLP([account proof nodes, storage proof nodes])`` of the ``eth_getProof`` answer
        (:func:`kakehashi.ibc.clients.qbft.encode_proof`), verified against the state root of
        :meth:`header` ``(block)`` by the counterparty's QBFT client.
        """
        return self.prove_value(path, block)[0]

    def prove_value(self, path: bytes, block: BlockRef = "latest") -> tuple[bytes, bytes | None]:
        """:meth:`prove` and the value it proves (None: absent), from one ``eth_getProof``."""
        return self.prove_values([path], block)[0]

    def prove_values(
        self, paths: Sequence[bytes], block: BlockRef = "latest"
    ) -> list[tuple[bytes, bytes | None]]:
        """:meth:`prove_value` of every path in ``paths``, from one ``eth_getProof`` naming
        all their slots (the account proof is read once and shared by every proof)."""
        if not paths:
            return []
        raw = client.get_proof(self.w3, self.address, [commitment_slot(p) for p in paths], block)
        storage = raw["storageProof"]
        if len(storage) != len(paths):
            raise IbcError(
                f"eth_getProof answered {len(storage)} storage proofs for {len(paths)} slots"
            )
        account = [bytes.fromhex(n[2:]) for n in raw["accountProof"]]
        proven: list[tuple[bytes, bytes | None]] = []
        for entry in storage:
            proof = encode_proof(account, [bytes.fromhex(n[2:]) for n in entry["proof"]])
            value = int(entry["value"], 16)  # a hex quantity (client.get_proof answers JSON)
            proven.append((proof, None if value == 0 else value.to_bytes(32, "big")))
        return proven


# ---------------------------------------------------------------------------- applications
def deploy_echo_app(w3: Web3, handler: str, *, sender: Sender) -> Contract:
    """Deploy ``ibc/echo_app.vy`` (a minimal IBC app) for the handler at ``handler``."""
    return toolchain.deploy(
        w3, _compiled(ECHO_APP_CONTRACT), to_checksum_address(handler), sender=sender
    )


# ------------------------------------------------------------ the TEST-ONLY signed client
# Everything below serves tests and benchmarks only: the client trusts whoever holds a test key.

_UPDATE_DOMAIN = "kakehashi/test-signed-client/update"
_MEMBERSHIP_DOMAIN = "kakehashi/test-signed-client/membership"


def deploy_test_signed_client(w3: Web3, handler: str, *, sender: Sender) -> Contract:
    """TEST-ONLY: deploy ``lightclients/test_signed_client.vy`` serving ``handler``."""
    return toolchain.deploy(
        w3, _compiled(TEST_SIGNED_CLIENT_CONTRACT), to_checksum_address(handler), sender=sender
    )


def signed_client_state(signer: str) -> bytes:
    """TEST-ONLY client state: the address whose signatures the client accepts."""
    return encode(["address"], [to_checksum_address(signer)])


def signed_consensus_state(height: Height, timestamp_ns: int, root: bytes) -> bytes:
    return encode(["(uint64,uint64)", "uint64", "bytes32"], [_height(height), timestamp_ns, root])


def _sign(key: bytes, digest: bytes) -> bytes:
    return bytes(keys.PrivateKey(key).sign_msg_hash(digest).to_bytes())


def sign_test_update(
    key: bytes, client_id: str, height: Height, timestamp_ns: int, root: bytes
) -> bytes:
    """TEST-ONLY update message: (height, timestamp, root) signed by ``key``."""
    digest = keccak(
        encode(
            ["string", "string", "(uint64,uint64)", "uint64", "bytes32"],
            [_UPDATE_DOMAIN, client_id, _height(height), timestamp_ns, root],
        )
    )
    return encode(
        ["(uint64,uint64)", "uint64", "bytes32", "bytes"],
        [_height(height), timestamp_ns, root, _sign(key, digest)],
    )


def sign_test_membership(
    key: bytes, client_id: str, height: Height, prefix: bytes, path: bytes, value: bytes
) -> bytes:
    """TEST-ONLY proof: the statement "``value`` is under ``prefix``/``path`` at ``height``"
    signed by ``key`` (``value`` = 32 zero bytes states absence)."""
    digest = keccak(
        encode(
            ["string", "string", "(uint64,uint64)", "bytes", "bytes", "bytes32"],
            [_MEMBERSHIP_DOMAIN, client_id, _height(height), prefix, path, value],
        )
    )
    return _sign(key, digest)


@dataclass
class TestSignedProver:
    """TEST-ONLY relayer half: proves ``source``'s state to ``dest``'s test-signed client.

    It reads ``source``'s chain (block, commitments) and signs statements about them with the
    test key, as the real LCP enclave would sign verified ones.
    """

    key: bytes
    source: EvmIbcHost
    dest: EvmIbcHost
    client_id: str = ""

    __test__ = False  # not a pytest class

    def create_client(self) -> Outcome[str]:
        """Create ``dest``'s client of ``source`` at ``source``'s latest block."""
        height = self.source.height()
        block = client.get_block(self.source.w3, height.revision_height)
        signer = keys.PrivateKey(self.key).public_key.to_checksum_address()
        outcome = self.dest.create_client(
            TEST_SIGNED_CLIENT_TYPE,
            signed_client_state(signer),
            signed_consensus_state(
                height, int(block["timestamp"], 16) * _NS, bytes.fromhex(block["stateRoot"][2:])
            ),
        )
        self.client_id = outcome.value
        return outcome

    def update(self, block: BlockRef = "latest") -> Outcome[Height]:
        """Update ``dest``'s client to ``source``'s ``block``."""
        raw = client.get_block(self.source.w3, block)
        height = Height(REVISION_NUMBER, int(raw["number"], 16))
        message = sign_test_update(
            self.key,
            self.client_id,
            height,
            int(raw["timestamp"], 16) * _NS,
            bytes.fromhex(raw["stateRoot"][2:]),
        )
        return self.dest.update_client(self.client_id, message)

    def prove(self, path: bytes, height: Height) -> bytes:
        """A signed statement of ``source``'s value (or absence) under ``path`` at ``height``."""
        value = self.source.commitment(path, height.revision_height)
        return sign_test_membership(
            self.key, self.client_id, height, self.source.prefix, path, value
        )
