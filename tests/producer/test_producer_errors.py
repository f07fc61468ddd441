"""The producer's errors end the process with the contract's exit codes."""

from __future__ import annotations

from contract.exits import ExitCode, exit_code, is_permanent
from producer.errors import FatalError
from producer.finnhub import AuthenticationError


def test_each_error_maps_to_its_exit_code() -> None:
    # The numbers are what `make run` and Kubernetes see: spelled out, not derived.
    assert exit_code(FatalError("bad option", ExitCode.USAGE)) == 2
    assert exit_code(FatalError("broker down", ExitCode.KAFKA)) == 4
    assert exit_code(AuthenticationError("token refused")) == 3
    assert exit_code(FatalError("no code given")) == 1
    assert exit_code(KeyboardInterrupt()) == 130


def test_a_rejected_token_is_permanent_and_kafka_is_not() -> None:
    assert is_permanent(exit_code(AuthenticationError("token refused")))
    assert not is_permanent(exit_code(FatalError("broker down", ExitCode.KAFKA)))


def test_the_message_is_the_error_text() -> None:
    assert str(FatalError("replay file not found: x", ExitCode.USAGE)) == (
        "replay file not found: x")
