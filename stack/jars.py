"""Resolve the Maven Central jar sets (Kafka, Cassandra, Spark connectors).

Each set has its own pom under stack/maven/<set>/ and its own output folder under
.work/jars/<set>/, because the sets' netty/jackson/slf4j versions clash. A set is
resolved once: a stamp holding the pom's hash makes the next call a no-op until
the pom changes.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
from pathlib import Path

from stack.config import PROJECT_ROOT
from stack.errors import StackError

log = logging.getLogger(__name__)

JAR_SETS = ("kafka", "cassandra", "spark")
POM_ROOT = PROJECT_ROOT / "stack" / "maven"
STAMP = ".pom.sha256"


def pom_path(name: str) -> Path:
    return POM_ROOT / name / "pom.xml"


def _pom_hash(name: str) -> str:
    return hashlib.sha256(pom_path(name).read_bytes()).hexdigest()


def is_resolved(jars_dir: Path, name: str) -> bool:
    stamp = jars_dir / name / STAMP
    return stamp.is_file() and stamp.read_text().strip() == _pom_hash(name)


def resolve(jars_dir: Path, name: str, maven: str = "mvn") -> Path:
    """Copy the set's runtime jars into jars_dir/name; no-op when already resolved."""
    target = jars_dir / name
    if is_resolved(jars_dir, name):
        return target
    if shutil.which(maven) is None:
        raise StackError(
            f"Maven ('{maven}') was not found; it is needed once to fetch the {name} jars.",
            "install Maven 3.8+ (Debian: apt-get install maven) or set MAVEN=/path/to/mvn",
        )
    staging = jars_dir / f".{name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    log.info("resolving %s jars from Maven Central (first run only)", name)
    cmd = [maven, "-B", "-q", "-f", str(pom_path(name)),
           "dependency:copy-dependencies", f"-DoutputDirectory={staging}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise StackError(
            f"Maven could not resolve the {name} jars:\n{tail}",
            "check that Maven Central is reachable (proxy settings in ~/.m2/settings.xml)",
        )
    (staging / STAMP).write_text(_pom_hash(name) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def resolve_all(jars_dir: Path, maven: str = "mvn") -> None:
    for name in JAR_SETS:
        resolve(jars_dir, name, maven)


def jar_paths(jars_dir: Path, name: str) -> list[Path]:
    """The jars of a resolved set, sorted for a stable classpath."""
    folder = jars_dir / name
    if not is_resolved(jars_dir, name):
        raise StackError(
            f"the {name} jars are not resolved in {folder}",
            "run `make jars` (or `python -m stack jars`)",
        )
    return sorted(folder.glob("*.jar"))
