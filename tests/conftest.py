"""Shared fixtures: a local[2] SparkSession and the real local Kafka + Cassandra stack.

Tests that need the stack start it if it is not running and stop it again at the
end of the session (set STACK_KEEP=1 to leave it up). They never skip: a stack that
cannot start fails them loudly, with the reason, in CI and on a laptop alike.

A test is marked by the fixtures it uses: one that reaches the `stack` fixture (also
through kafka_bootstrap, cassandra_session, make_keyspace, make_topic or a fixture of
its own) is `integration`, one that uses `spark` is `spark`. So
`-m "not integration"` (`make test-unit`) never starts a server, however a test
came to need one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from marks_testing import mark_by_fixtures
from producer_testing import ProducerRun

from contract import schema
from contract.cassandra import make_cluster
from stack import jars, lifecycle
from stack.config import StackConfig, from_env
from stack.errors import StackError

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# pyspark.testing imports pandas-on-Spark, which asks for this before any Spark starts.
os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # tryfirst: the marks must be there before `-m` deselects by them.
    mark_by_fixtures(items)


@pytest.fixture(scope="session")
def stack_config() -> StackConfig:
    # The same environment the `python -m stack` CLI reads, so tests use the user's ports.
    return from_env(os.environ)


@pytest.fixture(scope="session")
def work_dir(stack_config: StackConfig) -> Path:
    path = stack_config.work_dir / "tests"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def spark(stack_config: StackConfig, work_dir: Path):
    from jobs.session import build_spark

    jars.resolve(stack_config.jars_dir, "spark", stack_config.maven)
    session = build_spark(
        "tests",
        master="local[2]",
        jars=jars.jar_paths(stack_config.jars_dir, "spark"),
        conf={
            "spark.driver.memory": "1g",
            "spark.sql.warehouse.dir": str(work_dir / "spark-warehouse"),
            "spark.local.dir": str(work_dir / "spark-local"),
            "spark.cassandra.connection.host": stack_config.host,
            "spark.cassandra.connection.port": str(stack_config.cassandra_port),
        },
    )
    session.sparkContext.setLogLevel("WARN")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def stack(stack_config: StackConfig) -> Iterator[StackConfig]:
    """The running stack; started here if needed, and stopped again if started here."""
    already_up = all(s.ready for s in lifecycle.status(stack_config))
    try:
        lifecycle.up(stack_config)
    except StackError as err:
        pytest.fail(f"the local Kafka + Cassandra stack could not start:\n{err}", pytrace=False)
    yield stack_config
    if not already_up and os.environ.get("STACK_KEEP") != "1":
        lifecycle.down(stack_config)


@pytest.fixture(scope="session")
def kafka_bootstrap(stack: StackConfig) -> str:
    return stack.kafka_bootstrap


@pytest.fixture(scope="session")
def cassandra_session(stack: StackConfig):
    # Fault tests restart Cassandra: reconnect every second rather than backing off
    # for minutes, so the session is usable again soon after the node is.
    cluster = make_cluster(stack.host, stack.cassandra_port, reconnect_every_s=1.0)
    session = cluster.connect()
    yield session
    cluster.shutdown()


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def make_keyspace(cassandra_session) -> Iterator[Callable[[], str]]:
    """Factory: a fresh keyspace with the full cql/ schema; dropped at session end."""
    created: list[str] = []

    def factory() -> str:
        name = unique_name("test")
        schema.apply(cassandra_session, name)
        created.append(name)
        return name

    yield factory
    for name in created:
        cassandra_session.execute(f"DROP KEYSPACE IF EXISTS {name}", timeout=60)


@pytest.fixture(scope="session")
def make_topic(kafka_bootstrap: str) -> Iterator[Callable[..., str]]:
    """Factory: a fresh Kafka topic (default 3 partitions); deleted at session end."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    created: list[str] = []

    def factory(partitions: int = 3, prefix: str = "test") -> str:
        name = unique_name(prefix)
        admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        created.append(name)
        return name

    yield factory
    if created:
        admin.delete_topics(created)
    admin.close()


@pytest.fixture
def run_producer(tmp_path: Path) -> Iterator[Callable[..., ProducerRun]]:
    """Factory: start the producer CLI with extra environment variables."""
    runs: list[ProducerRun] = []

    def start(*args: str, env: dict[str, str] | None = None) -> ProducerRun:
        log_path = tmp_path / f"producer-{len(runs)}.log"
        child_env = {k: v for k, v in os.environ.items()
                     if not k.startswith(("FINNHUB_", "KAFKA_", "SYNTHETIC_", "REPLAY_"))}
        child_env.update(env or {})
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "producer", *args], cwd=PROJECT_ROOT, env=child_env,
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT)
        run = ProducerRun(process, log_path)
        runs.append(run)
        return run

    yield start
    for run in runs:
        if run.process.poll() is None:
            run.process.kill()
            run.process.wait()


