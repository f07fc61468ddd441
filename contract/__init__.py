"""The facts the pipeline's programs share, each defined once.

The producer, the jobs, the local stack, the dashboards' tools, the benchmarks and the
Kubernetes schema Job take these defaults from here. This package imports none of
them, reads no environment and does no I/O when imported: the entry points read the
environment (contract.env) and hand the values in.

    contract.validation  what a trade is: the bounds and the symbol rule, both sides
    contract.exits       exit codes, and the typed errors that map to them
    contract.env         reading options from an environment mapping
    contract.cassandra   the one way a program opens a Cassandra session
    contract.schema      applying cql/ (local stack and Kubernetes Job alike)
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The Avro contract of the topic's records: the producer encodes with it, the job decodes.
SCHEMA_PATH = PROJECT_ROOT / "schemas" / "trade.avsc"
CQL_DIR = PROJECT_ROOT / "cql"

# The local work folder (`python -m stack`, env STACK_WORK_DIR) and what the jobs find
# in it: the connector jars `python -m stack jars` resolves, and the class archive
# `python -m stack class-archive` records.
WORK_DIR = PROJECT_ROOT / ".work"
JARS_IN_WORK_DIR = Path("jars")
CLASS_ARCHIVE_IN_WORK_DIR = Path("class-archive") / "driver.jsa"
JARS_DIR = WORK_DIR / JARS_IN_WORK_DIR
CLASS_ARCHIVE = WORK_DIR / CLASS_ARCHIVE_IN_WORK_DIR
CHECKPOINT_ROOT = WORK_DIR / "checkpoints"

# Where the local stack listens; a cluster overrides each through the environment.
LOCAL_HOST = "127.0.0.1"
KAFKA_PORT = 9092
BOOTSTRAP_SERVERS = f"{LOCAL_HOST}:{KAFKA_PORT}"
TOPIC = "Market"
DEAD_LETTER_TOPIC = "Market.rejected"

CASSANDRA_HOST = LOCAL_HOST
CASSANDRA_PORT = 9042
KEYSPACE = "market"
# Cassandra 4 and 5 speak protocol v5; pinning it spares the driver a downgrade dance.
CQL_PROTOCOL_VERSION = 5

# The stream query's name: its checkpoint folder and stream_progress.job.
QUERY_NAME = "market"

# The moving-mean windows (minute windows are fixed).
MOVING_WINDOW = timedelta(minutes=5)
MOVING_SLIDE = timedelta(seconds=30)
# The candle resolutions the stream job writes (jobs.candles.RESOLUTIONS names them all).
CANDLE_RESOLUTIONS = "1s,1m,2m,5m,15m,1h,4h,1d"

# The producer's Prometheus endpoint when `make run` starts it.
PRODUCER_METRICS_PORT = 9464


def spell_duration(value: timedelta) -> str:
    """A whole number of seconds as Spark and the jobs' options spell it: '300 seconds'."""
    seconds = value.total_seconds()
    if seconds != int(seconds):
        raise ValueError(f"not whole seconds: {value}")
    return f"{int(seconds)} seconds"
