"""Scaling measured table sizes to a symbol and a day, by hand."""

from __future__ import annotations

import pytest

from bench.storage import per_symbol_day


def test_per_second_tables_scale_by_the_seconds_covered() -> None:
    # 10 symbols over an hour: 36,000 symbol-seconds in 36 MB, 1,000 bytes each.
    assert per_symbol_day("candles", 36_000_000, 10, 3600, 600_000, 1000) == 86_400_000


def test_trades_scale_by_the_live_rate() -> None:
    # 100 bytes a trade; 1,000 trades/s over 10 symbols is 8,640,000 a symbol-day.
    assert per_symbol_day("trades", 100 * 600_000, 10, 3600, 600_000, 1000) == pytest.approx(
        864_000_000)


def test_tables_keyed_by_symbol_do_not_grow_with_days() -> None:
    assert per_symbol_day("symbols", 5_000, 10, 3600, 600_000, 1000) == 500
    assert per_symbol_day("stream_progress", 5_000, 10, 3600, 600_000, 1000) is None
