"""Run counters, the periodic status line and the final summary."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from producer.messages import KIND_ERROR, KIND_PING

log = logging.getLogger(__name__)


@dataclass
class Stats:
    """Counters of one run.

    Written by the reading loop (and send_errors by Kafka's I/O thread); read by the
    status reporter. Plain int updates are atomic enough under the GIL for a status
    line, so there is no lock on the hot path.
    """

    messages: int = 0
    trades_sent: int = 0
    rejected: int = 0
    reconnects: int = 0
    disconnected_s: float = 0.0  # time between a lost connection and the next one
    send_errors: int = 0
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    # Messages by what they turned out to be (producer.messages KIND_*).
    messages_by_kind: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)
    last_message_at: float | None = None  # time.monotonic() of the latest message

    @property
    def pings(self) -> int:
        return self.messages_by_kind[KIND_PING]

    @property
    def errors(self) -> int:
        return self.messages_by_kind[KIND_ERROR]

    def count_rejection(self, code: str) -> None:
        self.rejected += 1
        self.rejected_by_reason[code] += 1

    def status_line(self, rate: float) -> str:
        return (
            f"messages={self.messages} trades_sent={self.trades_sent} rejected={self.rejected} "
            f"pings={self.pings} errors={self.errors} reconnects={self.reconnects} "
            f"disconnected={self.disconnected_s:.1f}s send_errors={self.send_errors} "
            f"rate={rate:.1f}/s"
        )

    def summary(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        reasons = ", ".join(f"{code}={n}" for code, n in sorted(self.rejected_by_reason.items()))
        return (
            f"{self.status_line(self.trades_sent / elapsed)} elapsed={elapsed:.1f}s"
            + (f" rejected_by_reason=[{reasons}]" if reasons else "")
        )


class StatusReporter:
    """Logs a status line every `interval_s` seconds from a daemon thread."""

    def __init__(self, stats: Stats, interval_s: float) -> None:
        self._stats = stats
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="status", daemon=True)

    def __enter__(self) -> StatusReporter:
        if self._interval_s > 0:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)

    def _run(self) -> None:
        last_count, last_time = self._stats.trades_sent, time.monotonic()
        while not self._stop.wait(self._interval_s):
            count, now = self._stats.trades_sent, time.monotonic()
            rate = (count - last_count) / max(now - last_time, 1e-9)
            log.info("status: %s", self._stats.status_line(rate))
            last_count, last_time = count, now
