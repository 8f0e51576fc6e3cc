"""The EVM IBC host (``contracts/ibc``, ``kakehashi.ibc.evm_host``) on two embedded QBFT chains.

Chain A and chain B each run a handler; each holds a TEST-ONLY signed client of the other. The
harness plays the relayer: it reads one chain (blocks, commitments), signs statements about it
with the test key, and hands them to the other chain's handler, which verifies them.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from eth_keys import keys
from eth_utils import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kakehashi.errors import KakehashiError, TransactionRevertedError
from kakehashi.ibc import host, msgs
from kakehashi.ibc.clients.qbft import QbftClient
from kakehashi.ibc.commitment import (
    RECEIPT,
    ack_commitment,
    end_commitment,
    packet_commitment_of,
    sequence_value,
)
from kakehashi.ibc.evm_host import (
    COMMITMENTS_SLOT,
    COMMITMENTS_VARIABLE,
    HANDLER_CONTRACT,
    LOGIC_CONTRACTS,
    TEST_SIGNED_CLIENT_CONTRACT,
    TEST_SIGNED_CLIENT_TYPE,
    EvmIbcHost,
    TestSignedProver,
    commitment_slot,
    deploy_echo_app,
    deploy_test_signed_client,
    sign_test_membership,
    sign_test_update,
    signed_client_state,
    signed_consensus_state,
)
from kakehashi.ibc.types import (
    DEFAULT_VERSION,
    ChannelCounterparty,
    ChannelEnd,
    ChannelState,
    ConnectionCounterparty,
    ConnectionEnd,
    ConnectionState,
    Height,
    Order,
    Packet,
)
from kakehashi.ledgers.evm import toolchain
from kakehashi.ledgers.evm.chain import EmbeddedChain, dev_accounts
from kakehashi.ledgers.evm.client import transact
from kakehashi.ledgers.evm.proofs import verify_eth_get_proof
from kakehashi.ledgers.evm.provider import embedded_web3

TEST_KEY = keccak(b"kakehashi test-signed client key")
OTHER_KEY = keccak(b"not the test key")
PORT = "echo"
VERSION = "echo-1"
EIP170_LIMIT = 24_576
GAS = 5_000_000  # a fixed limit, checked by eth_call first (see EvmIbcHost)


@dataclass
class Side:
    chain: EmbeddedChain
    host: EvmIbcHost
    app: Any  # web3 Contract of ibc/echo_app.vy
    prover: TestSignedProver  # proves the OTHER side's state to this side's client
    sender: Any

    def mine(self, blocks: int = 1) -> None:
        _mine(self.host, self.sender, blocks)

    @property
    def client_id(self) -> str:
        return self.prover.client_id


def _mine(ibc: EvmIbcHost, sender: Any, blocks: int) -> None:
    """Advance ``ibc``'s chain by ``blocks`` blocks (one self-transfer each)."""
    w3 = ibc.w3
    for _ in range(blocks):
        tx = {
            "to": sender.address,
            "value": 0,
            "gas": 21_000,
            "maxFeePerGas": 10**10,
            "maxPriorityFeePerGas": 1,
            "nonce": w3.eth.get_transaction_count(sender.address, "pending"),
            "chainId": w3.eth.chain_id,
        }
        w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction)


def _side(chain: EmbeddedChain) -> tuple[EvmIbcHost, Any, Any]:
    w3 = embedded_web3(chain)
    sender = dev_accounts()[0]
    ibc = EvmIbcHost.deploy(w3, sender=sender, gas=GAS)
    signed_client = deploy_test_signed_client(w3, ibc.address, sender=sender)
    ibc.register_client(TEST_SIGNED_CLIENT_TYPE, signed_client.address)
    app = deploy_echo_app(w3, ibc.address, sender=sender)
    ibc.bind_port(PORT, app.address)
    return ibc, app, sender


@dataclass
class Net:
    a: Side
    b: Side
    connections: tuple[str, str] | None = None  # kept across the property test's examples

    def proof(self, to: Side, path: bytes) -> tuple[bytes, Height]:
        """Update ``to``'s client to the other chain's head and prove ``path`` there."""
        height = to.prover.update().value
        return to.prover.prove(path, height), height


@pytest.fixture
def net() -> Iterator[Net]:
    with EmbeddedChain() as chain_a, EmbeddedChain() as chain_b:
        host_a, app_a, sender_a = _side(chain_a)
        host_b, app_b, sender_b = _side(chain_b)
        a = Side(chain_a, host_a, app_a, TestSignedProver(TEST_KEY, host_b, host_a), sender_a)
        b = Side(chain_b, host_b, app_b, TestSignedProver(TEST_KEY, host_a, host_b), sender_b)
        a.prover.create_client()
        b.prover.create_client()
        yield Net(a, b)


def connect(net: Net) -> tuple[str, str]:
    a, b = net.a, net.b
    conn_a = a.host.conn_open_init(
        a.client_id, ConnectionCounterparty(b.client_id, "", b.host.prefix)
    ).value
    proof, height = net.proof(b, host.connection_path(conn_a))
    conn_b = b.host.conn_open_try(
        ConnectionCounterparty(a.client_id, conn_a, a.host.prefix),
        b.client_id,
        [DEFAULT_VERSION],
        proof,
        height,
    ).value
    proof, height = net.proof(a, host.connection_path(conn_b))
    a.host.conn_open_ack(conn_a, conn_b, DEFAULT_VERSION, proof, height)
    proof, height = net.proof(b, host.connection_path(conn_a))
    b.host.conn_open_confirm(conn_b, proof, height)
    return conn_a, conn_b


def open_channel(
    net: Net, ordering: Order, connections: tuple[str, str] | None = None
) -> tuple[str, str]:
    a, b = net.a, net.b
    conn_a, conn_b = connections or connect(net)
    chan_a = a.host.chan_open_init(
        PORT, ordering, [conn_a], ChannelCounterparty(PORT, ""), VERSION
    ).value
    proof, height = net.proof(b, host.channel_path(PORT, chan_a))
    chan_b = b.host.chan_open_try(
        PORT, ordering, [conn_b], ChannelCounterparty(PORT, chan_a), VERSION, VERSION, proof, height
    ).value
    proof, height = net.proof(a, host.channel_path(PORT, chan_b))
    a.host.chan_open_ack(PORT, chan_a, VERSION, chan_b, proof, height)
    proof, height = net.proof(b, host.channel_path(PORT, chan_a))
    b.host.chan_open_confirm(PORT, chan_b, proof, height)
    return chan_a, chan_b


def send(side: Side, channel: str, data: bytes, **timeouts: Any) -> Packet:
    if not timeouts:
        timeouts = {"timeout_height": Height(0, 10**9)}
    return side.host.send_packet(side.app.address, PORT, channel, data, **timeouts).value


def relay_recv(net: Net, to: Side, packet: Packet) -> bytes | None:
    path = host.packet_commitment_path(packet.source_port, packet.source_channel, packet.sequence)
    proof, height = net.proof(to, path)
    return to.host.recv_packet(packet, proof, height).value


def relay_ack(net: Net, to: Side, packet: Packet, ack: bytes) -> None:
    path = host.ack_path(packet.destination_port, packet.destination_channel, packet.sequence)
    proof, height = net.proof(to, path)
    to.host.acknowledge_packet(packet, ack, proof, height)


def snapshot(side: Side, *paths: bytes) -> list[bytes]:
    return [side.host.commitment(p) for p in paths]


def assert_reverts(reason: str, fn: Any, *args: Any) -> None:
    with pytest.raises(TransactionRevertedError) as caught:
        fn(*args)
    assert reason in str(caught.value)


# ------------------------------------------------------------------------------ contracts
def test_commitments_mapping_is_slot_0_in_the_handler_and_every_logic_contract() -> None:
    handler = toolchain.compile_contract(HANDLER_CONTRACT)
    assert toolchain.storage_slot(handler, COMMITMENTS_VARIABLE) == COMMITMENTS_SLOT == 0
    for name in LOGIC_CONTRACTS:
        logic = toolchain.compile_contract(name)
        # Delegate-called code must see the very same layout as the handler.
        assert logic.storage_layout == handler.storage_layout, name


def test_every_contract_fits_the_code_size_limit() -> None:
    for name in (*LOGIC_CONTRACTS, HANDLER_CONTRACT, TEST_SIGNED_CLIENT_CONTRACT, "ibc/echo_app"):
        size = len(toolchain.compile_contract(name).runtime_bytecode)
        assert 0 < size <= EIP170_LIMIT, f"{name}: {size} bytes"


def test_commitment_slot_follows_vyper_hashmap_rule() -> None:
    path = host.packet_commitment_path(PORT, "channel-0", 1)
    expected = keccak(COMMITMENTS_SLOT.to_bytes(32, "big") + keccak(path))
    assert commitment_slot(path) == int.from_bytes(expected, "big")


# ------------------------------------------------------------------------------ handshakes
def test_connection_handshake_stores_the_python_ends_and_commitments(net: Net) -> None:
    conn_a, conn_b = connect(net)
    a, b = net.a, net.b
    expected_a = ConnectionEnd(
        a.client_id,
        (DEFAULT_VERSION,),
        ConnectionState.OPEN,
        ConnectionCounterparty(b.client_id, conn_b, b.host.prefix),
    )
    expected_b = ConnectionEnd(
        b.client_id,
        (DEFAULT_VERSION,),
        ConnectionState.OPEN,
        ConnectionCounterparty(a.client_id, conn_a, a.host.prefix),
    )
    assert (conn_a, conn_b) == ("connection-0", "connection-0")
    assert a.host.connection(conn_a) == expected_a
    assert b.host.connection(conn_b) == expected_b
    # Vyper's abi_encode of the struct == types.py encode(): the stored commitments agree.
    assert a.host.commitment(host.connection_path(conn_a)) == end_commitment(expected_a)
    assert b.host.commitment(host.connection_path(conn_b)) == end_commitment(expected_b)
    assert a.host.connection("connection-9") is None


def test_channel_handshake_stores_the_python_ends_and_sequences(net: Net) -> None:
    chan_a, chan_b = open_channel(net, Order.UNORDERED)
    a, b = net.a, net.b
    expected = ChannelEnd(
        ChannelState.OPEN,
        Order.UNORDERED,
        ChannelCounterparty(PORT, chan_b),
        ("connection-0",),
        VERSION,
    )
    assert a.host.channel(PORT, chan_a) == expected
    assert a.host.commitment(host.channel_path(PORT, chan_a)) == end_commitment(expected)
    assert b.host.commitment(host.channel_path(PORT, chan_b)) == end_commitment(
        b.host.channel(PORT, chan_b)  # type: ignore[arg-type]
    )
    for path in (
        host.next_sequence_send_path(PORT, chan_a),
        host.next_sequence_recv_path(PORT, chan_a),
        host.next_sequence_ack_path(PORT, chan_a),
    ):
        assert a.host.commitment(path) == sequence_value(1)
    assert a.app.functions.open_channels().call() == 1
    assert b.app.functions.open_channels().call() == 1


# ------------------------------------------------------------------------------ packets
def test_packets_both_ways_with_acks_on_an_unordered_channel(net: Net) -> None:
    chan_a, chan_b = open_channel(net, Order.UNORDERED)
    a, b = net.a, net.b
    for source, dest, channel in ((a, b, chan_a), (b, a, chan_b)):
        packet = send(source, channel, b"hello " + source.host.address.encode())
        commitment_path = host.packet_commitment_path(PORT, channel, packet.sequence)
        assert source.host.commitment(commitment_path) == packet_commitment_of(packet)
        ack = relay_recv(net, dest, packet)
        assert ack == b"echo:" + hashlib.sha256(packet.data).digest()
        receipt_path = host.packet_receipt_path(PORT, packet.destination_channel, 1)
        ack_path = host.ack_path(PORT, packet.destination_channel, 1)
        assert dest.host.commitment(receipt_path) == RECEIPT
        assert dest.host.commitment(ack_path) == ack_commitment(ack)
        relay_ack(net, source, packet, ack)
        assert source.host.commitment(commitment_path) == bytes(32)
        assert source.app.functions.acknowledged().call() == 1
        assert source.app.functions.last_ack().call() == ack
        assert dest.app.functions.received().call() == 1


def test_ordered_channel_delivers_in_order_only(net: Net) -> None:
    chan_a, chan_b = open_channel(net, Order.ORDERED)
    a, b = net.a, net.b
    first, second = send(a, chan_a, b"one"), send(a, chan_a, b"two")
    recv_path = host.next_sequence_recv_path(PORT, chan_b)
    path = host.packet_commitment_path(PORT, chan_a, second.sequence)
    proof, height = net.proof(b, path)
    assert_reverts("out of order", b.host.recv_packet, second, proof, height)
    assert b.host.commitment(recv_path) == sequence_value(1)
    ack1 = relay_recv(net, b, first)
    ack2 = relay_recv(net, b, second)
    assert b.host.commitment(recv_path) == sequence_value(3)
    assert ack1 is not None and ack2 is not None
    path = host.ack_path(PORT, chan_b, 2)
    proof, height = net.proof(a, path)
    assert_reverts(
        "acknowledgement out of order", a.host.acknowledge_packet, second, ack2, proof, height
    )
    relay_ack(net, a, first, ack1)
    relay_ack(net, a, second, ack2)
    assert a.host.commitment(host.next_sequence_ack_path(PORT, chan_a)) == sequence_value(3)


def test_timeout_by_height(net: Net) -> None:
    chan_a, chan_b = open_channel(net, Order.UNORDERED)
    a, b = net.a, net.b
    deadline = Height(0, b.host.height().revision_height + 3)
    packet = send(a, chan_a, b"late", timeout_height=deadline)
    b.mine(3)
    # B refuses it: its height has reached the timeout.
    receipt_path = host.packet_receipt_path(PORT, chan_b, packet.sequence)
    path = host.packet_commitment_path(PORT, chan_a, packet.sequence)
    proof, height = net.proof(b, path)
    assert_reverts("packet timed out (height)", b.host.recv_packet, packet, proof, height)
    assert b.host.commitment(receipt_path) == bytes(32)
    # A times it out with B's proof that no receipt exists at a height >= the deadline.
    proof, height = net.proof(a, receipt_path)
    assert height.revision_height >= deadline.revision_height
    a.host.timeout_packet(packet, proof, height)
    assert a.host.commitment(path) == bytes(32)
    assert a.app.functions.timed_out().call() == 1
    assert a.host.channel(PORT, chan_a).state == ChannelState.OPEN  # type: ignore[union-attr]


def test_timeout_by_timestamp(net: Net) -> None:
    chan_a, chan_b = open_channel(net, Order.UNORDERED)
    a, b = net.a, net.b
    deadline = b.host.timestamp_ns() + 2 * 10**9
    packet = send(a, chan_a, b"late", timeout_timestamp=deadline)
    receipt_path = host.packet_receipt_path(PORT, chan_b, packet.sequence)
    # Not yet reached on B: timing out is refused.
    proof, height = net.proof(a, receipt_path)
    assert_reverts("packet timeout not reached", a.host.timeout_packet, packet, proof, height)
    while b.host.timestamp_ns() < deadline:
        b.mine()
    path = host.packet_commitment_path(PORT, chan_a, packet.sequence)
    proof, height = net.proof(b, path)
    assert_reverts("packet timed out (timestamp)", b.host.recv_packet, packet, proof, height)
    proof, height = net.proof(a, receipt_path)
    a.host.timeout_packet(packet, proof, height)
    assert a.host.commitment(path) == bytes(32)
    assert a.app.functions.timed_out().call() == 1


def test_ordered_timeout_closes_the_channel(net: Net) -> None:
    chan_a, chan_b = open_channel(net, Order.ORDERED)
    a, b = net.a, net.b
    on_time = send(a, chan_a, b"on time")
    ack = relay_recv(net, b, on_time)
    assert ack is not None
    deadline = Height(0, b.host.height().revision_height + 1)
    packet = send(a, chan_a, b"late", timeout_height=deadline)
    b.mine(2)
    proof, height = net.proof(a, host.next_sequence_recv_path(PORT, chan_b))
    # Claiming B's next sequence recv is past the packet means it was received: no timeout.
    assert_reverts("packet was received", a.host.timeout_packet, packet, proof, height, 3)
    # A next sequence recv B does not have does not verify.
    assert_reverts(
        "next sequence recv proof does not verify", a.host.timeout_packet, packet, proof, height, 1
    )
    a.host.timeout_packet(packet, proof, height, next_sequence_recv=2)
    closed = a.host.channel(PORT, chan_a)
    assert closed is not None and closed.state == ChannelState.CLOSED
    assert a.host.commitment(host.channel_path(PORT, chan_a)) == end_commitment(closed)
    assert_reverts("channel not open", send, a, chan_a, b"more")
    # The packet B received before the channel closed still ends, with its acknowledgement.
    relay_ack(net, a, on_time, ack)
    assert a.host.commitment(host.packet_commitment_path(PORT, chan_a, 1)) == bytes(32)
    assert (a.app.functions.acknowledged().call(), a.app.functions.timed_out().call()) == (1, 1)


def test_close_handshake(net: Net) -> None:
    chan_a, chan_b = open_channel(net, Order.UNORDERED)
    a, b = net.a, net.b
    a.host.chan_close_init(PORT, chan_a)
    proof, height = net.proof(b, host.channel_path(PORT, chan_a))
    b.host.chan_close_confirm(PORT, chan_b, proof, height)
    assert a.host.channel(PORT, chan_a).state == ChannelState.CLOSED  # type: ignore[union-attr]
    assert b.host.channel(PORT, chan_b).state == ChannelState.CLOSED  # type: ignore[union-attr]
    assert b.app.functions.closed_channels().call() == 1
    assert_reverts("channel not open", send, b, chan_b, b"after close")
    assert_reverts("already closed", a.host.chan_close_init, PORT, chan_a)


def test_timeout_on_close(net: Net) -> None:
    chan_a, chan_b = open_channel(net, Order.UNORDERED)
    a, b = net.a, net.b
    packet = send(a, chan_a, b"in flight")
    b.host.chan_close_init(PORT, chan_b)
    height = a.prover.update().value
    proof_close = a.prover.prove(host.channel_path(PORT, chan_b), height)
    receipt_path = host.packet_receipt_path(PORT, chan_b, packet.sequence)
    proof_unreceived = a.prover.prove(receipt_path, height)
    # The packet's own timeout is far away: timeout_packet refuses, timeout_on_close accepts.
    assert_reverts(
        "packet timeout not reached", a.host.timeout_packet, packet, proof_unreceived, height
    )
    assert_reverts(
        "channel proof does not verify",
        a.host.timeout_on_close,
        packet,
        proof_unreceived,
        proof_unreceived,  # not a proof of the CLOSED end
        height,
    )
    a.host.timeout_on_close(packet, proof_unreceived, proof_close, height)
    assert a.host.commitment(host.packet_commitment_path(PORT, chan_a, 1)) == bytes(32)
    assert a.app.functions.timed_out().call() == 1


def test_asynchronous_acknowledgement(net: Net) -> None:
    chan_a, chan_b = open_channel(net, Order.UNORDERED)
    a, b = net.a, net.b
    packet = send(a, chan_a, b"no-ack")
    assert relay_recv(net, b, packet) is None
    ack_path = host.ack_path(PORT, chan_b, packet.sequence)
    assert b.host.commitment(ack_path) == bytes(32)
    unreceived = Packet(2, PORT, chan_a, PORT, chan_b, b"no-ack", Height(0, 10**9))
    assert_reverts(
        "packet not received", b.host.write_acknowledgement, b.app.address, unreceived, b"later"
    )
    b.host.write_acknowledgement(b.app.address, packet, b"later")
    assert b.host.commitment(ack_path) == ack_commitment(b"later")
    assert_reverts(
        "acknowledgement already written",
        b.host.write_acknowledgement,
        b.app.address,
        packet,
        b"again",
    )
    relay_ack(net, a, packet, b"later")
    assert a.app.functions.last_ack().call() == b"later"


# ------------------------------------------------------------------------------ negatives
def test_connection_try_rejects_a_wrong_signature_or_height(net: Net) -> None:
    a, b = net.a, net.b
    conn_a = a.host.conn_open_init(
        a.client_id, ConnectionCounterparty(b.client_id, "", b.host.prefix)
    ).value
    path = host.connection_path(conn_a)
    height = b.prover.update().value
    value = a.host.commitment(path, height.revision_height)
    counterparty = ConnectionCounterparty(a.client_id, conn_a, a.host.prefix)
    forged = sign_test_membership(OTHER_KEY, b.client_id, height, a.host.prefix, path, value)
    unknown = Height(0, height.revision_height + 5)  # never given to B's client
    at_unknown = sign_test_membership(TEST_KEY, b.client_id, unknown, a.host.prefix, path, value)
    good = b.prover.prove(path, height)
    wrong_path = sign_test_membership(
        TEST_KEY, b.client_id, height, a.host.prefix, host.connection_path("connection-7"), value
    )
    for proof, at in (
        (forged, height),
        (at_unknown, unknown),
        (good, unknown),
        (wrong_path, height),
    ):
        assert_reverts(
            "connection proof does not verify",
            b.host.conn_open_try,
            counterparty,
            b.client_id,
            [DEFAULT_VERSION],
            proof,
            at,
        )
    assert b.host.connection("connection-0") is None
    assert b.host.commitment(host.connection_path("connection-0")) == bytes(32)
    # The good proof at its own height is accepted.
    assert b.host.conn_open_try(counterparty, b.client_id, [DEFAULT_VERSION], good, height).value


def test_packet_negatives_leave_state_unchanged(net: Net) -> None:
    chan_a, chan_b = open_channel(net, Order.UNORDERED)
    a, b = net.a, net.b
    packet = send(a, chan_a, b"pay 100")
    path = host.packet_commitment_path(PORT, chan_a, packet.sequence)
    receipt_path = host.packet_receipt_path(PORT, chan_b, packet.sequence)
    ack_path = host.ack_path(PORT, chan_b, packet.sequence)
    proof, height = net.proof(b, path)
    # An altered packet does not match the proven commitment.
    altered = Packet(
        packet.sequence,
        packet.source_port,
        packet.source_channel,
        packet.destination_port,
        packet.destination_channel,
        b"pay 999",
        packet.timeout_height,
    )
    assert_reverts(
        "packet commitment proof does not verify", b.host.recv_packet, altered, proof, height
    )
    # A proof signed by another key.
    forged = sign_test_membership(
        OTHER_KEY, b.client_id, height, a.host.prefix, path, packet_commitment_of(packet)
    )
    assert_reverts(
        "packet commitment proof does not verify", b.host.recv_packet, packet, forged, height
    )
    assert snapshot(b, receipt_path, ack_path) == [bytes(32), bytes(32)]
    ack = b.host.recv_packet(packet, proof, height).value
    assert ack is not None
    # Replayed delivery.
    before = snapshot(b, receipt_path, ack_path)
    assert_reverts("packet already received", b.host.recv_packet, packet, proof, height)
    assert snapshot(b, receipt_path, ack_path) == before
    assert b.app.functions.received().call() == 1
    # An acknowledgement for a packet A never sent.
    unsent = Packet(2, PORT, chan_a, PORT, chan_b, b"never sent", Height(0, 10**9))
    proof, height = net.proof(a, ack_path)
    assert_reverts(
        "packet not sent or already settled", a.host.acknowledge_packet, unsent, ack, proof, height
    )
    # A wrong acknowledgement for the real packet.
    assert_reverts(
        "acknowledgement proof does not verify",
        a.host.acknowledge_packet,
        packet,
        b"echo:forged",
        proof,
        height,
    )
    assert a.host.commitment(path) == packet_commitment_of(packet)
    a.host.acknowledge_packet(packet, ack, proof, height)
    # Acknowledged once: a second ack and a timeout both find nothing to settle.
    assert_reverts(
        "packet not sent or already settled", a.host.acknowledge_packet, packet, ack, proof, height
    )
    assert_reverts(
        "packet not sent or already settled", a.host.timeout_packet, packet, proof, height
    )
    assert a.app.functions.acknowledged().call() == 1


def test_only_the_port_module_sends_and_only_the_admin_binds(net: Net) -> None:
    chan_a, _ = open_channel(net, Order.UNORDERED)
    a = net.a
    direct = a.host.handler.functions.send_packet(PORT, chan_a, (0, 10**9), 0, b"x")
    with pytest.raises(TransactionRevertedError, match="caller does not own the port"):
        transact(a.host.w3, direct, sender=a.sender)
    stranger = EvmIbcHost(a.host.w3, a.host.address, sender=dev_accounts()[1])
    assert_reverts("only the admin binds ports", stranger.bind_port, "other", a.app.address)
    assert_reverts("port already bound", a.host.bind_port, PORT, a.app.address)


def test_the_test_client_accepts_only_updates_signed_by_its_key(net: Net) -> None:
    a, b = net.a, net.b
    before = a.host.handler.functions.client_impls(a.client_id).call()
    signed_client = a.host.w3.eth.contract(
        address=before, abi=toolchain.compile_contract(TEST_SIGNED_CLIENT_CONTRACT).abi
    )
    latest = signed_client.functions.latest_height(a.client_id).call()
    forged = TestSignedProver(OTHER_KEY, b.host, a.host, a.client_id)
    b.mine()
    assert_reverts("update not signed by the test key", forged.update)
    assert signed_client.functions.latest_height(a.client_id).call() == latest
    assert_reverts("unknown client", a.host.update_client, "test-signed-7", b"")
    # Only the handler creates clients on it.
    direct = signed_client.functions.create_client("test-signed-9", bytes(32), bytes(96))
    with pytest.raises(TransactionRevertedError, match="only the IBC handler"):
        transact(a.host.w3, direct, sender=a.sender)


# ------------------------------------------------------------------------------ proofs
def test_eth_get_proof_proves_commitments_and_absence(net: Net) -> None:
    chan_a, _ = open_channel(net, Order.UNORDERED)
    a = net.a
    packet = send(a, chan_a, b"proven")
    block = a.host.height().revision_height
    state_root = a.host.w3.eth.get_block(block)["stateRoot"]
    path = host.packet_commitment_path(PORT, chan_a, packet.sequence)
    absent = host.packet_commitment_path(PORT, chan_a, 99)
    for p, value in ((path, packet_commitment_of(packet)), (absent, bytes(32))):
        raw = a.host.get_proof(p, block)
        proven = verify_eth_get_proof(bytes(state_root), raw, address=a.host.prefix)
        assert proven == {commitment_slot(p): int.from_bytes(value, "big")}
    # The QBFT client the Corda host runs accepts the header and the proof bytes.
    qbft = QbftClient.from_trusted_header(
        a.host.header(block),
        list(a.chain.validators),
        chain_id=a.chain.chain_id,
        ibc_handler=a.host.prefix,
        commitments_slot=COMMITMENTS_SLOT,
    )
    height = Height(0, block)
    qbft.verify_membership(
        height, a.host.prove(path, block), a.host.prefix, path, packet_commitment_of(packet)
    )
    qbft.verify_non_membership(height, a.host.prove(absent, block), a.host.prefix, absent)


# ------------------------------------------------------------------------------ property
_ACTION = st.tuples(st.sampled_from(["deliver", "ack", "timeout", "mine"]), st.integers(0, 3))


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    ordering=st.sampled_from([Order.UNORDERED, Order.ORDERED]),
    lifetimes=st.lists(st.integers(2, 8), min_size=1, max_size=4),
    actions=st.lists(_ACTION, max_size=12),
)
def test_every_packet_ends_exactly_once(
    net: Net, ordering: Order, lifetimes: list[int], actions: list[tuple[str, int]]
) -> None:
    """Random interleavings of deliveries (any order), acknowledgements, timeouts and blocks:
    every packet ends on A exactly once, acknowledged or timed out, never both."""
    a, b = net.a, net.b
    if net.connections is None:
        net.connections = connect(net)
    chan_a, chan_b = open_channel(net, ordering, net.connections)
    base_ack, base_timeout = (
        a.app.functions.acknowledged().call(),
        a.app.functions.timed_out().call(),
    )
    start = b.host.height().revision_height
    packets = [
        send(a, chan_a, b"p%d" % i, timeout_height=Height(0, start + life + i))
        for i, life in enumerate(lifetimes)
    ]
    acked: set[int] = set()
    timed_out: set[int] = set()

    def ack_of(packet: Packet) -> bytes:
        return b"echo:" + hashlib.sha256(packet.data).digest()

    def try_timeout(packet: Packet) -> None:
        path = (
            host.next_sequence_recv_path(PORT, chan_b)
            if ordering is Order.ORDERED
            else host.packet_receipt_path(PORT, chan_b, packet.sequence)
        )
        proof, height = net.proof(a, path)
        next_recv = int.from_bytes(b.host.commitment(path, height.revision_height), "big")
        a.host.timeout_packet(packet, proof, height, next_recv)
        timed_out.add(packet.sequence)

    def try_ack(packet: Packet) -> None:
        relay_ack(net, a, packet, ack_of(packet))
        acked.add(packet.sequence)

    for action, index in actions:
        packet = packets[index % len(packets)]
        try:
            if action == "deliver":
                relay_recv(net, b, packet)
            elif action == "ack":
                try_ack(packet)
            elif action == "timeout":
                try_timeout(packet)
            else:
                b.mine(index + 1)
        except TransactionRevertedError:
            pass  # refused: nothing changed (checked at the end through the counts)
    # Settle: let every timeout pass on B, then end each packet the one way it still can.
    while b.host.height().revision_height < start + max(lifetimes) + len(lifetimes):
        b.mine()
    for packet in packets:
        if packet.sequence in acked | timed_out:
            continue
        if b.host.commitment(host.ack_path(PORT, chan_b, packet.sequence)) != bytes(32):
            try_ack(packet)
        else:
            try_timeout(packet)
    assert acked.isdisjoint(timed_out)
    assert acked | timed_out == {p.sequence for p in packets}
    assert a.app.functions.acknowledged().call() - base_ack == len(acked)
    assert a.app.functions.timed_out().call() - base_timeout == len(timed_out)
    for packet in packets:
        path = host.packet_commitment_path(PORT, chan_a, packet.sequence)
        assert a.host.commitment(path) == bytes(32)
        # Settled packets stay settled.
        for settle in (try_ack, try_timeout):
            with pytest.raises(TransactionRevertedError):
                settle(packet)


# ------------------------------------------------------------------------------ interop
class PyEcho:
    """An application on the Python handler: acknowledges with b"py:" ‖ data."""

    def __init__(self) -> None:
        self.acks: list[bytes] = []
        self.timeouts: list[int] = []

    def on_chan_open_init(self, *args: Any) -> str:
        return str(args[-1])

    def on_chan_open_try(self, *args: Any) -> str:
        return str(args[-1])

    def on_chan_open_ack(self, *args: Any) -> None: ...

    def on_chan_open_confirm(self, *args: Any) -> None: ...

    def on_chan_close_init(self, *args: Any) -> None: ...

    def on_chan_close_confirm(self, *args: Any) -> None: ...

    def on_recv_packet(self, packet: Packet) -> bytes | None:
        return b"py:" + packet.data

    def on_acknowledgement_packet(self, packet: Packet, acknowledgement: bytes) -> None:
        self.acks.append(acknowledgement)

    def on_timeout_packet(self, packet: Packet) -> None:
        self.timeouts.append(packet.sequence)


@dataclass
class PyHost:
    """The pure Python handler as the counterparty, at height (1, n), n bumped per proof."""

    handler: Any
    module: PyEcho
    height: int = 1
    prefix: bytes = b"kakehashi-python-host"


def test_interop_with_the_python_handler_through_the_qbft_client() -> None:
    """Vyper host on the embedded chain ↔ kakehashi.ibc.handler: the Python side verifies the
    chain with the real QBFT client (headers + eth_getProof proofs from EvmIbcHost.prove), the
    chain verifies the Python side through the TEST-ONLY signed client."""
    from kakehashi.ibc.handler import IbcHandler
    from kakehashi.ibc.router import Router
    from kakehashi.ibc.store import MemoryStore

    with EmbeddedChain() as chain:
        evm, app, sender = _side(chain)
        router = Router()
        module = PyEcho()
        router.bind(PORT, module)
        store = MemoryStore()
        py = PyHost(None, module)

        def now_ns() -> int:
            return max(time.time_ns(), evm.timestamp_ns())

        py.handler = IbcHandler(
            store,
            prefix=py.prefix,
            host_height=lambda: Height(1, py.height),
            host_timestamp_ns=now_ns,
            router=router,
        )
        # The chain's client of the Python host (TEST-ONLY signed statements).
        signer = keys.PrivateKey(TEST_KEY).public_key.to_checksum_address()
        evm_client = evm.create_client(
            TEST_SIGNED_CLIENT_TYPE,
            signed_client_state(signer),
            signed_consensus_state(Height(1, py.height), now_ns(), bytes(32)),
        ).value

        def py_proof(path: bytes) -> tuple[bytes, Height]:
            py.height += 1
            height = Height(1, py.height)
            message = sign_test_update(TEST_KEY, evm_client, height, now_ns(), bytes(32))
            evm.update_client(evm_client, message)
            value = store.get(path) or bytes(32)
            return sign_test_membership(
                TEST_KEY, evm_client, height, py.prefix, path, value
            ), height

        # The Python host's client of the chain: the real QBFT client.
        block = evm.height().revision_height
        py_client = py.handler.create_client(
            QbftClient.from_trusted_header(
                evm.header(block),
                list(chain.validators),
                chain_id=chain.chain_id,
                ibc_handler=evm.prefix,
                commitments_slot=COMMITMENTS_SLOT,
            )
        )

        def evm_proof(path: bytes) -> tuple[bytes, Height]:
            block = evm.height().revision_height
            height = py.handler.update_client(py_client, evm.header(block), now_ns())
            return evm.prove(path, block), height

        # Connection: the chain initiates.
        conn_e = evm.conn_open_init(
            evm_client, ConnectionCounterparty(py_client, "", py.prefix)
        ).value
        proof, h = evm_proof(host.connection_path(conn_e))
        conn_p = py.handler.conn_open_try(
            py_client,
            ConnectionCounterparty(evm_client, conn_e, evm.prefix),
            [DEFAULT_VERSION],
            0,
            proof,
            h,
        )
        proof, h = py_proof(host.connection_path(conn_p))
        evm.conn_open_ack(conn_e, conn_p, py.handler.connection(conn_p).versions[0], proof, h)
        proof, h = evm_proof(host.connection_path(conn_e))
        py.handler.conn_open_confirm(conn_p, proof, h)
        assert evm.connection(conn_e).state == ConnectionState.OPEN  # type: ignore[union-attr]
        assert py.handler.connection(conn_p).state == ConnectionState.OPEN

        # Channel: the Python host initiates.
        chan_p = py.handler.chan_open_init(
            PORT, Order.UNORDERED, [conn_p], ChannelCounterparty(PORT, ""), VERSION
        )
        proof, h = py_proof(host.channel_path(PORT, chan_p))
        chan_e = evm.chan_open_try(
            PORT,
            Order.UNORDERED,
            [conn_e],
            ChannelCounterparty(PORT, chan_p),
            VERSION,
            VERSION,
            proof,
            h,
        ).value
        proof, h = evm_proof(host.channel_path(PORT, chan_e))
        py.handler.chan_open_ack(PORT, chan_p, chan_e, VERSION, proof, h)
        proof, h = py_proof(host.channel_path(PORT, chan_p))
        evm.chan_open_confirm(PORT, chan_e, proof, h)
        # Both hosts committed the same end bytes for their own side's view.
        assert evm.commitment(host.channel_path(PORT, chan_e)) == end_commitment(
            evm.channel(PORT, chan_e)  # type: ignore[arg-type]
        )

        # Chain → Python, acknowledged.
        packet = evm.send_packet(
            app.address, PORT, chan_e, b"to python", timeout_height=Height(1, 10**6)
        ).value
        proof, h = evm_proof(host.packet_commitment_path(PORT, chan_e, packet.sequence))
        # An altered proof, or the proof of another packet's path, is refused; nothing changes.
        tampered = proof[:-40] + bytes([proof[-40] ^ 1]) + proof[-39:]
        other = evm.prove(host.packet_commitment_path(PORT, chan_e, 2), h.revision_height)
        for bad in (tampered, other):
            with pytest.raises(KakehashiError):
                py.handler.recv_packet(packet, bad, h)
        assert store.get(host.packet_receipt_path(PORT, chan_p, packet.sequence)) is None
        ack = py.handler.recv_packet(packet, proof, h)
        assert ack == b"py:to python"
        proof, h = py_proof(host.ack_path(PORT, chan_p, packet.sequence))
        evm.acknowledge_packet(packet, ack, proof, h)
        assert app.functions.last_ack().call() == ack

        # Python → chain, acknowledged.
        packet = py.handler.send_packet(PORT, chan_p, Height(0, 10**9), 0, b"to the chain")
        proof, h = py_proof(host.packet_commitment_path(PORT, chan_p, packet.sequence))
        ack = evm.recv_packet(packet, proof, h).value
        assert ack == b"echo:" + hashlib.sha256(b"to the chain").digest()
        proof, h = evm_proof(host.ack_path(PORT, chan_e, packet.sequence))
        py.handler.acknowledge_packet(packet, ack, proof, h)
        assert module.acks == [ack]

        # Python → chain, timed out by height: the chain's receipt absence, proven by eth_getProof.
        deadline = Height(0, evm.height().revision_height + 2)
        late = py.handler.send_packet(PORT, chan_p, deadline, 0, b"late")
        _mine(evm, sender, 2)
        proof, h = evm_proof(host.packet_receipt_path(PORT, chan_e, late.sequence))
        py.handler.timeout_packet(late, proof, h, 0)
        assert module.timeouts == [late.sequence]


def test_pipelined_call_data_and_batched_reads_match_web3s(net: Net) -> None:
    """The call data a pipelined packet transaction carries (ABI-encoded by the host) is what
    web3 builds for the same call; ``commitments`` and ``prove_values`` (one batch / one
    eth_getProof) answer what ``commitment`` and ``prove_value`` answer path by path."""
    chan_a, _ = open_channel(net, Order.UNORDERED)
    a = net.a
    packet = send(a, chan_a, b"encode me")
    proof, height = b"\x01" * 70, Height(0, 12)
    for msg in (
        msgs.MsgRecvPacket(packet, proof, height),
        msgs.MsgAcknowledgement(packet, b"ack", proof, height),
        msgs.MsgTimeout(packet, proof, height, 3),
    ):
        fn = a.host._packet_fn(msg)
        assert a.host._packet_call_data(msg) == bytes.fromhex(
            fn._encode_transaction_data().removeprefix("0x")
        )
    present = host.packet_commitment_path(PORT, chan_a, packet.sequence)
    paths = [present, host.packet_receipt_path(PORT, chan_a, 7), present]
    block = a.host.height().revision_height
    assert a.host.commitments(paths, block) == [a.host.commitment(p, block) for p in paths]
    assert a.host.prove_values(paths, block) == [a.host.prove_value(p, block) for p in paths]
    assert a.host.commitments([], block) == [] and a.host.prove_values([], block) == []
