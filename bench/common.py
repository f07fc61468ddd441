"""Shared plumbing of the benchmarks: a fresh topic and keyspace on the running stack."""

from __future__ import annotations

import uuid

from stack import kafka, schema
from stack.config import StackConfig


def fresh_topic(stack: StackConfig, partitions: int = 3) -> str:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    kafka.ensure_topic(stack.kafka_bootstrap, name, partitions)
    return name


def fresh_keyspace(stack: StackConfig):
    """(session, keyspace) with the full cql/ schema applied."""
    from cassandra.cluster import Cluster

    session = Cluster([stack.host], port=stack.cassandra_port, protocol_version=5).connect()
    name = f"bench_{uuid.uuid4().hex[:8]}"
    schema.apply(session, name)
    return session, name


def drop(stack: StackConfig, topic: str, session=None, keyspace: str | None = None) -> None:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    admin.delete_topics([topic])
    admin.close()
    if session is not None and keyspace:
        drop_keyspace(session, keyspace)


def drop_keyspace(session, keyspace: str) -> None:
    """Drop the keyspace and close the session's cluster: a driver left open at exit
    prints a scheduler traceback."""
    session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=60)
    session.cluster.shutdown()


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]
