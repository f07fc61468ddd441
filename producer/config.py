"""The producer's configuration as frozen dataclasses, and its validation.

Only `producer.__main__` reads the environment; everything here is plain data so the
library can be driven from code (tests, notebooks) with explicit values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import contract
from contract import validation
from contract.exits import ExitCode
from contract.validation import MIN_TRADE_TS_MS
from producer.errors import FatalError

# Finnhub's free tier accepts about 50 symbols per connection; beyond that it answers
# "Subscribing to too many symbols" and the extra symbols silently get no data.
FREE_TIER_MAX_SYMBOLS = 50
# --max-symbols only raises the limit for a paid plan; no plan comes near this, so a
# larger value is a typo.
MAX_SYMBOLS_LIMIT = 10_000
# Longest wait any option may ask for (timeouts, intervals, --duration): a year. Beyond
# it (or inf) the thread primitives overflow instead of waiting.
MAX_SECONDS = 366 * 86_400
# Replay slower than 1/1000 of real time is no replay; faster than 1000x is speed 0.
MIN_SPEED, MAX_SPEED = 0.001, 1000.0
DEFAULT_MAX_FUTURE_SKEW_S = validation.MAX_FUTURE_SKEW.total_seconds()


@dataclass(frozen=True)
class Secret:
    """A value that must never be printed: repr/str show only asterisks."""

    _value: str = field(repr=False)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret(***)"

    __str__ = __repr__


@dataclass(frozen=True)
class KafkaConfig:
    bootstrap_servers: str = contract.BOOTSTRAP_SERVERS
    topic: str = contract.TOPIC
    dead_letter_topic: str = contract.DEAD_LETTER_TOPIC
    # A short linger lets a burst share one batch (and one lz4 frame) without adding
    # noticeable latency to a trickle of live trades.
    linger_ms: int = 20
    batch_size: int = 131072
    compression: str = "lz4"
    retries: int = 2_147_483_647
    delivery_timeout_ms: int = 120_000
    connect_timeout_s: float = 15.0
    flush_timeout_s: float = 60.0
    client_id: str = "market-producer"


@dataclass(frozen=True)
class LiveConfig:
    symbols: tuple[str, ...]
    token: Secret | None
    ws_url: str = "wss://ws.finnhub.io"
    record_path: Path | None = None
    idle_timeout_s: float = 90.0
    connect_timeout_s: float = 10.0
    reconnect_base_s: float = 1.0
    reconnect_max_s: float = 60.0
    max_symbols: int = FREE_TIER_MAX_SYMBOLS

    mode = "live"


@dataclass(frozen=True)
class ReplayConfig:
    path: Path
    speed: float = 1.0

    mode = "replay"


@dataclass(frozen=True)
class SyntheticConfig:
    symbols: tuple[str, ...]
    seed: int = 0
    rate: float = 100.0  # trades per wall-clock second; 0 = as fast as possible
    count: int | None = None
    duration_s: float | None = None
    start_ms: int | None = None  # event-time origin; None = the wall clock at start
    event_rate: float = 100.0  # trades per simulated second when rate is 0

    mode = "synthetic"


SourceConfig = LiveConfig | ReplayConfig | SyntheticConfig


@dataclass(frozen=True)
class MetricsConfig:
    """The Prometheus endpoint (producer.metrics); port 0 serves none."""

    port: int = 0
    # Loopback by default: a laptop run exposes nothing. In a pod it must be 0.0.0.0
    # for Prometheus to reach it (k8s/base/producer/deployment.yaml sets it).
    host: str = "127.0.0.1"


@dataclass(frozen=True)
class ProducerConfig:
    source: SourceConfig
    kafka: KafkaConfig = field(default_factory=KafkaConfig)
    status_interval_s: float = 5.0
    # A trade later than its receive time plus this skew is dead-lettered.
    max_future_skew_s: float = DEFAULT_MAX_FUTURE_SKEW_S
    metrics: MetricsConfig = field(default_factory=MetricsConfig)

    @property
    def max_future_ms(self) -> int:
        return int(self.max_future_skew_s * 1000)

    @property
    def mode(self) -> str:
        return self.source.mode


def parse_symbols(text: str) -> tuple[str, ...]:
    """Comma-separated symbols, stripped, empties and duplicates dropped, order kept."""
    seen: dict[str, None] = {}
    for part in text.split(","):
        symbol = part.strip()
        if symbol:
            seen.setdefault(symbol)
    return tuple(seen)


def validate(config: ProducerConfig, now_ms: int) -> None:
    """Raise FatalError(ExitCode.USAGE) for a configuration that cannot run.

    `now_ms` is the wall clock at start, for options that must not lie in the future.
    """
    source = config.source
    _seconds("--status-interval", config.status_interval_s, allow_zero=True)
    _seconds("--max-future-skew", config.max_future_skew_s, allow_zero=True)
    _validate_kafka(config.kafka)
    _validate_metrics(config.metrics)
    if isinstance(source, LiveConfig):
        _validate_live(source)
    elif isinstance(source, ReplayConfig):
        if not (source.speed == 0 or MIN_SPEED <= source.speed <= MAX_SPEED):
            _usage(f"--speed must be 0 or between {MIN_SPEED:g} and {MAX_SPEED:g}")
    else:
        _validate_synthetic(source, now_ms + config.max_future_ms)


def _usage(message: str) -> None:
    raise FatalError(message, ExitCode.USAGE)


def _seconds(option: str, value: float, *, allow_zero: bool = False) -> None:
    low_ok = value >= 0 if allow_zero else value > 0
    if not (math.isfinite(value) and low_ok and value <= MAX_SECONDS):
        _usage(f"{option} must be a number of seconds {'>= 0' if allow_zero else '> 0'} "
               f"and at most {MAX_SECONDS}, got {value}")


def _validate_kafka(kafka: KafkaConfig) -> None:
    _seconds("--kafka-connect-timeout", kafka.connect_timeout_s)
    _seconds("--flush-timeout", kafka.flush_timeout_s)
    if not kafka.bootstrap_servers.strip():
        _usage("--bootstrap-servers is empty")
    if kafka.linger_ms < 0 or kafka.batch_size <= 0:
        _usage("--linger-ms must be >= 0 and --batch-size > 0")


def _validate_metrics(metrics: MetricsConfig) -> None:
    if not 0 <= metrics.port <= 65535:
        _usage(f"--metrics-port must be 0 (no metrics) or a port 1..65535, got {metrics.port}")
    if metrics.port and not metrics.host.strip():
        _usage("--metrics-host is empty (0.0.0.0 listens on every address)")


def validate_ws_url(url: str) -> None:
    """A ws:// or wss:// URL with a host, a valid port if any, and no token in it."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        # The URL is not echoed: it may carry the token.
        _usage("--ws-url is not a valid URL (bad port or brackets)")
    if parts.scheme not in ("ws", "wss"):
        _usage("--ws-url must start with ws:// or wss://")
    if not parts.hostname:
        _usage("--ws-url has no host")
    if port == 0:
        _usage("--ws-url port must be 1..65535")
    if any(key.lower() == "token" for key, _ in parse_qsl(parts.query, keep_blank_values=True)):
        _usage("--ws-url must not carry the token (a token= query parameter): command lines "
               "and environment listings are visible; set FINNHUB_TOKEN or --token-file")
    if parts.username is not None or parts.password is not None:
        _usage("--ws-url must not carry credentials (user:password@)")


def _validate_live(source: LiveConfig) -> None:
    # The limit first: the symbol count is checked against it.
    if not 1 <= source.max_symbols <= MAX_SYMBOLS_LIMIT:
        _usage(f"--max-symbols (env FINNHUB_MAX_SYMBOLS) must be between 1 and "
               f"{MAX_SYMBOLS_LIMIT}, got {source.max_symbols}")
    if not source.symbols:
        _usage("no symbols to subscribe: pass --symbols or set FINNHUB_SYMBOLS")
    if len(source.symbols) > source.max_symbols:
        _usage(
            f"{len(source.symbols)} symbols requested, but one Finnhub connection accepts at "
            f"most {source.max_symbols} (free tier limit); subscribe to fewer symbols"
        )
    if source.token is None or not source.token.reveal():
        _usage("no Finnhub API token: set FINNHUB_TOKEN or pass --token-file PATH")
    validate_ws_url(source.ws_url)
    _seconds("--idle-timeout", source.idle_timeout_s)
    _seconds("--connect-timeout", source.connect_timeout_s)
    _seconds("--reconnect-base-delay", source.reconnect_base_s)
    _seconds("--reconnect-max-delay", source.reconnect_max_s)
    if source.reconnect_max_s < source.reconnect_base_s:
        _usage("reconnect delays must satisfy 0 < --reconnect-base-delay <= "
               "--reconnect-max-delay")


# Fastest sensible event clock: a million simulated trades per second.
MAX_EVENT_RATE = 1e6


def _validate_synthetic(source: SyntheticConfig, latest_ms: int) -> None:
    if not source.symbols:
        _usage("no symbols to generate: pass --symbols or set FINNHUB_SYMBOLS")
    if not (math.isfinite(source.rate) and 0 <= source.rate <= MAX_EVENT_RATE):
        _usage(f"--rate must be >= 0 (0 = as fast as possible) and at most {MAX_EVENT_RATE:g}")
    if not (math.isfinite(source.event_rate) and 0 < source.event_rate <= MAX_EVENT_RATE):
        _usage(f"--event-rate must be > 0 and at most {MAX_EVENT_RATE:g}")
    if source.count is not None and source.duration_s is not None:
        _usage("--count and --duration are mutually exclusive")
    if source.count is not None and source.count < 0:
        _usage("--count must be >= 0")
    if source.duration_s is not None:
        _seconds("--duration", source.duration_s)
    if source.start_ms is not None and not MIN_TRADE_TS_MS <= source.start_ms <= latest_ms:
        _usage("--start-ms must lie between 2000-01-01 and now (plus the allowed skew): "
               "generated trades outside that range would all be rejected")

