"""Apply the idempotent CQL files in cql/ to a Cassandra cluster.

The one applier: `python -m stack schema` (the local stack) and the Kubernetes schema
Job (k8s/base/schema-job) both run apply(), which also adds the columns a newer
schema declares to tables an older one created.

The files hold `${keyspace}` and `${replication}` placeholders so the same schema
serves the local stack (SimpleStrategy, RF 1), the tests (their own keyspace) and
a cluster (NetworkTopologyStrategy).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from string import Template
from typing import Any

from contract import CQL_DIR
from contract.exits import UsageError

log = logging.getLogger(__name__)

LOCAL_REPLICATION = "{'class': 'SimpleStrategy', 'replication_factor': 1}"


class SchemaError(UsageError):
    """The keyspace holds a table this schema cannot bring up to date in place."""


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
_COLUMN = re.compile(r"^\s*(\w+)\s+([\w<>, ]+)$")
_KEY = re.compile(r"PRIMARY KEY\s*\((.*)\)", re.S)


def declared_columns(statement: str) -> tuple[str, str, set[str]] | None:
    """(keyspace, table, column names) of a CREATE TABLE statement, else None."""
    declared = declared_table(statement)
    return None if declared is None else (declared[0], declared[1], set(declared[2]))


def declared_table(statement: str) -> tuple[str, str, dict[str, str], set[str]] | None:
    """(keyspace, table, column -> type, key columns) of a CREATE TABLE, else None."""
    match = _TABLE.search(statement)
    if not match:
        return None
    body, _, key = match.group(3).partition("PRIMARY KEY")
    columns = {m.group(1): m.group(2).strip() for line in body.split(",\n")
               if (m := _COLUMN.match(line.strip()))}
    key_match = _KEY.search("PRIMARY KEY" + key)
    key_columns = set(re.findall(r"\w+", key_match.group(1))) if key_match else set()
    return match.group(1), match.group(2), columns, key_columns


def check_layout(session: Any, statements_: list[str]) -> list[str]:
    """Bring existing tables up to the columns their CQL files declare.

    CREATE TABLE IF NOT EXISTS leaves an older table as it is. Columns added outside
    the key are added with ALTER TABLE (returned as lines); a table whose key changed
    cannot be altered, and is named in a clear error instead of leaving the jobs to
    fail on every write.
    """
    stale, added = [], []
    for statement in statements_:
        declared = declared_table(statement)
        if declared is None:
            continue
        keyspace, table, columns, key = declared
        rows = session.execute(
            "SELECT column_name FROM system_schema.columns"
            " WHERE keyspace_name = %s AND table_name = %s", (keyspace, table), timeout=60)
        existing = {row.column_name for row in rows}
        missing = sorted(set(columns) - existing) if existing else []
        if not missing:
            continue
        if key & set(missing):
            stale.append(f"{keyspace}.{table} (missing {', '.join(missing)})")
            continue
        session.execute(f"ALTER TABLE {keyspace}.{table} ADD ("
                        + ", ".join(f"{name} {columns[name]}" for name in missing) + ")",
                        timeout=60)
        added.append(f"{keyspace}.{table}: added {', '.join(missing)}")
    if stale:
        raise SchemaError(
            "tables with an older layout: " + "; ".join(stale) + ". Their key changed, so"
            " they cannot be altered: drop them (DROP TABLE ...) and apply the schema again."
            " minute_trades and moving_means are derived from trades: rebuild them with"
            " python -m jobs.recompute.")
    return added


def apply(session: Any, keyspace: str, replication: str = LOCAL_REPLICATION,
          cql_dir: Path = CQL_DIR) -> int:
    """Run every statement with a cassandra-driver session; returns how many ran."""
    rendered = render_cql(cql_dir, keyspace, replication)
    for stmt in rendered:
        session.execute(stmt, timeout=60)
    for line in check_layout(session, rendered):
        log.info("%s", line)
    return len(rendered)
