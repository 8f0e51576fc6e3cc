"""Tests for Corda 4's component-group Merkle tree, partial trees and tear-offs.

Known answers are recomputed here straight from :mod:`hashlib`, independently of the module.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from collections.abc import Callable, Iterator, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kakehashi.errors import InvalidTransactionError, VerificationError
from kakehashi.ledgers.corda.merkle import (
    EMPTY_GROUP_HASH,
    ComponentGroup,
    FilteredComponentGroup,
    FilteredTransaction,
    PartialMerkleTree,
    build_partial_tree,
    check_all_components_visible,
    component_leaf,
    component_nonce,
    filter_transaction,
    group_hashes,
    merkle_root,
    partial_tree_root,
    transaction_id,
    verify_filtered,
)

SALT = bytes(range(1, 33))
ZERO = bytes(32)
FF = b"\xff" * 32


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def sha2(data: bytes) -> bytes:
    return sha(sha(data))


def h(label: str) -> bytes:
    """A distinct 32-byte test hash."""
    return sha(label.encode())


def hand_nonce(salt: bytes, group: int, index: int) -> bytes:
    return sha2(salt + group.to_bytes(4, "big") + index.to_bytes(4, "big"))


def hand_leaf(salt: bytes, group: int, index: int, component: bytes) -> bytes:
    return sha2(hand_nonce(salt, group, index) + component)


def flip(data: bytes, position: int) -> bytes:
    return data[:position] + bytes([data[position] ^ 0x01]) + data[position + 1 :]


def flips(data: bytes) -> Iterator[bytes]:
    for position in range(len(data)):
        yield flip(data, position)


# -- component groups, nonces, leaves ---------------------------------------------------------


def test_component_group_ordinals() -> None:
    assert [(g.name, int(g)) for g in ComponentGroup] == [
        ("INPUTS", 0),
        ("OUTPUTS", 1),
        ("COMMANDS", 2),
        ("ATTACHMENTS", 3),
        ("NOTARY", 4),
        ("TIMEWINDOW", 5),
        ("SIGNERS", 6),
        ("REFERENCES", 7),
        ("PARAMETERS", 8),
    ]


def test_nonce_and_leaf_known_answers() -> None:
    expected_nonce = sha(sha(SALT + b"\x00\x00\x00\x07" + b"\x00\x00\x01\x02"))
    assert component_nonce(SALT, 7, 258) == expected_nonce
    assert component_nonce(SALT, ComponentGroup.REFERENCES, 258) == expected_nonce
    assert component_leaf(expected_nonce, b"hello") == sha(sha(expected_nonce + b"hello"))
    assert component_leaf(expected_nonce, b"") == sha(sha(expected_nonce))


@pytest.mark.parametrize(
    "salt",
    [b"", bytes(31), b"\x01" * 31, bytes(32), bytes(64)],
    ids=["empty", "short-zero", "short", "zero-32", "zero-64"],
)
def test_bad_salts_refused(salt: bytes) -> None:
    with pytest.raises(InvalidTransactionError, match="salt"):
        component_nonce(salt, 0, 0)
    with pytest.raises(InvalidTransactionError, match="salt"):
        transaction_id({0: [b"x"]}, salt)
    with pytest.raises(InvalidTransactionError, match="salt"):
        filter_transaction({0: [b"x"]}, salt, lambda g, i, c: True)


def test_good_salts_accepted() -> None:
    for salt in (bytes(31) + b"\x01", b"\x01" + bytes(31), bytes(range(64))):
        assert transaction_id({0: [b"x"]}, salt) == hand_leaf(salt, 0, 0, b"x")


def test_salt_must_be_bytes() -> None:
    with pytest.raises(InvalidTransactionError):
        component_nonce("x" * 32, 0, 0)  # type: ignore[arg-type]


@pytest.mark.parametrize(("group", "index"), [(-1, 0), (0, -1), (2**31, 0), (0, 2**31)])
def test_nonce_indices_are_int32(group: int, index: int) -> None:
    with pytest.raises(InvalidTransactionError):
        component_nonce(SALT, group, index)


def test_leaf_needs_32_byte_nonce() -> None:
    with pytest.raises(InvalidTransactionError):
        component_leaf(bytes(31), b"x")


# -- merkle_root ------------------------------------------------------------------------------


def test_merkle_root_one_leaf_is_itself() -> None:
    assert merkle_root([h("a")]) == h("a")


def test_merkle_root_two_leaves() -> None:
    assert merkle_root([h("a"), h("b")]) == sha(h("a") + h("b"))


def test_merkle_root_three_leaves_pads_with_zero_hash() -> None:
    a, b, c = h("a"), h("b"), h("c")
    assert merkle_root([a, b, c]) == sha(sha(a + b) + sha(c + ZERO))


def test_merkle_root_five_leaves_pads_to_eight() -> None:
    a, b, c, d, e = (h(x) for x in "abcde")
    pad_pair = sha(ZERO + ZERO)
    expected = sha(sha(sha(a + b) + sha(c + d)) + sha(sha(e + ZERO) + pad_pair))
    assert merkle_root([a, b, c, d, e]) == expected


def test_merkle_root_refuses_empty_and_bad_sizes() -> None:
    with pytest.raises(InvalidTransactionError):
        merkle_root([])
    with pytest.raises(InvalidTransactionError):
        merkle_root([h("a"), b"short"])
    with pytest.raises(InvalidTransactionError):
        merkle_root(h("a"))  # type: ignore[arg-type]


# -- transaction id ---------------------------------------------------------------------------


def test_transaction_id_known_answer() -> None:
    groups = {1: [b"out0"], 2: [b"cmd0", b"cmd1"]}
    g1 = hand_leaf(SALT, 1, 0, b"out0")
    g2 = sha(hand_leaf(SALT, 2, 0, b"cmd0") + hand_leaf(SALT, 2, 1, b"cmd1"))
    assert group_hashes(groups, SALT) == [FF, g1, g2]
    assert transaction_id(groups, SALT) == sha(sha(FF + g1) + sha(g2 + ZERO))


def test_transaction_id_with_absent_ordinals_in_the_middle() -> None:
    groups: dict[int, Sequence[bytes]] = {
        ComponentGroup.INPUTS: [b"in"],
        ComponentGroup.ATTACHMENTS: [b"att0", b"att1", b"x"],
    }
    g0 = hand_leaf(SALT, 0, 0, b"in")
    l0, l1, l2 = (hand_leaf(SALT, 3, i, c) for i, c in enumerate([b"att0", b"att1", b"x"]))
    g3 = sha(sha(l0 + l1) + sha(l2 + ZERO))
    assert group_hashes(groups, SALT) == [g0, FF, FF, g3]
    assert transaction_id(groups, SALT) == sha(sha(g0 + FF) + sha(FF + g3))
    # An explicitly empty group is the same as an absent one.
    with_empty: dict[int, Sequence[bytes]] = {**groups, 1: [], 8: ()}
    assert transaction_id(with_empty, SALT) == transaction_id(groups, SALT)


def test_transaction_id_single_group_single_component_is_the_leaf() -> None:
    assert transaction_id({0: [b"only"]}, SALT) == hand_leaf(SALT, 0, 0, b"only")


def test_transaction_id_up_to_highest_group_nine_hashes() -> None:
    groups = {0: [b"a"], 8: [b"p"]}
    hashes = [hand_leaf(SALT, 0, 0, b"a"), *([FF] * 7), hand_leaf(SALT, 8, 0, b"p")]
    assert group_hashes(groups, SALT) == hashes
    level = hashes + [ZERO] * 7
    while len(level) > 1:
        level = [sha(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    assert transaction_id(groups, SALT) == level[0]


def test_transaction_id_depends_on_salt_order_and_group() -> None:
    base = transaction_id({1: [b"a", b"b"]}, SALT)
    assert transaction_id({1: [b"b", b"a"]}, SALT) != base
    assert transaction_id({2: [b"a", b"b"]}, SALT) != base
    assert transaction_id({1: [b"a", b"b"]}, b"\x02" * 32) != base


@pytest.mark.parametrize(
    "groups",
    [{}, {0: []}, {0: (), 5: []}],
    ids=["none", "one-empty", "all-empty"],
)
def test_transaction_without_groups_refused(groups: dict[int, Sequence[bytes]]) -> None:
    with pytest.raises(InvalidTransactionError, match="at least one"):
        transaction_id(groups, SALT)
    with pytest.raises(InvalidTransactionError):
        group_hashes(groups, SALT)
    with pytest.raises(InvalidTransactionError):
        filter_transaction(groups, SALT, lambda g, i, c: True)


@pytest.mark.parametrize(
    "groups",
    [{9: [b"x"]}, {-1: [b"x"]}, {0: b"raw"}, {0: [b"ok", "str"]}, {"0": [b"x"]}],
    ids=["ordinal-9", "negative", "bytes-not-list", "str-component", "str-key"],
)
def test_malformed_groups_refused(groups: dict[int, Sequence[bytes]]) -> None:
    with pytest.raises(InvalidTransactionError):
        transaction_id(groups, SALT)


# -- partial Merkle trees ---------------------------------------------------------------------


def oracle_proof(leaves: list[bytes], included: set[int]) -> list[bytes]:
    """Expected proof hashes, built from a full list of tree levels (independent oracle)."""
    size = 1
    while size < len(leaves):
        size *= 2
    levels = [leaves + [ZERO] * (size - len(leaves))]
    while len(levels[-1]) > 1:
        prev = levels[-1]
        levels.append([sha(prev[i] + prev[i + 1]) for i in range(0, len(prev), 2)])
    out: list[bytes] = []

    def walk(height: int, position: int) -> None:
        width = 2**height
        covered = range(position * width, (position + 1) * width)
        if not included.intersection(covered):
            out.append(levels[height][position])
        elif height > 0:
            walk(height - 1, 2 * position)
            walk(height - 1, 2 * position + 1)

    walk(len(levels) - 1, 0)
    return out


def leaves_of(count: int) -> list[bytes]:
    return [h(f"leaf{i}") for i in range(count)]


@st.composite
def trees(draw: st.DrawFn) -> tuple[list[bytes], list[int]]:
    count = draw(st.integers(min_value=1, max_value=40))
    chosen = draw(st.sets(st.integers(min_value=0, max_value=count - 1), min_size=1))
    return leaves_of(count), sorted(chosen)


@settings(max_examples=300, deadline=None)
@given(trees())
def test_partial_tree_round_trip(case: tuple[list[bytes], list[int]]) -> None:
    leaves, chosen = case
    tree = build_partial_tree(leaves, chosen)
    assert tree.leaf_count == len(leaves)
    assert tree.included == tuple(chosen)
    assert list(tree.hashes) == oracle_proof(leaves, set(chosen))
    revealed = [leaves[i] for i in chosen]
    assert partial_tree_root(tree, revealed) == merkle_root(leaves)


@settings(max_examples=100, deadline=None)
@given(trees(), st.data())
def test_partial_tree_any_flip_changes_root_or_fails(
    case: tuple[list[bytes], list[int]], data: st.DataObject
) -> None:
    leaves, chosen = case
    root = merkle_root(leaves)
    tree = build_partial_tree(leaves, chosen)
    revealed = [leaves[i] for i in chosen]
    which = data.draw(st.integers(0, len(revealed) + len(tree.hashes) - 1))
    position = data.draw(st.integers(0, 31))
    if which < len(revealed):
        revealed[which] = flip(revealed[which], position)
    else:
        hashes = list(tree.hashes)
        k = which - len(revealed)
        hashes[k] = flip(hashes[k], position)
        tree = dataclasses.replace(tree, hashes=tuple(hashes))
    with contextlib.suppress(VerificationError):
        assert partial_tree_root(tree, revealed) != root


def test_partial_tree_single_leaf() -> None:
    tree = build_partial_tree([h("a")], [0])
    assert tree == PartialMerkleTree(1, (0,), ())
    assert partial_tree_root(tree, [h("a")]) == h("a") == merkle_root([h("a")])


def test_partial_tree_known_shape_three_leaves() -> None:
    a, b, c = h("a"), h("b"), h("c")
    tree = build_partial_tree([a, b, c], [1])
    # Depth-first, left first: leaf a, then the right subtree (c, padding).
    assert tree.hashes == (a, sha(c + ZERO))
    tree = build_partial_tree([a, b, c], [0, 2])
    assert tree.hashes == (b, ZERO)


def test_partial_tree_accepts_unsorted_input_and_sorts() -> None:
    leaves = leaves_of(6)
    assert build_partial_tree(leaves, [4, 1]) == build_partial_tree(leaves, [1, 4])


@pytest.mark.parametrize(
    ("leaves", "included"),
    [
        ([], [0]),
        (leaves_of(3), []),
        (leaves_of(3), [3]),
        (leaves_of(3), [-1]),
        (leaves_of(3), [1, 1]),
        ([h("a"), b"short"], [0]),
    ],
    ids=["no-leaves", "none-included", "past-end", "negative", "duplicate", "short-leaf"],
)
def test_build_partial_tree_refuses_bad_input(leaves: list[bytes], included: list[int]) -> None:
    with pytest.raises(InvalidTransactionError):
        build_partial_tree(leaves, included)


def good_proof() -> tuple[PartialMerkleTree, list[bytes]]:
    leaves = leaves_of(11)
    chosen = [2, 3, 9]
    return build_partial_tree(leaves, chosen), [leaves[i] for i in chosen]


def bad_proofs() -> Iterator[tuple[str, PartialMerkleTree, list[bytes]]]:
    tree, revealed = good_proof()
    r = dataclasses.replace
    yield "missing-hash", r(tree, hashes=tree.hashes[:-1]), revealed
    yield "missing-first-hash", r(tree, hashes=tree.hashes[1:]), revealed
    yield "extra-hash", r(tree, hashes=(*tree.hashes, h("x"))), revealed
    yield "no-hashes", r(tree, hashes=()), revealed
    yield "short-hash", r(tree, hashes=(tree.hashes[0][:31], *tree.hashes[1:])), revealed
    yield "long-hash", r(tree, hashes=(tree.hashes[0] + b"\x00", *tree.hashes[1:])), revealed
    yield "str-hash", r(tree, hashes=("x" * 32, *tree.hashes[1:])), revealed
    yield "unsorted", r(tree, included=(3, 2, 9)), [revealed[1], revealed[0], revealed[2]]
    yield "duplicate", r(tree, included=(2, 2, 9)), revealed
    yield "out-of-range", r(tree, included=(2, 3, 11)), revealed
    yield "padding-index", r(tree, included=(2, 3, 15)), revealed
    yield "negative", r(tree, included=(-1, 3, 9)), revealed
    yield "bool-index", r(tree, included=(True, 3, 9)), revealed
    yield "other-indices", r(tree, included=(2, 3, 8)), revealed
    yield "shifted-indices", r(tree, included=(1, 2, 9)), revealed
    yield "empty-included", r(tree, included=()), []
    yield "too-few-leaves", tree, revealed[:2]
    yield "too-many-leaves", tree, [*revealed, h("x")]
    yield "short-leaf", tree, [revealed[0][:31], *revealed[1:]]
    yield "zero-leaf-count", r(tree, leaf_count=0), revealed
    yield "smaller-leaf-count", r(tree, leaf_count=10), revealed
    yield "bigger-leaf-count", r(tree, leaf_count=17), revealed
    yield "huge-leaf-count", r(tree, leaf_count=2**40), revealed
    yield "included-list", r(tree, included=[2, 3, 9]), revealed


# Well-formed but wrong proofs: they may parse, but must not prove the real root.
WRONG_BUT_WELL_FORMED = {"other-indices", "shifted-indices", "bigger-leaf-count"}


@pytest.mark.parametrize(
    ("name", "tree", "revealed"),
    [pytest.param(name, t, v, id=name) for name, t, v in bad_proofs()],
)
def test_malformed_partial_tree_refused(
    name: str, tree: PartialMerkleTree, revealed: list[bytes]
) -> None:
    root = merkle_root(leaves_of(11))
    if name not in WRONG_BUT_WELL_FORMED:
        with pytest.raises(VerificationError):
            partial_tree_root(tree, revealed)
        return
    with contextlib.suppress(VerificationError):
        assert partial_tree_root(tree, revealed) != root


def test_good_proof_proves_root() -> None:
    tree, revealed = good_proof()
    assert partial_tree_root(tree, revealed) == merkle_root(leaves_of(11))


def test_padding_subtree_hash_must_be_canonical() -> None:
    """Claiming fewer leaves cannot pass off a real leaf as padding."""
    leaves = leaves_of(4)
    real_root = merkle_root(leaves)
    forged = PartialMerkleTree(3, (0, 1, 2), (leaves[3],))
    with pytest.raises(VerificationError, match="padding"):
        partial_tree_root(forged, leaves[:3])
    honest = build_partial_tree(leaves[:3], [0, 1, 2])
    assert honest.hashes == (ZERO,)
    assert partial_tree_root(honest, leaves[:3]) != real_root
    bad_pad = dataclasses.replace(honest, hashes=(h("not-zero"),))
    with pytest.raises(VerificationError, match="padding"):
        partial_tree_root(bad_pad, leaves[:3])


# -- filtered transactions --------------------------------------------------------------------

GROUPS: dict[int, tuple[bytes, ...]] = {
    ComponentGroup.INPUTS: (b"input-0", b"input-1", b"input-2"),
    ComponentGroup.OUTPUTS: (b"output-0", b"output-1", b"output-2", b"output-3", b"output-4"),
    ComponentGroup.COMMANDS: (b"command-0",),
    ComponentGroup.NOTARY: (b"notary",),
    ComponentGroup.SIGNERS: (b"signers-0",),
    ComponentGroup.PARAMETERS: (b"params",),
}


def partial_reveal(group: int, index: int, component: bytes) -> bool:
    return group in (ComponentGroup.INPUTS, ComponentGroup.NOTARY) or (
        group == ComponentGroup.OUTPUTS and index in (1, 4)
    )


def make_ftx() -> FilteredTransaction:
    return filter_transaction(GROUPS, SALT, partial_reveal)


def test_filter_transaction_structure() -> None:
    ftx = make_ftx()
    assert ftx.id == transaction_id(GROUPS, SALT)
    assert list(ftx.group_hashes) == group_hashes(GROUPS, SALT)
    assert [g.group for g in ftx.groups] == [0, 1, 4]
    assert all(type(g.group) is int for g in ftx.groups)
    outputs = ftx.groups[1]
    assert isinstance(outputs, FilteredComponentGroup)
    assert outputs.tree.included == (1, 4)
    assert outputs.tree.leaf_count == 5
    assert outputs.components == (b"output-1", b"output-4")
    assert outputs.nonces == (hand_nonce(SALT, 1, 1), hand_nonce(SALT, 1, 4))
    assert ftx.components(ComponentGroup.INPUTS) == GROUPS[ComponentGroup.INPUTS]
    assert ftx.components(ComponentGroup.COMMANDS) == ()
    assert ftx.components(ComponentGroup.TIMEWINDOW) == ()
    verify_filtered(ftx)


def test_reveal_is_asked_once_per_component_in_order() -> None:
    calls: list[tuple[int, int, bytes]] = []

    def record(group: int, index: int, component: bytes) -> bool:
        calls.append((group, index, component))
        return False

    ftx = filter_transaction(GROUPS, SALT, record)
    assert calls == [(g, i, c) for g in sorted(GROUPS) for i, c in enumerate(GROUPS[g])]
    assert ftx.groups == ()
    verify_filtered(ftx)


def test_empty_sequences_are_not_listed() -> None:
    ftx = filter_transaction({0: [b"a"], 2: []}, SALT, lambda g, i, c: True)
    assert ftx.group_hashes == (hand_leaf(SALT, 0, 0, b"a"),)
    assert [g.group for g in ftx.groups] == [0]
    verify_filtered(ftx)


def replace_group(
    ftx: FilteredTransaction, position: int, **changes: object
) -> FilteredTransaction:
    groups = list(ftx.groups)
    groups[position] = dataclasses.replace(groups[position], **changes)  # type: ignore[arg-type]
    return dataclasses.replace(ftx, groups=tuple(groups))


def replace_tree(ftx: FilteredTransaction, position: int, **changes: object) -> FilteredTransaction:
    tree = dataclasses.replace(ftx.groups[position].tree, **changes)  # type: ignore[arg-type]
    return replace_group(ftx, position, tree=tree)


def every_single_byte_flip(ftx: FilteredTransaction) -> Iterator[tuple[str, FilteredTransaction]]:
    for name, bad_id in ((f"id byte {p}", v) for p, v in enumerate(flips(ftx.id))):
        yield name, dataclasses.replace(ftx, id=bad_id)
    for g, value in enumerate(ftx.group_hashes):
        for p, bad in enumerate(flips(value)):
            hashes = list(ftx.group_hashes)
            hashes[g] = bad
            yield f"group hash {g} byte {p}", dataclasses.replace(ftx, group_hashes=tuple(hashes))
    for k, filtered in enumerate(ftx.groups):
        for field in ("components", "nonces"):
            items: tuple[bytes, ...] = getattr(filtered, field)
            for j, item in enumerate(items):
                for p, bad in enumerate(flips(item)):
                    changed = (*items[:j], bad, *items[j + 1 :])
                    name = f"group {filtered.group} {field}[{j}] byte {p}"
                    yield name, replace_group(ftx, k, **{field: changed})
        for j, item in enumerate(filtered.tree.hashes):
            for p, bad in enumerate(flips(item)):
                changed = (*filtered.tree.hashes[:j], bad, *filtered.tree.hashes[j + 1 :])
                name = f"group {filtered.group} proof hash {j} byte {p}"
                yield name, replace_tree(ftx, k, hashes=changed)


def test_every_single_byte_flip_is_detected() -> None:
    ftx = make_ftx()
    verify_filtered(ftx)
    count = 0
    for name, bad in every_single_byte_flip(ftx):
        with pytest.raises(VerificationError):
            verify_filtered(bad)
            pytest.fail(f"flip not detected: {name}")
        count += 1
    expected = 32 * (1 + len(ftx.group_hashes))
    for filtered in ftx.groups:
        expected += sum(map(len, filtered.components)) + 32 * len(filtered.nonces)
        expected += 32 * len(filtered.tree.hashes)
    assert count == expected


def test_flip_in_checked_group_is_detected_by_completeness_check() -> None:
    ftx = make_ftx()
    for name, bad in every_single_byte_flip(ftx):
        if name.startswith(("group 0 ", "id ", "group hash ")):
            with pytest.raises(VerificationError):
                check_all_components_visible(bad, ComponentGroup.INPUTS)
                pytest.fail(f"flip not detected: {name}")


def structural_tamperings() -> Iterator[tuple[str, FilteredTransaction]]:
    ftx = make_ftx()
    outputs = ftx.groups[1]  # group 1, included (1, 4), five leaves
    r = dataclasses.replace
    yield "empty group hashes", r(ftx, group_hashes=())
    yield "short group hash", r(ftx, group_hashes=(ftx.group_hashes[0][:31], *ftx.group_hashes[1:]))
    yield "extra group hash", r(ftx, group_hashes=(*ftx.group_hashes, h("x")))
    yield "trailing empty marker", r(ftx, group_hashes=(*ftx.group_hashes, FF))
    yield "ten group hashes", r(ftx, group_hashes=(*ftx.group_hashes, h("x"), h("y"), h("z")))
    yield "short id", r(ftx, id=ftx.id[:31])
    yield "duplicate group", r(ftx, groups=(*ftx.groups, ftx.groups[0]))
    yield "group out of range", replace_group(ftx, 0, group=len(ftx.group_hashes))
    yield "negative group", replace_group(ftx, 0, group=-1)
    yield "group moved", replace_group(ftx, 0, group=ComponentGroup.COMMANDS)
    yield "listed empty group", replace_group(ftx, 0, group=ComponentGroup.ATTACHMENTS)
    yield "missing nonce", replace_group(ftx, 1, nonces=outputs.nonces[:1])
    yield "missing component", replace_group(ftx, 1, components=outputs.components[:1])
    yield "short nonce", replace_group(ftx, 1, nonces=(outputs.nonces[0][:31], outputs.nonces[1]))
    yield "long nonce", replace_group(ftx, 1, nonces=(outputs.nonces[0] + b"\0", outputs.nonces[1]))
    yield (
        "component appended",
        replace_group(ftx, 1, components=(outputs.components[0] + b"\0", outputs.components[1])),
    )
    yield (
        "swapped components",
        replace_group(ftx, 1, components=outputs.components[::-1], nonces=outputs.nonces[::-1]),
    )
    yield (
        "dropped revealed",
        replace_group(
            ftx,
            1,
            components=outputs.components[:1],
            nonces=outputs.nonces[:1],
            tree=r(outputs.tree, included=(1,)),
        ),
    )
    yield "wrong indices", replace_tree(ftx, 1, included=(0, 4))
    yield "unsorted indices", replace_tree(ftx, 1, included=(4, 1))
    yield "duplicate indices", replace_tree(ftx, 1, included=(1, 1))
    yield "index out of range", replace_tree(ftx, 1, included=(1, 5))
    yield "index in padding", replace_tree(ftx, 1, included=(1, 7))
    yield "leaf count below an index", replace_tree(ftx, 1, leaf_count=4)
    yield "leaf count past a power of two", replace_tree(ftx, 1, leaf_count=9)
    yield "leaf count three", replace_tree(ftx, 1, leaf_count=3)
    yield "missing proof hash", replace_tree(ftx, 1, hashes=outputs.tree.hashes[:-1])
    yield "extra proof hash", replace_tree(ftx, 1, hashes=(*outputs.tree.hashes, h("x")))
    yield "reordered proof", replace_tree(ftx, 1, hashes=outputs.tree.hashes[::-1])
    yield "proof from other group", replace_group(ftx, 1, tree=ftx.groups[0].tree)


@pytest.mark.parametrize("bad", [pytest.param(t, id=name) for name, t in structural_tamperings()])
def test_structural_tampering_is_detected(bad: FilteredTransaction) -> None:
    with pytest.raises(VerificationError):
        verify_filtered(bad)


def test_trailing_empty_group_hash_refused_even_with_matching_id() -> None:
    ftx = filter_transaction({0: [b"a"], 2: [b"b"]}, SALT, lambda g, i, c: True)
    verify_filtered(ftx)
    hashes = (*ftx.group_hashes, FF)
    bad = dataclasses.replace(ftx, group_hashes=hashes, id=merkle_root(hashes))
    with pytest.raises(VerificationError, match="not canonical"):
        verify_filtered(bad)


def test_listed_group_with_empty_hash_refused() -> None:
    ftx = make_ftx()
    bad = replace_group(ftx, 0, group=ComponentGroup.ATTACHMENTS)
    with pytest.raises(VerificationError, match="group 3 is listed but its hash marks it empty"):
        verify_filtered(bad)


def test_error_names_the_failing_group() -> None:
    ftx = make_ftx()
    outputs = ftx.groups[1]
    bad = replace_group(ftx, 1, components=(b"forged", outputs.components[1]))
    with pytest.raises(VerificationError, match="group 1"):
        verify_filtered(bad)


# -- completeness ---------------------------------------------------------------------------


def test_all_components_visible_when_all_revealed() -> None:
    ftx = filter_transaction(GROUPS, SALT, lambda g, i, c: True)
    verify_filtered(ftx)
    for group in ComponentGroup:
        check_all_components_visible(ftx, group)
        assert ftx.components(group) == GROUPS.get(group, ())


def reveal_all_but(group: int, index: int) -> Callable[[int, int, bytes], bool]:
    def reveal(g: int, i: int, c: bytes) -> bool:
        return (g, i) != (group, index)

    return reveal


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 6, 7, 8, 9])
def test_hiding_any_one_component_is_detected(count: int) -> None:
    components = [f"c{i}".encode() for i in range(count)]
    groups: dict[int, Sequence[bytes]] = {
        ComponentGroup.OUTPUTS: components,
        ComponentGroup.COMMANDS: [b"cmd"],
    }
    for hidden in range(count):
        ftx = filter_transaction(groups, SALT, reveal_all_but(ComponentGroup.OUTPUTS, hidden))
        verify_filtered(ftx)
        with pytest.raises(VerificationError, match="group 1"):
            check_all_components_visible(ftx, ComponentGroup.OUTPUTS)
        check_all_components_visible(ftx, ComponentGroup.COMMANDS)


def test_hiding_the_last_component_cannot_be_passed_off_as_padding() -> None:
    """Group of 4: a proof claiming 3 leaves, all revealed, with leaf 3 as 'padding'."""
    components = [b"a", b"b", b"c", b"d"]
    groups: dict[int, Sequence[bytes]] = {ComponentGroup.OUTPUTS: components}
    honest = filter_transaction(groups, SALT, lambda g, i, c: i < 3)
    hidden_leaf = hand_leaf(SALT, 1, 3, b"d")
    assert honest.groups[0].tree == PartialMerkleTree(4, (0, 1, 2), (hidden_leaf,))
    # Same hashes, so the same root, if a padding-only subtree's hash were taken on trust; and
    # the revealed indices would then be exactly 0..leaf_count-1.
    forged = replace_tree(honest, 0, leaf_count=3)
    with pytest.raises(VerificationError):
        verify_filtered(forged)
    with pytest.raises(VerificationError):
        check_all_components_visible(forged, ComponentGroup.OUTPUTS)
    with pytest.raises(VerificationError):
        check_all_components_visible(honest, ComponentGroup.OUTPUTS)


def test_hiding_last_component_of_five() -> None:
    components = [b"0", b"1", b"2", b"3", b"4"]
    ftx = filter_transaction({0: components}, SALT, lambda g, i, c: i < 4)
    verify_filtered(ftx)
    assert ftx.groups[0].tree.leaf_count == 5
    with pytest.raises(VerificationError, match="hidden"):
        check_all_components_visible(ftx, 0)
    # Lying about the leaf count fails too (the proof no longer matches the group hash).
    lie = replace_tree(ftx, 0, leaf_count=4, hashes=())
    with pytest.raises(VerificationError):
        check_all_components_visible(lie, 0)


def test_leaf_count_is_proven_only_up_to_padding() -> None:
    """A hidden tail can be claimed one leaf longer (5 vs 6 of 8 slots): the root is the same.

    Nothing may rely on ``leaf_count`` unless every leaf is revealed, which is exactly what
    :func:`check_all_components_visible` demands (and there padding hashes are canonical).
    """
    ftx = make_ftx()
    claimed = replace_tree(ftx, 1, leaf_count=6)
    verify_filtered(claimed)
    with pytest.raises(VerificationError):
        check_all_components_visible(claimed, ComponentGroup.OUTPUTS)


def test_completeness_for_absent_and_empty_groups() -> None:
    ftx = make_ftx()
    # ATTACHMENTS (3) and TIMEWINDOW (5) are absent below the highest ordinal: 0xFF hash.
    assert ftx.group_hashes[ComponentGroup.ATTACHMENTS] == EMPTY_GROUP_HASH
    check_all_components_visible(ftx, ComponentGroup.ATTACHMENTS)
    check_all_components_visible(ftx, ComponentGroup.TIMEWINDOW)
    # REFERENCES (7) is absent below PARAMETERS (8), so its hash is 0xFF too.
    check_all_components_visible(ftx, ComponentGroup.REFERENCES)
    short = filter_transaction({0: [b"a"], 1: [b"b"]}, SALT, lambda g, i, c: True)
    assert len(short.group_hashes) == 2
    for group in range(2, 9):
        check_all_components_visible(short, group)  # beyond the listed hashes: absent


def test_completeness_fails_for_present_but_unrevealed_group() -> None:
    ftx = make_ftx()
    with pytest.raises(VerificationError, match="not revealed"):
        check_all_components_visible(ftx, ComponentGroup.COMMANDS)
    with pytest.raises(VerificationError, match="hidden"):
        check_all_components_visible(ftx, ComponentGroup.OUTPUTS)
    check_all_components_visible(ftx, ComponentGroup.INPUTS)
    check_all_components_visible(ftx, ComponentGroup.NOTARY)


def test_completeness_fails_when_empty_group_is_listed() -> None:
    ftx = make_ftx()
    bad = replace_group(ftx, 2, group=ComponentGroup.ATTACHMENTS)
    with pytest.raises(VerificationError):
        check_all_components_visible(bad, ComponentGroup.ATTACHMENTS)


def test_completeness_check_is_safe_alone() -> None:
    ftx = filter_transaction(GROUPS, SALT, lambda g, i, c: True)
    bad_id = dataclasses.replace(ftx, id=flip(ftx.id, 0))
    with pytest.raises(VerificationError):
        check_all_components_visible(bad_id, ComponentGroup.TIMEWINDOW)  # even for absent groups
    forged = replace_group(ftx, 0, components=(b"x", *ftx.groups[0].components[1:]))
    with pytest.raises(VerificationError):
        check_all_components_visible(forged, ComponentGroup.INPUTS)


@pytest.mark.parametrize("group", [-1, 9, 100])
def test_completeness_unknown_ordinal(group: int) -> None:
    with pytest.raises(InvalidTransactionError):
        check_all_components_visible(make_ftx(), group)


def test_not_a_filtered_transaction() -> None:
    with pytest.raises(VerificationError):
        verify_filtered("nope")  # type: ignore[arg-type]
    ftx = make_ftx()
    with pytest.raises(VerificationError):
        verify_filtered(dataclasses.replace(ftx, groups=(ftx.groups[0].tree,)))  # type: ignore[arg-type]
    with pytest.raises(VerificationError):
        verify_filtered(replace_group(ftx, 0, tree="x"))


# -- property: random transactions and reveals ------------------------------------------------

components_st = st.lists(st.binary(max_size=12), min_size=0, max_size=9)
groups_st = st.dictionaries(
    st.integers(min_value=0, max_value=8), components_st, min_size=1
).filter(lambda groups: any(groups.values()))


@settings(max_examples=150, deadline=None)
@given(groups_st, st.binary(min_size=32, max_size=40).filter(any), st.data())
def test_random_tear_offs_verify(
    groups: dict[int, list[bytes]], salt: bytes, data: st.DataObject
) -> None:
    slots = [(g, i) for g in sorted(groups) for i in range(len(groups[g]))]
    shown = data.draw(st.sets(st.sampled_from(slots)) if slots else st.just(set()))
    ftx = filter_transaction(groups, salt, lambda g, i, c: (g, i) in shown)
    assert ftx.id == transaction_id(groups, salt)
    verify_filtered(ftx)
    for group in ComponentGroup:
        components = groups.get(group, [])
        expected = tuple(c for i, c in enumerate(components) if (group, i) in shown)
        assert ftx.components(group) == expected
        if all((group, i) in shown for i in range(len(components))):
            check_all_components_visible(ftx, group)
        else:
            with pytest.raises(VerificationError):
                check_all_components_visible(ftx, group)
