"""Wall-clock pacing of recorded or generated messages by their event time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

# A gap in event time longer than this is not waited out (an overnight pause in a
# recording, a clock jump): pacing starts again from the next message.
DEFAULT_MAX_GAP_MS = 60_000


def _wait(stop: threading.Event, delay_s: float) -> bool:
    """Wait up to delay_s; False if stopped meanwhile."""
    if delay_s > 0:
        return not stop.wait(min(delay_s, threading.TIMEOUT_MAX))
    return not stop.is_set()


class Pacer:
    """Sleeps so that messages go out with the spacing of their event times.

    `speed` 1 keeps the original pacing, 2 is twice as fast, 0 never waits. Event time
    that goes backwards (out-of-order trades) never makes the pacer wait: it follows
    the latest event time seen so far. A jump forward of more than `max_gap_ms` is not
    waited for: the timeline restarts at that message.
    """

    def __init__(self, speed: float, stop: threading.Event,
                 clock: Callable[[], float] = time.monotonic,
                 max_gap_ms: float = DEFAULT_MAX_GAP_MS) -> None:
        self._speed = speed
        self._stop = stop
        self._clock = clock
        self._max_gap_ms = max_gap_ms
        self._origin_event_ms: float | None = None
        self._origin_wall = 0.0
        self._latest_event_ms = float("-inf")

    def delay_for(self, event_ms: float | None) -> float:
        """Seconds to wait before emitting a message with this event time."""
        if self._speed <= 0 or event_ms is None:
            return 0.0
        if (self._origin_event_ms is None
                or event_ms - self._latest_event_ms > self._max_gap_ms):
            # The first message, or a gap too long to wait out.
            self._origin_event_ms, self._origin_wall = event_ms, self._clock()
        self._latest_event_ms = max(self._latest_event_ms, event_ms)
        due = self._origin_wall + (self._latest_event_ms - self._origin_event_ms) / (
            1000.0 * self._speed)
        return max(0.0, due - self._clock())

    def wait(self, event_ms: float | None) -> bool:
        """Wait until the message is due; False if the run was stopped meanwhile."""
        return _wait(self._stop, self.delay_for(event_ms))


class WallClockCap:
    """Never lets event time run ahead of the wall clock: waits only while a message's
    event time (epoch ms) is later than now. Generated traffic at full speed thus
    stays valid (never future-dated) however fast it is produced."""

    def __init__(self, stop: threading.Event, now_ms: Callable[[], float]) -> None:
        self._stop = stop
        self._now_ms = now_ms

    def delay_for(self, event_ms: float | None) -> float:
        if event_ms is None:
            return 0.0
        return max(0.0, (event_ms - self._now_ms()) / 1000.0)

    def wait(self, event_ms: float | None) -> bool:
        return _wait(self._stop, self.delay_for(event_ms))
