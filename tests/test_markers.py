"""Tests are marked by the fixtures they use, before `-m` selects by the marks."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from marks_testing import mark_by_fixtures

ROOT = Path(__file__).resolve().parent.parent
WAIT_TESTS = "tests/jobs/test_cassandra_wait.py"


@dataclass
class FakeItem:
    fixturenames: tuple[str, ...]
    marks: list[str] = field(default_factory=list)

    def get_closest_marker(self, name: str) -> str | None:
        return name if name in self.marks else None

    def add_marker(self, name: str) -> None:
        self.marks.append(name)


def test_the_fixture_closure_decides_the_marks() -> None:
    items = [FakeItem(("tmp_path",)), FakeItem(("make_keyspace", "cassandra_session", "stack")),
             FakeItem(("spark", "stack_config")), FakeItem(("spark", "stack")),
             FakeItem(("stack",), ["integration"])]
    mark_by_fixtures(items)
    assert [item.marks for item in items] == [
        [], ["integration"], ["spark"], ["integration", "spark"], ["integration"]]


def collected(*args: str) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         *args], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode in (0, 5), proc.stdout + proc.stderr  # 5: nothing selected
    return [line for line in proc.stdout.splitlines() if "::" in line]


@pytest.mark.parametrize(("selection", "expected"), [
    ("not integration and not faults",
     ["test_an_unreachable_cassandra_is_retried_until_the_wait_is_over"]),
    ("integration", ["test_a_missing_keyspace_fails_without_retrying"]),
])
def test_the_unit_selection_leaves_out_what_needs_the_stack(
        selection: str, expected: list[str]) -> None:
    # That module carries no mark of its own: one of its tests asks for the stack.
    assert collected("-m", selection, WAIT_TESTS) == [f"{WAIT_TESTS}::{name}"
                                                       for name in expected]
