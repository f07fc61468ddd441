"""The deploy playbook: secrets never logged, and the names it uses agree with the
manifests (Kubernetes Secrets) and with Terraform (Secret Manager secrets)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import hcl2
import yaml
from deploy_files import ANSIBLE, CRDS, TERRAFORM, is_patch, manifests, pod_spec, spark_pod_specs

SECRET_VARS = re.compile(r"secrets_(values|versions|plain)")


def tasks() -> list[tuple[Path, dict[str, Any]]]:
    found: list[tuple[Path, dict[str, Any]]] = []
    for path in sorted(ANSIBLE.rglob("tasks/*.yml")):
        found.extend((path, task) for task in yaml.safe_load(path.read_text()))
    for play in yaml.safe_load((ANSIBLE / "site.yml").read_text()):
        found.extend((ANSIBLE / "site.yml", task)
                     for task in play.get("pre_tasks", []) + play.get("tasks", []))
    return found


def secrets_defaults() -> list[dict[str, Any]]:
    defaults = yaml.safe_load((ANSIBLE / "roles" / "secrets" / "defaults" / "main.yml")
                              .read_text())
    return defaults["secrets_kubernetes"]


def test_playbook_layout() -> None:
    (play,) = yaml.safe_load((ANSIBLE / "site.yml").read_text())
    roles = [r["role"] if isinstance(r, dict) else r for r in play["roles"]]
    # Secrets before the workloads; the operator (and its CRD) before a SparkApplication.
    assert roles == ["secrets", "spark_operator", "monitoring", "deploy"]
    assert (ANSIBLE / "inventory.example.yml").is_file()
    assert (ANSIBLE / "requirements.yml").is_file()


def test_every_task_is_named_and_uses_fully_qualified_modules() -> None:
    for path, task in tasks():
        assert task.get("name"), f"{path}: unnamed task"
        modules = [key for key in task if "." in key]
        assert len(modules) == 1, f"{path}: {task['name']} has no FQCN module"


def test_tasks_that_touch_secret_values_are_not_logged() -> None:
    touching = 0
    for path, task in tasks():
        text = yaml.safe_dump(task)
        if SECRET_VARS.search(text) and "assert" not in str(list(task)):
            touching += 1
            assert task.get("no_log") is True, f"{path}: {task['name']} may log secrets"
    assert touching >= 3


def test_secrets_are_not_applied_client_side() -> None:
    # Client-side apply copies the plain values into an annotation.
    for _, task in tasks():
        module = task.get("kubernetes.core.k8s", {})
        definition = module.get("definition")
        if isinstance(definition, dict) and definition.get("kind") == "Secret":
            assert not module.get("apply"), task["name"]
            assert "stringData" not in definition


def test_kubernetes_secret_names_match_the_manifests() -> None:
    referenced: dict[str, set[str]] = {}
    for manifest in manifests():
        if is_patch(manifest.path):
            continue
        specs = [pod_spec(manifest), *spark_pod_specs(manifest.doc).values()]
        for container in [c for spec in specs if spec for c in spec.get("containers", [])]:
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    referenced.setdefault(ref["name"], set()).add(ref["key"])
    created = {s["name"]: set(s["literals"]) | set(s["from_secret_manager"])
               for s in secrets_defaults()}
    assert created == referenced


def test_secret_manager_ids_match_terraform() -> None:
    text = (TERRAFORM / "secrets.tf").read_text()
    (locals_block,) = hcl2.loads(text)["locals"]
    in_terraform = set(locals_block["secrets"].removeprefix("${toset(").removesuffix(")}")
                       .strip("[]").replace('"', "").replace(" ", "").split(","))
    used = {name for s in secrets_defaults() for name in s["from_secret_manager"].values()}
    assert used == in_terraform
    # Same naming scheme on both sides: market-<environment>-<name>.
    group_vars = yaml.safe_load((ANSIBLE / "group_vars" / "all.yml").read_text())
    assert group_vars["resource_prefix"] == "market-{{ environment_name }}"
    assert 'name = "market-${var.environment}"' in (TERRAFORM / "services.tf").read_text()


def test_spark_operator_chart_is_pinned_to_the_crd_copy() -> None:
    defaults = yaml.safe_load((ANSIBLE / "roles" / "spark_operator" / "defaults" / "main.yml")
                              .read_text())
    version = defaults["spark_operator_chart_version"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", str(version)), version
    # The CRD the tests validate against comes from the same chart version.
    assert f"version {version}" in (CRDS / "README.md").read_text()
    (install,) = [task for path, task in tasks()
                  if "kubernetes.core.helm" in task and "spark_operator" in path.parts]
    helm = install["kubernetes.core.helm"]
    assert helm["chart_version"] == "{{ spark_operator_chart_version }}"
    assert helm["chart_repo_url"] == "{{ spark_operator_chart_repo_url }}"
    assert defaults["spark_operator_values"]["spark"]["jobNamespaces"] == ["{{ k8s_namespace }}"]
    # The manifests bring the driver's least-privilege account; the chart adds none.
    assert defaults["spark_operator_values"]["spark"]["rbac"]["create"] is False


def test_deploy_removes_the_single_pod_release_and_fills_in_the_project() -> None:
    defaults = yaml.safe_load((ANSIBLE / "roles" / "deploy" / "defaults" / "main.yml")
                              .read_text())
    removed = {(item["kind"], item["name"]) for item in defaults["deploy_removed"]}
    assert removed == {("Deployment", "stream-processor"),
                       ("PersistentVolumeClaim", "stream-checkpoints")}
    text = (ANSIBLE / "roles" / "deploy" / "tasks" / "main.yml").read_text()
    assert "replace(deploy_project_placeholder, gcp_project_id)" in text
    assert "deployment/stream-processor" not in text


def test_monitoring_chart_is_pinned_to_the_crd_copy_and_installed_for_prod_only() -> None:
    defaults = yaml.safe_load((ANSIBLE / "roles" / "monitoring" / "defaults" / "main.yml")
                              .read_text())
    version = defaults["monitoring_chart_version"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", str(version)), version
    assert f"kube-prometheus-stack {version}" in (CRDS / "README.md").read_text()
    role_tasks = [task for path, task in tasks() if "monitoring" in path.parts]
    (install,) = [task for task in role_tasks if "kubernetes.core.helm" in task]
    helm = install["kubernetes.core.helm"]
    assert helm["chart_version"] == "{{ monitoring_chart_version }}"
    assert helm["name"] == "{{ monitoring_release }}"
    # The PodMonitors carry release: <release>; the policies admit namespace <namespace>.
    assert defaults["monitoring_release"] == "kube-prometheus-stack"
    assert defaults["monitoring_namespace"] == "monitoring"
    # Only the prod overlay includes k8s/components/monitoring.
    assert defaults["monitoring_enabled"] == "{{ environment_name == 'prod' }}"
    assert all(task.get("when") == "monitoring_enabled | bool" for task in role_tasks)
    # The pipeline brings its own Grafana.
    assert defaults["monitoring_values"]["grafana"]["enabled"] is False
