"""Sparse Merkle tree: roots, membership and non-membership proofs, canonical proof bytes."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kakehashi.errors import VerificationError
from kakehashi.ledgers.corda.smt import (
    DEFAULTS,
    EMPTY_LEAF,
    EMPTY_ROOT,
    HASH_SIZE,
    KEY_BITS,
    MemoryNodeStore,
    SmtProof,
    SparseMerkleTree,
    key_for_path,
    leaf_hash,
    node_hash,
    verify_membership,
    verify_non_membership,
)

hashes = st.binary(min_size=32, max_size=32)
# keys that share long prefixes: their paths part deep down the tree (and at the very leaves)
close_keys = st.binary(min_size=1, max_size=1).map(lambda tail: b"\x5a" * 31 + tail)
keys = st.one_of(hashes, close_keys)
stores = st.dictionaries(keys, hashes, max_size=12)


def _naive_root(entries: dict[bytes, bytes]) -> bytes:
    """Root straight from the rules, bottom-up over the non-empty positions only."""
    level = {int.from_bytes(k, "big"): leaf_hash(k, v) for k, v in entries.items()}
    for height in range(KEY_BITS):
        parents: dict[int, bytes] = {}
        for position in {p >> 1 for p in level}:
            left = level.get(position << 1, DEFAULTS[height])
            right = level.get((position << 1) | 1, DEFAULTS[height])
            parents[position] = node_hash(left, right)
        level = parents
    return level.get(0, EMPTY_ROOT)


def test_rules() -> None:
    assert DEFAULTS[0] == EMPTY_LEAF == bytes(32)
    assert DEFAULTS[1] == hashlib.sha256(b"\x01" + bytes(64)).digest()
    key, value = bytes(range(32)), b"\x07" * 32
    assert leaf_hash(key, value) == hashlib.sha256(b"\x00" + key + value).digest()
    assert (
        key_for_path(b"clients/07-tendermint-0/clientState")
        == hashlib.sha256(b"clients/07-tendermint-0/clientState").digest()
    )
    assert SparseMerkleTree().root == EMPTY_ROOT
    # the empty tree's proof is just the all-zero bitmap
    assert SparseMerkleTree().prove(key) == bytes(32)
    verify_non_membership(EMPTY_ROOT, key, bytes(32))


@settings(max_examples=60, deadline=None)
@given(entries=stores, absent=st.lists(keys, max_size=4))
def test_members_and_non_members_prove(entries: dict[bytes, bytes], absent: list[bytes]) -> None:
    tree = SparseMerkleTree()
    tree.update(entries)
    assert tree.root == _naive_root(entries)
    for key, value in entries.items():
        proof = tree.prove(key)
        assert len(proof) % HASH_SIZE == 0
        verify_membership(tree.root, key, value, proof)
        assert tree.get(key) == value
        assert tree.prove_value(key) == (proof, value)
        with pytest.raises(VerificationError):
            verify_non_membership(tree.root, key, proof)
        with pytest.raises(VerificationError):
            verify_membership(tree.root, key, bytes(a ^ 1 for a in value), proof)
    for key in absent:
        if key in entries:
            continue
        proof = tree.prove(key)
        verify_non_membership(tree.root, key, proof)
        assert tree.get(key) is None
        assert tree.prove_value(key) == (proof, None)
        with pytest.raises(VerificationError):
            verify_membership(tree.root, key, b"\x01" * 32, proof)
    assert dict(tree.items()) == entries


@settings(max_examples=40, deadline=None)
@given(entries=stores.filter(bool), data=st.data())
def test_any_altered_byte_wrong_key_or_root_fails(
    entries: dict[bytes, bytes], data: st.DataObject
) -> None:
    tree = SparseMerkleTree()
    tree.update(entries)
    key = data.draw(st.sampled_from(sorted(entries)))
    value = entries[key]
    proof = tree.prove(key)
    position = data.draw(st.integers(0, len(proof) - 1))
    flip = data.draw(st.integers(1, 255))
    altered = proof[:position] + bytes([proof[position] ^ flip]) + proof[position + 1 :]
    with pytest.raises(VerificationError):
        verify_membership(tree.root, key, value, altered)
    other_key = data.draw(keys.filter(lambda k: k != key))
    with pytest.raises(VerificationError):
        verify_membership(tree.root, other_key, value, proof)
    wrong_root = bytes([tree.root[0] ^ 1]) + tree.root[1:]
    with pytest.raises(VerificationError):
        verify_membership(wrong_root, key, value, proof)
    with pytest.raises(VerificationError):
        verify_membership(tree.root, key, value, proof + bytes(32))
    with pytest.raises(VerificationError):
        verify_membership(tree.root, key, value, proof[:-1])


@settings(max_examples=30, deadline=None)
@given(before=stores, changes=st.dictionaries(keys, st.none() | hashes, max_size=8))
def test_updates_and_deletes_match_a_fresh_tree(
    before: dict[bytes, bytes], changes: dict[bytes, bytes | None]
) -> None:
    store = MemoryNodeStore()
    tree = SparseMerkleTree(store)
    old_root = tree.update(before)
    tree.update(changes)
    after = dict(before)
    for key, value in changes.items():
        if value is None:
            after.pop(key, None)
        else:
            after[key] = value
    fresh = SparseMerkleTree()
    fresh.update(after)
    assert tree.root == fresh.root == _naive_root(after)
    assert dict(tree.items()) == after
    for key, value in after.items():
        verify_membership(tree.root, key, value, tree.prove(key))
    for key in changes:
        if key not in after:
            verify_non_membership(tree.root, key, tree.prove(key))
    # and the updated tree keeps updating correctly
    tree.update(dict.fromkeys(after))
    assert tree.root == EMPTY_ROOT
    # the earlier version is still provable from the same (append-only) node store
    for key, value in before.items():
        verify_membership(old_root, key, value, tree.prove(key, old_root))
        assert tree.get(key, old_root) == value


def test_storage_is_about_log_n_records_per_key() -> None:
    store = MemoryNodeStore()
    tree = SparseMerkleTree(store)
    keys = [key_for_path(f"k{i}".encode()) for i in range(512)]
    tree.update({k: b"\x01" * 32 for k in keys})
    # full 256-level paths would take about 256 records per key
    assert len(store) < 512 * 14
    before = len(store)
    tree.set(keys[7], b"\x02" * 32)  # one update: one path of ~log2(n) records
    assert len(store) - before < 20
    verify_membership(tree.root, keys[7], b"\x02" * 32, tree.prove(keys[7]))


def test_deleting_everything_gives_the_empty_root() -> None:
    tree = SparseMerkleTree()
    keys = [key_for_path(f"k{i}".encode()) for i in range(5)]
    tree.update({k: b"\x01" * 32 for k in keys})
    tree.update(dict.fromkeys(keys))
    assert tree.root == EMPTY_ROOT


def test_non_canonical_proofs_are_refused() -> None:
    key = key_for_path(b"a")
    tree = SparseMerkleTree()
    tree.set(key, b"\x02" * 32)
    tree.set(key_for_path(b"b"), b"\x03" * 32)
    proof = SmtProof.decode(tree.prove(key))
    assert SmtProof.decode(proof.encode()) == proof
    # listing a default sibling explicitly is a second encoding of the same proof: refused
    depth = next(d for d, s in enumerate(proof.siblings) if s == DEFAULTS[KEY_BITS - 1 - d])
    bitmap = bytearray(tree.prove(key)[:32])
    bitmap[depth >> 3] |= 0x80 >> (depth & 7)
    listed = [
        s for d, s in enumerate(proof.siblings) if d == depth or s != DEFAULTS[KEY_BITS - 1 - d]
    ]
    with pytest.raises(VerificationError, match="not canonical"):
        SmtProof.decode(bytes(bitmap) + b"".join(listed))
    for bad in (b"", bytes(31), bytes(33)):
        with pytest.raises(VerificationError):
            verify_non_membership(tree.root, key_for_path(b"c"), bad)


def test_bad_inputs_are_verification_errors() -> None:
    with pytest.raises(VerificationError):
        verify_membership(bytes(31), bytes(32), bytes(32), bytes(32))
    with pytest.raises(VerificationError):
        verify_membership(EMPTY_ROOT, bytes(32), bytes(5), bytes(32))
    with pytest.raises(ValueError):
        SparseMerkleTree().set(bytes(32), bytes(31))
