"""The Kubernetes manifests are pinned, sized, probed, hardened and free of secrets.

Checks the files as written (base resources and overlay patches); rendering needs the
kustomize binary, which the deploy playbook uses and these tests do not.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_files import (
    K8S,
    ROOT,
    Manifest,
    generator_sources,
    is_patch,
    kustomization_files,
    load_yaml_docs,
    manifest_paths,
    manifests,
    pod_spec,
)

MANIFESTS = manifests()
WORKLOADS = [m for m in MANIFESTS
             if not is_patch(m.path) and pod_spec(m) is not None]
LONG_RUNNING = {"Deployment", "StatefulSet", "DaemonSet"}
SECRET_NAME = re.compile(r"(?i)(password|passwd|secret|token|api[_-]?key|credential)")


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def test_one_resource_per_file() -> None:
    for path in manifest_paths():
        docs = load_yaml_docs(path)
        assert len(docs) == 1, f"{path.relative_to(ROOT)} holds {len(docs)} resources"
        assert {"apiVersion", "kind", "metadata"} <= docs[0].keys(), path


def test_no_secret_resources_are_committed() -> None:
    for manifest in MANIFESTS:
        assert manifest.kind != "Secret", f"{manifest}: secrets are created at deploy time"
    for kustomization in kustomization_files():
        assert "secretGenerator" not in load_yaml_docs(kustomization)[0], kustomization


def test_everything_lives_in_namespace_market() -> None:
    base = load_yaml_docs(K8S / "base" / "kustomization.yaml")[0]
    assert base["namespace"] == "market"
    for manifest in MANIFESTS:
        assert manifest.doc["metadata"].get("namespace", "market") == "market", manifest


@pytest.mark.parametrize("kustomization", kustomization_files(),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_kustomization_references_exist(kustomization: Path) -> None:
    spec = load_yaml_docs(kustomization)[0]
    folder = kustomization.parent
    for entry in spec.get("resources", []) + spec.get("components", []):
        target = folder / entry
        assert target.is_file() or (target / "kustomization.yaml").is_file(), (
            f"{kustomization.relative_to(ROOT)}: missing resource {entry}")
    for patch in spec.get("patches", []):
        if "path" in patch:
            assert (folder / patch["path"]).is_file(), patch
    for generator in spec.get("configMapGenerator", []):
        for entry in generator.get("files", []):
            assert (folder / entry.split("=", 1)[-1]).is_file(), entry


def test_every_manifest_is_listed_in_a_kustomization() -> None:
    listed: set[Path] = set()
    for kustomization in kustomization_files():
        spec = load_yaml_docs(kustomization)[0]
        entries = spec.get("resources", []) + [p["path"] for p in spec.get("patches", [])
                                               if "path" in p]
        listed.update((kustomization.parent / e).resolve() for e in entries)
    for path in manifest_paths():
        assert path.resolve() in listed, f"{path.relative_to(ROOT)} is not in any kustomization"


def test_overlays_exist_and_set_the_application_image() -> None:
    # Kustomize applies the base's images transformer first: a base entry renaming
    # market-pipeline would leave the overlays' entries nothing to match.
    base = load_yaml_docs(K8S / "base" / "kustomization.yaml")[0]
    assert "images" not in base
    for overlay in ("dev", "prod"):
        spec = load_yaml_docs(K8S / "overlays" / overlay / "kustomization.yaml")[0]
        assert "../../base" in spec["resources"]
        images = {image["name"]: image for image in spec["images"]}
        app = images["market-pipeline"]
        assert app.get("digest") or app["newTag"] not in ("", "latest")


@pytest.mark.parametrize("manifest", WORKLOADS, ids=str)
def test_images_are_pinned(manifest: Manifest) -> None:
    for container in containers(pod_spec(manifest) or {}):
        image = container["image"]
        name, _, tag = image.rpartition(":") if "@" not in image else (image, "", "digest")
        assert name and tag and tag != "latest" and "/" not in tag, (
            f"{manifest}: image {image} is not pinned to a tag")


@pytest.mark.parametrize("manifest", WORKLOADS, ids=str)
def test_resources_requests_and_limits(manifest: Manifest) -> None:
    for container in containers(pod_spec(manifest) or {}):
        resources = container.get("resources", {})
        for section in ("requests", "limits"):
            assert {"cpu", "memory"} <= resources.get(section, {}).keys(), (
                f"{manifest}: container {container['name']} lacks {section}")
        # Memory is not compressible: a limit above the request only postpones OOM kills.
        assert resources["limits"]["memory"] == resources["requests"]["memory"] or (
            manifest.kind not in LONG_RUNNING), manifest


@pytest.mark.parametrize("manifest", [m for m in WORKLOADS if m.kind in LONG_RUNNING], ids=str)
def test_long_running_containers_have_probes(manifest: Manifest) -> None:
    for container in (pod_spec(manifest) or {}).get("containers", []):
        for probe in ("livenessProbe", "readinessProbe"):
            assert probe in container, f"{manifest}: {container['name']} has no {probe}"


@pytest.mark.parametrize("manifest", WORKLOADS, ids=str)
def test_security_context_is_hardened(manifest: Manifest) -> None:
    spec = pod_spec(manifest) or {}
    pod = spec.get("securityContext", {})
    assert pod.get("runAsNonRoot") is True, manifest
    assert isinstance(pod.get("runAsUser"), int) and pod["runAsUser"] > 0, manifest
    assert pod.get("seccompProfile", {}).get("type") == "RuntimeDefault", manifest
    assert spec.get("automountServiceAccountToken") is False, manifest
    assert not spec.get("hostNetwork") and not spec.get("hostPID"), manifest
    for container in containers(spec):
        context = container.get("securityContext", {})
        assert context.get("allowPrivilegeEscalation") is False, manifest
        assert context.get("readOnlyRootFilesystem") is True, manifest
        assert context.get("capabilities", {}).get("drop") == ["ALL"], manifest
        assert not context.get("privileged"), manifest
        # A read-only root needs somewhere to write temporary files.
        assert any(m["mountPath"] == "/tmp" for m in container.get("volumeMounts", [])), (
            f"{manifest}: {container['name']} has no writable /tmp")


def test_volumes_are_bounded() -> None:
    for manifest in WORKLOADS:
        for volume in (pod_spec(manifest) or {}).get("volumes", []):
            assert "hostPath" not in volume, manifest
            if "emptyDir" in volume:
                assert volume["emptyDir"].get("sizeLimit"), f"{manifest}: {volume['name']}"


def env_vars(manifest: Manifest) -> list[dict[str, Any]]:
    return [env for container in containers(pod_spec(manifest) or {})
            for env in container.get("env", [])]


@pytest.mark.parametrize("manifest", [m for m in MANIFESTS if pod_spec(m) is not None], ids=str)
def test_secrets_only_come_from_secret_refs(manifest: Manifest) -> None:
    for env in env_vars(manifest):
        if SECRET_NAME.search(env["name"]) and not env.get("$patch"):
            assert "value" not in env, f"{manifest}: {env['name']} has a literal value"
            assert "secretKeyRef" in env.get("valueFrom", {}), (
                f"{manifest}: {env['name']} must come from a Secret")
    # Kubernetes expands $(VAR) in command and args: a secret there is in the process list.
    from_secrets = {e["name"] for e in env_vars(manifest)
                    if "secretKeyRef" in e.get("valueFrom", {})}
    for container in containers(pod_spec(manifest) or {}):
        line = " ".join(map(str, [*container.get("command", []), *container.get("args", [])]))
        for name in from_secrets:
            assert f"$({name})" not in line, f"{manifest}: {name} is passed on the command line"


def test_finnhub_token_reaches_the_producer_as_env_from_a_secret() -> None:
    (producer,) = [m for m in WORKLOADS if m.name == "producer"]
    (token,) = [e for e in env_vars(producer) if e["name"] == "FINNHUB_TOKEN"]
    assert token["valueFrom"]["secretKeyRef"] == {"name": "finnhub", "key": "token"}
    container = (pod_spec(producer) or {})["containers"][0]
    assert "FINNHUB_TOKEN" not in " ".join(container["args"] + container.get("command", []))


def test_no_secret_material_in_the_tree() -> None:
    # Kubernetes Secret data, private keys and long base64 blobs have no place in k8s/.
    suspicious = re.compile(
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----|^\s*(data|stringData):\s*$|[A-Za-z0-9+/]{60,}={0,2}",
        re.M)
    for path in [*manifest_paths(), *generator_sources()]:
        if path.is_relative_to(K8S):
            match = suspicious.search(path.read_text())
            assert match is None, f"{path.relative_to(ROOT)}: {match and match.group(0)}"


def test_stateful_components_are_protected() -> None:
    kinds = {(m.kind, m.name) for m in MANIFESTS if not is_patch(m.path)}
    for name in ("kafka", "cassandra"):
        assert ("StatefulSet", name) in kinds
        assert ("PodDisruptionBudget", name) in kinds
    assert ("NetworkPolicy", "default-deny") in kinds
    statefulsets = [m for m in WORKLOADS if m.kind == "StatefulSet"]
    for statefulset in statefulsets:
        assert statefulset.doc["spec"]["volumeClaimTemplates"], statefulset
    # The stream job's state is its checkpoints on GCS, not a volume of one node.
    assert ("SparkApplication", "stream-processor") in kinds
    assert ("PersistentVolumeClaim", "stream-checkpoints") not in kinds


@pytest.mark.parametrize("manifest", [m for m in MANIFESTS if m.kind == "PodDisruptionBudget"],
                         ids=str)
def test_disruption_budgets_let_unhealthy_pods_go(manifest: Manifest) -> None:
    # Otherwise a crash-looping broker or Cassandra node uses up the budget and
    # blocks every node drain, GKE's upgrades included.
    assert manifest.doc["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow", manifest


def test_grafana_installs_the_pinned_plugin() -> None:
    (grafana,) = [m for m in WORKLOADS if m.name == "grafana"]
    plugins = {e["name"]: e.get("value", "") for e in env_vars(grafana)}
    spec = plugins.get("GF_PLUGINS_PREINSTALL_SYNC") or plugins.get("GF_PLUGINS_PREINSTALL") \
        or plugins.get("GF_INSTALL_PLUGINS", "")
    assert re.fullmatch(r"hadesarchitect-cassandra-datasource@\d+\.\d+\.\d+", spec), spec


def test_grafana_configmaps_come_from_the_grafana_folder() -> None:
    generated = {g["name"] for g in
                 yaml.safe_load((ROOT / "grafana" / "kustomization.yaml").read_text())
                 ["configMapGenerator"]}
    (grafana,) = [m for m in WORKLOADS if m.name == "grafana"]
    mounted = {v["configMap"]["name"] for v in (pod_spec(grafana) or {})["volumes"]
               if "configMap" in v}
    assert mounted == generated
    base = load_yaml_docs(K8S / "base" / "kustomization.yaml")[0]
    assert "../../grafana" in base["resources"]
