"""Errors the stack reports to a person: what went wrong and what to do about it."""

from __future__ import annotations

from contract.exits import ExitCode, ExitError


class StackError(ExitError):
    """A failure with an actionable hint, printed without a traceback by the CLI."""

    exit_code = ExitCode.USAGE

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message
