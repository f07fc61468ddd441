"""Reading options from an environment mapping; only entry points call these.

A variable that is unset, empty or only blanks means "not set": the default applies.
Every program treats a blank value the same way, so `KAFKA_TOPIC= make run` does not
subscribe to a topic named "".
"""

from __future__ import annotations

from collections.abc import Mapping

TRUE_WORDS = ("1", "true", "yes", "on")


def get(env: Mapping[str, str], name: str, default: str) -> str:
    """The variable's value without surrounding blanks, or the default when not set."""
    value = env.get(name, "").strip()
    return value if value else default


def optional(env: Mapping[str, str], name: str) -> str | None:
    """The variable's value without surrounding blanks, or None when not set."""
    value = env.get(name, "").strip()
    return value or None


def secret(env: Mapping[str, str], name: str) -> str | None:
    """A password's value exactly as set (blanks around it are part of it), or None
    when it is unset or empty."""
    return env.get(name) or None


def flag(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    """A yes/no variable: 1, true, yes or on (any case) is yes, any other value no."""
    value = env.get(name, "").strip().lower()
    return value in TRUE_WORDS if value else default
