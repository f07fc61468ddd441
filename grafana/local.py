"""`python -m grafana.local` (`make grafana`): the real Grafana on this machine, with the
project's dashboards and datasource, reading the local Cassandra.

It runs a `grafana` (or `grafana-server`) binary found on PATH, or else the pinned
Grafana image with docker or podman; with neither it says what to install and exits 2.
The image and the plugin version are the ones k8s/base/grafana/deployment.yaml pins.
Provisioning is generated under .work/grafana/ from grafana/provisioning/ with two
local changes: the datasource URL (the local Cassandra) and the dashboards folder.
Grafana listens on 127.0.0.1 only, anonymous users may view. The Cassandra password
reaches Grafana through the environment (CASSANDRA_PASSWORD), never a command line.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import contract
from contract import env as envvars
from grafana.options import add_cassandra_options

GRAFANA_DIR = contract.PROJECT_ROOT / "grafana"
DEPLOYMENT = contract.PROJECT_ROOT / "k8s" / "base" / "grafana" / "deployment.yaml"
NATIVE, ENGINES = ("grafana", "grafana-server"), ("docker", "podman")
CONTAINER_HOME = "/etc/grafana"
INSTALL_HELP = """\
Neither Grafana nor a container engine was found on PATH. Install one of:
  - Grafana 10 or newer: https://grafana.com/grafana/download
    (Debian/Ubuntu: apt-get install grafana from https://apt.grafana.com;
     macOS: brew install grafana)
  - Docker: https://docs.docker.com/get-docker/
  - or Podman: apt-get install podman / brew install podman
then run `make grafana` again."""


@dataclass(frozen=True)
class LocalGrafanaConfig:
    cassandra_host: str = contract.CASSANDRA_HOST
    cassandra_port: int = contract.CASSANDRA_PORT
    keyspace: str = contract.KEYSPACE
    http_port: int = 3000
    work_dir: Path = contract.WORK_DIR / "grafana"
    grafana_home: Path | None = None  # native only; default: next to the binary
    search_path: str | None = None  # PATH to search; None: the process's PATH
    system: str = platform.system()
    dry_run: bool = False


@dataclass(frozen=True)
class Launch:
    """What would run: the commands in order, and the environment they get on top of
    the caller's (names only for secrets: their values are inherited, never copied)."""

    runtime: str
    commands: tuple[tuple[str, ...], ...]
    env: Mapping[str, str] = field(default_factory=dict)


def pinned(deployment: dict[str, Any]) -> tuple[str, str]:
    """(image, plugin id@version) from the Grafana Deployment of the cluster."""
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    return container["image"], env["GF_PLUGINS_PREINSTALL_SYNC"]


def local_provisioning(datasources: dict[str, Any], providers: dict[str, Any],
                       cassandra: str, keyspace: str, dashboards: str) -> tuple[dict, dict]:
    """The project's provisioning with the local Cassandra and dashboards folder."""
    datasources = {**datasources, "datasources": [
        {**s, "url": cassandra, "jsonData": {**s.get("jsonData", {}), "keyspace": keyspace}}
        for s in datasources["datasources"]]}
    providers = {**providers, "providers": [
        {**p, "options": {**p.get("options", {}), "path": dashboards}}
        for p in providers["providers"]]}
    return datasources, providers


def find_runtime(search_path: str | None) -> tuple[str, str] | None:
    for name in (*NATIVE, *ENGINES):
        found = shutil.which(name, path=search_path)
        if found:
            return name, found
    return None


def native_launch(name: str, exe: str, config: LocalGrafanaConfig, plugin: str) -> Launch:
    home = config.grafana_home or Path(exe).resolve().parent.parent / "share" / "grafana"
    work = config.work_dir
    plugin_id, _, version = plugin.partition("@")
    cli = [exe, "cli"] if name == "grafana" else [str(Path(exe).with_name("grafana-cli"))]
    install = (*cli, "--homepath", str(home), "--pluginsDir", str(work / "plugins"),
               "plugins", "install", plugin_id, *([version] if version else []))
    server = [exe, "server"] if name == "grafana" else [exe]
    run = (*server, "--homepath", str(home), "--config", str(GRAFANA_DIR / "grafana.ini"))
    env = {"GF_PATHS_DATA": str(work / "data"), "GF_PATHS_LOGS": str(work / "logs"),
           "GF_PATHS_PLUGINS": str(work / "plugins"),
           "GF_PATHS_PROVISIONING": str(work / "provisioning"),
           **_common_env(config, "127.0.0.1")}
    return Launch(name, (install, run), env)


def container_launch(name: str, exe: str, config: LocalGrafanaConfig, image: str,
                     plugin: str) -> Launch:
    # Cassandra listens on the host's loopback: Linux containers share the host's
    # network; Docker Desktop (macOS, Windows) reaches it as host.docker.internal.
    network = (["--network", "host"] if config.system == "Linux"
               else ["-p", f"127.0.0.1:{config.http_port}:{config.http_port}"])
    # Published ports reach a container's own interfaces, not its loopback; the host side
    # of the mapping stays on 127.0.0.1.
    listen = "127.0.0.1" if config.system == "Linux" else "0.0.0.0"
    env = {"GF_PLUGINS_PREINSTALL_SYNC": plugin, **_common_env(config, listen)}
    run = (exe, "run", "--rm", "--name", "market-grafana", *network,
           "-v", f"{GRAFANA_DIR / 'grafana.ini'}:{CONTAINER_HOME}/grafana.ini:ro",
           "-v", f"{GRAFANA_DIR / 'dashboards'}:{CONTAINER_HOME}/dashboards:ro",
           "-v", f"{config.work_dir / 'provisioning'}:{CONTAINER_HOME}/provisioning:ro",
           # `-e NAME` without a value: the engine copies it from its own environment,
           # so the Cassandra password never appears on a command line.
           *[arg for key in (*env, "CASSANDRA_USER", "CASSANDRA_PASSWORD")
             for arg in ("-e", key)], image)
    return Launch(name, (run,), env)


def _common_env(config: LocalGrafanaConfig, listen: str) -> dict[str, str]:
    return {"GF_SERVER_HTTP_ADDR": listen,
            "GF_SERVER_HTTP_PORT": str(config.http_port),
            "GF_AUTH_ANONYMOUS_ENABLED": "true", "GF_AUTH_ANONYMOUS_ORG_ROLE": "Viewer"}


def cassandra_url(config: LocalGrafanaConfig, runtime: str) -> str:
    host = config.cassandra_host
    if runtime in ENGINES and config.system != "Linux" and host in ("127.0.0.1", "localhost"):
        host = "host.docker.internal"
    return f"{host}:{config.cassandra_port}"


def plan(config: LocalGrafanaConfig) -> Launch | None:
    """The launch for the first runtime on PATH (None: nothing to run Grafana with)."""
    found = find_runtime(config.search_path)
    if found is None:
        return None
    name, exe = found
    image, plugin = pinned(yaml.safe_load(DEPLOYMENT.read_text()))
    if name in NATIVE:
        return native_launch(name, exe, config, plugin)
    return container_launch(name, exe, config, image, plugin)


def write_provisioning(config: LocalGrafanaConfig, launch: Launch) -> None:
    source = GRAFANA_DIR / "provisioning"
    dashboards = (f"{CONTAINER_HOME}/dashboards" if launch.runtime in ENGINES
                  else str(GRAFANA_DIR / "dashboards"))
    datasources, providers = local_provisioning(
        yaml.safe_load((source / "datasources" / "cassandra.yaml").read_text()),
        yaml.safe_load((source / "dashboards" / "market.yaml").read_text()),
        cassandra_url(config, launch.runtime), config.keyspace, dashboards)
    for folder, doc, name in (("datasources", datasources, "cassandra.yaml"),
                              ("dashboards", providers, "market.yaml")):
        target = config.work_dir / "provisioning" / folder
        target.mkdir(parents=True, exist_ok=True)
        (target / name).write_text(yaml.safe_dump(doc, sort_keys=False))


def child_env(launch: Launch, environ: Mapping[str, str]) -> dict[str, str]:
    """The caller's environment, the launch's settings, and the datasource's credential
    variables (the project calls the user CASSANDRA_USERNAME, the datasource
    CASSANDRA_USER)."""
    env = {**environ, **launch.env}
    env["CASSANDRA_USER"] = environ.get("CASSANDRA_USERNAME", "")
    env.setdefault("CASSANDRA_PASSWORD", "")
    return env


def engine_problem(launch: Launch) -> str | None:
    """A container engine whose daemon does not answer cannot run anything."""
    if launch.runtime not in ENGINES:
        return None
    probe = subprocess.run([launch.commands[0][0], "info"], capture_output=True, text=True,
                           timeout=60, check=False)
    if probe.returncode == 0:
        return None
    last = (probe.stderr.strip().splitlines() or ["no output"])[-1]
    return (f"{launch.runtime} is installed but does not answer ({last}). Start its "
            f"daemon/machine, or install Grafana 10+ (https://grafana.com/grafana/download).")


def main(config: LocalGrafanaConfig) -> int:
    launch = plan(config)
    if launch is None:
        print(INSTALL_HELP, file=sys.stderr)
        return 2
    for command in launch.commands:
        print("+ " + " ".join(command), flush=True)
    if config.dry_run:
        return 0
    problem = engine_problem(launch)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    write_provisioning(config, launch)
    env = child_env(launch, os.environ)
    print(f"Grafana on http://127.0.0.1:{config.http_port}/ (Ctrl-C stops it)", flush=True)
    for command in launch.commands:
        try:
            code = subprocess.run(command, env=env, check=False).returncode
        except KeyboardInterrupt:
            return 0
        if code != 0:
            return code
    return 0


def parse_config(argv: Sequence[str] | None, environ: Mapping[str, str]) -> LocalGrafanaConfig:
    parser = argparse.ArgumentParser(prog="python -m grafana.local", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add_cassandra_options(parser, environ)
    add("--port", type=int, default=envvars.get(environ, "GRAFANA_PORT", "3000"),
        help="Grafana's HTTP port on 127.0.0.1 (env GRAFANA_PORT)")
    add("--grafana-home", type=Path, default=envvars.optional(environ, "GRAFANA_HOME"),
        help="a native Grafana's homepath (env GRAFANA_HOME)")
    add("--dry-run", action="store_true", help="print the commands, run nothing")
    args = parser.parse_args(argv)
    return LocalGrafanaConfig(
        cassandra_host=args.cassandra_host, cassandra_port=args.cassandra_port,
        keyspace=args.keyspace, http_port=args.port,
        grafana_home=Path(args.grafana_home) if args.grafana_home else None,
        dry_run=args.dry_run)


if __name__ == "__main__":
    sys.exit(main(parse_config(None, os.environ)))
