"""Query text substitution, in the two steps a Grafana query goes through.

1. Grafana's frontend interpolates dashboard variables: `$name`, `${name}`,
   `${name:format}`, `[[name]]`, `[[name:format]]`, and the built-ins `__from`/`__to`.
   Names it does not know are left as they are.
2. The Cassandra plugin (raw CQL mode) replaces its macros server-side: `$__timeFrom`,
   `$__timeTo` (epoch milliseconds), `$__unixEpochFrom`, `$__unixEpochTo` (seconds).

Whatever still looks like a variable or macro afterwards is an error: Grafana would
send it to Cassandra as it is and the panel would fail or show nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo

from grafana.render.errors import RenderError

# A resolved variable: its values (one for single-value variables).
Values = tuple[str, ...]

# Formats of user variables, as Grafana applies them to a single value or a list.
VARIABLE_FORMATS = ("raw", "csv", "singlequote", "doublequote", "pipe")
PLUGIN_MACROS = ("$__timeFrom", "$__timeTo", "$__unixEpochFrom", "$__unixEpochTo")
# moment.js date tokens understood in `${__from:date:FORMAT}`, longest first.
DATE_TOKENS = {"YYYY": "%Y", "MM": "%m", "DD": "%d", "HH": "%H", "mm": "%M", "ss": "%S"}

_VARIABLE = re.compile(
    r"\$(?P<plain>\w+)"
    r"|\[\[(?P<bracket>\w+)(?::(?P<bracket_fmt>[^\]]+))?\]\]"
    r"|\$\{(?P<braced>\w+)(?::(?P<braced_fmt>[^}]+))?\}"
)
_LEFTOVER = re.compile(r"\$\w+|\$\{[^}]*\}|\[\[[^\]]*\]\]")


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("time range bounds must be timezone-aware")
        if self.start > self.end:
            raise RenderError(f"time range starts after it ends: {self.start} > {self.end}")


# --- time ranges -------------------------------------------------------------------------

_UNITS = {"s": timedelta(seconds=1), "m": timedelta(minutes=1), "h": timedelta(hours=1),
          "d": timedelta(days=1), "w": timedelta(weeks=1)}
_RELATIVE = re.compile(r"now(?:(?P<sign>[-+])(?P<amount>\d+)(?P<unit>[smhdw]))?"
                       r"(?:/(?P<round>[smhd]))?")


def parse_time(text: str, now: datetime) -> datetime:
    """A Grafana time bound: `now`, `now-6h`, `now-1d/d`, epoch ms, or ISO 8601 (UTC
    when it has no offset). Months and years (`M`, `y`) are not supported."""
    text = text.strip()
    match = _RELATIVE.fullmatch(text)
    if match:
        moment = now
        if match["amount"]:
            step = int(match["amount"]) * _UNITS[match["unit"]]
            moment = moment - step if match["sign"] == "-" else moment + step
        if match["round"]:
            unit = _UNITS[match["round"]]
            epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
            moment = epoch + ((moment - epoch) // unit) * unit
        return moment
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, tz=timezone.utc)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise RenderError(f"unsupported time {text!r}: use now, now-<n><s|m|h|d|w>[/<unit>], "
                          "epoch milliseconds or ISO 8601") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


# --- step 1: Grafana's variables ---------------------------------------------------------


def format_values(values: Values, fmt: str | None, name: str) -> str:
    """One variable's values in a format (None: Grafana's default, `{a,b}` for lists)."""
    if fmt is None:
        return values[0] if len(values) == 1 else "{" + ",".join(values) + "}"
    if fmt == "raw":
        return ",".join(values)
    if fmt == "csv":
        return ",".join(values)
    if fmt == "pipe":
        return "|".join(values)
    if fmt == "singlequote":
        # Grafana escapes a quote with a backslash, whatever the query language.
        return ",".join("'" + v.replace("'", "\\'") + "'" for v in values)
    if fmt == "doublequote":
        return ",".join('"' + v.replace('"', '\\"') + '"' for v in values)
    raise RenderError(f"unsupported format {fmt!r} of variable {name!r}; supported: "
                      f"{', '.join(VARIABLE_FORMATS)}")


def format_date(moment: datetime, fmt: str | None, zone: tzinfo) -> str:
    """`${__from}`/`${__to}`: epoch ms, or `date`, `date:iso`, `date:seconds` (all
    zone-free), or `date:<moment.js tokens YYYY MM DD HH mm ss>` in `zone`, the
    viewer's browser time zone: a custom format depends on who looks."""
    if fmt is None:
        return str(epoch_ms(moment))
    kind, _, pattern = fmt.partition(":")
    if kind != "date":
        raise RenderError(f"unsupported format {fmt!r} of __from/__to; use date[:...]")
    local = moment.astimezone(zone)
    if pattern in ("", "iso"):
        return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds") \
            .replace("+00:00", "Z")
    if pattern == "seconds":
        return str(int(moment.timestamp()))
    return local.strftime(_strftime_pattern(pattern))


def _strftime_pattern(pattern: str) -> str:
    out, i = [], 0
    while i < len(pattern):
        token = next((t for t in DATE_TOKENS if pattern.startswith(t, i)), None)
        if token:
            out.append(DATE_TOKENS[token])
            i += len(token)
        elif pattern[i].isalpha():
            raise RenderError(f"unsupported date token in {pattern!r} at {pattern[i:]!r}; "
                              f"supported: {' '.join(DATE_TOKENS)}")
        else:
            out.append(pattern[i].replace("%", "%%"))
            i += 1
    return "".join(out)


def interpolate(text: str, variables: Mapping[str, Values], time_range: TimeRange,
                zone: tzinfo) -> str:
    """Grafana's frontend step; unknown names stay for the plugin or the final check."""

    def replace(match: re.Match[str]) -> str:
        name = match["plain"] or match["bracket"] or match["braced"]
        fmt = match["bracket_fmt"] or match["braced_fmt"]
        if name in ("__from", "__to"):
            bound = time_range.start if name == "__from" else time_range.end
            return format_date(bound, fmt, zone)
        if name in variables:
            return format_values(variables[name], fmt, name)
        return match.group(0)

    return _VARIABLE.sub(replace, text)


# --- step 2: the plugin's macros ---------------------------------------------------------


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def apply_macros(text: str, time_range: TimeRange) -> str:
    """The plugin's server-side step (raw CQL mode)."""
    replacements = {
        "$__timeFrom": str(epoch_ms(time_range.start)),
        "$__timeTo": str(epoch_ms(time_range.end)),
        "$__unixEpochFrom": str(int(time_range.start.timestamp())),
        "$__unixEpochTo": str(int(time_range.end.timestamp())),
    }
    # Whole names only: `$__timeFromX` is an unknown macro, not `$__timeFrom` + "X".
    pattern = re.compile("(?:" + "|".join(re.escape(m) for m in PLUGIN_MACROS) + r")(?!\w)")
    return pattern.sub(lambda m: replacements[m.group(0)], text)


def substitute(text: str, variables: Mapping[str, Values], time_range: TimeRange,
               zone: tzinfo) -> str:
    """Both steps, then refuse anything left that looks like a variable or macro."""
    result = apply_macros(interpolate(text, variables, time_range, zone), time_range)
    leftover = _LEFTOVER.search(result)
    if leftover:
        raise RenderError(
            f"unknown variable or macro {leftover.group(0)!r} in {text!r}; supported: "
            f"dashboard variables, ${{__from}}, ${{__to}}, {', '.join(PLUGIN_MACROS)}")
    return result
