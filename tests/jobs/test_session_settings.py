"""What the jobs set on a SparkSession before its JVM starts (no Spark needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.session import class_archive_options, java_option, spark_settings
from jobs.settings import SparkLaunch

LOCAL_JAVA = "-Duser.timezone=UTC -XX:+UseParallelGC"


def test_java_options_extend_the_local_drivers_own() -> None:
    settings = spark_settings("local[2]", [Path("/j/a.jar"), Path("/j/b.jar")],
                              {"spark.app.x": "1"}, ["-XX:SharedArchiveFile=/w/d.jsa"])
    assert settings["spark.driver.extraJavaOptions"] == (
        LOCAL_JAVA + " -XX:SharedArchiveFile=/w/d.jsa")
    assert settings["spark.app.x"] == "1"


def test_a_local_driver_gets_the_jars_on_its_own_class_path() -> None:
    settings = spark_settings("local[2]", [Path("/j/a.jar"), Path("/j/b.jar")])
    assert settings["spark.driver.extraClassPath"] == "/j/a.jar:/j/b.jar"
    assert "spark.jars" not in settings


def test_a_cluster_driver_ships_the_jars_to_its_executors() -> None:
    settings = spark_settings("spark://master:7077", [Path("/j/a.jar"), Path("/j/b.jar")])
    assert settings == {"spark.jars": "/j/a.jar,/j/b.jar"}


def test_a_submitted_driver_gets_no_local_settings() -> None:
    settings = spark_settings(None, (), {"spark.app.x": "1"}, ["-XX:SharedArchiveFile=/w/d.jsa"])
    assert settings == {"spark.app.x": "1"}


def test_the_archive_is_used_only_once_it_exists(tmp_path: Path) -> None:
    archive = tmp_path / "driver.jsa"
    launch = SparkLaunch(class_archive=archive)
    assert class_archive_options(launch) == []
    archive.write_bytes(b"archive")
    assert class_archive_options(launch) == [f"-XX:SharedArchiveFile={archive}"]
    assert class_archive_options(SparkLaunch(class_archive=None)) == []


def test_recording_writes_the_archive_at_exit_even_over_an_old_one(tmp_path: Path) -> None:
    archive = tmp_path / "driver.jsa"
    archive.write_bytes(b"old")
    launch = SparkLaunch(class_archive=archive, record_classes=True)
    assert class_archive_options(launch) == [f"-XX:ArchiveClassesAtExit={archive}"]


@pytest.mark.parametrize(("text", "quoted"), [
    ("-XX:SharedArchiveFile=/w/d.jsa", "-XX:SharedArchiveFile=/w/d.jsa"),
    ("-XX:SharedArchiveFile=/my work/d.jsa", '"-XX:SharedArchiveFile=/my work/d.jsa"'),
    ('-XX:SharedArchiveFile=/a"b\\c', '"-XX:SharedArchiveFile=/a\\"b\\\\c"'),
])
def test_java_options_are_quoted_for_sparks_launcher(text: str, quoted: str) -> None:
    assert java_option(text) == quoted
