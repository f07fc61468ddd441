"""Stream job: Avro trades from Kafka -> trades, minute_trades, moving_means, rejected_records.

    python -m jobs.stream_processor [--available-now] ...        (local, master local[*])
    spark-submit --py-files market.zip jobs/stream_processor.py ...   (cluster)

Imports are absolute (`jobs.…`): submitted as a file, the project must be on
PYTHONPATH or in --py-files.

One streaming query reads the topic and decodes each micro-batch once, then writes
every table from foreachBatch (jobs.stream_batch); its checkpoint is
<checkpoint-root>/market. Aggregates are merged from per-pane partials (jobs.panes):
no watermark, so a trade is counted in its windows however late it arrives. Every
write is idempotent, so a restart from the checkpoint (which replays the last,
unfinished batch) is exactly-once in effect.
Cassandra credentials: env CASSANDRA_USERNAME / CASSANDRA_PASSWORD only.
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cassandra import DriverException
from cassandra.cluster import Cluster, NoHostAvailable
from pyspark.errors import StreamingQueryException
from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQuery

import contract
from contract import env as envvars
from contract.exits import ExitCode, exit_code
from contract.validation import MAX_FUTURE_SKEW
from jobs import checkpoints, settings, stream_store
from jobs.kafka_lag import TopicEnds
from jobs.progress import error_summary, run_entry_point
from jobs.session import start_session
from jobs.settings import CassandraTarget, SparkLaunch, WindowSpec
from jobs.sources import KafkaTopic, read_stream
from jobs.stream_batch import BatchPlan, BatchProcessor
from jobs.stream_store import BatchReport
from jobs.transforms import TradeBounds

log = logging.getLogger("jobs.stream_processor")

# The query's name, and its checkpoint folder below the checkpoint root.
QUERY_NAME = contract.QUERY_NAME
# Longest wait for Spark and the Cassandra session to close before the process exits anyway.
SHUTDOWN_TIMEOUT_S = 60.0
# How long a start waits for an unreachable Cassandra before it gives up (exit 1). A
# node restarting takes a minute or so; waiting in-process rides that out, where quick
# exits would make a crash loop that a supervisor stops after a few restarts.
CASSANDRA_WAIT_S = 120.0


@dataclass(frozen=True)
class StreamConfig:
    kafka: KafkaTopic
    cassandra: CassandraTarget
    spark: SparkLaunch
    windows: WindowSpec
    bounds: TradeBounds = field(default_factory=TradeBounds)
    avro_schema: Path = contract.SCHEMA_PATH
    checkpoint_root: str = str(contract.CHECKPOINT_ROOT)
    trigger_interval: str = "250 milliseconds"
    available_now: bool = False


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m jobs.stream_processor", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--bootstrap-servers",
        default=envvars.get(env, "KAFKA_BOOTSTRAP_SERVERS", contract.BOOTSTRAP_SERVERS),
        help="env KAFKA_BOOTSTRAP_SERVERS")
    add("--topic", default=envvars.get(env, "KAFKA_TOPIC", contract.TOPIC), help="env KAFKA_TOPIC")
    add("--starting-offsets", default=envvars.get(env, "STREAM_STARTING_OFFSETS", "earliest"),
        help="earliest|latest|JSON, first start only (env STREAM_STARTING_OFFSETS)")
    add("--max-offsets-per-trigger", type=int,
        default=int(envvars.get(env, "STREAM_MAX_OFFSETS_PER_TRIGGER", "0")),
        help="records per micro-batch, 0 = no limit (env STREAM_MAX_OFFSETS_PER_TRIGGER)")
    add("--kafka-fetch-max-wait-ms", type=settings.millis,
        default=int(envvars.get(env, "STREAM_KAFKA_FETCH_MAX_WAIT_MS",
                                str(KafkaTopic.fetch_max_wait_ms))),
        help="longest the broker holds a fetch short of data; Kafka's own default of 500"
             " delays every micro-batch (env STREAM_KAFKA_FETCH_MAX_WAIT_MS)")
    add("--trigger-interval", type=settings.duration,
        default=envvars.get(env, "STREAM_TRIGGER_INTERVAL", StreamConfig.trigger_interval),
        help="how often a micro-batch may start (env STREAM_TRIGGER_INTERVAL)")
    add("--checkpoint-root",
        default=envvars.get(env, "STREAM_CHECKPOINT_ROOT", StreamConfig.checkpoint_root),
        help=f"a folder or URI, for one topic and keyspace; the query's checkpoint is"
             f" <root>/{QUERY_NAME} (env STREAM_CHECKPOINT_ROOT)")
    add("--avro-schema", type=Path,
        default=Path(envvars.get(env, "STREAM_AVRO_SCHEMA", str(contract.SCHEMA_PATH))),
        help="Avro schema of the records (env STREAM_AVRO_SCHEMA)")
    add("--available-now", action="store_true",
        default=envvars.flag(env, "STREAM_AVAILABLE_NOW"),
        help="process what the topic holds now, then exit (env STREAM_AVAILABLE_NOW=1)")
    add("--max-clock-skew", type=settings.positive_duration,
        default=envvars.get(env, "STREAM_MAX_CLOCK_SKEW",
                            contract.spell_duration(MAX_FUTURE_SKEW)),
        help="a trade dated later than its Kafka timestamp plus this is rejected as"
             " future_trade_ts (env STREAM_MAX_CLOCK_SKEW)")
    add("--min-trade-ts", type=settings.utc_timestamp,
        default=envvars.get(env, "STREAM_MIN_TRADE_TS",
                            TradeBounds.min_trade_ts.isoformat()),
        help="a trade dated before this is rejected as stale_trade_ts (env STREAM_MIN_TRADE_TS)")
    settings.add_job_options(parser, env)
    return parser


def parse_config(argv: Sequence[str], env: Mapping[str, str]) -> StreamConfig:
    parser = build_parser(env)
    args = parser.parse_args(argv)
    root = args.checkpoint_root
    if "://" not in root:
        root = str(Path(root).resolve())
    return StreamConfig(
        kafka=KafkaTopic(
            bootstrap_servers=args.bootstrap_servers,
            topic=args.topic,
            starting_offsets=args.starting_offsets,
            max_offsets_per_trigger=args.max_offsets_per_trigger or None,
            fetch_max_wait_ms=args.kafka_fetch_max_wait_ms,
        ),
        **settings.job_settings(parser, args, env),
        bounds=TradeBounds(max_clock_skew=args.max_clock_skew, min_trade_ts=args.min_trade_ts),
        avro_schema=args.avro_schema.resolve(),
        checkpoint_root=root,
        trigger_interval=args.trigger_interval,
        available_now=args.available_now,
    )


def batch_plan(config: StreamConfig) -> BatchPlan:
    return BatchPlan(job=QUERY_NAME, keyspace=config.cassandra.keyspace, topic=config.kafka.topic,
                     schema_json=config.avro_schema.read_text(), windows=config.windows,
                     bounds=config.bounds,
        from_earliest=config.kafka.starting_offsets == "earliest")


def log_batch(report: BatchReport) -> None:
    log.info("%s", report.line())


def start_query(spark: SparkSession, config: StreamConfig,
                processor: BatchProcessor) -> StreamingQuery:
    writer = (
        read_stream(spark, config.kafka)
        # Decoded in the query's own plan: Spark plans it once per micro-batch, and the
        # batch reaches foreachBatch as rows already computed, on which each of the
        # batch's steps is planned in a few milliseconds instead of re-analysing and
        # re-optimising the decode and rejection checks every time.
        .transform(processor.decode)
        .writeStream
        .queryName(QUERY_NAME)
        .option("checkpointLocation", f"{config.checkpoint_root.rstrip('/')}/{QUERY_NAME}")
        .foreachBatch(processor)
    )
    if config.available_now:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=config.trigger_interval)
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


def run(spark: SparkSession, config: StreamConfig, store: stream_store.StreamStore) -> int:
    with (contextlib.closing(TopicEnds(config.kafka.bootstrap_servers,
                                       config.kafka.topic)) as topic_ends,
          contextlib.closing(BatchProcessor(batch_plan(config), store, log_batch,
                                            topic_ends)) as processor):
        query = start_query(spark, config, processor)
        processor.progress.attach(query)
        log.info("started query=%s id=%s run=%s", query.name, query.id, query.runId)
        stop = threading.Event()
        stop_on_signals(stop)
        failed = await_queries(spark, [query], stop)
        stop_all([query])
    if failed is None:
        log.info("stopped")
        return ExitCode.OK
    message = str(failed.exception())
    log.error("query %s failed: %s\n%s", failed.name, error_summary(message), message)
    # Settings a restart cannot change exit with a usage code: a supervisor does not
    # retry them. A failure outside the batch function (Spark's own) is internal.
    return exit_code(processor.failure or RuntimeError(message))


@contextlib.contextmanager
def exit_if_stuck(timeout_s: float, code: Callable[[], int]) -> Iterator[None]:
    """Exit the process if the block has not finished within timeout_s.

    Stopping Spark can hang while the Cassandra connector still retries a node that
    went down; a job that neither runs nor exits is the worst outcome for a
    supervisor. Nothing is lost by exiting: the checkpoint replays the unfinished batch.
    """
    def give_up() -> None:
        log.error("shutdown did not finish within %g s; exiting with code %d (threads "
                  "below)", timeout_s, code())
        faulthandler.dump_traceback(all_threads=True)
        logging.shutdown()
        os._exit(code())

    timer = threading.Timer(timeout_s, give_up)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def open_store_waiting(target: CassandraTarget, wait_s: float
                       ) -> tuple[Cluster, stream_store.StreamStore]:
    """open_store, retried with backoff while no Cassandra node answers, for up to
    wait_s seconds; any other failure (a missing keyspace) is raised at once."""
    deadline = time.monotonic() + wait_s
    delay = 1.0
    while True:
        try:
            return stream_store.open_store(target)
        except NoHostAvailable as err:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("no Cassandra node at %s answers (%s); retrying in %.0f s",
                        target.host, err, delay)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


def main(config: StreamConfig) -> int:
    log.info("starting with %s", config)
    try:
        checkpoints.probe(config.checkpoint_root, [QUERY_NAME])
    except checkpoints.CheckpointError as err:
        log.error("%s; free space or fix the folder, or set --checkpoint-root "
                  "(env STREAM_CHECKPOINT_ROOT)", err)
        return exit_code(err)
    try:
        cluster, store = open_store_waiting(config.cassandra, CASSANDRA_WAIT_S)
    except (DriverException, NoHostAvailable) as err:
        # Cassandra down or the schema not applied: a later restart may well succeed.
        log.error("Cassandra keyspace %s is not usable: %s; is Cassandra up and the schema"
                  " applied (python -m stack schema)?", config.cassandra.keyspace, err)
        return ExitCode.INTERNAL
    spark = start_session("market-stream-processor", config.spark, config.cassandra)
    code: int = ExitCode.INTERNAL
    try:
        code = run(spark, config, store)
        return code
    finally:
        with exit_if_stuck(SHUTDOWN_TIMEOUT_S, lambda: code):
            spark.stop()
            cluster.shutdown()


if __name__ == "__main__":
    run_entry_point(lambda: main(parse_config(sys.argv[1:], os.environ)), log)
