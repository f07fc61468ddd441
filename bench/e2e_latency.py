"""End-to-end latency: producer `ingest_ts` to Cassandra `WRITETIME` of the trade row.

    python -m bench.e2e_latency [--rate 1000] [--duration 90] [--warmup 30]

Runs the synthetic producer at --rate trades/s and the stream job (local[*], the
default trigger intervals) against a fresh topic and keyspace on the running stack,
then reads every trade row written after the warm-up and reports percentiles of
WRITETIME(price) - ingest_ts.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import timezone

from bench.common import drop, fresh_keyspace, fresh_topic, percentile
from stack.__main__ import parse_config

SYMBOLS = "BINANCE:BTCUSDT,BINANCE:ETHUSDT,BINANCE:SOLUSDT"


def start(cmd: list[str], env: dict[str, str], log: str) -> subprocess.Popen:
    with open(log, "w") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def latencies(session, keyspace: str, since_ms: float) -> list[float]:
    rows = session.execute(
        f"SELECT ingest_ts, writetime(price) AS written FROM {keyspace}.trades", timeout=120)
    values = []
    for row in rows:
        ingest_ms = row.ingest_ts.replace(tzinfo=timezone.utc).timestamp() * 1000
        if ingest_ms >= since_ms:
            values.append(row.written / 1000 - ingest_ms)
    return sorted(values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--duration", type=float, default=90)
    parser.add_argument("--warmup", type=float, default=30)
    args = parser.parse_args()
    _, stack = parse_config(["status"])
    topic = fresh_topic(stack)
    session, keyspace = fresh_keyspace(stack)
    work = tempfile.mkdtemp(prefix="bench-", dir=stack.work_dir)
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap, "KAFKA_TOPIC": topic,
           "CASSANDRA_KEYSPACE": keyspace, "STREAM_CHECKPOINT_ROOT": f"{work}/checkpoints"}
    job = start([sys.executable, "-m", "jobs.stream_processor"], env, f"{work}/job.log")
    time.sleep(25)  # the job's JVM and first (empty) batches
    producer = start([sys.executable, "-m", "producer", "synthetic", "--symbols", SYMBOLS,
                      "--rate", str(args.rate), "--duration", str(args.duration)],
                     env, f"{work}/producer.log")
    since_ms = time.time() * 1000 + args.warmup * 1000
    producer.wait(timeout=args.duration + 120)
    time.sleep(15)  # the last batches
    os.killpg(job.pid, signal.SIGTERM)
    job.wait(timeout=120)
    values = latencies(session, keyspace, since_ms)
    drop(stack, topic, session, keyspace)
    print(f"{len(values)} trades after a {args.warmup:.0f}s warm-up at {args.rate:g} trades/s; "
          f"latency ms: p50 {percentile(values, .5):.0f}, p95 {percentile(values, .95):.0f}, "
          f"p99 {percentile(values, .99):.0f}, max {values[-1]:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
