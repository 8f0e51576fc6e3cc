"""The cross-ledger transaction (DESIGN.md §6): what both ledgers agree on, and its id.

An :class:`InitiateTx` names the commit protocol, the contract transactions (one per
participating ledger, each reached over an IBC channel, with the parties that must sign it, the
call to run, the return value it must produce, its links to other calls' results and a 32-byte
``salt``) and the timeouts. Its **full encoding** (what the initiator gives the coordinating
ledger) is the Ethereum ABI encoding of the tuple :data:`INITIATE_TX_ABI` — what Vyper's
``abi_encode`` writes for the same struct (``contracts/cross/transaction.vy``).

**Salted part commitments** ("each ledger sees only what its part needs"):

* ``part digest = sha256(abi.encode(part))`` (:data:`PART_ABI`, the salt included);
* ``tx_id = sha256(abi.encode(chain_id, nonce, protocol, bytes32[] part digests,
  timeout_height, timeout_timestamp))`` (:data:`HEADER_ABI`).

So a ledger can check the tx id from a :class:`TxView` — the header and, per part, either the
part (with its salt) or only its digest — without learning the hidden parts: a participant is
sent the view revealing its part and the parts it links to (:meth:`InitiateTx.view`). The salt
is what hides a part whose content could be guessed (a price, a known party): a part with the
default all-zero salt is hidden from nobody who can enumerate its likely contents, so real
transactions draw it at random (``secrets.token_bytes(32)``). Python and Vyper compute the same
digests and id (both encode with the Ethereum ABI). :meth:`InitiateTx.decode` and
:meth:`TxView.decode` accept only canonical bytes.

:func:`check_initiation` is the initiation rule every ledger applies: a well-formed transaction
whose id it has not seen and whose timeouts have not passed at the ledger's height and time.

Pure: bytes in, values or :class:`~kakehashi.errors.SerializationError` /
:class:`CrossTxError` out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Container, Sequence
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_abi.exceptions import DecodingError, EncodingError

from kakehashi.errors import KakehashiError, SerializationError
from kakehashi.ibc import host
from kakehashi.ibc.types import Height

__all__ = [
    "HEADER_ABI",
    "INITIATE_TX_ABI",
    "MAX_CALL_INFO",
    "MAX_CONTRACT_TRANSACTIONS",
    "MAX_LINKS",
    "MAX_RETURN_VALUE",
    "MAX_SIGNERS",
    "MAX_TX",
    "MAX_VIEW",
    "PART_ABI",
    "VIEW_ABI",
    "ZERO_SALT",
    "Account",
    "ChannelInfo",
    "CommitProtocol",
    "ContractTransaction",
    "CrossTxError",
    "InitiateTx",
    "Link",
    "SignerKind",
    "TxView",
    "check_initiation",
]

# Bounds shared with contracts/cross/transaction.vy (its DynArray / Bytes / String sizes): every
# view of a transaction must fit in one IBC packet (8 KiB) with a SIGN's signer, and decode in
# Vyper.
MAX_CHAIN_ID = 64
MAX_CONTRACT_TRANSACTIONS = 4
MAX_SIGNERS = 3
MAX_ACCOUNT_ID = 64
MAX_CALL_INFO = 384
MAX_RETURN_VALUE = 96
MAX_LINKS = 3
SALT = 32
ZERO_SALT = bytes(SALT)
"""The default salt: deterministic, so such a part is hidden only from those who cannot guess
its content."""
MAX_VIEW = 7680  # a view's encoding; a SIGN packet adds its signer (MAX_PAYLOAD 8000)
# A view's entry costs at most 128 bytes more than the part in the full encoding (digest,
# offsets, the body's length and tuple head), so a full encoding within MAX_TX gives views
# within MAX_VIEW.
MAX_TX = MAX_VIEW - 128 * MAX_CONTRACT_TRANSACTIONS

_ACCOUNT = "(uint8,bytes)"
_CHANNEL = "(string,string)"
_HEIGHT = "(uint64,uint64)"
PART_ABI = f"({_CHANNEL},{_ACCOUNT}[],bytes,bool,bytes,uint8[],bytes32)"
"""The ABI type of one part (``abi.encode(part)``: its digest's preimage)."""
INITIATE_TX_ABI = f"(string,uint64,uint8,{PART_ABI}[],{_HEIGHT},uint64)"
"""The ABI type of the full encoding (one tuple, encoded as ``abi.encode(tx)``)."""
HEADER_ABI = f"(string,uint64,uint8,bytes32[],{_HEIGHT},uint64)"
"""The ABI type of the tx id's preimage: the header with the parts' digests."""
VIEW_ABI = f"(string,uint64,uint8,(bytes32,bytes)[],{_HEIGHT},uint64)"
"""The ABI type of a view: per part ``(digest, b"")`` (hidden) or ``(0, abi.encode(part))``
(revealed; its digest is the body's sha256)."""


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
    salt: bytes = ZERO_SALT

    def abi_tuple(self) -> tuple[Any, ...]:
        """The part as the ABI tuple :data:`PART_ABI` describes (the Vyper struct)."""
        return (
            (self.cross_chain_channel.port, self.cross_chain_channel.channel),
            [(int(a.kind), a.id) for a in self.signers],
            self.call_info,
            self.return_value is not None,
            self.return_value or b"",
            [link.source for link in self.links],
            self.salt,
        )

    def encode(self) -> bytes:
        """``abi.encode(part)`` of :data:`PART_ABI`: what its digest hashes."""
        return _encode(PART_ABI, self.abi_tuple(), "contract transaction")

    @property
    def digest(self) -> bytes:
        """``sha256(abi.encode(part))``: the part's commitment in the tx id."""
        return hashlib.sha256(self.encode()).digest()

    @classmethod
    def decode(cls, data: bytes) -> ContractTransaction:
        """The part :meth:`encode` made (canonical bytes only; its bounds are checked with the
        transaction or view holding it)."""
        try:
            (raw,) = abi_decode([PART_ABI], data, strict=True)
            part = _part(raw)
        except (DecodingError, TypeError, ValueError, OverflowError, UnicodeDecodeError) as exc:
            raise SerializationError(f"not a contract transaction: {exc}") from None
        if part.encode() != bytes(data):
            raise SerializationError("the contract transaction is not canonically encoded")
        return part


@dataclass(frozen=True, slots=True)
class InitiateTx:
    chain_id: str
    nonce: int
    commit_protocol: CommitProtocol
    contract_transactions: tuple[ContractTransaction, ...]
    timeout_height: Height = field(default_factory=Height)
    timeout_timestamp: int = 0
    _id: bytes = field(init=False, repr=False, compare=False, default=b"")

    def __post_init__(self) -> None:
        _check(self)
        object.__setattr__(self, "_id", _header_id(self, self.digests))  # asked for often

    # -- canonical encoding -------------------------------------------------------------------

    def abi_tuple(self) -> tuple[Any, ...]:
        """The transaction as the ABI tuple :data:`INITIATE_TX_ABI` describes (what a web3
        contract call takes for the Vyper ``InitiateTx`` struct)."""
        return (
            self.chain_id,
            self.nonce,
            int(self.commit_protocol),
            [ct.abi_tuple() for ct in self.contract_transactions],
            (self.timeout_height.revision_number, self.timeout_height.revision_height),
            self.timeout_timestamp,
        )

    def encode(self) -> bytes:
        """The full encoding: ``abi.encode(tx)`` of :data:`INITIATE_TX_ABI` (every part
        revealed: what the coordinating ledger is given)."""
        return _encode(INITIATE_TX_ABI, self.abi_tuple(), "cross transaction")

    @property
    def digests(self) -> tuple[bytes, ...]:
        return tuple(ct.digest for ct in self.contract_transactions)

    @property
    def tx_id(self) -> bytes:
        """The salted part commitments' id (module docstring): the same on every ledger, and
        for every view of the transaction."""
        return self._id

    def view(self, index: int) -> TxView:
        """What part ``index``'s ledger is sent: the header, part ``index`` and the parts it
        links to (it needs their declared return values), and the other parts' digests."""
        if not 0 <= index < len(self.contract_transactions):
            raise CrossTxError(f"the transaction has no part {index}")
        part = self.contract_transactions[index]
        return self.revealing({index, *(link.source for link in part.links)})

    def revealing(self, indexes: Container[int]) -> TxView:
        """The view revealing the parts in ``indexes`` (the others: their digests)."""
        return TxView(
            self.chain_id,
            self.nonce,
            self.commit_protocol,
            tuple(
                ct if i in indexes else ct.digest for i, ct in enumerate(self.contract_transactions)
            ),
            self.timeout_height,
            self.timeout_timestamp,
        )

    def expired(self, height: Height, timestamp_ns: int) -> bool:
        """Whether the timeout passed at a ledger's ``height`` and time."""
        return _expired(self.timeout_height, self.timeout_timestamp, height, timestamp_ns)

    @classmethod
    def decode(cls, data: bytes) -> InitiateTx:
        """The transaction :meth:`encode` made; SerializationError for anything else,
        CrossTxError for a well-encoded transaction that breaks a rule."""
        try:
            (raw,) = abi_decode([INITIATE_TX_ABI], data, strict=True)
            chain_id, nonce, protocol, cts, (rn, rh), timestamp = raw
            parts = tuple(_part(ct) for ct in cts)
            protocol = _enum(CommitProtocol, protocol, "commit protocol")
            height = Height(int(rn), int(rh))
        except (DecodingError, TypeError, ValueError, OverflowError, UnicodeDecodeError) as exc:
            raise SerializationError(f"not a cross transaction: {exc}") from None
        tx = cls(str(chain_id), int(nonce), protocol, parts, height, int(timestamp))
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


@dataclass(frozen=True, slots=True)
class TxView:
    """A transaction as one ledger is shown it: the header and, per part, the part itself
    (revealed, with its salt) or only its digest (hidden). Its :attr:`tx_id` is the
    transaction's: a changed digest or revealed part changes it."""

    chain_id: str
    nonce: int
    commit_protocol: CommitProtocol
    parts: tuple[ContractTransaction | bytes, ...]  # a revealed part, or a hidden part's digest
    timeout_height: Height = field(default_factory=Height)
    timeout_timestamp: int = 0
    _id: bytes = field(init=False, repr=False, compare=False, default=b"")

    def __post_init__(self) -> None:
        _check_header(
            self.chain_id,
            self.nonce,
            self.commit_protocol,
            len(self.parts),
            self.timeout_height,
            self.timeout_timestamp,
        )
        for index, part in enumerate(self.parts):
            if isinstance(part, ContractTransaction):
                _check_part(index, part, self.parts)
            elif len(part) != 32 or part == bytes(32):
                raise CrossTxError(f"part {index} is hidden behind a digest of 32 non-zero bytes")
        object.__setattr__(self, "_id", _header_id(self, self.digests))

    @property
    def digests(self) -> tuple[bytes, ...]:
        return tuple(p.digest if isinstance(p, ContractTransaction) else p for p in self.parts)

    @property
    def tx_id(self) -> bytes:
        """The transaction's id, from the header and the parts' digests."""
        return self._id

    def revealed(self, index: int) -> bool:
        return 0 <= index < len(self.parts) and isinstance(self.parts[index], ContractTransaction)

    def part(self, index: int) -> ContractTransaction:
        """Part ``index`` and the parts it links to, revealed (what a ledger needs to run or
        sign it): part ``index``; CrossTxError when the view hides any of them."""
        if not 0 <= index < len(self.parts):
            raise CrossTxError(f"the transaction has no part {index}")
        part = self.parts[index]
        if not isinstance(part, ContractTransaction):
            raise CrossTxError(f"the view of {self.tx_id.hex()} hides part {index}, its own")
        hidden = [link.source for link in part.links if not self.revealed(link.source)]
        if hidden:
            raise CrossTxError(
                f"the view of {self.tx_id.hex()} hides part {hidden[0]}, whose declared return "
                f"value part {index} takes"
            )
        return part

    def merged(self, other: TxView) -> TxView:
        """This view with the parts ``other`` (a view of the same transaction) reveals too (a
        ledger that runs two parts was sent two views)."""
        if other.tx_id != self.tx_id:
            raise CrossTxError("views of two different transactions do not merge")
        parts = tuple(
            mine if isinstance(mine, ContractTransaction) else theirs
            for mine, theirs in zip(self.parts, other.parts, strict=True)
        )
        return replace(self, parts=parts)

    def shown(self) -> dict[str, dict[str, str]]:
        """Per part (by index): ``revealed`` or ``hidden``, with its digest (JSON-ready: what
        ``kakehashi tx status`` prints of a participant's view)."""
        return {
            str(i): {
                "part": "revealed" if isinstance(part, ContractTransaction) else "hidden",
                "digest": digest.hex(),
            }
            for i, (part, digest) in enumerate(zip(self.parts, self.digests, strict=True))
        }

    def linked(self, index: int) -> tuple[bytes, ...]:
        """The declared return values of the parts part ``index`` links to, in link order."""
        sources = [self.parts[link.source] for link in self.part(index).links]  # all revealed
        return tuple(p.return_value or b"" for p in sources if isinstance(p, ContractTransaction))

    def expired(self, height: Height, timestamp_ns: int) -> bool:
        """Whether the timeout passed at a ledger's ``height`` and time."""
        return _expired(self.timeout_height, self.timeout_timestamp, height, timestamp_ns)

    def abi_tuple(self) -> tuple[Any, ...]:
        """The view as the ABI tuple :data:`VIEW_ABI` describes (the Vyper ``TxView``)."""
        return (
            self.chain_id,
            self.nonce,
            int(self.commit_protocol),
            [
                (bytes(32), p.encode()) if isinstance(p, ContractTransaction) else (p, b"")
                for p in self.parts
            ],
            (self.timeout_height.revision_number, self.timeout_height.revision_height),
            self.timeout_timestamp,
        )

    def encode(self) -> bytes:
        """``abi.encode(view)`` of :data:`VIEW_ABI`."""
        return _encode(VIEW_ABI, self.abi_tuple(), "view of a cross transaction")

    @classmethod
    def decode(cls, data: bytes) -> TxView:
        """The view :meth:`encode` made; SerializationError for anything else (an entry with
        both a digest and a part, a part not canonically encoded), CrossTxError for a
        well-encoded view that breaks a rule."""
        try:
            (raw,) = abi_decode([VIEW_ABI], data, strict=True)
            chain_id, nonce, protocol, entries, (rn, rh), timestamp = raw
            protocol = _enum(CommitProtocol, protocol, "commit protocol")
            height = Height(int(rn), int(rh))
        except (DecodingError, TypeError, ValueError, OverflowError, UnicodeDecodeError) as exc:
            raise SerializationError(f"not a view of a cross transaction: {exc}") from None
        parts: list[ContractTransaction | bytes] = []
        for digest, body in entries:
            if body and bytes(digest) != bytes(32):
                raise SerializationError("a revealed part's entry carries no digest")
            parts.append(ContractTransaction.decode(bytes(body)) if body else bytes(digest))
        view = cls(str(chain_id), int(nonce), protocol, tuple(parts), height, int(timestamp))
        if view.encode() != bytes(data):
            raise SerializationError("the view is not canonically encoded")
        return view


def _encode(abi_type: str, value: tuple[Any, ...], what: str) -> bytes:
    try:
        return bytes(abi_encode([abi_type], [value]))
    except (EncodingError, TypeError, ValueError, OverflowError) as exc:  # pragma: no cover
        raise SerializationError(f"cannot encode the {what}: {exc}") from None


def _header_id(tx: InitiateTx | TxView, digests: Sequence[bytes]) -> bytes:
    """``sha256(abi.encode(header with the parts' digests))`` (:data:`HEADER_ABI`)."""
    header = (
        tx.chain_id,
        tx.nonce,
        int(tx.commit_protocol),
        list(digests),
        (tx.timeout_height.revision_number, tx.timeout_height.revision_height),
        tx.timeout_timestamp,
    )
    return hashlib.sha256(_encode(HEADER_ABI, header, "transaction header")).digest()


def _part(raw: Any) -> ContractTransaction:
    (port, channel), signers, call_info, has_value, value, links, salt = raw
    return ContractTransaction(
        ChannelInfo(str(port), str(channel)),
        tuple(
            Account(_enum(SignerKind, kind, "signer kind"), bytes(account_id))
            for kind, account_id in signers
        ),
        bytes(call_info),
        bytes(value) if has_value else None,
        tuple(Link(int(s)) for s in links),
        bytes(salt),
    )


def _expired(timeout_height: Height, timeout_timestamp: int, height: Height, now_ns: int) -> bool:
    by_height = not timeout_height.is_zero() and height >= timeout_height
    return by_height or (timeout_timestamp != 0 and now_ns >= timeout_timestamp)


def _enum(kind: type[IntEnum], value: int, what: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise SerializationError(f"unknown {what} {value}") from None


def _check(tx: InitiateTx) -> None:
    """The transaction's own rules (bounds shared with the Vyper structs, and meaning)."""
    parts = tx.contract_transactions
    _check_header(
        tx.chain_id,
        tx.nonce,
        tx.commit_protocol,
        len(parts),
        tx.timeout_height,
        tx.timeout_timestamp,
    )
    for index, ct in enumerate(parts):
        _check_part(index, ct, parts)
    size = len(tx.encode())
    if size > MAX_TX:
        raise CrossTxError(
            f"the transaction encodes to {size} bytes, over {MAX_TX}: its views would not fit "
            "an IBC packet"
        )


def _check_header(
    chain_id: str,
    nonce: int,
    protocol: CommitProtocol,
    count: int,
    timeout_height: Height,
    timeout_timestamp: int,
) -> None:
    if not isinstance(protocol, CommitProtocol):
        raise CrossTxError(f"unknown commit protocol {protocol!r}")
    if not chain_id or len(chain_id.encode()) > MAX_CHAIN_ID:
        raise CrossTxError(f"the chain id must be 1 to {MAX_CHAIN_ID} bytes")
    if not 0 <= nonce < 2**64 or not 0 <= timeout_timestamp < 2**64:
        raise CrossTxError("the nonce and the timeout timestamp are unsigned 64-bit integers")
    if timeout_height.is_zero() and timeout_timestamp == 0:
        raise CrossTxError("a cross transaction needs a timeout (height, timestamp or both)")
    if not 2 <= count <= MAX_CONTRACT_TRANSACTIONS:
        raise CrossTxError(
            f"a cross transaction has 2 to {MAX_CONTRACT_TRANSACTIONS} contract transactions, "
            f"got {count}"
        )
    if protocol is CommitProtocol.SIMPLE and count != 2:
        raise CrossTxError(f"Simple Commit joins exactly two ledgers, got {count} parts")


def _check_part(
    index: int, ct: ContractTransaction, parts: Sequence[ContractTransaction | bytes]
) -> None:
    """Part ``index``'s rules; a link to a revealed part (every part of a full transaction)
    must name one that declares a return value."""
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
    if len(ct.salt) != SALT:
        raise CrossTxError(f"{where}: the salt is {SALT} bytes")
    if len(ct.links) > MAX_LINKS:
        raise CrossTxError(f"{where} has more than {MAX_LINKS} links")
    for link in ct.links:
        if not 0 <= link.source < len(parts) or link.source == index:
            raise CrossTxError(
                f"{where} links to contract transaction {link.source}, which is not another "
                "part of this transaction"
            )
        source = parts[link.source]
        if isinstance(source, ContractTransaction) and source.return_value is None:
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
    if _expired(tx.timeout_height, 0, height, timestamp_ns):
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
