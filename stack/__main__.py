"""`python -m stack up|down|status|jars|schema|class-archive|run`: the single-machine
Kafka + Cassandra stack, and on demand (`up --on-cluster`) a Spark standalone cluster."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import contract
from contract import env as envvars
from contract.exits import ExitError, exit_code
from stack import class_archive, jars, lifecycle, pipeline, spark_cluster
from stack.config import StackConfig, from_env, parse_ports
from stack.pipeline import RunConfig

DEFAULT_SYMBOLS = "BINANCE:BTCUSDT,BINANCE:ETHUSDT,BINANCE:SOLUSDT"


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    """The flags; each defaults to what stack.config.from_env reads from environ."""
    base = from_env(environ)
    parser = argparse.ArgumentParser(prog="python -m stack", description=__doc__)
    parser.add_argument("command", choices=("up", "down", "status", "jars", "schema",
                                            "class-archive", "run"))
    add = parser.add_argument
    add("--work-dir", type=Path, default=base.work_dir,
        help="jars, data and logs (env STACK_WORK_DIR)")
    add("--kafka-port", type=int, default=base.kafka_port, help="env KAFKA_PORT")
    add("--kafka-controller-port", type=int, default=base.kafka_controller_port,
        help="env KAFKA_CONTROLLER_PORT")
    add("--kafka-heap", default=base.kafka_heap, help="env KAFKA_HEAP")
    add("--cassandra-port", type=int, default=base.cassandra_port,
        help="CQL native port (env CASSANDRA_PORT)")
    add("--cassandra-storage-port", type=int, default=base.cassandra_storage_port,
        help="env CASSANDRA_STORAGE_PORT")
    add("--cassandra-heap", default=base.cassandra_heap, help="env CASSANDRA_HEAP")
    add("--topic", default=base.topic, help="env KAFKA_TOPIC")
    add("--partitions", type=int, default=base.topic_partitions,
        help="partitions of a newly created topic (env KAFKA_TOPIC_PARTITIONS)")
    add("--dead-letter-topic", default=base.dead_letter_topic,
        help="env KAFKA_DEAD_LETTER_TOPIC")
    add("--keyspace", default=base.keyspace, help="env CASSANDRA_KEYSPACE")
    add("--java", default=base.java, help="java executable (env JAVA)")
    add("--maven", default=base.maven, help="mvn executable (env MAVEN)")
    add("--symbols", default=envvars.get(environ, "FINNHUB_SYMBOLS", DEFAULT_SYMBOLS),
        help="run: symbols to stream (env FINNHUB_SYMBOLS)")
    add("--synthetic-rate", type=float,
        default=float(envvars.get(environ, "SYNTHETIC_RATE", "50")),
        help="run without FINNHUB_TOKEN: synthetic trades per second (env SYNTHETIC_RATE)")
    add("--status-interval", type=_interval,
        default=_interval(envvars.get(environ, "STACK_STATUS_INTERVAL", "5")),
        help="`run`: seconds between two status lines, 0 for none (env STACK_STATUS_INTERVAL)")
    add("--producer-metrics-port", type=_port,
        default=_port(envvars.get(environ, "PRODUCER_METRICS_PORT",
                                  str(contract.PRODUCER_METRICS_PORT))),
        help="`run`: the producer's Prometheus /metrics on 127.0.0.1, 0 for none"
             " (env PRODUCER_METRICS_PORT)")
    add("--start-timeout", type=float, default=base.start_timeout_s,
        help="seconds to wait for readiness (env STACK_START_TIMEOUT)")
    add("--on-cluster", action="store_true", default=envvars.flag(environ, "RUN_ON_CLUSTER"),
        help="up: also start the Spark standalone cluster; run: spark-submit the stream job"
             " to it (env RUN_ON_CLUSTER=1)")
    add("--spark-master-port", type=int, default=base.spark_master_port,
        help="env SPARK_MASTER_PORT")
    add("--spark-master-ui-port", type=int, default=base.spark_master_ui_port,
        help="env SPARK_MASTER_WEBUI_PORT")
    add("--spark-worker-ports", type=_ports, default=base.spark_worker_ports,
        help="one RPC port per worker (env SPARK_WORKER_PORTS)")
    add("--spark-worker-ui-ports", type=_ports, default=base.spark_worker_ui_ports,
        help="one web UI port per worker (env SPARK_WORKER_WEBUI_PORTS)")
    add("--spark-worker-memory", default=base.spark_worker_memory,
        help="memory each worker offers its executors (env SPARK_WORKER_MEMORY)")
    parser.set_defaults(base=base)
    return parser


def _ports(text: str) -> tuple[int, ...]:
    try:
        return parse_ports(text)
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


def parse_args(argv: Sequence[str] | None = None,
               environ: Mapping[str, str] = os.environ) -> argparse.Namespace:
    return build_parser(environ).parse_args(argv)


def parse_config(argv: Sequence[str] | None = None,
                 environ: Mapping[str, str] = os.environ) -> tuple[str, StackConfig]:
    return stack_config(parse_args(argv, environ))


def stack_config(args: argparse.Namespace) -> tuple[str, StackConfig]:
    """The command and the stack: the environment's config with the flags applied."""
    config = dataclasses.replace(
        args.base,
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
    return RunConfig(stack=config, live=envvars.optional(os.environ, "FINNHUB_TOKEN") is not None,
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
        command, config = stack_config(arguments)
        if command == "run":
            sys.exit(pipeline.run(run_config(arguments, config), dict(os.environ)))
        sys.exit(main(command, config, on_cluster=arguments.on_cluster))
    except ExitError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(exit_code(err))
