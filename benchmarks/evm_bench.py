"""Benchmarks of the EVM side (printed figures, never timed assertions).

Every figure is measured over JSON-RPC on 127.0.0.1 against real node processes started here:
``kakehashi evm serve`` (the embedded QBFT chain) and anvil (foundry, the baseline), in the same
run and with the same client code.

* ERC-721 transfers per second: tokens are minted first (untimed), the transfers are signed
  locally with eth-account (untimed), then timed: every ``eth_sendRawTransaction`` through
  web3.py, then every receipt awaited. Anvil (automine) is the baseline; the embedded node runs
  the same client in ``auto`` block mode (one block per transaction, the development mode) and
  in ``interval`` mode (how Besu / GoQuorum networks run: a block every period), each with its
  ratio to anvil.
* The embedded node in ``interval`` block mode: 100 signed transfers per JSON-RPC batch (one
  HTTP POST), ten batches, one batch in flight while the node seals the previous one.
* ``eth_getProof`` latency (account + one storage slot of the ERC-721): median over many calls,
  embedded and anvil.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parent.parent
for _path in (_ROOT, _ROOT / "tests"):  # the node helpers of the end-to-end tests
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import httpx  # noqa: E402
from eth_account.signers.local import LocalAccount  # noqa: E402
from tests.e2e.evm_procs import (  # noqa: E402
    ServedEvmNode,
    mapping_slot,
    rpc_batch,
    storage_slot,
)
from web3 import Web3  # noqa: E402
from web3.contract import Contract  # noqa: E402

from foundry import AnvilNode  # noqa: E402
from kakehashi.ledgers.evm import client, toolchain  # noqa: E402

TRANSFERS = 300
BATCH = 100
BATCH_BLOCKS = 10
BATCH_INTERVAL_MS = 100
PROOF_CALLS = 300
RATIO_GOAL = 0.5
BATCH_GOAL = 300.0
RECEIPT_TIMEOUT_S = 60.0
# How often a waiting client asks for a receipt: each poll is a request the node serves on the
# same interpreter that seals blocks, so a client polling every 2 ms slows the node it measures.
RECEIPT_POLL_S = 0.02


class Token:
    """An ERC-721 deployed on one node, with tokens minted to a holder, ready to transfer."""

    def __init__(self, w3: Web3, count: int, first_id: int = 1) -> None:
        self.w3 = w3
        accounts = client.funded_accounts(client.DEV_MNEMONIC, 3)
        self.minter, self.holder, self.receiver = accounts
        self.chain_id = w3.eth.chain_id
        self.contract: Contract = toolchain.deploy(
            w3, "tokens/erc721", "Bench", "BNCH", "", sender=self.minter
        )
        # Fees above the node's current price, the same rule on both nodes.
        self.max_fee = 2 * int(w3.eth.gas_price)
        self.tip = min(10**9, self.max_fee)
        self.ids = list(range(first_id, first_id + count))
        mints = self.sign(
            self.minter,
            [self.contract.encode_abi("mint", args=[self.holder.address, i, ""]) for i in self.ids],
            gas=400_000,
        )
        send_and_wait(w3, mints)
        sample = self.contract.functions.transferFrom(
            self.holder.address, self.receiver.address, self.ids[0]
        ).estimate_gas({"from": self.holder.address})
        self.transfer_gas = sample * 3 // 2

    def sign(self, sender: LocalAccount, calls: list[str], gas: int) -> list[bytes]:
        """Sign one transaction to the token per call data, with consecutive nonces."""
        nonce = self.w3.eth.get_transaction_count(sender.address, "pending")
        return [
            bytes(
                sender.sign_transaction(
                    {
                        "type": 2,
                        "chainId": self.chain_id,
                        "nonce": nonce + i,
                        "to": self.contract.address,
                        "value": 0,
                        "data": data,
                        "gas": gas,
                        "maxFeePerGas": self.max_fee,
                        "maxPriorityFeePerGas": self.tip,
                    }
                ).raw_transaction
            )
            for i, data in enumerate(calls)
        ]

    def signed_transfers(self, ids: list[int]) -> list[bytes]:
        calls = [
            self.contract.encode_abi(
                "transferFrom", args=[self.holder.address, self.receiver.address, i]
            )
            for i in ids
        ]
        return self.sign(self.holder, calls, self.transfer_gas)

    def check_transferred(self, ids: list[int]) -> None:
        for token_id in (ids[0], ids[-1]):
            owner = self.contract.functions.ownerOf(token_id).call()
            if owner != self.receiver.address:
                raise RuntimeError(f"token {token_id} is owned by {owner}, not the receiver")


def send_and_wait(w3: Web3, raws: list[bytes]) -> None:
    """The client code measured: send every raw transaction, then wait for every receipt."""
    hashes = [w3.eth.send_raw_transaction(raw) for raw in raws]
    for tx_hash in hashes:
        receipt = w3.eth.wait_for_transaction_receipt(
            tx_hash, timeout=RECEIPT_TIMEOUT_S, poll_latency=0.01
        )
        if receipt["status"] != 1:
            raise RuntimeError(f"transaction {tx_hash.to_0x_hex()} failed")


def transfers_per_second(w3: Web3, count: int) -> tuple[float, Token]:
    token = Token(w3, count)
    raws = token.signed_transfers(token.ids)
    started = time.perf_counter()
    send_and_wait(w3, raws)
    elapsed = time.perf_counter() - started
    token.check_transferred(token.ids)
    return count / elapsed, token


def batched_transfers_per_second(url: str) -> tuple[float, list[int]]:
    """Interval mode: BATCH transfers per JSON-RPC batch request, BATCH_BLOCKS batches.

    The client keeps one batch in flight, as a load generator does: batch k+1 is sent while the
    node seals batch k, then batch k's receipts are awaited. Returns transfers/s and the number
    of transactions in each block the transfers landed in.
    """
    w3 = client.connect(url)
    token = Token(w3, BATCH * BATCH_BLOCKS)
    rounds = [token.ids[i : i + BATCH] for i in range(0, len(token.ids), BATCH)]
    signed = token.signed_transfers(token.ids)  # one nonce sequence for all rounds
    batches = [signed[i : i + BATCH] for i in range(0, len(signed), BATCH)]
    blocks: dict[str, int] = {}
    with httpx.Client(timeout=RECEIPT_TIMEOUT_S, trust_env=False) as http:

        def send(raws: list[bytes]) -> list[str]:
            answers = rpc_batch(
                http, url, [("eth_sendRawTransaction", ["0x" + raw.hex()]) for raw in raws]
            )
            refused = [a for a in answers if a is None or "error" in a]
            if refused:
                raise RuntimeError(f"the node refused transfers: {refused[:2]}")
            return [a["result"] for a in answers]

        started = time.perf_counter()
        in_flight = send(batches[0])
        for raws in batches[1:]:
            following = send(raws)
            for number in wait_receipts(http, url, in_flight):
                blocks[number] = blocks.get(number, 0) + 1
            in_flight = following
        for number in wait_receipts(http, url, in_flight):
            blocks[number] = blocks.get(number, 0) + 1
        elapsed = time.perf_counter() - started
    for ids in rounds:
        token.check_transferred(ids)
    return len(signed) / elapsed, [blocks[n] for n in sorted(blocks, key=lambda h: int(h, 16))]


def wait_receipts(http: httpx.Client, url: str, hashes: list[str]) -> list[str]:
    """Wait until every receipt exists; the block number of each (hex, in order).

    Polls the last transaction (the others come before it from the same sender), then reads
    every receipt in one batch request, so polling adds little load to the node.
    """
    deadline = time.monotonic() + RECEIPT_TIMEOUT_S
    pending = list(hashes)
    blocks: dict[str, str] = {}
    while pending:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(pending)} receipts missing after {RECEIPT_TIMEOUT_S:.0f}s")
        (last,) = rpc_batch(http, url, [("eth_getTransactionReceipt", [pending[-1]])])
        if not (last and last.get("result")):
            time.sleep(RECEIPT_POLL_S)
            continue
        answers = rpc_batch(http, url, [("eth_getTransactionReceipt", [h]) for h in pending])
        receipts = [a.get("result") if a else None for a in answers]
        for receipt in receipts:
            if receipt is not None:
                if receipt["status"] != "0x1":
                    raise RuntimeError(f"transfer {receipt['transactionHash']} failed")
                blocks[receipt["transactionHash"]] = receipt["blockNumber"]
        pending = [h for h, r in zip(pending, receipts) if r is None]
    return [blocks[h] for h in hashes]


def proof_latency_ms(token: Token, owners_slot: int) -> float:
    """Median ms of ``eth_getProof`` (the ERC-721's account and one ``_owners`` entry)."""
    samples = []
    address = token.contract.address
    for i in range(PROOF_CALLS):
        slot = mapping_slot(owners_slot, token.ids[i % len(token.ids)])
        started = time.perf_counter()
        client.get_proof(token.w3, address, [slot])
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def with_embedded_node(options: list[str], run: Callable[[ServedEvmNode], Any]) -> Any:
    """Run ``run(node)`` against a fresh ``kakehashi evm serve``, always stopping the node."""
    root = Path(tempfile.mkdtemp(prefix="kakehashi-evm-bench-"))
    node = ServedEvmNode(root / "data", root / "node.log", options=options)
    try:
        node.start_ready()
        return run(node)
    except BaseException:
        print(node.log_tail(), file=sys.stderr)
        raise
    finally:
        node.stop()
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    owners_slot = storage_slot("tokens/erc721", "erc721", "_owners")
    toolchain.compile_contract("tokens/erc721")  # compiled (or cached) before any timing

    print("== EVM: ERC-721 transfers over JSON-RPC (signed locally, sendRawTransaction, receipts)")

    def embedded_auto(node: ServedEvmNode) -> tuple[float, float]:
        rate, token = transfers_per_second(client.connect(node.url), TRANSFERS)
        return rate, proof_latency_ms(token, owners_slot)

    embedded_rate, embedded_proof = with_embedded_node(["--block-mode", "auto"], embedded_auto)
    interval = ["--block-mode", "interval", "--interval-ms", str(BATCH_INTERVAL_MS)]
    interval_rate = with_embedded_node(
        interval, lambda node: transfers_per_second(client.connect(node.url), TRANSFERS)[0]
    )
    with AnvilNode() as anvil:
        anvil_rate, anvil_token = transfers_per_second(client.connect(anvil.url), TRANSFERS)
        anvil_proof = proof_latency_ms(anvil_token, owners_slot)
    print(f"anvil (automine):                  {anvil_rate:8.1f} transfers/s   ({TRANSFERS})")
    print(
        f"embedded, auto (1 tx per block):   {embedded_rate:8.1f} transfers/s   "
        f"ratio to anvil {embedded_rate / anvil_rate:5.2f}"
    )
    print(
        f"embedded, interval {BATCH_INTERVAL_MS} ms:          {interval_rate:8.1f} transfers/s   "
        f"ratio to anvil {interval_rate / anvil_rate:5.2f}   (goal >= {RATIO_GOAL})"
    )
    batch_rate, blocks = with_embedded_node(
        interval, lambda node: batched_transfers_per_second(node.url)
    )
    print(
        f"embedded, interval {BATCH_INTERVAL_MS} ms, {BATCH_BLOCKS} JSON-RPC batches of {BATCH} "
        "(one in flight):"
    )
    print(
        f"                                   {batch_rate:8.1f} transfers/s   "
        f"(goal >= {BATCH_GOAL:.0f}); transactions per block: {blocks}"
    )
    print()
    print(f"== EVM: eth_getProof latency (account + 1 storage slot, median of {PROOF_CALLS}, ms)")
    print(f"embedded: {embedded_proof:8.3f}")
    proof_ratio = embedded_proof / anvil_proof
    print(f"anvil:    {anvil_proof:8.3f}   ratio embedded / anvil: {proof_ratio:5.2f}")


if __name__ == "__main__":
    main()
