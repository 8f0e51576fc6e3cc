"""An exact, faster interpreter loop for py-evm: the hottest opcodes run inline.

py-evm executes every opcode through several Python calls: the code stream's generator, a dict
lookup, ``_FastOpcode.__call__``, ``computation.consume_gas`` and ``GasMeter.consume_gas``, the
opcode's logic function, and ``Stack.pop_ints`` / ``push_int`` (which build tuples, convert and
validate every value). Delivering one IBC packet into the EVM runs ~8,000 opcodes; that
per-opcode overhead is most of its time.

:func:`apply_computation` replaces ``BaseComputation.apply_computation`` (installed by
:func:`install`, from :func:`kakehashi.ledgers.evm.speedups.install`). It does what py-evm's does
(the same set-up, precompiles, contracts-created bookkeeping, ``with computation`` error
handling) but runs the bytecode in one function whose locals hold the program counter, the gas
remaining, the stack's list and the memory's ``bytearray``:

* The opcodes that dominate compiled contracts are executed inline: ``STOP``, ``PUSH0`` to
  ``PUSH32``, ``DUP1`` to ``DUP16``, ``SWAP1`` to ``SWAP16``, ``POP``, ``ADD``, ``SUB``,
  ``MUL``, ``DIV``, ``MOD``, ``LT``, ``GT``, ``SLT``, ``SGT``, ``EQ``, ``ISZERO``, ``AND``,
  ``OR``, ``XOR``, ``NOT``, ``BYTE``, ``SHL``, ``SHR``, ``SAR``, ``KECCAK256``, ``ADDRESS``,
  ``CALLER``, ``CALLVALUE``, ``CALLDATALOAD``, ``CALLDATASIZE``, ``CALLDATACOPY``, ``MLOAD``,
  ``MSTORE``, ``MSTORE8``, ``MSIZE``, ``MCOPY``, ``JUMP``, ``JUMPI``, ``PC``, ``GAS`` and
  ``JUMPDEST``. Each charges the gas py-evm's opcode table gives it (read from that table)
  before anything else, then memory expansion and word costs exactly as py-evm computes them,
  and raises the same exceptions with the same messages at the same points (``OutOfGas``,
  ``InsufficientStack``, ``FullStack``, ``InvalidJumpDestination``, ``InvalidInstruction``).
* Every other opcode (storage, calls, creates, logs, ``RETURN``, ``REVERT``, block and account
  context, invalid opcodes) is py-evm's own opcode object, called as py-evm calls it, with the
  program counter and gas written back to the code stream and gas meter before the call and
  read again after it.
* The code is analysed once per distinct bytecode (cached by its bytes): each ``PUSH``'s value
  (zero-padded past the end of the code, as py-evm pads it) and the positions of valid
  ``JUMPDEST`` instructions (not inside ``PUSH`` data: what py-evm's ``is_valid_opcode``
  computes).
* Values on py-evm's stack are ``int`` or ``bytes``. The inline opcodes keep only ints there;
  a ``bytes`` value pushed by a fallback opcode is converted to the int it stands for. py-evm
  converts every stack item it pops (``to_int``, or ``to_bytes`` followed by padding or
  truncation to the width it needs), so the two forms are interchangeable to every opcode.

The loop is used only when the computation class's opcode table holds py-evm's standard
functions for every inlined opcode (Shanghai and later forks; the chain runs Prague) and the
computation uses py-evm's own stack, memory, gas meter and gas / memory methods; otherwise,
and whenever py-evm's DEBUG2 logging is on (``computation.logger.show_debug2`` or the gas
meter's), py-evm's original loop runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from eth._utils.numeric import ceil32
from eth.constants import GAS_COPY, GAS_SHA3WORD, UINT_255_NEGATIVE_ONE, UINT_256_MAX
from eth.exceptions import (
    FullStack,
    Halt,
    InsufficientStack,
    InvalidInstruction,
    InvalidJumpDestination,
    OutOfGas,
)
from eth.vm import computation as _computation_module
from eth.vm.code_stream import CodeStream
from eth.vm.computation import BaseComputation, memory_gas_cost
from eth.vm.gas_meter import GasMeter
from eth.vm.logic import (
    arithmetic,
    comparison,
    context,
    duplication,
    flow,
    sha3,
    swap,
)
from eth.vm.logic import memory as memory_logic
from eth.vm.logic import stack as stack_logic
from eth.vm.logic.invalid import InvalidOpcode
from eth.vm.memory import Memory
from eth.vm.opcode import _FastOpcode
from eth.vm.stack import Stack
from eth_hash.auto import keccak

ANALYSED_CODES_MAX = 256  # codes as lists of ints: ~16 bytes per code byte

_ORIGINAL = BaseComputation.__dict__["apply_computation"]
_original_apply = _ORIGINAL.__func__
_NO_RESULT = _computation_module.NO_RESULT

# The logic function py-evm's table must hold for each opcode the loop runs inline.
_INLINE: dict[int, Any] = {
    0x00: flow.stop,
    0x01: arithmetic.add,
    0x02: arithmetic.mul,
    0x03: arithmetic.sub,
    0x04: arithmetic.div,
    0x06: arithmetic.mod,
    0x10: comparison.lt,
    0x11: comparison.gt,
    0x12: comparison.slt,
    0x13: comparison.sgt,
    0x14: comparison.eq,
    0x15: comparison.iszero,
    0x16: comparison.and_op,
    0x17: comparison.or_op,
    0x18: comparison.xor,
    0x19: comparison.not_op,
    0x1A: comparison.byte_op,
    0x1B: arithmetic.shl,
    0x1C: arithmetic.shr,
    0x1D: arithmetic.sar,
    0x20: sha3.sha3,
    0x30: context.address,
    0x33: context.caller,
    0x34: context.callvalue,
    0x35: context.calldataload,
    0x36: context.calldatasize,
    0x37: context.calldatacopy,
    0x50: stack_logic.pop,
    0x51: memory_logic.mload,
    0x52: memory_logic.mstore,
    0x53: memory_logic.mstore8,
    0x56: flow.jump,
    0x57: flow.jumpi,
    0x58: flow.program_counter,
    0x59: memory_logic.msize,
    0x5A: flow.gas,
    0x5B: flow.jumpdest,
    0x5E: memory_logic.mcopy,
    **{0x5F + size: getattr(stack_logic, f"push{size}") for size in range(33)},
    **{0x7F + k: getattr(duplication, f"dup{k}") for k in range(1, 17)},
    **{0x8F + k: getattr(swap, f"swap{k}") for k in range(1, 17)},
}

# Methods and attributes the inline opcodes stand in for: a computation class overriding any
# of them runs py-evm's loop.
_BASE_MEMBERS = (
    "consume_gas",
    "get_gas_remaining",
    "extend_memory",
    "memory_write",
    "memory_read_bytes",
    "memory_copy",
    "stack_swap",
    "stack_dup",
    "stack_pop_ints",
    "stack_pop_bytes",
    "stack_pop_any",
    "stack_pop1_int",
    "stack_pop1_bytes",
    "stack_pop1_any",
    "stack_push_int",
    "stack_push_bytes",
)

_Plan = tuple[list[int], list[str], list[Any]]
_plans: dict[Any, _Plan | None] = {}
_analysed: dict[bytes, tuple[list[int], list[int], frozenset[int]]] = {}
_installed = False


def _plan_for(cls: Any) -> _Plan | None:
    """Gas costs, mnemonics and py-evm opcode objects per opcode; None if the loop can't run."""
    for name in _BASE_MEMBERS:
        if getattr(cls, name, None) is not getattr(BaseComputation, name):
            return None
    table = cls.opcodes
    if table is None:
        return None
    costs = [0] * 256
    names = [""] * 256
    fallback: list[Any] = [None] * 256
    for op in range(256):
        entry = table.get(op)
        fallback[op] = entry if entry is not None else InvalidOpcode(op)
        logic = _INLINE.get(op)
        if logic is None:
            continue
        if type(entry) is not _FastOpcode or entry.logic_fn is not logic:
            return None
        costs[op] = entry.gas_cost
        names[op] = entry.mnemonic
    return costs, names, fallback


def _analyse(code: bytes) -> tuple[list[int], list[int], frozenset[int]]:
    """(code as ints padded with STOPs, PUSH values by position + 1, valid JUMPDESTs)."""
    found = _analysed.get(code)
    if found is not None:
        return found
    length = len(code)
    values = [0] * (length + 1)
    for position, op in enumerate(code):
        if 0x60 <= op <= 0x7F:
            size = op - 0x5F
            raw = code[position + 1 : position + 1 + size]
            values[position + 1] = int.from_bytes(raw.ljust(size, b"\x00"), "big")
    destinations = set()
    position = 0
    while position < length:
        op = code[position]
        if op == 0x5B:
            destinations.add(position)
        position += op - 0x5E if 0x60 <= op <= 0x7F else 1
    # PUSH32 at the last byte moves the counter up to 33 past the end: STOPs there.
    found = (list(code) + [0] * 34, values, frozenset(destinations))
    if len(_analysed) >= ANALYSED_CODES_MAX:
        _analysed.clear()
    _analysed[code] = found
    return found


def _out_of_gas(needed: int, remaining: int, reason: str) -> OutOfGas:
    return OutOfGas(f"Out of gas: Needed {needed} - Remaining {remaining} - Reason: {reason}")


def _expand(memory: Memory, gas: int, start: int, size: int) -> int:
    """``BaseComputation.extend_memory`` for ``size`` > 0: the gas left after paying for it."""
    before_size = ceil32(len(memory._bytes))
    after_size = ceil32(start + size)
    before_cost = memory_gas_cost(before_size)
    after_cost = memory_gas_cost(after_size)
    if before_cost < after_cost:
        fee = after_cost - before_cost
        if fee > gas:
            raise _out_of_gas(fee, gas, f"Expanding memory {before_size} -> {after_size}")
        gas -= fee
    memory.extend(start, size)
    return gas


def _bad_jump(code: bytes, destination: int) -> Exception:
    if destination < len(code) and code[destination] == 0x5B:
        return InvalidInstruction("Jump resulted in invalid instruction")
    return InvalidJumpDestination("Invalid Jump Destination")


def _original_loop(computation: Any) -> None:
    """py-evm's loop (without its DEBUG2 logging, which is off whenever this runs)."""
    opcode_lookup = computation.opcodes
    for opcode in computation.code:
        try:
            opcode_fn = opcode_lookup[opcode]
        except KeyError:
            opcode_fn = InvalidOpcode(opcode)
        try:
            opcode_fn(computation=computation)
        except Halt:
            break


def _run(computation: Any, plan: _Plan) -> None:
    """Execute ``computation``'s code from its program counter (normally 0) to a halt."""
    costs, names, fallback = plan
    stream = computation.code
    raw = stream._raw_code_bytes
    code, values, destinations = _analyse(raw)
    stack = computation._stack.values
    memory = computation._memory
    mem = memory._bytes
    msize = len(mem)
    meter = computation._gas_meter
    msg = computation.msg
    calldata = msg.data_as_bytes
    m256 = UINT_256_MAX
    sign = 1 << 255
    gas = meter.gas_remaining
    pc = stream.program_counter
    n = len(stack)
    synced = False
    try:
        while True:
            op = code[pc]
            pc += 1
            cost = costs[op]
            if cost > gas:
                raise _out_of_gas(cost, gas, names[op])
            gas -= cost
            if op >= 0x5F:
                if op < 0x80:  # PUSH0 .. PUSH32 (values[pc]: the value of the PUSH at pc - 1)
                    if n > 1023:
                        pc += op - 0x5F
                        raise FullStack("Stack limit reached")
                    stack.append(values[pc])
                    n += 1
                    pc += op - 0x5F
                    continue
                if op < 0x90:  # DUP1 .. DUP16
                    if n > 1023:
                        raise FullStack("Stack limit reached")
                    k = op - 0x7F
                    if n < k:
                        raise InsufficientStack(f"Insufficient stack items for DUP{k}")
                    stack.append(stack[-k])
                    n += 1
                    continue
                if op < 0xA0:  # SWAP1 .. SWAP16
                    k = op - 0x8F
                    if n <= k:
                        raise InsufficientStack(f"Insufficient stack items for SWAP{k}")
                    k = -k - 1
                    stack[-1], stack[k] = stack[k], stack[-1]
                    continue
            elif op == 0x50:  # POP
                if not n:
                    raise InsufficientStack("Wanted 1 stack item, had none")
                stack.pop()
                n -= 1
                continue
            elif op == 0x01:  # ADD
                if n < 2:
                    raise InsufficientStack(f"Wanted 2 stack items, only had {n}")
                a = stack.pop()
                n -= 1
                stack[-1] = (a + stack[-1]) & m256
                continue
            elif op == 0x51:  # MLOAD
                if not n:
                    raise InsufficientStack("Wanted 1 stack item, had none")
                a = stack[-1]
                if a + 32 > msize:
                    del stack[-1]  # popped when py-evm charges for memory
                    gas = _expand(memory, gas, a, 32)
                    stack.append(0)
                    mem = memory._bytes
                    msize = len(mem)
                stack[-1] = int.from_bytes(mem[a : a + 32], "big")
                continue
            elif op == 0x52:  # MSTORE
                if n < 2:
                    del stack[:]  # py-evm pops the offset, then finds no value
                    raise InsufficientStack("Wanted 1 stack item, had none")
                a = stack.pop()
                b = stack.pop()
                n -= 2
                if a + 32 > msize:
                    gas = _expand(memory, gas, a, 32)
                    mem = memory._bytes
                    msize = len(mem)
                mem[a : a + 32] = b.to_bytes(32, "big")
                continue
            elif op == 0x57:  # JUMPI
                if n < 2:
                    raise InsufficientStack(f"Wanted 2 stack items, only had {n}")
                a = stack.pop()
                b = stack.pop()
                n -= 2
                if b:
                    if a not in destinations:
                        pc = a
                        raise _bad_jump(raw, a)
                    pc = a
                continue
            elif op == 0x5B:  # JUMPDEST
                continue
            elif op == 0x5E:  # MCOPY
                if n < 3:
                    raise InsufficientStack(f"Wanted 3 stack items, only had {n}")
                a = stack.pop()
                b = stack.pop()
                size = stack.pop()
                n -= 3
                if size and (a if a > b else b) + size > msize:
                    gas = _expand(memory, gas, a if a > b else b, size)
                    mem = memory._bytes
                    msize = len(mem)
                cost = GAS_COPY * ((size + 31) // 32)
                if cost > gas:
                    raise _out_of_gas(cost, gas, "MCOPY fee")
                gas -= cost
                if size:
                    mem[a : a + size] = mem[b : b + size]
                continue
            elif op == 0x56:  # JUMP
                if not n:
                    raise InsufficientStack("Wanted 1 stack item, had none")
                a = stack.pop()
                n -= 1
                if a not in destinations:
                    pc = a
                    raise _bad_jump(raw, a)
                pc = a
                continue
            elif op == 0x35:  # CALLDATALOAD
                if not n:
                    raise InsufficientStack("Wanted 1 stack item, had none")
                a = stack[-1]
                stack[-1] = int.from_bytes(calldata[a : a + 32].ljust(32, b"\x00"), "big")
                continue
            elif op == 0x15:  # ISZERO
                if not n:
                    raise InsufficientStack("Wanted 1 stack item, had none")
                stack[-1] = 1 if stack[-1] == 0 else 0
                continue
            elif op == 0x16:  # AND
                if n < 2:
                    raise InsufficientStack(f"Wanted 2 stack items, only had {n}")
                a = stack.pop()
                n -= 1
                stack[-1] = a & stack[-1]
                continue
            elif op == 0x18:  # XOR
                if n < 2:
                    raise InsufficientStack(f"Wanted 2 stack items, only had {n}")
                a = stack.pop()
                n -= 1
                stack[-1] = a ^ stack[-1]
                continue
            elif op == 0x11:  # GT
                if n < 2:
                    raise InsufficientStack(f"Wanted 2 stack items, only had {n}")
                a = stack.pop()
                n -= 1
                stack[-1] = 1 if a > stack[-1] else 0
                continue
            elif op == 0x03:  # SUB
                if n < 2:
                    raise InsufficientStack(f"Wanted 2 stack items, only had {n}")
                a = stack.pop()
                n -= 1
                stack[-1] = (a - stack[-1]) & m256
                continue
            elif op == 0x20:  # KECCAK256
                if n < 2:
                    raise InsufficientStack(f"Wanted 2 stack items, only had {n}")
                a = stack.pop()
                size = stack[-1]
                n -= 1
                if size:
                    if a + size > msize:
                        del stack[-1]  # popped when py-evm charges for memory
                        gas = _expand(memory, gas, a, size)
                        stack.append(0)
                        mem = memory._bytes
                        msize = len(mem)
                    data = bytes(mem[a : a + size])
                else:
                    data = b""
                cost = GAS_SHA3WORD * ((len(data) + 31) // 32)
                if cost > gas:
                    del stack[-1]
                    raise _out_of_gas(cost, gas, "SHA3: word gas cost")
                gas -= cost
                stack[-1] = int.from_bytes(keccak(data), "big")
                continue
            elif op == 0x37:  # CALLDATACOPY
                if n < 3:
                    raise InsufficientStack(f"Wanted 3 stack items, only had {n}")
                a = stack.pop()
                b = stack.pop()
                size = stack.pop()
                n -= 3
                if size and a + size > msize:
                    gas = _expand(memory, gas, a, size)
                    mem = memory._bytes
                    msize = len(mem)
                cost = GAS_COPY * ((size + 31) // 32)
                if cost > gas:
                    raise _out_of_gas(cost, gas, "CALLDATACOPY fee")
                gas -= cost
                if size:
                    mem[a : a + size] = calldata[b : b + size].ljust(size, b"\x00")
                continue
            elif op == 0x1C:  # SHR
                if n < 2:
                    raise InsufficientStack(f"Wanted 2 stack items, only had {n}")
                a = stack.pop()
                n -= 1
                stack[-1] = stack[-1] >> a if a < 256 else 0
                continue
            elif op == 0x1B:  # SHL
                if n < 2:
                    raise InsufficientStack(f"Wanted 2 stack items, only had {n}")
                a = stack.pop()
                n -= 1
                stack[-1] = (stack[-1] << a) & m256 if a < 256 else 0
                continue
            elif op == 0x10:  # LT
                if n < 2:
                    raise InsufficientStack(f"Wanted 2 stack items, only had {n}")
                a = stack.pop()
                n -= 1
                stack[-1] = 1 if a < stack[-1] else 0
                continue
            elif op == 0x36:  # CALLDATASIZE
                if n > 1023:
                    raise FullStack("Stack limit reached")
                stack.append(len(msg.data))
                n += 1
                continue
            elif op == 0x13:  # SGT
                if n < 2:
                    raise InsufficientStack(f"Wanted 2 stack items, only had {n}")
                a = stack.pop()
                n -= 1
                stack[-1] = 1 if (a ^ sign) > (stack[-1] ^ sign) else 0
                continue
            elif op == 0x19:  # NOT
                if not n:
                    raise InsufficientStack("Wanted 1 stack item, had none")
                stack[-1] = m256 - stack[-1]
                continue
            elif op == 0x02:  # MUL
                if n < 2:
                    raise InsufficientStack(f"Wanted 2 stack items, only had {n}")
                a = stack.pop()
                n -= 1
                stack[-1] = (a * stack[-1]) & m256
                continue
            elif op == 0x5A:  # GAS
                if n > 1023:
                    raise FullStack("Stack limit reached")
                stack.append(gas)
                n += 1
                continue
            elif op == 0x17:  # OR
                if n < 2:
                    raise InsufficientStack(f"Wanted 2 stack items, only had {n}")
                a = stack.pop()
                n -= 1
                stack[-1] = a | stack[-1]
                continue
            elif op == 0x06:  # MOD
                if n < 2:
                    raise InsufficientStack(f"Wanted 2 stack items, only had {n}")
                a = stack.pop()
                n -= 1
                b = stack[-1]
                stack[-1] = a % b if b else 0
                continue
            elif op == 0x04:  # DIV
                if n < 2:
                    raise InsufficientStack(f"Wanted 2 stack items, only had {n}")
                a = stack.pop()
                n -= 1
                b = stack[-1]
                stack[-1] = a // b if b else 0
                continue
            elif op == 0x34:  # CALLVALUE
                if n > 1023:
                    raise FullStack("Stack limit reached")
                stack.append(msg.value)
                n += 1
                continue
            elif op == 0x14:  # EQ
                if n < 2:
                    raise InsufficientStack(f"Wanted 2 stack items, only had {n}")
                a = stack.pop()
                n -= 1
                stack[-1] = 1 if a == stack[-1] else 0
                continue
            elif op == 0x12:  # SLT
                if n < 2:
                    raise InsufficientStack(f"Wanted 2 stack items, only had {n}")
                a = stack.pop()
                n -= 1
                stack[-1] = 1 if (a ^ sign) < (stack[-1] ^ sign) else 0
                continue
            elif op == 0x33:  # CALLER
                if n > 1023:
                    raise FullStack("Stack limit reached")
                stack.append(int.from_bytes(msg.sender, "big"))
                n += 1
                continue
            elif op == 0x00:  # STOP
                if pc > len(raw):  # py-evm stops there without moving the counter
                    pc -= 1
                break
            elif op == 0x30:  # ADDRESS
                if n > 1023:
                    raise FullStack("Stack limit reached")
                stack.append(int.from_bytes(msg.storage_address, "big"))
                n += 1
                continue
            elif op == 0x1A:  # BYTE
                if n < 2:
                    raise InsufficientStack(f"Wanted 2 stack items, only had {n}")
                a = stack.pop()
                n -= 1
                stack[-1] = (stack[-1] >> (248 - 8 * a)) & 0xFF if a < 32 else 0
                continue
            elif op == 0x1D:  # SAR
                if n < 2:
                    raise InsufficientStack(f"Wanted 2 stack items, only had {n}")
                a = stack.pop()
                n -= 1
                b = stack[-1]
                if b & sign:
                    b -= 1 << 256
                if a >= 256:
                    stack[-1] = 0 if b >= 0 else UINT_255_NEGATIVE_ONE
                else:
                    stack[-1] = (b >> a) & m256
                continue
            elif op == 0x53:  # MSTORE8
                if n < 2:
                    del stack[:]  # py-evm pops the offset, then finds no value
                    raise InsufficientStack("Wanted 1 stack item, had none")
                a = stack.pop()
                b = stack.pop()
                n -= 2
                if a + 1 > msize:
                    gas = _expand(memory, gas, a, 1)
                    mem = memory._bytes
                    msize = len(mem)
                mem[a] = b & 0xFF
                continue
            elif op == 0x59:  # MSIZE
                if n > 1023:
                    raise FullStack("Stack limit reached")
                stack.append(msize)
                n += 1
                continue
            elif op == 0x58:  # PC
                if n > 1023:
                    raise FullStack("Stack limit reached")
                stack.append(pc - 1)
                n += 1
                continue
            # Anything else: py-evm's own opcode, as its loop calls it.
            meter.gas_remaining = gas
            stream.program_counter = pc
            synced = True
            try:
                fallback[op](computation=computation)
            except Halt:
                break
            synced = False
            gas = meter.gas_remaining
            pc = stream.program_counter
            mem = memory._bytes
            msize = len(mem)
            n = len(stack)
            if n and type(stack[-1]) is bytes:
                stack[-1] = int.from_bytes(stack[-1], "big")
    finally:
        if not synced:
            meter.gas_remaining = gas
            stream.program_counter = pc


def apply_computation(
    cls: Any,
    state: Any,
    message: Any,
    transaction_context: Any,
    parent_computation: Any = None,
) -> Any:
    """``BaseComputation.apply_computation`` with the loop above (same results)."""
    try:
        plan = _plans[cls]
    except KeyError:
        plan = _plans[cls] = _plan_for(cls)
    if plan is None or cls.logger.show_debug2 or GasMeter.logger.show_debug2:
        return _original_apply(cls, state, message, transaction_context, parent_computation)
    with cls(state, message, transaction_context) as computation:
        if computation.is_origin_computation:
            computation.contracts_created = []
            if message.is_create:
                cls.consume_initcode_gas_cost(computation)
        if parent_computation is not None:
            computation.contracts_created = parent_computation.contracts_created
        if message.is_create:
            computation.contracts_created.append(message.storage_address)
        precompile = computation.precompiles.get(message.code_address, _NO_RESULT)
        if precompile is not _NO_RESULT:
            if not message.is_delegation:
                precompile(computation)
            return computation
        stream = computation.code
        if (
            type(computation._stack) is Stack
            and type(computation._memory) is Memory
            and type(computation._gas_meter).consume_gas is GasMeter.consume_gas
            and isinstance(stream, CodeStream)
            and type(stream).read is CodeStream.read
            and type(stream._raw_code_bytes) is bytes
            and stream.program_counter == 0
        ):
            _run(computation, plan)
        else:
            _original_loop(computation)
    return computation


def install() -> None:
    """Make py-evm's computations (all forks) run :func:`apply_computation`."""
    global _installed
    if _installed:
        return
    BaseComputation.apply_computation = classmethod(apply_computation)  # type: ignore[assignment,method-assign]
    _installed = True


@contextlib.contextmanager
def original_loop() -> Iterator[None]:
    """Run py-evm's own ``apply_computation`` inside the block (to compare against)."""
    current = BaseComputation.__dict__["apply_computation"]
    BaseComputation.apply_computation = _ORIGINAL  # type: ignore[method-assign]
    try:
        yield
    finally:
        BaseComputation.apply_computation = current  # type: ignore[method-assign]
