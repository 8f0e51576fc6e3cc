# pragma version 0.4.3
"""
@title Cross Framework application on the EVM chain: a key-value lock store and asset escrow
@notice The application the cross module (`cross_kv.vy`, port `cross`) runs each part on:
        `prepare` stages a part under locks, `commit` applies it, `abort` drops it; only the
        module calls them. A part's call is `abi.encode(uint8 op, bytes key, bytes value)`, the
        encoding `kakehashi.cross.kv` defines for both ledgers:

        * SET (1) writes `value`, DELETE (3) removes the key, SET_LINKED (4) writes the first
          linked part's return value — each under an exclusive lock, refused while another
          transaction holds any lock on the key (so no write skew); they return b"ok";
        * GET (2) returns the committed value (at most 96 bytes; an absent key reads b"")
          under a shared read lock, refused while another transaction holds the write lock;
        * SET_EVALUATED (5), value `evaluator (20 bytes) ‖ source (1 byte)`: a write, under the
          exclusive lock, of what the contract `evaluator` makes of part `source`'s answer —
          `evaluator.evaluate(key, answer) -> bytes` (a view). The answer is the return value
          part `source`'s acknowledgement brings back (`answer`, from the module, before it
          decides), so it runs only as the coordinating ledger's own part of a Two-Phase
          Commit, and `source` is another part. A refused answer (the evaluator reverts or
          returns something malformed) aborts the transaction; returns b"ok";
        * ERC20 (16) / ERC721 (17), key `abi.encode(token, sender, recipient)`, value
          `abi.encode(amount or token id)`: prepare escrows the asset here with
          `transferFrom(sender, self, ...)` (the sender signs the part and approved this
          contract), commit pays the recipient, abort refunds the sender; they return b"ok".
          The escrow must arrive whole (a fee-taking token is refused), so that no payout
          spends another escrow; a token that then refuses a payout makes commit / abort
          revert (the decision is not recorded as applied, and is delivered again).

        An expected failure (malformed or non-canonical call, unknown op, lock conflict, failed
        transferFrom, sender not a signer, ...) answers (False, b"", reason) having changed
        nothing; it never reverts, so the module can answer FAILED and stay consistent.
        A part is prepared at most once: staging is per (tx id, part index).
"""

from cross import transaction

MAX_KEY: constant(uint256) = 64  # as kakehashi.cross.kv.MAX_KEY
MAX_VALUE: constant(uint256) = 192  # as kakehashi.cross.kv.MAX_VALUE
ASSET_KEY: constant(uint256) = 96  # abi.encode(address token, address sender, address recipient)
CALL_KEY: constant(uint256) = 96  # the larger of MAX_KEY and ASSET_KEY

OP_SET: constant(uint8) = 1
OP_GET: constant(uint8) = 2
OP_DELETE: constant(uint8) = 3
OP_SET_LINKED: constant(uint8) = 4
OP_SET_EVALUATED: constant(uint8) = 5
EVALUATED_VALUE: constant(uint256) = 21  # evaluator ‖ source
OP_ERC20: constant(uint8) = 16
OP_ERC721: constant(uint8) = 17

OK: constant(Bytes[2]) = b"ok"
SECP256K1: constant(Bytes[1]) = b"\x01"  # the scheme byte of an EXTENSION signer 0x01 ‖ address

module: public(immutable(address))


struct Coordination:  # cross_kv.coordination
    protocol: uint8
    local: uint8
    count: uint8
    decision: uint8


interface ICrossModule:
    def coordination(tx_id: bytes32) -> Coordination: view


interface IERC20:
    def balanceOf(owner: address) -> uint256: view


interface IERC721:
    def ownerOf(token_id: uint256) -> address: view


struct Escrow:
    token: address
    sender: address
    recipient: address
    amount: uint256  # or the ERC-721 token id


# committed key-value state, by keccak256(key)
values: HashMap[bytes32, Bytes[MAX_VALUE]]
present: HashMap[bytes32, bool]  # a key set to b"" exists; a deleted one does not
# locks, by keccak256(key)
write_holder: HashMap[bytes32, bytes32]  # the tx id holding the exclusive lock
extra_writes: HashMap[bytes32, uint256]  # the holder's writing parts beyond the first
read_parts: HashMap[bytes32, uint256]  # shared read locks, all transactions
tx_read_parts: HashMap[bytes32, uint256]  # keccak256(key hash ‖ tx id) -> its read locks
# 1 + the staged parts (each holds one lock or one escrow): never zero, so that a prepare
# updates a slot instead of creating one (5k gas rather than 22k)
held_plus_one: uint256

# parts, by keccak256(tx id ‖ index)
DECIDED: constant(uint8) = 255
stage_op: HashMap[bytes32, uint8]  # 0 never prepared, the op while prepared, DECIDED after
stage_key: HashMap[bytes32, bytes32]  # keccak256(key) of a key-value part
stage_value: HashMap[bytes32, Bytes[MAX_VALUE]]  # what a write part writes on commit
escrows: HashMap[bytes32, Escrow]  # an asset part's escrow
# an evaluated write awaiting its answer: (source + 1) << 160 | evaluator, and its key
awaiting: HashMap[bytes32, uint256]
awaiting_key: HashMap[bytes32, Bytes[CALL_KEY]]  # (at most MAX_KEY bytes)


event Evaluated:
    tx_id: indexed(bytes32)
    index: uint8
    source: uint8
    value: Bytes[MAX_VALUE]


event Refused:  # a part that could not be prepared, and why
    tx_id: indexed(bytes32)
    index: uint8
    reason: String[transaction.MAX_REASON]


event AnswerRefused:
    tx_id: indexed(bytes32)
    index: uint8
    source: uint8
    reason: String[transaction.MAX_REASON]


@deploy
def __init__(cross_module: address):
    module = cross_module
    self.held_plus_one = 1


# ------------------------------------------------------------------------------- views


@external
@view
def value(key: Bytes[MAX_KEY]) -> Bytes[MAX_VALUE]:
    """The committed value of ``key`` (b"" when absent)."""
    return self.values[keccak256(key)]


@external
@view
def exists(key: Bytes[MAX_KEY]) -> bool:
    return self.present[keccak256(key)]


@external
@view
def writer(key: Bytes[MAX_KEY]) -> bytes32:
    """The tx id holding the write lock on ``key`` (zero when none)."""
    return self.write_holder[keccak256(key)]


@external
@view
def readers(key: Bytes[MAX_KEY]) -> uint256:
    """How many prepared parts hold a shared read lock on ``key``."""
    return self.read_parts[keccak256(key)]


@external
@view
def locks_held() -> uint256:
    """Write locks, read locks and escrows outstanding; 0 when nothing is locked anywhere."""
    return self.held_plus_one - 1


@external
@view
def staged(tx_id: bytes32, index: uint8) -> uint8:
    """The op part ``index`` of ``tx_id`` holds prepared (0: none)."""
    op: uint8 = self.stage_op[self._record(tx_id, index)]
    if op == DECIDED:
        return 0
    return op


# ------------------------------------------------------------------------------ helpers


@internal
@pure
def _record(tx_id: bytes32, index: uint8) -> bytes32:
    return keccak256(concat(tx_id, convert(index, bytes1)))


@internal
@pure
def _hex(account: address) -> String[42]:
    """``0x`` and the 40 lowercase hex digits of ``account`` (for reasons)."""
    n: uint256 = convert(account, uint256)
    high: uint256 = 0  # digits 1-32, one ASCII byte each
    low: uint256 = 0  # digits 33-40
    for i: uint256 in range(40):
        nibble: uint256 = (n >> (4 * (39 - i))) & 15
        digit: uint256 = nibble + 48
        if nibble > 9:
            digit = nibble + 87
        if i < 32:
            high = high | (digit << (8 * (31 - i)))
        else:
            low = low | (digit << (8 * (39 - i)))
    digits: Bytes[40] = concat(
        convert(high, bytes32), slice(convert(low, bytes32), 24, 8)
    )
    return concat("0x", convert(digits, String[40]))


@internal
@pure
def _word(data: Bytes[transaction.MAX_CALL_INFO], start: uint256) -> uint256:
    return extract32(data, start, output_type=uint256)


@internal
@pure
def _decode(
    call_info: Bytes[transaction.MAX_CALL_INFO],
) -> (String[transaction.MAX_REASON], uint8, Bytes[CALL_KEY], Bytes[MAX_VALUE]):
    """Decode the canonical `abi.encode(uint8 op, bytes key, bytes value)`, as
    `kakehashi.cross.kv.decode_call`; a reason instead of a revert when it is not one."""
    malformed: String[transaction.MAX_REASON] = "not a key-value call (abi.encode(uint8 op, bytes key, bytes value))"
    n: uint256 = len(call_info)
    # the layout of a canonical encoding, checked before abi_decode so that it cannot revert
    if n < 160:
        return malformed, 0, b"", b""
    op_word: uint256 = self._word(call_info, 0)
    key_len: uint256 = self._word(call_info, 96)
    if op_word > 255 or self._word(call_info, 32) != 96 or key_len > CALL_KEY:
        return malformed, 0, b"", b""
    value_at: uint256 = 128 + (key_len + 31) // 32 * 32
    if self._word(call_info, 64) != value_at or n < value_at + 32:
        return malformed, 0, b"", b""
    value_len: uint256 = self._word(call_info, value_at)
    if value_len > MAX_VALUE or n != value_at + 32 + (value_len + 31) // 32 * 32:
        return malformed, 0, b"", b""
    op: uint8 = 0
    key: Bytes[CALL_KEY] = b""
    val: Bytes[MAX_VALUE] = b""
    # widened so that Vyper accepts the largest types; the checks above keep it in range
    wide: Bytes[448] = call_info
    op, key, val = abi_decode(wide, (uint8, Bytes[CALL_KEY], Bytes[MAX_VALUE]))
    if abi_encode(op, key, val) != call_info:  # nonzero padding
        return "the key-value call is not canonically encoded", 0, b"", b""
    if op == OP_SET or op == OP_GET or op == OP_DELETE or op == OP_SET_LINKED:
        if len(key) == 0 or len(key) > MAX_KEY:
            return "a key is 1 to 64 bytes", 0, b"", b""
        if op != OP_SET and len(val) > 0:
            return "only a SET carries a value", 0, b"", b""
    elif op == OP_SET_EVALUATED:
        if len(key) == 0 or len(key) > MAX_KEY or len(val) != EVALUATED_VALUE:
            return "an evaluated write is (key of 1 to 64 bytes, 20-byte evaluator and 1-byte source)", 0, b"", b""
    elif op == OP_ERC20 or op == OP_ERC721:
        if len(key) != ASSET_KEY or len(val) != 32:
            return "an asset call is abi.encode(token, sender, recipient), abi.encode(amount)", 0, b"", b""
    else:
        return concat("unknown key-value op ", uint2str(op)), 0, b"", b""
    return "", op, key, val


@internal
@pure
def _address(key: Bytes[CALL_KEY], word: uint256) -> (bool, address):
    """The ``word``-th word of ``key`` as an address (False when its high bytes are set)."""
    n: uint256 = extract32(key, 32 * word, output_type=uint256)
    if n >= 2**160:
        return False, empty(address)
    return True, convert(convert(n, uint160), address)


@internal
@pure
def _signs(
    account: address, signers: DynArray[transaction.Account, transaction.MAX_SIGNERS]
) -> bool:
    """Whether ``account`` is one of the part's signers: LOCAL (this chain coordinates: it sent
    or signed the transaction here) or CHANNEL (another ledger coordinates: it signed here,
    `cross_auth.sign_remote`) with its 20-byte address, or EXTENSION with the secp256k1 id
    0x01 ‖ address. Every signer signed before any part runs."""
    raw: Bytes[20] = slice(convert(account, bytes32), 12, 20)
    for s: transaction.Account in signers:
        if (s.kind == transaction.SIGNER_LOCAL or s.kind == transaction.SIGNER_CHANNEL) and s.id == raw:
            return True
        if s.kind == transaction.SIGNER_EXTENSION and s.id == concat(SECP256K1, raw):
            return True
    return False


# ---------------------------------------------------------------------- key-value parts


@internal
def _prepare_kv(
    tx_id: bytes32,
    record: bytes32,
    op: uint8,
    key: Bytes[CALL_KEY],
    val: Bytes[MAX_VALUE],
    linked: DynArray[Bytes[transaction.MAX_RETURN_VALUE], transaction.MAX_LINKS],
) -> (bool, Bytes[transaction.MAX_RETURN_VALUE], String[transaction.MAX_REASON]):
    key_hash: bytes32 = keccak256(key)
    holder: bytes32 = self.write_holder[key_hash]
    if op == OP_GET:
        if holder != empty(bytes32) and holder != tx_id:
            return False, b"", "the key is locked for writing by another cross transaction"
        committed: Bytes[MAX_VALUE] = self.values[key_hash]
        if len(committed) > transaction.MAX_RETURN_VALUE:
            return False, b"", "the value is longer than a return value (96 bytes)"
        self.read_parts[key_hash] += 1
        self.tx_read_parts[keccak256(concat(key_hash, tx_id))] += 1
        self.stage_key[record] = key_hash
        # narrowed to a return value's type (its length was checked above, so this cannot revert)
        returned: Bytes[transaction.MAX_RETURN_VALUE] = abi_decode(
            abi_encode(committed), Bytes[transaction.MAX_RETURN_VALUE]
        )
        return True, returned, ""
    if op == OP_SET_LINKED:
        if len(linked) == 0:
            return False, b"", "SET_LINKED needs a linked part's return value"
        val = linked[0]
    if holder != empty(bytes32) and holder != tx_id:
        return False, b"", "the key is locked by another cross transaction"
    if self.read_parts[key_hash] != self.tx_read_parts[keccak256(concat(key_hash, tx_id))]:
        return False, b"", "the key is read by another cross transaction"
    if holder == tx_id:
        self.extra_writes[key_hash] += 1  # another part of the same transaction
    else:
        self.write_holder[key_hash] = tx_id
    self.stage_key[record] = key_hash
    if op != OP_DELETE and len(val) > 0:
        self.stage_value[record] = val
    return True, OK, ""


@internal
def _finish_kv(tx_id: bytes32, record: bytes32, op: uint8, commit: bool):
    key_hash: bytes32 = self.stage_key[record]
    self.stage_key[record] = empty(bytes32)
    if op == OP_GET:
        self.read_parts[key_hash] -= 1
        self.tx_read_parts[keccak256(concat(key_hash, tx_id))] -= 1
        return
    unanswered: bool = False
    if op == OP_SET_EVALUATED:  # (the module decides only after the answer came)
        unanswered = self.awaiting[record] != 0
        self.awaiting[record] = 0
        self.awaiting_key[record] = b""
    if commit and not unanswered:
        if op == OP_DELETE:
            self.values[key_hash] = b""
            self.present[key_hash] = False
        else:
            self.values[key_hash] = self.stage_value[record]
            self.present[key_hash] = True
    self.stage_value[record] = b""
    if self.extra_writes[key_hash] > 0:
        self.extra_writes[key_hash] -= 1
    else:
        self.write_holder[key_hash] = empty(bytes32)


# ---------------------------------------------------------------------------- asset parts


@internal
def _prepare_asset(
    record: bytes32,
    op: uint8,
    key: Bytes[CALL_KEY],
    val: Bytes[MAX_VALUE],
    signers: DynArray[transaction.Account, transaction.MAX_SIGNERS],
) -> (bool, Bytes[transaction.MAX_RETURN_VALUE], String[transaction.MAX_REASON]):
    ok_token: bool = False
    ok_sender: bool = False
    ok_recipient: bool = False
    token: address = empty(address)
    sender: address = empty(address)
    recipient: address = empty(address)
    ok_token, token = self._address(key, 0)
    ok_sender, sender = self._address(key, 1)
    ok_recipient, recipient = self._address(key, 2)
    if not (ok_token and ok_sender and ok_recipient):
        return False, b"", "an asset call's key is abi.encode(address token, sender, recipient)"
    amount: uint256 = extract32(val, 0, output_type=uint256)
    if recipient == empty(address):
        return False, b"", "the recipient is the zero address"
    if not token.is_contract:
        return False, b"", concat("no token contract at ", self._hex(token))
    if not self._signs(sender, signers):
        return False, b"", concat("the sender must sign the part: ", self._hex(sender))
    # Escrowed in a call to this contract that reverts unless the asset arrived whole, so a
    # failure leaves nothing changed, in the token either.
    escrowed: bool = raw_call(
        self,
        abi_encode(token, op == OP_ERC20, sender, amount, method_id=method_id("escrow(address,bool,address,uint256)")),
        revert_on_failure=False,
    )
    if not escrowed:
        if op == OP_ERC20:
            return False, b"", concat(
                "transferFrom of ", uint2str(amount), " units from ", self._hex(sender),
                " failed: allowance or balance too low",
            )
        return False, b"", concat(
            "transferFrom of token ", uint2str(amount), " from ", self._hex(sender),
            " failed: not the owner, or this application not approved",
        )
    self.escrows[record] = Escrow(token=token, sender=sender, recipient=recipient, amount=amount)
    return True, OK, ""


@external
def escrow(token: address, erc20: bool, sender: address, amount: uint256):
    """Take ``amount`` (ERC-20) or token ``amount`` (ERC-721) of ``token`` from ``sender``;
    reverts unless it arrived whole. Called by this contract only, from `prepare`.

    The arrival is checked because a token that takes a fee on transfers, or reports success
    without moving anything, would otherwise let one escrow's payout spend another's."""
    assert msg.sender == self, "CROSS_APP: only this application escrows"
    held_before: uint256 = 0
    if erc20:
        held_before = staticcall IERC20(token).balanceOf(self)
    response: Bytes[32] = raw_call(
        token,
        abi_encode(sender, self, amount, method_id=method_id("transferFrom(address,address,uint256)")),
        max_outsize=32,
    )
    if erc20:
        # a token returning nothing (USDT-style) succeeded if it did not revert
        assert len(response) == 0 or convert(response, bool), "CROSS_APP: transferFrom returned false"
        assert staticcall IERC20(token).balanceOf(self) == held_before + amount, "CROSS_APP: the amount did not arrive whole"
    else:
        assert staticcall IERC721(token).ownerOf(amount) == self, "CROSS_APP: the token did not arrive"


@internal
def _finish_asset(record: bytes32, op: uint8, commit: bool):
    """Pay an escrow to its recipient (commit) or back to its sender (abort)."""
    e: Escrow = self.escrows[record]
    self.escrows[record] = empty(Escrow)
    to: address = e.sender
    if commit:
        to = e.recipient
    payout: Bytes[100] = b""
    if op == OP_ERC20:
        payout = abi_encode(to, e.amount, method_id=method_id("transfer(address,uint256)"))
    else:
        payout = abi_encode(
            self, to, e.amount, method_id=method_id("transferFrom(address,address,uint256)")
        )
    success: bool = False
    response: Bytes[32] = b""
    success, response = raw_call(e.token, payout, max_outsize=32, revert_on_failure=False)
    # The asset is held here, so a standard token moves it. If this one does not, the decision
    # must not count as applied: revert, and the module's DECIDE is delivered again.
    assert success and (len(response) == 0 or convert(response, bool)), "CROSS_APP: the token refused to release the escrow"


# ------------------------------------------------------------------- the module's calls


@external
@nonreentrant
def prepare(
    tx_id: bytes32,
    index: uint8,
    call_info: Bytes[transaction.MAX_CALL_INFO],
    signers: DynArray[transaction.Account, transaction.MAX_SIGNERS],
    linked: DynArray[Bytes[transaction.MAX_RETURN_VALUE], transaction.MAX_LINKS],
) -> (bool, Bytes[transaction.MAX_RETURN_VALUE], String[transaction.MAX_REASON]):
    """Run part ``index`` of ``tx_id`` and hold it: (prepared, return value, reason when not).
    Nothing changes when it is not prepared."""
    assert msg.sender == module, "CROSS_APP: only the cross module calls"
    record: bytes32 = self._record(tx_id, index)
    if self.stage_op[record] != 0:
        return False, b"", "this part was already prepared"
    reason: String[transaction.MAX_REASON] = ""
    op: uint8 = 0
    key: Bytes[CALL_KEY] = b""
    val: Bytes[MAX_VALUE] = b""
    reason, op, key, val = self._decode(call_info)
    if len(reason) > 0:
        return False, b"", reason
    prepared: bool = False
    returned: Bytes[transaction.MAX_RETURN_VALUE] = b""
    if op == OP_ERC20 or op == OP_ERC721:
        prepared, returned, reason = self._prepare_asset(record, op, key, val, signers)
    elif op == OP_SET_EVALUATED:
        reason = self._evaluation_check(tx_id, index, val)
        if len(reason) == 0:
            prepared, returned, reason = self._prepare_kv(tx_id, record, op, key, b"", linked)
        if prepared:
            source: uint256 = convert(slice(val, 20, 1), uint256)
            evaluator: uint256 = convert(slice(val, 0, 20), uint256)
            self.awaiting[record] = ((source + 1) << 160) | evaluator
            self.awaiting_key[record] = key
    else:
        prepared, returned, reason = self._prepare_kv(tx_id, record, op, key, val, linked)
    if prepared:
        self.stage_op[record] = op
        self.held_plus_one += 1
    else:
        log Refused(tx_id=tx_id, index=index, reason=reason)
    return prepared, returned, reason


@internal
@view
def _evaluation_check(
    tx_id: bytes32, index: uint8, val: Bytes[MAX_VALUE]
) -> String[transaction.MAX_REASON]:
    """Why an evaluated write cannot run as part ``index`` (empty: it can)."""
    c: Coordination = staticcall ICrossModule(module).coordination(tx_id)
    if c.count == 0 or c.local != index:
        return "an evaluated write takes another part's answer: it runs only as the coordinating ledger's own part"
    if c.protocol != transaction.COMMIT_TPC:
        return "an evaluated write needs Two-Phase Commit (the answer must come before the decision)"
    source: uint256 = convert(slice(val, 20, 1), uint256)
    if source >= convert(c.count, uint256) or source == convert(index, uint256):
        return concat("an evaluated write names part ", uint2str(source), ", not another part of the transaction")
    evaluator: address = convert(convert(convert(slice(val, 0, 20), uint256), uint160), address)
    if not evaluator.is_contract:
        return concat("no evaluator contract at ", self._hex(evaluator))
    return ""


@external
@nonreentrant
def answer(
    tx_id: bytes32, index: uint8, source: uint8, answer: Bytes[transaction.MAX_ANSWER]
) -> String[transaction.MAX_REASON]:
    """Part ``source`` prepared and answered ``answer``: a staged evaluated write of part
    ``index`` awaiting it takes what its evaluator makes of it. A reason when the answer is
    refused (the module then aborts); empty otherwise, and when nothing awaits this answer."""
    assert msg.sender == module, "CROSS_APP: only the cross module calls"
    record: bytes32 = self._record(tx_id, index)
    awaited: uint256 = self.awaiting[record]
    if awaited == 0 or awaited >> 160 != convert(source, uint256) + 1:
        return ""
    evaluator: address = convert(convert(awaited & (2**160 - 1), uint160), address)
    ok: bool = False
    out: Bytes[320] = b""
    ok, out = raw_call(
        evaluator,
        abi_encode(self.awaiting_key[record], answer, method_id=method_id("evaluate(bytes,bytes)")),
        max_outsize=320,
        is_static_call=True,
        revert_on_failure=False,
    )
    reason: String[transaction.MAX_REASON] = ""
    n: uint256 = 0
    if not ok:
        reason = concat("the evaluator ", self._hex(evaluator), " refused part ", uint2str(source), "'s answer")
    elif len(out) < 64 or extract32(out, 0, output_type=uint256) != 32:
        reason = "the evaluator returned something other than bytes"
    else:
        n = extract32(out, 32, output_type=uint256)
        if n > MAX_VALUE or len(out) != 64 + (n + 31) // 32 * 32:
            reason = "the evaluator returned more than a value (192 bytes) or malformed bytes"
    if len(reason) > 0:
        log AnswerRefused(tx_id=tx_id, index=index, source=source, reason=reason)
        return reason
    value: Bytes[MAX_VALUE] = abi_decode(out, Bytes[MAX_VALUE])
    self.stage_value[record] = value
    self.awaiting[record] = 0
    self.awaiting_key[record] = b""
    log Evaluated(tx_id=tx_id, index=index, source=source, value=value)
    return ""


@internal
def _finish(tx_id: bytes32, index: uint8, commit: bool):
    record: bytes32 = self._record(tx_id, index)
    op: uint8 = self.stage_op[record]
    if op == 0 or op == DECIDED:
        return  # nothing staged: never prepared, or already decided
    self.stage_op[record] = DECIDED  # a later prepare of this part is refused
    self.held_plus_one -= 1
    if op == OP_ERC20 or op == OP_ERC721:
        self._finish_asset(record, op, commit)
    else:
        self._finish_kv(tx_id, record, op, commit)


@external
@nonreentrant
def commit(tx_id: bytes32, index: uint8):
    """Apply part ``index`` of ``tx_id`` (a write becomes visible, an escrow is paid to the
    recipient) and release its lock; a no-op when nothing is staged."""
    assert msg.sender == module, "CROSS_APP: only the cross module calls"
    self._finish(tx_id, index, True)


@external
@nonreentrant
def abort(tx_id: bytes32, index: uint8):
    """Drop part ``index`` of ``tx_id`` (a write is discarded, an escrow refunded to the
    sender) and release its lock; a no-op when nothing is staged."""
    assert msg.sender == module, "CROSS_APP: only the cross module calls"
    self._finish(tx_id, index, False)
