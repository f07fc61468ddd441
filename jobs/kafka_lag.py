"""How far the stream job is behind its topic, measured after each micro-batch.

lag in records: for each partition, the offsets the topic holds beyond the next one the
job will read. lag in time: when records wait, the age of the newest record the batch
read (the ones waiting are younger), else 0. Both are what a consumer-lag exporter
would report for the job, without the job committing offsets to a consumer group.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime

log = logging.getLogger("jobs.kafka_lag")


def records_behind(ends: Mapping[int, int], next_offsets: Mapping[int, int]) -> int:
    """Records the topic holds past the job's position, summed over partitions.

    A partition the job has not read yet counts as caught up: the job reads from the
    earliest offset on a first start, and a partition without records adds nothing.
    """
    return sum(max(0, end - next_offsets.get(partition, end))
               for partition, end in ends.items())


def end_offsets_of(progress_end_offset: str | Mapping | None, topic: str) -> dict[int, int]:
    """partition -> next offset, from a Kafka source's endOffset in a query progress
    ({"Market": {"0": 120, "1": 40}}, as JSON text or parsed); empty when absent or
    unreadable."""
    try:
        offsets = progress_end_offset or {}
        if isinstance(offsets, str):
            offsets = json.loads(offsets)
        return {int(partition): int(offset)
                for partition, offset in offsets.get(topic, {}).items()}
    except (ValueError, TypeError, AttributeError):
        return {}


def time_behind_ms(records: int, newest_read: datetime | None, moment: datetime
                   ) -> float | None:
    """The age of the newest record read when records wait; 0 when none do."""
    if records == 0:
        return 0.0
    if newest_read is None:
        return None
    return max(0.0, (moment - newest_read).total_seconds() * 1000)


class TopicEnds:
    """The topic's end offsets, from a consumer that never joins a group or commits."""

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self._consumer = None

    def end_offsets(self) -> dict[int, int] | None:
        """partition -> end offset; None (logged) when the broker cannot say: the lag is
        a measurement, never a reason to fail a batch."""
        return self._offsets(beginning=False)

    def beginning_offsets(self) -> dict[int, int] | None:
        """partition -> earliest offset still held (None, logged, when unknown)."""
        return self._offsets(beginning=True)

    def _offsets(self, beginning: bool) -> dict[int, int] | None:
        from kafka import KafkaConsumer, TopicPartition
        from kafka.errors import KafkaError

        try:
            if self._consumer is None:
                self._consumer = KafkaConsumer(
                    bootstrap_servers=self.bootstrap_servers, group_id=None,
                    enable_auto_commit=False, request_timeout_ms=10_000,
                    client_id="market-stream-lag")
            partitions = self._consumer.partitions_for_topic(self.topic) or set()
            wanted = [TopicPartition(self.topic, p) for p in sorted(partitions)]
            ends = (self._consumer.beginning_offsets(wanted) if beginning
                    else self._consumer.end_offsets(wanted))
        except (KafkaError, OSError, ValueError) as err:
            log.warning("could not read the offsets of %s: %s", self.topic, err)
            return None
        return {tp.partition: offset for tp, offset in ends.items()}

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
