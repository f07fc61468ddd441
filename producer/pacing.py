"""Wall-clock pacing of recorded or generated messages by their event time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Pacer:
    """Sleeps so that messages go out with the spacing of their event times.

    `speed` 1 keeps the original pacing, 2 is twice as fast, 0 never waits. Event time
    that goes backwards (out-of-order trades) never makes the pacer wait: it follows
    the latest event time seen so far.
    """

    def __init__(self, speed: float, stop: threading.Event,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._speed = speed
        self._stop = stop
        self._clock = clock
        self._origin_event_ms: float | None = None
        self._origin_wall = 0.0
        self._latest_event_ms = float("-inf")

    def delay_for(self, event_ms: float | None) -> float:
        """Seconds to wait before emitting a message with this event time."""
        if self._speed <= 0 or event_ms is None:
            return 0.0
        if self._origin_event_ms is None:
            self._origin_event_ms, self._origin_wall = event_ms, self._clock()
        self._latest_event_ms = max(self._latest_event_ms, event_ms)
        due = self._origin_wall + (self._latest_event_ms - self._origin_event_ms) / (
            1000.0 * self._speed)
        return max(0.0, due - self._clock())

    def wait(self, event_ms: float | None) -> bool:
        """Wait until the message is due; False if the run was stopped meanwhile."""
        delay = self.delay_for(event_ms)
        if delay > 0:
            return not self._stop.wait(delay)
        return not self._stop.is_set()
