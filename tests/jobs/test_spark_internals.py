"""The private PySpark attributes the jobs use, pinned: an upgrade that moves one fails
here, by name, instead of somewhere inside a running job."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pyspark
import pytest
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from jobs import spark_internals

pytestmark = pytest.mark.spark


def moved(what: str) -> str:
    return (f"{what} moved in PySpark {pyspark.__version__}: re-check jobs/spark_internals.py"
            f" (written for {spark_internals.PINNED_PYSPARK}x)")


def test_the_pinned_release_line() -> None:
    assert pyspark.__version__.startswith(spark_internals.PINNED_PYSPARK), moved("everything")


def test_observed_values_reads_the_jvm_observation(spark: SparkSession) -> None:
    observation = Observation("pinned")
    df = spark.range(10).observe(observation, F.count(F.lit(1)).alias("rows"),
                                 F.max("id").alias("top"))
    df.collect()
    assert getattr(observation, "_jo", None) is not None, moved("Observation._jo")
    assert spark_internals.observed_values(observation) == {"rows": 10, "top": 9}


@contextlib.contextmanager
def after_first_batch(spark: SparkSession, path: Path,
                      each_batch: Callable[[DataFrame, int], None]
                      ) -> Iterator[StreamingQuery]:
    """A rate-source query, yielded once its first batch ran; stopped afterwards."""
    done = threading.Event()

    def run(batch: DataFrame, batch_id: int) -> None:
        each_batch(batch, batch_id)
        done.set()

    query = (spark.readStream.format("rate").option("rowsPerSecond", 1).load()
             .writeStream.foreachBatch(run)
             .option("checkpointLocation", str(path / "checkpoint")).start())
    try:
        deadline = time.monotonic() + 300  # however slow the first batch is
        while not done.wait(1) and query.exception() is None:
            assert time.monotonic() < deadline, "no batch ran in 300 s"
        yield query
    finally:
        query.stop()
    assert query.exception() is None


def test_batch_query_id_is_the_running_query_id(spark: SparkSession, tmp_path) -> None:
    seen: list[str | None] = []
    with after_first_batch(spark, tmp_path, lambda batch, _: seen.append(
            spark_internals.batch_query_id(batch))) as query:
        pass
    assert seen[0] == query.id, moved(f"the local property {spark_internals.QUERY_ID_PROPERTY}")


def test_set_jvm_log_level(spark: SparkSession) -> None:
    logger = "market.pinned.test"
    spark_internals.set_jvm_log_level(spark, logger, "ERROR")
    assert spark_internals.jvm_log_level(spark, logger) == "ERROR", moved("SparkContext._jvm")
    spark_internals.set_jvm_log_level(spark, logger, "DEBUG")
    assert spark_internals.jvm_log_level(spark, logger) == "DEBUG"


def test_batch_end_offsets_reads_the_offset_log(spark: SparkSession, tmp_path) -> None:
    with after_first_batch(spark, tmp_path, lambda batch, _: None) as query:
        logged = spark_internals.batch_end_offsets(query, 0)
        missing = spark_internals.batch_end_offsets(query, 10**6)
    # One source; the rate source's offset is JSON too (its own shape).
    assert logged is not None and len(logged) == 1, moved("StreamExecution.offsetLog")
    assert json.loads(logged[0]) is not None
    assert missing is None
