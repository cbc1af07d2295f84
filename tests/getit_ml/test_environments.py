"""Both pinned environments provide what they promise."""

from __future__ import annotations

import subprocess
import sys

import pytest

from getit_ml.environments import ENVIRONMENTS, EnvironmentReport, PackageReport, probe
from getit_ml.settings import load_settings


def test_platform_environment_imports_everything() -> None:
    report = probe("platform")
    assert report.ok, report.problems()
    versions = {p.distribution: p.version for p in report.packages}
    assert versions["torch"] is not None
    assert versions["torch"].startswith("2.13.0")
    assert versions["kserve"] is not None
    assert versions["kserve"].startswith("0.21.")
    assert versions["feast"] is not None
    assert versions["feast"].startswith("0.67.")


def test_unknown_environment_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown environment"):
        probe("staging")


def test_report_survives_json_and_lists_problems() -> None:
    report = EnvironmentReport(
        name="monitoring",
        python="3.11.7",
        prefix="/x",
        packages=[
            PackageReport("alibi", "0.9.4", 1.5),
            PackageReport("scipy", None, 0.1, "import scipy.stats failed: ImportError()"),
        ],
    )
    again = EnvironmentReport.from_json(report.to_json())
    assert again == report
    assert not again.ok
    assert again.problems() == ["scipy: import scipy.stats failed: ImportError()"]


def test_monitoring_environment_from_outside() -> None:
    """The monitoring interpreter imports getit_ml and the Apache-2.0 alibi stack."""
    settings = load_settings()
    python = settings.monitoring_python
    if not python.exists():
        message = f"{python} is missing: run `make setup`"
        if settings.ci:
            pytest.fail(message)
        pytest.skip(message)
    completed = subprocess.run(
        [str(python), "-m", "getit_ml.environments", "monitoring"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    report = EnvironmentReport.from_json(completed.stdout.strip().splitlines()[-1])
    versions = {p.distribution: p.version for p in report.packages}
    assert versions["alibi"] == "0.9.4"
    assert versions["alibi-detect"] == "0.11.4"
    assert versions["numpy"] is not None
    assert versions["numpy"].startswith("1.24.")
    assert {p.distribution for p in report.packages} == {
        r.distribution for r in ENVIRONMENTS["monitoring"]
    }


def test_importing_the_package_does_nothing_heavy() -> None:
    """`import getit_ml` must work anywhere and must not read settings or import numpy."""
    code = (
        "import sys, getit_ml, getit_ml.licensing, getit_ml.environments, getit_ml.errors;"
        "heavy = {'numpy', 'pydantic', 'pydantic_settings', 'torch', 'kserve', 'feast'};"
        "print(sorted(heavy & set(sys.modules)))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert completed.stdout.strip() == "[]"
