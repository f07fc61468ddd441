"""The producer's Prometheus endpoint: the counts it serves are the run's, and they agree
with what Kafka holds (trades and dead letters) for real runs against the local broker."""

from __future__ import annotations

import json
import signal
import socket
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from finnhub_server import FakeFinnhub
from metrics_testing import Scrape, free_port, scrape, scrape_until
from producer_testing import ProducerRun, consume, records_in
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from contract.exits import ExitCode
from producer.__main__ import parse_config
from producer.app import main
from producer.messages import REJECTION_CODES
from producer.metrics import registry_for
from producer.stats import Stats

P = "market_producer"
SYMBOLS = "BINANCE:BTCUSDT,AAPL,MSFT"
START_MS = 1_732_180_000_000
TOKEN = "fh-metrics-T0ken"


# ------------------------------------------------------------------ no Kafka needed


def test_every_metric_is_read_from_the_run_stats() -> None:
    stats = Stats(messages=7, trades_sent=11, reconnects=2, disconnected_s=3.5, send_errors=1,
                  messages_by_kind=Counter(trade=4, ping=2, rejected=1))
    stats.count_rejection("bad_price")
    stats.count_rejection("bad_price")
    stats.count_rejection("invalid_json")
    text = generate_latest(registry_for(stats)).decode()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    assert samples[(f"{P}_trades_sent_total", ())] == 11
    assert samples[(f"{P}_reconnects_total", ())] == 2
    assert samples[(f"{P}_disconnected_seconds_total", ())] == 3.5
    assert samples[(f"{P}_send_errors_total", ())] == 1
    assert {k[1][0][1]: v for k, v in samples.items() if k[0] == f"{P}_messages_total"} == {
        "trade": 4, "ping": 2, "error": 0, "rejected": 1}
    rejected = {k[1][0][1]: v for k, v in samples.items() if k[0] == f"{P}_rejected_total"}
    # Every known reason is there from the start, so that rate() sees a series at 0.
    assert rejected == {code: {"bad_price": 2, "invalid_json": 1}.get(code, 0)
                        for code in REJECTION_CODES}
    assert samples[(f"{P}_last_message_age_seconds", ())] >= 0
    # Each run has its own registry: a second one is independent.
    assert "trades_sent_total 0.0" in generate_latest(registry_for(Stats())).decode()


def test_metrics_options_default_off_and_come_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PRODUCER_METRICS_PORT", raising=False)
    monkeypatch.delenv("PRODUCER_METRICS_HOST", raising=False)
    config, _ = parse_config(["synthetic"])
    assert (config.metrics.port, config.metrics.host) == (0, "127.0.0.1")
    monkeypatch.setenv("PRODUCER_METRICS_PORT", "9108")
    monkeypatch.setenv("PRODUCER_METRICS_HOST", "0.0.0.0")
    config, _ = parse_config(["replay", "x.jsonl"])
    assert (config.metrics.port, config.metrics.host) == (9108, "0.0.0.0")
    config, _ = parse_config(["live", "--metrics-port", "0"])
    assert config.metrics.port == 0


@pytest.mark.parametrize("port", ["70000", "-1"])
def test_a_port_out_of_range_is_one_clear_usage_line(
        port: str, capsys: pytest.CaptureFixture[str]) -> None:
    config, _ = parse_config(["synthetic", "--metrics-port", port,
                              "--bootstrap-servers", "127.0.0.1:1"])
    assert main(config) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert err == (f"producer: error: --metrics-port must be 0 (no metrics) or a port "
                   f"1..65535, got {port}\n")


def test_a_port_that_is_not_a_number_fails_like_any_bad_option(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PRODUCER_METRICS_PORT", "metrics")
    with pytest.raises(SystemExit) as exit_info:
        parse_config(["synthetic"])
    assert exit_info.value.code == ExitCode.USAGE
    err = capsys.readouterr().err
    assert err.startswith("producer: error: argument --metrics-port") and "'metrics'" in err
    assert len(err.splitlines()) == 1


def test_a_taken_port_fails_at_start_before_kafka_is_contacted(
        capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # Kafka points nowhere: the metrics error must come first, and at once.
        config, _ = parse_config(["synthetic", "--metrics-port", str(port),
                                  "--bootstrap-servers", "127.0.0.1:1"])
        assert main(config) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert err.startswith(f"producer: error: cannot serve metrics on 127.0.0.1:{port}: ")
    assert len(err.splitlines()) == 1


# ------------------------------------------------------------------ real runs


def topics(make_topic: Callable[..., str], bootstrap: str) -> tuple[str, str, list[str]]:
    topic, dead = make_topic(), make_topic(partitions=1)
    return topic, dead, ["--topic", topic, "--dead-letter-topic", dead,
                         "--bootstrap-servers", bootstrap]


def metrics_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/metrics"


def until(producer: ProducerRun, port: int, condition: Callable[[Scrape], bool]) -> Scrape:
    return scrape_until(metrics_url(port), condition, producer.process,
                        lambda: producer.output[-3000:])


@pytest.mark.integration
def test_synthetic_run_counts_only_what_kafka_confirmed(
        run_producer: Callable[..., ProducerRun], make_topic: Callable[..., str],
        kafka_bootstrap: str) -> None:
    topic, dead, args = topics(make_topic, kafka_bootstrap)
    port = free_port()
    producer = run_producer("synthetic", "--symbols", SYMBOLS, "--rate", "400", "--seed", "4",
                            "--start-ms", str(START_MS), "--metrics-port", str(port), *args)
    seen = until(producer, port, lambda s: s.value(f"{P}_trades_sent_total") >= 300)
    held = records_in(kafka_bootstrap, topic)
    sent = seen.value(f"{P}_trades_sent_total")
    # Counted once Kafka confirmed it: whatever was counted, the topic already holds.
    assert held >= sent >= 300
    assert seen.value(f"{P}_messages_total", kind="trade") > 0
    assert sum(seen.by_label(f"{P}_rejected_total", "reason").values()) == 0
    assert seen.value(f"{P}_send_errors_total") == 0
    assert seen.value(f"{P}_reconnects_total") == 0
    assert seen.value(f"{P}_last_message_age_seconds") >= 0
    assert seen.types[f"{P}_trades_sent"] == "counter"
    assert seen.types[f"{P}_last_message_age_seconds"] == "gauge"
    assert seen.value("process_cpu_seconds_total") > 0

    later = scrape(metrics_url(port))
    assert later.value(f"{P}_trades_sent_total") >= sent  # a counter never goes back
    assert producer.stop(signal.SIGTERM) == ExitCode.OK
    # After the final flush the topic holds exactly what the run counted.
    final = int(producer.output.split("finished: messages=")[1].split("trades_sent=")[1]
                .split()[0])
    assert records_in(kafka_bootstrap, topic) == final >= later.value(f"{P}_trades_sent_total")
    assert records_in(kafka_bootstrap, dead) == 0


def hostile_lines() -> tuple[list[str], int, Counter[str]]:
    """Replay lines with known bad input: (lines, good trades, dead letters by reason).

    Every trade is dated START_MS, so a replay never waits between them.
    """
    good = {"s": "AAPL", "p": 230.5, "t": START_MS, "v": 10, "c": ["1"]}
    lines = [
        json.dumps({"type": "trade", "data": [good, good, {**good, "v": -3}, good]}),
        '{"type":"ping"}',
        "{broken",
        '{"type":"trade","data":[',
        '{"type":"news","data":[]}',
        "[1, 2]",
        json.dumps({"type": "trade", "data": [{"p": 1, "t": START_MS, "v": 1}, good]}),
        json.dumps({"type": "trade", "data": [{**good, "p": -1}, {**good, "p": float("nan")}]}),
        json.dumps({"type": "trade", "data": [{**good, "t": 4_070_908_800_000}]}),  # 2099
        json.dumps({"type": "trade", "data": [{**good, "s": ""}]}),
        '{"type":"ping"}',
        json.dumps({"type": "trade", "data": [good]}),
    ]
    return lines, 5, Counter(bad_volume=1, invalid_json=2, unknown_type=1, not_object=1,
                             missing_field=1, bad_price=2, future_trade_ts=1, bad_symbol=1)


@pytest.mark.integration
def test_replayed_bad_input_is_counted_by_reason_exactly_as_dead_lettered(
        run_producer: Callable[..., ProducerRun], make_topic: Callable[..., str],
        kafka_bootstrap: str, tmp_path: Path) -> None:
    topic, dead, args = topics(make_topic, kafka_bootstrap)
    lines, good, reasons = hostile_lines()
    # A last trade 30 s of event time later: at the slowest replay speed the run waits
    # 30 000 s for it, so it stays up, everything before it handled, until stopped.
    held_back = json.dumps({"type": "trade", "data": [{"s": "MSFT", "p": 1.0,
                                                       "t": START_MS + 30_000, "v": 1}]})
    replay_file = tmp_path / "bad.jsonl"
    replay_file.write_text("\n".join([*lines, held_back]) + "\n")
    port = free_port()
    producer = run_producer("replay", str(replay_file), "--speed", "0.001",
                            "--metrics-port", str(port), *args)
    done = until(producer, port, lambda s: (
        sum(s.by_label(f"{P}_messages_total", "kind").values()) == len(lines)
        and s.value(f"{P}_trades_sent_total") == good))

    # The dead letters Kafka holds, by the reason code that starts their reason text.
    letters = consume(kafka_bootstrap, dead, sum(reasons.values()))
    held = Counter(json.loads(r.value)["reason"].split(":")[0] for r in letters)
    assert held == reasons
    counted = done.by_label(f"{P}_rejected_total", "reason")
    assert {code: n for code, n in counted.items() if n} == held
    assert set(counted) >= set(REJECTION_CODES)
    assert records_in(kafka_bootstrap, topic) == good
    assert done.by_label(f"{P}_messages_total", "kind") == {
        "trade": 6, "ping": 2, "error": 0, "rejected": 4}
    assert done.value(f"{P}_send_errors_total") == 0

    assert producer.stop(signal.SIGTERM) == ExitCode.OK
    assert records_in(kafka_bootstrap, topic) == good  # the held-back trade never went


@pytest.fixture
def server() -> Iterator[FakeFinnhub]:
    with FakeFinnhub(token=TOKEN) as fake:
        yield fake


@pytest.mark.integration
def test_live_reconnects_and_time_disconnected_are_counted(
        run_producer: Callable[..., ProducerRun], make_topic: Callable[..., str],
        kafka_bootstrap: str, server: FakeFinnhub) -> None:
    topic, _, args = topics(make_topic, kafka_bootstrap)
    port = free_port()
    producer = run_producer(
        "live", "--symbols", "AAPL", "--reconnect-base-delay", "0.2",
        "--reconnect-max-delay", "0.5", "--metrics-port", str(port), *args,
        env={"FINNHUB_TOKEN": TOKEN, "FINNHUB_WS_URL": server.url})
    server.wait_for(lambda: server.subscribed(1) == {"AAPL"}, timeout=30, what="subscription")
    before = scrape(metrics_url(port))
    assert before.value(f"{P}_reconnects_total") == 0
    assert before.value(f"{P}_disconnected_seconds_total") == 0

    server.drop()
    server.wait_for(lambda: server.subscribed(2) == {"AAPL"}, timeout=30, what="resubscription")
    server.push_trades([{"s": "AAPL", "p": 1.0, "t": START_MS, "v": 1}])
    after = until(producer, port, lambda s: s.value(f"{P}_trades_sent_total") == 1)
    assert after.value(f"{P}_reconnects_total") == 1
    # At least the first reconnect delay passed without a connection.
    assert after.value(f"{P}_disconnected_seconds_total") >= 0.1
    assert after.value(f"{P}_messages_total", kind="trade") == 1
    assert records_in(kafka_bootstrap, topic) == 1
    assert producer.stop(signal.SIGTERM) == ExitCode.OK
    assert "reconnects=1" in producer.output
