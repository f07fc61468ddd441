"""What a trade is: one rule for the producer (Python) and the job (Spark columns).

The value bounds keep every sum a window adds up finite (p, v, p*v, ln p and 1/p of
up to 10^12 trades), so no aggregate can become infinite or NaN. The time bounds:
a trade may not be later than the time it was received (the producer's clock, or the
record's Kafka timestamp for the job) plus a small clock skew, and not earlier than
2000-01-01 UTC, fixed rather than relative to now so that recordings of any age replay
unchanged; that bound catches the usual unit mistake (seconds read as milliseconds).
Late trades after that are legal: the job counts them in their windows.

A symbol is 1 to MAX_SYMBOL_CHARS printable characters with no blank at either end:
' AAPL ' would otherwise become a second AAPL, and a newline or a NUL would reach a
Kafka key, a Cassandra partition key and every dashboard. Printable excludes the
Unicode categories Cc, Cf, Cs, Co, Zl, Zp and Zs (the ASCII space is allowed inside a
symbol); the job applies the same classes as a Java regular expression
(SYMBOL_FORBIDDEN_JAVA_REGEX), and tests hold the two to the same answers.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime, timedelta, timezone

MIN_TRADE_TS = datetime(2000, 1, 1, tzinfo=timezone.utc)
MIN_TRADE_TS_MS = int(MIN_TRADE_TS.timestamp()) * 1000
MAX_FUTURE_SKEW = timedelta(seconds=60)

MIN_PRICE = 1e-12
MAX_PRICE = 1e15
MAX_VOLUME = 1e15

# Symbols are short (AAPL, BINANCE:BTCUSDT, OANDA:EUR_USD); the cap keeps a Kafka key
# and a Cassandra partition key small whatever a feed sends.
MAX_SYMBOL_CHARS = 64
FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp", "Zs"})
# The same classes in java.util.regex, for Spark's rlike; the ASCII space is subtracted.
SYMBOL_FORBIDDEN_JAVA_REGEX = r"[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Zl}\p{Zp}\p{Zs}&&[^ ]]"

# Stable rejection codes: dashboards and alerts key on these, so never rename one.
# The producer's dead letters and the job's rejected_records use the same words.
INVALID_UTF8 = "invalid_utf8"
INVALID_JSON = "invalid_json"
NOT_OBJECT = "not_object"
MISSING_FIELD = "missing_field"
UNKNOWN_TYPE = "unknown_type"
BAD_DATA = "bad_data"
BAD_SYMBOL = "bad_symbol"
BAD_PRICE = "bad_price"
BAD_VOLUME = "bad_volume"
BAD_TIMESTAMP = "bad_timestamp"
FUTURE_TRADE_TS = "future_trade_ts"
STALE_TRADE_TS = "stale_trade_ts"
BAD_CONDITIONS = "bad_conditions"
BAD_NOTIONAL = "bad_notional"


def symbol_problem(value: str) -> str | None:
    """Why this string is not a symbol (a short detail), or None when it is one."""
    if not value:
        return "empty"
    if len(value) > MAX_SYMBOL_CHARS:
        return f"{len(value)} characters, more than {MAX_SYMBOL_CHARS}"
    for index, char in enumerate(value):
        if char != " " and unicodedata.category(char) in FORBIDDEN_CATEGORIES:
            return f"character {index} (U+{ord(char):04X}) is not printable"
    if value[0] == " " or value[-1] == " ":
        return "blank at either end"
    return None


def price_ok(price: float) -> bool:
    """Finite prices within [MIN_PRICE, MAX_PRICE] (NaN fails every comparison)."""
    return MIN_PRICE <= price <= MAX_PRICE


def volume_ok(volume: float) -> bool:
    """Volume 0 is legal: some venues send price-only updates."""
    return 0.0 <= volume <= MAX_VOLUME
