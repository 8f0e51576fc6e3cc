"""Against a real external node: anvil from npm, reached through ``client.connect``; cast from
npm as an independent client; headers rebuilt and proofs fetched from the node."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from web3 import HTTPProvider, Web3
from web3.contract import Contract
from web3.exceptions import ExtraDataLengthError
from web3.logs import DISCARD

from foundry import CHAIN_ID, AnvilNode, cast, free_port
from kakehashi.errors import (
    ConfigurationError,
    ExecutionRevertedError,
    NodeUnavailableError,
    SerializationError,
    TransactionRevertedError,
    TransportError,
    VerificationError,
)
from kakehashi.ledgers.evm import client, toolchain


@pytest.fixture(scope="module")
def nft(
    anvil_w3: Web3, erc721_compiled: toolchain.CompiledContract, dev_accounts: list[LocalAccount]
) -> Contract:
    """An ERC-721 deployed on anvil by dev account 0, with token 1 minted to dev account 1."""
    contract = toolchain.deploy(anvil_w3, erc721_compiled, "Anvil Bills", "ABILL", "")
    client.transact(anvil_w3, contract.functions.mint(dev_accounts[1].address, 1, "one"))
    return contract


# ---------------------------------------------------------------------------- connecting
def test_connect_answers_with_anvil_chain_id(anvil: AnvilNode) -> None:
    w3 = client.connect(anvil.url, timeout=5)
    assert w3.eth.chain_id == CHAIN_ID


def test_connect_to_nothing_is_typed_and_names_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(NodeUnavailableError, match=url) as info:
        client.connect(url, timeout=2)
    assert "check the URL" in str(info.value)


def test_connect_refuses_other_schemes() -> None:
    with pytest.raises(ConfigurationError, match="http"):
        client.connect("ftp://127.0.0.1:8545")


def test_node_errors_are_typed(anvil_w3: Web3) -> None:
    with pytest.raises(TransportError, match="no_such_method"):
        client.rpc(anvil_w3, "no_such_method", [])
    with AnvilNode() as node:
        w3 = client.connect(node.url)
        assert client.get_block(w3, 0)["number"] == "0x0"
    with pytest.raises(NodeUnavailableError, match=node.url):
        client.get_block(w3, 0)


class _LongExtraDataProxy(BaseHTTPRequestHandler):
    """Forwards JSON-RPC to anvil, but gives blocks a 97-byte extraData, as QBFT nodes do."""

    upstream = ""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = urllib.request.Request(self.upstream, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read())
        result = answer.get("result")
        if json.loads(body).get("method", "").startswith("eth_getBlockBy") and result:
            result["extraData"] = "0x" + "ab" * 97
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def qbft_like_url(anvil: AnvilNode) -> Iterator[str]:
    handler = type("Proxy", (_LongExtraDataProxy,), {"upstream": anvil.url})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_connect_reads_blocks_with_long_extra_data(qbft_like_url: str) -> None:
    """web3 8 refuses >32-byte extraData unless the PoA middleware is in: connect installs it."""
    with pytest.raises(ExtraDataLengthError):
        Web3(HTTPProvider(qbft_like_url)).eth.get_block("latest")
    block = client.connect(qbft_like_url).eth.get_block("latest")
    assert block["proofOfAuthorityData"] == bytes.fromhex("ab" * 97)


def test_funded_accounts_are_anvils_dev_accounts(
    anvil_w3: Web3, dev_accounts: list[LocalAccount]
) -> None:
    assert [a.address for a in dev_accounts] == anvil_w3.eth.accounts[:10]
    assert all(anvil_w3.eth.get_balance(a.address) > 10**21 for a in dev_accounts)
    assert dev_accounts[0].address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


# ----------------------------------------------------------------------------- contracts
def test_erc721_deploy_mint_transfer_on_anvil(
    anvil_w3: Web3, nft: Contract, dev_accounts: list[LocalAccount]
) -> None:
    w3 = anvil_w3
    alice, bob = dev_accounts[2], dev_accounts[3]
    assert nft.functions.owner().call() == dev_accounts[0].address
    assert w3.eth.get_code(nft.address) != b""

    client.transact(w3, nft.functions.mint(alice.address, 42, "answer"))
    assert nft.functions.ownerOf(42).call() == alice.address
    # alice signs locally and sends a raw transaction, as with GoQuorum or Besu.
    transfer = nft.functions.transferFrom(alice.address, bob.address, 42)
    receipt = client.transact(w3, transfer, sender=alice)
    (moved,) = nft.events.Transfer().process_receipt(receipt, errors=DISCARD)
    assert moved.args == {"sender": alice.address, "receiver": bob.address, "token_id": 42}
    assert nft.functions.ownerOf(42).call() == bob.address
    assert nft.functions.balanceOf(alice.address).call() == 0
    back = nft.functions.transferFrom(bob.address, alice.address, 42)
    with pytest.raises(ExecutionRevertedError, match="not token owner or approved") as info:
        client.transact(w3, back, sender=alice)
    assert isinstance(info.value, TransactionRevertedError)
    assert info.value.data[:4] == bytes.fromhex("08c379a0")  # Error(string) revert data


# ------------------------------------------------------------------------------- headers
def test_raw_header_hashes_to_block_hash(anvil_w3: Web3, nft: Contract) -> None:
    w3 = anvil_w3
    latest = w3.eth.block_number
    assert latest >= 2  # deployment and mint blocks, with transactions
    for number in (0, latest):
        block = client.get_block(w3, number)
        assert "requestsHash" in block  # Prague header: every optional field present
        header = client.raw_header(w3, number)
        assert "0x" + keccak(header).hex() == block["hash"]
        assert client.raw_header(w3, bytes.fromhex(block["hash"][2:])) == header


def test_header_rlp_rejects_a_gap_in_fork_fields(anvil_w3: Web3) -> None:
    block = client.get_block(anvil_w3, "latest")
    assert client.header_hash(block).hex() == block["hash"][2:]
    block["stateRoot"] = "0x" + "00" * 32
    assert client.header_hash(block).hex() != block["hash"][2:]
    del block["parentBeaconBlockRoot"]
    with pytest.raises(SerializationError, match="requestsHash but not parentBeaconBlockRoot"):
        client.header_rlp(block)
    del block["number"]
    with pytest.raises(SerializationError, match="number"):
        client.header_rlp(block)


# ---------------------------------------------------------------------------------- cast
def test_cast_sends_value_and_reads_balance(
    anvil: AnvilNode, anvil_w3: Web3, dev_accounts: list[LocalAccount]
) -> None:
    recipient = Account.create().address
    sender = dev_accounts[4]
    cast(
        "send", "--rpc-url", anvil.url,
        "--private-key", "0x" + bytes(sender.key).hex(),
        "--value", "1234567wei",
        recipient,
    )  # fmt: skip
    assert cast("balance", recipient, "--rpc-url", anvil.url) == "1234567"
    assert anvil_w3.eth.get_balance(recipient) == 1234567


def test_cast_reads_our_erc721(anvil: AnvilNode, nft: Contract) -> None:
    """An independent client sees the standard ERC-721 interface of our contract."""
    owner = cast("call", nft.address, "ownerOf(uint256)(address)", "1", "--rpc-url", anvil.url)
    assert to_checksum_address(owner) == nft.functions.ownerOf(1).call()
    assert cast("call", nft.address, "symbol()(string)", "--rpc-url", anvil.url) == '"ABILL"'


# -------------------------------------------------------------------------------- proofs
def _owner_slot(compiled: toolchain.CompiledContract, token_id: int) -> int:
    return toolchain.mapping_slot(toolchain.storage_slot(compiled, "erc721._owners"), token_id)


def test_get_proof_shape(
    anvil_w3: Web3,
    nft: Contract,
    erc721_compiled: toolchain.CompiledContract,
    dev_accounts: list[LocalAccount],
) -> None:
    slot = _owner_slot(erc721_compiled, 1)
    block = anvil_w3.eth.block_number
    proof = client.get_proof(anvil_w3, nft.address, [slot, 7], block)
    assert type(proof) is dict
    assert proof["address"].lower() == nft.address.lower()
    assert int(proof["nonce"], 16) == 1  # a contract's nonce starts at 1 (EIP-161)
    code_hash = "0x" + keccak(bytes(anvil_w3.eth.get_code(nft.address, block))).hex()
    assert proof["codeHash"] == code_hash
    assert all(isinstance(node, str) and node.startswith("0x") for node in proof["accountProof"])
    owned, absent = proof["storageProof"]
    assert owned["key"] == "0x" + slot.to_bytes(32, "big").hex()  # 32-byte keys, as sent
    assert int(owned["value"], 16) == int(dev_accounts[1].address, 16)
    assert owned["proof"]
    assert int(absent["key"], 16) == 7 and int(absent["value"], 16) == 0


def test_anvil_proofs_verify_against_the_state_root(
    anvil_w3: Web3,
    nft: Contract,
    erc721_compiled: toolchain.CompiledContract,
    dev_accounts: list[LocalAccount],
) -> None:
    proofs = pytest.importorskip("kakehashi.ledgers.evm.proofs")
    number = anvil_w3.eth.block_number
    state_root = bytes.fromhex(client.get_block(anvil_w3, number)["stateRoot"][2:])
    owner_slot, absent_slot = _owner_slot(erc721_compiled, 1), _owner_slot(erc721_compiled, 999)
    proof = client.get_proof(anvil_w3, nft.address, [owner_slot, absent_slot], number)

    values = proofs.verify_eth_get_proof(state_root, proof, address=nft.address)
    assert values == {owner_slot: int(dev_accounts[1].address, 16), absent_slot: 0}

    # A claimed value the trie does not hold is refused.
    forged = json.loads(json.dumps(proof))
    forged["storageProof"][0]["value"] = dev_accounts[2].address.lower()
    with pytest.raises(VerificationError):
        proofs.verify_eth_get_proof(state_root, forged)
    # So is a tampered trie node, and a proof checked against another block's root.
    tampered = json.loads(json.dumps(proof))
    node = tampered["accountProof"][-1]
    tampered["accountProof"][-1] = node[:-2] + ("00" if node[-2:] != "00" else "01")
    with pytest.raises(VerificationError):
        proofs.verify_eth_get_proof(state_root, tampered)
    genesis_root = bytes.fromhex(client.get_block(anvil_w3, 0)["stateRoot"][2:])
    with pytest.raises(VerificationError):
        proofs.verify_eth_get_proof(genesis_root, proof)


def test_get_proof_rejects_oversized_slots(anvil_w3: Web3, nft: Contract) -> None:
    with pytest.raises(ValueError, match="out of range"):
        client.get_proof(anvil_w3, nft.address, [2**256])
