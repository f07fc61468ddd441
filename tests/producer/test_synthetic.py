"""Synthetic traffic: deterministic, realistic, and valid raw Finnhub messages."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from producer.messages import KIND_PING, Trade, parse_message
from producer.synthetic import generate_messages, timed_messages

SYMBOLS = ("BINANCE:BTCUSDT", "BINANCE:ETHUSDT", "AAPL", "NEWCOIN:XYZ")
START = 1_732_180_000_000
COUNT = 20_000
# Received long after the generated event times, so none is future-dated.
RECEIVED = START + 30 * 86_400_000


def trades_of(messages: list[str]) -> list[Trade]:
    trades = []
    for raw in messages:
        result = parse_message(raw, RECEIVED)
        assert result.rejections == (), raw
        trades.extend(result.trades)
    return trades


@pytest.fixture(scope="module")
def messages() -> list[str]:
    return list(generate_messages(SYMBOLS, seed=7, start_ms=START, count=COUNT))


def test_same_seed_and_start_give_the_same_messages(messages: list[str]) -> None:
    again = list(generate_messages(SYMBOLS, seed=7, start_ms=START, count=COUNT))
    assert again == messages


def test_seed_and_start_each_change_the_output(messages: list[str]) -> None:
    first = messages[:50]
    assert list(generate_messages(SYMBOLS, seed=8, start_ms=START, count=COUNT))[:50] != first
    shifted = list(generate_messages(SYMBOLS, seed=7, start_ms=START + 1000, count=COUNT))
    assert [t.trade_ts - 1000 for t in trades_of(shifted)] == [
        t.trade_ts for t in trades_of(messages)]


def test_exact_count_of_valid_trades_for_every_symbol(messages: list[str]) -> None:
    trades = trades_of(messages)
    assert len(trades) == COUNT
    per_symbol = Counter(t.symbol for t in trades)
    assert set(per_symbol) == set(SYMBOLS)
    assert per_symbol["BINANCE:BTCUSDT"] > per_symbol["NEWCOIN:XYZ"]  # uneven activity


def test_messages_are_raw_finnhub_json(messages: list[str]) -> None:
    first = json.loads(messages[0])
    assert first["type"] == "trade"
    assert set(first["data"][0]) == {"s", "p", "t", "v", "c"}
    assert any(parse_message(raw, RECEIVED).kind == KIND_PING for raw in messages)


def test_same_millisecond_trades_share_one_message(messages: list[str]) -> None:
    same_ms = [raw for raw in messages
               if len(ts := [t.trade_ts for t in parse_message(raw, RECEIVED).trades]) > 1
               and len(set(ts)) == 1]
    assert len(same_ms) > 100
    big = max(len(parse_message(raw, RECEIVED).trades) for raw in messages)
    assert big >= 10  # bursts


def test_some_trades_are_out_of_order_by_up_to_a_few_seconds(messages: list[str]) -> None:
    latest: dict[str, int] = {}
    lags = []
    for trade in trades_of(messages):
        seen = latest.get(trade.symbol, trade.trade_ts)
        if trade.trade_ts < seen:
            lags.append(seen - trade.trade_ts)
        latest[trade.symbol] = max(seen, trade.trade_ts)
    assert 0.002 * COUNT < len(lags) < 0.05 * COUNT
    assert max(lags) <= 3_000
    assert max(lags) > 1_000


def test_prices_walk_and_volumes_vary(messages: list[str]) -> None:
    trades = trades_of(messages)
    btc = [t.price for t in trades if t.symbol == "BINANCE:BTCUSDT"]
    assert len(set(btc)) > len(btc) // 4
    assert min(btc) / btc[0] > 0.8 and max(btc) / btc[0] < 1.2
    assert all(t.price > 0 for t in trades)
    stock_volumes = [t.volume for t in trades if t.symbol == "AAPL"]
    assert all(v >= 1 and v == int(v) for v in stock_volumes)
    crypto = sorted(t.volume for t in trades if t.symbol == "BINANCE:ETHUSDT")
    assert crypto[-1] > 20 * crypto[len(crypto) // 2]  # lognormal: a long tail


@pytest.mark.parametrize("event_rate", [10.0, 100.0, 1000.0])
def test_event_time_advances_at_the_configured_rate(event_rate: float) -> None:
    pairs = list(timed_messages(SYMBOLS[:2], seed=1, start_ms=START, event_rate=event_rate,
                                count=5_000))
    span_s = (pairs[-1][0] - START) / 1000
    assert span_s == pytest.approx(5_000 / event_rate, rel=0.15)
    clocks = [clock for clock, _ in pairs]
    assert clocks == sorted(clocks)


def test_count_zero_and_endless() -> None:
    assert list(generate_messages(SYMBOLS, seed=1, start_ms=START, count=0)) == []
    endless = generate_messages(SYMBOLS, seed=1, start_ms=START)
    head = [next(endless) for _ in range(3000)]
    # Endless is the same stream a large --count gives, only never cut short.
    assert head[:2000] == list(generate_messages(SYMBOLS, seed=1, start_ms=START,
                                                 count=100_000))[:2000]
    trades = trades_of(head)
    assert len(trades) > 3000  # messages carry one trade or more; pings carry none
    assert next(endless) not in head[-5:]  # still going, with new content


def test_event_time_stays_in_the_accepted_range() -> None:
    # Every generated trade passes the parser's time checks when received at the
    # generator's own clock: synthetic traffic is never future-dated.
    for clock, raw in timed_messages(SYMBOLS, seed=3, start_ms=START, event_rate=1000,
                                     count=5_000):
        result = parse_message(raw, int(clock), max_future_ms=0)
        assert result.rejections == (), raw
