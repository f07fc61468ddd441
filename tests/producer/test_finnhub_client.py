"""Pure parts of the Finnhub client: messages, URL building, redaction, backoff."""

from __future__ import annotations

import logging
import random
import sys
from collections import Counter

import pytest

from producer.finnhub import (
    Backoff,
    build_url,
    explain_error,
    redact,
    subscribe_message,
    unsubscribe_message,
)
from producer.logs import RedactingFormatter
from producer.stats import Stats

TOKEN = "c0ffee-t0ken"


def test_subscription_messages_are_exact_json() -> None:
    assert subscribe_message("BINANCE:BTCUSDT") == (
        '{"type": "subscribe", "symbol": "BINANCE:BTCUSDT"}')
    assert unsubscribe_message('we"ird') == '{"type": "unsubscribe", "symbol": "we\\"ird"}'


@pytest.mark.parametrize(("base", "expected"), [
    ("wss://ws.finnhub.io", f"wss://ws.finnhub.io?token={TOKEN}"),
    ("ws://127.0.0.1:8765/", f"ws://127.0.0.1:8765/?token={TOKEN}"),
    ("ws://h/p?x=1&token=old", f"ws://h/p?x=1&token={TOKEN}"),
])
def test_token_goes_into_the_query_string(base: str, expected: str) -> None:
    assert build_url(base, TOKEN) == expected


def test_redact_masks_token_parameters_and_known_secrets() -> None:
    text = f"failed: wss://ws.finnhub.io/?a=1&token={TOKEN}&b=2 'TOKEN={TOKEN}' {TOKEN}"
    redacted = redact(text, (TOKEN,))
    assert TOKEN not in redacted
    assert "wss://ws.finnhub.io/?a=1&token=***&b=2" in redacted
    assert redact(f"?token={TOKEN}") == "?token=***"  # even without knowing the value


def test_log_lines_and_tracebacks_are_redacted() -> None:
    formatter = RedactingFormatter("%(message)s", (TOKEN,))
    try:
        raise ConnectionError(f"cannot reach wss://ws.finnhub.io?token={TOKEN}")
    except ConnectionError:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "url %s", (TOKEN,),
                                   exc_info=sys.exc_info())
    text = formatter.format(record)
    assert TOKEN not in text
    assert "ConnectionError: cannot reach wss://ws.finnhub.io?token=***" in text


def test_too_many_symbols_is_explained() -> None:
    explained = explain_error("Subscribing to too many symbols")
    assert "50" in explained and "fewer symbols" in explained
    assert explain_error("something else") == "Finnhub error: 'something else'"


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap() -> None:
    backoff = Backoff(1.0, 8.0, random.Random(3))
    delays = [backoff.next_delay() for _ in range(8)]
    for delay, ceiling in zip(delays, [1, 2, 4, 8, 8, 8, 8, 8], strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert len({round(d, 6) for d in delays[3:]}) > 1  # jittered, not a fixed period
    backoff.reset()
    assert backoff.next_delay() <= 1.0


def test_status_line_has_every_counter() -> None:
    stats = Stats(messages=5, trades_sent=9, reconnects=3, send_errors=4,
                  messages_by_kind=Counter(ping=2, error=1, trade=2))
    stats.count_rejection("bad_price")
    assert stats.status_line(12.345) == (
        "messages=5 trades_sent=9 rejected=1 pings=2 errors=1 reconnects=3 disconnected=0.0s "
        "send_errors=4 "
        "rate=12.3/s")
    assert stats.summary().endswith("rejected_by_reason=[bad_price=1]")
