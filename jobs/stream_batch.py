"""One micro-batch of the stream job, from Kafka records to every table.

The batch is read from Kafka and decoded once, by the query itself (its plan holds
the decode, see stream_processor.start_query), and kept in memory while it is used:
1. valid trades -> `trades` (Spark Cassandra Connector), counting records and rejects
   on the way (an Observation, no extra pass);
2. rejected records, if there are any -> `rejected_records`;
3. valid trades -> one partial aggregate per (symbol, pane), collected to the driver
   (a few rows per symbol); a Spark job of its own, submitted from another thread so
   that it runs beside the writes of 1. and 2. instead of after them;
4. in the driver: read the stored panes of every window a partial touches (those the
   driver has not read or written since it started: jobs.panes.KnownPanes), fold the
   partials in, write the panes, merge and write the touched minute and moving-mean
   windows (jobs.panes has the logic, jobs.stream_store the I/O).

Every write is an idempotent upsert, and a pane remembers the last batch folded into
it, so a batch replayed after a crash (same id, same offsets) changes nothing twice.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping
from concurrent import futures
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cache
from typing import Any

from pyspark.sql import Column, DataFrame, Observation
from pyspark.sql import functions as F

from contract.exits import UsageError
from jobs.candle_batch import CandleFolder
from jobs.candle_levels import Levels, part_of_row, second_parts
from jobs.candles import CandlePart
from jobs.kafka_lag import TopicEnds, end_offsets_of, records_behind, time_behind_ms
from jobs.panes import (
    MINUTE,
    KnownPanes,
    Partial,
    WindowShape,
    floor_time,
    fold_batch,
    merge,
    merge_windows,
    minute_rows,
    moving_rows,
    pane_length,
    spans_to_read,
    whole_seconds,
    windows_touched,
)
from jobs.progress import QueryProgress
from jobs.settings import WindowSpec
from jobs.sinks import write_table
from jobs.spark_internals import batch_query_id, observed_values
from jobs.stream_store import BatchReport, RunSettings, StreamStore
from jobs.tables import PANE_VALUES, REJECTED_RECORDS, TRADES
from jobs.transforms import (
    TradeBounds,
    Transform,
    decode_trades,
    rejected_records,
    valid_trades,
)

log = logging.getLogger("jobs.stream_batch")

MINUTE_SHAPE = WindowShape(MINUTE, MINUTE)


class RunSettingsError(UsageError):
    """A checkpoint's run was started with other window settings than these: a restart
    with the same settings fails the same way, so the job exits with a usage code."""


@dataclass(frozen=True)
class BatchPlan:
    job: str
    keyspace: str
    topic: str
    schema_json: str = field(repr=False)
    windows: WindowSpec = field(default_factory=WindowSpec)
    bounds: TradeBounds = field(default_factory=TradeBounds)
    # A first start reads the topic from its earliest offsets (startingOffsets).
    from_earliest: bool = True

    @property
    def moving_shape(self) -> WindowShape:
        return WindowShape(self.windows.moving_length, self.windows.moving_slide)

    @property
    def pane(self) -> timedelta:
        return pane_length(self.windows.moving_length, self.windows.moving_slide)

    @property
    def levels(self) -> Levels:
        return Levels(self.windows.candle_resolutions)

    def run_settings(self) -> RunSettings:
        return RunSettings(self.topic, whole_seconds(self.windows.moving_length),
                           whole_seconds(self.windows.moving_slide), whole_seconds(self.pane),
                           ",".join(self.windows.candle_resolutions))


def utc_millis(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, tz=timezone.utc)


def now() -> datetime:
    return datetime.now(timezone.utc)


def since(ingest_ms: int | None, moment: datetime) -> float | None:
    """Milliseconds from an ingest time (epoch ms) to a moment; None without trades."""
    return None if ingest_ms is None else moment.timestamp() * 1000 - ingest_ms


TIME_COLUMNS = ("second_start", "open_ts", "close_ts")


def batch_seconds() -> Transform:
    """Valid trades -> their parts per symbol and second as the driver collects them:
    the time columns as epoch milliseconds, so the driver's time zone never gets a say."""
    aggregate = second_parts()

    @cache
    def columns() -> tuple[Column, ...]:
        return tuple(F.unix_millis(c).alias(c) if c in TIME_COLUMNS else F.col(c)
                     for c in ["symbol", "second_start", *PANE_VALUES, "return_sum",
                               "return_m2"])

    def apply(trades: DataFrame) -> DataFrame:
        # The trades are cached: one task aggregates them without a shuffle, less than
        # half the time of the two-stage plan (docs/benchmarks.md).
        return trades.coalesce(1).transform(aggregate).select(*columns())

    return apply


@dataclass(frozen=True)
class BatchParts:
    """A batch's trades summarised: per symbol, a partial per pane and a part per second."""

    panes: dict[str, dict[datetime, Partial]]
    seconds: dict[str, dict[datetime, CandlePart]]


def collect_parts(trades: DataFrame, transform: Transform, pane: timedelta) -> BatchParts:
    rows = trades.transform(transform).collect()
    seconds: dict[str, dict[datetime, CandlePart]] = defaultdict(dict)
    in_panes: dict[str, dict[datetime, list[Partial]]] = defaultdict(lambda: defaultdict(list))
    for row in sorted(rows, key=lambda r: (r["symbol"], r["second_start"])):
        values = row.asDict()
        for name in TIME_COLUMNS:
            values[name] = utc_millis(values[name])
        symbol, second = values["symbol"], values["second_start"]
        seconds[symbol][second] = part_of_row(values)
        in_panes[symbol][floor_time(second, pane)].append(Partial.of(values))
    panes = {symbol: {start: merge(parts) for start, parts in by_pane.items()}
             for symbol, by_pane in in_panes.items()}
    return BatchParts(panes, dict(seconds))


@cache
def batch_metrics(partitions: tuple[int, ...]) -> tuple[Column, ...]:
    """Counts, ingest-time percentiles, newest Kafka time and the last offset in each
    partition of a decoded batch, observed in the same pass that writes its trades.

    Cached per partition list: the columns take many calls into the JVM to build.
    """
    valid_ingest = F.when(F.col("reason").isNull(), F.unix_millis("trade.ingest_ts"))
    return (
        F.count(F.lit(1)).alias("records"),
        F.count("reason").alias("rejected"),
        # The oldest (1st percentile) and median ingest times of the trades; as two
        # scalars, since an observed array reaches Python as a Java object.
        F.percentile_approx(valid_ingest, 0.01).alias("oldest_ingest_ms"),
        F.percentile_approx(valid_ingest, 0.5).alias("median_ingest_ms"),
        F.max(F.unix_millis("kafka_ts")).alias("newest_kafka_ms"),
        *(F.max(F.when(F.col("kafka_partition") == p, F.col("kafka_offset")))
          .alias(f"last_offset_{p}") for p in partitions),
    )


class BatchProcessor:
    """The foreachBatch function of the stream job, over records decoded by `decode`."""

    def __init__(self, plan: BatchPlan, store: StreamStore,
                 report: Callable[[BatchReport], None], topic_ends: TopicEnds | None = None
                 ) -> None:
        self.plan = plan
        self.store = store
        self.report = report
        self.topic_ends = topic_ends
        self._known_runs: set[uuid.UUID] = set()
        # partition -> the next offset the job reads, as far as its batches have shown.
        self._next_offsets: dict[int, int] = {}
        self._partitions: list[int] = []
        # The query decodes the records (stream_processor.start_query); foreachBatch
        # then gets them decoded.
        self.decode = decode_trades(plan.schema_json, plan.bounds)
        self._seconds = batch_seconds()
        self._candles = CandleFolder(plan.levels, store, plan.topic, now)
        # What the driver knows of the run's stored panes: windows up to two of the
        # longest window's lengths either side of the newest pane need no reads.
        self._panes = KnownPanes(plan.pane, 2 * max(MINUTE, plan.windows.moving_length))
        self._panes_run: uuid.UUID | None = None
        # The query's last progress, once stream_processor attaches the query.
        self.progress = QueryProgress()
        # The error that ended the last call, if any (see __call__).
        self.failure: BaseException | None = None
        # One thread for the batch's partials job (see _process).
        self._beside = futures.ThreadPoolExecutor(1, thread_name_prefix="batch-partials")

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        try:
            self._process(batch, batch_id)
        except BaseException as err:
            # Spark hands the query a Java exception that only quotes this one's text:
            # the job reads the error itself here to choose its exit code.
            self.failure = err
            raise

    def _process(self, batch: DataFrame, batch_id: int) -> None:
        started_at = now()
        run_id = self._run_id(batch)
        plan = self.plan
        # cache(), not persist(): the same storage level, without the py4j lookups of
        # persist's StorageLevel argument.
        decoded = batch.cache()
        partials = None
        try:
            stats = Observation(f"batch-{batch_id}")
            observed = decoded.observe(stats, *self._batch_metrics())
            # Both jobs read the cached batch (each block is computed once, the second
            # reader waits for it); overlapped, a batch's fixed costs of scheduling and
            # collecting are paid once instead of twice in a row.
            partials = self._beside.submit(collect_parts, decoded.transform(valid_trades),
                                           self._seconds, plan.pane)
            write_table(observed.transform(valid_trades), plan.keyspace, TRADES.name)
            trades_written_at = now()
            counts = observed_values(stats)
            if counts["rejected"]:
                write_table(decoded.transform(rejected_records()), plan.keyspace,
                            REJECTED_RECORDS.name)
            parts = partials.result()
        finally:
            if partials is not None:  # never unpersist under a running job
                futures.wait([partials])
            decoded.unpersist()
        self.observe_progress(self.progress.last())
        panes, minutes, moving, candles = self._merge(run_id, batch_id, parts)
        lag_records, lag_ms = self._lag(counts, batch_id)
        finished_at = now()
        oldest, median = counts["oldest_ingest_ms"], counts["median_ingest_ms"]
        report = BatchReport(
            batch_id=batch_id, records=counts["records"],
            trades=counts["records"] - counts["rejected"], rejected=counts["rejected"],
            panes=panes, minute_rows=minutes, moving_rows=moving, candle_rows=candles,
            started_at=started_at,
            trades_written_at=trades_written_at, finished_at=finished_at,
            trade_latency_p50_ms=since(median, trades_written_at),
            trade_latency_p99_ms=since(oldest, trades_written_at),
            window_latency_p99_ms=since(oldest, finished_at),
            kafka_lag_records=lag_records, kafka_lag_ms=lag_ms)
        self.store.save_progress(self.plan.job, run_id, report)
        self.report(report)

    def close(self) -> None:
        """End the partials' thread, once the query that calls this has stopped."""
        self._beside.shutdown(wait=True)

    def observe_progress(self, progress: Mapping[str, Any] | None) -> None:
        """A finished batch's progress (StreamingQuery.lastProgress): where the query
        stands in every partition, including those the batch had no records from."""
        for source in (progress or {}).get("sources") or ():
            for p, offset in end_offsets_of(source.get("endOffset"), self.plan.topic).items():
                self._advance(p, offset)

    def _advance(self, partition: int, next_offset: int) -> None:
        # A progress can be older than what this batch observed: positions only ever
        # move forward.
        self._next_offsets[partition] = max(next_offset,
                                            self._next_offsets.get(partition, next_offset))

    def _batch_metrics(self) -> tuple[Column, ...]:
        """What a batch observes while it writes `trades`, for the partitions known now."""
        if not self._partitions and self.topic_ends is not None:
            self._partitions = sorted(self.topic_ends.end_offsets() or {})
        return batch_metrics(tuple(self._partitions))

    def _lag(self, counts: dict, batch_id: int) -> tuple[int | None, float | None]:
        """Records and milliseconds the job is behind the topic after this batch.

        A partition the batch had no records from is placed by the last progress Spark
        reported; on a fresh start (batch 0, reading from the earliest offsets) by its
        earliest offset. Only on the first batch after a restart can such a partition
        still be unplaced, and it then counts as caught up.
        """
        if batch_id == 0 and self.plan.from_earliest and self.topic_ends is not None:
            for p, offset in (self.topic_ends.beginning_offsets() or {}).items():
                self._advance(p, offset)
        for p in self._partitions:
            last = counts.get(f"last_offset_{p}")
            if last is not None:
                self._advance(p, last + 1)
        ends = self.topic_ends.end_offsets() if self.topic_ends is not None else None
        if ends is None:
            return None, None
        self._partitions = sorted(ends)
        behind = records_behind(ends, self._next_offsets)
        newest = counts["newest_kafka_ms"]
        return behind, time_behind_ms(behind, None if newest is None else utc_millis(newest),
                                      now())

    def _run_id(self, batch: DataFrame) -> uuid.UUID:
        """The streaming query's id: the same for every restart from one checkpoint."""
        run_id = uuid.UUID(batch_query_id(batch))
        if run_id not in self._known_runs:
            wanted = self.plan.run_settings()
            stored = self.store.register_run(run_id, wanted)
            if stored != wanted:
                raise RunSettingsError(
                    f"the checkpoint's run {run_id} was started with {stored}, not {wanted};"
                    " windows of other settings need a new checkpoint root")
            self._known_runs.add(run_id)
        return run_id

    def _end_offsets(self, batch_id: int) -> dict[int, int]:
        """partition -> the offset after this batch's last record, from the offset log."""
        logged = self.progress.batch_end_offsets(batch_id) or []
        offsets: dict[int, int] = {}
        for source in logged:
            offsets.update(end_offsets_of(source, self.plan.topic))
        return offsets

    def _merge(self, run_id: uuid.UUID, batch_id: int, parts: BatchParts
               ) -> tuple[int, int, int, int]:
        """Fold the batch into its panes and candle parts, then rewrite every window,
        candle, ticker and symbol they are in."""
        batch_partials = parts.panes
        shapes = (MINUTE_SHAPE, self.plan.moving_shape)
        spans = {symbol: spans_to_read(by_pane, shapes)
                 for symbol, by_pane in batch_partials.items()}
        known = self._known_panes(run_id)
        unknown = known.unknown((symbol, start, end) for symbol, symbol_spans in spans.items()
                                for start, end in symbol_spans)
        if unknown:
            known.learn(unknown, self.store.load_panes(run_id, unknown))
        moving_shape = self.plan.moving_shape
        changed, minutes, moving = {}, [], []
        for symbol, by_pane in batch_partials.items():
            mine = known.stored(symbol, spans[symbol])
            folded = fold_batch(mine, by_pane, batch_id)
            changed.update({(symbol, start): pane for start, pane in folded.items()
                            if mine.get(start) is not pane})
            current = {start: pane.partial for start, pane in {**mine, **folded}.items()}
            minutes += minute_rows(symbol, merge_windows(
                current, windows_touched(by_pane, MINUTE_SHAPE), MINUTE_SHAPE))
            moving += moving_rows(symbol, moving_shape, merge_windows(
                current, windows_touched(by_pane, moving_shape), moving_shape))
        try:
            candles = self._candles.fold(run_id, batch_id, parts.seconds,
                                         lambda: self._end_offsets(batch_id))
            self.store.save_merge(run_id, changed, minutes, moving, candles)
        except BaseException:
            # Some of the writes may have landed: what the driver knows is no longer
            # sure. (The job stops on a failed batch; this keeps the class honest.)
            known.clear()
            self._candles.clear()
            raise
        known.remember(changed)
        self._candles.remember(candles, parts.seconds)
        if batch_partials:
            known.forget_far_from(max(max(by_pane) for by_pane in batch_partials.values()))
        return len(changed), len(minutes), len(moving), len(candles.candles)

    def _known_panes(self, run_id: uuid.UUID) -> KnownPanes:
        if self._panes_run != run_id:
            self._panes_run = run_id
            self._panes.clear()
        return self._panes
