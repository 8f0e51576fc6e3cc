"""QBFT light client: is this block header really final on that Besu / GoQuorum chain?

A pure function of bytes (no I/O, no clock: the caller passes ``now``). The rules implemented,
checked in this order by :func:`verify_header`:

* **Height rule.** The header is above the trusted height it is verified from.
* **Time rules** (ICS-07 style, each optional). The header's timestamp is not before the trusted
  state's; the trusted state has not expired (``now < trusted_timestamp + trusting_period``); the
  header is not from the future (``timestamp <= now + max_clock_drift``).
* **Validator set rule.** The header lists at least one validator and none twice.
* **Seal rule.** Every committed seal recovers, over the header's commit hash, to a validator of
  the header's own list; a validator sealing twice counts once.
* **Quorum rule.** Seals from at least ``ceil(2n/3)`` distinct validators of the header's ``n``
  (Besu's ``calculateRequiredValidatorQuorum``).
* **Trust rule.** If the header's validator set differs from the trusted one, more than a third of
  the trusted validators sealed it too, so at least one honest validator the client already
  trusts vouches for the new set (the IBC QBFT light client's trust level 1/3). With the same set
  the quorum rule already asks for ``ceil(2n/3)`` of the trusted validators.

Header format, commit hash and block hashes are those of :mod:`kakehashi.ledgers.evm.qbft`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from eth_hash.auto import keccak

from kakehashi.errors import SignatureError, VerificationError
from kakehashi.ledgers.evm.qbft import (
    ADDRESS_SIZE,
    HASH_SIZE,
    HeaderField,
    QbftExtraData,
    commit_hash,
    decode_scalar,
    encode_header,
    header_fields,
    quorum,
    recover_seal,
    unsealed_header_rlp,
)

__all__ = [
    "QbftHeader",
    "commit_hash",
    "parse_header",
    "recover_signers",
    "verify_header",
    "verify_parsed_header",
]


@dataclass(frozen=True, slots=True)
class QbftHeader:
    """What a light client keeps of a QBFT header.

    ``hash`` is keccak256 of the header bytes as given (the block hash on the embedded chain,
    whose py-evm hashes the whole header); ``bft_hash`` is the block hash on Besu and GoQuorum
    (seals emptied, round 0: what their ``eth_getBlockByNumber`` shows and the next header's
    ``parentHash`` holds); ``commit_hash`` is what the seals sign.
    """

    number: int
    timestamp: int
    parent_hash: bytes
    state_root: bytes
    validators: tuple[bytes, ...]
    round: int
    committed_seals: tuple[bytes, ...]
    hash: bytes
    bft_hash: bytes
    commit_hash: bytes


def parse_header(header_rlp: bytes) -> QbftHeader:
    """Decode a QBFT block header; raise :class:`VerificationError` if it is malformed.

    Parsing checks the format only: nothing here says the header is final (see
    :func:`verify_header`).
    """
    # decoded once: the two hashes below re-encode these fields, not the bytes
    fields = header_fields(header_rlp)
    extra = QbftExtraData.decode(fields[HeaderField.EXTRA_DATA])
    number = decode_scalar(fields[HeaderField.NUMBER], "block number", max_size=8)
    block_hash = keccak(header_rlp)
    if number == 0:  # genesis rule: block 0 is hashed as it stands
        bft_hash = sealing_hash = keccak(encode_header(fields))
    else:
        bft_hash = keccak(unsealed_header_rlp(fields, extra, keep_round=False))
        sealing_hash = keccak(unsealed_header_rlp(fields, extra, keep_round=True))
    return QbftHeader(
        number=number,
        timestamp=decode_scalar(fields[HeaderField.TIMESTAMP], "block timestamp", max_size=8),
        parent_hash=_hash_field(fields, HeaderField.PARENT_HASH),
        state_root=_hash_field(fields, HeaderField.STATE_ROOT),
        validators=extra.validators,
        round=extra.round,
        committed_seals=extra.committed_seals,
        hash=block_hash,
        bft_hash=bft_hash,
        commit_hash=sealing_hash,
    )


def _hash_field(fields: Sequence[bytes], index: HeaderField) -> bytes:
    value = fields[index]
    if len(value) != HASH_SIZE:
        raise VerificationError(
            f"header field {index.name} must be {HASH_SIZE} bytes, got {len(value)}"
        )
    return value


def recover_signers(header: QbftHeader) -> tuple[bytes, ...]:
    """The address behind each committed seal, in seal order (duplicates kept)."""
    signers = []
    for i, committed_seal in enumerate(header.committed_seals):
        try:
            signers.append(recover_seal(header.commit_hash, committed_seal))
        except SignatureError as exc:
            raise SignatureError(
                f"block {header.number}: committed seal {i} is invalid: {exc}"
            ) from None
    return tuple(signers)


def verify_header(
    header_rlp: bytes,
    trusted_validators: Sequence[bytes],
    *,
    trusted_height: int | None = None,
    trusted_timestamp: int | None = None,
    now: float | None = None,
    trusting_period: float | None = None,
    max_clock_drift: float | None = None,
) -> QbftHeader:
    """Verify that ``header_rlp`` is a final QBFT block, starting from a trusted validator set.

    ``trusted_validators`` is the validator set of the block the client already trusts (at
    ``trusted_height``, with timestamp ``trusted_timestamp``). Times are Unix seconds, periods
    seconds. ``trusting_period`` needs ``now`` and ``trusted_timestamp``; ``max_clock_drift``
    needs ``now``. Returns the parsed header; raises :class:`VerificationError` naming the rule
    that failed and the numbers involved.
    """
    return verify_parsed_header(
        parse_header(header_rlp),
        trusted_validators,
        trusted_height=trusted_height,
        trusted_timestamp=trusted_timestamp,
        now=now,
        trusting_period=trusting_period,
        max_clock_drift=max_clock_drift,
    )


def verify_parsed_header(
    header: QbftHeader,
    trusted_validators: Sequence[bytes],
    *,
    trusted_height: int | None = None,
    trusted_timestamp: int | None = None,
    now: float | None = None,
    trusting_period: float | None = None,
    max_clock_drift: float | None = None,
) -> QbftHeader:
    """:func:`verify_header` of a header :func:`parse_header` has decoded already (for a caller
    that read its number first: the bytes are decoded once)."""
    trusted = _trusted_set(trusted_validators)
    _check_height(header, trusted_height)
    _check_times(header, trusted_timestamp, now, trusting_period, max_clock_drift)
    _check_validator_set(header)

    validators = set(header.validators)
    sealed: set[bytes] = set()
    for i, signer in enumerate(recover_signers(header)):
        if signer not in validators:
            raise VerificationError(
                f"block {header.number}: committed seal {i} is by {_hex(signer)}, which is not "
                f"one of the block's {len(validators)} validators (tampered header or forged seal)"
            )
        sealed.add(signer)

    needed = quorum(len(validators))
    if len(sealed) < needed:
        raise VerificationError(
            f"block {header.number}: quorum rule failed: seals from {len(sealed)} distinct "
            f"validators of {len(validators)}; ceil(2n/3) = {needed} needed"
        )

    if validators != trusted:
        vouching = len(sealed & trusted)
        if 3 * vouching <= len(trusted):
            raise VerificationError(
                f"block {header.number}: trust rule failed: the validator set changed and only "
                f"{vouching} of the {len(trusted)} trusted validators sealed it; more than a third "
                f"({len(trusted) // 3 + 1}) must. Update the client through an intermediate block"
            )
    return header


def _trusted_set(trusted_validators: Iterable[bytes]) -> frozenset[bytes]:
    trusted: set[bytes] = set()
    for validator in trusted_validators:
        if not isinstance(validator, bytes) or len(validator) != ADDRESS_SIZE:
            raise VerificationError(
                f"trusted validators must be {ADDRESS_SIZE}-byte addresses, got {validator!r}"
            )
        if validator in trusted:
            raise VerificationError(f"trusted validator set lists {_hex(validator)} twice")
        trusted.add(bytes(validator))  # plain bytes, whatever subclass (HexBytes) came in
    if not trusted:
        raise VerificationError("cannot verify a header against an empty trusted validator set")
    return frozenset(trusted)


def _check_height(header: QbftHeader, trusted_height: int | None) -> None:
    if trusted_height is not None and header.number <= trusted_height:
        raise VerificationError(
            f"height rule failed: header is block {header.number}, not above the trusted "
            f"height {trusted_height}"
        )


def _check_times(
    header: QbftHeader,
    trusted_timestamp: int | None,
    now: float | None,
    trusting_period: float | None,
    max_clock_drift: float | None,
) -> None:
    # Non-decreasing rather than strictly increasing: Besu's sub-second block periods put
    # consecutive blocks in the same second.
    if trusted_timestamp is not None and header.timestamp < trusted_timestamp:
        raise VerificationError(
            f"time rule failed: block {header.number} has timestamp {header.timestamp}, "
            f"before the trusted state's {trusted_timestamp}"
        )
    if trusting_period is not None:
        if now is None or trusted_timestamp is None:
            raise ValueError("trusting_period needs both now and trusted_timestamp")
        expiry = trusted_timestamp + trusting_period
        if now >= expiry:
            raise VerificationError(
                f"time rule failed: the trusted state (timestamp {trusted_timestamp}) expired at "
                f"{expiry} (trusting period {trusting_period}s) and now is {now}; the client "
                "must be re-created from a trusted header"
            )
    if max_clock_drift is not None:
        if now is None:
            raise ValueError("max_clock_drift needs now")
        if header.timestamp > now + max_clock_drift:
            raise VerificationError(
                f"time rule failed: block {header.number} has timestamp {header.timestamp}, "
                f"more than {max_clock_drift}s after now ({now}); check the clocks"
            )


def _check_validator_set(header: QbftHeader) -> None:
    if not header.validators:
        raise VerificationError(f"block {header.number} lists no validators")
    seen: set[bytes] = set()
    for validator in header.validators:
        if validator in seen:
            raise VerificationError(
                f"block {header.number} lists validator {_hex(validator)} twice"
            )
        seen.add(validator)


def _hex(address: bytes) -> str:
    return "0x" + address.hex()
