"""Kafka output: Avro trades keyed by symbol, and JSON dead letters.

Durability settings: acks=all plus idempotence (no duplicates or reordering from
retries within a partition), retries bounded by the delivery timeout, a small linger
and lz4 compression for throughput. Delivery is asynchronous: confirmations and
failures arrive on the send futures' callbacks and are counted (trades_sent counts
confirmed trades only), never waited for one record at a time.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from kafka import KafkaAdminClient, KafkaProducer
from kafka.errors import KafkaError
from kafka.partitioner.default import murmur2

from contract.exits import ExitCode
from producer.avro_codec import encode
from producer.config import KafkaConfig
from producer.errors import FatalError
from producer.messages import Rejection, Trade, safe_text
from producer.stats import Stats

log = logging.getLogger(__name__)

# A dead letter must always fit one Kafka record (the client's and the broker's default
# limit is 1 MiB, key and headers included). Its JSON value, once encoded, is at most
# DEAD_LETTER_MAX_BYTES: the reason is cut to MAX_REASON_BYTES, then the raw text to
# whatever is left. Either cut sets "truncated" and records the original sizes.
DEAD_LETTER_MAX_BYTES = 900 * 1024
MAX_REASON_BYTES = 1024
# Log the first failures in full, then one in LOG_EVERY: an outage fails every record.
LOG_FIRST_ERRORS = 10
LOG_EVERY = 1000


def _cut_utf8(text: str, max_bytes: int) -> str:
    data = text.encode("utf-8")
    return data[:max_bytes].decode("utf-8", "ignore") if len(data) > max_bytes else text


def dead_letter_value(rejection: Rejection, ingest_ts: int, source: str,
                      max_bytes: int = DEAD_LETTER_MAX_BYTES) -> bytes:
    """The JSON dead-letter record for one rejected item, at most `max_bytes` long.

    Keys: reason, raw, ingest_ts, source, truncated; with truncated true also
    raw_chars and reason_chars, the original lengths.
    """
    reason, raw = safe_text(rejection.reason), safe_text(rejection.raw)
    value: dict[str, Any] = {"reason": _cut_utf8(reason, MAX_REASON_BYTES), "raw": raw,
                             "ingest_ts": ingest_ts, "source": source, "truncated": False}
    encoded = json.dumps(value, ensure_ascii=False).encode("utf-8")
    cut_before = rejection.raw_chars is not None  # raw is the start of a longer text
    if len(encoded) <= max_bytes and value["reason"] == reason and not cut_before:
        return encoded
    value.update(truncated=True, raw_chars=rejection.raw_chars if cut_before else len(raw),
                 reason_chars=len(reason))
    # Escaping makes the JSON of raw text up to six times its length: cut the text in
    # proportion to what its JSON form costs, and again until the record fits.
    keep = len(raw)
    while True:
        value["raw"] = raw[:keep]
        encoded = json.dumps(value, ensure_ascii=False).encode("utf-8")
        if len(encoded) <= max_bytes or keep == 0:  # empty raw always fits the real budget
            return encoded
        escaped = len(json.dumps(raw[:keep], ensure_ascii=False).encode("utf-8"))
        spare = max_bytes - (len(encoded) - escaped)
        keep = max(0, min(keep - 1, keep * max(spare, 0) // max(escaped, 1)))


class KafkaSink:
    """One KafkaProducer for trades and dead letters; counts failures in `stats`."""

    def __init__(self, config: KafkaConfig, stats: Stats) -> None:
        self._config = config
        self._stats = stats
        self._keys: dict[str, bytes] = {}
        self._routes: dict[str, tuple[bytes, int]] = {}
        self._producer = self._open()
        try:
            self._check_topics()
            self._partitions = sorted(self._producer.partitions_for(config.topic))
        except BaseException:
            self._producer.close(timeout=1)
            raise

    def _open(self) -> KafkaProducer:
        c = self._config
        try:
            return KafkaProducer(
                bootstrap_servers=c.bootstrap_servers.split(","),
                client_id=c.client_id,
                acks="all",
                enable_idempotence=True,
                retries=c.retries,
                delivery_timeout_ms=c.delivery_timeout_ms,
                linger_ms=c.linger_ms,
                batch_size=c.batch_size,
                compression_type=c.compression or None,
                bootstrap_timeout_ms=int(c.connect_timeout_s * 1000),
            )
        except KafkaError as err:
            raise FatalError(f"Kafka broker unreachable at {c.bootstrap_servers}: {err}",
                             ExitCode.KAFKA) from None
        except (ValueError, RuntimeError) as err:  # e.g. an unknown compression codec
            raise FatalError(f"cannot create the Kafka producer: {err}", ExitCode.KAFKA) from None

    def _check_topics(self) -> None:
        # The broker does not auto-create topics, and a missing topic would only show
        # as a send timeout a minute later: check up front.
        c = self._config
        wanted = {c.topic, c.dead_letter_topic}
        try:
            admin = KafkaAdminClient(bootstrap_servers=c.bootstrap_servers.split(","),
                                     client_id=f"{c.client_id}-check",
                                     request_timeout_ms=int(c.connect_timeout_s * 1000))
            try:
                missing = wanted - set(admin.list_topics())
            finally:
                admin.close()
        except KafkaError as err:
            raise FatalError(f"Kafka broker unreachable at {c.bootstrap_servers}: {err}",
                             ExitCode.KAFKA) from None
        if missing:
            raise FatalError(f"Kafka topic(s) missing on {c.bootstrap_servers}: "
                             f"{', '.join(sorted(missing))} (create them first)", ExitCode.KAFKA)

    def _key(self, symbol: str) -> bytes:
        key = self._keys.get(symbol)
        if key is None:
            key = self._keys[symbol] = symbol.encode("utf-8")
        return key

    def _route(self, symbol: str) -> tuple[bytes, int]:
        """Key bytes and partition of a symbol, computed once per symbol.

        The partition is the one Kafka's default partitioner picks for the key
        (murmur2, as the Java client), so the mapping is the same as other producers'.
        Computing it once spares the pure-Python hash on every record, the largest
        per-record cost after the send itself. A partition count raised while running
        is picked up at the next start; keeping a symbol where it was until then keeps
        its records in order.
        """
        route = self._routes.get(symbol)
        if route is None:
            key = self._key(symbol)
            index = (murmur2(key) & 0x7FFFFFFF) % len(self._partitions)
            route = self._routes[symbol] = (key, self._partitions[index])
        return route

    def send_trades(self, trades: tuple[Trade, ...]) -> None:
        send, topic, on_error = self._producer.send, self._config.topic, self._on_send_error
        on_sent = self._on_trade_sent
        routes = self._routes
        for trade in trades:
            key, partition = routes.get(trade.symbol) or self._route(trade.symbol)
            try:
                future = send(topic, key=key, value=encode(trade), partition=partition)
            except KafkaError as err:  # buffer full past max_block_ms, metadata timeout
                on_error(err)
                continue
            future.add_callback(on_sent)
            future.add_errback(on_error)

    def _on_trade_sent(self, _metadata: object) -> None:
        # Runs on the producer's I/O thread: a trade counts as sent once Kafka has it.
        self._stats.trades_sent += 1

    def send_rejection(self, rejection: Rejection, ingest_ts: int, source: str) -> None:
        key = self._key(rejection.symbol) if rejection.symbol else None
        try:
            future = self._producer.send(self._config.dead_letter_topic, key=key,
                                         value=dead_letter_value(rejection, ingest_ts, source))
        except KafkaError as err:
            self._on_send_error(err)
            return
        future.add_errback(self._on_send_error)

    def _on_send_error(self, err: BaseException) -> None:
        # Runs on the producer's I/O thread for asynchronous failures.
        self._stats.send_errors += 1
        n = self._stats.send_errors
        if n <= LOG_FIRST_ERRORS or n % LOG_EVERY == 0:
            log.error("Kafka send failed (%d so far): %s: %s", n, type(err).__name__, err)

    def flush(self) -> bool:
        """Wait for every pending record; False if some were not confirmed in time."""
        try:
            self._producer.flush(timeout=self._config.flush_timeout_s)
        except KafkaError as err:
            log.error("Kafka flush did not complete in %.0f s: %s",
                      self._config.flush_timeout_s, err)
            return False
        return True

    def close(self, timeout_s: float | None = None) -> None:
        try:
            self._producer.close(
                timeout=self._config.flush_timeout_s if timeout_s is None else timeout_s)
        except KafkaError as err:
            log.error("Kafka producer did not close cleanly: %s", err)
