"""Batch job: recompute minute_trades and moving_means for a time range from `trades`.

    python -m jobs.recompute --from 2024-03-01T23:56:00Z --to 2024-03-02T00:00:00Z

The stream job counts every trade in its windows however late it arrives, so this
is for rebuilding: after restoring `trades` from a backup, after the stream ran from
a new checkpoint with --starting-offsets latest (its panes then miss what came
before), or to check the stream against an independent computation. It rewrites,
straight from `trades`, every window that overlaps [from, to): minute windows and
moving-mean windows alike. A sliding window can reach up to one window length beyond
the range, so the job reads that margin of trades on both sides; every window it
writes is then fully determined.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from pyspark.sql import DataFrame

from contract import env as envvars
from contract.exits import ExitCode
from jobs import settings
from jobs.progress import run_entry_point
from jobs.session import start_session
from jobs.settings import CassandraTarget, SparkLaunch, WindowSpec
from jobs.sinks import write_table
from jobs.sources import read_trades
from jobs.tables import MINUTE_TRADES, MOVING_MEANS
from jobs.transforms import minute_windows, moving_means, trades_between, windows_overlapping

log = logging.getLogger("jobs.recompute")

MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class RecomputeConfig:
    start: datetime
    end: datetime
    cassandra: CassandraTarget
    spark: SparkLaunch
    windows: WindowSpec
    symbols: tuple[str, ...] = ()


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m jobs.recompute", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    start = envvars.optional(env, "RECOMPUTE_FROM")
    end = envvars.optional(env, "RECOMPUTE_TO")
    add("--from", dest="start", type=settings.utc_timestamp, required=not start,
        default=settings.utc_timestamp(start) if start else None,
        help="range start, inclusive (env RECOMPUTE_FROM)")
    add("--to", dest="end", type=settings.utc_timestamp, required=not end,
        default=settings.utc_timestamp(end) if end else None,
        help="range end, exclusive (env RECOMPUTE_TO)")
    add("--symbols", default=envvars.get(env, "RECOMPUTE_SYMBOLS", ""),
        help="comma-separated; reads only their partitions (default: every symbol; "
             "env RECOMPUTE_SYMBOLS)")
    settings.add_job_options(parser, env)
    return parser


def parse_config(argv: Sequence[str], env: Mapping[str, str]) -> RecomputeConfig:
    parser = build_parser(env)
    args = parser.parse_args(argv)
    if args.start >= args.end:
        parser.error("--from must be before --to")
    return RecomputeConfig(
        start=args.start,
        end=args.end,
        **settings.job_settings(parser, args, env),
        symbols=tuple(s.strip() for s in args.symbols.split(",") if s.strip()),
    )


def read_margin(windows: WindowSpec) -> timedelta:
    """How far beyond the range a window overlapping it can reach."""
    return max(MINUTE, windows.moving_length)


def utc_days(start: datetime, end: datetime) -> list[date]:
    """The UTC days that [start, end) touches: the trade_date partitions to read."""
    first, last = start.date(), (end - timedelta(microseconds=1)).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def recomputed(
    trades: DataFrame, start: datetime, end: datetime, windows: WindowSpec
) -> tuple[DataFrame, DataFrame]:
    """(minute_trades rows, moving_means rows) of the windows overlapping [start, end).

    `trades` must hold every trade within read_margin() of the range.
    """
    minutes = trades.transform(minute_windows).transform(windows_overlapping(start, end))
    means = (
        trades
        .transform(moving_means(windows.moving_length, windows.moving_slide))
        .transform(windows_overlapping(start, end))
    )
    return minutes, means


def main(config: RecomputeConfig) -> int:
    log.info("starting with %s", config)
    margin = read_margin(config.windows)
    low, high = config.start - margin, config.end + margin
    spark = start_session("market-recompute", config.spark, config.cassandra)
    try:
        keyspace = config.cassandra.keyspace
        trades = (
            read_trades(spark, keyspace, utc_days(low, high), list(config.symbols))
            .transform(trades_between(low, high))
            # Read once from Cassandra for both aggregates.
            .persist()
        )
        minutes, means = recomputed(trades, config.start, config.end, config.windows)
        write_table(minutes, keyspace, MINUTE_TRADES.name)
        write_table(means, keyspace, MOVING_MEANS.name)
        trades.unpersist()
    finally:
        spark.stop()
    log.info("recomputed minute_trades and moving_means for [%s, %s)",
             config.start.isoformat(), config.end.isoformat())
    return ExitCode.OK


if __name__ == "__main__":
    run_entry_point(lambda: main(parse_config(sys.argv[1:], os.environ)), log)
