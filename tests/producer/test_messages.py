"""Parsing and validation of raw Finnhub messages: every outcome and rejection reason."""

from __future__ import annotations

import json

import pytest

from producer import messages as m
from producer.messages import Rejection, Trade, parse_message

INGEST = 1_732_180_000_500
MIN_TRADE_TS_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
T = 1_732_180_000_123


def trade_item(**overrides: object) -> dict[str, object]:
    item: dict[str, object] = {"s": "BINANCE:BTCUSDT", "p": 97012.5, "t": T, "v": 0.0123,
                               "c": None}
    item.update(overrides)
    return {k: v for k, v in item.items() if v is not _DROP}


_DROP = object()


def trade_message(*items: object) -> str:
    return json.dumps({"type": "trade", "data": list(items)})


def only_rejection(raw: str | bytes) -> Rejection:
    result = parse_message(raw, INGEST)
    assert result.trades == ()
    assert len(result.rejections) == 1, result
    return result.rejections[0]


def test_trade_message_with_several_trades_in_the_same_millisecond() -> None:
    raw = trade_message(trade_item(), trade_item(p=97013.0, v=0.5),
                        trade_item(s="AAPL", p=230, v=100, c=["1", "12"]))
    result = parse_message(raw, INGEST)
    assert result.kind == m.KIND_TRADE
    assert result.rejections == ()
    assert result.trades == (
        Trade("BINANCE:BTCUSDT", 97012.5, 0.0123, T, None, INGEST),
        Trade("BINANCE:BTCUSDT", 97013.0, 0.5, T, None, INGEST),
        Trade("AAPL", 230.0, 100.0, T, ("1", "12"), INGEST),
    )
    assert all(type(t.price) is float and type(t.volume) is float for t in result.trades)


def test_optional_fields_and_zero_volume_price_updates_are_accepted() -> None:
    item = trade_item(v=0, c=_DROP)
    item["extra"] = "ignored"  # unknown fields are future extensions, not errors
    (trade,) = parse_message(trade_message(item), INGEST).trades
    assert trade.volume == 0.0
    assert trade.conditions is None


def test_integer_condition_codes_become_strings() -> None:
    (trade,) = parse_message(trade_message(trade_item(c=[1, "12"])), INGEST).trades
    assert trade.conditions == ("1", "12")


def test_ping_is_recognised() -> None:
    assert parse_message('{"type":"ping"}', INGEST).kind == m.KIND_PING


def test_error_message_keeps_its_text() -> None:
    result = parse_message('{"type":"error","msg":"Subscribing to too many symbols"}', INGEST)
    assert (result.kind, result.error_msg) == (m.KIND_ERROR, "Subscribing to too many symbols")
    assert result.rejections == ()


def test_bytes_input_is_decoded() -> None:
    result = parse_message(trade_message(trade_item()).encode(), INGEST)
    assert len(result.trades) == 1


# Whole-message rejections: the envelope is unusable, the full text is dead-lettered.
@pytest.mark.parametrize(("raw", "reason"), [
    ("{not json", "invalid_json: "),
    ("", "invalid_json: "),
    ("[1, 2]", "not_object: message is list"),
    ("null", "not_object: message is null"),
    ('{"data": []}', "missing_field: type"),
    ('{"type": "news", "data": []}', "unknown_type: news"),
    ('{"type": 5}', "unknown_type: 5"),
    ('{"type": "trade"}', "missing_field: data"),
    ('{"type": "trade", "data": {"s": "X"}}', "bad_data: expected a list, got dict"),
    ('{"type": "trade", "data": []}', "bad_data: empty list"),
])
def test_envelope_rejections(raw: str, reason: str) -> None:
    rejection = only_rejection(raw)
    assert rejection.reason.startswith(reason)
    assert rejection.raw == raw
    assert rejection.symbol is None
    assert parse_message(raw, INGEST).kind == m.KIND_REJECTED


def test_invalid_utf8_is_rejected_with_the_bytes_kept_visible() -> None:
    rejection = only_rejection(b'{"type":"trade","s":"\xff"}')
    assert rejection.code == m.INVALID_UTF8
    assert "\\xff" in rejection.raw


# Per-trade rejections, one per reason; the symbol is kept when it is usable.
@pytest.mark.parametrize(("overrides", "reason", "symbol"), [
    ({"s": _DROP}, "missing_field: s", None),
    ({"p": _DROP}, "missing_field: p", "BINANCE:BTCUSDT"),
    ({"t": _DROP}, "missing_field: t", "BINANCE:BTCUSDT"),
    ({"v": _DROP}, "missing_field: v", "BINANCE:BTCUSDT"),
    ({"p": None}, "missing_field: p", "BINANCE:BTCUSDT"),
    ({"s": ""}, "bad_symbol: empty", None),
    ({"s": "   "}, "bad_symbol: empty", None),
    ({"s": 42}, "bad_symbol: 42 is not a string", None),
    ({"p": -1.0}, "bad_price: -1.0", "BINANCE:BTCUSDT"),
    ({"p": 0}, "bad_price: 0.0", "BINANCE:BTCUSDT"),
    ({"p": "97012.5"}, "bad_price: '97012.5' is not a number", "BINANCE:BTCUSDT"),
    ({"p": True}, "bad_price: True is not a number", "BINANCE:BTCUSDT"),
    ({"p": 10**400}, "bad_price: ", "BINANCE:BTCUSDT"),
    ({"v": -0.5}, "bad_volume: -0.5", "BINANCE:BTCUSDT"),
    ({"v": "1"}, "bad_volume: '1' is not a number", "BINANCE:BTCUSDT"),
    ({"t": "1732180000123"}, "bad_timestamp: ", "BINANCE:BTCUSDT"),
    ({"t": 1732180000.123}, "bad_timestamp: ", "BINANCE:BTCUSDT"),
    ({"t": 1732180000}, "stale_trade_ts: 1732180000 is before 2000-01-01",
     "BINANCE:BTCUSDT"),
    ({"t": -1}, "stale_trade_ts: -1 is before", "BINANCE:BTCUSDT"),
    ({"t": 946_684_799_999}, "stale_trade_ts: ", "BINANCE:BTCUSDT"),
    ({"t": 2**70}, "future_trade_ts: ", "BINANCE:BTCUSDT"),
    ({"t": 2**63 - 1}, "future_trade_ts: ", "BINANCE:BTCUSDT"),
    ({"t": INGEST + 60_001}, "future_trade_ts: ", "BINANCE:BTCUSDT"),
    ({"t": 4_070_908_800_000}, "future_trade_ts: 4070908800000 is later", "BINANCE:BTCUSDT"),
    ({"s": "A" * 65}, "bad_symbol: 65 characters, more than 64", None),
    ({"s": "A\ud800"}, "bad_symbol: 'A\\ud800' is not valid Unicode", None),
    ({"c": ["1", "\udfff"]}, "bad_conditions: ", "BINANCE:BTCUSDT"),
    ({"c": ["1"] * 33}, "bad_conditions: 33 codes, more than 32", "BINANCE:BTCUSDT"),
    ({"c": ["x" * 17]}, "bad_conditions: ", "BINANCE:BTCUSDT"),
    ({"p": 1e308, "v": 1e308}, "bad_price: 1e+308", "BINANCE:BTCUSDT"),
    ({"p": 1e15, "v": 1e308}, "bad_volume: 1e+308", "BINANCE:BTCUSDT"),
    ({"c": "1"}, "bad_conditions: expected a list, got str", "BINANCE:BTCUSDT"),
    ({"c": ["1", None]}, "bad_conditions: None is not a condition code", "BINANCE:BTCUSDT"),
])
def test_trade_rejections(overrides: dict[str, object], reason: str,
                          symbol: str | None) -> None:
    item = trade_item(**overrides)
    rejection = only_rejection(trade_message(item))
    assert rejection.reason.startswith(reason), rejection.reason
    assert rejection.symbol == symbol
    # The bad trade alone, not the whole message; always encodable as UTF-8.
    rejection.raw.encode("utf-8")
    if "\ud800" not in str(item) and "\udfff" not in str(item):
        assert json.loads(rejection.raw) == item


def test_time_bounds_are_inclusive_and_follow_the_skew() -> None:
    def codes(t: int, skew: int) -> tuple[int, tuple[str, ...]]:
        result = parse_message(trade_message(trade_item(t=t)), INGEST, skew)
        return len(result.trades), tuple(r.code for r in result.rejections)

    assert codes(INGEST + 60_000, 60_000) == (1, ())
    assert codes(INGEST + 60_001, 60_000) == (0, (m.FUTURE_TRADE_TS,))
    assert codes(INGEST + 1, 0) == (0, (m.FUTURE_TRADE_TS,))
    assert codes(INGEST + 7 * 86_400_000, 8 * 86_400_000) == (1, ())
    assert codes(MIN_TRADE_TS_MS, 60_000) == (1, ())
    # Old trades are legal: only the year-2000 floor applies, whatever the receive time.
    assert codes(MIN_TRADE_TS_MS + 1, 0) == (1, ())


def test_lone_surrogates_anywhere_are_rejected_or_ignored_never_raised() -> None:
    # JSON escapes produce lone surrogates; none may reach Avro or Kafka unencoded.
    raws = ['{"type":"\\ud800"}', '{"type":"error","msg":"\\ud800"}',
            '{"type":"trade","data":[{"s":"\\ud800","p":1,"t":' + f'{T},"v":1}}]}}',
            '{"type":"trade","data":[{"s":"AAPL","p":1,"t":' + f'{T},"v":1,"x":"\\ud800"}}]}}']
    results = [parse_message(raw, INGEST) for raw in raws]
    assert [r.rejections[0].reason for r in results[:1]] == ["unknown_type: \\ud800"]
    assert results[1].error_msg == "\\ud800"
    assert [r.code for r in results[2].rejections] == [m.BAD_SYMBOL]
    assert results[3].trades == (Trade("AAPL", 1.0, 1.0, T, None, INGEST),)
    for result in results:
        for rejection in result.rejections:
            (rejection.reason + rejection.raw).encode("utf-8")


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_price_and_volume_are_rejected(literal: str) -> None:
    for field, code in (("p", m.BAD_PRICE), ("v", m.BAD_VOLUME)):
        raw = trade_message(trade_item()).replace(
            '"p": 97012.5' if field == "p" else '"v": 0.0123', f'"{field}": {literal}')
        assert only_rejection(raw).code == code


def test_non_object_trade_item_is_rejected() -> None:
    rejection = only_rejection(trade_message("oops"))
    assert rejection.reason == "not_object: trade is str"
    assert rejection.raw == '"oops"'


def test_one_bad_trade_among_five_rejects_only_that_trade() -> None:
    good = [trade_item(p=100.0 + i) for i in range(4)]
    bad = trade_item(p=-1)
    result = parse_message(trade_message(good[0], good[1], bad, good[2], good[3]), INGEST)
    assert result.kind == m.KIND_TRADE
    assert [t.price for t in result.trades] == [100.0, 101.0, 102.0, 103.0]
    assert [r.reason for r in result.rejections] == ["bad_price: -1.0"]


def test_every_rejection_code_is_distinct_and_short() -> None:
    assert len(set(m.REJECTION_CODES)) == len(m.REJECTION_CODES)
    assert all(code.isidentifier() and code.islower() for code in m.REJECTION_CODES)


def test_long_offending_values_are_cut_in_the_detail() -> None:
    rejection = only_rejection(trade_message(trade_item(p="x" * 10_000)))
    assert len(rejection.detail) < 200
    assert len(rejection.raw) > 10_000  # the dead letter keeps everything
    rejection = only_rejection(json.dumps({"type": "x" * 1_000_000}))
    assert len(rejection.reason) < 200


def test_huge_and_nested_values_are_described_not_printed() -> None:
    rejection = only_rejection(trade_message(trade_item(p=list(range(100_000)))))
    assert rejection.reason == "bad_price: a list of 100000 items is not a number"
    nested = "[" * 900 + "]" * 900
    raw = trade_message(trade_item()).replace('"v": 0.0123', f'"v": {nested}')
    assert only_rejection(raw).reason == "bad_volume: a list of 1 items is not a number"
