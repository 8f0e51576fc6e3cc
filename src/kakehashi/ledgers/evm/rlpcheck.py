"""Strict RLP for verification code: canonical input only, every failure a VerificationError.

Shared by the QBFT block format and the ``eth_getProof`` verifier, which read bytes from an
untrusted relayer: a malformed item must never surface as anything but
:class:`~kakehashi.errors.VerificationError` naming what was being read.
"""

from __future__ import annotations

import rlp

from kakehashi.errors import VerificationError

__all__ = ["as_bytes", "as_list", "decode", "decode_scalar", "encode", "encode_scalar"]


def encode_scalar(value: int) -> bytes:
    """The RLP scalar form of a non-negative integer: big-endian without leading zeros."""
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def decode_scalar(raw: bytes, what: str, *, max_size: int = 32) -> int:
    """Parse a canonical RLP scalar (no leading zero byte) of at most ``max_size`` bytes."""
    if raw[:1] == b"\x00":
        raise VerificationError(f"{what} has a leading zero byte (not a canonical RLP scalar)")
    if len(raw) > max_size:
        raise VerificationError(f"{what} is {len(raw)} bytes, at most {max_size} allowed")
    return int.from_bytes(raw, "big")


def decode(data: bytes, what: str) -> object:
    """Decode canonical RLP (``rlp.decode(strict=True)``)."""
    if not isinstance(data, bytes | bytearray):
        raise VerificationError(f"{what} must be bytes, got {type(data).__name__}")
    try:
        item: object = rlp.decode(bytes(data), strict=True)
    except rlp.exceptions.DecodingError as exc:
        raise VerificationError(f"{what} is not canonical RLP: {exc}") from None
    except RecursionError:
        raise VerificationError(f"{what} nests RLP lists too deeply") from None
    return item


def encode(item: object) -> bytes:
    return bytes(rlp.encode(item))


def as_list(item: object, what: str) -> list[object]:
    if not isinstance(item, list):
        raise VerificationError(f"{what} must be an RLP list, got a byte string")
    return item


def as_bytes(item: object, what: str) -> bytes:
    if not isinstance(item, bytes):
        raise VerificationError(f"{what} must be an RLP byte string, got a list")
    return item
