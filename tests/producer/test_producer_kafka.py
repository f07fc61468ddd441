"""Synthetic and replay runs into the real local Kafka broker."""

from __future__ import annotations

import json
import re
import signal
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest
from kafka.partitioner.default import murmur2
from producer_testing import ProducerRun, consume

from contract.exits import ExitCode
from producer import avro_codec
from producer.messages import parse_message
from producer.synthetic import generate_messages

pytestmark = pytest.mark.integration

SYMBOLS = ("BINANCE:BTCUSDT", "BINANCE:ETHUSDT", "AAPL", "MSFT")
START_MS = 1_732_180_000_000
RECEIVED = START_MS + 30 * 86_400_000  # long after any generated event time


def expected_per_symbol(seed: int, count: int,
                        event_rate: float = 100.0) -> dict[str, list[tuple]]:
    """The trades a synthetic run sends, regenerated from its seed, per symbol in order."""
    expected = defaultdict(list)
    for raw in generate_messages(SYMBOLS, seed=seed, start_ms=START_MS, count=count,
                                 event_rate=event_rate):
        for trade in parse_message(raw, RECEIVED).trades:
            expected[trade.symbol].append((trade.price, trade.volume, trade.trade_ts,
                                           trade.conditions))
    return expected


def topic_args(make_topic: Callable[..., str]) -> tuple[str, str, list[str]]:
    topic, dead = make_topic(), make_topic(partitions=1)
    return topic, dead, ["--topic", topic, "--dead-letter-topic", dead]


def test_synthetic_trades_arrive_as_decodable_records_keyed_by_symbol(
        run_producer: Callable[..., ProducerRun], make_topic: Callable[..., str],
        kafka_bootstrap: str) -> None:
    count = 5_000
    topic, dead, args = topic_args(make_topic)
    before_ms = int(time.time() * 1000)
    producer = run_producer("synthetic", "--symbols", ",".join(SYMBOLS), "--count", str(count),
                            "--seed", "11", "--start-ms", str(START_MS), "--rate", "0", *args)
    assert producer.wait() == ExitCode.OK, producer.output
    after_ms = int(time.time() * 1000)

    records = consume(kafka_bootstrap, topic, count)
    assert len(records) == count
    # The same (seed, start) regenerates the same trades: compare per symbol, in order,
    # which also proves each symbol stayed ordered within its partition.
    expected = expected_per_symbol(11, count)
    received = defaultdict(list)
    partitions = defaultdict(set)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        trade = avro_codec.decode(record.value)
        assert record.key == trade.symbol.encode("utf-8")
        assert before_ms <= trade.ingest_ts <= after_ms
        received[trade.symbol].append((trade.price, trade.volume, trade.trade_ts,
                                       trade.conditions))
        partitions[trade.symbol].add(record.partition)
    assert received == expected
    # Each symbol on the partition Kafka's default (murmur2) partitioner picks for its key.
    assert {s: p.pop() for s, p in partitions.items()} == {
        s: (murmur2(s.encode()) & 0x7FFFFFFF) % 3 for s in SYMBOLS}
    assert consume(kafka_bootstrap, dead, 0, timeout=1) == []
    assert "finished: messages=" in producer.output
    assert f"trades_sent={count} rejected=0" in producer.output


def test_rejected_input_lands_in_the_dead_letter_topic_with_its_reason(
        run_producer: Callable[..., ProducerRun], make_topic: Callable[..., str],
        kafka_bootstrap: str, tmp_path: Path) -> None:
    topic, dead, args = topic_args(make_topic)
    good = {"s": "AAPL", "p": 230.5, "t": START_MS, "v": 10, "c": ["1"]}
    bad_trade = {"s": "AAPL", "p": 230.5, "t": START_MS, "v": -3}
    lines = [
        json.dumps({"type": "trade", "data": [good, good, bad_trade, good, good]}),
        '{"type":"ping"}',
        "{broken",
        '{"type":"news","data":[]}',
        json.dumps({"type": "trade", "data": [{"p": 1, "t": START_MS, "v": 1}]}),
    ]
    replay_file = tmp_path / "input.jsonl"
    replay_file.write_text("\n".join(lines) + "\n")
    producer = run_producer("replay", str(replay_file), "--speed", "0", *args)
    assert producer.wait() == ExitCode.OK, producer.output

    assert len(consume(kafka_bootstrap, topic, 4)) == 4
    dead_letters = consume(kafka_bootstrap, dead, 4)
    values = [json.loads(r.value) for r in dead_letters]
    assert all(set(v) == {"reason", "raw", "ingest_ts", "source", "truncated"}
               and v["truncated"] is False for v in values)
    assert all(v["source"] == "replay" and isinstance(v["ingest_ts"], int) for v in values)
    by_code = {v["reason"].split(":")[0]: (v, r.key) for v, r in zip(values, dead_letters,
                                                                      strict=True)}
    assert set(by_code) == {"bad_volume", "invalid_json", "unknown_type", "missing_field"}
    value, key = by_code["bad_volume"]
    assert value["reason"] == "bad_volume: -3.0"
    assert json.loads(value["raw"]) == bad_trade
    assert key == b"AAPL"
    value, key = by_code["invalid_json"]
    assert (value["raw"], key) == ("{broken", None)
    assert by_code["unknown_type"][0]["reason"] == "unknown_type: news"
    assert by_code["missing_field"][0]["reason"] == "missing_field: s"
    assert re.search(r"rejected=4 pings=1 .* rejected_by_reason=\[bad_volume=1, "
                     r"invalid_json=1, missing_field=1, unknown_type=1\]", producer.output)


def test_sigterm_flushes_everything_sent_and_exits_zero(
        run_producer: Callable[..., ProducerRun], make_topic: Callable[..., str],
        kafka_bootstrap: str) -> None:
    topic, _, args = topic_args(make_topic)
    producer = run_producer("synthetic", "--symbols", ",".join(SYMBOLS), "--rate", "2000",
                            "--seed", "3", "--start-ms", str(START_MS),
                            "--status-interval", "0.5", *args)
    producer.wait_for_output("status: ")
    assert producer.stop(signal.SIGTERM) == ExitCode.OK
    match = re.search(r"finished: messages=\d+ trades_sent=(\d+)", producer.output)
    assert match, producer.output
    sent = int(match.group(1))
    records = consume(kafka_bootstrap, topic, sent)
    received = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        trade = avro_codec.decode(record.value)
        received[trade.symbol].append((trade.price, trade.volume, trade.trade_ts,
                                       trade.conditions))
    # What Kafka holds is, per symbol, exactly a prefix of the regenerated stream: nothing
    # lost before the stop, nothing duplicated or invented. The count the producer
    # reports (confirmed sends only) matches it.
    # (At a --rate, event time advances at that rate.)
    expected = expected_per_symbol(3, 10 * sum(map(len, received.values())) + 1000, 2000)
    assert received and all(received[s] == expected[s][:len(received[s])] for s in received)
    assert sum(map(len, received.values())) == sent > 0


def test_synthetic_at_full_speed_never_sends_future_trades(
        run_producer: Callable[..., ProducerRun], make_topic: Callable[..., str],
        kafka_bootstrap: str) -> None:
    # --rate 0 without --start-ms: a backlog that ends now, never ahead of the clock,
    # so every trade passes even a zero skew.
    count = 20_000
    topic, dead, args = topic_args(make_topic)
    producer = run_producer("synthetic", "--count", str(count), "--rate", "0",
                            "--event-rate", "100000", "--max-future-skew", "0", *args)
    assert producer.wait() == ExitCode.OK, producer.output
    trades = [avro_codec.decode(r.value) for r in consume(kafka_bootstrap, topic, count)]
    assert len(trades) == count
    assert all(t.trade_ts <= t.ingest_ts for t in trades)
    assert consume(kafka_bootstrap, dead, 0, timeout=1) == []


def test_missing_topic_is_a_clear_fatal_error(
        run_producer: Callable[..., ProducerRun], make_topic: Callable[..., str]) -> None:
    producer = run_producer("synthetic", "--count", "1", "--topic", "no_such_topic_x1",
                            "--dead-letter-topic", make_topic())
    assert producer.wait() == ExitCode.KAFKA
    assert "producer: error: Kafka topic(s) missing" in producer.output
    assert "no_such_topic_x1" in producer.output


def test_replay_dead_letters_a_line_too_long_and_replays_the_lines_after_it(
        run_producer: Callable[..., ProducerRun], make_topic: Callable[..., str],
        kafka_bootstrap: str, tmp_path: Path) -> None:
    topic, dead, args = topic_args(make_topic)
    good = [{"s": "AAPL", "p": 230.5 + i, "t": START_MS + i, "v": 10, "c": None}
            for i in range(2)]
    replay_file = tmp_path / "long-line.jsonl"
    replay_file.write_text(json.dumps({"type": "trade", "data": [good[0]]}) + "\n"
                           + "x" * (5 * 1024 * 1024) + "\n"
                           + json.dumps({"type": "trade", "data": [good[1]]}) + "\n")
    producer = run_producer("replay", str(replay_file), "--speed", "0", *args)
    assert producer.wait() == ExitCode.OK, producer.output

    trades = [avro_codec.decode(r.value) for r in consume(kafka_bootstrap, topic, 2)]
    assert sorted(t.price for t in trades) == [230.5, 231.5]
    (letter,) = consume(kafka_bootstrap, dead, 1)
    reason = ("line_too_long: line 2 has 5242880 characters, more than 1048576; its first "
              "4096 are kept")
    value = json.loads(letter.value)
    assert letter.key is None
    assert {k: v for k, v in value.items() if k != "ingest_ts"} == {
        "reason": reason, "raw": "x" * 4096, "source": "replay", "truncated": True,
        "raw_chars": 5 * 1024 * 1024, "reason_chars": len(reason)}
    assert f"rejected (1 so far): {reason}: xxxx" in producer.output
    assert "trades_sent=2 rejected=1 " in producer.output
    assert "rejected_by_reason=[line_too_long=1]" in producer.output


def test_replay_of_hostile_input_finishes_at_speed_one_and_loses_nothing(
        run_producer: Callable[..., ProducerRun], make_topic: Callable[..., str],
        kafka_bootstrap: str, tmp_path: Path) -> None:
    topic, dead, args = topic_args(make_topic)
    good = [{"s": "AAPL", "p": 230.5 + i, "t": START_MS + 100 * i, "v": 10, "c": ["1"]}
            for i in range(6)]
    huge_symbol = "X" * 600_000
    lines = [
        json.dumps({"type": "trade", "data": good[:2]}),
        json.dumps({"type": "trade", "data": [{"s": "\ud800", "p": 1.5, "t": START_MS, "v": 1}]}),
        '"{\\"type\\":\\"trade\\",\\"data\\":[{\\"s\\":\\"\\ud800\\"}]}"',  # raw surrogate line
        json.dumps({"type": "trade", "data": [good[2], {"s": "AAPL", "p": 1.0,
                                                        "t": 2**63 - 1, "v": 1}]}),
        json.dumps({"type": "trade", "data": [{"s": "MSFT", "p": 400.0, "t": 4_070_908_800_000,
                                               "v": 3}]}),  # 2099-01-01, valid-looking
        "{broken",
        '{"type":"trade","data":[',
        json.dumps({"type": "trade", "data": [good[3], good[4]]}),
        json.dumps({"type": "trade", "data": [{"s": huge_symbol, "p": 1.0, "t": START_MS,
                                               "v": 1}]}),
        # 900 kB of \u0001 escapes (under the 1 MiB line cap), 1.05 MB once their
        # backslashes are escaped again in the dead letter.
        json.dumps({"type": "\u0001" * 150_000}),
        json.dumps({"type": "trade", "data": [{"s": "AAPL", "p": 1e308, "t": START_MS,
                                               "v": 1e308}]}),
        json.dumps({"type": "trade", "data": [good[5]]}),
    ]
    replay_file = tmp_path / "hostile.jsonl"
    replay_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    producer = run_producer("replay", str(replay_file), "--speed", "1", *args)
    # Good trades span 0.5 s of event time; a decades-long sleep would time this out.
    assert producer.wait(timeout=120) == ExitCode.OK, producer.output

    trades = [avro_codec.decode(r.value) for r in consume(kafka_bootstrap, topic, len(good))]
    assert sorted((t.symbol, t.price, t.volume, t.trade_ts, t.conditions) for t in trades) == [
        (g["s"], g["p"], 10.0, g["t"], ("1",)) for g in good]
    # Surrogates (escaped, and raw in a JSON-string line) and the huge symbol are
    # bad_symbol; t = 2**63-1 and 2099 are future_trade_ts; a price of 1e308 is bad_price.
    expected_codes = ["bad_price", "bad_symbol", "bad_symbol", "bad_symbol",
                      "future_trade_ts", "future_trade_ts", "invalid_json", "invalid_json",
                      "unknown_type"]
    dead_letters = consume(kafka_bootstrap, dead, len(expected_codes), timeout=60)
    values = [json.loads(r.value) for r in dead_letters]
    assert sorted(v["reason"].split(":")[0] for v in values) == expected_codes
    assert all(len(r.value) <= 1024 * 1024 for r in dead_letters)
    truncated = [v for v in values if v["truncated"]]
    huge_item = json.dumps({"s": huge_symbol, "p": 1.0, "t": START_MS, "v": 1},
                           separators=(",", ":"))
    # The huge symbol fits whole (it is no longer the key too); the control characters
    # would escape to 1.05 MB of JSON: cut to the budget and flagged.
    assert huge_item in [v["raw"] for v in values]
    assert [(v["reason"][:12], v["raw_chars"]) for v in truncated] == [
        ("unknown_type", len(lines[9]))]
    by_key = sorted((r.key or b"")[:20] for r in dead_letters)
    assert by_key.count(b"AAPL") == 2 and b"MSFT" in by_key  # valid symbols key their letter
    assert "producer: error" not in producer.output
    assert f"trades_sent={len(good)} rejected={len(expected_codes)}" in producer.output
