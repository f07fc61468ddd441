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

from bench.common import scratch_session
from contract import SCHEMA_PATH
from jobs.sinks import write_table
from jobs.transforms import decode_trades, valid_trades


def main(topic: str) -> int:
    with scratch_session("bench-sink-ceiling") as (stack, spark, keyspace):
        valid = (
            spark.read.format("kafka")
            .option("kafka.bootstrap.servers", stack.kafka_bootstrap)
            .option("subscribe", topic)
            .option("startingOffsets", "earliest")
            .load()
            .transform(decode_trades(SCHEMA_PATH.read_text()))
            .transform(valid_trades)
        )
        halves = [valid.where(F.col("kafka_offset") % 2 == parity).cache() for parity in (0, 1)]
        rates = [write_rate(half, keyspace) for half in halves]
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
