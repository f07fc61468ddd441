"""Applying cql/ to a keyspace with older tables: new non-key columns are added, a
changed key fails with what to do."""

from __future__ import annotations

import pytest
from schema_testing import with_older_moving_means

from contract import schema
from contract.exits import ExitCode, exit_code

pytestmark = pytest.mark.integration


def test_an_older_table_layout_is_named_instead_of_left_to_fail_every_write(
    cassandra_session, make_keyspace
) -> None:
    keyspace = make_keyspace()
    with_older_moving_means(cassandra_session, keyspace)
    with pytest.raises(schema.SchemaError, match=rf"{keyspace}\.moving_means \(missing "
                                                r"slide_seconds, window_seconds\).*drop them"
                       ) as err:
        schema.apply(cassandra_session, keyspace)
    # Permanent: applying the same schema again fails the same way.
    assert exit_code(err.value) == ExitCode.USAGE
    # Applying to an up-to-date keyspace again is a no-op that passes the check.
    fresh = make_keyspace()
    assert schema.apply(cassandra_session, fresh) == len(schema.render_cql(
        schema.CQL_DIR, fresh, schema.LOCAL_REPLICATION))


def test_columns_added_outside_the_key_are_added_to_an_older_table(
    cassandra_session, make_keyspace
) -> None:
    keyspace = make_keyspace()
    cassandra_session.execute(
        f"ALTER TABLE {keyspace}.stream_progress DROP (kafka_lag_records, kafka_lag_ms)",
        timeout=60)
    schema.apply(cassandra_session, keyspace)
    columns = {row.column_name: row.type for row in cassandra_session.execute(
        "SELECT column_name, type FROM system_schema.columns WHERE keyspace_name = %s"
        " AND table_name = 'stream_progress'", (keyspace,))}
    assert columns["kafka_lag_records"] == "bigint" and columns["kafka_lag_ms"] == "double"


def test_declared_table_names_types_and_key() -> None:
    statement = ("CREATE TABLE IF NOT EXISTS ks.t (\n    a text,\n    b date,\n"
                 "    c frozen<list<text>>,\n    d double,\n    PRIMARY KEY ((a, b), c)\n)"
                 " WITH CLUSTERING ORDER BY (c DESC)")
    assert schema.declared_table(statement) == (
        "ks", "t", {"a": "text", "b": "date", "c": "frozen<list<text>>", "d": "double"},
        {"a", "b", "c"})
