"""One spec per Cassandra table the jobs write: its columns in the CQL file's order
and its primary key. The Spark outputs select by it, the store's statements are built
from it and the tests compare against it; tests/jobs/test_tables.py holds each spec to
its cql/ file, so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import Column


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]

    def __post_init__(self) -> None:
        if not set(self.key) <= set(self.columns):
            raise ValueError(f"{self.name}: key {self.key} not among its columns")

    @property
    def values(self) -> tuple[str, ...]:
        """The columns outside the primary key, in order."""
        return tuple(c for c in self.columns if c not in self.key)

    def insert(self, keyspace: str, suffix: str = "") -> str:
        """An INSERT of every column, with one bind marker each."""
        return (f"INSERT INTO {keyspace}.{self.name} ({', '.join(self.columns)})"
                f" VALUES ({', '.join('?' for _ in self.columns)}){suffix}")

    def row(self, values: Mapping[str, object]) -> tuple:
        """The values in column order, for a statement from insert()."""
        return tuple(values[c] for c in self.columns)

    def project(self, **expressions: Column) -> list[Column]:
        """Spark columns in the table's order: an expression where one is given,
        otherwise the input column of that name."""
        from pyspark.sql import functions as F  # the store and the status line need no Spark

        unknown = sorted(set(expressions) - set(self.columns))
        if unknown:
            raise ValueError(f"{self.name} has no column {', '.join(unknown)}")
        return [expressions[c].alias(c) if c in expressions else F.col(c)
                for c in self.columns]


TRADES = TableSpec(
    "trades",
    ("symbol", "trade_date", "trade_ts", "kafka_partition", "kafka_offset", "price",
     "volume", "conditions", "ingest_ts", "kafka_topic"),
    key=("symbol", "trade_date", "trade_ts", "kafka_partition", "kafka_offset"),
)
MINUTE_TRADES = TableSpec(
    "minute_trades",
    ("symbol", "window_start", "window_end", "trade_count", "avg_price", "open_price",
     "high_price", "low_price", "close_price", "total_volume", "vwap"),
    key=("symbol", "window_start"),
)
MOVING_MEANS = TableSpec(
    "moving_means",
    ("symbol", "window_seconds", "slide_seconds", "window_end", "window_start",
     "trade_count", "arithmetic_mean", "geometric_mean", "harmonic_mean"),
    key=("symbol", "window_seconds", "slide_seconds", "window_end"),
)
CANDLES = TableSpec(
    "candles",
    ("symbol", "resolution", "bucket", "window_start", "window_end", "trade_count",
     "open_price", "high_price", "low_price", "close_price", "total_volume", "avg_price",
     "vwap", "log_return_stddev", "parkinson_volatility"),
    key=("symbol", "resolution", "bucket", "window_start"),
)
# A part's values are a jobs.candles.CandlePart's fields, the order keys spelled out.
CANDLE_PARTS = TableSpec(
    "candle_parts",
    ("run_id", "symbol", "resolution", "bucket", "window_start", "last_batch_id",
     "trade_count", "price_sum", "volume_sum", "notional_sum", "low_price", "high_price",
     "first_ts", "first_partition", "first_offset", "first_price", "last_ts",
     "last_partition", "last_offset", "last_price", "return_sum", "return_m2"),
    key=("run_id", "symbol", "resolution", "bucket", "window_start"),
)
TICKER_24H = TableSpec(
    "ticker_24h",
    ("symbol", "last_price", "last_trade_ts", "open_price", "high_price", "low_price",
     "price_change", "price_change_pct", "total_volume", "quote_volume", "trade_count",
     "vwap", "window_start", "window_end"),
    key=("symbol",),
)
SYMBOLS = TableSpec(
    "symbols",
    ("symbol", "first_trade_ts", "last_trade_ts", "last_price", "last_kafka_partition",
     "last_kafka_offset"),
    key=("symbol",),
)
REJECTED_RECORDS = TableSpec(
    "rejected_records",
    ("kafka_topic", "kafka_date", "kafka_partition", "kafka_offset", "kafka_ts", "payload",
     "reason", "seen_at"),
    key=("kafka_topic", "kafka_date", "kafka_partition", "kafka_offset"),
)
# A pane's values are a jobs.panes.Partial's fields, in this order.
PANES = TableSpec(
    "panes",
    ("run_id", "symbol", "pane_date", "pane_start", "last_batch_id", "trade_count",
     "price_sum", "volume_sum", "notional_sum", "log_price_sum", "inverse_price_sum",
     "low_price", "high_price", "open_ts", "open_partition", "open_offset", "open_price",
     "close_ts", "close_partition", "close_offset", "close_price"),
    key=("run_id", "symbol", "pane_date", "pane_start"),
)
PANE_VALUES = tuple(c for c in PANES.values if c != "last_batch_id")
STREAM_RUNS = TableSpec(
    "stream_runs",
    ("run_id", "topic", "window_seconds", "slide_seconds", "pane_seconds",
     "candle_resolutions", "started_at"),
    key=("run_id",),
)
# Every column but job, day and run_id is a jobs.stream_store.BatchReport field.
STREAM_PROGRESS = TableSpec(
    "stream_progress",
    ("job", "day", "finished_at", "batch_id", "run_id", "started_at", "trades_written_at",
     "records", "trades", "rejected", "panes", "minute_rows", "moving_rows", "candle_rows",
     "trade_latency_p50_ms", "trade_latency_p99_ms", "window_latency_p99_ms",
     "kafka_lag_records", "kafka_lag_ms"),
    key=("job", "day", "finished_at", "batch_id"),
)

TABLES = (TRADES, MINUTE_TRADES, MOVING_MEANS, REJECTED_RECORDS, PANES, STREAM_RUNS,
          STREAM_PROGRESS, CANDLES, CANDLE_PARTS, TICKER_24H, SYMBOLS)
