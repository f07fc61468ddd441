"""Avro encoding with the committed schema: raw binary, no header, exact round trip."""

from __future__ import annotations

import io
import json
from pathlib import Path

import fastavro
import pytest

from producer import avro_codec
from producer.messages import Trade

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schemas" / "trade.avsc"

TRADES = [
    Trade("BINANCE:BTCUSDT", 97012.5, 0.0123, 1_732_180_000_123, None, 1_732_180_000_200),
    Trade("AAPL", 230.01, 100.0, 1_732_180_000_123, ("1", "12"), 1_732_180_000_201),
    Trade("OANDA:EUR_USD", 1.05, 0.0, 1_732_180_000_124, (), 1_732_180_000_202),
    Trade("ÆØÅ:ünï", 1e-8, 1e12, 946_684_800_000, ("ß",), 4_102_444_799_999),
]


def test_codec_uses_the_committed_schema_file() -> None:
    assert avro_codec.SCHEMA_PATH.resolve() == SCHEMA_FILE
    assert avro_codec.load_schema() == json.loads(SCHEMA_FILE.read_text())


@pytest.mark.parametrize("trade", TRADES, ids=lambda t: t.symbol)
def test_round_trip(trade: Trade) -> None:
    assert avro_codec.decode(avro_codec.encode(trade)) == trade


@pytest.mark.parametrize("trade", TRADES, ids=lambda t: t.symbol)
def test_encoding_is_raw_avro_readable_by_any_reader_of_the_schema(trade: Trade) -> None:
    data = avro_codec.encode(trade)
    assert not data.startswith(b"Obj\x01")  # no object-container header
    # An independent reader with the schema file as is (logical types on), as Spark has.
    record = fastavro.schemaless_reader(
        io.BytesIO(data), fastavro.parse_schema(json.loads(SCHEMA_FILE.read_text())), None)
    assert record["symbol"] == trade.symbol
    assert record["price"] == trade.price
    assert int(record["trade_ts"].timestamp() * 1000) == trade.trade_ts
    assert record["conditions"] == (list(trade.conditions) if trade.conditions is not None
                                    else None)


def test_decode_record_gives_epoch_millisecond_integers() -> None:
    record = avro_codec.decode_record(avro_codec.encode(TRADES[0]))
    assert record == {"symbol": "BINANCE:BTCUSDT", "price": 97012.5, "volume": 0.0123,
                      "trade_ts": 1_732_180_000_123, "conditions": None,
                      "ingest_ts": 1_732_180_000_200}


def test_trailing_bytes_are_an_error() -> None:
    with pytest.raises(ValueError, match="trailing"):
        avro_codec.decode(avro_codec.encode(TRADES[0]) + b"\x00")
