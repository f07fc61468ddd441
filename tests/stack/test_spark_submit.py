"""The artifact spark-submit ships, the command line it runs, and the cluster's port checks."""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from stack import lifecycle, pipeline, spark_cluster, spark_submit
from stack.config import PROJECT_ROOT, StackConfig
from stack.errors import StackError
from stack.pipeline import RunConfig


def test_artifact_holds_every_module_of_the_packages_and_is_reproducible(tmp_path: Path) -> None:
    first = spark_submit.build_py_files(tmp_path / "a.zip")
    second = spark_submit.build_py_files(tmp_path / "b.zip")
    expected = sorted(p.relative_to(PROJECT_ROOT).as_posix()
                      for package in spark_submit.PACKAGES
                      for p in (PROJECT_ROOT / package).rglob("*.py"))
    assert set(spark_submit.PACKAGES) == {"contract", "jobs"}
    assert sorted(zipfile.ZipFile(first).namelist()) == expected
    assert first.read_bytes() == second.read_bytes()
    # Built beside the target and renamed: no partial file is left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip", "b.zip"]


def test_the_jobs_import_from_the_artifact_alone(tmp_path: Path) -> None:
    """What executors and a submitted driver see: the zip, pyspark, and nothing of the tree."""
    artifact = spark_submit.build_py_files(tmp_path / "market_jobs.zip")
    probe = ("import jobs, jobs.stream_processor, jobs.recompute, sys; print(jobs.__file__);"
             " print(sorted(m for m in sys.modules if m.split('.')[0] in ('stack', 'producer')))")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True,
                          text=True, env={"PYTHONPATH": str(artifact), "PATH": "/usr/bin:/bin"},
                          check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"{artifact}/jobs/__init__.py", "[]"]


def test_submit_command_line(tmp_path: Path) -> None:
    sub = spark_submit.Submission(
        master_url="spark://127.0.0.1:7077", py_files=tmp_path / "m.zip",
        jars=(Path("/j/a.jar"), Path("/j/b.jar")), python="/venv/bin/python",
        conf={"spark.ui.port": "4050"})
    command = spark_submit.submit_command(sub, Path("/p/jobs/stream_processor.py"),
                                          ["--available-now"], name="stream")
    home = spark_cluster.spark_home()
    confs = ["spark.executor.memory=768m", "spark.executor.cores=1", "spark.cores.max=2",
             "spark.driver.host=127.0.0.1", "spark.driver.bindAddress=127.0.0.1",
             "spark.pyspark.python=/venv/bin/python",
             "spark.pyspark.driver.python=/venv/bin/python", "spark.sql.session.timeZone=UTC",
             "spark.driver.extraJavaOptions=-Duser.timezone=UTC",
             "spark.executor.extraJavaOptions=-Duser.timezone=UTC",
             "spark.sql.shuffle.partitions=2", "spark.ui.port=4050"]
    assert command == [
        f"{home}/bin/spark-submit", "--master", "spark://127.0.0.1:7077",
        "--deploy-mode", "client", "--name", "stream", "--driver-memory", "1g",
        "--py-files", f"{tmp_path}/m.zip", "--jars", "/j/a.jar,/j/b.jar",
        *[part for conf in confs for part in ("--conf", conf)],
        "/p/jobs/stream_processor.py", "--available-now"]
    assert (home / "bin" / "spark-submit").is_file()
    assert (home / "bin" / "spark-class").is_file()


def test_a_taken_master_port_is_reported_before_anything_starts(stack_config: StackConfig,
                                                                tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        config = dataclasses.replace(stack_config, state_dir=tmp_path / "stack",
                                     spark_master_port=taken)
        with pytest.raises(StackError, match=rf"port 127.0.0.1:{taken} \(spark master\) is "
                                             r"already taken by pid \d+"):
            lifecycle.spark_up(config)
    assert not (tmp_path / "stack" / "spark" / "master" / "server.pid").exists()


def test_worker_and_ui_port_lists_must_pair_up(stack_config: StackConfig) -> None:
    config = dataclasses.replace(stack_config, spark_worker_ui_ports=(8081,))
    with pytest.raises(StackError, match="2 Spark worker ports but 1 worker UI ports"):
        spark_cluster.servers(config)


def test_run_on_cluster_without_a_master_says_how_to_start_one(stack_config: StackConfig) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    config = RunConfig(stack=dataclasses.replace(stack_config, spark_master_ui_port=port,
                                                 spark_master_port=port),
                       live=False, symbols="AAPL", synthetic_rate=1.0, on_cluster=True)
    with pytest.raises(StackError, match=rf"no Spark master answers at spark://127.0.0.1:{port}"
                                         r"\n  hint: start it with `RUN_ON_CLUSTER=1 make"):
        pipeline.programs(config, {})
