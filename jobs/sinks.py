"""Thin writers: DataFrames upserted into Cassandra by the Spark Cassandra Connector.

Every table is keyed deterministically (Kafka coordinates, symbol + window), so a
write is an idempotent upsert: a micro-batch replayed after a crash, or a recompute,
rewrites the same rows. (The stream job's few pane and window rows per batch go
through jobs.stream_store instead.)
"""

from __future__ import annotations

from pyspark.sql import DataFrame

from jobs.sources import CASSANDRA_FORMAT

# The connector groups rows by partition key into unlogged batches. Its defaults (1 KiB
# batches, 5 in flight per task) spend most of a write building and acknowledging tiny
# statements; these took about a third off a drain's write (docs/benchmarks.md,
# "Settings and the measurements behind them"). A batch holds one partition, so
# Cassandra's batch size thresholds, which since CASSANDRA-10876 only apply to batches
# spanning partitions, do not.
WRITE_OPTIONS = {
    "spark.cassandra.output.batch.size.bytes": "16384",
    "spark.cassandra.output.concurrent.writes": "16",
}


def write_table(rows: DataFrame, keyspace: str, table: str, ttl_s: int | None = None) -> None:
    """Upsert rows into keyspace.table; the columns must be named as in the table.
    ttl_s, when given, is every row's time to live instead of the table's default."""
    ttl = {"spark.cassandra.output.ttl": str(ttl_s)} if ttl_s is not None else {}
    (
        rows.write
        .format(CASSANDRA_FORMAT)
        .mode("append")
        .options(keyspace=keyspace, table=table)
        # A null is left unset instead of written as a tombstone: rows are rewritten
        # whole with the same values, so there is never an old value to delete.
        .option("spark.cassandra.output.ignoreNulls", "true")
        .options(**WRITE_OPTIONS, **ttl)
        .save()
    )
