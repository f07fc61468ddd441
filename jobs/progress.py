"""Logging of the jobs: the log format, and the telling line of a query's error."""

from __future__ import annotations

import logging
import re
import sys

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
