"""Pane partials and their merges, against values worked out by hand."""

from __future__ import annotations

import itertools
import math
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyspark.sql import SparkSession
from pyspark.testing import assertDataFrameEqual

from jobs.panes import (
    KnownPanes,
    Pane,
    Partial,
    WindowShape,
    fold_batch,
    merge,
    merge_windows,
    minute_rows,
    moving_rows,
    moving_values,
    pane_length,
    partials,
    spans_to_read,
    windows_touched,
)
from jobs.stream_store import day_slices

MIN, SEC = timedelta(minutes=1), timedelta(seconds=1)
MOVING = WindowShape(5 * MIN, 30 * SEC)
MINUTE = WindowShape(MIN, MIN)


def utc(*args: int, millis: int = 0) -> datetime:
    return datetime(*args, tzinfo=timezone.utc).replace(microsecond=millis * 1000)


def one(ts: datetime, price: float, volume: float = 1.0, partition: int = 0,
        offset: int = 0) -> Partial:
    """The partial of a single trade, written out field by field."""
    return Partial(1, price, volume, price * volume, math.log(price), 1 / price, price, price,
                   ts, partition, offset, price, ts, partition, offset, price)


T0 = utc(2024, 3, 1, 12, 0)


def test_pane_is_the_gcd_of_minute_window_and_slide() -> None:
    assert pane_length(5 * MIN, 30 * SEC) == 30 * SEC
    assert pane_length(90 * SEC, 45 * SEC) == 15 * SEC
    assert pane_length(10 * MIN, 2 * MIN) == MIN
    assert pane_length(7 * SEC, 7 * SEC) == SEC


@pytest.mark.spark
def test_partials_per_symbol_and_pane(spark: SparkSession) -> None:
    trades = spark.createDataFrame(
        [
            # symbol, trade_ts, kafka_partition, kafka_offset, price, volume
            ("A", utc(2024, 3, 1, 12, 0, 29, millis=999), 1, 4, 2.0, 3.0),
            ("A", utc(2024, 3, 1, 12, 0, 10), 0, 9, 4.0, 1.0),
            # Same millisecond as offset 9: partition 1 comes after partition 0.
            ("A", utc(2024, 3, 1, 12, 0, 10), 1, 0, 1.0, 0.0),
            # 12:00:30 opens the next pane.
            ("A", utc(2024, 3, 1, 12, 0, 30), 0, 10, 5.0, 2.0),
            ("B", utc(2024, 3, 1, 23, 59, 45), 2, 0, 8.0, 1.0),
        ],
        "symbol string, trade_ts timestamp, kafka_partition int, kafka_offset long,"
        " price double, volume double",
    )
    columns = ("symbol string, pane_date date, pane_start timestamp, trade_count long,"
               " price_sum double, volume_sum double, notional_sum double,"
               " log_price_sum double, inverse_price_sum double, low_price double,"
               " high_price double, open_ts timestamp, open_partition int, open_offset long,"
               " open_price double, close_ts timestamp, close_partition int,"
               " close_offset long, close_price double")
    day = utc(2024, 3, 1).date()
    expected = spark.createDataFrame([
        # 4, 1, 2: sum 7; volume 1+0+3 = 4; notional 4+0+6 = 10; ln 8; 1/4+1+1/2 = 1.75
        ("A", day, utc(2024, 3, 1, 12, 0), 3, 7.0, 4.0, 10.0, math.log(8), 1.75, 1.0, 4.0,
         utc(2024, 3, 1, 12, 0, 10), 0, 9, 4.0,
         utc(2024, 3, 1, 12, 0, 29, millis=999), 1, 4, 2.0),
        ("A", day, utc(2024, 3, 1, 12, 0, 30), 1, 5.0, 2.0, 10.0, math.log(5), 0.2, 5.0, 5.0,
         utc(2024, 3, 1, 12, 0, 30), 0, 10, 5.0, utc(2024, 3, 1, 12, 0, 30), 0, 10, 5.0),
        ("B", day, utc(2024, 3, 1, 23, 59, 30), 1, 8.0, 1.0, 8.0, math.log(8), 0.125, 8.0, 8.0,
         utc(2024, 3, 1, 23, 59, 45), 2, 0, 8.0, utc(2024, 3, 1, 23, 59, 45), 2, 0, 8.0),
    ], columns)
    assertDataFrameEqual(trades.transform(partials(30 * SEC)), expected, rtol=1e-12)


def test_merge_adds_counts_and_sums_and_keeps_first_and_last_trade() -> None:
    a = one(T0 + 5 * SEC, 1.0, 2.0, partition=1, offset=3)
    b = one(T0 + 5 * SEC, 2.0, 0.0, partition=0, offset=8)  # same ms, earlier partition
    c = one(T0 + 40 * SEC, 4.0, 1.0)
    merged = merge([merge([a, c]), b])
    assert (merged.trade_count, merged.price_sum, merged.volume_sum, merged.notional_sum,
            merged.low_price, merged.high_price) == (3, 7.0, 3.0, 6.0, 1.0, 4.0)
    assert (merged.open_price, merged.open_partition, merged.open_offset) == (2.0, 0, 8)
    assert (merged.close_price, merged.close_ts) == (4.0, T0 + 40 * SEC)
    # 1, 2, 4: arithmetic 7/3, geometric (1*2*4)^(1/3) = 2, harmonic 3/(1+1/2+1/4) = 12/7
    means = moving_values(merged)
    assert means["trade_count"] == 3
    assert means["arithmetic_mean"] == pytest.approx(7 / 3, rel=1e-15)
    assert means["geometric_mean"] == pytest.approx(2.0, rel=1e-15)
    assert means["harmonic_mean"] == pytest.approx(12 / 7, rel=1e-15)
    with pytest.raises(ValueError):
        merge([])


def test_minute_rows_vwap_and_its_fallback() -> None:
    panes = {T0: merge([one(T0, 20.0, 3.0), one(T0 + SEC, 10.0, 1.0, offset=1)]),
             T0 + 30 * SEC: one(T0 + 31 * SEC, 30.0, 0.0, offset=2),
             T0 + MIN: one(T0 + MIN, 7.0, 0.0, offset=3)}
    windows = merge_windows(panes, windows_touched(panes, MINUTE), MINUTE)
    assert minute_rows("X", windows) == [
        # 20, 10, 30: avg 20; volume 4; VWAP (60 + 10 + 0) / 4 = 17.5
        {"symbol": "X", "window_start": T0, "window_end": T0 + MIN, "trade_count": 3,
         "avg_price": 20.0, "open_price": 20.0, "high_price": 30.0, "low_price": 10.0,
         "close_price": 30.0, "total_volume": 4.0, "vwap": 17.5},
        # No volume: VWAP is the average price.
        {"symbol": "X", "window_start": T0 + MIN, "window_end": T0 + 2 * MIN,
         "trade_count": 1, "avg_price": 7.0, "open_price": 7.0, "high_price": 7.0,
         "low_price": 7.0, "close_price": 7.0, "total_volume": 0.0, "vwap": 7.0},
    ]


def test_a_pane_is_in_every_sliding_window_that_covers_it() -> None:
    pane = utc(2024, 3, 1, 12, 0, 30)
    starts = MOVING.containing(pane)
    # 5-minute windows every 30 s: the ten starting 11:56:00 ... 12:00:30.
    assert starts == [utc(2024, 3, 1, 11, 56) + n * 30 * SEC for n in range(10)]
    assert MINUTE.containing(pane) == [utc(2024, 3, 1, 12, 0)]
    # A window length that is not a multiple of the slide: 90 s every 60 s.
    # [11:59:00, 12:00:30) and [12:00:00, 12:01:30) hold the pane 12:00:00-12:00:30.
    assert WindowShape(90 * SEC, MIN).containing(utc(2024, 3, 1, 12, 0)) == [
        utc(2024, 3, 1, 11, 59), utc(2024, 3, 1, 12, 0)]
    assert WindowShape(90 * SEC, MIN).containing(utc(2024, 3, 1, 12, 0, 30)) == [
        utc(2024, 3, 1, 12, 0)]


def test_moving_rows_carry_the_window_shape() -> None:
    panes = {T0: one(T0, 2.0)}
    windows = merge_windows(panes, windows_touched(panes, MOVING), MOVING)
    rows = moving_rows("X", MOVING, windows)
    assert [(r["window_start"], r["window_end"]) for r in rows] == [
        (T0 - 4 * MIN - 30 * SEC + n * 30 * SEC, T0 + 30 * SEC + n * 30 * SEC)
        for n in range(10)]
    assert {(r["window_seconds"], r["slide_seconds"], r["trade_count"]) for r in rows} == {
        (300, 30, 1)}


def test_spans_to_read_cover_every_touched_window_once() -> None:
    near = [T0, T0 + 30 * SEC]
    far = T0 + timedelta(days=1)
    spans = spans_to_read([*near, far], [MINUTE, MOVING])
    assert spans == [(T0 - 4 * MIN - 30 * SEC, T0 + 5 * MIN + 30 * SEC),
                     (far - 4 * MIN - 30 * SEC, far + 5 * MIN)]


def test_day_slices_cut_at_utc_midnight() -> None:
    start, end = utc(2024, 3, 1, 23, 58), utc(2024, 3, 2, 0, 3)
    assert list(day_slices(start, end)) == [(start, utc(2024, 3, 2)), (utc(2024, 3, 2), end)]
    assert list(day_slices(start, start + MIN)) == [(start, start + MIN)]


def test_folding_a_replayed_batch_changes_nothing() -> None:
    old = Pane(4, one(T0, 1.0))
    batch = {T0: one(T0 + SEC, 3.0, offset=5), T0 + 30 * SEC: one(T0 + 31 * SEC, 5.0)}
    folded = fold_batch({T0: old}, batch, batch_id=5)
    assert folded == {T0: Pane(5, merge([old.partial, batch[T0]])),
                      T0 + 30 * SEC: Pane(5, batch[T0 + 30 * SEC])}
    # The same batch again (a replay after a crash): the stored panes already hold it.
    again = fold_batch(folded, batch, batch_id=5)
    assert again == folded
    assert all(again[start] is folded[start] for start in folded)


def test_known_panes_read_only_the_slots_never_seen() -> None:
    known = KnownPanes(30 * SEC, keep=10 * MIN)
    span = ("AAPL", T0, T0 + 2 * MIN)
    assert known.unknown([span]) == [span]
    stored = Pane(3, one(T0 + 31 * SEC, 2.0))
    known.learn([span], {("AAPL", T0 + 30 * SEC): stored, ("MSFT", T0): Pane(3, one(T0, 9.0))})
    # The span is known now, its empty slots included; only the slots beyond it are not.
    assert known.unknown([("AAPL", T0 - MIN, T0 + 3 * MIN)]) == [
        ("AAPL", T0 - MIN, T0), ("AAPL", T0 + 2 * MIN, T0 + 3 * MIN)]
    assert known.unknown([("MSFT", T0, T0 + MIN)]) == [("MSFT", T0, T0 + MIN)]
    assert known.stored("AAPL", [(T0 - MIN, T0 + 3 * MIN)]) == {T0 + 30 * SEC: stored}
    # A slot the job wrote is known, with what was written.
    written = Pane(4, one(T0 + 2 * MIN, 5.0))
    known.remember({("AAPL", T0 + 2 * MIN): written})
    assert known.unknown([("AAPL", T0 + 90 * SEC, T0 + 3 * MIN)]) == [
        ("AAPL", T0 + 150 * SEC, T0 + 3 * MIN)]
    assert known.stored("AAPL", [(T0, T0 + 150 * SEC)]) == {T0 + 30 * SEC: stored,
                                                           T0 + 2 * MIN: written}


def test_known_panes_forget_slots_far_from_the_newest() -> None:
    known = KnownPanes(30 * SEC, keep=MIN)
    known.learn([("AAPL", T0, T0 + 3 * MIN), ("MSFT", T0, T0 + 30 * SEC)], {})
    assert len(known) == 7
    known.forget_far_from(T0 + 3 * MIN)
    # AAPL keeps its slots from T0 + 2 min on; MSFT keeps none and is dropped.
    assert len(known) == 2
    assert known.unknown([("AAPL", T0, T0 + 3 * MIN), ("MSFT", T0, T0 + 30 * SEC)]) == [
        ("AAPL", T0, T0 + 2 * MIN), ("MSFT", T0, T0 + 30 * SEC)]
    known.clear()
    assert len(known) == 0


def test_known_panes_forget_everything_beyond_their_cap() -> None:
    known = KnownPanes(30 * SEC, keep=10 * MIN, max_slots=10)
    known.learn([(symbol, T0, T0 + 2 * MIN) for symbol in "ABC"], {})
    known.forget_far_from(T0)
    # 12 slots, all near T0 but more than 10: all of them are forgotten.
    assert len(known) == 0
    known.learn([(symbol, T0, T0 + 2 * MIN) for symbol in "AB"], {})
    known.forget_far_from(T0)
    assert len(known) == 8


@settings(max_examples=200, deadline=None)
@given(batches=st.lists(st.tuples(
    st.lists(st.tuples(st.sampled_from("AB"), st.integers(-40, 40)), min_size=1, max_size=4),
    st.booleans()), min_size=1, max_size=12))
def test_known_panes_always_agree_with_the_store(batches) -> None:
    """Batch after batch, what the driver knows plus what it reads equals the store."""
    pane, keep = 30 * SEC, 5 * MIN
    store: dict[tuple[str, datetime], Pane] = {}
    known = KnownPanes(pane, keep)
    for batch_id, (touched, forget) in enumerate(batches):
        spans = {}
        for symbol, slot in touched:
            start = T0 + slot * pane
            spans.setdefault(symbol, []).append((start - 2 * MIN, start + 2 * MIN))
        unknown = known.unknown((symbol, lo, hi) for symbol, ranges in spans.items()
                                for lo, hi in ranges)
        known.learn(unknown, {(symbol, start): p for (symbol, start), p in store.items()
                              if any(s == symbol and lo <= start < hi
                                     for s, lo, hi in unknown)})
        for symbol, ranges in spans.items():
            expected = {start: p for (s, start), p in store.items()
                        if s == symbol and any(lo <= start < hi for lo, hi in ranges)}
            assert known.stored(symbol, ranges) == expected
        written = {(symbol, T0 + slot * pane): Pane(batch_id, one(T0 + slot * pane, 1.0))
                   for symbol, slot in touched}
        store.update(written)
        known.remember(written)
        if forget:
            known.forget_far_from(max(start for _, start in written))


prices = st.floats(min_value=1e-6, max_value=1e9, allow_nan=False)
volumes = st.floats(min_value=0, max_value=1e9, allow_nan=False)
trades = st.lists(st.tuples(st.integers(0, 599_999), prices, volumes), min_size=1, max_size=60)


@settings(max_examples=150, deadline=None)
@given(trades=trades, cuts=st.lists(st.integers(0, 60), max_size=6))
def test_windows_merged_from_any_batching_equal_the_direct_computation(trades, cuts) -> None:
    """However trades are split into batches and panes, the windows come out the same."""
    singles = [one(T0 + timedelta(milliseconds=ms), p, v, offset=n)
               for n, (ms, p, v) in enumerate(trades)]
    # Fold batch by batch, each batch aggregated per 30 s pane first.
    stored: dict[datetime, Pane] = {}
    bounds = sorted({0, len(singles), *(c for c in cuts if c < len(singles))})
    for batch_id, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        by_pane: dict[datetime, list[Partial]] = {}
        for single in singles[lo:hi]:
            pane = T0 + ((single.open_ts - T0) // (30 * SEC)) * 30 * SEC
            by_pane.setdefault(pane, []).append(single)
        stored.update(fold_batch(stored, {k: merge(v) for k, v in by_pane.items()}, batch_id))
    panes = {start: pane.partial for start, pane in stored.items()}
    windows = merge_windows(panes, windows_touched(panes, MOVING), MOVING)
    # Directly: every window start aligned on 30 s whose 5 minutes hold a trade.
    for start, merged in windows.items():
        inside = [(p, v) for ms, p, v in trades
                  if start <= T0 + timedelta(milliseconds=ms) < start + MOVING.length]
        assert merged.trade_count == len(inside)
        assert merged.price_sum == pytest.approx(math.fsum(p for p, _ in inside), rel=1e-12)
        assert merged.notional_sum == pytest.approx(
            math.fsum(p * v for p, v in inside), rel=1e-12, abs=1e-300)
        assert merged.low_price == min(p for p, _ in inside)
    # Every 30 s-aligned start whose 5 minutes hold at least one trade, and no other.
    expected_starts = {T0 + ((timedelta(milliseconds=ms) // (30 * SEC)) - n) * 30 * SEC
                       for ms, *_ in trades for n in range(10)}
    assert set(windows) == expected_starts
