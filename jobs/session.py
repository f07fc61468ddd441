"""Build the SparkSession for the jobs: locally with the project's jars, or under spark-submit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from pyspark.sql import SparkSession

# Sized for a 2-core machine that also runs Kafka and Cassandra.
LOCAL_DEFAULTS: Mapping[str, str] = {
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.ui.enabled": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
    "spark.sql.streaming.stateStore.providerClass":
        "org.apache.spark.sql.execution.streaming.state.HDFSBackedStateStoreProvider",
}

CASSANDRA_EXTENSIONS = "com.datastax.spark.connector.CassandraSparkExtensions"


def build_spark(
    app_name: str,
    *,
    master: str | None = None,
    jars: Sequence[Path] = (),
    conf: Mapping[str, str] | None = None,
) -> SparkSession:
    """A session for app_name.

    master=None leaves the master to spark-submit (cluster runs); a local run passes
    e.g. "local[*]" and the connector jars as local paths (spark.jars, not --packages,
    whose Ivy resolution ignores Maven's settings).
    """
    builder = SparkSession.builder.appName(app_name)
    settings = dict(LOCAL_DEFAULTS) if master and master.startswith("local") else {}
    settings["spark.sql.extensions"] = CASSANDRA_EXTENSIONS
    if jars:
        settings["spark.jars"] = ",".join(str(jar) for jar in jars)
    settings.update(conf or {})
    if master:
        builder = builder.master(master)
    for key, value in settings.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
