"""``kakehashi relayer start``: the asyncio relayer service.

Each round (:meth:`~kakehashi.relayer.path.PathRelayer.relay_once`, run in a worker thread so
the event loop stays free) reads both ledgers, updates the counterparty's LCP client through the
LCP service and submits receives, acknowledgements and timeouts in batches. A round that fails
(a ledger or the LCP service unreachable) is logged and counted, and the next round starts after
the interval: the relayer holds nothing the ledgers do not, so nothing is lost.

Metrics (Prometheus, :class:`RelayerMetrics`): ``kakehashi_relayer_packets_relayed_total``
(direction, kind), ``kakehashi_relayer_packets_pending`` (direction),
``kakehashi_relayer_errors_total`` (kind), ``kakehashi_relayer_round_seconds`` (histogram),
``kakehashi_relayer_client_height`` (ledger: the height of the LCP client on that ledger),
``kakehashi_relayer_rounds_total``. Logs are ``key=value`` events, or one JSON object per line
with :func:`configure_logging` ``json_lines=True``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from kakehashi.errors import KakehashiError
from kakehashi.relayer.path import PathRelayer, RoundReport

__all__ = ["JsonLinesFormatter", "RelayerMetrics", "RelayerService", "configure_logging"]

log = logging.getLogger("kakehashi.relayer")


class RelayerMetrics:
    """The relayer's Prometheus metrics, in their own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.relayed = Counter(
            "kakehashi_relayer_packets_relayed",
            "Packet messages the destination accepted",
            ["direction", "kind"],
            registry=r,
        )
        self.pending = Gauge(
            "kakehashi_relayer_packets_pending",
            "Packets, acknowledgements and timeouts found to relay at the start of the last round",
            ["direction"],
            registry=r,
        )
        self.errors = Counter(
            "kakehashi_relayer_errors", "Refused messages and failed rounds", ["kind"], registry=r
        )
        self.round_seconds = Histogram(
            "kakehashi_relayer_round_seconds", "Duration of one relay round", registry=r
        )
        self.client_height = Gauge(
            "kakehashi_relayer_client_height",
            "Latest height of the LCP client on a ledger (of its counterparty)",
            ["ledger"],
            registry=r,
        )
        self.rounds = Counter("kakehashi_relayer_rounds", "Relay rounds run", registry=r)
        self.already = Counter(
            "kakehashi_relayer_already_relayed",
            "Messages another relayer had already delivered",
            registry=r,
        )

    def record(self, report: RoundReport, seconds: float) -> None:
        self.rounds.inc()
        self.round_seconds.observe(seconds)
        for kind, counts in (
            ("recv", report.received),
            ("ack", report.acknowledged),
            ("timeout", report.timed_out),
        ):
            for direction, n in counts.items():
                self.relayed.labels(direction, kind).inc(n)
        for direction, n in report.pending.items():
            self.pending.labels(direction).set(n)
        for ledger, height in report.client_heights.items():
            self.client_height.labels(ledger).set(height.revision_height)
        if report.failed:
            self.errors.labels("refused").inc(len(report.failed))
        if report.already_relayed:
            self.already.inc(report.already_relayed)

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        """Expose the metrics on ``http://host:port/metrics`` (a daemon thread)."""
        start_http_server(port, addr=host, registry=self.registry)


class RelayerService:
    """Rounds of ``relayer`` every ``interval_s`` until stopped (module docstring)."""

    def __init__(
        self,
        relayer: PathRelayer,
        *,
        interval_s: float = 0.5,
        metrics: RelayerMetrics | None = None,
    ) -> None:
        self.relayer = relayer
        self.interval_s = interval_s
        self.metrics = metrics or RelayerMetrics()
        self.stopping = asyncio.Event()

    async def round(self) -> RoundReport | None:
        """One round; None when it failed (logged and counted)."""
        start = time.perf_counter()
        try:
            report = await asyncio.to_thread(self.relayer.relay_once)
        except KakehashiError as exc:
            self.metrics.errors.labels("round").inc()
            log.error("event=round.failed error=%s message=%s", type(exc).__name__, exc)
            return None
        except OSError as exc:  # a socket error a client library did not type
            self.metrics.errors.labels("round").inc()
            log.error("event=round.failed error=%s message=%s", type(exc).__name__, exc)
            return None
        seconds = time.perf_counter() - start
        self.metrics.record(report, seconds)
        if report.relayed or report.failed or report.already_relayed:
            log.info(
                "event=round.done seconds=%.3f received=%s acknowledged=%s timed_out=%s "
                "already_relayed=%d refused=%d",
                seconds,
                json.dumps(report.received),
                json.dumps(report.acknowledged),
                json.dumps(report.timed_out),
                report.already_relayed,
                len(report.failed),
            )
        return report

    async def run(self, rounds: int | None = None) -> None:
        """Run rounds until :meth:`stop` (or ``rounds`` rounds)."""
        done = 0
        log.info(
            "event=relayer.start a=%s b=%s interval_s=%s batch_size=%d",
            self.relayer.a.name,
            self.relayer.b.name,
            self.interval_s,
            self.relayer.batch_size,
        )
        while not self.stopping.is_set() and (rounds is None or done < rounds):
            await self.round()
            done += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=self.interval_s)
        log.info("event=relayer.stop rounds=%d", done)

    def stop(self) -> None:
        self.stopping.set()


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, and the ``key=value`` pairs of
    an event message as fields."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": message,
        }
        if message.startswith("event="):
            for part in message.split(" "):
                key, sep, value = part.partition("=")
                if sep and key.isidentifier() and key not in entry:
                    entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(*, json_lines: bool = False, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    if json_lines:
        handler.setFormatter(JsonLinesFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "web3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
