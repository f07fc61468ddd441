"""The stream job on the real stack: Kafka topic -> `python -m jobs.stream_processor` -> Cassandra.

One fresh topic and keyspace for the module. The first run is killed (SIGKILL) in the
middle of the stream and restarted from its checkpoints; every table is then compared
with what plain Python computes from the records the test sent. Later tests rerun the
job on the same offsets, replay everything from a fresh checkpoint, and send trades
later than the watermark before recomputing their range with jobs.recompute.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import fastavro
import pytest

pytestmark = pytest.mark.integration

PROJECT_ROOT = Path(__file__).resolve().parents[2]
AVRO_SCHEMA = fastavro.parse_schema(json.loads((PROJECT_ROOT / "schemas/trade.avsc").read_text()))
# The data crosses midnight UTC, so trades land in two trade_date partitions.
BASE = datetime(2024, 3, 1, 23, 56, tzinfo=timezone.utc)
SYMBOLS = ("AAPL", "MSFT", "BINANCE:BTCUSDT")
MOVING_LENGTH, MOVING_SLIDE = timedelta(minutes=5), timedelta(seconds=30)
REL_TOL = 1e-9
JOB_TIMEOUT_S = 240
SECRET = f"pw-{uuid.uuid4().hex}"


@dataclass(frozen=True)
class Trade:
    symbol: str
    price: float
    volume: float
    trade_ts: datetime
    conditions: list[str] | None
    ingest_ts: datetime


@dataclass(frozen=True)
class Sent:
    """A record as the broker stored it."""

    partition: int
    offset: int
    kafka_ts: datetime
    value: bytes
    trade: Trade | None = None
    reason: str | None = None


@dataclass
class Pipeline:
    topic: str
    keyspace: str
    bootstrap: str
    host: str
    cassandra_port: int
    root: Path
    sent: list[Sent] = field(default_factory=list)
    started: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    @property
    def trades(self) -> list[Sent]:
        return [s for s in self.sent if s.trade is not None]

    def job_args(self, checkpoint_root: Path) -> list[str]:
        return [
            "--available-now", "--master", "local[2]", "--bootstrap-servers", self.bootstrap,
            "--topic", self.topic, "--keyspace", self.keyspace, "--cassandra-host", self.host,
            "--cassandra-port", str(self.cassandra_port),
            "--checkpoint-root", str(checkpoint_root),
        ]


# --- data ------------------------------------------------------------------------------


def encode(trade: Trade) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, AVRO_SCHEMA, trade.__dict__)
    return buffer.getvalue()


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


def produce(bootstrap: str, topic: str, records: Iterable[tuple[bytes, bytes, Trade | None,
                                                                   str | None]]) -> list[Sent]:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    futures = [(producer.send(topic, key=key, value=value), value, trade, reason)
               for key, value, trade, reason in records]
    producer.flush()
    sent = []
    for future, value, trade, reason in futures:
        meta = future.get(timeout=30)
        kafka_ts = datetime.fromtimestamp(meta.timestamp / 1000, tz=timezone.utc)
        sent.append(Sent(meta.partition, meta.offset, kafka_ts, value, trade, reason))
    producer.close()
    return sent


def produce_trades(pipeline: Pipeline, trades: Iterable[Trade]) -> None:
    records = [(t.symbol.encode(), encode(t), t, None) for t in trades]
    pipeline.sent.extend(produce(pipeline.bootstrap, pipeline.topic, records))


# --- expected tables, in plain Python ----------------------------------------------------


def naive(ts: datetime) -> datetime:
    """The driver returns timestamps as naive UTC datetimes, truncated to milliseconds."""
    return ts.astimezone(timezone.utc).replace(tzinfo=None)


def floor_to(ts: datetime, step: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    return epoch + ((ts - epoch) // step) * step


def expected_trades(pipeline: Pipeline, sent: list[Sent]) -> dict:
    return {
        (s.trade.symbol, s.trade.trade_ts.date(), naive(s.trade.trade_ts), s.partition,
         s.offset): (s.trade.price, s.trade.volume, s.trade.conditions or None,
                     naive(s.trade.ingest_ts), pipeline.topic)
        for s in sent
    }


def expected_minutes(sent: list[Sent]) -> dict:
    groups: dict[tuple, list[Sent]] = defaultdict(list)
    for s in sent:
        groups[s.trade.symbol, floor_to(s.trade.trade_ts, timedelta(minutes=1))].append(s)
    result = {}
    for (symbol, start), members in groups.items():
        ordered = sorted(members, key=lambda s: (s.trade.trade_ts, s.partition, s.offset))
        prices = [s.trade.price for s in members]
        volume = sum(s.trade.volume for s in members)
        avg = sum(prices) / len(prices)
        notional = sum(s.trade.price * s.trade.volume for s in members)
        result[symbol, naive(start)] = (
            naive(start + timedelta(minutes=1)), len(members), avg,
            ordered[0].trade.price, max(prices), min(prices), ordered[-1].trade.price,
            volume, notional / volume if volume > 0 else avg,
        )
    return result


def expected_moving(sent: list[Sent]) -> dict:
    groups: dict[tuple, list[float]] = defaultdict(list)
    for s in sent:
        start = floor_to(s.trade.trade_ts, MOVING_SLIDE)
        while start + MOVING_LENGTH > s.trade.trade_ts:
            groups[s.trade.symbol, start].append(s.trade.price)
            start -= MOVING_SLIDE
    return {
        (symbol, naive(start + MOVING_LENGTH)): (
            naive(start), len(prices), sum(prices) / len(prices),
            math.exp(sum(math.log(p) for p in prices) / len(prices)),
            len(prices) / sum(1 / p for p in prices),
        )
        for (symbol, start), prices in groups.items()
    }


def expected_rejected(pipeline: Pipeline) -> dict:
    return {
        (pipeline.topic, s.kafka_ts.date(), s.partition, s.offset):
            (naive(s.kafka_ts), s.value, s.reason)
        for s in pipeline.sent if s.reason is not None
    }


# --- actual tables ------------------------------------------------------------------------


def read_table(session, keyspace: str, table: str, key: list[str], values: list[str]) -> dict:
    rows = session.execute(f"SELECT {', '.join(key + values)} FROM {keyspace}.{table}")
    return {
        tuple(as_python(getattr(r, c)) for c in key): tuple(as_python(getattr(r, c))
                                                            for c in values)
        for r in rows
    }


def as_python(value):
    if type(value).__name__ == "Date":  # cassandra.util.Date
        return value.date()
    if isinstance(value, (list, tuple)):
        # An empty list and no list are the same to Cassandra.
        return list(value) or None
    return value


def snapshot(session, keyspace: str) -> dict[str, dict]:
    return {
        "trades": read_table(
            session, keyspace, "trades",
            ["symbol", "trade_date", "trade_ts", "kafka_partition", "kafka_offset"],
            ["price", "volume", "conditions", "ingest_ts", "kafka_topic"]),
        "minute_trades": read_table(
            session, keyspace, "minute_trades", ["symbol", "window_start"],
            ["window_end", "trade_count", "avg_price", "open_price", "high_price",
             "low_price", "close_price", "total_volume", "vwap"]),
        "moving_means": read_table(
            session, keyspace, "moving_means", ["symbol", "window_end"],
            ["window_start", "trade_count", "arithmetic_mean", "geometric_mean",
             "harmonic_mean"]),
        "rejected_records": read_table(
            session, keyspace, "rejected_records",
            ["kafka_topic", "kafka_date", "kafka_partition", "kafka_offset"],
            ["kafka_ts", "payload", "reason", "seen_at"]),
    }


def assert_same(actual: dict, expected: dict, table: str) -> None:
    """Same keys; per row, equal values, floats to REL_TOL."""
    missing, extra = expected.keys() - actual.keys(), actual.keys() - expected.keys()
    assert not missing and not extra, (
        f"{table}: {len(missing)} rows missing, e.g. {sorted(missing)[:3]}; "
        f"{len(extra)} unexpected, e.g. {sorted(extra)[:3]}")
    for key, want in expected.items():
        got = actual[key]
        same = all(
            math.isclose(g, w, rel_tol=REL_TOL) if isinstance(w, float) else g == w
            for g, w in zip(got, want, strict=True)
        )
        assert same, f"{table} {key}: got {got}, expected {want}"


def assert_tables(session, pipeline: Pipeline, trades: list[Sent] | None = None) -> dict:
    """Every table equals the expectation from `trades` (default: every trade sent)."""
    trades = pipeline.trades if trades is None else trades
    tables = snapshot(session, pipeline.keyspace)
    assert_same(tables["trades"], expected_trades(pipeline, pipeline.trades), "trades")
    assert_same(tables["minute_trades"], expected_minutes(trades), "minute_trades")
    assert_same(tables["moving_means"], expected_moving(trades), "moving_means")
    rejected = {k: v[:3] for k, v in tables["rejected_records"].items()}
    assert_same(rejected, expected_rejected(pipeline), "rejected_records")
    now = datetime.now(timezone.utc)
    for *_, seen_at in tables["rejected_records"].values():
        assert naive(pipeline.started) <= seen_at <= naive(now)
    return tables


# --- running the jobs ---------------------------------------------------------------------


def job_command(module: str, args: list[str]) -> list[str]:
    return [sys.executable, "-m", module, *args]


def run_job(pipeline: Pipeline, module: str, args: list[str], log_name: str) -> str:
    log_path = pipeline.root / f"{log_name}.log"
    with log_path.open("w") as log:
        proc = subprocess.run(job_command(module, args), cwd=PROJECT_ROOT, stdout=log,
                              stderr=subprocess.STDOUT, timeout=JOB_TIMEOUT_S, check=False)
    output = log_path.read_text()
    assert proc.returncode == 0, f"{module} exited {proc.returncode}:\n{output[-4000:]}"
    return output


def committed_batches(checkpoint: Path) -> int:
    commits = checkpoint / "commits"
    return len([p for p in commits.iterdir() if not p.name.startswith(".")]) \
        if commits.is_dir() else 0


def group_command_lines(pgid: int) -> list[str]:
    """The command lines of the processes in a process group (Linux /proc)."""
    lines = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # Fields after the ")" closing the command name: state, ppid, pgrp, ...
            if int(stat.read_text().rsplit(")", 1)[1].split()[2]) == pgid:
                lines.append((stat.parent / "cmdline").read_bytes().decode(errors="replace"))
    return lines


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
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while committed_batches(checkpoint_root / "trades") < 2:
            assert proc.poll() is None, "the job ended before it could be killed"
            assert time.monotonic() < deadline, "no two batches committed in time"
            time.sleep(0.2)
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


def dropped_late(output: str) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for name, rows in re.findall(r"progress query=(\w+) .*late_rows_dropped=(\d+)", output):
        totals[name] += int(rows)
    return totals


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
