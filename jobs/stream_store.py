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
from jobs.panes import Pane, Partial
from jobs.settings import CassandraTarget
from jobs.tables import (
    MINUTE_TRADES,
    MOVING_MEANS,
    PANE_VALUES,
    PANES,
    STREAM_PROGRESS,
    STREAM_RUNS,
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

    def save_merge(self, run_id: uuid.UUID, panes: Mapping[tuple[str, datetime], Pane],
                   minutes: Iterable[Mapping[str, object]],
                   moving: Iterable[Mapping[str, object]]) -> None:
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
        ]
        if batches:
            execute_concurrent(self.session, [(batch, None) for batch in batches],
                               concurrency=CONCURRENCY, raise_on_first_error=True)


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
