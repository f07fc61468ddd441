"""The candle hierarchy: levels, retention, folding a batch into a stored part, and the
Spark parts per second, against values worked out by hand."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest
from pyspark.sql import SparkSession

from jobs.candle_levels import (
    Levels,
    StoredPart,
    batch_levels,
    fold_part,
    part_of_row,
    retention,
    second_parts,
)
from jobs.candles import part_of

DAY = timedelta(days=1)
ALL = ("1s", "1m", "2m", "5m", "15m", "1h", "4h", "1d")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


T0 = utc(2024, 3, 1, 12, 0)


def key(seconds: float, partition: int = 0, offset: int = 0) -> tuple[datetime, int, int]:
    return (T0 + timedelta(seconds=seconds), partition, offset)


def test_retention_by_resolution() -> None:
    assert [retention(r) for r in ALL] == [7 * DAY, 365 * DAY, 365 * DAY, 365 * DAY,
                                           365 * DAY, 5 * 365 * DAY, 5 * 365 * DAY,
                                           5 * 365 * DAY]
    assert retention("15s") == 30 * DAY


def test_every_level_is_built_from_the_coarsest_one_that_tiles_it() -> None:
    levels = Levels(ALL)
    assert levels.kept == ALL
    assert {level: levels.parent(level) for level in ALL} == {
        "1s": None, "1m": "1s", "2m": "1m", "5m": "1m", "15m": "5m", "1h": "15m",
        "4h": "1h", "1d": "4h"}


def test_the_base_and_the_ticker_levels_are_kept_whatever_is_written() -> None:
    levels = Levels(("5m",))
    assert levels.kept == ("1s", "1m", "5m", "1h")
    assert (levels.parent("5m"), levels.parent("1h")) == ("1m", "5m")


def test_a_window_is_rebuilt_from_children_only_while_they_live() -> None:
    levels = Levels(ALL)
    now = utc(2024, 3, 20)
    assert not levels.rebuilt_from_children("1s", now, now)  # no children: the trades
    # A minute's seconds live 7 days: a minute 6 days old has them, 8 days old does not.
    assert levels.rebuilt_from_children("1m", now - 6 * DAY, now)
    assert not levels.rebuilt_from_children("1m", now - 8 * DAY, now)
    # An hour's quarters live a year.
    assert levels.rebuilt_from_children("1h", now - 300 * DAY, now)


def part(*trades: tuple[float, float]) -> object:
    return part_of([(key(s, offset=i), price, 1.0) for i, (s, price) in enumerate(trades)])


def never() -> object:
    raise AssertionError("rebuild called")


def test_fold_part_new_replayed_in_order_and_interleaved() -> None:
    first = part_of([(key(1), 100.0, 1.0), (key(3), 110.0, 1.0)])
    later = part_of([(key(5), 99.0, 1.0)])
    assert fold_part(None, first, 7, never) == StoredPart(7, first)
    stored = StoredPart(7, first)
    # The same batch again, after a crash: already in.
    assert fold_part(stored, later, 7, never) is stored
    assert fold_part(stored, later, 8, never) == StoredPart(8, part_of(
        [(key(1), 100.0, 1.0), (key(3), 110.0, 1.0), (key(5), 99.0, 1.0)]))
    # A late trade between the two stored ones: only a rebuild knows the returns.
    between = part_of([(key(2), 105.0, 1.0)])
    rebuilt = part_of([(key(1), 100.0, 1.0), (key(2), 105.0, 1.0), (key(3), 110.0, 1.0)])
    assert fold_part(stored, between, 8, lambda: rebuilt) == StoredPart(8, rebuilt)


def test_batch_levels_equal_the_parts_of_their_trades() -> None:
    trades = [(key(s, offset=i), 100.0 + i, 1.0 + i % 3)
              for i, s in enumerate([0.5, 0.7, 1.2, 59.9, 61.0, 130.0, 3599.0, 3601.0])]
    seconds: dict[datetime, list] = {}
    for trade in trades:
        ts = trade[0][0]
        seconds.setdefault(ts.replace(microsecond=0), []).append(trade)
    levels = Levels(("1m", "2m", "1h"))
    got = batch_levels({s: part_of(ts) for s, ts in seconds.items()}, levels)
    assert set(got) == set(levels.kept)

    def expected(length: timedelta) -> dict[datetime, object]:
        windows: dict[datetime, list] = {}
        for trade in trades:
            start = T0 + (trade[0][0] - T0) // length * length
            windows.setdefault(start, []).append(trade)
        return {start: part_of(ts) for start, ts in windows.items()}

    for level, length in [("1m", timedelta(minutes=1)), ("2m", timedelta(minutes=2)),
                          ("1h", timedelta(hours=1))]:
        assert set(got[level]) == set(expected(length)), level
        for start, want in expected(length).items():
            have = got[level][start]
            assert have.trade_count == want.trade_count
            assert (have.first_key, have.last_key) == (want.first_key, want.last_key)
            assert have.return_sum == pytest.approx(want.return_sum, abs=1e-12)
            assert have.return_m2 == pytest.approx(want.return_m2, abs=1e-12)


@pytest.mark.spark
def test_second_parts_by_hand(spark: SparkSession) -> None:
    ts = [T0 + timedelta(milliseconds=ms) for ms in (900, 100, 500, 1200)]
    # Second 12:00:00 of A: 100 @ .100 (p0 o5), 110 @ .500 (p1 o2), 99 @ .900 (p0 o6);
    # a tie in time is ordered by partition, then offset. Second 12:00:01: one trade.
    rows = [("A", ts[0], 99.0, 1.0, 0, 6), ("A", ts[1], 100.0, 2.0, 0, 5),
            ("A", ts[2], 110.0, 1.0, 1, 2), ("A", ts[3], 50.0, 4.0, 0, 7)]
    trades = spark.createDataFrame(
        rows, "symbol string, trade_ts timestamp, price double, volume double,"
              " kafka_partition int, kafka_offset long")
    got = {row["second_start"].astimezone(timezone.utc): row.asDict()
           for row in trades.transform(second_parts()).collect()}
    first = got[T0]
    r1, r2 = math.log(110 / 100), math.log(99 / 110)
    mean = (r1 + r2) / 2
    assert first["trade_count"] == 3
    assert (first["open_price"], first["close_price"]) == (100.0, 99.0)
    assert (first["open_partition"], first["open_offset"]) == (0, 5)
    assert (first["close_partition"], first["close_offset"]) == (0, 6)
    assert (first["low_price"], first["high_price"]) == (99.0, 110.0)
    assert first["notional_sum"] == pytest.approx(200 + 110 + 99)
    assert first["inverse_price_sum"] == pytest.approx(1 / 100 + 1 / 110 + 1 / 99)
    assert first["return_sum"] == pytest.approx(r1 + r2, abs=1e-15)
    assert first["return_m2"] == pytest.approx((r1 - mean) ** 2 + (r2 - mean) ** 2,
                                               rel=1e-12)
    lone = got[T0 + timedelta(seconds=1)]
    assert (lone["trade_count"], lone["return_sum"], lone["return_m2"]) == (1, 0.0, 0.0)
    assert lone["open_price"] == lone["close_price"] == 50.0


def test_part_of_row_reads_the_order_keys() -> None:
    values = {"trade_count": 2, "price_sum": 3.0, "volume_sum": 2.0, "notional_sum": 3.0,
              "low_price": 1.0, "high_price": 2.0, "open_ts": T0, "open_partition": 1,
              "open_offset": 4, "open_price": 1.0, "close_ts": T0, "close_partition": 2,
              "close_offset": 0, "close_price": 2.0, "return_sum": math.log(2),
              "return_m2": 0.0}
    got = part_of_row(values)
    assert (got.first_key, got.last_key) == ((T0, 1, 4), (T0, 2, 0))
    assert got == part_of([((T0, 1, 4), 1.0, 1.0), ((T0, 2, 0), 2.0, 1.0)])
