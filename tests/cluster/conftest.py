"""A private Spark standalone cluster (master + 2 workers) for the tests marked `cluster`.

It runs on free ports with its own state folder beside the shared Kafka and Cassandra,
so that a test may kill one of its workers; it is stopped at the end of the module and
no Spark process may outlive it. Each scenario adds one line of figures (time, rows,
faults) to the "cluster runs" section printed after the run.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cluster_testing import ClusterJob, spark_pids

from stack import lifecycle, spark_submit
from stack.config import StackConfig
from stack.errors import StackError

_RUNS: list[str] = []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(stack: StackConfig, work_dir: Path) -> Iterator[StackConfig]:
    config = dataclasses.replace(
        stack, state_dir=work_dir / f"spark-cluster-{uuid.uuid4().hex[:8]}",
        spark_master_port=free_port(), spark_master_ui_port=free_port(),
        spark_worker_ports=(free_port(), free_port()),
        spark_worker_ui_ports=(free_port(), free_port()),
    )
    try:
        lifecycle.spark_up(config)
    except StackError as err:
        lifecycle.spark_down(config)
        pytest.fail(f"the Spark cluster could not start:\n{err}", pytrace=False)
    yield config
    lifecycle.spark_down(config)
    deadline = time.monotonic() + 60
    while spark_pids(config.stack_dir):
        assert time.monotonic() < deadline, (
            f"Spark processes left behind: {spark_pids(config.stack_dir)}")
        time.sleep(0.5)
    # The logs stay for a look after a failure; the jars each executor fetched go.
    for jar in config.stack_dir.glob("spark/worker-*/work/app-*/*/*.jar"):
        jar.unlink()


@pytest.fixture
def submit(cluster: StackConfig, tmp_path: Path) -> Iterator[Callable[..., ClusterJob]]:
    """Factory: spark-submit a job file to the private cluster, built as the project ships it."""
    base = dataclasses.replace(
        spark_submit.submission(cluster, sys.executable, tmp_path / "dist"),
        local_dir=tmp_path / "driver-local")
    jobs: list[ClusterJob] = []

    def start(program: Path, args: list[str], log_name: str,
              env: dict[str, str] | None = None) -> ClusterJob:
        ui_port = free_port()
        sub = dataclasses.replace(base, conf={"spark.ui.port": str(ui_port)})
        command = spark_submit.submit_command(sub, program, args, name=log_name)
        log_path = tmp_path / f"{log_name}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(command, cwd=tmp_path, env={**os.environ, **(env or {})},
                                    stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        job = ClusterJob(proc, log_path, ui_port)
        jobs.append(job)
        return job

    yield start
    for job in jobs:
        if job.process.poll() is None:
            job.signal(signal.SIGKILL)
            job.process.wait()


@pytest.fixture
def cluster_report() -> Callable[[str], None]:
    def record(line: str) -> None:
        _RUNS.append(line)
        print(line)

    return record


def pytest_terminal_summary(terminalreporter) -> None:
    if _RUNS:
        terminalreporter.section("cluster runs")
        for line in _RUNS:
            terminalreporter.write_line(line)
