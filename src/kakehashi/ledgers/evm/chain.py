"""The embedded EVM chain: py-evm's Prague VM producing QBFT-sealed blocks, on disk or in memory.

This is the role a GoQuorum / Besu network plays, in one process: a transaction pool, block
production (one block per transaction in ``auto`` mode, a batch every T ms in ``interval`` mode),
blocks whose ``extraData`` is Besu's QBFT layout ``RLP([vanity, validators, vote, round, seals])``
sealed by every validator key the chain holds, and a chain database that survives ``kill -9``
(see :mod:`kakehashi.ledgers.evm.storage`).

Rules of the embedded chain that differ from Ethereum mainnet, as on Besu QBFT networks: there is
no fork choice (a sealed block is final: ``safe`` and ``finalized`` are ``latest``), the block's
coinbase is its proposer (validators take turns by block number) and ``mixHash`` is QBFT's fixed
digest. Unlike Besu, the block hash covers the seals (py-evm hashes the whole header); the QBFT
commit hash the validators sign is the header with the seals list emptied, exactly as Besu's.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import rlp
from coincurve import PrivateKey
from eth._utils.address import generate_contract_address
from eth.abc import BlockAPI, BlockHeaderAPI, ReceiptAPI, SignedTransactionAPI
from eth.chains.base import MiningChain
from eth.exceptions import BlockNotFound, HeaderNotFound, TransactionNotFound
from eth.rlp.accounts import Account
from eth.vm.forks import PragueVM
from eth.vm.spoof import SpoofTransaction
from eth_account import Account as EthAccount
from eth_bloom import BloomFilter
from eth_typing import Address
from eth_utils import ValidationError, keccak, to_canonical_address, to_checksum_address
from trie import HexaryTrie

from kakehashi.errors import ConfigurationError, ExecutionRevertedError, InvalidTransactionError
from kakehashi.ledgers.evm import qbft, speedups
from kakehashi.ledgers.evm.storage import ChainStore

log = logging.getLogger(__name__)
speedups.install()

DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_ACCOUNTS = 10
DEV_BALANCE = 10_000 * 10**18
DEFAULT_CHAIN_ID = 1337
DEFAULT_GAS_LIMIT = 30_000_000
DEFAULT_BASE_FEE = 10**9
PRIORITY_FEE = 10**9
BlockMode = Literal["auto", "interval"]
BlockId = int | bytes | str

GENESIS_FILE = "genesis.json"
KEYS_FILE = "validators.key"
MAX_INDEXED_BLOCKS = 100_000  # blocks whose logs the eth_getLogs index keeps
DB_FILE = "chain.sqlite"


class QbftPragueVM(PragueVM):  # type: ignore[misc]
    """Prague rules with room for QBFT's extraData (validators and seals exceed 32 bytes)."""

    extra_data_max_bytes = 1 << 16


@dataclass(frozen=True)
class Genesis:
    """What a chain starts from. ``alloc`` maps 20-byte addresses to balances in wei."""

    chain_id: int = DEFAULT_CHAIN_ID
    gas_limit: int = DEFAULT_GAS_LIMIT
    base_fee_per_gas: int = DEFAULT_BASE_FEE
    timestamp: int = 0
    alloc: dict[bytes, int] = field(default_factory=dict)
    validators: int = 4
    development: bool = False

    @classmethod
    def dev(cls, validators: int = 4, chain_id: int = DEFAULT_CHAIN_ID) -> Genesis:
        """The development genesis: the first 10 accounts of the standard test mnemonic funded."""
        alloc = {bytes.fromhex(a.address[2:]): DEV_BALANCE for a in dev_accounts()}
        return cls(chain_id=chain_id, alloc=alloc, validators=validators, development=True)

    @classmethod
    def load(cls, path: Path) -> Genesis:
        """Read a genesis config (JSON: chainId, gasLimit, baseFeePerGas, validators, alloc)."""
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigurationError(f"genesis file {path} does not exist") from None
        except json.JSONDecodeError as exc:
            raise ConfigurationError(f"genesis file {path} is not valid JSON: {exc}") from None
        return cls.from_json(raw, str(path))

    @classmethod
    def from_json(cls, raw: Any, where: str = "genesis") -> Genesis:
        if not isinstance(raw, dict):
            raise ConfigurationError(f"{where}: expected a JSON object")
        known = {"chainId", "gasLimit", "baseFeePerGas", "timestamp", "alloc", "validators"}
        if unknown := set(raw) - known - {"development"}:
            raise ConfigurationError(
                f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(known)}"
            )
        try:
            alloc = {
                bytes(to_canonical_address(address)): _int(entry["balance"])
                for address, entry in dict(raw.get("alloc", {})).items()
            }
            genesis = cls(
                chain_id=_int(raw.get("chainId", DEFAULT_CHAIN_ID)),
                gas_limit=_int(raw.get("gasLimit", DEFAULT_GAS_LIMIT)),
                base_fee_per_gas=_int(raw.get("baseFeePerGas", DEFAULT_BASE_FEE)),
                timestamp=_int(raw.get("timestamp", 0)),
                alloc=alloc,
                validators=_int(raw.get("validators", 4)),
                development=bool(raw.get("development", False)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"{where}: invalid value ({exc})") from None
        if genesis.chain_id <= 0 or genesis.validators < 1 or genesis.gas_limit < 5000:
            raise ConfigurationError(
                f"{where}: chainId must be > 0, validators >= 1 and gasLimit >= 5000"
            )
        return genesis

    def to_json(self) -> dict[str, Any]:
        return {
            "chainId": self.chain_id,
            "gasLimit": self.gas_limit,
            "baseFeePerGas": self.base_fee_per_gas,
            "timestamp": self.timestamp,
            "validators": self.validators,
            "development": self.development,
            "alloc": {to_checksum_address(a): {"balance": hex(b)} for a, b in self.alloc.items()},
        }


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError("expected a number, got a boolean")
    if isinstance(value, str):
        return int(value, 16) if value.lower().startswith("0x") else int(value)
    if isinstance(value, int):
        return value
    raise TypeError(f"expected a number, got {value!r}")


_dev_cache: list[Any] = []


def dev_accounts() -> list[Any]:
    """The first 10 accounts of the standard development mnemonic (m/44'/60'/0'/0/i)."""
    if not _dev_cache:
        EthAccount.enable_unaudited_hdwallet_features()
        _dev_cache.extend(
            EthAccount.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}")
            for i in range(DEV_ACCOUNTS)
        )
    return list(_dev_cache)


@dataclass(frozen=True)
class LogEntry:
    address: bytes
    topics: tuple[bytes, ...]
    data: bytes
    block_number: int
    block_hash: bytes
    tx_hash: bytes
    tx_index: int
    log_index: int


@dataclass(frozen=True)
class ReceiptInfo:
    """A mined transaction's receipt with everything ``eth_getTransactionReceipt`` shows."""

    tx_hash: bytes
    tx_index: int
    block_hash: bytes
    block_number: int
    sender: bytes
    to: bytes | None
    contract_address: bytes | None
    cumulative_gas_used: int
    gas_used: int
    effective_gas_price: int
    status: int
    tx_type: int
    logs: tuple[LogEntry, ...]
    bloom: bytes


@dataclass(frozen=True)
class CallMessage:
    """An ``eth_call`` / ``eth_estimateGas`` message (nothing signed)."""

    sender: bytes | None = None
    to: bytes | None = None
    gas: int | None = None
    gas_price: int | None = None
    value: int = 0
    data: bytes = b""


@dataclass
class _Pending:
    tx: SignedTransactionAPI
    sender: bytes


class EmbeddedChain:
    """A QBFT chain on py-evm. Thread-safe: one lock serialises every access to py-evm."""

    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        genesis: Genesis | None = None,
        validators: int | None = None,
        block_mode: BlockMode = "auto",
        interval_ms: int = 1000,
    ) -> None:
        if block_mode not in ("auto", "interval"):
            raise ConfigurationError(f"block mode must be 'auto' or 'interval', not {block_mode!r}")
        if interval_ms <= 0:
            raise ConfigurationError("the block interval must be a positive number of ms")
        self.data_dir = data_dir
        self.block_mode: BlockMode = block_mode
        self.interval_ms = interval_ms
        self._lock = threading.RLock()
        self._pool: list[_Pending] = []
        self._pooled: set[tuple[bytes, int]] = set()  # (sender, nonce) of every pooled tx
        self._stop = threading.Event()
        self._closed = False
        self._producer: threading.Thread | None = None
        self.genesis, keys = self._load_or_create_config(data_dir, genesis, validators)
        self._keys = keys
        self.validators: tuple[bytes, ...] = tuple(
            keccak(k.public_key.format(compressed=False)[1:])[12:] for k in keys
        )
        self.chain_id = self.genesis.chain_id
        self._store = ChainStore(data_dir / DB_FILE if data_dir is not None else None)
        chain_class = MiningChain.configure(
            __name__="KakehashiQbftChain",
            chain_id=self.chain_id,
            vm_configuration=((0, QbftPragueVM),),
        )
        # py-evm's NewType-typed API (Address, Hash32, BlockNumber) is used with plain bytes/ints.
        self._chain: Any = self._open_chain(chain_class)
        self._receipt_cache: dict[bytes, ReceiptInfo] = {}
        # Every log of a block, by block number (a QBFT block is final: its logs never change),
        # so that eth_getLogs reads neither headers nor receipts of a block seen before.
        self._block_logs: dict[int, tuple[LogEntry, ...]] = {}
        self._head_view: tuple[BlockHeaderAPI, Any] | None = None
        if block_mode == "interval":
            self._producer = threading.Thread(
                target=self._produce_loop, name="block-producer", daemon=True
            )
            self._producer.start()

    # -- set-up -------------------------------------------------------------------------------

    @staticmethod
    def _load_or_create_config(
        data_dir: Path | None, genesis: Genesis | None, validators: int | None
    ) -> tuple[Genesis, list[PrivateKey]]:
        if data_dir is not None and (data_dir / GENESIS_FILE).exists():
            stored = Genesis.load(data_dir / GENESIS_FILE)
            if validators is not None and validators != stored.validators:
                raise ConfigurationError(
                    f"{data_dir} holds a chain with {stored.validators} validators; "
                    f"--validators {validators} cannot change it (use a new data directory)"
                )
            if genesis is not None and genesis.chain_id != stored.chain_id:
                raise ConfigurationError(
                    f"{data_dir} holds chain id {stored.chain_id}, not {genesis.chain_id}"
                )
            try:
                lines = (data_dir / KEYS_FILE).read_text().split()
                keys = [PrivateKey(bytes.fromhex(line)) for line in lines]
            except (OSError, ValueError) as exc:
                raise ConfigurationError(
                    f"cannot read validator keys from {data_dir / KEYS_FILE}: {exc}"
                ) from None
            if len(keys) != stored.validators:
                raise ConfigurationError(
                    f"{data_dir / KEYS_FILE} holds {len(keys)} keys, genesis says "
                    f"{stored.validators}"
                )
            return stored, keys
        if genesis is None:
            genesis = Genesis.dev(validators or 4)
        elif validators is not None and validators != genesis.validators:
            genesis = Genesis(**{**genesis.__dict__, "validators": validators})
        if genesis.timestamp == 0:
            genesis = Genesis(**{**genesis.__dict__, "timestamp": int(time.time())})
        keys = [PrivateKey() for _ in range(genesis.validators)]
        if data_dir is not None:
            data_dir.mkdir(parents=True, exist_ok=True)
            key_path = data_dir / KEYS_FILE
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write("\n".join(k.secret.hex() for k in keys) + "\n")
            # Written last: its presence marks a complete data directory.
            tmp = data_dir / (GENESIS_FILE + ".tmp")
            tmp.write_text(json.dumps(genesis.to_json(), indent=2))
            tmp.replace(data_dir / GENESIS_FILE)
        return genesis, keys

    def _open_chain(self, chain_class: Any) -> Any:
        try:
            head = chain_class.get_chaindb_class()(self._store.db).get_canonical_head()
        except (HeaderNotFound, KeyError, Exception) as exc:  # an empty database
            if not _is_missing_head(exc):
                raise
            head = None
        if head is not None:
            chain = chain_class(self._store.db)
            log.info("chain %s resumed at block %d", self.chain_id, head.block_number)
            return chain
        genesis_extra = qbft.QbftExtraData(
            vanity=b"\x00" * 32, validators=self.validators, vote=None, round=0, committed_seals=()
        ).encode()
        params = {
            "difficulty": 0,
            "gas_limit": self.genesis.gas_limit,
            "timestamp": self.genesis.timestamp,
            "extra_data": genesis_extra,
            "mix_hash": qbft.BFT_MIX_HASH,
            "base_fee_per_gas": self.genesis.base_fee_per_gas,
            "nonce": b"\x00" * 8,
            "coinbase": b"\x00" * 20,
        }
        state = {
            address: {"balance": balance, "nonce": 0, "code": b"", "storage": {}}
            for address, balance in self.genesis.alloc.items()
        }
        chain = chain_class.from_genesis(self._store.db, params, state)
        self._store.commit()
        return chain

    # -- reading ------------------------------------------------------------------------------

    def next_base_fee(self) -> int:
        """The base fee per gas of the next block (EIP-1559, from the head's gas use)."""
        with self._lock:
            return int(self._chain.header.base_fee_per_gas)

    def head(self) -> BlockHeaderAPI:
        with self._lock:
            return self._chain.get_canonical_head()

    def block_number(self) -> int:
        return int(self.head().block_number)

    def header(self, block: BlockId = "latest") -> BlockHeaderAPI | None:
        """The canonical header for a number, hash or tag (``latest``, ``earliest``, ...)."""
        with self._lock:
            if isinstance(block, bytes):
                try:
                    header = self._chain.chaindb.get_block_header_by_hash(block)
                except HeaderNotFound:
                    return None
                try:
                    canonical = self._chain.chaindb.get_canonical_block_hash(header.block_number)
                except HeaderNotFound:
                    return None
                return header if canonical == block else None
            if isinstance(block, str):
                if block in ("latest", "pending", "safe", "finalized"):
                    return self._chain.get_canonical_head()
                if block == "earliest":
                    block = 0
                else:
                    raise ValueError(f"unknown block tag {block!r}")
            try:
                return self._chain.get_canonical_block_header_by_number(block)
            except (HeaderNotFound, BlockNotFound):
                return None

    def block(self, block: BlockId = "latest") -> BlockAPI | None:
        with self._lock:
            header = self.header(block)
            if header is None:
                return None
            return self._chain.get_block_by_header(header)

    def state(self, block: BlockId = "latest") -> Any:
        """A read-only view of the state after ``block`` (do not mutate it)."""
        with self._lock:
            header = self.header(block)
            return None if header is None else self._chain.get_vm(header).state

    def balance(self, address: bytes, block: BlockId = "latest") -> int | None:
        with self._lock:
            state = self.state(block)
            return None if state is None else int(state.get_balance(address))

    def code(self, address: bytes, block: BlockId = "latest") -> bytes | None:
        with self._lock:
            state = self.state(block)
            return None if state is None else bytes(state.get_code(address))

    def storage_at(self, address: bytes, slot: int, block: BlockId = "latest") -> int | None:
        with self._lock:
            state = self.state(block)
            return None if state is None else int(state.get_storage(address, slot))

    def nonce(self, address: bytes, block: BlockId = "latest") -> int | None:
        """The account nonce; for ``pending`` it counts the pool's consecutive transactions."""
        with self._lock:
            state = self.state(block)
            if state is None:
                return None
            nonce = int(state.get_nonce(address))
            if block == "pending":
                while (address, nonce) in self._pooled:
                    nonce += 1
            return nonce

    def transaction(
        self, tx_hash: bytes
    ) -> tuple[SignedTransactionAPI, BlockHeaderAPI | None, int] | None:
        """A transaction by hash: (tx, header of its block or None if pending, index)."""
        with self._lock:
            try:
                number, index = self._chain.chaindb.get_transaction_index(tx_hash)
            except TransactionNotFound:
                for pending in self._pool:
                    if pending.tx.hash == tx_hash:
                        return pending.tx, None, 0
                return None
            header = self._chain.get_canonical_block_header_by_number(number)
            block = self._chain.get_block_by_header(header)
            return block.transactions[index], header, index

    def receipt(self, tx_hash: bytes) -> ReceiptInfo | None:
        with self._lock:
            cached = self._receipt_cache.get(tx_hash)
            if cached is not None:
                return cached
            try:
                number, _index = self._chain.chaindb.get_transaction_index(tx_hash)
            except TransactionNotFound:
                return None
            header = self._chain.get_canonical_block_header_by_number(number)
            block = self._chain.get_block_by_header(header)
            self._remember_receipts(self._receipts_of(block))
            return self._receipt_cache.get(tx_hash)

    def _remember_receipts(self, infos: Sequence[ReceiptInfo]) -> None:
        if len(self._receipt_cache) > 50_000:
            self._receipt_cache.clear()
        for info in infos:
            self._receipt_cache[info.tx_hash] = info

    def _remember_logs(self, number: int, infos: Sequence[ReceiptInfo]) -> tuple[LogEntry, ...]:
        """Index block ``number``'s logs (bounded like the receipt cache: a cleared index is
        rebuilt from the receipts on demand)."""
        if len(self._block_logs) > MAX_INDEXED_BLOCKS:
            self._block_logs.clear()
        entries = tuple(entry for info in infos for entry in info.logs)
        self._block_logs[number] = entries
        return entries

    def _logs_of(
        self, number: int, addresses: set[bytes], topics: Sequence[Sequence[bytes] | None]
    ) -> tuple[LogEntry, ...]:
        """Every log of canonical block ``number`` in log-index order, from the index; a block
        not indexed yet is read (and indexed) only if its bloom may match the filter (caller
        holds the lock, ``number`` ≤ head)."""
        entries = self._block_logs.get(number)
        if entries is None:
            header = self._chain.get_canonical_block_header_by_number(number)
            if not _bloom_may_match(int(header.bloom), addresses, topics):
                return ()
            block = self._chain.get_block_by_header(header)
            entries = self._remember_logs(number, self._receipts_of(block))
        return entries

    def _receipts_of(self, block: BlockAPI) -> list[ReceiptInfo]:
        receipts: Sequence[ReceiptAPI] = block.get_receipts(self._chain.chaindb)
        return _receipt_infos(block.header, block.transactions, receipts)

    def priority_fees(self, number: int, percentiles: Sequence[float]) -> list[int]:
        """``eth_feeHistory`` rewards: the tips paid in block ``number`` at gas-weighted
        percentiles (each transaction's effective tip counted once per unit of gas it used)."""
        with self._lock:
            block = self.block(number)
            if block is None:
                raise KeyError(f"no block {number}")
            base_fee = int(getattr(block.header, "base_fee_per_gas", 0) or 0)
            paid = sorted(
                (info.effective_gas_price - base_fee, info.gas_used)
                for info in self._receipts_of(block)
            )
        total = sum(gas for _tip, gas in paid)
        rewards = []
        for percentile in percentiles:
            threshold, used, reward = total * percentile / 100, 0, 0
            for tip, gas in paid:
                used += gas
                reward = tip
                if used >= threshold:
                    break
            rewards.append(reward)
        return rewards

    def logs(
        self,
        from_block: int,
        to_block: int,
        addresses: Sequence[bytes] = (),
        topics: Sequence[Sequence[bytes] | None] = (),
    ) -> list[LogEntry]:
        """Logs in blocks ``from_block..to_block`` matching the address and topic filters
        (``eth_getLogs``), read from the per-block log index (:meth:`_logs_of`)."""
        found: list[LogEntry] = []
        wanted = set(addresses)
        options = [None if not t else set(t) for t in topics]
        with self._lock:
            last = min(to_block, self.block_number())
            for number in range(max(from_block, 0), last + 1):
                for entry in self._logs_of(number, wanted, topics):
                    if _log_matches(entry, wanted, options):
                        found.append(entry)
        return found

    def proof(
        self, address: bytes, slots: Sequence[int], block: BlockId = "latest"
    ) -> dict[str, Any]:
        """``eth_getProof``: the account and storage Merkle-Patricia proofs at ``block``."""
        with self._lock:
            header = self.header(block)
            if header is None:
                raise KeyError(f"no block {block!r}")
            db = self._store.db
            state_trie = HexaryTrie(db, header.state_root)
            account_key = keccak(address)
            account_proof = state_trie.get_proof(account_key)
            raw_account = state_trie.get(account_key)
            account = rlp.decode(raw_account, sedes=Account) if raw_account else Account()
            storage_trie = HexaryTrie(db, account.storage_root)
            storage = []
            for slot in slots:
                slot_key = keccak(slot.to_bytes(32, "big"))
                raw_value = storage_trie.get(slot_key)
                storage.append(
                    {
                        "key": hex(slot),
                        "value": hex(rlp.decode(raw_value, sedes=rlp.sedes.big_endian_int))
                        if raw_value
                        else "0x0",
                        "proof": [_hex(rlp.encode(n)) for n in storage_trie.get_proof(slot_key)],
                    }
                )
            return {
                "address": to_checksum_address(address),
                "accountProof": [_hex(rlp.encode(n)) for n in account_proof],
                "balance": hex(account.balance),
                "codeHash": _hex(account.code_hash),
                "nonce": hex(account.nonce),
                "storageHash": _hex(account.storage_root),
                "storageProof": storage,
            }

    # -- executing without a transaction ------------------------------------------------------

    def _spoof(self, message: CallMessage, header: BlockHeaderAPI) -> tuple[Any, SpoofTransaction]:
        sender = message.sender or b"\x00" * 20
        price = message.gas_price or 0
        # A call that names no price runs with a zero base fee, as geth's eth_call does.
        exec_header = header.copy(base_fee_per_gas=0) if price == 0 else header
        vm = self._chain.get_vm(exec_header)
        gas = message.gas if message.gas is not None else int(header.gas_limit)
        unsigned = vm.create_unsigned_transaction(
            nonce=vm.state.get_nonce(sender),
            gas_price=price,
            gas=gas,
            to=message.to or b"",
            value=message.value,
            data=message.data,
        )
        return vm, SpoofTransaction(unsigned, from_=sender)

    def _execute(self, message: CallMessage, header: BlockHeaderAPI, what: str) -> tuple[Any, int]:
        """Run ``message`` on the state of ``header`` and revert: (computation, gas needed)."""
        vm, tx = self._spoof(message, header)
        state = vm.state
        snapshot = state.snapshot()
        try:
            computation = state.apply_transaction(tx)
        except ValidationError as exc:
            raise InvalidTransactionError(f"{what}: {exc}") from None
        finally:
            state.revert(snapshot)
        # Gas the message needs up front: refunds only lower what it is charged afterwards.
        return computation, int(tx.gas) - int(computation.get_gas_remaining())

    def call(self, message: CallMessage, block: BlockId = "latest") -> bytes:
        """Run a message against the state after ``block``; nothing is kept."""
        with self._lock:
            computation, _needed = self._execute(
                message, self._require_header(block), "call refused"
            )
            if computation.is_error:
                raise _reverted(computation)
            return bytes(computation.output)

    def estimate_gas(self, message: CallMessage, block: BlockId = "latest") -> int:
        """The least gas limit with which the message succeeds, within 1.5 % (as geth).

        One run with the whole allowance gives the gas the message used; a message that calls
        out may need up to 64/63 of that (EIP-150 keeps 1/64 back at each call), so the limit
        is searched between the two — usually settled in two or three runs, not fifteen.
        """
        with self._lock:
            header = self._require_header(block)
            computation, needed = self._execute(message, header, "cannot estimate gas")
            if computation.is_error:
                raise _reverted(computation)
            cap = message.gas if message.gas is not None else int(header.gas_limit)

            def succeeds(gas: int) -> bool:
                trial = CallMessage(
                    message.sender,
                    message.to,
                    gas,
                    message.gas_price,
                    message.value,
                    message.data,
                )
                result, _ = self._execute(trial, header, "cannot estimate gas")
                return not result.is_error

            low, high = needed - 1, min(cap, needed * 64 // 63 + 2_300)
            if succeeds(needed):
                return needed
            if not succeeds(high):
                low, high = high, cap
            while (high - low) * 1000 > high * 15 and high - low > 1:
                middle = (low + high) // 2
                if succeeds(middle):
                    high = middle
                else:
                    low = middle
            return high

    def _require_header(self, block: BlockId) -> BlockHeaderAPI:
        header = self.header(block)
        if header is None:
            raise KeyError(f"no block {block!r}")
        return header

    # -- transactions -------------------------------------------------------------------------

    def send_raw_transaction(self, raw: bytes) -> bytes:
        """Validate a signed transaction and add it to the pool; in ``auto`` mode, mine it.

        Raises :class:`InvalidTransactionError` (and changes nothing) for a malformed
        transaction, a bad signature, the wrong chain id, a nonce already used, gas below the
        intrinsic cost or above the block limit, a fee below the base fee, or a sender who
        cannot pay ``gas * max fee + value``.
        """
        try:
            tx = QbftPragueVM.get_transaction_builder().decode(raw)
            tx.validate()
            sender = bytes(tx.sender)
        except Exception as exc:  # rlp, eth-keys and py-evm raise many unrelated types
            raise InvalidTransactionError(f"malformed or badly signed transaction: {exc}") from None
        with self._lock:
            self._check(tx, sender)
            self._pool.append(_Pending(tx, sender))
            self._pooled.add((sender, tx.nonce))
            if self.block_mode == "auto":
                self._produce()
            return bytes(tx.hash)

    def _head_state(self) -> tuple[BlockHeaderAPI, Any]:
        """The head and a read-only state at it, reused until the head moves."""
        head = self._chain.get_canonical_head()
        if self._head_view is None or self._head_view[0].hash != head.hash:
            self._head_view = (head, self._chain.get_vm(head).state)
        return self._head_view

    def _check(self, tx: SignedTransactionAPI, sender: bytes) -> None:
        chain_id = getattr(tx, "chain_id", None)
        if chain_id is not None and chain_id != self.chain_id:
            raise InvalidTransactionError(
                f"transaction is for chain id {chain_id}; this chain is {self.chain_id}"
            )
        head, state = self._head_state()
        nonce = int(state.get_nonce(sender))
        if tx.nonce < nonce:
            raise InvalidTransactionError(
                f"nonce too low: {to_checksum_address(sender)} is at nonce {nonce}, "
                f"transaction has {tx.nonce}"
            )
        if (sender, tx.nonce) in self._pooled:
            raise InvalidTransactionError(
                f"a transaction from {to_checksum_address(sender)} with nonce {tx.nonce} "
                "is already pending"
            )
        intrinsic = int(tx.intrinsic_gas)
        if tx.gas < intrinsic:
            raise InvalidTransactionError(
                f"intrinsic gas too low: the transaction needs at least {intrinsic}, "
                f"it allows {tx.gas}"
            )
        if tx.gas > head.gas_limit:
            raise InvalidTransactionError(
                f"gas {tx.gas} exceeds the block gas limit {head.gas_limit}"
            )
        base_fee = int(self._chain.header.base_fee_per_gas)
        if tx.max_fee_per_gas < base_fee:
            raise InvalidTransactionError(
                f"max fee per gas {tx.max_fee_per_gas} is below the block's base fee {base_fee}"
            )
        cost = tx.gas * tx.max_fee_per_gas + tx.value
        balance = int(state.get_balance(sender))
        if balance < cost:
            raise InvalidTransactionError(
                f"insufficient funds for gas * price + value: {to_checksum_address(sender)} "
                f"has {balance} wei, needs {cost}"
            )

    def pending_count(self) -> int:
        with self._lock:
            return len(self._pool)

    # -- block production ---------------------------------------------------------------------

    def mine(self) -> BlockAPI | None:
        """Seal a block with every ready pooled transaction (None if none is ready)."""
        with self._lock:
            return self._produce()

    def _ready(self, state: Any, gas_limit: int) -> list[_Pending]:
        """Pool transactions that can run now: per sender in nonce order, oldest first."""
        expected: dict[bytes, int] = {}
        chosen: list[_Pending] = []
        remaining = list(self._pool)
        gas = 0
        progress = True
        while progress and remaining:
            progress = False
            rest = []
            for pending in remaining:
                if pending.sender not in expected:
                    expected[pending.sender] = int(state.get_nonce(pending.sender))
                if (
                    pending.tx.nonce == expected[pending.sender]
                    and gas + pending.tx.gas <= gas_limit
                ):
                    chosen.append(pending)
                    expected[pending.sender] += 1
                    gas += pending.tx.gas
                    progress = True
                else:
                    rest.append(pending)
            remaining = rest
        return chosen

    def _produce(self) -> BlockAPI | None:
        parent = self._chain.get_canonical_head()
        number = parent.block_number + 1
        proposer = self.validators[number % len(self.validators)]
        unsealed_extra = qbft.QbftExtraData(
            vanity=b"\x00" * 32, validators=self.validators, vote=None, round=0, committed_seals=()
        ).encode()
        base = self._chain.create_header_from_parent(
            parent,
            gas_limit=parent.gas_limit,
            # The wall clock, never going back; blocks sealed in the same second share it, as on
            # Besu with sub-second block periods (a strictly increasing rule would make a burst
            # of blocks run ahead of real time, and the other ledger's clients refuse headers
            # from the future).
            timestamp=max(int(time.time()), parent.timestamp),
            coinbase=proposer,
            mix_hash=qbft.BFT_MIX_HASH,
            extra_data=unsealed_extra,
        )
        vm = self._chain.get_vm(base)
        ready = self._ready(vm.state, base.gas_limit)
        if not ready:
            return None
        included: list[SignedTransactionAPI] = []
        senders: list[bytes] = []
        receipts: list[ReceiptAPI] = []
        header = base
        dropped: list[_Pending] = []
        for pending in ready:
            snapshot = vm.state.snapshot()
            try:
                receipt, _computation = vm.apply_transaction(header, pending.tx)
            except ValidationError as exc:
                # The sender can no longer pay (an earlier transaction spent the funds).
                vm.state.revert(snapshot)
                log.warning("dropped transaction %s: %s", pending.tx.hash.hex(), exc)
                dropped.append(pending)
                continue
            header = vm.add_receipt_to_header(header, receipt)
            header = vm.increment_blob_gas_used(header, pending.tx)
            included.append(pending.tx)
            senders.append(pending.sender)
            receipts.append(receipt)
        taken = {id(p) for p in ready}
        self._pool = [p for p in self._pool if id(p) not in taken]
        self._pooled.difference_update((p.sender, p.tx.nonce) for p in ready)
        if not included:
            return None
        try:
            filled = vm.set_block_transactions_and_withdrawals(
                vm.get_block(), header, included, receipts
            )
            # py-evm's mine_block would also re-derive the transaction root and re-check the
            # header it was just given; the block is built here, so pack and finalise only.
            block = vm.finalize_block(vm.pack_block(filled)).block
            sealed = self._seal(block)
            self._chain.chaindb.persist_block(sealed)
            self._chain.header = self._chain.create_header_from_parent(sealed.header)
            self._store.commit()
        except BaseException:
            self._store.discard()
            raise
        # The receipts are known here, with every sender: cached now, a client asking for them
        # costs neither reading the block back nor recovering each sender from its signature.
        infos = _receipt_infos(sealed.header, included, receipts, senders)
        self._remember_receipts(infos)
        self._remember_logs(int(sealed.number), infos)
        log.debug("block %d sealed with %d transactions", sealed.number, len(included))
        return sealed

    def _seal(self, block: BlockAPI) -> BlockAPI:
        """Every validator seals the QBFT commit hash of the block; the seals go in extraData."""
        header_rlp = rlp.encode(block.header)
        commit = qbft.commit_hash(header_rlp)
        seals = tuple(qbft.seal(commit, key) for key in self._keys)
        extra = qbft.QbftExtraData(
            vanity=b"\x00" * 32,
            validators=self.validators,
            vote=None,
            round=0,
            committed_seals=seals,
        ).encode()
        return block.copy(header=block.header.copy(extra_data=extra))

    def _produce_loop(self) -> None:
        # Blocks start every interval (not an interval after the previous one ended); when a
        # block takes longer than the interval, the next one starts at once.
        period = self.interval_ms / 1000
        next_at = time.monotonic() + period
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            next_at = max(next_at + period, time.monotonic())
            try:
                with self._lock:
                    self._produce()
            except Exception:  # keep producing; a bad block is logged and its txs dropped
                log.exception("block production failed")

    def raw_header(self, block: BlockId = "latest") -> bytes | None:
        header = self.header(block)
        return None if header is None else rlp.encode(header)

    def validators_at(self, block: BlockId = "latest") -> list[bytes] | None:
        header = self.header(block)
        if header is None:
            return None
        return list(qbft.QbftExtraData.decode(header.extra_data).validators)

    def close(self) -> None:
        """Stop producing, mine what the pool accepted, close the database (idempotent)."""
        self._stop.set()
        if self._producer is not None:
            self._producer.join(timeout=30)
        with self._lock:
            if self._closed:
                return
            self._closed = True
            while self._pool and self._produce() is not None:
                pass  # what was accepted is mined, not lost on a clean stop
            self._store.close()

    def __enter__(self) -> EmbeddedChain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _receipt_infos(
    header: BlockHeaderAPI,
    transactions: Sequence[SignedTransactionAPI],
    receipts: Sequence[ReceiptAPI],
    senders: Sequence[bytes] | None = None,
) -> list[ReceiptInfo]:
    """What ``eth_getTransactionReceipt`` shows for each transaction of a block.

    ``senders`` (the transactions' senders, when the caller already knows them) spares
    recovering each sender from its signature again.
    """
    base_fee = int(getattr(header, "base_fee_per_gas", 0) or 0)
    block_hash, block_number = bytes(header.hash), int(header.block_number)
    infos: list[ReceiptInfo] = []
    previous_gas, log_index = 0, 0
    for index, (tx, receipt) in enumerate(zip(transactions, receipts, strict=True)):
        sender = bytes(tx.sender) if senders is None else senders[index]
        logs = []
        for entry in receipt.logs:
            logs.append(
                LogEntry(
                    address=bytes(entry.address),
                    topics=tuple(t.to_bytes(32, "big") for t in entry.topics),
                    data=bytes(entry.data),
                    block_number=block_number,
                    block_hash=block_hash,
                    tx_hash=bytes(tx.hash),
                    tx_index=index,
                    log_index=log_index,
                )
            )
            log_index += 1
        created = generate_contract_address(Address(sender), tx.nonce) if not tx.to else None
        infos.append(
            ReceiptInfo(
                tx_hash=bytes(tx.hash),
                tx_index=index,
                block_hash=block_hash,
                block_number=block_number,
                sender=sender,
                to=bytes(tx.to) if tx.to else None,
                contract_address=created,
                cumulative_gas_used=int(receipt.gas_used),
                gas_used=int(receipt.gas_used) - previous_gas,
                effective_gas_price=min(tx.max_fee_per_gas, base_fee + tx.max_priority_fee_per_gas),
                status=1 if receipt.state_root == b"\x01" else 0,
                tx_type=_tx_type(tx),
                logs=tuple(logs),
                bloom=int(receipt.bloom).to_bytes(256, "big"),
            )
        )
        previous_gas = int(receipt.gas_used)
    return infos


def _is_missing_head(exc: Exception) -> bool:
    return type(exc).__name__ in ("CanonicalHeadNotFound", "HeaderNotFound", "KeyError")


def _tx_type(tx: SignedTransactionAPI) -> int:
    return int(getattr(tx, "type_id", None) or 0)


def _hex(data: bytes) -> str:
    return "0x" + bytes(data).hex()


def _reverted(computation: Any) -> ExecutionRevertedError:
    output = bytes(computation.output)
    error = computation.error
    message = f"execution reverted: {type(error).__name__}"
    if output[:4] == bytes.fromhex("08c379a0"):
        try:
            from eth_abi import decode

            (reason,) = decode(["string"], output[4:])
            message = f"execution reverted: {reason}"
        except Exception:
            pass
    elif type(error).__name__ == "Revert":
        message = "execution reverted"
    return ExecutionRevertedError(message, output)


def _bloom_may_match(
    bloom: int, addresses: set[bytes], topics: Sequence[Sequence[bytes] | None]
) -> bool:
    filt = BloomFilter(bloom)
    if addresses and not any(a in filt for a in addresses):
        return False
    return all(not options or any(t in filt for t in options) for options in topics)


def _log_matches(
    entry: LogEntry, addresses: set[bytes], topics: Sequence[set[bytes] | None]
) -> bool:
    """The ``eth_getLogs`` filter rule: the address is one of ``addresses`` (any when empty)
    and each topic position holds one of its options (any when None or empty)."""
    if addresses and entry.address not in addresses:
        return False
    if len(topics) > len(entry.topics):
        return False
    return all(not options or entry.topics[i] in options for i, options in enumerate(topics))
