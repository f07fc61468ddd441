"""Lifecycle of a second, private stack: up is idempotent, down leaves nothing, data survives.

It runs beside the shared stack on its own ports and state folder (sharing only the
jars), so the other tests keep their servers while this one starts and stops its own.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from pathlib import Path

import pytest

from contract.cassandra import make_cluster
from stack import kafka, lifecycle, process
from stack.config import StackConfig
from stack.errors import StackError

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _project_java_pids(state_dir: Path) -> list[int]:
    """Java processes whose command line mentions this stack's state folder."""
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "java" in cmdline and str(state_dir) in cmdline and process.is_alive(int(proc.name)):
            pids.append(int(proc.name))
    return pids


def _cql(config: StackConfig, statement: str) -> list:
    cluster = make_cluster(config.host, config.cassandra_port)
    try:
        return list(cluster.connect().execute(statement, timeout=30))
    finally:
        cluster.shutdown()


@pytest.fixture
def private_config(stack_config: StackConfig, work_dir: Path) -> StackConfig:
    state = work_dir / f"private-stack-{os.getpid()}"
    return dataclasses.replace(
        stack_config, state_dir=state, kafka_port=_free_port(),
        kafka_controller_port=_free_port(), cassandra_port=_free_port(),
        cassandra_storage_port=_free_port(), keyspace="lifecycle",
    )


def test_up_is_idempotent_down_is_complete_and_data_survives(private_config) -> None:
    config = private_config
    try:
        first = lifecycle.up(config)
        assert any(line.startswith("kafka: started") for line in first)
        assert all(s.ready for s in lifecycle.status(config))
        pids = {s.name: s.pid for s in lifecycle.status(config)}

        second = lifecycle.up(config)
        assert f"kafka: already running (pid {pids['kafka']})" in second
        assert f"cassandra: already running (pid {pids['cassandra']})" in second
        assert kafka.ensure_topic(config.kafka_bootstrap, "survivor", 1) is True
        _cql(config, "INSERT INTO lifecycle.minute_trades (symbol, window_start, trade_count)"
                     " VALUES ('SURVIVOR', 0, 7)")

        lifecycle.down(config)
        assert _project_java_pids(config.stack_dir) == []
        assert not any(s.pid for s in lifecycle.status(config))

        lifecycle.up(config)
        # Created before the restart, so it must not be created again.
        assert kafka.ensure_topic(config.kafka_bootstrap, "survivor", 1) is False
        rows = _cql(config, "SELECT trade_count FROM lifecycle.minute_trades"
                            " WHERE symbol = 'SURVIVOR'")
        assert [row.trade_count for row in rows] == [7]
    finally:
        lifecycle.down(config)
    assert _project_java_pids(config.stack_dir) == []


def test_up_refuses_a_taken_port_clearly(private_config) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        config = dataclasses.replace(private_config, kafka_port=port)
        with pytest.raises(StackError, match=f"port 127.0.0.1:{port} \\(kafka\\) is already taken"):
            lifecycle.up(config)
    assert _project_java_pids(config.stack_dir) == []
