"""Thin readers: the Kafka topic as a stream, the `trades` table as a batch."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

import contract
from jobs.tables import TRADES

CASSANDRA_FORMAT = "org.apache.spark.sql.cassandra"


@dataclass(frozen=True)
class KafkaTopic:
    bootstrap_servers: str = contract.BOOTSTRAP_SERVERS
    topic: str = contract.TOPIC
    starting_offsets: str = "earliest"
    max_offsets_per_trigger: int | None = None
    # How long the broker may hold a fetch that finds too little data. Kafka's 500 ms
    # default makes a micro-batch task wait on the tail of the log (docs/benchmarks.md,
    # "Settings and the measurements behind them", holds the figures of these options).
    fetch_max_wait_ms: int = 10
    # Records one poll of the consumer hands over. Kafka's 500 makes a task poll once
    # per 500 records from data it has already fetched, measurably slower. A poll
    # returns records already fetched, so the fetch sizes still bound what is buffered;
    # 20,000 trade records are a few MiB.
    max_poll_records: int = 20_000


def read_stream(spark: SparkSession, kafka: KafkaTopic) -> DataFrame:
    """The topic as Kafka source rows (key, value, topic, partition, offset, timestamp)."""
    reader = (
        spark.readStream
        .format("kafka")
        .option("kafka.bootstrap.servers", kafka.bootstrap_servers)
        .option("subscribe", kafka.topic)
        # Only read on a first start: afterwards the checkpoint holds the offsets.
        .option("startingOffsets", kafka.starting_offsets)
        .option("kafka.fetch.max.wait.ms", str(kafka.fetch_max_wait_ms))
        .option("kafka.max.poll.records", str(kafka.max_poll_records))
    )
    if kafka.max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", str(kafka.max_offsets_per_trigger))
    return reader.load()


def read_table(spark: SparkSession, keyspace: str, table: str) -> DataFrame:
    return spark.read.format(CASSANDRA_FORMAT).options(keyspace=keyspace, table=table).load()


def read_trades(
    spark: SparkSession, keyspace: str, days: list[date], symbols: list[str] | None = None
) -> DataFrame:
    """The `trades` rows of the given UTC days (and symbols, when known).

    With symbols the connector reads exactly the (symbol, trade_date) partitions;
    without, it scans the table and Spark keeps the days.
    """
    trades = (
        spark.read
        .format(CASSANDRA_FORMAT)
        .options(keyspace=keyspace, table=TRADES.name)
        .load()
        .where(F.col("trade_date").isin(days))
    )
    if symbols:
        trades = trades.where(F.col("symbol").isin(symbols))
    return trades
