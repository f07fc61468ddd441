"""What a fault scenario reports: what it broke, for how long, and what the tables hold."""

from __future__ import annotations

from dataclasses import dataclass


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
