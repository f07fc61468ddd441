"""`python -m grafana.render`: every provisioned dashboard to one PNG, from Cassandra.

Exit codes: 0 every panel drawn with data; 1 a panel failed (unsupported type, macro
or format, query error, no rows; the PNGs are still written, errors drawn in place);
2 bad options or a dashboard that cannot be loaded; 3 Cassandra unreachable.
Cassandra credentials come from CASSANDRA_USERNAME / CASSANDRA_PASSWORD only.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import contract
from contract import env as envvars
from grafana.options import add_cassandra_options
from grafana.render.errors import RenderError
from grafana.render.panels import browser_zone

LOG = logging.getLogger("grafana.render")
DEFAULT_DASHBOARDS = contract.PROJECT_ROOT / "grafana" / "dashboards"
DEFAULT_OUT = contract.WORK_DIR / "dashboards"


@dataclass(frozen=True)
class RenderConfig:
    dashboards_dir: Path = DEFAULT_DASHBOARDS
    out_dir: Path = DEFAULT_OUT
    host: str = contract.CASSANDRA_HOST
    port: int = contract.CASSANDRA_PORT
    keyspace: str = contract.KEYSPACE
    time_from: str | None = None  # None: the dashboard's own range
    time_to: str | None = None
    variables: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    browser_timezone: str | None = None  # None: this machine's
    width_px: int = 1600
    scale: float = 1.0
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def parse_vars(pairs: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """`name=value` pairs; repeating a name selects several values of a multi variable."""
    result: dict[str, tuple[str, ...]] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise argparse.ArgumentTypeError(f"--var wants name=value, got {pair!r}")
        result[name] = (*result.get(name, ()), value)
    return result


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    def env(name: str, default: str) -> str:
        return envvars.get(environ, name, default)

    parser = argparse.ArgumentParser(prog="python -m grafana.render", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--dashboards", type=Path, default=env("GRAFANA_DASHBOARDS", str(DEFAULT_DASHBOARDS)),
        help="folder of dashboard JSON files (env GRAFANA_DASHBOARDS)")
    add("--out", type=Path, default=env("DASHBOARDS_OUT", str(DEFAULT_OUT)),
        help="folder for <uid>.png (env DASHBOARDS_OUT)")
    add_cassandra_options(parser, environ)
    add("--from", dest="time_from", default=envvars.optional(environ, "DASHBOARDS_FROM"),
        help="range start: now-30m, epoch ms or ISO 8601; default the dashboard's "
             "(env DASHBOARDS_FROM)")
    add("--to", dest="time_to", default=envvars.optional(environ, "DASHBOARDS_TO"),
        help="range end, like --from (env DASHBOARDS_TO)")
    add("--var", action="append", default=[], metavar="NAME=VALUE",
        help="select a variable's value; repeat a name for several values, "
             "NAME=All for all")
    add("--browser-timezone", default=envvars.optional(environ, "DASHBOARDS_BROWSER_TZ"),
        help="the viewer's browser time zone (IANA name, e.g. Asia/Tokyo): custom date "
             "formats and `browser` dashboards use it; default this machine's "
             "(env DASHBOARDS_BROWSER_TZ)")
    add("--width", type=int, default=1600, help="dashboard width in Grafana pixels")
    add("--scale", type=float, default=env("DASHBOARDS_SCALE", "1.0"),
        help="picture scale, e.g. 0.6 for small pictures (env DASHBOARDS_SCALE)")
    return parser


def parse_config(argv: Sequence[str] | None, environ: Mapping[str, str]) -> RenderConfig:
    """The render's settings from its arguments and the environment the entry point
    hands in (unset or blank variables: the defaults)."""
    parser = build_parser(environ)
    args = parser.parse_args(argv)
    try:
        variables = parse_vars(args.var)
    except argparse.ArgumentTypeError as err:
        parser.error(str(err))
    if args.width < 400 or not 0.1 <= args.scale <= 4:
        parser.error("--width must be at least 400 and --scale within 0.1..4")
    try:
        browser_zone(args.browser_timezone)
    except RenderError as err:
        parser.error(f"--browser-timezone: {err}")
    return RenderConfig(
        dashboards_dir=args.dashboards, out_dir=args.out, host=args.cassandra_host,
        port=args.cassandra_port, keyspace=args.keyspace, time_from=args.time_from,
        time_to=args.time_to, variables=variables, browser_timezone=args.browser_timezone,
        width_px=args.width, scale=args.scale,
        username=envvars.optional(environ, "CASSANDRA_USERNAME"),
        password=envvars.secret(environ, "CASSANDRA_PASSWORD"))


def load_dashboards(folder: Path) -> list[tuple[Path, dict]]:
    paths = sorted(folder.glob("*.json"))
    if not paths:
        raise RenderError(f"no dashboard JSON files in {folder}")
    loaded = []
    for path in paths:
        try:
            loaded.append((path, json.loads(path.read_text())))
        except (OSError, json.JSONDecodeError) as err:
            raise RenderError(f"{path}: {err}") from err
    return loaded


def main(config: RenderConfig) -> int:
    from grafana.render.draw import draw_dashboard
    from grafana.render.panels import dashboard_data, time_range_of
    from grafana.render.source import CassandraSource

    try:
        dashboards = load_dashboards(config.dashboards_dir)
        _check_var_names(dashboards, config.variables)
    except RenderError as err:
        LOG.error("%s", err)
        return 2
    try:
        cluster, source = CassandraSource.connect(config.host, config.port, config.keyspace,
                                                  config.username, config.password)
    except Exception as err:  # NoHostAvailable, keyspace missing, auth
        LOG.error("Cassandra %s:%s (keyspace %s) is not usable: %s", config.host, config.port,
                  config.keyspace, err)
        return 3
    errors: list[str] = []
    try:
        now = datetime.now(timezone.utc)
        browser = browser_zone(config.browser_timezone)
        for path, dashboard in dashboards:
            try:
                time_range = time_range_of(dashboard, config.time_from, config.time_to, now)
                data = dashboard_data(dashboard, config.variables, time_range, source.run,
                                      source.variable_options, browser)
            except RenderError as err:
                LOG.error("%s: %s", path.name, err)
                return 2
            target = config.out_dir / f"{data.uid or path.stem}.png"
            errors += draw_dashboard(data, target, config.width_px, config.scale)
            LOG.info("wrote %s (%d panels)", target, len(data.panels))
    finally:
        cluster.shutdown()
    for error in errors:
        LOG.error("panel failed: %s", error)
    return 1 if errors else 0


def _check_var_names(dashboards: list[tuple[Path, dict]],
                     variables: Mapping[str, tuple[str, ...]]) -> None:
    names = {v.get("name") for _, d in dashboards
             for v in (d.get("templating") or {}).get("list", [])}
    unknown = sorted(set(variables) - names)
    if unknown:
        raise RenderError(f"--var names no variable of any dashboard: {unknown}")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # The driver's advice on load-balancing policies is noise for a one-shot reader.
    logging.getLogger("cassandra").setLevel(logging.ERROR)
    sys.exit(main(parse_config(None, os.environ)))
