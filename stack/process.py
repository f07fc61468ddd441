"""Process plumbing for the local servers: pid files, ports, start, stop, waiting."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from stack.errors import StackError


def java_major_version(java: str) -> int:
    """The major version of the given java, or a StackError saying how to get one."""
    hint = "install a JDK 17+ (Debian: apt-get install openjdk-17-jdk-headless) or set JAVA"
    if shutil.which(java) is None:
        raise StackError(f"Java ('{java}') was not found on PATH.", hint)
    proc = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', proc.stderr + proc.stdout)
    if proc.returncode != 0 or match is None:
        raise StackError(f"could not read the version of '{java}': {proc.stderr.strip()}", hint)
    major = int(match.group(1))
    # Java 8 and older report "1.8.0_x".
    return int(match.group(2) or 0) if major == 1 else major


def require_java(java: str, minimum: int = 17) -> None:
    version = java_major_version(java)
    if version < minimum:
        raise StackError(
            f"Java {version} was found ('{java}'), but Java {minimum} or newer is required.",
            "install a JDK 17+ and put it first on PATH, or set JAVA=/path/to/java",
        )


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def port_owner(port: int) -> str | None:
    """Best effort: 'pid N (command)' of the process listening on a TCP port (Linux only)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{inode}]")
    for pid_dir in Path("/proc").glob("[0-9]*"):
        try:
            fds = list((pid_dir / "fd").iterdir())
            if any(os.readlink(fd) in inodes for fd in fds):
                cmd = (pid_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
                return f"pid {pid_dir.name} ({cmd.strip()})"
        except OSError:
            continue
    return None


def require_free_ports(host: str, ports: dict[str, int]) -> None:
    for label, port in ports.items():
        if not port_is_free(host, port):
            owner = port_owner(port)
            raise StackError(
                f"port {host}:{port} ({label}) is already taken"
                + (f" by {owner}" if owner else " by another process") + ".",
                "stop that process, or choose another port (see `python -m stack --help`)",
            )


def _start_ticks(pid: int) -> str | None:
    """Process start time in clock ticks, to tell our pid from a recycled one."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":  # a zombie is dead for our purposes
        return None
    return fields[19]


def write_pidfile(path: Path, pid: int) -> None:
    path.write_text(f"{pid} {_start_ticks(pid) or ''}\n")


def read_live_pid(path: Path) -> int | None:
    """The pid recorded in path if that very process is still alive, else None."""
    try:
        pid_text, _, ticks = path.read_text().strip().partition(" ")
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    current = _start_ticks(pid)
    return pid if current is not None and current == ticks else None


# What any child of the stack may inherit from the caller: enough to find programs and
# Java, a home and a temp folder, and the locale. Everything else, API tokens above all,
# has to be named in an allow-list to be handed on.
BASE_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR",
            "JAVA_HOME")


def allowed_env(environ: Mapping[str, str], names: Iterable[str] = BASE_ENV,
                prefixes: tuple[str, ...] = ()) -> dict[str, str]:
    """The variables of `environ` that are named in `names` or start with a prefix."""
    wanted = set(names)
    return {k: v for k, v in environ.items() if k in wanted or k.startswith(prefixes)}


def start_daemon(cmd: list[str], log_file: Path, cwd: Path, env: dict[str, str] | None) -> int:
    """Start cmd detached in its own session with output appended to log_file."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as out:
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
    return proc.pid


def is_alive(pid: int) -> bool:
    return _start_ticks(pid) is not None


def stop_process(pid: int, timeout_s: float) -> bool:
    """SIGTERM the process group, then SIGKILL after timeout_s. True if it had to be killed."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not is_alive(pid):
            return False
        time.sleep(0.2)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    while is_alive(pid):
        time.sleep(0.1)
    return True


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log written)"
    return "\n".join(text[-lines:])


def wait_until(
    ready: Callable[[], bool], *, what: str, timeout_s: float, pid: int, log_file: Path,
) -> None:
    """Poll ready() until it is true; fail fast if the process dies, never hang."""
    deadline = time.monotonic() + timeout_s
    while True:
        if not is_alive(pid):
            raise StackError(
                f"{what} exited during start-up. Last lines of {log_file}:\n{log_tail(log_file)}",
                "read the full log above; a stale lock or a port taken are the usual causes",
            )
        if ready():
            return
        if time.monotonic() > deadline:
            raise StackError(
                f"{what} was not ready after {timeout_s:.0f}s. Last lines of {log_file}:\n"
                f"{log_tail(log_file)}",
                "the machine may be overloaded; raise STACK_START_TIMEOUT or check the log",
            )
        time.sleep(1.0)
