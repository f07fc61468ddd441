"""Fixtures for producer tests: run `python -m producer` as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
for path in (PROJECT_ROOT / "tests", Path(__file__).resolve().parent):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))  # `finnhub_server` and `producer_testing`
# pytest puts tests/ on sys.path, where tests/producer/ looks like a namespace package
# named `producer`; with the project root on the path too, the real package wins.
if str(PROJECT_ROOT) not in sys.path:
    sys.path.append(str(PROJECT_ROOT))

from producer_testing import ProducerRun  # noqa: E402


@pytest.fixture
def run_producer(tmp_path: Path) -> Iterator[Callable[..., ProducerRun]]:
    """Factory: start the producer CLI with extra environment variables."""
    runs: list[ProducerRun] = []

    def start(*args: str, env: dict[str, str] | None = None) -> ProducerRun:
        log_path = tmp_path / f"producer-{len(runs)}.log"
        child_env = {k: v for k, v in os.environ.items()
                     if not k.startswith(("FINNHUB_", "KAFKA_", "SYNTHETIC_", "REPLAY_"))}
        child_env.update(env or {})
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "producer", *args], cwd=PROJECT_ROOT, env=child_env,
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT)
        run = ProducerRun(process, log_path)
        runs.append(run)
        return run

    yield start
    for run in runs:
        if run.process.poll() is None:
            run.process.kill()
            run.process.wait()


