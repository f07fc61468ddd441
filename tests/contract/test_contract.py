"""The shared contract: exit codes, the environment rule, durations, contact points."""

from __future__ import annotations

from datetime import timedelta

import pytest

import contract
from contract import env as envvars
from contract.cassandra import contact_points
from contract.exits import ExitCode, ExitError, UsageError, exit_code, is_permanent


def test_each_error_maps_to_its_exit_code() -> None:
    class Refused(ExitError):
        exit_code = ExitCode.AUTH

    assert exit_code(None) == ExitCode.OK == 0
    assert exit_code(UsageError("bad option")) == ExitCode.USAGE == 2
    assert exit_code(Refused("token")) == ExitCode.AUTH == 3
    assert exit_code(ExitError("no broker", ExitCode.KAFKA)) == 4
    assert exit_code(KeyboardInterrupt()) == 130
    assert exit_code(RuntimeError("bug")) == ExitCode.INTERNAL == 1
    assert str(UsageError("bad option")) == "bad option"


def test_only_usage_and_auth_are_permanent() -> None:
    assert [code for code in ExitCode if is_permanent(code)] == [2, 3]
    assert not is_permanent(1) and not is_permanent(137)


@pytest.mark.parametrize(("environ", "expected"), [
    ({}, "d"), ({"X": ""}, "d"), ({"X": "  \t"}, "d"), ({"X": " v "}, "v"), ({"X": "v"}, "v")])
def test_a_blank_variable_is_unset(environ: dict[str, str], expected: str) -> None:
    assert envvars.get(environ, "X", "d") == expected
    assert envvars.optional(environ, "X") == (None if expected == "d" else expected)


@pytest.mark.parametrize(("value", "expected"), [
    (None, False), ("", False), ("1", True), ("TRUE", True), (" yes ", True), ("on", True),
    ("0", False), ("no", False), ("maybe", False)])
def test_flags(value: str | None, expected: bool) -> None:
    environ = {} if value is None else {"F": value}
    assert envvars.flag(environ, "F") is expected
    assert envvars.flag({}, "F", default=True) is True


def test_durations_spelled_for_spark() -> None:
    assert contract.spell_duration(contract.MOVING_WINDOW) == "300 seconds"
    assert contract.spell_duration(timedelta(seconds=30)) == "30 seconds"
    with pytest.raises(ValueError):
        contract.spell_duration(timedelta(milliseconds=1500))


def test_contact_points() -> None:
    assert contact_points(" a, b,,c ") == ["a", "b", "c"]
    assert contact_points(("a ", " ")) == ["a"]


def test_defaults_agree() -> None:
    assert contract.BOOTSTRAP_SERVERS == "127.0.0.1:9092"
    assert (contract.TOPIC, contract.DEAD_LETTER_TOPIC) == ("Market", "Market.rejected")
    assert (contract.CASSANDRA_PORT, contract.KEYSPACE) == (9042, "market")
    assert contract.SCHEMA_PATH.is_file() and contract.CQL_DIR.is_dir()


def test_a_secret_is_kept_as_set() -> None:
    assert envvars.secret({"P": " pa ss "}, "P") == " pa ss "
    assert envvars.secret({"P": ""}, "P") is None
    assert envvars.secret({}, "P") is None
