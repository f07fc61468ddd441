"""Mergeable partial aggregates ("panes") behind the minute and moving-mean windows.

Every window the job writes is a union of fixed, epoch-aligned panes whose length
divides both the minute and the moving window's length and slide. A micro-batch
aggregates its own trades per (symbol, pane) into one partial; a window is then the
merge of the partials of its panes, whatever batch they came from. A trade that
arrives late, however late, only adds a partial to an old pane, and the windows
containing that pane are merged again: there is no watermark and no Spark state.

Every output merges exactly: counts and sums add, low/high are min/max, and open and
close are the prices of the least and greatest trade in the total order
(trade_ts, kafka_partition, kafka_offset).

Nothing here does I/O: `partials` is a DataFrame -> DataFrame transform, the merges
are plain functions over `Partial` values.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cache

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from jobs.tables import PANE_VALUES
from jobs.transforms import TRADE_ORDER, Transform, floor_timestamp, utc_date

MINUTE = timedelta(minutes=1)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

# A pane's first and last trade, each stored as these four columns (open_ts, ...).
ENDS = ("open", "close")
END_FIELDS = (("trade_ts", "ts"), ("kafka_partition", "partition"),
              ("kafka_offset", "offset"), ("price", "price"))


def whole_seconds(length: timedelta) -> int:
    seconds = length.total_seconds()
    if seconds <= 0 or seconds != int(seconds):
        raise ValueError(f"window lengths and slides must be whole seconds, not {length}")
    return int(seconds)


def pane_length(moving_length: timedelta, moving_slide: timedelta) -> timedelta:
    """The longest pane that tiles the minute windows and every sliding window."""
    seconds = math.gcd(60, whole_seconds(moving_length), whole_seconds(moving_slide))
    return timedelta(seconds=seconds)


def floor_time(ts: datetime, step: timedelta) -> datetime:
    return EPOCH + ((ts - EPOCH) // step) * step


# --- Spark: one partial per (symbol, pane) of a batch's trades ----------------------------


def partial_aggregates() -> tuple[Column, ...]:
    """The aggregates of a partial over grouped trades, named as its columns; the first
    and last trade as the structs `open` and `close` (end_columns() spells them out)."""
    # Structs compare field by field: min/max is the first/last trade in the total
    # order, and its price rides along.
    trade = F.struct(*TRADE_ORDER, "price")
    price = F.col("price")
    return (
        F.count(F.lit(1)).alias("trade_count"),
        F.sum(price).alias("price_sum"),
        F.sum("volume").alias("volume_sum"),
        F.sum(price * F.col("volume")).alias("notional_sum"),
        F.sum(F.log(price)).alias("log_price_sum"),
        F.sum(1 / price).alias("inverse_price_sum"),
        F.min(price).alias("low_price"),
        F.max(price).alias("high_price"),
        F.min(trade).alias("open"),
        F.max(trade).alias("close"),
    )


def end_columns() -> dict[str, Column]:
    """open_ts, open_partition, ... close_price: the fields of the aggregated ends."""
    return {f"{end}_{name}": F.col(f"{end}.{field}")
            for end in ENDS for field, name in END_FIELDS}


def partials(pane: timedelta) -> Transform:
    """Rows of `trades` -> one partial aggregate per (symbol, pane_start)."""
    pane_ms = int(pane.total_seconds() * 1000)

    # Built once per transform, on first use (see jobs.transforms._trade_columns).
    @cache
    def columns() -> tuple[Column, tuple[Column, ...], tuple[Column, ...]]:
        pane_start = floor_timestamp(F.col("trade_ts"), pane_ms)
        ends = end_columns()
        # The pane's columns in the table's order; the aggregates are named alike.
        output = (
            F.col("symbol"),
            utc_date(F.col("pane_start")).alias("pane_date"),
            F.col("pane_start"),
            *(ends[name].alias(name) if name in ends else F.col(name)
              for name in PANE_VALUES),
        )
        return pane_start.alias("pane_start"), partial_aggregates(), output

    def apply(trades: DataFrame) -> DataFrame:
        pane_start, aggregates, output = columns()
        return trades.groupBy(F.col("symbol"), pane_start).agg(*aggregates).select(*output)

    return apply


# --- Python: merging partials into window rows -------------------------------------------


@dataclass(frozen=True)
class Partial:
    """The aggregate of some trades of one symbol; `merge` combines any number of them."""

    trade_count: int
    price_sum: float
    volume_sum: float
    notional_sum: float
    log_price_sum: float
    inverse_price_sum: float
    low_price: float
    high_price: float
    open_ts: datetime
    open_partition: int
    open_offset: int
    open_price: float
    close_ts: datetime
    close_partition: int
    close_offset: int
    close_price: float

    @classmethod
    def of(cls, row: Mapping[str, object]) -> Partial:
        return cls(**{name: row[name] for name in PANE_VALUES})

    def first_key(self) -> tuple:
        return (self.open_ts, self.open_partition, self.open_offset)

    def last_key(self) -> tuple:
        return (self.close_ts, self.close_partition, self.close_offset)


def merge(parts: Iterable[Partial]) -> Partial:
    """One partial for the union of the trades behind `parts` (disjoint, at least one).

    Callers pass the parts in a fixed order (pane, then batch), so a replay adds the
    same floats in the same order and writes the same values.
    """
    parts = list(parts)
    if not parts:
        raise ValueError("merge needs at least one partial")
    first = min(parts, key=Partial.first_key)
    last = max(parts, key=Partial.last_key)
    return Partial(
        trade_count=sum(p.trade_count for p in parts),
        price_sum=math.fsum(p.price_sum for p in parts),
        volume_sum=math.fsum(p.volume_sum for p in parts),
        notional_sum=math.fsum(p.notional_sum for p in parts),
        log_price_sum=math.fsum(p.log_price_sum for p in parts),
        inverse_price_sum=math.fsum(p.inverse_price_sum for p in parts),
        low_price=min(p.low_price for p in parts),
        high_price=max(p.high_price for p in parts),
        open_ts=first.open_ts, open_partition=first.open_partition,
        open_offset=first.open_offset, open_price=first.open_price,
        close_ts=last.close_ts, close_partition=last.close_partition,
        close_offset=last.close_offset, close_price=last.close_price,
    )


def vwap_or_average(notional_sum: float, volume_sum: float, avg_price: float) -> float:
    """sum(p*v)/sum(v), or the average price when no volume traded (never null)."""
    return notional_sum / volume_sum if volume_sum > 0 else avg_price


def minute_values(p: Partial) -> dict[str, object]:
    """The value columns of a `minute_trades` row (VWAP falls back to the average)."""
    avg = p.price_sum / p.trade_count
    return {
        "trade_count": p.trade_count,
        "avg_price": avg,
        "open_price": p.open_price,
        "high_price": p.high_price,
        "low_price": p.low_price,
        "close_price": p.close_price,
        "total_volume": p.volume_sum,
        "vwap": vwap_or_average(p.notional_sum, p.volume_sum, avg),
    }


def moving_values(p: Partial) -> dict[str, object]:
    """The value columns of a `moving_means` row."""
    return {
        "trade_count": p.trade_count,
        "arithmetic_mean": p.price_sum / p.trade_count,
        "geometric_mean": math.exp(p.log_price_sum / p.trade_count),
        "harmonic_mean": p.trade_count / p.inverse_price_sum,
    }


@dataclass(frozen=True)
class WindowShape:
    """Tumbling (length == slide) or sliding windows aligned on the epoch."""

    length: timedelta
    slide: timedelta

    def containing(self, pane_start: datetime) -> list[datetime]:
        """Start times of the windows that contain the pane starting at pane_start."""
        last = floor_time(pane_start, self.slide)
        count = -(-self.length // self.slide)  # ceil: windows overlapping one instant
        starts = [last - n * self.slide for n in range(count)]
        return sorted(s for s in starts if s + self.length > pane_start)


def windows_touched(pane_starts: Iterable[datetime], shape: WindowShape) -> list[datetime]:
    """Start times of every window that contains at least one of the panes, ascending."""
    return sorted({start for pane in pane_starts for start in shape.containing(pane)})


def merge_windows(
    panes: Mapping[datetime, Partial], window_starts: Iterable[datetime], shape: WindowShape
) -> dict[datetime, Partial]:
    """window start -> merge of the panes inside it (windows without any are left out).

    `panes` must hold every pane inside these windows that has trades.
    """
    result = {}
    ordered = sorted(panes)
    for start in window_starts:
        inside = ordered[bisect_left(ordered, start):bisect_left(ordered, start + shape.length)]
        if inside:
            result[start] = merge(panes[pane] for pane in inside)
    return result


def minute_rows(symbol: str, windows: Mapping[datetime, Partial]) -> list[dict[str, object]]:
    """`minute_trades` rows (every column) of merged minute windows."""
    return [{"symbol": symbol, "window_start": start, "window_end": start + MINUTE,
             **minute_values(p)} for start, p in sorted(windows.items())]


def moving_rows(symbol: str, shape: WindowShape,
                windows: Mapping[datetime, Partial]) -> list[dict[str, object]]:
    """`moving_means` rows (every column) of merged sliding windows."""
    return [{"symbol": symbol, "window_seconds": whole_seconds(shape.length),
             "slide_seconds": whole_seconds(shape.slide), "window_end": start + shape.length,
             "window_start": start, **moving_values(p)} for start, p in sorted(windows.items())]


# --- folding a micro-batch into the stored panes ----------------------------------------


@dataclass(frozen=True)
class Pane:
    """A stored pane: the merge of every batch of a run up to and including last_batch_id."""

    last_batch_id: int
    partial: Partial


def fold_batch(
    stored: Mapping[datetime, Pane], batch: Mapping[datetime, Partial], batch_id: int
) -> dict[datetime, Pane]:
    """The panes to write for a batch's partials, keyed by pane start.

    Batches of a run run one after the other, so a pane whose last_batch_id is this
    batch's already holds it: the batch is a replay after a crash, and the pane stays
    as it is (it is returned unchanged, which makes rewriting it harmless).
    """
    result = {}
    for start, partial in batch.items():
        old = stored.get(start)
        if old is None:
            result[start] = Pane(batch_id, partial)
        elif old.last_batch_id >= batch_id:
            result[start] = old
        else:
            result[start] = Pane(batch_id, merge([old.partial, partial]))
    return result


def spans_to_read(
    touched: Iterable[datetime], shapes: Iterable[WindowShape]
) -> list[tuple[datetime, datetime]]:
    """Disjoint [start, end) ranges holding every pane of every window a touched pane is in."""
    shapes = list(shapes)
    spans = sorted(
        (start, start + shape.length)
        for pane in touched for shape in shapes for start in shape.containing(pane)
    )
    merged: list[tuple[datetime, datetime]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


class KnownPanes:
    """The stored panes of one run that the driver has read or written, and the pane
    slots it knows to be empty, near the newest pane a batch touched.

    Only the job's own batches write a run's panes, one batch at a time, so what the
    driver read or wrote stays true for as long as it runs: a batch reads from
    Cassandra only the spans it knows nothing about (at a steady rate, one new slot
    per symbol per pane length instead of every window's span every batch). A
    restarted driver starts knowing nothing and reads what it needs.
    """

    def __init__(self, pane: timedelta, keep: timedelta, max_slots: int = 100_000) -> None:
        self.pane = pane
        # Slots further than this from the newest pane a batch touched are forgotten.
        self.keep = keep
        # Beyond this many slots (tens of MiB; thousands of symbols trading at once)
        # everything is forgotten: reading is slower, never wrong.
        self.max_slots = max_slots
        self._slots: dict[str, dict[datetime, Pane | None]] = {}

    def slots(self, start: datetime, end: datetime) -> Iterable[datetime]:
        slot = floor_time(start, self.pane)
        while slot < end:
            yield slot
            slot += self.pane

    def unknown(self, spans: Iterable[tuple[str, datetime, datetime]]
                ) -> list[tuple[str, datetime, datetime]]:
        """The parts of the (symbol, start, end) spans made of slots not known yet."""
        result: list[tuple[str, datetime, datetime]] = []
        for symbol, start, end in spans:
            known = self._slots.get(symbol, {})
            for slot in self.slots(start, end):
                if slot in known:
                    continue
                if result and result[-1][0] == symbol and result[-1][2] == slot:
                    result[-1] = (symbol, result[-1][1], slot + self.pane)
                else:
                    result.append((symbol, slot, slot + self.pane))
        return result

    def learn(self, spans: Iterable[tuple[str, datetime, datetime]],
              loaded: Mapping[tuple[str, datetime], Pane]) -> None:
        """Record what was read for the spans: every slot in them not loaded is empty."""
        for symbol, start, end in spans:
            known = self._slots.setdefault(symbol, {})
            for slot in self.slots(start, end):
                known[slot] = loaded.get((symbol, slot))

    def remember(self, written: Mapping[tuple[str, datetime], Pane]) -> None:
        for (symbol, start), pane in written.items():
            self._slots.setdefault(symbol, {})[start] = pane

    def stored(self, symbol: str, spans: Iterable[tuple[datetime, datetime]]
               ) -> dict[datetime, Pane]:
        """pane start -> stored pane, for every known non-empty slot in the spans."""
        known = self._slots.get(symbol, {})
        return {slot: pane for start, end in spans for slot in self.slots(start, end)
                if (pane := known.get(slot)) is not None}

    def forget_far_from(self, newest: datetime,
                        also: Iterable[tuple[datetime, datetime]] = ()) -> None:
        """Bound the memory: keep only the slots within `keep` of `newest` (and those in
        the `also` ranges), and none at all if there are still more than max_slots."""
        also = list(also)

        def kept(slot: datetime) -> bool:
            return (abs(slot - newest) <= self.keep
                    or any(start <= slot < end for start, end in also))

        for symbol in list(self._slots):
            known = self._slots[symbol]
            for slot in [s for s in known if not kept(s)]:
                del known[slot]
            if not known:
                del self._slots[symbol]
        if len(self) > self.max_slots:
            self.clear()

    def clear(self) -> None:
        self._slots.clear()

    def __len__(self) -> int:
        return sum(len(known) for known in self._slots.values())
