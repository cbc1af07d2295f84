"""Shared helpers of the deployment tests: every chart value set and every kustomize overlay,
rendered once per session (offline: the Helm v4 Go SDK and kubectl's kustomize; no cluster)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from getit_ml.deploy.render import Manifest, kustomize_build, load_values, render_chart

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "getit-ml"
CI_VALUES = sorted((CHART / "ci").glob("*.yaml"))
MANIFESTS = ROOT / "manifests"
OVERLAYS = sorted(p.parent for p in (MANIFESTS / "overlays").glob("*/kustomization.yaml"))
KSERVE_SCHEMAS = ROOT.parent / "shared" / "k8s-schemas" / "kserve"
#: The oldest Kubernetes the chart supports (Chart.yaml kubeVersion: native preStop sleep) and the
#: newest kubernetes-validate knows; strict mode rejects unknown fields.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")

_chart_cache: dict[str, list[Manifest]] = {}
_overlay_cache: dict[str, list[Manifest]] = {}


def chart_objects(values_file: Path | None) -> list[Manifest]:
    """The chart rendered with one ci/*.yaml (None: the chart's defaults), cached."""
    key = values_file.name if values_file else "<defaults>"
    if key not in _chart_cache:
        values = load_values(values_file) if values_file else {}
        _chart_cache[key] = render_chart(CHART, values)
    return _chart_cache[key]


def overlay_objects(overlay: Path) -> list[Manifest]:
    """``kubectl kustomize`` of one overlay, cached."""
    if overlay.name not in _overlay_cache:
        _overlay_cache[overlay.name] = kustomize_build(overlay)
    return _overlay_cache[overlay.name]


def all_renderings() -> list[tuple[str, Path | None, Path | None]]:
    """(id, values file, overlay): the chart's defaults, every ci/*.yaml and every overlay."""
    cases: list[tuple[str, Path | None, Path | None]] = [("chart-defaults", None, None)]
    cases += [(f"chart-{p.stem}", p, None) for p in CI_VALUES]
    cases += [(f"kustomize-{o.name}", None, o) for o in OVERLAYS]
    return cases


def find(objects: list[Manifest], kind: str, name: str | None = None) -> list[Manifest]:
    return [
        o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]


def one(objects: list[Manifest], kind: str, name: str) -> Manifest:
    found = find(objects, kind, name)
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def dig(obj: Any, *path: str | int) -> Any:
    for key in path:
        obj = obj[key]
    return obj


def chart_defaults() -> dict[str, Any]:
    """The chart's values.yaml, a fresh copy each call."""
    return copy.deepcopy(load_values(CHART / "values.yaml"))


def model_entry(name: str, family: str, **changes: Any) -> dict[str, Any]:
    """A ``models`` entry: the chart's first default entry renamed, with ``changes`` applied
    (a mapping merges into the entry's mapping of that key: ``transformer={"enabled": False}``)."""
    entry: dict[str, Any] = chart_defaults()["models"][0]
    entry.update(name=name, family=family)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(entry.get(key), dict):
            entry[key] = {**entry[key], **value}
        else:
            entry[key] = value
    return entry


def model_objects(objects: list[Manifest], model: str) -> list[Manifest]:
    """The objects that belong to one model: its InferenceService and the objects labelled
    ``getit-ml/model: <model>``."""
    return [
        o
        for o in objects
        if (o["kind"] == "InferenceService" and o["metadata"]["name"] == model)
        or (o["metadata"].get("labels") or {}).get("getit-ml/model") == model
    ]
