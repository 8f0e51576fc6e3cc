"""The inline interpreter loop gives exactly what py-evm's own loop gives.

Every program runs twice on the same state, once through :func:`interpreter.apply_computation`
and once through py-evm's ``apply_computation`` (:func:`interpreter.original_loop`), and
everything the computation ends with is compared: error (type and message), gas remaining,
used and refunded, output, return data, logs, the stack (as the ints its items stand for), the
memory, the program counter and the state root.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth._utils.address import generate_contract_address
from eth.vm.computation import BaseComputation
from eth.vm.forks.london.computation import LondonComputation
from eth.vm.forks.prague.computation import PragueComputation
from eth.vm.message import Message
from eth.vm.stack import to_int
from eth_abi import encode
from eth_utils import (
    function_signature_to_4byte_selector,
    to_canonical_address,
    to_checksum_address,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kakehashi.ledgers.evm import interpreter, toolchain
from kakehashi.ledgers.evm.chain import (
    DEFAULT_CHAIN_ID,
    GENESIS_FILE,
    KEYS_FILE,
    EmbeddedChain,
    dev_accounts,
)

pytestmark = pytest.mark.filterwarnings("ignore:SELFDESTRUCT opcode:DeprecationWarning")

TARGET = bytes.fromhex("00000000000000000000000000000000000c0de1")
OTHER = bytes.fromhex("00000000000000000000000000000000000c0de2")
SENDER = bytes.fromhex(dev_accounts()[0].address[2:])

# Opcodes the loop runs inline (besides PUSH / DUP / SWAP) and some it hands to py-evm.
INLINE_OPS = [
    0x00, 0x01, 0x02, 0x03, 0x04, 0x06, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
    0x19, 0x1A, 0x1B, 0x1C, 0x1D, 0x20, 0x30, 0x33, 0x34, 0x35, 0x36, 0x37, 0x50, 0x51, 0x52,
    0x53, 0x56, 0x57, 0x58, 0x59, 0x5A, 0x5B, 0x5E,
]  # fmt: skip
FALLBACK_OPS = [
    0x05, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x31, 0x32, 0x38, 0x39, 0x3A, 0x3B, 0x3D, 0x3F,
    0x40, 0x41, 0x42, 0x43, 0x46, 0x47, 0x48, 0x54, 0x55, 0x5C, 0x5D, 0xA0, 0xA1, 0xA2, 0xF3,
    0xFD, 0xFE, 0xEF, 0xFF,
]  # fmt: skip
INTERESTING = [
    0, 1, 2, 31, 32, 33, 64, 255, 256, 2**64, 2**255 - 1, 2**255, 2**256 - 1, 2**32, 10**6,
]  # fmt: skip


@pytest.fixture(scope="module")
def chain() -> Iterator[EmbeddedChain]:
    with EmbeddedChain() as c:
        yield c


def _summary(computation: Any, state: Any) -> dict[str, Any]:
    error = computation._error
    return {
        "error": None if error is None else (type(error), str(error)),
        "gas_remaining": computation.get_gas_remaining(),
        "gas_used": computation.get_gas_used(),
        "refund": computation.get_gas_refund(),
        "output": computation.output,
        "return_data": computation.return_data,
        "logs": computation.get_log_entries(),
        "stack": [to_int(v) for v in computation._stack.values],
        "memory": bytes(computation._memory._bytes),
        "pc": computation.code.program_counter,
        "children": len(computation.children),
        "state_root": state.make_state_root(),
    }


def _execute(chain: EmbeddedChain, code: bytes, data: bytes, gas: int, value: int) -> Any:
    state = chain._chain.get_vm(chain.head()).state
    state.set_code(TARGET, code)
    state.set_code(OTHER, bytes([0x60, 0x2A, 0x5F, 0x52, 0x60, 0x20, 0x5F, 0xF3]))
    state.set_storage(TARGET, 1, 7)
    context = state.get_transaction_context_class()(gas_price=1, origin=SENDER)
    message = Message(gas=gas, to=TARGET, sender=SENDER, value=value, data=data, code=code)
    computation = state.computation_class.apply_message(state, message, context)
    return _summary(computation, state)


def _compare(chain: EmbeddedChain, code: bytes, data: bytes = b"", gas: int = 100_000) -> Any:
    fast = _execute(chain, code, data, gas, 1)
    with interpreter.original_loop():
        slow = _execute(chain, code, data, gas, 1)
    assert fast == slow
    return fast


def test_installed_on_the_chains_computations() -> None:
    assert BaseComputation.__dict__["apply_computation"].__func__ is interpreter.apply_computation
    assert interpreter._plan_for(PragueComputation) is not None
    # London has no PUSH0 / MCOPY in its table: py-evm's loop runs it.
    assert interpreter._plan_for(LondonComputation) is None


def _push(value: int, size: int | None = None) -> bytes:
    if size is None:
        size = max(1, (value.bit_length() + 7) // 8)
    return bytes([0x5F + size]) + value.to_bytes(size, "big")


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (bytes([0x5F] * 1025), "FullStack"),
        (bytes([0x5F] * 1024 + [0x80]), "FullStack"),
        (bytes([0x5F] * 1024 + [0x60]), "FullStack"),
        (bytes([0x5F, 0x91]), "InsufficientStack"),
        (bytes([0x5F, 0x81]), "InsufficientStack"),
        (bytes([0x01]), "InsufficientStack"),
        (bytes([0x5F, 0x52]), "InsufficientStack"),
        (bytes([0x5F, 0x5F, 0x5E]), "InsufficientStack"),
        (bytes([0x50]), "InsufficientStack"),
        (_push(3) + bytes([0x56, 0x00, 0x5B]), "InvalidJumpDestination"),
        (_push(5) + bytes([0x56, 0x00, 0x60, 0x5B]), "InvalidInstruction"),  # PUSH1 data
        (_push(1) + _push(2**200) + bytes([0x57]), "InvalidJumpDestination"),
        (_push(2**255) + bytes([0x51]), "OutOfGas"),
        (_push(2**20) + _push(0) + bytes([0x20]), "OutOfGas"),
        (bytes([0x5B, 0x5F, 0x56]), "OutOfGas"),  # a loop until the gas runs out
        (bytes([0x0C]), "InvalidInstruction"),
        (_push(1) + bytes([0x5F, 0x5F, 0xFD]), "Revert"),
        (bytes([0x7F, 0x01, 0x02]), None),  # a PUSH32 cut short: zeros on the right
        (_push(5) + bytes([0x56, 0x60, 0x5B, 0x5B, 0x00]), None),
        (_push(2**255) + _push(2**200 + 7) + bytes([0x1D, 0x60, 0xFF, 0x1D]), None),
    ],
)
def test_edge_cases(chain: EmbeddedChain, code: bytes, error: str | None) -> None:
    result = _compare(chain, code, b"\x01\x02", gas=50_000)
    assert (result["error"] and result["error"][0].__name__) == error


@pytest.mark.parametrize("gas", [0, 1, 2, 3, 5, 8, 20, 40, 100])
def test_out_of_gas_at_every_step(chain: EmbeddedChain, gas: int) -> None:
    code = (
        _push(64)
        + _push(0)
        + bytes([0x52])  # MSTORE
        + _push(32)
        + _push(0)
        + bytes([0x20])  # KECCAK256
        + _push(0x40)
        + _push(0)
        + _push(0x20)
        + bytes([0x5E, 0x59, 0x5A, 0x00])  # MCOPY MSIZE GAS STOP
    )
    _compare(chain, code, gas=gas)


@st.composite
def programs(draw: st.DrawFn) -> bytes:
    """Bytecode made mostly of the inlined opcodes, with jumps to its own JUMPDESTs."""
    pieces: list[bytes | int] = []  # an int k: PUSH2 of the k-th JUMPDEST
    for _ in range(draw(st.integers(0, 60))):
        kind = draw(st.integers(0, 11))
        if kind <= 2:
            value = draw(st.sampled_from(INTERESTING) | st.integers(0, 2**256 - 1))
            size = max(1, (value.bit_length() + 7) // 8)
            size = draw(st.integers(size, 32)) if draw(st.booleans()) else size
            pieces.append(_push(value, size) if value or draw(st.booleans()) else b"\x5f")
        elif kind <= 5:
            pieces.append(bytes([draw(st.sampled_from(INLINE_OPS))]))
        elif kind == 6:
            pieces.append(bytes([draw(st.integers(0x80, 0x9F))]))
        elif kind == 7:
            pieces.append(bytes([draw(st.sampled_from(FALLBACK_OPS))]))
        elif kind == 8:
            pieces.append(b"\x5b")
        elif kind == 9:
            pieces.append(draw(st.integers(0, 7)))
            pieces.append(bytes([draw(st.sampled_from([0x56, 0x57]))]))
        elif kind == 10:  # a call that can succeed: to OTHER, itself or the identity precompile
            to = draw(st.sampled_from([OTHER, TARGET, b"\x04".rjust(20, b"\x00")]))
            op = draw(st.sampled_from([0xF1, 0xFA, 0xF4]))
            value = [_push(0)] if op == 0xF1 else []
            args = [_push(32), _push(0), _push(32), _push(0), *value, _push(int.from_bytes(to))]
            pieces.append(b"".join(args) + bytes([0x5A, op]))
        else:
            pieces.append(bytes(draw(st.lists(st.integers(0, 255), max_size=4))))
    if draw(st.booleans()):  # a PUSH cut short by the end of the code
        pieces.append(bytes([draw(st.integers(0x60, 0x7F))]) + draw(st.binary(max_size=3)))
    # JUMPDEST positions, with every label assembled as a 3-byte PUSH2.
    positions = []
    offset = 0
    for piece in pieces:
        if piece == b"\x5b":
            positions.append(offset)
        offset += 4 if isinstance(piece, int) else len(piece)
    out = bytearray()
    for piece in pieces:
        if isinstance(piece, int):
            target = positions[piece % len(positions)] if positions else piece
            out += b"\x61" + target.to_bytes(2, "big") + b"\x5b"
        else:
            out += piece
    return bytes(out)


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    code=programs(),
    data=st.binary(max_size=80),
    gas=st.sampled_from([0, 3, 10, 30, 100, 1_000, 5_000]) | st.integers(0, 40_000),
)
def test_random_programs(chain: EmbeddedChain, code: bytes, data: bytes, gas: int) -> None:
    _compare(chain, code, data, gas)


# ------------------------------------------------------------------------- real contracts
def _selector(signature: str) -> bytes:
    return function_signature_to_4byte_selector(signature)


def _transactions(chain_id: int) -> list[bytes]:
    """Deploy the ERC-20 and use it: transfers, allowances, reverts, an out-of-gas, a permit."""
    compiled = toolchain.compile_contract("tokens/erc20")
    owner, alice, bob = dev_accounts()[:3]
    token = generate_contract_address(to_canonical_address(owner.address), 0)
    deploy = compiled.bytecode + encode(
        ["string", "string", "uint8", "uint256"], ["Token", "TOK", 18, 10**24]
    )

    def call(signature: str, types: list[str], args: list[Any]) -> bytes:
        return _selector(signature) + encode(types, args)

    plan: list[tuple[Any, bytes | None, bytes, int]] = [
        (owner, None, deploy, 3_000_000),
        (owner, token, call("transfer(address,uint256)", ["address", "uint256"],
                            [alice.address, 10**20]), 200_000),
        (alice, token, call("approve(address,uint256)", ["address", "uint256"],
                            [bob.address, 5 * 10**19]), 200_000),
        (bob, token, call("transferFrom(address,address,uint256)",
                          ["address", "address", "uint256"],
                          [alice.address, bob.address, 10**19]), 200_000),
        (bob, token, call("transfer(address,uint256)", ["address", "uint256"],
                          [alice.address, 10**30]), 200_000),  # reverts: balance too low
        (alice, token, call("transfer(address,uint256)", ["address", "uint256"],
                            [bob.address, 1]), 30_000),  # runs out of gas
        (owner, token, call("mint(address,uint256)", ["address", "uint256"],
                            [bob.address, 123]), 200_000),
        (alice, token, call("burn(uint256)", ["uint256"], [7]), 200_000),
        (bob, token, call(
            "permit(address,address,uint256,uint256,uint8,bytes32,bytes32)",
            ["address", "address", "uint256", "uint256", "uint8", "bytes32", "bytes32"],
            [alice.address, bob.address, 1, 2**255, 27, b"\x01" * 32, b"\x02" * 32],
        ), 200_000),  # ecrecover, then reverts: not alice's signature
    ]  # fmt: skip
    nonces: dict[str, int] = {}
    raws = []
    for account, to, data, gas in plan:
        nonce = nonces.get(account.address, 0)
        nonces[account.address] = nonce + 1
        tx: dict[str, Any] = {
            "type": 2,
            "chainId": chain_id,
            "nonce": nonce,
            "value": 0,
            "gas": gas,
            "maxFeePerGas": 10**11,
            "maxPriorityFeePerGas": 1,
            "data": data,
        }
        if to is not None:
            tx["to"] = to_checksum_address(to)
        raws.append(bytes(account.sign_transaction(tx).raw_transaction))
    return raws


def _replay(raws: list[bytes], data_dir: Path) -> list[tuple[Any, ...]]:
    out = []
    with EmbeddedChain(data_dir=data_dir) as chain:
        for raw in raws:
            tx_hash = chain.send_raw_transaction(raw)
            receipt = chain.receipt(tx_hash)
            assert receipt is not None
            header = chain.header(receipt.block_number)
            assert header is not None
            logs = [(log.address, log.topics, log.data) for log in receipt.logs]
            out.append(
                (
                    receipt.status,
                    receipt.gas_used,
                    receipt.cumulative_gas_used,
                    receipt.contract_address,
                    logs,
                    receipt.bloom,
                    header.state_root,
                    header.gas_used,
                )
            )
    return out


def test_erc20_transactions_give_the_same_receipts_and_state_roots(tmp_path: Path) -> None:
    raws = _transactions(DEFAULT_CHAIN_ID)
    fast = _replay(raws, tmp_path / "fast")
    # The same genesis and validators (whose proposer is each block's coinbase).
    (tmp_path / "slow").mkdir()
    for name in (GENESIS_FILE, KEYS_FILE):
        shutil.copy(tmp_path / "fast" / name, tmp_path / "slow" / name)
    with interpreter.original_loop():
        slow = _replay(raws, tmp_path / "slow")
    assert fast == slow
    statuses = [entry[0] for entry in fast]
    assert statuses == [1, 1, 1, 1, 0, 0, 1, 1, 0]
