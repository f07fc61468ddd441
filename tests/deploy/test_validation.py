"""Offline validation of the deployment files with the tools a platform engineer uses:
kustomize, strict schemas for Kubernetes 1.30 to 1.37 (the SparkApplication and the
PodMonitors against their CRDs), Pod Security "restricted", ansible-lint, hadolint and
checkov. Each check is also run on a deliberately broken input, which it must refuse."""

from __future__ import annotations

import copy
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_files import ANSIBLE, APP_IMAGE, CRDS, K8S, ROOT, TERRAFORM, pod_specs
from deploy_tools import KUBERNETES_VERSIONS, TOOLS_PYTHON, kustomize_build, run, tool
from pod_security import restricted_violations

TARGETS = {"base": K8S / "base", "dev": K8S / "overlays" / "dev",
           "prod": K8S / "overlays" / "prod"}
SCHEMA_SCRIPT = Path(__file__).with_name("manifest_schema.py")
CHECKOV_CONFIG = Path(__file__).with_name("checkov.yaml")


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {name: kustomize_build(path) for name, path in TARGETS.items()}


def schema_errors(docs: list[dict[str, Any]],
                  versions: tuple[str, ...] = KUBERNETES_VERSIONS) -> list[dict[str, str]]:
    tool("kubernetes-validate")
    result = run([TOOLS_PYTHON, SCHEMA_SCRIPT, CRDS, *versions], stdin=yaml.safe_dump_all(docs))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def pod_security(docs: list[dict[str, Any]]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for doc in docs:
        for role, spec in pod_specs(doc).items():
            name = f"{doc['kind']}/{doc['metadata']['name']}/{role}"
            found[name] = restricted_violations(spec)
    return found


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


# ---------------------------------------------------------------- kustomize and schemas

@pytest.mark.parametrize("name", TARGETS)
def test_renders_and_is_valid_for_every_kubernetes_version(
        name: str, rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered[name]
    assert len(docs) > 30
    assert schema_errors(docs) == []


def test_schema_validation_refuses_broken_resources(
        rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = copy.deepcopy(rendered["prod"])
    (app,) = by_kind(docs, "SparkApplication")
    app["spec"]["executor"]["replicas"] = 3          # not a SparkApplication field
    app["spec"]["restartPolicy"]["type"] = "Sometimes"  # not in the enum
    (kafka,) = [d for d in docs if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "kafka"]
    kafka["spec"]["template"]["spec"]["containers"][0]["resource"] = {}  # typo of resources
    (pdb, *_) = by_kind(docs, "PodDisruptionBudget")
    pdb["spec"]["unhealthyPodEvictionPolicy"] = 1
    errors = schema_errors(docs, ("1.30.0",))
    broken = {(e["resource"], e["version"]) for e in errors}
    assert broken == {("SparkApplication/stream-processor", "crd"),
                      ("StatefulSet/kafka", "1.30.0"),
                      (f"PodDisruptionBudget/{pdb['metadata']['name']}", "1.30.0")}
    crd_errors = " ".join(e["error"] for e in errors if e["version"] == "crd")
    assert "'replicas' was unexpected" in crd_errors and "Sometimes" in crd_errors


def test_kustomize_refuses_a_broken_overlay(tmp_path: Path) -> None:
    # A copy of k8s/ and grafana/ whose prod overlay patches a resource that is not there.
    shutil.copytree(K8S, tmp_path / "k8s", ignore=shutil.ignore_patterns("crds"))
    shutil.copytree(ROOT / "grafana", tmp_path / "grafana")
    overlay = tmp_path / "k8s" / "overlays" / "prod"
    (overlay / "stream-processor.yaml").write_text(
        (overlay / "stream-processor.yaml").read_text().replace(
            "name: stream-processor", "name: stream-processer"))
    result = run([tool("kustomize"), "build", overlay])
    assert result.returncode != 0
    assert "stream-processer" in result.stderr


# ---------------------------------------------------------------- Pod Security

@pytest.mark.parametrize("name", TARGETS)
def test_every_pod_template_meets_pod_security_restricted(
        name: str, rendered: dict[str, list[dict[str, Any]]]) -> None:
    found = pod_security(rendered[name])
    # The stream job's driver and executors are checked like every other pod.
    assert {"SparkApplication/stream-processor/driver",
            "SparkApplication/stream-processor/executor"} <= found.keys()
    assert {pod: problems for pod, problems in found.items() if problems} == {}
    (namespace,) = by_kind(rendered[name], "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


BREAKAGES: dict[str, Callable[[dict[str, Any]], None]] = {
    "privileged": lambda s: s["containers"][0]["securityContext"].update(privileged=True),
    "root": lambda s: s["securityContext"].update(runAsNonRoot=False),
    "escalation": lambda s: s["containers"][0]["securityContext"].pop("allowPrivilegeEscalation"),
    "capabilities": lambda s: s["containers"][0]["securityContext"].update(
        capabilities={"drop": ["NET_RAW"], "add": ["SYS_ADMIN"]}),
    "seccomp": lambda s: s["securityContext"].update(seccompProfile={"type": "Unconfined"}),
    "hostPath": lambda s: s.setdefault("volumes", []).append(
        {"name": "host", "hostPath": {"path": "/var/run"}}),
    "hostNetwork": lambda s: s.update(hostNetwork=True),
    "hostPort": lambda s: s["containers"][0].setdefault("ports", []).append(
        {"containerPort": 80, "hostPort": 80}),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
@pytest.mark.parametrize("kind", ["Deployment", "SparkApplication"])
def test_pod_security_refuses_a_weakened_pod(
        breakage: str, kind: str, rendered: dict[str, list[dict[str, Any]]]) -> None:
    doc = copy.deepcopy(by_kind(rendered["prod"], kind)[0])
    if kind == "SparkApplication":
        # Break the operator's input, then look at the pod it would build.
        part = doc["spec"]["driver"]
        spec = {"securityContext": part["podSecurityContext"],
                "containers": [{"name": "d", "securityContext": part["securityContext"]}],
                "volumes": doc["spec"]["volumes"]}
        BREAKAGES[breakage](spec)
        part["podSecurityContext"] = spec["securityContext"]
        part["securityContext"] = spec["containers"][0]["securityContext"]
        part["hostNetwork"] = spec.get("hostNetwork", False)
        doc["spec"]["volumes"] = spec["volumes"]
        part["initContainers"] = ([{"name": "i", "ports": spec["containers"][0]["ports"],
                                    "securityContext": part["securityContext"]}]
                                  if "ports" in spec["containers"][0] else [])
    else:
        BREAKAGES[breakage](doc["spec"]["template"]["spec"])
    found = pod_security([doc])
    assert any(found.values()), f"{breakage} on a {kind} went unnoticed"


# ---------------------------------------------------------------- the stream job

def test_prod_runs_the_stream_job_on_the_spark_operator(
        rendered: dict[str, list[dict[str, Any]]]) -> None:
    (app,) = by_kind(rendered["prod"], "SparkApplication")
    spec = app["spec"]
    assert (spec["type"], spec["mode"], spec["sparkVersion"]) == ("Python", "cluster", "3.5.7")
    assert spec["mainApplicationFile"] == "local:///opt/app/jobs/stream_processor.py"
    assert spec["executor"]["instances"] >= 2
    assert spec["image"].startswith("europe-west1-docker.pkg.dev/PROJECT_ID/market/")
    assert spec["restartPolicy"]["type"] in ("Always", "OnFailure")
    assert spec["restartPolicy"]["onFailureRetryInterval"] >= 10
    # The job takes its master from spark-submit: nothing sets one.
    assert "spark.master" not in spec["sparkConf"]
    (settings,) = [d for d in by_kind(rendered["prod"], "ConfigMap")
                   if d["metadata"]["name"].startswith("stream-settings")]
    envfrom = {ref["configMapRef"]["name"] for part in ("driver", "executor")
               for ref in spec[part]["envFrom"]}
    assert envfrom == {settings["metadata"]["name"]}, "hashed ConfigMap name not followed"
    assert settings["data"]["STREAM_CHECKPOINT_ROOT"] == (
        "gs://PROJECT_ID-market-prod-checkpoints/stream")
    # Only settings the job reads: a misspelt or retired variable would be ignored.
    job_source = "\n".join(path.read_text() for path in (ROOT / "jobs").glob("*.py"))
    unread = [key for key in settings["data"] if f'"{key}"' not in job_source]
    assert unread == []
    assert settings["data"].keys() <= {
        "KAFKA_BOOTSTRAP_SERVERS", "KAFKA_TOPIC", "CASSANDRA_HOST", "CASSANDRA_PORT",
        "CASSANDRA_KEYSPACE", "STREAM_CHECKPOINT_ROOT", "STREAM_MOVING_WINDOW",
        "STREAM_MOVING_SLIDE", "STREAM_TRIGGER_INTERVAL"}
    # Every jar the job needs is in the image, on both classpaths.
    assert spec["sparkConf"]["spark.driver.extraClassPath"] == "/opt/app/jars/*"
    assert spec["sparkConf"]["spark.executor.extraClassPath"] == "/opt/app/jars/*"
    assert spec["hadoopConf"]["fs.gs.impl"] == (
        "com.google.cloud.hadoop.fs.gcs.GoogleHadoopFileSystem")


def test_no_local_master_remains_under_k8s() -> None:
    hits = [f"{path.relative_to(ROOT)}:{number}"
            for path in K8S.rglob("*") if path.is_file()
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
            if "local[" in line]
    assert hits == []
    assert by_kind_files("Deployment", "stream-processor") == []
    assert by_kind_files("PersistentVolumeClaim", "stream-checkpoints") == []


def by_kind_files(kind: str, name: str) -> list[Path]:
    found = []
    for path in K8S.rglob("*.yaml"):
        if path.is_relative_to(CRDS):
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == kind and \
                    doc.get("metadata", {}).get("name") == name:
                found.append(path)
    return found


def test_only_the_driver_may_use_the_kubernetes_api(
        rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["prod"]
    (app,) = by_kind(docs, "SparkApplication")
    accounts = {d["metadata"]["name"]: d for d in by_kind(docs, "ServiceAccount")}
    driver, executor = (app["spec"][p]["serviceAccount"] for p in ("driver", "executor"))
    assert accounts[executor]["automountServiceAccountToken"] is False
    (role,) = by_kind(docs, "Role")
    (binding,) = by_kind(docs, "RoleBinding")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": role["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": driver,
                                    "namespace": "market"}]
    granted = {(resource, verb) for rule in role["rules"] for resource in rule["resources"]
               for verb in rule["verbs"] if rule["apiGroups"] == [""]}
    assert granted == {(r, v) for r in ("pods", "configmaps")
                       for v in ("get", "list", "watch", "create", "delete", "deletecollection")}
    assert by_kind(docs, "ClusterRole") == [] and by_kind(docs, "ClusterRoleBinding") == []
    # Workload Identity: both name the environment's Google service account.
    for name in (driver, executor):
        annotation = accounts[name]["metadata"]["annotations"]["iam.gke.io/gcp-service-account"]
        assert annotation == "market-prod-spark@PROJECT_ID.iam.gserviceaccount.com"


def ports_between(docs: list[dict[str, Any]], policy: str, direction: str,
                  component: str) -> set[int]:
    (doc,) = [d for d in by_kind(docs, "NetworkPolicy") if d["metadata"]["name"] == policy]
    peer_key = "from" if direction == "ingress" else "to"
    return {port["port"] for rule in doc["spec"].get(direction, [])
            for peer in rule.get(peer_key, [])
            if peer.get("podSelector", {}).get("matchLabels", {}).get(
                "app.kubernetes.io/component", component) == component
            and "podSelector" in peer
            for port in rule.get("ports", [])}


def test_network_policies_allow_exactly_spark_traffic(
        rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["prod"]
    (app,) = by_kind(docs, "SparkApplication")
    conf = app["spec"]["sparkConf"]
    rpc, block = int(conf["spark.driver.port"]), int(conf["spark.blockManager.port"])
    assert int(conf["spark.driver.blockManager.port"]) == block
    assert ports_between(docs, "stream-driver", "ingress", "spark-executor") == {rpc, block}
    assert ports_between(docs, "stream-driver", "egress", "spark-executor") == {block}
    assert ports_between(docs, "stream-executor", "egress", "spark-driver") == {rpc, block}
    assert ports_between(docs, "stream-executor", "egress", "spark-executor") == {block}
    assert ports_between(docs, "stream-executor", "ingress", "spark-executor") == {block}
    labels = {p: app["spec"][p]["labels"] for p in ("driver", "executor")}
    for policy, part in (("stream-driver", "driver"), ("stream-executor", "executor")):
        (doc,) = [d for d in by_kind(docs, "NetworkPolicy") if d["metadata"]["name"] == policy]
        assert doc["spec"]["podSelector"]["matchLabels"].items() <= labels[part].items()
        assert labels[part]["market.io/kafka-client"] == "true"
        assert labels[part]["market.io/cassandra-client"] == "true"
    # The driver reaches the private control plane Terraform creates.
    (driver,) = [d for d in by_kind(docs, "NetworkPolicy")
                 if d["metadata"]["name"] == "stream-driver"]
    blocks = {peer["ipBlock"]["cidr"] for rule in driver["spec"]["egress"]
              for peer in rule.get("to", []) if "ipBlock" in peer}
    master = re.search(r'variable "master_cidr" \{.*?default\s*=\s*"([^"]+)"',
                       (TERRAFORM / "variables.tf").read_text(), re.S)
    assert master and master.group(1) in blocks


def test_application_containers_keep_the_image_entry_point(
        rendered: dict[str, list[dict[str, Any]]]) -> None:
    # A `command` replaces ENTRYPOINT ["tini", ...]: java or python would be PID 1
    # and SIGTERM would never reach the job's handler.
    checked = 0
    for name, docs in rendered.items():
        for doc in docs:
            for spec in pod_specs(doc).values():
                for container in [*spec.get("initContainers", []), *spec["containers"]]:
                    if APP_IMAGE in container.get("image", ""):
                        checked += 1
                        assert "command" not in container, (name, doc["metadata"]["name"])
    assert checked >= 3 * 4


# ---------------------------------------------------------------- monitoring

MONITORING = "monitoring.coreos.com/v1"


def named(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for d in by_kind(docs, kind) if d["metadata"]["name"] == name]
    return doc


def test_monitoring_is_a_component_only_prod_includes(
        rendered: dict[str, list[dict[str, Any]]]) -> None:
    component = yaml.safe_load((K8S / "components" / "monitoring" / "kustomization.yaml")
                               .read_text())
    assert component["kind"] == "Component"
    # The base and dev apply on a cluster without the prometheus-operator CRDs.
    for name in ("base", "dev"):
        assert [d for d in rendered[name] if d["apiVersion"] == MONITORING] == []
    prod = rendered["prod"]
    assert {(d["kind"], d["metadata"]["name"]) for d in prod
            if d["apiVersion"] == MONITORING} == {("PodMonitor", "producer"),
                                                  ("PodMonitor", "stream-driver")}
    for doc in by_kind(prod, "PodMonitor"):
        # kube-prometheus-stack's Prometheus selects PodMonitors by the release label.
        assert doc["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        assert doc["metadata"]["namespace"] == "market"


def scraped_from_monitoring(policy: dict[str, Any]) -> set[int]:
    """Ports the policy opens to Prometheus pods of namespace `monitoring`, and only them."""
    ports: set[int] = set()
    for rule in policy["spec"]["ingress"]:
        assert rule["from"] == [{
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}]
        ports.update(port["port"] for port in rule["ports"])
    return ports


def test_the_producer_is_scraped_on_the_port_it_serves(
        rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["prod"]
    template = named(docs, "Deployment", "producer")["spec"]["template"]
    (container,) = template["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["metrics"] == int(env["PRODUCER_METRICS_PORT"])
    assert env["PRODUCER_METRICS_HOST"] == "0.0.0.0"  # reachable on the pod's address
    monitor = named(docs, "PodMonitor", "producer")["spec"]
    assert monitor["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
    assert [(e["port"], e["path"]) for e in monitor["podMetricsEndpoints"]] == [
        ("metrics", "/metrics")]
    policy = named(docs, "NetworkPolicy", "producer-metrics")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= \
        template["metadata"]["labels"].items()
    assert scraped_from_monitoring(policy) == {ports["metrics"]}


def test_the_spark_driver_is_scraped_on_its_ui_port(
        rendered: dict[str, list[dict[str, Any]]]) -> None:
    from jobs.session import METRICS_CONF

    docs = rendered["prod"]
    spec = named(docs, "SparkApplication", "stream-processor")["spec"]
    conf = spec["sparkConf"]
    # The same settings as the job's own session, so that they hold from the start.
    assert conf.items() >= METRICS_CONF.items()
    monitor = named(docs, "PodMonitor", "stream-driver")["spec"]
    assert monitor["selector"]["matchLabels"].items() <= spec["driver"]["labels"].items()
    sink = conf["spark.metrics.conf.*.sink.prometheusServlet.path"]
    # spark-ui: the name Spark gives the driver container's UI port.
    assert sorted((e["port"], e["path"]) for e in monitor["podMetricsEndpoints"]) == [
        ("spark-ui", "/metrics/executors/prometheus"), ("spark-ui", f"{sink}/")]
    policy = named(docs, "NetworkPolicy", "stream-driver-metrics")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= \
        spec["driver"]["labels"].items()
    assert scraped_from_monitoring(policy) == {int(conf["spark.ui.port"])}


def test_schema_validation_refuses_a_broken_pod_monitor(
        rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = copy.deepcopy(by_kind(rendered["prod"], "PodMonitor"))
    assert schema_errors(docs, ("1.30.0",)) == []
    endpoint = docs[0]["spec"]["podMetricsEndpoints"][0]
    endpoint["portName"] = endpoint.pop("port")  # not a PodMonitor field
    endpoint["interval"] = "30 seconds"          # not a Prometheus duration
    errors = schema_errors(docs, ("1.30.0",))
    assert {(e["resource"], e["version"]) for e in errors} == {
        (f"PodMonitor/{docs[0]['metadata']['name']}", "crd")}
    text = " ".join(e["error"] for e in errors)
    assert "'portName' was unexpected" in text and "30 seconds" in text


# ---------------------------------------------------------------- linters

def test_ansible_lint_and_syntax_check(tmp_path: Path) -> None:
    lint = run([tool("ansible-lint"), "--offline", "--profile", "production", "ansible/"])
    assert lint.returncode == 0, lint.stdout + lint.stderr
    syntax = run([tool("ansible-playbook"), "--syntax-check", "-i",
                  ANSIBLE / "inventory.example.yml", ANSIBLE / "site.yml"])
    assert syntax.returncode == 0, syntax.stdout + syntax.stderr


def test_ansible_lint_refuses_a_broken_playbook(tmp_path: Path) -> None:
    shutil.copytree(ANSIBLE, tmp_path / "ansible")
    tasks = tmp_path / "ansible" / "roles" / "spark_operator" / "tasks" / "main.yml"
    tasks.write_text(tasks.read_text() + "\n- shell: helm list\n")
    lint = run([tool("ansible-lint"), "--offline", "--profile", "production", "ansible/"],
               cwd=tmp_path)
    assert lint.returncode != 0
    assert "fqcn" in lint.stdout + lint.stderr


def test_hadolint() -> None:
    result = run([tool("hadolint"), "Dockerfile"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_refuses_a_broken_dockerfile(tmp_path: Path) -> None:
    broken = (ROOT / "Dockerfile").read_text().replace(
        "ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm", "ARG PYTHON_IMAGE=python") \
        .replace("WORKDIR /opt/app\n", "WORKDIR /opt/app\nRUN cd /tmp && sudo true\n")
    (tmp_path / "Dockerfile").write_text(broken)
    result = run([tool("hadolint"), tmp_path / "Dockerfile"])
    assert result.returncode != 0
    assert "DL3004" in result.stdout and "DL3003" in result.stdout


def checkov(directory: Path, framework: str) -> dict[str, Any]:
    result = run([tool("checkov"), "--config-file", CHECKOV_CONFIG, "--directory", directory,
                  "--framework", framework, "--output", "json"])
    assert result.returncode in (0, 1), result.stderr
    report = json.loads(result.stdout or "{}")
    reports = report if isinstance(report, list) else [report]
    failed = [f"{c['check_id']} {c['resource']} {c.get('file_path')}"
              for r in reports for c in r.get("results", {}).get("failed_checks", [])]
    passed = sum(r.get("summary", {}).get("passed", 0) for r in reports)
    return {"failed": failed, "passed": passed}


@pytest.fixture(scope="module")
def rendered_dir(tmp_path_factory: pytest.TempPathFactory,
                 rendered: dict[str, list[dict[str, Any]]]) -> Path:
    folder = tmp_path_factory.mktemp("rendered")
    for name, docs in rendered.items():
        (folder / f"{name}.yaml").write_text(yaml.safe_dump_all(docs))
    return folder


@pytest.mark.parametrize("framework", ["kubernetes", "terraform", "dockerfile"])
def test_checkov(framework: str, rendered_dir: Path) -> None:
    directory = {"kubernetes": rendered_dir, "terraform": TERRAFORM}.get(framework)
    if directory is None:
        # Only the Dockerfile: checkov would otherwise walk .venv and .work.
        directory = rendered_dir.parent / "dockerfile"
        directory.mkdir(exist_ok=True)
        shutil.copy(ROOT / "Dockerfile", directory / "Dockerfile")
    report = checkov(directory, framework)
    assert report["failed"] == []
    assert report["passed"] > 0


def test_checkov_refuses_a_broken_manifest(tmp_path: Path,
                                           rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = copy.deepcopy(rendered["prod"])
    (grafana,) = [d for d in by_kind(docs, "Deployment") if d["metadata"]["name"] == "grafana"]
    container = grafana["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"]["privileged"] = True
    container["image"] = "grafana/grafana:latest"
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump_all(docs))
    failed = {entry.split()[0] for entry in checkov(tmp_path, "kubernetes")["failed"]}
    assert {"CKV_K8S_16", "CKV_K8S_14"} <= failed


def test_every_skipped_checkov_check_is_justified() -> None:
    lines = CHECKOV_CONFIG.read_text().splitlines()
    config = yaml.safe_load(CHECKOV_CONFIG.read_text())
    skipped = config.get("skip-check", [])
    assert skipped, "no skip list: then remove this test"
    for check in skipped:
        (index,) = [i for i, line in enumerate(lines) if line.strip() == f"- {check}"]
        comment = lines[index - 1].strip()
        assert comment.startswith("#") and len(comment) > 30, f"{check} has no reason"


def test_a_missing_tool_fails_in_ci_and_skips_elsewhere(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import deploy_tools

    monkeypatch.setattr(deploy_tools, "TOOLS", tmp_path)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="make deploy-tools"):
        deploy_tools.tool("kustomize")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="make deploy-tools"):
        deploy_tools.tool("checkov")
