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
from grafana.render.panels import PanelData, dashboard_data, time_range_of
from grafana.render.source import CassandraSource

pytestmark = pytest.mark.integration

UTC = timezone.utc
BASE = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
SYMBOLS = ("AAPL", "MSFT")
FROM, TO = BASE.isoformat(), (BASE + timedelta(minutes=10)).isoformat()
DASHBOARDS = Path(__file__).resolve().parents[2] / "grafana" / "dashboards"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# --- the rows --------------------------------------------------------------------------


def trades() -> list[dict[str, Any]]:
    return [{"symbol": s, "trade_date": BASE.date(),
             "trade_ts": BASE + timedelta(seconds=60 * i + 10),
             "kafka_partition": 0, "kafka_offset": 10 * n + i, "price": 100.0 * (n + 1) + i,
             "volume": 1.0 + i, "ingest_ts": BASE + timedelta(seconds=60 * i + 10.05),
             "kafka_topic": "Market"}
            for n, s in enumerate(SYMBOLS) for i in range(6)]


def minutes() -> list[dict[str, Any]]:
    return [{"symbol": s, "window_start": BASE + timedelta(minutes=i),
             "window_end": BASE + timedelta(minutes=i + 1), "trade_count": i + 1,
             "avg_price": 100.0 * (n + 1) + i, "open_price": 100.0 * (n + 1) + i - 0.5,
             "high_price": 100.0 * (n + 1) + i + 1, "low_price": 100.0 * (n + 1) + i - 1,
             "close_price": 100.0 * (n + 1) + i + 0.5, "total_volume": 2.0 * i,
             "vwap": 100.0 * (n + 1) + i + 0.25}
            for n, s in enumerate(SYMBOLS) for i in range(6)]


def means() -> list[dict[str, Any]]:
    return [{"symbol": s, "window_seconds": 300, "slide_seconds": 30,
             "window_end": BASE + timedelta(minutes=5, seconds=30 * i),
             "window_start": BASE + timedelta(seconds=30 * i), "trade_count": 10 + i,
             "arithmetic_mean": 50.0 + n + i, "geometric_mean": 49.5 + n + i,
             "harmonic_mean": 49.0 + n + i}
            for n, s in enumerate(SYMBOLS) for i in range(5)]


def rejected() -> list[dict[str, Any]]:
    return [{"kafka_topic": "Market", "kafka_date": BASE.date(), "kafka_partition": p,
             "kafka_offset": 40 + p, "kafka_ts": BASE + timedelta(minutes=2 + p),
             "payload": b"\x01\x02", "reason": "undecodable_avro",
             "seen_at": BASE + timedelta(minutes=3 + p)} for p in range(2)]


def progress() -> list[dict[str, Any]]:
    """Three micro-batches of the stream job, 400 + 100 i ms long, 2 minutes apart."""
    rows = []
    for i in range(3):
        finished = BASE + timedelta(minutes=2 * (i + 1))
        rows.append({"job": "market", "day": BASE.date(), "finished_at": finished,
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
    for table, rows in (("trades", trades()), ("minute_trades", minutes()),
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


def expected() -> dict[str, list]:
    t, m, mm, rj = trades(), minutes(), means(), rejected()
    ohlc = {"open": "open_price", "high": "high_price", "low": "low_price",
            "close": "close_price", "volume": "total_volume"}
    delays = [{**r, "delay_ms": 50.0} for r in t]
    count = [{"kafka_topic": "Market", "rejected": 2.0,
              "seen_at": max(r["seen_at"] for r in rj)}]
    return {
        "Latest price": frames_of(t, ["symbol", "price", "trade_ts"], latest="trade_ts"),
        "Trades per minute": frames_of(as_float(m, "trade_count"),
                                       ["symbol", "trade_count", "window_start"],
                                       sort="window_start"),
        **{title: frames_of(m, ["symbol", column, "window_start"], sort="window_start")
           for title, column in (("Average price per minute", "avg_price"),
                                 ("Volume per minute", "total_volume"),
                                 ("VWAP per minute", "vwap"))},
        **{f"OHLC, VWAP and volume: {s}": frames_of(
            of(s, m), ["symbol", "open", "high", "low", "close", "volume", "vwap",
                       "window_start"], sort="window_start", rename=ohlc) for s in SYMBOLS},
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
        "Arithmetic minus harmonic mean": frames_of(
            [{**r, "spread": r["arithmetic_mean"] - r["harmonic_mean"]} for r in mm],
            ["symbol", "spread", "window_end"], sort="window_end"),
        "Trades per window": frames_of(as_float(mm, "trade_count"),
                                       ["symbol", "trade_count", "window_end"],
                                       sort="window_end"),
        "Rejected records today": frames_of(count, ["kafka_topic", "rejected", "seen_at"]),
        "Freshness: newest minute per symbol": frames_of(
            as_float(m, "trade_count"), ["symbol", "window_start", "trade_count",
                                         "close_price"],
            latest="window_start", merged=True, sort="window_start"),
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
    return [(f.name, [x.name for x in f.fields],
             list(zip(*(x.values for x in f.fields), strict=True))) for f in data.frames]


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
    # Every panel of every dashboard: 6 + 2 repeat clones, 3 + 2 clones, 4 + 6.
    assert len(failed) == 23, failed
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


def test_a_date_partition_from_the_range_end(source: CassandraSource) -> None:
    # Sanity of the seed itself: the range ends on the day the rows were written.
    assert datetime.fromisoformat(TO).date() == date(2024, 3, 1) == BASE.date()
