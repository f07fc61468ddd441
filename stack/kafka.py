"""The local Kafka broker (KRaft, single combined node) and its readiness check."""

from __future__ import annotations

import base64
import logging
import subprocess
import uuid

from stack import jars
from stack.config import StackConfig
from stack.errors import StackError
from stack.server import Server, classpath, common_jvm_options, render

log = logging.getLogger(__name__)


def _format_storage(config: StackConfig, java: list[str], properties: str) -> None:
    """Format the KRaft log dir once; the cluster id is kept beside the data."""
    home = config.server_dir("kafka")
    id_file = home / "cluster.id"
    if not id_file.exists():
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        id_file.write_text(cluster_id + "\n")
    cmd = [*java, "kafka.tools.StorageTool", "format", "-t", id_file.read_text().strip(),
           "-c", properties, "--ignore-formatted"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=home, check=False,
                          env=dict(config.server_env))
    if proc.returncode != 0:
        raise StackError(
            f"Kafka storage format failed:\n{(proc.stdout + proc.stderr).strip()[-2000:]}",
            f"if the data is disposable, remove {home / 'data'} and retry",
        )


def kafka_ready(bootstrap: str) -> bool:
    from kafka import KafkaAdminClient  # heavy import, only when checking
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    except (KafkaError, OSError, ValueError):
        return False
    try:
        admin.list_topics()
        return True
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()


def server(config: StackConfig) -> Server:
    home = config.server_dir("kafka")
    properties = home / "conf" / "server.properties"
    log4j = home / "conf" / "log4j2.xml"
    logs = home / "logs"

    def base() -> list[str]:
        return [
            config.java, *common_jvm_options(config.kafka_heap, home),
            "-XX:MaxGCPauseMillis=20", f"-Dkafka.logs.dir={logs}",
            f"-Dlog4j2.configurationFile=file:{log4j}",
            "-cp", classpath(jars.jar_paths(config.jars_dir, "kafka")),
        ]

    def prepare() -> None:
        render("kafka-server.properties", properties, host=config.host, port=config.kafka_port,
               controller_port=config.kafka_controller_port, data_dir=home / "data")
        render("kafka-log4j2.xml", log4j)
        _format_storage(config, base(), str(properties))

    return Server(
        name="kafka",
        home=home,
        ports={"kafka": config.kafka_port, "kafka controller": config.kafka_controller_port},
        command=lambda: [*base(), "kafka.Kafka", str(properties)],
        ready=lambda: kafka_ready(config.kafka_bootstrap),
        prepare=prepare,
        env=config.server_env,
    )


def ensure_topic(bootstrap: str, name: str, partitions: int) -> bool:
    """Create a topic unless it exists. True if it was created."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        if name in admin.list_topics():
            return False
        admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        log.info("created topic %s with %d partitions", name, partitions)
        return True
    except TopicAlreadyExistsError:
        return False
    finally:
        admin.close()
