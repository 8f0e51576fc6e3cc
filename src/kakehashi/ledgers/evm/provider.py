"""A web3.py provider that answers from an :class:`EmbeddedChain` in the same process (no HTTP).

It runs the very dispatcher ``kakehashi evm serve`` runs, on the request objects web3.py builds,
so code tested in-process behaves as it will against the node over HTTP.
"""

from __future__ import annotations

import itertools
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
        self._ids = itertools.count(1)

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        request = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        return self.dispatcher.handle(request)  # type: ignore[no-any-return]

    def make_batch_request(self, requests: list[tuple[RPCEndpoint, Any]]) -> list[RPCResponse]:
        batch = [
            {"jsonrpc": "2.0", "id": next(self._ids), "method": m, "params": p} for m, p in requests
        ]
        return self.dispatcher.handle(batch)  # type: ignore[no-any-return]

    def is_connected(self, show_traceback: bool = False) -> bool:
        return True


def embedded_web3(chain: EmbeddedChain) -> Web3:
    """A Web3 instance talking to ``chain`` in-process, with the QBFT extraData middleware."""
    w3 = Web3(EmbeddedProvider(chain))
    w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
    return w3
