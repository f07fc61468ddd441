"""The sink's ceiling: the Spark Cassandra Connector alone, writing decoded trades.

    python -m bench.sink_ceiling TOPIC      (prints trades/s on its last line)

Reads every record of TOPIC, decodes the valid trades with the job's own transforms,
caches and counts them (not timed), then times only the connector writing them into
the `trades` table of a fresh keyspace, with the same local[*] session settings the
stream job uses. bench.stream_job compares the job's drain rate with this.
"""

from __future__ import annotations

import sys
import time

from bench.common import drop_keyspace, fresh_keyspace
from jobs.session import start_session
from jobs.settings import DEFAULT_SCHEMA, CassandraTarget, SparkLaunch
from jobs.sinks import write_table
from jobs.transforms import decode_trades, valid_trades
from stack.__main__ import parse_config


def main(topic: str) -> int:
    _, stack = parse_config(["status"])
    session, keyspace = fresh_keyspace(stack)
    target = CassandraTarget(host=stack.host, port=stack.cassandra_port, keyspace=keyspace)
    spark = start_session("bench-sink-ceiling", SparkLaunch(), target)
    try:
        trades = (
            spark.read.format("kafka")
            .option("kafka.bootstrap.servers", stack.kafka_bootstrap)
            .option("subscribe", topic)
            .option("startingOffsets", "earliest")
            .load()
            .transform(decode_trades(DEFAULT_SCHEMA.read_text()))
            .transform(valid_trades)
            .cache()
        )
        count = trades.count()
        started = time.monotonic()
        write_table(trades, keyspace, "trades")
        seconds = time.monotonic() - started
    finally:
        spark.stop()
        drop_keyspace(session, keyspace)
    print(f"{count} trades written in {seconds:.2f}s")
    print(f"{count / seconds:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
