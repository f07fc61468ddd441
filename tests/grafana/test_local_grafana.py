"""`make grafana`: the commands and environment it would run, for each runtime it can
find. Grafana cannot be installed here, so runtimes are stand-in executables on a
PATH of the test's own; nothing but the failing `docker info` stand-in is executed."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml

from grafana import local
from grafana.local import Launch, LocalGrafanaConfig

ROOT = Path(__file__).resolve().parents[2]
INI, DASHBOARDS = ROOT / "grafana" / "grafana.ini", ROOT / "grafana" / "dashboards"
PLUGIN_ID = "hadesarchitect-cassandra-datasource"


def executable(folder: Path, name: str, script: str = "exit 0") -> Path:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def config(tmp_path: Path, **extra) -> LocalGrafanaConfig:
    return LocalGrafanaConfig(search_path=str(tmp_path / "bin"), work_dir=tmp_path / "work",
                              **extra)


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    (tmp_path / "bin").mkdir()
    return tmp_path / "bin"


def deployment_pins() -> tuple[str, str]:
    doc = yaml.safe_load((ROOT / "k8s/base/grafana/deployment.yaml").read_text())
    return local.pinned(doc)


def test_pins_come_from_the_cluster_deployment_and_name_the_provisioned_plugin() -> None:
    image, plugin = deployment_pins()
    assert image.startswith("grafana/grafana:") and image.split(":")[1][0].isdigit()
    datasources = yaml.safe_load(
        (ROOT / "grafana/provisioning/datasources/cassandra.yaml").read_text())
    assert plugin.split("@")[0] == datasources["datasources"][0]["type"] == PLUGIN_ID


def test_nothing_installed_says_what_to_install(tmp_path: Path, bin_dir: Path, capsys) -> None:
    assert local.plan(config(tmp_path)) is None
    assert local.main(config(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "Neither Grafana nor a container engine was found on PATH" in err
    for hint in ("https://grafana.com/grafana/download", "brew install grafana",
                 "https://docs.docker.com/get-docker/", "apt-get install podman"):
        assert hint in err


def test_native_grafana_installs_the_plugin_then_serves(tmp_path: Path, bin_dir: Path) -> None:
    grafana = executable(bin_dir, "grafana")
    executable(bin_dir, "docker")  # a native Grafana wins over a container engine
    home, work = tmp_path / "home", tmp_path / "work"
    launch = local.plan(config(tmp_path, grafana_home=home))
    version = deployment_pins()[1].split("@")[1]
    assert launch == Launch("grafana", (
        (str(grafana), "cli", "--homepath", str(home), "--pluginsDir", str(work / "plugins"),
         "plugins", "install", PLUGIN_ID, version),
        (str(grafana), "server", "--homepath", str(home), "--config", str(INI)),
    ), {
        "GF_PATHS_DATA": str(work / "data"), "GF_PATHS_LOGS": str(work / "logs"),
        "GF_PATHS_PLUGINS": str(work / "plugins"),
        "GF_PATHS_PROVISIONING": str(work / "provisioning"),
        "GF_SERVER_HTTP_ADDR": "127.0.0.1", "GF_SERVER_HTTP_PORT": "3000",
        "GF_AUTH_ANONYMOUS_ENABLED": "true", "GF_AUTH_ANONYMOUS_ORG_ROLE": "Viewer",
    })


def container_run(engine: Path, work: Path, network: list[str], listen: str) -> Launch:
    image, plugin = deployment_pins()
    env = {"GF_PLUGINS_PREINSTALL_SYNC": plugin, "GF_SERVER_HTTP_ADDR": listen,
           "GF_SERVER_HTTP_PORT": "3000", "GF_AUTH_ANONYMOUS_ENABLED": "true",
           "GF_AUTH_ANONYMOUS_ORG_ROLE": "Viewer"}
    names = [*env, "CASSANDRA_USER", "CASSANDRA_PASSWORD"]
    return Launch(engine.name, ((
        str(engine), "run", "--rm", "--name", "market-grafana", *network,
        "-v", f"{INI}:/etc/grafana/grafana.ini:ro",
        "-v", f"{DASHBOARDS}:/etc/grafana/dashboards:ro",
        "-v", f"{work / 'provisioning'}:/etc/grafana/provisioning:ro",
        *[x for name in names for x in ("-e", name)], image),), env)


def test_docker_on_linux_shares_the_host_network(tmp_path: Path, bin_dir: Path) -> None:
    docker = executable(bin_dir, "docker")
    assert local.plan(config(tmp_path, system="Linux")) == container_run(
        docker, tmp_path / "work", ["--network", "host"], "127.0.0.1")


def test_podman_elsewhere_publishes_the_port_on_loopback(tmp_path: Path, bin_dir: Path) -> None:
    podman = executable(bin_dir, "podman")
    launch = local.plan(config(tmp_path, system="Darwin", http_port=3000))
    assert launch == container_run(podman, tmp_path / "work",
                                   ["-p", "127.0.0.1:3000:3000"], "0.0.0.0")
    assert local.cassandra_url(config(tmp_path, system="Darwin"), "podman") == \
        "host.docker.internal:9042"


def test_secrets_travel_in_the_environment_only(tmp_path: Path, bin_dir: Path) -> None:
    executable(bin_dir, "docker")
    launch = local.plan(config(tmp_path, system="Linux"))
    secret = "s3cret-value"
    env = local.child_env(launch, {"PATH": "/bin", "CASSANDRA_USERNAME": "reader",
                                   "CASSANDRA_PASSWORD": secret})
    assert env["CASSANDRA_USER"] == "reader" and env["CASSANDRA_PASSWORD"] == secret
    assert not any(secret in arg for command in launch.commands for arg in command)


def test_provisioning_points_at_the_local_cassandra_and_dashboards(tmp_path: Path,
                                                                  bin_dir: Path) -> None:
    executable(bin_dir, "grafana")
    cfg = config(tmp_path, cassandra_port=19042, keyspace="test_ks")
    local.write_provisioning(cfg, local.plan(cfg))
    provisioning = tmp_path / "work" / "provisioning"
    (source,) = yaml.safe_load((provisioning / "datasources/cassandra.yaml").read_text())[
        "datasources"]
    original = yaml.safe_load(
        (ROOT / "grafana/provisioning/datasources/cassandra.yaml").read_text())["datasources"][0]
    assert source == {**original, "url": "127.0.0.1:19042",
                      "jsonData": {**original["jsonData"], "keyspace": "test_ks"}}
    (provider,) = yaml.safe_load((provisioning / "dashboards/market.yaml").read_text())[
        "providers"]
    assert provider["options"]["path"] == str(DASHBOARDS)


def test_dry_run_prints_the_commands_and_runs_nothing(tmp_path: Path, bin_dir: Path,
                                                      capsys) -> None:
    executable(bin_dir, "docker", "echo ran > \"$0.ran\"; exit 0")
    assert local.main(config(tmp_path, dry_run=True, system="Linux")) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"+ {bin_dir / 'docker'} run --rm --name market-grafana")
    assert not (bin_dir / "docker.ran").exists()


def test_an_engine_without_its_daemon_is_reported(tmp_path: Path, bin_dir: Path,
                                                  capsys) -> None:
    executable(bin_dir, "docker", "echo 'Cannot connect to the Docker daemon' >&2; exit 1")
    assert local.main(config(tmp_path, system="Linux")) == 2
    assert ("docker is installed but does not answer (Cannot connect to the Docker daemon)"
            in capsys.readouterr().err)
