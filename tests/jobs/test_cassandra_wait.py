"""A stream job started while Cassandra is down waits for it instead of crash-looping."""

from __future__ import annotations

import logging
import time

import pytest
from cassandra.cluster import NoHostAvailable
from metrics_testing import free_port

from jobs.settings import CassandraTarget
from jobs.stream_processor import open_store_waiting
from jobs.stream_store import MissingKeyspaceError


def test_an_unreachable_cassandra_is_retried_until_the_wait_is_over(caplog) -> None:
    target = CassandraTarget(host="127.0.0.1", port=free_port(), keyspace="market")
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="jobs.stream_processor"), \
            pytest.raises(NoHostAvailable):
        open_store_waiting(target, wait_s=4)
    waited = time.monotonic() - started
    delays = [float(r.message.rsplit("retrying in ", 1)[1].split()[0]) for r in caplog.records
              if "no Cassandra node at 127.0.0.1 answers" in r.message]
    # Backoff doubling from 1 s, never past the wait: 1 s, then 2 s if time is left.
    assert delays and delays == [2.0 ** n for n in range(len(delays))]
    assert waited >= sum(delays)
    assert sum(delays) <= 4


def test_a_missing_keyspace_fails_without_retrying(stack, caplog) -> None:
    target = CassandraTarget(host=stack.host, port=stack.cassandra_port,
                             keyspace="no_such_keyspace")
    with caplog.at_level(logging.WARNING, logger="jobs.stream_processor"), \
            pytest.raises(MissingKeyspaceError):
        open_store_waiting(target, wait_s=60)
    assert not [r for r in caplog.records if "retrying" in r.message]
