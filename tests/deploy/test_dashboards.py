"""Grafana provisioning and dashboards follow the Cassandra plugin's query contract.

The static checks run anywhere. The integration tests substitute the macros and
variables the way the plugin (server side) and Grafana (browser side) do, and run
every query against the real local Cassandra: once against keyspace `market` to prove
it is valid CQL for the schema, and once against a fresh keyspace holding a few rows to
prove each time series comes back as (series id, numbers..., timestamp) without nulls.
"""

from __future__ import annotations

import configparser
import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import yaml
from deploy_files import (
    DATASOURCE_TYPE,
    DATASOURCE_UID,
    GRAFANA,
    dashboards,
    load_yaml_docs,
    panels,
    target_id,
    targets,
)

TARGETS = targets()
# Panels whose rows are plotted as series: (id, numeric..., timestamp) without nulls.
SERIES_PANELS = {"timeseries", "stat", "candlestick"}
SYMBOLS = ("BINANCE:BTCUSDT", "AAPL")
TOPIC = "Market"


def test_every_dashboard_has_queries() -> None:
    names = {path.name for path, _ in dashboards()}
    assert names == {"market-overview.json", "moving-means.json", "pipeline-health.json"}
    for _, dashboard in dashboards():
        assert dashboard["uid"] and dashboard["title"]
        assert any(panel.get("targets") for panel in panels(dashboard)), dashboard["title"]


def test_datasource_provisioning() -> None:
    (doc,) = load_yaml_docs(GRAFANA / "provisioning" / "datasources" / "cassandra.yaml")
    (source,) = doc["datasources"]
    assert source["uid"] == DATASOURCE_UID
    assert source["type"] == DATASOURCE_TYPE
    assert source["url"] == "cassandra:9042"
    assert source["jsonData"]["keyspace"] == "market"
    assert source["jsonData"]["consistency"] == "LOCAL_ONE"
    assert isinstance(source["jsonData"]["timeout"], int)
    # Credentials only as environment references, expanded by Grafana at load time.
    assert source["jsonData"]["user"] == "$CASSANDRA_USER"
    assert source["secureJsonData"] == {"password": "$CASSANDRA_PASSWORD"}
    assert "password" not in source["jsonData"]


def test_grafana_ini_allows_one_second_refresh() -> None:
    ini = configparser.ConfigParser()
    ini.read(GRAFANA / "grafana.ini")
    assert ini["dashboards"]["min_refresh_interval"] == "1s"


def test_dashboard_provider_points_at_the_mounted_folder() -> None:
    (doc,) = load_yaml_docs(GRAFANA / "provisioning" / "dashboards" / "market.yaml")
    (provider,) = doc["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/etc/grafana/dashboards"
    deployment = yaml.safe_load(
        (GRAFANA.parent / "k8s" / "base" / "grafana" / "deployment.yaml").read_text())
    mounts = deployment["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert any(m["mountPath"] == provider["options"]["path"] for m in mounts)


@pytest.mark.parametrize("item", TARGETS, ids=target_id)
def test_target_follows_the_plugin_contract(
        item: tuple[str, dict[str, Any], dict[str, Any]]) -> None:
    _, panel, target = item
    assert target["datasource"] == {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID}
    assert panel.get("datasource", target["datasource"])["uid"] == DATASOURCE_UID
    assert target["rawQuery"] is True
    assert target["queryType"] == "query"
    assert re.fullmatch(r"[A-Z]", target["refId"])
    cql = target["target"]
    assert cql.startswith("SELECT "), "the plugin only runs statements starting with 'SELECT '"
    assert ";" not in cql
    # IN on a partition key cannot be combined with ORDER BY; the tables' DESC
    # clustering gives the order instead.
    assert "ORDER BY" not in cql.upper()
    # Every series query is bounded: by the plugin's time macros, by PER PARTITION
    # LIMIT (latest rows), or by aggregating one day bucket.
    if panel["type"] in SERIES_PANELS:
        bounded = ("$__timeFrom" in cql and "$__timeTo" in cql) or any(
            clause in cql.upper() for clause in ("PER PARTITION LIMIT", "GROUP BY"))
        assert bounded, cql


def test_queries_use_the_symbol_variable_and_date_buckets() -> None:
    for _, dashboard in dashboards():
        names = {var["name"] for var in dashboard["templating"]["list"]}
        assert "symbol" in names
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                cql = target["target"]
                if "FROM trades" in cql or "FROM minute_trades" in cql or "moving_means" in cql:
                    assert "symbol IN (${symbol:singlequote})" in cql, cql
                if "FROM trades" in cql:
                    assert "trade_date" in cql and "${__to:date:YYYY-MM-DD}" in cql, cql
                if "FROM rejected_records" in cql:
                    assert "kafka_date = '${__to:date:YYYY-MM-DD}'" in cql, cql


# ---------------------------------------------------------------- against Cassandra

def render(cql: str, start: datetime, end: datetime) -> str:
    """The statement Cassandra receives: variables as Grafana interpolates them,
    then the macros as the plugin replaces them (epoch milliseconds)."""
    variables: dict[str, Callable[[str], str]] = {
        "symbol": lambda fmt: ",".join(f"'{s}'" for s in SYMBOLS),
        "topic": lambda fmt: f"'{TOPIC}'",
        "__from": lambda fmt: start.strftime("%Y-%m-%d"),
        "__to": lambda fmt: end.strftime("%Y-%m-%d"),
        # The moving-means dashboard's constants: the stream job's default window shape.
        "window_seconds": lambda fmt: "300",
        "slide_seconds": lambda fmt: "30",
    }

    def variable(match: re.Match[str]) -> str:
        name, fmt = match.group(1), match.group(2) or ""
        assert fmt in {"", "singlequote", "date:YYYY-MM-DD"}, f"unexpected format {fmt!r}"
        return variables[name](fmt)

    text = re.sub(r"\$\{(\w+)(?::([^}]*))?\}", variable, cql)
    text = text.replace("$__timeFrom", str(int(start.timestamp() * 1000)))
    text = text.replace("$__timeTo", str(int(end.timestamp() * 1000)))
    assert "$" not in text, f"unsubstituted macro in {text}"
    return text


def time_range() -> tuple[datetime, datetime]:
    end = datetime.now(timezone.utc).replace(microsecond=0)
    return end - timedelta(hours=1), end


@pytest.fixture(scope="module")
def market_session(cassandra_session: Any) -> Iterator[Any]:
    session = cassandra_session.cluster.connect("market")
    yield session
    session.shutdown()


@pytest.mark.integration
@pytest.mark.parametrize("item", TARGETS, ids=target_id)
def test_query_is_valid_cql_for_market(
        item: tuple[str, dict[str, Any], dict[str, Any]], market_session: Any) -> None:
    start, end = time_range()
    market_session.execute(render(item[2]["target"], start, end), timeout=30)


def seed(session: Any, end: datetime) -> None:
    """A few rows per table inside the time range, as the stream job writes them."""
    today = end.date()
    for symbol in SYMBOLS:
        for minute in range(3):
            ts = end - timedelta(minutes=minute + 1)
            session.execute(
                "INSERT INTO trades (symbol, trade_date, trade_ts, kafka_partition, "
                "kafka_offset, price, volume, ingest_ts, kafka_topic) "
                "VALUES (%s, %s, %s, 0, %s, %s, %s, %s, %s)",
                (symbol, today, ts, minute, 100.0 + minute, 1.5, ts + timedelta(milliseconds=40),
                 TOPIC))
            session.execute(
                "INSERT INTO minute_trades (symbol, window_start, window_end, trade_count, "
                "avg_price, open_price, high_price, low_price, close_price, total_volume, vwap) "
                "VALUES (%s, %s, %s, 7, 100.5, 100.0, 101.0, 99.5, 100.2, 10.5, 100.4)",
                (symbol, ts, ts + timedelta(minutes=1)))
            session.execute(
                "INSERT INTO moving_means (symbol, window_seconds, slide_seconds, window_end, "
                "window_start, trade_count, arithmetic_mean, geometric_mean, harmonic_mean) "
                "VALUES (%s, 300, 30, %s, %s, 42, 100.3, 100.2, 100.1)",
                (symbol, ts, ts - timedelta(minutes=5)))
    session.execute(
        "INSERT INTO rejected_records (kafka_topic, kafka_date, kafka_partition, kafka_offset, "
        "kafka_ts, payload, reason, seen_at) VALUES (%s, %s, 1, 17, %s, %s, %s, %s)",
        (TOPIC, today, end, b"\x00\x01", "trailing bytes", end))
    for batch_id in range(3):
        finished = end - timedelta(seconds=10 * (3 - batch_id))
        session.execute(
            "INSERT INTO stream_progress (job, day, finished_at, batch_id, run_id, started_at,"
            " trades_written_at, records, trades, rejected, panes, minute_rows, moving_rows,"
            " trade_latency_p50_ms, trade_latency_p99_ms, window_latency_p99_ms,"
            " kafka_lag_records, kafka_lag_ms) VALUES ('market', %s, %s, %s, uuid(), %s, %s,"
            " 120, 119, 1, 3, 3, 30, 310.0, 620.0, 900.0, 40, 450.0)",
            (finished.date(), finished, batch_id, finished - timedelta(milliseconds=400),
             finished - timedelta(milliseconds=150)))


@pytest.fixture(scope="module")
def seeded_session(make_keyspace: Callable[[], str], cassandra_session: Any) -> Iterator[Any]:
    session = cassandra_session.cluster.connect(make_keyspace())
    seed(session, time_range()[1])
    yield session
    session.shutdown()


@pytest.mark.integration
@pytest.mark.parametrize("item", TARGETS, ids=target_id)
def test_query_returns_plottable_rows(
        item: tuple[str, dict[str, Any], dict[str, Any]], seeded_session: Any) -> None:
    _, panel, target = item
    start, end = time_range()
    result = seeded_session.execute(render(target["target"], start, end), timeout=30)
    rows = list(result)
    assert rows, f"no rows for {target['target']}"
    assert all(value is not None for row in rows for value in row), rows
    if panel["type"] not in SERIES_PANELS:
        return
    for row in rows:
        series_id, *values, timestamp = row
        assert isinstance(series_id, str)
        # The plugin reads numbers as float64: bigint must have been cast.
        assert values and all(isinstance(v, float) for v in values), row
        assert isinstance(timestamp, datetime), row
