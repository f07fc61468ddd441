"""Command-line options shared by the Grafana commands (render, local)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

import contract
from contract import env as envvars


def add_cassandra_options(parser: argparse.ArgumentParser,
                          environ: Mapping[str, str]) -> None:
    """--cassandra-host, --cassandra-port, --keyspace, defaulting from the environment
    (unset or blank: the contract's defaults, where the local stack listens)."""
    add = parser.add_argument
    add("--cassandra-host", default=envvars.get(environ, "CASSANDRA_HOST", contract.CASSANDRA_HOST),
        help="env CASSANDRA_HOST")
    # A string default goes through type=int as well: a bad CASSANDRA_PORT is a usage
    # error naming the option, not a traceback.
    add("--cassandra-port", type=int,
        default=envvars.get(environ, "CASSANDRA_PORT", str(contract.CASSANDRA_PORT)),
        help="env CASSANDRA_PORT")
    add("--keyspace", default=envvars.get(environ, "CASSANDRA_KEYSPACE", contract.KEYSPACE),
        help="the datasource's keyspace (env CASSANDRA_KEYSPACE)")
