"""The stream job on the real stack: Kafka topic -> `python -m jobs.stream_processor` -> Cassandra.

One fresh topic and keyspace for the module. The first run is killed (SIGKILL) in the
middle of the stream and restarted from its checkpoints; every table is then compared
with what plain Python computes from the records the test sent. Later tests rerun the
job on the same offsets, replay everything from a fresh checkpoint, and send trades
later than the watermark before recomputing their range with jobs.recompute.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import re
import signal
import subprocess
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pipeline_testing import (
    JOB_TIMEOUT_S,
    PROJECT_ROOT,
    Pipeline,
    Trade,
    assert_same,
    assert_tables,
    committed_batches,
    dropped_late,
    encode,
    group_command_lines,
    job_command,
    produce,
    produce_trades,
    run_job,
    snapshot,
    wait_for_batches,
)

pytestmark = pytest.mark.integration

# The data crosses midnight UTC, so trades land in two trade_date partitions.
BASE = datetime(2024, 3, 1, 23, 56, tzinfo=timezone.utc)
SYMBOLS = ("AAPL", "MSFT", "BINANCE:BTCUSDT")
SECRET = f"pw-{uuid.uuid4().hex}"


def base_trades(rng: random.Random) -> list[tuple[datetime, Trade]]:
    """(arrival order key, trade): ~100 trades per symbol over 8 minutes, some special."""
    result = []
    for n, symbol in enumerate(SYMBOLS):
        for i in range(100):
            ts = BASE + timedelta(milliseconds=i * 4_800 + n * 7 + rng.randrange(0, 900))
            # Out of order: a few trades arrive after later ones (well within 30 s).
            arrival = ts + timedelta(seconds=8 if i % 17 == 5 else 0)
            result.append((arrival, trade_at(rng, symbol, ts)))
    # Same-millisecond trades, two of them on a minute boundary.
    for ts in (BASE + timedelta(minutes=2), BASE + timedelta(seconds=119.999),
               BASE + timedelta(seconds=200.5)):
        for _ in range(3):
            result.append((ts, trade_at(rng, "AAPL", ts)))
    # A minute of MSFT with zero volume only is impossible among the others; a zero-volume
    # symbol of its own exercises the VWAP fallback.
    for i in range(4):
        ts = BASE + timedelta(seconds=61 + i * 5)
        result.append((ts, Trade("ZERO", 10.0 + i, 0.0, ts, None, ts)))
    return result


def trade_at(rng: random.Random, symbol: str, ts: datetime) -> Trade:
    return Trade(
        symbol=symbol,
        price=round(rng.uniform(100, 200), 2),
        volume=rng.choice([0.0, 1.0, 2.5, round(rng.uniform(0, 50), 3)]),
        trade_ts=ts,
        conditions=rng.choice([None, ["1", "12"], []]),
        ingest_ts=ts + timedelta(milliseconds=rng.randrange(1, 200)),
    )


def poison(rng: random.Random) -> list[tuple[bytes, str]]:
    good = encode(trade_at(rng, "AAPL", BASE))
    negative = encode(Trade("AAPL", -3.0, 1.0, BASE, None, BASE))
    return [
        # zigzag(0x01) = -1 as the symbol's length: undecodable whatever follows.
        (b"\x01" + rng.randbytes(30), "undecodable_avro"),
        (good[:9], "undecodable_avro"),
        (good + b"\x00", "trailing_bytes"),
        (negative, "bad_price"),
    ]


def kill_mid_stream(pipeline: Pipeline, checkpoint_root: Path) -> None:
    """Start the job with small batches and SIGKILL it, JVM included, after two batches.

    It runs with Cassandra credentials in its environment (the local Cassandra accepts
    any): they must appear in no process's arguments and in no log line.
    """
    args = [*pipeline.job_args(checkpoint_root), "--max-offsets-per-trigger", "40"]
    env = {**os.environ, "CASSANDRA_USERNAME": "pipeline", "CASSANDRA_PASSWORD": SECRET}
    log_path = pipeline.root / "killed.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(job_command("jobs.stream_processor", args), cwd=PROJECT_ROOT,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                env=env)
    try:
        wait_for_batches(checkpoint_root / "trades", 2, proc, log_path)
        command_lines = group_command_lines(proc.pid)
        assert proc.poll() is None, "the job ended before it could be killed"
    finally:
        # The process group holds the Python driver and the JVM it started.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert committed_batches(checkpoint_root / "trades") < math.ceil(len(pipeline.sent) / 40)
    assert any("java" in line for line in command_lines), command_lines
    assert not any(SECRET in line for line in command_lines)
    assert SECRET not in log_path.read_text()


# --- tests --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pipeline(kafka_bootstrap, stack, make_topic, make_keyspace, cassandra_session,
             work_dir: Path) -> Pipeline:
    """Base data sent, the job killed mid-stream and restarted to the end."""
    root = work_dir / f"stream-e2e-{uuid.uuid4().hex[:8]}"
    root.mkdir(parents=True)
    pipeline = Pipeline(make_topic(3), make_keyspace(), kafka_bootstrap, stack.host,
                        stack.cassandra_port, root)
    rng = random.Random(20240301)
    arrivals = sorted(base_trades(rng), key=lambda pair: pair[0])
    produce_trades(pipeline, [trade for _, trade in arrivals])
    pipeline.sent.extend(produce(
        kafka_bootstrap, pipeline.topic,
        [(b"poison", value, None, reason) for value, reason in poison(rng)]))

    kill_mid_stream(pipeline, root / "checkpoints")
    run_job(pipeline, "jobs.stream_processor", pipeline.job_args(root / "checkpoints"),
            "restarted")
    return pipeline


def test_tables_equal_independent_computation_after_kill_and_restart(
    pipeline: Pipeline, cassandra_session
) -> None:
    tables = assert_tables(cassandra_session, pipeline)
    # Sanity of the data itself: both days, the tie groups and the poison are there.
    assert {key[1] for key in tables["trades"]} == {date(2024, 3, 1), date(2024, 3, 2)}
    assert len(tables["rejected_records"]) == 4


def test_rerun_and_full_replay_change_nothing(pipeline: Pipeline, cassandra_session) -> None:
    before = snapshot(cassandra_session, pipeline.keyspace)
    run_job(pipeline, "jobs.stream_processor", pipeline.job_args(pipeline.root / "checkpoints"),
            "rerun")
    assert snapshot(cassandra_session, pipeline.keyspace) == before

    # A fresh checkpoint replays every offset in one batch: the same rows are rewritten.
    # Sums now add up in another order (floats to REL_TOL), and rejected_records.seen_at,
    # the time of the last write, moves.
    run_job(pipeline, "jobs.stream_processor", pipeline.job_args(pipeline.root / "replay"),
            "replay")
    after = snapshot(cassandra_session, pipeline.keyspace)
    for table in ("trades", "minute_trades", "moving_means"):
        assert_same(after[table], before[table], table)

    def without_seen_at(rows: dict) -> dict:
        return {key: value[:3] for key, value in rows.items()}

    assert without_seen_at(after["rejected_records"]) == without_seen_at(
        before["rejected_records"])


def test_late_trades_are_kept_logged_and_recomputed(pipeline: Pipeline, cassandra_session,
                                                   ) -> None:
    on_time = list(pipeline.trades)
    rng = random.Random(7)
    # Minutes older than the watermark (about 00:03:30 after the base data).
    late = [trade_at(rng, symbol, BASE + timedelta(seconds=5 + 13 * i))
            for i, symbol in enumerate(SYMBOLS * 3)]
    produce_trades(pipeline, late)
    output = run_job(pipeline, "jobs.stream_processor",
                     pipeline.job_args(pipeline.root / "checkpoints"), "late")

    dropped = dropped_late(output)
    assert dropped["minute_trades"] > 0 and dropped["moving_means"] > 0, output[-4000:]
    # The trades are stored; the aggregates still are those of the on-time trades.
    assert_tables(cassandra_session, pipeline, trades=on_time)

    last_late = max(t.trade_ts for t in late)
    run_job(pipeline, "jobs.recompute", [
        "--from", BASE.isoformat(), "--to", (last_late + timedelta(seconds=1)).isoformat(),
        # The late trades' symbols: the job reads just their (symbol, day) partitions.
        "--symbols", ",".join(SYMBOLS),
        "--master", "local[2]", "--keyspace", pipeline.keyspace,
        "--cassandra-host", pipeline.host, "--cassandra-port", str(pipeline.cassandra_port),
    ], "recompute")
    assert_tables(cassandra_session, pipeline)


def test_a_failing_query_makes_the_job_exit_non_zero_with_its_error(pipeline: Pipeline) -> None:
    args = pipeline.job_args(pipeline.root / "failing")
    args[args.index("--keyspace") + 1] = "no_such_keyspace"
    with (pipeline.root / "failing.log").open("w") as log:
        proc = subprocess.run(job_command("jobs.stream_processor", args), cwd=PROJECT_ROOT,
                              stdout=log, stderr=subprocess.STDOUT, timeout=JOB_TIMEOUT_S,
                              check=False)
    output = (pipeline.root / "failing.log").read_text()
    assert proc.returncode == 1, output[-4000:]
    # The summary line names the cause; the full error follows it.
    assert re.search(r"ERROR jobs.stream_processor: query \w+ failed: \S*AnalysisException: "
                     r"Couldn't find no_such_keyspace", output), output[-4000:]
