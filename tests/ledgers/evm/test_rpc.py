"""JSON-RPC of the embedded chain, in-process: web3.py drives it unchanged; errors are standard."""

from __future__ import annotations

import json
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import ContractLogicError, Web3RPCError

from kakehashi.errors import TransactionRevertedError, VerificationError
from kakehashi.ledgers.evm import client, toolchain
from kakehashi.ledgers.evm.chain import EmbeddedChain, dev_accounts
from kakehashi.ledgers.evm.proofs import verify_eth_get_proof
from kakehashi.ledgers.evm.provider import embedded_web3
from kakehashi.ledgers.evm.rpc import RpcDispatcher
from kakehashi.lightclients.qbft import verify_header


@pytest.fixture
def chain() -> Any:
    with EmbeddedChain() as c:
        yield c


@pytest.fixture
def w3(chain: EmbeddedChain) -> Web3:
    w3 = embedded_web3(chain)
    return w3


@pytest.fixture
def rpc(chain: EmbeddedChain) -> Any:
    dispatcher = RpcDispatcher(chain)

    def call(method: str, *params: Any) -> Any:
        return dispatcher.handle(
            {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        )

    return call


def _nft(w3: Web3, owner: LocalAccount) -> Any:
    return toolchain.deploy(w3, "tokens/erc721", "Bond", "BND", "https://x/", sender=owner)


def test_web3_deploys_mints_and_transfers_an_erc721_in_process(w3: Web3) -> None:
    alice, bob = dev_accounts()[0], dev_accounts()[1]
    nft = _nft(w3, alice)
    client.transact(w3, nft.functions.mint(alice.address, 7, ""), sender=alice)
    receipt = client.transact(
        w3, nft.functions.transferFrom(alice.address, bob.address, 7), sender=alice
    )
    assert nft.functions.ownerOf(7).call() == bob.address
    assert nft.functions.balanceOf(bob.address).call() == 1
    transfers = nft.events.Transfer().get_logs(from_block=0)
    assert [(e.args.sender, e.args.receiver, e.args.token_id) for e in transfers][-1] == (
        alice.address,
        bob.address,
        7,
    )
    assert transfers[-1].transactionHash == receipt["transactionHash"]
    block = w3.eth.get_block(receipt["blockNumber"], full_transactions=True)
    assert block["transactions"][0]["hash"] == receipt["transactionHash"]
    assert w3.eth.get_transaction(receipt["transactionHash"])["from"] == alice.address


def test_a_reverting_call_reports_its_reason_and_data(w3: Web3, rpc: Any) -> None:
    alice, bob = dev_accounts()[0], dev_accounts()[1]
    nft = _nft(w3, alice)
    with pytest.raises(ContractLogicError):
        nft.functions.ownerOf(99).call()
    with pytest.raises(TransactionRevertedError):
        client.transact(w3, nft.functions.mint(bob.address, 1, ""), sender=bob)  # not a minter
    answer = rpc(
        "eth_call",
        {"to": nft.address, "data": nft.encode_abi("ownerOf", [99])},
        "latest",
    )
    assert answer["error"]["code"] == 3 and answer["error"]["message"].startswith(
        "execution reverted"
    )


def test_estimate_gas_fee_methods_and_chain_identity(w3: Web3, rpc: Any) -> None:
    alice = dev_accounts()[0]
    gas = w3.eth.estimate_gas({"from": alice.address, "to": dev_accounts()[1].address, "value": 1})
    assert gas == 21_000
    assert w3.eth.chain_id == 1337 and w3.net.version == "1337"
    assert w3.eth.gas_price >= w3.eth.max_priority_fee
    history = w3.eth.fee_history(1, "latest", [50])
    assert len(history["baseFeePerGas"]) == 2 and len(history["reward"]) == 1
    assert rpc("web3_clientVersion")["result"].startswith("kakehashi/")
    assert len(rpc("qbft_getValidatorsByBlockNumber", "latest")["result"]) == 4


def test_get_proof_verifies_against_the_block_state_root(w3: Web3) -> None:
    alice = dev_accounts()[0]
    nft = _nft(w3, alice)
    client.transact(w3, nft.functions.mint(alice.address, 1, ""), sender=alice)
    block = w3.eth.get_block("latest")
    slots = [*range(8), 2**255]
    proof = client.get_proof(w3, nft.address, slots, block["number"])
    values = verify_eth_get_proof(bytes(block["stateRoot"]), proof)
    assert any(values[s] for s in slots[:8])  # some state was written
    assert values[2**255] == 0  # an absent slot proves as zero
    for s in slots:
        assert values[s] == int.from_bytes(w3.eth.get_storage_at(nft.address, s), "big")
    absent = client.get_proof(w3, "0x" + "ab" * 20, [0], block["number"])
    assert verify_eth_get_proof(bytes(block["stateRoot"]), absent) == {0: 0}
    tampered = json.loads(json.dumps(proof))
    tampered["storageProof"][0]["value"] = hex(int(tampered["storageProof"][0]["value"], 16) + 1)
    with pytest.raises(VerificationError):
        verify_eth_get_proof(bytes(block["stateRoot"]), tampered)


def test_headers_from_json_rebuild_and_verify(w3: Web3, chain: EmbeddedChain) -> None:
    client.transact(
        w3,
        _nft(w3, dev_accounts()[0]).functions.mint(dev_accounts()[0].address, 1, ""),
        sender=dev_accounts()[0],
    )
    for number in range(1, chain.block_number() + 1):
        header_rlp = client.raw_header(w3, number)
        assert header_rlp == chain.raw_header(number)
        assert verify_header(header_rlp, list(chain.validators)).number == number


def test_storage_code_balance_and_nonce_at_past_blocks(w3: Web3) -> None:
    alice = dev_accounts()[0]
    before = w3.eth.get_balance(alice.address, "latest")
    w3.eth.send_raw_transaction(
        alice.sign_transaction(
            {
                "to": dev_accounts()[1].address,
                "value": 10**18,
                "gas": 21_000,
                "maxFeePerGas": 10**10,
                "maxPriorityFeePerGas": 10**9,
                "nonce": 0,
                "chainId": 1337,
            }
        ).raw_transaction
    )
    assert w3.eth.get_balance(alice.address, 0) == before
    assert w3.eth.get_balance(alice.address) < before - 10**18
    assert w3.eth.get_transaction_count(alice.address, 0) == 0
    assert w3.eth.get_transaction_count(alice.address) == 1
    assert w3.eth.get_code(alice.address) == b""


@pytest.mark.parametrize(
    ("request_body", "code", "fragment"),
    [
        (b"{not json", -32700, "parse error"),
        (b'{"jsonrpc":"2.0","id":1}', -32600, "method"),
        (b'{"id":1,"method":"eth_chainId"}', -32600, "JSON-RPC 2.0"),
        (b'{"jsonrpc":"2.0","id":1,"method":"eth_nope","params":[]}', -32601, "eth_nope"),
        (
            b'{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["0x123456"]}',
            -32602,
            "address",
        ),
        (
            b'{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":[]}',
            -32602,
            "address",
        ),
        (
            b'{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByNumber","params":["0xzz", false]}',
            -32602,
            "block",
        ),
        (
            b'{"jsonrpc":"2.0","id":1,"method":"eth_getProof","params":["0x'
            + b"11" * 20
            + b'", "nope", "latest"]}',
            -32602,
            "storageKeys",
        ),
        (
            b'{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["0x02ab"]}',
            -32000,
            "malformed",
        ),
    ],
)
def test_bad_requests_get_standard_errors(
    chain: EmbeddedChain, request_body: bytes, code: int, fragment: str
) -> None:
    answer = json.loads(RpcDispatcher(chain).handle_bytes(request_body) or b"null")
    assert answer["error"]["code"] == code
    assert fragment in answer["error"]["message"]
    assert chain.block_number() == 0


def test_batches_answer_each_request_and_skip_notifications(chain: EmbeddedChain) -> None:
    body = json.dumps(
        [
            {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"},
            {"jsonrpc": "2.0", "id": 2, "method": "eth_nope"},
            {"jsonrpc": "2.0", "method": "eth_blockNumber"},  # a notification: no answer
            {"jsonrpc": "2.0", "id": 3, "method": "eth_getBalance", "params": ["0x12"]},
        ]
    ).encode()
    answers = json.loads(RpcDispatcher(chain).handle_bytes(body) or b"null")
    assert [a["id"] for a in answers] == [1, 2, 3]
    assert answers[0]["result"] == "0x539"
    assert answers[1]["error"]["code"] == -32601 and answers[2]["error"]["code"] == -32602
    assert json.loads(RpcDispatcher(chain).handle_bytes(b"[]") or b"null")["error"]["code"] == (
        -32600
    )


def test_web3_surfaces_refused_transactions(w3: Web3) -> None:
    poor = dev_accounts()[0].sign_transaction(
        {
            "to": dev_accounts()[1].address,
            "value": 10**30,
            "gas": 21_000,
            "maxFeePerGas": 10**10,
            "maxPriorityFeePerGas": 10**9,
            "nonce": 0,
            "chainId": 1337,
        }
    )
    with pytest.raises(Web3RPCError, match="insufficient funds"):
        w3.eth.send_raw_transaction(poor.raw_transaction)
    assert w3.eth.block_number == 0


def test_fee_history_rewards_are_the_tips_paid(w3: Web3) -> None:
    alice = dev_accounts()[0]
    base_fee = w3.eth.get_block("latest")["baseFeePerGas"]
    signed = alice.sign_transaction(
        {
            "to": dev_accounts()[1].address,
            "value": 1,
            "gas": 21_000,
            "maxFeePerGas": 4 * 10**9 + base_fee,
            "maxPriorityFeePerGas": 3 * 10**9,
            "nonce": 0,
            "chainId": 1337,
        }
    )
    w3.eth.send_raw_transaction(signed.raw_transaction)
    history = w3.eth.fee_history(2, "latest", [10, 90])
    assert history["reward"] == [[0, 0], [3 * 10**9, 3 * 10**9]]  # genesis paid no tips
    assert history["gasUsedRatio"][1] == 21_000 / w3.eth.get_block("latest")["gasLimit"]


def test_a_transaction_that_reverts_on_chain_has_status_zero(
    w3: Web3, chain: EmbeddedChain
) -> None:
    alice, bob = dev_accounts()[0], dev_accounts()[1]
    nft = _nft(w3, alice)
    with pytest.raises(TransactionRevertedError) as caught:
        client.transact(w3, nft.functions.mint(bob.address, 1, ""), sender=bob, gas=300_000)
    assert caught.value.tx_hash is not None  # mined, not refused
    receipt = w3.eth.get_transaction_receipt(caught.value.tx_hash)
    assert receipt["status"] == 0 and receipt["logs"] == []
    assert 21_000 < receipt["gasUsed"] < 300_000
    assert w3.eth.get_transaction_count(bob.address) == 1  # the sender still paid and moved on


def test_estimated_gas_is_enough_and_close_to_what_is_used(w3: Web3) -> None:
    alice, bob = dev_accounts()[0], dev_accounts()[1]
    nft = _nft(w3, alice)
    client.transact(w3, nft.functions.mint(alice.address, 1, ""), sender=alice)
    transfer = nft.functions.transferFrom(alice.address, bob.address, 1)
    estimate = transfer.estimate_gas({"from": alice.address})
    receipt = client.transact(w3, transfer, sender=alice, gas=estimate)
    assert receipt["status"] == 1
    # Refunds (at most 1/5 of the gas used, EIP-3529) are paid back after the run: the limit
    # must cover the gas before them.
    assert receipt["gasUsed"] <= estimate <= receipt["gasUsed"] * 1.25 * 1.015
