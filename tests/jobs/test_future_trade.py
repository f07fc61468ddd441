"""One trade dated a week ahead, sent while the job runs, cannot empty an aggregate.

Before, such a trade moved the job's watermark a week ahead and every later ordinary
trade vanished from minute_trades and moving_means. Now it is rejected as
future_trade_ts, and every trade before and after it is in every table, equal to the
reference computed in plain Python.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from pipeline_testing import (
    JOB_TIMEOUT_S,
    PROJECT_ROOT,
    QUERY,
    Pipeline,
    Trade,
    assert_tables,
    committed_batches,
    encode,
    job_command,
    produce,
    produce_trades,
    wait_for,
    wait_for_batches,
)

pytestmark = pytest.mark.integration


def now_ms() -> datetime:
    now = datetime.now(timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def ordinary(start: datetime, count: int, offset: int) -> list[Trade]:
    return [Trade(("AAPL", "MSFT")[i % 2], 100.0 + (offset + i) % 7, 1.0 + i % 3,
                  start + timedelta(milliseconds=500 * (offset + i)), None,
                  start + timedelta(milliseconds=500 * (offset + i) + 30))
            for i in range(count)]


def test_a_trade_a_week_ahead_is_rejected_and_later_trades_are_counted(
    kafka_bootstrap, stack, make_topic, make_keyspace, cassandra_session, work_dir: Path
) -> None:
    root = work_dir / f"future-{uuid.uuid4().hex[:8]}"
    root.mkdir(parents=True)
    pipeline = Pipeline(make_topic(3), make_keyspace(), kafka_bootstrap, stack.host,
                        stack.cassandra_port, root)
    checkpoints = root / "checkpoints"
    args = [a for a in pipeline.job_args(checkpoints) if a != "--available-now"]
    log_path = root / "job.log"
    with log_path.open("w") as log:
        job = subprocess.Popen(job_command("jobs.stream_processor",
                                           [*args, "--trigger-interval", "1 second"]),
                               cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        # Event time a little in the past, as a live feed's is (whole milliseconds, as
        # Avro and Cassandra keep them).
        start = now_ms() - timedelta(minutes=2)
        produce_trades(pipeline, ordinary(start, 60, 0))
        wait_for_batches(checkpoints / QUERY, 1, job, log_path)

        ahead = Trade("AAPL", 101.0, 2.0, now_ms() + timedelta(days=7), None, now_ms())
        pipeline.sent.extend(produce(pipeline.bootstrap, pipeline.topic,
                                     [(b"AAPL", encode(ahead), None, "future_trade_ts")]))
        done = committed_batches(checkpoints / QUERY)
        wait_for_batches(checkpoints / QUERY, done + 1, job, log_path)

        produce_trades(pipeline, ordinary(start, 60, 60))
        wait_for(lambda: assert_tables(cassandra_session, pipeline), JOB_TIMEOUT_S,
                 alive=job, tail=log_path.read_text)
        # Sanity of the data: the trades after the future one are in the aggregates.
        assert len(pipeline.trades) == 120
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(job.pid, signal.SIGTERM)
        job.wait(timeout=120)
