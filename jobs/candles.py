"""Candles at every resolution, with volatility: the mergeable parts and the reference.

A candle is the OHLC, volume, VWAP and volatility of one symbol's trades in one
epoch-aligned window of a resolution (1s ... 1d). Two volatility measures:

- log_return_stddev: the sample standard deviation (n - 1) of the log returns between
  consecutive trades of the candle, in the total order (trade_ts, kafka_partition,
  kafka_offset); NaN with fewer than two returns.
- parkinson_volatility: sqrt(ln(high / low)^2 / (4 ln 2)), from the candle's range.

A `CandlePart` summarises a run of consecutive trades: besides counts, sums and the
first and last trade, it keeps the sum and the sum of squares of the log returns
inside the run. Two runs merge when one ends before the other starts in the total
order: the return across the boundary is ln(first of the later) - ln(last of the
earlier), and the sums add. Two parts whose trades interleave (a late trade that falls
between two trades already summarised) cannot be merged that way: `merge_in_order`
raises `Interleaved`, and the caller rebuilds that part from its stored trades.

Nothing here does I/O. `reference_candles` is the batch computation from `trades`
rows, written independently of the parts, that the recompute and the tests use.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from jobs.panes import MINUTE, floor_time, vwap_or_average
from jobs.transforms import TRADE_ORDER, Transform, floor_timestamp, utc_date, vwap

LN2 = math.log(2.0)

# Every resolution a candle may have, by the name the tables and dashboards use.
RESOLUTIONS: dict[str, timedelta] = {
    "1s": timedelta(seconds=1),
    "5s": timedelta(seconds=5),
    "15s": timedelta(seconds=15),
    "30s": timedelta(seconds=30),
    "1m": timedelta(minutes=1),
    "2m": timedelta(minutes=2),
    "3m": timedelta(minutes=3),
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "30m": timedelta(minutes=30),
    "1h": timedelta(hours=1),
    "2h": timedelta(hours=2),
    "4h": timedelta(hours=4),
    "1d": timedelta(days=1),
}


def parse_resolutions(text: str) -> tuple[str, ...]:
    """'1s, 1m,5m' -> ('1s', '1m', '5m'), shortest first; unknown or no names: ValueError."""
    names = {part.strip() for part in text.split(",") if part.strip()}
    unknown = sorted(names - RESOLUTIONS.keys())
    if unknown:
        raise ValueError(f"unknown candle resolutions {', '.join(unknown)}; "
                         f"known: {', '.join(RESOLUTIONS)}")
    if not names:
        raise ValueError("no candle resolution given")
    return tuple(sorted(names, key=RESOLUTIONS.__getitem__))


def window_start(ts: datetime, resolution: str) -> datetime:
    """The start of the epoch-aligned window of this resolution that holds ts (UTC)."""
    return floor_time(ts, RESOLUTIONS[resolution])


def bucket_unit(resolution: str) -> str:
    """What a candle's partition bucket spans: a UTC day, month or year.

    Chosen so that no partition holds much more than 100,000 rows: a day of 1s candles
    is 86,400 rows, a month of 1m candles 44,640, a year of 1h candles 8,784.
    """
    length = RESOLUTIONS[resolution]
    if length < timedelta(minutes=1):
        return "day"
    return "month" if length < timedelta(hours=1) else "year"


def bucket(resolution: str, start: datetime) -> date:
    """The partition bucket of a candle: the first day of its day, month or year."""
    day = start.astimezone(timezone.utc).date()
    unit = bucket_unit(resolution)
    if unit == "day":
        return day
    return day.replace(day=1) if unit == "month" else day.replace(month=1, day=1)


class Interleaved(ValueError):
    """Two parts' trades interleave in the total order: rebuild from the trades."""


OrderKey = tuple[datetime, int, int]


@dataclass(frozen=True)
class CandlePart:
    """The summary of consecutive trades of one symbol (see the module docstring)."""

    trade_count: int
    price_sum: float
    volume_sum: float
    notional_sum: float
    low_price: float
    high_price: float
    first_key: OrderKey
    first_price: float
    last_key: OrderKey
    last_price: float
    # Over the trade_count - 1 log returns between consecutive trades of the part: their
    # sum and the sum of their squared deviations from their mean (merged as Chan et
    # al.'s pairwise update, which keeps its precision where a sum of squares cancels).
    return_sum: float
    return_m2: float

    @property
    def returns(self) -> int:
        return self.trade_count - 1


def part_of(trades: Sequence[tuple[OrderKey, float, float]]) -> CandlePart:
    """The part of (order key, price, volume) trades; sorted here by their key."""
    if not trades:
        raise ValueError("a part needs at least one trade")
    ordered = sorted(trades, key=lambda trade: trade[0])
    prices = [price for _, price, _ in ordered]
    returns = [math.log(b) - math.log(a) for a, b in itertools.pairwise(prices)]
    return CandlePart(
        trade_count=len(ordered),
        price_sum=math.fsum(prices),
        volume_sum=math.fsum(volume for _, _, volume in ordered),
        notional_sum=math.fsum(price * volume for _, price, volume in ordered),
        low_price=min(prices),
        high_price=max(prices),
        first_key=ordered[0][0], first_price=prices[0],
        last_key=ordered[-1][0], last_price=prices[-1],
        return_sum=math.fsum(returns),
        return_m2=squared_deviations(returns),
    )


def squared_deviations(values: Sequence[float]) -> float:
    if not values:
        return 0.0
    mean = math.fsum(values) / len(values)
    return math.fsum((v - mean) ** 2 for v in values)


Moments = tuple[int, float, float]  # (how many, their sum, squared deviations)


def combine(a: Moments, b: Moments) -> Moments:
    """The moments of two disjoint sets of values."""
    na, sa, ma = a
    nb, sb, mb = b
    if na == 0:
        return b
    if nb == 0:
        return a
    n = na + nb
    delta = sb / nb - sa / na
    return n, sa + sb, ma + mb + delta * delta * na * nb / n


def merge_in_order(parts: Iterable[CandlePart]) -> CandlePart:
    """One part for the union of disjoint parts, or Interleaved if two of them overlap
    in the total order (then no sum of theirs says which returns the union has)."""
    ordered = sorted(parts, key=lambda part: part.first_key)
    if not ordered:
        raise ValueError("merge needs at least one part")
    for earlier, later in itertools.pairwise(ordered):
        if not earlier.last_key < later.first_key:
            raise Interleaved(f"trades up to {earlier.last_key} and from {later.first_key}"
                              " interleave")
    moments: Moments = (ordered[0].returns, ordered[0].return_sum, ordered[0].return_m2)
    for earlier, later in itertools.pairwise(ordered):
        boundary = math.log(later.first_price) - math.log(earlier.last_price)
        moments = combine(combine(moments, (1, boundary, 0.0)),
                          (later.returns, later.return_sum, later.return_m2))
    return CandlePart(
        trade_count=sum(part.trade_count for part in ordered),
        price_sum=math.fsum(part.price_sum for part in ordered),
        volume_sum=math.fsum(part.volume_sum for part in ordered),
        notional_sum=math.fsum(part.notional_sum for part in ordered),
        low_price=min(part.low_price for part in ordered),
        high_price=max(part.high_price for part in ordered),
        first_key=ordered[0].first_key, first_price=ordered[0].first_price,
        last_key=ordered[-1].last_key, last_price=ordered[-1].last_price,
        return_sum=moments[1],
        return_m2=moments[2],
    )


def log_return_stddev(part: CandlePart) -> float:
    """Sample standard deviation of the part's log returns; NaN with fewer than two."""
    if part.returns < 2:
        return math.nan
    return math.sqrt(max(part.return_m2, 0.0) / (part.returns - 1))


def parkinson_volatility(high: float, low: float) -> float:
    """sqrt(ln(high / low)^2 / (4 ln 2)): 0 when high equals low."""
    return abs(math.log(high / low)) / (2.0 * math.sqrt(LN2))


def candle_values(part: CandlePart) -> dict[str, object]:
    """The value columns of a `candles` row (VWAP falls back to the average price)."""
    avg = part.price_sum / part.trade_count
    return {
        "trade_count": part.trade_count,
        "open_price": part.first_price,
        "high_price": part.high_price,
        "low_price": part.low_price,
        "close_price": part.last_price,
        "total_volume": part.volume_sum,
        "avg_price": avg,
        "vwap": vwap_or_average(part.notional_sum, part.volume_sum, avg),
        "log_return_stddev": log_return_stddev(part),
        "parkinson_volatility": parkinson_volatility(part.high_price, part.low_price),
    }


def reference_candles(resolution: str) -> Transform:
    """Rows of `trades` -> one candle row per symbol and window of the resolution.

    Computed directly from the trades with window functions (the previous trade's
    price in the total order), not from parts: the recompute's and the tests' truth.
    """
    seconds = int(RESOLUTIONS[resolution].total_seconds())

    def apply(trades: DataFrame) -> DataFrame:
        start = floor_timestamp(F.col("trade_ts"), seconds * 1000)
        in_candle = Window.partitionBy("symbol", "window_start").orderBy(*TRADE_ORDER)
        log_price = F.log("price")
        with_returns = (trades.withColumn("window_start", start)
                        .withColumn("log_return", log_price - F.lag(log_price).over(in_candle)))
        trade = F.struct(*TRADE_ORDER, "price")
        price = F.col("price")
        grouped = with_returns.groupBy("symbol", "window_start").agg(
            F.count(F.lit(1)).alias("trade_count"),
            F.min(trade)["price"].alias("open_price"),
            F.max(price).alias("high_price"),
            F.min(price).alias("low_price"),
            F.max(trade)["price"].alias("close_price"),
            F.sum("volume").alias("total_volume"),
            F.avg(price).alias("avg_price"),
            F.sum(price * F.col("volume")).alias("notional"),
            F.count("log_return").alias("returns"),
            F.stddev_samp("log_return").alias("stddev"),
        )
        return grouped.select(
            "symbol",
            F.lit(resolution).alias("resolution"),
            bucket_column(resolution, F.col("window_start")).alias("bucket"),
            "window_start",
            (F.col("window_start") + F.make_dt_interval(secs=F.lit(seconds)))
            .alias("window_end"),
            "trade_count", "open_price", "high_price", "low_price", "close_price",
            "total_volume", "avg_price",
            vwap(F.col("notional"), F.col("total_volume"), F.col("avg_price")).alias("vwap"),
            # stddev_samp is null (not NaN) for a single value: the contract says NaN.
            F.when(F.col("returns") >= 2, F.col("stddev")).otherwise(F.lit(math.nan))
            .alias("log_return_stddev"),
            (F.abs(F.log(F.col("high_price") / F.col("low_price"))) / (2.0 * math.sqrt(LN2)))
            .alias("parkinson_volatility"),
        )

    return apply


def bucket_column(resolution: str, start: Column) -> Column:
    """`bucket` as a Spark column of the window start, whatever the session time zone."""
    day = utc_date(start)
    unit = bucket_unit(resolution)
    return day if unit == "day" else F.trunc(day, unit)


# --- the rolling 24-hour ticker ----------------------------------------------------------

HOUR = timedelta(hours=1)
TICKER_SPAN = timedelta(days=1)


@dataclass(frozen=True)
class TickerLayout:
    """The 1,440 minutes of a ticker, as the parts that cover them.

    The window ends with the minute of the symbol's newest trade. Whole hours inside
    it are read as hourly parts (at most 24); the minutes before the first and after
    the last whole hour (at most 59 each) as minute parts: at most about 140 parts
    where the minutes alone would be 1,440.
    """

    window_start: datetime
    window_end: datetime
    hours: tuple[datetime, datetime]
    head_minutes: tuple[datetime, datetime]
    tail_minutes: tuple[datetime, datetime]


def ticker_layout(newest_trade_ts: datetime) -> TickerLayout:
    end = floor_time(newest_trade_ts, MINUTE) + MINUTE
    start = end - TICKER_SPAN
    first_hour = floor_time(start, HOUR)
    if first_hour < start:  # the first whole hour inside the window
        first_hour += HOUR
    last_hour = floor_time(end, HOUR)
    return TickerLayout(window_start=start, window_end=end, hours=(first_hour, last_hour),
                        head_minutes=(start, first_hour), tail_minutes=(last_hour, end))


def ticker_values(part: CandlePart, layout: TickerLayout) -> dict[str, object]:
    """The value columns of a `ticker_24h` row from the merge of its window's parts."""
    change = part.last_price - part.first_price
    return {
        "last_price": part.last_price,
        "last_trade_ts": part.last_key[0],
        "open_price": part.first_price,
        "high_price": part.high_price,
        "low_price": part.low_price,
        "price_change": change,
        "price_change_pct": 100.0 * change / part.first_price,
        "total_volume": part.volume_sum,
        "quote_volume": part.notional_sum,
        "trade_count": part.trade_count,
        "vwap": vwap_or_average(part.notional_sum, part.volume_sum,
                                part.price_sum / part.trade_count),
        "window_start": layout.window_start,
        "window_end": layout.window_end,
    }


# --- the reference of the ticker and the symbols, straight from trades ------------------


def reference_symbols(trades: DataFrame) -> DataFrame:
    """Rows of `trades` -> one `symbols` row per symbol: first and last trade."""
    last = F.max(F.struct(*TRADE_ORDER, "price"))
    return trades.groupBy("symbol").agg(
        F.min("trade_ts").alias("first_trade_ts"), last.alias("last")).select(
        "symbol", "first_trade_ts", F.col("last.trade_ts").alias("last_trade_ts"),
        F.col("last.price").alias("last_price"),
        F.col("last.kafka_partition").alias("last_kafka_partition"),
        F.col("last.kafka_offset").alias("last_kafka_offset"))


def merge_symbols(stored: DataFrame) -> Transform:
    """`symbols` rows -> merged with the stored rows: the earliest first trade, the
    latest last trade in the total order."""
    def apply(rows: DataFrame) -> DataFrame:
        both = rows.unionByName(stored.select(*rows.columns))
        last = F.max(F.struct("last_trade_ts", "last_kafka_partition", "last_kafka_offset",
                              "last_price"))
        return both.groupBy("symbol").agg(
            F.min("first_trade_ts").alias("first_trade_ts"), last.alias("last")).select(
            "symbol", "first_trade_ts", "last.last_trade_ts", "last.last_price",
            "last.last_kafka_partition", "last.last_kafka_offset")

    return apply


def reference_tickers(symbols: DataFrame) -> Transform:
    """Rows of `trades` -> the `ticker_24h` row of each symbol in `symbols` (whose
    last_trade_ts sets the window), from its trades in that window."""
    def apply(trades: DataFrame) -> DataFrame:
        minute_ms = int(MINUTE.total_seconds() * 1000)
        end = floor_timestamp(F.col("last_trade_ts"), minute_ms) + F.expr("INTERVAL 1 MINUTE")
        windows = symbols.select("symbol", (end - F.expr("INTERVAL 1 DAY")).alias("window_start"),
                                 end.alias("window_end"))
        ts = F.col("trade_ts")
        inside = trades.join(windows, "symbol").where(
            (ts >= F.col("window_start")) & (ts < F.col("window_end")))
        trade = F.struct(*TRADE_ORDER, "price")
        price = F.col("price")
        grouped = inside.groupBy("symbol", "window_start", "window_end").agg(
            F.min(trade).alias("first"), F.max(trade).alias("last"),
            F.max(price).alias("high_price"), F.min(price).alias("low_price"),
            F.sum("volume").alias("total_volume"),
            F.sum(price * F.col("volume")).alias("quote_volume"),
            F.count(F.lit(1)).alias("trade_count"), F.avg(price).alias("avg_price"))
        change = F.col("last.price") - F.col("first.price")
        return grouped.select(
            "symbol", F.col("last.price").alias("last_price"),
            F.col("last.trade_ts").alias("last_trade_ts"),
            F.col("first.price").alias("open_price"), "high_price", "low_price",
            change.alias("price_change"),
            (100.0 * change / F.col("first.price")).alias("price_change_pct"),
            "total_volume", "quote_volume", "trade_count",
            vwap(F.col("quote_volume"), F.col("total_volume"), F.col("avg_price"))
            .alias("vwap"),
            "window_start", "window_end")

    return apply
