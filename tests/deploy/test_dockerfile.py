"""The application image: pinned bases, Maven-resolved jars, non-root, lean context."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import yaml
from deploy_files import K8S, ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()
DOCKERIGNORE = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
ARGS = dict(re.findall(r"^ARG (\w+)=(\S+)$", DOCKERFILE, re.M))
STAGES = re.findall(r"^FROM (\S+)(?: AS (\w+))?$", DOCKERFILE, re.M)


def resolve(image: str) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: ARGS[m.group(1)], image)


def test_base_images_are_pinned_to_versions() -> None:
    assert STAGES, "no FROM line"
    for image, _ in STAGES:
        tag = resolve(image).partition(":")[2]
        assert tag and tag != "latest" and re.search(r"\d+\.\d+", tag), image
    # Digest pinning is documented next to the tags.
    assert "@sha256:" in DOCKERFILE


def test_connector_jars_come_from_the_spark_pom() -> None:
    assert re.search(
        r"mvn .*-f stack/maven/spark/pom.xml dependency:copy-dependencies\s*\\\s*\n"
        r"\s*-DoutputDirectory=/opt/app/jars", DOCKERFILE)
    assert "COPY --from=jars /opt/app/jars /opt/app/jars" in DOCKERFILE
    assert "spark.driver.extraClassPath   /opt/app/jars/*" in DOCKERFILE


def test_runs_as_a_numeric_non_root_user() -> None:
    final = DOCKERFILE.rsplit("\nFROM ", 1)[1]
    (user,) = re.findall(r"^USER (\S+)$", final, re.M)
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) > 0
    # The manifests run the image with the same uid.
    for path in (K8S / "base").rglob("*.yaml"):
        doc = yaml.safe_load(path.read_text())
        spec = (doc or {}).get("spec", {}).get("template", {}).get("spec", {})
        if any("market-pipeline" in c.get("image", "") for c in spec.get("containers", [])):
            assert spec["securityContext"]["runAsUser"] == int(uid), path
        if (doc or {}).get("kind") == "SparkApplication":
            for part in ("driver", "executor"):
                assert doc["spec"][part]["podSecurityContext"]["runAsUser"] == int(uid), path


def test_context_is_an_allow_list_of_what_the_image_copies() -> None:
    assert DOCKERIGNORE[0] == "*", "start from nothing, then allow"
    allowed = {entry[1:].rstrip("/") for entry in DOCKERIGNORE if entry.startswith("!")}
    copied = set(re.findall(r"^COPY (?!--from)(?:--chmod=\d+ )?(\S+)", DOCKERFILE, re.M))
    for source in copied:
        covered = any(source == entry or source.startswith(f"{entry}/") for entry in allowed)
        assert covered, f"COPY {source} is excluded by .dockerignore"
        assert (ROOT / source).exists(), source
    assert not {".venv", ".work", "tests", ".git", "terraform"} & allowed


def test_manifests_run_entry_points_that_exist() -> None:
    text = "\n".join(p.read_text() for p in (K8S / "base").rglob("*.yaml"))
    for script in re.findall(r"/opt/app/(\S+\.py)", text):
        assert (ROOT / script).is_file(), script
    for module in re.findall(r'\["python", "-m", "(\w+)"', text):
        assert (ROOT / module / "__main__.py").is_file(), module


# ---------------------------------------------------------------- entry point

ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"


def test_tini_stays_pid_1_in_front_of_the_entrypoint_script() -> None:
    final = DOCKERFILE.rsplit("\nFROM ", 1)[1]
    (entrypoint,) = re.findall(r"^ENTRYPOINT (.+)$", final, re.M)
    assert json.loads(entrypoint) == ["tini", "--", "/opt/app/bin/entrypoint"]
    assert "COPY --chmod=0755 docker/entrypoint.sh /opt/app/bin/entrypoint" in DOCKERFILE


def test_the_gcs_connector_comes_from_maven_central() -> None:
    (version,) = re.findall(r"^ARG GCS_CONNECTOR_VERSION=(\S+)$", DOCKERFILE, re.M)
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    assert ("-Dartifact=com.google.cloud.bigdataoss:gcs-connector:"
            "${GCS_CONNECTOR_VERSION}:jar:shaded") in DOCKERFILE
    assert "-DoutputDirectory=/opt/app/jars" in DOCKERFILE


def fake_program(folder: Path, name: str) -> None:
    """A stand-in for spark-submit or java that prints its arguments as JSON."""
    path = folder / name
    path.write_text(f"#!{sys.executable}\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    path.chmod(0o755)


def entrypoint(args: list[str], env: dict[str, str], tmp_path: Path) -> list[str]:
    fake_program(tmp_path, "spark-submit")
    fake_program(tmp_path, "java")
    result = subprocess.run([str(ENTRYPOINT), *args], capture_output=True, text=True,
                            env={"PATH": f"{tmp_path}:/usr/bin:/bin", **env},
                            timeout=60, check=True)
    return json.loads(result.stdout)


def test_other_programs_are_executed_in_place() -> None:
    # exec: the program gets the script's pid, so tini's SIGTERM reaches it.
    process = subprocess.Popen([str(ENTRYPOINT), "sh", "-c", "echo $$"],
                               stdout=subprocess.PIPE, text=True)
    out, _ = process.communicate(timeout=60)
    assert int(out) == process.pid
    assert subprocess.run([str(ENTRYPOINT)], capture_output=True, timeout=60).returncode == 2


def test_spark_driver_pods_run_spark_submit_in_client_mode(tmp_path: Path) -> None:
    args = ["driver", "--properties-file", "/opt/spark/conf/spark.properties",
            "--class", "org.apache.spark.deploy.PythonRunner",
            "local:///opt/app/jobs/stream_processor.py"]
    assert entrypoint(args, {"SPARK_DRIVER_BIND_ADDRESS": "10.20.0.7"}, tmp_path) == [
        "--conf", "spark.driver.bindAddress=10.20.0.7",
        "--conf", "spark.executorEnv.SPARK_DRIVER_POD_IP=10.20.0.7",
        "--deploy-mode", "client", *args[1:]]


def test_spark_executor_pods_run_the_executor_backend(tmp_path: Path) -> None:
    env = {"SPARK_HOME": "/opt/spark-home", "SPARK_EXECUTOR_MEMORY": "2g",
           "SPARK_DRIVER_URL": "spark://CoarseGrainedScheduler@driver-svc:7078",
           "SPARK_EXECUTOR_ID": "3", "SPARK_EXECUTOR_CORES": "1",
           "SPARK_APPLICATION_ID": "spark-abc", "SPARK_EXECUTOR_POD_IP": "10.20.0.9",
           "SPARK_RESOURCE_PROFILE_ID": "0", "SPARK_EXECUTOR_POD_NAME": "stream-exec-3",
           "SPARK_EXECUTOR_EXTRA_CLASSPATH": "/opt/app/jars/*",
           # Out of order and past 9, with spaces kept inside one option.
           "SPARK_JAVA_OPT_10": "-Dk=ten", "SPARK_JAVA_OPT_0": "-Duser.timezone=UTC",
           "SPARK_JAVA_OPT_2": "-Dname=a b", "SPARK_JAVA_OPT_1": "-Djava.io.tmpdir=/tmp"}
    assert entrypoint(["executor"], env, tmp_path) == [
        "-Duser.timezone=UTC", "-Djava.io.tmpdir=/tmp", "-Dname=a b", "-Dk=ten",
        "-Xms2g", "-Xmx2g",
        "-cp", "/opt/spark-home/jars/*:/opt/app/jars/*:/opt/app/jars/*",
        "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend",
        "--driver-url", "spark://CoarseGrainedScheduler@driver-svc:7078",
        "--executor-id", "3", "--cores", "1", "--app-id", "spark-abc",
        "--hostname", "10.20.0.9", "--resourceProfileId", "0", "--podName", "stream-exec-3"]
