"""The local Spark standalone cluster: one master and two workers from pyspark's own jars.

Each daemon is started by pyspark's `bin/spark-class` (which execs java, so the pid
we record is the JVM's), with its heap, log configuration and work folders under
<stack>/spark/. Executors run as children of their worker, in its process group:
stopping a worker stops its executors.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import socket
import urllib.error
import urllib.request
from pathlib import Path

from stack.config import StackConfig
from stack.errors import StackError
from stack.server import Server, render


def spark_home() -> Path:
    """pyspark's folder: its bin/ holds spark-class and spark-submit, its jars/ Spark."""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or spec.origin is None:
        raise StackError("pyspark is not installed in this Python.", "run `make install`")
    return Path(spec.origin).parent


def java_home(java: str) -> Path | None:
    """JAVA_HOME for spark-class when a particular java was asked for (JAVA=/path/java)."""
    if java == "java":
        return None  # spark-class takes java from PATH, like the other servers
    found = shutil.which(java)
    return Path(found).resolve().parent.parent if found else None


def master_json(config: StackConfig, timeout_s: float = 3.0) -> dict | None:
    """The master's state as its web UI serves it at /json/, or None if it does not answer."""
    url = f"http://{config.host}:{config.spark_master_ui_port}/json/"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return json.load(response)
    except (urllib.error.URLError, OSError, ValueError):
        return None


def alive_worker_ports(state: dict | None) -> set[int]:
    """RPC ports of the workers the master lists as ALIVE."""
    workers = (state or {}).get("workers", [])
    return {w["port"] for w in workers if w.get("state") == "ALIVE"}


def _port_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def master_ready(config: StackConfig) -> bool:
    state = master_json(config)
    return (_port_answers(config.host, config.spark_master_port)
            and state is not None and state.get("status") == "ALIVE")


def worker_ready(config: StackConfig, port: int) -> bool:
    return port in alive_worker_ports(master_json(config))


def _launcher(config: StackConfig, home: Path) -> list[str]:
    """`env K=V ... spark-class`: the settings spark-class reads, without touching ours.

    `env` and spark-class both exec, so the launched pid ends up being the JVM's.
    """
    settings = {
        "SPARK_HOME": spark_home(),
        "SPARK_CONF_DIR": config.server_dir("spark") / "conf",
        "SPARK_DAEMON_MEMORY": config.spark_daemon_heap,
        "SPARK_LOCAL_IP": config.host,
        # Executors' scratch space (shuffle, spilled blocks) stays in the work folder.
        "SPARK_LOCAL_DIRS": home / "tmp",
        "SPARK_DAEMON_JAVA_OPTS": f"-Djava.io.tmpdir={home / 'tmp'}",
        # Each application leaves its jars and logs in the worker's work folder: drop
        # those of applications finished for a week.
        "SPARK_WORKER_OPTS": "-Dspark.worker.cleanup.enabled=true"
                             " -Dspark.worker.cleanup.appDataTtl=604800",
    }
    jhome = java_home(config.java)
    if jhome is not None:
        settings["JAVA_HOME"] = jhome
    return ["env", *(f"{key}={value}" for key, value in settings.items()),
            str(spark_home() / "bin" / "spark-class")]


def _prepare(config: StackConfig, home: Path) -> None:
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    render("spark-log4j2.properties", config.server_dir("spark") / "conf" / "log4j2.properties")


def master(config: StackConfig) -> Server:
    home = config.server_dir("spark") / "master"
    return Server(
        name="spark-master",
        home=home,
        ports={"spark master": config.spark_master_port,
               "spark master ui": config.spark_master_ui_port},
        command=lambda: [*_launcher(config, home), "org.apache.spark.deploy.master.Master",
                         "--host", config.host, "--port", str(config.spark_master_port),
                         "--webui-port", str(config.spark_master_ui_port)],
        ready=lambda: master_ready(config),
        prepare=lambda: _prepare(config, home),
        env=config.server_env,
    )


def worker(config: StackConfig, index: int) -> Server:
    home = config.server_dir("spark") / f"worker-{index + 1}"
    port, ui_port = config.spark_worker_ports[index], config.spark_worker_ui_ports[index]
    return Server(
        name=f"spark-worker-{index + 1}",
        home=home,
        ports={"spark worker": port, "spark worker ui": ui_port},
        command=lambda: [*_launcher(config, home), "org.apache.spark.deploy.worker.Worker",
                         "--host", config.host, "--port", str(port),
                         "--webui-port", str(ui_port),
                         "--cores", str(config.spark_worker_cores),
                         "--memory", config.spark_worker_memory,
                         "--work-dir", str(home / "work"), config.spark_master_url],
        ready=lambda: worker_ready(config, port),
        prepare=lambda: _prepare(config, home),
        env=config.server_env,
    )


def workers(config: StackConfig) -> list[Server]:
    if len(config.spark_worker_ports) != len(config.spark_worker_ui_ports):
        raise StackError(
            f"{len(config.spark_worker_ports)} Spark worker ports but "
            f"{len(config.spark_worker_ui_ports)} worker UI ports were given.",
            "give one UI port per worker (SPARK_WORKER_PORTS, SPARK_WORKER_WEBUI_PORTS)",
        )
    return [worker(config, i) for i in range(len(config.spark_worker_ports))]


def servers(config: StackConfig) -> list[Server]:
    """Master first: workers register with it, and stop in the reverse order."""
    return [master(config), *workers(config)]
