"""Helpers of the cluster tests: a submitted job, and the cluster's live processes."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
from pathlib import Path

from stack import process


def spark_pids(state_dir: Path) -> list[int]:
    """Live JVMs of this cluster: daemons and executors all name its conf folder."""
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
            if "java" in cmdline and str(state_dir) in cmdline and process.is_alive(
                    int(proc.name)):
                pids.append(int(proc.name))
    return pids


@dataclasses.dataclass
class ClusterJob:
    """One spark-submit, in a process group of its own: spark-submit's JVM and the
    Python driver it starts."""

    process: subprocess.Popen
    log_path: Path
    ui_port: int

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)

    def python_driver(self) -> int | None:
        """The Python driver's pid: the child of spark-submit's JVM that runs the job file."""
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                program = (stat.parent / "cmdline").read_bytes().split(b"\0")[0]
                if int(fields[2]) == self.process.pid and b"python" in program:
                    return int(stat.parent.name)
        return None

    def stop(self, timeout_s: float = 120) -> int:
        """SIGTERM to the Python driver, which stops its queries and exits, and with it
        spark-submit; SIGKILL to all if that takes longer than timeout_s."""
        driver = self.python_driver()
        if driver is None:
            self.signal(signal.SIGTERM)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(driver, signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            return self.process.wait()
