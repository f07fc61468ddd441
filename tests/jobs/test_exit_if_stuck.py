"""A stream job whose shutdown hangs still exits, with its code and the threads' stacks."""

from __future__ import annotations

import subprocess
import sys

from pipeline_testing import PROJECT_ROOT

STUCK = """
import threading
from jobs.stream_processor import exit_if_stuck
with exit_if_stuck(0.5, lambda: 3):
    threading.Event().wait()  # a shutdown that never returns
"""

DONE = """
import threading
import time
from jobs.stream_processor import exit_if_stuck
with exit_if_stuck(0.5, lambda: 3):
    pass
# A timer that was not cancelled fires 0.5 s later and exits with code 3. Waiting for
# every other thread to end waits for either outcome, however slow the machine: the
# cancelled timer ends at once, a live one only after it fired.
for thread in threading.enumerate():
    if thread is not threading.current_thread():
        thread.join(timeout=60)
alive = [t.name for t in threading.enumerate() if t is not threading.current_thread()]
time.sleep(1)  # and past the deadline: nothing else may fire either
print("finished", alive)
"""


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=120, check=False)


def test_a_hung_shutdown_exits_with_the_jobs_code_and_stacks() -> None:
    proc = run(STUCK)
    assert proc.returncode == 3, proc.stderr
    assert "shutdown did not finish within 0.5 s; exiting with code 3" in proc.stderr
    assert "Current thread" in proc.stderr and "<string>" in proc.stderr


def test_a_shutdown_that_finishes_is_left_alone() -> None:
    proc = run(DONE)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "finished []"
    assert "shutdown did not finish" not in proc.stderr
