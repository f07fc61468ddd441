"""The one way a program of the pipeline opens a Cassandra cluster connection.

Every client speaks protocol v5 to the given contact points; credentials, when there
are any, go to the driver's auth provider and nowhere else (not into repr, logs or
argv). cassandra-driver is imported when a cluster is made, not with this module.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from contract import CASSANDRA_PORT, CQL_PROTOCOL_VERSION


def contact_points(hosts: str | Iterable[str]) -> list[str]:
    """'a, b,,c' or ['a', 'b'] -> ['a', 'b', 'c']: blanks and empty entries dropped."""
    parts = hosts.split(",") if isinstance(hosts, str) else hosts
    return [host.strip() for host in parts if host.strip()]


def make_cluster(hosts: str | Iterable[str], port: int = CASSANDRA_PORT, *,
                 username: str | None = None, password: str | None = None,
                 connect_timeout_s: float | None = None,
                 reconnect_every_s: float | None = None, **options: Any) -> Any:
    """A cassandra.cluster.Cluster, not yet connected; the caller shuts it down.

    connect_timeout_s bounds both the connection and the control connection;
    reconnect_every_s replaces the driver's exponential backoff by a constant delay
    (a client that must be back soon after a node restarts).
    """
    from cassandra.cluster import Cluster

    if username:
        from cassandra.auth import PlainTextAuthProvider

        options["auth_provider"] = PlainTextAuthProvider(username, password or "")
    if connect_timeout_s is not None:
        options["connect_timeout"] = connect_timeout_s
        options["control_connection_timeout"] = connect_timeout_s
    if reconnect_every_s is not None:
        from cassandra.policies import ConstantReconnectionPolicy

        options["reconnection_policy"] = ConstantReconnectionPolicy(reconnect_every_s, None)
    return Cluster(contact_points(hosts), port=port,
                   protocol_version=CQL_PROTOCOL_VERSION, **options)
