"""`python -m stack class-archive`: a class-data-sharing archive for the local jobs' driver.

A cold driver JVM loads, parses and verifies some 20,000 classes from Spark's and the
connectors' jars while the first micro-batch waits. A dynamic CDS archive
(`-XX:ArchiveClassesAtExit`, JDK 13+) stores the classes one run loaded; the next JVM
maps them instead (`--class-archive` of the jobs, jobs.session). Recording means one
real run of the stream job: a few thousand synthetic trades through a scratch topic
into a scratch keyspace, both removed afterwards. The JVM writes the archive when it
exits, so the recording waits for the JVM itself, not only for the Python driver.

An archive holds for one JDK build and one class path (the JVM checks both and
ignores an archive that does not match); the key file beside it names what it was
recorded with, and a changed key records it again.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from contract import CLASS_ARCHIVE_IN_WORK_DIR
from stack import jars, process, scratch, spark_cluster
from stack.config import PROJECT_ROOT, StackConfig
from stack.errors import StackError

log = logging.getLogger(__name__)

TRAINING_TRADES = 4000
# Generous: on a loaded two-core machine the job's first batch alone can take 30 s, and
# the JVM writes some 160 MiB at its exit.
JOB_TIMEOUT_S = 600.0
DUMP_TIMEOUT_S = 300.0


def archive_path(config: StackConfig) -> Path:
    """Where the jobs look for it by default, under the stack's work folder."""
    return config.work_dir / CLASS_ARCHIVE_IN_WORK_DIR


def driver_java(env: Mapping[str, str]) -> Path | None:
    """The java that PySpark's launcher runs: $JAVA_HOME/bin/java, else java on PATH."""
    if env.get("JAVA_HOME"):
        candidate = Path(env["JAVA_HOME"]) / "bin" / "java"
        return candidate.resolve() if candidate.exists() else None
    found = shutil.which("java", path=env.get("PATH"))
    return Path(found).resolve() if found else None


def archive_key(java: Path | None, class_path: list[Path]) -> str:
    """A digest of the JDK build and of the driver's class path: the jars' names and
    sizes, in their order, since the JVM ignores an archive recorded with another."""
    digest = hashlib.sha256()
    if java is not None:
        home = java.parent.parent
        digest.update(str(home).encode())
        for part in (home / "release", home / "lib" / "server" / "libjvm.so"):
            if part.is_file():
                stat = part.stat()
                digest.update(f"{part.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    for jar in class_path:
        digest.update(f"{jar.name}:{jar.stat().st_size}".encode())
    return digest.hexdigest()[:16]


def driver_class_path(config: StackConfig) -> list[Path]:
    """The local driver's class path: the connector jars the jobs put first
    (jobs.session), then Spark's own (pyspark's jars/)."""
    return [*jars.jar_paths(config.jars_dir, "spark"),
            *sorted((spark_cluster.spark_home() / "jars").glob("*.jar"))]


def ensure(config: StackConfig) -> list[str]:
    """Record the archive unless the one in place matches this JDK and class path.

    A recording that fails leaves no archive, says why, and is not an error: the jobs
    then start the usual way.
    """
    archive = archive_path(config)
    stamp = archive.with_suffix(".key")
    key = archive_key(driver_java(config.server_env), driver_class_path(config))
    if archive.is_file() and stamp.is_file() and stamp.read_text().strip() == key:
        return [f"class archive: up to date ({archive})"]
    for stale in (archive, stamp):
        stale.unlink(missing_ok=True)
    started = time.monotonic()
    try:
        record(config, archive)
    # Whatever failed (Kafka, Cassandra, the job), the archive only ever speeds up a start.
    except Exception as err:
        reason = err.args[0] if isinstance(err, StackError) else f"{type(err).__name__}: {err}"
        log.warning("class archive not recorded: %s", reason)
        return [f"class archive: not recorded ({reason}); the jobs start without one"]
    stamp.write_text(key + "\n")
    size_mib = archive.stat().st_size / 2**20
    return [f"class archive: recorded in {time.monotonic() - started:.0f}s"
            f" ({size_mib:.0f} MiB, {archive})"]


def record(config: StackConfig, archive: Path) -> None:
    """One run of the stream job on scratch data, its JVM writing the archive at exit."""
    # Fail fast: a Kafka client retries an absent broker for half a minute.
    for name, port in (("Kafka", config.kafka_port), ("Cassandra", config.cassandra_port)):
        if process.port_is_free(config.host, port):
            raise StackError(f"{name} does not listen on {config.host}:{port}")
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_name(f"{archive.name}.{os.getpid()}.part")
    log_file = archive.with_name("record.log")
    topic = scratch.fresh_topic(config, config.topic_partitions, prefix="class_archive")
    try:
        session, keyspace = scratch.fresh_keyspace(config, prefix="class_archive")
        try:
            with tempfile.TemporaryDirectory(prefix="class-archive-") as checkpoints:
                env = _job_env(config, topic, keyspace, Path(checkpoints))
                _produce(env, log_file)
                _run_job(env, partial, log_file)
            if not partial.is_file() or partial.stat().st_size == 0:
                raise StackError(f"the JVM wrote no archive; see {log_file}")
            os.replace(partial, archive)
        finally:
            partial.unlink(missing_ok=True)
            scratch.drop_keyspace(session, keyspace)
    finally:
        scratch.drop(config, topic)


def _job_env(config: StackConfig, topic: str, keyspace: str,
             checkpoints: Path) -> dict[str, str]:
    return {**process.allowed_env(config.server_env),
            "KAFKA_BOOTSTRAP_SERVERS": config.kafka_bootstrap, "KAFKA_TOPIC": topic,
            "KAFKA_DEAD_LETTER_TOPIC": config.dead_letter_topic,
            "CASSANDRA_HOST": config.host, "CASSANDRA_PORT": str(config.cassandra_port),
            "CASSANDRA_KEYSPACE": keyspace, "STREAM_CHECKPOINT_ROOT": str(checkpoints),
            "SPARK_JARS_DIR": str(config.jars_dir)}


def _produce(env: dict[str, str], log_file: Path) -> None:
    cmd = [sys.executable, "-m", "producer", "synthetic", "--count", str(TRAINING_TRADES),
           "--rate", "0", "--seed", "1", "--status-interval", "0"]
    with log_file.open("w") as out:
        code = subprocess.run(cmd, env=env, cwd=PROJECT_ROOT, stdout=out,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              timeout=JOB_TIMEOUT_S, check=False).returncode
    if code != 0:
        raise StackError(f"the producer exited with {code}; see {log_file}")


def _run_job(env: dict[str, str], partial: Path, log_file: Path) -> None:
    # Two micro-batches: the second runs the code paths of a job that resumes.
    cmd = [sys.executable, "-m", "jobs.stream_processor", "--available-now",
           "--max-offsets-per-trigger", str(TRAINING_TRADES // 2),
           "--class-archive", str(partial), "--record-class-archive"]
    with log_file.open("a") as out:
        # Its own process group: PySpark's JVM joins it and outlives the Python driver
        # while it writes the archive.
        job = subprocess.Popen(cmd, env=env, cwd=PROJECT_ROOT, stdout=out,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        code = job.wait(timeout=JOB_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        _kill_group(job.pid)
        raise StackError(
            f"the job did not finish in {JOB_TIMEOUT_S:.0f}s; see {log_file}") from None
    if code != 0:
        _kill_group(job.pid)
        raise StackError(f"the job exited with {code}; see {log_file}")
    if not _group_gone(job.pid, DUMP_TIMEOUT_S):
        _kill_group(job.pid)
        raise StackError(f"the JVM did not exit within {DUMP_TIMEOUT_S:.0f}s; see {log_file}")


def _group_gone(pgid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.5)
    return False


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
