"""Property-based: whatever arrives, parsing accepts exactly or rejects with a reason.

For arbitrary input (random bytes, JSON of any shape, lone surrogates, huge and
non-finite numbers, deep nesting, huge arrays) `parse_message` never raises; every
accepted trade survives an exact Avro round trip and lies in the accepted time range;
every rejection has a known code and becomes a dead letter that decodes and fits one
Kafka record.
"""

from __future__ import annotations

import json
import math
import unicodedata

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from producer import avro_codec
from producer import messages as m
from producer.kafka_sink import DEAD_LETTER_MAX_BYTES, dead_letter_value
from producer.messages import ParseResult, Rejection, parse_message

ONE_MIB = 1024 * 1024
INGEST = 1_732_180_000_500
SKEW = 60_000
MIN_TRADE_TS_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
# Controls, format characters, surrogates, private use, separators (the ASCII space
# aside): what a symbol may not contain.
UNPRINTABLE = {"Cc", "Cf", "Cs", "Co", "Zl", "Zp", "Zs"}
PROPERTY = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

# Every Unicode code point, lone surrogates included (JSON can carry them as escapes).
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=80)
numbers = st.one_of(
    st.integers(), st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e308, -1e308, 5e-324]),
    st.integers(min_value=MIN_TRADE_TS_MS - 10, max_value=INGEST + 2 * SKEW),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, any_text)
json_values = st.recursive(
    scalars, lambda inner: st.one_of(st.lists(inner, max_size=6),
                                     st.dictionaries(any_text, inner, max_size=6)),
    max_leaves=40)
symbols = st.one_of(st.sampled_from(["AAPL", "BINANCE:BTCUSDT", " ", "", "S" * 65]), any_text)
trade_items = st.fixed_dictionaries(
    {}, optional={"s": st.one_of(symbols, json_values), "p": st.one_of(numbers, json_values),
                  "t": st.one_of(numbers, json_values), "v": st.one_of(numbers, json_values),
                  "c": st.one_of(st.none(), st.lists(st.one_of(any_text, numbers), max_size=4),
                                 json_values)})
trade_messages = st.builds(lambda data: {"type": "trade", "data": data},
                           st.lists(st.one_of(trade_items, json_values), max_size=8))


def check(result: ParseResult) -> None:
    """The invariants of any parse result."""
    assert result.kind in (m.KIND_TRADE, m.KIND_PING, m.KIND_ERROR, m.KIND_REJECTED)
    if result.kind == m.KIND_REJECTED:
        assert result.trades == () and len(result.rejections) == 1
    for trade in result.trades:
        assert avro_codec.decode(avro_codec.encode(trade)) == trade
        assert MIN_TRADE_TS_MS <= trade.trade_ts <= INGEST + SKEW
        assert 1e-12 <= trade.price <= 1e15 and 0 <= trade.volume <= 1e15
        assert math.isfinite(trade.price * trade.volume)
        assert 0 < len(trade.symbol) <= 64
        assert trade.symbol == trade.symbol.strip(" ")
        assert not any(c != " " and unicodedata.category(c) in UNPRINTABLE for c in trade.symbol)
    for rejection in result.rejections:
        check_dead_letter(rejection)


def check_dead_letter(rejection: Rejection) -> None:
    assert rejection.code in m.REJECTION_CODES
    value = dead_letter_value(rejection, INGEST, "live")
    assert len(value) <= min(DEAD_LETTER_MAX_BYTES, ONE_MIB)
    letter = json.loads(value)
    assert letter["reason"].startswith(rejection.code)
    assert (letter["ingest_ts"], letter["source"]) == (INGEST, "live")
    if not letter["truncated"]:
        assert letter["raw"] == m.safe_text(rejection.raw)
        assert letter["reason"] == m.safe_text(rejection.reason)
    if rejection.symbol is not None:
        rejection.symbol.encode("utf-8")  # it becomes the Kafka key


@PROPERTY
@given(st.binary(max_size=300))
def test_random_bytes(raw: bytes) -> None:
    check(parse_message(raw, INGEST, SKEW))


@PROPERTY
@given(json_values, st.booleans())
def test_json_of_any_shape(value: object, ascii_only: bool) -> None:
    # ensure_ascii=True turns surrogates into \ud800 escapes; False leaves them raw.
    check(parse_message(json.dumps(value, ensure_ascii=ascii_only), INGEST, SKEW))


@PROPERTY
@given(trade_messages, st.booleans())
def test_trade_shaped_messages(message: dict[str, object], ascii_only: bool) -> None:
    result = parse_message(json.dumps(message, ensure_ascii=ascii_only), INGEST, SKEW)
    check(result)
    data = message["data"]
    assert isinstance(data, list)
    if data:  # one outcome per item: nothing silently vanishes
        assert len(result.trades) + len(result.rejections) == len(data)


@PROPERTY
@given(st.text(st.characters(codec=None, exclude_categories=()), min_size=1, max_size=20),
       st.integers(min_value=0, max_value=400_000), st.sampled_from(m.REJECTION_CODES))
def test_dead_letters_fit_one_record_however_large_the_input(
        unit: str, repeat: int, code: str) -> None:
    raw = unit * repeat  # up to 8 M characters, escaped up to six times their size
    check_dead_letter(Rejection(code, unit * (repeat // 100), raw, None))


def test_deep_nesting_and_huge_arrays() -> None:
    for raw in ("[" * 100_000, '{"type":"trade","data":' + "[" * 50_000 + "]" * 50_000 + "}"):
        check(parse_message(raw, INGEST, SKEW))
    item = {"s": "AAPL", "p": 1.5, "t": INGEST, "v": 2}
    result = parse_message(json.dumps({"type": "trade", "data": [item, 7] * 50_000}),
                           INGEST, SKEW)
    assert (len(result.trades), len(result.rejections)) == (50_000, 50_000)
    check(ParseResult(result.kind, result.trades[:10], result.rejections[:10]))
