"""What the provisioned dashboards promise, read from their JSON: symbols come from the
data, partition bounds are computed in UTC by Cassandra, every candle query binds the
whole partition key, and the bucket list reaches as far back as the job keeps candles."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from jobs.candle_levels import retention
from jobs.candles import RESOLUTIONS, bucket_unit

DASHBOARDS = Path(__file__).resolve().parents[2] / "grafana" / "dashboards"
LOADED = {p.stem: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}
# Sub-minute candles are for short views: the panels read the last 8 UTC days of them.
SUB_MINUTE_VIEW = timedelta(days=8)


def panels(dashboard: dict) -> Iterator[dict]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


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
