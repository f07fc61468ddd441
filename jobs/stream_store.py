"""Thin Cassandra I/O of the stream job's driver: panes, window rows, runs, progress.

A micro-batch touches a handful of panes and windows per symbol, so the driver reads
and writes them with the Python driver's prepared statements instead of planning
Spark jobs for a few rows. Every statement is an idempotent upsert or a read.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone

from cassandra import DriverException
from cassandra.cluster import Cluster, Session
from cassandra.concurrent import execute_concurrent, execute_concurrent_with_args
from cassandra.query import BatchStatement, BatchType, PreparedStatement

from contract.cassandra import make_cluster
from jobs.candle_levels import StoredPart, SymbolState, ttl_seconds
from jobs.candles import CandlePart, OrderKey, bucket, bucket_unit
from jobs.panes import Pane, Partial
from jobs.settings import CassandraTarget
from jobs.tables import (
    CANDLE_PARTS,
    CANDLES,
    MINUTE_TRADES,
    MOVING_MEANS,
    PANE_VALUES,
    PANES,
    STREAM_PROGRESS,
    STREAM_RUNS,
    SYMBOLS,
    TICKER_24H,
    TRADES,
)

DAY = timedelta(days=1)
CONCURRENCY = 64
# Rows of one partition go to Cassandra as one unlogged batch, up to this many: a
# micro-batch writes ten moving-mean rows per symbol, and one request for them instead
# of ten saves most of the Python driver's per-request work.
ROWS_PER_BATCH = 50


@dataclass(frozen=True)
class RunSettings:
    topic: str
    window_seconds: int
    slide_seconds: int
    pane_seconds: int
    # The written candle resolutions, comma-separated, shortest first.
    candle_resolutions: str | None


class MissingKeyspaceError(DriverException):
    """The schema was not applied to this keyspace."""


# The report's measurements that may be unknown (None): stored as NaN, see nan_if_none.
MEASUREMENTS = ("trade_latency_p50_ms", "trade_latency_p99_ms", "window_latency_p99_ms",
                "kafka_lag_ms")


@dataclass(frozen=True)
class BatchReport:
    """What one micro-batch did: a `stream_progress` row, and the job's log line.

    Latencies run from the producer's ingest_ts of the batch's trades to the moment
    their rows (trade_*), and the windows containing them (window_*), were written.
    """

    batch_id: int
    records: int
    trades: int
    rejected: int
    panes: int
    minute_rows: int
    moving_rows: int
    candle_rows: int
    started_at: datetime
    trades_written_at: datetime
    finished_at: datetime
    trade_latency_p50_ms: float | None
    trade_latency_p99_ms: float | None
    window_latency_p99_ms: float | None
    # How far the job is behind the topic when the batch finished (jobs.kafka_lag);
    # None when the broker could not say.
    kafka_lag_records: int | None = None
    kafka_lag_ms: float | None = None

    def line(self) -> str:
        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value:.0f}"

        seconds = (self.finished_at - self.started_at).total_seconds()
        return (f"batch={self.batch_id} records={self.records} trades={self.trades}"
                f" rejected={self.rejected} panes={self.panes}"
                f" minute_rows={self.minute_rows} moving_rows={self.moving_rows}"
                f" candle_rows={self.candle_rows}"
                f" duration_ms={seconds * 1000:.0f}"
                f" latency_ms_p50={ms(self.trade_latency_p50_ms)}"
                f" p99={ms(self.trade_latency_p99_ms)}"
                f" windows_p99={ms(self.window_latency_p99_ms)}"
                f" lag_records={'-' if self.kafka_lag_records is None else self.kafka_lag_records}"
                f" lag_ms={ms(self.kafka_lag_ms)}")


def connect(target: CassandraTarget) -> tuple[Cluster, Session]:
    cluster = make_cluster(target.host, target.port, username=target.username,
                           password=target.password)
    return cluster, cluster.connect()


def open_store(target: CassandraTarget) -> tuple[Cluster, StreamStore]:
    """A connected store; the caller shuts the cluster down."""
    cluster, session = connect(target)
    try:
        # Checked first: preparing against a missing keyspace logs a driver traceback.
        if target.keyspace not in cluster.metadata.keyspaces:
            raise MissingKeyspaceError(f"keyspace {target.keyspace} does not exist")
        return cluster, StreamStore(session, target.keyspace)
    except Exception:
        cluster.shutdown()
        raise


def nan_if_none(value: float | None) -> float:
    """An unknown measurement is stored as NaN, not null: Grafana's Cassandra plugin
    cannot read nulls in a plotted column, and draws NaN as a gap."""
    return math.nan if value is None else value


def utc(ts: datetime) -> datetime:
    """The driver returns naive UTC datetimes; everything here is aware."""
    return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts


def day_slices(start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
    """[start, end) cut at UTC midnights: one slice per pane_date partition."""
    while start < end:
        midnight = datetime(start.year, start.month, start.day, tzinfo=timezone.utc) + DAY
        yield start, min(end, midnight)
        start = min(end, midnight)


def bucket_slices(level: str, start: datetime, end: datetime
                  ) -> Iterator[tuple[object, datetime, datetime]]:
    """[start, end) cut at the level's bucket boundaries: (bucket, lo, hi) per partition."""
    while start < end:
        first = bucket(level, start)
        unit = bucket_unit(level)
        if unit == "day":
            following = first + DAY
        elif unit == "month":
            following = (first + timedelta(days=32)).replace(day=1)
        else:
            following = first.replace(year=first.year + 1)
        boundary = datetime(following.year, following.month, following.day, tzinfo=timezone.utc)
        yield first, start, min(end, boundary)
        start = min(end, boundary)


# The columns of a part after its key and last_batch_id.
PART_VALUES = CANDLE_PARTS.values[1:]


def part_values(part: CandlePart) -> dict[str, object]:
    (first_ts, first_partition, first_offset) = part.first_key
    (last_ts, last_partition, last_offset) = part.last_key
    return {
        "trade_count": part.trade_count, "price_sum": part.price_sum,
        "volume_sum": part.volume_sum, "notional_sum": part.notional_sum,
        "low_price": part.low_price, "high_price": part.high_price,
        "first_ts": first_ts, "first_partition": first_partition,
        "first_offset": first_offset, "first_price": part.first_price,
        "last_ts": last_ts, "last_partition": last_partition, "last_offset": last_offset,
        "last_price": part.last_price, "return_sum": part.return_sum,
        "return_m2": part.return_m2,
    }


def stored_part(row: Mapping[str, object]) -> StoredPart:
    return StoredPart(row["last_batch_id"], CandlePart(
        trade_count=row["trade_count"], price_sum=row["price_sum"],
        volume_sum=row["volume_sum"], notional_sum=row["notional_sum"],
        low_price=row["low_price"], high_price=row["high_price"],
        first_key=(utc(row["first_ts"]), row["first_partition"], row["first_offset"]),
        first_price=row["first_price"],
        last_key=(utc(row["last_ts"]), row["last_partition"], row["last_offset"]),
        last_price=row["last_price"],
        return_sum=row["return_sum"], return_m2=row["return_m2"]))


PartKey = tuple[str, str, datetime]  # (level, symbol, window start)


@dataclass
class CandleWrites:
    """What a micro-batch writes besides panes and windows."""

    parts: Mapping[PartKey, StoredPart]
    candles: Sequence[Mapping[str, object]]
    tickers: Sequence[Mapping[str, object]]
    symbols: Mapping[str, SymbolState]


class StreamStore:
    def __init__(self, session: Session, keyspace: str) -> None:
        self.session = session
        prepare = session.prepare
        self._select_panes = prepare(
            f"SELECT pane_start, last_batch_id, {', '.join(PANE_VALUES)}"
            f" FROM {keyspace}.{PANES.name}"
            " WHERE run_id = ? AND symbol = ? AND pane_date = ?"
            " AND pane_start >= ? AND pane_start < ?")
        self._insert_pane = prepare(PANES.insert(keyspace))
        self._insert_minute = prepare(MINUTE_TRADES.insert(keyspace))
        self._insert_moving = prepare(MOVING_MEANS.insert(keyspace))
        self._select_run = prepare(
            f"SELECT {', '.join(RunSettings.__dataclass_fields__)}"
            f" FROM {keyspace}.{STREAM_RUNS.name} WHERE run_id = ?")
        self._insert_progress = prepare(STREAM_PROGRESS.insert(keyspace))
        self._select_parts = prepare(
            f"SELECT window_start, last_batch_id, {', '.join(PART_VALUES)}"
            f" FROM {keyspace}.{CANDLE_PARTS.name} WHERE run_id = ? AND symbol = ?"
            " AND resolution = ? AND bucket = ? AND window_start >= ? AND window_start < ?")
        self._insert_part = prepare(CANDLE_PARTS.insert(keyspace, suffix=" USING TTL ?"))
        self._insert_candle = prepare(CANDLES.insert(keyspace, suffix=" USING TTL ?"))
        self._insert_ticker = prepare(TICKER_24H.insert(keyspace))
        self._insert_symbol = prepare(SYMBOLS.insert(keyspace))
        self._select_symbol = prepare(
            f"SELECT {', '.join(SYMBOLS.columns)} FROM {keyspace}.{SYMBOLS.name}"
            " WHERE symbol = ?")
        self._keyspace = keyspace
        # Prepared on first use: only a late trade between two stored ones needs it.
        self._select_trades: PreparedStatement | None = None
        self._insert_run = prepare(STREAM_RUNS.insert(keyspace, suffix=" IF NOT EXISTS"))

    # --- runs ---

    def register_run(self, run_id: uuid.UUID, settings: RunSettings) -> RunSettings:
        """The settings the run was first started with (these ones, for a new run)."""
        self.session.execute(self._insert_run, STREAM_RUNS.row(
            {"run_id": run_id, **asdict(settings), "started_at": datetime.now(timezone.utc)}))
        row = self.session.execute(self._select_run, (run_id,)).one()
        return RunSettings(**row._asdict())

    # --- progress ---

    def save_progress(self, job: str, run_id: uuid.UUID, report: BatchReport) -> None:
        values = asdict(report)
        # Unknown measurements are NaN; an unknown record count stays null (bigint).
        for name in MEASUREMENTS:
            values[name] = nan_if_none(values[name])
        self.session.execute(self._insert_progress, STREAM_PROGRESS.row(
            {**values, "job": job, "day": report.finished_at.date(), "run_id": run_id}))

    # --- panes ---

    def load_panes(self, run_id: uuid.UUID, spans: Iterable[tuple[str, datetime, datetime]]
                   ) -> dict[tuple[str, datetime], Pane]:
        """(symbol, pane start) -> stored pane, for every pane in the (symbol, start, end) spans."""
        args = [(run_id, symbol, lo.date(), lo, hi)
                for symbol, start, end in spans for lo, hi in day_slices(start, end)]
        panes = {}
        results = execute_concurrent_with_args(
            self.session, self._select_panes, args, concurrency=CONCURRENCY,
            raise_on_first_error=True)
        for (_, symbol, *_), (_ok, rows) in zip(args, results, strict=True):
            for row in rows:
                values = row._asdict()
                for name in ("open_ts", "close_ts"):
                    values[name] = utc(values[name])
                panes[symbol, utc(row.pane_start)] = Pane(row.last_batch_id, Partial.of(values))
        return panes

    # --- candles ---

    def load_parts(self, run_id: uuid.UUID, spans: Iterable[tuple[str, str, datetime, datetime]]
                   ) -> dict[PartKey, StoredPart]:
        """(level, symbol, start) -> stored part, for the (level, symbol, start, end) spans."""
        args = [(run_id, symbol, level, part_bucket, lo, hi)
                for level, symbol, start, end in spans
                for part_bucket, lo, hi in bucket_slices(level, start, end)]
        results = execute_concurrent_with_args(
            self.session, self._select_parts, args, concurrency=CONCURRENCY,
            raise_on_first_error=True)
        parts = {}
        for (_, symbol, level, *_), (_ok, rows) in zip(args, results, strict=True):
            for row in rows:
                parts[level, symbol, utc(row.window_start)] = stored_part(row._asdict())
        return parts

    def load_symbols(self, symbols: Iterable[str]) -> dict[str, SymbolState]:
        symbols = list(symbols)
        results = execute_concurrent_with_args(
            self.session, self._select_symbol, [(s,) for s in symbols],
            concurrency=CONCURRENCY, raise_on_first_error=True)
        states = {}
        for symbol, (_ok, rows) in zip(symbols, results, strict=True):
            for row in rows:
                states[symbol] = SymbolState(
                    utc(row.first_trade_ts),
                    (utc(row.last_trade_ts), row.last_kafka_partition, row.last_kafka_offset),
                    row.last_price)
        return states

    def load_trades(self, topic: str, symbol: str, start: datetime, end: datetime,
                    next_offsets: Mapping[int, int]
                    ) -> list[tuple[OrderKey, float, float]]:
        """(order key, price, volume) of the stored trades of one symbol in [start, end)
        read from `topic` below next_offsets (a partition absent there: none)."""
        if self._select_trades is None:
            self._select_trades = self.session.prepare(
                "SELECT trade_ts, kafka_partition, kafka_offset, price, volume, kafka_topic"
                f" FROM {self._keyspace}.{TRADES.name} WHERE symbol = ? AND trade_date = ?"
                " AND trade_ts >= ? AND trade_ts < ?")
        result = []
        for lo, hi in day_slices(start, end):
            rows = self.session.execute(self._select_trades, (symbol, lo.date(), lo, hi))
            for row in rows:
                if (row.kafka_topic == topic
                        and row.kafka_offset < next_offsets.get(row.kafka_partition, -1)):
                    result.append(((utc(row.trade_ts), row.kafka_partition, row.kafka_offset),
                                   row.price, row.volume))
        return result

    def save_merge(self, run_id: uuid.UUID, panes: Mapping[tuple[str, datetime], Pane],
                   minutes: Iterable[Mapping[str, object]],
                   moving: Iterable[Mapping[str, object]],
                   candles: CandleWrites | None = None) -> None:
        """A micro-batch's folded panes and its rewritten windows, all in flight at once.

        Any subset may be written when the job dies part-way; the replayed batch then
        folds only the panes not marked with its id and rewrites every window with the
        same values.
        """
        pane_args = [PANES.row({"run_id": run_id, "symbol": symbol, "pane_date": start.date(),
                                "pane_start": start, "last_batch_id": pane.last_batch_id,
                                **{name: getattr(pane.partial, name)
                                   for name in PANE_VALUES}})
                     for (symbol, start), pane in panes.items()]
        batches = [
            *partition_batches(self._insert_pane, pane_args),
            *partition_batches(self._insert_minute, [MINUTE_TRADES.row(r) for r in minutes]),
            *partition_batches(self._insert_moving, [MOVING_MEANS.row(r) for r in moving]),
            *(self._candle_batches(run_id, candles) if candles is not None else ()),
        ]
        if batches:
            execute_concurrent(self.session, [(batch, None) for batch in batches],
                               concurrency=CONCURRENCY, raise_on_first_error=True)

    def _candle_batches(self, run_id: uuid.UUID, writes: CandleWrites) -> list[BatchStatement]:
        parts = [(*CANDLE_PARTS.row({
            "run_id": run_id, "symbol": symbol, "resolution": level,
            "bucket": bucket(level, start), "window_start": start,
            "last_batch_id": stored.last_batch_id, **part_values(stored.part)}), ttl_seconds(level))
            for (level, symbol, start), stored in writes.parts.items()]
        candles = [(*CANDLES.row(row), ttl_seconds(row["resolution"])) for row in writes.candles]
        return [
            *partition_batches(self._insert_part, parts),
            *partition_batches(self._insert_candle, candles),
            *partition_batches(self._insert_ticker, [TICKER_24H.row(r) for r in writes.tickers]),
            *partition_batches(self._insert_symbol, [
                SYMBOLS.row({"symbol": symbol, **state.values()})
                for symbol, state in writes.symbols.items()]),
        ]


def partition_batches(statement: PreparedStatement, args: Iterable[tuple]
                      ) -> list[BatchStatement]:
    """Unlogged batches of the statement, each holding rows of one partition only.

    A single-partition batch is applied as one mutation, atomically and without the
    batch log; the upserts stay idempotent, so a replayed batch writes the same rows.
    """
    batches = []
    for rows in group_by_partition(statement.routing_key_indexes, args, ROWS_PER_BATCH):
        batch = BatchStatement(batch_type=BatchType.UNLOGGED)
        for row in rows:
            batch.add(statement, row)
        batches.append(batch)
    return batches


def group_by_partition(key_indexes: Sequence[int] | None, args: Iterable[tuple],
                       size: int) -> list[list[tuple]]:
    """Rows in groups of at most `size` that share the values at key_indexes, in order.

    Without key indexes (no partition key metadata) every row is a group of its own.
    """
    by_partition: dict[tuple, list[tuple]] = {}
    for n, row in enumerate(args):
        key = tuple(row[i] for i in key_indexes) if key_indexes else (n,)
        by_partition.setdefault(key, []).append(row)
    return [rows[start:start + size] for rows in by_partition.values()
            for start in range(0, len(rows), size)]
