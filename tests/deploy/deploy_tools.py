"""The validation tools that `make deploy-tools` installs under .work/tools, and a
kustomize renderer. A missing tool skips its tests on a laptop (with the command that
installs it) and fails them in CI, where nothing may go unchecked."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_files import ROOT

TOOLS = ROOT / ".work" / "tools"
TOOLS_PYTHON = TOOLS / "venv" / "bin" / "python"
# Kubernetes minor versions the rendered manifests must be valid for.
KUBERNETES_VERSIONS = tuple(f"1.{minor}.0" for minor in range(30, 38))


def tool(name: str) -> Path:
    """Path of an installed tool: kustomize from the Go proxy, the others from PyPI."""
    path = TOOLS / "bin" / name if name == "kustomize" else TOOLS / "venv" / "bin" / name
    if not path.is_file():
        message = f"{path} is missing: run `make deploy-tools`"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return path


def run(args: list[str | Path], cwd: Path = ROOT, stdin: str | None = None,
        timeout: float = 600) -> subprocess.CompletedProcess[str]:
    # The tools' own virtualenv first on PATH: ansible-lint calls ansible-playbook.
    env = {**os.environ, "PATH": f"{TOOLS / 'venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "ANSIBLE_LOCAL_TEMP": str(TOOLS / "ansible-tmp"),
           "ANSIBLE_HOME": str(TOOLS / "ansible-home")}
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, input=stdin,
                          capture_output=True, text=True, timeout=timeout, check=False)


def kustomize_build(target: Path) -> list[dict[str, Any]]:
    result = run([tool("kustomize"), "build", target])
    assert result.returncode == 0, f"kustomize build {target} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]
