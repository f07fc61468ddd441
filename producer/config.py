"""The producer's configuration as frozen dataclasses, and its validation.

Only `producer.__main__` reads the environment; everything here is plain data so the
library can be driven from code (tests, notebooks) with explicit values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from producer.errors import EXIT_USAGE, FatalError

# Finnhub's free tier accepts about 50 symbols per connection; beyond that it answers
# "Subscribing to too many symbols" and the extra symbols silently get no data.
FREE_TIER_MAX_SYMBOLS = 50


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
    bootstrap_servers: str = "127.0.0.1:9092"
    topic: str = "Market"
    dead_letter_topic: str = "Market.rejected"
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
class ProducerConfig:
    source: SourceConfig
    kafka: KafkaConfig = field(default_factory=KafkaConfig)
    status_interval_s: float = 5.0

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


def validate(config: ProducerConfig) -> None:
    """Raise FatalError(EXIT_USAGE) for a configuration that cannot run."""
    source = config.source
    if config.status_interval_s < 0:
        _usage("--status-interval must be >= 0")
    if isinstance(source, LiveConfig):
        _validate_live(source)
    elif isinstance(source, ReplayConfig):
        if source.speed < 0:
            _usage("--speed must be >= 0")
    else:
        _validate_synthetic(source)


def _usage(message: str) -> None:
    raise FatalError(message, EXIT_USAGE)


def _validate_live(source: LiveConfig) -> None:
    if not source.symbols:
        _usage("no symbols to subscribe: pass --symbols or set FINNHUB_SYMBOLS")
    if len(source.symbols) > source.max_symbols:
        _usage(
            f"{len(source.symbols)} symbols requested, but one Finnhub connection accepts at "
            f"most {source.max_symbols} (free tier limit); subscribe to fewer symbols"
        )
    if source.token is None or not source.token.reveal():
        _usage("no Finnhub API token: set FINNHUB_TOKEN or pass --token-file PATH")
    if source.idle_timeout_s <= 0 or source.connect_timeout_s <= 0:
        _usage("--idle-timeout and --connect-timeout must be > 0")
    if source.reconnect_base_s <= 0 or source.reconnect_max_s < source.reconnect_base_s:
        _usage("reconnect delays must satisfy 0 < --reconnect-base-delay <= "
               "--reconnect-max-delay")


def _validate_synthetic(source: SyntheticConfig) -> None:
    if not source.symbols:
        _usage("no symbols to generate: pass --symbols or set FINNHUB_SYMBOLS")
    if source.rate < 0 or source.event_rate <= 0:
        _usage("--rate must be >= 0 and --event-rate > 0")
    if source.count is not None and source.duration_s is not None:
        _usage("--count and --duration are mutually exclusive")
    if source.count is not None and source.count < 0:
        _usage("--count must be >= 0")
    if source.duration_s is not None and source.duration_s <= 0:
        _usage("--duration must be > 0")
