"""The sink's ceiling: the Spark Cassandra Connector alone, writing decoded trades.

    python -m bench.sink_ceiling TOPIC      (last line: cold and warm trades/s)

Reads every record of TOPIC, decodes the valid trades with the job's own transforms,
caches and counts them in two halves, by even and odd offset (not timed), then times
only the connector writing them into the `trades` table of a fresh keyspace, with the
same local[*] session settings the stream job uses: the first half on the connector's
cold write path, the second once it is warm. bench.stream_job compares the job's
drain rates, on a cold and on a warm JVM, with these.
"""

from __future__ import annotations

import sys
import time

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.session import start_session
from jobs.settings import DEFAULT_SCHEMA, CassandraTarget, SparkLaunch
from jobs.sinks import write_table
from jobs.transforms import decode_trades, valid_trades
from stack import class_archive
from stack.__main__ import parse_config
from stack.scratch import drop_keyspace, fresh_keyspace


def main(topic: str) -> int:
    _, stack = parse_config(["status"])
    session, keyspace = fresh_keyspace(stack)
    target = CassandraTarget(host=stack.host, port=stack.cassandra_port, keyspace=keyspace)
    # The job's driver maps the class archive of `make class-archive`: so does this one.
    launch = SparkLaunch(class_archive=class_archive.archive_path(stack))
    spark = start_session("bench-sink-ceiling", launch, target)
    try:
        valid = (
            spark.read.format("kafka")
            .option("kafka.bootstrap.servers", stack.kafka_bootstrap)
            .option("subscribe", topic)
            .option("startingOffsets", "earliest")
            .load()
            .transform(decode_trades(DEFAULT_SCHEMA.read_text()))
            .transform(valid_trades)
        )
        halves = [valid.where(F.col("kafka_offset") % 2 == parity).cache() for parity in (0, 1)]
        rates = [write_rate(half, keyspace) for half in halves]
    finally:
        spark.stop()
        drop_keyspace(session, keyspace)
    print(" ".join(f"{rate:.1f}" for rate in rates))
    return 0


def write_rate(trades: DataFrame, keyspace: str) -> float:
    """trades/s of the connector writing cached trades (the caching is not timed)."""
    count = trades.count()
    started = time.monotonic()
    write_table(trades, keyspace, "trades")
    seconds = time.monotonic() - started
    print(f"{count} trades written in {seconds:.2f}s")
    return count / seconds


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
