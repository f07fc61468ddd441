"""The Kubernetes schema Job: auth bootstrap logic (fake sessions) and the schema it
applies with contract.schema, the applier of `python -m stack schema` (the real local
Cassandra, which runs without authentication): a fresh keyspace, and one whose tables
an older schema created."""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pytest
from deploy_files import K8S
from deploy_tools import kustomize_build
from schema_testing import with_older_moving_means

SCRIPT = K8S / "base" / "schema-job" / "files" / "apply_schema.py"
NTS = "{'class': 'NetworkTopologyStrategy', 'dc1': 3}"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("apply_schema", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["apply_schema"] = module
    spec.loader.exec_module(module)
    return module


job = load_script()

ENV = {
    "CASSANDRA_HOST": "cassandra",
    "CASSANDRA_REPLICATION": NTS,
    "CASSANDRA_ADMIN_USERNAME": "market_admin",
    "CASSANDRA_ADMIN_PASSWORD": "admin-pw",
    "CASSANDRA_APP_USERNAME": "market_app",
    "CASSANDRA_APP_PASSWORD": "app-pw",
    "CASSANDRA_GRAFANA_USERNAME": "market_grafana",
    "CASSANDRA_GRAFANA_PASSWORD": "grafana-pw",
}


class _Cluster:
    def shutdown(self) -> None:
        pass


class _Result:
    def __init__(self, row: Any) -> None:
        self.row = row

    def one(self) -> Any:
        return self.row


@dataclass
class FakeCassandra:
    """Roles that can log in, and every statement run, in order."""

    logins: dict[str, str] = field(default_factory=lambda: {"cassandra": "cassandra"})
    statements: list[str] = field(default_factory=list)
    unreachable: int = 0

    def connect(self, role: Any) -> Any:
        if self.unreachable:
            self.unreachable -= 1
            raise ConnectionError("connection refused")
        if role is not None and self.logins.get(role.name) != role.password:
            raise job.AuthRefused(f"bad credentials for {role.name}")
        fake = self

        class Session:
            cluster = _Cluster()

            def execute(self, statement: str, params: tuple[Any, ...] = (), **_: Any) -> Any:
                fake.statements.append(statement)
                if statement.startswith("CREATE ROLE IF NOT EXISTS market_admin"):
                    fake.logins["market_admin"] = params[0]
                if statement.startswith("SELECT role"):
                    return _Result("cassandra" if "cassandra" in fake.logins else None)
                return _Result(None)

        return Session()


def run(fake: FakeCassandra, env: dict[str, str] | None = None) -> list[str]:
    settings = job.settings_from(env or ENV)
    clock = iter(range(0, 10_000, 5))
    session = job.admin_session(settings, fake.connect, lambda _: None, lambda: next(clock))
    return job.converge(settings, session)


@pytest.fixture(autouse=True)
def no_schema_files(monkeypatch: pytest.MonkeyPatch) -> None:
    # The fake session records statements; the real contract.schema.apply is covered
    # below, against the local Cassandra.
    monkeypatch.setattr(job.schema, "apply", lambda session, keyspace, replication: 5)


def test_first_run_bootstraps_the_admin_and_disables_the_default_superuser() -> None:
    fake = FakeCassandra()
    done = run(fake)
    created = fake.statements.index(
        "CREATE ROLE IF NOT EXISTS market_admin "
        "WITH PASSWORD = %s AND SUPERUSER = true AND LOGIN = true")
    replicated = fake.statements.index(f"ALTER KEYSPACE system_auth WITH replication = {NTS}")
    assert replicated < created, "auth data must be replicated before roles are written"
    assert "ALTER ROLE cassandra WITH SUPERUSER = false AND LOGIN = false" in fake.statements
    assert "GRANT SELECT ON KEYSPACE market TO market_grafana" in fake.statements
    assert "GRANT MODIFY ON KEYSPACE market TO market_app" in fake.statements
    assert not any("MODIFY" in s and "market_grafana" in s for s in fake.statements)
    assert f"ALTER KEYSPACE market WITH replication = {NTS}" in fake.statements
    assert "built-in superuser disabled" in done


def test_rerun_logs_in_as_admin_and_converges_again() -> None:
    fake = FakeCassandra(logins={"market_admin": "admin-pw"})
    run(fake)
    assert not any(s.startswith("CREATE ROLE IF NOT EXISTS market_admin")
                   for s in fake.statements)
    # Passwords follow the Secrets on every run.
    assert "ALTER ROLE market_app WITH PASSWORD = %s AND LOGIN = true" in fake.statements


def test_waits_for_a_starting_cluster() -> None:
    fake = FakeCassandra(logins={"market_admin": "admin-pw"}, unreachable=3)
    assert run(fake)


def test_gives_up_with_a_clear_message_when_no_credentials_work() -> None:
    fake = FakeCassandra(logins={"market_admin": "another-pw"})
    with pytest.raises(SystemExit, match="cassandra-admin Secret"):
        run(fake)


@pytest.mark.parametrize("key, value", [
    ("CASSANDRA_REPLICATION", "{'class': 'X'}; DROP KEYSPACE market"),
    ("CASSANDRA_APP_USERNAME", "app; DROP ROLE x"),
    ("CASSANDRA_ADMIN_USERNAME", "cassandra"),
    ("CASSANDRA_GRAFANA_PASSWORD", ""),
])
def test_rejects_unsafe_settings(key: str, value: str) -> None:
    with pytest.raises(SystemExit):
        job.settings_from({**ENV, key: value})


def test_unset_or_blank_settings_take_the_contracts_defaults() -> None:
    blank = {"CASSANDRA_HOST": " ", "CASSANDRA_PORT": "", "CASSANDRA_KEYSPACE": "\t",
             "CASSANDRA_REPLICATION": " ", "SCHEMA_WAIT_SECONDS": "",
             "CASSANDRA_ADMIN_USERNAME": "  ", "CASSANDRA_APP_USERNAME": ""}
    for env in ({}, blank):
        assert job.settings_from(env) == job.Settings(
            hosts=("127.0.0.1",), port=9042, keyspace="market",
            replication="{'class': 'SimpleStrategy', 'replication_factor': 1}",
            admin=None, app=None, grafana=None, wait_s=600.0)


def test_contact_points_and_role_names_lose_their_blanks() -> None:
    settings = job.settings_from({**ENV, "CASSANDRA_HOST": " cassandra-0, ,cassandra-1 ",
                                  "CASSANDRA_APP_USERNAME": " market_app "})
    assert settings.hosts == ("cassandra-0", "cassandra-1")
    assert settings.app == job.Role("market_app", "app-pw")


def test_without_auth_only_the_schema_is_applied() -> None:
    env = {"CASSANDRA_REPLICATION": NTS}
    fake = FakeCassandra()
    run(fake, env)
    assert fake.statements == [f"ALTER KEYSPACE market WITH replication = {NTS}"]


def local_env(session: Any, keyspace: str) -> dict[str, str]:
    """The Job's environment for the local Cassandra, NetworkTopologyStrategy RF 1."""
    datacenter = session.execute("SELECT data_center FROM system.local").one().data_center
    return {"CASSANDRA_HOST": str(session.cluster.contact_points[0]),
            "CASSANDRA_PORT": str(session.cluster.port), "CASSANDRA_KEYSPACE": keyspace,
            "CASSANDRA_REPLICATION": f"{{'class': 'NetworkTopologyStrategy', '{datacenter}': 1}}",
            "SCHEMA_WAIT_SECONDS": "30"}


def columns_of(session: Any, keyspace: str, table: str) -> dict[str, str]:
    return {row.column_name: row.type for row in session.execute(
        "SELECT column_name, type FROM system_schema.columns"
        " WHERE keyspace_name = %s AND table_name = %s", (keyspace, table))}


def declared_columns(table: str) -> set[str]:
    """The columns cql/ declares for a table, read from the files, not by the applier."""
    for path in (K8S.parent / "cql").glob("*.cql"):
        match = re.search(rf"CREATE TABLE IF NOT EXISTS \$\{{keyspace\}}\.{table} \((.*?)"
                          r"PRIMARY KEY", path.read_text(), re.S)
        if match:
            return {line.split()[0] for line in match.group(1).splitlines()
                    if line.strip() and not line.strip().startswith("--")}
    raise AssertionError(f"cql/ declares no table {table}")


@pytest.mark.integration
def test_applies_cql_with_network_topology_strategy(
        cassandra_session: Any, monkeypatch: pytest.MonkeyPatch,
        make_keyspace: Callable[[], str]) -> None:
    monkeypatch.undo()  # the real contract.schema.apply this time
    keyspace = make_keyspace()  # dropped at session end; re-created below with NTS
    cassandra_session.execute(f"DROP KEYSPACE {keyspace}", timeout=60)
    env = local_env(cassandra_session, keyspace)
    assert job.main(env) == 0
    row = cassandra_session.execute(
        "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = %s",
        (keyspace,)).one()
    assert row.replication["class"].endswith("NetworkTopologyStrategy")
    tables = {r.table_name for r in cassandra_session.execute(
        "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", (keyspace,))}
    # Every table cql/ declares, read from the files rather than from the applier.
    declared = {m.group(1) for path in (K8S.parent / "cql").glob("*.cql")
                for m in re.finditer(r"CREATE TABLE IF NOT EXISTS \$\{keyspace\}\.(\w+)",
                                     path.read_text())}
    assert {"trades", "minute_trades", "moving_means", "rejected_records"} <= declared
    assert tables == declared


@pytest.mark.integration
def test_adds_the_columns_a_newer_schema_declares_to_an_older_table(
        cassandra_session: Any, monkeypatch: pytest.MonkeyPatch,
        make_keyspace: Callable[[], str]) -> None:
    monkeypatch.undo()
    keyspace = make_keyspace()
    # trades as an older schema created it: without the two newest columns, with a row.
    cassandra_session.execute(f"ALTER TABLE {keyspace}.trades DROP (ingest_ts, kafka_topic)",
                              timeout=60)
    cassandra_session.execute(
        f"INSERT INTO {keyspace}.trades (symbol, trade_date, trade_ts, kafka_partition,"
        " kafka_offset, price, volume) VALUES ('AAPL', '2024-03-01', '2024-03-01 10:00:00Z',"
        " 0, 7, 187.5, 3.0)", timeout=60)
    assert job.main(local_env(cassandra_session, keyspace)) == 0
    columns = columns_of(cassandra_session, keyspace, "trades")
    assert set(columns) == declared_columns("trades")
    assert (columns["ingest_ts"], columns["kafka_topic"]) == ("timestamp", "text")
    row = cassandra_session.execute(
        f"SELECT symbol, kafka_offset, price, ingest_ts, kafka_topic FROM {keyspace}.trades"
        " WHERE symbol = 'AAPL' AND trade_date = '2024-03-01'", timeout=60).one()
    assert tuple(row) == ("AAPL", 7, 187.5, None, None)  # the row stays, the new columns empty


@pytest.mark.integration
def test_names_a_table_whose_key_changed_and_exits_with_the_usage_code(
        cassandra_session: Any, monkeypatch: pytest.MonkeyPatch,
        make_keyspace: Callable[[], str], caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.undo()
    keyspace = make_keyspace()
    with_older_moving_means(cassandra_session, keyspace)
    with caplog.at_level("ERROR", logger="apply_schema"):
        assert job.main(local_env(cassandra_session, keyspace)) == 2
    (message,) = [r.getMessage() for r in caplog.records if r.name == "apply_schema"]
    assert f"{keyspace}.moving_means (missing slide_seconds, window_seconds)" in message
    assert "drop them" in message


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_the_job_creates_the_keyspace_the_stream_job_writes_to(overlay: str) -> None:
    docs = kustomize_build(K8S / "overlays" / overlay)
    (job_doc,) = [d for d in docs if d["kind"] == "Job"
                  and d["metadata"]["name"] == "cassandra-schema"]
    (app,) = [d for d in docs if d["kind"] == "SparkApplication"]
    (container,) = job_doc["spec"]["template"]["spec"]["containers"]
    # The same (hashed) ConfigMap as the stream job's driver, and no copy of its values.
    assert [ref["configMapRef"]["name"] for ref in container["envFrom"]] == [
        ref["configMapRef"]["name"] for ref in app["spec"]["driver"]["envFrom"]]
    own = {e["name"] for e in container["env"]}
    assert not own & {"CASSANDRA_HOST", "CASSANDRA_PORT", "CASSANDRA_KEYSPACE"}
    settings = job.settings_from({**ENV, **next(
        d["data"] for d in docs if d["kind"] == "ConfigMap"
        and d["metadata"]["name"] == container["envFrom"][0]["configMapRef"]["name"])})
    assert (settings.hosts, settings.port, settings.keyspace) == (("cassandra",), 9042, "market")
