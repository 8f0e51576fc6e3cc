"""Corda 4's component-group Merkle tree, partial Merkle trees and filtered transactions.

Pure functions and frozen dataclasses only: no I/O and no serialisation (another module turns
these objects into bytes). SHA-256 is used throughout. The rules implemented here:

* **Component groups.** A transaction's components are split into groups by ordinal
  (:class:`ComponentGroup`): INPUTS 0, OUTPUTS 1, COMMANDS 2, ATTACHMENTS 3, NOTARY 4,
  TIMEWINDOW 5, SIGNERS 6, REFERENCES 7, PARAMETERS 8.
* **Nonce rule.** ``nonce(salt, g, i) = SHA256(SHA256(salt ‖ int32_be(g) ‖ int32_be(i)))``; the
  privacy salt is at least 32 bytes and not all zero.
* **Leaf rule.** ``leaf(nonce, component) = SHA256(SHA256(nonce ‖ component))``.
* **Root rule.** A Merkle root over 32-byte hashes: none is an error, one hash is its own root,
  otherwise the list is padded with 32 zero bytes up to a power of two and pairs are combined as
  ``SHA256(left ‖ right)`` up to the root.
* **Group hash rule.** A group's hash is the root over its leaves, or 32 bytes of ``0xFF`` for an
  empty or absent group; group hashes are listed for every ordinal from 0 up to the highest
  ordinal holding a non-empty group.
* **Id rule.** The transaction id is the root over the group hashes.
* **Partial tree rule.** A proof that some leaves belong to a tree lists the hashes of every
  maximal subtree holding no revealed leaf, depth-first, left before right (subtrees made only of
  padding are listed too and must hold the padding hash).
* **Tear-off rule.** A filtered transaction shows its id, every group hash and, for each group
  with something revealed, the revealed components with their nonces and a partial tree proving
  them against the group hash.
* **Completeness rule.** A group is fully visible when its revealed indices are exactly
  ``0 .. leaf_count - 1`` and the root rebuilt from them with canonical padding equals the group
  hash; an empty or absent group is fully visible when its hash is the ``0xFF`` marker and it is
  not listed.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum

from kakehashi.errors import InvalidTransactionError, VerificationError

__all__ = [
    "EMPTY_GROUP_HASH",
    "HASH_SIZE",
    "MAX_LEAVES",
    "MIN_SALT_SIZE",
    "ZERO_HASH",
    "ComponentGroup",
    "FilteredComponentGroup",
    "FilteredTransaction",
    "PartialMerkleTree",
    "build_partial_tree",
    "check_all_components_visible",
    "component_leaf",
    "component_nonce",
    "filter_transaction",
    "group_hashes",
    "merkle_root",
    "partial_tree_root",
    "transaction_id",
    "verify_filtered",
]

HASH_SIZE = 32
"""Size in bytes of every hash, nonce and leaf (SHA-256)."""

MIN_SALT_SIZE = 32
"""Smallest privacy salt accepted (nonce rule)."""

ZERO_HASH = bytes(HASH_SIZE)
"""The padding leaf of the root rule."""

EMPTY_GROUP_HASH = b"\xff" * HASH_SIZE
"""The hash of an empty or absent component group (group hash rule)."""

MAX_LEAVES = 2**31
"""Most leaves a tree may have: component indices are non-negative 32-bit integers."""

_MAX_INT32 = 2**31 - 1


class ComponentGroup(IntEnum):
    """Ordinals of Corda 4's component groups (component group rule)."""

    INPUTS = 0
    OUTPUTS = 1
    COMMANDS = 2
    ATTACHMENTS = 3
    NOTARY = 4
    TIMEWINDOW = 5
    SIGNERS = 6
    REFERENCES = 7
    PARAMETERS = 8


_GROUP_COUNT = len(ComponentGroup)


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _sha256_twice(data: bytes) -> bytes:
    return _sha256(_sha256(data))


def _combine(left: bytes, right: bytes) -> bytes:
    return _sha256(left + right)


def _padding_hashes() -> tuple[bytes, ...]:
    """``result[h]`` is the root of a subtree of height ``h`` made only of padding leaves."""
    out = [ZERO_HASH]
    for _ in range(MAX_LEAVES.bit_length()):
        out.append(_combine(out[-1], out[-1]))
    return tuple(out)


_PADDING = _padding_hashes()


def _is_index(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _padded_size(count: int) -> int:
    """The smallest power of two that is at least ``count`` (``count`` >= 1)."""
    return 1 << (count - 1).bit_length()


# -- nonces, leaves, roots -------------------------------------------------------------------


def _check_salt(privacy_salt: bytes) -> None:
    if not isinstance(privacy_salt, bytes):
        raise InvalidTransactionError("the privacy salt must be bytes")
    if len(privacy_salt) < MIN_SALT_SIZE:
        raise InvalidTransactionError(
            f"the privacy salt must be at least {MIN_SALT_SIZE} bytes, got {len(privacy_salt)}"
        )
    if not any(privacy_salt):
        raise InvalidTransactionError("the privacy salt must not be all zero bytes")


def _check_int32(value: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_INT32:
        raise InvalidTransactionError(
            f"{what} must be an integer in 0..{_MAX_INT32}, not {value!r}"
        )


def component_nonce(privacy_salt: bytes, group: int, index: int) -> bytes:
    """Nonce rule: ``SHA256(SHA256(salt ‖ int32_be(group) ‖ int32_be(index)))``.

    Raises :class:`InvalidTransactionError` for a salt shorter than 32 bytes or all zero, or a
    group or index outside ``0 .. 2**31 - 1``.
    """
    _check_salt(privacy_salt)
    _check_int32(group, "the component group ordinal")
    _check_int32(index, "the component index")
    return _sha256_twice(privacy_salt + group.to_bytes(4, "big") + index.to_bytes(4, "big"))


def component_leaf(nonce: bytes, component: bytes) -> bytes:
    """Leaf rule: ``SHA256(SHA256(nonce ‖ component_bytes))``; the nonce must be 32 bytes."""
    if not isinstance(nonce, bytes) or len(nonce) != HASH_SIZE:
        raise InvalidTransactionError(f"a component nonce must be {HASH_SIZE} bytes")
    if not isinstance(component, bytes):
        raise InvalidTransactionError("a serialised component must be bytes")
    return _sha256_twice(nonce + component)


def merkle_root(hashes: Sequence[bytes]) -> bytes:
    """Root rule: one hash is its own root; more are zero-padded to a power of two and paired.

    Raises :class:`InvalidTransactionError` for an empty list or a hash that is not 32 bytes.
    """
    if isinstance(hashes, bytes | bytearray | str):
        raise InvalidTransactionError("merkle_root takes a sequence of hashes, not one value")
    level = list(hashes)
    if not level:
        raise InvalidTransactionError("cannot compute the Merkle root of no hashes")
    if len(level) > MAX_LEAVES:
        raise InvalidTransactionError(f"a Merkle tree may have at most {MAX_LEAVES} leaves")
    for position, item in enumerate(level):
        if not isinstance(item, bytes) or len(item) != HASH_SIZE:
            raise InvalidTransactionError(f"hash {position} is not {HASH_SIZE} bytes")
    level.extend([ZERO_HASH] * (_padded_size(len(level)) - len(level)))
    while len(level) > 1:
        level = [_combine(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


# -- component groups and the transaction id -------------------------------------------------


def _normalise_groups(groups: Mapping[int, Sequence[bytes]]) -> dict[int, tuple[bytes, ...]]:
    """Check the group map and keep only non-empty groups, keyed by plain ``int`` ordinals."""
    if not isinstance(groups, Mapping):
        raise InvalidTransactionError("component groups must be a mapping of ordinal to components")
    out: dict[int, tuple[bytes, ...]] = {}
    for ordinal, components in groups.items():
        if not _is_index(ordinal) or not 0 <= ordinal < _GROUP_COUNT:
            raise InvalidTransactionError(f"unknown component group ordinal {ordinal!r}")
        if isinstance(components, bytes | bytearray | str) or not isinstance(components, Sequence):
            raise InvalidTransactionError(
                f"component group {ordinal} must be a sequence of serialised components"
            )
        if len(components) > MAX_LEAVES:
            raise InvalidTransactionError(f"component group {ordinal} has too many components")
        for index, component in enumerate(components):
            if not isinstance(component, bytes):
                raise InvalidTransactionError(f"component {index} of group {ordinal} is not bytes")
        if components:
            out[int(ordinal)] = tuple(bytes(c) for c in components)
    if not out:
        raise InvalidTransactionError("a transaction must have at least one non-empty group")
    return out


def _group_leaves(ordinal: int, components: Sequence[bytes], privacy_salt: bytes) -> list[bytes]:
    return [
        component_leaf(component_nonce(privacy_salt, ordinal, index), component)
        for index, component in enumerate(components)
    ]


def group_hashes(groups: Mapping[int, Sequence[bytes]], privacy_salt: bytes) -> list[bytes]:
    """Group hash rule: roots of ordinals ``0 .. highest non-empty``, ``0xFF * 32`` when empty.

    ``groups`` maps an ordinal to the serialised components of that group; an absent ordinal or
    an empty sequence is an empty group. Raises :class:`InvalidTransactionError` for a bad salt,
    an unknown ordinal, a component that is not bytes, or when every group is empty.
    """
    _check_salt(privacy_salt)
    present = _normalise_groups(groups)
    return [
        merkle_root(_group_leaves(ordinal, present[ordinal], privacy_salt))
        if ordinal in present
        else EMPTY_GROUP_HASH
        for ordinal in range(max(present) + 1)
    ]


def transaction_id(groups: Mapping[int, Sequence[bytes]], privacy_salt: bytes) -> bytes:
    """Id rule: the Merkle root over :func:`group_hashes`.

    Raises :class:`InvalidTransactionError` when no group is present or the input is malformed.
    """
    return merkle_root(group_hashes(groups, privacy_salt))


# -- partial Merkle trees (multi-proofs) -----------------------------------------------------


@dataclass(frozen=True)
class PartialMerkleTree:
    """Partial tree rule: proof that the leaves at ``included`` belong to a Merkle tree.

    ``leaf_count`` is the number of leaves before padding, ``included`` the revealed leaf
    indices (sorted, unique, at least one) and ``hashes`` the hashes of every maximal subtree
    holding no revealed leaf, in depth-first, left-before-right order. The revealed leaves
    themselves are not stored here.
    """

    leaf_count: int
    included: tuple[int, ...]
    hashes: tuple[bytes, ...]


def _subtree_root(leaves: Sequence[bytes], low: int, size: int) -> bytes:
    """Root of the subtree over padded positions ``low .. low + size - 1`` (root rule)."""
    if low >= len(leaves):
        return _PADDING[size.bit_length() - 1]
    level = list(leaves[low : low + size])
    level.extend([ZERO_HASH] * (size - len(level)))
    while len(level) > 1:
        level = [_combine(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def build_partial_tree(leaves: Sequence[bytes], included: Sequence[int]) -> PartialMerkleTree:
    """Build a partial tree (partial tree rule) proving ``leaves[i]`` for every ``i`` in included.

    ``included`` may be in any order but must not repeat an index. Raises
    :class:`InvalidTransactionError` for no leaves, a leaf that is not 32 bytes, no included
    index, or an index that repeats or is out of range.
    """
    if isinstance(leaves, bytes | bytearray | str):
        raise InvalidTransactionError("leaves must be a sequence of 32-byte hashes")
    leaf_list = list(leaves)
    if not leaf_list:
        raise InvalidTransactionError("a partial Merkle tree needs at least one leaf")
    if len(leaf_list) > MAX_LEAVES:
        raise InvalidTransactionError(f"a Merkle tree may have at most {MAX_LEAVES} leaves")
    for position, leaf in enumerate(leaf_list):
        if not isinstance(leaf, bytes) or len(leaf) != HASH_SIZE:
            raise InvalidTransactionError(f"leaf {position} is not {HASH_SIZE} bytes")
    chosen = list(included)
    if not chosen:
        raise InvalidTransactionError("a partial Merkle tree must include at least one leaf")
    for index in chosen:
        if not _is_index(index) or not 0 <= index < len(leaf_list):
            raise InvalidTransactionError(
                f"included index {index!r} is outside 0..{len(leaf_list) - 1}"
            )
    ordered = sorted(set(chosen))
    if len(ordered) != len(chosen):
        raise InvalidTransactionError("included indices must not repeat")

    proof: list[bytes] = []

    def visit(low: int, size: int, first: int, stop: int) -> None:
        # ordered[first:stop] are the included indices inside [low, low + size).
        if first == stop:
            proof.append(_subtree_root(leaf_list, low, size))
            return
        if size == 1:
            return
        half = size // 2
        split = bisect_left(ordered, low + half, first, stop)
        visit(low, half, first, split)
        visit(low + half, half, split, stop)

    visit(0, _padded_size(len(leaf_list)), 0, len(ordered))
    return PartialMerkleTree(len(leaf_list), tuple(ordered), tuple(proof))


def _check_tree_shape(tree: PartialMerkleTree, revealed: int) -> None:
    """Structural checks on a partial tree before hashing; raises :class:`VerificationError`."""
    if not isinstance(tree, PartialMerkleTree):
        raise VerificationError("the proof is not a PartialMerkleTree")
    if not _is_index(tree.leaf_count) or not 1 <= tree.leaf_count <= MAX_LEAVES:
        raise VerificationError(f"the proof's leaf count {tree.leaf_count!r} is out of range")
    if not isinstance(tree.included, tuple) or not tree.included:
        raise VerificationError("the proof must include at least one leaf")
    previous = -1
    for index in tree.included:
        if not _is_index(index):
            raise VerificationError(f"included index {index!r} is not an integer")
        if index <= previous:
            raise VerificationError("included indices must be sorted and unique")
        if index >= tree.leaf_count:
            raise VerificationError(f"included index {index} is outside 0..{tree.leaf_count - 1}")
        previous = index
    if revealed != len(tree.included):
        raise VerificationError(
            f"the proof includes {len(tree.included)} leaves but {revealed} were given"
        )
    if not isinstance(tree.hashes, tuple):
        raise VerificationError("the proof's hashes must be a tuple")
    for position, item in enumerate(tree.hashes):
        if not isinstance(item, bytes) or len(item) != HASH_SIZE:
            raise VerificationError(f"proof hash {position} is not {HASH_SIZE} bytes")


def partial_tree_root(tree: PartialMerkleTree, included_leaves: Sequence[bytes]) -> bytes:
    """Recompute the root a partial tree proves (partial tree rule and root rule).

    ``included_leaves`` are the leaves at ``tree.included``, in that order. Raises
    :class:`VerificationError` for a malformed proof: bad leaf count, indices that are out of
    range, unsorted or repeated, a leaf or hash that is not 32 bytes, too few or leftover hashes,
    or a padding-only subtree whose hash is not the padding hash.
    """
    if isinstance(included_leaves, bytes | bytearray | str):
        raise VerificationError("included leaves must be a sequence of 32-byte hashes")
    leaves = list(included_leaves)
    _check_tree_shape(tree, len(leaves))
    for position, leaf in enumerate(leaves):
        if not isinstance(leaf, bytes) or len(leaf) != HASH_SIZE:
            raise VerificationError(f"included leaf {position} is not {HASH_SIZE} bytes")
    included = tree.included
    hashes = tree.hashes
    leaf_count = tree.leaf_count
    cursor = 0

    def visit(low: int, size: int, first: int, stop: int) -> bytes:
        nonlocal cursor
        if first == stop:
            if cursor >= len(hashes):
                raise VerificationError("the proof has too few hashes")
            value = hashes[cursor]
            cursor += 1
            if low >= leaf_count and value != _PADDING[size.bit_length() - 1]:
                raise VerificationError(
                    f"proof hash {cursor - 1} covers only padding but is not the padding hash"
                )
            return value
        if size == 1:
            return leaves[first]
        half = size // 2
        split = bisect_left(included, low + half, first, stop)
        left = visit(low, half, first, split)
        right = visit(low + half, half, split, stop)
        return _combine(left, right)

    root = visit(0, _padded_size(leaf_count), 0, len(included))
    if cursor != len(hashes):
        raise VerificationError(f"the proof has {len(hashes) - cursor} leftover hash(es)")
    return root


# -- filtered transactions (tear-offs) -------------------------------------------------------


@dataclass(frozen=True)
class FilteredComponentGroup:
    """The revealed part of one component group (tear-off rule).

    ``components`` and ``nonces`` belong to the indices ``tree.included``, in that order;
    ``tree`` proves their leaves against the group's hash.
    """

    group: int
    components: tuple[bytes, ...]
    nonces: tuple[bytes, ...]
    tree: PartialMerkleTree


@dataclass(frozen=True)
class FilteredTransaction:
    """A tear-off of a transaction (tear-off rule): id, every group hash, revealed groups.

    Groups with nothing revealed are not listed; only their hash is present. Nothing here is
    trusted until :func:`verify_filtered` (or :func:`check_all_components_visible`) passes.
    """

    id: bytes
    group_hashes: tuple[bytes, ...]
    groups: tuple[FilteredComponentGroup, ...]

    def components(self, group: int) -> tuple[bytes, ...]:
        """The revealed components of ``group`` (empty when the group is not listed)."""
        for filtered in self.groups:
            if filtered.group == group:
                return filtered.components
        return ()


def filter_transaction(
    groups: Mapping[int, Sequence[bytes]],
    privacy_salt: bytes,
    reveal: Callable[[int, int, bytes], bool],
) -> FilteredTransaction:
    """Build a tear-off (tear-off rule) revealing the components ``reveal`` selects.

    ``reveal(group, index, component)`` is asked once per component, in ordinal then index
    order. Groups with nothing revealed are left out of ``groups``. Raises
    :class:`InvalidTransactionError` for the same malformed inputs as :func:`transaction_id`.
    """
    _check_salt(privacy_salt)
    present = _normalise_groups(groups)
    hashes: list[bytes] = []
    revealed: list[FilteredComponentGroup] = []
    for ordinal in range(max(present) + 1):
        components = present.get(ordinal, ())
        if not components:
            hashes.append(EMPTY_GROUP_HASH)
            continue
        nonces = [component_nonce(privacy_salt, ordinal, i) for i in range(len(components))]
        leaves = [component_leaf(n, c) for n, c in zip(nonces, components)]
        hashes.append(merkle_root(leaves))
        shown = [i for i, c in enumerate(components) if reveal(ordinal, i, c)]
        if shown:
            revealed.append(
                FilteredComponentGroup(
                    group=ordinal,
                    components=tuple(components[i] for i in shown),
                    nonces=tuple(nonces[i] for i in shown),
                    tree=build_partial_tree(leaves, shown),
                )
            )
    return FilteredTransaction(merkle_root(hashes), tuple(hashes), tuple(revealed))


def _verify_header(ftx: FilteredTransaction) -> None:
    """Id rule and group hash rule on a tear-off, plus the listing's structure."""
    if not isinstance(ftx, FilteredTransaction):
        raise VerificationError("expected a FilteredTransaction")
    if not isinstance(ftx.id, bytes) or len(ftx.id) != HASH_SIZE:
        raise VerificationError(f"the filtered transaction id is not {HASH_SIZE} bytes")
    if not isinstance(ftx.group_hashes, tuple) or not ftx.group_hashes:
        raise VerificationError("the filtered transaction has no group hashes")
    if len(ftx.group_hashes) > _GROUP_COUNT:
        raise VerificationError(
            f"the filtered transaction has {len(ftx.group_hashes)} group hashes; "
            f"at most {_GROUP_COUNT} groups exist"
        )
    for ordinal, item in enumerate(ftx.group_hashes):
        if not isinstance(item, bytes) or len(item) != HASH_SIZE:
            raise VerificationError(f"the hash of group {ordinal} is not {HASH_SIZE} bytes")
    if ftx.group_hashes[-1] == EMPTY_GROUP_HASH:
        raise VerificationError("the last group hash is the empty-group marker (not canonical)")
    if merkle_root(ftx.group_hashes) != ftx.id:
        raise VerificationError("the transaction id is not the Merkle root of the group hashes")
    if not isinstance(ftx.groups, tuple):
        raise VerificationError("the revealed groups must be a tuple")
    seen: set[int] = set()
    for filtered in ftx.groups:
        if not isinstance(filtered, FilteredComponentGroup):
            raise VerificationError("a revealed group is not a FilteredComponentGroup")
        ordinal = filtered.group
        if not _is_index(ordinal) or not 0 <= ordinal < len(ftx.group_hashes):
            raise VerificationError(
                f"revealed group ordinal {ordinal!r} is outside 0..{len(ftx.group_hashes) - 1}"
            )
        if ordinal in seen:
            raise VerificationError(f"group {ordinal} is listed more than once")
        seen.add(ordinal)


def _verified_leaves(ftx: FilteredTransaction, filtered: FilteredComponentGroup) -> list[bytes]:
    """Tear-off rule for one listed group; returns its revealed leaves once proven."""
    ordinal = filtered.group
    expected = ftx.group_hashes[ordinal]
    if expected == EMPTY_GROUP_HASH:
        raise VerificationError(f"group {ordinal} is listed but its hash marks it empty")
    if not isinstance(filtered.components, tuple) or not isinstance(filtered.nonces, tuple):
        raise VerificationError(f"group {ordinal}: components and nonces must be tuples")
    if len(filtered.components) != len(filtered.nonces):
        raise VerificationError(
            f"group {ordinal}: {len(filtered.components)} components but "
            f"{len(filtered.nonces)} nonces"
        )
    leaves: list[bytes] = []
    for position, (nonce, component) in enumerate(zip(filtered.nonces, filtered.components)):
        if not isinstance(nonce, bytes) or len(nonce) != HASH_SIZE:
            raise VerificationError(f"group {ordinal}: nonce {position} is not {HASH_SIZE} bytes")
        if not isinstance(component, bytes):
            raise VerificationError(f"group {ordinal}: component {position} is not bytes")
        leaves.append(component_leaf(nonce, component))
    try:
        root = partial_tree_root(filtered.tree, leaves)
    except VerificationError as exc:
        raise VerificationError(f"group {ordinal}: malformed proof: {exc}") from exc
    if root != expected:
        raise VerificationError(
            f"group {ordinal}: the revealed components do not match the group hash"
        )
    return leaves


def verify_filtered(ftx: FilteredTransaction) -> None:
    """Check a tear-off (id rule, group hash rule, tear-off rule, partial tree rule).

    Verifies that the id is the root of the group hashes, that no group is listed twice or out
    of range, and that each listed group's components and nonces rebuild, through its partial
    tree, that group's hash. Raises :class:`VerificationError` naming what failed.
    """
    _verify_header(ftx)
    for filtered in ftx.groups:
        _verified_leaves(ftx, filtered)


def check_all_components_visible(ftx: FilteredTransaction, group: int) -> None:
    """Completeness rule: raise :class:`VerificationError` unless all of ``group`` is revealed.

    Safe to call alone: it checks the tear-off's id and the group's proof first. An empty or
    absent group passes only if its hash is the ``0xFF`` marker (or lies beyond the listed
    hashes) and it is not listed. Otherwise the revealed indices must be exactly
    ``0 .. leaf_count - 1`` and the root rebuilt from the revealed leaves with canonical padding
    must equal the group hash, so no component can be hidden, not even behind padding. Raises
    :class:`InvalidTransactionError` if ``group`` is not a component group ordinal.
    """
    if not _is_index(group) or not 0 <= group < _GROUP_COUNT:
        raise InvalidTransactionError(f"unknown component group ordinal {group!r}")
    _verify_header(ftx)
    listed = [filtered for filtered in ftx.groups if filtered.group == group]
    if group >= len(ftx.group_hashes) or ftx.group_hashes[group] == EMPTY_GROUP_HASH:
        if listed:
            raise VerificationError(f"group {group} is empty but listed as revealed")
        return
    if not listed:
        raise VerificationError(f"group {group} is not revealed")
    filtered = listed[0]
    leaves = _verified_leaves(ftx, filtered)
    tree = filtered.tree
    if tree.included != tuple(range(tree.leaf_count)):
        hidden = tree.leaf_count - len(tree.included)
        raise VerificationError(f"group {group}: {hidden} of {tree.leaf_count} components hidden")
    if merkle_root(leaves) != ftx.group_hashes[group]:
        raise VerificationError(f"group {group}: the revealed components are not the whole group")
