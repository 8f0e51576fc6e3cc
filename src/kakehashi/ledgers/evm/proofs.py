"""Verification of ``eth_getProof`` results (EIP-1186) against a block's state root.

Pure functions: the proof object in, proven values or :class:`VerificationError` out, whatever
the input (malformed input never raises anything else). The rules implemented:

* **Trie rule** (Yellow Paper, appendix D). A Merkle-Patricia proof lists the trie nodes on the
  path from the root to a key, each the RLP of a branch (17 items), extension or leaf (2 items,
  hex-prefix path). Each listed node hashes (keccak256) to the reference its parent holds, the
  first to the root; a child under 32 bytes is embedded in its parent (py-evm's trie also lists
  it, which is accepted when the listed node is that very child). The walk ends at the key's
  leaf (membership), or at an empty slot or diverging path (absence); every listed node must be
  used.
* **Account rule.** The state trie maps ``keccak256(address)`` to ``RLP([nonce, balance,
  storageRoot, codeHash])``. An absent account is the empty account: nonce 0, balance 0, the
  empty trie root and ``keccak256("")`` (nodes that show absence with zero hashes, as geth does,
  are accepted too).
* **Storage rule.** An account's storage trie maps ``keccak256(slot as 32 bytes)`` to the RLP of
  the value as a scalar; an absent slot holds 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from eth_hash.auto import keccak

from kakehashi.errors import VerificationError
from kakehashi.ledgers.evm.rlpcheck import as_bytes as _as_bytes
from kakehashi.ledgers.evm.rlpcheck import as_list as _as_list
from kakehashi.ledgers.evm.rlpcheck import decode as _decode_rlp
from kakehashi.ledgers.evm.rlpcheck import decode_scalar
from kakehashi.ledgers.evm.rlpcheck import encode as _encode_rlp


def _scalar(raw: bytes, what: str, max_size: int) -> int:
    return decode_scalar(raw, what, max_size=max_size)


__all__ = [
    "EMPTY_ACCOUNT",
    "EMPTY_CODE_HASH",
    "EMPTY_TRIE_ROOT",
    "Account",
    "encode_slot_proof",
    "mapping_entry_slot",
    "verify_account_proof",
    "verify_eth_get_proof",
    "verify_slot_proof",
    "verify_storage_proof",
    "verify_trie_proof",
]

EMPTY_TRIE_ROOT = keccak(b"\x80")
"""Root of the empty trie: keccak256 of the RLP of the empty string."""

EMPTY_CODE_HASH = keccak(b"")
"""Code hash of an account without code."""

_ZERO_HASH = bytes(32)
_HASH_SIZE = 32
_ADDRESS_SIZE = 20
_WORD_SIZE = 32
_MAX_NONCE_SIZE = 8  # EIP-2681: nonces are below 2**64


@dataclass(frozen=True, slots=True)
class Account:
    """An account as the state trie holds it (account rule)."""

    nonce: int
    balance: int
    storage_root: bytes
    code_hash: bytes


EMPTY_ACCOUNT = Account(0, 0, EMPTY_TRIE_ROOT, EMPTY_CODE_HASH)


def verify_trie_proof(root: bytes, key: bytes, proof: Sequence[bytes]) -> bytes | None:
    """The value stored under ``key`` in the trie with root ``root``, or ``None`` if absent.

    ``key`` is the trie key itself (for Ethereum's secure tries, already keccak256-hashed);
    ``proof`` the RLP nodes from the root down (trie rule).
    """
    if len(root) != _HASH_SIZE:
        raise VerificationError(f"a trie root is {_HASH_SIZE} bytes, got {len(root)}")
    if not proof:
        if root == EMPTY_TRIE_ROOT:
            return None
        raise VerificationError(f"empty proof, but the trie root 0x{root.hex()} is not empty")
    path = _nibbles(key)
    node = _load_node(proof, 0, root)
    used = 1
    value: bytes | None = None
    while True:
        if node == b"" and used == 1:  # the empty trie's root node (it hashed to the root)
            break
        items = _node_items(node, used - 1)
        if len(items) == 17:
            if not path:
                value = _as_bytes(items[16], "branch value") or None
                break
            child, path = items[path[0]], path[1:]
        else:
            segment, is_leaf = _decode_hex_prefix(_as_bytes(items[0], "node path"))
            if is_leaf:
                if segment == path:
                    value = _as_bytes(items[1], "leaf value")
                    if not value:
                        raise VerificationError("proof leaf holds an empty value")
                break
            if path[: len(segment)] != segment:
                break  # the key leaves the trie here: absent
            child, path = items[1], path[len(segment) :]
        if child == b"":
            break  # empty branch slot: absent
        if isinstance(child, list):
            # An embedded child is covered by its parent's hash. geth leaves it out of the proof;
            # py-evm's trie lists it as well: accept it listed, but then only as itself.
            node = child
            if used < len(proof) and proof[used] == _encode_rlp(child):
                used += 1
        elif isinstance(child, bytes) and len(child) == _HASH_SIZE:
            node = _load_node(proof, used, child)
            used += 1
        else:
            raise VerificationError(
                "proof node holds a child reference that is neither a hash nor an embedded node"
            )
    if used != len(proof):
        raise VerificationError(
            f"proof lists {len(proof)} nodes but the path to the key uses {used}; "
            "extra nodes are not part of this proof"
        )
    return value


def verify_account_proof(
    state_root: bytes, address: bytes, account_proof: Sequence[bytes]
) -> Account | None:
    """The account at ``address`` under ``state_root``, or ``None`` if absent (account rule)."""
    if len(address) != _ADDRESS_SIZE:
        raise VerificationError(f"an address is {_ADDRESS_SIZE} bytes, got {len(address)}")
    encoded = verify_trie_proof(state_root, keccak(address), account_proof)
    if encoded is None:
        return None
    fields = _as_list(_decode_rlp(encoded, "proven account"), "proven account")
    if len(fields) != 4:
        raise VerificationError(
            f"proven account must be [nonce, balance, storageRoot, codeHash], got {len(fields)} "
            "items"
        )
    nonce, balance, storage_root, code_hash = (_as_bytes(f, "account field") for f in fields)
    if len(storage_root) != _HASH_SIZE or len(code_hash) != _HASH_SIZE:
        raise VerificationError("proven account's storageRoot and codeHash must be 32 bytes")
    return Account(
        nonce=_scalar(nonce, "account nonce", _MAX_NONCE_SIZE),
        balance=_scalar(balance, "account balance", _WORD_SIZE),
        storage_root=storage_root,
        code_hash=code_hash,
    )


def verify_storage_proof(storage_root: bytes, slot: int, proof: Sequence[bytes]) -> int:
    """The value of storage ``slot`` under ``storage_root``; 0 if absent (storage rule)."""
    if not 0 <= slot < 2**256:
        raise VerificationError(f"storage slot {slot} is not a 256-bit word")
    encoded = verify_trie_proof(storage_root, keccak(slot.to_bytes(_WORD_SIZE, "big")), proof)
    if encoded is None:
        return 0
    raw = _as_bytes(_decode_rlp(encoded, f"storage slot {slot:#x}"), f"storage slot {slot:#x}")
    return _scalar(raw, f"storage slot {slot:#x}", _WORD_SIZE)


def verify_eth_get_proof(
    state_root: bytes,
    proof: Mapping[str, object],
    *,
    address: bytes | str | None = None,
) -> dict[int, int]:
    """Verify an ``eth_getProof`` result against ``state_root``; return slot → proven value.

    ``proof`` is the result object exactly as a node returns it (hex strings) or as web3.py
    formats it (``AttributeDict`` with ``HexBytes`` and ints). The account proof must prove the
    claimed ``nonce``, ``balance``, ``storageHash`` and ``codeHash``, and each storage proof its
    claimed ``value``. Pass ``address`` to also require that the proof is about that account:
    without it the caller must check ``proof["address"]`` itself, since a valid proof of another
    account would verify just as well.
    """
    if not isinstance(state_root, bytes) or len(state_root) != _HASH_SIZE:
        raise VerificationError("state root must be 32 bytes")
    if not isinstance(proof, Mapping):
        raise VerificationError(
            f"eth_getProof result must be a mapping, got {type(proof).__name__}"
        )
    proven_address = _data(_field(proof, "address"), "address", _ADDRESS_SIZE)
    if address is not None:
        expected = _data(address, "expected address", _ADDRESS_SIZE)
        if proven_address != expected:
            raise VerificationError(
                f"proof is for account 0x{proven_address.hex()}, not 0x{expected.hex()}"
            )
    account = verify_account_proof(
        state_root, proven_address, _nodes(_field(proof, "accountProof"), "accountProof")
    )
    _check_claimed_account(proof, proven_address, account)
    storage_root = EMPTY_TRIE_ROOT if account is None else account.storage_root

    entries = _field(proof, "storageProof")
    if not isinstance(entries, Sequence) or isinstance(entries, str | bytes | bytearray):
        raise VerificationError("storageProof must be a list")
    values: dict[int, int] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise VerificationError(f"storageProof[{i}] must be an object with key/value/proof")
        where = f"storageProof[{i}]"
        slot = _quantity(_field(entry, "key", where), f"{where}.key", _WORD_SIZE)
        claimed = _quantity(_field(entry, "value", where), f"{where}.value", _WORD_SIZE)
        proven = verify_storage_proof(
            storage_root, slot, _nodes(_field(entry, "proof", where), f"{where}.proof")
        )
        if claimed != proven:
            raise VerificationError(
                f"storage slot {slot:#x} of 0x{proven_address.hex()}: the proof shows {proven:#x}, "
                f"the result claims {claimed:#x}"
            )
        values[slot] = proven
    return values


def _check_claimed_account(
    proof: Mapping[str, object], address: bytes, account: Account | None
) -> None:
    claimed = Account(
        nonce=_quantity(_field(proof, "nonce"), "nonce", _MAX_NONCE_SIZE),
        balance=_quantity(_field(proof, "balance"), "balance", _WORD_SIZE),
        storage_root=_data(_field(proof, "storageHash"), "storageHash", _HASH_SIZE),
        code_hash=_data(_field(proof, "codeHash"), "codeHash", _HASH_SIZE),
    )
    if account is None:
        # geth reports an absent account with zero storage and code hashes.
        if claimed.storage_root == _ZERO_HASH:
            claimed = Account(claimed.nonce, claimed.balance, EMPTY_TRIE_ROOT, claimed.code_hash)
        if claimed.code_hash == _ZERO_HASH:
            claimed = Account(claimed.nonce, claimed.balance, claimed.storage_root, EMPTY_CODE_HASH)
    proven = EMPTY_ACCOUNT if account is None else account
    for name, want, got in (
        ("nonce", proven.nonce, claimed.nonce),
        ("balance", proven.balance, claimed.balance),
        ("storageHash", proven.storage_root, claimed.storage_root),
        ("codeHash", proven.code_hash, claimed.code_hash),
    ):
        if want != got:
            shown_want = want.hex() if isinstance(want, bytes) else want
            shown_got = got.hex() if isinstance(got, bytes) else got
            raise VerificationError(
                f"account 0x{address.hex()}{' (absent)' if account is None else ''}: the proof "
                f"shows {name} {shown_want}, the result claims {shown_got}"
            )


# --------------------------------------------------------------------------- trie nodes


def _load_node(proof: Sequence[bytes], index: int, reference: bytes) -> object:
    if index >= len(proof):
        raise VerificationError(
            f"proof ends after {len(proof)} nodes but the path goes on to node 0x{reference.hex()}"
        )
    raw = proof[index]
    if not isinstance(raw, bytes | bytearray):
        raise VerificationError(f"proof node {index} must be bytes, got {type(raw).__name__}")
    if keccak(raw) != reference:
        parent = "the root" if index == 0 else f"node {index - 1}"
        raise VerificationError(
            f"proof node {index} does not hash to 0x{reference.hex()}, the reference {parent} holds"
        )
    return _decode_rlp(bytes(raw), f"proof node {index}")


def _node_items(node: object, index: int) -> list[object]:
    items = _as_list(node, f"proof node {index}")
    if len(items) not in (2, 17):
        raise VerificationError(
            f"proof node {index} has {len(items)} items; a trie node has 2 or 17"
        )
    return items


def _nibbles(key: bytes) -> tuple[int, ...]:
    return tuple(n for byte in key for n in (byte >> 4, byte & 0x0F))


def _decode_hex_prefix(encoded: bytes) -> tuple[tuple[int, ...], bool]:
    """Hex-prefix decoding (Yellow Paper, appendix C): (nibbles, is a leaf)."""
    if not encoded:
        raise VerificationError("trie node path is empty (no hex-prefix flag)")
    flag = encoded[0] >> 4
    if flag > 3:
        raise VerificationError(f"trie node path has hex-prefix flag {flag}; 0 to 3 are valid")
    nibbles = _nibbles(encoded)
    if flag & 1:  # odd length: the flag byte's low nibble is the first nibble of the path
        return nibbles[1:], bool(flag & 2)
    if nibbles[1] != 0:
        raise VerificationError("trie node path of even length has a non-zero padding nibble")
    return nibbles[2:], bool(flag & 2)


# --------------------------------------------------------------------------- input parsing


def _field(mapping: Mapping[str, object], name: str, where: str = "eth_getProof result") -> object:
    try:
        return mapping[name]
    except KeyError:
        raise VerificationError(f"{where} has no {name!r}") from None


def _data(value: object, what: str, size: int | None = None) -> bytes:
    """Bytes given as bytes/HexBytes or as a ``0x`` hex string (JSON-RPC DATA)."""
    if isinstance(value, bytes | bytearray):
        data = bytes(value)
    elif isinstance(value, str):
        data = _hex_string(value, what)
    else:
        raise VerificationError(
            f"{what} must be bytes or a 0x-hex string, got {type(value).__name__}"
        )
    if size is not None and len(data) != size:
        raise VerificationError(f"{what} must be {size} bytes, got {len(data)}")
    return data


def _hex_string(value: str, what: str) -> bytes:
    if not value.startswith(("0x", "0X")):
        raise VerificationError(f"{what} must start with 0x, got {value[:20]!r}")
    digits = value[2:]
    if len(digits) % 2:
        raise VerificationError(f"{what} has an odd number of hex digits")
    try:
        return bytes.fromhex(digits)
    except ValueError:
        raise VerificationError(f"{what} is not valid hex") from None


def _quantity(value: object, what: str, max_size: int) -> int:
    """A non-negative integer given as int, ``0x`` hex string (JSON-RPC QUANTITY) or bytes."""
    if isinstance(value, bool):
        raise VerificationError(f"{what} must be a number, got a boolean")
    if isinstance(value, int):
        number = value
    elif isinstance(value, bytes | bytearray):
        number = int.from_bytes(value, "big")
    elif isinstance(value, str):
        if not value.startswith(("0x", "0X")):
            raise VerificationError(f"{what} must start with 0x, got {value[:20]!r}")
        digits = value[2:] or "0"
        if not all(c in "0123456789abcdefABCDEF" for c in digits):
            raise VerificationError(f"{what} is not valid hex")
        number = int(digits, 16)
    else:
        raise VerificationError(f"{what} must be a number, got {type(value).__name__}")
    if not 0 <= number < 2 ** (8 * max_size):
        raise VerificationError(f"{what} must fit in {max_size} unsigned bytes")
    return number


def _nodes(value: object, what: str) -> list[bytes]:
    if not isinstance(value, Sequence) or isinstance(value, str | bytes | bytearray):
        raise VerificationError(f"{what} must be a list of RLP nodes")
    return [_data(node, f"{what}[{i}]") for i, node in enumerate(value)]


# -- one contract's mapping entry, as light clients of an EVM chain check it ------------------


def mapping_entry_slot(base_slot: int, key: bytes) -> int:
    """Slot of ``HashMap[bytes32, ...]`` entry ``keccak256(key)`` at ``base_slot`` (Vyper rule:
    ``keccak256(slot32 ‖ keccak256(key))``) — e.g. an IBC commitment keyed by its path."""
    return int.from_bytes(keccak(base_slot.to_bytes(32, "big") + keccak(key)), "big")


def encode_slot_proof(account_proof: Sequence[bytes], storage_proof: Sequence[bytes]) -> bytes:
    """Compact proof of one storage slot: ``RLP([account proof nodes, storage proof nodes])``."""
    return _encode_rlp([list(account_proof), list(storage_proof)])


def verify_slot_proof(state_root: bytes, address: bytes, slot: int, proof: bytes) -> int:
    """The value of ``slot`` in ``address``'s storage under ``state_root`` (0 when absent), from
    :func:`encode_slot_proof` bytes; VerificationError on anything wrong or no such contract."""
    items = _as_list(_decode_rlp(proof, "slot proof"), "slot proof")
    if len(items) != 2:
        raise VerificationError("a slot proof is [account proof nodes, storage proof nodes]")
    account_nodes = [
        _as_bytes(n, "account proof node") for n in _as_list(items[0], "account proof")
    ]
    storage_nodes = [
        _as_bytes(n, "storage proof node") for n in _as_list(items[1], "storage proof")
    ]
    account = verify_account_proof(state_root, address, account_nodes)
    if account is None:
        raise VerificationError(f"no account {address.hex()} under state root {state_root.hex()}")
    return verify_storage_proof(account.storage_root, slot, storage_nodes)
