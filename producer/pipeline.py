"""The path every raw message takes, whatever its source: record, parse, send, count."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Iterable

from contract.validation import BAD_SYMBOL
from producer.finnhub import explain_error, redact
from producer.kafka_sink import KafkaSink
from producer.messages import (
    DEFAULT_MAX_FUTURE_MS,
    KIND_ERROR,
    KIND_REJECTED,
    ParseResult,
    Rejection,
    Trade,
    parse_message,
)
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


def _leaks(trade: Trade, secrets: tuple[str, ...]) -> bool:
    return any(secret in text for secret in secrets
               for text in (trade.symbol, *(trade.conditions or ())))


class Pipeline:
    """`secrets` (the API token) never leave through a record file, a trade or a dead
    letter: a server that echoes the token gets it masked, and a trade carrying it is
    rejected instead of keyed by it."""

    def __init__(self, sink: KafkaSink, stats: Stats, source: str,
                 recorder: RecordWriter | None = None, secrets: Iterable[str] = (),
                 max_future_ms: int = DEFAULT_MAX_FUTURE_MS) -> None:
        self._sink = sink
        self._stats = stats
        self._source = source
        self._recorder = recorder
        self._secrets = tuple(s for s in secrets if s)
        self._max_future_ms = max_future_ms

    def _mask(self, rejection: Rejection) -> Rejection:
        secrets = self._secrets
        symbol = rejection.symbol
        return dataclasses.replace(
            rejection, raw=redact(rejection.raw, secrets),
            detail=redact(rejection.detail, secrets),
            symbol=None if symbol is None or redact(symbol, secrets) != symbol else symbol)

    def _split_leaks(self, trades: tuple[Trade, ...]) -> tuple[tuple[Trade, ...],
                                                              list[Rejection]]:
        if not self._secrets or not any(_leaks(t, self._secrets) for t in trades):
            return trades, []
        rejected = [Rejection(BAD_SYMBOL, "the trade carries the API token", json.dumps(
                        {"s": t.symbol, "p": t.price, "t": t.trade_ts, "v": t.volume,
                         "c": t.conditions}, ensure_ascii=False))
                    for t in trades if _leaks(t, self._secrets)]
        return tuple(t for t in trades if not _leaks(t, self._secrets)), rejected

    def handle(self, raw: str | bytes | Rejection) -> None:
        """Process one raw message as received now.

        A Rejection is input the source already refused (a replayed line too long to
        be a message): it is dead-lettered and counted like a rejected message.
        """
        ingest_ts = now_ms()
        stats = self._stats
        stats.messages += 1
        stats.last_message_at = time.monotonic()
        if isinstance(raw, Rejection):
            result = ParseResult(KIND_REJECTED, rejections=(raw,))
        else:
            if self._recorder is not None:
                self._recorder.write(raw)
            result = parse_message(raw, ingest_ts, self._max_future_ms)
        trades, leaking = self._split_leaks(result.trades)
        if trades:
            self._sink.send_trades(trades)
        for rejection in (*result.rejections, *leaking):
            if self._secrets:
                rejection = self._mask(rejection)
            self._sink.send_rejection(rejection, ingest_ts, self._source)
            stats.count_rejection(rejection.code)
            if stats.rejected <= LOG_FIRST_REJECTIONS or stats.rejected % LOG_EVERY == 0:
                log.warning("rejected (%d so far): %s: %s", stats.rejected, rejection.reason,
                            rejection.raw[:MAX_LOGGED_RAW_CHARS])
        stats.messages_by_kind[result.kind] += 1
        if result.kind == KIND_ERROR:
            log.warning("%s", explain_error(result.error_msg or ""))
