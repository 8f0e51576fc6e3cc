"""``kakehashi evm serve`` as a separate OS process, driven over HTTP as users and tools drive it.

One node (auto block mode, development genesis, a temporary data directory) serves the tests that
do not need their own process: web3.py deploys and uses an ERC-721, foundry's ``cast`` sends and
reads, every block the node produced verifies with the QBFT light client and its state with
``eth_getProof``, a clean stop and start keeps everything, and bad input is refused with the
right JSON-RPC error and no change. The crash test runs its own node in interval mode and kills
it with SIGKILL while blocks are being produced.
"""

from __future__ import annotations

import json
import random
import secrets
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import rlp
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from web3 import Web3
from web3.contract import Contract

from foundry import cast
from kakehashi.errors import TransactionRevertedError, VerificationError
from kakehashi.ledgers.evm import client, toolchain
from kakehashi.ledgers.evm.proofs import verify_eth_get_proof
from kakehashi.lightclients.qbft import verify_header
from tests.e2e.evm_procs import ServedEvmNode, mapping_slot, rpc_batch, rpc_call, storage_slot

pytestmark = [pytest.mark.multiprocess, pytest.mark.timeout(120)]

CHAIN_ID = 1337  # the development genesis
MAX_FEE = 10**10  # wei per gas: above the base fee the tests will meet
TIP = 10**9
ZERO_ADDRESS = "0x" + "00" * 20
TRANSFER_TOPIC = keccak(text="Transfer(address,address,uint256)")


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedEvmNode]:
    """One ``kakehashi evm serve`` process (auto block mode) for the tests that share it."""
    root = tmp_path_factory.mktemp("evm-node")
    served = ServedEvmNode(root / "data", root / "node.log")
    try:
        served.start_ready()
        yield served
    finally:
        served.stop()


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30.0, trust_env=False) as session:
        yield session


@pytest.fixture(scope="module")
def w3(node: ServedEvmNode) -> Web3:
    return client.connect(node.url)


@pytest.fixture(scope="module")
def accounts() -> list[LocalAccount]:
    """The 10 funded development accounts; each test sends from its own ones."""
    return client.funded_accounts(client.DEV_MNEMONIC, 10)


@pytest.fixture(scope="module")
def nft(w3: Web3, accounts: list[LocalAccount]) -> Contract:
    """The ERC-721 deployed by account 0, with tokens 1 and 2 minted to account 1."""
    contract = toolchain.deploy(
        w3, "tokens/erc721", "Kakehashi Bonds", "KKB", "", sender=accounts[0]
    )
    for token_id in (1, 2):
        client.transact(
            w3, contract.functions.mint(accounts[1].address, token_id, ""), sender=accounts[0]
        )
    return contract


@pytest.fixture(scope="module")
def owners_slot() -> int:
    """Storage slot of the ERC-721's ``_owners`` mapping, from the compiler's storage layout."""
    return storage_slot("tokens/erc721", "erc721", "_owners")


# ------------------------------------------------------------------------------ helpers
def _signed_transfer(
    sender: LocalAccount,
    nonce: int,
    to: str,
    value: int,
    *,
    chain_id: int = CHAIN_ID,
    gas: int = 21_000,
    max_fee: int = MAX_FEE,
) -> str:
    tx = {
        "type": 2,
        "chainId": chain_id,
        "nonce": nonce,
        "to": to,
        "value": value,
        "gas": gas,
        "maxFeePerGas": max_fee,
        "maxPriorityFeePerGas": min(TIP, max_fee),
    }
    return str(sender.sign_transaction(tx).raw_transaction.to_0x_hex())


def _fresh_address() -> str:
    return to_checksum_address(secrets.token_bytes(20))


def _head(http: httpx.Client, url: str) -> int:
    return int(rpc_call(http, url, "eth_blockNumber", []), 16)


def _balance(http: httpx.Client, url: str, address: str, block: str = "latest") -> int:
    return int(rpc_call(http, url, "eth_getBalance", [address, block]), 16)


def _nonce(http: httpx.Client, url: str, address: str, block: str = "latest") -> int:
    return int(rpc_call(http, url, "eth_getTransactionCount", [address, block]), 16)


def _validators(http: httpx.Client, url: str, block: int) -> list[bytes]:
    answer = rpc_call(http, url, "qbft_getValidatorsByBlockNumber", [hex(block)])
    return [bytes.fromhex(v[2:]) for v in answer]


def _post(http: httpx.Client, url: str, body: bytes) -> Any:
    """POST a raw JSON-RPC body; the parsed answer."""
    answer = http.post(url, content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def _verify_chain(
    http: httpx.Client, url: str, head: int, *, full: bool = False
) -> list[dict[str, Any]]:
    """Check blocks 1..head: each is retrievable, its hash is its header's, parents chain, and
    its header verifies with the QBFT light client against the previous block's validators.

    Returns the blocks' JSON, indexed by number (``full``: with transaction objects).
    """
    blocks = [rpc_call(http, url, "eth_getBlockByNumber", ["0x0", full])]
    trusted = _validators(http, url, 0)
    for number in range(1, head + 1):
        block = rpc_call(http, url, "eth_getBlockByNumber", [hex(number), full])
        assert block is not None, f"block {number} of {head} is missing"
        header_rlp = client.header_rlp(block)
        assert "0x" + keccak(header_rlp).hex() == block["hash"], f"block {number}: hash mismatch"
        assert block["parentHash"] == blocks[-1]["hash"], f"block {number} does not chain"
        verified = verify_header(header_rlp, trusted, trusted_height=number - 1)
        assert verified.number == number
        assert "0x" + verified.state_root.hex() == block["stateRoot"]
        trusted = _validators(http, url, number)
        blocks.append(block)
    return blocks


# ------------------------------------------------------------------ a. web3.py and ERC-721
def test_web3_deploys_mints_and_transfers_an_erc721(
    w3: Web3, nft: Contract, accounts: list[LocalAccount]
) -> None:
    minter, alice, bob, mallory = accounts[0], accounts[2], accounts[3], accounts[4]
    assert len(w3.eth.get_code(nft.address)) > 0
    assert nft.functions.name().call() == "Kakehashi Bonds"

    mint = client.transact(w3, nft.functions.mint(alice.address, 10, "bond-10"), sender=minter)
    client.transact(w3, nft.functions.mint(alice.address, 11, "bond-11"), sender=minter)
    client.transact(w3, nft.functions.transferFrom(alice.address, bob.address, 10), sender=alice)

    assert nft.functions.ownerOf(10).call() == bob.address
    assert nft.functions.ownerOf(11).call() == alice.address
    assert nft.functions.balanceOf(alice.address).call() == 1
    assert nft.functions.balanceOf(bob.address).call() == 1
    assert nft.functions.totalSupply().call() == 4  # with tokens 1 and 2 of the fixture

    # Someone who neither owns nor is approved for a token cannot move it.
    with pytest.raises(TransactionRevertedError):
        client.transact(
            w3, nft.functions.transferFrom(alice.address, mallory.address, 11), sender=mallory
        )
    assert nft.functions.ownerOf(11).call() == alice.address

    logs = w3.eth.get_logs(
        {
            "address": nft.address,
            "fromBlock": mint["blockNumber"],
            "toBlock": "latest",
            "topics": [TRANSFER_TOPIC],
        }
    )
    events = [nft.events.Transfer().process_log(entry)["args"] for entry in logs]
    assert [(e["sender"], e["receiver"], e["token_id"]) for e in events] == [
        (ZERO_ADDRESS, alice.address, 10),
        (ZERO_ADDRESS, alice.address, 11),
        (alice.address, bob.address, 10),
    ]
    # Filtering on an indexed topic (the token id) finds only that token's events.
    token_10 = w3.eth.get_logs(
        {
            "address": nft.address,
            "fromBlock": 0,
            "topics": [TRANSFER_TOPIC, None, None, (10).to_bytes(32, "big")],
        }
    )
    assert len(token_10) == 2


# ---------------------------------------------------------------------------- b. cast
def test_cast_sends_value_and_reads_blocks_and_validators(
    node: ServedEvmNode, http: httpx.Client, accounts: list[LocalAccount]
) -> None:
    sender, recipient = accounts[5], _fresh_address()
    before = _balance(http, node.url, sender.address)
    receipt = cast(
        "send",
        "--rpc-url", node.url,
        "--private-key", sender.key.to_0x_hex(),
        "--json",
        recipient,
        "--value", "123456789",
    )  # fmt: skip
    assert '"status":"0x1"' in receipt.replace(" ", "")
    assert cast("balance", "--rpc-url", node.url, recipient) == "123456789"
    after = _balance(http, node.url, sender.address)
    assert before - after > 123456789  # the value and the fee

    head = _head(http, node.url)
    latest = cast("block", "latest", "--rpc-url", node.url, "--json")
    block = rpc_call(http, node.url, "eth_getBlockByNumber", [hex(head), False])
    latest_json = json.loads(latest)
    assert int(latest_json["number"], 16) == head
    assert latest_json["hash"] == block["hash"]
    assert latest_json["stateRoot"] == block["stateRoot"]

    validators = json.loads(
        cast("rpc", "--rpc-url", node.url, "qbft_getValidatorsByBlockNumber", "latest")
    )
    assert len(validators) == 4
    assert [bytes.fromhex(v[2:]) for v in validators] == _validators(http, node.url, head)
    assert validators[head % 4].lower() == block["miner"].lower()  # proposers take turns


# ------------------------------------------------------- c. light client and state proofs
def test_every_block_verifies_with_the_qbft_light_client(
    node: ServedEvmNode, http: httpx.Client, w3: Web3, nft: Contract
) -> None:
    head = _head(http, node.url)
    assert head >= 3  # deployment and two mints at least
    _verify_chain(http, node.url, head)

    header_rlp = client.raw_header(w3, head)
    trusted = _validators(http, node.url, head - 1)
    fields = rlp.decode(header_rlp)
    fields[3] = bytes(32)  # another state root under the same seals
    with pytest.raises(VerificationError):
        verify_header(rlp.encode(fields), trusted)
    strangers = [secrets.token_bytes(20) for _ in trusted]
    with pytest.raises(VerificationError, match="trust rule"):
        verify_header(header_rlp, strangers)


def test_eth_get_proof_verifies_against_the_block_state_root(
    node: ServedEvmNode,
    http: httpx.Client,
    w3: Web3,
    nft: Contract,
    accounts: list[LocalAccount],
    owners_slot: int,
) -> None:
    head = _head(http, node.url)
    block = rpc_call(http, node.url, "eth_getBlockByNumber", [hex(head), False])
    state_root = bytes.fromhex(block["stateRoot"][2:])
    owner_of_1 = mapping_slot(owners_slot, 1)
    never_minted = mapping_slot(owners_slot, 999_999)

    proof = client.get_proof(w3, nft.address, [owner_of_1, never_minted], head)
    values = verify_eth_get_proof(state_root, proof, address=nft.address)
    assert values == {owner_of_1: int(accounts[1].address, 16), never_minted: 0}
    stored = rpc_call(http, node.url, "eth_getStorageAt", [nft.address, hex(owner_of_1), hex(head)])
    assert int(stored, 16) == values[owner_of_1]
    assert int(proof["nonce"], 16) == 1  # a contract's nonce starts at 1 (EIP-161)
    assert proof["codeHash"] == "0x" + keccak(w3.eth.get_code(nft.address, head)).hex()

    absent = _fresh_address()
    absent_proof = client.get_proof(w3, absent, [0], head)
    assert verify_eth_get_proof(state_root, absent_proof, address=absent) == {0: 0}
    assert int(absent_proof["balance"], 16) == 0 and int(absent_proof["nonce"], 16) == 0

    def tampered(original: dict[str, Any], change: Any) -> dict[str, Any]:
        copy = json.loads(json.dumps(original))
        change(copy)
        return copy

    def other_owner(p: dict[str, Any]) -> None:
        p["storageProof"][0]["value"] = accounts[2].address.lower()

    def flipped_node(p: dict[str, Any]) -> None:
        last = bytearray.fromhex(p["accountProof"][-1][2:])
        last[-1] ^= 1
        p["accountProof"][-1] = "0x" + last.hex()

    def rich_absentee(p: dict[str, Any]) -> None:
        p["balance"] = hex(10**18)

    for original, change, address in (
        (proof, other_owner, nft.address),
        (proof, flipped_node, nft.address),
        (absent_proof, rich_absentee, absent),
    ):
        with pytest.raises(VerificationError):
            verify_eth_get_proof(state_root, tampered(original, change), address=address)
    # A genuine proof does not verify against another block (the contract is absent at genesis),
    # nor as a proof about another account.
    genesis = rpc_call(http, node.url, "eth_getBlockByNumber", ["0x0", False])
    with pytest.raises(VerificationError):
        verify_eth_get_proof(bytes.fromhex(genesis["stateRoot"][2:]), proof)
    with pytest.raises(VerificationError):
        verify_eth_get_proof(state_root, absent_proof, address=nft.address)


# ------------------------------------------------------------------------ d. clean restart
def test_clean_restart_keeps_blocks_balances_and_contract_state(
    node: ServedEvmNode,
    http: httpx.Client,
    w3: Web3,
    nft: Contract,
    accounts: list[LocalAccount],
    owners_slot: int,
) -> None:
    def snapshot() -> dict[str, Any]:
        head = _head(http, node.url)
        block = rpc_call(http, node.url, "eth_getBlockByNumber", [hex(head), False])
        return {
            "head": head,
            "hash": block["hash"],
            "stateRoot": block["stateRoot"],
            "balances": [_balance(http, node.url, a.address) for a in accounts],
            "nonces": [_nonce(http, node.url, a.address) for a in accounts],
            "code": rpc_call(http, node.url, "eth_getCode", [nft.address, "latest"]),
            "owner slot": rpc_call(
                http,
                node.url,
                "eth_getStorageAt",
                [nft.address, hex(mapping_slot(owners_slot, 2))],
            ),
            "owners": [nft.functions.ownerOf(t).call() for t in (1, 2)],
            "supply": nft.functions.totalSupply().call(),
        }

    before = snapshot()
    assert before["owners"] == [accounts[1].address] * 2
    for sig in (signal.SIGTERM, signal.SIGINT):
        # uvicorn re-raises SIGTERM after its graceful shutdown: dying of it is a clean exit too.
        assert node.stop_with(sig) in (0, -sig), node.log_tail()
        node.start_ready()
        assert snapshot() == before, f"state changed across a stop with {sig.name}"

    # The restarted node extends the same chain.
    sender = accounts[6]
    raw = _signed_transfer(sender, _nonce(http, node.url, sender.address), _fresh_address(), 1)
    tx_hash = rpc_call(http, node.url, "eth_sendRawTransaction", [raw])
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)
    assert receipt["blockNumber"] == before["head"] + 1
    assert receipt["status"] == 1
    block = rpc_call(http, node.url, "eth_getBlockByNumber", [hex(before["head"] + 1), False])
    assert block["parentHash"] == before["hash"]


@pytest.mark.parametrize(
    "sig",
    [signal.SIGINT, signal.SIGTERM],
    ids=["SIGINT", "SIGTERM"],
)
def test_clean_stop_in_interval_mode_mines_accepted_transactions(
    tmp_path: Path, http: httpx.Client, accounts: list[LocalAccount], sig: signal.Signals
) -> None:
    slow = ["--block-mode", "interval", "--interval-ms", "600000"]  # no block before the stop
    served = ServedEvmNode(tmp_path / "data", tmp_path / "node.log", options=slow)
    sender, recipient = accounts[8], _fresh_address()
    try:
        served.start_ready()
        raw = _signed_transfer(sender, 0, recipient, 7)
        tx_hash = rpc_call(http, served.url, "eth_sendRawTransaction", [raw])
        assert _nonce(http, served.url, sender.address, "pending") == 1  # accepted, in the pool
        assert _head(http, served.url) == 0
        served.stop_with(sig)
        served.start_ready()
        receipt = rpc_call(http, served.url, "eth_getTransactionReceipt", [tx_hash])
        assert receipt is not None, "an accepted transaction was lost on a clean stop"
        assert int(receipt["status"], 16) == 1
        assert _balance(http, served.url, recipient) == 7
    finally:
        served.stop()


# ------------------------------------------------------------------- e. kill -9 mid-block
def test_kill_9_during_block_production_leaves_a_consistent_chain(
    tmp_path: Path, http: httpx.Client, accounts: list[LocalAccount]
) -> None:
    interval = ["--block-mode", "interval", "--interval-ms", "50"]
    served = ServedEvmNode(tmp_path / "data", tmp_path / "node.log", options=interval)
    senders, sink = accounts[:6], _fresh_address()
    per_sender, batch_size = 50, 10
    raws = [
        _signed_transfer(sender, nonce, sink, 1)
        for nonce in range(per_sender)
        for sender in senders
    ]
    refused: list[Any] = []
    try:
        served.start_ready()
        url = served.url

        def send_all() -> None:
            # Batches with pauses, so that many blocks are sealed while transactions arrive.
            with httpx.Client(timeout=10.0, trust_env=False) as session:
                for i in range(0, len(raws), batch_size):
                    calls = [("eth_sendRawTransaction", [raw]) for raw in raws[i : i + batch_size]]
                    try:
                        answers = rpc_batch(session, url, calls)
                    except (httpx.HTTPError, ValueError):
                        return  # the node was killed
                    refused.extend(a for a in answers if a is None or "error" in a)
                    time.sleep(0.02)

        sender_thread = threading.Thread(target=send_all, daemon=True)
        sender_thread.start()
        deadline = time.monotonic() + 30
        while _head(http, url) < 5:
            assert time.monotonic() < deadline, served.log_tail()
            time.sleep(0.005)
        time.sleep(random.uniform(0, 0.05))  # anywhere in the block cycle
        served.kill()  # SIGKILL: no shutdown code runs
        sender_thread.join(timeout=30)
        assert not refused, f"the node refused valid transactions: {refused[:3]}"

        served.start_ready()
        head = _head(http, url)
        assert head >= 5
        blocks = _verify_chain(http, url, head, full=True)

        # Nothing half-applied: each sender's nonce is the number of its included transactions,
        # included in nonce order, and the sink holds exactly what they sent.
        included: dict[str, list[int]] = {s.address: [] for s in senders}
        received_by = [0]
        for block in blocks[1:]:
            for tx in block["transactions"]:
                included[to_checksum_address(tx["from"])].append(int(tx["nonce"], 16))
            received_by.append(received_by[-1] + len(block["transactions"]))
        for sender in senders:
            nonces = included[sender.address]
            assert nonces == list(range(len(nonces))), f"{sender.address}: nonces {nonces}"
            assert _nonce(http, url, sender.address) == len(nonces)
        assert _balance(http, url, sink) == received_by[-1]

        # Every block's state is readable and proven by its state root.
        for number in range(head + 1):
            state_root = bytes.fromhex(blocks[number]["stateRoot"][2:])
            assert _balance(http, url, sink, hex(number)) == received_by[number]
            proof = rpc_call(http, url, "eth_getProof", [sink, [], hex(number)])
            verify_eth_get_proof(state_root, proof, address=sink)
            assert int(proof["balance"], 16) == received_by[number]

        # And the node goes on producing blocks.
        first = senders[0]
        raw = _signed_transfer(first, len(included[first.address]), sink, 1)
        tx_hash = rpc_call(http, url, "eth_sendRawTransaction", [raw])
        receipt = None
        deadline = time.monotonic() + 10
        while receipt is None:
            assert time.monotonic() < deadline, "the restarted node mined nothing"
            receipt = rpc_call(http, url, "eth_getTransactionReceipt", [tx_hash])
            time.sleep(0.02)
        assert int(receipt["blockNumber"], 16) == head + 1
        assert int(receipt["status"], 16) == 1
        _verify_chain(http, url, head + 1)
    finally:
        served.stop()


# ----------------------------------------------------------------------- f. bad input
def test_malformed_requests_get_json_rpc_errors(node: ServedEvmNode, http: httpx.Client) -> None:
    url = node.url

    def error(body: bytes) -> dict[str, Any]:
        answer = _post(http, url, body)
        assert "result" not in answer, answer
        return dict(answer["error"])

    assert error(b'{"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"')["code"] == -32700
    assert error(b'{"jsonrpc":"2.0"}')["code"] == -32600
    assert error(b'{"id": 1, "method": "eth_chainId"}')["code"] == -32600  # no jsonrpc member
    unknown = error(b'{"jsonrpc":"2.0","id":2,"method":"eth_noSuchMethod","params":[]}')
    assert unknown["code"] == -32601 and "eth_noSuchMethod" in unknown["message"]
    short = error(
        b'{"jsonrpc":"2.0","id":3,"method":"eth_getBalance","params":["0x010203","latest"]}'
    )
    assert short["code"] == -32602 and "address" in short["message"]
    missing = error(b'{"jsonrpc":"2.0","id":4,"method":"eth_getBalance","params":[]}')
    assert missing["code"] == -32602 and "address" in missing["message"]
    assert error(b"[]")["code"] == -32600

    batch = json.dumps(
        [
            {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
            {"jsonrpc": "2.0", "id": 2, "method": "eth_noSuchMethod", "params": []},
            {"jsonrpc": "2.0", "id": 3, "method": "eth_getBalance", "params": ["0x0102"]},
            {"jsonrpc": "2.0", "method": "eth_blockNumber", "params": []},  # a notification
            5,
            {"jsonrpc": "2.0", "id": 4, "method": "eth_blockNumber", "params": []},
        ]
    ).encode()
    answers = _post(http, url, batch)
    assert isinstance(answers, list) and len(answers) == 5  # none for the notification
    by_id = {a["id"]: a for a in answers}
    assert by_id[1]["result"] == hex(CHAIN_ID)
    assert by_id[2]["error"]["code"] == -32601
    assert by_id[3]["error"]["code"] == -32602
    assert int(by_id[4]["result"], 16) == _head(http, url)
    assert by_id[None]["error"]["code"] == -32600


def _without_signature(raw: str) -> str:
    """The same typed transaction with its signature's r zeroed (no key signs that)."""
    data = bytes.fromhex(raw[2:])
    items = rlp.decode(data[1:])
    items[-2] = b""
    return "0x" + (data[:1] + rlp.encode(items)).hex()


def test_invalid_transactions_are_refused_and_change_nothing(
    node: ServedEvmNode, http: httpx.Client, w3: Web3, accounts: list[LocalAccount]
) -> None:
    url, sender, recipient = node.url, accounts[7], _fresh_address()
    warm_up = _signed_transfer(sender, _nonce(http, url, sender.address), recipient, 5)
    w3.eth.wait_for_transaction_receipt(
        rpc_call(http, url, "eth_sendRawTransaction", [warm_up]), timeout=10
    )
    nonce = _nonce(http, url, sender.address)
    balance = _balance(http, url, sender.address)
    head = _head(http, url)

    cases = {
        "garbage bytes": ("0x" + "ab" * 40, "malformed"),
        "bad signature": (
            _without_signature(_signed_transfer(sender, nonce, recipient, 1)),
            "badly signed",
        ),
        "nonce too low": (_signed_transfer(sender, nonce - 1, recipient, 2), "nonce too low"),
        "insufficient funds": (
            _signed_transfer(sender, nonce, recipient, balance),
            "insufficient funds",
        ),
        "gas below 21000": (
            _signed_transfer(sender, nonce, recipient, 1, gas=20_999),
            "intrinsic gas too low",
        ),
        "wrong chain id": (_signed_transfer(sender, nonce, recipient, 1, chain_id=1), "chain id"),
        "fee below base fee": (
            _signed_transfer(sender, nonce, recipient, 1, max_fee=1),
            "base fee",
        ),
        "unfunded sender": (
            _signed_transfer(Account.create(), 0, recipient, 1),
            "insufficient funds",
        ),
    }
    for case, (raw, says) in cases.items():
        answer = http.post(
            url,
            json={"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction", "params": [raw]},
        ).json()
        assert "error" in answer, f"{case}: accepted ({answer})"
        assert answer["error"]["code"] == -32000, f"{case}: {answer}"
        assert says in answer["error"]["message"], f"{case}: {answer['error']['message']}"
        tx_hash = "0x" + keccak(bytes.fromhex(raw[2:])).hex()
        assert rpc_call(http, url, "eth_getTransactionByHash", [tx_hash]) is None, case

    assert _head(http, url) == head
    assert _balance(http, url, sender.address) == balance
    assert _balance(http, url, recipient) == 5
    assert _nonce(http, url, sender.address, "pending") == nonce
