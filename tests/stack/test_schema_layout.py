"""Applying cql/ to a keyspace whose table has an older key fails with what to do."""

from __future__ import annotations

import pytest

from stack import schema
from stack.errors import StackError

pytestmark = pytest.mark.integration


def test_an_older_table_layout_is_named_instead_of_left_to_fail_every_write(
    cassandra_session, make_keyspace
) -> None:
    keyspace = make_keyspace()
    cassandra_session.execute(f"DROP TABLE {keyspace}.moving_means", timeout=60)
    # The layout before the window shape joined the key.
    cassandra_session.execute(
        f"CREATE TABLE {keyspace}.moving_means (symbol text, window_end timestamp,"
        " window_start timestamp, trade_count bigint, arithmetic_mean double,"
        " geometric_mean double, harmonic_mean double,"
        " PRIMARY KEY ((symbol), window_end))", timeout=60)
    with pytest.raises(StackError, match=rf"{keyspace}\.moving_means \(missing "
                                         r"slide_seconds, window_seconds\).*drop them"):
        schema.apply(cassandra_session, keyspace)
    # Applying to an up-to-date keyspace again is a no-op that passes the check.
    fresh = make_keyspace()
    assert schema.apply(cassandra_session, fresh) == len(schema.render_cql(
        schema.CQL_DIR, fresh, schema.LOCAL_REPLICATION))
