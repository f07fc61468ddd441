"""Terraform: parseable, pinned, typed and described, and no secret value in the state."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import hcl2
import pytest
from deploy_files import ROOT, TERRAFORM

FILES = sorted(TERRAFORM.glob("*.tf"))


def parse(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        return hcl2.load(handle)


def blocks(kind: str) -> list[tuple[Path, dict[str, Any]]]:
    return [(path, block) for path in FILES for block in parse(path).get(kind, [])]


def resources() -> list[tuple[str, str, dict[str, Any]]]:
    return [(rtype, name, body)
            for _, block in blocks("resource")
            for rtype, named in block.items()
            for name, body in named.items()]


def test_split_by_concern() -> None:
    names = {path.name for path in FILES}
    assert {"versions.tf", "providers.tf", "variables.tf", "network.tf", "gke.tf", "iam.tf",
            "secrets.tf", "outputs.tf", "backend.tf"} <= names
    assert (TERRAFORM / "terraform.tfvars.example").is_file()


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_parses(path: Path) -> None:
    assert parse(path)


def test_versions_are_pinned() -> None:
    (terraform,) = parse(TERRAFORM / "versions.tf")["terraform"]
    assert re.fullmatch(r">= 1\.\d+\.\d+, < 2\.0\.0", terraform["required_version"])
    providers = {name: spec for block in terraform["required_providers"]
                 for name, spec in block.items()}
    assert providers, "no required_providers"
    for name, spec in providers.items():
        assert re.fullmatch(r"~> \d+\.\d+(\.\d+)?", spec["version"]), (name, spec)
        assert spec["source"].startswith("hashicorp/")


def test_backend_is_gcs_configured_at_init() -> None:
    (terraform,) = parse(TERRAFORM / "backend.tf")["terraform"]
    (backend,) = terraform["backend"]
    # Empty: the bucket comes from -backend-config, so no environment is hard-coded.
    assert backend == {"gcs": {}}


def test_every_variable_is_typed_and_described() -> None:
    variables = {name: body for _, block in blocks("variable") for name, body in block.items()}
    assert variables
    for name, body in variables.items():
        assert body.get("type"), f"variable {name} has no type"
        assert len(body.get("description", "")) > 10, f"variable {name} has no description"


def test_no_secret_has_a_default() -> None:
    secretish = re.compile(r"(?i)password|secret|token|key")
    for _, block in blocks("variable"):
        for name, body in block.items():
            if secretish.search(name):
                assert "default" not in body, f"variable {name} must not have a default"
                assert body.get("sensitive") is True, f"variable {name} must be sensitive"


def test_secrets_are_containers_only() -> None:
    types = {rtype for rtype, _, _ in resources()}
    assert "google_secret_manager_secret" in types
    assert "google_secret_manager_secret_version" not in types
    text = "\n".join(path.read_text() for path in FILES)
    assert "secret_data" not in text


def test_private_cluster_with_workload_identity() -> None:
    (cluster,) = [body for rtype, _, body in resources()
                  if rtype == "google_container_cluster"]
    (private,) = cluster["private_cluster_config"]
    assert private["enable_private_nodes"] is True
    assert cluster["workload_identity_config"]
    assert cluster["remove_default_node_pool"] is True
    (pool,) = [body for rtype, _, body in resources()
               if rtype == "google_container_node_pool"]
    (node,) = pool["node_config"]
    (metadata,) = node["workload_metadata_config"]
    assert metadata["mode"] == "GKE_METADATA"
    assert "google_service_account.nodes" in node["service_account"]


def test_no_primitive_roles() -> None:
    for rtype, name, body in resources():
        if "iam" in rtype:
            assert body["role"] not in ("roles/owner", "roles/editor", "roles/viewer"), name
            assert "allUsers" not in str(body.get("member", "")), name


def test_example_tfvars_sets_only_declared_variables() -> None:
    declared = {name for _, block in blocks("variable") for name in block}
    example = hcl2.loads((TERRAFORM / "terraform.tfvars.example").read_text())
    assert set(example) <= declared
    assert not any(re.search(r"(?i)password|secret|token", name) for name in example)


def test_state_and_tfvars_are_git_ignored() -> None:
    ignored = (ROOT / ".gitignore").read_text().split()
    assert {"*.tfstate", "*.tfvars", ".terraform/"} <= set(ignored)
