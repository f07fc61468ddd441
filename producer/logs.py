"""Logging to stderr through a formatter that masks the Finnhub token everywhere."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

from producer.finnhub import redact


class RedactingFormatter(logging.Formatter):
    """Masks token query parameters and known secret values in the final text.

    Applied to the formatted line, tracebacks included, so a third-party library
    that puts the URL in an exception or a log message cannot leak the token.
    """

    def __init__(self, fmt: str, secrets: Iterable[str] = ()) -> None:
        super().__init__(fmt)
        self._secrets = tuple(s for s in secrets if s)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self._secrets)


def setup_logging(level: str, secrets: Iterable[str] = ()) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s", secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Client libraries are chatty at INFO (every connection); their warnings matter.
    for name in ("kafka", "websocket"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
