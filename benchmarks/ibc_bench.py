"""Benchmarks of the EVM IBC host (printed figures, never timed assertions).

* Gas used by every handshake step, send, recv, ack and timeout on the embedded QBFT chain
  (packets: the second packet on a channel, once the app's counters exist):
  two chains, each with a handler and the TEST-ONLY signed client of the other (this script
  signs the relayed statements, as the tests do). Baseline: an ERC-20 transfer on the same chain.
* The ``eth_getProof`` proof of a packet commitment: its size (what the Corda host's QBFT
  client receives) and the time that client takes to verify it.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from kakehashi.ibc import host
from kakehashi.ibc.clients.qbft import QbftClient
from kakehashi.ibc.commitment import packet_commitment_of
from kakehashi.ibc.evm_host import (
    COMMITMENTS_SLOT,
    TEST_SIGNED_CLIENT_TYPE,
    EvmIbcHost,
    Outcome,
    TestSignedProver,
    deploy_echo_app,
    deploy_test_signed_client,
)
from kakehashi.ibc.types import (
    DEFAULT_VERSION,
    ChannelCounterparty,
    ConnectionCounterparty,
    Height,
    Order,
    Packet,
)
from kakehashi.ledgers.evm import client, toolchain
from kakehashi.ledgers.evm.chain import EmbeddedChain, dev_accounts
from kakehashi.ledgers.evm.provider import embedded_web3

KEY = keccak(b"kakehashi ibc benchmark test key")
PORT = "echo"
VERSION = "echo-1"
PAYLOAD = b"x" * 256
VERIFY_RUNS = 200
GAS = 5_000_000


@dataclass
class Side:
    chain: EmbeddedChain
    host: EvmIbcHost
    app: str
    prover: TestSignedProver  # proves the other side's state to this side
    sender: LocalAccount

    def prove(self, path: bytes) -> tuple[bytes, Height]:
        height = self.prover.update().value
        return self.prover.prove(path, height), height

    def mine(self, blocks: int) -> None:
        w3 = self.host.w3
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


def _host(chain: EmbeddedChain) -> tuple[EvmIbcHost, str, LocalAccount]:
    w3 = embedded_web3(chain)
    sender = dev_accounts()[0]
    ibc = EvmIbcHost.deploy(w3, sender=sender, gas=GAS)
    ibc.register_client(
        TEST_SIGNED_CLIENT_TYPE, deploy_test_signed_client(w3, ibc.address, sender=sender).address
    )
    app = deploy_echo_app(w3, ibc.address, sender=sender).address
    ibc.bind_port(PORT, app)
    return ibc, app, sender


def _erc20_transfer_gas(side: Side) -> int:
    token = toolchain.deploy(side.host.w3, "tokens/erc20", "T", "T", 18, 10**24, sender=side.sender)
    receipt = client.transact(
        side.host.w3, token.functions.transfer(dev_accounts()[1].address, 1), sender=side.sender
    )
    return int(receipt["gasUsed"])


def _open(a: Side, b: Side, gas: dict[str, int], ordering: Order) -> tuple[str, str]:
    """Connection and channel handshakes A→B; records the gas of each step (first time only)."""

    def note(step: str, outcome: Outcome[object]) -> None:
        gas.setdefault(step, outcome.gas_used)

    init = a.host.conn_open_init(
        a.prover.client_id, ConnectionCounterparty(b.prover.client_id, "", b.host.prefix)
    )
    note("conn_open_init", init)
    proof, h = b.prove(host.connection_path(init.value))
    try_ = b.host.conn_open_try(
        ConnectionCounterparty(a.prover.client_id, init.value, a.host.prefix),
        b.prover.client_id,
        [DEFAULT_VERSION],
        proof,
        h,
    )
    note("conn_open_try", try_)
    proof, h = a.prove(host.connection_path(try_.value))
    note("conn_open_ack", a.host.conn_open_ack(init.value, try_.value, DEFAULT_VERSION, proof, h))
    proof, h = b.prove(host.connection_path(init.value))
    note("conn_open_confirm", b.host.conn_open_confirm(try_.value, proof, h))
    chan_init = a.host.chan_open_init(
        PORT, ordering, [init.value], ChannelCounterparty(PORT, ""), VERSION
    )
    note("chan_open_init", chan_init)
    proof, h = b.prove(host.channel_path(PORT, chan_init.value))
    chan_try = b.host.chan_open_try(
        PORT,
        ordering,
        [try_.value],
        ChannelCounterparty(PORT, chan_init.value),
        VERSION,
        VERSION,
        proof,
        h,
    )
    note("chan_open_try", chan_try)
    proof, h = a.prove(host.channel_path(PORT, chan_try.value))
    note(
        "chan_open_ack",
        a.host.chan_open_ack(PORT, chan_init.value, VERSION, chan_try.value, proof, h),
    )
    proof, h = b.prove(host.channel_path(PORT, chan_init.value))
    note("chan_open_confirm", b.host.chan_open_confirm(PORT, chan_try.value, proof, h))
    return chan_init.value, chan_try.value


def measure() -> tuple[dict[str, int], int, dict[str, float]]:
    """Gas per operation, the ERC-20 baseline, and proof figures."""
    gas: dict[str, int] = {}
    proof_figures: dict[str, float] = {}
    with EmbeddedChain() as chain_a, EmbeddedChain() as chain_b:
        host_a, app_a, sender_a = _host(chain_a)
        host_b, app_b, sender_b = _host(chain_b)
        a = Side(chain_a, host_a, app_a, TestSignedProver(KEY, host_b, host_a), sender_a)
        b = Side(chain_b, host_b, app_b, TestSignedProver(KEY, host_a, host_b), sender_b)
        gas["create_client"] = a.prover.create_client().gas_used
        b.prover.create_client()
        gas["update_client"] = a.prover.update().gas_used
        baseline = _erc20_transfer_gas(a)

        for ordering in (Order.UNORDERED, Order.ORDERED):
            tag = ordering.name.lower()
            chan_a, chan_b = _open(a, b, gas, ordering)
            for _ in range(2):  # the second round is the steady state (no first-time slots)
                sent = host_a.send_packet(
                    app_a, PORT, chan_a, PAYLOAD, timeout_height=Height(0, 10**9)
                )
                gas[f"send_packet ({len(PAYLOAD)} B, {tag})"] = sent.gas_used
                packet: Packet = sent.value
                proof, h = b.prove(host.packet_commitment_path(PORT, chan_a, packet.sequence))
                recv = host_b.recv_packet(packet, proof, h)
                gas[f"recv_packet + write ack ({tag})"] = recv.gas_used
                assert recv.value is not None
                proof, h = a.prove(host.ack_path(PORT, chan_b, packet.sequence))
                gas[f"acknowledge_packet ({tag})"] = host_a.acknowledge_packet(
                    packet, recv.value, proof, h
                ).gas_used
            if ordering is Order.UNORDERED:
                deadline = Height(0, host_b.height().revision_height + 1)
                late = host_a.send_packet(app_a, PORT, chan_a, PAYLOAD, timeout_height=deadline)
                b.mine(2)
                proof, h = a.prove(host.packet_receipt_path(PORT, chan_b, late.value.sequence))
                gas["timeout_packet by height (unordered)"] = host_a.timeout_packet(
                    late.value, proof, h
                ).gas_used
                deadline_ns = host_b.timestamp_ns() + 10**9
                late = host_a.send_packet(
                    app_a, PORT, chan_a, PAYLOAD, timeout_timestamp=deadline_ns
                )
                while host_b.timestamp_ns() < deadline_ns:
                    b.mine(1)
                proof, h = a.prove(host.packet_receipt_path(PORT, chan_b, late.value.sequence))
                gas["timeout_packet by timestamp (unordered)"] = host_a.timeout_packet(
                    late.value, proof, h
                ).gas_used
                gas["chan_close_init"] = host_a.chan_close_init(PORT, chan_a).gas_used
                proof, h = b.prove(host.channel_path(PORT, chan_a))
                gas["chan_close_confirm"] = host_b.chan_close_confirm(
                    PORT, chan_b, proof, h
                ).gas_used
            else:
                deadline = Height(0, host_b.height().revision_height + 1)
                late = host_a.send_packet(app_a, PORT, chan_a, PAYLOAD, timeout_height=deadline)
                b.mine(2)
                proof, h = a.prove(host.next_sequence_recv_path(PORT, chan_b))
                gas["timeout_packet (ordered; closes the channel)"] = host_a.timeout_packet(
                    late.value, proof, h, next_sequence_recv=late.value.sequence
                ).gas_used

        # The proof the Corda host's QBFT client receives for a packet commitment.
        chan_a, _ = _open(a, b, gas, Order.UNORDERED)
        packet = host_a.send_packet(
            app_a, PORT, chan_a, PAYLOAD, timeout_height=Height(0, 10**9)
        ).value
        block = host_a.height().revision_height
        path = host.packet_commitment_path(PORT, chan_a, packet.sequence)
        proof = host_a.prove(path, block)
        raw = host_a.get_proof(path, block)
        qbft = QbftClient.from_trusted_header(
            host_a.header(block),
            list(chain_a.validators),
            chain_id=chain_a.chain_id,
            ibc_handler=host_a.prefix,
            commitments_slot=COMMITMENTS_SLOT,
        )
        value = packet_commitment_of(packet)
        times = []
        for _ in range(VERIFY_RUNS):
            started = time.perf_counter()
            qbft.verify_membership(Height(0, block), proof, host_a.prefix, path, value)
            times.append((time.perf_counter() - started) * 1000)
        proof_figures = {
            "bytes": len(proof),
            "account nodes": len(raw["accountProof"]),
            "storage nodes": len(raw["storageProof"][0]["proof"]),
            "verify ms": statistics.median(times),
            "header bytes": len(host_a.header(block)),
        }
    return gas, baseline, proof_figures


def main() -> None:
    gas, baseline, proof = measure()
    print("== EVM IBC host: gas per operation (embedded QBFT chain, TEST-ONLY signed client)")
    print(f"{'operation':46}{'gas':>10}   vs ERC-20 transfer")
    for name, used in gas.items():
        print(f"{name:46}{used:>10,}   {used / baseline:6.2f}x")
    print(f"{'baseline: ERC-20 transfer':46}{baseline:>10,}")
    print()
    print("== EVM IBC host: eth_getProof proof of a packet commitment (QBFT client input)")
    print(
        f"proof (RLP of account + storage nodes): {int(proof['bytes']):,} bytes "
        f"({int(proof['account nodes'])} account nodes, {int(proof['storage nodes'])} "
        f"storage nodes); header: {int(proof['header bytes']):,} bytes"
    )
    print(
        f"QBFT client verify_membership (Python, median of {VERIFY_RUNS}): "
        f"{proof['verify ms']:.3f} ms"
    )


if __name__ == "__main__":
    main()
