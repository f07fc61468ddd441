"""Batch job: recompute every derived table for a time range from `trades`.

    python -m jobs.recompute --from 2024-03-01T23:56:00Z --to 2024-03-02T00:00:00Z

The stream job counts every trade in its windows however late it arrives, so this
is for rebuilding: after restoring `trades` from a backup, after the stream ran from
a new checkpoint with --starting-offsets latest (its panes then miss what came
before), or to check the stream against an independent computation. It rewrites,
straight from `trades`, every window that overlaps [from, to): minute windows,
moving-mean windows and candles at every configured resolution. It merges the first
and last trades it reads into `symbols`, and rewrites the 24-hour ticker of each
symbol whose newest trade is within what it read. It reads whole UTC days around the
range (and the day before, for the tickers), so every row it writes is fully
determined.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from contract import env as envvars
from contract.exits import ExitCode
from jobs import settings
from jobs.candle_levels import ttl_seconds
from jobs.candles import (
    merge_symbols,
    reference_candles,
    reference_symbols,
    reference_tickers,
)
from jobs.progress import run_entry_point
from jobs.session import start_session
from jobs.settings import CassandraTarget, SparkLaunch, WindowSpec
from jobs.sinks import write_table
from jobs.sources import read_table, read_trades
from jobs.tables import CANDLES, MINUTE_TRADES, MOVING_MEANS, SYMBOLS, TICKER_24H
from jobs.transforms import (
    Transform,
    minute_windows,
    moving_means,
    trades_between,
    windows_overlapping,
)

log = logging.getLogger("jobs.recompute")

MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)


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


def read_range(start: datetime, end: datetime, windows: WindowSpec
               ) -> tuple[datetime, datetime]:
    """[low, high): every trade of a window overlapping [start, end), the UTC days of
    its day candles, and the day before them (a ticker spans 24 hours)."""
    def midnight(ts: datetime) -> datetime:
        return ts.replace(hour=0, minute=0, second=0, microsecond=0)

    margin = read_margin(windows)
    last_day = midnight(end - timedelta(microseconds=1)) + DAY
    return min(midnight(start) - DAY, start - margin), max(last_day, end + margin)


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


def covered_symbols(low: datetime, high: datetime) -> Transform:
    """`symbols` rows whose ticker window lies within [low, high)."""
    def apply(symbols: DataFrame) -> DataFrame:
        newest = F.col("last_trade_ts")
        return symbols.where((newest < F.lit(high - MINUTE))
                             & (newest >= F.lit(low + DAY)))

    return apply


def write_derived(spark: SparkSession, trades: DataFrame, config: RecomputeConfig,
                  low: datetime, high: datetime) -> None:
    keyspace = config.cassandra.keyspace
    minutes, means = recomputed(trades, config.start, config.end, config.windows)
    write_table(minutes, keyspace, MINUTE_TRADES.name)
    write_table(means, keyspace, MOVING_MEANS.name)
    for resolution in config.windows.candle_resolutions:
        candles = (trades.transform(reference_candles(resolution))
                   .transform(windows_overlapping(config.start, config.end)))
        write_table(candles, keyspace, CANDLES.name,
                    ttl_s=ttl_seconds(resolution))
    stored = read_table(spark, keyspace, SYMBOLS.name)
    if config.symbols:
        stored = stored.where(F.col("symbol").isin(list(config.symbols)))
    # Cached before it is written: the tickers below need the rows as merged, not as
    # they would be merged again from the table just written.
    symbols = trades.transform(reference_symbols).transform(merge_symbols(stored)).cache()
    try:
        symbols.count()
        write_table(symbols, keyspace, SYMBOLS.name)
        tickers = trades.transform(
            reference_tickers(symbols.transform(covered_symbols(low, high))))
        write_table(tickers, keyspace, TICKER_24H.name)
    finally:
        symbols.unpersist()


def main(config: RecomputeConfig) -> int:
    log.info("starting with %s", config)
    low, high = read_range(config.start, config.end, config.windows)
    spark = start_session("market-recompute", config.spark, config.cassandra)
    try:
        keyspace = config.cassandra.keyspace
        trades = (
            read_trades(spark, keyspace, utc_days(low, high), list(config.symbols))
            .transform(trades_between(low, high))
            # Read once from Cassandra for every aggregate.
            .persist()
        )
        write_derived(spark, trades, config, low, high)
        trades.unpersist()
    finally:
        spark.stop()
    log.info("recomputed minute_trades, moving_means, candles, symbols and tickers for"
             " [%s, %s)", config.start.isoformat(), config.end.isoformat())
    return ExitCode.OK


if __name__ == "__main__":
    run_entry_point(lambda: main(parse_config(sys.argv[1:], os.environ)), log)
