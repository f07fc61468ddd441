"""One log line per micro-batch and per query end, from Spark's listener events."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable
from typing import Any

from pyspark.sql.streaming import StreamingQueryListener

log = logging.getLogger("jobs.progress")


_CAUSE = re.compile(r"^(Caused by: )?[\w.$]+(Exception|Error)\b[^:]*: ")


def error_summary(text: str) -> str:
    """The telling line of a query's error: the innermost `SomeException: message`.

    A failure inside foreachBatch arrives wrapped in py4j's proxy exception, with the
    Python traceback and the JVM stack around the actual cause.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    causes = [line for line in lines if _CAUSE.match(line)]
    return causes[-1] if causes else (lines[0] if lines else text)


def progress_line(progress: Any) -> str:
    durations = progress.durationMs or {}
    return (
        f"progress query={progress.name} batch={progress.batchId}"
        f" input_rows={progress.numInputRows}"
        f" rows_per_s={progress.processedRowsPerSecond:.1f}"
        f" trigger_ms={durations.get('triggerExecution', 0)}"
    )


class ProgressLogger(StreamingQueryListener):
    """Logs progress as Spark reports it: no polling of the queries.

    on_progress, if given, also receives each progress (the stream job learns from it
    where the query stands in every partition).
    """

    def __init__(self, on_progress: Callable[[Any], None] | None = None) -> None:
        super().__init__()
        self.on_progress = on_progress

    def onQueryStarted(self, event: Any) -> None:
        log.info("started query=%s id=%s run=%s", event.name, event.id, event.runId)

    def onQueryProgress(self, event: Any) -> None:
        log.debug("%s", progress_line(event.progress))
        if self.on_progress is not None:
            self.on_progress(event.progress)

    def onQueryIdle(self, event: Any) -> None:
        pass

    def onQueryTerminated(self, event: Any) -> None:
        if event.exception:
            log.error("terminated query id=%s: %s", event.id, error_summary(event.exception))
        else:
            log.info("terminated query id=%s", event.id)


def configure_logging(level: int = logging.INFO) -> None:
    """Log lines to stderr for the entry points; py4j's per-callback chatter stays out."""
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    logging.getLogger("cassandra").setLevel(logging.WARNING)
    logging.getLogger("kafka").setLevel(logging.WARNING)  # the lag probe's client
