"""A locally managed JVM server: how to launch it, which ports it owns, when it is ready."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from stack import process
from stack.config import PROJECT_ROOT

CONF_DIR = PROJECT_ROOT / "stack" / "conf"


@dataclass(frozen=True)
class Server:
    name: str
    home: Path
    ports: dict[str, int]
    # Built only at launch: status and stop must work before any jar is resolved.
    command: Callable[[], list[str]]
    ready: Callable[[], bool]
    prepare: Callable[[], None] = lambda: None
    # The whole environment of the server process (StackConfig.server_env).
    env: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def pidfile(self) -> Path:
        return self.home / "server.pid"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    @property
    def console_log(self) -> Path:
        return self.log_dir / "console.log"

    def pid(self) -> int | None:
        return process.read_live_pid(self.pidfile)

    def launch(self) -> int:
        self.prepare()
        pid = process.start_daemon(self.command(), self.console_log, self.home,
                                   env=dict(self.env))
        process.write_pidfile(self.pidfile, pid)
        return pid


def render(template_name: str, target: Path, **values: object) -> Path:
    """Fill a stack/conf template (string.Template syntax) into target.

    Without values the file is copied as it is: logging configs keep their own ${...}.
    """
    text = (CONF_DIR / template_name).read_text()
    if values:
        text = Template(text).substitute({key: str(value) for key, value in values.items()})
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return target


def classpath(jars: list[Path]) -> str:
    return os.pathsep.join(str(jar) for jar in jars)


def common_jvm_options(heap: str, home: Path) -> list[str]:
    tmp = home / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    return [
        f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseG1GC", "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true", "-Djava.net.preferIPv4Stack=true",
        # JNA and friends unpack native code into java.io.tmpdir: keep it in the work folder.
        f"-Djava.io.tmpdir={tmp}",
    ]
