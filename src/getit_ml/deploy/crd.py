"""Validate custom resources against the OpenAPI schemas of their CustomResourceDefinitions.

The API server prunes or, with strict field validation (``kubectl apply`` defaults to it),
rejects fields a CRD's schema does not declare. :func:`strict_schema` makes that explicit for
``jsonschema``: every object schema that lists its properties and does not preserve unknown
fields gets ``additionalProperties: false``, so a misspelt field fails here as on the cluster.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

#: libyaml's loader when PyYAML has it (the KServe CRDs are megabytes of YAML).
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: Where the shared KServe CRDs live, relative to the repository root.
SCHEMA_ROOT = Path("../shared/k8s-schemas")


@dataclass(frozen=True)
class CrdSchema:
    group: str
    kind: str
    version: str
    schema: dict[str, Any]

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``schema`` that rejects undeclared fields (see the module's text)."""
    result = copy.deepcopy(schema)

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for item in node:
                visit(item)

    visit(result)
    # The CRD's schema leaves metadata to the API server: describe the part we use.
    properties = result.setdefault("properties", {})
    properties["metadata"] = {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
            "namespace": {"type": "string"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        },
        "additionalProperties": False,
    }
    return result


def load_crd_schemas(paths: Iterable[Path]) -> dict[tuple[str, str], CrdSchema]:
    """(apiVersion, kind) → schema of every served version of the CRDs in ``paths``."""
    schemas: dict[tuple[str, str], CrdSchema] = {}
    for path in paths:
        for document in yaml.load_all(path.read_text(encoding="utf-8"), Loader=_Loader):
            if not isinstance(document, dict) or document.get("kind") != (
                "CustomResourceDefinition"
            ):
                continue
            spec = document["spec"]
            for version in spec["versions"]:
                if not version.get("served", False):
                    continue
                crd = CrdSchema(
                    group=spec["group"],
                    kind=spec["names"]["kind"],
                    version=version["name"],
                    schema=strict_schema(version["schema"]["openAPIV3Schema"]),
                )
                schemas[(crd.api_version, crd.kind)] = crd
    return schemas


def validation_errors(obj: dict[str, Any], crd: CrdSchema) -> list[str]:
    """Every schema violation of ``obj`` as ``path: message`` (empty: valid)."""
    import jsonschema  # type: ignore[import-untyped]

    validator = jsonschema.Draft7Validator(crd.schema)
    return [
        "/".join(str(p) for p in error.absolute_path) + ": " + error.message
        for error in sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path))
    ]
