"""What each child of the stack inherits: an allow-list; the Finnhub token reaches the
producer only."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from stack import cassandra, kafka, process, spark_cluster
from stack.__main__ import parse_config
from stack.config import StackConfig
from stack.pipeline import RunConfig, programs
from stack.server import Server
from stack.supervisor import Program, RestartPolicy, Supervisor

TOKEN = "fh-Tok3n-never-elsewhere"
CALLER_ENV = {
    "PATH": "/usr/bin:/bin", "HOME": "/home/u", "LANG": "C.UTF-8", "JAVA_HOME": "/opt/jdk",
    "VIRTUAL_ENV": "/p/.venv",
    "FINNHUB_TOKEN": TOKEN, "FINNHUB_IDLE_TIMEOUT": "30", "SYNTHETIC_SEED": "4",
    "CASSANDRA_PASSWORD": "cass-pw", "STREAM_WATERMARK": "1 minute", "SPARK_LOG_LEVEL": "INFO",
    "KAFKA_LINGER_MS": "5",
    "AWS_SECRET_ACCESS_KEY": "aws-secret", "GITHUB_TOKEN": "gh-secret", "EDITOR": "vi",
}
DUMP_ENV = [sys.executable, "-c", "import json, os; print(json.dumps(dict(os.environ)))"]


def run_config(tmp_path: Path, live: bool) -> RunConfig:
    return RunConfig(stack=StackConfig(work_dir=tmp_path), live=live, symbols="AAPL",
                     synthetic_rate=5)


def test_allowed_env_keeps_listed_names_and_prefixes_only() -> None:
    assert process.allowed_env(CALLER_ENV, ("PATH", "NOT_SET"), ("FINNHUB_",)) == {
        "PATH": "/usr/bin:/bin", "FINNHUB_TOKEN": TOKEN, "FINNHUB_IDLE_TIMEOUT": "30"}
    assert process.allowed_env(CALLER_ENV) == {
        "PATH": "/usr/bin:/bin", "HOME": "/home/u", "LANG": "C.UTF-8", "JAVA_HOME": "/opt/jdk"}


@pytest.mark.parametrize("live", [True, False])
def test_only_the_producer_gets_the_token(tmp_path: Path, live: bool) -> None:
    producer, job = programs(run_config(tmp_path, live), CALLER_ENV)
    assert producer.name == "producer" and job.name == "stream-job"
    assert producer.env is not None and job.env is not None
    settings = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092", "KAFKA_TOPIC": "Market",
                "KAFKA_DEAD_LETTER_TOPIC": "Market.rejected", "CASSANDRA_HOST": "127.0.0.1",
                "CASSANDRA_PORT": "9042", "CASSANDRA_KEYSPACE": "market",
                "STREAM_CHECKPOINT_ROOT": str(tmp_path / "checkpoints"),
                "SPARK_JARS_DIR": str(tmp_path / "jars"), "SPARK_DRIVER_MEMORY": "2g",
                "SPARK_CLASS_ARCHIVE": str(tmp_path / "class-archive" / "driver.jsa")}
    base = {"PATH": "/usr/bin:/bin", "HOME": "/home/u", "LANG": "C.UTF-8",
            "JAVA_HOME": "/opt/jdk", "VIRTUAL_ENV": "/p/.venv"}
    assert producer.env == {**base, "FINNHUB_TOKEN": TOKEN, "FINNHUB_IDLE_TIMEOUT": "30",
                            "SYNTHETIC_SEED": "4", "KAFKA_LINGER_MS": "5", **settings,
                            "PRODUCER_METRICS_PORT": "9464"}
    assert job.env == {**base, "CASSANDRA_PASSWORD": "cass-pw",
                       "STREAM_WATERMARK": "1 minute", "SPARK_LOG_LEVEL": "INFO",
                       "KAFKA_LINGER_MS": "5", **settings}
    # Never on a command line either.
    assert not any(TOKEN in arg for p in (producer, job) for arg in p.command)
    assert TOKEN not in repr(producer)


def test_supervised_program_runs_with_exactly_its_environment(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "ONLY_THIS": "1"}
    program = Program("dump", DUMP_ENV, env=env)
    fast = RestartPolicy(initial_backoff_s=0.05, crash_loop_count=2)
    assert Supervisor([program], tmp_path / "logs", {"FINNHUB_TOKEN": TOKEN}, fast).run() == 0
    seen = json.loads((tmp_path / "logs" / "dump.log").read_text().splitlines()[-1])
    # The interpreter may add its own (e.g. LC_CTYPE); nothing of the caller's beyond env.
    assert set(env.items()) <= set(seen.items())
    assert TOKEN not in json.dumps(seen)


def test_stack_servers_do_not_inherit_the_token(tmp_path: Path) -> None:
    # The entry point chooses the servers' environment from the caller's.
    config = parse_config(["--work-dir", str(tmp_path), "status"], CALLER_ENV)[1]
    allowed = {"PATH": "/usr/bin:/bin", "HOME": "/home/u", "LANG": "C.UTF-8",
               "JAVA_HOME": "/opt/jdk"}
    assert dict(config.server_env) == allowed
    for server in (kafka.server(config), cassandra.server(config),
                   *spark_cluster.servers(config)):
        assert dict(server.env) == allowed, server.name
    assert TOKEN not in repr(config)

    probe = Server(name="probe", home=tmp_path, ports={}, command=lambda: DUMP_ENV,
                   ready=lambda: True, env=config.server_env)
    pid = probe.launch()
    deadline = time.monotonic() + 60
    while process.is_alive(pid) or not probe.console_log.read_text().strip():
        assert time.monotonic() < deadline, "the probe server never wrote its environment"
        time.sleep(0.05)
    seen = json.loads(probe.console_log.read_text().splitlines()[-1])
    # The interpreter may add its own (e.g. LC_CTYPE); nothing of the caller's beyond these.
    assert set(allowed.items()) <= set(seen.items())
    assert not set(seen) & {"FINNHUB_TOKEN", "CASSANDRA_PASSWORD", "GITHUB_TOKEN",
                            "AWS_SECRET_ACCESS_KEY", "VIRTUAL_ENV"}
