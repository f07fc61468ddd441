"""Exit codes of the pipeline's programs, and the typed errors that map to them.

A supervisor (`make run`, Kubernetes) restarts a program that exits with a code a
restart may fix; it leaves one that exited with a permanent code alone.
exit_code() is the one place that maps an error to its code.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    INTERNAL = 1  # a bug, or a failure a restart may fix (a server down)
    USAGE = 2  # bad options or settings (argparse exits with 2 as well)
    AUTH = 3  # credentials refused (Finnhub's token)
    KAFKA = 4  # Kafka unreachable at start, or a topic missing
    UNDELIVERED = 5  # the run ended, but some records were not confirmed
    INTERRUPTED = 130  # a second SIGINT/SIGTERM cut the shutdown short


# What a restart cannot fix: the same settings would fail the same way.
PERMANENT = frozenset({ExitCode.USAGE, ExitCode.AUTH})


class ExitError(Exception):
    """An error that ends a program with a one-line message and its exit code."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str, exit_code: ExitCode | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = ExitCode(exit_code)


class UsageError(ExitError):
    """Options or settings that cannot run; a restart with them fails again."""

    exit_code = ExitCode.USAGE


def exit_code(error: BaseException | None) -> ExitCode:
    """The exit code for a program that ends with this error (None: it did not fail)."""
    if error is None:
        return ExitCode.OK
    if isinstance(error, ExitError):
        return error.exit_code
    if isinstance(error, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    return ExitCode.INTERNAL


def is_permanent(code: int) -> bool:
    """Whether a program that exited with this code should not be restarted."""
    return code in PERMANENT
