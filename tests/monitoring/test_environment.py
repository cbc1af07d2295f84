"""Runs in the monitoring environment (.venv-monitoring): `make test-monitoring`."""

from __future__ import annotations

import sys

import pytest

from getit_ml import licensing
from getit_ml.environments import probe


def test_monitoring_environment_is_complete_and_apache_licensed() -> None:
    report = probe("monitoring")
    assert report.ok, report.problems()


def test_installed_alibi_stack_is_at_most_the_apache_pins() -> None:
    """Fails the build if alibi or alibi-detect above their last Apache-2.0 release sneak in."""
    found = licensing.installed_versions(licensing.APACHE_LICENSED_CEILINGS)
    assert set(found) == set(licensing.APACHE_LICENSED_CEILINGS), "alibi stack is not installed"
    assert licensing.check_versions(found, sys.prefix) == []


def test_runs_on_numpy_1_and_pydantic_1() -> None:
    import numpy
    import pydantic

    assert numpy.__version__.startswith("1.24.")
    assert pydantic.VERSION.startswith("1.")


def test_platform_only_modules_stay_out() -> None:
    """What the sidecars import from getit_ml must not need pydantic-settings."""
    with pytest.raises(ImportError):
        import pydantic_settings  # noqa: F401
    assert "pydantic_settings" not in sys.modules


def test_drift_detector_api_is_usable() -> None:
    """The detectors the sidecars are built on fit and predict on this numpy/scipy."""
    import numpy as np
    from alibi_detect.cd import KSDrift, TabularDrift

    rng = np.random.default_rng(7)
    reference = rng.normal(size=(500, 3)).astype("float32")
    same = rng.normal(size=(200, 3)).astype("float32")
    shifted = same + np.array([3.0, 0.0, 0.0], dtype="float32")
    detector = KSDrift(reference, p_val=0.05)
    assert detector.predict(same)["data"]["is_drift"] == 0
    assert detector.predict(shifted)["data"]["is_drift"] == 1
    tabular = TabularDrift(reference, p_val=0.05, categories_per_feature={})
    assert tabular.predict(shifted)["data"]["is_drift"] == 1
