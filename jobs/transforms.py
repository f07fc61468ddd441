"""Pure transformations of the market pipeline: Kafka records -> trades -> aggregates.

Nothing here reads or writes anything. Parametrised transforms return a function
meant for `df.transform(...)`. The batch recompute aggregates `trades` with
minute_windows and moving_means; the stream job merges pane partials (jobs.panes)
into the very same rows, and the tests hold both to the same reference.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache, reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.avro.functions import from_avro, to_avro

import contract
from contract import validation
from jobs.tables import MINUTE_TRADES, MOVING_MEANS, REJECTED_RECORDS, TRADES

Transform = Callable[[DataFrame], DataFrame]

MILLIS_PER_DAY = 86_400_000

@dataclass(frozen=True)
class TradeBounds:
    """What the job accepts as a trade; everything else goes to rejected_records.

    The defaults are the producer's rule (contract.validation, which says why each
    bound is there); the job measures the clock skew from the record's Kafka
    timestamp, which the broker's clock set when it was produced.
    """

    max_clock_skew: timedelta = validation.MAX_FUTURE_SKEW
    min_trade_ts: datetime = validation.MIN_TRADE_TS
    min_price: float = validation.MIN_PRICE
    max_price: float = validation.MAX_PRICE
    max_volume: float = validation.MAX_VOLUME
    max_symbol_length: int = validation.MAX_SYMBOL_CHARS


def utc_date(ts: Column) -> Column:
    """The UTC calendar day of a timestamp, whatever spark.sql.session.timeZone says."""
    return F.date_from_unix_date(F.floor(F.unix_millis(ts) / MILLIS_PER_DAY).cast("int"))


def floor_timestamp(ts: Column, step_ms: int) -> Column:
    """The start of the epoch-aligned step of step_ms milliseconds that holds ts.

    Integer arithmetic: pmod keeps times before 1970 in the right step too.
    """
    millis = F.unix_millis(ts)
    return F.timestamp_millis(millis - F.pmod(millis, F.lit(step_ms)))


def is_finite(x: Column) -> Column:
    """False for null, NaN and +-Infinity (Spark orders NaN above every number)."""
    return x.isNotNull() & ~F.isnan(x) & (F.abs(x) < F.lit(float("inf")))


def varint_size(value: Column) -> Column:
    """Bytes of Avro's zig-zag varint encoding of a long: 7 bits a byte.

    bin() spells the zig-zagged value in binary, 64 digits when its top bit is set (as
    unsigned, 10 bytes); one small expression instead of a chain of comparisons, which
    keeps the rejection check cheap to plan and to generate code for, every micro-batch.
    The digits are ASCII, so their octets are their characters: octet_length reads the
    string's size, where length() would walk it counting characters (5% of the job's
    task time in a profile of a large batch).
    """
    zigzag = F.shiftleft(value, 1).bitwiseXOR(F.shiftright(value, 63))
    return F.floor((F.octet_length(F.bin(zigzag)) + 6) / 7)


def _type_size(value: Column, avro_type: object) -> Column:
    """Encoded size of a decoded value of one Avro type (the types trade.avsc uses);
    for an array of strings, assuming every string is shorter than 64 bytes."""
    if isinstance(avro_type, list):  # a union: the branch index, then the value
        null_first = avro_type[0] == "null"
        other = avro_type[1] if null_first else avro_type[0]
        if len(avro_type) != 2 or "null" not in avro_type:
            raise ValueError(f"only [null, T] unions are supported: {avro_type}")
        return F.lit(1) + F.when(value.isNull(), 0).otherwise(_type_size(value, other))
    kind = avro_type if isinstance(avro_type, str) else avro_type["type"]
    if kind == "string":
        octets = F.octet_length(value)
        return varint_size(octets.cast("long")) + octets
    if kind == "double":
        return F.lit(8)
    if kind == "long" and isinstance(avro_type, dict) \
            and avro_type.get("logicalType") == "timestamp-millis":
        return varint_size(F.unix_millis(value))
    if kind == "array" and avro_type["items"] == "string":
        # One block of n items, then the 0 that ends the array (just the 0 when empty).
        # Each item is its length (one byte below 64) and its bytes: summing the exact
        # lengths would take a higher-order function, which Spark cannot compile into
        # the stage's generated code (the whole projection would then be interpreted).
        count = F.size(value).cast("long")
        items = count + F.octet_length(F.array_join(value, ""))
        return F.when(count == 0, 1).otherwise(varint_size(count) + items + 1)
    raise ValueError(f"no encoded size for Avro type {avro_type!r}")


def avro_size_lower_bound(record: Column, schema: dict) -> Column:
    """Bytes of the canonical Avro binary encoding of a decoded record of `schema`,
    exact unless an array holds a string of 64 bytes or more (then less than that).

    Canonical here means what every Avro writer produces for these types: one block per
    non-empty array. Only the types the trade schema uses are supported; a new field
    type fails loudly here rather than mis-measuring.
    """
    sizes = [_type_size(record[f["name"]], f["type"]) for f in schema["fields"]]
    return reduce(Column.__add__, sizes)


def has_trailing_bytes(trade: Column, payload: Column, schema_json: str) -> Column:
    """True when the payload is longer than the encoding of the record decoded from it
    (from_avro ignores bytes after the record). For a decoded record only.

    The lower bound equals the payload's length for nearly every record; only when it
    does not is the record re-encoded (to_avro), to tell trailing bytes from long
    strings in an array.
    """
    length = F.length(payload)
    return ((avro_size_lower_bound(trade, json.loads(schema_json)) != length)
            & (F.length(to_avro(trade, schema_json)) != length))


def undecodable(trade: Column, schema_json: str) -> Column:
    """True when from_avro (PERMISSIVE) could not decode the record.

    Spark 3.5 then returns a struct whose every field is null (not a null struct); a
    record that decodes always has its non-union fields set.
    """
    names = [field["name"] for field in json.loads(schema_json)["fields"]]
    return trade.isNull() | reduce(Column.__and__, [trade[name].isNull() for name in names])


def valid_symbol(symbol: Column, max_length: int = validation.MAX_SYMBOL_CHARS) -> Column:
    """contract.validation's symbol rule as a column: 1 to max_length printable
    characters with no blank at either end (false for null)."""
    length = F.length(symbol)
    return F.coalesce(
        (length >= 1) & (length <= max_length)
        & ~symbol.startswith(" ") & ~symbol.endswith(" ")
        & ~symbol.rlike(validation.SYMBOL_FORBIDDEN_JAVA_REGEX),
        F.lit(False))


def rejection_reason(trade: Column, payload: Column, kafka_ts: Column, schema_json: str,
                     bounds: TradeBounds = TradeBounds()) -> Column:
    """Why a decoded record is not a valid trade, as a short code; null when it is valid.

    The checks run in order and the first that fails names the reason. The values are
    checked before the re-encoding, which needs every non-nullable Avro field present.
    """
    price, volume = trade["price"], trade["volume"]
    symbol, trade_ts = trade["symbol"], trade["trade_ts"]
    latest = kafka_ts + F.make_dt_interval(secs=F.lit(bounds.max_clock_skew.total_seconds()))
    return (
        F.when(payload.isNull() | (F.length(payload) == 0), "empty_value")
        .when(undecodable(trade, schema_json), "undecodable_avro")
        .when(~valid_symbol(symbol, bounds.max_symbol_length), validation.BAD_SYMBOL)
        .when(~is_finite(price) | (price < bounds.min_price) | (price > bounds.max_price),
              validation.BAD_PRICE)
        .when(~is_finite(volume) | (volume < 0) | (volume > bounds.max_volume),
              validation.BAD_VOLUME)
        .when(trade_ts.isNull(), "missing_trade_ts")
        .when(trade["ingest_ts"].isNull(), "missing_ingest_ts")
        .when(trade_ts > latest, validation.FUTURE_TRADE_TS)
        .when(trade_ts < F.lit(bounds.min_trade_ts), validation.STALE_TRADE_TS)
        .when(has_trailing_bytes(trade, payload, schema_json), "trailing_bytes")
    )


def decode_trades(schema_json: str, bounds: TradeBounds = TradeBounds()) -> Transform:
    """Kafka source rows -> Kafka coordinates, payload, decoded `trade` struct and `reason`.

    PERMISSIVE turns an undecodable record into a null struct instead of failing the
    query; `reason` is null exactly for the records that are valid trades.
    """

    def apply(records: DataFrame) -> DataFrame:
        # Avro timestamps are proleptic Gregorian, as Spark's own: a trade dated before
        # 1900 is read as it was written (and rejected for its date), where Spark's
        # default rebase mode would fail its decoding and call it undecodable.
        trade = from_avro(F.col("value"), schema_json,
                          {"mode": "PERMISSIVE", "datetimeRebaseMode": "CORRECTED"})
        return (
            records
            .select(
                F.col("topic").alias("kafka_topic"),
                F.col("partition").alias("kafka_partition"),
                F.col("offset").alias("kafka_offset"),
                F.col("timestamp").alias("kafka_ts"),
                F.col("value").alias("payload"),
                trade.alias("trade"),
            )
            .withColumn(
                "reason", rejection_reason(F.col("trade"), F.col("payload"), F.col("kafka_ts"),
                                           schema_json, bounds)
            )
        )

    return apply


@cache
def _trade_columns() -> tuple[Column, ...]:
    """The `trades` columns of a decoded record.

    Built once, on first use (a Spark context must exist): the stream job selects them
    twice a micro-batch, and building columns takes calls into the JVM every time.
    Columns are plain expressions, reusable on any DataFrame.
    """
    return tuple(TRADES.project(
        trade_date=utc_date(F.col("trade.trade_ts")),
        **{name: F.col(f"trade.{name}") for name in
           ("symbol", "trade_ts", "price", "volume", "conditions", "ingest_ts")}))


def valid_trades(decoded: DataFrame) -> DataFrame:
    """Decoded records -> rows of the `trades` table (only the valid ones).

    Apply it to computed rows (foreachBatch's, or cached ones): over a plan that still
    decodes, Spark pushes this filter below the decode and calls from_avro once for
    every reference to the record in the rejection checks (docs/benchmarks.md).
    """
    return decoded.where(F.col("reason").isNull()).select(*_trade_columns())


def rejected_records(seen_at: Column | None = None) -> Transform:
    """Decoded records -> rows of the `rejected_records` table (only the invalid ones).

    seen_at defaults to current_timestamp(), which a streaming query fixes per
    micro-batch; the day comes from the Kafka timestamp so that a replay of the same
    offsets rewrites the same row.
    """

    def apply(decoded: DataFrame) -> DataFrame:
        seen = seen_at if seen_at is not None else F.current_timestamp()
        return (
            decoded
            .where(F.col("reason").isNotNull())
            .select(*REJECTED_RECORDS.project(kafka_date=utc_date(F.col("kafka_ts")),
                                              seen_at=seen))
        )

    return apply


# The total order of trades: time, then Kafka coordinates for same-millisecond trades.
TRADE_ORDER = ("trade_ts", "kafka_partition", "kafka_offset")


def trade_order() -> Column:
    """The total order of trades as one comparable struct."""
    return F.struct(*TRADE_ORDER)


def vwap(notional: Column, total_volume: Column, avg_price: Column) -> Column:
    """sum(p*v)/sum(v), or the plain average price when no volume traded.

    The fallback keeps the column free of nulls: the Grafana Cassandra plugin cannot
    plot a null, and for zero volume the average price is the natural reference.
    """
    return F.when(total_volume > 0, notional / total_volume).otherwise(avg_price)


def minute_windows(trades: DataFrame) -> DataFrame:
    """Trades -> one `minute_trades` row per symbol and UTC minute (event time)."""
    return (
        trades
        .groupBy("symbol", F.window("trade_ts", "1 minute").alias("window"))
        .agg(
            F.count(F.lit(1)).alias("trade_count"),
            F.avg("price").alias("avg_price"),
            F.min_by("price", trade_order()).alias("open_price"),
            F.max("price").alias("high_price"),
            F.min("price").alias("low_price"),
            F.max_by("price", trade_order()).alias("close_price"),
            F.sum("volume").alias("total_volume"),
            F.sum(F.col("price") * F.col("volume")).alias("notional"),
        )
        .select(*MINUTE_TRADES.project(
            window_start=F.col("window.start"), window_end=F.col("window.end"),
            vwap=vwap(F.col("notional"), F.col("total_volume"), F.col("avg_price"))))
    )


def moving_means(length: timedelta = contract.MOVING_WINDOW,
                 slide: timedelta = contract.MOVING_SLIDE) -> Transform:
    """Trades -> arithmetic, geometric and harmonic mean price per sliding window.

    Sliding windows are aligned on the epoch (UTC) like the minute windows; each row
    carries its window's length and slide in whole seconds, part of the table's key.
    Prices are > 0 (invalid trades never get here), so log and 1/price are defined.
    """
    window_s, slide_s = int(length.total_seconds()), int(slide.total_seconds())

    def apply(trades: DataFrame) -> DataFrame:
        count = F.count(F.lit(1))
        return (
            trades
            .groupBy("symbol", F.window("trade_ts", f"{window_s} seconds",
                                        f"{slide_s} seconds").alias("window"))
            .agg(
                count.alias("trade_count"),
                F.avg("price").alias("arithmetic_mean"),
                F.exp(F.avg(F.log("price"))).alias("geometric_mean"),
                (count / F.sum(1 / F.col("price"))).alias("harmonic_mean"),
            )
            .select(*MOVING_MEANS.project(
                window_seconds=F.lit(window_s), slide_seconds=F.lit(slide_s),
                window_end=F.col("window.end"), window_start=F.col("window.start")))
        )

    return apply


def trades_between(start: datetime, end: datetime) -> Transform:
    """Trades with start <= trade_ts < end (aware datetimes)."""

    def apply(trades: DataFrame) -> DataFrame:
        ts = F.col("trade_ts")
        return trades.where((ts >= F.lit(start)) & (ts < F.lit(end)))

    return apply


def windows_overlapping(start: datetime, end: datetime) -> Transform:
    """Window rows whose [window_start, window_end) intersects [start, end)."""

    def apply(windows: DataFrame) -> DataFrame:
        return windows.where(
            (F.col("window_start") < F.lit(end)) & (F.col("window_end") > F.lit(start))
        )

    return apply
