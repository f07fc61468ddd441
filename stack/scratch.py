"""Scratch data on the running stack: a fresh topic and keyspace, and their removal.

Used by the benchmarks and by the class-archive recording, which each run the real
programs on data of their own.
"""

from __future__ import annotations

import uuid

from contract import schema
from contract.cassandra import make_cluster
from stack import kafka
from stack.config import StackConfig


def fresh_topic(stack: StackConfig, partitions: int = 3, prefix: str = "bench") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    kafka.ensure_topic(stack.kafka_bootstrap, name, partitions)
    return name


def fresh_keyspace(stack: StackConfig, prefix: str = "bench"):
    """(session, keyspace) with the full cql/ schema applied."""
    cluster = make_cluster(stack.host, stack.cassandra_port)
    try:
        session = cluster.connect()
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        schema.apply(session, name)
    except BaseException:
        cluster.shutdown()  # nobody else holds it to close it
        raise
    return session, name


def drop(stack: StackConfig, topic: str, session=None, keyspace: str | None = None) -> None:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    try:
        admin.delete_topics([topic])
    finally:
        admin.close()
    if session is not None and keyspace:
        drop_keyspace(session, keyspace)


def drop_keyspace(session, keyspace: str) -> None:
    """Drop the keyspace and close the session's cluster: a driver left open at exit
    prints a scheduler traceback."""
    # Generous: dropping flushes and snapshots the keyspace, slow on a loaded machine.
    session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
    session.cluster.shutdown()
