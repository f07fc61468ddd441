"""The renderer's pure parts on inline data: substitution, variables, layout, frames.

Expected values are worked out by hand in the comments, never by the code under test.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grafana.render import frames as fr
from grafana.render import layout, queries, variables
from grafana.render.errors import RenderError
from grafana.render.interpolate import (
    TimeRange,
    format_values,
    interpolate,
    parse_time,
    substitute,
)

UTC = timezone.utc
# 2024-03-01T00:00:00Z is 1709251200 s after the epoch; the range ends 90 minutes later.
RANGE = TimeRange(datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 3, 1, 1, 30, tzinfo=UTC))
VARS = {"symbol": ("AAPL", "MSFT"), "topic": ("Market",)}


def sub(text: str, known: dict | None = None) -> str:
    return substitute(text, VARS if known is None else known, RANGE, UTC)


# --- substitution ------------------------------------------------------------------------


def test_the_dashboards_syntax_becomes_plain_cql() -> None:
    cql = ("SELECT symbol, price, trade_ts FROM trades WHERE symbol IN (${symbol:singlequote}) "
           "AND trade_date IN ('${__from:date:YYYY-MM-DD}', '${__to:date:YYYY-MM-DD}') "
           "AND trade_ts >= $__timeFrom AND trade_ts <= $__timeTo")
    assert sub(cql) == (
        "SELECT symbol, price, trade_ts FROM trades WHERE symbol IN ('AAPL','MSFT') "
        "AND trade_date IN ('2024-03-01', '2024-03-01') "
        "AND trade_ts >= 1709251200000 AND trade_ts <= 1709256600000")


def test_epoch_seconds_macros_and_variable_syntaxes() -> None:
    assert sub("$__unixEpochFrom $__unixEpochTo") == "1709251200 1709256600"
    # Grafana's default format of a multi-value variable is a glob; one value stays bare.
    assert sub("$symbol [[symbol]] ${topic} [[topic:singlequote]]") == \
        "{AAPL,MSFT} {AAPL,MSFT} Market 'Market'"
    assert sub("${symbol:csv}|${symbol:pipe}|${symbol:doublequote}") == \
        'AAPL,MSFT|AAPL|MSFT|"AAPL","MSFT"'
    assert sub("${__from}") == "1709251200000"
    assert sub("${__to:date:YYYY-MM-DD HH:mm:ss}") == "2024-03-01 01:30:00"
    assert sub("${__to:date:seconds} ${__from:date:iso}") == \
        "1709256600 2024-03-01T00:00:00.000Z"


def test_custom_date_formats_follow_the_browsers_time_zone() -> None:
    # 00:00 UTC is 19:00 the day before in New York (EST, UTC-5): the zone handed in is
    # the viewer's browser's, whatever the dashboard's own.
    from zoneinfo import ZoneInfo
    assert interpolate("${__from:date:YYYY-MM-DD HH}", {}, RANGE,
                       ZoneInfo("America/New_York")) == "2024-02-29 19"


def test_singlequote_escapes_quotes_like_grafana() -> None:
    assert format_values(("it's",), "singlequote", "v") == "'it\\'s'"


@pytest.mark.parametrize("text", [
    "SELECT x FROM t WHERE ts > $__interval",        # Grafana macro the plugin lacks
    "SELECT x FROM t WHERE ts > $__timeFromX",       # no partial macro names
    "SELECT x FROM t WHERE s IN (${unknown:singlequote})",
    "SELECT x FROM t WHERE s = [[nothing]]",
])
def test_unknown_variables_and_macros_fail(text: str) -> None:
    with pytest.raises(RenderError, match="unknown variable or macro"):
        sub(text)


@pytest.mark.parametrize("text, message", [
    ("${symbol:regex}", "unsupported format 'regex'"),
    ("${__to:date:YYYY-Q}", "unsupported date token"),
    ("${__to:text}", "unsupported format 'text' of __from/__to"),
])
def test_unsupported_formats_fail(text: str, message: str) -> None:
    with pytest.raises(RenderError, match=message):
        sub(text)


def test_time_bounds() -> None:
    now = datetime(2024, 3, 1, 13, 47, 12, tzinfo=UTC)
    assert parse_time("now", now) == now
    assert parse_time("now-6h", now) == datetime(2024, 3, 1, 7, 47, 12, tzinfo=UTC)
    assert parse_time("now-1d/d", now) == datetime(2024, 2, 29, tzinfo=UTC)
    assert parse_time("now-30m/h", now) == datetime(2024, 3, 1, 13, tzinfo=UTC)
    assert parse_time("1709251200000", now) == datetime(2024, 3, 1, tzinfo=UTC)
    assert parse_time("2024-03-01T02:00:00Z", now) == datetime(2024, 3, 1, 2, tzinfo=UTC)
    assert parse_time("2024-03-01T02:00:00", now) == datetime(2024, 3, 1, 2, tzinfo=UTC)
    with pytest.raises(RenderError, match="unsupported time"):
        parse_time("now-1M", now)


_value = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\\"),
                 min_size=1).filter(lambda v: v == v.strip() and " : " not in v)


@given(st.lists(_value, min_size=1, max_size=6))
def test_custom_options_round_trip_escaped_commas(values: list[str]) -> None:
    query = ",".join(v.replace(",", "\\,") for v in values)
    assert [o.value for o in variables.custom_options(query)] == values


@given(st.lists(_value, min_size=1, max_size=6))
def test_singlequote_lists_parse_back_to_the_values(values: list[str]) -> None:
    text = format_values(tuple(values), "singlequote", "v")
    parsed, current, quoted, escaped = [], "", False, False
    for char in text:  # a tiny reader of Grafana's 'a','b\'c' output
        if escaped:
            current, escaped = current + char, False
        elif char == "\\":
            escaped = True
        elif char == "'":
            if quoted:
                parsed.append(current)
                current = ""
            quoted = not quoted
        elif quoted:
            current += char
    assert parsed == values


# --- variables ---------------------------------------------------------------------------

CUSTOM = {"name": "symbol", "type": "custom", "query": "AAPL, MSFT,Bitcoin : BINANCE:BTCUSDT",
          "multi": True, "includeAll": True, "current": {"value": ["$__all"]}}
TOPIC = {"name": "topic", "type": "constant", "query": "Market"}


def never(_: str) -> list[tuple[str, str]]:
    raise AssertionError("no query variable here")


def resolve(templating: list[dict], overrides: dict | None = None, runner=never) -> dict:
    return variables.resolve(templating, overrides or {}, runner,
                             lambda text, known: sub(text, dict(known)))


def test_custom_all_constant_and_overrides() -> None:
    assert resolve([CUSTOM, TOPIC]) == {
        "symbol": ("AAPL", "MSFT", "BINANCE:BTCUSDT"), "topic": ("Market",)}
    assert resolve([CUSTOM], {"symbol": ["MSFT", "AAPL"]}) == {"symbol": ("MSFT", "AAPL")}
    assert resolve([{**CUSTOM, "allValue": ".*"}]) == {"symbol": (".*",)}
    # An override need not be a saved option (as in a Grafana URL); All must be offered.
    assert resolve([CUSTOM], {"symbol": ["IBM"]}) == {"symbol": ("IBM",)}
    with pytest.raises(RenderError, match="has no All option"):
        resolve([{**CUSTOM, "includeAll": False}], {"symbol": ["All"]})


def test_an_override_needs_no_options() -> None:
    """A query variable on an empty table has no options; a URL value still selects."""
    empty = {"name": "symbol", "type": "query", "query": {"query": "SELECT symbol FROM symbols"}}
    assert resolve([empty], {"symbol": ["IBM"]}, runner=lambda _: []) == {"symbol": ("IBM",)}
    with pytest.raises(RenderError, match="has no options"):
        resolve([empty], runner=lambda _: [])


def test_a_stale_saved_value_falls_back_to_the_first_option() -> None:
    single = {**CUSTOM, "includeAll": False, "multi": False, "current": {"value": "IBM"}}
    assert resolve([single]) == {"symbol": ("AAPL",)}
    with pytest.raises(RenderError, match="takes one value"):
        resolve([single], {"symbol": ["AAPL", "MSFT"]})


def test_query_variables_use_earlier_variables_regex_and_sort() -> None:
    seen = []

    def runner(cql: str) -> list[tuple[str, str]]:
        seen.append(cql)
        return [("s-MSFT", "s-MSFT"), ("s-AAPL", "s-AAPL"), ("x-IBM", "x-IBM")]

    query = {"name": "listed", "type": "query", "regex": "/s-(.*)/", "sort": 1,
             "query": {"query": "SELECT symbol FROM symbols WHERE topic = '${topic}'"}}
    assert resolve([TOPIC, query], runner=runner) == {"topic": ("Market",),
                                                      "listed": ("AAPL",)}
    assert seen == ["SELECT symbol FROM symbols WHERE topic = 'Market'"]


def test_unsupported_variable_types_fail() -> None:
    with pytest.raises(RenderError, match="unsupported type 'interval'"):
        resolve([{"name": "step", "type": "interval", "query": "1m,5m"}])


# --- layout ------------------------------------------------------------------------------


def panel(title: str, x: int, y: int, w: int, h: int, **extra) -> dict:
    return {"title": title, "type": "stat", "gridPos": {"x": x, "y": y, "w": w, "h": h}, **extra}


def cells(placed: list[layout.PlacedPanel]) -> list[tuple]:
    return [(p.panel["title"], p.grid.x, p.grid.y, p.grid.w, p.grid.h, dict(p.scoped))
            for p in placed]


def test_repeat_fills_rows_of_max_per_row_and_pushes_panels_below() -> None:
    panels = [panel("top", 0, 0, 24, 4),
              panel("candles $s", 0, 4, 12, 10, repeat="s", maxPerRow=2),
              panel("table", 0, 14, 24, 9)]
    # Three values, two per row: widths 12, rows at y=4 and y=14; the table moves to 24.
    assert cells(layout.place(panels, {"s": ("A", "B", "C")})) == [
        ("top", 0, 0, 24, 4, {}),
        ("candles $s", 0, 4, 12, 10, {"s": ("A",)}),
        ("candles $s", 12, 4, 12, 10, {"s": ("B",)}),
        ("candles $s", 0, 14, 12, 10, {"s": ("C",)}),
        ("table", 0, 24, 24, 9, {}),
    ]


def test_vertical_repeat_and_collapsed_rows() -> None:
    panels = [{"type": "row", "title": "row", "gridPos": {"x": 0, "y": 0, "w": 24, "h": 1},
               "panels": [panel("v", 0, 1, 8, 3, repeat="s", repeatDirection="v")]}]
    assert cells(layout.place(panels, {"s": ("A", "B")})) == [
        ("v", 0, 1, 8, 3, {"s": ("A",)}), ("v", 0, 4, 8, 3, {"s": ("B",)})]


def test_grid_cells_become_figure_fractions() -> None:
    placed = layout.place([panel("a", 0, 0, 12, 2)], {})
    size = layout.figure_size(placed, 1600)
    # Height: 22 header + 2 rows * (30 + 8) + 8 = 106 px. A column is (1600 - 8) / 24 =
    # 66.33 px; the cell: left 8, top 22 + 8 = 30, width 12 * 66.33 - 8 = 788, height
    # 2 * 38 - 8 = 68, so bottom = 106 - 30 - 68 = 8 px.
    assert size == (1600, 106)
    left, bottom, width, height = layout.rectangle(placed[0].grid, size)
    assert (left, bottom, width, height) == pytest.approx(
        (8 / 1600, 8 / 106, 788 / 1600, 68 / 106))


def test_bad_grid_positions_fail() -> None:
    with pytest.raises(RenderError, match="off the grid"):
        layout.place([panel("wide", 20, 0, 8, 2)], {})


# --- frames ------------------------------------------------------------------------------

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def test_rows_group_by_the_first_column_with_the_alias_on_numbers() -> None:
    rows = [("AAPL", 1.5, T0.replace(tzinfo=None)), ("MSFT", 2.0, T0),
            ("AAPL", 2.5, T0 + timedelta(minutes=1))]
    frames = fr.to_frames(["symbol", "price", "ts"], rows, "{{symbol}} price")
    assert frames == [
        fr.Frame("AAPL", (
            fr.Field("symbol", fr.STRING, ("AAPL", "AAPL")),
            fr.Field("price", fr.NUMBER, (1.5, 2.5), "AAPL price"),
            fr.Field("ts", fr.TIME, (T0, T0 + timedelta(minutes=1))))),
        fr.Frame("MSFT", (
            fr.Field("symbol", fr.STRING, ("MSFT",)),
            fr.Field("price", fr.NUMBER, (2.0,), "MSFT price"),
            fr.Field("ts", fr.TIME, (T0,)))),
    ]


def test_nulls_are_refused() -> None:
    with pytest.raises(RenderError, match="column 'price' holds a null"):
        fr.to_frames(["symbol", "price"], [("AAPL", None)])


def test_merge_then_sort_by() -> None:
    frames = fr.to_frames(["s", "n"], [("a", 2), ("b", 3), ("a", 1)])
    assert fr.transform(frames, [{"id": "merge"}, {"id": "sortBy", "options": {
        "sort": [{"field": "n", "desc": True}]}}]) == [fr.Frame("a", (
            fr.Field("s", fr.STRING, ("b", "a", "a")), fr.Field("n", fr.NUMBER, (3, 2, 1))))]
    with pytest.raises(RenderError, match="unsupported transformation 'organize'"):
        fr.transform(frames, [{"id": "organize"}])


def test_display_names_and_reducers() -> None:
    (frame,) = fr.to_frames(["s", "a", "b"], [("AAPL", 1.0, 4.0), ("AAPL", 3.0, 2.0)])
    a, b = frame.fields[1], frame.fields[2]
    assert fr.display_name(a, frame, {"a": "mean"}) == "mean"
    assert fr.display_name(b, frame, {}) == "AAPL b"  # two numeric fields: frame + field
    assert [fr.reduce(b.values, c) for c in ("lastNotNull", "first", "min", "max", "mean",
                                             "sum", "count")] == [2, 4, 2, 4, 3, 6, 2]
    with pytest.raises(RenderError, match="unsupported reducer"):
        fr.reduce(b.values, "p99")


# --- statements --------------------------------------------------------------------------

SOURCE = {"type": queries.PLUGIN_TYPE, "uid": "cassandra-market"}


def test_query_builder_statement_is_bound_to_ids_and_range() -> None:
    target = {"refId": "A", "datasource": SOURCE, "queryType": "query", "keyspace": "market",
              "table": "minute_trades", "columnId": "symbol", "columnValue": "vwap",
              "columnTime": "window_start", "valueId": "${symbol:csv}", "instant": True}
    (stmt,) = queries.statements({"targets": [target]}, VARS, RANGE, UTC)
    assert stmt == queries.Statement(
        "A", "SELECT symbol, vwap, window_start FROM market.minute_trades WHERE symbol IN %s "
             "AND window_start >= %s AND window_start <= %s PER PARTITION LIMIT 1",
        (("AAPL", "MSFT"), RANGE.start, RANGE.end))


@pytest.mark.parametrize("target, message", [
    ({"rawQuery": True, "target": "UPDATE t SET x = 1"}, "starting with 'SELECT '"),
    ({"rawQuery": True, "target": "SELECT 1", "datasource": {"type": "prometheus"}},
     "datasource 'prometheus' is not supported"),
])
def test_statements_the_plugin_refuses(target: dict, message: str) -> None:
    with pytest.raises(RenderError, match=message):
        queries.statements({"datasource": SOURCE, "targets": [{"refId": "A", **target}]},
                           VARS, RANGE, UTC)


# --- tables ------------------------------------------------------------------------------


def test_a_table_sorts_by_its_sort_by_option_and_colours_by_thresholds() -> None:
    from grafana.render.draw import cell_rules, table_rows, threshold_color
    from grafana.render.panels import PanelData

    frame = fr.Frame("AAPL", (fr.Field("symbol", fr.STRING, ("AAPL", "MSFT", "IBM")),
                              fr.Field("pct", fr.NUMBER, (1.5, -2.0, 3.0))))
    steps = {"steps": [{"color": "red", "value": None}, {"color": "green", "value": 0}]}
    board = {"title": "t", "type": "table",
             "options": {"sortBy": [{"displayName": "Change %", "desc": True}]},
             "fieldConfig": {"overrides": [{"matcher": {"id": "byName", "options": "pct"},
                                            "properties": [
                                                {"id": "displayName", "value": "Change %"},
                                                {"id": "custom.cellOptions",
                                                 "value": {"type": "color-text"}},
                                                {"id": "thresholds", "value": steps}]}]}}
    data = PanelData(layout.PlacedPanel(board, layout.Grid(0, 0, 24, 6)), "t", (frame,))
    assert table_rows(data, UTC) == (["symbol", "Change %"],
                                     [["IBM", 3.0], ["AAPL", 1.5], ["MSFT", -2.0]])
    rule = cell_rules(board)["pct"]
    assert [threshold_color(v, rule) for v in (-2.0, 0.0, 3.0)] == \
        ["#f2495c", "#73bf69", "#73bf69"]
    bad = {**board, "options": {"sortBy": [{"displayName": "nope"}]}}
    with pytest.raises(RenderError, match="sortBy names no column"):
        table_rows(PanelData(layout.PlacedPanel(bad, layout.Grid(0, 0, 24, 6)), "t",
                             (frame,)), UTC)


def test_percent_units_are_shown_as_grafana_does() -> None:
    from grafana.render.draw import format_value

    # percent: the number is already percent; percentunit: a fraction.
    assert format_value(1.5, "percent") == "1.50%"
    assert format_value(0.0123, "percentunit") == "1.23%"
    assert format_value(float("nan"), "percentunit") == "NaN"
    assert format_value(1234.0, "short") == "1.2 K"
