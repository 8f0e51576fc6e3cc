"""A sparse Merkle tree over 256-bit keys with 32-byte values (the Corda-model IBC host's store).

Pure: hashing, proofs and a node-store interface; no I/O (the host supplies a database-backed
node store). SHA-256 throughout. The rules implemented:

* **Key rule.** A store path is placed at ``key = SHA256(path)`` (:func:`key_for_path`); the
  key's bits, most significant bit of byte 0 first, pick the branch at depth 0, 1, ... 255
  (0 = left, 1 = right). Every key has its own leaf position at depth 256.
* **Leaf rule.** A present leaf hashes to ``SHA256(0x00 ‖ key ‖ value)``; an absent one is
  :data:`EMPTY_LEAF` (32 zero bytes), which no present leaf can equal in practice.
* **Node rule.** An inner node hashes to ``SHA256(0x01 ‖ left ‖ right)``. The one-byte prefixes
  keep leaves and nodes in separate domains, so a node can never be passed off as a leaf.
* **Default rule.** The hash of an empty subtree of height ``h`` is ``DEFAULTS[h]``:
  ``DEFAULTS[0] = EMPTY_LEAF`` and ``DEFAULTS[h] = node(DEFAULTS[h-1], DEFAULTS[h-1])``; the root
  of the empty tree is ``DEFAULTS[256]``.
* **Proof rule.** A proof for a key lists, for each depth ``d`` from 0 (just under the root) to
  255 (next to the leaf), the sibling of the path's node at depth ``d + 1``, i.e. a subtree of
  height ``255 - d``. Membership of ``value`` = folding the siblings up from the leaf hash gives
  the root; non-membership = folding them up from :data:`EMPTY_LEAF` gives the root.

**Proof encoding** (canonical: one byte string per proof, anything else is refused)::

    bitmap    32 bytes   bit d (byte d // 8, mask 0x80 >> d % 8) set <=> sibling d is not
                         DEFAULTS[255 - d]
    siblings  32 bytes × popcount(bitmap), for the set bits in order of increasing depth d

A listed sibling equal to its default, a wrong length or trailing bytes make the proof invalid.
A proof's size is ``32 × (1 + number of non-default siblings)``: about ``32 × (1 + log2 n)``
bytes in a tree of ``n`` leaves.

**Node store.** Records are content-addressed (kept under the hash of the subtree they stand
for), written once and never changed, so every earlier root stays provable as long as its
records are kept. Only non-empty subtrees are stored, and a subtree holding a single leaf is one
record (see :class:`SparseMerkleTree`): ``n`` keys take about ``n (1 + log2 n)`` records. An
update of ``k`` keys costs at most ``256 × k`` hashes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from kakehashi.errors import VerificationError

__all__ = [
    "DEFAULTS",
    "EMPTY_LEAF",
    "EMPTY_ROOT",
    "HASH_SIZE",
    "KEY_BITS",
    "MemoryNodeStore",
    "NodeStore",
    "SmtProof",
    "SparseMerkleTree",
    "key_for_path",
    "leaf_hash",
    "node_hash",
    "single_leaf_hash",
    "verify_membership",
    "verify_non_membership",
]

HASH_SIZE = 32
"""Size in bytes of keys, values and hashes."""

KEY_BITS = 256
"""Depth of the tree: one level per key bit."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
_SINGLE_PREFIX = b"\x02"  # storage only: never hashed
_NODE_DATA_SIZE = 1 + 2 * HASH_SIZE
_SINGLE_DATA_SIZE = 1 + 2 * HASH_SIZE + 2

EMPTY_LEAF = bytes(HASH_SIZE)
"""The hash of an absent leaf (default rule)."""


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def leaf_hash(key: bytes, value: bytes) -> bytes:
    """Leaf rule: ``SHA256(0x00 ‖ key ‖ value)``."""
    return _sha256(_LEAF_PREFIX + key + value)


def node_hash(left: bytes, right: bytes) -> bytes:
    """Node rule: ``SHA256(0x01 ‖ left ‖ right)``."""
    return _sha256(_NODE_PREFIX + left + right)


def _defaults() -> tuple[bytes, ...]:
    out = [EMPTY_LEAF]
    for _ in range(KEY_BITS):
        out.append(node_hash(out[-1], out[-1]))
    return tuple(out)


DEFAULTS = _defaults()
"""``DEFAULTS[h]`` is the hash of an empty subtree of height ``h`` (default rule)."""

EMPTY_ROOT = DEFAULTS[KEY_BITS]
"""The root of the empty tree."""


def key_for_path(path: bytes) -> bytes:
    """Key rule: the leaf position of an ICS-24 path is ``SHA256(path)``."""
    if not isinstance(path, bytes):
        raise TypeError("a store path must be bytes")
    return _sha256(path)


def _bit(key: bytes, depth: int) -> int:
    return (key[depth >> 3] >> (7 - (depth & 7))) & 1


def _check_hash(value: object, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise VerificationError(f"{what} must be {HASH_SIZE} bytes")
    return value


# -- proofs -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SmtProof:
    """Proof rule: the 256 siblings of one key's path, root side first (depth 0 .. 255)."""

    siblings: tuple[bytes, ...]

    def encode(self) -> bytes:
        """Canonical bytes: 32-byte bitmap of non-default siblings, then those siblings."""
        if len(self.siblings) != KEY_BITS:
            raise ValueError(f"a proof has exactly {KEY_BITS} siblings")
        bitmap = bytearray(HASH_SIZE)
        listed = []
        for depth, sibling in enumerate(self.siblings):
            if sibling != DEFAULTS[KEY_BITS - 1 - depth]:
                bitmap[depth >> 3] |= 0x80 >> (depth & 7)
                listed.append(sibling)
        return bytes(bitmap) + b"".join(listed)

    @classmethod
    def decode(cls, data: bytes) -> SmtProof:
        """Parse canonical proof bytes; raises :class:`VerificationError` on anything else."""
        if not isinstance(data, bytes):
            raise VerificationError("a sparse Merkle proof must be bytes")
        if len(data) < HASH_SIZE or len(data) % HASH_SIZE:
            raise VerificationError(
                f"a sparse Merkle proof is a {HASH_SIZE}-byte bitmap and {HASH_SIZE}-byte "
                f"siblings; got {len(data)} bytes"
            )
        bitmap = data[:HASH_SIZE]
        count = sum(bin(byte).count("1") for byte in bitmap)
        if len(data) != HASH_SIZE * (1 + count):
            raise VerificationError(
                f"the proof's bitmap announces {count} siblings but "
                f"{len(data) // HASH_SIZE - 1} are given"
            )
        siblings = []
        cursor = HASH_SIZE
        for depth in range(KEY_BITS):
            default = DEFAULTS[KEY_BITS - 1 - depth]
            if _bit(bitmap, depth):
                sibling = data[cursor : cursor + HASH_SIZE]
                cursor += HASH_SIZE
                if sibling == default:
                    raise VerificationError(
                        f"sibling {depth} is listed but is the empty-subtree hash (not canonical)"
                    )
                siblings.append(sibling)
            else:
                siblings.append(default)
        return cls(tuple(siblings))

    def root_from(self, key: bytes, leaf: bytes) -> bytes:
        """Fold the siblings up from ``leaf`` at ``key``'s position (proof rule)."""
        current = leaf
        for depth in range(KEY_BITS - 1, -1, -1):
            sibling = self.siblings[depth]
            if _bit(key, depth):
                current = node_hash(sibling, current)
            else:
                current = node_hash(current, sibling)
        return current


def verify_membership(root: bytes, key: bytes, value: bytes, proof: bytes) -> None:
    """Raise :class:`VerificationError` unless ``proof`` shows ``key → value`` under ``root``."""
    _check_hash(root, "the root")
    _check_hash(key, "the key")
    _check_hash(value, "the value")
    decoded = SmtProof.decode(proof)
    if decoded.root_from(key, leaf_hash(key, value)) != root:
        raise VerificationError(
            f"the sparse Merkle proof does not show key {key.hex()} holding that value "
            f"under root {root.hex()}"
        )


def verify_non_membership(root: bytes, key: bytes, proof: bytes) -> None:
    """Raise :class:`VerificationError` unless ``proof`` shows ``key`` absent under ``root``."""
    _check_hash(root, "the root")
    _check_hash(key, "the key")
    decoded = SmtProof.decode(proof)
    if decoded.root_from(key, EMPTY_LEAF) != root:
        raise VerificationError(
            f"the sparse Merkle proof does not show key {key.hex()} absent under root {root.hex()}"
        )


# -- the tree ---------------------------------------------------------------------------------


class NodeStore(Protocol):
    """Content-addressed node storage: ``hash → record``, written once, never changed."""

    def get(self, node: bytes) -> bytes | None:
        """The record stored under ``node``, or None."""
        ...

    def put(self, node: bytes, data: bytes) -> None:
        """Store ``data`` under ``node``; storing it again changes nothing."""
        ...


class MemoryNodeStore:
    """A :class:`NodeStore` in a dictionary (tests, caches, the light path of a host)."""

    def __init__(self, nodes: MutableMapping[bytes, bytes] | None = None) -> None:
        self.nodes: MutableMapping[bytes, bytes] = {} if nodes is None else nodes

    def get(self, node: bytes) -> bytes | None:
        return self.nodes.get(node)

    def put(self, node: bytes, data: bytes) -> None:
        self.nodes[node] = data

    def __len__(self) -> int:
        return len(self.nodes)


def single_leaf_hash(key: bytes, value: bytes, height: int) -> bytes:
    """Hash of a subtree of ``height`` whose only leaf is ``key → value`` (``height`` hashes)."""
    current = leaf_hash(key, value)
    for depth in range(KEY_BITS - 1, KEY_BITS - 1 - height, -1):
        if _bit(key, depth):
            current = node_hash(DEFAULTS[KEY_BITS - 1 - depth], current)
        else:
            current = node_hash(current, DEFAULTS[KEY_BITS - 1 - depth])
    return current


@dataclass(frozen=True, slots=True)
class _Single:
    """A stored subtree holding exactly one leaf (its inner nodes are implied, not stored)."""

    key: bytes
    value: bytes
    height: int


_Node = tuple[bytes, bytes] | _Single  # (left, right) of an inner node, or a single leaf
_Items = list[tuple[bytes, bytes | None]]


class SparseMerkleTree:
    """A sparse Merkle tree over a node store, positioned at one root (any earlier root works).

    ``update`` moves the tree to a new root and stores the new records; ``get`` and ``prove``
    read at the current root or at any ``root`` whose records the store still holds.

    Storage: an inner node with two non-empty subtrees, or with a subtree of several leaves, is
    stored as ``0x01 ‖ left ‖ right`` (its hash preimage); a subtree holding exactly one leaf is
    stored once, at its top, as ``0x02 ‖ key ‖ value ‖ uint16be(height)`` — the chain of inner
    nodes down to its leaf is implied. So ``n`` random keys cost about ``n (1 + log2 n)``
    records instead of ``256 n``, while hashes, roots and proofs are exactly those of the full
    256-level tree. An update re-hashes one root-to-leaf path per key (at most 256 hashes).
    """

    def __init__(self, store: NodeStore | None = None, root: bytes = EMPTY_ROOT) -> None:
        self.store: NodeStore = MemoryNodeStore() if store is None else store
        self.root = _check_hash(root, "the root")

    # -- reading ------------------------------------------------------------------------------

    def _node(self, node: bytes, height: int) -> _Node:
        """The record of a non-empty subtree of ``height``."""
        data = self.store.get(node)
        if data is not None:
            if len(data) == _NODE_DATA_SIZE and data[:1] == _NODE_PREFIX and height > 0:
                return data[1 : 1 + HASH_SIZE], data[1 + HASH_SIZE :]
            if len(data) == _SINGLE_DATA_SIZE and data[:1] == _SINGLE_PREFIX:
                stored_height = int.from_bytes(data[-2:], "big")
                if stored_height == height:
                    return _Single(
                        data[1 : 1 + HASH_SIZE], data[1 + HASH_SIZE : 1 + 2 * HASH_SIZE], height
                    )
        raise KeyError(f"sparse Merkle node {node.hex()} is missing from the node store")

    def _path(self, key: bytes, root: bytes) -> tuple[list[bytes], bytes, bytes | None]:
        """The siblings of ``key``'s path (depth 0 .. 255), its leaf hash and its value."""
        siblings: list[bytes] = []
        node = root
        for depth in range(KEY_BITS + 1):
            height = KEY_BITS - depth
            if node == DEFAULTS[height]:
                break
            record = self._node(node, height)
            if isinstance(record, _Single):
                if record.key == key:
                    siblings.extend(DEFAULTS[KEY_BITS - 1 - d] for d in range(depth, KEY_BITS))
                    return siblings, leaf_hash(key, record.value), record.value
                # The paths part where the keys first differ; everything else is empty.
                split = next(
                    d for d in range(depth, KEY_BITS) if _bit(key, d) != _bit(record.key, d)
                )
                siblings.extend(DEFAULTS[KEY_BITS - 1 - d] for d in range(depth, split))
                siblings.append(single_leaf_hash(record.key, record.value, KEY_BITS - 1 - split))
                siblings.extend(DEFAULTS[KEY_BITS - 1 - d] for d in range(split + 1, KEY_BITS))
                return siblings, EMPTY_LEAF, None
            left, right = record
            if _bit(key, depth):
                siblings.append(left)
                node = right
            else:
                siblings.append(right)
                node = left
        siblings.extend(DEFAULTS[KEY_BITS - 1 - d] for d in range(len(siblings), KEY_BITS))
        return siblings, EMPTY_LEAF, None

    def get(self, key: bytes, root: bytes | None = None) -> bytes | None:
        """The value under ``key`` at ``root`` (default: the current root), or None."""
        _check_key(key)
        return self._path(key, self.root if root is None else root)[2]

    def prove(self, key: bytes, root: bytes | None = None) -> bytes:
        """Canonical proof bytes for ``key`` at ``root``: membership if present, else absence."""
        _check_key(key)
        siblings, _leaf, _value = self._path(key, self.root if root is None else root)
        return SmtProof(tuple(siblings)).encode()

    def prove_value(self, key: bytes, root: bytes | None = None) -> tuple[bytes, bytes | None]:
        """:meth:`prove` and :meth:`get` of ``key`` at ``root`` from one walk of its path."""
        _check_key(key)
        siblings, _leaf, value = self._path(key, self.root if root is None else root)
        return SmtProof(tuple(siblings)).encode(), value

    def items(self, root: bytes | None = None) -> Iterable[tuple[bytes, bytes]]:
        """Every (key, value) at ``root``, in key order (walks the whole tree: for tests/audits)."""
        stack = [(self.root if root is None else root, KEY_BITS)]
        while stack:
            node, height = stack.pop()
            if node == DEFAULTS[height]:
                continue
            record = self._node(node, height)
            if isinstance(record, _Single):
                yield record.key, record.value
                continue
            left, right = record
            stack.append((right, height - 1))
            stack.append((left, height - 1))

    # -- writing ------------------------------------------------------------------------------

    def update(self, changes: Mapping[bytes, bytes | None]) -> bytes:
        """Set (value) or delete (None) each key, store the new records, return the new root."""
        items = sorted(changes.items())
        for key, value in items:
            _check_key(key)
            if value is not None and (not isinstance(value, bytes) or len(value) != HASH_SIZE):
                raise ValueError(f"a sparse Merkle value must be {HASH_SIZE} bytes")
        if items:
            self.root = self._update(self.root, 0, items)[0]
        return self.root

    def set(self, key: bytes, value: bytes) -> bytes:
        return self.update({key: value})

    def delete(self, key: bytes) -> bytes:
        return self.update({key: None})

    def _update(self, node: bytes, depth: int, items: _Items) -> tuple[bytes, _Single | None]:
        """New hash of the subtree at ``depth`` after ``items``, and its single leaf if it has
        exactly one (so that the parent can tell whether it is a single-leaf subtree too)."""
        height = KEY_BITS - depth
        if node == DEFAULTS[height]:
            return self._build(depth, [(k, v) for k, v in items if v is not None])
        record = self._node(node, height)
        if isinstance(record, _Single):
            merged = dict(items)
            merged.setdefault(record.key, record.value)
            return self._build(depth, sorted((k, v) for k, v in merged.items() if v is not None))
        left, right = record
        split = _split(items, depth)
        left_single = right_single = None
        if split:
            left, left_single = self._update(left, depth + 1, items[:split])
        if split < len(items):
            right, right_single = self._update(right, depth + 1, items[split:])
        # An untouched child matters only when the other one became empty: the subtree may then
        # have shrunk to a single leaf, stored as one record.
        empty = DEFAULTS[height - 1]
        if left == empty and right != empty and split == len(items):
            right_single = self._single_at(right, height - 1)
        if right == empty and left != empty and split == 0:
            left_single = self._single_at(left, height - 1)
        return self._combine(depth, left, left_single, right, right_single)

    def _single_at(self, node: bytes, height: int) -> _Single | None:
        record = self._node(node, height)
        return record if isinstance(record, _Single) else None

    def _build(self, depth: int, leaves: list[tuple[bytes, bytes]]) -> tuple[bytes, _Single | None]:
        """Store a fresh subtree at ``depth`` holding exactly ``leaves`` (sorted by key)."""
        height = KEY_BITS - depth
        if not leaves:
            return DEFAULTS[height], None
        if len(leaves) == 1:
            ((key, value),) = leaves
            single = _Single(key, value, height)
            node = single_leaf_hash(key, value, height)
            self._put_single(node, single)
            return node, single
        split = _split(leaves, depth)
        left, left_single = self._build(depth + 1, leaves[:split])
        right, right_single = self._build(depth + 1, leaves[split:])
        return self._combine(depth, left, left_single, right, right_single)

    def _combine(
        self,
        depth: int,
        left: bytes,
        left_single: _Single | None,
        right: bytes,
        right_single: _Single | None,
    ) -> tuple[bytes, _Single | None]:
        height = KEY_BITS - depth
        empty = DEFAULTS[height - 1]
        node = node_hash(left, right)
        if left == empty and right == empty:
            return DEFAULTS[height], None
        lone = right_single if left == empty else left_single if right == empty else None
        if lone is not None:  # still a single-leaf subtree: one record at its new top
            single = _Single(lone.key, lone.value, height)
            self._put_single(node, single)
            return node, single
        self.store.put(node, _NODE_PREFIX + left + right)
        return node, None

    def _put_single(self, node: bytes, single: _Single) -> None:
        self.store.put(
            node, _SINGLE_PREFIX + single.key + single.value + single.height.to_bytes(2, "big")
        )


def _split(items: Sequence[tuple[bytes, object]], depth: int) -> int:
    """Index of the first item (sorted by key) whose key has bit ``depth`` set."""
    low, high = 0, len(items)
    while low < high:
        middle = (low + high) // 2
        if _bit(items[middle][0], depth):
            high = middle
        else:
            low = middle + 1
    return low


def _check_key(key: object) -> None:
    if not isinstance(key, bytes) or len(key) != HASH_SIZE:
        raise ValueError(f"a sparse Merkle key must be {HASH_SIZE} bytes")
