"""Query results as the Cassandra plugin hands them to Grafana: data frames.

The plugin groups the rows of a raw query by the string value of their first column:
one frame per value, every selected column a field, in the order of the SELECT. The
legend alias (`{{column}}`) is filled from the frame's first row and becomes the
display name of its numeric fields. Null values are refused (the plugin scans rows
into Go maps and cannot plot them). Panel transformations then work on the frames.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from grafana.render.errors import RenderError

NUMBER, TIME, STRING = "number", "time", "string"
TRANSFORMATIONS = ("merge", "sortBy")
CALCS = ("lastNotNull", "last", "firstNotNull", "first", "min", "max", "mean", "sum", "count")
_ALIAS = re.compile(r"\{\{\s*(.+?)\s*\}\}")


@dataclass(frozen=True)
class Field:
    name: str
    kind: str
    values: tuple[Any, ...]
    display_name: str | None = None


@dataclass(frozen=True)
class Frame:
    name: str
    fields: tuple[Field, ...]

    @property
    def length(self) -> int:
        return len(self.fields[0].values) if self.fields else 0

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    def of_kind(self, kind: str) -> list[Field]:
        return [f for f in self.fields if f.kind == kind]


def normalise(value: Any) -> Any:
    """A driver value as the plugin sees it: numbers, UTC datetimes or text."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if type(value).__name__ == "Date":  # cassandra.util.Date
        value = value.date()
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def kind_of(value: Any) -> str:
    if isinstance(value, (int, float)):
        return NUMBER
    return TIME if isinstance(value, datetime) else STRING


def format_alias(alias: str, row: dict[str, Any]) -> str:
    """`{{column}}` from the row; unknown columns become empty, as in the plugin."""
    def replace_one(match: re.Match[str]) -> str:
        value = row.get(match.group(1))
        if value is None:
            return ""
        return f"{value:f}" if isinstance(value, float) else str(value)
    return _ALIAS.sub(replace_one, alias)


def to_frames(columns: Sequence[str], rows: Sequence[Sequence[Any]],
              alias: str = "") -> list[Frame]:
    """The plugin's frames of one query: grouped by the first column, in first-seen order."""
    groups: dict[str, list[list[Any]]] = {}
    for row in rows:
        for column, value in zip(columns, row, strict=True):
            if value is None:
                raise RenderError(f"column {column!r} holds a null; the plugin cannot "
                                  "return nulls (select non-null columns or cast them)")
        values = [normalise(v) for v in row]
        groups.setdefault(str(values[0]), []).append(values)
    frames = []
    for frame_name, members in groups.items():
        first = dict(zip(columns, members[0], strict=True))
        name = format_alias(alias, first) if alias else ""
        fields = []
        for i, column in enumerate(columns):
            values = tuple(m[i] for m in members)
            kinds = {kind_of(v) for v in values}
            kind = kinds.pop() if len(kinds) == 1 else STRING
            display = name if name and kind == NUMBER else None
            fields.append(Field(column, kind, values, display))
        frames.append(Frame(frame_name, tuple(fields)))
    return frames


# --- transformations ---------------------------------------------------------------------


def merge(frames: Sequence[Frame]) -> list[Frame]:
    """Grafana's `merge`: one frame holding every row; fields matched by name."""
    if not frames:
        return []
    names: list[str] = []
    for frame in frames:
        names.extend(f.name for f in frame.fields if f.name not in names)
    fields = []
    for name in names:
        present = [frame.field(name) for frame in frames]
        if any(f is None for f in present):
            raise RenderError(f"merge: field {name!r} is missing from some frames")
        values = tuple(v for f in present for v in f.values)  # type: ignore[union-attr]
        fields.append(replace(present[0], values=values))  # type: ignore[type-var]
    return [Frame(frames[0].name, tuple(fields))]


def sort_by(frames: Sequence[Frame], field_name: str, desc: bool) -> list[Frame]:
    result = []
    for frame in frames:
        key_field = frame.field(field_name)
        if key_field is None:
            raise RenderError(f"sortBy: no field {field_name!r} in frame {frame.name!r}")
        order = sorted(range(frame.length), key=lambda i: key_field.values[i], reverse=desc)
        fields = tuple(replace(f, values=tuple(f.values[i] for i in order))
                       for f in frame.fields)
        result.append(Frame(frame.name, fields))
    return result


def transform(frames: list[Frame], transformations: Sequence[dict[str, Any]]) -> list[Frame]:
    for step in transformations:
        if step.get("disabled"):
            continue
        kind = step.get("id")
        if kind == "merge":
            frames = merge(frames)
        elif kind == "sortBy":
            for sort in step.get("options", {}).get("sort", []):
                frames = sort_by(frames, sort["field"], bool(sort.get("desc")))
        else:
            raise RenderError(f"unsupported transformation {kind!r}; supported: "
                              f"{', '.join(TRANSFORMATIONS)}")
    return frames


# --- names and reductions ----------------------------------------------------------------


def display_name(field: Field, frame: Frame, overrides: dict[str, str]) -> str:
    """Grafana's precedence: override displayName, then the alias, then frame and field."""
    if field.name in overrides:
        return overrides[field.name]
    if field.display_name:
        return field.display_name
    numeric = frame.of_kind(NUMBER)
    if frame.name and len(numeric) > 1:
        return f"{frame.name} {field.name}"
    return frame.name or field.name


def reduce(values: Sequence[float], calc: str) -> float:
    """A stat panel's reducer over one numeric field (no nulls ever reach here)."""
    finite = [v for v in values if not (isinstance(v, float) and math.isnan(v))]
    if not finite:
        raise RenderError("no values to reduce")
    reducers = {
        "lastNotNull": lambda: finite[-1], "last": lambda: values[-1],
        "firstNotNull": lambda: finite[0], "first": lambda: values[0],
        "min": lambda: min(finite), "max": lambda: max(finite),
        "mean": lambda: sum(finite) / len(finite), "sum": lambda: sum(finite),
        "count": lambda: float(len(values)),
    }
    if calc not in reducers:
        raise RenderError(f"unsupported reducer {calc!r}; supported: {', '.join(CALCS)}")
    return float(reducers[calc]())
