"""The application image: pinned bases, Maven-resolved jars, non-root, lean context."""

from __future__ import annotations

import re

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


def test_context_is_an_allow_list_of_what_the_image_copies() -> None:
    assert DOCKERIGNORE[0] == "*", "start from nothing, then allow"
    allowed = {entry[1:].rstrip("/") for entry in DOCKERIGNORE if entry.startswith("!")}
    copied = set(re.findall(r"^COPY (?!--from)(\S+)", DOCKERFILE, re.M))
    for source in copied:
        top = source.split("/")[0]
        assert top in allowed, f"COPY {source} is excluded by .dockerignore"
        assert (ROOT / source).exists(), source
    assert not {".venv", ".work", "tests", ".git", "terraform"} & allowed


def test_manifests_run_entry_points_that_exist() -> None:
    text = "\n".join(p.read_text() for p in (K8S / "base").rglob("*.yaml"))
    for script in re.findall(r"/opt/app/(\S+\.py)", text):
        assert (ROOT / script).is_file(), script
    for module in re.findall(r'\["python", "-m", "(\w+)"', text):
        assert (ROOT / module / "__main__.py").is_file(), module
