"""The renderer against the real Cassandra: the provisioned dashboards on a fresh
keyspace holding a few known rows, every panel's frames compared with what plain
Python expects from those rows, the PNGs written, and failures that must be loud."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from grafana.render.__main__ import RenderConfig, load_dashboards, main
from grafana.render.panels import PanelData, browser_zone, dashboard_data, time_range_of
from grafana.render.source import CassandraSource
from jobs.candles import bucket

pytestmark = pytest.mark.integration

UTC = timezone.utc
# The range crosses UTC midnight at a year's end: every day, month and year bucket of
# the tables changes inside it.
BASE = datetime(2023, 12, 31, 23, 56, tzinfo=UTC)
SYMBOLS = ("AAPL", "MSFT")
FROM, TO = BASE.isoformat(), (BASE + timedelta(minutes=10)).isoformat()
DASHBOARDS = Path(__file__).resolve().parents[2] / "grafana" / "dashboards"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# Viewers east and west of UTC, whose calendar day differs from UTC's at BASE.
VIEWERS = ("Asia/Tokyo", "America/Los_Angeles")


# --- the rows --------------------------------------------------------------------------


def trades() -> list[dict[str, Any]]:
    rows = []
    for n, s in enumerate(SYMBOLS):
        for i in range(6):
            ts = BASE + timedelta(seconds=60 * i + 10)
            rows.append({"symbol": s, "trade_date": ts.date(), "trade_ts": ts,
                         "kafka_partition": 0, "kafka_offset": 10 * n + i,
                         "price": 100.0 * (n + 1) + i, "volume": 1.0 + i,
                         "ingest_ts": ts + timedelta(milliseconds=50), "kafka_topic": "Market"})
    return rows


# Candle starts per resolution: on both sides of the midnight (and of the day, month
# and year buckets), inside [FROM, TO] for the dashboards' default range.
CANDLE_STARTS = {
    "1s": [BASE + timedelta(seconds=60 * i + 10) for i in range(6)],
    "1m": [BASE + timedelta(minutes=i) for i in range(6)],
    "1h": [datetime(2023, 12, 31, 23, tzinfo=UTC), datetime(2024, 1, 1, 0, tzinfo=UTC)],
    "1d": [datetime(2023, 12, 31, tzinfo=UTC), datetime(2024, 1, 1, tzinfo=UTC)],
}
LENGTHS = {"1s": timedelta(seconds=1), "1m": timedelta(minutes=1), "1h": timedelta(hours=1),
           "1d": timedelta(days=1)}


def candles() -> list[dict[str, Any]]:
    rows = []
    for resolution, starts in CANDLE_STARTS.items():
        for n, s in enumerate(SYMBOLS):
            for i, start in enumerate(starts):
                base = 100.0 * (n + 1) + i
                rows.append({
                    "symbol": s, "resolution": resolution, "bucket": bucket(resolution, start),
                    "window_start": start, "window_end": start + LENGTHS[resolution],
                    "trade_count": i + 1, "open_price": base - 0.5, "high_price": base + 1,
                    "low_price": base - 1, "close_price": base + 0.5, "total_volume": 2.0 * i,
                    "avg_price": base, "vwap": base + 0.25,
                    "log_return_stddev": 0.001 * (i + 1), "parkinson_volatility": 0.002 * (i + 1)})
    return rows


def tickers() -> list[dict[str, Any]]:
    end = BASE + timedelta(minutes=6)
    return [{"symbol": s, "last_price": 105.0 + 100 * n, "last_trade_ts": end,
             "open_price": 100.0 + 100 * n, "high_price": 106.0 + 100 * n,
             "low_price": 99.0 + 100 * n, "price_change": 5.0 - 7 * n,
             "price_change_pct": (5.0 - 7 * n) / (100.0 + 100 * n) * 100,
             "total_volume": 21.0, "quote_volume": 2100.0 * (n + 1), "trade_count": 6,
             "vwap": 102.5 + 100 * n, "window_start": end - timedelta(days=1),
             "window_end": end} for n, s in enumerate(SYMBOLS)]


def symbol_rows() -> list[dict[str, Any]]:
    """The symbols the pipeline has seen: one no dashboard file names."""
    return [{"symbol": s, "first_trade_ts": BASE, "last_trade_ts": BASE + timedelta(minutes=5),
             "last_price": 105.0 + 100 * n, "last_kafka_partition": 0,
             "last_kafka_offset": 10 * n + 5} for n, s in enumerate(SYMBOLS)]


def means() -> list[dict[str, Any]]:
    return [{"symbol": s, "window_seconds": 300, "slide_seconds": 30,
             "window_end": BASE + timedelta(minutes=5, seconds=30 * i),
             "window_start": BASE + timedelta(seconds=30 * i), "trade_count": 10 + i,
             "arithmetic_mean": 50.0 + n + i, "geometric_mean": 49.5 + n + i,
             "harmonic_mean": 49.0 + n + i}
            for n, s in enumerate(SYMBOLS) for i in range(5)]


def rejected() -> list[dict[str, Any]]:
    """Two records of the range end's UTC day (the panels read "today" as that day)."""
    return [{"kafka_topic": "Market", "kafka_date": (BASE + timedelta(minutes=5 + p)).date(),
             "kafka_partition": p, "kafka_offset": 40 + p,
             "kafka_ts": BASE + timedelta(minutes=5 + p), "payload": b"\x01\x02",
             "reason": "undecodable_avro", "seen_at": BASE + timedelta(minutes=6 + p)}
            for p in range(2)]


def progress() -> list[dict[str, Any]]:
    """Three micro-batches of the stream job, 400 + 100 i ms long, 2 minutes apart."""
    rows = []
    for i in range(3):
        finished = BASE + timedelta(minutes=2 * (i + 1))
        rows.append({"job": "market", "day": finished.date(), "finished_at": finished,
                     "batch_id": i, "started_at": finished - timedelta(milliseconds=400 + 100 * i),
                     "trades_written_at": finished - timedelta(milliseconds=100),
                     "records": 120 + i, "trades": 119 + i, "rejected": 1,
                     "panes": 3, "minute_rows": 3, "moving_rows": 30,
                     "trade_latency_p50_ms": 300.0 + i, "trade_latency_p99_ms": 600.0 + i,
                     "window_latency_p99_ms": 900.0, "kafka_lag_records": 40 - 20 * i,
                     "kafka_lag_ms": 450.0 - 200 * i})
    return rows


def insert(session, table: str, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        columns = ", ".join(row)
        marks = ", ".join(["%s"] * len(row))
        session.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(row.values()))


@pytest.fixture(scope="module")
def keyspace(make_keyspace, cassandra_session) -> str:
    name = make_keyspace()
    session = cassandra_session.cluster.connect(name)
    for table, rows in (("trades", trades()), ("candles", candles()),
                        ("ticker_24h", tickers()), ("symbols", symbol_rows()),
                        ("moving_means", means()), ("rejected_records", rejected()),
                        ("stream_progress", progress())):
        insert(session, table, rows)
    session.shutdown()
    return name


@pytest.fixture(scope="module")
def source(stack, keyspace: str) -> Iterator[CassandraSource]:
    cluster, source = CassandraSource.connect(stack.host, stack.cassandra_port, keyspace)
    yield source
    cluster.shutdown()


# --- what each panel must show ------------------------------------------------------------


def frames_of(rows: list[dict], columns: list[str], *, merged: bool = False,
              sort: str | None = None, latest: str | None = None,
              rename: dict[str, str] | None = None) -> list[tuple[str, list[str], list[tuple]]]:
    """(frame name, columns, rows): grouped by the first column as the plugin does, newest
    first as the tables cluster, or one merged frame sorted like the sortBy step."""
    rename = rename or {}
    source_columns = [rename.get(c, c) for c in columns]
    picked = [tuple(r[c] for c in source_columns) for r in rows]
    if latest:
        key = source_columns.index(latest)
        picked = [max((p for p in picked if p[0] == s), key=lambda p: p[key])
                  for s in dict.fromkeys(p[0] for p in picked)]
    if merged:
        key = columns.index(sort) if sort else 0
        return [(str(picked[0][0]), columns, sorted(picked, key=lambda p: p[key],
                                                    reverse=True))]
    groups: dict[str, list[tuple]] = {}
    for p in picked:
        groups.setdefault(str(p[0]), []).append(p)
    order = columns.index(sort) if sort else None
    return [(name, columns, sorted(g, key=lambda p: p[order], reverse=True) if order else g)
            for name, g in groups.items()]


def as_float(rows: list[dict], column: str) -> list[dict]:
    return [{**r, column: float(r[column])} for r in rows]


def of(symbol: str, rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["symbol"] == symbol]


def of_resolution(resolution: str, rows: list[dict] | None = None) -> list[dict]:
    return [r for r in (rows or candles()) if r["resolution"] == resolution]


def candle_panels(resolution: str) -> dict[str, list]:
    """The market overview's candle panels at one resolution: a frame per symbol."""
    rows = of_resolution(resolution)
    ohlc = {"open": "open_price", "high": "high_price", "low": "low_price",
            "close": "close_price", "volume": "total_volume"}
    return {
        f"Volatility: standard deviation of log returns ({resolution} candles)": frames_of(
            rows, ["symbol", "log_return_stddev", "window_start"], sort="window_start"),
        f"Volatility: Parkinson ({resolution} candles)": frames_of(
            rows, ["symbol", "parkinson_volatility", "window_start"], sort="window_start"),
        **{f"{s}: OHLC, VWAP and volume ({resolution})": frames_of(
            of(s, rows), ["symbol", "open", "high", "low", "close", "volume", "vwap",
                          "window_start"], sort="window_start", rename=ohlc) for s in SYMBOLS},
        f"Trades per candle ({resolution})": frames_of(
            as_float(rows, "trade_count"), ["symbol", "trade_count", "window_start"],
            sort="window_start"),
    }


def expected() -> dict[str, list]:
    t, mm, rj = trades(), means(), rejected()
    ticker_columns = ["symbol", "last_price", "price_change", "price_change_pct", "high_price",
                      "low_price", "total_volume", "quote_volume", "trade_count", "vwap",
                      "last_trade_ts"]
    delays = [{**r, "delay_ms": 50.0} for r in t]
    count = [{"kafka_topic": "Market", "rejected": 2.0,
              "seen_at": max(r["seen_at"] for r in rj)}]
    return {
        # One merged frame in the order of the IN list; the table sorts it on screen.
        "Markets: last 24 hours": [("AAPL", ticker_columns, [
            tuple(r[c] for c in ticker_columns)
            for r in sorted(as_float(tickers(), "trade_count"), key=lambda r: r["symbol"])])],
        **candle_panels("1m"),
        "Latest trades": frames_of(t, ["symbol", "trade_ts", "price", "volume",
                                       "kafka_partition", "kafka_offset"],
                                   merged=True, sort="trade_ts"),
        "Latest moving means": frames_of(
            as_float(mm, "trade_count"), ["symbol", "window_end", "arithmetic_mean",
                                          "geometric_mean", "harmonic_mean", "trade_count"],
            latest="window_end", merged=True, sort="window_end"),
        **{f"Moving means: {s}": frames_of(
            of(s, mm), ["symbol", "arithmetic_mean", "geometric_mean", "harmonic_mean",
                        "window_end"], sort="window_end") for s in SYMBOLS},
        "Arithmetic over harmonic mean, %": frames_of(
            [{**r, "spread_pct": (r["arithmetic_mean"] - r["harmonic_mean"]) * 100.0
              / r["arithmetic_mean"]} for r in mm],
            ["symbol", "spread_pct", "window_end"], sort="window_end"),
        "Trades per window": frames_of(as_float(mm, "trade_count"),
                                       ["symbol", "trade_count", "window_end"],
                                       sort="window_end"),
        "Rejected records today": frames_of(count, ["kafka_topic", "rejected", "seen_at"]),
        "Freshness: newest trade per symbol": frames_of(
            symbol_rows(), ["symbol", "last_trade_ts", "last_price", "first_trade_ts"],
            merged=True, sort="last_trade_ts"),
        "Ingest delay (venue to producer)": frames_of(delays, ["symbol", "delay_ms", "trade_ts"],
                                                      sort="trade_ts"),
        **progress_panels(),
        "Rejected records today (table)": frames_of(
            rj, ["kafka_topic", "kafka_partition", "kafka_offset", "kafka_ts", "seen_at",
                 "reason"], merged=True, sort="seen_at"),
    }


def progress_panels() -> dict[str, list]:
    """The stream_progress panels: one series per query, named by its first column (the
    job), newest first as the table clusters."""
    rows = progress()

    def series(column: str, value) -> list[tuple[str, list[str], list[tuple]]]:
        points = sorted(((r["job"], float(value(r)), r["finished_at"]) for r in rows),
                        key=lambda p: p[2], reverse=True)
        return [("market", ["job", column, "finished_at"], points)]

    def duration_ms(r: dict) -> float:
        return (r["finished_at"] - r["started_at"]) / timedelta(milliseconds=1)

    return {
        "Throughput: trades written per second": series(
            "trades_per_s", lambda r: r["trades"] * 1000.0 / (duration_ms(r) + 1)),
        "Batch duration": series("duration_ms", duration_ms),
        "Kafka lag: records": series("lag_records", lambda r: r["kafka_lag_records"]),
        "Kafka lag: time": series("lag_ms", lambda r: r["kafka_lag_ms"]),
        "Latency: producer ingest to trade row written": [
            *series("p50_ms", lambda r: r["trade_latency_p50_ms"]),
            *series("p99_ms", lambda r: r["trade_latency_p99_ms"])],
        "Rejected records per batch": series("rejected", lambda r: r["rejected"]),
    }


def actual(data: PanelData) -> list[tuple[str, list[str], list[tuple]]]:
    """The panel's frames. A series panel reading several partitions (the day, month and
    year buckets on both sides of a midnight) gets them in the order Cassandra returns the
    partitions, which a graph does not show: its frames and points are put in name and
    newest-first order; a table keeps the order it displays."""
    frames = [(f.name, [x.name for x in f.fields],
               list(zip(*(x.values for x in f.fields), strict=True))) for f in data.frames]
    if data.kind in ("timeseries", "candlestick"):
        frames = sorted((name, columns, sorted(rows, key=lambda r: r[-1], reverse=True))
                        for name, columns, rows in frames)
    return frames


def title_of(data: PanelData) -> str:
    # The two "Rejected records today" panels differ by type.
    return data.title + (" (table)" if data.kind == "table" and "Rejected" in data.title
                         else "")


# --- tests --------------------------------------------------------------------------------


def test_every_panel_returns_the_expected_frames(source: CassandraSource) -> None:
    want = expected()
    seen = set()
    for _, dashboard in load_dashboards(DASHBOARDS):
        time_range = time_range_of(dashboard, FROM, TO, BASE)
        data = dashboard_data(dashboard, {"symbol": SYMBOLS}, time_range, source.run,
                              source.variable_options)
        assert data.errors == []
        for panel in data.panels:
            title = title_of(panel)
            assert actual(panel) == want[title], title
            seen.add(title)
    assert seen == set(want)


def config(out: Path, stack, keyspace: str, **extra: Any) -> RenderConfig:
    settings: dict[str, Any] = {"variables": {"symbol": SYMBOLS}, **extra}
    return RenderConfig(out_dir=out, host=stack.host, port=stack.cassandra_port,
                        keyspace=keyspace, time_from=FROM, time_to=TO, **settings)


def test_the_command_writes_one_png_per_dashboard(tmp_path: Path, stack, keyspace: str) -> None:
    assert main(config(tmp_path, stack, keyspace, scale=0.5)) == 0
    pngs = sorted(tmp_path.glob("*.png"))
    assert [p.name for p in pngs] == ["market-overview.png", "moving-means.png",
                                      "pipeline-health.png"]
    for png in pngs:
        assert png.read_bytes()[:8] == PNG_MAGIC
        assert 5_000 < png.stat().st_size < 400_000, png


def test_an_empty_keyspace_fails_and_names_every_empty_panel(
        tmp_path: Path, stack, make_keyspace, caplog) -> None:
    caplog.set_level(logging.ERROR, logger="grafana.render")
    assert main(config(tmp_path, stack, make_keyspace())) == 1
    failed = [r.getMessage() for r in caplog.records if "panel failed" in r.getMessage()]
    # Every panel of every dashboard: 5 + 2 repeat clones, 3 + 2 clones, 10.
    assert len(failed) == 22, failed
    assert all("returned no rows" in message for message in failed)
    # The pictures are still written, with the errors drawn in place.
    assert len(list(tmp_path.glob("*.png"))) == 3


def one_panel_dashboard(folder: Path, panel: dict[str, Any]) -> None:
    folder.mkdir()
    (folder / "broken.json").write_text(json.dumps({
        "uid": "broken", "title": "Broken", "timezone": "utc",
        "templating": {"list": []},
        "panels": [{"title": "p", "gridPos": {"x": 0, "y": 0, "w": 24, "h": 6}, **panel}]}))


@pytest.mark.parametrize("panel, message", [
    ({"type": "timeseries", "targets": [{
        "refId": "A", "rawQuery": True, "queryType": "query",
        "datasource": {"type": "hadesarchitect-cassandra-datasource"},
        "target": "SELECT symbol, vwap, window_start FROM minute_trades "
                  "WHERE symbol = 'AAPL' AND window_start >= $__interval"}]},
     "unknown variable or macro '$__interval'"),
    ({"type": "piechart", "targets": []}, "unsupported panel type 'piechart'"),
    ({"type": "table", "targets": [{
        "refId": "A", "rawQuery": True, "queryType": "query",
        "datasource": {"type": "hadesarchitect-cassandra-datasource"},
        "target": "SELECT nothing FROM no_such_table"}]}, "query A failed: InvalidRequest"),
])
def test_unsupported_or_broken_panels_fail(panel: dict, message: str, tmp_path: Path, stack,
                                           keyspace: str, caplog) -> None:
    caplog.set_level(logging.ERROR, logger="grafana.render")
    one_panel_dashboard(tmp_path / "dashboards", panel)
    cfg = config(tmp_path / "out", stack, keyspace, dashboards_dir=tmp_path / "dashboards",
                 variables={})
    assert main(cfg) == 1
    assert message in caplog.text
    assert (tmp_path / "out" / "broken.png").read_bytes()[:8] == PNG_MAGIC


def test_a_variable_no_dashboard_has_is_refused(tmp_path: Path, stack, keyspace: str) -> None:
    assert main(config(tmp_path, stack, keyspace, variables={"nope": ("x",)})) == 2


def test_the_seed_crosses_utc_midnight_and_a_year() -> None:
    # Sanity of the seed itself: the range starts on one UTC year and ends in the next.
    start, end = datetime.fromisoformat(FROM), datetime.fromisoformat(TO)
    assert (start.date(), end.date()) == (date(2023, 12, 31), date(2024, 1, 1))


@pytest.mark.parametrize("viewer", VIEWERS)
def test_every_row_whatever_the_viewers_time_zone(source: CassandraSource, viewer: str) -> None:
    """Viewed from UTC+9 and UTC-8, where the range's calendar days differ from UTC's,
    every panel returns the same rows as from UTC."""
    want = expected()
    for _, dashboard in load_dashboards(DASHBOARDS):
        time_range = time_range_of(dashboard, FROM, TO, BASE)
        data = dashboard_data(dashboard, {"symbol": SYMBOLS}, time_range, source.run,
                              source.variable_options, browser_zone(viewer))
        assert data.errors == []
        for panel in data.panels:
            assert actual(panel) == want[title_of(panel)], (viewer, title_of(panel))


@pytest.mark.parametrize("viewer", VIEWERS)
def test_a_browser_date_format_would_miss_the_other_days_rows(
        source: CassandraSource, viewer: str) -> None:
    """The bound the panels used before: a custom date format, in the browser's time.
    From Tokyo both ends fall on 2024-01-01 and the trades of 2023-12-31 are missed;
    from Los Angeles both fall on 2023-12-31 and those of 2024-01-01 are."""
    panel = {"type": "table", "title": "old", "gridPos": {"x": 0, "y": 0, "w": 24, "h": 6},
             "targets": [{"refId": "A", "rawQuery": True, "queryType": "query",
                          "datasource": {"type": "hadesarchitect-cassandra-datasource"},
                          "target": "SELECT symbol, trade_ts FROM trades WHERE symbol = 'AAPL'"
                                    " AND trade_date IN ('${__from:date:YYYY-MM-DD}', "
                                    "'${__to:date:YYYY-MM-DD}')"}]}
    dashboard = {"uid": "old", "timezone": "utc", "panels": [panel]}
    time_range = time_range_of(dashboard, FROM, TO, BASE)
    data = dashboard_data(dashboard, {}, time_range, source.run, source.variable_options,
                          browser_zone(viewer))
    seen = {ts.date() for frame in data.panels[0].frames
            for ts in frame.fields[1].values}
    missed = date(2023, 12, 31) if viewer == "Asia/Tokyo" else date(2024, 1, 1)
    assert seen == {date(2023, 12, 31), date(2024, 1, 1)} - {missed}


@pytest.mark.parametrize("resolution", sorted(CANDLE_STARTS))
def test_the_resolution_picker_reads_its_candles_across_buckets(
        source: CassandraSource, resolution: str) -> None:
    """Over two UTC days, every resolution's candles on both sides of the day, month and
    year boundary come back, and nothing of another resolution."""
    dashboard = dict(load_dashboards(DASHBOARDS))[DASHBOARDS / "market-overview.json"]
    time_range = time_range_of(dashboard, "2023-12-31T00:00:00Z", "2024-01-01T23:59:59Z", BASE)
    data = dashboard_data(dashboard, {"symbol": SYMBOLS, "resolution": (resolution,)},
                          time_range, source.run, source.variable_options,
                          browser_zone(VIEWERS[0]))
    want = candle_panels(resolution)
    panels = {title_of(p): p for p in data.panels if title_of(p) in want}
    assert sorted(panels) == sorted(want)
    for title, panel in panels.items():
        assert panel.error is None and actual(panel) == want[title], title
