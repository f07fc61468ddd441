"""Pure parsing and validation of raw Finnhub WebSocket messages.

No I/O here: `parse_message` turns one raw message (text as the socket delivered it)
into the trades it carries plus a `Rejection` for everything that cannot become a
trade. Nothing is dropped silently: every input ends up as a trade, a ping, a
Finnhub error or a rejection.

Rejection reasons are short, stable, machine-readable codes (`Rejection.code`) plus a
human detail; `Rejection.reason` is "code: detail", the form written to the
dead-letter topic.
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from contract.validation import (
    BAD_CONDITIONS,
    BAD_DATA,
    BAD_NOTIONAL,
    BAD_PRICE,
    BAD_SYMBOL,
    BAD_TIMESTAMP,
    BAD_VOLUME,
    FUTURE_TRADE_TS,
    INVALID_JSON,
    INVALID_UTF8,
    MAX_FUTURE_SKEW,
    MIN_TRADE_TS_MS,
    MISSING_FIELD,
    NOT_OBJECT,
    STALE_TRADE_TS,
    UNKNOWN_TYPE,
    price_ok,
    symbol_problem,
    volume_ok,
)

# What a trade is (the price, volume and time bounds, the symbol rule) is
# contract.validation's, the rule the job applies too: a trade the producer sends is
# never one the job rejects. Time bounds: a trade may not be later than the time its
# message was received plus a small clock skew (max_future_ms), nor earlier than
# 2000-01-01 UTC, which catches epoch seconds sent as milliseconds. Late trades are
# legal: the job has no watermark and counts them in their windows.
DEFAULT_MAX_FUTURE_MS = int(MAX_FUTURE_SKEW / timedelta(milliseconds=1))

# Conditions are a few short codes; the caps keep one trade's Avro record small.
MAX_CONDITIONS = 32
MAX_CONDITION_CHARS = 16

# Longest excerpt of an offending value quoted in a rejection detail or error text.
MAX_DETAIL_CHARS = 120

KIND_TRADE = "trade"
KIND_PING = "ping"
KIND_ERROR = "error"
KIND_REJECTED = "rejected"

# The producer's own code: a replayed file's line too long to be a message
# (producer.replay). It never reaches the trade topic, so the job has no use for it.
LINE_TOO_LONG = "line_too_long"

# Every code a dead letter may carry (the metrics declare a counter for each).
REJECTION_CODES = (
    INVALID_UTF8, INVALID_JSON, NOT_OBJECT, MISSING_FIELD, UNKNOWN_TYPE, BAD_DATA,
    BAD_SYMBOL, BAD_PRICE, BAD_VOLUME, BAD_TIMESTAMP, FUTURE_TRADE_TS, STALE_TRADE_TS,
    BAD_CONDITIONS, BAD_NOTIONAL, LINE_TOO_LONG,
)


@dataclass(frozen=True, slots=True)
class Trade:
    """One trade, exactly the fields of schemas/trade.avsc."""

    symbol: str
    price: float
    volume: float
    trade_ts: int
    conditions: tuple[str, ...] | None
    ingest_ts: int


@dataclass(frozen=True, slots=True)
class Rejection:
    """An input item that cannot become a trade, with the text it came from.

    raw_chars is the length of that text when raw holds only its start (an input too
    large to be read whole); None when raw is all of it.
    """

    code: str
    detail: str
    raw: str
    symbol: str | None = None
    raw_chars: int | None = None

    @property
    def reason(self) -> str:
        return f"{self.code}: {self.detail}" if self.detail else self.code


@dataclass(frozen=True, slots=True)
class ParseResult:
    """What one raw message turned into.

    kind is the message's own kind: "trade" (trades and/or per-trade rejections),
    "ping", "error" (Finnhub's error message, text in error_msg) or "rejected" (the
    envelope itself is unusable; one rejection covers the whole message).
    """

    kind: str
    trades: tuple[Trade, ...] = ()
    rejections: tuple[Rejection, ...] = ()
    error_msg: str | None = None


PING = ParseResult(KIND_PING)


class _Invalid(Exception):
    """Internal: one field failed validation (code, detail)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(code, detail)
        self.code = code
        self.detail = detail


def safe_text(text: str) -> str:
    """`text` with lone surrogates (from JSON escapes such as "\\ud800") spelled out, so
    that it always encodes to UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _is_encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _cut(text: str) -> str:
    text = safe_text(text)
    return text[:MAX_DETAIL_CHARS] + "..." if len(text) > MAX_DETAIL_CHARS else text


def _excerpt(value: Any) -> str:
    # Containers are described, not printed: a huge or deeply nested value must not
    # cost a huge repr (or a RecursionError) to explain.
    if isinstance(value, list):
        return f"a list of {len(value)} items"
    if isinstance(value, dict):
        return f"an object with {len(value)} keys"
    return _cut(str(value) if isinstance(value, float) else repr(value))


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _reject_message(code: str, detail: str, raw: str) -> ParseResult:
    return ParseResult(KIND_REJECTED, rejections=(Rejection(code, detail, raw),))


def decode_text(raw: str | bytes) -> str | Rejection:
    """The message as text; binary frames must be UTF-8 (Finnhub only sends text)."""
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        # Keep the undecodable bytes visible in the dead letter instead of losing them.
        return Rejection(INVALID_UTF8, str(err), raw.decode("utf-8", "backslashreplace"))


def parse_message(raw: str | bytes, ingest_ts: int,
                  max_future_ms: int = DEFAULT_MAX_FUTURE_MS) -> ParseResult:
    """Parse and validate one raw Finnhub message received at `ingest_ts` (epoch ms).

    A trade later than `ingest_ts + max_future_ms` is rejected as future_trade_ts.
    """
    text = decode_text(raw)
    if isinstance(text, Rejection):
        return ParseResult(KIND_REJECTED, rejections=(text,))
    try:
        message = json.loads(text)
    except (ValueError, RecursionError) as err:
        return _reject_message(INVALID_JSON, str(err)[:MAX_DETAIL_CHARS], text)
    if not isinstance(message, dict):
        return _reject_message(NOT_OBJECT, f"message is {_type_name(message)}", text)
    if "type" not in message:
        return _reject_message(MISSING_FIELD, "type", text)
    kind = message["type"]
    if kind == KIND_TRADE:
        return _parse_trades(message, text, ingest_ts, max_future_ms)
    if kind == KIND_PING:
        return PING
    if kind == KIND_ERROR:
        return ParseResult(KIND_ERROR, error_msg=_error_text(message.get("msg")))
    return _reject_message(UNKNOWN_TYPE, _cut(kind) if isinstance(kind, str) else _excerpt(kind),
                           text)


# Finnhub's own error texts are one short sentence; anything longer is cut for the log.
MAX_ERROR_CHARS = 1000


def _error_text(msg: Any) -> str:
    if isinstance(msg, str):
        return safe_text(msg[:MAX_ERROR_CHARS])
    return "" if msg is None else _excerpt(msg)


def _parse_trades(message: dict[str, Any], text: str, ingest_ts: int,
                  max_future_ms: int) -> ParseResult:
    if "data" not in message:
        return _reject_message(MISSING_FIELD, "data", text)
    data = message["data"]
    if not isinstance(data, list):
        return _reject_message(BAD_DATA, f"expected a list, got {_type_name(data)}", text)
    if not data:
        return _reject_message(BAD_DATA, "empty list", text)
    trades: list[Trade] = []
    rejections: list[Rejection] = []
    for item in data:
        try:
            trades.append(parse_trade(item, ingest_ts, max_future_ms))
        except _Invalid as err:
            rejections.append(_reject_item(item, err, text))
    return ParseResult(KIND_TRADE, tuple(trades), tuple(rejections))


def _reject_item(item: Any, err: _Invalid, message_text: str) -> Rejection:
    # The raw text of one bad trade is its own JSON, so the good trades sent from the
    # same message are not duplicated into the dead letter.
    try:
        raw = safe_text(json.dumps(item, separators=(",", ":"), ensure_ascii=False))
    except (ValueError, RecursionError):
        raw = message_text  # cannot be re-serialised: keep the whole message instead
    symbol = None
    if isinstance(item, dict):
        # Only a valid symbol becomes the dead letter's key.
        with contextlib.suppress(_Invalid):
            symbol = _symbol(item)
    return Rejection(err.code, err.detail, raw, symbol)


def parse_trade(item: Any, ingest_ts: int,
                max_future_ms: int = DEFAULT_MAX_FUTURE_MS) -> Trade:
    """One element of a trade message's `data` list; raises _Invalid."""
    if not isinstance(item, dict):
        raise _Invalid(NOT_OBJECT, f"trade is {_type_name(item)}")
    # No notional check: within the bounds, price * volume is at most 1e30.
    return Trade(
        symbol=_symbol(item),
        price=_price(item),
        volume=_volume(item),
        trade_ts=_timestamp(item, ingest_ts + max_future_ms),
        conditions=_conditions(item),
        ingest_ts=ingest_ts,
    )


def _required(item: dict[str, Any], key: str) -> Any:
    # An explicit null is as unusable as an absent key, and reported the same way.
    value = item.get(key)
    if value is None:
        raise _Invalid(MISSING_FIELD, key)
    return value


def _is_number(value: Any) -> bool:
    # bool is an int subclass, but `true` is never a price.
    return type(value) is float or type(value) is int


def _as_float(value: Any, code: str) -> float:
    if not _is_number(value):
        raise _Invalid(code, f"{_excerpt(value)} is not a number")
    try:
        number = float(value)
    except OverflowError:
        raise _Invalid(code, f"{_excerpt(value)} is out of range") from None
    if not math.isfinite(number):
        raise _Invalid(code, str(number))
    return number


def _symbol(item: dict[str, Any]) -> str:
    value = _required(item, "s")
    if not isinstance(value, str):
        raise _Invalid(BAD_SYMBOL, f"{_excerpt(value)} is not a string")
    problem = symbol_problem(value)
    if problem is None:
        return value
    # The rule decides; two of its refusals get a plainer detail.
    if not value.strip(" "):
        problem = "empty"
    elif not _is_encodable(value):
        problem = f"{_excerpt(value)} is not valid Unicode (lone surrogate)"
    raise _Invalid(BAD_SYMBOL, problem)


def _price(item: dict[str, Any]) -> float:
    price = _as_float(_required(item, "p"), BAD_PRICE)
    if not price_ok(price):
        raise _Invalid(BAD_PRICE, str(price))
    return price


def _volume(item: dict[str, Any]) -> float:
    volume = _as_float(_required(item, "v"), BAD_VOLUME)
    if not volume_ok(volume):
        raise _Invalid(BAD_VOLUME, str(volume))
    return volume


def _timestamp(item: dict[str, Any], latest_ms: int) -> int:
    value = _required(item, "t")
    if type(value) is not int:
        raise _Invalid(BAD_TIMESTAMP, f"{_excerpt(value)} is not an integer")
    if value < MIN_TRADE_TS_MS:
        raise _Invalid(STALE_TRADE_TS, f"{_excerpt(value)} is before 2000-01-01 "
                                       "(epoch seconds instead of milliseconds?)")
    if value > latest_ms:
        raise _Invalid(FUTURE_TRADE_TS, f"{_excerpt(value)} is later than the receive time "
                                        f"plus the allowed skew ({latest_ms})")
    return value


def _conditions(item: dict[str, Any]) -> tuple[str, ...] | None:
    value = item.get("c")
    if value is None:
        return None
    if not isinstance(value, list):
        raise _Invalid(BAD_CONDITIONS, f"expected a list, got {_type_name(value)}")
    if len(value) > MAX_CONDITIONS:
        raise _Invalid(BAD_CONDITIONS, f"{len(value)} codes, more than {MAX_CONDITIONS}")
    conditions: list[str] = []
    for code in value:
        # Condition codes are documented as strings; accept bare integers too so a
        # venue that sends 12 instead of "12" does not lose its trades.
        if type(code) is int and abs(code) < 10**MAX_CONDITION_CHARS:
            code = str(code)
        if (not isinstance(code, str) or len(code) > MAX_CONDITION_CHARS
                or not _is_encodable(code)):
            raise _Invalid(BAD_CONDITIONS, f"{_excerpt(code)} is not a condition code")
        conditions.append(code)
    return tuple(conditions)
