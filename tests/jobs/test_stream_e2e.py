"""The stream job on the real stack: Kafka topic -> `python -m jobs.stream_processor` -> Cassandra.

One fresh topic and keyspace for the module. The first run is killed (SIGKILL) in the
middle of the stream and restarted from its checkpoint; every table is then compared
with what plain Python computes from the records the test sent. Later tests rerun the
job on the same offsets, replay everything from a fresh checkpoint, send trades an
hour and a day late (counted in their windows at once) and one between two stored trades
of a written second, and check that jobs.recompute rebuilds exactly what the stream
wrote. Every table, candles at every resolution, tickers and symbols included, is
compared each time.
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
    QUERY,
    Pipeline,
    Trade,
    assert_same,
    assert_tables,
    committed_batches,
    encode,
    exactly,
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
DERIVED = ("minute_trades", "moving_means", "candles", "ticker_24h", "symbols")
# A second of the day after, between whose stored trades a late one lands.
INTERLEAVED = BASE + timedelta(days=1, minutes=30, seconds=30)


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
        wait_for_batches(checkpoint_root / QUERY, 2, proc, log_path)
        command_lines = group_command_lines(proc.pid)
        assert proc.poll() is None, "the job ended before it could be killed"
    finally:
        # The process group holds the Python driver and the JVM it started.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert committed_batches(checkpoint_root / QUERY) < math.ceil(len(pipeline.sent) / 40)
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


def test_stream_progress_accounts_for_every_record_and_the_lag(
    pipeline: Pipeline, cassandra_session
) -> None:
    """One stream_progress row per batch: counts that add up to the topic, and a lag
    that is what the topic held beyond each batch (all records were sent first)."""
    today = datetime.now(timezone.utc).date()
    rows = cassandra_session.execute(
        f"SELECT * FROM {pipeline.keyspace}.stream_progress WHERE job = %s"
        " AND day IN (%s, %s)", (QUERY, today - timedelta(days=1), today))
    # A batch cut short by the kill and replayed has two rows, with the same offsets.
    by_batch = {}
    for row in sorted(rows, key=lambda r: r.finished_at):
        by_batch[row.batch_id] = row
    batches = [by_batch[b] for b in sorted(by_batch)]
    assert batches and [b.batch_id for b in batches] == list(range(len(batches)))
    total = len(pipeline.sent)
    read = 0
    for row in batches:
        assert row.records == row.trades + row.rejected
        assert row.started_at <= row.trades_written_at <= row.finished_at
        read += row.records
        assert row.kafka_lag_records == total - read, row
        assert (row.kafka_lag_ms == 0) == (row.kafka_lag_records == 0), row
        if row.trades:
            assert 0 <= row.trade_latency_p50_ms <= row.trade_latency_p99_ms
    assert read == total
    assert sum(row.rejected for row in batches) == 4


def test_rerun_and_full_replay_change_nothing(pipeline: Pipeline, cassandra_session) -> None:
    before = snapshot(cassandra_session, pipeline.keyspace)
    run_job(pipeline, "jobs.stream_processor", pipeline.job_args(pipeline.root / "checkpoints"),
            "rerun")
    assert exactly(snapshot(cassandra_session, pipeline.keyspace)) == exactly(before)

    # A fresh checkpoint replays every offset in one batch: the same rows are rewritten.
    # Sums now add up in another order (floats to REL_TOL), and rejected_records.seen_at,
    # the time of the last write, moves.
    run_job(pipeline, "jobs.stream_processor", pipeline.job_args(pipeline.root / "replay"),
            "replay")
    after = snapshot(cassandra_session, pipeline.keyspace)
    for table in ("trades", "minute_trades", "moving_means", "candles", "ticker_24h",
                  "symbols"):
        assert_same(after[table], before[table], table)

    def without_seen_at(rows: dict) -> dict:
        return {key: value[:3] for key, value in rows.items()}

    assert without_seen_at(after["rejected_records"]) == without_seen_at(
        before["rejected_records"])


def test_trades_an_hour_and_a_day_late_are_counted_and_recompute_agrees(
    pipeline: Pipeline, cassandra_session
) -> None:
    rng = random.Random(7)
    day_later = BASE + timedelta(days=1)
    # The stream moves on by a day, then by another hour...
    current = [trade_at(rng, symbol, day_later + timedelta(seconds=3 * i))
               for i, symbol in enumerate(SYMBOLS * 20)]
    current += [trade_at(rng, symbol, day_later + timedelta(hours=1, seconds=2 * i))
                for i, symbol in enumerate(SYMBOLS * 10)]
    # Two trades of one second, for a late one to land between them.
    current += [trade_at(rng, "AAPL", INTERLEAVED + timedelta(milliseconds=ms))
                for ms in (100, 900)]
    produce_trades(pipeline, current)
    run_job(pipeline, "jobs.stream_processor", pipeline.job_args(pipeline.root / "checkpoints"),
            "current")
    # ...before trades of windows that already hold data arrive: a day late (the base
    # data's minutes) and an hour late (the minutes a day later).
    late = [trade_at(rng, symbol, BASE + timedelta(seconds=5 + 13 * i))
            for i, symbol in enumerate(SYMBOLS * 3)]
    late += [trade_at(rng, symbol, day_later + timedelta(seconds=7 + 11 * i))
             for i, symbol in enumerate(SYMBOLS * 3)]
    late.append(trade_at(rng, "AAPL", INTERLEAVED + timedelta(milliseconds=500)))
    produce_trades(pipeline, late)
    output = run_job(pipeline, "jobs.stream_processor",
                     pipeline.job_args(pipeline.root / "checkpoints"), "late")
    # Its second was rebuilt from the stored trades, every coarser candle from its parts.
    assert re.search(r"rebuilt the 1s part of AAPL at \S+:30\+00:00 from 3 stored trades",
                     output), output[-4000:]
    streamed = assert_tables(cassandra_session, pipeline)

    # The batch recompute, straight from `trades`, rewrites the same rows into emptied
    # tables.
    for table in DERIVED:
        cassandra_session.execute(f"TRUNCATE {pipeline.keyspace}.{table}", timeout=60)
    run_job(pipeline, "jobs.recompute", [
        "--from", BASE.isoformat(), "--to", (day_later + timedelta(hours=2)).isoformat(),
        # The trades' symbols: the job reads just their (symbol, day) partitions.
        "--symbols", ",".join([*SYMBOLS, "ZERO"]),
        "--master", "local[2]", "--keyspace", pipeline.keyspace,
        "--cassandra-host", pipeline.host, "--cassandra-port", str(pipeline.cassandra_port),
    ], "recompute")
    recomputed = assert_tables(cassandra_session, pipeline)
    for table in DERIVED:
        assert_same(recomputed[table], streamed[table], table)


def run_failing(pipeline: Pipeline, keyspace: str, name: str) -> tuple[int, str]:
    args = pipeline.job_args(pipeline.root / name)
    args[args.index("--keyspace") + 1] = keyspace
    with (pipeline.root / f"{name}.log").open("w") as log:
        proc = subprocess.run(job_command("jobs.stream_processor", args), cwd=PROJECT_ROOT,
                              stdout=log, stderr=subprocess.STDOUT, timeout=JOB_TIMEOUT_S,
                              check=False)
    return proc.returncode, (pipeline.root / f"{name}.log").read_text()


def test_a_failing_query_makes_the_job_exit_non_zero_with_its_error(
    pipeline: Pipeline, make_keyspace, cassandra_session
) -> None:
    keyspace = make_keyspace()
    cassandra_session.execute(f"DROP TABLE {keyspace}.trades", timeout=60)
    code, output = run_failing(pipeline, keyspace, "failing")
    assert code == 1, output[-4000:]
    # The summary line names the cause; the full error follows it.
    assert re.search(rf"ERROR jobs.stream_processor: query market failed: \S*AnalysisException: "
                     rf"Couldn't find table trades in {keyspace}", output), output[-4000:]


def test_a_missing_keyspace_is_named_before_spark_starts(pipeline: Pipeline) -> None:
    code, output = run_failing(pipeline, "no_such_keyspace", "no-keyspace")
    assert code == 1, output[-4000:]
    assert re.search(r"ERROR jobs.stream_processor: Cassandra keyspace no_such_keyspace is not "
                     r"usable: keyspace no_such_keyspace does not exist;",
                     output), output[-4000:]
    assert "Traceback" not in output
