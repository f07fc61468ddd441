"""The producer's fatal errors; their exit codes are contract.exits.ExitCode.

contract.exits.exit_code() maps an error to the process's exit code, so the producer
and `make run`'s supervisor read the same numbers.
"""

from __future__ import annotations

from contract.exits import ExitCode, ExitError


class FatalError(ExitError):
    """An error that ends the producer with a one-line message and an exit code.

    FatalError(message, ExitCode.KAFKA); a subclass may fix its code instead.
    """

    def __init__(self, message: str, exit_code: ExitCode | None = None) -> None:
        super().__init__(message, exit_code)

