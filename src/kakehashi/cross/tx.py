"""The cross-ledger transaction (DESIGN.md §6): what both ledgers agree on, and its id.

An :class:`InitiateTx` names the commit protocol, the contract transactions (one per
participating ledger, each reached over an IBC channel, with the parties that must sign it, the
call to run, the return value it must produce and its links to other calls' results) and the
timeouts. Its **canonical encoding** is the Ethereum ABI encoding of the tuple
(:data:`INITIATE_TX_ABI`) — what Vyper's ``abi_encode`` writes for the same struct
(``contracts/cross/transaction.vy``), so ``tx_id = sha256(canonical encoding)`` is the same on
the EVM chain and on the Corda model. :meth:`InitiateTx.decode` accepts only canonical bytes.

:func:`check_initiation` is the initiation rule every ledger applies: a well-formed transaction
whose id it has not seen and whose timeouts have not passed at the ledger's height and time.

Pure: bytes in, values or :class:`~kakehashi.errors.SerializationError` /
:class:`CrossTxError` out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Container
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_abi.exceptions import DecodingError, EncodingError

from kakehashi.errors import KakehashiError, SerializationError
from kakehashi.ibc import host
from kakehashi.ibc.types import Height

__all__ = [
    "INITIATE_TX_ABI",
    "MAX_CALL_INFO",
    "MAX_CONTRACT_TRANSACTIONS",
    "MAX_LINKS",
    "MAX_RETURN_VALUE",
    "MAX_SIGNERS",
    "Account",
    "ChannelInfo",
    "CommitProtocol",
    "ContractTransaction",
    "CrossTxError",
    "InitiateTx",
    "Link",
    "SignerKind",
    "check_initiation",
]

# Bounds shared with contracts/cross/transaction.vy (its DynArray / Bytes / String sizes): a
# whole transaction must fit in one IBC packet (8 KiB) and decode in Vyper.
MAX_CHAIN_ID = 64
MAX_CONTRACT_TRANSACTIONS = 4
MAX_SIGNERS = 3
MAX_ACCOUNT_ID = 64
MAX_CALL_INFO = 384
MAX_RETURN_VALUE = 96
MAX_LINKS = 3

_ACCOUNT = "(uint8,bytes)"
_CHANNEL = "(string,string)"
_CONTRACT_TX = f"({_CHANNEL},{_ACCOUNT}[],bytes,bool,bytes,uint8[])"
INITIATE_TX_ABI = f"(string,uint64,uint8,{_CONTRACT_TX}[],(uint64,uint64),uint64)"
"""The ABI type of the canonical encoding (one tuple, encoded as ``abi.encode(tx)``)."""


class CrossTxError(KakehashiError):
    """A cross-ledger transaction is refused (malformed, already known, expired...)."""


class CommitProtocol(IntEnum):
    SIMPLE = 1  # two ledgers: the initiator prepares, the other commits at once
    TPC = 2  # two-phase commit: prepare everywhere, then commit or abort everywhere


class SignerKind(IntEnum):
    LOCAL = 1  # the submitter on that ledger
    CHANNEL = 2  # signed on the other ledger, proven over IBC
    EXTENSION = 3  # a registered verifier (ECDSA secp256k1, Ed25519 over the tx id)


@dataclass(frozen=True, slots=True)
class Account:
    """A party that must sign: ``id`` is what its kind identifies it by (an EVM address, a
    Corda-model party's public key, a verifier type and key for EXTENSION)."""

    kind: SignerKind
    id: bytes


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    """The IBC channel (on the initiating ledger) that reaches the participant."""

    port: str
    channel: str


@dataclass(frozen=True, slots=True)
class Link:
    """This call takes the result of contract transaction ``source`` as an argument."""

    source: int


@dataclass(frozen=True, slots=True)
class ContractTransaction:
    """One ledger's part: the call it runs (``call_info``, interpreted by that ledger's
    application), who must sign it, the result it must return (None: any) and its links."""

    cross_chain_channel: ChannelInfo
    signers: tuple[Account, ...]
    call_info: bytes
    return_value: bytes | None = None
    links: tuple[Link, ...] = ()


@dataclass(frozen=True, slots=True)
class InitiateTx:
    chain_id: str
    nonce: int
    commit_protocol: CommitProtocol
    contract_transactions: tuple[ContractTransaction, ...]
    timeout_height: Height = field(default_factory=Height)
    timeout_timestamp: int = 0

    def __post_init__(self) -> None:
        _check(self)

    # -- canonical encoding -------------------------------------------------------------------

    def abi_tuple(self) -> tuple[Any, ...]:
        """The transaction as the ABI tuple :data:`INITIATE_TX_ABI` describes (what a web3
        contract call takes for the Vyper ``InitiateTx`` struct)."""
        return (
            self.chain_id,
            self.nonce,
            int(self.commit_protocol),
            [
                (
                    (ct.cross_chain_channel.port, ct.cross_chain_channel.channel),
                    [(int(a.kind), a.id) for a in ct.signers],
                    ct.call_info,
                    ct.return_value is not None,
                    ct.return_value or b"",
                    [link.source for link in ct.links],
                )
                for ct in self.contract_transactions
            ],
            (self.timeout_height.revision_number, self.timeout_height.revision_height),
            self.timeout_timestamp,
        )

    def encode(self) -> bytes:
        """The canonical encoding: ``abi.encode(tx)`` of :data:`INITIATE_TX_ABI`."""
        try:
            return bytes(abi_encode([INITIATE_TX_ABI], [self.abi_tuple()]))
        except (EncodingError, TypeError, ValueError, OverflowError) as exc:  # pragma: no cover
            raise SerializationError(f"cannot encode the cross transaction: {exc}") from None

    @property
    def tx_id(self) -> bytes:
        """``sha256(canonical encoding)``: the same on every ledger."""
        return hashlib.sha256(self.encode()).digest()

    @classmethod
    def decode(cls, data: bytes) -> InitiateTx:
        """The transaction :meth:`encode` made; SerializationError for anything else,
        CrossTxError for a well-encoded transaction that breaks a rule."""
        try:
            (raw,) = abi_decode([INITIATE_TX_ABI], data, strict=True)
            chain_id, nonce, protocol, cts, (rn, rh), timestamp = raw
            tx = cls(
                str(chain_id),
                int(nonce),
                _enum(CommitProtocol, protocol, "commit protocol"),
                tuple(
                    ContractTransaction(
                        ChannelInfo(str(port), str(channel)),
                        tuple(
                            Account(_enum(SignerKind, kind, "signer kind"), bytes(account_id))
                            for kind, account_id in signers
                        ),
                        bytes(call_info),
                        bytes(value) if has_value else None,
                        tuple(Link(int(s)) for s in links),
                    )
                    for (port, channel), signers, call_info, has_value, value, links in cts
                ),
                Height(int(rn), int(rh)),
                int(timestamp),
            )
        except (DecodingError, TypeError, ValueError, OverflowError, UnicodeDecodeError) as exc:
            raise SerializationError(f"not a cross transaction: {exc}") from None
        if tx.encode() != bytes(data):
            raise SerializationError("the cross transaction is not canonically encoded")
        return tx

    def signers(self) -> tuple[Account, ...]:
        """Every party any contract transaction names, each once, in order of appearance."""
        seen: dict[Account, None] = {}
        for ct in self.contract_transactions:
            for account in ct.signers:
                seen.setdefault(account)
        return tuple(seen)


def _enum(kind: type[IntEnum], value: int, what: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise SerializationError(f"unknown {what} {value}") from None


def _check(tx: InitiateTx) -> None:
    """The transaction's own rules (bounds shared with the Vyper structs, and meaning)."""
    if not isinstance(tx.commit_protocol, CommitProtocol):
        raise CrossTxError(f"unknown commit protocol {tx.commit_protocol!r}")
    if not tx.chain_id or len(tx.chain_id.encode()) > MAX_CHAIN_ID:
        raise CrossTxError(f"the chain id must be 1 to {MAX_CHAIN_ID} bytes")
    if not 0 <= tx.nonce < 2**64 or not 0 <= tx.timeout_timestamp < 2**64:
        raise CrossTxError("the nonce and the timeout timestamp are unsigned 64-bit integers")
    if tx.timeout_height.is_zero() and tx.timeout_timestamp == 0:
        raise CrossTxError("a cross transaction needs a timeout (height, timestamp or both)")
    count = len(tx.contract_transactions)
    if not 2 <= count <= MAX_CONTRACT_TRANSACTIONS:
        raise CrossTxError(
            f"a cross transaction has 2 to {MAX_CONTRACT_TRANSACTIONS} contract transactions, "
            f"got {count}"
        )
    if tx.commit_protocol is CommitProtocol.SIMPLE and count != 2:
        raise CrossTxError(f"Simple Commit joins exactly two ledgers, got {count} parts")
    for index, ct in enumerate(tx.contract_transactions):
        where = f"contract transaction {index}"
        try:
            host.validate_port_id(ct.cross_chain_channel.port)
            host.validate_channel_id(ct.cross_chain_channel.channel)
        except KakehashiError as exc:
            raise CrossTxError(f"{where}: {exc}") from None
        if not 1 <= len(ct.signers) <= MAX_SIGNERS:
            raise CrossTxError(f"{where} names 1 to {MAX_SIGNERS} signers, got {len(ct.signers)}")
        for account in ct.signers:
            if not isinstance(account.kind, SignerKind):
                raise CrossTxError(f"{where}: unknown signer kind {account.kind!r}")
            if not 0 < len(account.id) <= MAX_ACCOUNT_ID:
                raise CrossTxError(f"{where}: a signer id is 1 to {MAX_ACCOUNT_ID} bytes")
        if len(set(ct.signers)) != len(ct.signers):
            raise CrossTxError(f"{where} names a signer twice")
        if len(ct.call_info) > MAX_CALL_INFO:
            raise CrossTxError(f"{where}: call info over {MAX_CALL_INFO} bytes")
        if ct.return_value is not None and len(ct.return_value) > MAX_RETURN_VALUE:
            raise CrossTxError(f"{where}: declared return value over {MAX_RETURN_VALUE} bytes")
        if len(ct.links) > MAX_LINKS:
            raise CrossTxError(f"{where} has more than {MAX_LINKS} links")
        for link in ct.links:
            if not 0 <= link.source < count or link.source == index:
                raise CrossTxError(
                    f"{where} links to contract transaction {link.source}, which is not another "
                    "part of this transaction"
                )
            if tx.contract_transactions[link.source].return_value is None:
                raise CrossTxError(
                    f"{where} links to contract transaction {link.source}, which declares no "
                    "return value"
                )


def check_initiation(
    tx: InitiateTx, *, known_ids: Container[bytes], height: Height, timestamp_ns: int
) -> bytes:
    """The initiation rule (every ledger): refuse a transaction whose id is already known or
    whose timeout has passed at this ledger's ``height`` / ``timestamp_ns``; returns the id."""
    tx_id = tx.tx_id
    if tx_id in known_ids:
        raise CrossTxError(f"cross transaction {tx_id.hex()} is already initiated")
    if not tx.timeout_height.is_zero() and height >= tx.timeout_height:
        raise CrossTxError(
            f"cross transaction {tx_id.hex()} timed out at height {tx.timeout_height} "
            f"(this ledger is at {height})"
        )
    if tx.timeout_timestamp and timestamp_ns >= tx.timeout_timestamp:
        raise CrossTxError(
            f"cross transaction {tx_id.hex()} timed out at {tx.timeout_timestamp} ns "
            f"(this ledger's time is {timestamp_ns} ns)"
        )
    return tx_id
