"""The stream job's exit code follows the error its batch function raised, by type."""

from __future__ import annotations

import pytest

import contract
from contract.exits import ExitCode, exit_code
from jobs.stream_batch import BatchPlan, BatchProcessor, RunSettingsError


def processor() -> BatchProcessor:
    plan = BatchPlan(job="market", keyspace="market", topic="Market",
                     schema_json=contract.SCHEMA_PATH.read_text())
    return BatchProcessor(plan, store=None, report=lambda report: None)  # type: ignore[arg-type]


@pytest.mark.parametrize(("error", "code"), [
    (RunSettingsError("other windows"), ExitCode.USAGE),
    (OSError("Cassandra went away"), ExitCode.INTERNAL),
])
def test_the_error_a_batch_raised_is_kept_for_the_exit_code(
        monkeypatch: pytest.MonkeyPatch, error: Exception, code: ExitCode) -> None:
    batches = processor()
    assert batches.failure is None

    def fail(batch: object, batch_id: int) -> None:
        raise error

    monkeypatch.setattr(batches, "_process", fail)
    try:
        with pytest.raises(type(error)):
            batches(None, 7)  # type: ignore[arg-type]
        assert batches.failure is error
        assert exit_code(batches.failure) == code
    finally:
        batches.close()
