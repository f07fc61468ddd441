"""Command lines and environment of the jobs -> frozen configs (no Spark needed)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from jobs import recompute, stream_processor
from jobs.session import ui_conf
from jobs.settings import parse_duration


def test_stream_options_default_from_env_and_cli_wins() -> None:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": "kafka:9092", "KAFKA_TOPIC": "Trades",
        "CASSANDRA_HOST": "cassandra", "CASSANDRA_KEYSPACE": "prod",
        "STREAM_MAX_CLOCK_SKEW": "2 minutes", "STREAM_MAX_OFFSETS_PER_TRIGGER": "500",
        "STREAM_MIN_TRADE_TS": "2010-01-01", "STREAM_MOVING_WINDOW": "10 minutes",
        "STREAM_CHECKPOINT_ROOT": "s3a://bucket/checkpoints",
        "STREAM_KAFKA_FETCH_MAX_WAIT_MS": "50",
    }
    config = stream_processor.parse_config(["--topic", "Other", "--available-now"], env)
    assert config.kafka.bootstrap_servers == "kafka:9092"
    assert config.kafka.topic == "Other"
    assert config.kafka.max_offsets_per_trigger == 500
    assert config.kafka.fetch_max_wait_ms == 50
    assert config.kafka.starting_offsets == "earliest"
    assert (config.cassandra.host, config.cassandra.keyspace) == ("cassandra", "prod")
    assert config.bounds.max_clock_skew == timedelta(minutes=2)
    assert config.bounds.min_trade_ts == datetime(2010, 1, 1, tzinfo=timezone.utc)
    assert (config.windows.moving_length, config.windows.moving_slide) == (
        timedelta(minutes=10), timedelta(seconds=30))
    assert config.checkpoint_root == "s3a://bucket/checkpoints"
    assert config.available_now is True
    assert config.spark.master == "local[*]"


def test_local_defaults_resolve_paths() -> None:
    config = stream_processor.parse_config([], {})
    root = Path(__file__).resolve().parents[2]
    assert config.checkpoint_root == str(root / ".work" / "checkpoints")
    assert config.avro_schema == root / "schemas" / "trade.avsc"
    assert config.spark.jars_dir == root / ".work" / "jars"
    assert config.kafka.max_offsets_per_trigger is None
    assert config.kafka.fetch_max_wait_ms == 10
    assert config.spark.class_archive == root / ".work" / "class-archive" / "driver.jsa"
    assert config.spark.record_classes is False


def test_credentials_come_from_env_only_and_never_print() -> None:
    env = {"CASSANDRA_USERNAME": "pipeline", "CASSANDRA_PASSWORD": "s3cret-value"}
    config = stream_processor.parse_config([], env)
    assert config.cassandra.credential_conf() == {
        "spark.cassandra.auth.username": "pipeline",
        "spark.cassandra.auth.password": "s3cret-value",
    }
    assert "s3cret" not in repr(config) and "pipeline" not in repr(config)
    assert "auth" not in str(config.cassandra.connection_conf())
    with pytest.raises(SystemExit):
        stream_processor.parse_config(["--cassandra-password", "x"], {})


def test_under_spark_submit_the_master_and_jars_are_left_to_it() -> None:
    config = stream_processor.parse_config([], {"PYSPARK_GATEWAY_PORT": "40000"})
    assert (config.spark.master, config.spark.jars_dir) == (None, None)
    # spark-submit starts that driver's JVM: no archive of the local driver's classes.
    assert config.spark.class_archive is None


@pytest.mark.parametrize(("argv", "env", "archive", "record"), [
    (["--class-archive", "/tmp/a.jsa"], {"SPARK_CLASS_ARCHIVE": "/tmp/b.jsa"},
     Path("/tmp/a.jsa"), False),
    ([], {"SPARK_CLASS_ARCHIVE": "/tmp/b.jsa"}, Path("/tmp/b.jsa"), False),
    ([], {"SPARK_CLASS_ARCHIVE": "none"}, None, False),
    (["--class-archive", ""], {}, None, False),
    (["--class-archive", "/tmp/a.jsa", "--record-class-archive"], {}, Path("/tmp/a.jsa"), True),
    (["--class-archive", "none", "--record-class-archive"], {}, None, False),
    (["--master", "spark://m:7077", "--class-archive", "/tmp/a.jsa"], {}, None, False),
    # An agent or a flight recording started with the JVM: never with the archive.
    (["--class-archive", "/tmp/a.jsa"], {"JAVA_TOOL_OPTIONS": "-Xmx1g -javaagent:/x.jar"},
     None, False),
    (["--class-archive", "/tmp/a.jsa", "--record-class-archive"],
     {"JDK_JAVA_OPTIONS": "-XX:StartFlightRecording=filename=a.jfr"}, None, False),
    (["--class-archive", "/tmp/a.jsa"], {"JAVA_TOOL_OPTIONS": "-agentpath:/p/lib.so"}, None,
     False),
    (["--class-archive", "/tmp/a.jsa"], {"JAVA_TOOL_OPTIONS": "-Xmx1g -XX:+UseParallelGC"},
     Path("/tmp/a.jsa"), False),
])
def test_class_archive_option(argv: list[str], env: dict[str, str], archive: Path | None,
                              record: bool) -> None:
    recompute_argv = [*argv, "--from", "2026-01-01", "--to", "2026-01-02"]
    for config in (stream_processor.parse_config(argv, env),
                   recompute.parse_config(recompute_argv, env)):
        assert (config.spark.class_archive, config.spark.record_classes) == (archive, record)


@pytest.mark.parametrize("option", ["--max-clock-skew", "--moving-window", "--moving-slide",
                                    "--trigger-interval"])
@pytest.mark.parametrize("bad", ["30s", "-5 seconds", "0 seconds", "five minutes"])
def test_durations_are_validated_before_spark_starts(option: str, bad: str) -> None:
    with pytest.raises(SystemExit):
        stream_processor.parse_config([option, bad], {})


@pytest.mark.parametrize("args", [
    ["--moving-window", "1 minute", "--moving-slide", "2 minutes"],  # slide > window
    ["--moving-window", "1500 milliseconds"],  # windows are whole seconds
    ["--min-trade-ts", "yesterday"],
    ["--kafka-fetch-max-wait-ms", "-1"],
    ["--kafka-fetch-max-wait-ms", "ten"],
    ["--candle-resolutions", "1s,7m"],  # not a known resolution
    ["--candle-resolutions", ""],
])
def test_window_shapes_and_bounds_are_validated(args: list[str]) -> None:
    with pytest.raises(SystemExit):
        stream_processor.parse_config(args, {})


def test_defaults_are_the_documented_ones() -> None:
    config = stream_processor.parse_config([], {})
    assert config.bounds.max_clock_skew == timedelta(seconds=60)
    assert config.bounds.min_trade_ts == datetime(2000, 1, 1, tzinfo=timezone.utc)
    assert (config.windows.moving_length, config.windows.moving_slide) == (
        timedelta(minutes=5), timedelta(seconds=30))
    assert config.trigger_interval == "250 milliseconds"
    assert config.windows.candle_resolutions == ("1s", "1m", "2m", "5m", "15m", "1h", "4h",
                                                 "1d")


def test_candle_resolutions_from_env_shortest_first_and_cli_wins() -> None:
    env = {"STREAM_CANDLE_RESOLUTIONS": "1d, 5m,1s"}
    assert stream_processor.parse_config([], env).windows.candle_resolutions == (
        "1s", "5m", "1d")
    config = stream_processor.parse_config(["--candle-resolutions", "1h"], env)
    assert config.windows.candle_resolutions == ("1h",)


def test_parse_duration() -> None:
    assert parse_duration("30 seconds") == timedelta(seconds=30)
    assert parse_duration("5 minutes") == timedelta(minutes=5)
    assert parse_duration("1 hour") == timedelta(hours=1)


def test_recompute_range_margin_and_days() -> None:
    config = recompute.parse_config(
        ["--from", "2024-03-01T23:56:00Z", "--to", "2024-03-02T00:01:00+00:00",
         "--symbols", "AAPL, MSFT"], {})
    assert config.start == datetime(2024, 3, 1, 23, 56, tzinfo=timezone.utc)
    assert config.end == datetime(2024, 3, 2, 0, 1, tzinfo=timezone.utc)
    assert config.symbols == ("AAPL", "MSFT")
    # A 5-minute sliding window overlapping the range reaches 5 minutes beyond it.
    assert recompute.read_margin(config.windows) == timedelta(minutes=5)
    low = config.start - timedelta(minutes=5)
    high = config.end + timedelta(minutes=5)
    assert recompute.utc_days(low, high) == [date(2024, 3, 1), date(2024, 3, 2)]
    # An end at midnight, exclusive, does not touch the next day.
    assert recompute.utc_days(low, datetime(2024, 3, 2, tzinfo=timezone.utc)) == [
        date(2024, 3, 1)]


def test_recompute_reads_whole_days_and_the_day_before() -> None:
    windows = recompute.parse_config(["--from", "2024-03-01", "--to", "2024-03-02"],
                                     {}).windows

    def utc(*args: int) -> datetime:
        return datetime(*args, tzinfo=timezone.utc)

    # Day candles need whole days; a ticker of the range's first trades needs the day
    # before; a moving window at the end reaches 5 minutes past it.
    assert recompute.read_range(utc(2024, 3, 1, 10), utc(2024, 3, 1, 11), windows) == (
        utc(2024, 2, 29), utc(2024, 3, 2))
    assert recompute.read_range(utc(2024, 3, 1), utc(2024, 3, 1, 23, 50), windows) == (
        utc(2024, 2, 29), utc(2024, 3, 2))
    assert recompute.read_range(utc(2024, 3, 1), utc(2024, 3, 2), windows) == (
        utc(2024, 2, 29), utc(2024, 3, 2, 0, 5))


def test_recompute_rejects_an_empty_range() -> None:
    with pytest.raises(SystemExit):
        recompute.parse_config(["--from", "2024-03-02T00:00", "--to", "2024-03-01T00:00"], {})


def test_ui_port_defaults_locally_and_is_left_to_spark_submit_when_submitted() -> None:
    assert stream_processor.parse_config([], {}).spark.ui_port == 4040
    assert stream_processor.parse_config([], {"SPARK_UI_PORT": "4555"}).spark.ui_port == 4555
    assert stream_processor.parse_config(["--ui-port", "0"], {}).spark.ui_port == 0
    # Submitted: spark-submit's spark.ui.port (the SparkApplication's) stays in force.
    submitted = stream_processor.parse_config([], {"PYSPARK_GATEWAY_PORT": "40000"})
    assert submitted.spark.ui_port is None


@pytest.mark.parametrize("bad", ["70000", "-1", "http"])
def test_a_bad_ui_port_is_a_usage_error(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        stream_processor.parse_config(["--ui-port", bad], {})
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--ui-port" in err and bad in err


def test_the_ui_serves_spark_prometheus_endpoints_unless_turned_off() -> None:
    on = ui_conf(4555)
    assert (on["spark.ui.enabled"], on["spark.ui.port"]) == ("true", "4555")
    assert on["spark.ui.prometheus.enabled"] == "true"
    assert on["spark.sql.streaming.metricsEnabled"] == "true"
    assert on["spark.metrics.conf.*.sink.prometheusServlet.class"] == (
        "org.apache.spark.metrics.sink.PrometheusServlet")
    assert on["spark.metrics.conf.*.sink.prometheusServlet.path"] == "/metrics/prometheus"
    assert ui_conf(0) == {"spark.ui.enabled": "false"}
    left = ui_conf(None)
    assert "spark.ui.port" not in left and "spark.ui.enabled" not in left
    assert left.items() <= on.items()
