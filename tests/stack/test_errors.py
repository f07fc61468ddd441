"""The stack's clear errors: missing or old Java, missing Maven, taken port, early death."""

from __future__ import annotations

import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from stack import jars, process
from stack.errors import StackError


def _fake_java(tmp_path: Path, version_line: str) -> str:
    # A stand-in for an old JDK: prints what `java -version` prints on stderr.
    script = tmp_path / "java"
    script.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_missing_java_is_reported_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="was not found") as err:
        process.require_java(str(tmp_path / "no-such-java"))
    assert "JDK 17" in err.value.hint


@pytest.mark.parametrize(
    ("line", "major"),
    [('openjdk version "11.0.22" 2024-01-16', 11), ('java version "1.8.0_392"', 8)],
)
def test_old_java_is_refused(tmp_path: Path, line: str, major: int) -> None:
    java = _fake_java(tmp_path, line)
    assert process.java_major_version(java) == major
    with pytest.raises(StackError, match=f"Java {major} was found"):
        process.require_java(java)


@pytest.mark.parametrize(
    ("line", "major"),
    [('openjdk version "17.0.10" 2024-01-16', 17), ('openjdk version "21" 2023-09-19', 21)],
)
def test_java_17_or_newer_is_accepted(tmp_path: Path, line: str, major: int) -> None:
    java = _fake_java(tmp_path, line)
    assert process.java_major_version(java) == major
    process.require_java(java)  # raises if refused
    # The bound is inclusive: one above the version refuses it.
    with pytest.raises(StackError, match=f"Java {major} was found"):
        process.require_java(java, minimum=major + 1)


def test_installed_java_is_accepted() -> None:
    # The machine's real JDK (17+ is a prerequisite), read the way the stack reads it.
    assert process.java_major_version("java") >= 17
    process.require_java("java")


def test_missing_maven_is_reported(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="Maven") as err:
        jars.resolve(tmp_path, "kafka", maven=str(tmp_path / "no-such-mvn"))
    assert "install Maven" in err.value.hint


def test_taken_port_names_the_owner() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(StackError, match=f"127.0.0.1:{port} \\(kafka\\) is already taken") as e:
            process.require_free_ports("127.0.0.1", {"kafka": port})
    # This very test process holds the port, so the message can name it.
    assert "pid" in str(e.value)


def test_server_dying_during_start_up_shows_its_log(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    pid = process.start_daemon(
        [sys.executable, "-c", "print('Address already in use: bind'); raise SystemExit(1)"],
        log, tmp_path, {},
    )
    with pytest.raises(StackError, match="exited during start-up") as err:
        process.wait_until(lambda: False, what="demo", timeout_s=30, pid=pid, log_file=log)
    assert "Address already in use" in str(err.value)


def test_wait_never_hangs(tmp_path: Path) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with pytest.raises(StackError, match="not ready after 1s"):
            process.wait_until(lambda: False, what="demo", timeout_s=1, pid=sleeper.pid,
                               log_file=tmp_path / "none.log")
    finally:
        sleeper.kill()
        sleeper.wait()
