"""Ethereum JSON-RPC 2.0 for the embedded chain: one dispatcher, served over HTTP or in-process.

The methods are those web3.py, foundry's ``cast`` and ethers use, plus Besu's
``qbft_getValidatorsByBlockNumber``. Errors follow JSON-RPC 2.0 and the conventions of geth and
Besu: -32700 parse error, -32600 invalid request, -32601 unknown method, -32602 invalid params
(the message names the parameter), -32000 for a transaction the node refuses, and 3 with the revert
data for an ``eth_call`` / ``eth_estimateGas`` that reverts.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

from eth.abc import BlockAPI, BlockHeaderAPI
from eth_utils import to_checksum_address

from kakehashi import __version__
from kakehashi.errors import ExecutionRevertedError, InvalidTransactionError
from kakehashi.ledgers.evm.chain import (
    PRIORITY_FEE,
    BlockId,
    CallMessage,
    EmbeddedChain,
    LogEntry,
    ReceiptInfo,
)

log = logging.getLogger(__name__)

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR = (
    -32700,
    -32600,
    -32601,
    -32602,
    -32603,
)
SERVER_ERROR = -32000
REVERT_ERROR = 3
MAX_BATCH = 1000
MAX_LOG_RANGE = 10_000


class RpcError(Exception):
    def __init__(self, code: int, message: str, data: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


def _bad(name: str, why: str) -> RpcError:
    return RpcError(INVALID_PARAMS, f"invalid {name}: {why}")


# -- parameter parsing -------------------------------------------------------------------------


def _quantity(value: Any, name: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if not isinstance(value, str) or not value.startswith("0x") or len(value) < 3:
        raise _bad(name, f"expected a hex quantity like 0x1a, got {value!r}")
    try:
        return int(value, 16)
    except ValueError:
        raise _bad(name, f"{value!r} is not hexadecimal") from None


def _data(value: Any, name: str, size: int | None = None) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x") or len(value) % 2:
        raise _bad(name, f"expected 0x-prefixed hex bytes, got {value!r}")
    try:
        raw = bytes.fromhex(value[2:])
    except ValueError:
        raise _bad(name, f"{value!r} is not hexadecimal") from None
    if size is not None and len(raw) != size:
        raise _bad(name, f"expected {size} bytes, got {len(raw)}")
    return raw


def _address(value: Any, name: str = "address") -> bytes:
    return _data(value, name, 20)


def _block_id(value: Any, name: str = "block") -> BlockId:
    if value is None:
        return "latest"
    if isinstance(value, str) and value in ("latest", "earliest", "pending", "safe", "finalized"):
        return value
    if isinstance(value, dict):  # EIP-1898
        if "blockHash" in value:
            return _data(value["blockHash"], name, 32)
        if "blockNumber" in value:
            return _block_id(value["blockNumber"], name)
        raise _bad(name, "expected blockHash or blockNumber")
    return _quantity(value, name)


def _params(params: Any, names: Sequence[str], required: int) -> list[Any]:
    if params is None:
        params = []
    if not isinstance(params, list):
        raise RpcError(INVALID_PARAMS, "params must be an array")
    if len(params) < required:
        missing = ", ".join(names[len(params) : required])
        raise RpcError(INVALID_PARAMS, f"missing value for required argument(s): {missing}")
    if len(params) > len(names):
        raise RpcError(
            INVALID_PARAMS, f"too many arguments: want at most {len(names)}, got {len(params)}"
        )
    return list(params) + [None] * (len(names) - len(params))


def _call_message(value: Any) -> CallMessage:
    if not isinstance(value, dict):
        raise _bad("transaction", "expected a call object")
    data_field = value.get("input", value.get("data"))
    price = value.get("gasPrice", value.get("maxFeePerGas"))
    return CallMessage(
        sender=_address(value["from"], "from") if value.get("from") else None,
        to=_address(value["to"], "to") if value.get("to") else None,
        gas=_quantity(value["gas"], "gas") if value.get("gas") is not None else None,
        gas_price=_quantity(price, "gasPrice") if price is not None else None,
        value=_quantity(value["value"], "value") if value.get("value") is not None else 0,
        data=_data(data_field, "input") if data_field else b"",
    )


# -- formatting --------------------------------------------------------------------------------


def _hex(data: bytes) -> str:
    return "0x" + bytes(data).hex()


def _tx_json(tx: Any, header: BlockHeaderAPI | None, index: int, chain_id: int) -> dict[str, Any]:
    type_id = int(getattr(tx, "type_id", None) or 0)
    out: dict[str, Any] = {
        "blockHash": _hex(header.hash) if header else None,
        "blockNumber": hex(header.block_number) if header else None,
        "transactionIndex": hex(index) if header else None,
        "hash": _hex(tx.hash),
        "from": to_checksum_address(tx.sender),
        "to": to_checksum_address(tx.to) if tx.to else None,
        "nonce": hex(tx.nonce),
        "gas": hex(tx.gas),
        "value": hex(tx.value),
        "input": _hex(tx.data),
        "type": hex(type_id),
        "v": hex(tx.v if type_id == 0 else tx.y_parity),
        "r": hex(tx.r),
        "s": hex(tx.s),
    }
    if type_id == 0:
        out["gasPrice"] = hex(tx.gas_price)
        if tx.chain_id is not None:
            out["chainId"] = hex(tx.chain_id)
    else:
        base_fee = int(getattr(header, "base_fee_per_gas", 0) or 0) if header else 0
        out["chainId"] = hex(tx.chain_id)
        out["yParity"] = hex(tx.y_parity)
        out["accessList"] = [
            {
                "address": to_checksum_address(address),
                "storageKeys": [_hex(k.to_bytes(32, "big")) for k in keys],
            }
            for address, keys in getattr(tx, "access_list", ())
        ]
        if type_id >= 2:
            out["maxFeePerGas"] = hex(tx.max_fee_per_gas)
            out["maxPriorityFeePerGas"] = hex(tx.max_priority_fee_per_gas)
            out["gasPrice"] = hex(
                min(tx.max_fee_per_gas, base_fee + tx.max_priority_fee_per_gas)
                if header
                else tx.max_fee_per_gas
            )
        else:
            out["gasPrice"] = hex(tx.gas_price)
    return out


def _block_json(block: BlockAPI, full: bool, chain_id: int) -> dict[str, Any]:
    h = block.header
    out: dict[str, Any] = {
        "number": hex(h.block_number),
        "hash": _hex(h.hash),
        "parentHash": _hex(h.parent_hash),
        "nonce": _hex(h.nonce),
        "mixHash": _hex(h.mix_hash),
        "sha3Uncles": _hex(h.uncles_hash),
        "logsBloom": _hex(int(h.bloom).to_bytes(256, "big")),
        "transactionsRoot": _hex(h.transaction_root),
        "stateRoot": _hex(h.state_root),
        "receiptsRoot": _hex(h.receipt_root),
        "miner": to_checksum_address(h.coinbase),
        "difficulty": hex(h.difficulty),
        "totalDifficulty": hex(h.difficulty),
        "extraData": _hex(h.extra_data),
        "size": hex(_block_size(block)),
        "gasLimit": hex(h.gas_limit),
        "gasUsed": hex(h.gas_used),
        "timestamp": hex(h.timestamp),
        "uncles": [],
    }
    for attr, key in (
        ("base_fee_per_gas", "baseFeePerGas"),
        ("blob_gas_used", "blobGasUsed"),
        ("excess_blob_gas", "excessBlobGas"),
    ):
        if hasattr(h, attr):
            out[key] = hex(getattr(h, attr))
    for attr, key in (
        ("withdrawals_root", "withdrawalsRoot"),
        ("parent_beacon_block_root", "parentBeaconBlockRoot"),
        ("requests_hash", "requestsHash"),
    ):
        if hasattr(h, attr):
            out[key] = _hex(getattr(h, attr))
    if hasattr(h, "withdrawals_root"):
        out["withdrawals"] = []
    if full:
        out["transactions"] = [
            _tx_json(tx, h, i, chain_id) for i, tx in enumerate(block.transactions)
        ]
    else:
        out["transactions"] = [_hex(tx.hash) for tx in block.transactions]
    return out


def _block_size(block: BlockAPI) -> int:
    import rlp

    return len(rlp.encode(block))


@functools.lru_cache(maxsize=4096)
def _checksum(address: bytes) -> str:
    """EIP-55 form of ``address`` (a keccak each: remembered, as a node's logs come from a few
    contracts)."""
    return to_checksum_address(address)


def _log_json(entry: LogEntry) -> dict[str, Any]:
    return {
        "address": _checksum(entry.address),
        "topics": [_hex(t) for t in entry.topics],
        "data": _hex(entry.data),
        "blockNumber": hex(entry.block_number),
        "blockHash": _hex(entry.block_hash),
        "transactionHash": _hex(entry.tx_hash),
        "transactionIndex": hex(entry.tx_index),
        "logIndex": hex(entry.log_index),
        "removed": False,
    }


def _receipt_json(info: ReceiptInfo) -> dict[str, Any]:
    return {
        "transactionHash": _hex(info.tx_hash),
        "transactionIndex": hex(info.tx_index),
        "blockHash": _hex(info.block_hash),
        "blockNumber": hex(info.block_number),
        "from": to_checksum_address(info.sender),
        "to": to_checksum_address(info.to) if info.to else None,
        "cumulativeGasUsed": hex(info.cumulative_gas_used),
        "gasUsed": hex(info.gas_used),
        "effectiveGasPrice": hex(info.effective_gas_price),
        "contractAddress": to_checksum_address(info.contract_address)
        if info.contract_address
        else None,
        "logs": [_log_json(e) for e in info.logs],
        "logsBloom": _hex(info.bloom),
        "type": hex(info.tx_type),
        "status": hex(info.status),
    }


# -- the dispatcher ----------------------------------------------------------------------------


class RpcDispatcher:
    """Answers JSON-RPC requests (already parsed JSON values) from an :class:`EmbeddedChain`."""

    def __init__(self, chain: EmbeddedChain) -> None:
        self.chain = chain
        self.methods: dict[str, Callable[[Any], Any]] = {
            "web3_clientVersion": lambda p: f"kakehashi/{__version__}/py-evm/qbft",
            "web3_sha3": self._sha3,
            "net_version": lambda p: str(chain.chain_id),
            "net_listening": lambda p: True,
            "net_peerCount": lambda p: "0x0",
            "eth_chainId": lambda p: hex(chain.chain_id),
            "eth_syncing": lambda p: False,
            "eth_mining": lambda p: True,
            "eth_accounts": lambda p: [],
            "eth_blockNumber": lambda p: hex(chain.block_number()),
            "eth_getBlockByNumber": self._block_by_number,
            "eth_getBlockByHash": self._block_by_hash,
            "eth_getBlockTransactionCountByNumber": self._tx_count_by_number,
            "eth_getTransactionByHash": self._tx_by_hash,
            "eth_getTransactionReceipt": self._receipt,
            "eth_getTransactionCount": self._nonce,
            "eth_getBalance": self._balance,
            "eth_getCode": self._code,
            "eth_getStorageAt": self._storage,
            "eth_call": self._call,
            "eth_estimateGas": self._estimate,
            "eth_gasPrice": lambda p: hex(self._next_base_fee() + PRIORITY_FEE),
            "eth_maxPriorityFeePerGas": lambda p: hex(PRIORITY_FEE),
            "eth_blobBaseFee": lambda p: "0x1",
            "eth_feeHistory": self._fee_history,
            "eth_sendRawTransaction": self._send_raw,
            "eth_getLogs": self._logs,
            "eth_getProof": self._proof,
            "qbft_getValidatorsByBlockNumber": self._validators,
        }

    # JSON level ------------------------------------------------------------------------------

    def handle_bytes(self, body: bytes) -> bytes | None:
        """Answer a raw HTTP body (a request or a batch); None when only notifications came."""
        try:
            request = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            return _dump(_error_response(None, RpcError(PARSE_ERROR, f"parse error: {exc}")))
        answer = self.handle(request)
        return None if answer is None else _dump(answer)

    def handle(self, request: Any) -> Any:
        if isinstance(request, list):
            if not request:
                return _error_response(None, RpcError(INVALID_REQUEST, "empty batch"))
            if len(request) > MAX_BATCH:
                return _error_response(
                    None, RpcError(INVALID_REQUEST, f"batch larger than {MAX_BATCH} requests")
                )
            answers = [self._one(item) for item in request]
            answers = [a for a in answers if a is not None]
            return answers or None
        return self._one(request)

    def _one(self, request: Any) -> dict[str, Any] | None:
        if not isinstance(request, dict) or request.get("jsonrpc") != "2.0":
            return _error_response(
                request.get("id") if isinstance(request, dict) else None,
                RpcError(INVALID_REQUEST, "invalid request: expected a JSON-RPC 2.0 object"),
            )
        request_id = request.get("id")
        method = request.get("method")
        if not isinstance(method, str):
            return _error_response(request_id, RpcError(INVALID_REQUEST, "method must be a string"))
        is_notification = "id" not in request
        handler = self.methods.get(method)
        try:
            if handler is None:
                raise RpcError(
                    METHOD_NOT_FOUND, f"the method {method} does not exist/is not available"
                )
            result = handler(request.get("params"))
        except RpcError as exc:
            return None if is_notification else _error_response(request_id, exc)
        except ExecutionRevertedError as exc:
            error = RpcError(REVERT_ERROR, str(exc), _hex(exc.data))
            return None if is_notification else _error_response(request_id, error)
        except InvalidTransactionError as exc:
            error = RpcError(SERVER_ERROR, str(exc))
            return None if is_notification else _error_response(request_id, error)
        except Exception as exc:  # a bug: say so, keep serving
            log.exception("internal error in %s", method)
            error = RpcError(INTERNAL_ERROR, f"internal error: {type(exc).__name__}: {exc}")
            return None if is_notification else _error_response(request_id, error)
        return None if is_notification else {"jsonrpc": "2.0", "id": request_id, "result": result}

    # methods ---------------------------------------------------------------------------------

    def _sha3(self, params: Any) -> str:
        from eth_utils import keccak

        (data,) = _params(params, ["data"], 1)
        return _hex(keccak(_data(data, "data")))

    def _block_by_number(self, params: Any) -> Any:
        block_id, full = _params(params, ["block", "full"], 1)
        block = self.chain.block(_block_id(block_id))
        return None if block is None else _block_json(block, bool(full), self.chain.chain_id)

    def _block_by_hash(self, params: Any) -> Any:
        block_hash, full = _params(params, ["blockHash", "full"], 1)
        block = self.chain.block(_data(block_hash, "blockHash", 32))
        return None if block is None else _block_json(block, bool(full), self.chain.chain_id)

    def _tx_count_by_number(self, params: Any) -> Any:
        (block_id,) = _params(params, ["block"], 1)
        block = self.chain.block(_block_id(block_id))
        return None if block is None else hex(len(block.transactions))

    def _tx_by_hash(self, params: Any) -> Any:
        (tx_hash,) = _params(params, ["transactionHash"], 1)
        found = self.chain.transaction(_data(tx_hash, "transactionHash", 32))
        if found is None:
            return None
        tx, header, index = found
        return _tx_json(tx, header, index, self.chain.chain_id)

    def _receipt(self, params: Any) -> Any:
        (tx_hash,) = _params(params, ["transactionHash"], 1)
        info = self.chain.receipt(_data(tx_hash, "transactionHash", 32))
        return None if info is None else _receipt_json(info)

    def _account_read(self, params: Any, read: Callable[[bytes, BlockId], Any]) -> Any:
        address, block_id = _params(params, ["address", "block"], 1)
        value = read(_address(address), _block_id(block_id))
        if value is None:
            raise RpcError(SERVER_ERROR, f"header not found for block {block_id}")
        return value

    def _nonce(self, params: Any) -> str:
        return hex(self._account_read(params, self.chain.nonce))

    def _balance(self, params: Any) -> str:
        return hex(self._account_read(params, self.chain.balance))

    def _code(self, params: Any) -> str:
        return _hex(self._account_read(params, self.chain.code))

    def _storage(self, params: Any) -> str:
        address, slot, block_id = _params(params, ["address", "slot", "block"], 2)
        slot_int = int.from_bytes(_slot(slot, "slot"), "big")
        value = self.chain.storage_at(_address(address), slot_int, _block_id(block_id))
        if value is None:
            raise RpcError(SERVER_ERROR, f"header not found for block {block_id}")
        return _hex(value.to_bytes(32, "big"))

    def _with_block(self, block: BlockId, run: Callable[[], Any]) -> Any:
        try:
            return run()
        except KeyError:
            raise RpcError(SERVER_ERROR, f"header not found for block {block!r}") from None

    def _call(self, params: Any) -> str:
        message, block_id = _params(params, ["transaction", "block"], 1)
        msg, block = _call_message(message), _block_id(block_id)
        return _hex(self._with_block(block, lambda: self.chain.call(msg, block)))

    def _estimate(self, params: Any) -> str:
        message, block_id = _params(params, ["transaction", "block"], 1)
        msg, block = _call_message(message), _block_id(block_id)
        return hex(self._with_block(block, lambda: self.chain.estimate_gas(msg, block)))

    def _next_base_fee(self) -> int:
        return self.chain.next_base_fee()

    def _fee_history(self, params: Any) -> dict[str, Any]:
        count, newest, percentiles = _params(
            params, ["blockCount", "newestBlock", "rewardPercentiles"], 2
        )
        count_int = min(_quantity(count, "blockCount"), 1024)
        newest_header = self.chain.header(_block_id(newest, "newestBlock"))
        if newest_header is None:
            raise RpcError(SERVER_ERROR, f"header not found for block {newest}")
        last = int(newest_header.block_number)
        first = max(0, last - count_int + 1)
        if percentiles is not None and not (
            isinstance(percentiles, list) and all(isinstance(p, int | float) for p in percentiles)
        ):
            raise _bad("rewardPercentiles", "expected an array of numbers")
        base_fees, ratios, rewards = [], [], []
        for number in range(first, last + 1):
            header = self.chain.header(number)
            assert header is not None
            base_fees.append(hex(int(header.base_fee_per_gas or 0)))
            ratios.append(header.gas_used / header.gas_limit if header.gas_limit else 0.0)
            if percentiles is not None:
                rewards.append([hex(r) for r in self.chain.priority_fees(number, percentiles)])
        following = self.chain.header(last + 1)
        next_fee = self._next_base_fee() if following is None else following.base_fee_per_gas
        base_fees.append(hex(int(next_fee or 0)))
        out: dict[str, Any] = {
            "oldestBlock": hex(first),
            "baseFeePerGas": base_fees,
            "gasUsedRatio": ratios,
        }
        if percentiles is not None:
            out["reward"] = rewards
        return out

    def _send_raw(self, params: Any) -> str:
        (raw,) = _params(params, ["transaction"], 1)
        return _hex(self.chain.send_raw_transaction(_data(raw, "transaction")))

    def _logs(self, params: Any) -> list[dict[str, Any]]:
        (criteria,) = _params(params, ["filter"], 1)
        if not isinstance(criteria, dict):
            raise _bad("filter", "expected an object")
        head = self.chain.block_number()
        address = criteria.get("address")
        addresses = (
            [_address(a) for a in address]
            if isinstance(address, list)
            else ([_address(address)] if address else [])
        )
        topics: list[list[bytes] | None] = []
        for i, topic in enumerate(criteria.get("topics") or []):
            if topic is None:
                topics.append(None)
            elif isinstance(topic, list):
                topics.append([_data(t, f"topics[{i}]", 32) for t in topic])
            else:
                topics.append([_data(topic, f"topics[{i}]", 32)])
        if "blockHash" in criteria:
            header = self.chain.header(_data(criteria["blockHash"], "blockHash", 32))
            if header is None:
                raise RpcError(SERVER_ERROR, "unknown block hash")
            first = last = int(header.block_number)
        else:
            first = self._number(criteria.get("fromBlock"), head, "fromBlock")
            last = self._number(criteria.get("toBlock"), head, "toBlock")
        if last - first > MAX_LOG_RANGE:
            raise RpcError(
                SERVER_ERROR, f"block range too large: at most {MAX_LOG_RANGE} blocks per query"
            )
        return [_log_json(e) for e in self.chain.logs(first, last, addresses, topics)]

    def _number(self, value: Any, head: int, name: str) -> int:
        block = _block_id(value, name)
        if isinstance(block, int):
            return block
        if block == "earliest":
            return 0
        if isinstance(block, bytes):
            raise _bad(name, "use blockHash for a hash")
        return head

    def _proof(self, params: Any) -> dict[str, Any]:
        address, slots, block_id = _params(params, ["address", "storageKeys", "block"], 2)
        if not isinstance(slots, list):
            raise _bad("storageKeys", "expected an array of 32-byte slots")
        keys = [int.from_bytes(_slot(s, f"storageKeys[{i}]"), "big") for i, s in enumerate(slots)]
        block = _block_id(block_id)
        return self._with_block(block, lambda: self.chain.proof(_address(address), keys, block))  # type: ignore[no-any-return]

    def _validators(self, params: Any) -> list[str]:
        (block_id,) = _params(params, ["block"], 1)
        validators = self.chain.validators_at(_block_id(block_id))
        if validators is None:
            raise RpcError(SERVER_ERROR, f"header not found for block {block_id}")
        return [to_checksum_address(v) for v in validators]


def _slot(value: Any, name: str) -> bytes:
    """A storage slot: any 0x-hex of at most 32 bytes (cast sends 0x0, anvil wants 32 bytes)."""
    if not isinstance(value, str) or not value.startswith("0x") or not 2 < len(value) <= 66:
        raise _bad(name, f"expected a hex slot of at most 32 bytes, got {value!r}")
    try:
        return int(value, 16).to_bytes(32, "big")
    except ValueError:
        raise _bad(name, f"{value!r} is not hexadecimal") from None


def _error_response(request_id: Any, error: RpcError) -> dict[str, Any]:
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.data is not None:
        body["data"] = error.data
    return {"jsonrpc": "2.0", "id": request_id, "error": body}


def _dump(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


# -- transports --------------------------------------------------------------------------------


def asgi_app(
    dispatcher: RpcDispatcher, on_shutdown: Callable[[], None] | None = None
) -> Callable[..., Any]:
    """A minimal ASGI application: ``POST /`` with a JSON-RPC body (what every client sends).

    ``on_shutdown`` runs during the server's graceful shutdown (SIGINT or SIGTERM), before the
    process exits: the node mines what it accepted and closes its database there.
    """

    async def app(
        scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if on_shutdown is not None:
                        on_shutdown()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if scope["method"] != "POST":
            await _respond(send, 405, b'{"error":"send JSON-RPC requests with POST"}')
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        answer = dispatcher.handle_bytes(b"".join(chunks))
        await _respond(send, 200, answer if answer is not None else b"")

    return app


async def _respond(send: Callable[..., Any], status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
