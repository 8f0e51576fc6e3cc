"""The call encoding of the key-value applications both ledgers ship (DESIGN.md §6).

A part's ``call_info`` for the key-value application is ``abi.encode(uint8 op, bytes key,
bytes value)`` — what the Python side (:mod:`kakehashi.cross.corda_kv`) and the EVM side
(``contracts/cross/cross_app.vy``) both read:

* :data:`OP_SET` ``(key, value)`` — write ``value``; returns ``b"ok"``;
* :data:`OP_DELETE` ``(key, b"")`` — remove the key; returns ``b"ok"``;
* :data:`OP_GET` ``(key, b"")`` — read the committed value (at most
  :data:`~kakehashi.cross.tx.MAX_RETURN_VALUE` bytes; an absent key reads as ``b""``); returns
  it, so another part can link to it;
* :data:`OP_SET_LINKED` ``(key, b"")`` — write the declared return value of the part's first
  link (a cross-chain call: this ledger acts on what the other one answers); returns ``b"ok"``;
* :data:`OP_SET_EVALUATED` ``(key, evaluator ‖ source)`` (EVM chain only) — write what the
  contract at the 20-byte address ``evaluator`` makes of part ``source``'s answer
  (``evaluate(bytes key, bytes answer) -> bytes``, a view); returns ``b"ok"``. The answer is the
  return value part ``source``'s acknowledgement brings back to the coordinating ledger (up to
  :data:`~kakehashi.cross.packets.MAX_ANSWER` bytes, declared or not), taken before the
  decision: so the part runs only as the coordinating EVM chain's own part of a Two-Phase
  Commit; an answer the evaluator refuses aborts the transaction.

**Locks.** A prepared write (SET, DELETE, SET_LINKED) holds an exclusive lock on its key until
the transaction commits or aborts; a prepared GET holds a shared read lock. A write is refused
while another transaction holds any lock on the key, a read while another holds the write lock
(so no write skew); the refusal fails the prepare cleanly (the transaction aborts, nothing
blocks). On commit a write becomes visible (a delete removes the key), on abort it is dropped.

The EVM application also escrows assets (:data:`OP_ERC20`, :data:`OP_ERC721`; see
``contracts/cross/cross_app.vy``); those ops are refused on the Corda model.

Pure: bytes in, :class:`KvOp` or :class:`~kakehashi.cross.tx.CrossTxError` out.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_abi.exceptions import DecodingError, EncodingError

from kakehashi.cross.tx import MAX_CALL_INFO, MAX_CONTRACT_TRANSACTIONS, CrossTxError

__all__ = [
    "KV_OPS",
    "MAX_KEY",
    "MAX_VALUE",
    "OK",
    "OP_DELETE",
    "OP_ERC20",
    "OP_ERC721",
    "OP_GET",
    "OP_SET",
    "OP_SET_EVALUATED",
    "OP_SET_LINKED",
    "OP_TOKEN_MOVE",
    "KvOp",
    "asset_call",
    "decode_call",
    "kv_call",
    "kv_delete",
    "kv_get",
    "kv_set_evaluated",
    "kv_set_linked",
]

OP_SET = 1
OP_GET = 2
OP_DELETE = 3
OP_SET_LINKED = 4
OP_SET_EVALUATED = 5  # the EVM application only
OP_ERC20 = 16
OP_ERC721 = 17
OP_TOKEN_MOVE = 32  # the Corda model's token escrow (kakehashi.cross.corda_tokens)
KV_OPS = frozenset({OP_SET, OP_GET, OP_DELETE, OP_SET_LINKED})
_ALL_OPS = KV_OPS | {OP_SET_EVALUATED, OP_ERC20, OP_ERC721}

MAX_KEY, MAX_VALUE = 64, 192  # as contracts/cross/cross_app.vy
OK = b"ok"


@dataclass(frozen=True, slots=True)
class KvOp:
    op: int
    key: bytes
    value: bytes = b""

    @property
    def writes(self) -> bool:
        return self.op in (OP_SET, OP_DELETE, OP_SET_LINKED, OP_SET_EVALUATED)

    def encode(self) -> bytes:
        try:
            fields = [self.op, self.key, self.value]
            encoded = bytes(abi_encode(["uint8", "bytes", "bytes"], fields))
        except (EncodingError, TypeError, ValueError, OverflowError) as exc:
            raise CrossTxError(f"cannot encode the call: {exc}") from None
        if len(encoded) > MAX_CALL_INFO:
            raise CrossTxError(f"the call is {len(encoded)} bytes, more than {MAX_CALL_INFO}")
        return encoded


def _kv(op: int, key: bytes, value: bytes = b"") -> bytes:
    if not 0 < len(key) <= MAX_KEY or len(value) > MAX_VALUE:
        raise CrossTxError(f"a key is 1 to {MAX_KEY} bytes and a value at most {MAX_VALUE}")
    return KvOp(op, key, value).encode()


def kv_call(key: bytes, value: bytes) -> bytes:
    """The call info of "set ``key`` to ``value``"."""
    return _kv(OP_SET, key, value)


def kv_get(key: bytes) -> bytes:
    """The call info of "read ``key``" (returns its committed value, under a read lock)."""
    return _kv(OP_GET, key)


def kv_delete(key: bytes) -> bytes:
    return _kv(OP_DELETE, key)


def kv_set_linked(key: bytes) -> bytes:
    """The call info of "set ``key`` to the first linked part's declared return value"."""
    return _kv(OP_SET_LINKED, key)


def kv_set_evaluated(key: bytes, evaluator: bytes, source: int) -> bytes:
    """The call info of "set ``key`` to what ``evaluator`` (a contract's 20-byte address on the
    EVM chain) makes of part ``source``'s answer" (module docstring)."""
    if len(evaluator) != 20:
        raise CrossTxError("an evaluator is a 20-byte EVM contract address")
    if not 0 < len(key) <= MAX_KEY:
        raise CrossTxError(f"a key is 1 to {MAX_KEY} bytes")
    if not 0 <= source < MAX_CONTRACT_TRANSACTIONS:
        raise CrossTxError(f"a source part is 0 to {MAX_CONTRACT_TRANSACTIONS - 1}")
    return KvOp(OP_SET_EVALUATED, key, evaluator + bytes([source])).encode()


def asset_call(op: int, token: bytes, sender: bytes, recipient: bytes, amount: int) -> bytes:
    """EVM escrow: move ``amount`` (ERC-20) or token id ``amount`` (ERC-721) of ``token`` from
    ``sender`` (who must sign the part and have approved the cross application) to
    ``recipient`` on commit; refunded on abort."""
    if op not in (OP_ERC20, OP_ERC721):
        raise CrossTxError(f"not an asset op: {op}")
    if not all(len(a) == 20 for a in (token, sender, recipient)):
        raise CrossTxError("token, sender and recipient are 20-byte EVM addresses")
    if not 0 <= amount < 2**256:
        raise CrossTxError("an amount / token id is a uint256")
    key = bytes(abi_encode(["address", "address", "address"], [token, sender, recipient]))
    return KvOp(op, key, bytes(abi_encode(["uint256"], [amount]))).encode()


def decode_call(call_info: bytes) -> KvOp:
    """Decode a key-value or asset call; only canonical encodings are accepted."""
    try:
        op, key, value = abi_decode(["uint8", "bytes", "bytes"], call_info, strict=True)
    except (DecodingError, ValueError, TypeError, OverflowError) as exc:
        raise CrossTxError(
            f"not a key-value call (abi.encode(uint8 op, bytes key, bytes value)): {exc}"
        ) from None
    if op not in _ALL_OPS:
        raise CrossTxError(f"unknown key-value op {op}")
    call = KvOp(int(op), bytes(key), bytes(value))
    if call.encode() != call_info:
        raise CrossTxError("the key-value call is not canonically encoded")
    if op == OP_SET_EVALUATED and (not 0 < len(call.key) <= MAX_KEY or len(call.value) != 21):
        raise CrossTxError(
            "an evaluated write is (key of 1 to 64 bytes, 20-byte evaluator and 1-byte source)"
        )
    if op in KV_OPS:
        if not 0 < len(call.key) <= MAX_KEY or len(call.value) > MAX_VALUE:
            raise CrossTxError(f"a key is 1 to {MAX_KEY} bytes and a value at most {MAX_VALUE}")
        if op != OP_SET and call.value:
            raise CrossTxError("only a SET carries a value")
    return call
