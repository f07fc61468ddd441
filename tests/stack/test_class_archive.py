"""`python -m stack class-archive`: recorded by a real run of the stream job on the real
stack, then mapped by the next driver JVM."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from stack import class_archive, jars
from stack.config import PROJECT_ROOT, StackConfig

# A driver like the jobs' (jobs.session), with its classes' sources logged to a file.
PROBE = """
import sys
from pathlib import Path
from jobs.session import build_spark, class_archive_options
from jobs.settings import SparkLaunch
archive, log, jars = Path(sys.argv[1]), sys.argv[2], [Path(j) for j in sys.argv[3:]]
spark = build_spark("class-archive-probe", master="local[1]", jars=jars,
                    conf={"spark.ui.enabled": "false"},
                    java_options=[*class_archive_options(SparkLaunch(class_archive=archive)),
                                  f"-Xlog:class+load=info:file={log}"])
print(spark.range(3).count())
# A connector class that the recording run loaded.
spark._jvm.java.lang.Class.forName("com.datastax.spark.connector.cql.Scanner")
"""


# The stream job's own options, from an environment that starts a Java agent.
JOB_PROBE = """
import os, sys
from jobs import stream_processor
from jobs.session import build_spark, class_archive_options
spark_launch = stream_processor.parse_config(["--class-archive", sys.argv[1]], os.environ).spark
spark = build_spark("agent-probe", master="local[1]", conf={"spark.ui.enabled": "false"},
                    java_options=class_archive_options(spark_launch))
print(spark.range(3).count())
"""

# A Java agent that registers a class-file transformer which changes nothing.
NOP_AGENT = """
import java.lang.instrument.ClassFileTransformer;
import java.lang.instrument.Instrumentation;
import java.security.ProtectionDomain;

public class NopAgent {
    public static void premain(String args, Instrumentation inst) {
        inst.addTransformer(new ClassFileTransformer() {
            public byte[] transform(ClassLoader loader, String name, Class<?> redefined,
                                    ProtectionDomain domain, byte[] bytes) {
                return null;
            }
        });
    }
}
"""


def build_nop_agent(folder: Path) -> Path:
    java = class_archive.driver_java(os.environ)
    assert java is not None, "no java on PATH"
    bin_dir = java.parent
    (folder / "NopAgent.java").write_text(NOP_AGENT)
    (folder / "manifest.txt").write_text("Premain-Class: NopAgent\n")
    for cmd in ([str(bin_dir / "javac"), "-d", str(folder / "classes"),
                 str(folder / "NopAgent.java")],
                [str(bin_dir / "jar"), "cfm", str(folder / "nop-agent.jar"),
                 str(folder / "manifest.txt"), "-C", str(folder / "classes"), "."]):
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return folder / "nop-agent.jar"


def probe_driver(archive: Path, log: Path, stack: StackConfig) -> list[str]:
    """Start a driver with `archive`; the lines of its class-loading log."""
    connector_jars = [str(j) for j in jars.jar_paths(stack.jars_dir, "spark")]
    proc = subprocess.run([sys.executable, "-c", PROBE, str(archive), str(log),
                           *connector_jars], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[-1] == "3"
    return log.read_text().splitlines()


def loaded_from_archive(log_lines: list[str], class_name: str) -> bool:
    line = next(line for line in log_lines if f" {class_name} source:" in line)
    return "source: shared objects file (top)" in line


@pytest.fixture(scope="module")
def recorded(stack: StackConfig, tmp_path_factory: pytest.TempPathFactory) -> StackConfig:
    """A stack config whose work folder holds a freshly recorded archive."""
    # A blank in the path: the options must reach the JVM quoted.
    work = tmp_path_factory.mktemp("class-archive") / "work dir"
    work.mkdir()
    (work / "jars").symlink_to(stack.jars_dir)
    config = dataclasses.replace(stack, work_dir=work)
    lines = class_archive.ensure(config)
    assert lines[0].startswith("class archive: recorded"), lines
    return config


@pytest.mark.integration
def test_the_recorded_archive_serves_the_next_driver(recorded: StackConfig,
                                                     tmp_path: Path) -> None:
    archive = class_archive.archive_path(recorded)
    assert archive.is_file() and archive.with_suffix(".key").is_file()
    # The scratch data is gone; so is the partial file.
    assert sorted(p.name for p in archive.parent.iterdir()) == [
        "driver.jsa", "driver.key", "record.log"]
    assert class_archive.ensure(recorded) == [f"class archive: up to date ({archive})"]

    log_lines = probe_driver(archive, tmp_path / "with.log", recorded)
    assert loaded_from_archive(log_lines, "org.apache.spark.SparkContext")
    # The connector jars too: on the driver's class path, not behind spark.jars.
    assert loaded_from_archive(log_lines, "com.datastax.spark.connector.cql.Scanner")


@pytest.mark.integration
def test_a_java_agent_in_the_environment_turns_the_archive_off(recorded: StackConfig,
                                                               tmp_path: Path) -> None:
    """With the archive mapped, an agent that hooks class loading crashed the JVM."""
    agent = build_nop_agent(tmp_path)
    env = {**os.environ, "JAVA_TOOL_OPTIONS": f"-javaagent:{agent}"}
    proc = subprocess.run([sys.executable, "-c", JOB_PROBE,
                           str(class_archive.archive_path(recorded))],
                          cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.split()[-1] == "3"


@pytest.mark.integration
def test_a_broken_archive_never_stops_a_driver(stack: StackConfig, tmp_path: Path) -> None:
    archive = tmp_path / "driver.jsa"
    archive.write_bytes(b"\0" * 4096)
    log_lines = probe_driver(archive, tmp_path / "broken.log", stack)
    assert not loaded_from_archive(log_lines, "org.apache.spark.SparkContext")


@pytest.mark.integration
def test_a_failed_recording_leaves_no_archive_and_says_why(stack: StackConfig,
                                                          tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    (tmp_path / "jars").symlink_to(stack.jars_dir)
    config = dataclasses.replace(stack, work_dir=tmp_path, kafka_port=closed_port)
    lines = class_archive.ensure(config)
    assert len(lines) == 1 and lines[0].startswith("class archive: not recorded ("), lines
    assert lines[0].endswith("); the jobs start without one")
    assert not class_archive.archive_path(config).exists()


def test_the_key_follows_the_jdk_and_the_jars(tmp_path: Path) -> None:
    jdks = []
    for name in ("jdk-a", "jdk-b"):
        (tmp_path / name / "bin").mkdir(parents=True)
        (tmp_path / name / "bin" / "java").write_text("")
        (tmp_path / name / "release").write_text('JAVA_VERSION="17.0.1"\n')
        jdks.append(tmp_path / name / "bin" / "java")
    jar = tmp_path / "spark-core.jar"
    jar.write_bytes(b"x" * 10)
    key = class_archive.archive_key(jdks[0], [jar])
    assert class_archive.archive_key(jdks[0], [jar]) == key
    assert class_archive.archive_key(jdks[1], [jar]) != key
    jar.write_bytes(b"x" * 11)
    assert class_archive.archive_key(jdks[0], [jar]) != key
    other = tmp_path / "connector.jar"
    other.write_bytes(b"y")
    assert (class_archive.archive_key(jdks[0], [jar, other])
            != class_archive.archive_key(jdks[0], [other, jar]))


def test_the_stack_records_where_the_jobs_look_by_default() -> None:
    from jobs import stream_processor

    jobs_default = stream_processor.parse_config([], {}).spark
    stack_default = StackConfig()
    assert stack_default.jars_dir == jobs_default.jars_dir
    assert class_archive.archive_path(stack_default) == jobs_default.class_archive
