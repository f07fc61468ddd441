"""Every use the jobs make of PySpark's private attributes, behind one function each.

PySpark 3.5 offers no public way to do these four things; each is needed, and each
is pinned by tests/jobs/test_spark_internals.py, which fails loudly (naming the
PySpark version) when an upgrade moves one. PINNED_PYSPARK says which release line
they were checked against: on another, re-check every function here first.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql.streaming import StreamingQuery

# The release line these internals were read from (pyproject.toml pins pyspark).
PINNED_PYSPARK = "3.5."
# The local property Spark's stream execution sets on the thread running a batch.
QUERY_ID_PROPERTY = "sql.streaming.queryId"


def observed_values(observation: Observation) -> dict[str, Any]:
    """What Observation.get returns, read without an exception at the end.

    Observation.get iterates the JVM's map until the JVM throws; PySpark converts that
    exception by probing a dozen class names through py4j, each probe a lookup that
    searches every jar on the class path for a class that is not there (a large share
    of the driver's JVM time per batch: docs/benchmarks.md). The keys as an array end
    cleanly. The JVM observation is the private `_jo`.
    """
    jobservation = getattr(observation, "_jo", None)
    if jobservation is None:  # another PySpark: its own way
        return observation.get
    jmap = jobservation.getAsJava()
    return {key: jmap.get(key) for key in jmap.keySet().toArray()}


def batch_query_id(batch: DataFrame) -> str | None:
    """The id of the streaming query running this foreachBatch call.

    The batch's own session does not know its query (`streams.get` returns None), but
    Spark sets the id as a local property of the thread that runs the batch; it is the
    same for every restart from one checkpoint.
    """
    return batch.sparkSession.sparkContext.getLocalProperty(QUERY_ID_PROPERTY)


def batch_end_offsets(query: StreamingQuery, batch_id: int) -> list[str] | None:
    """The JSON end offset of each source of one micro-batch, from the query's offset
    log (what its checkpoint's offsets/<batch_id> file holds); None when not logged.

    Written before the batch runs, so a running batch finds its own. The stream
    execution behind the query is the private `_jsq`.
    """
    logged = query._jsq.streamingQuery().offsetLog().get(batch_id)
    if not logged.isDefined():
        return None
    offsets = logged.get().offsets()
    return [offsets.apply(n).get().json() if offsets.apply(n).isDefined() else None
            for n in range(offsets.size())]


def set_jvm_log_level(spark: SparkSession, logger: str, level: str) -> None:
    """Set one log4j2 logger's level in the driver JVM (all of them with a local master).

    SparkContext.setLogLevel sets the root logger only; the JVM gateway is `_jvm`.
    """
    log4j = spark.sparkContext._jvm.org.apache.logging.log4j
    log4j.core.config.Configurator.setLevel(logger, log4j.Level.toLevel(level))


def jvm_log_level(spark: SparkSession, logger: str) -> str:
    """The effective level of one log4j2 logger in the driver JVM (for the tests)."""
    log4j = spark.sparkContext._jvm.org.apache.logging.log4j
    return str(log4j.LogManager.getLogger(logger).getLevel().toString())
