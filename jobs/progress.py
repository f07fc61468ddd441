"""Logging of the jobs: the log format, the telling line of a query's error, and a
query's last progress as its own micro-batches see it."""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Callable
from typing import Any, NoReturn

from pyspark.sql.streaming import StreamingQuery

from contract.exits import ExitError, exit_code
from jobs.spark_internals import batch_end_offsets

_CAUSE = re.compile(r"^(Caused by: )?[\w.$]+(Exception|Error)\b[^:]*: ")


def error_summary(text: str) -> str:
    """The telling line of a query's error: the innermost `SomeException: message`.

    A failure inside foreachBatch arrives wrapped in py4j's proxy exception, with the
    Python traceback and the JVM stack around the actual cause.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    causes = [line for line in lines if _CAUSE.match(line)]
    return causes[-1] if causes else (lines[0] if lines else text)


def configure_logging(level: int = logging.INFO) -> None:
    """Log lines to stderr for the entry points; py4j's per-callback chatter stays out."""
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    logging.getLogger("cassandra").setLevel(logging.WARNING)
    logging.getLogger("kafka").setLevel(logging.WARNING)  # the lag probe's client


def run_entry_point(run: Callable[[], int], log: logging.Logger) -> NoReturn:
    """A job's __main__: logging set up, then exit with run()'s code, or with the code
    of the ExitError it raised (a usage error: one log line, no traceback)."""
    configure_logging()
    try:
        sys.exit(run())
    except ExitError as error:
        log.error("%s", error)
        sys.exit(exit_code(error))


class QueryProgress:
    """The progress of a streaming query's last finished micro-batch, for its own
    foreachBatch function.

    The function cannot find its query itself: the DataFrame it gets belongs to the
    query's cloned session, whose query manager does not know the query
    (`batch.sparkSession.streams.get(id)` is None). So the query is attached once
    `start()` returns it; until then (the first batch may already be running) there
    is no progress. Polled rather than heard from a listener: for a Python listener,
    PySpark converts each event by iterating JVM maps until the JVM throws, and every
    such exception costs a dozen class-path searches.
    """

    def __init__(self) -> None:
        self._query: StreamingQuery | None = None
        self._attached = threading.Event()

    def attach(self, query: StreamingQuery) -> None:
        self._query = query
        self._attached.set()

    def batch_end_offsets(self, batch_id: int, timeout_s: float = 600.0) -> list[str] | None:
        """The end offsets of a batch of the attached query (see jobs.spark_internals),
        waiting for `start()` to return the query when the first batch asks early."""
        if not self._attached.wait(timeout_s):
            raise RuntimeError(f"the query was not attached within {timeout_s:.0f} s")
        return batch_end_offsets(self._query, batch_id)

    def last(self) -> dict[str, Any] | None:
        query = self._query
        return query.lastProgress if query is not None else None
