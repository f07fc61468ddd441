"""Stream job: Avro trades from Kafka -> trades, minute_trades, moving_means, rejected_records.

    python -m jobs.stream_processor [--available-now] ...        (local, master local[*])
    spark-submit --py-files market.zip jobs/stream_processor.py ...   (cluster)

Imports are absolute (`jobs.…`): submitted as a file, the project must be on
PYTHONPATH or in --py-files.

Four independent streaming queries read the topic, each with its own queryName and
checkpoint <checkpoint-root>/<query name>; each upserts its Cassandra table from
foreachBatch. Every table is keyed deterministically, so a restart from the
checkpoints (at-least-once replay of the last batch) is exactly-once in effect.
Cassandra credentials: env CASSANDRA_USERNAME / CASSANDRA_PASSWORD only.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pyspark.errors import StreamingQueryException
from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQuery

from jobs import checkpoints, settings
from jobs.progress import ProgressLogger, configure_logging, error_summary
from jobs.session import start_session
from jobs.settings import CassandraTarget, SparkLaunch, WindowSpec, env_default
from jobs.sinks import write_batch
from jobs.sources import KafkaTopic, read_stream
from jobs.transforms import (
    Transform,
    chain,
    decode_trades,
    minute_windows,
    moving_means,
    rejected_records,
    valid_trades,
)

log = logging.getLogger("jobs.stream_processor")


@dataclass(frozen=True)
class StreamConfig:
    kafka: KafkaTopic
    cassandra: CassandraTarget
    spark: SparkLaunch
    windows: WindowSpec
    avro_schema: Path = settings.DEFAULT_SCHEMA
    checkpoint_root: str = str(settings.PROJECT_ROOT / ".work" / "checkpoints")
    trigger_interval: str = "2 seconds"
    aggregate_trigger_interval: str = "10 seconds"
    available_now: bool = False


@dataclass(frozen=True)
class QueryPlan:
    """One streaming query; `name` is its queryName, checkpoint folder and table."""

    name: str
    transform: Transform = field(repr=False)
    output_mode: str
    trigger_interval: str


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m jobs.stream_processor", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--bootstrap-servers",
        default=env_default(env, "KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        help="env KAFKA_BOOTSTRAP_SERVERS")
    add("--topic", default=env_default(env, "KAFKA_TOPIC", "Market"), help="env KAFKA_TOPIC")
    add("--starting-offsets", default=env_default(env, "STREAM_STARTING_OFFSETS", "earliest"),
        help="earliest|latest|JSON, first start only (env STREAM_STARTING_OFFSETS)")
    add("--max-offsets-per-trigger", type=int,
        default=int(env_default(env, "STREAM_MAX_OFFSETS_PER_TRIGGER", "0")),
        help="records per micro-batch and query, 0 = no limit (env STREAM_MAX_OFFSETS_PER_TRIGGER)")
    add("--trigger-interval", type=settings.duration,
        default=env_default(env, "STREAM_TRIGGER_INTERVAL", "2 seconds"),
        help="trades and rejected_records queries (env STREAM_TRIGGER_INTERVAL)")
    add("--aggregate-trigger-interval", type=settings.duration,
        default=env_default(env, "STREAM_AGGREGATE_TRIGGER_INTERVAL", "10 seconds"),
        help="minute_trades and moving_means queries (env STREAM_AGGREGATE_TRIGGER_INTERVAL)")
    add("--checkpoint-root",
        default=env_default(env, "STREAM_CHECKPOINT_ROOT", StreamConfig.checkpoint_root),
        help="a folder or URI, for one topic and keyspace; one checkpoint per query below it"
             " (env STREAM_CHECKPOINT_ROOT)")
    add("--avro-schema", type=Path,
        default=Path(env_default(env, "STREAM_AVRO_SCHEMA", str(settings.DEFAULT_SCHEMA))),
        help="Avro schema of the records (env STREAM_AVRO_SCHEMA)")
    add("--available-now", action="store_true",
        default=env_default(env, "STREAM_AVAILABLE_NOW", "0").lower() in ("1", "true", "yes"),
        help="process what the topic holds now, then exit (env STREAM_AVAILABLE_NOW=1)")
    settings.add_window_options(parser, env)
    settings.add_cassandra_options(parser, env)
    settings.add_spark_options(parser, env)
    return parser


def parse_config(argv: Sequence[str], env: Mapping[str, str]) -> StreamConfig:
    args = build_parser(env).parse_args(argv)
    root = args.checkpoint_root
    if "://" not in root:
        root = str(Path(root).resolve())
    return StreamConfig(
        kafka=KafkaTopic(
            bootstrap_servers=args.bootstrap_servers,
            topic=args.topic,
            starting_offsets=args.starting_offsets,
            max_offsets_per_trigger=args.max_offsets_per_trigger or None,
        ),
        cassandra=settings.cassandra_target(args, env),
        spark=settings.spark_launch(args),
        windows=settings.window_spec(args),
        avro_schema=args.avro_schema.resolve(),
        checkpoint_root=root,
        trigger_interval=args.trigger_interval,
        aggregate_trigger_interval=args.aggregate_trigger_interval,
        available_now=args.available_now,
    )


# The queries' names: each is also its checkpoint folder and its Cassandra table.
QUERY_NAMES = ("rejected_records", "trades", "minute_trades", "moving_means")


def query_plans(config: StreamConfig, schema_json: str) -> list[QueryPlan]:
    """The four queries; each decodes on its own so that each can fail and restart alone."""
    windows = config.windows
    decode = decode_trades(schema_json)
    trades = chain(decode, valid_trades)
    raw, aggregate = config.trigger_interval, config.aggregate_trigger_interval
    return [
        QueryPlan("rejected_records", chain(decode, rejected_records()), "append", raw),
        QueryPlan("trades", trades, "append", raw),
        QueryPlan("minute_trades", chain(trades, minute_windows(windows.watermark)),
                  "update", aggregate),
        QueryPlan("moving_means",
                  chain(trades, moving_means(windows.moving_length, windows.moving_slide,
                                             windows.watermark)),
                  "update", aggregate),
    ]


def start_query(spark: SparkSession, plan: QueryPlan, config: StreamConfig) -> StreamingQuery:
    writer = (
        read_stream(spark, config.kafka)
        .transform(plan.transform)
        .writeStream
        .queryName(plan.name)
        .outputMode(plan.output_mode)
        .option("checkpointLocation", f"{config.checkpoint_root.rstrip('/')}/{plan.name}")
        .foreachBatch(write_batch(config.cassandra.keyspace, plan.name))
    )
    if config.available_now:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=plan.trigger_interval)
    return writer.start()


def await_queries(spark: SparkSession, queries: Sequence[StreamingQuery],
                  stop: threading.Event, recheck_s: float = 2.0) -> StreamingQuery | None:
    """Block until every query has stopped, one failed, or stop is set.

    Returns the failed query, if any. Terminations are signalled by Spark; the short
    timeout lets a stop request (SIGTERM) be noticed between two waits, since a
    signal handler must not interrupt a call into the JVM.
    """
    while not stop.is_set():
        with contextlib.suppress(StreamingQueryException):
            spark.streams.awaitAnyTermination(recheck_s)
        # Reset before checking: a query ending after this line wakes the next wait.
        spark.streams.resetTerminated()
        failed = next((q for q in queries if q.exception() is not None), None)
        if failed is not None or not any(q.isActive for q in queries):
            return failed
    return None


def stop_all(queries: Sequence[StreamingQuery]) -> None:
    for query in queries:
        try:
            query.stop()
        except Exception as err:  # exiting anyway: an unfinished batch replays on restart
            log.warning("query %s did not stop cleanly: %s", query.name, error_summary(str(err)))


def stop_on_signals(stop: threading.Event) -> None:
    def request_stop(signum: int, _frame: object) -> None:
        log.info("%s: stopping the queries; a batch cut short is replayed from the "
                 "checkpoint on the next start", signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, request_stop)


def run(spark: SparkSession, config: StreamConfig) -> int:
    schema_json = config.avro_schema.read_text()
    spark.streams.addListener(ProgressLogger())
    queries = [start_query(spark, plan, config) for plan in query_plans(config, schema_json)]
    stop = threading.Event()
    stop_on_signals(stop)
    failed = await_queries(spark, queries, stop)
    stop_all(queries)
    if failed is None:
        log.info("all queries stopped")
        return 0
    message = str(failed.exception())
    log.error("query %s failed: %s\n%s", failed.name, error_summary(message), message)
    return 1


def main(config: StreamConfig) -> int:
    log.info("starting with %s", config)
    try:
        checkpoints.probe(config.checkpoint_root, QUERY_NAMES)
    except checkpoints.CheckpointError as err:
        # A restart cannot fix this; exit 2 tells the supervisor not to try.
        log.error("%s; free space or fix the folder, or set --checkpoint-root "
                  "(env STREAM_CHECKPOINT_ROOT)", err)
        return 2
    spark = start_session("market-stream-processor", config.spark, config.cassandra)
    try:
        return run(spark, config)
    finally:
        spark.stop()


if __name__ == "__main__":
    configure_logging()
    sys.exit(main(parse_config(sys.argv[1:], os.environ)))
