"""The dashboards rendered from a real pipeline run: the synthetic producer fills a fresh
topic (plus a few undecodable records), the stream job catches up into a fresh
keyspace (--available-now), and every panel of every dashboard must draw with data.

`make dashboards` runs this test with DASHBOARDS_README_DIR=docs/img to refresh the
README pictures from the same run, at a small scale.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from pipeline_testing import PROJECT_ROOT, Pipeline, produce, run_job

from grafana.render.__main__ import RenderConfig, main

pytestmark = pytest.mark.integration

# OANDA:EUR_USD is in no default list and no dashboard: it must appear from the data.
SYMBOLS = ("AAPL", "MSFT", "BINANCE:BTCUSDT", "OANDA:EUR_USD")
TRADES = 1200
EVENT_SPAN = timedelta(minutes=20)
README_SCALE = 0.5


def event_start(now: datetime) -> datetime:
    """Twenty minutes of event time ending a minute ago, all on today's UTC date (the
    stat panels read the partition of the range end's day)."""
    start = now - EVENT_SPAN - timedelta(minutes=1)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return max(start, midnight)


@pytest.fixture(scope="module")
def rendered_run(kafka_bootstrap, stack, make_topic, make_keyspace,
                 work_dir: Path) -> tuple[Pipeline, datetime, datetime]:
    root = work_dir / f"render-{uuid.uuid4().hex[:8]}"
    root.mkdir(parents=True)
    pipeline = Pipeline(make_topic(3), make_keyspace(), kafka_bootstrap, stack.host,
                        stack.cassandra_port, root)
    now = datetime.now(timezone.utc)
    start = event_start(now)
    seconds = max((now - start).total_seconds() - 60, 30)
    run_synthetic(pipeline, start, TRADES / seconds)
    # Undecodable records, so that the rejected-records panels have rows too.
    pipeline.sent.extend(produce(kafka_bootstrap, pipeline.topic, [
        (b"poison", b"\x01" + bytes(range(20)), None, "undecodable_avro"),
        (b"poison", b"\x02", None, "undecodable_avro")]))
    # Several micro-batches, so the stream_progress panels draw a lag that drains.
    run_job(pipeline, "jobs.stream_processor",
            [*pipeline.job_args(root / "checkpoints"), "--max-offsets-per-trigger", "150"],
            "stream")
    return pipeline, start - timedelta(minutes=1), datetime.now(timezone.utc)


def run_synthetic(pipeline: Pipeline, start: datetime, event_rate: float) -> None:
    log = pipeline.root / "producer.log"
    with log.open("w") as out:
        proc = subprocess.run(
            [sys.executable, "-m", "producer", "synthetic", "--bootstrap-servers",
             pipeline.bootstrap, "--topic", pipeline.topic, "--symbols", ",".join(SYMBOLS),
             "--rate", "0", "--count", str(TRADES), "--seed", "11",
             "--start-ms", str(int(start.timestamp() * 1000)),
             "--event-rate", f"{event_rate:.3f}", "--status-interval", "0"],
            cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT, timeout=240, check=False)
    assert proc.returncode == 0, log.read_text()[-3000:]


def render(pipeline: Pipeline, start: datetime, end: datetime, out: Path,
           scale: float) -> int:
    return main(RenderConfig(
        out_dir=out, host=pipeline.host, port=pipeline.cassandra_port,
        keyspace=pipeline.keyspace, time_from=start.isoformat(), time_to=end.isoformat(),
        variables={"topic": (pipeline.topic,)}, scale=scale))


def symbol_options(pipeline: Pipeline) -> list[str]:
    from grafana.render.source import CassandraSource
    from grafana.render.variables import query_options

    cluster, source = CassandraSource.connect(pipeline.host, pipeline.cassandra_port,
                                              pipeline.keyspace)
    try:
        dashboard = json.loads((PROJECT_ROOT / "grafana" / "dashboards" /
                                "market-overview.json").read_text())
        variable = next(v for v in dashboard["templating"]["list"] if v["name"] == "symbol")
        rows = source.variable_options(variable["query"]["query"])
        return [option.value for option in query_options(variable, rows)]
    finally:
        cluster.shutdown()


def test_every_dashboard_renders_from_the_pipeline_with_no_empty_panel(
        rendered_run, caplog) -> None:
    pipeline, start, end = rendered_run
    out = pipeline.root / "dashboards"
    code = render(pipeline, start, end, out, 1.0)
    failures = [r.getMessage() for r in caplog.records if "panel failed" in r.getMessage()]
    assert code == 0 and not failures, "\n".join(failures)
    assert sorted(p.name for p in out.glob("*.png")) == [
        "market-overview.png", "moving-means.png", "pipeline-health.png"]
    # No symbol was named: every dashboard's symbol variable listed the traded ones.
    assert symbol_options(pipeline) == sorted(SYMBOLS)

    readme_dir = os.environ.get("DASHBOARDS_README_DIR")
    if readme_dir:
        target = PROJECT_ROOT / readme_dir
        assert render(pipeline, start, end, target, README_SCALE) == 0
        for png in target.glob("*.png"):
            assert png.stat().st_size < 150_000, f"{png} is too big for the README"
