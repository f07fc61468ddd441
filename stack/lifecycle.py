"""Bring the local stack up, down, and report on it."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from contract import schema
from contract.cassandra import make_cluster
from stack import cassandra, jars, kafka, process, spark_cluster
from stack.config import StackConfig
from stack.errors import StackError
from stack.server import Server

log = logging.getLogger(__name__)


def servers(config: StackConfig) -> list[Server]:
    return [kafka.server(config), cassandra.server(config)]


@dataclass(frozen=True)
class ServerStatus:
    name: str
    pid: int | None
    ready: bool
    ports: dict[str, int]
    log_dir: str

    def line(self) -> str:
        state = "ready" if self.ready else ("starting" if self.pid else "stopped")
        ports = ", ".join(f"{label} {port}" for label, port in self.ports.items())
        pid = f"pid {self.pid}" if self.pid else "no process"
        return f"{self.name:<10} {state:<8} {pid:<12} ports: {ports}  logs: {self.log_dir}"


def status(config: StackConfig, spark: bool = False) -> list[ServerStatus]:
    """Kafka and Cassandra; with spark=True also the Spark master and workers."""
    result = []
    for srv in servers(config) + (spark_cluster.servers(config) if spark else []):
        pid = srv.pid()
        result.append(ServerStatus(srv.name, pid, bool(pid) and srv.ready(), srv.ports,
                                   str(srv.log_dir)))
    return result


def up(config: StackConfig, spark: bool = False) -> list[str]:
    """Start what is not running, wait for readiness, apply schema and topics. Idempotent.

    spark=True then starts the Spark standalone cluster too (`stack up --on-cluster`).
    """
    process.require_java(config.java)
    for name in ("kafka", "cassandra"):
        jars.resolve(config.jars_dir, name, config.maven)
    started = time.monotonic()
    # Both JVMs boot in parallel.
    messages = _start(config, servers(config))
    messages.append(f"ready after {time.monotonic() - started:.1f}s")
    messages.extend(provision(config))
    if spark:
        messages.extend(spark_up(config))
    return messages


def spark_up(config: StackConfig) -> list[str]:
    """Start the Spark master, wait for it, then the workers until each has registered."""
    process.require_java(config.java)
    started = time.monotonic()
    master, *workers = spark_cluster.servers(config)
    messages = _start(config, [master])
    messages += _start(config, workers)
    state = spark_cluster.master_json(config) or {}
    messages.append(f"spark: {config.spark_master_url} with {state.get('aliveworkers', 0)} "
                    f"workers, {state.get('cores', 0)} cores, ready after "
                    f"{time.monotonic() - started:.1f}s (UI http://{config.host}:"
                    f"{config.spark_master_ui_port})")
    return messages


def _start(config: StackConfig, group: list[Server]) -> list[str]:
    """Launch the servers of group that are not running, then wait for each in turn."""
    messages, pids = [], []
    for srv in group:
        pid = srv.pid()
        if pid is not None:
            messages.append(f"{srv.name}: already running (pid {pid})")
        else:
            process.require_free_ports(config.host, srv.ports)
            srv.home.mkdir(parents=True, exist_ok=True)
            pid = srv.launch()
            messages.append(f"{srv.name}: started (pid {pid})")
        pids.append((srv, pid))
    for srv, pid in pids:
        process.wait_until(srv.ready, what=srv.name, timeout_s=config.start_timeout_s,
                           pid=pid, log_file=srv.console_log)
    return messages


def provision(config: StackConfig) -> list[str]:
    """Apply cql/ and create the topics; both steps are idempotent."""
    cluster = make_cluster(config.host, config.cassandra_port)
    try:
        count = schema.apply(cluster.connect(), config.keyspace)
    finally:
        cluster.shutdown()
    created = [
        topic for topic in (config.topic, config.dead_letter_topic)
        if kafka.ensure_topic(config.kafka_bootstrap, topic, config.topic_partitions)
    ]
    return [f"schema: {count} CQL statements applied to keyspace {config.keyspace}",
            f"topics: created {created}" if created else "topics: already present"]


def down(config: StackConfig) -> list[str]:
    """Stop what up started: SIGTERM, then SIGKILL after the stop timeout. Data stays."""
    # Spark first (its executors are clients of both), then Cassandra, so that the
    # broker outlives any client still flushing.
    return spark_down(config) + _stop(config, list(reversed(servers(config))))


def spark_down(config: StackConfig) -> list[str]:
    """Stop the Spark workers (with their executors), then the master; quiet if stopped."""
    group = list(reversed(spark_cluster.servers(config)))
    if all(srv.pid() is None for srv in group):
        return []
    return _stop(config, group)


def _stop(config: StackConfig, group: list[Server]) -> list[str]:
    messages = []
    for srv in group:
        pid = srv.pid()
        if pid is None:
            messages.append(f"{srv.name}: not running")
            srv.pidfile.unlink(missing_ok=True)
            continue
        killed = process.stop_process(pid, config.stop_timeout_s)
        srv.pidfile.unlink(missing_ok=True)
        messages.append(f"{srv.name}: {'killed after timeout' if killed else 'stopped'} "
                        f"(pid {pid})")
    return messages


def require_ready(config: StackConfig) -> None:
    not_ready = [s.name for s in status(config) if not s.ready]
    if not_ready:
        raise StackError(f"not ready: {', '.join(not_ready)}", "run `make stack-up`")
