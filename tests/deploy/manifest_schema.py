"""Strict schema validation of rendered Kubernetes resources; run by the tools'
virtualenv (kubernetes-validate, jsonschema), not imported by the tests.

    python manifest_schema.py CRD_DIR VERSION... < rendered.yaml

Prints a JSON list of {"resource", "version", "error"}; empty means valid. Built-in
kinds are checked with kubernetes-validate's strict schemas for every VERSION;
custom resources with the openAPIV3Schema of their CRD in CRD_DIR, made strict
(unknown fields rejected) as the API server's strict field validation does.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml


def strict(schema: Any) -> Any:
    """The schema with additionalProperties: false wherever the fields are listed."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: strict(value) for key, value in schema.items()}
    if ("properties" in result and "additionalProperties" not in result
            and not result.get("x-kubernetes-preserve-unknown-fields")):
        result["additionalProperties"] = False
    return result


def crd_schemas(folder: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> strict JSON schema, for every served version of every CRD."""
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(folder.glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                schema = strict(version["schema"]["openAPIV3Schema"])
                schemas[(f"{group}/{version['name']}", kind)] = schema
    return schemas


def errors(docs: list[dict[str, Any]], crds: dict[tuple[str, str], dict[str, Any]],
           versions: list[str]) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    for doc in docs:
        name = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        key = (str(doc.get("apiVersion")), str(doc.get("kind")))
        if key in crds:
            validator = jsonschema.Draft7Validator(crds[key])
            found.extend({"resource": name, "version": "crd",
                          "error": f"{'.'.join(map(str, e.absolute_path))}: {e.message}"}
                         for e in validator.iter_errors(doc))
            continue
        for version in versions:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as err:
                found.append({"resource": name, "version": version, "error": str(err)})
            except kubernetes_validate.SchemaNotFoundError as err:
                found.append({"resource": name, "version": version, "error": str(err)})
    return found


def main(argv: list[str]) -> int:
    crds = crd_schemas(Path(argv[0]))
    docs = [doc for doc in yaml.safe_load_all(sys.stdin) if doc]
    print(json.dumps(errors(docs, crds, argv[1:])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
