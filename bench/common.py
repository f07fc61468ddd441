"""Shared plumbing of the benchmarks (their scratch data comes from stack.scratch)."""

from __future__ import annotations


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]
