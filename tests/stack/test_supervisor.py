"""The `make run` supervisor with real child processes: restart, finish, fatal, crash loop."""

from __future__ import annotations

import random
import sys
from collections import deque
from pathlib import Path

from stack.supervisor import Program, RestartPolicy, Supervisor, is_crash_loop, next_backoff

FAST = RestartPolicy(initial_backoff_s=0.05, max_backoff_s=0.2, healthy_after_s=60,
                     crash_loop_count=3, crash_loop_window_s=60)


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    policy = RestartPolicy(initial_backoff_s=1, max_backoff_s=10)
    rng = random.Random(1)
    delays, previous = [], 0.0
    for _ in range(6):
        previous = next_backoff(previous, policy, rng)
        delays.append(previous)
    # Nominal 1, 2, 4, 8, 10, 10 with at most 20 % jitter, never above the cap.
    for delay, nominal in zip(delays, [1, 2, 4, 8, 10, 10], strict=True):
        assert nominal * 0.8 <= delay <= min(nominal * 1.2, 10)


def test_crash_loop_counts_only_recent_crashes() -> None:
    policy = RestartPolicy(crash_loop_count=3, crash_loop_window_s=10)
    assert not is_crash_loop(deque([0.0, 1.0, 12.0]), now=12.0, policy=policy)
    assert is_crash_loop(deque([5.0, 8.0, 12.0]), now=12.0, policy=policy)


def test_crashing_program_is_restarted_then_reported_as_a_crash_loop(tmp_path: Path,
                                                                     capsys) -> None:
    counter = tmp_path / "runs"
    crasher = Program("crasher", _python(
        f"p = open({str(counter)!r}, 'a'); p.write('x'); p.close(); "
        "print('boom: cannot reach the broker'); raise SystemExit(7)"))
    code = Supervisor([crasher], tmp_path / "logs", env={}, policy=FAST, seed=1).run()
    assert code == 1
    assert counter.read_text() == "xxx"  # started, restarted twice, then given up
    assert "boom: cannot reach the broker" in (tmp_path / "logs" / "crasher.log").read_text()
    assert "[crasher] boom" in capsys.readouterr().out


def test_finished_program_is_not_restarted(tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    once = Program("once", _python(f"open({str(counter)!r}, 'a').write('x')"))
    assert Supervisor([once], tmp_path / "logs", env={}, policy=FAST).run() == 0
    assert counter.read_text() == "x"


def test_fatal_exit_code_stops_everything_without_restart(tmp_path: Path) -> None:
    fatal = Program("producer", _python("print('401: token rejected'); raise SystemExit(3)"),
                    fatal_exit_codes=frozenset({3}))
    sleeper = Program("job", _python("import time; time.sleep(120)"))
    supervisor = Supervisor([fatal, sleeper], tmp_path / "logs", env={}, policy=FAST)
    assert supervisor.run() == 1
    # The sleeping job was terminated on the way out, not left behind.
    assert all(child.proc is None or child.proc.poll() is not None
               for child in supervisor.children)


def test_without_echo_output_goes_to_the_log_only(tmp_path: Path, capsys) -> None:
    talker = Program("talker", _python("print('batch=1 records=3')"))
    assert Supervisor([talker], tmp_path / "logs", env={}, policy=FAST, echo=False).run() == 0
    assert "batch=1 records=3" in (tmp_path / "logs" / "talker.log").read_text()
    assert "batch=1" not in capsys.readouterr().out
