"""The stream job's driver-side writes: one unlogged batch per partition."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from jobs.candle_levels import StoredPart, SymbolState
from jobs.candles import part_of
from jobs.stream_store import CandleWrites, StreamStore, bucket_slices, group_by_partition
from jobs.tables import MOVING_MEANS, TRADES

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)


def test_rows_are_grouped_per_partition_in_order_and_capped() -> None:
    rows = [("A", 1, 10), ("B", 1, 11), ("A", 1, 12), ("A", 2, 13), ("A", 1, 14),
            ("A", 1, 15)]
    assert group_by_partition([0, 1], rows, 2) == [
        [("A", 1, 10), ("A", 1, 12)], [("A", 1, 14), ("A", 1, 15)],
        [("B", 1, 11)], [("A", 2, 13)]]


def test_without_partition_metadata_every_row_is_a_group_of_its_own() -> None:
    rows = [("A", 1), ("A", 1)]
    assert group_by_partition(None, rows, 50) == [[("A", 1)], [("A", 1)]]


@given(st.lists(st.tuples(st.sampled_from("ABC"), st.integers(0, 2), st.integers()),
                max_size=60),
       st.integers(1, 7))
def test_grouping_keeps_every_row_once_and_never_mixes_partitions(rows, size) -> None:
    groups = group_by_partition([0, 1], rows, size)
    assert sorted(row for group in groups for row in group) == sorted(rows)
    for group in groups:
        assert 1 <= len(group) <= size
        assert len({row[:2] for row in group}) == 1


def moving_row(symbol: str, n: int) -> dict[str, object]:
    start = T0 + timedelta(seconds=30 * n)
    return {"symbol": symbol, "window_seconds": 300, "slide_seconds": 30,
            "window_start": start, "window_end": start + timedelta(minutes=5),
            "trade_count": n + 1, "arithmetic_mean": 100.0 + n, "geometric_mean": 99.0 + n,
            "harmonic_mean": 98.0 + n}


def test_batched_rows_all_reach_cassandra(cassandra_session, make_keyspace) -> None:
    keyspace = make_keyspace()
    store = StreamStore(cassandra_session, keyspace)
    # 120 rows of 3 partitions: more than one batch per partition.
    rows = [moving_row(symbol, n) for symbol in ("AAPL", "MSFT", "BINANCE:BTCUSDT")
            for n in range(120)]
    store.save_merge(uuid.uuid4(), {}, [], rows)
    stored = cassandra_session.execute(f"SELECT * FROM {keyspace}.moving_means")
    assert sorted(tuple(getattr(r, c) for c in MOVING_MEANS.columns) for r in stored) == sorted(
        tuple(r[c].replace(tzinfo=None) if isinstance(r[c], datetime) else r[c]
              for c in MOVING_MEANS.columns) for r in rows)


def test_ranges_are_cut_at_every_bucket_boundary() -> None:
    def utc(*args: int) -> datetime:
        return datetime(*args, tzinfo=timezone.utc)

    assert list(bucket_slices("1s", utc(2024, 2, 28, 23), utc(2024, 3, 1, 1))) == [
        (date(2024, 2, 28), utc(2024, 2, 28, 23), utc(2024, 2, 29)),
        (date(2024, 2, 29), utc(2024, 2, 29), utc(2024, 3, 1)),
        (date(2024, 3, 1), utc(2024, 3, 1), utc(2024, 3, 1, 1))]
    assert list(bucket_slices("5m", utc(2024, 12, 31), utc(2025, 1, 2))) == [
        (date(2024, 12, 1), utc(2024, 12, 31), utc(2025, 1, 1)),
        (date(2025, 1, 1), utc(2025, 1, 1), utc(2025, 1, 2))]
    assert list(bucket_slices("1h", utc(2024, 6, 1), utc(2024, 6, 2))) == [
        (date(2024, 1, 1), utc(2024, 6, 1), utc(2024, 6, 2))]
    assert list(bucket_slices("1d", T0, T0)) == []


def test_candle_writes_read_back_with_their_retention(cassandra_session, make_keyspace) -> None:
    keyspace = make_keyspace()
    store = StreamStore(cassandra_session, keyspace)
    run = uuid.uuid4()
    midnight = datetime(2026, 12, 1, tzinfo=timezone.utc)
    # A second just before midnight and one just after: two buckets of the 1s level.
    before, after = midnight - timedelta(seconds=1), midnight
    parts = {("1s", "A", before): StoredPart(3, part_of([((before, 0, 1), 10.0, 1.0),
                                                         ((before, 1, 0), 11.0, 2.0)])),
             ("1s", "A", after): StoredPart(4, part_of([((after, 0, 2), 12.0, 1.0)])),
             ("1h", "A", midnight): StoredPart(4, part_of([((after, 0, 2), 12.0, 1.0)]))}
    symbol = SymbolState(before, (after, 0, 2), 12.0)
    candle = {"symbol": "A", "resolution": "1s", "bucket": after.date(), "window_start": after,
              "window_end": after + timedelta(seconds=1), "trade_count": 1,
              "open_price": 12.0, "high_price": 12.0, "low_price": 12.0, "close_price": 12.0,
              "total_volume": 1.0, "avg_price": 12.0, "vwap": 12.0,
              "log_return_stddev": float("nan"), "parkinson_volatility": 0.0}
    store.save_merge(run, {}, [], [], CandleWrites(parts, [candle], [], {"A": symbol}))

    spans = [("1s", "A", before - timedelta(minutes=1), after + timedelta(minutes=1)),
             ("1h", "A", midnight, midnight + timedelta(hours=1))]
    assert store.load_parts(run, spans) == parts
    assert store.load_parts(uuid.uuid4(), spans) == {}
    assert store.load_symbols(["A", "B"]) == {"A": symbol}
    (ttl,) = cassandra_session.execute(
        f"SELECT TTL(trade_count) FROM {keyspace}.candles WHERE symbol = 'A'"
        f" AND resolution = '1s' AND bucket = '{after.date()}'").one()
    assert 7 * 86400 - 600 < ttl <= 7 * 86400


def test_trades_to_rebuild_from_are_those_of_the_topic_below_the_batch_end(
        cassandra_session, make_keyspace) -> None:
    keyspace = make_keyspace()
    store = StreamStore(cassandra_session, keyspace)
    insert = cassandra_session.prepare(TRADES.insert(keyspace))
    rows = [("Market", 0, 5, 0), ("Market", 0, 6, 1), ("Market", 1, 2, 2),
            ("Other", 0, 1, 3), ("Market", 0, 9, 4)]  # offset 9 is past the batch
    for topic, partition, offset, ms in rows:
        ts = T0 + timedelta(milliseconds=ms)
        cassandra_session.execute(insert, TRADES.row({
            "symbol": "A", "trade_date": ts.date(), "trade_ts": ts,
            "kafka_partition": partition, "kafka_offset": offset, "price": 1.0 + ms,
            "volume": 1.0, "conditions": None, "ingest_ts": ts, "kafka_topic": topic}))
    got = store.load_trades("Market", "A", T0, T0 + timedelta(seconds=1), {0: 7, 1: 3})
    assert sorted(got) == [((T0, 0, 5), 1.0, 1.0),
                           ((T0 + timedelta(milliseconds=1), 0, 6), 2.0, 1.0),
                           ((T0 + timedelta(milliseconds=2), 1, 2), 3.0, 1.0)]
