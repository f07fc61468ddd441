"""The drain's floor: a stream job that only reads, decodes and writes the trades.

    python -m bench.floor_job TOPIC MAX_OFFSETS   (last line: cold and warm records/s, records)

What any job that reads the topic once and decodes it must do, and nothing more: one
query over TOPIC, decoded in the query's plan with the stream job's own transform
(the rejection checks included), whose foreachBatch writes the valid trades into the
`trades` table of a fresh keyspace with the job's connector settings. No cache, no
rejected records, no observed metrics, no panes or windows. Like the job under
`make bench`, it drains with `availableNow` and MAX_OFFSETS records per micro-batch,
on a session with the same settings and class archive; its first batch runs on a
cold JVM, the rest on a warm one.

bench.stream_job sets these rates beside the connector's ceiling: the share of the
ceiling this reaches bounds what the stream job can reach on the same machine.
"""

from __future__ import annotations

import sys
import tempfile
import time

from pyspark.sql import DataFrame

from bench.common import scratch_session
from contract import SCHEMA_PATH
from jobs.sinks import write_table
from jobs.sources import KafkaTopic, read_stream
from jobs.transforms import decode_trades, valid_trades


def main(topic: str, max_offsets: int) -> int:
    seconds: dict[int, float] = {}
    with scratch_session("bench-floor-job") as (stack, spark, keyspace):

        def write_batch(batch: DataFrame, batch_id: int) -> None:
            # Timed as the stream job times its batches: from the call into foreachBatch,
            # where the batch's records are read and decoded as the write pulls them.
            started = time.monotonic()
            write_table(batch.transform(valid_trades), keyspace, "trades")
            seconds[batch_id] = time.monotonic() - started

        with tempfile.TemporaryDirectory(prefix="floor-checkpoint-") as checkpoint:
            kafka = KafkaTopic(stack.kafka_bootstrap, topic, max_offsets_per_trigger=max_offsets)
            query = (
                read_stream(spark, kafka)
                .transform(decode_trades(SCHEMA_PATH.read_text()))
                .writeStream
                .option("checkpointLocation", checkpoint)
                .foreachBatch(write_batch)
                .trigger(availableNow=True)
                .start()
            )
            query.awaitTermination()
            records = {p["batchId"]: p["numInputRows"] for p in query.recentProgress
                       if p["numInputRows"]}
    for batch_id in sorted(records):
        print(f"batch {batch_id}: {records[batch_id]} records in {seconds[batch_id]:.2f}s")
    rates = batch_rates(records, seconds)
    print(" ".join(f"{rate:.1f}" for rate in rates), sum(records.values()))
    return 0


def batch_rates(records: dict[int, int], seconds: dict[int, float]) -> tuple[float, float]:
    """records/s of the first batch, and of all the others together (nan without)."""
    first, *rest = sorted(records)
    warm = (sum(records[b] for b in rest) / sum(seconds[b] for b in rest)
            if rest else float("nan"))
    return records[first] / seconds[first], warm


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2])))
