"""The local Cassandra node (CassandraDaemon started directly) and its readiness check."""

from __future__ import annotations

import logging

from contract.cassandra import make_cluster
from stack import jars
from stack.config import StackConfig
from stack.server import Server, classpath, common_jvm_options, render

log = logging.getLogger(__name__)

# Cassandra 5.0's conf/jvm17-server.options: the module access it needs on JDK 17.
_EXPORTS = (
    "java.base/jdk.internal.misc", "java.management.rmi/com.sun.jmx.remote.internal.rmi",
    "java.management/com.sun.jmx.remote.security", "java.rmi/sun.rmi.registry",
    "java.rmi/sun.rmi.server", "java.sql/java.sql", "java.base/java.lang.ref",
    "jdk.unsupported/sun.misc",
)
_OPENS = (
    "java.base/java.lang.module", "java.base/jdk.internal.loader", "java.base/jdk.internal.ref",
    "java.base/jdk.internal.reflect", "java.base/jdk.internal.math",
    "java.base/jdk.internal.module", "java.base/jdk.internal.util.jar",
    "jdk.management/com.sun.management.internal", "java.base/sun.nio.ch", "java.base/java.io",
    "java.base/java.lang.reflect", "java.base/java.lang", "java.base/java.util",
    "java.base/java.nio",
)


def jvm_module_options() -> list[str]:
    return [f"--add-exports={m}=ALL-UNNAMED" for m in _EXPORTS] + [
        f"--add-opens={m}=ALL-UNNAMED" for m in _OPENS
    ]


def cassandra_ready(host: str, port: int) -> bool:
    from cassandra.cluster import NoHostAvailable  # heavy import, only when checking

    cluster = make_cluster(host, port, connect_timeout_s=3)
    try:
        session = cluster.connect()
        session.execute("SELECT release_version FROM system.local", timeout=5)
        return True
    except (NoHostAvailable, OSError, Exception):  # any failure means "not ready yet"
        return False
    finally:
        cluster.shutdown()


def server(config: StackConfig) -> Server:
    home = config.server_dir("cassandra")
    yaml = home / "conf" / "cassandra.yaml"
    logback = home / "conf" / "logback.xml"
    data = home / "data"
    logs = home / "logs"

    def command() -> list[str]:
        cassandra_jars = jars.jar_paths(config.jars_dir, "cassandra")
        jamm = next(j for j in cassandra_jars if j.name.startswith("jamm-"))
        return [
            config.java, *common_jvm_options(config.cassandra_heap, home),
            "-Xss256k", "-XX:MaxGCPauseMillis=300", "-XX:+ParallelRefProcEnabled",
            *jvm_module_options(),
            "-Dcassandra.available_processors=2", "-Dchronicle.analytics.disable=true",
            "-Djdk.attach.allowAttachSelf=true", f"-javaagent:{jamm}",
            # A single seed node has no gossip peers to wait for.
            "-Dcassandra.skip_wait_for_gossip_to_settle=0",
            f"-Dcassandra.config=file:{yaml}", f"-Dcassandra.storagedir={data}",
            f"-Dcassandra.logdir={logs}", f"-Dlogback.configurationFile=file:{logback}",
            # Without it the daemon closes stdout/stderr and start-up errors vanish.
            "-Dcassandra-foreground=yes",
            "-cp", classpath(cassandra_jars),
            "org.apache.cassandra.service.CassandraDaemon",
        ]

    def prepare() -> None:
        render("cassandra.yaml", yaml, host=config.host, port=config.cassandra_port,
               storage_port=config.cassandra_storage_port, data_dir=data)
        render("cassandra-logback.xml", logback)

    return Server(
        name="cassandra",
        home=home,
        ports={"cassandra native": config.cassandra_port,
               "cassandra storage": config.cassandra_storage_port},
        command=command,
        ready=lambda: cassandra_ready(config.host, config.cassandra_port),
        prepare=prepare,
        env=config.server_env,
    )
