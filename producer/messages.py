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

import json
import math
from dataclasses import dataclass
from typing import Any

# Event-time plausibility bounds (epoch milliseconds). They catch the usual unit
# mistake (seconds instead of milliseconds) and garbage that would overflow the
# Avro/Spark timestamp types: 2000-01-01 .. 2100-01-01 UTC.
MIN_TRADE_TS_MS = 946_684_800_000
MAX_TRADE_TS_MS = 4_102_444_800_000

# Longest excerpt of an offending value quoted in a rejection detail.
MAX_DETAIL_CHARS = 120

KIND_TRADE = "trade"
KIND_PING = "ping"
KIND_ERROR = "error"
KIND_REJECTED = "rejected"

# Stable rejection codes: dashboards and alerts key on these, so never rename one.
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
BAD_CONDITIONS = "bad_conditions"

REJECTION_CODES = (
    INVALID_UTF8, INVALID_JSON, NOT_OBJECT, MISSING_FIELD, UNKNOWN_TYPE, BAD_DATA,
    BAD_SYMBOL, BAD_PRICE, BAD_VOLUME, BAD_TIMESTAMP, BAD_CONDITIONS,
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
    """An input item that cannot become a trade, with the text it came from."""

    code: str
    detail: str
    raw: str
    symbol: str | None = None

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


def _excerpt(value: Any) -> str:
    text = repr(value) if not isinstance(value, float) else str(value)
    if len(text) > MAX_DETAIL_CHARS:
        return text[:MAX_DETAIL_CHARS] + "..."
    return text


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


def parse_message(raw: str | bytes, ingest_ts: int) -> ParseResult:
    """Parse and validate one raw Finnhub message received at `ingest_ts` (epoch ms)."""
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
        return _parse_trades(message, text, ingest_ts)
    if kind == KIND_PING:
        return PING
    if kind == KIND_ERROR:
        return ParseResult(KIND_ERROR, error_msg=_error_text(message.get("msg")))
    return _reject_message(UNKNOWN_TYPE, _excerpt(kind) if not isinstance(kind, str) else kind,
                           text)


def _error_text(msg: Any) -> str:
    if isinstance(msg, str):
        return msg
    return "" if msg is None else _excerpt(msg)


def _parse_trades(message: dict[str, Any], text: str, ingest_ts: int) -> ParseResult:
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
            trades.append(parse_trade(item, ingest_ts))
        except _Invalid as err:
            rejections.append(_reject_item(item, err))
    return ParseResult(KIND_TRADE, tuple(trades), tuple(rejections))


def _reject_item(item: Any, err: _Invalid) -> Rejection:
    # The raw text of one bad trade is its own JSON, so the good trades sent from the
    # same message are not duplicated into the dead letter.
    raw = json.dumps(item, separators=(",", ":"), ensure_ascii=False)
    symbol = item.get("s") if isinstance(item, dict) else None
    if not isinstance(symbol, str) or not symbol.strip():
        symbol = None
    return Rejection(err.code, err.detail, raw, symbol)


def parse_trade(item: Any, ingest_ts: int) -> Trade:
    """One element of a trade message's `data` list; raises _Invalid."""
    if not isinstance(item, dict):
        raise _Invalid(NOT_OBJECT, f"trade is {_type_name(item)}")
    return Trade(
        symbol=_symbol(item),
        price=_price(item),
        volume=_volume(item),
        trade_ts=_timestamp(item),
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
    if not value.strip():
        raise _Invalid(BAD_SYMBOL, "empty")
    return value


def _price(item: dict[str, Any]) -> float:
    price = _as_float(_required(item, "p"), BAD_PRICE)
    if price <= 0.0:
        raise _Invalid(BAD_PRICE, str(price))
    return price


def _volume(item: dict[str, Any]) -> float:
    # Volume 0 is legal: some venues send price-only updates.
    volume = _as_float(_required(item, "v"), BAD_VOLUME)
    if volume < 0.0:
        raise _Invalid(BAD_VOLUME, str(volume))
    return volume


def _timestamp(item: dict[str, Any]) -> int:
    value = _required(item, "t")
    if type(value) is not int:
        raise _Invalid(BAD_TIMESTAMP, f"{_excerpt(value)} is not an integer")
    if not MIN_TRADE_TS_MS <= value < MAX_TRADE_TS_MS:
        raise _Invalid(BAD_TIMESTAMP, f"{value} is not epoch milliseconds in 2000..2100")
    return value


def _conditions(item: dict[str, Any]) -> tuple[str, ...] | None:
    value = item.get("c")
    if value is None:
        return None
    if not isinstance(value, list):
        raise _Invalid(BAD_CONDITIONS, f"expected a list, got {_type_name(value)}")
    conditions: list[str] = []
    for code in value:
        # Condition codes are documented as strings; accept bare integers too so a
        # venue that sends 12 instead of "12" does not lose its trades.
        if isinstance(code, str):
            conditions.append(code)
        elif type(code) is int:
            conditions.append(str(code))
        else:
            raise _Invalid(BAD_CONDITIONS, f"{_excerpt(code)} is not a condition code")
    return tuple(conditions)
