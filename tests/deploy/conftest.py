"""Fixtures of the deployment tests (helpers in support.py)."""

from __future__ import annotations

import pytest

from getit_ml.deploy.crd import CrdSchema, load_crd_schemas
from getit_ml.deploy.render import Manifest
from tests.deploy.support import KSERVE_SCHEMAS, all_renderings, chart_objects, overlay_objects


@pytest.fixture(params=all_renderings(), ids=lambda case: case[0])
def rendering(request: pytest.FixtureRequest) -> tuple[str, list[Manifest]]:
    """Each rendering of the platform: (name, objects)."""
    name, values_file, overlay = request.param
    objects = overlay_objects(overlay) if overlay else chart_objects(values_file)
    return name, objects


@pytest.fixture(scope="session")
def kserve_crds() -> dict[tuple[str, str], CrdSchema]:
    files = sorted(KSERVE_SCHEMAS.glob("*.yaml")) if KSERVE_SCHEMAS.is_dir() else []
    if not files:
        pytest.skip(f"no KServe CRD schemas at {KSERVE_SCHEMAS} (../shared/k8s-schemas)")
    return load_crd_schemas(files)
