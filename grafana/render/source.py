"""The thin Cassandra side: run a statement, hand back column names and rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cassandra import ConsistencyLevel
from cassandra.cluster import Cluster, Session
from cassandra.query import SimpleStatement, tuple_factory

from contract.cassandra import make_cluster
from grafana.render.queries import Statement

QUERY_TIMEOUT_S = 30.0


class CassandraSource:
    """One session on the dashboards' keyspace, read at LOCAL_ONE like the datasource."""

    def __init__(self, session: Session) -> None:
        session.row_factory = tuple_factory  # column names like count(*) are no identifiers
        self._session = session

    @classmethod
    def connect(cls, host: str, port: int, keyspace: str, username: str | None = None,
                password: str | None = None) -> tuple[Cluster, CassandraSource]:
        cluster = make_cluster(host, port, username=username, password=password,
                               connect_timeout_s=10)
        return cluster, cls(cluster.connect(keyspace))

    def run(self, statement: Statement) -> tuple[Sequence[str], Sequence[Sequence[Any]]]:
        query = SimpleStatement(statement.cql, consistency_level=ConsistencyLevel.LOCAL_ONE)
        result = self._session.execute(query, statement.params or None,
                                       timeout=QUERY_TIMEOUT_S)
        rows = list(result)
        return list(result.column_names or []), rows

    def variable_options(self, cql: str) -> list[tuple[str, str]]:
        """A query variable's (value, text): first column, second column or the first."""
        _, rows = self.run(Statement("variable", cql))
        return [(str(row[0]), str(row[1] if len(row) > 1 else row[0])) for row in rows]
