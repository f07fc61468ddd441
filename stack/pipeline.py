"""`make run`: the producer and the stream job on the local stack, under the supervisor."""

from __future__ import annotations

import logging
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from stack.config import StackConfig
from stack.supervisor import Program, RestartPolicy, Supervisor

log = logging.getLogger(__name__)

# The producer's exit codes that a restart cannot fix: bad options, rejected token.
PRODUCER_FATAL = frozenset({2, 3})


@dataclass(frozen=True)
class RunConfig:
    stack: StackConfig
    live: bool
    symbols: str
    synthetic_rate: float
    driver_memory: str = "2g"

    @property
    def run_dir(self) -> Path:
        return self.stack.work_dir / "run"

    @property
    def checkpoint_root(self) -> Path:
        return self.stack.work_dir / "checkpoints"


def programs(config: RunConfig) -> list[Program]:
    python = sys.executable
    if config.live:
        # The token reaches the producer through its inherited environment, never argv.
        producer = [python, "-m", "producer", "live", "--symbols", config.symbols]
    else:
        producer = [python, "-m", "producer", "synthetic", "--symbols", config.symbols,
                    "--rate", str(config.synthetic_rate)]
    job = [python, "-m", "jobs.stream_processor"]
    return [Program("producer", producer, fatal_exit_codes=PRODUCER_FATAL),
            Program("stream-job", job, fatal_exit_codes=frozenset({2}))]


def child_env(config: RunConfig, base: dict[str, str]) -> dict[str, str]:
    stack = config.stack
    return {
        **base,
        "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap,
        "KAFKA_TOPIC": stack.topic,
        "KAFKA_DEAD_LETTER_TOPIC": stack.dead_letter_topic,
        "CASSANDRA_HOST": stack.host,
        "CASSANDRA_PORT": str(stack.cassandra_port),
        "CASSANDRA_KEYSPACE": stack.keyspace,
        "STREAM_CHECKPOINT_ROOT": str(config.checkpoint_root),
        "SPARK_JARS_DIR": str(stack.jars_dir),
        "SPARK_DRIVER_MEMORY": config.driver_memory,
    }


def run(config: RunConfig, base_env: dict[str, str]) -> int:
    source = "live Finnhub trades" if config.live else (
        f"synthetic trades at {config.synthetic_rate:g}/s (set FINNHUB_TOKEN for live data)")
    log.info("pipeline: %s for %s -> Kafka %s/%s -> Cassandra %s keyspace %s",
             source, config.symbols, config.stack.kafka_bootstrap, config.stack.topic,
             config.stack.cassandra_contact, config.stack.keyspace)
    log.info("logs in %s; stop with Ctrl-C", config.run_dir / "logs")
    supervisor = Supervisor(programs(config), config.run_dir / "logs",
                            child_env(config, base_env), RestartPolicy())
    signal.signal(signal.SIGINT, supervisor.stop)
    signal.signal(signal.SIGTERM, supervisor.stop)
    return supervisor.run()
