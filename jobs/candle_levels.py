"""The candle hierarchy: which resolutions the job keeps parts of, how each is built
from a finer one, how long each lives, and how a batch folds into a stored part.

Spark summarises a micro-batch into one part per symbol and second (`second_parts`).
Every coarser part of the batch is the in-order merge of the batch's parts one level
down (1m from 1s, 5m from 1m, ...), so the driver's work per batch is a handful of
merges per symbol and level, never a re-read of the trades. A stored part and the
batch's part of the same window merge in order when the batch's trades all come
after (or all before) the stored ones: the common case. When they interleave (a
late trade between two stored ones) the window is rebuilt: from its stored children
one level down, or, for a second (or a window whose children may have expired), from
the stored trades themselves.

Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from jobs.candles import (
    RESOLUTIONS,
    CandlePart,
    Interleaved,
    merge_in_order,
    window_start,
)
from jobs.panes import END_FIELDS, ENDS, end_columns, partial_aggregates
from jobs.transforms import TRADE_ORDER, Transform, floor_timestamp

# The base level Spark computes, and the levels the 24-hour ticker merges.
BASE = "1s"
TICKER_LEVELS = ("1m", "1h")
DAY = timedelta(days=1)


def retention(resolution: str) -> timedelta:
    """How long a candle (and its part) lives: its table TTL, by resolution.

    A 1s candle is for the live view (7 days); under a minute for a month; under an
    hour for a year; an hour and longer for five years.
    """
    length = RESOLUTIONS[resolution]
    if length < timedelta(seconds=5):
        return 7 * DAY
    if length < timedelta(minutes=1):
        return 30 * DAY
    return 365 * DAY if length < timedelta(hours=1) else 5 * 365 * DAY


@cache  # asked once per candle and part a batch writes
def ttl_seconds(resolution: str) -> int:
    """retention() as the TTL a write of that resolution carries."""
    return int(retention(resolution).total_seconds())


@dataclass(frozen=True)
class Levels:
    """The resolutions written to `candles` and every level kept as parts."""

    written: tuple[str, ...]

    @property
    def kept(self) -> tuple[str, ...]:
        names = {BASE, *TICKER_LEVELS, *self.written}
        return tuple(sorted(names, key=RESOLUTIONS.__getitem__))

    def parent(self, level: str) -> str | None:
        """The coarsest kept level below `level` whose windows tile it."""
        length = RESOLUTIONS[level]
        below = [name for name in self.kept
                 if RESOLUTIONS[name] < length and length % RESOLUTIONS[name] == timedelta(0)]
        return below[-1] if below else None

    def rebuilt_from_children(self, level: str, start: datetime, now: datetime) -> bool:
        """Whether an interleaved window of `level` can be rebuilt from its children: a
        level has a parent, and that parent's parts of the window are still alive (a
        part lives at least its retention from its window's start; an hour's margin)."""
        parent = self.parent(level)
        if parent is None:
            return False
        return (retention(parent) >= retention(level)
                or start + retention(parent) > now + timedelta(hours=1))


@dataclass(frozen=True)
class StoredPart:
    """A stored part of one run: every batch up to and including last_batch_id."""

    last_batch_id: int
    part: CandlePart


def fold_part(stored: StoredPart | None, batch: CandlePart, batch_id: int,
              rebuild: Callable[[], CandlePart]) -> StoredPart:
    """The part to store once the batch's part of the same window is in.

    A stored part already marked with this batch holds it (the batch is replayed
    after a crash) and stays as it is. Interleaved trades call `rebuild`, which must
    return the part of the window's trades up to and including this batch.
    """
    if stored is None:
        return StoredPart(batch_id, batch)
    if stored.last_batch_id >= batch_id:
        return stored
    try:
        return StoredPart(batch_id, merge_in_order([stored.part, batch]))
    except Interleaved:
        return StoredPart(batch_id, rebuild())


def batch_levels(seconds: Mapping[datetime, CandlePart], levels: Levels
                 ) -> dict[str, dict[datetime, CandlePart]]:
    """level -> window start -> the batch's part, from its parts per second.

    Each level merges the level below it; parts of distinct windows never interleave,
    since every trade of one comes before every trade of the next.
    """
    result: dict[str, dict[datetime, CandlePart]] = {BASE: dict(seconds)}
    for level in levels.kept[1:]:
        below = result[levels.parent(level)]
        groups: dict[datetime, list[CandlePart]] = {}
        for start, part in below.items():
            groups.setdefault(window_start(start, level), []).append(part)
        result[level] = {start: merge_in_order(parts) for start, parts in groups.items()}
    return result


def merged(parts: Iterable[CandlePart]) -> CandlePart | None:
    parts = list(parts)
    return merge_in_order(parts) if parts else None


# --- Spark: one part per (symbol, second) of a batch's trades ---------------------------

# The part's order-key columns, as the panes name their first and last trade.
PART_COLUMNS = (
    "trade_count", "price_sum", "volume_sum", "notional_sum", "log_price_sum",
    "inverse_price_sum", "low_price", "high_price",
    *(f"{end}_{name}" for end in ENDS for _, name in END_FIELDS),
    "return_sum", "return_m2",
)


def second_parts() -> Transform:
    """Rows of `trades` -> one row per (symbol, second_start): a second's part, plus
    the log and inverse price sums the moving means need (PART_COLUMNS).

    A trade's log return is from the trade before it in its second, in the total
    order: one sort of the batch by symbol, second and that order, which the windows
    and the aggregation then share. (Collecting each second's trades into an array and
    sorting it there took 30 times as long: array sorts and lambdas are interpreted.)
    The squared deviations are taken from the second's mean return, computed first,
    so they do not cancel the way a sum of squares minus a squared sum would.
    """
    # Built once per transform, on first use: like a Column, a window spec needs a
    # running SparkContext, which a transform made before the session has not.
    @cache
    def columns() -> tuple[Column, Column, Column, tuple[Column, ...], tuple[Column, ...]]:
        in_second = Window.partitionBy("symbol", "second_start")
        second = floor_timestamp(F.col("trade_ts"), 1000)
        log_price = F.log("price")
        log_return = log_price - F.lag(log_price).over(in_second.orderBy(*TRADE_ORDER))
        deviation = F.col("log_return") - F.col("mean_return")
        # The first trade of a second has no return (null, which sums skip).
        aggregates = (
            *partial_aggregates(),
            F.coalesce(F.sum("log_return"), F.lit(0.0)).alias("return_sum"),
            F.coalesce(F.sum(deviation * deviation), F.lit(0.0)).alias("return_m2"),
        )
        ends = end_columns()
        output = ("symbol", "second_start",
                  *(ends[name].alias(name) if name in ends else F.col(name)
                    for name in PART_COLUMNS))
        mean_return = F.avg("log_return").over(in_second)
        return second, log_return, mean_return, aggregates, output

    def apply(trades: DataFrame) -> DataFrame:
        second, log_return, mean_return, aggregates, output = columns()
        return (trades.withColumn("second_start", second)
                .withColumn("log_return", log_return)
                .withColumn("mean_return", mean_return)
                .groupBy("symbol", "second_start").agg(*aggregates).select(*output))

    return apply


def part_of_row(values: Mapping[str, object]) -> CandlePart:
    """The CandlePart of a `second_parts` row (its times as aware datetimes)."""
    return CandlePart(
        trade_count=values["trade_count"], price_sum=values["price_sum"],
        volume_sum=values["volume_sum"], notional_sum=values["notional_sum"],
        low_price=values["low_price"], high_price=values["high_price"],
        first_key=(values["open_ts"], values["open_partition"], values["open_offset"]),
        first_price=values["open_price"],
        last_key=(values["close_ts"], values["close_partition"], values["close_offset"]),
        last_price=values["close_price"],
        return_sum=values["return_sum"], return_m2=values["return_m2"],
    )


@dataclass(frozen=True)
class SymbolState:
    """A `symbols` row: the first trade time, and the last trade in the total order."""

    first_ts: datetime
    last_key: tuple[datetime, int, int]
    last_price: float

    @classmethod
    def of(cls, part: CandlePart) -> SymbolState:
        return cls(part.first_key[0], part.last_key, part.last_price)

    def merge(self, other: SymbolState | None) -> SymbolState:
        if other is None:
            return self
        last = self if self.last_key >= other.last_key else other
        return SymbolState(min(self.first_ts, other.first_ts), last.last_key, last.last_price)

    def values(self) -> dict[str, object]:
        ts, partition, offset = self.last_key
        return {"first_trade_ts": self.first_ts, "last_trade_ts": ts,
                "last_price": self.last_price, "last_kafka_partition": partition,
                "last_kafka_offset": offset}
