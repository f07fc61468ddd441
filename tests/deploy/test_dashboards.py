"""Grafana provisioning and dashboards follow the Cassandra plugin's query contract.

The static checks run anywhere. The integration tests substitute the macros and
variables the way the plugin (server side) and Grafana (browser side) do, and run
every query against the real local Cassandra, in a fresh keyspace with the cql/ schema
holding known rows: rows the selection must show, and rows it must leave out (other
symbols, topics, jobs and window shapes, other days, times outside the range). Each
query must return exactly the rows computed here from that data, and each time series
must come back as (series id, numbers as float..., timestamp).
"""

from __future__ import annotations

import configparser
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
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

import contract
from jobs.candle_levels import retention
from jobs.candles import RESOLUTIONS, bucket, bucket_unit

TARGETS = targets()
# Panels whose rows are plotted as series: (id, numeric..., timestamp) without nulls.
SERIES_PANELS = {"timeseries", "stat", "candlestick"}


def test_every_query_has_an_id_of_its_own() -> None:
    ids = [target_id(item) for item in TARGETS]
    assert len(ids) == len(set(ids)), ids


def test_the_dashboards_defaults_are_the_contracts() -> None:
    # The topic the pipeline writes, the moving-means window shape the job computes by
    # default, and the job name the stream job records its progress under.
    values = {var["name"]: var.get("query") for _, dashboard in dashboards()
              for var in dashboard["templating"]["list"]
              if var["name"] not in ("symbol", "resolution", "days", "candle_buckets")}
    assert values == {"topic": contract.TOPIC,
                      "window_seconds": str(int(contract.MOVING_WINDOW.total_seconds())),
                      "slide_seconds": str(int(contract.MOVING_SLIDE.total_seconds()))}
    jobs = {match for _, _, target in TARGETS
            for match in re.findall(r"\bjob = '([^']*)'", target["target"])}
    assert jobs == {contract.QUERY_NAME}


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
    assert source["jsonData"]["keyspace"] == contract.KEYSPACE
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


def test_queries_use_the_symbol_variable_and_utc_buckets() -> None:
    for _, dashboard in dashboards():
        names = {var["name"] for var in dashboard["templating"]["list"]}
        assert "symbol" in names
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                cql = target["target"]
                if any(f"FROM {t} " in cql for t in ("trades", "candles", "moving_means",
                                                     "ticker_24h", "symbols")):
                    assert "symbol IN (${symbol:singlequote})" in cql, cql
                if "FROM trades" in cql:
                    assert "trade_date IN (${days})" in cql, cql
                if "FROM rejected_records" in cql:
                    assert "kafka_date = toDate($__timeTo)" in cql, cql


# Sub-minute candles are for short views: the panels read the last 8 UTC days of them.
SUB_MINUTE_VIEW = timedelta(days=8)
LOADED = {path.stem: dashboard for path, dashboard in dashboards()}


def queries(dashboard: dict) -> list[str]:
    return [t["target"] for p in panels(dashboard) for t in p.get("targets", [])]


def variable(dashboard: dict, name: str) -> dict:
    return next(v for v in dashboard["templating"]["list"] if v["name"] == name)


@pytest.mark.parametrize("name", sorted(LOADED))
def test_symbols_come_from_the_symbols_table(name: str) -> None:
    symbol = variable(LOADED[name], "symbol")
    assert symbol["type"] == "query" and symbol["query"]["query"] == "SELECT symbol FROM symbols"
    assert symbol["multi"] and symbol["includeAll"] and symbol["refresh"] == 2
    # No symbol is written into any dashboard: not as options, not in a query.
    text = json.dumps(LOADED[name])
    for known in ("AAPL", "MSFT", "BINANCE:", "OANDA:"):
        assert known not in text, known


@pytest.mark.parametrize("name", sorted(LOADED))
def test_no_bound_depends_on_the_viewers_time_zone(name: str) -> None:
    # Custom date formats are interpolated in the browser's time zone.
    for cql in queries(LOADED[name]):
        assert not re.search(r"__(from|to):date:(?!iso\b|seconds\b)", cql), cql
        for column in ("trade_date", "kafka_date", "day"):
            for bound in re.findall(rf"\b{column}\s*(?:=|IN)\s*(\([^)]*\)|\S+)", cql):
                assert "toDate($__time" in bound or bound == "(${days})", (column, cql)


def test_every_candle_query_binds_the_partition_key() -> None:
    overview = LOADED["market-overview"]
    candle_queries = [q for q in queries(overview) if " FROM candles " in q]
    assert len(candle_queries) == 4
    for cql in candle_queries:
        assert "symbol IN (${symbol:singlequote})" in cql
        assert "resolution = '${resolution}'" in cql
        assert "bucket IN (${candle_buckets})" in cql
        assert "window_start >= $__timeFrom AND window_start <= $__timeTo" in cql


def top_level(terms: str) -> list[str]:
    """A CQL term list split at the commas outside parentheses."""
    out, depth, current = [], 0, ""
    for char in terms:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            out.append(current.strip())
            current = ""
        else:
            current += char
    return [*out, current.strip()]


def reach(buckets: str, unit: str) -> int:
    """How many buckets of a unit back from the range end's the list names (0 = its own)."""
    base = {"day": r"toDate\(\$__timeTo\)", "month": r"toDate\(floor\(\$__timeTo, 1mo\)\)",
            "year": r"toDate\(floor\(\$__timeTo, 1y\)\)"}[unit]
    step = {"day": "d", "month": "mo", "year": "y"}[unit]
    terms = top_level(buckets)
    own = [t for t in terms if re.fullmatch(base, t)]
    back = sorted(int(m[1]) for t in terms if (m := re.fullmatch(rf"{base} - (\d+){step}", t)))
    assert len(own) == 1 and back == list(range(1, len(back) + 1)), (unit, terms)
    return len(back)


def test_the_bucket_list_reaches_as_far_back_as_candles_are_kept() -> None:
    buckets = variable(LOADED["market-overview"], "candle_buckets")["query"]
    days, months, years = (reach(buckets, u) for u in ("day", "month", "year"))
    assert len(top_level(buckets)) == 3 + days + months + years
    for resolution in RESOLUTIONS:
        kept = retention(resolution)
        unit = bucket_unit(resolution)
        if unit == "day":
            # A range of up to 8 days ending anywhere: every day it touches.
            assert timedelta(days=days) >= min(kept, SUB_MINUTE_VIEW) - timedelta(days=1)
        elif unit == "month":
            # A candle kept a year lives in one of the 13 months up to the range end's.
            assert months >= 12 and kept <= timedelta(days=366), resolution
        else:
            assert years >= kept.days // 365, resolution


def test_the_resolution_picker_offers_the_jobs_default_resolutions() -> None:
    from contract import CANDLE_RESOLUTIONS

    picker = variable(LOADED["market-overview"], "resolution")
    assert picker["query"].split(",") == CANDLE_RESOLUTIONS.split(",")
    assert picker["current"]["value"] == "1m" and LOADED["market-overview"]["time"] == {
        "from": "now-1h", "to": "now"}
    # Each range link sets a resolution the picker offers.
    for link in LOADED["market-overview"]["links"]:
        if link["type"] == "link":
            assert re.search(r"var-resolution=(\w+)", link["url"])[1] in picker["query"]


# ---------------------------------------------------------------- against Cassandra

# The range spans midnight, so queries over day buckets must read both days.
END = datetime(2024, 3, 1, 0, 30, tzinfo=timezone.utc)
START = END - timedelta(hours=1)
TO_DAY = END.date()
SYMBOLS = ("BINANCE:BTCUSDT", "AAPL")  # the symbols selected on the dashboards
OTHER_SYMBOL = "MSFT"  # in market.symbols, not selected
RESOLUTION = "1m"  # the resolution picker's default
OTHER_RESOLUTION = "5m"  # stored, not picked
OTHER_TOPIC = "Other"
OTHER_JOB = "other_job"
WINDOW_S = int(contract.MOVING_WINDOW.total_seconds())
SLIDE_S = int(contract.MOVING_SLIDE.total_seconds())
# Minutes before END: inside the range on the end's day, inside it on the day before,
# and before the range.
AGO = (10, 50, 120)


def ago(minutes: int) -> datetime:
    return END - timedelta(minutes=minutes)


def utc_naive(ts: datetime) -> datetime:
    """A timestamp as cassandra-driver returns it: naive, in UTC."""
    return ts.astimezone(timezone.utc).replace(tzinfo=None)


def in_range(ts: datetime) -> bool:
    return START <= ts <= END


@dataclass(frozen=True)
class TradeRow:
    symbol: str
    ts: datetime
    price: float
    volume: float
    partition: int
    offset: int
    delay_ms: int  # ingest_ts - trade_ts


@dataclass(frozen=True)
class CandleRow:
    symbol: str
    resolution: str
    start: datetime
    count: int
    base: float  # open; the other prices are offsets from it

    avg = property(lambda self: self.base + 0.5)
    high = property(lambda self: self.base + 2.0)
    low = property(lambda self: self.base - 1.0)
    close = property(lambda self: self.base + 1.0)
    volume = property(lambda self: self.count * 1.5)
    vwap = property(lambda self: self.base + 0.75)
    stddev = property(lambda self: 0.001 * self.count)
    parkinson = property(lambda self: 0.002 * self.count)


@dataclass(frozen=True)
class TickerRow:
    symbol: str
    last_ts: datetime
    open: float
    last: float
    count: int

    change = property(lambda self: self.last - self.open)
    change_pct = property(lambda self: 100.0 * (self.last - self.open) / self.open)
    high = property(lambda self: max(self.open, self.last) + 1.0)
    low = property(lambda self: min(self.open, self.last) - 1.0)
    volume = property(lambda self: 2.0 * self.count)
    quote_volume = property(lambda self: 2.0 * self.count * self.open)
    vwap = property(lambda self: (self.open + self.last) / 2)


@dataclass(frozen=True)
class MovingRow:
    symbol: str
    window_s: int
    slide_s: int
    end: datetime
    count: int
    arithmetic: float
    geometric: float
    harmonic: float


@dataclass(frozen=True)
class RejectedRow:
    topic: str
    day: date
    partition: int
    offset: int
    kafka_ts: datetime
    reason: str

    seen_at = property(lambda self: self.kafka_ts + timedelta(seconds=2))


@dataclass(frozen=True)
class BatchRow:
    job: str
    finished: datetime
    batch_id: int
    duration_ms: int
    trades: int
    rejected: int
    lag_records: int
    lag_ms: float
    p50_ms: float
    p99_ms: float


SEEDED = tuple(enumerate((*SYMBOLS, OTHER_SYMBOL)))
TRADES = [TradeRow(symbol, ago(m), 100.0 * (k + 1) + n + 0.25, 1.5 + n, k, 10 * k + n,
                   40 + 7 * n)
          for k, symbol in SEEDED for n, m in enumerate(AGO)]
CANDLES = [CandleRow(symbol, resolution, ago(m), 7 + 10 * k + n + j, 100.0 * (k + 1) + n)
           for j, resolution in enumerate((RESOLUTION, OTHER_RESOLUTION))
           for k, symbol in SEEDED for n, m in enumerate(AGO)]
TICKERS = [TickerRow(symbol, ago(10), 100.0 * (k + 1), 100.0 * (k + 1) + 3 - 5 * k, 50 + k)
           for k, symbol in SEEDED]
MOVING = [MovingRow(symbol, WINDOW_S, SLIDE_S, ago(m), 40 + 10 * k + n,
                    100.0 * (k + 1) + n + 0.3, 100.0 * (k + 1) + n + 0.2,
                    100.0 * (k + 1) + n + 0.1)
          for k, symbol in SEEDED for n, m in enumerate(AGO)] + [
    # Another window shape, newer than every row above: never shown.
    MovingRow(symbol, 2 * WINDOW_S, 2 * SLIDE_S, ago(5), 99, 1.0, 1.0, 1.0)
    for _, symbol in SEEDED]
REJECTED = [
    RejectedRow(contract.TOPIC, TO_DAY, 1, 17, ago(10), "trailing bytes"),
    RejectedRow(contract.TOPIC, TO_DAY, 2, 18, ago(20), "bad_price"),
    RejectedRow(contract.TOPIC, TO_DAY - timedelta(days=1), 1, 16, ago(50), "bad_symbol"),
    RejectedRow(OTHER_TOPIC, TO_DAY, 0, 3, ago(5), "invalid_json"),
]
BATCHES = [BatchRow(contract.QUERY_NAME, ago(m), n, 400 + 100 * n, 119 + n, n + 1, 40 + n,
                    450.0 + n, 310.0 + n, 620.0 + n)
           for n, m in enumerate(AGO)] + [
    BatchRow(OTHER_JOB, ago(5), 7, 100, 1, 0, 0, 0.0, 1.0, 2.0)]


def seed(session: Any) -> None:
    """The rows above, written as the stream job writes them."""
    for t in TRADES:
        session.execute(
            "INSERT INTO trades (symbol, trade_date, trade_ts, kafka_partition, kafka_offset,"
            " price, volume, ingest_ts, kafka_topic) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (t.symbol, t.ts.date(), t.ts, t.partition, t.offset, t.price, t.volume,
             t.ts + timedelta(milliseconds=t.delay_ms), contract.TOPIC))
    for c in CANDLES:
        session.execute(
            "INSERT INTO candles (symbol, resolution, bucket, window_start, window_end,"
            " trade_count, open_price, high_price, low_price, close_price, total_volume,"
            " avg_price, vwap, log_return_stddev, parkinson_volatility)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (c.symbol, c.resolution, bucket(c.resolution, c.start), c.start,
             c.start + RESOLUTIONS[c.resolution], c.count, c.base, c.high, c.low, c.close,
             c.volume, c.avg, c.vwap, c.stddev, c.parkinson))
    for t in TICKERS:
        session.execute(
            "INSERT INTO ticker_24h (symbol, last_price, last_trade_ts, open_price, high_price,"
            " low_price, price_change, price_change_pct, total_volume, quote_volume,"
            " trade_count, vwap, window_start, window_end)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (t.symbol, t.last, t.last_ts, t.open, t.high, t.low, t.change, t.change_pct,
             t.volume, t.quote_volume, t.count, t.vwap, t.last_ts - timedelta(days=1),
             t.last_ts))
    for _, symbol in SEEDED:
        mine = [t for t in TRADES if t.symbol == symbol]
        last = max(mine, key=lambda t: t.ts)
        session.execute(
            "INSERT INTO symbols (symbol, first_trade_ts, last_trade_ts, last_price,"
            " last_kafka_partition, last_kafka_offset) VALUES (%s, %s, %s, %s, %s, %s)",
            (symbol, min(t.ts for t in mine), last.ts, last.price, last.partition,
             last.offset))
    for w in MOVING:
        session.execute(
            "INSERT INTO moving_means (symbol, window_seconds, slide_seconds, window_end,"
            " window_start, trade_count, arithmetic_mean, geometric_mean, harmonic_mean)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (w.symbol, w.window_s, w.slide_s, w.end, w.end - timedelta(seconds=w.window_s),
             w.count, w.arithmetic, w.geometric, w.harmonic))
    for r in REJECTED:
        session.execute(
            "INSERT INTO rejected_records (kafka_topic, kafka_date, kafka_partition,"
            " kafka_offset, kafka_ts, payload, reason, seen_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (r.topic, r.day, r.partition, r.offset, r.kafka_ts, b"\x00\x01", r.reason,
             r.seen_at))
    for b in BATCHES:
        started = b.finished - timedelta(milliseconds=b.duration_ms)
        session.execute(
            "INSERT INTO stream_progress (job, day, finished_at, batch_id, run_id, started_at,"
            " trades_written_at, records, trades, rejected, panes, minute_rows, moving_rows,"
            " trade_latency_p50_ms, trade_latency_p99_ms, window_latency_p99_ms,"
            " kafka_lag_records, kafka_lag_ms) VALUES (%s, %s, %s, %s, uuid(), %s, %s, %s, %s,"
            " %s, 3, 3, 30, %s, %s, 900.0, %s, %s)",
            (b.job, b.finished.date(), b.finished, b.batch_id, started,
             b.finished - timedelta(milliseconds=100), b.trades + b.rejected, b.trades,
             b.rejected, b.p50_ms, b.p99_ms, b.lag_records, b.lag_ms))


def newest(rows: list[Any], time_of: Callable[[Any], datetime]) -> list[Any]:
    """The newest row of each symbol."""
    best: dict[str, Any] = {}
    for row in rows:
        if row.symbol not in best or time_of(row) > time_of(best[row.symbol]):
            best[row.symbol] = row
    return list(best.values())


def expected_rows() -> dict[str, list[tuple[Any, ...]]]:
    """What each query must return, by target_id, computed from the seeded rows."""
    ts = utc_naive
    trades = [t for t in TRADES if t.symbol in SYMBOLS]
    trades_in_range = [t for t in trades if in_range(t.ts)]
    candles = [c for c in CANDLES if c.symbol in SYMBOLS and c.resolution == RESOLUTION
               and in_range(c.start)]
    tickers = [t for t in TICKERS if t.symbol in SYMBOLS]
    moving = [w for w in MOVING if w.symbol in SYMBOLS and (w.window_s, w.slide_s) == (
        WINDOW_S, SLIDE_S)]
    moving_in_range = [w for w in moving if in_range(w.end)]
    rejected_today = [r for r in REJECTED if (r.topic, r.day) == (contract.TOPIC, TO_DAY)]
    batches = [b for b in BATCHES if b.job == contract.QUERY_NAME and in_range(b.finished)]
    ov, mm, ph = "market-overview.json", "moving-means.json", "pipeline-health.json"
    return {
        f"{ov}:Markets: last 24 hours (table):A": [
            (t.symbol, t.last, t.change, t.change_pct, t.high, t.low, t.volume,
             t.quote_volume, float(t.count), t.vwap, ts(t.last_ts)) for t in tickers],
        f"{ov}:Volatility: standard deviation of log returns ($resolution candles)"
        " (timeseries):A": [(c.symbol, c.stddev, ts(c.start)) for c in candles],
        f"{ov}:Volatility: Parkinson ($resolution candles) (timeseries):A": [
            (c.symbol, c.parkinson, ts(c.start)) for c in candles],
        f"{ov}:$symbol: OHLC, VWAP and volume ($resolution) (candlestick):A": [
            (c.symbol, c.base, c.high, c.low, c.close, c.volume, c.vwap, ts(c.start))
            for c in candles],
        f"{ov}:Trades per candle ($resolution) (timeseries):A": [
            (c.symbol, float(c.count), ts(c.start)) for c in candles],
        f"{ov}:Latest trades (table):A": [
            (t.symbol, ts(t.ts), t.price, t.volume, t.partition, t.offset)
            for t in trades_in_range],
        f"{mm}:Latest moving means (table):A": [
            (w.symbol, ts(w.end), w.arithmetic, w.geometric, w.harmonic, float(w.count))
            for w in newest(moving, lambda w: w.end)],
        f"{mm}:Moving means: $symbol (timeseries):A": [
            (w.symbol, w.arithmetic, w.geometric, w.harmonic, ts(w.end))
            for w in moving_in_range],
        f"{mm}:Arithmetic over harmonic mean, % (timeseries):A": [
            (w.symbol, (w.arithmetic - w.harmonic) * 100.0 / w.arithmetic, ts(w.end))
            for w in moving_in_range],
        f"{mm}:Trades per window (timeseries):A": [
            (w.symbol, float(w.count), ts(w.end)) for w in moving_in_range],
        f"{ph}:Rejected records today (stat):A": [
            (contract.TOPIC, float(len(rejected_today)),
             ts(max(r.seen_at for r in rejected_today)))],
        f"{ph}:Rejected records today (table):A": [
            (r.topic, r.partition, r.offset, ts(r.kafka_ts), ts(r.seen_at), r.reason)
            for r in rejected_today],
        f"{ph}:Freshness: newest trade per symbol (table):A": [
            (t.symbol, ts(t.ts), t.price, ts(min(u.ts for u in trades if u.symbol == t.symbol)))
            for t in newest(trades, lambda t: t.ts)],
        f"{ph}:Ingest delay (venue to producer) (timeseries):A": [
            (t.symbol, float(t.delay_ms), ts(t.ts)) for t in trades_in_range],
        f"{ph}:Throughput: trades written per second (timeseries):A": [
            (b.job, float(b.trades) * 1000.0 / float(b.duration_ms + 1), ts(b.finished))
            for b in batches],
        f"{ph}:Batch duration (timeseries):A": [
            (b.job, float(b.duration_ms), ts(b.finished)) for b in batches],
        f"{ph}:Kafka lag: records (timeseries):A": [
            (b.job, float(b.lag_records), ts(b.finished)) for b in batches],
        f"{ph}:Kafka lag: time (timeseries):A": [
            (b.job, b.lag_ms, ts(b.finished)) for b in batches],
        f"{ph}:Latency: producer ingest to trade row written (timeseries):A": [
            (b.job, b.p50_ms, ts(b.finished)) for b in batches],
        f"{ph}:Latency: producer ingest to trade row written (timeseries):B": [
            (b.job, b.p99_ms, ts(b.finished)) for b in batches],
        f"{ph}:Rejected records per batch (timeseries):A": [
            (b.job, float(b.rejected), ts(b.finished)) for b in batches],
    }


EXPECTED = expected_rows()


def test_every_query_has_its_expected_rows() -> None:
    # A new panel needs its expectation here; an empty one would prove nothing.
    assert sorted(EXPECTED) == sorted(target_id(item) for item in TARGETS)
    assert all(EXPECTED.values())


def constants() -> dict[str, str]:
    """The dashboards' hidden constants: Grafana inserts their text as it is."""
    return {var["name"]: var["query"] for _, dashboard in dashboards()
            for var in dashboard["templating"]["list"] if var["type"] == "constant"}


def render(cql: str, start: datetime, end: datetime) -> str:
    """The statement Cassandra receives: variables as Grafana interpolates them,
    then the macros as the plugin replaces them (epoch milliseconds)."""
    variables: dict[str, Callable[[str], str]] = {
        "symbol": lambda fmt: ",".join(f"'{s}'" for s in SYMBOLS),
        "topic": lambda fmt: f"'{contract.TOPIC}'",
        "resolution": lambda fmt: RESOLUTION,
        "window_seconds": lambda fmt: str(WINDOW_S),
        "slide_seconds": lambda fmt: str(SLIDE_S),
        **{name: (lambda fmt, text=text: text) for name, text in constants().items()},
    }

    def variable(match: re.Match[str]) -> str:
        name, fmt = match.group(1), match.group(2) or ""
        assert fmt in {"", "singlequote"}, f"unexpected format {fmt!r}"
        return variables[name](fmt)

    text = re.sub(r"\$\{(\w+)(?::([^}]*))?\}", variable, cql)
    text = text.replace("$__timeFrom", str(int(start.timestamp() * 1000)))
    text = text.replace("$__timeTo", str(int(end.timestamp() * 1000)))
    assert "$" not in text, f"unsubstituted macro in {text}"
    return text


@pytest.fixture(scope="module")
def seeded_session(make_keyspace: Callable[[], str], cassandra_session: Any) -> Iterator[Any]:
    session = cassandra_session.cluster.connect(make_keyspace())
    seed(session)
    yield session
    session.shutdown()


@pytest.mark.parametrize("item", TARGETS, ids=target_id)
def test_query_returns_the_seeded_rows(
        item: tuple[str, dict[str, Any], dict[str, Any]], seeded_session: Any) -> None:
    _, panel, target = item
    rows = [tuple(row) for row in seeded_session.execute(
        render(target["target"], START, END), timeout=30)]
    # Partitions come back in token order, not in the order of the IN list.
    assert sorted(rows, key=repr) == sorted(EXPECTED[target_id(item)], key=repr)
    if panel["type"] not in SERIES_PANELS:
        return
    for row in rows:
        series_id, *values, timestamp = row
        assert isinstance(series_id, str)
        # The plugin reads numbers as float64: bigint must have been cast.
        assert values and all(isinstance(v, float) for v in values), row
        assert isinstance(timestamp, datetime), row


def test_kubernetes_ships_every_dashboard_file() -> None:
    """The cluster's Grafana gets the same files `make grafana` provisions."""
    kustomization = yaml.safe_load((GRAFANA / "kustomization.yaml").read_text())
    (generated,) = [g for g in kustomization["configMapGenerator"]
                    if g["name"] == "grafana-dashboards"]
    assert sorted(generated["files"]) == sorted(
        f"dashboards/{path.name}" for path, _ in dashboards())
