"""`python -m stack up|down|status|jars|schema|class-archive|run`: the single-machine
Kafka + Cassandra stack, and on demand (`up --on-cluster`) a Spark standalone cluster."""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from stack import class_archive, jars, lifecycle, pipeline, process, spark_cluster
from stack.config import DEFAULT_WORK_DIR, StackConfig
from stack.errors import StackError
from stack.pipeline import RunConfig


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m stack", description=__doc__)
    parser.add_argument("command", choices=("up", "down", "status", "jars", "schema",
                                            "class-archive", "run"))
    add = parser.add_argument
    add("--work-dir", type=Path, default=Path(_env("STACK_WORK_DIR", str(DEFAULT_WORK_DIR))),
        help="jars, data and logs (env STACK_WORK_DIR)")
    add("--kafka-port", type=int, default=int(_env("KAFKA_PORT", "9092")), help="env KAFKA_PORT")
    add("--kafka-controller-port", type=int, default=int(_env("KAFKA_CONTROLLER_PORT", "9093")),
        help="env KAFKA_CONTROLLER_PORT")
    add("--kafka-heap", default=_env("KAFKA_HEAP", "512m"), help="env KAFKA_HEAP")
    add("--cassandra-port", type=int, default=int(_env("CASSANDRA_PORT", "9042")),
        help="CQL native port (env CASSANDRA_PORT)")
    add("--cassandra-storage-port", type=int,
        default=int(_env("CASSANDRA_STORAGE_PORT", "7000")), help="env CASSANDRA_STORAGE_PORT")
    add("--cassandra-heap", default=_env("CASSANDRA_HEAP", "1G"), help="env CASSANDRA_HEAP")
    add("--topic", default=_env("KAFKA_TOPIC", "Market"), help="env KAFKA_TOPIC")
    add("--partitions", type=int, default=int(_env("KAFKA_TOPIC_PARTITIONS", "3")),
        help="partitions of a newly created topic (env KAFKA_TOPIC_PARTITIONS)")
    add("--dead-letter-topic", default=_env("KAFKA_DEAD_LETTER_TOPIC", "Market.rejected"),
        help="env KAFKA_DEAD_LETTER_TOPIC")
    add("--keyspace", default=_env("CASSANDRA_KEYSPACE", "market"), help="env CASSANDRA_KEYSPACE")
    add("--java", default=_env("JAVA", "java"), help="java executable (env JAVA)")
    add("--maven", default=_env("MAVEN", "mvn"), help="mvn executable (env MAVEN)")
    add("--symbols", default=_env("FINNHUB_SYMBOLS",
                                  "BINANCE:BTCUSDT,BINANCE:ETHUSDT,BINANCE:SOLUSDT"),
        help="run: symbols to stream (env FINNHUB_SYMBOLS)")
    add("--synthetic-rate", type=float, default=float(_env("SYNTHETIC_RATE", "50")),
        help="run without FINNHUB_TOKEN: synthetic trades per second (env SYNTHETIC_RATE)")
    add("--status-interval", type=_interval, default=_interval(_env("STACK_STATUS_INTERVAL", "5")),
        help="`run`: seconds between two status lines, 0 for none (env STACK_STATUS_INTERVAL)")
    add("--producer-metrics-port", type=_port,
        default=_port(_env("PRODUCER_METRICS_PORT", "9464")),
        help="`run`: the producer's Prometheus /metrics on 127.0.0.1, 0 for none"
             " (env PRODUCER_METRICS_PORT)")
    add("--start-timeout", type=float, default=float(_env("STACK_START_TIMEOUT", "180")),
        help="seconds to wait for readiness (env STACK_START_TIMEOUT)")
    add("--on-cluster", action="store_true",
        default=_env("RUN_ON_CLUSTER", "0").lower() in ("1", "true", "yes"),
        help="up: also start the Spark standalone cluster; run: spark-submit the stream job"
             " to it (env RUN_ON_CLUSTER=1)")
    add("--spark-master-port", type=int, default=int(_env("SPARK_MASTER_PORT", "7077")),
        help="env SPARK_MASTER_PORT")
    add("--spark-master-ui-port", type=int,
        default=int(_env("SPARK_MASTER_WEBUI_PORT", "8080")), help="env SPARK_MASTER_WEBUI_PORT")
    add("--spark-worker-ports", type=_ports,
        default=_ports(_env("SPARK_WORKER_PORTS", "7078,7079")),
        help="one RPC port per worker (env SPARK_WORKER_PORTS)")
    add("--spark-worker-ui-ports", type=_ports,
        default=_ports(_env("SPARK_WORKER_WEBUI_PORTS", "8081,8082")),
        help="one web UI port per worker (env SPARK_WORKER_WEBUI_PORTS)")
    add("--spark-worker-memory", default=_env("SPARK_WORKER_MEMORY", "1g"),
        help="memory each worker offers its executors (env SPARK_WORKER_MEMORY)")
    return parser


def _ports(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of ports: {text!r}") from err


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from err
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"not a finite number of seconds >= 0: {text!r}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from err
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a port within 0..65535: {text!r}")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def parse_config(argv: Sequence[str] | None = None,
                 environ: Mapping[str, str] = os.environ) -> tuple[str, StackConfig]:
    return _stack_config(parse_args(argv), environ)


def _stack_config(args: argparse.Namespace,
                  environ: Mapping[str, str]) -> tuple[str, StackConfig]:
    config = StackConfig(
        work_dir=args.work_dir.resolve(), kafka_port=args.kafka_port,
        kafka_controller_port=args.kafka_controller_port, kafka_heap=args.kafka_heap,
        cassandra_port=args.cassandra_port, cassandra_storage_port=args.cassandra_storage_port,
        cassandra_heap=args.cassandra_heap, topic=args.topic, topic_partitions=args.partitions,
        dead_letter_topic=args.dead_letter_topic, keyspace=args.keyspace, java=args.java,
        maven=args.maven, start_timeout_s=args.start_timeout,
        spark_master_port=args.spark_master_port, spark_master_ui_port=args.spark_master_ui_port,
        spark_worker_ports=args.spark_worker_ports,
        spark_worker_ui_ports=args.spark_worker_ui_ports,
        spark_worker_memory=args.spark_worker_memory,
        server_env=process.allowed_env(environ),
    )
    return args.command, config


def main(command: str, config: StackConfig, on_cluster: bool = False) -> int:
    if command == "jars":
        jars.resolve_all(config.jars_dir, config.maven)
        lines = [f"{name}: {len(jars.jar_paths(config.jars_dir, name))} jars in "
                 f"{config.jars_dir / name}" for name in jars.JAR_SETS]
    elif command == "up":
        lines = lifecycle.up(config, spark=on_cluster)
    elif command == "down":
        lines = lifecycle.down(config)
    elif command == "schema":
        lines = lifecycle.provision(config)
    elif command == "class-archive":
        lifecycle.require_ready(config)
        lines = class_archive.ensure(config)
    else:
        # The Spark cluster is listed when asked for or running; then it must be ready too.
        spark = on_cluster or any(s.pid() for s in spark_cluster.servers(config))
        statuses = lifecycle.status(config, spark=spark)
        print("\n".join(s.line() for s in statuses))
        return 0 if all(s.ready for s in statuses) else 1
    print("\n".join(lines))
    return 0


def run_config(args: argparse.Namespace, config: StackConfig) -> RunConfig:
    # Only the presence of the token is read here; its value stays in the environment
    # the producer inherits, out of every command line.
    return RunConfig(stack=config, live=bool(os.environ.get("FINNHUB_TOKEN")),
                     symbols=args.symbols, synthetic_rate=args.synthetic_rate,
                     on_cluster=args.on_cluster, status_interval_s=args.status_interval,
                     producer_metrics_port=args.producer_metrics_port)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    # The Kafka and Cassandra clients log every refused connection while servers boot.
    for noisy in ("kafka", "cassandra"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    try:
        arguments = parse_args()
        command, stack_config = _stack_config(arguments, os.environ)
        if command == "run":
            sys.exit(pipeline.run(run_config(arguments, stack_config), dict(os.environ)))
        sys.exit(main(command, stack_config, on_cluster=arguments.on_cluster))
    except StackError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
