"""Bring the local stack up, down, and report on it."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from stack import cassandra, jars, kafka, process, schema
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


def status(config: StackConfig) -> list[ServerStatus]:
    result = []
    for srv in servers(config):
        pid = srv.pid()
        result.append(ServerStatus(srv.name, pid, bool(pid) and srv.ready(), srv.ports,
                                   str(srv.log_dir)))
    return result


def up(config: StackConfig) -> list[str]:
    """Start what is not running, wait for readiness, apply schema and topics. Idempotent."""
    process.require_java(config.java)
    for name in ("kafka", "cassandra"):
        jars.resolve(config.jars_dir, name, config.maven)
    started = time.monotonic()
    messages, pids = [], {}
    for srv in servers(config):
        pid = srv.pid()
        if pid is not None:
            messages.append(f"{srv.name}: already running (pid {pid})")
        else:
            process.require_free_ports(config.host, srv.ports)
            srv.home.mkdir(parents=True, exist_ok=True)
            pid = srv.launch()
            messages.append(f"{srv.name}: started (pid {pid})")
        pids[srv.name] = (srv, pid)
    # Both JVMs boot in parallel; wait for each in turn.
    for srv, pid in pids.values():
        process.wait_until(srv.ready, what=srv.name, timeout_s=config.start_timeout_s,
                           pid=pid, log_file=srv.console_log)
    messages.append(f"ready after {time.monotonic() - started:.1f}s")
    messages.extend(provision(config))
    return messages


def provision(config: StackConfig) -> list[str]:
    """Apply cql/ and create the topics; both steps are idempotent."""
    from cassandra.cluster import Cluster

    cluster = Cluster([config.host], port=config.cassandra_port, protocol_version=5)
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
    messages = []
    # Reverse order: Cassandra first, so the broker outlives any client still flushing.
    for srv in reversed(servers(config)):
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
