"""`make run`: the producer and the stream job on the local stack, under the supervisor."""

from __future__ import annotations

import dataclasses
import logging
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import contract
from contract import exits
from contract.cassandra import make_cluster
from stack import class_archive, process, spark_cluster, spark_submit
from stack.config import StackConfig
from stack.errors import StackError
from stack.status import ProgressReader, StatusLine, TopicRate
from stack.supervisor import Program, RestartPolicy, Supervisor

log = logging.getLogger(__name__)


# What each program may inherit from the caller's environment besides process.BASE_ENV.
# FINNHUB_ (the token among it) is the producer's alone.
PYTHON_ENV = ("PYTHONPATH", "VIRTUAL_ENV")
PRODUCER_ENV_PREFIXES = ("FINNHUB_", "KAFKA_", "PRODUCER_", "SYNTHETIC_")
JOB_ENV_PREFIXES = ("KAFKA_", "CASSANDRA_", "STREAM_", "SPARK_", "PYSPARK_", "HADOOP_")


@dataclass(frozen=True)
class RunConfig:
    stack: StackConfig
    live: bool
    symbols: str
    synthetic_rate: float
    driver_memory: str = "2g"
    # RUN_ON_CLUSTER=1: the job is spark-submitted to the local standalone cluster.
    on_cluster: bool = False
    # Seconds between two status lines (stack.status); 0: none.
    status_interval_s: float = 5.0
    # The producer's Prometheus /metrics on 127.0.0.1; 0: none.
    producer_metrics_port: int = contract.PRODUCER_METRICS_PORT

    @property
    def run_dir(self) -> Path:
        return self.stack.work_dir / "run"

    @property
    def checkpoint_root(self) -> Path:
        return self.stack.work_dir / "checkpoints"


def programs(config: RunConfig, base_env: dict[str, str]) -> list[Program]:
    """The producer and the job, each with its own allow-listed environment."""
    python = sys.executable
    if config.live:
        # The token reaches the producer through its inherited environment, never argv.
        producer = [python, "-m", "producer", "live", "--symbols", config.symbols]
    else:
        producer = [python, "-m", "producer", "synthetic", "--symbols", config.symbols,
                    "--rate", str(config.synthetic_rate)]
    job = cluster_job(config) if config.on_cluster else [python, "-m", "jobs.stream_processor"]
    settings = child_env(config)
    metrics = ({"PRODUCER_METRICS_PORT": str(config.producer_metrics_port)}
               if config.producer_metrics_port else {})
    # Exit codes a restart cannot fix (bad settings, refused credentials): the
    # supervisor stops with a report instead of restarting into the same failure.
    return [Program("producer", producer, fatal_exit_codes=exits.PERMANENT,
                    env={**_inherited(base_env, PRODUCER_ENV_PREFIXES), **settings,
                         **metrics}),
            Program("stream-job", job, fatal_exit_codes=exits.PERMANENT,
                    env={**_inherited(base_env, JOB_ENV_PREFIXES), **settings})]


def cluster_job(config: RunConfig) -> list[str]:
    """spark-submit of the stream job to the stack's Spark cluster, artifact built now."""
    if not spark_cluster.master_ready(config.stack):
        raise StackError(f"no Spark master answers at {config.stack.spark_master_url}",
                         "start it with `RUN_ON_CLUSTER=1 make stack-up`")
    sub = dataclasses.replace(spark_submit.submission(config.stack, sys.executable),
                              driver_memory=config.driver_memory)
    # Checkpoints: STREAM_CHECKPOINT_ROOT, an absolute local path driver and executors share.
    return spark_submit.submit_command(
        sub, spark_submit.STREAM_JOB, ["--avro-schema", str(spark_submit.AVRO_SCHEMA)],
        name="market-stream-processor")


def _inherited(base_env: dict[str, str], prefixes: tuple[str, ...]) -> dict[str, str]:
    return process.allowed_env(base_env, (*process.BASE_ENV, *PYTHON_ENV), prefixes)


def child_env(config: RunConfig) -> dict[str, str]:
    """The stack's settings, handed to both programs (none of them secret)."""
    stack = config.stack
    return {
        "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap,
        "KAFKA_TOPIC": stack.topic,
        "KAFKA_DEAD_LETTER_TOPIC": stack.dead_letter_topic,
        "CASSANDRA_HOST": stack.host,
        "CASSANDRA_PORT": str(stack.cassandra_port),
        "CASSANDRA_KEYSPACE": stack.keyspace,
        "STREAM_CHECKPOINT_ROOT": str(config.checkpoint_root),
        "SPARK_JARS_DIR": str(stack.jars_dir),
        "SPARK_CLASS_ARCHIVE": str(class_archive.archive_path(stack)),
        "SPARK_DRIVER_MEMORY": config.driver_memory,
    }


def run(config: RunConfig, base_env: dict[str, str]) -> int:
    source = "live Finnhub trades" if config.live else (
        f"synthetic trades at {config.synthetic_rate:g}/s (set FINNHUB_TOKEN for live data)")
    log.info("pipeline: %s for %s -> Kafka %s/%s -> Cassandra %s keyspace %s",
             source, config.symbols, config.stack.kafka_bootstrap, config.stack.topic,
             config.stack.cassandra_contact, config.stack.keyspace)
    if config.on_cluster:
        log.info("stream job: spark-submit to %s", config.stack.spark_master_url)
    log.info("logs in %s; stop with Ctrl-C", config.run_dir / "logs")
    # With the status line, the programs' own lines stay in their log files; a crash
    # still prints the last of them.
    supervisor = Supervisor(programs(config, base_env), config.run_dir / "logs", {},
                            RestartPolicy(), echo=config.status_interval_s == 0)
    signal.signal(signal.SIGINT, supervisor.stop)
    signal.signal(signal.SIGTERM, supervisor.stop)
    status = start_status(config) if config.status_interval_s > 0 else None
    try:
        return supervisor.run()
    finally:
        if status is not None:
            status.stop()


def start_status(config: RunConfig) -> StatusLine | None:
    """The status line on its own thread; without Cassandra, the pipeline runs without it."""
    from cassandra.cluster import NoHostAvailable

    stack = config.stack
    try:
        cluster = make_cluster(stack.host, stack.cassandra_port)
        session = cluster.connect()
        progress = ProgressReader(session, stack.keyspace)
    except (NoHostAvailable, OSError) as err:
        log.warning("no status line: Cassandra is not reachable (%s)", err)
        return None
    line = StatusLine(progress, TopicRate(stack.kafka_bootstrap, stack.topic),
                      config.status_interval_s)
    log.info("status every %gs: producer rate, job lag behind Kafka, trades written, last"
             " batch duration, ingest-to-write latency of the last batch, rejects since start;"
             " per-batch detail in %s", config.status_interval_s,
             config.run_dir / "logs" / "stream-job.log")

    def run() -> None:
        try:
            line.run()
        finally:
            cluster.shutdown()

    threading.Thread(target=run, name="status-line", daemon=True).start()
    return line
