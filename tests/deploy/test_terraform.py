"""Terraform: parseable, pinned, typed and described, and no secret value in the state."""

from __future__ import annotations

import re
from datetime import datetime
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


# ---------------------------------------------------------------- maintenance window

WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


def window_hours_in_worst_32_days(start: str, end: str, recurrence: str) -> float:
    """Fewest maintenance hours any 32 consecutive days get from a daily or weekly
    recurring window (counted day by day, whatever day the 32 days start on)."""
    rule = dict(part.split("=", 1) for part in recurrence.split(";"))
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    length = (datetime.strptime(end, fmt) - datetime.strptime(start, fmt)).total_seconds()
    if rule["FREQ"] == "DAILY":
        days = set(WEEKDAYS)
    elif rule["FREQ"] == "WEEKLY":
        days = set(rule.get("BYDAY", WEEKDAYS[datetime.strptime(start, fmt).weekday()])
                   .split(","))
    else:
        raise ValueError(f"unsupported recurrence {recurrence}")
    return min(sum(length for day in range(first, first + 32) if WEEKDAYS[day % 7] in days)
               for first in range(7)) / 3600


def test_maintenance_window_counter() -> None:
    # The counter itself, on cases worked out by hand.
    sat = "2026-01-03T01:00:00Z"
    assert window_hours_in_worst_32_days(sat, "2026-01-03T05:00:00Z",
                                         "FREQ=WEEKLY;BYDAY=SA,SU") == 32
    assert window_hours_in_worst_32_days(sat, "2026-01-03T05:00:00Z", "FREQ=DAILY") == 128
    assert window_hours_in_worst_32_days(sat, "2026-01-03T13:00:00Z",
                                         "FREQ=WEEKLY;BYDAY=SA") == 48


def test_maintenance_window_gives_gke_48_hours_in_32_days() -> None:
    (cluster,) = [body for rtype, _, body in resources() if rtype == "google_container_cluster"]
    (policy,) = cluster["maintenance_policy"]
    (window,) = policy["recurring_window"]
    hours = window_hours_in_worst_32_days(window["start_time"], window["end_time"],
                                          window["recurrence"])
    assert hours >= 48, f"GKE refuses a maintenance policy with {hours} h in 32 days"
    # GKE also wants each window to last at least four hours.
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    length = datetime.strptime(window["end_time"], fmt) - datetime.strptime(
        window["start_time"], fmt)
    assert length.total_seconds() >= 4 * 3600


# ---------------------------------------------------------------- API access

def variables() -> dict[str, dict[str, Any]]:
    return {name: body for _, block in blocks("variable") for name, body in block.items()}


def test_someone_can_reach_the_control_plane() -> None:
    # Private nodes and no bastion: the authorised networks are the only way in, so
    # an empty list must not be possible, let alone the default.
    networks = variables()["master_authorized_networks"]
    assert "default" not in networks
    conditions = " ".join(v["condition"] for v in networks["validation"])
    assert "length(var.master_authorized_networks) > 0" in conditions
    assert "Cloud Shell" not in networks["description"], "Cloud Shell is outside the VPC"
    example = hcl2.loads((TERRAFORM / "terraform.tfvars.example").read_text())
    assert example["master_authorized_networks"]
    (cluster,) = [body for rtype, _, body in resources() if rtype == "google_container_cluster"]
    (config,) = cluster["master_authorized_networks_config"]
    assert "cidr_blocks" in str(config)
    (private,) = cluster["private_cluster_config"]
    assert private["enable_private_endpoint"] is False, "the networks reach the public endpoint"


# ---------------------------------------------------------------- checkpoints on GCS

def resource(rtype: str, name: str) -> dict[str, Any]:
    (body,) = [b for t, n, b in resources() if (t, n) == (rtype, name)]
    return body


def test_checkpoint_bucket_is_private_and_expires_only_old_versions() -> None:
    bucket = resource("google_storage_bucket", "checkpoints")
    assert bucket["uniform_bucket_level_access"] is True
    assert bucket["public_access_prevention"] == "enforced"
    assert bucket["name"] == "${var.project_id}-${local.name}-checkpoints"
    rules = bucket["lifecycle_rule"]
    assert rules, "no lifecycle rule"
    for rule in rules:
        (action,) = rule["action"]
        (condition,) = rule["condition"]
        if action["type"] == "Delete":
            # A live checkpoint file may be as old as the query: never delete by age.
            assert condition.get("with_state") == "ARCHIVED", rule
            assert "days_since_noncurrent_time" in condition or "num_newer_versions" in condition
    (versioning,) = bucket["versioning"]
    assert versioning["enabled"] is True


def test_workload_identity_binds_exactly_the_spark_service_accounts() -> None:
    binding = resource("google_service_account_iam_member", "spark_workload_identity")
    assert binding["role"] == "roles/iam.workloadIdentityUser"
    assert binding["member"] == (
        "serviceAccount:${var.project_id}.svc.id.goog[market/${each.value}]")
    assert "spark-driver" in binding["for_each"] and "spark-executor" in binding["for_each"]
    access = resource("google_storage_bucket_iam_member", "spark_checkpoints")
    assert access["role"] == "roles/storage.objectUser"
    assert access["bucket"] == "${google_storage_bucket.checkpoints.name}"
    # The Kubernetes side names the same account: market-<environment>-spark.
    account = resource("google_service_account", "spark")
    assert account["account_id"] == "${local.name}-spark"
    for overlay, env in (("base/stream-processor", "dev"), ("overlays/prod", "prod")):
        text = "\n".join(p.read_text() for p in (ROOT / "k8s" / overlay).glob("*.yaml"))
        assert f"market-{env}-spark@PROJECT_ID.iam.gserviceaccount.com" in text
