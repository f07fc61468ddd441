"""Build the SparkSession for the jobs: locally with the project's jars, or under spark-submit."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from pyspark.sql import SparkSession

from contract.exits import UsageError
from jobs.settings import CassandraTarget, SparkLaunch
from jobs.spark_internals import set_jvm_log_level

# Sized for a 2-core machine that also runs Kafka and Cassandra.
LOCAL_DEFAULTS: Mapping[str, str] = {
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.ui.enabled": "false",
    "spark.sql.session.timeZone": "UTC",
    # The parallel collector: the local driver's heap is small, and on two cores G1's
    # concurrent threads and write barriers take CPU from Kafka and Cassandra; its peak
    # resident memory may be higher (docs/benchmarks.md, "Settings and the measurements
    # behind them", for this and the next setting).
    "spark.driver.extraJavaOptions": "-Duser.timezone=UTC -XX:+UseParallelGC",
    # Checkpoints on the local disk: the default FileContext-based manager sets the
    # permissions of every file it writes by running `chmod` in a child process (no
    # Hadoop native library here), a cost on each of a micro-batch's two commits. The
    # rename is atomic on a local disk.
    "spark.sql.streaming.checkpointFileManagerClass":
        "org.apache.spark.sql.execution.streaming.FileSystemBasedCheckpointFileManager",
    "spark.sql.streaming.stateStore.providerClass":
        "org.apache.spark.sql.execution.streaming.state.HDFSBackedStateStoreProvider",
}

# Spark's Prometheus endpoints on the driver's UI port: the driver's metrics, the
# streaming queries' among them, at /metrics/prometheus, and the executors' (which
# report to the driver; they serve nothing themselves) at /metrics/executors/prometheus.
# k8s/base/stream-processor/sparkapplication.yaml sets the same in its sparkConf.
METRICS_CONF: Mapping[str, str] = {
    "spark.ui.prometheus.enabled": "true",
    "spark.metrics.conf.*.sink.prometheusServlet.class":
        "org.apache.spark.metrics.sink.PrometheusServlet",
    "spark.metrics.conf.*.sink.prometheusServlet.path": "/metrics/prometheus",
    # Each query's input and processing rates, latency and state size as gauges.
    "spark.sql.streaming.metricsEnabled": "true",
    # Metric names then carry the application's name instead of its id, which
    # changes with every run and would start new series each time.
    "spark.metrics.namespace": "${spark.app.name}",
}


def build_spark(
    app_name: str,
    *,
    master: str | None = None,
    jars: Sequence[Path] = (),
    conf: Mapping[str, str] | None = None,
    java_options: Sequence[str] = (),
) -> SparkSession:
    """A session for app_name.

    master=None leaves the master to spark-submit (cluster runs); a local run passes
    e.g. "local[*]" and the connector jars as local paths (not --packages, whose Ivy
    resolution ignores Maven's settings), and may add java_options to its driver JVM's.
    """
    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    for key, value in spark_settings(master, jars, conf, java_options).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def spark_settings(
    master: str | None,
    jars: Sequence[Path] = (),
    conf: Mapping[str, str] | None = None,
    java_options: Sequence[str] = (),
) -> dict[str, str]:
    """What build_spark sets: the local defaults for a local master, then the jars, then conf."""
    local = bool(master and master.startswith("local"))
    settings = dict(LOCAL_DEFAULTS) if local else {}
    if java_options and local:
        key = "spark.driver.extraJavaOptions"
        settings[key] = " ".join([settings[key], *java_options])
    # No CassandraSparkExtensions: the jobs use neither its writetime/ttl functions nor
    # its direct joins, and its optimizer rule walks every plan, every micro-batch.
    if jars and local:
        # On the driver's own class path, where the class archive holds their classes:
        # through spark.jars, Spark's own loader read hundreds of them from the jars on
        # every start (docs/benchmarks.md). A local master's executors share the JVM.
        settings["spark.driver.extraClassPath"] = os.pathsep.join(str(jar) for jar in jars)
    elif jars:
        settings["spark.jars"] = ",".join(str(jar) for jar in jars)
    settings.update(conf or {})
    return settings


def local_jars(jars_dir: Path) -> list[Path]:
    """The connector jars `python -m stack jars` resolves under jars_dir/spark, sorted
    for a stable class path (the class archive's key follows its order)."""
    jars = sorted((jars_dir / "spark").glob("*.jar"))
    if not jars:
        raise UsageError(f"no connector jars in {jars_dir / 'spark'}: run `make jars`"
                         " (or `python -m stack jars`), or set --jars-dir (env SPARK_JARS_DIR)")
    return jars


def start_session(app_name: str, launch: SparkLaunch, cassandra: CassandraTarget) -> SparkSession:
    """A session for a job, with the Cassandra connection and credentials set."""
    jars = local_jars(launch.jars_dir) if launch.jars_dir else []
    conf = {
        "spark.sql.session.timeZone": "UTC",
        # Progress bars would interleave with the log lines on stderr.
        "spark.ui.showConsoleProgress": "false",
        # stop() on a query blocked in a write (Cassandra down) would otherwise wait
        # forever, and a failed job must exit so that its supervisor restarts it.
        "spark.sql.streaming.stopTimeout": "30s",
        **ui_conf(launch.ui_port),
        **cassandra.connection_conf(),
    }
    spark = build_spark(app_name, master=launch.master, jars=jars, conf=conf,
                        java_options=class_archive_options(launch))
    spark.sparkContext.setLogLevel(launch.log_level)
    quiet_jvm_logger(spark, "org.apache.spark.sql.avro.AvroSerializer")
    # Set at runtime, never on the builder: PySpark hands builder settings to the JVM
    # it launches as `--conf key=value` process arguments, visible to `ps`.
    for key, value in cassandra.credential_conf().items():
        spark.conf.set(key, value)
    return spark


def class_archive_options(launch: SparkLaunch) -> list[str]:
    """The driver JVM's options for its class-data-sharing archive.

    A dynamic archive holds the classes an earlier run loaded, already parsed and
    verified: the JVM maps them instead of loading each from its jar, which shortens a
    cold start by seconds (docs/benchmarks.md). The JVM checks that the archive matches
    its own build and class path and, if not, warns and loads classes the usual way.
    """
    archive = launch.class_archive
    if archive is None:
        return []
    if launch.record_classes:
        return [java_option(f"-XX:ArchiveClassesAtExit={archive}")]
    return [java_option(f"-XX:SharedArchiveFile={archive}")] if archive.is_file() else []


def java_option(text: str) -> str:
    """One option in spark.driver.extraJavaOptions, which Spark's launcher splits at
    blanks unless quoted the way a shell would."""
    if not any(c in text for c in " \t\"'\\"):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def ui_conf(port: int | None) -> dict[str, str]:
    """The driver UI on `port` with the Prometheus endpoints, or no UI for port 0.

    None keeps the UI settings already made (spark-submit's, or LOCAL_DEFAULTS).
    """
    if port == 0:
        return {"spark.ui.enabled": "false"}
    chosen = {} if port is None else {"spark.ui.enabled": "true", "spark.ui.port": str(port)}
    return {**chosen, **METRICS_CONF}


def quiet_jvm_logger(spark: SparkSession, name: str, level: str = "ERROR") -> None:
    """Raise one JVM logger's level (driver JVM: all of them with a local master).

    Used for AvroSerializer, which warns on every task that the decoded trade is
    nullable where the Avro schema is not: the re-encoding (jobs.transforms) only
    ever sees complete trades. On a cluster, set the same level in the executors'
    log4j2 configuration.
    """
    set_jvm_log_level(spark, name, level)
