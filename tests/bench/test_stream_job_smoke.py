"""A seconds-long run of the stream job benchmark: the harness works end to end.

Timings are never asserted here (they belong to `make bench`); the counts are.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


def test_benchmark_harness_runs_and_writes_its_results(stack, tmp_path: Path) -> None:
    out = tmp_path / "bench"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.stream_job", "--runs", "1", "--drain-count", "2000",
         "--rate", "100", "--duration", "8", "--warmup", "2", "--lead", "2",
         "--out", str(out)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((out / "results.json").read_text())
    run = result["runs"][0]
    # Every drained trade (twice --drain-count: a cold batch, then warm ones) went
    # through the job, and trades sent under load were measured.
    assert run["drain_trades"] == 2 * 2000
    assert run["floor_records"] == 2 * 2000
    assert 0 < run["latency_trades"] <= 100 * 10
    assert run["sink_ceiling_rate"] > 0 and run["drain_job_rate"] > 0
    assert run["sink_ceiling_warm_rate"] > 0 and run["drain_job_warm_rate"] > 0
    assert run["floor_rate"] > 0 and run["floor_warm_rate"] > 0
    assert {"producer", "job (drain)", "job (latency)"} <= set(run["peak_rss_mib"])
    assert (out / "stream_job.png").stat().st_size > 10_000
    assert "| job / ceiling |" in proc.stdout
    assert "| job / ceiling, warm |" in proc.stdout
    assert "| floor / ceiling |" in proc.stdout
