"""An ASGI app served by uvicorn in a thread on a free 127.0.0.1 port: how the embedded demos,
the tests and the benchmarks run a service (the LCP service, a node's API) inside one process.

The listening socket is created with ``IPPROTO_TCP`` explicitly: asyncio sets ``TCP_NODELAY`` on
accepted connections only for such sockets, and without it every request after a connection's
first waits ~40 ms for a delayed ACK.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp

from kakehashi.errors import TransportError

__all__ = ["serve"]


@contextmanager
def serve(app: ASGIApp, *, deadline_s: float = 30.0) -> Iterator[str]:
    """``app`` served until the block ends; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + deadline_s
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise TransportError(f"the server on 127.0.0.1:{port} did not start")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
