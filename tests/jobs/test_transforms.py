"""The pure transformations on tiny inline DataFrames, against values worked out by hand."""

from __future__ import annotations

import io
import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from jobs.transforms import (
    avro_size_lower_bound,
    decode_trades,
    minute_windows,
    moving_means,
    rejected_records,
    rejection_reason,
    valid_trades,
    windows_overlapping,
)

pytestmark = pytest.mark.spark

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "trade.avsc"
SCHEMA_JSON = SCHEMA_PATH.read_text()
AVRO_SCHEMA = fastavro.parse_schema(json.loads(SCHEMA_JSON))

KAFKA_SCHEMA = "topic string, partition int, offset long, timestamp timestamp, value binary"
TRADE_SCHEMA = (
    "symbol string, trade_date date, trade_ts timestamp, kafka_partition int,"
    " kafka_offset long, price double, volume double, conditions array<string>,"
    " ingest_ts timestamp, kafka_topic string"
)
REJECTED_SCHEMA = (
    "kafka_topic string, kafka_date date, kafka_partition int, kafka_offset long,"
    " kafka_ts timestamp, payload binary, reason string, seen_at timestamp"
)
MINUTE_SCHEMA = (
    "symbol string, window_start timestamp, window_end timestamp, trade_count long,"
    " avg_price double, open_price double, high_price double, low_price double,"
    " close_price double, total_volume double, vwap double"
)
MOVING_SCHEMA = (
    "symbol string, window_seconds int, slide_seconds int, window_end timestamp,"
    " window_start timestamp, trade_count long,"
    " arithmetic_mean double, geometric_mean double, harmonic_mean double"
)
# Input of the aggregations: the trade columns they read.
AGG_INPUT_SCHEMA = (
    "symbol string, trade_ts timestamp, kafka_partition int, kafka_offset long,"
    " price double, volume double"
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def ms(*args: int, millis: int = 0) -> datetime:
    return utc(*args).replace(microsecond=millis * 1000)


def avro(**fields: object) -> bytes:
    """One trade encoded the way the producer does: schemaless Avro binary."""
    record = {
        "symbol": "AAPL", "price": 187.5, "volume": 10.0,
        "trade_ts": ms(2024, 3, 1, 23, 59, 59, millis=999), "conditions": ["1", "12"],
        "ingest_ts": ms(2024, 3, 2, 0, 0, 0, millis=10),
    }
    record.update(fields)
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, AVRO_SCHEMA, record)
    return buffer.getvalue()


KAFKA_TS = ms(2024, 3, 2, 0, 0, 0, millis=20)
SEEN_AT = utc(2024, 3, 2, 0, 1)
GOOD = avro()

RECORDS = [
    # (partition, offset, Kafka timestamp, value)
    (0, 0, KAFKA_TS, GOOD),
    (0, 1, KAFKA_TS, avro(symbol="BINANCE:BTCUSDT", price=62000.25, volume=0.0,
                          trade_ts=ms(2024, 3, 2, 0, 0, 0), conditions=None)),
    # Same millisecond as offset 1, another partition: a distinct row.
    (2, 7, KAFKA_TS, avro(symbol="BINANCE:BTCUSDT", price=62000.5, volume=0.25,
                          trade_ts=ms(2024, 3, 2, 0, 0, 0), conditions=[])),
    (1, 0, KAFKA_TS, b""),
    (1, 1, KAFKA_TS, None),
    # A string length of zigzag(0x01) = -1: no Avro decoder accepts it.
    (1, 2, KAFKA_TS, b"\x01\x9a\x17\xfe\x00\x42random"),
    (1, 3, KAFKA_TS, GOOD[:10]),
    (1, 4, KAFKA_TS, GOOD + b"\x00\x00"),
    (1, 5, KAFKA_TS, avro(symbol="")),
    (1, 6, KAFKA_TS, avro(symbol="  ")),
    (1, 7, KAFKA_TS, avro(price=0.0)),
    (1, 8, KAFKA_TS, avro(price=-1.5)),
    (1, 9, KAFKA_TS, avro(price=float("nan"))),
    (1, 10, KAFKA_TS, avro(price=float("inf"))),
    (1, 11, KAFKA_TS, avro(volume=-0.5)),
    (1, 12, KAFKA_TS, avro(volume=float("nan"))),
    # The day of a rejected record is the UTC day of its Kafka timestamp.
    (1, 13, ms(2024, 3, 1, 23, 59, 59, millis=999), avro(volume=float("inf"))),
    # Bounds that keep every window sum finite, and the symbol length cap.
    (1, 14, KAFKA_TS, avro(price=1.0000001e15)),
    (1, 15, KAFKA_TS, avro(price=9.9e-13)),
    (1, 16, KAFKA_TS, avro(volume=1.0000001e15)),
    (1, 17, KAFKA_TS, avro(symbol="S" * 65)),
    # Event time: 1 ms past Kafka's timestamp + 60 s, and 1 ms before 2000.
    (1, 18, KAFKA_TS, avro(trade_ts=ms(2024, 3, 2, 0, 1, 0, millis=21))),
    (1, 19, KAFKA_TS, avro(trade_ts=ms(1999, 12, 31, 23, 59, 59, millis=999))),
    # Conditions of 70 and 10,000 bytes (two- and three-byte lengths), a byte appended.
    (1, 20, KAFKA_TS, avro(conditions=["x" * 70, "é" * 5000]) + b"\x00"),
    # The bounds themselves are accepted.
    (3, 0, KAFKA_TS, avro(symbol="S" * 64, price=1e15, volume=1e15,
                          trade_ts=ms(2024, 3, 2, 0, 1, 0, millis=20))),
    (3, 1, KAFKA_TS, avro(price=1e-12, trade_ts=ms(2000, 1, 1, 0, 0, 0), conditions=None)),
    # Long conditions are no trailing bytes.
    (3, 2, KAFKA_TS, avro(conditions=["x" * 70, "é" * 5000])),
]


@pytest.fixture(scope="module")
def decoded(spark: SparkSession):
    records = [("Market", p, o, ts, v) for p, o, ts, v in RECORDS]
    frame = (
        spark.createDataFrame(records, KAFKA_SCHEMA)
        .transform(decode_trades(SCHEMA_JSON))
        .cache()
    )
    yield frame
    frame.unpersist()


def test_valid_records_become_trade_rows_keyed_by_day_and_kafka_coordinates(
    spark: SparkSession, decoded: DataFrame
) -> None:
    expected = spark.createDataFrame(
        [
            # 23:59:59.999 is still March 1st; 00:00:00.000 is March 2nd.
            ("AAPL", date(2024, 3, 1), ms(2024, 3, 1, 23, 59, 59, millis=999), 0, 0,
             187.5, 10.0, ["1", "12"], ms(2024, 3, 2, 0, 0, 0, millis=10), "Market"),
            ("BINANCE:BTCUSDT", date(2024, 3, 2), ms(2024, 3, 2, 0, 0, 0), 0, 1,
             62000.25, 0.0, None, ms(2024, 3, 2, 0, 0, 0, millis=10), "Market"),
            ("BINANCE:BTCUSDT", date(2024, 3, 2), ms(2024, 3, 2, 0, 0, 0), 2, 7,
             62000.5, 0.25, [], ms(2024, 3, 2, 0, 0, 0, millis=10), "Market"),
            ("S" * 64, date(2024, 3, 2), ms(2024, 3, 2, 0, 1, 0, millis=20), 3, 0,
             1e15, 1e15, ["1", "12"], ms(2024, 3, 2, 0, 0, 0, millis=10), "Market"),
            ("AAPL", date(2000, 1, 1), ms(2000, 1, 1, 0, 0, 0), 3, 1,
             1e-12, 10.0, None, ms(2024, 3, 2, 0, 0, 0, millis=10), "Market"),
            ("AAPL", date(2024, 3, 1), ms(2024, 3, 1, 23, 59, 59, millis=999), 3, 2,
             187.5, 10.0, ["x" * 70, "é" * 5000], ms(2024, 3, 2, 0, 0, 0, millis=10),
             "Market"),
        ],
        TRADE_SCHEMA,
    )
    assertDataFrameEqual(decoded.transform(valid_trades), expected)


def test_every_invalid_record_is_rejected_with_its_reason_and_bytes(
    spark: SparkSession, decoded: DataFrame
) -> None:
    def rejected(offset: int, reason: str, day: date = date(2024, 3, 2)) -> tuple:
        partition, _, kafka_ts, value = next(r for r in RECORDS if r[:2] == (1, offset))
        return ("Market", day, partition, offset, kafka_ts, value, reason, SEEN_AT)

    expected = spark.createDataFrame(
        [
            rejected(0, "empty_value"),
            rejected(1, "empty_value"),
            rejected(2, "undecodable_avro"),
            rejected(3, "undecodable_avro"),
            rejected(4, "trailing_bytes"),
            rejected(5, "bad_symbol"),
            rejected(6, "bad_symbol"),
            rejected(7, "bad_price"),
            rejected(8, "bad_price"),
            rejected(9, "bad_price"),
            rejected(10, "bad_price"),
            rejected(11, "bad_volume"),
            rejected(12, "bad_volume"),
            rejected(13, "bad_volume", day=date(2024, 3, 1)),
            rejected(14, "bad_price"),
            rejected(15, "bad_price"),
            rejected(16, "bad_volume"),
            rejected(17, "bad_symbol"),
            rejected(18, "future_trade_ts"),
            rejected(19, "stale_trade_ts"),
            rejected(20, "trailing_bytes"),
        ],
        REJECTED_SCHEMA,
    )
    actual = decoded.transform(rejected_records(seen_at=F.lit(SEEN_AT)))
    assertDataFrameEqual(actual, expected)


def test_missing_timestamps_are_rejected(spark: SparkSession) -> None:
    # The committed schema cannot encode a null timestamp: build the decoded structs.
    trade = (
        "struct<symbol:string, price:double, volume:double, trade_ts:timestamp,"
        " conditions:array<string>, ingest_ts:timestamp>"
    )
    ts = utc(2024, 3, 1, 12)
    frame = spark.createDataFrame(
        [
            (1, ("AAPL", 1.0, 1.0, None, None, ts), b"x"),
            (2, ("AAPL", 1.0, 1.0, ts, None, None), b"x"),
        ],
        f"id int, trade {trade}, payload binary",
    )
    actual = frame.select("id", rejection_reason(
        F.col("trade"), F.col("payload"), F.lit(ts), SCHEMA_JSON).alias("reason"))
    expected = spark.createDataFrame(
        [(1, "missing_trade_ts"), (2, "missing_ingest_ts")], "id int, reason string"
    )
    assertDataFrameEqual(actual, expected)


def test_minute_windows_boundaries_ohlc_ties_and_vwap(spark: SparkSession) -> None:
    trades = spark.createDataFrame(
        [
            # symbol, trade_ts, kafka_partition, kafka_offset, price, volume
            ("AAPL", ms(2024, 3, 1, 12, 0, 59, millis=999), 0, 5, 10.0, 1.0),
            ("AAPL", ms(2024, 3, 1, 12, 1, 0), 0, 6, 20.0, 3.0),
            # Same millisecond as offset 6, later partition: opens after it.
            ("AAPL", ms(2024, 3, 1, 12, 1, 0), 1, 2, 21.0, 1.0),
            ("AAPL", ms(2024, 3, 1, 12, 1, 30, millis=500), 0, 9, 19.0, 0.0),
            # Same millisecond and partition: offset 1 is the later trade, the close.
            ("AAPL", ms(2024, 3, 1, 12, 1, 59, millis=999), 2, 1, 22.0, 2.0),
            ("AAPL", ms(2024, 3, 1, 12, 1, 59, millis=999), 2, 0, 18.0, 4.0),
            # No volume at all in this minute: VWAP falls back to the average price.
            ("MSFT", ms(2024, 3, 1, 12, 0, 10), 1, 0, 30.0, 0.0),
            ("MSFT", ms(2024, 3, 1, 12, 0, 20), 1, 1, 31.0, 0.0),
        ],
        AGG_INPUT_SCHEMA,
    )
    expected = spark.createDataFrame(
        [
            # 12:00:59.999 belongs to the 12:00 minute, alone.
            ("AAPL", utc(2024, 3, 1, 12, 0), utc(2024, 3, 1, 12, 1), 1,
             10.0, 10.0, 10.0, 10.0, 10.0, 1.0, 10.0),
            # prices 20, 21, 19, 22, 18: avg 100/5 = 20; volume 3+1+0+2+4 = 10;
            # VWAP (20*3 + 21*1 + 19*0 + 22*2 + 18*4) / 10 = 197/10 = 19.7
            ("AAPL", utc(2024, 3, 1, 12, 1), utc(2024, 3, 1, 12, 2), 5,
             20.0, 20.0, 22.0, 18.0, 22.0, 10.0, 19.7),
            # avg (30 + 31)/2 = 30.5; volume 0 -> VWAP = avg = 30.5
            ("MSFT", utc(2024, 3, 1, 12, 0), utc(2024, 3, 1, 12, 1), 2,
             30.5, 30.0, 31.0, 30.0, 31.0, 0.0, 30.5),
        ],
        MINUTE_SCHEMA,
    )
    actual = trades.transform(minute_windows)
    assertDataFrameEqual(actual, expected, rtol=1e-12)


def test_moving_means_over_sliding_windows(spark: SparkSession) -> None:
    trades = spark.createDataFrame(
        [
            ("X", utc(2024, 3, 1, 12, 0, 40), 0, 0, 1.0, 1.0),
            ("X", utc(2024, 3, 1, 12, 0, 45), 0, 1, 2.0, 1.0),
            ("X", utc(2024, 3, 1, 12, 0, 50), 0, 2, 4.0, 1.0),
            ("X", utc(2024, 3, 1, 12, 1, 10), 0, 3, 8.0, 1.0),
        ],
        AGG_INPUT_SCHEMA,
    )
    expected = spark.createDataFrame(
        [
            # [12:00:00, 12:01:00): 1, 2, 4 -> AM 7/3, GM (1*2*4)^(1/3) = 2,
            # HM 3 / (1 + 1/2 + 1/4) = 12/7
            ("X", 60, 30, utc(2024, 3, 1, 12, 1), utc(2024, 3, 1, 12, 0), 3,
             2.3333333333333335, 2.0, 1.7142857142857142),
            # [12:00:30, 12:01:30): 1, 2, 4, 8 -> AM 15/4 = 3.75,
            # GM (1*2*4*8)^(1/4) = 64^(1/4) = 2*sqrt(2), HM 4 / (15/8) = 32/15
            ("X", 60, 30, utc(2024, 3, 1, 12, 1, 30), utc(2024, 3, 1, 12, 0, 30), 4,
             3.75, 2.8284271247461903, 2.1333333333333333),
            # [12:01:00, 12:02:00): 8 alone -> every mean is 8
            ("X", 60, 30, utc(2024, 3, 1, 12, 2), utc(2024, 3, 1, 12, 1), 1, 8.0, 8.0, 8.0),
        ],
        MOVING_SCHEMA,
    )
    actual = trades.transform(moving_means(timedelta(minutes=1), timedelta(seconds=30)))
    assertDataFrameEqual(actual, expected, rtol=1e-12)

    # The recompute keeps the windows that overlap its range, [12:01:20, 12:01:40) here:
    # the window ending 12:01:00 lies entirely before it.
    kept = actual.transform(windows_overlapping(utc(2024, 3, 1, 12, 1, 20),
                                                utc(2024, 3, 1, 12, 1, 40)))
    assertDataFrameEqual(kept, expected.where(F.col("trade_count") != 3), rtol=1e-12)


SPARK_MAX_MILLIS = (2**63 - 1) // 1000
symbols = st.text(max_size=20)
millis = st.one_of(st.integers(-(2**62), 2**62), st.sampled_from([0, -1, 2**63 - 1, -(2**63)]))
records = st.fixed_dictionaries({
    "symbol": symbols,
    "price": st.floats(allow_nan=False),
    "volume": st.floats(allow_nan=False),
    "trade_ts": millis,
    # Short codes as venues send them, and strings around the 64 bytes that take a
    # two-byte length.
    "conditions": st.one_of(st.none(), st.lists(
        st.text(max_size=5) | st.text(min_size=16, max_size=70), max_size=300)),
    "ingest_ts": millis,
})


@settings(max_examples=4, deadline=None)
@given(batch=st.lists(records, min_size=1, max_size=60))
def test_any_record_decodes_or_is_rejected_and_its_size_is_bounded_exactly(
    spark: SparkSession, batch: list[dict]
) -> None:
    """Every encodable record, extreme timestamps included, never fails the batch: it is
    a valid trade or rejected with a reason, and trailing bytes are always noticed.
    The computed size is the encoding's length but for the extra bytes of the
    conditions' length prefixes (one byte each below 64 bytes)."""
    rows = []
    for n, record in enumerate(batch):
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, AVRO_SCHEMA, record)
        rows += [("Market", 0, 2 * n, KAFKA_TS, buffer.getvalue()),
                 ("Market", 0, 2 * n + 1, KAFKA_TS, buffer.getvalue() + b"\x00")]
    decoded = spark.createDataFrame(rows, KAFKA_SCHEMA).transform(decode_trades(SCHEMA_JSON))
    result = decoded.select(
        "kafka_offset", "reason", F.length("payload").alias("length"),
        avro_size_lower_bound(F.col("trade"), json.loads(SCHEMA_JSON)).alias("size")
    ).collect()
    reasons = {r.kafka_offset: r.reason for r in result}
    assert len(reasons) == len(rows)
    # A time beyond Spark's microsecond range decodes as null, so has no size (and its
    # record is rejected as missing_trade_ts or missing_ingest_ts).
    in_range = [all(abs(record[f]) <= SPARK_MAX_MILLIS for f in ("trade_ts", "ingest_ts"))
                for record in batch]
    # What the bound leaves out: the bytes past the first of each item's length prefix
    # (a zig-zag varint of 2n for n bytes, 7 bits a byte).
    missed = [sum(max(1, -(-(2 * len(c.encode())).bit_length() // 7)) - 1
                  for c in record["conditions"] or ())
              for record in batch]
    assert [r.size for r in result if r.kafka_offset % 2 == 0] == [
        r.length - left_out if ok else None
        for r, ok, left_out in zip((r for r in result if r.kafka_offset % 2 == 0), in_range,
                                   missed, strict=True)]
    for n in range(len(batch)):
        # A record with a byte appended is never accepted.
        assert reasons[2 * n + 1] is not None
        # Without it, a record is rejected for a value, never for its length.
        assert reasons[2 * n] != "trailing_bytes", batch[n]
