"""From a dashboard to the data of each placed panel: variables, layout, queries, frames.

Pure apart from the two callables that reach Cassandra, so that every step can be
tested on inline data. A panel's failure (unsupported type, query error, no rows) is
kept with the panel, drawn in its place and reported; it never hides the others.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from grafana.render import frames as fr
from grafana.render import layout, queries, variables
from grafana.render.errors import RenderError
from grafana.render.interpolate import TimeRange, Values, interpolate, parse_time, substitute

PANEL_TYPES = ("timeseries", "barchart", "stat", "table", "candlestick", "text")
# (column names, rows) of one statement.
Rows = tuple[Sequence[str], Sequence[Sequence[Any]]]
StatementRunner = Callable[[queries.Statement], Rows]


@dataclass(frozen=True)
class PanelData:
    placed: layout.PlacedPanel
    title: str
    frames: tuple[fr.Frame, ...] = ()
    error: str | None = None

    @property
    def kind(self) -> str:
        return str(self.placed.panel.get("type"))


@dataclass(frozen=True)
class DashboardData:
    uid: str
    title: str
    time_range: TimeRange
    zone: tzinfo
    variables: Mapping[str, Values]
    panels: tuple[PanelData, ...]

    @property
    def errors(self) -> list[str]:
        return [f"{self.title} / {p.title}: {p.error}" for p in self.panels if p.error]


def machine_zone() -> tzinfo:
    """This machine's time zone: the default viewer's browser."""
    return datetime.now().astimezone().tzinfo or timezone.utc


def named_zone(name: str, what: str) -> tzinfo:
    """An IANA time zone; `what` names the setting in the error."""
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):
        raise RenderError(f"unknown {what} {name!r}: use an IANA name such as "
                          "Asia/Tokyo") from None


def browser_zone(name: str | None) -> tzinfo:
    """A viewer's browser time zone by IANA name (None: this machine's)."""
    if not name:
        return machine_zone()
    return timezone.utc if name.upper() == "UTC" else named_zone(name, "time zone")


def zone_of(dashboard: dict[str, Any], browser: tzinfo) -> tzinfo:
    """The zone a dashboard shows its times in: its own, or the viewer's browser's for
    `browser` (or none)."""
    name = dashboard.get("timezone") or "browser"
    if name == "utc":
        return timezone.utc
    if name == "browser":
        return browser
    return named_zone(name, "dashboard time zone")


def time_range_of(dashboard: dict[str, Any], start: str | None, end: str | None,
                  now: datetime) -> TimeRange:
    saved = dashboard.get("time") or {}
    return TimeRange(parse_time(start or saved.get("from", "now-6h"), now),
                     parse_time(end or saved.get("to", "now"), now))


def panel_data(placed: layout.PlacedPanel, known: Mapping[str, Values],
               time_range: TimeRange, browser: tzinfo, run: StatementRunner) -> PanelData:
    """`browser` is the viewer's zone: Grafana formats custom `${__from:date:...}`
    patterns in the browser's time, whatever the dashboard's own zone."""
    panel = placed.panel
    scoped = {**known, **placed.scoped}
    title = interpolate(str(panel.get("title", "")), scoped, time_range, browser)
    try:
        kind = panel.get("type")
        if kind not in PANEL_TYPES:
            raise RenderError(f"unsupported panel type {kind!r}; supported: "
                              f"{', '.join(PANEL_TYPES)}")
        if kind == "text":
            return PanelData(placed, title)
        statements = queries.statements(panel, scoped, time_range, browser)
        if not statements:
            raise RenderError("the panel has no queries")
        result: list[fr.Frame] = []
        for statement in statements:
            result.extend(_frames(statement, run))
        shaped = fr.transform(result, panel.get("transformations", []))
        return PanelData(placed, title, tuple(shaped))
    except RenderError as err:
        return PanelData(placed, title, (), str(err))


def _frames(statement: queries.Statement, run: StatementRunner) -> list[fr.Frame]:
    try:
        columns, rows = run(statement)
    except RenderError:
        raise
    except Exception as err:  # the driver's errors carry Cassandra's message
        raise RenderError(f"query {statement.ref_id} failed: {type(err).__name__}: {err} "
                          f"[{statement.cql}]") from err
    if not rows:
        raise RenderError(f"query {statement.ref_id} returned no rows [{statement.cql}]")
    return fr.to_frames(columns, rows, statement.alias)


def dashboard_data(dashboard: dict[str, Any], overrides: Mapping[str, Sequence[str]],
                   time_range: TimeRange, run: StatementRunner,
                   run_variable: variables.QueryRunner,
                   browser: tzinfo | None = None) -> DashboardData:
    """Every panel of one dashboard with its frames or its error, as a viewer whose
    browser is in `browser` (default this machine's zone) sees it."""
    browser = browser or machine_zone()
    zone = zone_of(dashboard, browser)

    def interpolate_known(text: str, known: Mapping[str, Values]) -> str:
        return substitute(text, known, time_range, browser)

    resolved = variables.resolve((dashboard.get("templating") or {}).get("list", []),
                                 overrides, run_variable, interpolate_known)
    placed = layout.place(dashboard.get("panels", []), resolved)
    data = tuple(panel_data(p, resolved, time_range, browser, run) for p in placed)
    return DashboardData(str(dashboard.get("uid", "")), str(dashboard.get("title", "")),
                         time_range, zone, resolved, data)
