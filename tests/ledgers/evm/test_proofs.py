"""``eth_getProof`` verification against real Merkle-Patricia tries (py-evm state, HexaryTrie)."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Mapping
from typing import Any

import pytest
import rlp
from eth.constants import BLANK_ROOT_HASH
from eth.db.account import AccountDB
from eth.db.atomic import AtomicDB
from eth_hash.auto import keccak
from eth_typing import Address
from hexbytes import HexBytes
from hypothesis import given, settings
from hypothesis import strategies as st
from trie import HexaryTrie
from web3._utils.method_formatters import proof_formatter

from kakehashi.errors import VerificationError
from kakehashi.ledgers.evm.proofs import (
    EMPTY_ACCOUNT,
    EMPTY_CODE_HASH,
    EMPTY_TRIE_ROOT,
    Account,
    verify_account_proof,
    verify_eth_get_proof,
    verify_storage_proof,
    verify_trie_proof,
)

CONTRACT = Address(bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3"))
WALLET = Address(bytes.fromhex("f39fd6e51aad88f6f4ce6ab8827279cfffb92266"))
ABSENT = Address(bytes.fromhex("00000000000000000000000000000000deadbeef"))
CONTRACT_STORAGE = {
    0: 1,
    1: 2**256 - 1,
    2: 0x1234,
    **{keccak(b"commitments/%d" % i)[0] * 2**248 + i: i + 1 for i in range(60)},
}
ABSENT_SLOT = 3


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def _node_bytes(nodes: list[str]) -> list[bytes]:
    return [bytes.fromhex(n[2:]) for n in nodes]


class State:
    """A world state on py-evm's AccountDB, proved the way a node answers ``eth_getProof``."""

    def __init__(self, setup: Callable[[AccountDB], None]) -> None:
        self.db = AtomicDB()
        accounts = AccountDB(self.db, BLANK_ROOT_HASH)
        setup(accounts)
        accounts.persist()
        self.root: bytes = accounts.state_root

    def get_proof(self, address: bytes, slots: list[int]) -> dict[str, Any]:
        """The JSON result object of ``eth_getProof``, as a node sends it."""
        state = HexaryTrie(self.db, self.root)
        raw = state.get(keccak(address))
        fields = rlp.decode(raw) if raw else [b"", b"", BLANK_ROOT_HASH, EMPTY_CODE_HASH]
        nonce, balance, storage_root, code_hash = fields
        storage = HexaryTrie(self.db, storage_root)
        storage_proof = []
        for slot in slots:
            key = keccak(slot.to_bytes(32, "big"))
            value = storage.get(key)
            storage_proof.append(
                {
                    "key": hex(slot),
                    "value": hex(int.from_bytes(rlp.decode(value), "big")) if value else "0x0",
                    "proof": [_hex(rlp.encode(n)) for n in storage.get_proof(key)],
                }
            )
        return {
            "address": _hex(address),
            "accountProof": [_hex(rlp.encode(n)) for n in state.get_proof(keccak(address))],
            "balance": hex(int.from_bytes(balance, "big")),
            "codeHash": _hex(code_hash),
            "nonce": hex(int.from_bytes(nonce, "big")),
            "storageHash": _hex(storage_root),
            "storageProof": storage_proof,
        }


def _world(accounts: AccountDB) -> None:
    accounts.set_balance(WALLET, 10**21)
    accounts.set_nonce(WALLET, 7)
    accounts.set_code(CONTRACT, b"\x60\x00\x60\x00\xf3")
    accounts.set_nonce(CONTRACT, 1)
    for slot, value in CONTRACT_STORAGE.items():
        accounts.set_storage(CONTRACT, slot, value)
    for i in range(150):  # enough accounts for a few levels of branches
        accounts.set_balance(Address(keccak(b"filler %d" % i)[:20]), i + 1)


STATE = State(_world)


def contract_proof() -> dict[str, Any]:
    return STATE.get_proof(CONTRACT, [0, 1, 2, ABSENT_SLOT, *list(CONTRACT_STORAGE)[3:8]])


# --------------------------------------------------------------------------- valid proofs


def test_contract_storage_present_and_absent() -> None:
    values = verify_eth_get_proof(STATE.root, contract_proof())
    assert values[0] == 1 and values[1] == 2**256 - 1 and values[2] == 0x1234
    assert values[ABSENT_SLOT] == 0
    for slot in list(CONTRACT_STORAGE)[3:8]:
        assert values[slot] == CONTRACT_STORAGE[slot]
    assert len(values) == 9


def test_every_slot_of_the_contract() -> None:
    proof = STATE.get_proof(CONTRACT, list(CONTRACT_STORAGE))
    assert verify_eth_get_proof(STATE.root, proof, address=CONTRACT) == CONTRACT_STORAGE


def test_account_without_storage() -> None:
    proof = STATE.get_proof(WALLET, [0, 5])
    assert proof["storageHash"] == _hex(EMPTY_TRIE_ROOT)
    assert verify_eth_get_proof(STATE.root, proof) == {0: 0, 5: 0}
    account = verify_account_proof(
        STATE.root, WALLET, [bytes.fromhex(n[2:]) for n in proof["accountProof"]]
    )
    assert account == Account(7, 10**21, EMPTY_TRIE_ROOT, EMPTY_CODE_HASH)


def test_absent_account_proves_as_the_empty_account() -> None:
    proof = STATE.get_proof(ABSENT, [0, 1])
    assert proof["balance"] == "0x0" and proof["nonce"] == "0x0"
    assert verify_eth_get_proof(STATE.root, proof) == {0: 0, 1: 0}
    nodes = [bytes.fromhex(n[2:]) for n in proof["accountProof"]]
    assert verify_account_proof(STATE.root, ABSENT, nodes) is None


def test_absent_account_as_geth_reports_it() -> None:
    proof = STATE.get_proof(ABSENT, [0])
    proof["codeHash"] = _hex(bytes(32))  # geth: zero hashes for an account that does not exist
    proof["storageHash"] = _hex(bytes(32))
    assert verify_eth_get_proof(STATE.root, proof) == {0: 0}


def test_absent_account_with_claimed_balance_is_rejected() -> None:
    proof = STATE.get_proof(ABSENT, [])
    proof["balance"] = "0x1"
    with pytest.raises(VerificationError, match=r"\(absent\).*balance"):
        verify_eth_get_proof(STATE.root, proof)


def test_empty_state() -> None:
    assert HexaryTrie({}).root_hash == EMPTY_TRIE_ROOT == BLANK_ROOT_HASH
    assert Account(0, 0, EMPTY_TRIE_ROOT, keccak(b"")) == EMPTY_ACCOUNT
    proof = {
        "address": _hex(WALLET),
        "accountProof": [],
        "balance": "0x0",
        "codeHash": _hex(EMPTY_CODE_HASH),
        "nonce": "0x0",
        "storageHash": _hex(EMPTY_TRIE_ROOT),
        "storageProof": [{"key": "0x0", "value": "0x0", "proof": []}],
    }
    assert verify_eth_get_proof(EMPTY_TRIE_ROOT, proof) == {0: 0}
    proof["accountProof"] = ["0x80"]  # the empty root node itself
    assert verify_eth_get_proof(EMPTY_TRIE_ROOT, proof) == {0: 0}
    with pytest.raises(VerificationError, match="not empty"):
        verify_eth_get_proof(STATE.root, {**proof, "accountProof": []})


def test_web3_formatted_result() -> None:
    """web3.py hands back an AttributeDict with HexBytes, ints and a checksummed address."""
    formatted = proof_formatter(contract_proof())
    assert isinstance(formatted["storageProof"][0]["value"], HexBytes)
    assert isinstance(formatted["balance"], int)
    values = verify_eth_get_proof(HexBytes(STATE.root), formatted, address=formatted["address"])
    assert values[1] == 2**256 - 1 and values[ABSENT_SLOT] == 0


def test_storage_keys_as_32_byte_words() -> None:
    proof = contract_proof()
    for entry in proof["storageProof"]:
        entry["key"] = "0x" + int(entry["key"], 16).to_bytes(32, "big").hex()
        entry["value"] = "0x" + int(entry["value"], 16).to_bytes(32, "big").hex()
    assert verify_eth_get_proof(STATE.root, proof)[2] == 0x1234


def test_short_keys_with_embedded_nodes_and_branch_values() -> None:
    """A plain (not secure) trie with short keys has embedded nodes and values in branches."""
    trie = HexaryTrie({})
    contents = {b"do": b"verb", b"dog": b"puppy", b"doge": b"coin", b"horse": b"stallion"}
    for key, value in contents.items():
        trie[key] = value
    for key in [*contents, b"d", b"dogs", b"cat", b"horses", b""]:
        nodes = [rlp.encode(n) for n in trie.get_proof(key)]
        assert verify_trie_proof(trie.root_hash, key, nodes) == contents.get(key)


# --------------------------------------------------------------------------- tampering


def test_every_byte_of_every_account_proof_node_matters() -> None:
    proof = STATE.get_proof(CONTRACT, [])
    nodes = _node_bytes(proof["accountProof"])
    for i, node in enumerate(nodes):
        for position in range(len(node)):
            tampered = bytearray(node)
            tampered[position] ^= 0x01
            changed = [*nodes[:i], bytes(tampered), *nodes[i + 1 :]]
            with pytest.raises(VerificationError):
                verify_account_proof(STATE.root, CONTRACT, changed)


def test_every_byte_of_every_storage_proof_node_matters() -> None:
    storage_root = bytes.fromhex(contract_proof()["storageHash"][2:])
    for slot in (1, ABSENT_SLOT):
        entry = STATE.get_proof(CONTRACT, [slot])["storageProof"][0]
        nodes = _node_bytes(entry["proof"])
        for i, node in enumerate(nodes):
            for position in range(len(node)):
                tampered = bytearray(node)
                tampered[position] ^= 0x80
                changed = [*nodes[:i], bytes(tampered), *nodes[i + 1 :]]
                with pytest.raises(VerificationError):
                    verify_storage_proof(storage_root, slot, changed)


def test_wrong_state_root() -> None:
    with pytest.raises(VerificationError, match="does not hash to"):
        verify_eth_get_proof(keccak(b"another root"), contract_proof())


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("balance", "0x1", "balance"),
        ("nonce", "0x2", "nonce"),
        ("codeHash", _hex(EMPTY_CODE_HASH), "codeHash"),
        ("storageHash", _hex(EMPTY_TRIE_ROOT), "storageHash"),
        ("address", _hex(WALLET), "proof"),
    ],
)
def test_claimed_account_fields_must_match(field: str, value: str, message: str) -> None:
    proof = contract_proof()
    proof[field] = value
    with pytest.raises(VerificationError, match=message):
        verify_eth_get_proof(STATE.root, proof)


def test_claimed_storage_value_must_match() -> None:
    for index, value in ((0, "0x2"), (3, "0x1"), (1, "0x0")):  # present, absent, max value
        proof = contract_proof()
        proof["storageProof"][index]["value"] = value
        with pytest.raises(VerificationError, match="the proof shows"):
            verify_eth_get_proof(STATE.root, proof)


def test_proof_of_another_slot_is_rejected() -> None:
    proof = contract_proof()
    proof["storageProof"][0]["key"] = proof["storageProof"][2]["key"]  # slot 2 with slot 0's proof
    with pytest.raises(VerificationError):
        verify_eth_get_proof(STATE.root, proof)


def test_proof_of_another_account_is_rejected() -> None:
    proof = contract_proof()
    proof["accountProof"] = STATE.get_proof(WALLET, [])["accountProof"]
    with pytest.raises(VerificationError):
        verify_eth_get_proof(STATE.root, proof)


def test_expected_address() -> None:
    verify_eth_get_proof(STATE.root, contract_proof(), address=_hex(CONTRACT))
    with pytest.raises(VerificationError, match="not 0x"):
        verify_eth_get_proof(STATE.root, STATE.get_proof(WALLET, []), address=CONTRACT)


def test_extra_missing_and_reordered_nodes_are_rejected() -> None:
    proof = contract_proof()
    nodes = proof["accountProof"]
    for changed in (
        [*nodes, nodes[-1]],  # repeated last node
        [*nodes, "0x80"],  # junk after the leaf
        nodes[:-1],  # missing leaf
        nodes[1:],  # missing root
        [nodes[0], nodes[2], nodes[1], *nodes[3:]],  # reordered
        [nodes[0] + "00", *nodes[1:]],  # trailing byte in a node
    ):
        bad = copy.deepcopy(proof)
        bad["accountProof"] = changed
        with pytest.raises(VerificationError):
            verify_eth_get_proof(STATE.root, bad)
    absent = STATE.get_proof(CONTRACT, [ABSENT_SLOT])
    absent["storageProof"][0]["proof"].append(absent["storageProof"][0]["proof"][-1])
    with pytest.raises(VerificationError, match="extra nodes"):
        verify_eth_get_proof(STATE.root, absent)


@pytest.mark.parametrize(
    "mutation",
    [
        {"address": None},
        {"address": "0x1234"},
        {"address": "not hex"},
        {"address": 5},
        {"balance": "12"},
        {"balance": "0xzz"},
        {"balance": -1},
        {"balance": True},
        {"balance": 1.5},
        {"balance": "0x1" + "0" * 64},
        {"nonce": 2**64},
        {"codeHash": "0x00"},
        {"codeHash": "0x" + "0" * 63},
        {"storageHash": b"\x00" * 31},
        {"accountProof": "0x80"},
        {"accountProof": [1, 2]},
        {"accountProof": None},
        {"storageProof": None},
        {"storageProof": [None]},
        {"storageProof": [{"key": "0x0", "value": "0x0"}]},
        {"storageProof": [{"key": "0x" + "1" * 65, "value": "0x0", "proof": []}]},
        {"storageProof": [{"key": [], "value": "0x0", "proof": []}]},
        {"storageProof": "0x"},
    ],
)
def test_malformed_results_raise_verification_error(mutation: dict[str, object]) -> None:
    proof = {**contract_proof(), **mutation}
    with pytest.raises(VerificationError):
        verify_eth_get_proof(STATE.root, proof)


@pytest.mark.parametrize("field", ["address", "accountProof", "balance", "nonce", "storageProof"])
def test_missing_fields_raise_verification_error(field: str) -> None:
    proof = contract_proof()
    del proof[field]
    with pytest.raises(VerificationError, match=field):
        verify_eth_get_proof(STATE.root, proof)


def test_not_a_mapping_or_bad_root() -> None:
    with pytest.raises(VerificationError):
        verify_eth_get_proof(STATE.root, [])  # type: ignore[arg-type]
    with pytest.raises(VerificationError):
        verify_eth_get_proof(STATE.root[:31], contract_proof())


# --------------------------------------------------------------------------- properties

_JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**300), 2**300),
    st.text(max_size=80),
    st.binary(max_size=80),
    st.lists(st.text(max_size=10), max_size=3),
    st.builds(lambda b: "0x" + b.hex(), st.binary(max_size=80)),
)


def _paths(value: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Every path to a leaf or container of a JSON-like value."""
    found = [prefix] if prefix else []
    if isinstance(value, Mapping):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _paths(item, (*prefix, i))
    return found


PROOF_PATHS = _paths(contract_proof())


def _set(value: Any, path: tuple[object, ...], new: object) -> None:
    for step in path[:-1]:
        value = value[step]
    value[path[-1]] = new


@settings(max_examples=300, deadline=None)
@given(path=st.sampled_from(PROOF_PATHS), junk=_JUNK)
def test_junk_anywhere_raises_only_verification_error(
    path: tuple[object, ...], junk: object
) -> None:
    proof = contract_proof()
    _set(proof, path, junk)
    with contextlib.suppress(VerificationError):
        verify_eth_get_proof(STATE.root, proof)


@settings(max_examples=200, deadline=None)
@given(
    node=st.integers(0, 20),
    position=st.integers(0, 600),
    value=st.integers(0, 255),
)
def test_changed_proof_byte_is_always_caught(node: int, position: int, value: int) -> None:
    proof = contract_proof()
    entry = proof["storageProof"][node % len(proof["storageProof"])]
    nodes = entry["proof"]
    raw = bytearray(bytes.fromhex(nodes[node % len(nodes)][2:]))
    position %= len(raw)
    if raw[position] == value:
        return
    raw[position] = value
    nodes[node % len(nodes)] = _hex(bytes(raw))
    with pytest.raises(VerificationError):
        verify_eth_get_proof(STATE.root, proof)


@settings(max_examples=40, deadline=None)
@given(
    storage=st.dictionaries(
        st.integers(0, 2**256 - 1), st.integers(1, 2**256 - 1), min_size=1, max_size=40
    ),
    queried=st.lists(st.integers(0, 2**256 - 1), max_size=5),
)
def test_random_storage_proves_exactly_its_contents(
    storage: dict[int, int], queried: list[int]
) -> None:
    def setup(accounts: AccountDB) -> None:
        for slot, value in storage.items():
            accounts.set_storage(CONTRACT, slot, value)

    state = State(setup)
    slots = [*storage, *queried]
    values = verify_eth_get_proof(state.root, state.get_proof(CONTRACT, slots), address=CONTRACT)
    assert values == {slot: storage.get(slot, 0) for slot in slots}


@pytest.mark.parametrize(
    "junk", [b"", b"\x80", b"\xc0", b"\xc2\x80\x80", b"\xc3\xc0\xc0\xc0", b"\xff" * 9]
)
def test_a_malformed_slot_proof_is_a_verification_error(junk: bytes) -> None:
    from kakehashi.ledgers.evm.proofs import verify_slot_proof

    with pytest.raises(VerificationError):
        verify_slot_proof(bytes(32), bytes(20), 0, junk)
