"""The Vyper toolchain: compiling, the compile cache, typed errors, and the token contracts
deployed and exercised on an in-process py-evm chain (web3's EthereumTesterProvider)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from eth_account import Account
from eth_utils import keccak
from web3 import Web3
from web3.logs import DISCARD

from kakehashi.errors import ContractCompileError, TransactionRevertedError
from kakehashi.ledgers.evm import toolchain
from kakehashi.ledgers.evm.client import transact

ZERO = "0x0000000000000000000000000000000000000000"


def _signatures(abi: list[dict], kind: str) -> set[str]:
    return {
        f"{item['name']}({','.join(arg['type'] for arg in item['inputs'])})"
        for item in abi
        if item["type"] == kind
    }


def _indexed(abi: list[dict], event: str) -> list[bool]:
    (item,) = [i for i in abi if i["type"] == "event" and i["name"] == event]
    return [arg["indexed"] for arg in item["inputs"]]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty compile cache for one test; returns the directory entries are written to."""
    monkeypatch.setenv("KAKEHASHI_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "vyper"


@pytest.fixture
def sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty contracts directory for one test (KAKEHASHI_CONTRACTS_DIR)."""
    root = tmp_path / "contracts"
    root.mkdir()
    monkeypatch.setenv("KAKEHASHI_CONTRACTS_DIR", str(root))
    return root


@pytest.fixture
def tiny(sources: Path) -> str:
    """A small contract (compiles in milliseconds) with one storage variable and an import."""
    (sources / "units.vy").write_text("# pragma version ~=0.4.3\nSCALE: constant(uint256) = 100\n")
    (sources / "tiny.vy").write_text(
        "# pragma version ~=0.4.3\nimport units\n\nstored: public(uint256)\n\n"
        "@external\ndef store(x: uint256):\n    self.stored = x * units.SCALE\n"
    )
    return "tiny"


# ---------------------------------------------------------------------------- compiling
def test_erc721_has_the_standard_interface(erc721_compiled: toolchain.CompiledContract) -> None:
    abi = erc721_compiled.abi
    assert erc721_compiled.name == "tokens/erc721"
    assert {
        "balanceOf(address)",
        "ownerOf(uint256)",
        "approve(address,uint256)",
        "getApproved(uint256)",
        "setApprovalForAll(address,bool)",
        "isApprovedForAll(address,address)",
        "transferFrom(address,address,uint256)",
        "safeTransferFrom(address,address,uint256)",
        "safeTransferFrom(address,address,uint256,bytes)",
        "supportsInterface(bytes4)",
        "name()",
        "symbol()",
        "tokenURI(uint256)",
        "mint(address,uint256,string)",
    } <= _signatures(abi, "function")
    # snekmate's counter-based mint is deliberately not exported (see the contract's notice).
    assert "safe_mint(address,string)" not in _signatures(abi, "function")
    events = _signatures(abi, "event")
    assert {
        "Transfer(address,address,uint256)",
        "Approval(address,address,uint256)",
        "ApprovalForAll(address,address,bool)",
    } <= events
    assert _indexed(abi, "Transfer") == [True, True, True]  # ERC-721: the token id is indexed
    assert 0 < len(erc721_compiled.runtime_bytecode) <= 24_576  # EIP-170 code size limit
    assert erc721_compiled.bytecode != erc721_compiled.runtime_bytecode


def test_erc20_has_the_standard_interface(erc20_compiled: toolchain.CompiledContract) -> None:
    abi = erc20_compiled.abi
    assert {
        "totalSupply()",
        "balanceOf(address)",
        "transfer(address,uint256)",
        "allowance(address,address)",
        "approve(address,uint256)",
        "transferFrom(address,address,uint256)",
        "name()",
        "symbol()",
        "decimals()",
        "mint(address,uint256)",
    } <= _signatures(abi, "function")
    assert {"Transfer(address,address,uint256)", "Approval(address,address,uint256)"} <= (
        _signatures(abi, "event")
    )
    assert _indexed(abi, "Transfer") == [True, True, False]  # ERC-20: the amount is data
    (transfer,) = [i for i in abi if i.get("name") == "transfer"]
    assert [o["type"] for o in transfer["outputs"]] == ["bool"]


def test_second_compilation_comes_from_the_cache(cache: Path) -> None:
    first = toolchain.compile_contract("tokens/erc20")
    assert not first.from_cache
    (entry,) = cache.glob("*.json")
    written = entry.stat().st_mtime_ns

    second = toolchain.compile_contract("tokens/erc20")
    assert second.from_cache
    assert second == first  # same name, ABI and bytecode
    assert entry.stat().st_mtime_ns == written  # read, not rewritten
    assert list(cache.glob("*.json")) == [entry]


def test_cache_key_covers_imported_modules(cache: Path, sources: Path, tiny: str) -> None:
    first = toolchain.compile_contract(tiny)
    assert toolchain.compile_contract(tiny).from_cache

    # Only the imported module changes: the contract must be recompiled, to new bytecode.
    (sources / "units.vy").write_text("# pragma version ~=0.4.3\nSCALE: constant(uint256) = 7\n")
    changed = toolchain.compile_contract(tiny)
    assert not changed.from_cache
    assert changed.runtime_bytecode != first.runtime_bytecode
    assert len(list(cache.glob("*.json"))) == 2


def test_other_evm_version_is_another_cache_entry(cache: Path, tiny: str) -> None:
    prague = toolchain.compile_contract(tiny)
    london = toolchain.compile_contract(tiny, evm_version="london")
    assert not london.from_cache
    assert london.runtime_bytecode != prague.runtime_bytecode  # PUSH0 and friends differ
    assert len(list(cache.glob("*.json"))) == 2


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda text: text[: len(text) // 2], id="truncated"),
        pytest.param(lambda text: "not json at all", id="garbage"),
        pytest.param(lambda text: json.dumps({**json.loads(text), "bytecode": "zz"}), id="bad-hex"),
        pytest.param(
            lambda text: json.dumps({**json.loads(text), "key": "0" * 64}), id="wrong-key"
        ),
    ],
)
def test_corrupt_cache_entry_is_recompiled(
    cache: Path, tiny: str, damage: Callable[[str], str]
) -> None:
    good = toolchain.compile_contract(tiny)
    (entry,) = cache.glob("*.json")
    entry.write_text(damage(entry.read_text()))

    again = toolchain.compile_contract(tiny)
    assert not again.from_cache
    assert again == good
    # The entry was replaced by a good one.
    assert toolchain.compile_contract(tiny).from_cache


def test_unwritable_cache_only_costs_a_recompilation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny: str
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache directory should be")
    monkeypatch.setenv("KAKEHASHI_CACHE_DIR", str(blocker))
    assert not toolchain.compile_contract(tiny).from_cache
    assert not toolchain.compile_contract(tiny).from_cache


def test_compile_error_names_file_and_line(cache: Path, sources: Path) -> None:
    (sources / "broken.vy").write_text(
        "# pragma version ~=0.4.3\n\n@external\ndef f() -> uint256:\n    return undeclared\n"
    )
    with pytest.raises(ContractCompileError) as info:
        toolchain.compile_contract("broken")
    error = info.value
    assert error.path is not None and error.path.endswith("broken.vy")
    assert error.line == 5
    assert "broken.vy:5" in str(error)
    assert "undeclared" in str(error)
    assert not list(cache.glob("*.json"))  # nothing half-written


def test_syntax_error_and_missing_import_are_typed(sources: Path) -> None:
    (sources / "syntax.vy").write_text("# pragma version ~=0.4.3\n@external\ndef f(:\n")
    with pytest.raises(ContractCompileError, match=r"syntax\.vy"):
        toolchain.compile_contract("syntax")
    (sources / "imports.vy").write_text(
        "# pragma version ~=0.4.3\nfrom snekmate.tokens import no_such_module\n"
    )
    with pytest.raises(ContractCompileError, match=r"imports\.vy:2.*no_such_module") as info:
        toolchain.compile_contract("imports")
    assert info.value.line == 2


def test_unknown_contract_is_typed(sources: Path) -> None:
    with pytest.raises(ContractCompileError, match="no contract source nothing/here"):
        toolchain.compile_contract("nothing/here")


def test_compiles_a_file_outside_the_contracts_dir(cache: Path, tmp_path: Path) -> None:
    path = tmp_path / "elsewhere" / "answer.vy"
    path.parent.mkdir()
    path.write_text(
        "# pragma version ~=0.4.3\n@external\n@pure\ndef answer() -> uint256:\n    return 42\n"
    )
    compiled = toolchain.compile_contract(path)
    assert compiled.name == "answer"
    assert _signatures(compiled.abi, "function") == {"answer()"}


# ------------------------------------------------------------------ deploying and using
def test_erc721_mint_transfer_approve(
    tester_w3: Web3, erc721_compiled: toolchain.CompiledContract
) -> None:
    w3 = tester_w3
    owner, alice, bob, carol = w3.eth.accounts[:4]
    nft = toolchain.deploy(w3, erc721_compiled, "Kakehashi Bills", "BILL", "bill://")
    assert nft.functions.name().call() == "Kakehashi Bills"
    assert nft.functions.symbol().call() == "BILL"
    assert nft.functions.owner().call() == owner
    assert nft.functions.supportsInterface(bytes.fromhex("80ac58cd")).call()  # ERC-721

    receipt = transact(w3, nft.functions.mint(alice, 1001, "1001.json"))
    (minted,) = nft.events.Transfer().process_receipt(receipt, errors=DISCARD)
    assert minted.args == {"sender": ZERO, "receiver": alice, "token_id": 1001}
    assert nft.functions.ownerOf(1001).call() == alice
    assert nft.functions.balanceOf(alice).call() == 1
    assert nft.functions.tokenURI(1001).call() == "bill://1001.json"
    assert nft.functions.totalSupply().call() == 1

    # Only minters mint; an id is minted once.
    with pytest.raises(TransactionRevertedError, match="access is denied"):
        transact(w3, nft.functions.mint(alice, 1002, ""), sender=alice)
    with pytest.raises(TransactionRevertedError, match="already minted"):
        transact(w3, nft.functions.mint(bob, 1001, ""))

    # The owner transfers; then approves bob, who moves the token to carol (escrow pattern).
    receipt = transact(w3, nft.functions.transferFrom(alice, bob, 1001), sender=alice)
    (moved,) = nft.events.Transfer().process_receipt(receipt, errors=DISCARD)
    assert moved.args == {"sender": alice, "receiver": bob, "token_id": 1001}
    receipt = transact(w3, nft.functions.approve(carol, 1001), sender=bob)
    (approval,) = nft.events.Approval().process_receipt(receipt, errors=DISCARD)
    assert approval.args == {"owner": bob, "approved": carol, "token_id": 1001}
    assert nft.functions.getApproved(1001).call() == carol
    with pytest.raises(TransactionRevertedError, match="not token owner or approved"):
        transact(w3, nft.functions.transferFrom(bob, alice, 1001), sender=alice)
    transact(w3, nft.functions.transferFrom(bob, carol, 1001), sender=carol)
    assert nft.functions.ownerOf(1001).call() == carol
    assert nft.functions.getApproved(1001).call() == ZERO  # approval cleared by the transfer
    assert [nft.functions.balanceOf(a).call() for a in (alice, bob, carol)] == [0, 0, 1]


def test_erc721_events_are_found_by_topic(
    tester_w3: Web3, erc721_compiled: toolchain.CompiledContract
) -> None:
    """Any tool filtering logs by the standard Transfer topic sees our transfers."""
    w3 = tester_w3
    alice = w3.eth.accounts[1]
    nft = toolchain.deploy(w3, erc721_compiled, "T", "T", "")
    transact(w3, nft.functions.mint(alice, 7, ""))
    topic = "0x" + keccak(text="Transfer(address,address,uint256)").hex()
    logs = w3.eth.get_logs({"address": nft.address, "topics": [topic], "fromBlock": 0})
    assert len(logs) == 1
    assert int.from_bytes(logs[0]["topics"][3], "big") == 7
    assert logs[0]["topics"][2][-20:] == bytes.fromhex(alice[2:])


def test_erc20_mint_transfer_approve_transfer_from(
    tester_w3: Web3, erc20_compiled: toolchain.CompiledContract
) -> None:
    w3 = tester_w3
    owner, alice, bob, carol = w3.eth.accounts[:4]
    token = toolchain.deploy(w3, "tokens/erc20", "Kakehashi Yen", "KJPY", 2, 1_000_000)
    assert token.functions.decimals().call() == 2
    assert token.functions.balanceOf(owner).call() == 1_000_000
    assert token.functions.totalSupply().call() == 1_000_000

    receipt = transact(w3, token.functions.mint(alice, 500))
    (minted,) = token.events.Transfer().process_receipt(receipt, errors=DISCARD)
    assert minted.args == {"sender": ZERO, "receiver": alice, "value": 500}
    with pytest.raises(TransactionRevertedError, match="access is denied"):
        transact(w3, token.functions.mint(alice, 1), sender=alice)

    receipt = transact(w3, token.functions.transfer(bob, 200), sender=alice)
    (sent,) = token.events.Transfer().process_receipt(receipt, errors=DISCARD)
    assert sent.args == {"sender": alice, "receiver": bob, "value": 200}
    with pytest.raises(TransactionRevertedError, match="exceeds balance"):
        transact(w3, token.functions.transfer(bob, 301), sender=alice)

    receipt = transact(w3, token.functions.approve(carol, 150), sender=bob)
    (approval,) = token.events.Approval().process_receipt(receipt, errors=DISCARD)
    assert approval.args == {"owner": bob, "spender": carol, "value": 150}
    transact(w3, token.functions.transferFrom(bob, carol, 100), sender=carol)
    assert token.functions.allowance(bob, carol).call() == 50
    with pytest.raises(TransactionRevertedError, match="insufficient allowance"):
        transact(w3, token.functions.transferFrom(bob, carol, 51), sender=carol)

    balances = [token.functions.balanceOf(a).call() for a in (owner, alice, bob, carol)]
    assert balances == [1_000_000, 300, 100, 100]
    assert sum(balances) == token.functions.totalSupply().call()  # supply conserved


def test_deploy_and_call_signed_locally(
    tester_w3: Web3, erc20_compiled: toolchain.CompiledContract
) -> None:
    """A LocalAccount sender signs here and sends raw transactions (GoQuorum/Besu style)."""
    w3 = tester_w3
    signer = Account.create()
    transact_value = {"from": w3.eth.accounts[0], "to": signer.address, "value": 10**18}
    w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction(transact_value))

    token = toolchain.deploy(w3, erc20_compiled, "Signed", "SIG", 0, 10, sender=signer)
    assert token.functions.owner().call() == signer.address
    transact(w3, token.functions.transfer(w3.eth.accounts[1], 4), sender=signer)
    assert token.functions.balanceOf(w3.eth.accounts[1]).call() == 4
    with pytest.raises(TransactionRevertedError, match="exceeds balance"):
        transact(w3, token.functions.transfer(w3.eth.accounts[1], 7), sender=signer)


def test_mined_revert_reports_hash_and_reason(
    tester_w3: Web3, erc20_compiled: toolchain.CompiledContract
) -> None:
    """With an explicit gas limit the revert is mined (status 0): the error has the tx hash."""
    w3 = tester_w3
    token = toolchain.deploy(w3, erc20_compiled, "G", "G", 0, 0)
    with pytest.raises(TransactionRevertedError) as info:
        transact(
            w3, token.functions.mint(w3.eth.accounts[1], 1), sender=w3.eth.accounts[1], gas=200_000
        )
    assert info.value.tx_hash is not None
    receipt = w3.eth.get_transaction_receipt(info.value.tx_hash)
    assert receipt["status"] == 0
    assert info.value.reason is not None and "access is denied" in info.value.reason


def test_reverting_constructor_is_typed(tester_w3: Web3, sources: Path) -> None:
    (sources / "refuses.vy").write_text(
        "# pragma version ~=0.4.3\n@deploy\ndef __init__(ok: bool):\n"
        '    assert ok, "refuses: not ok"\n'
    )
    with pytest.raises(TransactionRevertedError, match=r"deployment of refuses.*refuses: not ok"):
        toolchain.deploy(tester_w3, "refuses", False)
    assert toolchain.deploy(tester_w3, "refuses", True).address


def test_pragma_disagreeing_with_settings_is_typed(sources: Path) -> None:
    (sources / "old.vy").write_text(
        "# pragma version ~=0.4.3\n# pragma evm-version cancun\n"
        "@external\n@pure\ndef f() -> uint256:\n    return 1\n"
    )
    with pytest.raises(ContractCompileError, match=r"(?s)old\.vy.*evm-version prague.*cancun"):
        toolchain.compile_contract("old")
    assert toolchain.compile_contract("old", evm_version="cancun").runtime_bytecode


def test_storage_slots_by_variable_name(erc721_compiled: toolchain.CompiledContract) -> None:
    owners = toolchain.storage_slot(erc721_compiled, "erc721._owners")
    assert toolchain.storage_slot(erc721_compiled, "ownable.owner") == 0
    assert owners != toolchain.storage_slot(erc721_compiled, "erc721._balances")
    # Vyper's HashMap rule: keccak256(slot ++ key), both as 32-byte words.
    expected = keccak(owners.to_bytes(32, "big") + (7).to_bytes(32, "big"))
    assert toolchain.mapping_slot(owners, 7) == int.from_bytes(expected, "big")
    address = "0x" + "11" * 20
    assert toolchain.mapping_slot(owners, address) == toolchain.mapping_slot(
        owners, int(address, 16)
    )
    with pytest.raises(KeyError, match="no storage variable"):
        toolchain.storage_slot(erc721_compiled, "erc721.nothing")
    with pytest.raises(KeyError, match="a module"):
        toolchain.storage_slot(erc721_compiled, "erc721")
