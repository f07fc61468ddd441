"""Configuration shared by the jobs: frozen dataclasses and argparse options with env defaults.

Only the entry points hand the process environment in (as a Mapping); nothing below
reads os.environ. Cassandra credentials come from the environment only: a value on
the command line would be visible to anyone listing processes.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import contract
from contract import env as envvars
from jobs.candles import RESOLUTIONS, parse_resolutions

# Spark's own default port of the driver UI.
SPARK_UI_PORT = 4040

_DURATION = re.compile(
    r"^\s*(\d+)\s+(millisecond|second|minute|hour|day)s?\s*$", re.IGNORECASE
)
_UNIT = {
    "millisecond": timedelta(milliseconds=1),
    "second": timedelta(seconds=1),
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
}


def parse_duration(text: str) -> timedelta:
    """'30 seconds' -> timedelta; the forms Spark accepts for windows and watermarks."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration like '30 seconds' or '5 minutes': {text!r}")
    return int(match.group(1)) * _UNIT[match.group(2).lower()]


def duration(text: str) -> str:
    """argparse type: validates a duration early, keeps Spark's spelling of it."""
    positive_duration(text)
    return text.strip()


def positive_duration(text: str) -> timedelta:
    """argparse type: a duration greater than zero, as a timedelta."""
    try:
        value = parse_duration(text)
        if value <= timedelta(0):
            raise ValueError(f"duration must be positive: {text!r}")
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err
    return value


def whole_seconds(text: str) -> timedelta:
    """argparse type: a positive duration of whole seconds (window lengths and slides)."""
    value = positive_duration(text)
    if value.total_seconds() != int(value.total_seconds()):
        raise argparse.ArgumentTypeError(f"must be whole seconds: {text!r}")
    return value


@dataclass(frozen=True)
class CassandraTarget:
    host: str = contract.CASSANDRA_HOST
    port: int = contract.CASSANDRA_PORT
    keyspace: str = contract.KEYSPACE
    # Secrets stay out of repr(), hence out of any log line that prints a config.
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    def connection_conf(self) -> dict[str, str]:
        return {
            "spark.cassandra.connection.host": self.host,
            "spark.cassandra.connection.port": str(self.port),
        }

    def credential_conf(self) -> dict[str, str]:
        if not self.username:
            return {}
        return {
            "spark.cassandra.auth.username": self.username,
            "spark.cassandra.auth.password": self.password or "",
        }


@dataclass(frozen=True)
class SparkLaunch:
    """master=None leaves the master (and the jars) to spark-submit, ui_port=None the
    driver UI (Spark's 4040 when submitted; none with a local master)."""

    master: str | None = "local[*]"
    jars_dir: Path | None = contract.JARS_DIR
    log_level: str = "WARN"
    # The driver's web UI, which also serves the Prometheus metrics; 0 = no UI.
    ui_port: int | None = None
    # A local driver's class-data-sharing archive: used when the file exists, or written
    # at the JVM's exit when record_classes (see stack.class_archive).
    class_archive: Path | None = None
    record_classes: bool = False


@dataclass(frozen=True)
class WindowSpec:
    """The moving-mean windows and the candle resolutions; minute windows are fixed.
    No watermark: see jobs.panes."""

    moving_length: timedelta = contract.MOVING_WINDOW
    moving_slide: timedelta = contract.MOVING_SLIDE
    candle_resolutions: tuple[str, ...] = tuple(contract.CANDLE_RESOLUTIONS.split(","))


def port_number(text: str) -> int | None:
    """argparse type: a TCP port, 0 for none; empty for a default left to Spark."""
    if not text.strip():
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0 (none) or a port 1..65535: {text!r}")
    return value


def millis(text: str) -> int:
    """argparse type: a whole number of milliseconds, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of milliseconds: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {text!r}")
    return value


def utc_timestamp(text: str) -> datetime:
    """argparse type: ISO 8601; a time without offset is taken as UTC."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 timestamp: {text!r}") from err
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def add_cassandra_options(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    add = parser.add_argument
    add("--cassandra-host", default=envvars.get(env, "CASSANDRA_HOST", contract.CASSANDRA_HOST),
        help="contact point(s), comma-separated (env CASSANDRA_HOST)")
    add("--cassandra-port", type=int,
        default=int(envvars.get(env, "CASSANDRA_PORT", str(contract.CASSANDRA_PORT))),
        help="CQL native port (env CASSANDRA_PORT)")
    add("--keyspace", default=envvars.get(env, "CASSANDRA_KEYSPACE", contract.KEYSPACE),
        help="env CASSANDRA_KEYSPACE; credentials: env CASSANDRA_USERNAME, CASSANDRA_PASSWORD")


def add_spark_options(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    # spark-submit starts the Python driver with PYSPARK_GATEWAY_PORT set: it then owns
    # the master and the jars, and a local default would override the cluster's.
    submitted = "PYSPARK_GATEWAY_PORT" in env
    add = parser.add_argument
    add("--master", default=envvars.get(env, "SPARK_MASTER", "" if submitted else "local[*]"),
        help="Spark master; default local[*], or spark-submit's when submitted (env SPARK_MASTER)")
    add("--jars-dir", type=Path,
        default=Path(envvars.get(env, "SPARK_JARS_DIR", str(contract.JARS_DIR))),
        help="resolved connector jars (<dir>/spark/*.jar) for local masters (env SPARK_JARS_DIR)")
    add("--spark-log-level", default=envvars.get(env, "SPARK_LOG_LEVEL", "WARN"),
        help="env SPARK_LOG_LEVEL")
    add("--class-archive", type=optional_path,
        default=envvars.get(env, "SPARK_CLASS_ARCHIVE", str(contract.CLASS_ARCHIVE)),
        help="local masters: the driver JVM maps the classes stored in this archive when it"
             " exists (a faster start); none: no archive (env SPARK_CLASS_ARCHIVE); not used"
             " when JAVA_TOOL_OPTIONS or JDK_JAVA_OPTIONS start an agent or a flight recording")
    parser.set_defaults(class_loading_hooked=hooks_class_loading(env))
    add("--record-class-archive", action="store_true",
        help="write the classes this run loads into --class-archive when the driver JVM"
             " exits, instead of using it (what `python -m stack class-archive` runs)")
    add("--ui-port", type=port_number,
        default=envvars.get(env, "SPARK_UI_PORT", "" if submitted else str(SPARK_UI_PORT)),
        help="driver web UI and its Prometheus metrics (/metrics/prometheus,"
             " /metrics/executors/prometheus); 0 = no UI; default 4040, or spark-submit's"
             " spark.ui.port when submitted (env SPARK_UI_PORT)")


def add_window_options(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    add = parser.add_argument
    add("--moving-window", type=whole_seconds,
        default=envvars.get(env, "STREAM_MOVING_WINDOW",
                            contract.spell_duration(contract.MOVING_WINDOW)),
        help="moving-mean window length (env STREAM_MOVING_WINDOW)")
    add("--moving-slide", type=whole_seconds,
        default=envvars.get(env, "STREAM_MOVING_SLIDE",
                            contract.spell_duration(contract.MOVING_SLIDE)),
        help="moving-mean window slide (env STREAM_MOVING_SLIDE)")
    add("--candle-resolutions", type=resolutions,
        default=envvars.get(env, "STREAM_CANDLE_RESOLUTIONS", contract.CANDLE_RESOLUTIONS),
        help="candle resolutions to write, comma-separated, of "
             f"{', '.join(RESOLUTIONS)} (env STREAM_CANDLE_RESOLUTIONS)")


def resolutions(text: str) -> tuple[str, ...]:
    """argparse type: candle resolution names, shortest first."""
    try:
        return parse_resolutions(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def add_job_options(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    """The options every job shares: windows, Cassandra, Spark."""
    add_window_options(parser, env)
    add_cassandra_options(parser, env)
    add_spark_options(parser, env)


def job_settings(parser: argparse.ArgumentParser, args: argparse.Namespace,
                 env: Mapping[str, str]) -> dict[str, object]:
    """The shared options as config fields: cassandra, spark and windows."""
    return {"cassandra": cassandra_target(args, env), "spark": spark_launch(args),
            "windows": window_spec(parser, args)}


def cassandra_target(args: argparse.Namespace, env: Mapping[str, str]) -> CassandraTarget:
    return CassandraTarget(
        host=args.cassandra_host,
        port=args.cassandra_port,
        keyspace=args.keyspace,
        username=envvars.optional(env, "CASSANDRA_USERNAME"),
        password=envvars.secret(env, "CASSANDRA_PASSWORD"),
    )


# Options in these variables reach every JVM started with that environment.
JVM_OPTION_VARIABLES = ("JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS")
CLASS_LOADING_HOOKS = ("-javaagent", "-agentlib", "-agentpath", "-XX:StartFlightRecording")


def hooks_class_loading(env: Mapping[str, str]) -> bool:
    """Whether the environment starts a Java or native agent, or a flight recording, in
    every JVM. With a dynamic class archive mapped, a class-transforming Java agent and a
    flight recording each crashed the driver JVM of OpenJDK 17.0.15 while it started
    (SIGSEGV in KlassFactory::check_shared_class_file_load_hook); native agents can hook
    class loading the same way. A recording started later with `jcmd <pid> JFR.start`
    did not crash it."""
    options = " ".join(env.get(name, "") for name in JVM_OPTION_VARIABLES)
    return any(hook in options for hook in CLASS_LOADING_HOOKS)


def optional_path(text: str) -> Path | None:
    """argparse type: a path, or None for 'none' (or an empty value on the command line)."""
    return None if text.strip().lower() in ("", "none") else Path(text)


def spark_launch(args: argparse.Namespace) -> SparkLaunch:
    master = args.master or None
    local = master is not None and master.startswith("local")
    # The archive is the local driver's: a submitted driver's JVM is started by spark-submit.
    usable = local and args.class_archive and not args.class_loading_hooked
    archive = args.class_archive.resolve() if usable else None
    return SparkLaunch(
        master=master,
        jars_dir=args.jars_dir.resolve() if local else None,
        log_level=args.spark_log_level,
        ui_port=args.ui_port,
        class_archive=archive,
        record_classes=archive is not None and args.record_class_archive,
    )


def window_spec(parser: argparse.ArgumentParser, args: argparse.Namespace) -> WindowSpec:
    if args.moving_slide > args.moving_window:
        parser.error("--moving-slide must not be longer than --moving-window")
    return WindowSpec(moving_length=args.moving_window, moving_slide=args.moving_slide,
                      candle_resolutions=args.candle_resolutions)
