"""The deploy playbook: secrets never logged, and the names it uses agree with the
manifests (Kubernetes Secrets) and with Terraform (Secret Manager secrets)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import hcl2
import yaml
from deploy_files import ANSIBLE, TERRAFORM, is_patch, manifests, pod_spec

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
    assert roles == ["secrets", "deploy"], "secrets must exist before the workloads start"
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
        if is_patch(manifest.path) or pod_spec(manifest) is None:
            continue
        for container in (pod_spec(manifest) or {}).get("containers", []):
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
