"""The QBFT block format of Hyperledger Besu and GoQuorum: extraData, seals and block hashes.

Pure functions and frozen dataclasses only (bytes in, bytes or :class:`VerificationError` out),
shared by the embedded chain that produces blocks and by the light client that checks them.
The rules implemented here:

* **Header rule.** A header is the RLP list of its fields, every field a byte string, in the
  order of :class:`HeaderField`: 15 fields before London, up to 21 in Prague. ``extraData`` is
  always field 12.
* **ExtraData rule.** ``extraData = RLP([vanity, [validators], vote, round, [committed seals]])``
  with a 32-byte vanity, 20-byte validator addresses, ``vote`` the empty list when there is no
  vote or ``[recipient, 0xff]`` to add / ``[recipient, ""]`` to drop a validator, ``round`` an RLP
  scalar (``0`` is the empty string) and each committed seal 65 bytes ``r ‖ s ‖ v``, ``v`` in
  ``{0, 1}``.
* **Commit hash rule.** Validators sign ``keccak256(RLP(header with the committed-seals list
  emptied))``: the round is kept, so a seal from one round is worthless in another.
* **BFT block hash rule.** On Besu and GoQuorum a block's hash (what ``eth_getBlockByNumber``
  shows and the next header's ``parentHash`` holds) is ``keccak256(RLP(header with the seals
  emptied and round 0))``, so it is the same whichever round and whichever seals finalised it.
  (The embedded chain keeps py-evm's ``keccak256(header)`` instead.)
* **Genesis rule.** Block 0 has no seals; both hashes take its extraData as it stands.
* **Quorum rule.** A block is final when seals from at least ``ceil(2n/3)`` distinct validators
  of its ``n`` are attached.

Decoding is strict: only canonical RLP is accepted, so ``decode(data).encode() == data``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import NamedTuple

import coincurve
from eth_hash.auto import keccak

from kakehashi.errors import ConfigurationError, SignatureError, VerificationError
from kakehashi.ledgers.evm.rlpcheck import (
    as_bytes as _as_bytes,
)
from kakehashi.ledgers.evm.rlpcheck import (
    as_list as _as_list,
)
from kakehashi.ledgers.evm.rlpcheck import (
    decode as _decode_rlp,
)
from kakehashi.ledgers.evm.rlpcheck import (
    decode_scalar,
    encode_scalar,
)
from kakehashi.ledgers.evm.rlpcheck import (
    encode as _encode_rlp,
)

__all__ = [
    "ADDRESS_SIZE",
    "BFT_MIX_HASH",
    "HASH_SIZE",
    "MAX_HEADER_FIELDS",
    "MAX_ROUND",
    "MIN_HEADER_FIELDS",
    "SEAL_SIZE",
    "VANITY_SIZE",
    "HeaderField",
    "QbftExtraData",
    "QbftVote",
    "bft_block_hash",
    "commit_hash",
    "decode_scalar",
    "encode_header",
    "encode_scalar",
    "header_extra_data",
    "header_fields",
    "quorum",
    "recover_seal",
    "seal",
    "sealing_header_rlp",
    "unsealed_header_rlp",
    "validator_address",
    "with_committed_seals",
]

VANITY_SIZE = 32
"""Size of the vanity field at the start of extraData (Besu rejects any other size)."""

ADDRESS_SIZE = 20
SEAL_SIZE = 65
"""A committed seal: secp256k1 ``r ‖ s ‖ v`` with recovery id ``v`` in ``{0, 1}``."""

HASH_SIZE = 32

MAX_ROUND = 2**32 - 1
"""GoQuorum keeps the round in a ``uint32``."""

MIN_HEADER_FIELDS = 15
"""Fields of a pre-London header (up to ``nonce``)."""

MAX_HEADER_FIELDS = 21
"""Fields of a Prague header (up to ``requestsHash``)."""

BFT_MIX_HASH = bytes.fromhex("63746963616c2062797a616e74696e65206661756c7420746f6c6572616e6365")
"""The ``mixHash`` of every Besu / GoQuorum BFT block; GoQuorum picks its hash rule by it."""

_VOTE_ADD = b"\xff"
_VOTE_DROP = b""  # Besu writes RLP null; GoQuorum's byte 0 encodes the same way


class HeaderField(IntEnum):
    """Index of each field in an RLP block header (Yellow Paper; EIPs 1559 4895 4844 4788 7685)."""

    PARENT_HASH = 0
    OMMERS_HASH = 1
    COINBASE = 2
    STATE_ROOT = 3
    TRANSACTIONS_ROOT = 4
    RECEIPTS_ROOT = 5
    LOGS_BLOOM = 6
    DIFFICULTY = 7
    NUMBER = 8
    GAS_LIMIT = 9
    GAS_USED = 10
    TIMESTAMP = 11
    EXTRA_DATA = 12
    MIX_HASH = 13
    NONCE = 14
    BASE_FEE_PER_GAS = 15
    WITHDRAWALS_ROOT = 16
    BLOB_GAS_USED = 17
    EXCESS_BLOB_GAS = 18
    PARENT_BEACON_BLOCK_ROOT = 19
    REQUESTS_HASH = 20


class QbftVote(NamedTuple):
    """A proposer's vote carried in extraData: add (``authorize``) or drop ``recipient``."""

    recipient: bytes
    authorize: bool


@dataclass(frozen=True, slots=True)
class QbftExtraData:
    """The QBFT extraData of a header (extraData rule)."""

    vanity: bytes
    validators: tuple[bytes, ...]
    vote: QbftVote | None
    round: int
    committed_seals: tuple[bytes, ...]

    def __post_init__(self) -> None:
        # Callers may pass lists; keep the object hashable and immutable.
        object.__setattr__(self, "validators", tuple(self.validators))
        object.__setattr__(self, "committed_seals", tuple(self.committed_seals))
        if len(self.vanity) != VANITY_SIZE:
            raise VerificationError(
                f"QBFT extraData vanity must be {VANITY_SIZE} bytes, got {len(self.vanity)}"
            )
        for i, validator in enumerate(self.validators):
            if len(validator) != ADDRESS_SIZE:
                raise VerificationError(
                    f"QBFT validator {i} must be a {ADDRESS_SIZE}-byte address, "
                    f"got {len(validator)} bytes"
                )
        if self.vote is not None and len(self.vote.recipient) != ADDRESS_SIZE:
            raise VerificationError(
                f"QBFT vote recipient must be a {ADDRESS_SIZE}-byte address, "
                f"got {len(self.vote.recipient)} bytes"
            )
        if not 0 <= self.round <= MAX_ROUND:
            raise VerificationError(f"QBFT round must be in 0..{MAX_ROUND}, got {self.round}")
        for i, committed_seal in enumerate(self.committed_seals):
            if len(committed_seal) != SEAL_SIZE:
                raise VerificationError(
                    f"QBFT committed seal {i} must be {SEAL_SIZE} bytes, got {len(committed_seal)}"
                )

    def encode(self) -> bytes:
        """The extraData bytes, byte-identical to Besu's and GoQuorum's encoding."""
        vote: list[bytes] = []
        if self.vote is not None:
            vote = [self.vote.recipient, _VOTE_ADD if self.vote.authorize else _VOTE_DROP]
        return _encode_rlp(
            [
                self.vanity,
                list(self.validators),
                vote,
                encode_scalar(self.round),
                list(self.committed_seals),
            ]
        )

    @classmethod
    def decode(cls, data: bytes) -> QbftExtraData:
        """Parse extraData (extraData rule); raise :class:`VerificationError` if malformed."""
        items = _as_list(_decode_rlp(data, "QBFT extraData"), "QBFT extraData")
        if len(items) != 5:
            raise VerificationError(
                "QBFT extraData must be the RLP list [vanity, validators, vote, round, seals], "
                f"got {len(items)} items"
            )
        vanity = _as_bytes(items[0], "QBFT vanity")
        validators = tuple(
            _as_bytes(v, "QBFT validator") for v in _as_list(items[1], "QBFT validator list")
        )
        vote = _decode_vote(items[2])
        round_ = decode_scalar(_as_bytes(items[3], "QBFT round"), "QBFT round", max_size=4)
        seals = tuple(
            _as_bytes(s, "QBFT committed seal")
            for s in _as_list(items[4], "QBFT committed-seal list")
        )
        return cls(vanity, validators, vote, round_, seals)


def _decode_vote(item: object) -> QbftVote | None:
    parts = _as_list(item, "QBFT vote")
    if not parts:
        return None
    if len(parts) != 2:
        raise VerificationError(
            f"QBFT vote must be [] or [recipient, vote type], got a list of {len(parts)} items"
        )
    recipient = _as_bytes(parts[0], "QBFT vote recipient")
    kind = _as_bytes(parts[1], "QBFT vote type")
    # Besu also reads a single 0x00 byte as "drop", but never writes it and GoQuorum refuses it
    # (non-canonical integer); refusing it keeps decode∘encode the identity.
    if kind == _VOTE_ADD:
        return QbftVote(recipient, True)
    if kind == _VOTE_DROP:
        return QbftVote(recipient, False)
    raise VerificationError(
        f"QBFT vote type must be 0xff (add) or empty (drop), got 0x{kind.hex()}"
    )


def header_fields(header_rlp: bytes) -> list[bytes]:
    """The fields of an RLP block header (header rule), any fork from Frontier to Prague."""
    items = _as_list(_decode_rlp(header_rlp, "block header"), "block header")
    if not MIN_HEADER_FIELDS <= len(items) <= MAX_HEADER_FIELDS:
        raise VerificationError(
            f"a block header has {MIN_HEADER_FIELDS} to {MAX_HEADER_FIELDS} fields, "
            f"got {len(items)}"
        )
    return [_as_bytes(item, f"header field {HeaderField(i).name}") for i, item in enumerate(items)]


def encode_header(fields: Sequence[bytes]) -> bytes:
    """The RLP of a header given its fields (inverse of :func:`header_fields`)."""
    return _encode_rlp(list(fields))


def header_extra_data(header_rlp: bytes) -> QbftExtraData:
    """The decoded QBFT extraData of a header."""
    return QbftExtraData.decode(header_fields(header_rlp)[HeaderField.EXTRA_DATA])


def with_committed_seals(header_rlp: bytes, seals: Sequence[bytes]) -> bytes:
    """The header with its committed-seal list replaced by ``seals`` (everything else kept)."""
    fields = header_fields(header_rlp)
    extra = QbftExtraData.decode(fields[HeaderField.EXTRA_DATA])
    fields[HeaderField.EXTRA_DATA] = replace(extra, committed_seals=tuple(seals)).encode()
    return encode_header(fields)


def sealing_header_rlp(header_rlp: bytes) -> bytes:
    """The header as validators sign it: committed seals emptied, round kept (commit hash rule)."""
    return _filtered_header(header_rlp, keep_round=True)


def commit_hash(header_rlp: bytes) -> bytes:
    """``keccak256`` of :func:`sealing_header_rlp`: the digest every committed seal signs."""
    return keccak(sealing_header_rlp(header_rlp))


def bft_block_hash(header_rlp: bytes) -> bytes:
    """The block's hash on Besu / GoQuorum (BFT block hash rule: seals emptied, round 0)."""
    return keccak(_filtered_header(header_rlp, keep_round=False))


def _filtered_header(header_rlp: bytes, *, keep_round: bool) -> bytes:
    fields = header_fields(header_rlp)
    number = decode_scalar(fields[HeaderField.NUMBER], "block number", max_size=8)
    if number == 0:  # genesis rule: block 0 is hashed as it stands
        return encode_header(fields)
    extra = QbftExtraData.decode(fields[HeaderField.EXTRA_DATA])
    return unsealed_header_rlp(fields, extra, keep_round=keep_round)


def unsealed_header_rlp(
    fields: Sequence[bytes], extra: QbftExtraData, *, keep_round: bool
) -> bytes:
    """A non-genesis header given its decoded ``fields`` and ``extra`` data, with its committed
    seals emptied and its round kept (:func:`sealing_header_rlp`) or zeroed (what
    :func:`bft_block_hash` hashes): for a caller that has decoded the header already."""
    unsealed = replace(extra, committed_seals=(), round=extra.round if keep_round else 0)
    out = list(fields)
    out[HeaderField.EXTRA_DATA] = unsealed.encode()
    return encode_header(out)


def quorum(validator_count: int) -> int:
    """Seals needed to finalise a block among ``validator_count`` validators: ``ceil(2n/3)``."""
    return -(-2 * validator_count // 3)


def seal(commit_hash: bytes, private_key: bytes | coincurve.PrivateKey) -> bytes:
    """A validator's committed seal over ``commit_hash``: ``r ‖ s ‖ v`` with ``v`` in {0, 1}.

    ``private_key`` is the 32-byte secret or, for a signer that seals every block, a
    ``coincurve.PrivateKey`` it keeps (deriving one from the secret costs as much as signing).
    """
    _check_hash(commit_hash)
    key = (
        private_key if isinstance(private_key, coincurve.PrivateKey) else _private_key(private_key)
    )
    signature = bytes(key.sign_recoverable(commit_hash, hasher=None))
    # libsecp256k1 yields recovery id 2 or 3 only if r overflowed the curve order (probability
    # ~2^-127); Besu cannot carry those, so refuse rather than emit an unverifiable seal.
    if signature[64] > 1:
        raise SignatureError("secp256k1 produced a recovery id above 1; sign again")
    return signature


def recover_seal(commit_hash: bytes, committed_seal: bytes) -> bytes:
    """The 20-byte address of the validator whose seal ``committed_seal`` is over ``commit_hash``.

    Raises :class:`SignatureError` (a :class:`VerificationError`) for a malformed seal.
    """
    _check_hash(commit_hash)
    if len(committed_seal) != SEAL_SIZE:
        raise SignatureError(
            f"a committed seal is {SEAL_SIZE} bytes (r ‖ s ‖ v), got {len(committed_seal)}"
        )
    if committed_seal[64] not in (0, 1):
        raise SignatureError(
            f"a committed seal's recovery id v must be 0 or 1, got {committed_seal[64]}"
        )
    try:
        public_key = coincurve.PublicKey.from_signature_and_message(
            bytes(committed_seal), commit_hash, hasher=None
        )
    except (ValueError, TypeError):
        raise SignatureError(
            "committed seal is not a valid secp256k1 signature (r or s out of range, or no "
            "public key recovers from it)"
        ) from None
    return _public_key_address(public_key)


def validator_address(private_key: bytes) -> bytes:
    """The 20-byte address a validator's private key seals as."""
    return _public_key_address(_private_key(private_key).public_key)


def _public_key_address(public_key: coincurve.PublicKey) -> bytes:
    # Ethereum address: the last 20 bytes of keccak256 of the uncompressed point without 0x04.
    return keccak(public_key.format(compressed=False)[1:])[-ADDRESS_SIZE:]


def _private_key(private_key: bytes) -> coincurve.PrivateKey:
    if len(private_key) != 32:
        raise ConfigurationError(f"a validator private key is 32 bytes, got {len(private_key)}")
    try:
        return coincurve.PrivateKey(bytes(private_key))
    except ValueError:
        raise ConfigurationError(
            "validator private key is not a valid secp256k1 scalar (0 or >= curve order)"
        ) from None


def _check_hash(digest: bytes) -> None:
    if len(digest) != HASH_SIZE:
        raise VerificationError(f"a commit hash is {HASH_SIZE} bytes, got {len(digest)}")
