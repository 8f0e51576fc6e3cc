"""Exact, faster replacements for the hottest helpers py-evm's Merkle-Patricia trie calls.

py-evm reads and rewrites the state and storage tries through ``trie.HexaryTrie``, which
RLP-decodes a node every time it visits one and RLP-encodes every node it writes, with pyrlp's
pure-Python codec. Sealing a block of ERC-721 transfers spends about a fifth of its time there:
every storage slot a transaction touches walks the same few upper nodes of the token's storage
trie, and the block's storage-root update walks them again.

Installed once by :func:`install` (from :mod:`kakehashi.ledgers.evm.chain`), both are drop-in
replacements giving byte-for-byte the same results:

* :func:`decode_node` remembers decoded nodes by their encoding (a node's encoding determines its
  decoding) and hands each caller its own copy, since the trie edits the lists it gets back;
  anything it has not seen, or that is not ``bytes``, goes through the original decoder, errors
  included.
* :func:`encode_raw` encodes the ``bytes`` / ``list`` trees the trie writes, checking types
  exactly instead of through pyrlp's abstract base classes; any other type of item goes through
  pyrlp's own ``encode_raw``.
"""

from __future__ import annotations

from typing import Any

import eth.vm.computation
import trie.hexary
import trie.utils.nodes
from eth.vm.code_stream import CodeStream
from rlp.codec import encode_raw as _rlp_encode_raw
from trie.utils.nibbles import bytes_to_nibbles as _original_bytes_to_nibbles
from trie.utils.nibbles import decode_nibbles as _original_decode_nibbles
from trie.utils.nodes import decode_node as _original_decode_node

from kakehashi.ledgers.evm import interpreter

DECODED_NODES_MAX = 100_000
DECODED_PATHS_MAX = 100_000
ANALYSED_CODES_MAX = 1_000

_decoded: dict[bytes, Any] = {}
_paths: dict[bytes, tuple[int, ...]] = {}
_jump_analysis: dict[bytes, tuple[set[int], set[int]]] = {}
_installed = False


def _copy(node: Any) -> Any:
    if type(node) is list:
        return [item if type(item) is bytes else _copy(item) for item in node]
    return node


def decode_node(encoded: Any) -> Any:
    """``trie.utils.nodes.decode_node`` with a cache of what it decoded (same results)."""
    if type(encoded) is bytes and encoded:
        node = _decoded.get(encoded)
        if node is None:
            node = _original_decode_node(encoded)
            if len(_decoded) >= DECODED_NODES_MAX:
                _decoded.clear()
            _decoded[encoded] = _copy(node)
            return node
        return _copy(node)
    return _original_decode_node(encoded)


_SHORT = [bytes((i,)) for i in range(256)]


def _prefix(length: int, offset: int) -> bytes:
    if length < 56:
        return _SHORT[offset + length]
    length_bytes = length.to_bytes((length.bit_length() + 7) // 8, "big")
    if len(length_bytes) > 8:
        raise ValueError("RLP item too big to encode")
    return _SHORT[offset + 55 + len(length_bytes)] + length_bytes


def _encode(item: Any) -> bytes | None:
    """RLP of a tree of ``bytes`` and lists; None if it holds anything else."""
    kind = type(item)
    if kind is bytes:
        if len(item) == 1 and item[0] < 128:
            return item
        return _prefix(len(item), 128) + item
    if kind is list:
        parts = []
        for sub in item:
            encoded = _encode(sub)
            if encoded is None:
                return None
            parts.append(encoded)
        payload = b"".join(parts)
        return _prefix(len(payload), 192) + payload
    return None


def encode_raw(item: Any) -> bytes:
    """``rlp.codec.encode_raw`` for trees of ``bytes`` and lists (same bytes out).

    A node the trie encodes is the node it decodes next when it walks that way again, so the
    decoded form is remembered for :func:`decode_node` (decoding RLP of bytes and lists gives
    back the same bytes and lists).
    """
    encoded = _encode(item)
    if encoded is None:
        return _rlp_encode_raw(item)
    if type(item) is list and len(encoded) >= 32:
        if len(_decoded) >= DECODED_NODES_MAX:
            _decoded.clear()
        _decoded[encoded] = _copy(item)
    return encoded


_NIBBLE = {c: int(c, 16) for c in "0123456789abcdef"}


def bytes_to_nibbles(value: bytes) -> tuple[int, ...]:
    """``trie.utils.nibbles.bytes_to_nibbles``: each byte as its two nibbles, high first."""
    if type(value) is not bytes:
        return _original_bytes_to_nibbles(value)
    return tuple(map(_NIBBLE.__getitem__, value.hex()))


def decode_nibbles(value: bytes) -> tuple[int, ...]:
    """``trie.utils.nibbles.decode_nibbles`` (hex-prefix decoding) with a cache of results."""
    nibbles = _paths.get(value) if type(value) is bytes else None
    if nibbles is None:
        nibbles = _original_decode_nibbles(value)
        if type(value) is bytes:
            if len(_paths) >= DECODED_PATHS_MAX:
                _paths.clear()
            _paths[value] = nibbles
    return nibbles


class SharedAnalysisCodeStream(CodeStream):
    """py-evm's ``CodeStream`` sharing its jump-destination analysis among equal codes.

    Which positions are opcodes rather than PUSH data (what a JUMP checks) depends only on the
    code bytes, and py-evm works it out anew, position by position, for every call of every
    transaction. Streams of the same code share the positions found so far (as one stream
    already shares them among its own jumps).
    """

    __slots__ = ()

    def __init__(self, code_bytes: bytes) -> None:
        super().__init__(code_bytes)
        if type(code_bytes) is not bytes:
            return
        shared = _jump_analysis.get(code_bytes)
        if shared is None:
            if len(_jump_analysis) >= ANALYSED_CODES_MAX:
                _jump_analysis.clear()
            shared = _jump_analysis[code_bytes] = (self.invalid_positions, self.valid_positions)
        self.invalid_positions, self.valid_positions = shared


def install() -> None:
    """Route ``trie.hexary``'s node decoding and encoding through the functions above."""
    global _installed
    if _installed:
        return
    trie.hexary.decode_node = decode_node  # type: ignore[assignment]
    trie.hexary.encode_raw = encode_raw
    trie.hexary.bytes_to_nibbles = bytes_to_nibbles
    trie.hexary.decode_nibbles = decode_nibbles
    trie.utils.nodes.decode_nibbles = decode_nibbles
    eth.vm.computation.CodeStream = SharedAnalysisCodeStream  # type: ignore[misc]
    interpreter.install()
    _installed = True
