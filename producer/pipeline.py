"""The path every raw message takes, whatever its source: record, parse, send, count."""

from __future__ import annotations

import logging
import time

from producer.finnhub import explain_error
from producer.kafka_sink import KafkaSink
from producer.messages import KIND_ERROR, KIND_PING, parse_message
from producer.replay import RecordWriter
from producer.stats import Stats

log = logging.getLogger(__name__)

# Log the first rejections in full, then one in LOG_EVERY: a broken feed can reject
# every message, and all of them are in the dead-letter topic anyway.
LOG_FIRST_REJECTIONS = 20
LOG_EVERY = 1000
MAX_LOGGED_RAW_CHARS = 200


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Pipeline:
    def __init__(self, sink: KafkaSink, stats: Stats, source: str,
                 recorder: RecordWriter | None = None) -> None:
        self._sink = sink
        self._stats = stats
        self._source = source
        self._recorder = recorder

    def handle(self, raw: str | bytes) -> None:
        """Process one raw message as received now."""
        ingest_ts = now_ms()
        stats = self._stats
        stats.messages += 1
        if self._recorder is not None:
            self._recorder.write(raw)
        result = parse_message(raw, ingest_ts)
        if result.trades:
            self._sink.send_trades(result.trades)
        for rejection in result.rejections:
            self._sink.send_rejection(rejection, ingest_ts, self._source)
            stats.count_rejection(rejection.code)
            if stats.rejected <= LOG_FIRST_REJECTIONS or stats.rejected % LOG_EVERY == 0:
                log.warning("rejected (%d so far): %s: %s", stats.rejected, rejection.reason,
                            rejection.raw[:MAX_LOGGED_RAW_CHARS])
        if result.kind == KIND_PING:
            stats.pings += 1
        elif result.kind == KIND_ERROR:
            stats.errors += 1
            log.warning("%s", explain_error(result.error_msg or ""))
