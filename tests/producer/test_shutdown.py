"""SIGINT/SIGTERM reach the producer's stop event whatever the main thread is doing.

Each case runs in its own interpreter: signal handlers and the wakeup descriptor are
process-wide, and a handler that deadlocks must fail the test, not hang the session.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRELUDE = """
import logging, os, signal, threading
from producer.shutdown import stop_on_signals
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
stop = threading.Event()
"""


def run(script: str) -> subprocess.CompletedProcess[str]:
    code = textwrap.dedent(PRELUDE) + textwrap.dedent(script)
    try:
        return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                              text=True, timeout=120)
    except subprocess.TimeoutExpired as err:
        raise AssertionError(f"the process hung:\n{err.stdout}\n{err.stderr}") from None


def test_a_signal_while_the_main_thread_holds_the_events_lock_still_stops() -> None:
    # Event.wait holds the event's internal lock while it checks the flag; a paced
    # producer waits on the event hundreds of times a second, so a signal lands there
    # sooner or later. A handler that set the event itself would deadlock here.
    result = run("""
        with stop_on_signals(stop):
            with stop._cond:
                os.kill(os.getpid(), signal.SIGTERM)
                for _ in range(100_000):  # the handler runs at a bytecode boundary in here
                    pass
            print("stopped" if stop.wait(60) else "not stopped", flush=True)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "stopped\n"
    assert "INFO SIGTERM received: stopping after the current message" in result.stderr


def test_a_second_signal_interrupts_the_shutdown() -> None:
    result = run("""
        try:
            with stop_on_signals(stop):
                os.kill(os.getpid(), signal.SIGINT)
                assert stop.wait(60)
                os.kill(os.getpid(), signal.SIGTERM)
                for _ in range(100_000):
                    pass
                print("not interrupted", flush=True)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
    """)
    assert (result.returncode, result.stdout) == (0, "interrupted\n"), result.stderr
    assert result.stderr.count("received: stopping") == 1


def test_the_previous_handlers_are_back_after_the_block() -> None:
    result = run("""
        def mine(signum, frame):
            print("mine", signal.Signals(signum).name, flush=True)
        signal.signal(signal.SIGTERM, mine)
        with stop_on_signals(stop):
            pass
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert signal.set_wakeup_fd(-1) == -1
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(100_000):
            pass
        print("set" if stop.is_set() else "not set", flush=True)
    """)
    assert (result.returncode, result.stdout) == (0, "mine SIGTERM\nnot set\n"), result.stderr
