"""The kustomize manifests: every overlay builds, the base is the chart's rendering (generated,
never hand-edited) and each overlay is the same deployment as its chart value set — same kinds and
names, and the same objects field for field once Helm's own labels are set aside."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from getit_ml.deploy.render import (
    base_documents,
    dump_documents,
    for_kustomize,
    identity,
    kustomize_build,
)
from tests.deploy.support import CHART, MANIFESTS, OVERLAYS, chart_objects, overlay_objects

#: Each overlay and the chart values that describe the same deployment.
PAIRS = {"kind": "kind-values.yaml", "prod": "prod-values.yaml"}


def test_overlays_are_kind_and_prod() -> None:
    assert {o.name for o in OVERLAYS} == set(PAIRS)


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_overlay_builds(overlay: Path) -> None:
    objects = overlay_objects(overlay)
    assert len(objects) > 20
    assert {o["metadata"].get("namespace", "getit-ml") for o in objects} == {"getit-ml"}


def test_base_builds_and_is_generated_from_the_chart() -> None:
    expected = base_documents(CHART)
    base = MANIFESTS / "base"
    kustomization = yaml.safe_load((base / "kustomization.yaml").read_text(encoding="utf-8"))
    assert sorted(kustomization["resources"]) == sorted(expected)
    for name, objects in expected.items():
        on_disk = (base / name).read_text(encoding="utf-8")
        assert on_disk == dump_documents(objects), (
            f"manifests/base/{name} differs from the chart: run `python -m getit_ml.deploy base`"
        )
    built = kustomize_build(base)
    chart = chart_objects(CHART / "ci" / "kustomize-base.yaml")
    assert sorted(identity(o) for o in built) == sorted(identity(o) for o in chart)


def _comparable(objects: list[dict[str, object]]) -> dict[tuple[str, str, str], object]:
    return {identity(o): for_kustomize(o) for o in objects}


@pytest.mark.parametrize(("overlay", "values"), sorted(PAIRS.items()))
def test_overlay_and_chart_describe_the_same_objects(overlay: str, values: str) -> None:
    built = _comparable(overlay_objects(MANIFESTS / "overlays" / overlay))
    chart = _comparable(chart_objects(CHART / "ci" / values))
    assert sorted(built) == sorted(chart), "kinds and names differ"
    different = [key for key in built if built[key] != chart[key]]
    assert different == [], f"objects differ between overlay {overlay} and ci/{values}"


def test_the_comparison_sees_a_changed_field() -> None:
    chart = _comparable(chart_objects(CHART / "ci" / "prod-values.yaml"))
    changed = copy.deepcopy(chart)
    isvc = changed[("InferenceService", "getit-ml", "fraud")]
    assert isinstance(isvc, dict)
    isvc["spec"]["predictor"]["maxReplicas"] = 21
    assert changed != chart
