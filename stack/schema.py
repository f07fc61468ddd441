"""Apply the idempotent CQL files in cql/ to a Cassandra cluster.

The files hold `${keyspace}` and `${replication}` placeholders so the same schema
serves the local stack (SimpleStrategy, RF 1), the tests (their own keyspace) and
a cluster (NetworkTopologyStrategy).
"""

from __future__ import annotations

import re
from pathlib import Path
from string import Template
from typing import Any

from stack.config import PROJECT_ROOT

CQL_DIR = PROJECT_ROOT / "cql"
LOCAL_REPLICATION = "{'class': 'SimpleStrategy', 'replication_factor': 1}"


def strip_comments(text: str) -> str:
    return re.sub(r"(--|//)[^\n]*", "", text)


def statements(text: str) -> list[str]:
    """Split a comment-free CQL script into statements."""
    return [stmt.strip() for stmt in text.split(";") if stmt.strip()]


def render_cql(cql_dir: Path, keyspace: str, replication: str) -> list[str]:
    values = {"keyspace": keyspace, "replication": replication}
    result: list[str] = []
    for path in sorted(cql_dir.glob("*.cql")):
        # Comments go first: they may mention Grafana macros such as $__timeFrom.
        script = Template(strip_comments(path.read_text())).substitute(values)
        result.extend(statements(script))
    return result


def apply(session: Any, keyspace: str, replication: str = LOCAL_REPLICATION,
          cql_dir: Path = CQL_DIR) -> int:
    """Run every statement with a cassandra-driver session; returns how many ran."""
    rendered = render_cql(cql_dir, keyspace, replication)
    for stmt in rendered:
        session.execute(stmt, timeout=60)
    return len(rendered)
