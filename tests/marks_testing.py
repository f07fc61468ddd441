"""Which marks a test gets from the fixtures it uses (applied by tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# Fixture -> the mark every test that depends on it, directly or not, gets. Every
# fixture that reaches a server (kafka_bootstrap, cassandra_session, make_keyspace,
# make_topic, the cluster's) goes through `stack`.
MARKED_BY_FIXTURE = {"stack": "integration", "spark": "spark"}


def mark_by_fixtures(items: Iterable[Any]) -> None:
    """Add the marks of MARKED_BY_FIXTURE to each pytest item whose fixture closure
    holds the fixture, unless the item carries the mark already."""
    for item in items:
        closure = set(getattr(item, "fixturenames", ()))
        for fixture, marker in MARKED_BY_FIXTURE.items():
            if fixture in closure and item.get_closest_marker(marker) is None:
                item.add_marker(marker)
