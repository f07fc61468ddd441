"""Lag of the stream job behind its topic, from end offsets and the batches' last offsets."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobs.kafka_lag import end_offsets_of, records_behind, time_behind_ms

T0 = datetime(2025, 6, 2, 14, 30, tzinfo=timezone.utc)


def test_records_behind_sums_what_each_partition_holds_past_the_next_read() -> None:
    # partition 0: 120 - 100; partition 1: caught up; partition 2 never read: caught up
    assert records_behind({0: 120, 1: 40, 2: 7}, {0: 100, 1: 40}) == 20


def test_records_behind_never_goes_negative() -> None:
    # A truncated or recreated topic can report ends below what was read.
    assert records_behind({0: 5}, {0: 9}) == 0


@given(st.dictionaries(st.integers(0, 50), st.tuples(st.integers(0, 10**12),
                                                     st.integers(0, 10**6))))
def test_records_behind_is_the_sum_of_the_gaps(parts: dict[int, tuple[int, int]]) -> None:
    ends = {p: read + gap for p, (read, gap) in parts.items()}
    next_offsets = {p: read for p, (read, _) in parts.items()}
    assert records_behind(ends, next_offsets) == sum(gap for _, gap in parts.values())


@pytest.mark.parametrize(("records", "newest", "expected"), [
    (0, T0, 0.0),                     # caught up: no lag, however old the last record
    (0, None, 0.0),
    (5, T0 - timedelta(seconds=2.5), 2500.0),
    (5, T0 + timedelta(seconds=1), 0.0),  # clocks apart: never negative
    (5, None, None),                  # waiting records, but no record read to date them
])
def test_time_behind(records: int, newest: datetime | None, expected: float | None) -> None:
    assert time_behind_ms(records, newest, T0) == expected


@pytest.mark.parametrize(("end_offset", "expected"), [
    ('{"Market": {"0": 120, "2": 7}, "Other": {"0": 1}}', {0: 120, 2: 7}),
    ({"Market": {"0": 120, "2": 7}, "Other": {"0": 1}}, {0: 120, 2: 7}),
    ({"Market": ["0"]}, {}),
    ('{"Other": {"0": 1}}', {}),
    (None, {}),
    ("not json", {}),
    ('["Market"]', {}),
])
def test_end_offsets_of_a_progress(end_offset: str | dict | None, expected: dict[int, int]) -> None:
    assert end_offsets_of(end_offset, "Market") == expected
