"""Shared helpers of the end-to-end and fault tests: send trades, run the jobs, and
compute every Cassandra table independently, in plain Python, from what was sent."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import fastavro

from stack.config import from_env

PROJECT_ROOT = Path(__file__).resolve().parents[1]
AVRO_SCHEMA = fastavro.parse_schema(json.loads((PROJECT_ROOT / "schemas/trade.avsc").read_text()))
MOVING_LENGTH, MOVING_SLIDE = timedelta(minutes=5), timedelta(seconds=30)
MOVING_SECONDS, SLIDE_SECONDS = 300, 30
# The stream job's one query, and its checkpoint folder below the checkpoint root.
QUERY = "market"
REL_TOL = 1e-9
# A volatility of equal returns is 0, computed as a rounding error of about 1e-17.
ABS_TOL = 1e-12
# The stream job's default candle resolutions, in seconds.
CANDLE_SECONDS = {"1s": 1, "1m": 60, "2m": 120, "5m": 300, "15m": 900, "1h": 3600,
                  "4h": 14400, "1d": 86400}
JOB_TIMEOUT_S = 240


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
        # The connector jars of the stack the tests use (STACK_WORK_DIR), as the spark
        # fixture and `make run` take them, not the job's default under the project.
        jars_dir = from_env(os.environ).jars_dir
        return [
            "--available-now", "--master", "local[2]", "--bootstrap-servers", self.bootstrap,
            "--topic", self.topic, "--keyspace", self.keyspace, "--cassandra-host", self.host,
            "--cassandra-port", str(self.cassandra_port),
            "--checkpoint-root", str(checkpoint_root), "--jars-dir", str(jars_dir),
        ]


# --- data ------------------------------------------------------------------------------


def encode(trade: Trade) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, AVRO_SCHEMA, trade.__dict__)
    return buffer.getvalue()


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


def in_order(members: list[Sent]) -> list[Sent]:
    return sorted(members, key=lambda s: (s.trade.trade_ts, s.partition, s.offset))


def expected_minutes(sent: list[Sent]) -> dict:
    groups: dict[tuple, list[Sent]] = defaultdict(list)
    for s in sent:
        groups[s.trade.symbol, floor_to(s.trade.trade_ts, timedelta(minutes=1))].append(s)
    result = {}
    for (symbol, start), members in groups.items():
        ordered = in_order(members)
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
        (symbol, MOVING_SECONDS, SLIDE_SECONDS, naive(start + MOVING_LENGTH)): (
            naive(start), len(prices), sum(prices) / len(prices),
            math.exp(sum(math.log(p) for p in prices) / len(prices)),
            len(prices) / sum(1 / p for p in prices),
        )
        for (symbol, start), prices in groups.items()
    }


def candle_bucket(seconds: int, start: datetime):
    """The first day of the candle's UTC day (under a minute), month (under an hour) or
    year (longer)."""
    day = start.astimezone(timezone.utc).date()
    if seconds < 60:
        return day
    return day.replace(day=1) if seconds < 3600 else day.replace(month=1, day=1)


def expected_candles(sent: list[Sent]) -> dict:
    groups: dict[tuple, list[Sent]] = defaultdict(list)
    for s in sent:
        for name, seconds in CANDLE_SECONDS.items():
            start = floor_to(s.trade.trade_ts, timedelta(seconds=seconds))
            groups[s.trade.symbol, name, seconds, start].append(s)
    result = {}
    for (symbol, name, seconds, start), members in groups.items():
        prices = [s.trade.price for s in in_order(members)]
        returns = [math.log(b) - math.log(a) for a, b in itertools.pairwise(prices)]
        volume = sum(s.trade.volume for s in members)
        avg = sum(prices) / len(prices)
        notional = sum(s.trade.price * s.trade.volume for s in members)
        high, low = max(prices), min(prices)
        result[symbol, name, candle_bucket(seconds, start), naive(start)] = (
            naive(start + timedelta(seconds=seconds)), len(members), prices[0], high, low,
            prices[-1], volume, avg, notional / volume if volume > 0 else avg,
            statistics.stdev(returns) if len(returns) >= 2 else math.nan,
            abs(math.log(high / low)) / (2 * math.sqrt(math.log(2))),
        )
    return result


def per_symbol(sent: list[Sent]) -> dict[str, list[Sent]]:
    groups: dict[str, list[Sent]] = defaultdict(list)
    for s in sent:
        groups[s.trade.symbol].append(s)
    return groups


def expected_tickers(sent: list[Sent]) -> dict:
    """The 24 hours of one-minute windows ending with each symbol's newest minute."""
    result = {}
    for symbol, members in per_symbol(sent).items():
        end = floor_to(max(s.trade.trade_ts for s in members), timedelta(minutes=1)) \
            + timedelta(minutes=1)
        start = end - timedelta(days=1)
        window = in_order([s for s in members if start <= s.trade.trade_ts < end])
        prices = [s.trade.price for s in window]
        volume = sum(s.trade.volume for s in window)
        notional = sum(s.trade.price * s.trade.volume for s in window)
        avg = sum(prices) / len(prices)
        result[(symbol,)] = (
            prices[-1], naive(window[-1].trade.trade_ts), prices[0], max(prices), min(prices),
            prices[-1] - prices[0], 100 * (prices[-1] - prices[0]) / prices[0], volume,
            notional, len(window), notional / volume if volume > 0 else avg, naive(start),
            naive(end))
    return result


def expected_symbols(sent: list[Sent]) -> dict:
    result = {}
    for symbol, members in per_symbol(sent).items():
        ordered = in_order(members)
        last = ordered[-1]
        result[(symbol,)] = (naive(ordered[0].trade.trade_ts), naive(last.trade.trade_ts),
                             last.trade.price, last.partition, last.offset)
    return result


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
            session, keyspace, "moving_means",
            ["symbol", "window_seconds", "slide_seconds", "window_end"],
            ["window_start", "trade_count", "arithmetic_mean", "geometric_mean",
             "harmonic_mean"]),
        "rejected_records": read_table(
            session, keyspace, "rejected_records",
            ["kafka_topic", "kafka_date", "kafka_partition", "kafka_offset"],
            ["kafka_ts", "payload", "reason", "seen_at"]),
        "candles": read_table(
            session, keyspace, "candles", ["symbol", "resolution", "bucket", "window_start"],
            ["window_end", "trade_count", "open_price", "high_price", "low_price",
             "close_price", "total_volume", "avg_price", "vwap", "log_return_stddev",
             "parkinson_volatility"]),
        "ticker_24h": read_table(
            session, keyspace, "ticker_24h", ["symbol"],
            ["last_price", "last_trade_ts", "open_price", "high_price", "low_price",
             "price_change", "price_change_pct", "total_volume", "quote_volume",
             "trade_count", "vwap", "window_start", "window_end"]),
        "symbols": read_table(
            session, keyspace, "symbols", ["symbol"],
            ["first_trade_ts", "last_trade_ts", "last_price", "last_kafka_partition",
             "last_kafka_offset"]),
    }


def exactly(tables: dict[str, dict]) -> dict[str, dict]:
    """A snapshot to compare with ==: NaN (which equals nothing) as a marker."""
    def value(v):
        return "NaN" if isinstance(v, float) and math.isnan(v) else v

    return {table: {key: tuple(value(v) for v in row) for key, row in rows.items()}
            for table, rows in tables.items()}


def same_value(got, want) -> bool:
    if isinstance(want, float):
        if math.isnan(want):
            return isinstance(got, float) and math.isnan(got)
        return math.isclose(got, want, rel_tol=REL_TOL, abs_tol=ABS_TOL)
    return got == want


def assert_same(actual: dict, expected: dict, table: str) -> None:
    """Same keys; per row, equal values, floats to REL_TOL (NaN equals NaN)."""
    missing, extra = expected.keys() - actual.keys(), actual.keys() - expected.keys()
    assert not missing and not extra, (
        f"{table}: {len(missing)} rows missing, e.g. {sorted(missing)[:3]}; "
        f"{len(extra)} unexpected, e.g. {sorted(extra)[:3]}")
    for key, want in expected.items():
        got = actual[key]
        same = all(same_value(g, w) for g, w in zip(got, want, strict=True))
        assert same, f"{table} {key}: got {got}, expected {want}"


def assert_tables(session, pipeline: Pipeline, trades: list[Sent] | None = None) -> dict:
    """Every table equals the expectation from `trades` (default: every trade sent)."""
    trades = pipeline.trades if trades is None else trades
    tables = snapshot(session, pipeline.keyspace)
    assert_same(tables["trades"], expected_trades(pipeline, pipeline.trades), "trades")
    assert_same(tables["minute_trades"], expected_minutes(trades), "minute_trades")
    assert_same(tables["moving_means"], expected_moving(trades), "moving_means")
    assert_same(tables["candles"], expected_candles(trades), "candles")
    assert_same(tables["ticker_24h"], expected_tickers(trades), "ticker_24h")
    assert_same(tables["symbols"], expected_symbols(trades), "symbols")
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


def wait_for_batches(checkpoint: Path, count: int, job: subprocess.Popen,
                     log_path: Path | None = None) -> None:
    """Until the query behind `checkpoint` has committed `count` batches; the job must live."""
    def tail() -> str:
        return log_path.read_text()[-3000:] if log_path else ""

    deadline = time.monotonic() + JOB_TIMEOUT_S
    while committed_batches(checkpoint) < count:
        assert job.poll() is None, f"the job ended early\n{tail()}"
        assert time.monotonic() < deadline, f"fewer than {count} batches in {checkpoint}\n{tail()}"
        time.sleep(0.2)


def wait_for(check: Callable[[], None], timeout_s: float, alive: subprocess.Popen | None = None,
             tail: Callable[[], str] = lambda: "") -> None:
    """Retry an assertion until it holds; the last failure is raised at the deadline.

    `alive`, if given, must keep running meanwhile; `tail` tells what it printed.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            check()
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            if alive is not None:
                assert alive.poll() is None, \
                    f"the job stopped while it should keep running\n{tail()[-4000:]}"
            time.sleep(3)


def group_command_lines(pgid: int) -> list[str]:
    """The command lines of the live processes in a process group (Linux /proc).

    Zombies are left out: they have exited, only their parent has not reaped them yet.
    """
    lines = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # Fields after the ")" closing the command name: state, ppid, pgrp, ...
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                lines.append((stat.parent / "cmdline").read_bytes().decode(errors="replace"))
    return lines
