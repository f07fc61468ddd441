"""Candle parts, their merges and volatility, against values worked out by hand."""

from __future__ import annotations

import itertools
import math
import statistics
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyspark.sql import SparkSession

from jobs.candle_levels import SymbolState
from jobs.candles import (
    Interleaved,
    bucket,
    candle_values,
    combine,
    log_return_stddev,
    merge_in_order,
    parkinson_volatility,
    parse_resolutions,
    part_of,
    reference_candles,
    ticker_layout,
    ticker_values,
    window_start,
)
from jobs.tables import CANDLES


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


T0 = utc(2024, 3, 1, 12, 0)


def key(seconds: float, partition: int = 0, offset: int = 0) -> tuple[datetime, int, int]:
    return (T0 + timedelta(seconds=seconds), partition, offset)


def test_two_returns_give_their_sample_stddev() -> None:
    part = part_of([(key(0), 100.0, 1.0), (key(1), 110.0, 2.0), (key(2), 99.0, 1.0)])
    # Returns ln(1.1) and ln(0.9); their mean is (ln 1.1 + ln 0.9) / 2.
    r1, r2 = math.log(1.1), math.log(0.9)
    mean = (r1 + r2) / 2
    expected = math.sqrt((r1 - mean) ** 2 + (r2 - mean) ** 2)  # n - 1 = 1
    assert log_return_stddev(part) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.14189, abs=1e-5)


def test_one_return_has_no_stddev() -> None:
    assert math.isnan(log_return_stddev(part_of([(key(0), 100.0, 1.0), (key(1), 101.0, 1.0)])))
    assert math.isnan(log_return_stddev(part_of([(key(0), 100.0, 1.0)])))


def test_equal_high_and_low() -> None:
    part = part_of([(key(s), 50.0, 1.0) for s in range(3)])
    assert parkinson_volatility(part.high_price, part.low_price) == 0.0
    assert log_return_stddev(part) == 0.0


def test_parkinson_by_hand() -> None:
    # ln(110 / 99) = 0.105360516; 2 sqrt(ln 2) = 1.665109222.
    assert parkinson_volatility(110.0, 99.0) == pytest.approx(0.105360516 / 1.665109222,
                                                             rel=1e-8)


def test_candle_values_by_hand() -> None:
    part = part_of([(key(2), 99.0, 1.0), (key(0), 100.0, 1.0), (key(1), 110.0, 2.0)])
    values = candle_values(part)
    assert values["trade_count"] == 3
    assert (values["open_price"], values["high_price"], values["low_price"],
            values["close_price"]) == (100.0, 110.0, 99.0, 99.0)
    assert values["total_volume"] == 4.0
    assert values["avg_price"] == pytest.approx(309.0 / 3)
    assert values["vwap"] == pytest.approx((100 + 220 + 99) / 4)
    zero_volume = candle_values(part_of([(key(0), 10.0, 0.0), (key(1), 20.0, 0.0)]))
    assert zero_volume["vwap"] == 15.0


def test_merge_across_a_boundary_counts_the_boundary_return() -> None:
    early = part_of([(key(0), 100.0, 1.0), (key(1), 110.0, 1.0)])
    late = part_of([(key(2), 99.0, 1.0), (key(3), 99.0, 1.0)])
    merged = merge_in_order([late, early])
    # Returns ln 1.1, ln 0.9 (the boundary) and 0.
    expected = statistics.stdev([math.log(1.1), math.log(0.9), 0.0])
    assert log_return_stddev(merged) == pytest.approx(expected, rel=1e-12)
    assert merged.return_sum == pytest.approx(math.log(99.0 / 100.0), rel=1e-12)
    assert (merged.first_price, merged.last_price, merged.trade_count) == (100.0, 99.0, 4)


def test_a_trade_between_two_summarised_trades_cannot_be_merged() -> None:
    stored = part_of([(key(0), 100.0, 1.0), (key(2), 110.0, 1.0)])
    late = part_of([(key(1), 105.0, 1.0)])
    with pytest.raises(Interleaved):
        merge_in_order([stored, late])
    # Same time, order decided by the Kafka coordinates.
    with pytest.raises(Interleaved):
        merge_in_order([part_of([(key(0, 0, 5), 1.0, 1.0), (key(0, 0, 9), 1.0, 1.0)]),
                        part_of([(key(0, 0, 7), 1.0, 1.0)])])


trades_strategy = st.lists(
    st.tuples(st.integers(0, 10_000), st.floats(0.01, 1e6), st.floats(0, 1e3)),
    min_size=1, max_size=40, unique_by=lambda t: t[0])


@given(trades_strategy, st.lists(st.integers(1, 39), max_size=6))
def test_contiguous_runs_merge_to_the_whole(raw, cuts) -> None:
    trades = sorted((key(ms / 1000, 0, ms), price, volume) for ms, price, volume in raw)
    bounds = sorted({0, len(trades), *(c for c in cuts if c < len(trades))})
    runs = [part_of(trades[a:b]) for a, b in itertools.pairwise(bounds)]
    merged, whole = candle_values(merge_in_order(runs)), candle_values(part_of(trades))
    for name, value in whole.items():
        if isinstance(value, float) and math.isnan(value):
            assert math.isnan(merged[name]), name
        else:
            assert merged[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name


values_strategy = st.lists(st.floats(-1.0, 1.0), max_size=20)


@given(values_strategy, values_strategy)
def test_combined_moments_are_those_of_the_union(a, b) -> None:
    def moments(values):
        # Population variance times n: the squared deviations from the mean.
        return (len(values), math.fsum(values),
                statistics.pvariance(values) * len(values) if values else 0.0)

    n, total, m2 = combine(moments(a), moments(b))
    want = moments(a + b)
    assert n == want[0]
    assert total == pytest.approx(want[1], abs=1e-12)
    assert m2 == pytest.approx(want[2], rel=1e-9, abs=1e-12)


def test_resolutions_and_buckets() -> None:
    assert parse_resolutions(" 1d,1s,5m ") == ("1s", "5m", "1d")
    with pytest.raises(ValueError, match="7m"):
        parse_resolutions("1m,7m")
    with pytest.raises(ValueError):
        parse_resolutions(" , ")
    ts = utc(2024, 3, 17, 13, 47, 31)
    assert window_start(ts, "1s") == ts
    assert window_start(ts, "15m") == utc(2024, 3, 17, 13, 45)
    assert window_start(ts, "4h") == utc(2024, 3, 17, 12)
    assert window_start(ts, "1d") == utc(2024, 3, 17)
    assert bucket("1s", ts) == date(2024, 3, 17)
    assert bucket("15m", ts) == date(2024, 3, 1)
    assert bucket("1h", ts) == date(2024, 1, 1)


@pytest.mark.spark
def test_reference_candles_on_inline_trades(spark: SparkSession) -> None:
    rows = [
        # symbol, ts, partition, offset, price, volume
        ("A", utc(2024, 3, 1, 12, 0, 0), 0, 1, 100.0, 1.0),
        ("A", utc(2024, 3, 1, 12, 0, 20), 1, 1, 110.0, 2.0),
        ("A", utc(2024, 3, 1, 12, 0, 20), 0, 9, 99.0, 1.0),  # same ts, lower partition: first
        ("A", utc(2024, 3, 1, 12, 1, 5), 0, 2, 50.0, 0.0),
        ("B", utc(2024, 3, 1, 12, 0, 59), 2, 3, 7.0, 3.0),
    ]
    trades = spark.createDataFrame(
        rows, "symbol string, trade_ts timestamp, kafka_partition int, kafka_offset long,"
              " price double, volume double")
    got = {(r["symbol"], r["window_start"].astimezone(timezone.utc)): r.asDict()
           for r in trades.transform(reference_candles("1m")).collect()}
    assert sorted(got) == [("A", utc(2024, 3, 1, 12, 0)), ("A", utc(2024, 3, 1, 12, 1)),
                           ("B", utc(2024, 3, 1, 12, 0))]
    first = got[("A", utc(2024, 3, 1, 12, 0))]
    assert list(first) == list(CANDLES.columns)
    # Order: 100 (12:00:00), 99 (12:00:20 p0), 110 (12:00:20 p1).
    assert (first["open_price"], first["close_price"]) == (100.0, 110.0)
    assert first["trade_count"] == 3 and first["total_volume"] == 4.0
    assert first["bucket"] == date(2024, 3, 1) and first["resolution"] == "1m"
    assert first["window_end"].astimezone(timezone.utc) == utc(2024, 3, 1, 12, 1)
    assert first["log_return_stddev"] == pytest.approx(
        statistics.stdev([math.log(0.99), math.log(110 / 99)]), rel=1e-12)
    assert first["parkinson_volatility"] == pytest.approx(
        math.log(110 / 99) / (2 * math.sqrt(math.log(2))), rel=1e-12)
    lone = got[("A", utc(2024, 3, 1, 12, 1))]
    assert math.isnan(lone["log_return_stddev"]) and lone["vwap"] == 50.0
    assert lone["parkinson_volatility"] == 0.0


def test_ticker_layout_covers_the_1440_minutes_once() -> None:
    layout = ticker_layout(utc(2024, 3, 2, 13, 47, 31))
    assert (layout.window_start, layout.window_end) == (utc(2024, 3, 1, 13, 48),
                                                        utc(2024, 3, 2, 13, 48))
    assert layout.head_minutes == (utc(2024, 3, 1, 13, 48), utc(2024, 3, 1, 14))
    assert layout.hours == (utc(2024, 3, 1, 14), utc(2024, 3, 2, 13))
    assert layout.tail_minutes == (utc(2024, 3, 2, 13), utc(2024, 3, 2, 13, 48))
    spans = (layout.head_minutes, layout.hours, layout.tail_minutes)
    assert sum((end - start for start, end in spans), timedelta()) == timedelta(minutes=1440)
    aligned = ticker_layout(utc(2024, 3, 2, 12, 59, 59, 999000))
    assert aligned.hours == (utc(2024, 3, 1, 13), utc(2024, 3, 2, 13))
    assert aligned.head_minutes[0] == aligned.head_minutes[1]
    assert aligned.tail_minutes[0] == aligned.tail_minutes[1]


def test_ticker_and_symbol_values_by_hand() -> None:
    part = part_of([(key(0), 100.0, 1.0), (key(60), 120.0, 3.0), (key(90), 90.0, 0.0)])
    layout = ticker_layout(T0 + timedelta(seconds=90))
    values = ticker_values(part, layout)
    assert values == {
        "last_price": 90.0, "last_trade_ts": T0 + timedelta(seconds=90), "open_price": 100.0,
        "high_price": 120.0, "low_price": 90.0, "price_change": -10.0,
        "price_change_pct": -10.0, "total_volume": 4.0, "quote_volume": 460.0,
        "trade_count": 3, "vwap": 115.0, "window_start": utc(2024, 2, 29, 12, 2),
        "window_end": utc(2024, 3, 1, 12, 2)}
    state = SymbolState.of(part)
    assert state.values() == {"first_trade_ts": T0, "last_trade_ts": T0 + timedelta(seconds=90),
                              "last_price": 90.0, "last_kafka_partition": 0,
                              "last_kafka_offset": 0}
    # Merging keeps the earliest first trade and the last trade in the total order.
    later = SymbolState(T0 + timedelta(seconds=5), (T0 + timedelta(seconds=90), 1, 0), 91.0)
    assert state.merge(later) == SymbolState(T0, later.last_key, 91.0)
    assert later.merge(state) == state.merge(later) and state.merge(None) == state
