"""matplotlib drawing of a dashboard's panel data, Grafana's dark theme, one PNG.

Only the Agg canvas is used (no pyplot, no display). A panel whose data cannot be
drawn (no time field for a time series, a missing candle field...) shows its error
in place, like Grafana's red corner, and the error is returned to the caller.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before anything else of matplotlib: no display, ever

import matplotlib.dates as mdates
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter

from grafana.render import frames as fr
from grafana.render import layout
from grafana.render.errors import RenderError
from grafana.render.panels import DashboardData, PanelData

BACKGROUND, PANEL, BORDER = "#111217", "#181b1f", "#2c3235"
TEXT, MUTED, ERROR = "#ccccdc", "#8e8e9e", "#f2495c"
PALETTE = ("#73bf69", "#f2cc0c", "#5794f2", "#ff9830", "#f2495c", "#b877d9", "#8ab8ff",
           "#fade2a", "#ffb357", "#ca95e5")
NAMED = {"green": "#73bf69", "red": "#f2495c", "yellow": "#fade2a", "blue": "#5794f2",
         "orange": "#ff9830", "purple": "#b877d9", "text": TEXT}
DESIGN_DPI = 100  # layout in Grafana pixels; `scale` shrinks the saved picture


def color(name: str | None, fallback: str = TEXT) -> str:
    if not name:
        return fallback
    return NAMED.get(name, name if name.startswith("#") else fallback)


def format_value(value: Any, unit: str | None = None, decimals: int | None = None) -> str:
    """A value as Grafana shows it: `percent` is a number of percent, `percentunit` a
    fraction shown as percent (0.0123 is 1.23%)."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if not isinstance(value, (int, float)):
        return str(value)
    if unit in ("percent", "percentunit"):
        shown = value * 100 if unit == "percentunit" else value
        digits = 2 if decimals is None else decimals
        return "NaN" if math.isnan(shown) else f"{shown:.{digits}f}%"
    if decimals is None:
        decimals = 0 if float(value).is_integer() else 2 if abs(value) >= 1 else 4
    suffix = ""
    if unit == "short" and abs(value) >= 1000:
        for factor, letter in ((1e9, " Bil"), (1e6, " Mil"), (1e3, " K")):
            if abs(value) >= factor:
                value, suffix, decimals = value / factor, letter, max(decimals, 1)
                break
    text = f"{value:.{decimals}f}{suffix}"
    return f"{text} {unit}" if unit in ("ms", "s", "%") else text


def _defaults(panel: dict[str, Any]) -> dict[str, Any]:
    return (panel.get("fieldConfig") or {}).get("defaults") or {}


def _by_name_rules(panel: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(field name, {property id: value}) of each byName override of the panel."""
    for rule in (panel.get("fieldConfig") or {}).get("overrides", []):
        if (rule.get("matcher") or {}).get("id") == "byName":
            yield (str(rule["matcher"].get("options")),
                   {p.get("id"): p.get("value") for p in rule.get("properties", [])})


def by_name(panel: dict[str, Any], prop_id: str) -> dict[str, str]:
    """field name -> the value of one property of the panel's byName overrides."""
    return {field: str(props[prop_id]) for field, props in _by_name_rules(panel)
            if prop_id in props}


def field_units(panel: dict[str, Any]) -> dict[str, str]:
    """unit overrides matched by field name."""
    return by_name(panel, "unit")


def _value_axis(ax: Axes, unit: str | None) -> None:
    """Tick labels in the panel's unit where it changes the number shown."""
    if unit in ("percent", "percentunit"):
        ax.yaxis.set_major_formatter(FuncFormatter(
            lambda v, _: format_value(v, unit, 3 if unit == "percentunit" else 1)))


def overrides(panel: dict[str, Any]) -> dict[str, str]:
    """displayName overrides matched by field name (other overrides are cosmetic)."""
    return by_name(panel, "displayName")


# --- panels ------------------------------------------------------------------------------


def _series(data: PanelData) -> list[tuple[str, list[datetime], list[float]]]:
    """(name, times, values) for every numeric field, sorted by time."""
    names = overrides(data.placed.panel)
    result = []
    for frame in data.frames:
        times = frame.of_kind(fr.TIME)
        if not times:
            raise RenderError(f"frame {frame.name!r} has no time column")
        for field in frame.of_kind(fr.NUMBER):
            pairs = sorted(zip(times[0].values, field.values, strict=True))
            result.append((fr.display_name(field, frame, names), [p[0] for p in pairs],
                           [p[1] for p in pairs]))
    if not result:
        raise RenderError("no numeric column to plot")
    return result


def _bar_width(times: Sequence[datetime]) -> float:
    steps = [b - a for a, b in itertools.pairwise(times) if b > a]
    step = min(steps) if steps else timedelta(minutes=1)
    return step / timedelta(days=1) * 0.8


def _time_axis(ax: Axes, data: PanelData, start: datetime, end: datetime, zone: tzinfo) -> None:
    ax.set_xlim(start, end)
    locator = mdates.AutoDateLocator(tz=zone, maxticks=7)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=zone))
    ax.xaxis.get_offset_text().set(fontsize=7, color=MUTED)


def draw_timeseries(ax: Axes, data: PanelData, dash: DashboardData) -> None:
    style = (_defaults(data.placed.panel).get("custom") or {}).get("drawStyle", "line")
    for i, (name, times, values) in enumerate(_series(data)):
        c = PALETTE[i % len(PALETTE)]
        if style == "bars":
            ax.bar(times, values, width=_bar_width(times), color=c, alpha=0.8, label=name)
        elif style == "points":
            ax.scatter(times, values, s=6, color=c, label=name)
        else:
            ax.plot(times, values, color=c, linewidth=1.2, label=name)
    _time_axis(ax, data, dash.time_range.start, dash.time_range.end, dash.zone)
    _value_axis(ax, _defaults(data.placed.panel).get("unit"))
    _legend(ax, data)


def draw_candlestick(ax: Axes, data: PanelData, dash: DashboardData) -> None:
    options = data.placed.panel.get("options") or {}
    mapping = {k: (options.get("fields") or {}).get(k) or k
               for k in ("open", "high", "low", "close", "volume")}
    colors = options.get("colors") or {}
    up, down = color(colors.get("up"), PALETTE[0]), color(colors.get("down"), ERROR)
    names = overrides(data.placed.panel)
    for frame in data.frames:
        fields = {k: frame.field(v) for k, v in mapping.items()}
        times = frame.of_kind(fr.TIME)
        missing = [mapping[k] for k in ("open", "high", "low", "close") if fields[k] is None]
        if missing or not times:
            raise RenderError(f"candlestick frame {frame.name!r} lacks "
                              f"{missing or ['a time column']}")
        order = sorted(range(frame.length), key=lambda i: times[0].values[i])
        t = [times[0].values[i] for i in order]

        def col(key: str, order: list[int] = order, fields: dict = fields) -> list[float]:
            return [fields[key].values[i] for i in order]

        width = _bar_width(t)
        for x, o, h, lo, c in zip(mdates.date2num(t), col("open"), col("high"), col("low"),
                                  col("close"), strict=True):
            shade = up if c >= o else down
            ax.vlines(x, lo, h, color=shade, linewidth=0.8)
            ax.add_patch(Rectangle((x - width / 2, min(o, c)), width, abs(c - o) or 1e-9,
                                   color=shade))
        if fields["volume"] is not None and "volume" in options.get("mode", "candles+volume"):
            twin = ax.twinx()
            twin.set_facecolor("none")
            for spine in twin.spines.values():
                spine.set_visible(False)
            volume = col("volume")
            twin.bar(t, volume, width=width, color=MUTED, alpha=0.35)
            twin.set_ylim(0, (max(volume) or 1) * 4)
            twin.set_yticks([])
        if options.get("includeAllFields"):
            used = {f.name for f in fields.values() if f is not None}
            for i, extra in enumerate(f for f in frame.of_kind(fr.NUMBER) if f.name not in used):
                ax.plot(t, [extra.values[j] for j in order], color=PALETTE[(i + 2) % 10],
                        linewidth=1, label=fr.display_name(extra, frame, names))
    ax.autoscale_view()
    _time_axis(ax, data, dash.time_range.start, dash.time_range.end, dash.zone)
    _legend(ax, data)


def draw_barchart(ax: Axes, data: PanelData, dash: DashboardData) -> None:
    names = overrides(data.placed.panel)
    x_name = (data.placed.panel.get("options") or {}).get("xField")
    for frame in data.frames:
        labels = frame.field(x_name) if x_name else next(
            (f for f in frame.fields if f.kind != fr.NUMBER), None)
        if labels is None:
            raise RenderError(f"bar chart frame {frame.name!r} has no label column")
        numeric = frame.of_kind(fr.NUMBER)
        width = 0.8 / max(len(numeric), 1)
        for i, field in enumerate(numeric):
            xs = [n + i * width for n in range(frame.length)]
            ax.bar(xs, field.values, width=width, color=PALETTE[i % 10],
                   label=fr.display_name(field, frame, names))
        ax.set_xticks([n + 0.4 - width / 2 for n in range(frame.length)],
                      [format_value(v) for v in labels.values], rotation=20, ha="right")
    _legend(ax, data)


def stat_items(data: PanelData) -> list[tuple[str, float]]:
    """(name, reduced value) per numeric field of every frame."""
    options = data.placed.panel.get("options") or {}
    calcs = (options.get("reduceOptions") or {}).get("calcs") or ["lastNotNull"]
    names = overrides(data.placed.panel)
    items = [(fr.display_name(field, frame, names), fr.reduce(field.values, calcs[0]))
             for frame in data.frames for field in frame.of_kind(fr.NUMBER)]
    if not items:
        raise RenderError("no numeric column for the stat")
    return items


def threshold_color(value: float, defaults: dict[str, Any]) -> str:
    steps = (defaults.get("thresholds") or {}).get("steps") or []
    chosen = PALETTE[0]
    for step in steps:
        if step.get("value") is None or value >= step["value"]:
            chosen = color(step.get("color"), PALETTE[0])
    return chosen


def draw_stat(ax: Axes, data: PanelData, dash: DashboardData) -> None:
    panel = data.placed.panel
    defaults, options = _defaults(panel), panel.get("options") or {}
    items = stat_items(data)
    show_name = options.get("textMode", "auto") == "value_and_name" or (
        options.get("textMode", "auto") == "auto" and len(items) > 1)
    ax.set_axis_off()
    columns = len(items) if data.placed.grid.w >= 3 * len(items) else max(1, len(items) // 2)
    rows = -(-len(items) // columns)
    for i, (name, value) in enumerate(items):
        col, row = i % columns, i // columns
        x, y, w, h = col / columns, 1 - (row + 1) / rows, 1 / columns, 1 / rows
        shade = threshold_color(value, defaults)
        if (defaults.get("color") or {}).get("mode") == "fixed":
            shade = color((defaults["color"]).get("fixedColor"))
        elif (defaults.get("color") or {}).get("mode") != "thresholds":
            shade = PALETTE[i % len(PALETTE)]
        text_color = TEXT
        if options.get("colorMode") == "background":
            ax.add_patch(Rectangle((x + 0.01, y + 0.02), w - 0.02, h - 0.04, color=shade,
                                   transform=ax.transAxes))
            text_color = "#ffffff"
        elif options.get("colorMode", "value") == "value":
            text_color = shade
        label = format_value(value, defaults.get("unit"), defaults.get("decimals"))
        ax.text(x + w / 2, y + h * (0.42 if show_name else 0.5), label, color=text_color,
                fontsize=22 if len(items) < 4 else 15, ha="center", va="center",
                weight="bold", transform=ax.transAxes)
        if show_name:
            ax.text(x + w / 2, y + h * 0.82, name, color=text_color, fontsize=9,
                    ha="center", va="center", transform=ax.transAxes)


def cell_rules(panel: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per field name, the thresholds of a byName override that colours its cells
    (`custom.cellOptions` of type color-text or color-background)."""
    # Both draw as coloured text here.
    return {field: {"thresholds": props.get("thresholds") or {}}
            for field, props in _by_name_rules(panel)
            if (props.get("custom.cellOptions") or {}).get("type") in ("color-text",
                                                                       "color-background")}


def table_rows(data: PanelData, zone: tzinfo) -> tuple[list[str], list[list[Any]]]:
    """The first frame as a table: display names, and rows ordered by the panel's
    `options.sortBy` (its first entry; Grafana's initial sort, clickable in the UI)."""
    frame = data.frames[0]
    names = overrides(data.placed.panel)
    headers = [names.get(f.name, f.name) for f in frame.fields]
    rows = [[f.values[i].astimezone(zone) if f.kind == fr.TIME else f.values[i]
             for f in frame.fields] for i in range(frame.length)]
    sort_by = ((data.placed.panel.get("options") or {}).get("sortBy") or [None])[0]
    if sort_by:
        name = sort_by.get("displayName")
        if name not in headers:
            raise RenderError(f"sortBy names no column: {name!r}; columns: {headers}")
        column = headers.index(name)
        rows.sort(key=lambda row: row[column], reverse=bool(sort_by.get("desc")))
    return headers, rows


def draw_table(ax: Axes, data: PanelData, dash: DashboardData, height_px: float) -> None:
    ax.set_axis_off()
    frame = data.frames[0]
    headers, rows = table_rows(data, dash.zone)
    rules = cell_rules(data.placed.panel)
    fields = [f.name for f in frame.fields]
    units = field_units(data.placed.panel)
    cells = [[format_value(value, units.get(name)) for name, value in zip(fields, row,
                                                                         strict=True)]
             for row in rows]
    fit = max(1, int(height_px // 19) - 2)
    shown = cells[:fit]
    widths = [max(len(h), *(len(r[c]) for r in shown)) + 2 for c, h in enumerate(headers)]
    total = sum(widths)
    line = 1 / (fit + 1.5)
    x = 0.0
    for c, header in enumerate(headers):
        ax.text(x, 1 - line / 2, header, color=PALETTE[2], fontsize=8, weight="bold",
                va="center", transform=ax.transAxes, family="monospace")
        rule = rules.get(fields[c])
        for r, row in enumerate(shown):
            value = rows[r][c]
            shade = (threshold_color(value, rule) if rule and isinstance(value, (int, float))
                     else TEXT)
            ax.text(x, 1 - line * (r + 1.5), row[c], color=shade, fontsize=8, va="center",
                    transform=ax.transAxes, family="monospace")
        x += widths[c] / total
    more = len(cells) - len(shown) + sum(f.length for f in data.frames[1:])
    if more > 0:
        ax.text(1, 0, f"... {more} more rows", color=MUTED, fontsize=7, ha="right",
                va="bottom", transform=ax.transAxes)


def draw_text(ax: Axes, data: PanelData, dash: DashboardData) -> None:
    ax.set_axis_off()
    content = str((data.placed.panel.get("options") or {}).get("content", ""))
    ax.text(0, 1, content.replace("#", "").strip(), color=TEXT, fontsize=9, va="top",
            wrap=True, transform=ax.transAxes)


def _legend(ax: Axes, data: PanelData) -> None:
    legend = (data.placed.panel.get("options") or {}).get("legend") or {}
    handles, labels = ax.get_legend_handles_labels()
    if legend.get("showLegend", True) and labels:
        ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.14),
                  ncol=min(len(labels), 5), fontsize=7, frameon=False, labelcolor=TEXT,
                  handlelength=1.2, columnspacing=1.0)


# --- the dashboard -----------------------------------------------------------------------


def _style(ax: Axes) -> None:
    ax.set_facecolor(PANEL)
    ax.tick_params(colors=MUTED, labelsize=7, length=2)
    ax.grid(color=BORDER, linewidth=0.5)
    for spine in ax.spines.values():
        spine.set_visible(False)


def draw_panel(fig: Figure, data: PanelData, dash: DashboardData,
               size: tuple[int, int]) -> str | None:
    """One panel in its cell; returns its error, if any."""
    left, bottom, width, height = layout.rectangle(data.placed.grid, size)
    fig.add_artist(Rectangle((left, bottom), width, height, transform=fig.transFigure,
                             facecolor=PANEL, edgecolor=BORDER, linewidth=0.8, zorder=-1))
    title_h = 26 / size[1]
    fig.text(left + 6 / size[0], bottom + height - title_h / 2, data.title, color=TEXT,
             fontsize=9, weight="bold", va="center")
    legend = data.kind in ("timeseries", "candlestick", "barchart")
    # Axes with tick labels need room on the left; stats, tables and text do not.
    pad_x, pad_bottom = (40 if legend else 8) / size[0], (46 if legend else 8) / size[1]
    body = (left + pad_x, bottom + pad_bottom, width - pad_x - 10 / size[0],
            height - title_h - pad_bottom - 4 / size[1])
    ax = fig.add_axes(body)
    _style(ax)
    error = data.error
    if error is None:
        try:
            if data.kind == "table":
                draw_table(ax, data, dash, body[3] * size[1])
            else:
                DRAW[data.kind](ax, data, dash)
        except RenderError as err:
            error = str(err)
    if error:
        ax.clear()
        ax.set_axis_off()
        ax.text(0.5, 0.5, "\n".join(_wrap(error, 60 * data.placed.grid.w // 12)), color=ERROR,
                fontsize=8, ha="center", va="center", transform=ax.transAxes)
    return error


def _wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + len(word) + 1 > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return [*lines, line][:8]


DRAW = {"timeseries": draw_timeseries, "candlestick": draw_candlestick, "stat": draw_stat,
        "barchart": draw_barchart, "text": draw_text}


def draw_dashboard(dash: DashboardData, path: Path, width_px: int = 1600,
                   scale: float = 1.0) -> list[str]:
    """Write the dashboard's PNG; returns every panel error (with the panel's title)."""
    # Titles, legends and errors are text: `$symbol` is no TeX formula.
    with matplotlib.rc_context({"text.parse_math": False}):
        return _draw(dash, path, width_px, scale)


def _draw(dash: DashboardData, path: Path, width_px: int, scale: float) -> list[str]:
    size = layout.figure_size([p.placed for p in dash.panels], width_px)
    fig = Figure(figsize=(size[0] / DESIGN_DPI, size[1] / DESIGN_DPI), facecolor=BACKGROUND)
    FigureCanvasAgg(fig)
    errors = []
    for data in dash.panels:
        error = draw_panel(fig, data, dash, size)
        if error:
            errors.append(f"{dash.title} / {data.title}: {error}")
    start, end = dash.time_range.start.astimezone(dash.zone), dash.time_range.end.astimezone(
        dash.zone)
    fig.text(1 - 8 / size[0], 1 - 6 / size[1], f"{dash.title}   {start:%Y-%m-%d %H:%M} to "
             f"{end:%Y-%m-%d %H:%M} {start:%Z}", color=MUTED, fontsize=7, ha="right", va="top")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DESIGN_DPI * scale, facecolor=BACKGROUND)
    return errors
