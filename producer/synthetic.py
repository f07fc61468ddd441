"""Deterministic synthetic Finnhub traffic, as raw WebSocket message text.

The generator writes the same JSON Finnhub's socket sends, so synthetic runs go
through exactly the parsing and validation path of live input. It is realistic on
purpose, because those are the cases downstream code gets wrong:

- prices follow a multiplicative random walk per symbol, rounded to a tick;
- volumes are lognormal (whole shares for equities, a few zero-volume price updates
  for crypto);
- bursts: runs of messages for one symbol with many trades in the same millisecond,
  tight spacing and higher volatility, followed by a calm period;
- a small share of trades carry a timestamp up to a few seconds in the past;
- a ping now and then, as the real server sends.

(seed, start_ms, symbols, event_rate) fully determine the output. Event time
advances at `event_rate` trades per simulated second on average, so time windows
downstream get realistic content.

Public API: `generate_messages(...)` (raw text) and `timed_messages(...)`
((event clock ms, raw text) pairs, for pacing).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

PING_INTERVAL_MS = 60_000
PING_MESSAGE = '{"type":"ping"}'

BURST_START_PROBABILITY = 0.01  # per message, outside a burst
BURST_MESSAGES = (10, 40)  # messages in one burst
BURST_TRADES = (3, 15)  # trades per burst message, mostly in one millisecond
BURST_GAP_FACTOR = 0.2  # bursts are 5x denser; the time saved becomes a calm period after
BURST_VOLATILITY_FACTOR = 3.0
NEXT_MS_PROBABILITY = 0.1  # within a message, a later trade moves to the next millisecond
OUT_OF_ORDER_PROBABILITY = 0.01  # per trade
OUT_OF_ORDER_MAX_MS = 3_000
ZERO_VOLUME_PROBABILITY = 0.003  # crypto price-only updates

# Rough recent price levels so generated data looks familiar on a dashboard.
KNOWN_PRICES = {
    "BINANCE:BTCUSDT": 97_000.0, "BINANCE:ETHUSDT": 3_400.0, "BINANCE:SOLUSDT": 240.0,
    "BINANCE:BNBUSDT": 650.0, "BINANCE:XRPUSDT": 1.1, "BINANCE:DOGEUSDT": 0.38,
    "OANDA:EUR_USD": 1.05, "AAPL": 230.0, "MSFT": 420.0, "AMZN": 200.0, "NVDA": 145.0,
    "TSLA": 340.0, "GOOGL": 170.0, "META": 560.0,
}
STOCK_CONDITIONS = (("1",), ("1", "12"), ("12", "37"), ("1", "24"), ("8", "12"))


@dataclass
class _Instrument:
    symbol: str
    price: float
    decimals: int
    volatility: float  # stdev of the log return per trade
    volume_mu: float
    volume_sigma: float
    equity: bool  # whole-share volumes and trade conditions


def _instrument(symbol: str, rng: random.Random) -> _Instrument:
    # Exchange-prefixed symbols (BINANCE:..., OANDA:...) trade fractional sizes all
    # day; bare tickers are equities.
    equity = ":" not in symbol
    price = KNOWN_PRICES.get(symbol) or round(rng.uniform(5.0, 500.0), 2)
    if equity:
        return _Instrument(symbol, price, 2, 0.00005, math.log(50.0), 1.2, True)
    # About six significant digits, like the venues' tick sizes.
    decimals = max(2, 5 - math.floor(math.log10(price)))
    # Median trade worth ~$300 whatever the price level.
    return _Instrument(symbol, price, decimals, 0.00005, math.log(300.0 / price), 1.5, False)


class _Generator:
    def __init__(self, symbols: Sequence[str], seed: int, start_ms: int,
                 event_rate: float) -> None:
        if not symbols:
            raise ValueError("at least one symbol is needed")
        if event_rate <= 0:
            raise ValueError("event_rate must be > 0")
        self.rng = random.Random(seed)
        self.instruments = [_instrument(s, self.rng) for s in symbols]
        # Zipf-like activity: the first symbol trades most, as BTC does on Binance.
        weights = [1.0 / (i + 1) for i in range(len(symbols))]
        self.cum_weights = [sum(weights[: i + 1]) for i in range(len(weights))]
        self.ms_per_trade = 1000.0 / event_rate
        self.clock = float(start_ms)
        self.next_ping = self.clock + PING_INTERVAL_MS
        self.burst_left = 0
        self.burst_instrument = self.instruments[0]
        self.calm_debt_ms = 0.0

    def _pick(self) -> tuple[_Instrument, int, bool]:
        rng = self.rng
        if self.burst_left == 0 and rng.random() < BURST_START_PROBABILITY:
            self.burst_left = rng.randint(*BURST_MESSAGES)
            self.burst_instrument = rng.choices(self.instruments, cum_weights=self.cum_weights)[0]
        if self.burst_left > 0:
            self.burst_left -= 1
            return self.burst_instrument, rng.randint(*BURST_TRADES), True
        instrument = rng.choices(self.instruments, cum_weights=self.cum_weights)[0]
        roll = rng.random()
        n = 1 if roll < 0.6 else 2 if roll < 0.8 else 3 if roll < 0.9 else rng.randint(4, 6)
        return instrument, n, False

    def _advance(self, n: int, burst: bool) -> None:
        # Exponential gaps with mean n trades' worth of time keep the long-run rate at
        # event_rate whatever n is; a burst borrows time and repays it when it ends.
        gap = self.rng.expovariate(1.0) * n * self.ms_per_trade
        if burst:
            self.calm_debt_ms += gap * (1.0 - BURST_GAP_FACTOR)
            gap *= BURST_GAP_FACTOR
        elif self.calm_debt_ms:
            gap += self.calm_debt_ms
            self.calm_debt_ms = 0.0
        self.clock += gap

    def _trade(self, ins: _Instrument, t: int, burst: bool) -> dict[str, object]:
        rng = self.rng
        sigma = ins.volatility * (BURST_VOLATILITY_FACTOR if burst else 1.0)
        ins.price *= math.exp(rng.gauss(0.0, sigma))
        price = max(round(ins.price, ins.decimals), 10.0 ** -ins.decimals)
        volume: float | int
        conditions: list[str] | None = None
        if ins.equity:
            volume = max(1, round(rng.lognormvariate(ins.volume_mu, ins.volume_sigma)))
            conditions = list(rng.choice(STOCK_CONDITIONS))
        elif rng.random() < ZERO_VOLUME_PROBABILITY:
            volume = 0.0
        else:
            volume = round(rng.lognormvariate(ins.volume_mu, ins.volume_sigma), 8)
        if rng.random() < OUT_OF_ORDER_PROBABILITY:
            t -= rng.randint(1, OUT_OF_ORDER_MAX_MS)
        return {"c": conditions, "p": price, "s": ins.symbol, "t": t, "v": volume}

    def message(self, limit: int | None) -> tuple[float, str, int]:
        instrument, n, burst = self._pick()
        if limit is not None:
            n = min(n, limit)
        self._advance(n, burst)
        t = int(self.clock)
        data = []
        for i in range(n):
            if i and self.rng.random() < NEXT_MS_PROBABILITY:
                t += 1
            data.append(self._trade(instrument, t, burst))
        # Trades that moved to a later millisecond move the clock too, so the next
        # message never starts before this one ended (only the deliberate
        # out-of-order trades go back in time).
        self.clock = max(self.clock, float(t))
        text = json.dumps({"type": "trade", "data": data}, separators=(",", ":"))
        return self.clock, text, n

    def ping_due(self) -> bool:
        if self.clock < self.next_ping:
            return False
        self.next_ping += PING_INTERVAL_MS
        return True


def timed_messages(symbols: Sequence[str], *, seed: int, start_ms: int,
                   event_rate: float = 100.0,
                   count: int | None = None) -> Iterator[tuple[float, str]]:
    """(event clock in ms, raw message) pairs; exactly `count` trades, or endless."""
    gen = _Generator(symbols, seed, start_ms, event_rate)
    remaining = count
    while remaining is None or remaining > 0:
        clock, text, n = gen.message(remaining)
        if remaining is not None:
            remaining -= n
        yield clock, text
        if gen.ping_due():
            yield gen.clock, PING_MESSAGE


def generate_messages(symbols: Sequence[str], *, seed: int, start_ms: int,
                      event_rate: float = 100.0, count: int | None = None) -> Iterator[str]:
    """Raw Finnhub WebSocket messages (JSON text) carrying exactly `count` trades."""
    for _, text in timed_messages(symbols, seed=seed, start_ms=start_ms,
                                  event_rate=event_rate, count=count):
        yield text
