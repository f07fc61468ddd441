"""Fault-injection fixtures: a report every scenario writes to, printed after the run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

_REPORTS: list[str] = []


@dataclass(frozen=True)
class FaultReport:
    scenario: str
    broke: str
    outage_s: float
    sent: int
    stored: int
    missing: int
    duplicated: int
    extra: str = ""

    def line(self) -> str:
        return (f"{self.scenario}: broke {self.broke} for {self.outage_s:.1f}s; sent={self.sent}"
                f" stored={self.stored} missing={self.missing} duplicated={self.duplicated}"
                + (f"; {self.extra}" if self.extra else ""))


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
