"""Fatal errors and the process exit codes they map to."""

from __future__ import annotations

EXIT_OK = 0
EXIT_INTERNAL = 1  # a bug or an unexpected environment problem
EXIT_USAGE = 2  # bad options or configuration (argparse uses 2 as well)
EXIT_AUTH = 3  # Finnhub rejected the API token (HTTP 401/403 on the handshake)
EXIT_KAFKA = 4  # Kafka unreachable at start, or a topic is missing
EXIT_UNDELIVERED = 5  # the run ended but some records were not confirmed by Kafka
EXIT_INTERRUPTED = 130  # a second SIGINT/SIGTERM cut the shutdown short


class FatalError(Exception):
    """An error that ends the producer with a one-line message and an exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code
