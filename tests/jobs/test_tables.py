"""Each table spec is its cql/ file, and what the jobs write follows the specs."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest

import contract
from contract import schema
from jobs import tables
from jobs.panes import Partial, WindowShape, minute_rows, moving_rows
from jobs.stream_store import BatchReport, RunSettings
from stack.status import PROGRESS_COLUMNS

DECLARED = {table: (columns, key) for statement in schema.render_cql(
                contract.CQL_DIR, "ks", schema.LOCAL_REPLICATION)
            if (declared := schema.declared_table(statement))
            for _, table, columns, key in [declared]}


def test_every_table_of_the_schema_has_one_spec() -> None:
    assert sorted(spec.name for spec in tables.TABLES) == sorted(DECLARED)


@pytest.mark.parametrize("spec", tables.TABLES, ids=lambda spec: spec.name)
def test_a_spec_is_its_cql_file(spec: tables.TableSpec) -> None:
    columns, key = DECLARED[spec.name]
    assert spec.columns == tuple(columns)
    assert set(spec.key) == key


def test_statements_and_rows_follow_the_spec() -> None:
    spec = tables.TableSpec("t", ("a", "b", "c"), key=("a",))
    assert spec.insert("ks") == "INSERT INTO ks.t (a, b, c) VALUES (?, ?, ?)"
    assert spec.insert("ks", suffix=" IF NOT EXISTS").endswith("(?, ?, ?) IF NOT EXISTS")
    assert spec.row({"c": 3, "a": 1, "b": 2, "extra": 4}) == (1, 2, 3)
    assert spec.values == ("b", "c")
    with pytest.raises(ValueError, match="key"):
        tables.TableSpec("t", ("a",), key=("z",))
    with pytest.raises(ValueError, match="no column z"):
        spec.project(z=None)


def test_the_records_of_the_jobs_are_the_specs_columns() -> None:
    assert tuple(f.name for f in dataclasses.fields(Partial)) == tables.PANE_VALUES
    report = {f.name for f in dataclasses.fields(BatchReport)}
    assert report == set(tables.STREAM_PROGRESS.columns) - {"job", "day", "run_id"}
    run = {f.name for f in dataclasses.fields(RunSettings)}
    assert run == set(tables.STREAM_RUNS.columns) - {"run_id", "started_at"}
    assert set(PROGRESS_COLUMNS) <= set(tables.STREAM_PROGRESS.columns)


def test_window_rows_carry_every_column_of_their_table() -> None:
    ts = datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc)
    part = Partial(1, 2.0, 1.0, 2.0, 0.69, 0.5, 2.0, 2.0, ts, 0, 0, 2.0, ts, 0, 0, 2.0)
    shape = WindowShape(timedelta(minutes=5), timedelta(seconds=30))
    (minute,) = minute_rows("A", {ts: part})
    (moving,) = moving_rows("A", shape, {ts: part})
    assert tuple(minute) == tables.MINUTE_TRADES.columns
    assert set(moving) == set(tables.MOVING_MEANS.columns)
