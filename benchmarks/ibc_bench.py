"""Benchmarks of the EVM IBC host (printed figures, never timed assertions).

* Gas used by every handshake step, send, recv, ack and timeout on the embedded QBFT chain
  (packets: the second packet on a channel, once the app's counters exist):
  two chains, each with a handler and the TEST-ONLY signed client of the other (this script
  signs the relayed statements, as the tests do). Baseline: an ERC-20 transfer on the same chain.
* The ``eth_getProof`` proof of a packet commitment: its size (what the Corda host's QBFT
  client receives) and the time that client takes to verify it.
* Every proof type on each side, its size and the time (or gas) its verifier takes:
  EVM → Corda (QBFT header; ``eth_getProof`` membership / non-membership, QBFT client),
  Corda → EVM (host-state attestation; host proof membership / non-membership, Corda client;
  the TEST-ONLY signed client's on-chain check of a membership statement).
* The Corda-model host's throughput on an embedded network (in-process, SQLite): IBC state
  changes (``send_packet`` on an open channel) per second, one notarised host version each;
  then N packets committed in one host transaction (``CordaIbcHost.execute`` running N handler
  calls) for N = 1, 10, 50.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3.contract import Contract

from kakehashi.ibc import host
from kakehashi.ibc.clients.corda import CordaClient
from kakehashi.ibc.clients.qbft import QbftClient
from kakehashi.ibc.commitment import packet_commitment_of
from kakehashi.ibc.corda_host import CordaIbcHost, HostStore
from kakehashi.ibc.echo import EchoModule
from kakehashi.ibc.evm_host import (
    COMMITMENTS_SLOT,
    TEST_SIGNED_CLIENT_TYPE,
    EvmIbcHost,
    Outcome,
    TestSignedProver,
    deploy_echo_app,
    deploy_test_signed_client,
)
from kakehashi.ibc.router import Router
from kakehashi.ibc.types import (
    DEFAULT_VERSION,
    ChannelCounterparty,
    ConnectionCounterparty,
    Height,
    Order,
    Packet,
)
from kakehashi.ledgers.corda.node.setup import EmbeddedNetwork
from kakehashi.ledgers.evm import client, toolchain
from kakehashi.ledgers.evm.chain import EmbeddedChain, dev_accounts
from kakehashi.ledgers.evm.provider import embedded_web3
from kakehashi.lightclients import corda as corda_lc
from kakehashi.lightclients.qbft import verify_header

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
    test_client: Contract  # this side's TEST-ONLY signed client contract

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


def _host(chain: EmbeddedChain) -> tuple[EvmIbcHost, str, LocalAccount, Contract]:
    w3 = embedded_web3(chain)
    sender = dev_accounts()[0]
    ibc = EvmIbcHost.deploy(w3, sender=sender, gas=GAS)
    test_client = deploy_test_signed_client(w3, ibc.address, sender=sender)
    ibc.register_client(TEST_SIGNED_CLIENT_TYPE, test_client.address)
    app = deploy_echo_app(w3, ibc.address, sender=sender).address
    ibc.bind_port(PORT, app)
    return ibc, app, sender, test_client


def _median_ms(check: Callable[[], object], runs: int = VERIFY_RUNS) -> float:
    """Median wall time of ``check()`` in milliseconds."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        check()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


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
        host_a, app_a, sender_a, client_a = _host(chain_a)
        host_b, app_b, sender_b, client_b = _host(chain_b)
        a = Side(chain_a, host_a, app_a, TestSignedProver(KEY, host_b, host_a), sender_a, client_a)
        b = Side(chain_b, host_b, app_b, TestSignedProver(KEY, host_a, host_b), sender_b, client_b)
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
        header = host_a.header(block)
        validators = list(chain_a.validators)
        absent = host.packet_commitment_path(PORT, chan_a, packet.sequence + 1000)
        absent_proof = host_a.prove(absent, block)
        assert absent_proof != proof
        at = Height(0, block)
        proof_figures = {
            "bytes": len(proof),
            "account nodes": len(raw["accountProof"]),
            "storage nodes": len(raw["storageProof"][0]["proof"]),
            "verify ms": _median_ms(
                lambda: qbft.verify_membership(at, proof, host_a.prefix, path, value)
            ),
            "header bytes": len(header),
            "header verify ms": _median_ms(lambda: verify_header(header, validators)),
            "absent bytes": len(absent_proof),
            "absent verify ms": _median_ms(
                lambda: qbft.verify_non_membership(at, absent_proof, host_a.prefix, absent)
            ),
        }
        # The TEST-ONLY signed client's own check of a membership statement (chain B's client
        # of chain A), as a transaction calling the client contract directly.
        signed_at = b.prover.update().value
        statement = b.prover.prove(path, signed_at)
        check = b.test_client.functions.verify_membership(
            b.prover.client_id,
            (signed_at.revision_number, signed_at.revision_height),
            statement,
            host_a.prefix,
            path,
            host_a.commitment(path, signed_at.revision_height),
        )
        assert check.call() is True
        proof_figures["signed bytes"] = len(statement)
        proof_figures["signed gas"] = check.estimate_gas({"from": sender_b.address})
    return gas, baseline, proof_figures


# ---------------------------------------------------------------- the Corda-model host

BANK_A, BANK_B = "O=Bank A, L=London, C=GB", "O=Bank B, L=Tokyo, C=JP"
SEQUENTIAL_SENDS = 300
BATCH_SIZES = (1, 10, 50)
BATCH_PACKETS = 500  # packets committed per round for each N (500 / N host transactions)
ROUNDS = 3  # throughput figures are the median of these rounds
NO_TIMEOUT = Height(0, 10**9)


def _corda_host(net: EmbeddedNetwork, name: str) -> CordaIbcHost:
    router = Router()
    router.bind(PORT, EchoModule())
    return CordaIbcHost(net.node(name), router=router)


def _open_corda_channel(a: CordaIbcHost, b: CordaIbcHost) -> tuple[str, str, str]:
    """Clients, connection and UNORDERED channel A↔B, every step a real handler call with a
    host proof relayed as bytes. Returns (B's client of A, A's channel, B's channel)."""

    def update(dst: CordaIbcHost, client_id: str, src: CordaIbcHost) -> Height:
        height: Height = dst.ibc.update_client(client_id, src.attestation(), time.time_ns())
        return height

    ca = a.ibc.create_client(CordaClient.from_attestation(b.client_state(), b.attestation()))
    cb = b.ibc.create_client(CordaClient.from_attestation(a.client_state(), a.attestation()))
    conn_a = a.ibc.conn_open_init(ca, ConnectionCounterparty(cb, "", b.prefix))
    h = update(b, cb, a)
    conn_b = b.ibc.conn_open_try(
        cb,
        ConnectionCounterparty(ca, conn_a, a.prefix),
        a.handler.connection(conn_a).versions,
        0,
        a.prove(host.connection_path(conn_a), h),
        h,
    )
    h = update(a, ca, b)
    a.ibc.conn_open_ack(
        conn_a,
        conn_b,
        b.handler.connection(conn_b).versions[0],
        b.prove(host.connection_path(conn_b), h),
        h,
    )
    h = update(b, cb, a)
    b.ibc.conn_open_confirm(conn_b, a.prove(host.connection_path(conn_a), h), h)
    chan_a = a.ibc.chan_open_init(
        PORT, Order.UNORDERED, [conn_a], ChannelCounterparty(PORT, ""), VERSION
    )
    h = update(b, cb, a)
    chan_b = b.ibc.chan_open_try(
        PORT,
        Order.UNORDERED,
        [conn_b],
        ChannelCounterparty(PORT, chan_a),
        VERSION,
        a.prove(host.channel_path(PORT, chan_a), h),
        h,
    )
    h = update(a, ca, b)
    a.ibc.chan_open_ack(
        PORT, chan_a, chan_b, VERSION, b.prove(host.channel_path(PORT, chan_b), h), h
    )
    h = update(b, cb, a)
    b.ibc.chan_open_confirm(PORT, chan_b, a.prove(host.channel_path(PORT, chan_a), h), h)
    return cb, chan_a, chan_b


def _progress(message: str) -> None:
    print(f"  ibc bench: {message}", file=sys.stderr, flush=True)


def measure_corda() -> dict[str, float]:
    """Corda-host proof sizes and verification times, and host throughput."""
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        net = EmbeddedNetwork.create(Path(tmp) / "net", nodes=[BANK_A, BANK_B])
        try:
            a, b = _corda_host(net, BANK_A), _corda_host(net, BANK_B)
            cb, chan_a, _ = _open_corda_channel(a, b)
            _progress("Corda-model hosts: channel open, measuring proofs")

            # Proofs of A's store, verified by B's ICS-02 client of A (a decoded copy: read-only).
            packet = a.ibc.send_packet(PORT, chan_a, NO_TIMEOUT, 0, PAYLOAD)
            h = b.ibc.update_client(cb, a.attestation(), time.time_ns())
            client = b.handler.client(cb)
            assert isinstance(client, CordaClient)
            path = host.packet_commitment_path(PORT, chan_a, packet.sequence)
            value = packet_commitment_of(packet)
            absent = host.packet_commitment_path(PORT, chan_a, packet.sequence + 1000)
            present_proof, absent_proof = a.prove(path, h), a.prove(absent, h)
            attestation = a.attestation(h)
            smt_bytes = len(corda_lc.decode_commitment_proof(present_proof).smt_proof)
            figures |= {
                "member bytes": len(present_proof),
                "member smt bytes": smt_bytes,
                "member ms": _median_ms(
                    lambda: client.verify_membership(h, present_proof, a.prefix, path, value)
                ),
                "absent bytes": len(absent_proof),
                "absent ms": _median_ms(
                    lambda: client.verify_non_membership(h, absent_proof, a.prefix, absent)
                ),
                "attestation bytes": len(attestation),
                # The pure update (what CordaClient.update runs), without mutating the client.
                "attestation ms": _median_ms(
                    lambda: corda_lc.update_client(client.state, client.consensus, attestation)
                ),
            }

            # Throughput: one send_packet = one notarised host version.
            for _ in range(10):  # warm-up
                a.ibc.send_packet(PORT, chan_a, NO_TIMEOUT, 0, PAYLOAD)
            rates = []
            for round_ in range(ROUNDS):
                _progress(
                    f"Corda-model host: {SEQUENTIAL_SENDS} send_packet calls, one version each "
                    f"(round {round_ + 1}/{ROUNDS})"
                )
                first = a.version
                started = time.perf_counter()
                for _ in range(SEQUENTIAL_SENDS):
                    a.ibc.send_packet(PORT, chan_a, NO_TIMEOUT, 0, PAYLOAD)
                rates.append(SEQUENTIAL_SENDS / (time.perf_counter() - started))
                assert a.version - first == SEQUENTIAL_SENDS
            figures["sequential versions/s"] = statistics.median(rates)

            # Batched: N send_packet handler calls inside one CordaIbcHost.execute = one version.
            def batch(n: int) -> Callable[[HostStore], None]:
                def action(_store: HostStore) -> None:
                    for _ in range(n):
                        a.handler.send_packet(PORT, chan_a, NO_TIMEOUT, 0, PAYLOAD)

                return action

            for n in BATCH_SIZES:
                transactions = BATCH_PACKETS // n
                _progress(
                    f"Corda-model host: {ROUNDS} x {transactions} host transactions of {n} packets"
                )
                rates = []
                for _ in range(ROUNDS):
                    first = a.version
                    started = time.perf_counter()
                    for _ in range(transactions):
                        a.execute(batch(n))
                    rates.append(transactions / (time.perf_counter() - started))
                    assert a.version - first == transactions
                figures[f"batch {n} versions/s"] = statistics.median(rates)
                figures[f"batch {n} commitments/s"] = statistics.median(rates) * n
            next_send = a.store.get(host.next_sequence_send_path(PORT, chan_a))
            assert next_send is not None
            figures["packets"] = int.from_bytes(next_send, "big") - 1
        finally:
            net.close()
    return figures


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
    print()
    corda = measure_corda()
    print(f"== IBC proofs on each side (median of {VERIFY_RUNS} verifications, Python)")
    print(f"{'proof':62}{'bytes':>8}{'verify':>14}")
    rows = [
        ("EVM -> Corda: QBFT header (client update; seals checked)", "header", "header verify"),
        ("EVM -> Corda: eth_getProof packet commitment, membership", "", "verify"),
        ("EVM -> Corda: eth_getProof packet commitment, non-membership", "absent", "absent verify"),
    ]
    for label, size, timing in rows:
        size_key = f"{size} bytes" if size else "bytes"
        print(f"{label:62}{int(proof[size_key]):>8,}{proof[f'{timing} ms']:>11.3f} ms")
    for label, key in (
        ("Corda -> EVM: host-state attestation (client update)", "attestation"),
        ("Corda -> EVM: host proof of packet commitment, membership", "member"),
        ("Corda -> EVM: host proof of packet commitment, non-membership", "absent"),
    ):
        print(f"{label:62}{int(corda[f'{key} bytes']):>8,}{corda[f'{key} ms']:>11.3f} ms")
    print(
        f"{'Corda -> EVM: TEST-ONLY signed statement, membership':62}"
        f"{int(proof['signed bytes']):>8,}{int(proof['signed gas']):>10,} gas"
    )
    print(
        f"(Corda host proof = attestation + sparse-Merkle proof of {int(corda['member smt bytes'])}"
        " bytes, verified by the ICS-02 Corda client;\n signed statement: eth_estimateGas of a "
        "transaction calling the client contract's verify_membership, 21,000 intrinsic included)"
    )
    print()
    print(
        "== Corda-model host: IBC state changes per second "
        "(embedded network, in-process, SQLite, non-validating notary)"
    )
    sequential = corda["sequential versions/s"]
    print(
        f"send_packet, one notarised host version each: {sequential:8.1f} versions/s "
        f"(median of {ROUNDS} rounds of {SEQUENTIAL_SENDS} calls one after another)"
    )
    print(
        f"N send_packet calls in one host transaction (CordaIbcHost.execute); "
        f"median of {ROUNDS} rounds of {BATCH_PACKETS} packets for each N:"
    )
    base = corda[f"batch {BATCH_SIZES[0]} commitments/s"]
    for n in BATCH_SIZES:
        rate = corda[f"batch {n} commitments/s"]
        print(
            f"  N={n:<3} {corda[f'batch {n} versions/s']:8.1f} versions/s "
            f"{rate:9.1f} packet commitments/s   vs N=1: {rate / base:5.2f}x"
        )
    print(f"(store at the end: {int(corda['packets']):,} packet commitments on the channel)")


if __name__ == "__main__":
    main()
