"""Completion notified asynchronously: the Server-Sent Events of ``GET /cross/events``."""

from __future__ import annotations

import json
import threading

from fastapi import FastAPI
from fastapi.testclient import TestClient

from kakehashi.cross.corda_module import CrossModule
from kakehashi.cross.http import create_cross_router, event_stream
from kakehashi.cross.kv import kv_call
from kakehashi.cross.participant import PartCall
from kakehashi.cross.tx import CommitProtocol
from tests.cross.test_corda_module import linked, relay, transaction
from tests.ibc.test_corda_host import TwoHosts

__all__ = ["linked"]  # the fixture


def parse(text: str) -> list[tuple[str, dict[str, str]]]:
    events = []
    for block in text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_the_initiator_hears_of_completion(
    linked: tuple[TwoHosts, CrossModule, CrossModule],
) -> None:
    hosts, a, _ = linked
    tx = transaction(hosts, CommitProtocol.TPC, b"k", b"v")
    a.initiate(tx)
    heard: list[str] = []
    listener = threading.Thread(
        target=lambda: heard.extend(event_stream(a, tx.tx_id, poll_s=0.01)), daemon=True
    )
    listener.start()
    relay(hosts)
    listener.join(timeout=10)
    assert not listener.is_alive()  # the stream ended after "completed"
    events = parse("".join(heard))
    assert [name for name, _ in events] == ["authenticated", "decided", "completed"]
    assert events[-1][1] == {"tx_id": tx.tx_id.hex(), "decision": "COMMIT", "outcome": "committed"}

    app = FastAPI()  # a late subscriber over HTTP still gets the whole story, then the end
    app.include_router(create_cross_router(a, app_token="t"))
    answer = TestClient(app).get(f"/cross/events?tx_id={tx.tx_id.hex()}")
    assert answer.headers["content-type"].startswith("text/event-stream")
    assert [name for name, _ in parse(answer.text)] == ["authenticated", "decided", "completed"]


def test_a_stream_of_every_transaction_carries_aborts_too(
    linked: tuple[TwoHosts, CrossModule, CrossModule],
) -> None:
    hosts, a, b = linked
    blocker = transaction(hosts, CommitProtocol.TPC, b"x", b"first", nonce=1)
    b.host.execute(lambda _s: b.app.prepare(PartCall(blocker.tx_id, 0, kv_call(b"x", b"first"))))
    stop = threading.Event()
    heard: list[str] = []
    listener = threading.Thread(
        target=lambda: heard.extend(event_stream(a, None, poll_s=0.01, stop=stop)), daemon=True
    )
    listener.start()
    tx = transaction(hosts, CommitProtocol.TPC, b"x", b"second", nonce=2)
    a.initiate(tx)
    relay(hosts)
    for _ in range(200):
        if "completed" in "".join(heard):
            break
        threading.Event().wait(0.01)
    stop.set()
    listener.join(timeout=5)
    events = parse("".join(heard))
    assert events[-1] == (
        "completed",
        {"tx_id": tx.tx_id.hex(), "decision": "ABORT", "outcome": "aborted"},
    )
