"""The asyncio relayer service over a real path (:mod:`tests.relayer.support`): rounds, the
Prometheus metrics they record, and the JSON-lines log format."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from kakehashi.lcp.client import LcpServiceClient
from kakehashi.relayer.service import JsonLinesFormatter, RelayerMetrics, RelayerService
from tests.relayer.support import World, world


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as built:
        yield built


def _sample(metrics: RelayerMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_rounds_relay_and_record_their_metrics(w: World) -> None:
    relayer = w.link()
    for i in range(3):
        w.send_from_evm(f"m{i}".encode())
    w.send_from_corda(b"back")
    metrics = RelayerMetrics()
    service = RelayerService(relayer, interval_s=0.0, metrics=metrics)
    asyncio.run(service.run(rounds=3))
    assert w.echo.received == 3 and w.evm_counters()["received"] == 1
    assert _sample(metrics, "kakehashi_relayer_rounds_total") == 3
    recv = "kakehashi_relayer_packets_relayed_total"
    assert _sample(metrics, recv, direction="evm->corda", kind="recv") == 3
    assert _sample(metrics, recv, direction="corda->evm", kind="recv") == 1
    assert _sample(metrics, recv, direction="corda->evm", kind="ack") == 3
    assert _sample(metrics, recv, direction="evm->corda", kind="ack") == 1
    assert _sample(metrics, "kakehashi_relayer_packets_pending", direction="evm->corda") == 0
    corda_height = _sample(metrics, "kakehashi_relayer_client_height", ledger="corda")
    assert corda_height >= 1
    assert _sample(metrics, "kakehashi_relayer_round_seconds_count") == 3
    assert _sample(metrics, "kakehashi_relayer_errors_total", kind="round") == 0
    assert b"kakehashi_relayer_packets_relayed_total" in generate_latest(metrics.registry)


def test_a_failed_round_is_counted_and_the_next_one_runs(w: World) -> None:
    relayer = w.link()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]  # nothing listens there once the socket is closed
    relayer.lcp = LcpServiceClient(f"http://127.0.0.1:{closed}", timeout=2)  # the service is down
    w.send_from_evm(b"stuck")
    metrics = RelayerMetrics()
    service = RelayerService(relayer, interval_s=0.0, metrics=metrics)
    asyncio.run(service.run(rounds=2))
    assert _sample(metrics, "kakehashi_relayer_errors_total", kind="round") == 2
    assert w.echo.received == 0


def test_json_lines_carry_the_event_fields() -> None:
    record = logging.LogRecord(
        "kakehashi.relayer",
        logging.INFO,
        __file__,
        1,
        "event=%s direction=%s",
        ("x.y", "a->b"),
        None,
    )
    line = json.loads(JsonLinesFormatter().format(record))
    assert line["event"] == "x.y" and line["direction"] == "a->b"
    assert line["level"] == "info" and line["logger"] == "kakehashi.relayer"
