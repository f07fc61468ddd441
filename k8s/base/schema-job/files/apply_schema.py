"""Schema Job of the Kubernetes deployment: Cassandra roles, then the cql/ schema.

Runs in the application image, where contract.schema (the applier behind
`python -m stack schema`) and cql/ are present. That CLI targets the local stack
only (127.0.0.1, no credentials, SimpleStrategy), so this script drives the same
applier with what a cluster needs: it creates what is missing and adds the columns a
newer schema declares to tables an older one created. Settings come from the
environment (unset or blank: the default, see contract.env):

    CASSANDRA_HOST, CASSANDRA_PORT     contact points (comma-separated) and CQL port
    CASSANDRA_KEYSPACE                 keyspace to create (default market)
    CASSANDRA_REPLICATION              CQL replication map, e.g.
                                       {'class': 'NetworkTopologyStrategy', 'dc1': 3}
    CASSANDRA_ADMIN_USERNAME/PASSWORD  superuser this Job creates and then uses
    CASSANDRA_APP_USERNAME/PASSWORD    role of the jobs: SELECT and MODIFY on the keyspace
    CASSANDRA_GRAFANA_USERNAME/PASSWORD  role of Grafana: SELECT only
    SCHEMA_WAIT_SECONDS                how long to wait for Cassandra (default 600)

On a fresh cluster only the built-in cassandra/cassandra superuser exists: the Job
logs in with it once, creates the admin role and disables the built-in one. Every
step is idempotent, so the Job is rerun on each deployment; role passwords follow
the Secrets. Without CASSANDRA_ADMIN_USERNAME (a cluster without authentication)
only the schema is applied. A table whose key changed cannot be altered: the Job
names it and what to do, and exits with the code contract.exits gives that error (2).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import contract
from contract import env as envvars
from contract import schema
from contract.cassandra import contact_points, make_cluster
from contract.exits import ExitError, exit_code

log = logging.getLogger("apply_schema")

DEFAULT_SUPERUSER = ("cassandra", "cassandra")
# Replicated like the data, so logging in keeps working when a node is down.
SYSTEM_KEYSPACES = ("system_auth", "system_distributed", "system_traces")
ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,47}$")
REPLICATION = re.compile(r"^\{\s*'class'\s*:\s*'(NetworkTopologyStrategy|SimpleStrategy)'.*\}$")


class AuthRefused(Exception):
    """Cassandra answered, but refused these credentials."""


@dataclass(frozen=True)
class Role:
    name: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class Settings:
    hosts: tuple[str, ...]
    port: int
    keyspace: str
    replication: str
    admin: Role | None
    app: Role | None
    grafana: Role | None
    wait_s: float


Connect = Callable[[Role | None], Any]


def _role(env: Mapping[str, str], prefix: str) -> Role | None:
    name = envvars.optional(env, f"{prefix}_USERNAME")
    if name is None:
        return None
    if not ROLE_NAME.match(name):
        raise SystemExit(f"{prefix}_USERNAME must match {ROLE_NAME.pattern}: {name!r}")
    password = envvars.secret(env, f"{prefix}_PASSWORD")
    if password is None:
        raise SystemExit(f"{prefix}_PASSWORD is empty")
    return Role(name, password)


def settings_from(env: Mapping[str, str]) -> Settings:
    replication = envvars.get(env, "CASSANDRA_REPLICATION", schema.LOCAL_REPLICATION)
    if not REPLICATION.match(replication):
        raise SystemExit(f"CASSANDRA_REPLICATION is not a replication map: {replication!r}")
    keyspace = envvars.get(env, "CASSANDRA_KEYSPACE", contract.KEYSPACE)
    if not ROLE_NAME.match(keyspace):
        raise SystemExit(f"CASSANDRA_KEYSPACE is not a plain identifier: {keyspace!r}")
    admin = _role(env, "CASSANDRA_ADMIN")
    if admin is not None and admin.name == DEFAULT_SUPERUSER[0]:
        raise SystemExit("CASSANDRA_ADMIN_USERNAME must not be the built-in 'cassandra' role")
    return Settings(
        hosts=tuple(contact_points(envvars.get(env, "CASSANDRA_HOST", contract.CASSANDRA_HOST))),
        port=int(envvars.get(env, "CASSANDRA_PORT", str(contract.CASSANDRA_PORT))),
        keyspace=keyspace,
        replication=replication,
        admin=admin,
        app=_role(env, "CASSANDRA_APP"),
        grafana=_role(env, "CASSANDRA_GRAFANA"),
        wait_s=float(envvars.get(env, "SCHEMA_WAIT_SECONDS", "600")),
    )


def driver_connect(settings: Settings) -> Connect:
    """A connect(role) function backed by cassandra-driver; role None = no auth."""
    from cassandra import AuthenticationFailed
    from cassandra.cluster import NoHostAvailable

    def connect(role: Role | None) -> Any:
        cluster = make_cluster(settings.hosts, settings.port,
                               username=role.name if role else None,
                               password=role.password if role else None,
                               connect_timeout_s=10)
        try:
            return cluster.connect()
        except NoHostAvailable as err:
            cluster.shutdown()
            if any(isinstance(e, AuthenticationFailed) for e in err.errors.values()):
                raise AuthRefused(str(err)) from err
            raise
        except AuthenticationFailed as err:
            cluster.shutdown()
            raise AuthRefused(str(err)) from err

    return connect


def admin_session(settings: Settings, connect: Connect, sleep: Callable[[float], None],
                  clock: Callable[[], float]) -> Any:
    """Log in as the admin role, creating it from the built-in superuser the first time."""
    deadline = clock() + settings.wait_s
    default = Role(*DEFAULT_SUPERUSER)
    while True:
        try:
            if settings.admin is None:
                return connect(None)
            try:
                return connect(settings.admin)
            except AuthRefused:
                log.info("admin role %s cannot log in yet: bootstrapping it", settings.admin.name)
            bootstrap_admin(settings, connect(default))
            return connect(settings.admin)
        except AuthRefused as err:
            # Also seen while a new node has not yet created its built-in superuser
            # (a few seconds after start), hence the retries; past the deadline the
            # admin password was most likely changed by hand.
            failure: Exception = err
            hint = ("neither the admin role nor the built-in superuser can log in: check "
                    "the cassandra-admin Secret against the cluster")
        except Exception as err:  # the cluster is still starting
            failure, hint = err, "Cassandra is not reachable"
        if clock() >= deadline:
            raise SystemExit(f"{hint} (gave up after {settings.wait_s:.0f}s): {failure}")
        log.info("waiting for Cassandra: %s", failure)
        sleep(5)


def bootstrap_admin(settings: Settings, session: Any) -> None:
    """As the built-in superuser: replicate the auth keyspace, create the admin role."""
    assert settings.admin is not None
    replicate_system_keyspaces(session, settings.replication)
    session.execute(
        f"CREATE ROLE IF NOT EXISTS {settings.admin.name} "
        "WITH PASSWORD = %s AND SUPERUSER = true AND LOGIN = true",
        (settings.admin.password,),
    )
    session.cluster.shutdown()


def replicate_system_keyspaces(session: Any, replication: str) -> None:
    for keyspace in SYSTEM_KEYSPACES:
        session.execute(f"ALTER KEYSPACE {keyspace} WITH replication = {replication}")


def converge(settings: Settings, session: Any) -> list[str]:
    """Everything after login; idempotent. Returns what it did, for the log."""
    done: list[str] = []
    if settings.admin is not None:
        replicate_system_keyspaces(session, settings.replication)
        # The well-known default credentials must not stay usable.
        if session.execute("SELECT role FROM system_auth.roles WHERE role = %s",
                           (DEFAULT_SUPERUSER[0],)).one() is not None:
            session.execute(f"ALTER ROLE {DEFAULT_SUPERUSER[0]} "
                            "WITH SUPERUSER = false AND LOGIN = false")
            done.append("built-in superuser disabled")
    count = schema.apply(session, settings.keyspace, settings.replication)
    # CREATE KEYSPACE IF NOT EXISTS leaves an existing keyspace alone; a changed
    # replication (dev -> prod sizing) must still reach it. Run a repair afterwards.
    session.execute(f"ALTER KEYSPACE {settings.keyspace} WITH replication = "
                    f"{settings.replication}")
    done.append(f"{count} CQL statements applied to {settings.keyspace}")
    if settings.admin is None:
        return done
    grants = {"SELECT", "MODIFY"}
    for role, permissions in ((settings.app, grants), (settings.grafana, {"SELECT"})):
        if role is None:
            continue
        # CREATE then ALTER: the password always follows the Secret (rotation).
        session.execute(f"CREATE ROLE IF NOT EXISTS {role.name} "
                        "WITH PASSWORD = %s AND LOGIN = true", (role.password,))
        session.execute(f"ALTER ROLE {role.name} WITH PASSWORD = %s AND LOGIN = true",
                        (role.password,))
        for permission in sorted(permissions):
            session.execute(f"GRANT {permission} ON KEYSPACE {settings.keyspace} TO {role.name}")
        done.append(f"role {role.name}: {', '.join(sorted(permissions))} on {settings.keyspace}")
    return done


def main(env: Mapping[str, str], connect: Connect | None = None) -> int:
    settings = settings_from(env)
    session = admin_session(settings, connect or driver_connect(settings), time.sleep,
                            time.monotonic)
    try:
        for line in converge(settings, session):
            log.info("%s", line)
    except ExitError as err:  # a table the schema cannot bring up to date
        log.error("%s", err)
        return exit_code(err)
    finally:
        session.cluster.shutdown()
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("cassandra").setLevel(logging.ERROR)
    sys.exit(main(os.environ))
