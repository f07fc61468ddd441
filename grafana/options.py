"""Command-line options shared by the Grafana commands (render, local)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from stack.config import StackConfig


def add_cassandra_options(parser: argparse.ArgumentParser,
                          env: Callable[[str, str], str]) -> None:
    """--cassandra-host, --cassandra-port, --keyspace, defaulting from the environment
    (`env(name, default)`) and then from the local stack's settings."""
    add = parser.add_argument
    add("--cassandra-host", default=env("CASSANDRA_HOST", StackConfig.host),
        help="env CASSANDRA_HOST")
    add("--cassandra-port", type=int,
        default=int(env("CASSANDRA_PORT", str(StackConfig.cassandra_port))),
        help="env CASSANDRA_PORT")
    add("--keyspace", default=env("CASSANDRA_KEYSPACE", StackConfig.keyspace),
        help="the datasource's keyspace (env CASSANDRA_KEYSPACE)")
