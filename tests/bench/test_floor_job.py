"""The floor job's arithmetic: its first batch is the cold rate, the others the warm."""

from __future__ import annotations

import math

from bench.floor_job import batch_rates


def test_the_first_batch_is_cold_and_the_others_together_warm() -> None:
    # 600 records in 4 s, then 300 + 500 records in 1 s + 3 s (200 records/s together).
    cold, warm = batch_rates({3: 600, 4: 300, 5: 500}, {3: 4.0, 4: 1.0, 5: 3.0, 6: 0.1})
    assert (cold, warm) == (150.0, 200.0)


def test_a_single_batch_has_no_warm_rate() -> None:
    cold, warm = batch_rates({0: 10}, {0: 2.0})
    assert cold == 5.0 and math.isnan(warm)
