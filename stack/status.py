"""The status line of `make run`: is the job keeping up, how far behind, how fresh.

Every few seconds one compact line, from the same sources a person would check by
hand: the producer's rate as the topic's end offsets grow, and the stream job's
`stream_progress` rows in Cassandra (so the line always agrees with that table).
On a terminal the line is redrawn in place; otherwise it is printed as a plain line.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, TextIO

import contract
from jobs.kafka_lag import TopicEnds
from jobs.tables import STREAM_PROGRESS

log = logging.getLogger(__name__)

JOB = contract.QUERY_NAME  # stream_progress.job
MEASURED = ("kafka_lag_ms", "trade_latency_p50_ms", "trade_latency_p99_ms")


@dataclass(frozen=True)
class Batch:
    """The part of a stream_progress row the status line shows."""

    batch_id: int
    started_at: datetime
    finished_at: datetime
    trades: int
    rejected: int
    kafka_lag_records: int | None
    kafka_lag_ms: float | None
    trade_latency_p50_ms: float | None
    trade_latency_p99_ms: float | None


# What the status line reads of each stream_progress row (jobs.tables.STREAM_PROGRESS).
PROGRESS_COLUMNS = tuple(Batch.__dataclass_fields__)


@dataclass(frozen=True)
class Status:
    at: datetime
    producer_rate: float | None
    # Every batch finished since the status line started, oldest first.
    batches: tuple[Batch, ...]
    # How far back "written per second" looks.
    window: timedelta = timedelta(seconds=10)

    def line(self) -> str:
        produced = "-" if self.producer_rate is None else f"{self.producer_rate:.1f}/s"
        head = f"{self.at:%H:%M:%S} producer {produced}"
        if not self.batches:
            return f"{head} | job: no batch yet"
        last = self.batches[-1]
        recent = [b for b in self.batches if b.finished_at > self.at - self.window]
        written = sum(b.trades for b in recent) / self.window.total_seconds()
        rejected = sum(b.rejected for b in unique(self.batches))
        return (f"{head} | lag {_count(last.kafka_lag_records)} rec"
                f" {_seconds(last.kafka_lag_ms)} | written {written:.1f}/s"
                f" | batch {(last.finished_at - last.started_at).total_seconds():.2f} s"
                f" | latency p50 {_seconds(last.trade_latency_p50_ms)}"
                f" p99 {_seconds(last.trade_latency_p99_ms)}"
                f" | rejected {rejected}")


def unique(batches: Iterable[Batch]) -> list[Batch]:
    """One row per batch id: a replayed batch writes a second row for the same records."""
    return list({b.batch_id: b for b in batches}.values())


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


def _seconds(ms: float | None) -> str:
    return "-" if ms is None else f"{ms / 1000:.2f} s"


def days_between(start: datetime, end: datetime) -> list[date]:
    """The stream_progress partitions (UTC days) a time span touches."""
    days, day = [], start.date()
    while day <= end.date():
        days.append(day)
        day += timedelta(days=1)
    return days


def known(value: float | None) -> float | None:
    """stream_progress stores an unknown measurement as NaN."""
    return None if value is None or math.isnan(value) else value


def utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts


class ProgressReader:
    """stream_progress rows of the job since a moment, one day partition at a time."""

    def __init__(self, session: Any, keyspace: str) -> None:
        self.session = session
        self.statement = session.prepare(
            f"SELECT {', '.join(PROGRESS_COLUMNS)} FROM {keyspace}.{STREAM_PROGRESS.name}"
            " WHERE job = ? AND day = ? AND finished_at > ?")

    def since(self, start: datetime, now: datetime) -> list[Batch]:
        rows = [row for day in days_between(start, now)
                for row in self.session.execute(self.statement, (JOB, day, start))]
        batches = [Batch(**{**row._asdict(), "started_at": utc(row.started_at),
                            "finished_at": utc(row.finished_at),
                            **{name: known(getattr(row, name)) for name in MEASURED}})
                   for row in rows]
        return sorted(batches, key=lambda b: b.finished_at)


class TopicRate:
    """Records per second arriving in a topic, from the growth of its end offsets over
    the last `window_s` (a producer sends in bursts: one interval alone jitters)."""

    def __init__(self, bootstrap: str, topic: str, window_s: float = 10.0) -> None:
        # The same group-less offsets reader the stream job measures its lag with.
        self.ends = TopicEnds(bootstrap, topic)
        self.window_s = window_s
        self._samples: deque[tuple[float, int]] = deque()

    def sample(self) -> float | None:
        ends = self.ends.end_offsets()
        return None if ends is None else self.add(time.monotonic(), sum(ends.values()))

    def add(self, now: float, total: int) -> float | None:
        """The rate over the samples of the last window, this one included."""
        samples = self._samples
        samples.append((now, total))
        while len(samples) > 2 and now - samples[1][0] >= self.window_s:
            samples.popleft()
        first_at, first_total = samples[0]
        return None if len(samples) < 2 else (total - first_total) / max(now - first_at, 1e-3)

    def close(self) -> None:
        self.ends.close()


class StatusLine:
    """Prints the status every interval until stopped; never stops the pipeline."""

    def __init__(self, progress: ProgressReader, rate: TopicRate, interval_s: float,
                 out: TextIO = sys.stdout) -> None:
        self.progress, self.rate, self.interval_s, self.out = progress, rate, interval_s, out
        self.started = datetime.now(timezone.utc)
        self.stopping = threading.Event()
        self.tty = out.isatty()

    def run(self) -> None:
        while not self.stopping.wait(self.interval_s):
            try:
                now = datetime.now(timezone.utc)
                status = Status(now, self.rate.sample(),
                                tuple(self.progress.since(self.started, now)))
            except Exception as err:  # Cassandra restarting: say so, keep going
                self.show(f"{datetime.now(timezone.utc):%H:%M:%S} status unavailable: {err}")
                continue
            self.show(status.line())
        if self.tty:
            self.out.write("\n")
        self.rate.close()

    def show(self, line: str) -> None:
        # In place on a terminal (carriage return, clear to end of line).
        self.out.write(f"\r{line}\x1b[K" if self.tty else f"{line}\n")
        self.out.flush()

    def stop(self) -> None:
        self.stopping.set()
