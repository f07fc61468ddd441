"""A job that cannot start for a reason a restart will not fix exits with the usage
code and one line saying why, not a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from contract.exits import ExitCode

ROOT = Path(__file__).resolve().parents[2]


def test_missing_connector_jars_exit_with_the_usage_code(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "jobs.recompute", "--from", "2024-03-01T00:00",
         "--to", "2024-03-02T00:00", "--jars-dir", str(tmp_path / "no-jars"),
         "--class-archive", "none"],
        cwd=ROOT, env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
        timeout=600, check=False)
    assert proc.returncode == ExitCode.USAGE, proc.stderr
    assert "no connector jars in" in proc.stderr and "make jars" in proc.stderr
    assert "Traceback" not in proc.stderr
