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
from stack.errors import StackError

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


_TABLE = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+)\.(\w+)\s*\((.*)\)", re.S)
_COLUMN = re.compile(r"^\s*(\w+)\s+[\w<>, ]+$")


def declared_columns(statement: str) -> tuple[str, str, set[str]] | None:
    """(keyspace, table, column names) of a CREATE TABLE statement, else None."""
    match = _TABLE.search(statement)
    if not match:
        return None
    body = match.group(3).split("PRIMARY KEY")[0]
    columns = {m.group(1) for line in body.split(",\n") if (m := _COLUMN.match(line.strip()))}
    return match.group(1), match.group(2), columns


def check_layout(session: Any, statements_: list[str]) -> None:
    """Fail clearly when an existing table lacks columns its CQL file declares.

    CREATE TABLE IF NOT EXISTS leaves an older table as it is, and a key cannot be
    altered: the jobs would then fail on every write with an unknown column.
    """
    stale = []
    for statement in statements_:
        declared = declared_columns(statement)
        if declared is None:
            continue
        keyspace, table, columns = declared
        rows = session.execute(
            "SELECT column_name FROM system_schema.columns"
            " WHERE keyspace_name = %s AND table_name = %s", (keyspace, table), timeout=60)
        existing = {row.column_name for row in rows}
        if existing and columns - existing:
            stale.append(f"{keyspace}.{table} (missing {', '.join(sorted(columns - existing))})")
    if stale:
        raise StackError(
            "tables with an older layout: " + "; ".join(stale) + ". Their key changed, so"
            " they cannot be altered: drop them (DROP TABLE ...) and apply the schema again."
            " minute_trades and moving_means are derived from trades: rebuild them with"
            " python -m jobs.recompute.")


def apply(session: Any, keyspace: str, replication: str = LOCAL_REPLICATION,
          cql_dir: Path = CQL_DIR) -> int:
    """Run every statement with a cassandra-driver session; returns how many ran."""
    rendered = render_cql(cql_dir, keyspace, replication)
    for stmt in rendered:
        session.execute(stmt, timeout=60)
    check_layout(session, rendered)
    return len(rendered)
