"""SIGTERM stops the stream job in order: queries stopped, exit 0, no JVM left behind."""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
from pipeline_testing import (
    PROJECT_ROOT,
    QUERY,
    Trade,
    encode,
    group_command_lines,
    job_command,
    produce,
    wait_for_batches,
)

pytestmark = pytest.mark.integration


def test_sigterm_stops_the_queries_and_exits_zero(stack, make_topic, make_keyspace,
                                                  work_dir: Path) -> None:
    root = work_dir / f"sigterm-{uuid.uuid4().hex[:8]}"
    log_path = root / "job.log"
    root.mkdir(parents=True)
    topic = make_topic(1)
    now = datetime.now(timezone.utc)
    trade = Trade("AAPL", 101.0, 1.0, now, None, now)
    produce(stack.kafka_bootstrap, topic, [(b"AAPL", encode(trade), trade, None)])
    args = ["--master", "local[2]", "--topic", topic, "--keyspace", make_keyspace(),
            "--bootstrap-servers", stack.kafka_bootstrap, "--cassandra-host", stack.host,
            "--cassandra-port", str(stack.cassandra_port),
            "--checkpoint-root", str(root / "checkpoints"), "--trigger-interval", "1 second"]
    with log_path.open("w") as log:
        job = subprocess.Popen(job_command("jobs.stream_processor", args), cwd=PROJECT_ROOT,
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_batches(root / "checkpoints" / QUERY, 1, job, log_path)
        job.send_signal(signal.SIGTERM)  # the driver only, as the supervisor does
        assert job.wait(timeout=90) == 0, log_path.read_text()[-3000:]
        assert "SIGTERM: stopping the queries" in log_path.read_text()
        deadline = time.monotonic() + 30
        while group_command_lines(job.pid):  # the JVM follows its driver out
            assert time.monotonic() < deadline, "the job's JVM outlived its driver"
            time.sleep(0.5)
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
