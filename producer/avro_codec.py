"""Avro encoding of trades with the committed contract, schemas/trade.avsc.

Values are raw Avro binary without a container header or schema id (what Spark's
`from_avro` reads), written with fastavro's schemaless writer. The schema is parsed
once per process.

Public API: `encode(trade)`, `decode(data)`, `encode_record(dict)`,
`decode_record(bytes)`, `load_schema(path)`, `SCHEMA_PATH`.
"""

from __future__ import annotations

import copy
import functools
import io
import json
from pathlib import Path
from typing import Any

import fastavro

import contract
from producer.messages import Trade

SCHEMA_PATH = contract.SCHEMA_PATH


def load_schema(path: Path = SCHEMA_PATH) -> dict[str, Any]:
    """The schema file as JSON, unparsed (e.g. to hand to Spark's from_avro)."""
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return schema


@functools.cache
def writer_schema() -> Any:
    return fastavro.parse_schema(load_schema())


@functools.cache
def _plain_schema() -> Any:
    # Same binary layout without logical types, so decoding returns epoch-millisecond
    # integers (as in Trade) instead of datetimes.
    return fastavro.parse_schema(_strip_logical_types(copy.deepcopy(load_schema())))


def _strip_logical_types(node: Any) -> Any:
    if isinstance(node, dict):
        node.pop("logicalType", None)
        for value in node.values():
            _strip_logical_types(value)
    elif isinstance(node, list):
        for value in node:
            _strip_logical_types(value)
    return node


def to_record(trade: Trade) -> dict[str, Any]:
    conditions = trade.conditions
    return {
        "symbol": trade.symbol,
        "price": trade.price,
        "volume": trade.volume,
        "trade_ts": trade.trade_ts,
        "conditions": list(conditions) if conditions is not None else None,
        "ingest_ts": trade.ingest_ts,
    }


def encode_record(record: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, writer_schema(), record)
    return buffer.getvalue()


def encode(trade: Trade) -> bytes:
    """One trade as raw Avro binary (no header)."""
    return encode_record(to_record(trade))


def decode_record(data: bytes) -> dict[str, Any]:
    """Raw Avro binary to a dict with integer timestamps; trailing bytes are an error."""
    buffer = io.BytesIO(data)
    record: dict[str, Any] = fastavro.schemaless_reader(buffer, _plain_schema(), None)
    if buffer.tell() != len(data):
        raise ValueError(f"{len(data) - buffer.tell()} trailing bytes after the Avro record")
    return record


def decode(data: bytes) -> Trade:
    record = decode_record(data)
    conditions = record["conditions"]
    return Trade(
        symbol=record["symbol"],
        price=record["price"],
        volume=record["volume"],
        trade_ts=record["trade_ts"],
        conditions=tuple(conditions) if conditions is not None else None,
        ingest_ts=record["ingest_ts"],
    )
