"""Pod Security Standards, "restricted" profile (which includes "baseline"), as code:
the checks the API server's admission applies to a pod of namespace market, run on
every pod template before anything reaches a cluster."""

from __future__ import annotations

from typing import Any

ALLOWED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                   "persistentVolumeClaim", "projected", "secret"}
SAFE_SYSCTLS = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range",
                "net.ipv4.ip_unprivileged_port_start", "net.ipv4.tcp_syncookies",
                "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
                "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
                "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes"}
SECCOMP_TYPES = {"RuntimeDefault", "Localhost"}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t",
                 "container_engine_t"}


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec.get("containers", []),
            *spec.get("ephemeralContainers", [])]


def _host_and_volume_violations(spec: dict[str, Any]) -> list[str]:
    found = [f"{field} is set" for field in ("hostNetwork", "hostPID", "hostIPC")
             if spec.get(field)]
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUMES:
            found.append(f"volume {volume.get('name')} uses {sorted(kinds - ALLOWED_VOLUMES)}")
    pod = spec.get("securityContext", {})
    for sysctl in pod.get("sysctls", []):
        if sysctl.get("name") not in SAFE_SYSCTLS:
            found.append(f"unsafe sysctl {sysctl.get('name')}")
    return found


def _context_violations(where: str, context: dict[str, Any]) -> list[str]:
    """Rules that apply to the pod's and to each container's security context."""
    found: list[str] = []
    if context.get("runAsNonRoot") is False:
        found.append(f"{where}: runAsNonRoot is false")
    if context.get("runAsUser") == 0:
        found.append(f"{where}: runAsUser is 0")
    seccomp = context.get("seccompProfile", {}).get("type")
    if seccomp is not None and seccomp not in SECCOMP_TYPES:
        found.append(f"{where}: seccompProfile {seccomp}")
    if context.get("appArmorProfile", {}).get("type") == "Unconfined":
        found.append(f"{where}: AppArmor unconfined")
    selinux = context.get("seLinuxOptions", {})
    if selinux.get("type", "") not in SELINUX_TYPES or selinux.get("user") or selinux.get("role"):
        found.append(f"{where}: seLinuxOptions {selinux}")
    if context.get("windowsOptions", {}).get("hostProcess"):
        found.append(f"{where}: hostProcess")
    return found


def _container_violations(container: dict[str, Any], pod: dict[str, Any]) -> list[str]:
    name = f"container {container.get('name')}"
    context = container.get("securityContext", {})
    found = _context_violations(name, context)
    if context.get("privileged"):
        found.append(f"{name}: privileged")
    if context.get("allowPrivilegeEscalation") is not False:
        found.append(f"{name}: allowPrivilegeEscalation is not false")
    capabilities = context.get("capabilities", {})
    if "ALL" not in capabilities.get("drop", []):
        found.append(f"{name}: capabilities do not drop ALL")
    if set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}:
        found.append(f"{name}: adds capabilities {capabilities['add']}")
    if context.get("procMount", "Default") != "Default":
        found.append(f"{name}: procMount {context['procMount']}")
    if any(port.get("hostPort") for port in container.get("ports", [])):
        found.append(f"{name}: hostPort")
    # Required at one of the two levels.
    if context.get("runAsNonRoot", pod.get("runAsNonRoot")) is not True:
        found.append(f"{name}: runAsNonRoot is not true (pod or container)")
    seccomp = context.get("seccompProfile", pod.get("seccompProfile", {})).get("type")
    if seccomp not in SECCOMP_TYPES:
        found.append(f"{name}: no RuntimeDefault or Localhost seccomp profile")
    return found


def restricted_violations(spec: dict[str, Any]) -> list[str]:
    """Why a pod with this spec would be refused by Pod Security "restricted"."""
    pod = spec.get("securityContext", {})
    found = _host_and_volume_violations(spec) + _context_violations("pod", pod)
    for container in containers(spec):
        found.extend(_container_violations(container, pod))
    return found
