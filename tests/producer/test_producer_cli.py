"""Command line and configuration: env defaults, validation, exit codes, no token leaks."""

from __future__ import annotations

from pathlib import Path

import pytest

from producer.__main__ import parse_config
from producer.app import main
from producer.config import LiveConfig, Secret, SyntheticConfig, parse_symbols
from producer.errors import EXIT_KAFKA, EXIT_USAGE

TOKEN = "sekrit-token-value-123"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FINNHUB_TOKEN", "FINNHUB_TOKEN_FILE", "FINNHUB_SYMBOLS", "FINNHUB_WS_URL",
                 "KAFKA_BOOTSTRAP_SERVERS", "KAFKA_TOPIC", "KAFKA_DEAD_LETTER_TOPIC",
                 "SYNTHETIC_COUNT", "SYNTHETIC_DURATION", "SYNTHETIC_RATE", "REPLAY_FILE"):
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


def test_bad_environment_value_fails_like_a_bad_flag(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SYNTHETIC_RATE", "fast")
    with pytest.raises(SystemExit) as exit_info:
        parse_config(["synthetic"])
    assert exit_info.value.code == EXIT_USAGE
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
    assert exit_info.value.code == EXIT_USAGE
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
    assert code == EXIT_USAGE
    assert "51 symbols requested" in output and "at most 50" in output
    assert len(output.strip().splitlines()) == 1


def test_missing_token_is_a_clear_error_before_connecting(
        capsys: pytest.CaptureFixture[str]) -> None:
    # The URL points nowhere: the error must come before any connection attempt.
    code, output = run_main(["live", "--symbols", "AAPL", "--ws-url", "ws://127.0.0.1:1"],
                            capsys)
    assert code == EXIT_USAGE
    assert output.strip() == ("producer: error: no Finnhub API token: set FINNHUB_TOKEN or "
                              "pass --token-file PATH")


@pytest.mark.parametrize(("argv", "message"), [
    (["synthetic", "--count", "-1"], "--count must be >= 0"),
    (["synthetic", "--rate", "-5"], "--rate must be >= 0"),
    (["synthetic", "--symbols", ","], "no symbols"),
    (["replay", "--speed", "-1", "x.jsonl"], "--speed must be >= 0"),
    (["live"], "no symbols to subscribe"),
])
def test_invalid_configurations(argv: list[str], message: str,
                                capsys: pytest.CaptureFixture[str]) -> None:
    code, output = run_main(argv, capsys)
    assert code == EXIT_USAGE
    assert message in output


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
    assert code == EXIT_USAGE
    assert "replay file not found" in output


def test_unreachable_kafka_at_start_exits_with_a_clear_message(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, output = run_main(["synthetic", "--count", "10", "--bootstrap-servers",
                             "127.0.0.1:1", "--kafka-connect-timeout", "1"], capsys)
    assert code == EXIT_KAFKA
    assert output.startswith("producer: error: Kafka broker unreachable at 127.0.0.1:1")
    assert len(output.strip().splitlines()) == 1
