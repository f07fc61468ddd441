"""Storage the stream job's tables take, per symbol and day, measured on disk.

    python -m bench.storage [--count 600000] [--symbols 10] [--rate 1000]

On the running local stack, with a fresh topic and keyspace: the synthetic producer
writes --count trades over --symbols as fast as it can (their event times then span
about an hour, every second of every symbol holding trades), and
`python -m jobs.stream_processor --available-now` (every candle resolution) drains
them. The stack is then stopped and started again: Cassandra flushes every memtable
when it stops, so the table folders hold all that was written. Printed per table:
its bytes on disk (SSTables, compressed as configured) and that size per symbol and
day:

- a table of per-second rows (`candles`, `candle_parts`): one day holds 86,400
  seconds, so bytes x 86,400 / (symbols x the seconds the trades span); this holds at
  any rate of at least a trade per second and symbol;
- `trades`: bytes per trade x the trades a symbol has in a day at --rate over
  --symbols;
- the tables keyed by symbol alone (`ticker_24h`, `symbols`): bytes per symbol, which
  do not grow with days.

The same candle and part rows are written at any rate, so the per-second figure
measured from a fast drain is the one a live feed of that rate takes; compaction
later merges rewritten rows, so a live feed's rewrites do not add to it for long.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from bench.stream_job import environment, job_cmd, producer_cmd
from contract.cassandra import make_cluster
from stack import lifecycle
from stack.config import StackConfig, from_env
from stack.scratch import drop, fresh_keyspace, fresh_topic

DAY_S = 86_400
PER_SECOND = ("candles", "candle_parts")
PER_SYMBOL = ("ticker_24h", "symbols")


def table_bytes(data_dir: Path, keyspace: str) -> dict[str, int]:
    """table -> bytes of its SSTable files (snapshots and backups left out)."""
    sizes = {}
    for folder in (data_dir / keyspace).iterdir():
        table = folder.name.rsplit("-", 1)[0]
        sizes[table] = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
    return sizes


def per_symbol_day(table: str, size: int, symbols: int, span_s: float, trades: int,
                   rate: float) -> float | None:
    if table in PER_SECOND:
        return size * DAY_S / (symbols * span_s)
    if table == "trades":
        return size / trades * rate / symbols * DAY_S
    if table in PER_SYMBOL:
        return size / symbols
    return None


def drain(stack: StackConfig, args: argparse.Namespace, topic: str, keyspace: str) -> None:
    work = stack.work_dir / "bench" / "storage"
    env = environment(stack, topic, keyspace, work)
    subprocess.run(producer_cmd(args, "--count", str(args.count), "--rate", "0",
                                "--seed", "7"), env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    work.mkdir(parents=True, exist_ok=True)
    with (work / "job.log").open("w") as log:
        subprocess.run(job_cmd("--available-now"), env=env, check=True, stdout=log,
                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=600_000)
    parser.add_argument("--symbols", type=int, default=10)
    parser.add_argument("--rate", type=float, default=1000,
                        help="the live rate the trades table is scaled to")
    args = parser.parse_args()
    stack = from_env(os.environ)
    topic = fresh_topic(stack)
    session, keyspace = fresh_keyspace(stack)
    try:
        drain(stack, args, topic, keyspace)
        rows = list(session.execute(f"SELECT first_trade_ts, last_trade_ts"
                                    f" FROM {keyspace}.symbols"))
    finally:
        session.cluster.shutdown()
    try:
        print("\n".join(lifecycle.down(stack) + lifecycle.up(stack)), flush=True)
        sizes = table_bytes(stack.server_dir("cassandra") / "data" / "data", keyspace)
    finally:
        drop(stack, topic, make_cluster(stack.host, stack.cassandra_port).connect(), keyspace)
    span_s = max((r.last_trade_ts - r.first_trade_ts).total_seconds() for r in rows) + 1
    print(f"{args.count:,} trades over {len(rows)} symbols spanning {span_s:,.0f} s")
    print("| table | bytes on disk | per symbol and day |")
    print("|---|---|---|")
    for table, size in sorted(sizes.items()):
        scaled = per_symbol_day(table, size, len(rows), span_s, args.count, args.rate)
        note = "" if scaled is None else (f"{scaled / 2**20:,.2f} MiB" if scaled >= 2**20
                                          else f"{scaled / 2**10:,.2f} KiB")
        print(f"| {table} | {size:,} | {note} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
