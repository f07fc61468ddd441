"""The producer applies contract.validation's rule: the job's bounds and symbol rule.

Expected outcomes are written by hand. The property test holds the producer's symbol
decision to the contract's and to a hand-labelled alphabet at once.
"""

from __future__ import annotations

import json
import math
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract import validation
from contract.validation import symbol_problem
from producer.messages import parse_message

INGEST = 1_732_180_000_500
T = 1_732_180_000_123


def outcome(**fields: object) -> str:
    """'ok' when the one trade is accepted, else its rejection code."""
    item = {"s": "AAPL", "p": 1.0, "t": T, "v": 1.0, **fields}
    # ensure_ascii: lone surrogates travel as \ud800 escapes, as a feed would send them.
    result = parse_message(json.dumps({"type": "trade", "data": [item]}), INGEST)
    if result.trades:
        assert result.rejections == ()
        return "ok"
    (rejection,) = result.rejections
    return rejection.code


@pytest.mark.parametrize(("symbol", "expected"), [
    ("AAPL", "ok"),
    ("BINANCE:BTCUSDT", "ok"),
    ("OANDA:EUR_USD", "ok"),
    ("BRK B", "ok"),  # a space inside a symbol is allowed
    ("BRK.B", "ok"),
    ("A", "ok"),
    ("A" * 64, "ok"),
    ("A" * 65, "bad_symbol"),
    ("", "bad_symbol"),
    (" ", "bad_symbol"),
    (" AAPL ", "bad_symbol"),  # would otherwise become a second AAPL
    (" AAPL", "bad_symbol"),
    ("AAPL ", "bad_symbol"),
    ("AAPL\n", "bad_symbol"),
    ("\tAAPL", "bad_symbol"),
    ("A\x00B", "bad_symbol"),
    ("A\x7fB", "bad_symbol"),
    ("A\rB", "bad_symbol"),
    ("A\x85B", "bad_symbol"),  # NEL, a C1 control
    ("A\u00a0B", "bad_symbol"),  # no-break space
    ("\u00a0AAPL", "bad_symbol"),
    ("A\u200bB", "bad_symbol"),  # zero-width space
    ("A\u2028B", "bad_symbol"),  # line separator
    ("\ufeffAAPL", "bad_symbol"),  # byte order mark
    ("A\ue000B", "bad_symbol"),  # private use
    ("A\ud800B", "bad_symbol"),  # lone surrogate
    ("CAFÉ", "ok"),
    ("中国平安", "ok"),
    ("\U0001f680", "ok"),  # an emoji is printable
])
def test_symbol_rule(symbol: str, expected: str) -> None:
    assert outcome(s=symbol) == expected


@pytest.mark.parametrize(("price", "expected"), [
    (5e-324, "bad_price"),  # the smallest float above 0: the job rejects it as well
    (9.99e-13, "bad_price"),
    (1e-12, "ok"),
    (0.0001, "ok"),
    (1e15, "ok"),
    (1.0000001e15, "bad_price"),
    (1e308, "bad_price"),
    (0, "bad_price"),
    (-1.0, "bad_price"),
])
def test_price_bounds(price: float, expected: str) -> None:
    assert outcome(p=price) == expected


@pytest.mark.parametrize(("volume", "expected"), [
    (0, "ok"),  # price-only updates
    (5e-324, "ok"),
    (1e15, "ok"),
    (1.0000001e15, "bad_volume"),
    (1e308, "bad_volume"),
    (-5e-324, "bad_volume"),
    (-1.0, "bad_volume"),
])
def test_volume_bounds(volume: float, expected: str) -> None:
    assert outcome(v=volume) == expected


def test_the_largest_legal_trade_has_a_finite_notional() -> None:
    # Why the producer no longer checks price * volume: within the bounds it is 1e30.
    (trade,) = parse_message(json.dumps({"type": "trade", "data": [
        {"s": "AAPL", "p": 1e15, "t": T, "v": 1e15}]}), INGEST).trades
    assert trade.price * trade.volume == 1e30
    # Should the bounds ever grow to where the product overflows, the check must return.
    assert math.isfinite(validation.MAX_PRICE * validation.MAX_VOLUME)


# The alphabet, each character labelled by hand: may it appear in a symbol?
ALPHABET = {
    **{c: True for c in string.ascii_letters + string.digits + string.punctuation},
    " ": True,  # inside only
    "é": True, "中": True, "\U0001f680": True, "\u0301": True,  # a combining accent
    "\t": False, "\n": False, "\r": False, "\x00": False, "\x1f": False, "\x7f": False,
    "\x85": False, "\u00a0": False, "\u00ad": False, "\u200b": False, "\u2028": False,
    "\u2029": False, "\u3000": False, "\ufeff": False, "\ue000": False, "\ud800": False,
}


def by_hand(symbol: str) -> bool:
    return (1 <= len(symbol) <= 64 and all(ALPHABET[c] for c in symbol)
            and not symbol.startswith(" ") and not symbol.endswith(" "))


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(st.sampled_from(sorted(ALPHABET)), max_size=70),
                 st.text(st.sampled_from("AB: "), min_size=60, max_size=68)))
def test_the_producer_decides_symbols_as_the_contract(symbol: str) -> None:
    accepted = outcome(s=symbol) == "ok"
    assert accepted == (symbol_problem(symbol) is None) == by_hand(symbol)
