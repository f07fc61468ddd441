"""Keep the pipeline's programs running: restart on crash with backoff, stop a crash loop.

Each program's output goes to its own log file and, prefixed with its name and unless
echo is off (`make run` with its status line), to the console. A program that exits 0
has finished its work and is not restarted; an exit code listed as fatal (bad token,
bad configuration) stops everything, since a restart would fail the same way.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

# How often the supervisor looks at its programs and at a stop request.
TICK_S = 0.5


@dataclass(frozen=True)
class Program:
    name: str
    command: list[str]
    fatal_exit_codes: frozenset[int] = frozenset()
    # The program's whole environment; None: the supervisor's env.
    env: dict[str, str] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class RestartPolicy:
    initial_backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    # A program up for this long is healthy again: its backoff starts over.
    healthy_after_s: float = 60.0
    crash_loop_count: int = 5
    crash_loop_window_s: float = 300.0


class CrashLoop(RuntimeError):
    """A program crashed too often in too short a time."""


@dataclass
class _Child:
    program: Program
    log_file: Path
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    backoff_s: float = 0.0
    restart_at: float = 0.0
    crashes: deque = field(default_factory=deque)
    last_lines: deque = field(default_factory=lambda: deque(maxlen=20))
    restarts: int = 0
    done: bool = False


def next_backoff(previous_s: float, policy: RestartPolicy, rng: random.Random) -> float:
    """Exponential backoff with +-20 % jitter, capped."""
    base = policy.initial_backoff_s if previous_s <= 0 else min(previous_s * 2,
                                                                policy.max_backoff_s)
    return min(base * rng.uniform(0.8, 1.2), policy.max_backoff_s)


def is_crash_loop(crash_times: deque, now: float, policy: RestartPolicy) -> bool:
    while crash_times and now - crash_times[0] > policy.crash_loop_window_s:
        crash_times.popleft()
    return len(crash_times) >= policy.crash_loop_count


class Supervisor:
    def __init__(self, programs: list[Program], log_dir: Path, env: dict[str, str],
                 policy: RestartPolicy | None = None, seed: int | None = None,
                 echo: bool = True) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.echo = echo
        self.children = [_Child(p, log_dir / f"{p.name}.log") for p in programs]
        self.env = env
        self.policy = policy or RestartPolicy()
        self.rng = random.Random(seed)
        self.stopping = threading.Event()

    def _start(self, child: _Child) -> None:
        env = self.env if child.program.env is None else child.program.env
        child.proc = subprocess.Popen(
            child.program.command, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )
        child.started_at = time.monotonic()
        log.info("%s: started (pid %d), log %s", child.program.name, child.proc.pid,
                 child.log_file)
        threading.Thread(target=self._pump, args=(child, child.proc), daemon=True).start()

    def _pump(self, child: _Child, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        with open(child.log_file, "ab") as out:
            for raw in proc.stdout:
                out.write(raw)
                out.flush()
                line = raw.decode(errors="replace").rstrip()
                child.last_lines.append(line)
                if self.echo:
                    sys.stdout.write(f"[{child.program.name}] {line}\n")
                    sys.stdout.flush()

    def _on_exit(self, child: _Child, code: int, now: float) -> None:
        name = child.program.name
        if code == 0:
            log.info("%s: finished (exit 0); not restarted", name)
            child.done = True
            return
        if code in child.program.fatal_exit_codes:
            raise CrashLoop(f"{name} exited with {code}, a configuration error that a restart "
                            f"cannot fix. Last lines:\n" + "\n".join(child.last_lines))
        if now - child.started_at >= self.policy.healthy_after_s:
            child.backoff_s = 0.0
        child.crashes.append(now)
        if is_crash_loop(child.crashes, now, self.policy):
            raise CrashLoop(
                f"{name} crashed {len(child.crashes)} times within "
                f"{self.policy.crash_loop_window_s:.0f}s (last exit code {code}); giving up. "
                f"Full log: {child.log_file}. Last lines:\n" + "\n".join(child.last_lines))
        child.backoff_s = next_backoff(child.backoff_s, self.policy, self.rng)
        child.restart_at = now + child.backoff_s
        child.restarts += 1
        log.warning("%s: exited with code %d; restarting in %.1fs", name, code, child.backoff_s)

    def _tick(self) -> None:
        now = time.monotonic()
        for child in self.children:
            if child.done:
                continue
            if child.proc is None:
                if now >= child.restart_at:
                    self._start(child)
                continue
            code = child.proc.poll()
            if code is not None:
                child.proc = None
                self._on_exit(child, code, now)

    def run(self) -> int:
        """Supervise until every program finished, a crash loop, or stop() (SIGINT/SIGTERM)."""
        try:
            while not self.stopping.is_set() and not all(c.done for c in self.children):
                self._tick()
                # A sleep, not stopping.wait(): stop() runs as the SIGINT/SIGTERM handler
                # in this same thread, and setting the event from inside its own wait()
                # deadlocks on the event's lock. The next tick sees the request.
                time.sleep(TICK_S)
        except CrashLoop as err:
            log.error("%s", err)
            return 1
        finally:
            self.terminate_all()
        return 0

    def stop(self, *_: object) -> None:
        self.stopping.set()

    def terminate_all(self, timeout_s: float = 30.0) -> None:
        running = [c.proc for c in self.children if c.proc and c.proc.poll() is None]
        # SIGTERM to the program alone lets it shut down in order (the stream job stops
        # its queries, then its JVM); the whole group is killed only past the timeout.
        for proc in running:
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for proc in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            # Whatever is left of the group (a JVM whose driver is gone, or all of it
            # past the timeout) goes now: nothing of the pipeline outlives `make run`.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
