"""Test helpers for the schema applier: a keyspace left by an older schema."""

from __future__ import annotations

from typing import Any


def with_older_moving_means(session: Any, keyspace: str) -> None:
    """Replace keyspace.moving_means by its layout before the window shape joined the
    key: a key change ALTER TABLE cannot make, which the applier must name."""
    session.execute(f"DROP TABLE {keyspace}.moving_means", timeout=60)
    session.execute(
        f"CREATE TABLE {keyspace}.moving_means (symbol text, window_end timestamp,"
        " window_start timestamp, trade_count bigint, arithmetic_mean double,"
        " geometric_mean double, harmonic_mean double,"
        " PRIMARY KEY ((symbol), window_end))", timeout=60)
