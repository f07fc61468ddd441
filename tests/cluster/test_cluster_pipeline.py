"""The jobs spark-submitted to a real Spark standalone cluster (master + 2 workers).

Every table is compared with what plain Python computes from the records the test
sent (tests/pipeline_testing.py). The faults: one worker SIGKILLed with its executor
while trades keep arriving, and the driver SIGKILLed and resubmitted on the same
checkpoint. The Kafka topic and keyspace are fresh per test; the cluster is private.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cluster_testing import ClusterJob, spark_pids
from pipeline_testing import (
    JOB_TIMEOUT_S,
    Pipeline,
    Trade,
    assert_tables,
    committed_batches,
    encode,
    produce,
    produce_trades,
    snapshot,
    wait_for,
)

from stack import lifecycle, spark_cluster, spark_submit
from stack import pipeline as run_pipeline
from stack.config import StackConfig
from stack.pipeline import RunConfig

pytestmark = [pytest.mark.cluster, pytest.mark.integration, pytest.mark.timeout(1200)]

SYMBOLS = ("AAPL", "MSFT", "BINANCE:BTCUSDT")
SECRET = f"pw-{uuid.uuid4().hex}"


@pytest.fixture
def pipeline(stack, kafka_bootstrap, make_topic, make_keyspace, tmp_path: Path) -> Pipeline:
    return Pipeline(make_topic(3), make_keyspace(), kafka_bootstrap, stack.host,
                    stack.cassandra_port, tmp_path)


def job_args(pipeline: Pipeline, checkpoint_root: Path, available_now: bool) -> list[str]:
    """The job's own options; the master and the jars are spark-submit's."""
    args = pipeline.job_args(checkpoint_root)
    master = args.index("--master")
    del args[master:master + 2]
    if not available_now:
        args.remove("--available-now")
    # Read by the driver: the artifact zip holds code only.
    return [*args, "--avro-schema", str(spark_submit.AVRO_SCHEMA)]


# --- observing the cluster ----------------------------------------------------------------


def http_json(url: str):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response)
    except (OSError, ValueError):
        return None


def spark_cluster_state(config: StackConfig) -> dict:
    state = spark_cluster.master_json(config)
    assert state is not None, "the Spark master does not answer"
    return state


def alive_workers(config: StackConfig) -> set[int]:
    return spark_cluster.alive_worker_ports(spark_cluster.master_json(config))


def executors(job: ClusterJob) -> list[dict]:
    """The application's executors, past and present, from the driver's REST API."""
    base = f"http://127.0.0.1:{job.ui_port}/api/v1/applications"
    apps = http_json(base) or []
    if not apps:
        return []
    found = http_json(f"{base}/{apps[0]['id']}/allexecutors") or []
    return [e for e in found if e["id"] != "driver"]


def batches(checkpoint_root: Path) -> int:
    """Micro-batches committed by the slowest query under checkpoint_root."""
    counts = [committed_batches(c.parent) for c in checkpoint_root.rglob("commits")]
    return min(counts) if counts else 0


def commit_files(checkpoint_root: Path) -> dict[str, float]:
    return {str(p.relative_to(checkpoint_root)): p.stat().st_mtime
            for p in checkpoint_root.rglob("commits/*") if not p.name.startswith(".")}


def wait_until(check: Callable[[], bool], what: str, job: ClusterJob,
               timeout_s: float = JOB_TIMEOUT_S, poll_s: float = 0.5) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert job.process.poll() is None, f"the driver ended early\n{job.output()[-4000:]}"
        assert time.monotonic() < deadline, f"not within {timeout_s:.0f}s: {what}\n" \
                                            f"{job.output()[-4000:]}"
        time.sleep(poll_s)


def wait_for_tables(session, pipeline: Pipeline, job: ClusterJob, timeout_s: float = 300) -> None:
    wait_for(lambda: assert_tables(session, pipeline), timeout_s, alive=job.process,
             tail=job.output)


def lost_and_duplicated(session, pipeline: Pipeline) -> tuple[int, int, int]:
    sent = {(s.partition, s.offset) for s in pipeline.trades}
    stored = [k[3:] for k in snapshot(session, pipeline.keyspace)["trades"]]
    duplicated = len(stored) - len(set(stored)) + len(set(stored) - sent)
    return len(stored), len(sent - set(stored)), duplicated


def new_batches(checkpoint_root: Path, before: dict[str, float]) -> int:
    """Batches the slowest query has committed since `before` (commit_files)."""
    folders = {}
    for name in commit_files(checkpoint_root):
        folder = str(Path(name).parent)
        folders[folder] = folders.get(folder, 0) + (name not in before)
    return min(folders.values()) if folders else 0


def wait_until_no_app(config: StackConfig, timeout_s: float = 120) -> None:
    """The master notices the dead driver and frees its executors."""
    deadline = time.monotonic() + timeout_s
    while spark_cluster_state(config)["activeapps"]:
        assert time.monotonic() < deadline, "the killed driver's application stays active"
        time.sleep(0.5)


def all_command_lines() -> list[str]:
    lines = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            lines.append(cmdline.read_bytes().decode(errors="replace"))
        except OSError:
            continue
    return lines


def worker_logs(config: StackConfig) -> list[str]:
    """The daemons' logs and every executor's stdout and stderr."""
    folder = config.server_dir("spark")
    return [p.read_text(errors="replace") for p in folder.rglob("*")
            if p.is_file() and (p.name in ("stdout", "stderr") or p.suffix == ".log")]


class Feeder(threading.Thread):
    """Sends trades in small chunks until stopped: data keeps flowing through a fault."""

    def __init__(self, pipeline: Pipeline, base: datetime, chunk: int = 30) -> None:
        super().__init__(daemon=True)
        self.pipeline, self.base, self.chunk = pipeline, base, chunk
        self.stopped = threading.Event()
        self.error: BaseException | None = None
        self.rng = random.Random(11)

    def run(self) -> None:
        n = 0
        try:
            while not self.stopped.is_set():
                trades = []
                for _ in range(self.chunk):
                    ts = self.base + timedelta(milliseconds=40 * n)
                    trades.append(Trade(SYMBOLS[n % 3], round(self.rng.uniform(10, 20), 2),
                                        float(self.rng.randint(0, 5)), ts, None,
                                        ts + timedelta(milliseconds=3)))
                    n += 1
                produce_trades(self.pipeline, trades)
                self.stopped.wait(0.5)
        except BaseException as err:  # reported by finish(), not lost in the thread
            self.error = err

    def finish(self) -> int:
        self.stopped.set()
        self.join(timeout=60)
        assert self.error is None, f"the feeder failed: {self.error!r}"
        return len(self.pipeline.sent)


# --- the data of the end-to-end test ------------------------------------------------------

BASE = datetime(2024, 3, 1, 23, 56, tzinfo=timezone.utc)  # crosses midnight UTC


def base_trades(rng: random.Random) -> list[Trade]:
    trades = []
    for n, symbol in enumerate(SYMBOLS):
        for i in range(80):
            ts = BASE + timedelta(milliseconds=i * 6_000 + n * 11 + rng.randrange(0, 900))
            trades.append(Trade(symbol, round(rng.uniform(100, 200), 2),
                                rng.choice([0.0, 1.0, round(rng.uniform(0, 50), 3)]), ts,
                                rng.choice([None, ["1", "12"]]),
                                ts + timedelta(milliseconds=rng.randrange(1, 200))))
    return sorted(trades, key=lambda t: t.trade_ts)


def poison() -> list[tuple[bytes, str]]:
    good = encode(Trade("AAPL", 150.0, 1.0, BASE, None, BASE))
    return [(b"\x01" + bytes(range(20)), "undecodable_avro"), (good + b"\x00", "trailing_bytes"),
            (encode(Trade("AAPL", -3.0, 1.0, BASE, None, BASE)), "bad_price")]


# --- tests --------------------------------------------------------------------------------


def test_stream_and_recompute_on_the_cluster_equal_the_reference(
        cluster: StackConfig, submit, pipeline: Pipeline, cassandra_session,
        cluster_report) -> None:
    started = time.monotonic()
    produce_trades(pipeline, base_trades(random.Random(20240301)))
    pipeline.sent.extend(produce(pipeline.bootstrap, pipeline.topic,
                                 [(b"poison", value, None, reason) for value, reason in poison()]))
    stream = submit(spark_submit.STREAM_JOB,
                    job_args(pipeline, pipeline.root / "checkpoints", available_now=True),
                    "e2e-stream")
    assert stream.process.wait(timeout=JOB_TIMEOUT_S) == 0, stream.output()[-4000:]
    stream_s = time.monotonic() - started
    assert_tables(cassandra_session, pipeline)
    # It ran on the cluster, with an executor on each worker.
    apps = []
    for ui_port in cluster.spark_worker_ui_ports:
        state = http_json(f"http://127.0.0.1:{ui_port}/json/")
        apps.append({e["appid"] for e in state["finishedexecutors"]
                     if e["appdesc"]["name"] == "market-stream-processor"})
    assert set.intersection(*apps), apps

    # The aggregates gone, the recompute rebuilds them on the cluster from `trades`.
    for table in ("minute_trades", "moving_means"):
        cassandra_session.execute(f"TRUNCATE {pipeline.keyspace}.{table}", timeout=60)
    last = max(s.trade.trade_ts for s in pipeline.trades)
    recompute = submit(spark_submit.RECOMPUTE_JOB, [
        "--from", BASE.isoformat(), "--to", (last + timedelta(seconds=1)).isoformat(),
        "--symbols", ",".join(SYMBOLS), "--keyspace", pipeline.keyspace,
        "--cassandra-host", pipeline.host, "--cassandra-port", str(pipeline.cassandra_port),
    ], f"recompute-{uuid.uuid4().hex[:6]}")
    assert recompute.process.wait(timeout=JOB_TIMEOUT_S) == 0, recompute.output()[-4000:]
    tables = assert_tables(cassandra_session, pipeline)
    stored, missing, duplicated = lost_and_duplicated(cassandra_session, pipeline)
    cluster_report(
        f"stream --available-now + recompute: {time.monotonic() - started:.0f}s "
        f"(stream {stream_s:.0f}s); sent={len(pipeline.trades)} trades + {len(poison())} poison,"
        f" stored={stored} missing={missing} duplicated={duplicated},"
        f" minute_trades={len(tables['minute_trades'])}"
        f" moving_means={len(tables['moving_means'])}; faults: none")


def test_worker_sigkilled_mid_stream_tasks_rescheduled_nothing_lost(
        cluster: StackConfig, submit, pipeline: Pipeline, cassandra_session,
        cluster_report) -> None:
    started = time.monotonic()
    checkpoints = pipeline.root / "checkpoints"
    feeder = Feeder(pipeline, datetime(2025, 6, 2, 9, 0, tzinfo=timezone.utc))
    feeder.start()
    job = submit(spark_submit.STREAM_JOB, job_args(pipeline, checkpoints, available_now=False),
                 "worker-kill")
    try:
        wait_until(lambda: batches(checkpoints) >= 2 and len(
            [e for e in executors(job) if e["isActive"]]) == 2,
            "two batches committed on two executors", job)
        worker = spark_cluster.workers(cluster)[0]
        worker_state = http_json(f"http://127.0.0.1:{cluster.spark_worker_ui_ports[0]}/json/")
        doomed = {str(e["id"]) for e in worker_state["executors"]}
        assert doomed, "the first worker runs no executor of the job"
        # Kill while one of its tasks runs, so that the task has to run again elsewhere;
        # whether it still runs a few milliseconds later is up to the scheduler.
        wait_until(lambda: any(str(e["id"]) in doomed and e["activeTasks"] > 0
                               for e in executors(job)),
                   "a task running on the first worker", job, poll_s=0.02)
        before_kill = batches(checkpoints)
        # The worker and its executor, as when their machine dies; trades keep coming.
        os.killpg(worker.pid(), signal.SIGKILL)
        killed_at = time.monotonic()
        port = cluster.spark_worker_ports[0]
        wait_until(lambda: port not in alive_workers(cluster),
                   "the master drops the dead worker", job)
        wait_until(lambda: all(not e["isActive"] for e in executors(job)
                               if str(e["id"]) in doomed), "the driver drops the lost executor",
                   job)
        # The batches go on with the surviving executor...
        wait_until(lambda: batches(checkpoints) >= before_kill + 2,
                   "two batches after the kill", job)
        # ...and the restarted worker gets a new executor of the job.
        seen = {str(e["id"]) for e in executors(job)}
        lifecycle.spark_up(cluster)
        wait_until(lambda: any(e["isActive"] and str(e["id"]) not in seen
                               for e in executors(job)), "a new executor", job)
        recovered_s = time.monotonic() - killed_at
        wait_until(lambda: batches(checkpoints) >= before_kill + 4,
                   "more batches with the new executor", job)
        feeder.finish()
        wait_for_tables(cassandra_session, pipeline, job)
        history = executors(job)
    finally:
        feeder.stopped.set()
        stopped = job.stop()
    assert stopped == 0, job.output()[-4000:]
    lost = [e for e in history if not e["isActive"]]
    assert {str(e["id"]) for e in lost} == doomed, history
    assert all(e.get("removeReason") for e in lost), history
    log = job.output()
    lost_tasks = len(re.findall(r"Lost task \S+ in stage", log))
    stored, missing, duplicated = lost_and_duplicated(cassandra_session, pipeline)
    assert (missing, duplicated) == (0, 0)
    cluster_report(
        f"worker SIGKILL mid-stream: {time.monotonic() - started:.0f}s; sent={len(pipeline.trades)}"
        f" stored={stored} missing={missing} duplicated={duplicated}; faults: executor(s)"
        f" {sorted(doomed)} lost ({lost[0].get('removeReason', '')[:60]!r}), {lost_tasks} task(s)"
        f" lost and rescheduled, executors over the run {[e['id'] for e in history]},"
        f" new executor {recovered_s:.0f}s after the kill")


def test_driver_sigkilled_and_resubmitted_resumes_from_its_checkpoint(
        cluster: StackConfig, submit, pipeline: Pipeline, cassandra_session,
        cluster_report) -> None:
    started = time.monotonic()
    checkpoints = pipeline.root / "checkpoints"
    args = job_args(pipeline, checkpoints, available_now=False)
    credentials = {"CASSANDRA_USERNAME": "pipeline", "CASSANDRA_PASSWORD": SECRET}
    feeder = Feeder(pipeline, datetime(2025, 6, 3, 9, 0, tzinfo=timezone.utc))
    feeder.start()
    first = submit(spark_submit.STREAM_JOB, args, "driver-first", env=credentials)
    try:
        wait_until(lambda: batches(checkpoints) >= 2 and lost_and_duplicated(
            cassandra_session, pipeline)[0] > 0, "two batches and rows in Cassandra", first)
        command_lines = all_command_lines()
        committed, before_kill = commit_files(checkpoints), batches(checkpoints)
        first.signal(signal.SIGKILL)  # spark-submit's JVM and the Python driver
        first.process.wait(timeout=60)
        killed_at = time.monotonic()
        wait_until_no_app(cluster)
        second = submit(spark_submit.STREAM_JOB, args, "driver-resubmitted", env=credentials)
        wait_until(lambda: new_batches(checkpoints, committed) >= 2,
                   "two batches after the resubmission", second)
        resumed_s = time.monotonic() - killed_at
        feeder.finish()
        wait_for_tables(cassandra_session, pipeline, second)
    finally:
        feeder.stopped.set()
    assert second.stop() == 0, second.output()[-4000:]
    # Resumed, not restarted: the batches committed before the kill are untouched and
    # the new ones continue their numbering.
    after = commit_files(checkpoints)
    assert {k: after[k] for k in committed} == committed
    for folder in {Path(k).parent for k in committed}:
        old = [int(Path(k).name) for k in committed if Path(k).parent == folder]
        new = [int(Path(k).name) for k in after if Path(k).parent == folder
               and k not in committed]
        assert new and min(new) == max(old) + 1, (folder, old, new)
    # The credentials reached the driver by environment only.
    assert not any(SECRET in line for line in command_lines)
    logs = [first.output(), second.output(), *worker_logs(cluster)]
    assert not any(SECRET in text for text in logs)
    stored, missing, duplicated = lost_and_duplicated(cassandra_session, pipeline)
    assert (missing, duplicated) == (0, 0)
    cluster_report(
        f"driver SIGKILL + resubmit: {time.monotonic() - started:.0f}s; sent="
        f"{len(pipeline.trades)} stored={stored} missing={missing} duplicated={duplicated};"
        f" faults: driver (spark-submit JVM + Python) SIGKILLed after {before_kill} batches,"
        f" resubmitted; its second batch from the checkpoint {resumed_s:.0f}s after the kill")


def test_cluster_leaves_no_process_when_stopped_and_restarts(cluster: StackConfig) -> None:
    """Stop and start again: down leaves no JVM of the cluster, up brings both workers back."""
    lifecycle.spark_down(cluster)
    deadline = time.monotonic() + 60
    while spark_pids(cluster.stack_dir):
        assert time.monotonic() < deadline, spark_pids(cluster.stack_dir)
        time.sleep(0.5)
    lifecycle.spark_up(cluster)
    assert alive_workers(cluster) == set(cluster.spark_worker_ports)


def test_run_on_cluster_supervises_spark_submit_of_the_stream_job(cluster: StackConfig) -> None:
    """`RUN_ON_CLUSTER=1 make run`: the stream-job program is a spark-submit to the cluster."""
    config = RunConfig(stack=cluster, live=False, symbols="AAPL", synthetic_rate=1.0,
                       on_cluster=True)
    job = next(p for p in run_pipeline.programs(config, {}) if p.name == "stream-job")
    home = spark_cluster.spark_home()
    assert job.command[:3] == [f"{home}/bin/spark-submit", "--master", cluster.spark_master_url]
    assert job.command[-3:] == [str(spark_submit.STREAM_JOB), "--avro-schema",
                                str(spark_submit.AVRO_SCHEMA)]
    assert job.env["STREAM_CHECKPOINT_ROOT"] == str(config.checkpoint_root)
    assert Path(job.command[job.command.index("--py-files") + 1]).is_file()


def test_status_lists_the_running_cluster(cluster: StackConfig, capsys) -> None:
    from stack.__main__ import main

    # Kafka and Cassandra run outside this private state folder, so they show as
    # stopped there and the status is not all ready: exit 1.
    assert main("status", cluster) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines[:2]] == [["kafka", "stopped"],
                                                        ["cassandra", "stopped"]]
    spark = {line.split()[0]: line.split()[1] for line in lines if line.startswith("spark-")}
    assert spark == {"spark-master": "ready", "spark-worker-1": "ready",
                     "spark-worker-2": "ready"}
