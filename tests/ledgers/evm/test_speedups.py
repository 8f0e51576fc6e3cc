"""The trie and code-analysis speed-ups give exactly what the functions they replace give."""

from __future__ import annotations

import random

import rlp
import trie.hexary
from eth.vm import computation
from eth_account import Account
from trie.utils.nibbles import bytes_to_nibbles, decode_nibbles
from trie.utils.nodes import decode_node

from kakehashi.ledgers.evm import speedups
from kakehashi.ledgers.evm.chain import EmbeddedChain, dev_accounts


def _tree(rng: random.Random, depth: int = 0) -> bytes | list[object]:
    if depth > 2 or rng.random() < 0.5:
        return rng.randbytes(rng.choice([0, 1, 1, 2, 31, 32, 55, 56, 57, 300]))
    return [_tree(rng, depth + 1) for _ in range(rng.randint(0, 17))]


def test_installed_by_the_chain_module() -> None:
    assert trie.hexary.decode_node is speedups.decode_node
    assert trie.hexary.encode_raw is speedups.encode_raw
    assert computation.CodeStream is speedups.SharedAnalysisCodeStream


def test_encode_and_decode_match_pyrlp() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        tree = _tree(rng)
        encoded = speedups.encode_raw(tree)
        assert encoded == rlp.codec.encode_raw(tree)
        if isinstance(tree, list):
            assert speedups.decode_node(encoded) == decode_node(encoded) == tree
            assert speedups.decode_node(encoded) == tree  # from the cache this time


def test_a_decoded_node_is_the_callers_own_copy() -> None:
    node = [b"\x20" + b"\x11" * 31, [b"\x01", b"\x02"], b"x" * 40]
    encoded = rlp.codec.encode_raw(node)
    first = speedups.decode_node(encoded)
    first[0] = b"changed"
    first[1][0] = b"changed"
    assert speedups.decode_node(encoded) == node


def test_nibbles_match_the_trie_library() -> None:
    rng = random.Random(8)
    for _ in range(2000):
        value = rng.randbytes(rng.randint(1, 40))
        assert speedups.bytes_to_nibbles(value) == bytes_to_nibbles(value)
        try:
            expected: object = decode_nibbles(value)
        except Exception as exc:
            expected = type(exc)
        try:
            got: object = speedups.decode_nibbles(value)
        except Exception as exc:
            got = type(exc)
        assert got == expected


def test_jump_analysis_is_shared_by_equal_code_only() -> None:
    code = bytes([0x60, 0x5B, 0x5B, 0x00])  # PUSH1 0x5b; JUMPDEST; STOP
    first = speedups.SharedAnalysisCodeStream(code)
    assert not first.is_valid_opcode(1) and first.is_valid_opcode(2)
    second = speedups.SharedAnalysisCodeStream(bytes(code))
    assert second.invalid_positions == {1} and 2 in second.valid_positions
    other = speedups.SharedAnalysisCodeStream(bytes([0x5B, 0x5B, 0x5B, 0x00]))
    assert other.is_valid_opcode(1)


def test_receipts_cached_at_sealing_equal_those_read_back() -> None:
    receiver = Account.from_key("0x" + "11" * 32)
    dev = dev_accounts()[0]
    with EmbeddedChain(block_mode="interval", interval_ms=60_000) as chain:
        hashes = []
        for nonce in range(3):
            raw = dev.sign_transaction(
                {
                    "type": 2,
                    "chainId": chain.chain_id,
                    "nonce": nonce,
                    "to": receiver.address,
                    "value": 10**15,
                    "gas": 21_000,
                    "maxFeePerGas": 2 * chain.next_base_fee(),
                    "maxPriorityFeePerGas": 1,
                }
            ).raw_transaction
            hashes.append(chain.send_raw_transaction(bytes(raw)))
        block = chain.mine()
        assert block is not None and len(block.transactions) == 3
        read_back = chain._receipts_of(block)
        assert [chain.receipt(h) for h in hashes] == read_back
