"""`main(config)`: run one producer (live, replay or synthetic) until done or stopped."""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import threading
import time
from collections.abc import Iterator

from contract.exits import ExitCode, ExitError, exit_code
from producer.config import LiveConfig, ProducerConfig, ReplayConfig, SyntheticConfig, validate
from producer.errors import FatalError
from producer.finnhub import Backoff, FinnhubStream, redact
from producer.kafka_sink import KafkaSink
from producer.messages import Rejection
from producer.metrics import serve_metrics
from producer.pacing import Pacer, WallClockCap
from producer.pipeline import Pipeline, now_ms
from producer.replay import RecordWriter, replay_messages
from producer.shutdown import stop_on_signals
from producer.stats import Stats, StatusReporter
from producer.synthetic import timed_messages

log = logging.getLogger(__name__)

# What a source yields: raw messages, or input it refused itself (replay's long lines).
Messages = Iterator[str | bytes | Rejection]
# After a failed flush (broker gone) there is nothing left to wait for on close.
CLOSE_AFTER_FAILED_FLUSH_S = 1.0
# Event time --rate 0 generates as a backlog ending now when it runs without --count.
SYNTHETIC_BACKLOG_MS = 3_600_000


def main(config: ProducerConfig) -> int:
    """Run the producer; returns the process exit code (contract.exits.ExitCode)."""
    stop = threading.Event()
    secrets = _secrets(config)
    try:
        with stop_on_signals(stop):
            return _run(config, stop)
    except ExitError as err:
        _fail(str(err), secrets)
        return exit_code(err)
    except KeyboardInterrupt as err:
        _fail("interrupted again during shutdown; pending records may be lost", secrets)
        return exit_code(err)
    except Exception as err:
        log.debug("internal error", exc_info=True)
        _fail(f"internal error: {type(err).__name__}: {err}", secrets)
        return exit_code(err)


def _secrets(config: ProducerConfig) -> tuple[str, ...]:
    source = config.source
    if isinstance(source, LiveConfig) and source.token is not None:
        return (source.token.reveal(),)
    return ()


def _fail(message: str, secrets: tuple[str, ...]) -> None:
    # One line on stderr, whatever the logging setup; never the token.
    one_line = " ".join(redact(message, secrets).split())
    print(f"producer: error: {one_line}", file=sys.stderr, flush=True)


def _run(config: ProducerConfig, stop: threading.Event) -> int:
    validate(config, now_ms())
    stats = Stats()
    # Served from the start: a producer stuck connecting shows as one whose last
    # message keeps ageing.
    with serve_metrics(config.metrics, stats):
        return _produce(config, stop, stats)


def _produce(config: ProducerConfig, stop: threading.Event, stats: Stats) -> int:
    # Sources are lazy (nothing connects before the first read), so local problems
    # such as a missing replay file are reported before Kafka is even contacted.
    messages, recorder = _open_source(config, stop, stats)
    try:
        sink = KafkaSink(config.kafka, stats)
    except BaseException:
        if recorder is not None:
            recorder.close()
        raise
    # Rates cover the streaming itself, not the connection set-up.
    stats.started = time.monotonic()
    try:
        pipeline = Pipeline(sink, stats, config.mode, recorder, _secrets(config),
                            config.max_future_ms)
        with StatusReporter(stats, config.status_interval_s), contextlib.closing(messages):
            _pump(messages, pipeline, stop)
    finally:
        # Flush whatever was handed to Kafka, even on a fatal error.
        flushed = sink.flush()
        sink.close(None if flushed else CLOSE_AFTER_FAILED_FLUSH_S)
        if recorder is not None:
            recorder.close()
        log.info("finished: %s", stats.summary())
    if not flushed or stats.send_errors:
        _fail(f"{stats.send_errors} records failed to reach Kafka"
              + ("" if flushed else ", and the final flush timed out"), ())
        return ExitCode.UNDELIVERED
    return ExitCode.OK


def _pump(messages: Messages, pipeline: Pipeline, stop: threading.Event) -> None:
    # A rejected token (finnhub.AuthenticationError) ends the loop with its own exit code.
    handle = pipeline.handle
    for raw in messages:
        handle(raw)
        if stop.is_set():
            break


def _open_source(config: ProducerConfig, stop: threading.Event,
                 stats: Stats) -> tuple[Messages, RecordWriter | None]:
    source = config.source
    if isinstance(source, LiveConfig):
        return _live(source, stop, stats)
    if isinstance(source, ReplayConfig):
        return _replay(source, stop, config.max_future_ms), None
    return _synthetic(source, stop), None


def _live(source: LiveConfig, stop: threading.Event,
          stats: Stats) -> tuple[Iterator[str | bytes], RecordWriter | None]:
    assert source.token is not None  # validate() refuses a live config without one

    def count_reconnect(outage_s: float) -> None:
        stats.reconnects += 1
        stats.disconnected_s += outage_s

    stream = FinnhubStream(
        url=source.ws_url, token=source.token.reveal(), symbols=source.symbols, stop=stop,
        idle_timeout_s=source.idle_timeout_s, connect_timeout_s=source.connect_timeout_s,
        backoff=Backoff(source.reconnect_base_s, source.reconnect_max_s),
        on_reconnect=count_reconnect,
    )
    recorder = None
    if source.record_path is not None:
        try:
            recorder = RecordWriter(source.record_path, (source.token.reveal(),))
        except OSError as err:
            raise FatalError(f"cannot open the record file: {err}", ExitCode.USAGE) from None
    return stream.messages(), recorder


def _replay(source: ReplayConfig, stop: threading.Event,
            max_future_ms: int) -> Iterator[str | Rejection]:
    if not source.path.is_file():
        raise FatalError(f"replay file not found: {source.path}", ExitCode.USAGE)
    log.info("replaying %s at speed %s", source.path, source.speed)
    return replay_messages(source.path, source.speed, stop, max_future_ms, now_ms)


def _synthetic(source: SyntheticConfig, stop: threading.Event) -> Iterator[str]:
    # A generator: the clock origin and the --duration timer start with the first
    # read, once Kafka is connected.
    event_rate = source.rate if source.rate > 0 else source.event_rate
    start_ms = source.start_ms
    if start_ms is None:
        # Paced runs start now. Flat-out runs (--rate 0) generate a backlog that ends
        # now: its event time may not run ahead of the wall clock.
        backlog_ms = (SYNTHETIC_BACKLOG_MS if source.count is None
                      else int(source.count * 1000 / event_rate))
        start_ms = now_ms() - (backlog_ms if source.rate == 0 else 0)
    # Logged so that any run can be reproduced exactly with --seed and --start-ms.
    log.info("synthetic: symbols=%s seed=%d start_ms=%d rate=%s event_rate=%s count=%s",
             ",".join(source.symbols), source.seed, start_ms, source.rate, event_rate,
             source.count)
    if source.duration_s is not None:
        timer = threading.Timer(source.duration_s, stop.set)
        timer.daemon = True
        timer.start()
    # Event time never runs ahead of the wall clock, so no generated trade is ever
    # future-dated. At a rate, the pacer also keeps the generated spacing (every gap,
    # however long); flat out (--rate 0) only the cap ever waits.
    gates: list[Pacer | WallClockCap] = [WallClockCap(stop, now_ms)]
    if source.rate > 0:
        gates.append(Pacer(1.0, stop, max_gap_ms=math.inf))
    for event_ms, text in timed_messages(source.symbols, seed=source.seed, start_ms=start_ms,
                                         event_rate=event_rate, count=source.count):
        if not all(gate.wait(event_ms) for gate in gates):
            return
        yield text
