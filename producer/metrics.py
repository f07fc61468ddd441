"""Prometheus metrics of a run at http://HOST:PORT/metrics: a view of its Stats.

Every value is read from the run's `Stats` when Prometheus scrapes, so the metrics,
the status lines and the final summary are the same counts. The registry is the
run's own (not prometheus_client's global one): several producers in one process,
as in tests, never share or clash over metrics.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping

from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from contract.exits import ExitCode
from producer.config import MetricsConfig
from producer.errors import FatalError
from producer.messages import KIND_ERROR, KIND_PING, KIND_REJECTED, KIND_TRADE, REJECTION_CODES
from producer.stats import Stats

log = logging.getLogger(__name__)

PREFIX = "market_producer"
MESSAGE_KINDS = (KIND_TRADE, KIND_PING, KIND_ERROR, KIND_REJECTED)
# Long enough for a scrape in progress to finish when the run ends.
SHUTDOWN_JOIN_S = 5.0


def _labelled(name: str, documentation: str, label: str, counts: Mapping[str, int],
              known: Iterable[str]) -> CounterMetricFamily:
    """A counter per label value; the known values are always there, at 0 if unseen,
    so that rate() and alerts see a series before its first increment."""
    family = CounterMetricFamily(f"{PREFIX}_{name}", documentation, labels=[label])
    # dict() copies in one C call: the reading loop may add a key during a scrape.
    values = dict(counts)
    for value in sorted({*known, *values}):
        family.add_metric([value], values.get(value, 0))
    return family


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(f"{PREFIX}_{name}", documentation, value=value)


class StatsCollector(Collector):
    """The counters of one run's Stats, read at scrape time."""

    def __init__(self, stats: Stats, clock: Callable[[], float] = time.monotonic) -> None:
        self._stats = stats
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        stats = self._stats
        yield _labelled("messages", "Messages received from the source, by what they were "
                        "(rejected: the whole message was dead-lettered)", "kind",
                        stats.messages_by_kind, MESSAGE_KINDS)
        yield _counter("trades_sent", "Trades Kafka confirmed on the trade topic",
                       stats.trades_sent)
        yield _labelled("rejected", "Inputs (trades or whole messages) handed to the "
                        "dead-letter topic, by reason", "reason", stats.rejected_by_reason,
                        REJECTION_CODES)
        yield _counter("reconnects", "Connections to Finnhub re-established after a loss",
                       stats.reconnects)
        yield _counter("disconnected_seconds", "Time without a Finnhub connection, counted "
                       "when the connection is back", stats.disconnected_s)
        yield _counter("send_errors", "Records Kafka did not take (trades and dead letters)",
                       stats.send_errors)
        yield GaugeMetricFamily(
            f"{PREFIX}_last_message_age_seconds",
            "Seconds since the last message from the source (since the start if none yet)",
            value=self._clock() - (stats.started if stats.last_message_at is None
                                   else stats.last_message_at))


def registry_for(stats: Stats) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(StatsCollector(stats))
    ProcessCollector(registry=registry)  # CPU, memory, open files of this process
    return registry


@contextlib.contextmanager
def serve_metrics(config: MetricsConfig, stats: Stats) -> Iterator[None]:
    """Serve the run's metrics while the block runs (nothing if config.port is 0)."""
    if config.port == 0:
        yield
        return
    try:
        server, thread = start_http_server(config.port, config.host, registry_for(stats))
    except OSError as err:  # port taken, address not local, host unknown
        raise FatalError(f"cannot serve metrics on {config.host}:{config.port}: "
                         f"{err.strerror or err}", ExitCode.USAGE) from None
    log.info("metrics at http://%s:%d/metrics", config.host, config.port)
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(SHUTDOWN_JOIN_S)
