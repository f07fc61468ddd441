"""The status line of `make run`: its numbers come from stream_progress rows and the
topic's end offsets, computed here by hand."""

from __future__ import annotations

import io
import math
from datetime import date, datetime, timedelta, timezone

import pytest

from stack.status import Batch, ProgressReader, Status, StatusLine, TopicRate, days_between

T0 = datetime(2025, 6, 2, 14, 30, tzinfo=timezone.utc)


def batch(batch_id: int, finished_s: float, duration_s: float, trades: int, rejected: int = 0,
          lag: int | None = 0, lag_ms: float | None = 0.0, p50: float | None = 300.0,
          p99: float | None = 900.0) -> Batch:
    finished = T0 + timedelta(seconds=finished_s)
    return Batch(batch_id, finished - timedelta(seconds=duration_s), finished, trades,
                 rejected, lag, lag_ms, p50, p99)


def test_line_before_the_first_batch() -> None:
    assert Status(T0, None, ()).line() == "14:30:00 producer - | job: no batch yet"


def test_line_from_the_batches() -> None:
    batches = (batch(0, -30, 2.0, 500, rejected=2),   # before the 10 s window
               batch(1, -8, 0.5, 40, rejected=1),
               batch(1, -7, 0.5, 40, rejected=1),     # batch 1 replayed: counted once
               batch(2, -1, 0.25, 60, lag=12, lag_ms=1234.0, p50=350.0, p99=1020.0))
    line = Status(T0, 51.26, batches).line()
    # written: (40 + 40 + 60) / 10 s, every row is a write that happened in the window
    assert line == ("14:30:00 producer 51.3/s | lag 12 rec 1.23 s | written 14.0/s"
                    " | batch 0.25 s | latency p50 0.35 s p99 1.02 s | rejected 3")


def test_line_with_unknown_measurements() -> None:
    line = Status(T0, None, (batch(0, -1, 1.0, 0, lag=None, lag_ms=None, p50=None,
                                   p99=None),)).line()
    assert line == ("14:30:00 producer - | lag - rec - | written 0.0/s | batch 1.00 s"
                    " | latency p50 - p99 - | rejected 0")


def test_days_between_spans_midnight() -> None:
    start = datetime(2025, 6, 1, 23, 59, tzinfo=timezone.utc)
    assert days_between(start, start + timedelta(minutes=2)) == [date(2025, 6, 1),
                                                                 date(2025, 6, 2)]
    assert days_between(start, start) == [date(2025, 6, 1)]


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("out", "expected"), [
    (io.StringIO(), "a\nb\n"),
    (FakeTTY(), "\ra\x1b[K\rb\x1b[K"),
])
def test_redrawn_in_place_on_a_terminal_only(out: io.StringIO, expected: str) -> None:
    line = StatusLine(progress=None, rate=None, interval_s=1, out=out)  # type: ignore[arg-type]
    line.show("a")
    line.show("b")
    assert out.getvalue() == expected


@pytest.mark.integration
def test_progress_reader_reads_the_rows_since_a_moment(cassandra_session, make_keyspace
                                                       ) -> None:
    keyspace = make_keyspace()
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=1)
    insert = cassandra_session.prepare(
        f"INSERT INTO {keyspace}.stream_progress (job, day, finished_at, batch_id,"
        " started_at, trades, rejected, kafka_lag_records, kafka_lag_ms,"
        " trade_latency_p50_ms, trade_latency_p99_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
    for i, offset_s in enumerate((-5, 5, 10)):  # the first is before `start`
        finished = start + timedelta(seconds=offset_s)
        # Batch 2 has no trades: its latencies are stored as NaN and read as unknown.
        p50, p99 = (math.nan, math.nan) if i == 2 else (50.0, 90.0)
        cassandra_session.execute(insert, ("market", finished.date(), finished, i,
                                           finished - timedelta(seconds=1), 10 * i, i,
                                           i, 100.0 * i, p50, p99))
    # Another job's rows are not ours.
    cassandra_session.execute(insert, ("other", start.date(), start + timedelta(seconds=6),
                                       9, start, 1, 1, 1, 1.0, 1.0, 1.0))
    rows = ProgressReader(cassandra_session, keyspace).since(start, start + timedelta(minutes=1))
    assert rows == [
        Batch(1, start + timedelta(seconds=4), start + timedelta(seconds=5), 10, 1, 1, 100.0,
              50.0, 90.0),
        Batch(2, start + timedelta(seconds=9), start + timedelta(seconds=10), 20, 2, 2, 200.0,
              None, None)]


def test_topic_rate_is_taken_over_the_window() -> None:
    rate = TopicRate("unused:9092", "Market", window_s=10)
    assert rate.add(0.0, 100) is None            # one sample: no rate yet
    assert rate.add(5.0, 150) == 10.0            # (150 - 100) / 5 s
    assert rate.add(10.0, 150) == 5.0            # a quiet interval halves it, not zeroes it
    # The oldest sample kept is the newest one at least 10 s back: (350 - 150) / 10 s.
    assert rate.add(20.0, 350) == 20.0
