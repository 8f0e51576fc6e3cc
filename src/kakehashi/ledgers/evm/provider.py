"""A web3.py provider that answers from an :class:`EmbeddedChain` in the same process (no HTTP).

It encodes each request exactly as web3's HTTP provider does and hands the bytes to the very
dispatcher ``kakehashi evm serve`` runs, so code tested in-process behaves as it will against
the node over HTTP — only the socket is missing.
"""

from __future__ import annotations

import json
from typing import Any

from web3 import Web3
from web3.middleware import ExtraDataToPOAMiddleware
from web3.providers.base import JSONBaseProvider
from web3.types import RPCEndpoint, RPCResponse

from kakehashi.ledgers.evm.chain import EmbeddedChain
from kakehashi.ledgers.evm.rpc import RpcDispatcher


class EmbeddedProvider(JSONBaseProvider):
    """web3 provider bound to an embedded chain."""

    def __init__(self, chain: EmbeddedChain) -> None:
        super().__init__()
        self.chain = chain
        self.dispatcher = RpcDispatcher(chain)

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        answer = self.dispatcher.handle_bytes(self.encode_rpc_request(method, params))
        return self.decode_rpc_response(answer or b"null")

    def make_batch_request(self, requests: list[tuple[RPCEndpoint, Any]]) -> list[RPCResponse]:
        answer = self.dispatcher.handle_bytes(self.encode_batch_rpc_request(requests))
        decoded = json.loads(answer or b"[]")
        if isinstance(decoded, dict):  # the whole batch was refused
            return [decoded]  # type: ignore[list-item]
        return sorted(decoded, key=lambda r: r.get("id") or 0)

    def is_connected(self, show_traceback: bool = False) -> bool:
        return True


def embedded_web3(chain: EmbeddedChain) -> Web3:
    """A Web3 instance talking to ``chain`` in-process, with the QBFT extraData middleware."""
    w3 = Web3(EmbeddedProvider(chain))
    w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
    return w3
