"""Imports run one way: the programs depend on the contract, the local tooling on them.

    contract                      nothing of the project
    jobs, producer, grafana       contract (and themselves)
    the k8s schema Job            contract
    stack (local tooling)         contract, and the public names of jobs and producer
    bench (local tooling)         all of the above, never tests

Every module is parsed, not imported, so an import inside a function, under
TYPE_CHECKING or through importlib.import_module("...") counts as well. The checker is
tested on small sources first, so a checker that finds nothing cannot pass unnoticed.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ("contract", "jobs", "producer", "stack", "grafana", "bench", "tests")
SCHEMA_JOB = ROOT / "k8s" / "base" / "schema-job" / "files" / "apply_schema.py"

# What each part of the project may import from the project, besides itself.
ALLOWED: dict[str, frozenset[str]] = {
    "contract": frozenset(),
    "jobs": frozenset({"contract"}),
    "producer": frozenset({"contract"}),
    "grafana": frozenset({"contract"}),
    "schema-job": frozenset({"contract"}),
    "stack": frozenset({"contract", "jobs", "producer"}),
    "bench": frozenset({"contract", "jobs", "producer", "stack"}),
}
# stack uses the programs through their public names only.
PUBLIC_ONLY = {"stack": frozenset({"jobs", "producer"})}
# The stack's CLI parser is for the CLI: tests and benchmarks call stack.config.from_env.
CLI_PARSERS = frozenset({"parse_config", "parse_args", "build_parser"})
CLI_TESTS = {ROOT / "tests" / "stack" / "test_child_env.py"}


@dataclass(frozen=True)
class Import:
    """One imported name: `from jobs.settings import X` gives module jobs.settings, name X."""

    module: str
    name: str | None
    line: int

    @property
    def top(self) -> str:
        return self.module.split(".")[0]

    def where(self, path: Path) -> str:
        target = f"{self.module}.{self.name}" if self.name else self.module
        return f"{path.relative_to(ROOT)}:{self.line} imports {target}"


def package_of(path: Path) -> str:
    """The dotted package a module belongs to, for resolving relative imports."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts if path.name == "__init__.py" else parts[:-1])


def imports_in(source: str, package: str) -> Iterator[Import]:
    """Every import of a module's source, wherever it stands in the module."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(alias.name, None, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([module] if module else [])])
            for alias in node.names:
                yield Import(module, alias.name, node.lineno)
        elif isinstance(node, ast.Call) and _dynamic_import(node):
            yield Import(node.args[0].value, None, node.lineno)  # type: ignore[attr-defined]


def _dynamic_import(call: ast.Call) -> bool:
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    return (name in ("import_module", "__import__") and bool(call.args)
            and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str))


def problems(source: str, package: str, part: str) -> list[Import]:
    """The imports of one module that break the direction rules of its part."""
    own = package.split(".")[0]
    found = []
    for item in imports_in(source, package):
        if item.top not in PROJECT or item.top == own:
            continue
        private = item.top in PUBLIC_ONLY.get(part, ()) and _private(item)
        if item.top not in ALLOWED[part] or private:
            found.append(item)
    return found


def _private(item: Import) -> bool:
    names = [*item.module.split(".")[1:], *([item.name] if item.name else [])]
    return any(name.startswith("_") for name in names)


def modules(part: str) -> list[Path]:
    if part == "schema-job":
        return [SCHEMA_JOB]
    return sorted((ROOT / part).rglob("*.py"))


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_imports_run_one_way(part: str) -> None:
    paths = modules(part)
    assert paths, f"no modules found for {part}"
    broken = [item.where(path) for path in paths
              for item in problems(path.read_text(), package_of(path), part)]
    assert broken == []


def test_jobs_and_producer_never_import_stack() -> None:
    # The rule the whole layout rests on, stated on its own.
    hits = [item.where(path) for part in ("jobs", "producer") for path in modules(part)
            for item in imports_in(path.read_text(), package_of(path)) if item.top == "stack"]
    assert hits == []


def test_tests_and_benchmarks_take_the_stack_config_from_a_function() -> None:
    paths = [p for p in [*modules("bench"), *(ROOT / "tests").rglob("*.py")]
             if p not in CLI_TESTS]
    hits = [item.where(path) for path in paths
            for item in imports_in(path.read_text(), package_of(path))
            if item.module == "stack.__main__" and (item.name is None
                                                    or item.name in CLI_PARSERS)]
    assert hits == []


def cluster_calls(source: str) -> list[int]:
    """Lines that call a `Cluster(...)`: cassandra-driver's, however it was imported."""
    return [node.lineno for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Call) and (getattr(node.func, "id", None) == "Cluster"
                                                or getattr(node.func, "attr", None) == "Cluster")]


def test_one_cassandra_cluster_factory() -> None:
    # contract.cassandra.make_cluster pins the protocol and handles credentials.
    factory = ROOT / "contract" / "cassandra.py"
    paths = [*(p for part in ALLOWED for p in modules(part)), *(ROOT / "tests").rglob("*.py")]
    hits = [f"{path.relative_to(ROOT)}:{line}" for path in paths if path != factory
            for line in cluster_calls(path.read_text())]
    assert hits == []
    assert cluster_calls(factory.read_text())
    assert cluster_calls("from cassandra import cluster\ncluster.Cluster(['h'])") == [2]


def test_no_test_imports_a_conftest() -> None:
    # Every tests/ folder's conftest is "conftest" on sys.path: which one an import
    # finds depends on the run. Shared helpers live in tests/*_testing.py.
    hits = [item.where(path) for path in (ROOT / "tests").rglob("*.py")
            for item in imports_in(path.read_text(), package_of(path))
            if item.top == "conftest"]
    assert hits == []


# ---------------------------------------------------------------- the checker itself

def names(source: str, package: str = "jobs", part: str = "jobs") -> list[str]:
    return [f"{i.module}:{i.name}" for i in problems(source, package, part)]


def test_the_checker_finds_imports_wherever_they_stand() -> None:
    source = """
import stack
import stack.config as config
from stack import jars
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    from grafana.options import add_cassandra_options

def later():
    from bench.common import percentile
    import importlib
    importlib.import_module("stack.process")
    __import__("producer.config")
"""
    assert names(source) == [
        "stack:None", "stack.config:None", "stack:jars", "grafana.options:add_cassandra_options",
        "bench.common:percentile", "stack.process:None", "producer.config:None"]


def test_the_checker_resolves_relative_imports() -> None:
    # A relative import stays inside its package: jobs/stack.py would be jobs.stack.
    found = imports_in("from .stack import jars\nfrom .. import settings", "jobs.sub")
    assert [(i.module, i.name) for i in found] == [("jobs.sub.stack", "jars"),
                                                   ("jobs", "settings")]
    assert names("from .stack import jars", package="jobs") == []


def test_the_checker_allows_what_a_part_may_import() -> None:
    source = "import contract\nfrom jobs.settings import WindowSpec\nimport pyspark\n"
    assert names(source, "stack", "stack") == []
    assert names(source, "contract", "contract") == ["jobs.settings:WindowSpec"]
    assert names("import contract", "contract", "contract") == []


def test_the_checker_holds_stack_to_public_names() -> None:
    assert names("from jobs.stream_processor import _shutdown", "stack", "stack") == [
        "jobs.stream_processor:_shutdown"]
    assert names("from producer._wire import x", "stack", "stack") == ["producer._wire:x"]
    assert names("from jobs.kafka_lag import TopicEnds", "stack", "stack") == []
