"""Fault-injection fixtures: a report every scenario writes to, printed after the run."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fault_testing import FaultReport

_REPORTS: list[str] = []


@pytest.fixture
def fault_report() -> Callable[[FaultReport], None]:
    def record(report: FaultReport) -> None:
        _REPORTS.append(report.line())
        print(report.line())

    return record


def pytest_terminal_summary(terminalreporter) -> None:
    if _REPORTS:
        terminalreporter.section("fault scenarios")
        for line in _REPORTS:
            terminalreporter.write_line(line)
