"""The benchmark's symbols: the usual ten, then made-up ones, all distinct and valid."""

from __future__ import annotations

from bench.stream_job import SYMBOLS, symbol_list
from contract.validation import symbol_problem


def test_ten_are_the_usual_and_more_are_made_up() -> None:
    assert symbol_list(10) == SYMBOLS
    assert symbol_list(3).split(",") == SYMBOLS.split(",")[:3]
    many = symbol_list(500).split(",")
    assert len(set(many)) == 500 and many[:10] == SYMBOLS.split(",")
    assert [name for name in many if symbol_problem(name) is not None] == []
