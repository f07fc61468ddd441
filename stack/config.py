"""Configuration of the single-machine stack (Kafka + Cassandra on 127.0.0.1)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from jobs.settings import DEFAULT_WORK_DIR, JARS_IN_WORK_DIR

# The project's root as the jobs define it, re-exported for the rest of stack/.
from jobs.settings import PROJECT_ROOT as PROJECT_ROOT


@dataclass(frozen=True)
class StackConfig:
    """Where the stack lives and how it is sized. Built by the CLI from flags/env."""

    work_dir: Path = DEFAULT_WORK_DIR
    # Data, logs and pid files; a second stack (tests) can share the jars but not these.
    state_dir: Path | None = None
    host: str = "127.0.0.1"
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    kafka_heap: str = "512m"
    cassandra_port: int = 9042
    cassandra_storage_port: int = 7000
    cassandra_heap: str = "1G"
    topic: str = "Market"
    topic_partitions: int = 3
    dead_letter_topic: str = "Market.rejected"
    keyspace: str = "market"
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
        return self.work_dir / JARS_IN_WORK_DIR

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
