"""The live producer against a local fake Finnhub server and the real Kafka broker."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from finnhub_server import TOO_MANY_SYMBOLS, FakeFinnhub
from producer_testing import ProducerRun, consume

from contract.exits import ExitCode
from producer import avro_codec

pytestmark = pytest.mark.integration

TOKEN = "fh-test-Tok3n-5ecr3t"
SYMBOLS = ["BINANCE:BTCUSDT", "BINANCE:ETHUSDT", "AAPL"]
T0 = 1_732_180_000_000


@pytest.fixture
def server() -> Iterator[FakeFinnhub]:
    with FakeFinnhub(token=TOKEN) as fake:
        yield fake


@pytest.fixture
def topics(make_topic: Callable[..., str]) -> tuple[str, str]:
    return make_topic(), make_topic(partitions=1)


def start_live(run_producer: Callable[..., ProducerRun], server: FakeFinnhub,
               topics: tuple[str, str], *extra: str, token: str = TOKEN,
               symbols: list[str] = SYMBOLS) -> ProducerRun:
    return run_producer(
        "live", "--symbols", ",".join(symbols), "--topic", topics[0],
        "--dead-letter-topic", topics[1], "--status-interval", "0.5",
        "--reconnect-base-delay", "0.1", "--reconnect-max-delay", "0.5", *extra,
        env={"FINNHUB_TOKEN": token, "FINNHUB_WS_URL": server.url},
    )


def subscriptions(symbols: list[str], kind: str = "subscribe") -> list[dict[str, str]]:
    return [{"type": kind, "symbol": s} for s in symbols]


def test_live_session(run_producer: Callable[..., ProducerRun], server: FakeFinnhub,
                      topics: tuple[str, str], kafka_bootstrap: str, tmp_path: Path) -> None:
    record = tmp_path / "recorded.jsonl"
    producer = start_live(run_producer, server, topics, "--record", str(record))
    server.wait_for(lambda: len(server.client_messages()) == 3, what="3 subscriptions")
    assert server.client_messages(1) == subscriptions(SYMBOLS)
    assert [m.raw for m in server.messages] == [json.dumps(s) for s in subscriptions(SYMBOLS)]

    pushed = [
        json.dumps({"type": "trade", "data": [
            {"s": "BINANCE:BTCUSDT", "p": 97012.5, "t": T0, "v": 0.01, "c": None},
            {"s": "BINANCE:BTCUSDT", "p": 97012.6, "t": T0, "v": 0.02, "c": None},
            {"s": "AAPL", "p": -1, "t": T0, "v": 5, "c": ["1"]},
            {"s": "AAPL", "p": 230.5, "t": T0 + 1, "v": 5, "c": ["1", "12"]},
        ]}),
        '{"type":"ping"}',
        json.dumps({"type": "error", "msg": TOO_MANY_SYMBOLS}),
        '{"type":"trade","data":[{"s":"BINANCE:ETHUSDT"',  # cut off
    ]
    for raw in pushed:
        assert server.push(raw) == 1

    trades = [avro_codec.decode(r.value) for r in consume(kafka_bootstrap, topics[0], 3)]
    assert sorted((t.symbol, t.price, t.volume, t.trade_ts, t.conditions) for t in trades) == [
        ("AAPL", 230.5, 5.0, T0 + 1, ("1", "12")),
        ("BINANCE:BTCUSDT", 97012.5, 0.01, T0, None),
        ("BINANCE:BTCUSDT", 97012.6, 0.02, T0, None),
    ]
    dead = consume(kafka_bootstrap, topics[1], 2)
    assert sorted(json.loads(r.value)["reason"].split(":")[0] for r in dead) == [
        "bad_price", "invalid_json"]
    producer.wait_for_output("pings=1 errors=1")

    assert producer.stop(signal.SIGTERM) == ExitCode.OK
    assert server.client_messages(1) == subscriptions(SYMBOLS) + subscriptions(
        SYMBOLS, "unsubscribe")
    output = producer.output
    assert "subscribe to fewer symbols" in output  # the error is explained
    assert "finished: messages=4 trades_sent=3 rejected=2 pings=1 errors=1" in output
    assert list(map(str.rstrip, record.read_text().splitlines())) == pushed
    assert TOKEN not in output
    assert TOKEN not in record.read_text()


def test_reconnects_and_resubscribes_after_a_drop(
        run_producer: Callable[..., ProducerRun], server: FakeFinnhub,
        topics: tuple[str, str], kafka_bootstrap: str) -> None:
    producer = start_live(run_producer, server, topics)
    server.wait_for(lambda: server.subscribed(1) == set(SYMBOLS), what="subscriptions")
    server.drop()
    server.wait_for(lambda: server.subscribed(2) == set(SYMBOLS), what="resubscription")
    assert server.client_messages(2) == subscriptions(SYMBOLS)
    server.push_trades([{"s": "AAPL", "p": 1.0, "t": T0, "v": 1}])
    assert len(consume(kafka_bootstrap, topics[0], 1)) == 1
    server.close_all()  # a clean close frame (server restart) is handled the same way
    server.wait_for(lambda: server.subscribed(3) == set(SYMBOLS), what="2nd resubscription")

    assert producer.stop(signal.SIGINT) == ExitCode.OK
    assert "reconnects=2" in producer.output
    assert "Finnhub closed the connection (code 1001: going away)" in producer.output
    assert TOKEN not in producer.output


def test_idle_watchdog_reconnects_a_silent_stream(
        run_producer: Callable[..., ProducerRun], server: FakeFinnhub,
        topics: tuple[str, str]) -> None:
    producer = start_live(run_producer, server, topics, "--idle-timeout", "1")
    server.wait_for(lambda: server.connections >= 2 and server.subscribed(2) == set(SYMBOLS),
                    timeout=15, what="a reconnect after 1 s of silence")
    assert producer.stop() == ExitCode.OK
    assert "nothing received from Finnhub" in producer.output


def test_rejected_token_exits_at_once_with_a_clear_message(
        run_producer: Callable[..., ProducerRun], server: FakeFinnhub,
        topics: tuple[str, str]) -> None:
    wrong = "wrong-" + TOKEN
    producer = start_live(run_producer, server, topics, token=wrong)
    assert producer.wait(timeout=30) == ExitCode.AUTH
    output = producer.output
    assert "producer: error: Finnhub rejected the API token (HTTP 401)" in output
    assert [h.accepted for h in server.handshakes] == [False]  # no retry loop
    assert wrong not in output and TOKEN not in output
    assert "token=" in server.handshakes[0].path  # it really was sent, in the URL only


def test_server_unreachable_is_retried_without_leaking_the_token(
        run_producer: Callable[..., ProducerRun], topics: tuple[str, str]) -> None:
    dead = FakeFinnhub(token=TOKEN).start()
    url = dead.url
    dead.stop()  # nothing listens on that port any more
    producer = run_producer(
        "live", "--symbols", "AAPL", "--topic", topics[0], "--dead-letter-topic", topics[1],
        "--reconnect-base-delay", "0.1", "--reconnect-max-delay", "0.2",
        env={"FINNHUB_TOKEN": TOKEN, "FINNHUB_WS_URL": url + "/?region=eu"})
    producer.wait_for_output("reconnecting to Finnhub")
    producer.wait_for_output("cannot connect to Finnhub")
    assert producer.stop() == ExitCode.OK
    assert TOKEN not in producer.output
    assert "?region=eu" in producer.output  # the URL is logged, without the token


def test_token_echoed_by_the_server_reaches_no_record_file_or_dead_letter(
        run_producer: Callable[..., ProducerRun], server: FakeFinnhub,
        topics: tuple[str, str], kafka_bootstrap: str, tmp_path: Path) -> None:
    record = tmp_path / "recorded.jsonl"
    producer = start_live(run_producer, server, topics, "--record", str(record))
    server.wait_for(lambda: server.subscribed(1) == set(SYMBOLS), what="subscriptions")
    good = {"s": "AAPL", "p": 230.5, "t": T0, "v": 5, "c": None}
    server.push_trades([good, {"s": TOKEN, "p": 1.0, "t": T0, "v": 1},
                        {"s": "AAPL", "p": 1.0, "t": T0, "v": 1, "c": [TOKEN]}])
    server.push(f'{{"type":"{TOKEN}"}}')
    server.push(f"not json {TOKEN}")
    dead = consume(kafka_bootstrap, topics[1], 4)
    trades = consume(kafka_bootstrap, topics[0], 1)
    assert producer.stop() == ExitCode.OK

    assert [avro_codec.decode(r.value).symbol for r in trades] == ["AAPL"]
    reasons = sorted(json.loads(r.value)["reason"].split(":")[0] for r in dead)
    assert reasons == ["bad_conditions", "bad_symbol", "invalid_json", "unknown_type"]
    assert all(r.key in (None, b"AAPL") for r in dead)
    for text in (record.read_text(), producer.output, *(r.value.decode() for r in dead)):
        assert TOKEN not in text
    assert "***" in record.read_text()
    assert len(record.read_text().splitlines()) == 3
