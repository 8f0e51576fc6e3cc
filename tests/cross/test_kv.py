"""The key-value / asset call encoding both ledgers' cross applications read."""

from __future__ import annotations

import pytest
from eth_abi import encode as abi_encode
from hypothesis import given
from hypothesis import strategies as st

from kakehashi.cross.kv import (
    MAX_KEY,
    OP_DELETE,
    OP_ERC20,
    OP_ERC721,
    OP_GET,
    OP_SET,
    OP_SET_EVALUATED,
    OP_SET_LINKED,
    KvOp,
    asset_call,
    decode_call,
    kv_call,
    kv_delete,
    kv_get,
    kv_set_evaluated,
    kv_set_linked,
)
from kakehashi.cross.tx import CrossTxError

keys = st.binary(min_size=1, max_size=MAX_KEY)


@given(keys, st.binary(max_size=160))
def test_calls_round_trip(key: bytes, value: bytes) -> None:
    assert decode_call(kv_call(key, value)) == KvOp(OP_SET, key, value)
    assert decode_call(kv_get(key)) == KvOp(OP_GET, key)
    assert decode_call(kv_delete(key)) == KvOp(OP_DELETE, key)
    assert decode_call(kv_set_linked(key)) == KvOp(OP_SET_LINKED, key)
    assert KvOp(OP_SET, key, value).writes and not KvOp(OP_GET, key).writes


def test_an_asset_call_names_token_sender_recipient_and_amount() -> None:
    token, sender, recipient = b"\x01" * 20, b"\x02" * 20, b"\x03" * 20
    call = decode_call(asset_call(OP_ERC721, token, sender, recipient, 7))
    assert call.op == OP_ERC721 and call.value == (7).to_bytes(32, "big")
    assert call.key == abi_encode(["address"] * 3, [token, sender, recipient])
    with pytest.raises(CrossTxError, match="20-byte"):
        asset_call(OP_ERC20, token, sender[:19], recipient, 1)
    with pytest.raises(CrossTxError, match="not an asset op"):
        asset_call(OP_SET, token, sender, recipient, 1)


def test_an_evaluated_write_names_its_evaluator_and_source() -> None:
    evaluator = b"\x05" * 20
    call = decode_call(kv_set_evaluated(b"status/C-1", evaluator, 1))
    assert call == KvOp(OP_SET_EVALUATED, b"status/C-1", evaluator + b"\x01") and call.writes
    for bad_evaluator, key, source, error in [
        (evaluator[:19], b"k", 1, "20-byte"),
        (evaluator, b"", 1, "a key is 1 to"),
        (evaluator, b"k", 4, "a source part is 0 to 3"),
    ]:
        with pytest.raises(CrossTxError, match=error):
            kv_set_evaluated(key, bad_evaluator, source)
    wrong = abi_encode(["uint8", "bytes", "bytes"], [OP_SET_EVALUATED, b"k", evaluator])
    with pytest.raises(CrossTxError, match="1-byte source"):
        decode_call(wrong)


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (b"", "not a key-value call"),
        (abi_encode(["uint8", "bytes", "bytes"], [9, b"k", b""]), "unknown key-value op"),
        (abi_encode(["uint8", "bytes", "bytes"], [OP_SET, b"", b"v"]), "a key is 1 to"),
        (abi_encode(["uint8", "bytes", "bytes"], [OP_GET, b"k", b"v"]), "only a SET"),
        (kv_call(b"k", b"v") + b"\x00" * 32, "not canonically encoded"),
    ],
)
def test_malformed_calls_are_refused(call: bytes, error: str) -> None:
    with pytest.raises(CrossTxError, match=error):
        decode_call(call)


def test_bounds() -> None:
    with pytest.raises(CrossTxError, match="a key is 1 to"):
        kv_call(b"k" * (MAX_KEY + 1), b"")
    with pytest.raises(CrossTxError, match="more than 384"):
        kv_call(b"k" * MAX_KEY, b"v" * 192)  # within the field bounds, too long as a call
