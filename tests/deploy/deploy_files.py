"""Shared loaders for the deployment checks: Kubernetes manifests, dashboards, Terraform.

Everything here reads files only; no cluster, no Docker, no terraform binary.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
GRAFANA = ROOT / "grafana"
TERRAFORM = ROOT / "terraform"
ANSIBLE = ROOT / "ansible"
CRDS = K8S / "crds"
APP_IMAGE = "market-pipeline"

DATASOURCE_UID = "cassandra-market"
DATASOURCE_TYPE = "hadesarchitect-cassandra-datasource"
KUSTOMIZATION_KINDS = {"Kustomization", "Component"}


@dataclass(frozen=True)
class Manifest:
    path: Path
    doc: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.doc.get("kind", ""))

    @property
    def name(self) -> str:
        return str(self.doc.get("metadata", {}).get("name", ""))

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)} ({self.kind} {self.name})"


def load_yaml_docs(path: Path) -> list[Any]:
    with path.open() as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc is not None]


def kustomization_files() -> list[Path]:
    return sorted([*K8S.rglob("kustomization.yaml"), GRAFANA / "kustomization.yaml"])


def generator_sources() -> set[Path]:
    """Files that kustomize turns into ConfigMaps/Secrets: data, not manifests."""
    sources: set[Path] = set()
    for kustomization in kustomization_files():
        spec = load_yaml_docs(kustomization)[0]
        for generator in [*spec.get("configMapGenerator", []), *spec.get("secretGenerator", [])]:
            for entry in generator.get("files", []):
                sources.add((kustomization.parent / entry.split("=", 1)[-1]).resolve())
    return sources


def manifest_paths() -> list[Path]:
    """Resources and patches; not kustomize's own files, generator data or the CRD copies."""
    data = generator_sources()
    return sorted(
        path for path in [*K8S.rglob("*.yaml"), *K8S.rglob("*.yml")]
        if path.name not in ("kustomization.yaml", "kustomizeconfig.yaml")
        and path.resolve() not in data and not path.is_relative_to(CRDS)
    )


def manifests() -> list[Manifest]:
    found: list[Manifest] = []
    for path in manifest_paths():
        found.extend(Manifest(path, doc) for doc in load_yaml_docs(path))
    return found


def pod_spec(manifest: Manifest) -> dict[str, Any] | None:
    """The pod template of a workload (None for other kinds and for patches without one)."""
    spec = manifest.doc.get("spec", {})
    if manifest.kind == "CronJob":
        spec = spec.get("jobTemplate", {}).get("spec", {})
    template = spec.get("template", {})
    return template.get("spec") if isinstance(template, dict) else None


def spark_pod_specs(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A SparkApplication's driver and executor as pod specs with one container each,
    the way the operator builds the pods (only the fields the checks look at)."""
    if doc.get("kind") != "SparkApplication":
        return {}
    spec = doc.get("spec", {})
    volumes = spec.get("volumes", [])
    found: dict[str, dict[str, Any]] = {}
    for role in ("driver", "executor"):
        part = spec.get(role, {})
        container = {
            "name": f"spark-{role}",
            "image": part.get("image", spec.get("image", "")),
            "env": part.get("env", []),
            "securityContext": part.get("securityContext", {}),
            "volumeMounts": part.get("volumeMounts", []),
        }
        found[role] = {
            "securityContext": part.get("podSecurityContext", {}),
            "hostNetwork": part.get("hostNetwork", False),
            "serviceAccountName": part.get("serviceAccount"),
            "containers": [container],
            "initContainers": part.get("initContainers", []),
            "volumes": volumes,
        }
    return found


def pod_specs(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every pod template of a rendered resource, by a short label."""
    if doc.get("kind") == "SparkApplication":
        return spark_pod_specs(doc)
    spec = doc.get("spec", {})
    if doc.get("kind") == "CronJob":
        spec = spec.get("jobTemplate", {}).get("spec", {})
    template = spec.get("template")
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        return {"pod": template["spec"]}
    return {}


def is_patch(path: Path) -> bool:
    """Overlay files are strategic-merge patches: partial by design."""
    return "overlays" in path.relative_to(K8S).parts


def dashboards() -> list[tuple[Path, dict[str, Any]]]:
    return [(path, json.loads(path.read_text()))
            for path in sorted((GRAFANA / "dashboards").glob("*.json"))]


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # collapsed rows nest their panels


def targets() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(dashboard file name, panel, target) for every query of every dashboard."""
    return [(path.name, panel, target)
            for path, dashboard in dashboards()
            for panel in panels(dashboard)
            for target in panel.get("targets", [])]


def target_id(item: tuple[str, dict[str, Any], dict[str, Any]]) -> str:
    """dashboard:title (type):refId; the type tells a stat from a table of one title."""
    name, panel, target = item
    return f"{name}:{panel.get('title')} ({panel.get('type')}):{target.get('refId')}"
