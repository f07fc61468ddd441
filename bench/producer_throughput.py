"""Producer throughput: `python -m producer synthetic --rate 0` into a fresh topic.

    python -m bench.producer_throughput [--count 100000] [--runs 3]

Reports trades/s per run (wall clock of the whole process, start-up included, and
the producer's own steady rate from its summary line), the child's peak RSS, and
verifies that every record arrived and decodes.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import time

from producer.avro_codec import decode_record
from stack.config import from_env
from stack.scratch import drop, fresh_topic


def count_decodable(bootstrap: str, topic: str, expected: int) -> int:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=5000)
    total = 0
    for record in consumer:
        decode_record(record.value)  # raises on anything undecodable
        total += 1
        if total >= expected:
            break
    consumer.close()
    return total


def one_run(stack, count: int, seed: int) -> tuple[float, float, float]:
    topic = fresh_topic(stack)
    env_args = ["--status-interval", "0"]
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "producer", "synthetic", "--count", str(count), "--rate", "0",
         "--seed", str(seed), *env_args],
        env={"KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap, "KAFKA_TOPIC": topic,
             "KAFKA_DEAD_LETTER_TOPIC": stack.dead_letter_topic, "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, check=True)
    wall = time.monotonic() - started
    steady = float(re.findall(r"rate=([\d.]+)/s", proc.stdout + proc.stderr)[-1])
    arrived = count_decodable(stack.kafka_bootstrap, topic, count)
    drop(stack, topic)
    if arrived != count:
        raise SystemExit(f"only {arrived} of {count} records arrived")
    return count / wall, steady, wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    stack = from_env(os.environ)
    for run in range(1, args.runs + 1):
        overall, steady, wall = one_run(stack, args.count, args.seed)
        print(f"run {run}: {args.count} trades in {wall:.2f}s -> {overall:,.0f} trades/s "
              f"including start-up; producer's own rate {steady:,.0f} trades/s")
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS of the producer process: {peak_mib:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
