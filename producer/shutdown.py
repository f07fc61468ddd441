"""SIGINT/SIGTERM as a stop request the whole producer can wait on.

A Python signal handler runs in the main thread between two bytecodes, wherever that
thread happens to be: possibly inside `Event.wait`, holding the event's internal lock
while it checks the flag, or inside a logging call, holding the stream. A handler that
set the event there would wait forever for a lock its own thread holds; one that logged
there could re-enter the stream. So the handler takes no lock at all. The interpreter
also writes each signal's number to a pipe (`signal.set_wakeup_fd`, done in C before
any Python code runs), and a watcher thread reading that pipe logs the request and sets
the event, as any other thread may.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """While inside: SIGINT/SIGTERM set `stop`; a second one raises KeyboardInterrupt.

    The second signal is for a shutdown that hangs (a flush to a broker that is gone):
    it interrupts the main thread wherever it is. Outside the main thread, where
    handlers cannot be installed, this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    received: list[int] = []

    def handler(signum: int, _frame: FrameType | None) -> None:
        # No lock, no I/O: list.append is a single C call. The watcher does the rest.
        received.append(signum)
        if len(received) > 1:
            raise KeyboardInterrupt

    watcher = threading.Thread(target=_watch, args=(read_fd, stop), name="signal-watcher",
                               daemon=True)
    watcher.start()
    previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        signal.set_wakeup_fd(previous_fd)
        os.close(write_fd)  # the watcher reads end-of-file and returns
        watcher.join(timeout=5)
        if not watcher.is_alive():
            os.close(read_fd)


def _watch(read_fd: int, stop: threading.Event) -> None:
    announced = False
    while data := os.read(read_fd, 64):
        for signum in data:
            if signum not in STOP_SIGNALS or announced:
                continue
            announced = True
            log.info("%s received: stopping after the current message",
                     signal.Signals(signum).name)
            stop.set()
