"""The Grafana commands' options: flags, then the environment, then the contract's
defaults (the local stack's Cassandra); a blank variable counts as unset."""

from __future__ import annotations

from pathlib import Path

import pytest

from grafana import local
from grafana.render import __main__ as render

LOCAL_CASSANDRA = ("127.0.0.1", 9042, "market")
CLUSTER_ENV = {"CASSANDRA_HOST": "db.internal", "CASSANDRA_PORT": "9142",
               "CASSANDRA_KEYSPACE": "market_dev"}
BLANK_ENV = {"CASSANDRA_HOST": "  ", "CASSANDRA_PORT": "", "CASSANDRA_KEYSPACE": "\t",
             "GRAFANA_PORT": " ", "GRAFANA_HOME": "", "DASHBOARDS_SCALE": " ",
             "DASHBOARDS_OUT": "", "DASHBOARDS_FROM": " ", "CASSANDRA_USERNAME": " "}


def render_cassandra(config: render.RenderConfig) -> tuple[str, int, str]:
    return config.host, config.port, config.keyspace


def local_cassandra(config: local.LocalGrafanaConfig) -> tuple[str, int, str]:
    return config.cassandra_host, config.cassandra_port, config.keyspace


@pytest.mark.parametrize("environ", [{}, BLANK_ENV], ids=["unset", "blank"])
def test_without_settings_both_read_the_local_cassandra(environ: dict[str, str]) -> None:
    rendered = render.parse_config([], environ)
    assert render_cassandra(rendered) == LOCAL_CASSANDRA
    assert rendered == render.RenderConfig()
    launched = local.parse_config([], environ)
    assert local_cassandra(launched) == LOCAL_CASSANDRA
    assert launched == local.LocalGrafanaConfig()


def test_the_environment_overrides_the_defaults() -> None:
    env = {**CLUSTER_ENV, "GRAFANA_PORT": "3300", "GRAFANA_HOME": "/opt/grafana",
           "DASHBOARDS_SCALE": "0.5", "CASSANDRA_USERNAME": " reader ",
           "CASSANDRA_PASSWORD": " secret "}
    expected = ("db.internal", 9142, "market_dev")
    rendered = render.parse_config([], env)
    assert render_cassandra(rendered) == expected
    assert (rendered.scale, rendered.username, rendered.password) == (0.5, "reader", " secret ")
    launched = local.parse_config([], env)
    assert local_cassandra(launched) == expected
    assert (launched.http_port, launched.grafana_home) == (3300, Path("/opt/grafana"))


def test_flags_override_the_environment() -> None:
    flags = ["--cassandra-host", "10.0.0.7", "--cassandra-port", "9043", "--keyspace", "k"]
    assert render_cassandra(render.parse_config(flags, CLUSTER_ENV)) == ("10.0.0.7", 9043, "k")
    assert local_cassandra(local.parse_config(flags, CLUSTER_ENV)) == ("10.0.0.7", 9043, "k")


@pytest.mark.parametrize("parse", [render.parse_config, local.parse_config],
                         ids=["render", "local"])
def test_a_bad_port_in_the_environment_is_a_usage_error(
        parse, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse([], {"CASSANDRA_PORT": "nine"})
    assert exit_info.value.code == 2
    assert "--cassandra-port: invalid int value: 'nine'" in capsys.readouterr().err


def test_the_viewers_time_zone_is_a_flag_or_the_environment(capsys) -> None:
    assert render.parse_config([], {}).browser_timezone is None
    assert render.parse_config([], {"DASHBOARDS_BROWSER_TZ": "Asia/Tokyo"}) \
        .browser_timezone == "Asia/Tokyo"
    assert render.parse_config(["--browser-timezone", "America/Los_Angeles"],
                               {"DASHBOARDS_BROWSER_TZ": "Asia/Tokyo"}) \
        .browser_timezone == "America/Los_Angeles"
    with pytest.raises(SystemExit) as exit_info:
        render.parse_config(["--browser-timezone", "Mars/Olympus"], {})
    assert exit_info.value.code == 2
    assert "unknown time zone 'Mars/Olympus'" in capsys.readouterr().err
