"""A panel's targets as the statements the Cassandra plugin would run.

Raw mode (`rawQuery: true`): the CQL after variables and macros, which must start with
`SELECT ` (the plugin refuses anything else). Query-builder mode: the plugin's own
statement `SELECT <id>, <value>, <time> FROM <keyspace>.<table> WHERE <id> IN ? AND
<time> >= ? AND <time> <= ?` (+ `PER PARTITION LIMIT 1` for `instant`, + `ALLOW
FILTERING` for `filtering`), bound to the ids of `valueId` and the time range.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from grafana.render.errors import RenderError
from grafana.render.interpolate import TimeRange, Values, substitute

PLUGIN_TYPE = "hadesarchitect-cassandra-datasource"


@dataclass(frozen=True)
class Statement:
    ref_id: str
    cql: str
    params: tuple[Any, ...] = ()
    alias: str = ""


def datasource_type(panel: dict[str, Any], target: dict[str, Any]) -> str | None:
    source = target.get("datasource") or panel.get("datasource")
    return source.get("type") if isinstance(source, dict) else None


def statement(panel: dict[str, Any], target: dict[str, Any], variables: Mapping[str, Values],
              time_range: TimeRange, zone: tzinfo) -> Statement:
    ref_id = str(target.get("refId", "?"))
    if datasource_type(panel, target) != PLUGIN_TYPE:
        raise RenderError(f"query {ref_id}: datasource {datasource_type(panel, target)!r} is "
                          f"not supported; only {PLUGIN_TYPE}")
    if target.get("queryType", "query") != "query":
        raise RenderError(f"query {ref_id}: queryType {target.get('queryType')!r} is not "
                          "supported; only 'query'")

    def sub(text: str) -> str:
        return substitute(text, variables, time_range, zone)

    alias = str(target.get("alias") or "")
    if target.get("rawQuery"):
        cql = sub(str(target.get("target") or "")).strip()
        if not cql.upper().startswith("SELECT "):
            raise RenderError(f"query {ref_id}: the plugin only runs statements starting "
                              f"with 'SELECT ', got {cql[:40]!r}")
        return Statement(ref_id, cql, (), alias)
    return _builder(ref_id, target, sub, time_range, alias)


def _builder(ref_id: str, target: dict[str, Any], sub: Any, time_range: TimeRange,
             alias: str) -> Statement:
    keys = ("keyspace", "table", "columnId", "columnValue", "columnTime", "valueId")
    missing = [k for k in keys if not target.get(k)]
    if missing:
        raise RenderError(f"query {ref_id}: query builder needs {', '.join(missing)}")
    keyspace, table, column_id, value, time = (sub(str(target[k])) for k in keys[:5])
    ids = tuple(i.strip() for i in sub(str(target["valueId"])).split(","))
    cql = (f"SELECT {column_id}, {value}, {time} FROM {keyspace}.{table} "
           f"WHERE {column_id} IN %s AND {time} >= %s AND {time} <= %s")
    if target.get("instant"):
        cql += " PER PARTITION LIMIT 1"
    if target.get("filtering"):
        cql += " ALLOW FILTERING"
    return Statement(ref_id, cql, (ids, time_range.start, time_range.end), alias)


def statements(panel: dict[str, Any], variables: Mapping[str, Values], time_range: TimeRange,
               zone: tzinfo) -> list[Statement]:
    """Every visible target of a panel (hidden ones are not run by Grafana either)."""
    return [statement(panel, t, variables, time_range, zone)
            for t in panel.get("targets", []) if not t.get("hide")]
