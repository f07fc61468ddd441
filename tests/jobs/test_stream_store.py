"""The stream job's driver-side writes: one unlogged batch per partition."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from jobs.stream_store import StreamStore, group_by_partition
from jobs.tables import MOVING_MEANS

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
