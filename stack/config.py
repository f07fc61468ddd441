"""Configuration of the single-machine stack (Kafka + Cassandra on 127.0.0.1)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import contract
from contract import PROJECT_ROOT as PROJECT_ROOT
from contract import env as envvars
from stack import process
from stack.errors import StackError


@dataclass(frozen=True)
class StackConfig:
    """Where the stack lives and how it is sized. Built by the CLI from flags/env."""

    work_dir: Path = contract.WORK_DIR
    # Data, logs and pid files; a second stack (tests) can share the jars but not these.
    state_dir: Path | None = None
    host: str = contract.LOCAL_HOST
    kafka_port: int = contract.KAFKA_PORT
    kafka_controller_port: int = 9093
    kafka_heap: str = "512m"
    cassandra_port: int = contract.CASSANDRA_PORT
    cassandra_storage_port: int = 7000
    cassandra_heap: str = "1G"
    topic: str = contract.TOPIC
    topic_partitions: int = 3
    dead_letter_topic: str = contract.DEAD_LETTER_TOPIC
    keyspace: str = contract.KEYSPACE
    java: str = "java"
    maven: str = "mvn"
    start_timeout_s: float = 180.0
    stop_timeout_s: float = 60.0
    # The Spark standalone cluster (`stack up --on-cluster`): a master and one worker per
    # port pair, each worker offering its cores and memory to executors.
    spark_master_port: int = 7077
    spark_master_ui_port: int = 8080
    spark_worker_ports: tuple[int, ...] = (7078, 7079)
    spark_worker_ui_ports: tuple[int, ...] = (8081, 8082)
    spark_worker_cores: int = 1
    spark_worker_memory: str = "1g"
    spark_daemon_heap: str = "256m"
    # What the servers (Kafka, Cassandra, Spark daemons) and their tools inherit: only an
    # allow-listed part of the caller's environment (PATH, JAVA_HOME and the like), chosen
    # by the entry point, so an exported FINNHUB_TOKEN never reaches them.
    server_env: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def jars_dir(self) -> Path:
        return self.work_dir / contract.JARS_IN_WORK_DIR

    @property
    def stack_dir(self) -> Path:
        return self.state_dir or self.work_dir / "stack"

    def server_dir(self, name: str) -> Path:
        return self.stack_dir / name

    @property
    def kafka_bootstrap(self) -> str:
        return f"{self.host}:{self.kafka_port}"

    @property
    def cassandra_contact(self) -> str:
        return f"{self.host}:{self.cassandra_port}"

    @property
    def spark_master_url(self) -> str:
        return f"spark://{self.host}:{self.spark_master_port}"


def parse_ports(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part.strip())


# Each variable the stack reads, the StackConfig field it sets and how it is parsed.
# `python -m stack` takes its flags' defaults from from_env(); the tests and the
# benchmarks call from_env() directly, so all three read the same variables.
ENV_FIELDS: tuple[tuple[str, str, Callable[[str], object]], ...] = (
    ("STACK_WORK_DIR", "work_dir", lambda text: Path(text).resolve()),
    ("KAFKA_PORT", "kafka_port", int),
    ("KAFKA_CONTROLLER_PORT", "kafka_controller_port", int),
    ("KAFKA_HEAP", "kafka_heap", str),
    ("CASSANDRA_PORT", "cassandra_port", int),
    ("CASSANDRA_STORAGE_PORT", "cassandra_storage_port", int),
    ("CASSANDRA_HEAP", "cassandra_heap", str),
    ("KAFKA_TOPIC", "topic", str),
    ("KAFKA_TOPIC_PARTITIONS", "topic_partitions", int),
    ("KAFKA_DEAD_LETTER_TOPIC", "dead_letter_topic", str),
    ("CASSANDRA_KEYSPACE", "keyspace", str),
    ("JAVA", "java", str),
    ("MAVEN", "maven", str),
    ("STACK_START_TIMEOUT", "start_timeout_s", float),
    ("SPARK_MASTER_PORT", "spark_master_port", int),
    ("SPARK_MASTER_WEBUI_PORT", "spark_master_ui_port", int),
    ("SPARK_WORKER_PORTS", "spark_worker_ports", parse_ports),
    ("SPARK_WORKER_WEBUI_PORTS", "spark_worker_ui_ports", parse_ports),
    ("SPARK_WORKER_MEMORY", "spark_worker_memory", str),
)


def from_env(environ: Mapping[str, str]) -> StackConfig:
    """The stack as the environment configures it (unset or blank: the defaults).

    A value that does not parse raises StackError naming the variable. server_env is
    the allow-listed part of environ that the servers inherit (stack.process).
    """
    values: dict[str, object] = {}
    for variable, name, parse in ENV_FIELDS:
        text = envvars.optional(environ, variable)
        if text is None:
            continue
        try:
            values[name] = parse(text)
        except ValueError as err:
            raise StackError(f"{variable}={text!r} is not valid: {err}") from None
    return StackConfig(**values, server_env=process.allowed_env(environ))
