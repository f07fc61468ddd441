"""The stream job's Prometheus endpoints on the driver UI, scraped from a real run:
driver metrics with the `market` query's streaming gauges, and the executors'."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from metrics_testing import Scrape, free_port, scrape, scrape_until
from pipeline_testing import (
    PROJECT_ROOT,
    QUERY,
    Pipeline,
    Trade,
    job_command,
    produce_trades,
    wait_for_batches,
)

pytestmark = pytest.mark.integration

TRADES = 500
# spark.metrics.namespace is the application's name: no run id in the metric names.
DRIVER = "metrics_market_stream_processor_driver_"
STREAMING = f"{DRIVER}spark_streaming_{QUERY}_"


def trades() -> list[Trade]:
    start = datetime(2024, 3, 1, 12, tzinfo=timezone.utc)
    return [Trade("AAPL" if i % 2 else "MSFT", 100.0 + i % 7, 1.0,
                  start + timedelta(milliseconds=250 * i), None, start)
            for i in range(TRADES)]


def read_everything(scraped: Scrape) -> bool:
    # Local master: the executor runs in the driver, and its task counters with it.
    records = scraped.samples.get((f"{DRIVER}executor_recordsRead_Count",
                                   frozenset({("type", "counters")})), 0)
    return records >= TRADES and f"{STREAMING}latency_Value" in scraped.names()


def test_the_driver_serves_spark_and_streaming_metrics(
        stack, kafka_bootstrap: str, make_topic, make_keyspace, work_dir: Path) -> None:
    root = work_dir / f"metrics-{uuid.uuid4().hex[:8]}"
    root.mkdir(parents=True)
    pipeline = Pipeline(make_topic(2), make_keyspace(), kafka_bootstrap, stack.host,
                        stack.cassandra_port, root)
    produce_trades(pipeline, trades())
    ui = free_port()
    args = [a for a in pipeline.job_args(root / "checkpoints") if a != "--available-now"]
    log_path = root / "job.log"
    with log_path.open("w") as log:
        job = subprocess.Popen(
            job_command("jobs.stream_processor",
                        [*args, "--trigger-interval", "1 second", "--ui-port", str(ui)]),
            cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_batches(root / "checkpoints" / QUERY, 1, job, log_path)
        # The paths k8s/components/monitoring scrapes.
        base = f"http://127.0.0.1:{ui}/metrics"
        driver = scrape_until(f"{base}/prometheus/", read_everything, job,
                              lambda: log_path.read_text()[-3000:])
        executors = scrape(f"{base}/executors/prometheus")
        job.send_signal(signal.SIGTERM)  # the driver only, as a supervisor does
        assert job.wait(timeout=90) == 0, log_path.read_text()[-3000:]
    finally:
        if job.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(job.pid, signal.SIGKILL)
            job.wait()

    # The query's gauges (spark.sql.streaming.metricsEnabled), under its name.
    for gauge in ("inputRate_total", "processingRate_total", "latency",
                  "eventTime_watermark", "states_rowsTotal"):
        assert driver.value(f"{STREAMING}{gauge}_Value", type="gauges") >= 0
    assert not [n for n in driver.names() if re.search(r"local_\d+|app_\d+", n)]
    # The executors' endpoint (spark.ui.prometheus.enabled): one executor, the driver.
    (labels,) = [dict(k[1]) for k in executors.samples
                 if k[0] == "metrics_executor_completedTasks_total"]
    assert (labels["application_name"], labels["executor_id"]) == (
        "market-stream-processor", "driver")
    assert executors.value("metrics_executor_completedTasks_total", **labels) > 0
    assert executors.value("metrics_executor_totalInputBytes_bytes_total", **labels) > 0
