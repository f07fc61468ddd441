"""Thin writers: DataFrames upserted into Cassandra by the Spark Cassandra Connector.

Every table is keyed deterministically (Kafka coordinates, symbol + window), so a
write is an idempotent upsert: a micro-batch replayed after a crash, or a recompute,
rewrites the same rows. (The stream job's few pane and window rows per batch go
through jobs.stream_store instead.)
"""

from __future__ import annotations

from pyspark.sql import DataFrame

from jobs.sources import CASSANDRA_FORMAT


def write_table(rows: DataFrame, keyspace: str, table: str) -> None:
    """Upsert rows into keyspace.table; the columns must be named as in the table."""
    (
        rows.write
        .format(CASSANDRA_FORMAT)
        .mode("append")
        .options(keyspace=keyspace, table=table)
        # A null is left unset instead of written as a tombstone: rows are rewritten
        # whole with the same values, so there is never an old value to delete.
        .option("spark.cassandra.output.ignoreNulls", "true")
        .save()
    )
