"""Shared plumbing of the benchmarks (their scratch data comes from stack.scratch)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from pyspark.sql import SparkSession

from jobs.session import start_session
from jobs.settings import CassandraTarget, SparkLaunch
from stack import class_archive
from stack.config import StackConfig, from_env
from stack.scratch import drop_keyspace, fresh_keyspace


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def group_pids(pgid: int) -> list[int]:
    """The processes of a process group (Linux /proc)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[2]) == pgid:
                pids.append(int(stat.parent.name))
    return pids


def status_kib(pid: int, field: str) -> int:
    """A size of a process in KiB, 0 once it is gone: a /proc/<pid>/status field (VmRSS:
    resident now; VmHWM: the peak of that), or Pss from /proc/<pid>/smaps_rollup (its
    resident pages, each shared one divided among the processes that map it: summed over
    a group, a page its processes share counts once, as a forked child's do)."""
    source = "smaps_rollup" if field == "Pss" else "status"
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/{source}").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    return 0


def process_name(pid: int) -> str:
    """The command name of a process (/proc/<pid>/comm), "?" once it is gone."""
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/comm").read_text().strip()
    return "?"


def group_mib(pgid: int, field: str) -> float:
    """status_kib summed over a process group, in MiB."""
    return sum(status_kib(pid, field) for pid in group_pids(pgid)) / 1024


@contextlib.contextmanager
def scratch_session(app_name: str) -> Iterator[tuple[StackConfig, SparkSession, str]]:
    """(stack, spark, keyspace): a session on the running stack with the stream job's
    local settings and class archive, writing to a fresh keyspace; both are gone
    afterwards."""
    stack = from_env(os.environ)
    session, keyspace = fresh_keyspace(stack)
    try:
        target = CassandraTarget(host=stack.host, port=stack.cassandra_port, keyspace=keyspace)
        # The job's driver maps the class archive of `make class-archive` and loads the
        # stack's connector jars (`make run` passes both): so does this one.
        launch = SparkLaunch(jars_dir=stack.jars_dir,
                             class_archive=class_archive.archive_path(stack))
        spark = start_session(app_name, launch, target)
        try:
            yield stack, spark, keyspace
        finally:
            spark.stop()
    finally:
        drop_keyspace(session, keyspace)
