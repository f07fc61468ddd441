"""Faults on the job's side: SIGKILL, Cassandra down, poison records, broken checkpoints.

Each scenario runs the real stream job against the real stack, then compares every
Cassandra table with what plain Python computes from the records in the topic.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import signal
import subprocess
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from fault_testing import FaultReport
from pipeline_testing import (
    JOB_TIMEOUT_S,
    PROJECT_ROOT,
    QUERY,
    Pipeline,
    Sent,
    Trade,
    assert_tables,
    committed_batches,
    encode,
    job_command,
    produce,
    snapshot,
    wait_for,
    wait_for_batches,
)
from producer_testing import consume, records_in

from contract import exits
from producer.avro_codec import decode_record
from stack import cassandra, lifecycle, process
from stack.supervisor import Program, RestartPolicy, Supervisor

pytestmark = [pytest.mark.faults, pytest.mark.integration]

SYMBOLS = "BINANCE:BTCUSDT,BINANCE:ETHUSDT,AAPL"
STREAMING = ["--trigger-interval", "1 second"]


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def sent_from_topic(pipeline: Pipeline, expected: int,
                    poison: dict[bytes, str] | None = None) -> list[Sent]:
    """What the broker holds, as the reference sees it: trades decoded, poison labelled."""
    poison = poison or {}
    sent = []
    for r in consume(pipeline.bootstrap, pipeline.topic, expected, timeout=60):
        kafka_ts = _utc(r.timestamp)
        if r.value in poison:
            sent.append(Sent(r.partition, r.offset, kafka_ts, r.value, None, poison[r.value]))
            continue
        rec = decode_record(r.value)
        trade = Trade(rec["symbol"], rec["price"], rec["volume"], _utc(rec["trade_ts"]),
                      rec["conditions"], _utc(rec["ingest_ts"]))
        sent.append(Sent(r.partition, r.offset, kafka_ts, r.value, trade))
    return sent


def streaming_args(pipeline: Pipeline, checkpoint_root: Path) -> list[str]:
    args = pipeline.job_args(checkpoint_root)
    args.remove("--available-now")
    return [*args, *STREAMING]


def start_job(pipeline: Pipeline, args: list[str], log_name: str) -> subprocess.Popen:
    with (pipeline.root / f"{log_name}.log").open("w") as log:
        return subprocess.Popen(job_command("jobs.stream_processor", args), cwd=PROJECT_ROOT,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop_job(job: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(job.pid, sig)
    job.wait(timeout=60)


@pytest.fixture
def pipeline(stack, kafka_bootstrap, make_topic, make_keyspace, work_dir: Path) -> Pipeline:
    root = work_dir / f"faults-{uuid.uuid4().hex[:8]}"
    root.mkdir(parents=True)
    return Pipeline(make_topic(3), make_keyspace(), kafka_bootstrap, stack.host,
                    stack.cassandra_port, root)


def start_synthetic(run_producer, pipeline: Pipeline, dead_letters: str, *, count: int | None,
                    rate: int, seed: int):
    """The real producer, sending `count` synthetic trades (None: until stopped) at `rate`."""
    limit = ["--count", str(count)] if count is not None else []
    return run_producer(
        "synthetic", "--symbols", SYMBOLS, *limit, "--rate", str(rate), "--seed", str(seed),
        env={"KAFKA_BOOTSTRAP_SERVERS": pipeline.bootstrap, "KAFKA_TOPIC": pipeline.topic,
             "KAFKA_DEAD_LETTER_TOPIC": dead_letters})


def report_tables(fault_report, session, pipeline: Pipeline, scenario: str, broke: str,
                  outage_s: float, extra: str = "") -> None:
    """Report sent/stored/missing/duplicated for the trades table, from the rows themselves.

    Called whether or not the tables matched the reference, so a failing scenario
    reports what it actually lost or duplicated.
    """
    sent = {(s.partition, s.offset) for s in pipeline.trades}
    stored = [k[3:] for k in snapshot(session, pipeline.keyspace)["trades"]]
    # Rows beyond one per sent record: a repeated key, or a record that was never sent.
    duplicated = len(stored) - len(set(stored)) + len(set(stored) - sent)
    fault_report(FaultReport(scenario, broke, outage_s, len(sent), len(stored),
                             len(sent - set(stored)), duplicated, extra))


def test_job_sigkilled_mid_stream_and_restarted(pipeline, make_topic, run_producer,
                                                cassandra_session, fault_report) -> None:
    # The producer runs until stopped: data is still flowing when the job is killed,
    # however long its first micro-batch takes.
    producer = start_synthetic(run_producer, pipeline, make_topic(1), count=None, rate=200,
                               seed=21)
    checkpoint = pipeline.root / "checkpoints" / QUERY
    job = start_job(pipeline, streaming_args(pipeline, pipeline.root / "checkpoints"), "first")
    outage = 0.0
    try:
        wait_for_batches(checkpoint, 1, job)
        assert producer.process.poll() is None, producer.output
        at_kill = records_in(pipeline.bootstrap, pipeline.topic)
        killed_at = time.monotonic()
        stop_job(job, signal.SIGKILL)  # the driver and its JVM, mid-stream
        done = committed_batches(checkpoint)
        job = start_job(pipeline, streaming_args(pipeline, pipeline.root / "checkpoints"),
                        "restarted")
        # The restarted job has caught up with more than the killed one had seen.
        wait_for_batches(checkpoint, done + 1, job)
        outage = time.monotonic() - killed_at
        assert producer.stop() == 0, producer.output
        total = records_in(pipeline.bootstrap, pipeline.topic)
        assert total > at_kill, "no records were sent after the kill"
        pipeline.sent = sent_from_topic(pipeline, total)
        wait_for(lambda: assert_tables(cassandra_session, pipeline), 240, alive=job)
    finally:
        stop_job(job)
        report_tables(fault_report, cassandra_session, pipeline, "stream job SIGKILL",
                      "the stream job (driver and JVM)", outage)


def test_cassandra_down_for_30s_under_the_supervisor(pipeline, stack, make_topic, run_producer,
                                                     cassandra_session, fault_report) -> None:
    count = 6000
    producer = start_synthetic(run_producer, pipeline, make_topic(1), count=count, rate=150,
                               seed=33)
    checkpoints = pipeline.root / "checkpoints"
    job = Program("stream-job", job_command("jobs.stream_processor",
                                            streaming_args(pipeline, checkpoints)),
                  fatal_exit_codes=exits.PERMANENT)
    supervisor = Supervisor([job], pipeline.root / "logs", dict(os.environ),
                            RestartPolicy(initial_backoff_s=2, max_backoff_s=10))
    runner = threading.Thread(target=supervisor.run, daemon=True)
    runner.start()
    outage = 0.0
    try:
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while committed_batches(checkpoints / QUERY) < 2:
            assert runner.is_alive() and time.monotonic() < deadline, "job never committed"
            time.sleep(0.5)
        node = cassandra.server(stack)
        stopped_at = time.monotonic()
        process.stop_process(node.pid(), stack.stop_timeout_s)
        time.sleep(30)
        lifecycle.up(stack)
        outage = time.monotonic() - stopped_at

        assert producer.wait(timeout=180) == 0, producer.output
        pipeline.sent = sent_from_topic(pipeline, count)
        _await_reconnect(cassandra_session)
        wait_for(lambda: assert_tables(cassandra_session, pipeline), 300)
        assert runner.is_alive(), "the supervisor gave up"
    finally:
        supervisor.stop()
        runner.join(timeout=90)
        report_tables(fault_report, cassandra_session, pipeline, "cassandra stopped",
                      "Cassandra", outage,
                      extra=f"job restarts by the supervisor: {supervisor.children[0].restarts}")


def _await_reconnect(session, timeout_s: float = 120) -> None:
    """The test's own driver session reconnects to the restarted node."""
    from cassandra.cluster import NoHostAvailable

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            session.execute("SELECT release_version FROM system.local", timeout=5)
            return
        except NoHostAvailable:
            assert time.monotonic() < deadline, "the driver never reconnected to Cassandra"
            time.sleep(1)


def test_poison_records_are_kept_and_the_job_keeps_running(pipeline, cassandra_session,
                                                           fault_report) -> None:
    rng = random.Random(99)
    base = datetime(2025, 6, 2, 14, 30, tzinfo=timezone.utc)

    def trade(i: int) -> Trade:
        ts = base + timedelta(milliseconds=750 * i)
        return Trade(("AAPL", "MSFT")[i % 2], round(rng.uniform(50, 60), 2),
                     float(rng.randint(1, 9)), ts, None, ts + timedelta(milliseconds=40))

    good = [trade(i) for i in range(120)]
    valid = encode(good[0])
    # Just under the broker's 1 MiB limit (message.max.bytes 1048588 less batch overhead);
    # a leading 0x01 is a negative string length, so it can never decode.
    near_limit = b"\x01" + rng.randbytes(1_048_000)
    negative = encode(dataclasses.replace(good[1], price=-12.5))
    poison = {rng.randbytes(48): None, valid[: len(valid) // 2]: "undecodable_avro",
              negative: "bad_price", near_limit: "undecodable_avro"}

    checkpoints = pipeline.root / "checkpoints"
    job = start_job(pipeline, streaming_args(pipeline, checkpoints), "poisoned")
    try:
        records = ([(t.symbol.encode(), encode(t), t, None) for t in good[:60]]
                   + [(b"poison", value, None, reason) for value, reason in poison.items()]
                   + [(t.symbol.encode(), encode(t), t, None) for t in good[60:]])
        sent = produce(pipeline.bootstrap, pipeline.topic, records)
        # The random bytes' reason depends on how they happen to decode; it is whatever
        # the job stored, as long as it is one of the job's documented reasons.
        pipeline.sent = [s for s in sent if s.reason is not None or s.trade is not None]
        random_bytes = next(s for s in sent if s.trade is None and s.reason is None)
        stored_reason = _await_reason(cassandra_session, pipeline, random_bytes, job)
        assert stored_reason.split(":")[0] in {"undecodable_avro", "trailing_bytes",
                                               "bad_symbol", "bad_price", "bad_volume",
                                               "missing_trade_ts", "missing_ingest_ts",
                                               "future_trade_ts", "stale_trade_ts"}
        pipeline.sent.append(dataclasses.replace(random_bytes, reason=stored_reason))
        wait_for(lambda: assert_tables(cassandra_session, pipeline), 240, alive=job)
        assert job.poll() is None, "poison stopped the job"
    finally:
        stop_job(job)
        report_tables(fault_report, cassandra_session, pipeline, "poison records",
                      "the topic with 4 poison records (one of 1 MB)", 0.0,
                      extra=f"rejected_records={len(poison)}")


def _await_reason(session, pipeline: Pipeline, record: Sent, job) -> str:
    reason: list[str] = []

    def check() -> None:
        row = session.execute(
            f"SELECT reason FROM {pipeline.keyspace}.rejected_records WHERE kafka_topic = %s"
            " AND kafka_date = %s AND kafka_partition = %s AND kafka_offset = %s",
            (pipeline.topic, record.kafka_ts.date(), record.partition, record.offset)).one()
        assert row is not None
        reason.append(row.reason)

    wait_for(check, JOB_TIMEOUT_S, alive=job)
    return reason[-1]


def test_checkpoint_folder_that_is_a_file_fails_fast(pipeline, fault_report) -> None:
    blocker = pipeline.root / "not-a-folder"
    blocker.write_text("")
    started = time.monotonic()
    proc = subprocess.run(job_command("jobs.stream_processor",
                                      pipeline.job_args(blocker)), cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output
    assert f"checkpoint folder {blocker}/{QUERY} is not usable: Not a directory" in output
    fault_report(FaultReport("checkpoint is a file", "the checkpoint folder",
                             time.monotonic() - started, 0, 0, 0, 0,
                             extra="exit 2 with a clear error before Spark started"))


def test_checkpoint_disk_full_mid_stream_fails_clearly(pipeline, fault_report) -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("the disk-full scenario mounts a small tmpfs and needs root in CI")
        pytest.skip("needs root to mount a small tmpfs")
    mount = pipeline.root / "small-disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], check=True)
    try:
        _disk_full_scenario(pipeline, mount, fault_report)
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _disk_full_scenario(pipeline: Pipeline, mount: Path, fault_report) -> None:
    base = datetime(2025, 6, 3, 9, 0, tzinfo=timezone.utc)
    trades = [Trade("AAPL", 100.0 + i, 1.0, base + timedelta(seconds=i), None,
                    base + timedelta(seconds=i)) for i in range(40)]
    as_records = [(b"AAPL", encode(t), t, None) for t in trades]
    produce(pipeline.bootstrap, pipeline.topic, as_records[:20])
    job = start_job(pipeline, streaming_args(pipeline, mount), "disk-full")
    try:
        wait_for_batches(mount / QUERY, 1, job)
        filled_at = time.monotonic()
        with contextlib.suppress(OSError), open(mount / "filler", "wb") as filler:
            while True:
                filler.write(b"\0" * (1 << 20))
        produce(pipeline.bootstrap, pipeline.topic, as_records[20:])
        code = job.wait(timeout=JOB_TIMEOUT_S)  # a failure, not a stall
        output = (pipeline.root / "disk-full.log").read_text()
        assert code == 1, output[-3000:]
        assert "No space left on device" in output, output[-3000:]
        # A restart refuses to start on the full disk, with the reason, and exit 2
        # tells the supervisor not to retry.
        restart = subprocess.run(job_command("jobs.stream_processor",
                                             streaming_args(pipeline, mount)),
                                 cwd=PROJECT_ROOT, capture_output=True, text=True,
                                 timeout=120, check=False)
        assert restart.returncode == 2
        assert "is not usable: No space left on device" in restart.stdout + restart.stderr
    finally:
        if job.poll() is None:
            stop_job(job, signal.SIGKILL)
    fault_report(FaultReport("checkpoint disk full", "the checkpoint disk (16 MiB tmpfs)",
                             time.monotonic() - filled_at, 0, 0, 0, 0,
                             extra="job exited 1 naming ENOSPC; restart refused with exit 2"))
