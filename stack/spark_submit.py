"""spark-submit of the project's jobs to a Spark standalone cluster.

The jobs travel as a built artifact: a zip of the packages they import, passed with
--py-files (Spark puts it on the driver's and the executors' Python path), and the
connector jars resolved by `python -m stack jars`, passed with --jars. The driver
runs where spark-submit runs (client mode, the only one Spark standalone offers for
Python). Checkpoints must be a path that the driver and every executor see: on one
machine any local absolute path, on several a shared filesystem or gs://.

Cassandra credentials never appear here: the driver reads them from its environment,
which spark-submit passes on, and sets them on the session at runtime.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import contract
from stack import jars
from stack.config import PROJECT_ROOT, StackConfig
from stack.spark_cluster import spark_home

# What the jobs import from this project: jobs.* and the shared contract, never
# stack/ or producer/. tests/stack/test_spark_submit.py checks it.
PACKAGES = ("contract", "jobs")
STREAM_JOB = PROJECT_ROOT / "jobs" / "stream_processor.py"
RECOMPUTE_JOB = PROJECT_ROOT / "jobs" / "recompute.py"
AVRO_SCHEMA = contract.SCHEMA_PATH
# A fixed timestamp makes the zip a function of the sources alone.
_ZIP_TIME = (2000, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Submission:
    """How one application is submitted: where to, with what, sized how."""

    master_url: str
    py_files: Path
    jars: tuple[Path, ...]
    python: str
    host: str = "127.0.0.1"
    driver_memory: str = "1g"
    executor_memory: str = "768m"
    executor_cores: int = 1
    max_cores: int = 2
    local_dir: Path | None = None
    conf: Mapping[str, str] = field(default_factory=dict)


def build_py_files(target: Path, root: Path = PROJECT_ROOT,
                   packages: Sequence[str] = PACKAGES) -> Path:
    """Zip the packages' .py files into target, atomically (a reader never sees half)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for package in packages:
            for source in sorted((root / package).rglob("*.py")):
                name = source.relative_to(root).as_posix()
                info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, source.read_bytes())
    partial.replace(target)
    return target


def submission(config: StackConfig, python: str, dist_dir: Path | None = None) -> Submission:
    """A Submission to the stack's cluster with a freshly built artifact (resize with
    dataclasses.replace)."""
    dist = dist_dir or config.work_dir / "dist"
    return Submission(
        master_url=config.spark_master_url,
        py_files=build_py_files(dist / "market_jobs.zip"),
        jars=tuple(jars.jar_paths(config.jars_dir, "spark")),
        python=python,
        host=config.host,
    )


def submit_command(sub: Submission, program: Path, args: Sequence[str],
                   name: str | None = None) -> list[str]:
    """The spark-submit command line for program (a .py file) with its own args."""
    settings = {
        "spark.executor.memory": sub.executor_memory,
        "spark.executor.cores": str(sub.executor_cores),
        "spark.cores.max": str(sub.max_cores),
        # Loopback only, like the other servers: executors call the driver back here.
        "spark.driver.host": sub.host,
        "spark.driver.bindAddress": sub.host,
        "spark.pyspark.python": sub.python,
        "spark.pyspark.driver.python": sub.python,
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
        # Two workers of one core each: more shuffle partitions would only queue.
        "spark.sql.shuffle.partitions": str(sub.max_cores),
        **({"spark.local.dir": str(sub.local_dir)} if sub.local_dir else {}),
        **sub.conf,
    }
    command = [str(spark_home() / "bin" / "spark-submit"), "--master", sub.master_url,
               "--deploy-mode", "client", "--name", name or program.stem,
               "--driver-memory", sub.driver_memory,
               "--py-files", str(sub.py_files), "--jars", ",".join(str(j) for j in sub.jars)]
    for key, value in settings.items():
        command += ["--conf", f"{key}={value}"]
    return [*command, str(program), *args]
