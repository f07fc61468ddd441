"""`python -m producer live|replay|synthetic`: Finnhub trades -> Avro -> Kafka.

Every option defaults from an environment variable (named in its help). The Finnhub
API token is read only from FINNHUB_TOKEN or --token-file: never from the command
line, where any user of the machine can read it.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NoReturn

from contract import env
from contract.exits import ExitCode
from producer.app import main
from producer.config import (
    DEFAULT_MAX_FUTURE_SKEW_S,
    MAX_SYMBOLS_LIMIT,
    KafkaConfig,
    LiveConfig,
    MetricsConfig,
    ProducerConfig,
    ReplayConfig,
    Secret,
    SourceConfig,
    SyntheticConfig,
    parse_symbols,
)
from producer.logs import setup_logging

DEFAULT_SYNTHETIC_SYMBOLS = "BINANCE:BTCUSDT,BINANCE:ETHUSDT,BINANCE:SOLUSDT,AAPL,MSFT"
COMPRESSIONS = ("lz4", "gzip", "snappy", "zstd", "none")
# A Finnhub key is 20 characters; anything near this size is not a token file.
MAX_TOKEN_FILE_BYTES = 4096


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr and the usage exit code, without the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(ExitCode.USAGE, f"producer: error: {' '.join(message.split())}\n")


class _Defaults:
    """Option defaults read from an environment mapping (contract.env: blank = unset).

    The values are strings: argparse applies `type` to string defaults, so a bad
    environment value fails exactly like the same bad flag would.
    """

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def __call__(self, name: str, default: object = None) -> str | None:
        if default is None:
            return env.optional(self._environ, name)
        return env.get(self._environ, name, str(default))


def _common_options(from_env: _Defaults) -> argparse.ArgumentParser:
    parent = _Parser(add_help=False, allow_abbrev=False)
    add = parent.add_argument
    kafka = KafkaConfig
    add("--bootstrap-servers", default=from_env("KAFKA_BOOTSTRAP_SERVERS", kafka.bootstrap_servers),
        help="Kafka bootstrap servers, comma-separated (env KAFKA_BOOTSTRAP_SERVERS)")
    add("--topic", default=from_env("KAFKA_TOPIC", kafka.topic),
        help="trade topic (env KAFKA_TOPIC)")
    add("--dead-letter-topic", default=from_env("KAFKA_DEAD_LETTER_TOPIC", kafka.dead_letter_topic),
        help="topic for rejected input (env KAFKA_DEAD_LETTER_TOPIC)")
    add("--linger-ms", type=int, default=from_env("KAFKA_LINGER_MS", kafka.linger_ms),
        help="env KAFKA_LINGER_MS")
    add("--batch-size", type=int, default=from_env("KAFKA_BATCH_SIZE", kafka.batch_size),
        help="bytes per partition batch (env KAFKA_BATCH_SIZE)")
    add("--compression", choices=COMPRESSIONS,
        default=from_env("KAFKA_COMPRESSION", kafka.compression),
        help="env KAFKA_COMPRESSION")
    add("--kafka-connect-timeout", type=float,
        default=from_env("KAFKA_CONNECT_TIMEOUT", kafka.connect_timeout_s),
        help="seconds to reach the broker at start (env KAFKA_CONNECT_TIMEOUT)")
    add("--flush-timeout", type=float,
        default=from_env("KAFKA_FLUSH_TIMEOUT", kafka.flush_timeout_s),
        help="seconds to wait for pending records at exit (env KAFKA_FLUSH_TIMEOUT)")
    add("--status-interval", type=float,
        default=from_env("PRODUCER_STATUS_INTERVAL", ProducerConfig.status_interval_s),
        help="seconds between status lines, 0 = none (env PRODUCER_STATUS_INTERVAL)")
    add("--max-future-skew", type=float,
        default=from_env("PRODUCER_MAX_FUTURE_SKEW", DEFAULT_MAX_FUTURE_SKEW_S),
        help="seconds a trade time may lie after its receive time; later trades are "
             "dead-lettered as future_trade_ts (env PRODUCER_MAX_FUTURE_SKEW)")
    add("--metrics-port", type=int, default=from_env("PRODUCER_METRICS_PORT", MetricsConfig.port),
        help="serve Prometheus metrics at http://HOST:PORT/metrics, 0 = none "
             "(env PRODUCER_METRICS_PORT)")
    add("--metrics-host", default=from_env("PRODUCER_METRICS_HOST", MetricsConfig.host),
        help="address the metrics endpoint listens on, 0.0.0.0 = every address "
             "(env PRODUCER_METRICS_HOST)")
    add("--log-level", default=from_env("PRODUCER_LOG_LEVEL", "INFO"),
        choices=("DEBUG", "INFO", "WARNING", "ERROR"), type=str.upper,
        help="env PRODUCER_LOG_LEVEL")
    return parent


def _live_options(parser: argparse.ArgumentParser, from_env: _Defaults) -> None:
    add = parser.add_argument
    live = LiveConfig
    add("--symbols", default=from_env("FINNHUB_SYMBOLS", ""),
        help="comma-separated symbols, e.g. BINANCE:BTCUSDT,AAPL (env FINNHUB_SYMBOLS)")
    add("--token-file", type=Path, default=from_env("FINNHUB_TOKEN_FILE"),
        help="file holding the API token (env FINNHUB_TOKEN_FILE; else env FINNHUB_TOKEN)")
    add("--ws-url", default=from_env("FINNHUB_WS_URL", live.ws_url),
        help="WebSocket endpoint, without the token (env FINNHUB_WS_URL)")
    add("--record", type=Path, default=from_env("FINNHUB_RECORD_FILE"),
        help="append every raw message to this JSON-lines file (env FINNHUB_RECORD_FILE)")
    add("--idle-timeout", type=float, default=from_env("FINNHUB_IDLE_TIMEOUT", live.idle_timeout_s),
        help="reconnect after this many seconds without any message "
             "(env FINNHUB_IDLE_TIMEOUT)")
    add("--connect-timeout", type=float,
        default=from_env("FINNHUB_CONNECT_TIMEOUT", live.connect_timeout_s),
        help="env FINNHUB_CONNECT_TIMEOUT")
    add("--reconnect-base-delay", type=float,
        default=from_env("FINNHUB_RECONNECT_BASE_DELAY", live.reconnect_base_s),
        help="first reconnect delay in seconds, doubled per failure "
             "(env FINNHUB_RECONNECT_BASE_DELAY)")
    add("--reconnect-max-delay", type=float,
        default=from_env("FINNHUB_RECONNECT_MAX_DELAY", live.reconnect_max_s),
        help="cap of the reconnect delay (env FINNHUB_RECONNECT_MAX_DELAY)")
    add("--max-symbols", type=int, default=from_env("FINNHUB_MAX_SYMBOLS", live.max_symbols),
        help=f"symbols allowed on one connection by the plan, 1 to {MAX_SYMBOLS_LIMIT} "
             "(env FINNHUB_MAX_SYMBOLS)")


def _replay_options(parser: argparse.ArgumentParser, from_env: _Defaults) -> None:
    add = parser.add_argument
    add("file", nargs="?", type=Path, default=from_env("REPLAY_FILE"),
        help="JSON-lines file of raw Finnhub messages (env REPLAY_FILE)")
    add("--speed", type=float, default=from_env("REPLAY_SPEED", ReplayConfig.speed),
        help="1 = original pacing from the trade times, 0 = as fast as possible "
             "(env REPLAY_SPEED)")


def _synthetic_options(parser: argparse.ArgumentParser, from_env: _Defaults) -> None:
    add = parser.add_argument
    synthetic = SyntheticConfig
    add("--symbols", default=from_env("FINNHUB_SYMBOLS", DEFAULT_SYNTHETIC_SYMBOLS),
        help="comma-separated symbols (env FINNHUB_SYMBOLS)")
    add("--rate", type=float, default=from_env("SYNTHETIC_RATE", synthetic.rate),
        help="trades per second, 0 = as fast as possible (env SYNTHETIC_RATE)")
    limit = parser.add_mutually_exclusive_group()
    limit.add_argument("--count", type=int, default=from_env("SYNTHETIC_COUNT"),
                       help="stop after this many trades (env SYNTHETIC_COUNT)")
    limit.add_argument("--duration", type=float, default=from_env("SYNTHETIC_DURATION"),
                       help="stop after this many seconds (env SYNTHETIC_DURATION)")
    add("--seed", type=int, default=from_env("SYNTHETIC_SEED", synthetic.seed),
        help="env SYNTHETIC_SEED")
    add("--start-ms", type=int, default=from_env("SYNTHETIC_START_MS"),
        help="event-time origin, epoch ms; default now (env SYNTHETIC_START_MS)")
    add("--event-rate", type=float, default=from_env("SYNTHETIC_EVENT_RATE", synthetic.event_rate),
        help="simulated trades per second of event time when --rate is 0 "
             "(env SYNTHETIC_EVENT_RATE)")


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    """The command line's parser, its defaults read from `environ`."""
    # allow_abbrev=False: otherwise `--token X` would silently mean `--token-file X`.
    parser = _Parser(prog="python -m producer", description=__doc__, allow_abbrev=False,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    modes = parser.add_subparsers(dest="mode", required=True, metavar="live|replay|synthetic")
    from_env = _Defaults(environ)
    common = _common_options(from_env)
    for name, add_options, help_text in (
        ("live", _live_options, "stream trades from Finnhub's WebSocket"),
        ("replay", _replay_options, "replay a file recorded with live --record"),
        ("synthetic", _synthetic_options, "generate deterministic realistic trades"),
    ):
        add_options(modes.add_parser(name, parents=[common], help=help_text,
                                     allow_abbrev=False), from_env)
    return parser


def read_token_file(path: Path) -> str:
    """The stripped token of a regular, UTF-8 file of at most MAX_TOKEN_FILE_BYTES.

    Raises ValueError with a one-line reason that never quotes the content.
    """
    try:
        # O_NONBLOCK: opening a FIFO must not hang; fstat on the open file, since a
        # check on the path could race with a swap.
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as file:
            if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                raise ValueError(f"--token-file is not a regular file ({path})")
            data = file.read(MAX_TOKEN_FILE_BYTES + 1)
    except OSError as err:
        raise ValueError(f"cannot read --token-file: {err.strerror} ({path})") from None
    if len(data) > MAX_TOKEN_FILE_BYTES:
        raise ValueError(f"--token-file is larger than {MAX_TOKEN_FILE_BYTES} bytes ({path})")
    try:
        return data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ValueError(f"--token-file is not UTF-8 text ({path})") from None


def _read_token(args: argparse.Namespace, parser: argparse.ArgumentParser,
                environ: Mapping[str, str]) -> Secret | None:
    if args.token_file is not None:
        try:
            token = read_token_file(args.token_file)
        except ValueError as err:
            parser.exit(ExitCode.USAGE, f"producer: error: {err}\n")
    else:
        token = env.get(environ, "FINNHUB_TOKEN", "")
    return Secret(token) if token else None


def _source_config(args: argparse.Namespace, parser: argparse.ArgumentParser,
                   environ: Mapping[str, str]) -> SourceConfig:
    if args.mode == "live":
        return LiveConfig(
            symbols=parse_symbols(args.symbols), token=_read_token(args, parser, environ),
            ws_url=args.ws_url, record_path=args.record, idle_timeout_s=args.idle_timeout,
            connect_timeout_s=args.connect_timeout, reconnect_base_s=args.reconnect_base_delay,
            reconnect_max_s=args.reconnect_max_delay, max_symbols=args.max_symbols,
        )
    if args.mode == "replay":
        if args.file is None:
            parser.error("replay needs a FILE (or env REPLAY_FILE)")
        return ReplayConfig(path=args.file, speed=args.speed)
    return SyntheticConfig(
        symbols=parse_symbols(args.symbols), seed=args.seed, rate=args.rate, count=args.count,
        duration_s=args.duration, start_ms=args.start_ms, event_rate=args.event_rate,
    )


def parse_config(argv: Sequence[str] | None = None,
                 environ: Mapping[str, str] | None = None) -> tuple[ProducerConfig, str]:
    """The run configuration and log level for a command line plus an environment.

    `environ` defaults to the process environment; nothing else here reads it.
    """
    environ = os.environ if environ is None else environ
    parser = build_parser(environ)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # Never echo unknown arguments: the likeliest one is a token passed by mistake.
        hint = (" (there is no --token option: set FINNHUB_TOKEN or use --token-file, since "
                "command lines are visible to every user of the machine)"
                if any(a.startswith("--tok") for a in unknown) else "")
        parser.exit(ExitCode.USAGE, f"producer: error: {len(unknown)} unrecognized "
                                    f"argument(s){hint}\n")
    kafka = KafkaConfig(
        bootstrap_servers=args.bootstrap_servers, topic=args.topic,
        dead_letter_topic=args.dead_letter_topic, linger_ms=args.linger_ms,
        batch_size=args.batch_size,
        compression="" if args.compression == "none" else args.compression,
        connect_timeout_s=args.kafka_connect_timeout, flush_timeout_s=args.flush_timeout,
    )
    config = ProducerConfig(source=_source_config(args, parser, environ), kafka=kafka,
                            status_interval_s=args.status_interval,
                            max_future_skew_s=args.max_future_skew,
                            metrics=MetricsConfig(port=args.metrics_port,
                                                  host=args.metrics_host))
    return config, args.log_level


def cli(argv: Sequence[str] | None = None,
        environ: Mapping[str, str] | None = None) -> int:
    config, log_level = parse_config(argv, environ)
    token = config.source.token if isinstance(config.source, LiveConfig) else None
    setup_logging(log_level, (token.reveal(),) if token is not None else ())
    return main(config)


if __name__ == "__main__":
    sys.exit(cli())
