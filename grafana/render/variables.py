"""Dashboard template variables resolved to values, as Grafana does on page load.

Supported types: `custom` (comma-separated options, `text : value` pairs), `constant`,
`textbox` and `query` (a CQL query through the plugin: first column the value, second
the text; optional `regex` and `sort`). The selection is, in order: the caller's
override (any value, as in a Grafana URL), the dashboard's saved `current` value
when it is still an option, the first option (`All` first when `includeAll`). `All`
means every option's value, or the variable's `allValue` when it has one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from grafana.render.errors import RenderError
from grafana.render.interpolate import Values

ALL = "$__all"
TYPES = ("custom", "constant", "textbox", "query")
# A query variable runs its (already interpolated) text and returns (value, text) pairs.
QueryRunner = Callable[[str], Sequence[tuple[str, str]]]
Interpolator = Callable[[str, Mapping[str, Values]], str]


@dataclass(frozen=True)
class Option:
    value: str
    text: str


def custom_options(query: str) -> list[Option]:
    """Grafana's split: commas (a backslash escapes one), `text : value` pairs."""
    options = []
    for part in re.findall(r"(?:\\,|[^,])+", query):
        part = part.replace("\\,", ",").strip()
        text, sep, value = part.partition(" : ")
        options.append(Option(value.strip(), text.strip()) if sep else Option(part, part))
    return options


def query_options(variable: dict[str, Any], rows: Sequence[tuple[str, str]]) -> list[Option]:
    options = [Option(value, text) for value, text in rows]
    if variable.get("regex"):
        pattern = re.compile(variable["regex"].strip("/"))
        kept = []
        for option in options:
            match = pattern.search(option.text)
            if match:
                value = match.group(1) if match.groups() else option.value
                kept.append(Option(value, value if match.groups() else option.text))
        options = kept
    return sort_options(_unique(options), int(variable.get("sort") or 0))


def _unique(options: list[Option]) -> list[Option]:
    seen: dict[str, Option] = {}
    for option in options:
        seen.setdefault(option.value, option)
    return list(seen.values())


def sort_options(options: list[Option], sort: int) -> list[Option]:
    """Grafana's `sort`: 0 none, 1/2 alphabetical, 3/4 numerical, 5/6 case-insensitive."""
    def number(option: Option) -> float:
        found = re.search(r"-?\d+(?:\.\d+)?", option.text)
        return float(found.group(0)) if found else float("-inf")

    keys: dict[int, Callable[[Option], Any]] = {
        1: lambda o: o.text, 2: lambda o: o.text, 3: number, 4: number,
        5: lambda o: o.text.lower(), 6: lambda o: o.text.lower(),
    }
    if sort == 0:
        return options
    if sort not in keys:
        raise RenderError(f"unsupported variable sort {sort}; supported: 0-6")
    return sorted(options, key=keys[sort], reverse=sort in (2, 4, 6))


def options_of(variable: dict[str, Any], known: Mapping[str, Values],
               run_query: QueryRunner, interpolate: Interpolator) -> list[Option]:
    kind, query = variable.get("type"), variable.get("query", "")
    if kind == "custom":
        return custom_options(str(query))
    if kind in ("constant", "textbox"):
        return [Option(str(query), str(query))]
    if kind == "query":
        text = query.get("query", "") if isinstance(query, dict) else str(query)
        if not text:
            raise RenderError(f"query variable {variable['name']!r} has no query")
        return query_options(variable, run_query(interpolate(text, known)))
    raise RenderError(f"variable {variable.get('name')!r}: unsupported type {kind!r}; "
                      f"supported: {', '.join(TYPES)}")


def _saved(variable: dict[str, Any]) -> list[str]:
    value = (variable.get("current") or {}).get("value")
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def select(variable: dict[str, Any], options: list[Option], wanted: Sequence[str]) -> Values:
    """The values of one variable; `wanted` is the caller's override (may be empty)."""
    name = variable["name"]
    values = [o.value for o in options]
    if not values and not wanted:
        raise RenderError(f"variable {name!r} has no options")
    include_all = bool(variable.get("includeAll"))
    free = variable.get("type") == "textbox"

    def valid(choice: Sequence[str]) -> bool:
        if list(choice) == [ALL] or list(choice) == ["All"]:
            return include_all
        return bool(choice) and (free or all(c in values for c in choice))

    if wanted:
        # Like a `var-name=value` URL parameter, an override may be a value the saved
        # options do not list (another topic, a new symbol); only All must be offered.
        if list(wanted) in ([ALL], ["All"]) and not include_all:
            raise RenderError(f"variable {name!r} has no All option")
        choice = list(wanted)
    else:
        saved = _saved(variable)
        choice = saved if valid(saved) else [ALL] if include_all else values[:1]
    if choice in ([ALL], ["All"]):
        all_value = variable.get("allValue")
        return (str(all_value),) if all_value else tuple(values)
    if len(choice) > 1 and not variable.get("multi"):
        raise RenderError(f"variable {name!r} takes one value, not {choice}")
    return tuple(choice)


def resolve(templating: Sequence[dict[str, Any]], overrides: Mapping[str, Sequence[str]],
            run_query: QueryRunner, interpolate: Interpolator) -> dict[str, Values]:
    """Every variable in dashboard order; later ones may use earlier ones in queries.
    Overrides of names this dashboard does not have are ignored (they may be another's)."""
    resolved: dict[str, Values] = {}
    for variable in templating:
        options = options_of(variable, resolved, run_query, interpolate)
        resolved[variable["name"]] = select(variable, options,
                                            overrides.get(variable["name"], ()))
    return resolved
