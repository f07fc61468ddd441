"""A query's own foreachBatch function sees the progress of the batch before."""

from __future__ import annotations

import threading
import time
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from jobs.progress import QueryProgress


def test_each_batch_sees_the_progress_of_the_previous_batch(
        spark: SparkSession, tmp_path) -> None:
    progress = QueryProgress()
    seen: list[tuple[int, dict[str, Any] | None]] = []
    three = threading.Event()

    def each_batch(batch: DataFrame, batch_id: int) -> None:
        # Where a batch would look its query up: its session does not know it.
        query_id = batch.sparkSession.sparkContext.getLocalProperty("sql.streaming.queryId")
        assert batch.sparkSession.streams.get(query_id) is None
        seen.append((batch_id, progress.last()))
        if len(seen) >= 3:
            three.set()

    assert progress.last() is None
    query = (spark.readStream.format("rate").option("rowsPerSecond", 5).load()
             .writeStream.foreachBatch(each_batch)
             .option("checkpointLocation", str(tmp_path / "checkpoint"))
             .trigger(processingTime="200 milliseconds").start())
    progress.attach(query)
    try:
        # However slow the first batches are: a generous deadline on the condition.
        deadline = time.monotonic() + 300
        while not three.wait(1) and query.exception() is None:
            assert time.monotonic() < deadline, "three batches did not run in 300 s"
    finally:
        query.stop()
    assert query.exception() is None
    # A batch running before attach() returned sees nothing; every later one sees
    # the batch just before it.
    later = [(batch_id, last) for batch_id, last in seen if batch_id >= 2]
    assert later, seen
    for batch_id, last in later:
        assert last is not None and last["batchId"] == batch_id - 1, (batch_id, last)
        assert last["sources"][0]["endOffset"] is not None
