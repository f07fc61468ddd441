"""`python -m stack run` (what `make run` starts): the status line it prints agrees with
the job's stream_progress rows."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from pipeline_testing import JOB_TIMEOUT_S, PROJECT_ROOT

pytestmark = pytest.mark.integration

LINE = re.compile(
    r"^\d\d:\d\d:\d\d producer (?P<produced>[\d.]+)/s \| lag (?P<lag>\d+) rec (?P<lag_s>[\d.]+) s"
    r" \| written (?P<written>[\d.]+)/s \| batch (?P<batch_s>[\d.]+) s"
    r" \| latency p50 (?P<p50_s>[\d.]+) s p99 (?P<p99_s>[\d.]+) s \| rejected (?P<rejected>\d+)$")


def test_status_line_agrees_with_stream_progress(stack, stack_config, make_topic, make_keyspace,
                                                 cassandra_session, tmp_path: Path) -> None:
    topic, keyspace = make_topic(3), make_keyspace()
    # Its own work folder (run logs, checkpoints), sharing the resolved jars.
    (tmp_path / "jars").symlink_to(stack_config.jars_dir)
    command = [sys.executable, "-m", "stack", "run", "--work-dir", str(tmp_path),
               "--topic", topic, "--dead-letter-topic", make_topic(1), "--keyspace", keyspace,
               "--symbols", "AAPL,MSFT", "--synthetic-rate", "40", "--status-interval", "2"]
    env = {k: v for k, v in os.environ.items() if k != "FINNHUB_TOKEN"}  # synthetic trades
    proc = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []

    def read() -> None:
        for line in proc.stdout:
            lines.append(line)

    threading.Thread(target=read, daemon=True).start()
    try:
        deadline = time.monotonic() + JOB_TIMEOUT_S
        # A line with batches written, taken once the job has written a few.
        while not (full := [m for line in lines if (m := LINE.match(line.strip()))
                            and float(m["written"]) > 0][2:]):
            assert proc.poll() is None, "".join(lines[-40:])
            assert time.monotonic() < deadline, "no status line with batches:\n" + "".join(
                lines[-40:])
            time.sleep(0.5)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        code = proc.wait(timeout=120)
    assert code == 0, "".join(lines[-40:])
    shown = full[0]

    today = datetime.now(timezone.utc).date()
    rows = list(cassandra_session.execute(
        f"SELECT * FROM {keyspace}.stream_progress WHERE job = 'market' AND day IN (%s, %s)",
        (today - timedelta(days=1), today)))
    # The line shows one batch's lag, duration and latencies: a row holds exactly those.
    assert any(str(r.kafka_lag_records) == shown["lag"]
               and f"{r.kafka_lag_ms / 1000:.2f}" == shown["lag_s"]
               and f"{(r.finished_at - r.started_at).total_seconds():.2f}" == shown["batch_s"]
               and f"{r.trade_latency_p50_ms / 1000:.2f}" == shown["p50_s"]
               and f"{r.trade_latency_p99_ms / 1000:.2f}" == shown["p99_s"]
               for r in rows), (shown.groupdict(), rows)
    assert shown["rejected"] == "0" and sum(r.rejected for r in rows) == 0
    assert float(shown["produced"]) > 0
