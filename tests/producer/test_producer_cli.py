"""Command line and configuration: env defaults, validation, exit codes, no token leaks."""

from __future__ import annotations

from pathlib import Path

import pytest

from contract.exits import ExitCode
from producer.__main__ import parse_config
from producer.app import main
from producer.config import LiveConfig, Secret, SyntheticConfig, parse_symbols, validate

TOKEN = "sekrit-token-value-123"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FINNHUB_TOKEN", "FINNHUB_TOKEN_FILE", "FINNHUB_SYMBOLS", "FINNHUB_WS_URL",
                 "KAFKA_BOOTSTRAP_SERVERS", "KAFKA_TOPIC", "KAFKA_DEAD_LETTER_TOPIC",
                 "SYNTHETIC_COUNT", "SYNTHETIC_DURATION", "SYNTHETIC_RATE", "REPLAY_FILE",
                 "PRODUCER_METRICS_PORT", "PRODUCER_METRICS_HOST", "FINNHUB_MAX_SYMBOLS"):
        monkeypatch.delenv(name, raising=False)


def test_defaults() -> None:
    config, level = parse_config(["synthetic"])
    assert level == "INFO"
    assert config.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert config.kafka.topic == "Market"
    assert config.kafka.dead_letter_topic == "Market.rejected"
    assert config.kafka.compression == "lz4"
    assert isinstance(config.source, SyntheticConfig)
    assert config.source.count is None and config.source.start_ms is None


def test_every_option_defaults_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINNHUB_TOKEN", TOKEN)
    monkeypatch.setenv("FINNHUB_SYMBOLS", "AAPL, BINANCE:BTCUSDT,,AAPL")
    monkeypatch.setenv("FINNHUB_WS_URL", "ws://127.0.0.1:1")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka:19092")
    monkeypatch.setenv("KAFKA_TOPIC", "T")
    monkeypatch.setenv("KAFKA_DEAD_LETTER_TOPIC", "T.dead")
    monkeypatch.setenv("FINNHUB_IDLE_TIMEOUT", "5")
    config, _ = parse_config(["live"])
    source = config.source
    assert isinstance(source, LiveConfig)
    assert source.symbols == ("AAPL", "BINANCE:BTCUSDT")
    assert source.token is not None and source.token.reveal() == TOKEN
    assert (source.ws_url, source.idle_timeout_s) == ("ws://127.0.0.1:1", 5.0)
    assert (config.kafka.bootstrap_servers, config.kafka.topic,
            config.kafka.dead_letter_topic) == ("kafka:19092", "T", "T.dead")
    # Flags win over the environment.
    config, _ = parse_config(["live", "--topic", "U", "--symbols", "MSFT"])
    assert config.kafka.topic == "U"
    assert isinstance(config.source, LiveConfig) and config.source.symbols == ("MSFT",)


def test_the_defaults_without_any_variable() -> None:
    config, _ = parse_config(["live"], {})
    kafka, source = config.kafka, config.source
    assert (kafka.linger_ms, kafka.batch_size, kafka.connect_timeout_s,
            kafka.flush_timeout_s) == (20, 131072, 15.0, 60.0)
    assert (config.status_interval_s, config.max_future_skew_s) == (5.0, 60.0)
    assert (config.metrics.port, config.metrics.host) == (0, "127.0.0.1")
    assert isinstance(source, LiveConfig)
    assert (source.ws_url, source.idle_timeout_s, source.connect_timeout_s,
            source.reconnect_base_s, source.reconnect_max_s, source.max_symbols) == (
        "wss://ws.finnhub.io", 90.0, 10.0, 1.0, 60.0, 50)
    assert (source.symbols, source.token, source.record_path) == ((), None, None)
    config, _ = parse_config(["synthetic"], {})
    assert isinstance(config.source, SyntheticConfig)
    assert (config.source.rate, config.source.event_rate, config.source.seed) == (100.0, 100.0, 0)


def test_the_environment_mapping_handed_in_is_the_only_one_read(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINNHUB_TOKEN", "process-token")
    monkeypatch.setenv("KAFKA_TOPIC", "FromProcess")
    config, _ = parse_config(["live"], {"FINNHUB_TOKEN": TOKEN, "FINNHUB_SYMBOLS": "AAPL",
                                        "KAFKA_TOPIC": "T"})
    source = config.source
    assert isinstance(source, LiveConfig) and source.symbols == ("AAPL",)
    assert source.token is not None and source.token.reveal() == TOKEN
    assert config.kafka.topic == "T"
    config, _ = parse_config(["live"], {})
    assert isinstance(config.source, LiveConfig) and config.source.token is None
    assert config.kafka.topic == "Market"


def test_a_blank_variable_is_unset() -> None:
    blank = {"KAFKA_TOPIC": "", "KAFKA_BOOTSTRAP_SERVERS": "  ", "SYNTHETIC_COUNT": "",
             "SYNTHETIC_RATE": " ", "FINNHUB_SYMBOLS": " ", "FINNHUB_TOKEN": " \t"}
    config, _ = parse_config(["synthetic"], blank)
    assert (config.kafka.topic, config.kafka.bootstrap_servers) == ("Market", "127.0.0.1:9092")
    source = config.source
    assert isinstance(source, SyntheticConfig)
    assert (source.count, source.rate) == (None, 100.0)
    assert source.symbols == ("BINANCE:BTCUSDT", "BINANCE:ETHUSDT", "BINANCE:SOLUSDT", "AAPL",
                              "MSFT")
    config, _ = parse_config(["live"], blank)
    assert isinstance(config.source, LiveConfig) and config.source.token is None
    # Surrounding blanks are not part of a value.
    config, _ = parse_config(["synthetic"], {"KAFKA_TOPIC": " T\n"})
    assert config.kafka.topic == "T"


def test_bad_environment_value_fails_like_a_bad_flag(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SYNTHETIC_RATE", "fast")
    with pytest.raises(SystemExit) as exit_info:
        parse_config(["synthetic"])
    assert exit_info.value.code == ExitCode.USAGE
    assert "--rate" in capsys.readouterr().err


def test_token_file_is_read_and_stripped(tmp_path: Path) -> None:
    token_file = tmp_path / "finnhub.token"
    token_file.write_text(TOKEN + "\n")
    config, _ = parse_config(["live", "--symbols", "AAPL", "--token-file", str(token_file)])
    assert isinstance(config.source, LiveConfig)
    assert config.source.token is not None and config.source.token.reveal() == TOKEN
    assert TOKEN not in repr(config)


@pytest.mark.parametrize("argv", [["live", "--token", TOKEN], ["live", f"--token={TOKEN}"],
                                  ["live", "--tok", TOKEN]])
def test_there_is_no_token_flag_and_the_value_is_never_echoed(
        argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_config(argv)
    assert exit_info.value.code == ExitCode.USAGE
    captured = capsys.readouterr()
    assert TOKEN not in captured.out + captured.err
    assert "FINNHUB_TOKEN" in captured.err


def test_secret_never_prints() -> None:
    secret = Secret(TOKEN)
    assert TOKEN not in f"{secret} {secret!r} {[secret]}"


def test_symbols_are_split_stripped_and_deduplicated() -> None:
    assert parse_symbols(" AAPL,,BINANCE:BTCUSDT , AAPL ") == ("AAPL", "BINANCE:BTCUSDT")
    assert parse_symbols("") == ()


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    config, _ = parse_config(argv)
    code = main(config)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_too_many_symbols_is_refused_at_start(monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FINNHUB_TOKEN", TOKEN)
    symbols = ",".join(f"BINANCE:C{i}USDT" for i in range(51))
    code, output = run_main(["live", "--symbols", symbols], capsys)
    assert code == ExitCode.USAGE
    assert "51 symbols requested" in output and "at most 50" in output
    assert len(output.strip().splitlines()) == 1


def test_max_symbols_from_the_environment_is_range_checked(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FINNHUB_TOKEN", TOKEN)
    monkeypatch.setenv("FINNHUB_MAX_SYMBOLS", "-1")
    code, output = run_main(["live", "--symbols", "AAPL,MSFT"], capsys)
    assert code == 2
    assert output == ("producer: error: --max-symbols (env FINNHUB_MAX_SYMBOLS) must be "
                      "between 1 and 10000, got -1\n")


def test_a_paid_plan_may_raise_the_symbol_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINNHUB_TOKEN", TOKEN)
    symbols = ",".join(f"S{i}" for i in range(10_000))
    for argv in (["--max-symbols", "10000"], ["--max-symbols", "1", "--symbols", "AAPL"]):
        config, _ = parse_config(["live", "--symbols", symbols, *argv])
        validate(config, now_ms=1_732_180_000_000)  # no error


def test_missing_token_is_a_clear_error_before_connecting(
        capsys: pytest.CaptureFixture[str]) -> None:
    # The URL points nowhere: the error must come before any connection attempt.
    code, output = run_main(["live", "--symbols", "AAPL", "--ws-url", "ws://127.0.0.1:1"],
                            capsys)
    assert code == ExitCode.USAGE
    assert output.strip() == ("producer: error: no Finnhub API token: set FINNHUB_TOKEN or "
                              "pass --token-file PATH")


LIVE = ["live", "--symbols", "AAPL"]


@pytest.mark.parametrize(("argv", "message"), [
    (["synthetic", "--count", "-1"], "--count must be >= 0"),
    (["synthetic", "--rate", "-5"], "--rate must be >= 0"),
    (["synthetic", "--rate", "nan"], "--rate must be >= 0"),
    (["synthetic", "--rate", "inf"], "--rate must be >= 0"),
    (["synthetic", "--event-rate", "nan"], "--event-rate must be > 0"),
    (["synthetic", "--event-rate", "inf"], "--event-rate must be > 0"),
    (["synthetic", "--duration", "nan"], "--duration must be a number of seconds > 0"),
    (["synthetic", "--duration", "-1"], "--duration must be a number of seconds > 0"),
    (["synthetic", "--status-interval", "inf"], "--status-interval must be a number"),
    (["synthetic", "--status-interval", "1e300"], "--status-interval must be a number"),
    (["synthetic", "--max-future-skew", "nan"], "--max-future-skew must be a number"),
    (["synthetic", "--flush-timeout", "0"], "--flush-timeout must be a number"),
    (["synthetic", "--kafka-connect-timeout=-inf"], "--kafka-connect-timeout must be"),
    (["synthetic", "--start-ms", "4070908800000"], "--start-ms must lie between"),
    (["synthetic", "--start-ms", "1732180000"], "--start-ms must lie between"),
    (["synthetic", "--symbols", ","], "no symbols"),
    (["replay", "--speed", "-1", "x.jsonl"], "--speed must be 0 or between 0.001 and 1000"),
    (["replay", "--speed", "nan", "x.jsonl"], "--speed must be 0 or between"),
    (["replay", "--speed", "1e-300", "x.jsonl"], "--speed must be 0 or between"),
    (["live"], "no symbols to subscribe"),
    ([*LIVE, "--connect-timeout", "nan"], "--connect-timeout must be a number"),
    ([*LIVE, "--connect-timeout", "inf"], "--connect-timeout must be a number"),
    ([*LIVE, "--idle-timeout", "0"], "--idle-timeout must be a number"),
    ([*LIVE, "--reconnect-base-delay", "nan"], "--reconnect-base-delay must be"),
    ([*LIVE, "--ws-url", "http://127.0.0.1:1"], "--ws-url must start with ws:// or wss://"),
    ([*LIVE, "--ws-url", "127.0.0.1:8080"], "--ws-url must start with ws:// or wss://"),
    ([*LIVE, "--ws-url", "ws://127.0.0.1:99999"], "--ws-url is not a valid URL"),
    ([*LIVE, "--ws-url", "ws://127.0.0.1:port"], "--ws-url is not a valid URL"),
    ([*LIVE, "--ws-url", "ws://127.0.0.1:0"], "--ws-url port must be 1..65535"),
    ([*LIVE, "--ws-url", "ws:///path"], "--ws-url has no host"),
    ([*LIVE, "--ws-url", f"wss://ws.finnhub.io?token={TOKEN}"], "must not carry the token"),
    ([*LIVE, "--ws-url", f"ws://h:1/?a=1&TOKEN={TOKEN}"], "must not carry the token"),
    ([*LIVE, "--ws-url", f"ws://u:{TOKEN}@h:1/"], "must not carry credentials"),
    ([*LIVE, "--max-symbols", "-1"], "--max-symbols (env FINNHUB_MAX_SYMBOLS) must be between "
                                     "1 and 10000, got -1"),
    ([*LIVE, "--max-symbols", "0"], "must be between 1 and 10000, got 0"),
    ([*LIVE, "--max-symbols", "10001"], "must be between 1 and 10000, got 10001"),
    (["live", "--max-symbols", "-1"], "--max-symbols (env FINNHUB_MAX_SYMBOLS) must be"),
])
def test_invalid_configurations(argv: list[str], message: str,
                                monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    # A token is set, so live configurations fail on the option under test. Kafka is
    # unreachable: every one must fail before anything connects.
    monkeypatch.setenv("FINNHUB_TOKEN", TOKEN)
    code, output = run_main([*argv, "--bootstrap-servers", "127.0.0.1:1"], capsys)
    assert code == ExitCode.USAGE
    assert output.startswith("producer: error: ") and message in output, output
    assert len(output.strip().splitlines()) == 1
    assert TOKEN not in output


@pytest.mark.parametrize(("content", "message"), [
    (b"\xff\xfe token", "--token-file is not UTF-8 text"),
    (b"x" * 5000, "--token-file is larger than 4096 bytes"),
])
def test_bad_token_file_is_one_clear_line(tmp_path: Path, content: bytes, message: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    token_file = tmp_path / "token"
    token_file.write_bytes(content)
    with pytest.raises(SystemExit) as exit_info:
        parse_config([*LIVE, "--token-file", str(token_file)])
    assert exit_info.value.code == ExitCode.USAGE
    err = capsys.readouterr().err
    assert err.startswith(f"producer: error: {message}") and len(err.splitlines()) == 1


@pytest.mark.parametrize("path", ["/dev/zero", "DIR", "FIFO", "MISSING"])
def test_token_file_must_be_a_regular_file(tmp_path: Path, path: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    import os

    target = {"DIR": tmp_path, "FIFO": tmp_path / "fifo",
              "MISSING": tmp_path / "missing"}.get(path, Path(path))
    if path == "FIFO":
        os.mkfifo(target)  # opening it must not block waiting for a writer
    with pytest.raises(SystemExit) as exit_info:
        parse_config([*LIVE, "--token-file", str(target)])
    assert exit_info.value.code == ExitCode.USAGE
    err = capsys.readouterr().err
    assert err.startswith("producer: error: ") and len(err.splitlines()) == 1
    assert ("is not a regular file" in err) or ("cannot read --token-file" in err)


def test_argparse_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_config(["synthetic", "--rate", "fast"])
    assert exit_info.value.code == ExitCode.USAGE
    assert capsys.readouterr().err == (
        "producer: error: argument --rate: invalid float value: 'fast'\n")


def test_count_and_duration_are_exclusive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_config(["synthetic", "--count", "5", "--duration", "5"])
    assert "not allowed with" in capsys.readouterr().err


def test_replay_needs_an_existing_file(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_config(["replay"])
    # Checked before Kafka is contacted (this broker address does not exist).
    code, output = run_main(["replay", str(tmp_path / "missing.jsonl"), "--bootstrap-servers",
                             "127.0.0.1:1", "--kafka-connect-timeout", "30"], capsys)
    assert code == ExitCode.USAGE
    assert "replay file not found" in output


def test_unreachable_kafka_at_start_exits_with_a_clear_message(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, output = run_main(["synthetic", "--count", "10", "--bootstrap-servers",
                             "127.0.0.1:1", "--kafka-connect-timeout", "1"], capsys)
    assert code == ExitCode.KAFKA
    assert output.startswith("producer: error: Kafka broker unreachable at 127.0.0.1:1")
    assert len(output.strip().splitlines()) == 1
