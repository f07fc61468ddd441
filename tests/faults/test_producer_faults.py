"""Faults on the producer's side: the broker dies mid-send, Finnhub cuts the connection."""

from __future__ import annotations

import collections
import os
import re
import signal
import time

import pytest
from fault_testing import FaultReport
from finnhub_server import FakeFinnhub
from producer_testing import consume, records_in

from producer.avro_codec import decode
from producer.messages import parse_message
from producer.synthetic import generate_messages
from stack import kafka, lifecycle, process

pytestmark = [pytest.mark.faults, pytest.mark.integration]

SYMBOLS = ("BINANCE:BTCUSDT", "BINANCE:ETHUSDT", "AAPL")
# Regenerated trades are parsed as if received long after their event times.
RECEIVED = 1_767_225_600_000 + 30 * 86_400_000


def wait_until(condition, what: str, timeout: float = 120.0) -> None:
    """Poll an observable condition with a generous deadline (never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _identity(trade) -> tuple:
    # Everything but ingest_ts, which is the wall clock of the run.
    return (trade.symbol, trade.price, trade.volume, trade.trade_ts, trade.conditions)


def expected_synthetic(count: int, seed: int, start_ms: int, event_rate: float) -> list:
    """The trades a synthetic run sends, regenerated from its seed."""
    trades = []
    for raw in generate_messages(SYMBOLS, seed=seed, start_ms=start_ms,
                                 event_rate=event_rate, count=count):
        trades.extend(parse_message(raw, ingest_ts=RECEIVED).trades)
    return trades


def test_broker_killed_and_restarted_while_producing(stack, make_topic, run_producer,
                                                     fault_report) -> None:
    topic, dead_letters = make_topic(3), make_topic(1)
    count, rate, seed, start_ms = 15_000, 1000, 5, 1_767_225_600_000
    run = run_producer(
        "synthetic", "--symbols", ",".join(SYMBOLS), "--count", str(count), "--rate", str(rate),
        "--seed", str(seed), "--start-ms", str(start_ms), "--status-interval", "1",
        env={"KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap, "KAFKA_TOPIC": topic,
             "KAFKA_DEAD_LETTER_TOPIC": dead_letters},
    )
    run.wait_for_output("status:", timeout=60)  # connected and sending

    broker = kafka.server(stack)
    pid = broker.pid()
    assert pid is not None
    killed_at = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not process.is_alive(pid), "the broker to die")
    # The producer keeps generating while nobody listens: two more status lines (one a
    # second) prove it ran on with the broker gone before the broker comes back.
    status_lines = run.output.count("status:")
    wait_until(lambda: run.output.count("status:") >= status_lines + 2
               or run.process.poll() is not None, "the producer to run on without a broker")
    lifecycle.up(stack)
    outage = time.monotonic() - killed_at

    assert run.wait(timeout=300) == 0, run.output
    records = consume(stack.kafka_bootstrap, topic, count, timeout=60)
    got = collections.Counter(_identity(decode(r.value)) for r in records)
    want = collections.Counter(_identity(t) for t in
                               expected_synthetic(count, seed, start_ms, rate))
    missing = sum((want - got).values())
    duplicated = sum((got - want).values())
    fault_report(FaultReport("kafka broker SIGKILL", "the Kafka broker", outage, count,
                             len(records), missing, duplicated))
    assert (missing, duplicated, len(records)) == (0, 0, count)
    # Per symbol, the idempotent producer also kept the order within the partition.
    by_symbol = collections.defaultdict(list)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        trade = decode(record.value)
        by_symbol[trade.symbol].append(_identity(trade))
    for symbol in SYMBOLS:
        assert by_symbol[symbol] == [_identity(t) for t in
                                     expected_synthetic(count, seed, start_ms, rate)
                                     if t.symbol == symbol]


def test_finnhub_connection_cut_repeatedly(stack, make_topic, run_producer,
                                           fault_report) -> None:
    topic, dead_letters = make_topic(1), make_topic(1)
    cuts, per_phase = 4, 20
    with FakeFinnhub(token="fault-token") as server:
        run = run_producer(
            "live", "--symbols", ",".join(SYMBOLS), "--reconnect-base-delay", "0.2",
            "--reconnect-max-delay", "2", "--status-interval", "1",
            env={"FINNHUB_TOKEN": "fault-token", "FINNHUB_WS_URL": server.url,
                 "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap, "KAFKA_TOPIC": topic,
                 "KAFKA_DEAD_LETTER_TOPIC": dead_letters},
        )
        delivered, lost, ts, outage = 0, 0, 1_767_225_600_000, 0.0
        for phase in range(cuts + 1):
            connection = phase + 1
            server.wait_for(lambda c=connection: server.connections == c
                            and server.subscribed(c) == set(SYMBOLS),
                            timeout=30, what=f"connection {connection} subscribed")
            for _ in range(per_phase):
                ts += 1
                # A dropped socket may still be listed as open for a moment; only the
                # producer's current connection can receive, so count one delivery.
                if server.push_trades([{"s": s, "p": 100.0 + ts % 7, "t": ts, "v": 1.0}
                                       for s in SYMBOLS]):
                    delivered += len(SYMBOLS)
            # The producer has read (and Kafka stored) what was sent before the cut.
            wait_until(lambda d=delivered: records_in(stack.kafka_bootstrap, topic) >= d,
                       f"phase {phase}'s trades in Kafka")
            if phase < cuts:
                server.drop()
                cut_at = time.monotonic()
                # Finnhub does not replay: what it emits until the producer has
                # resubscribed is gone; count it as the outage's cost.
                # (Finnhub's feed is simulated as one trade per symbol every 10 ms.)
                while server.subscribed(connection + 1) != set(SYMBOLS):
                    ts += 1
                    lost += len(SYMBOLS)
                    time.sleep(0.01)
                outage += time.monotonic() - cut_at
        # Every connection after the first resubscribed every symbol.
        for number in range(1, cuts + 2):
            subscribes = [m["symbol"] for m in server.client_messages(number)
                          if m.get("type") == "subscribe"]
            assert sorted(subscribes) == sorted(SYMBOLS), (number, server.client_messages())
        assert run.stop() == 0, run.output

    records = consume(stack.kafka_bootstrap, topic, delivered, timeout=60)
    assert "fault-token" not in run.output
    reported = re.findall(r"reconnects=(\d+) disconnected=([\d.]+)s", run.output)[-1]
    assert int(reported[0]) == cuts
    fault_report(FaultReport(
        "finnhub connection cut", f"the WebSocket connection {cuts} times", outage, delivered,
        len(records), delivered - len(records), max(0, len(records) - delivered),
        extra=f"producer reported {reported[0]} reconnects and {reported[1]}s disconnected;"
              f" trades Finnhub emitted meanwhile (lost, not replayed): {lost}"))
    assert len(records) == delivered
