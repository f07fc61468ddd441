"""Resources of the rendered overlays against the nodes Terraform creates: GKE's own
system pods keep room on the busiest node, and the Cassandra JVM fits its limit."""

from __future__ import annotations

import re
from typing import Any

import hcl2
import pytest
from deploy_files import K8S, TERRAFORM
from deploy_tools import kustomize_build

GIB = 1024 ** 3
# vCPU and memory (GiB) of the machine types the Terraform defaults may name.
MACHINES = {"e2-standard-2": (2, 8), "e2-standard-4": (4, 16), "e2-standard-8": (8, 32),
            "e2-standard-16": (16, 64)}
# Left for GKE's system pods (kube-dns, Dataplane V2, logging, metrics, CSI...) on
# the busiest node, beyond GKE's own reservation.
SYSTEM_CPU = 1.0
SYSTEM_MEMORY = 2 * GIB


def cpu(value: Any) -> float:
    text = str(value)
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


def memory(value: Any) -> float:
    units = {"Ki": 1024, "Mi": 1024 ** 2, "Gi": GIB, "k": 1000, "M": 1000 ** 2,
             "G": 1000 ** 3, "m": 1024 ** 2, "g": GIB}
    text = str(value)
    number, unit = re.fullmatch(r"([\d.]+)([A-Za-z]*)", text).groups()  # type: ignore[union-attr]
    return float(number) * units.get(unit, 1)


def allocatable(machine: str) -> tuple[float, float]:
    """What GKE leaves to pods on a node (its documented reservations)."""
    cores, gib = MACHINES[machine]
    cpu_reserved = 0.06 + (0.01 if cores > 1 else 0) + 0.005 * min(max(cores - 2, 0), 2) \
        + 0.0025 * max(cores - 4, 0)
    mem_reserved = (0.25 * min(gib, 4) + 0.2 * min(max(gib - 4, 0), 4)
                    + 0.1 * min(max(gib - 8, 0), 8) + 0.06 * min(max(gib - 16, 0), 112)) * GIB
    eviction = 100 * 1024 ** 2
    return cores - cpu_reserved, gib * GIB - mem_reserved - eviction


def requests_on_busiest_node(docs: list[dict[str, Any]]) -> tuple[float, float]:
    """StatefulSets kept one per node by required anti-affinity count once; everything
    else (Deployments, Jobs, the Spark driver and all executors) may land together."""
    total_cpu = total_memory = 0.0
    for doc in docs:
        spec = doc.get("spec", {})
        if doc["kind"] == "SparkApplication":
            for part in ("driver", "executor"):
                side = spec[part]
                count = side.get("instances", 1)
                total_cpu += count * cpu(side.get("coreRequest", side.get("cores", 1)))
                overhead = memory(side.get("memoryOverhead", "384m"))
                total_memory += count * (memory(side["memory"]) + overhead)
            continue
        if doc["kind"] not in ("Deployment", "StatefulSet", "Job"):
            continue
        pod = spec["template"]["spec"]
        spread = doc["kind"] == "StatefulSet" and pod.get("affinity", {}).get(
            "podAntiAffinity", {}).get("requiredDuringSchedulingIgnoredDuringExecution")
        count = 1 if spread else spec.get("replicas", 1)
        for container in pod["containers"]:
            requests = container["resources"]["requests"]
            total_cpu += count * cpu(requests["cpu"])
            total_memory += count * memory(requests["memory"])
    return total_cpu, total_memory


def machine_type(environment: str) -> str:
    text = (TERRAFORM / "variables.tf").read_text()
    (variable,) = [v for block in hcl2.loads(text)["variable"] for name, v in block.items()
                   if name == "node_machine_types"]
    return variable["default"][environment]


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_busiest_node_keeps_room_for_gke_system_pods(environment: str) -> None:
    docs = kustomize_build(K8S / "overlays" / environment)
    machine = machine_type(environment)
    node_cpu, node_memory = allocatable(machine)
    used_cpu, used_memory = requests_on_busiest_node(docs)
    assert node_cpu - used_cpu >= SYSTEM_CPU, (
        f"{environment} on {machine}: {node_cpu - used_cpu:.2f} vCPU left for system pods")
    assert node_memory - used_memory >= SYSTEM_MEMORY, (
        f"{environment} on {machine}: {(node_memory - used_memory) / GIB:.1f} GiB left")


def test_allocatable_matches_gke_reference_values() -> None:
    # Worked out by hand from GKE's reservation table.
    cores, mem = allocatable("e2-standard-4")
    assert round(cores, 2) == 3.92 and round(mem / GIB, 2) == 13.3
    cores, mem = allocatable("e2-standard-8")
    assert round(cores, 2) == 7.91 and round(mem / GIB, 2) == 28.34


def test_old_prod_sizing_is_refused() -> None:
    # Three e2-standard-4 for prod left about 0.4 vCPU: the check must say no.
    docs = kustomize_build(K8S / "overlays" / "prod")
    node_cpu, _ = allocatable("e2-standard-4")
    used_cpu, _ = requests_on_busiest_node(docs)
    assert node_cpu - used_cpu < SYSTEM_CPU


def jvm_flag(options: str, flag: str) -> float:
    match = re.search(rf"-XX:{flag}=(\S+)", options)
    assert match, f"-XX:{flag} is not set: the JVM sizes it from the heap"
    return memory(match.group(1))


@pytest.mark.parametrize("environment", ["base", "prod"])
def test_cassandra_limit_holds_heap_direct_memory_and_metaspace(environment: str) -> None:
    target = K8S / "base" if environment == "base" else K8S / "overlays" / environment
    docs = kustomize_build(target)
    (cassandra,) = [d for d in docs if d["kind"] == "StatefulSet"
                    and d["metadata"]["name"] == "cassandra"]
    (container,) = cassandra["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value", "") for e in container["env"]}
    heap = memory(env["MAX_HEAP_SIZE"])
    direct = jvm_flag(env["JVM_EXTRA_OPTS"], "MaxDirectMemorySize")
    metaspace = jvm_flag(env["JVM_EXTRA_OPTS"], "MaxMetaspaceSize")
    limit = memory(container["resources"]["limits"]["memory"])
    # Thread stacks, code cache, GC structures and Cassandra's off-heap bloom
    # filters and compression metadata need about a GiB on top.
    assert limit >= heap + direct + metaspace + GIB, (
        f"{environment}: limit {limit / GIB} GiB for heap {heap / GIB} + direct "
        f"{direct / GIB} + metaspace {metaspace / GIB} GiB")
    assert "-Dcassandra.config=file:///etc/cassandra-k8s/cassandra.yaml" in env["JVM_EXTRA_OPTS"]
