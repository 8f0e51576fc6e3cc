"""Web3 connections to any Ethereum JSON-RPC node, and the few node calls later layers need.

An external node (GoQuorum, Besu, anvil, or Kakehashi's own ``kakehashi evm serve``) is reached
through web3.py's HTTP provider. QBFT and Clique chains put more than 32 bytes in a header's
``extraData`` (the validators and seals); web3.py 8 refuses such blocks unless its PoA
middleware is installed, so :func:`connect` always installs it.

:func:`header_rlp` is pure: it rebuilds a block header's RLP from the node's JSON fields, so a
light client can hash or verify a header the node reported without trusting the node's ``hash``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

import requests
import rlp
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_tester.exceptions import TransactionFailed
from eth_utils import keccak, to_checksum_address
from web3 import HTTPProvider, Web3
from web3.exceptions import ContractLogicError, TimeExhausted, Web3Exception
from web3.middleware import ExtraDataToPOAMiddleware
from web3.types import RPCEndpoint, TxParams, TxReceipt

from kakehashi.errors import (
    ConfigurationError,
    NodeUnavailableError,
    SerializationError,
    TransactionRevertedError,
    TransportError,
)

DEV_MNEMONIC = "test test test test test test test test test test test junk"
"""The development mnemonic of anvil, Hardhat and Kakehashi's tests; its accounts are funded."""

DEV_PATH_TEMPLATE = "m/44'/60'/0'/0/{index}"
"""BIP-44 path of the ``index``-th standard Ethereum account of a mnemonic."""

DEFAULT_TIMEOUT = 10.0
"""Seconds to wait for one JSON-RPC answer."""

BlockRef = int | str | bytes
"""A block number, a tag (``"latest"``, ``"finalized"``...) or a 32-byte block hash."""


# ------------------------------------------------------------------------------ connecting
def connect(url: str, *, timeout: float = DEFAULT_TIMEOUT) -> Web3:
    """Connect to the JSON-RPC node at ``url`` (``http://`` or ``https://``) and check it answers.

    The node must answer ``eth_chainId`` within ``timeout`` seconds, else
    :class:`~kakehashi.errors.NodeUnavailableError` names the URL and the cause.
    """
    if not url.startswith(("http://", "https://")):
        raise ConfigurationError(
            f"unsupported EVM node URL {url!r}: expected an http:// or https:// JSON-RPC URL"
        )
    w3 = Web3(HTTPProvider(url, request_kwargs={"timeout": timeout}))
    w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
    try:
        chain_id = w3.eth.chain_id
    except (requests.RequestException, Web3Exception, OSError, ValueError) as exc:
        raise NodeUnavailableError(
            f"no EVM JSON-RPC node answers at {url} ({type(exc).__name__}: {exc}); "
            "check the URL and that the node is running"
        ) from exc
    if not isinstance(chain_id, int):
        raise NodeUnavailableError(f"the node at {url} answered eth_chainId with {chain_id!r}")
    return w3


def rpc(w3: Web3, method: str, params: Sequence[Any]) -> Any:
    """Call ``method`` and return its raw JSON result (no web3 formatting of the answer).

    A JSON-RPC error answer raises :class:`~kakehashi.errors.TransportError` with the node's
    error message; no answer at all raises :class:`~kakehashi.errors.NodeUnavailableError`.
    """
    try:
        response = w3.provider.make_request(RPCEndpoint(method), list(params))
    except (requests.RequestException, OSError) as exc:
        where = getattr(w3.provider, "endpoint_uri", None) or "the node"
        raise NodeUnavailableError(f"{method}: no answer from {where} ({exc})") from exc
    error = response.get("error")
    if error:
        message = error.get("message", error) if isinstance(error, Mapping) else error
        raise TransportError(f"{method} failed: {message}")
    if "result" not in response:
        raise TransportError(f"{method}: the node's answer has neither result nor error")
    return _plain(response["result"])


def rpc_batch(w3: Web3, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
    """Every ``(method, params)`` of ``calls`` in one JSON-RPC batch request; their raw JSON
    results, in order (one HTTP round trip for all, not one each).

    Any error answer raises :class:`~kakehashi.errors.TransportError` (as :func:`rpc`); no
    answer at all raises :class:`~kakehashi.errors.NodeUnavailableError`.
    """
    if not calls:
        return []
    requests_ = [(RPCEndpoint(method), list(params)) for method, params in calls]
    try:
        responses: Any = cast(Any, w3.provider).make_batch_request(requests_)
    except (requests.RequestException, OSError) as exc:
        where = getattr(w3.provider, "endpoint_uri", None) or "the node"
        raise NodeUnavailableError(
            f"batch of {len(calls)}: no answer from {where} ({exc})"
        ) from exc
    if not isinstance(responses, list) or len(responses) != len(calls):
        raise TransportError(f"the node answered a batch of {len(calls)} with {responses!r:.200}")
    results = []
    for (method, _), response in zip(calls, responses, strict=True):
        error = response.get("error")
        if error:
            message = error.get("message", error) if isinstance(error, Mapping) else error
            raise TransportError(f"{method} failed: {message}")
        if "result" not in response:
            raise TransportError(f"{method}: the node's answer has neither result nor error")
        results.append(_plain(response["result"]))
    return results


def _plain(value: Any) -> Any:
    """Web3's AttributeDicts and tuples back to plain JSON values."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


# -------------------------------------------------------------------------------- accounts
def funded_accounts(mnemonic: str = DEV_MNEMONIC, n: int = 10) -> list[LocalAccount]:
    """The first ``n`` standard accounts (``m/44'/60'/0'/0/i``) of ``mnemonic``.

    With :data:`DEV_MNEMONIC` these are the accounts anvil funds at start.
    """
    # eth-account gates mnemonic derivation behind this opt-in; it is used for development
    # and test keys only.
    Account.enable_unaudited_hdwallet_features()
    return [
        Account.from_mnemonic(mnemonic, account_path=DEV_PATH_TEMPLATE.format(index=i))
        for i in range(n)
    ]


# ----------------------------------------------------------------------------- transactions
Sender = str | LocalAccount


def transact(
    w3: Web3,
    call: Any,
    *,
    sender: Sender | None = None,
    timeout: float = 120.0,
    description: str | None = None,
    **tx: Any,
) -> TxReceipt:
    """Send a contract call or deployment and wait for its receipt.

    ``call`` is a web3 ``ContractFunction`` (``contract.functions.f(...)``) or
    ``ContractConstructor``. ``sender`` is an address the node can sign for (anvil, eth-tester)
    or a :class:`LocalAccount` whose key signs here (GoQuorum, Besu); it defaults to
    ``w3.eth.default_account``. Extra keyword arguments are transaction fields (``value``,
    ``gas``...); ``description`` names the call in error messages. A revert raises
    :class:`~kakehashi.errors.TransactionRevertedError` whether the node found it while
    estimating gas or the transaction was mined with status 0.
    """
    if sender is None:
        default = w3.eth.default_account
        if not isinstance(default, str):
            raise ConfigurationError("no sender given and w3.eth.default_account is not set")
        sender = default
    what = description or _describe(call)
    params = cast(TxParams, dict(tx))
    try:
        if isinstance(sender, str):
            params["from"] = to_checksum_address(sender)
            tx_hash = call.transact(params)
        else:
            params["from"] = sender.address
            if "nonce" not in params:
                params["nonce"] = w3.eth.get_transaction_count(sender.address, "pending")
            built = call.build_transaction(params)
            signed = sender.sign_transaction(built)
            tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    except _REVERTS as exc:
        reason = _reason(exc)
        raise TransactionRevertedError(
            f"{what} reverted: {reason}", reason=reason, data=_revert_data(exc)
        ) from exc
    try:
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout)
    except TimeExhausted as exc:
        raise TransportError(
            f"{what}: transaction {tx_hash.to_0x_hex()} not mined within {timeout:g}s"
        ) from exc
    if receipt["status"] != 1:
        replayed = _replay_reason(w3, receipt["blockNumber"], params, call)
        detail = f": {replayed}" if replayed else " (no revert reason; out of gas?)"
        raise TransactionRevertedError(
            f"{what} reverted in transaction {tx_hash.to_0x_hex()}{detail}",
            tx_hash=tx_hash.to_0x_hex(),
            reason=replayed,
        )
    return receipt


# How a node reports a revert found before mining: web3 raises ContractLogicError for JSON-RPC
# nodes; its in-process eth-tester provider lets eth-tester's TransactionFailed through.
_REVERTS = (ContractLogicError, TransactionFailed)


def _reason(exc: Exception) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return message.removeprefix("execution reverted: ").removeprefix("execution reverted")


def _revert_data(exc: Exception) -> bytes:
    """The revert data (ABI-encoded error) web3 attaches to a ContractLogicError, if any."""
    data = getattr(exc, "data", None)
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        try:
            return bytes.fromhex(data.removeprefix("0x"))
        except ValueError:
            return b""
    return b""


def _describe(call: Any) -> str:
    name = getattr(call, "fn_name", None)
    if name:
        return f"call to {name}() on {getattr(call, 'address', '?')}"
    return "contract deployment"


def _replay_reason(w3: Web3, block_number: int, params: TxParams, call: Any) -> str | None:
    """Best effort: the revert reason of a mined, failed transaction, by replaying it."""
    replay = {k: v for k, v in params.items() if k in ("from", "value")}
    try:
        call.call(replay, block_identifier=max(block_number - 1, 0))
    except _REVERTS as exc:
        return _reason(exc)
    except (Web3Exception, ValueError, AttributeError):
        return None
    return None


# -------------------------------------------------------------------------------- proofs
def _slot_hex(slot: int | bytes | str) -> str:
    if isinstance(slot, str):
        slot = bytes.fromhex(slot.removeprefix("0x"))
    if isinstance(slot, bytes):
        if len(slot) > 32:
            raise ValueError(f"storage slot longer than 32 bytes: 0x{slot.hex()}")
        return "0x" + slot.rjust(32, b"\0").hex()
    if not 0 <= slot < 2**256:
        raise ValueError(f"storage slot out of range: {slot}")
    return "0x" + slot.to_bytes(32, "big").hex()


def block_param(block: BlockRef) -> str:
    """``block`` as a JSON-RPC block parameter (a hex number, a hash or a tag)."""
    if isinstance(block, int):
        return hex(block)
    if isinstance(block, bytes):
        return "0x" + block.hex()
    return block


def get_proof(
    w3: Web3, address: str, slots: Iterable[int | bytes | str], block: BlockRef = "latest"
) -> dict[str, Any]:
    """``eth_getProof`` for ``address`` and ``slots`` at ``block``, as the node's raw JSON.

    Slots are sent as 32-byte hex strings (anvil rejects shorter quantities). The result keeps
    the node's shape: ``address``, ``accountProof`` (hex RLP nodes), ``balance``, ``codeHash``,
    ``nonce``, ``storageHash`` and ``storageProof`` (``key``, ``value``, ``proof``), hex strings.
    """
    params = [to_checksum_address(address), [_slot_hex(s) for s in slots], block_param(block)]
    result = rpc(w3, "eth_getProof", params)
    if not isinstance(result, dict):
        raise TransportError(f"eth_getProof answered {result!r}")
    return result


# ------------------------------------------------------------------------------- headers
# The header fields in RLP order (Yellow Paper section 4.3 and the forks that appended fields).
_HEADER_FIELDS: tuple[tuple[str, str], ...] = (
    ("parentHash", "bytes"),
    ("sha3Uncles", "bytes"),
    ("miner", "bytes"),
    ("stateRoot", "bytes"),
    ("transactionsRoot", "bytes"),
    ("receiptsRoot", "bytes"),
    ("logsBloom", "bytes"),
    ("difficulty", "int"),
    ("number", "int"),
    ("gasLimit", "int"),
    ("gasUsed", "int"),
    ("timestamp", "int"),
    ("extraData", "bytes"),
    ("mixHash", "bytes"),
    ("nonce", "bytes"),
)
# Appended by later forks; a header carries a prefix of this list.
_OPTIONAL_HEADER_FIELDS: tuple[tuple[str, str], ...] = (
    ("baseFeePerGas", "int"),  # London (EIP-1559)
    ("withdrawalsRoot", "bytes"),  # Shanghai (EIP-4895)
    ("blobGasUsed", "int"),  # Cancun (EIP-4844)
    ("excessBlobGas", "int"),  # Cancun (EIP-4844)
    ("parentBeaconBlockRoot", "bytes"),  # Cancun (EIP-4788)
    ("requestsHash", "bytes"),  # Prague (EIP-7685)
)


def _field_bytes(block: Mapping[str, Any], name: str) -> bytes:
    value = block[name]
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        try:
            return bytes.fromhex(value.removeprefix("0x"))
        except ValueError as exc:
            raise SerializationError(f"header field {name} is not hex: {value!r}") from exc
    raise SerializationError(f"header field {name} has type {type(value).__name__}")


def _field_int(block: Mapping[str, Any], name: str) -> int:
    value = block[name]
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value, 16)
        except ValueError as exc:
            raise SerializationError(f"header field {name} is not a hex quantity") from exc
    raise SerializationError(f"header field {name} has type {type(value).__name__}")


def header_rlp(block: Mapping[str, Any]) -> bytes:
    """RLP of the header described by a JSON-RPC block object (``eth_getBlockBy*``).

    Integers are RLP's minimal big-endian encoding; the fork-dependent fields after ``nonce`` are
    included while present, in fork order (London through Prague). ``keccak256`` of the result is
    the block hash.
    """
    try:
        items: list[Any] = []
        for name, kind in _HEADER_FIELDS:
            items.append(_field_int(block, name) if kind == "int" else _field_bytes(block, name))
        missing: str | None = None
        for name, kind in _OPTIONAL_HEADER_FIELDS:
            if block.get(name) is None:
                missing = missing or name
                continue
            if missing is not None:
                raise SerializationError(
                    f"header has {name} but not {missing}, which comes before it"
                )
            items.append(_field_int(block, name) if kind == "int" else _field_bytes(block, name))
    except KeyError as exc:
        raise SerializationError(f"block has no header field {exc.args[0]}") from exc
    return bytes(rlp.encode(items))


def header_hash(block: Mapping[str, Any]) -> bytes:
    """``keccak256(header_rlp(block))``: the block hash recomputed from its fields."""
    return bytes(keccak(header_rlp(block)))


def get_block(w3: Web3, block: BlockRef = "latest") -> dict[str, Any]:
    """The node's raw JSON block object (transaction hashes only) for ``block``."""
    if isinstance(block, bytes) or (isinstance(block, str) and len(block) == 66):
        result = rpc(w3, "eth_getBlockByHash", [block_param(block), False])
    else:
        result = rpc(w3, "eth_getBlockByNumber", [block_param(block), False])
    if not isinstance(result, dict):
        raise TransportError(f"block {block!r} not found")
    return result


def raw_header(w3: Web3, block: BlockRef = "latest") -> bytes:
    """The RLP-encoded header of ``block``, rebuilt from the node's JSON (:func:`header_rlp`)."""
    return header_rlp(get_block(w3, block))
