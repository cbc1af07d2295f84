"""What each of the two pinned environments must provide, and a probe that proves it.

The platform environment (``.venv``) runs pipelines, features, training and serving; the monitoring
environment (``.venv-monitoring``) runs the Alibi / alibi-detect sidecars on numpy 1.24 and
pydantic 1. A probe imports every module its environment promises and reports versions, import
times and licence violations, so ``getit-ml demo`` and the tests can check an environment from the
outside: ``python -m getit_ml.environments monitoring`` prints the report as JSON.

Standard library and :mod:`getit_ml.licensing` only: this runs in both environments.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Final

from getit_ml.licensing import check_versions


@dataclass(frozen=True)
class Requirement:
    """A distribution an environment must have, and a module whose import proves it works."""

    distribution: str
    module: str


PLATFORM: Final[tuple[Requirement, ...]] = (
    Requirement("torch", "torch"),
    Requirement("kfp", "kfp.local"),
    Requirement("kfp-kubernetes", "kfp.kubernetes"),
    Requirement("kserve", "kserve"),
    Requirement("kubernetes", "kubernetes.client"),
    Requirement("feast", "feast"),
    Requirement("mlflow", "mlflow"),
    Requirement("xgboost", "xgboost"),
    Requirement("optuna", "optuna"),
    Requirement("transformers", "transformers"),
    Requirement("pydantic-settings", "pydantic_settings"),
    Requirement("numpy", "numpy"),
)

MONITORING: Final[tuple[Requirement, ...]] = (
    Requirement("alibi", "alibi.explainers"),
    Requirement("alibi-detect", "alibi_detect.cd"),
    Requirement("kserve", "kserve"),
    Requirement("numpy", "numpy"),
    Requirement("scipy", "scipy.stats"),
    Requirement("pydantic", "pydantic"),
    Requirement("pyarrow", "pyarrow.parquet"),
)

ENVIRONMENTS: Final[dict[str, tuple[Requirement, ...]]] = {
    "platform": PLATFORM,
    "monitoring": MONITORING,
}


@dataclass
class PackageReport:
    """The outcome of importing one required module."""

    distribution: str
    version: str | None
    import_seconds: float
    error: str | None = None


@dataclass
class EnvironmentReport:
    """The outcome of probing one environment."""

    name: str
    python: str
    prefix: str
    packages: list[PackageReport] = field(default_factory=list)
    licence_violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.licence_violations and all(p.error is None for p in self.packages)

    def problems(self) -> list[str]:
        """One line per failed import or licence violation."""
        failed = [f"{p.distribution}: {p.error}" for p in self.packages if p.error]
        return failed + self.licence_violations

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "ok": self.ok})

    @classmethod
    def from_json(cls, text: str) -> EnvironmentReport:
        raw = json.loads(text)
        raw.pop("ok", None)
        raw["packages"] = [PackageReport(**p) for p in raw["packages"]]
        return cls(**raw)


def probe(name: str) -> EnvironmentReport:
    """Import every module the named environment promises, in this interpreter."""
    if name not in ENVIRONMENTS:
        raise ValueError(f"unknown environment {name!r}; expected one of {sorted(ENVIRONMENTS)}")
    report = EnvironmentReport(
        name=name, python=sys.version.split()[0], prefix=sys.prefix, packages=[]
    )
    versions: dict[str, str] = {}
    for requirement in ENVIRONMENTS[name]:
        started = time.perf_counter()
        error: str | None = None
        try:
            found: str | None = version(requirement.distribution)
            importlib.import_module(requirement.module)
        except PackageNotFoundError:
            found, error = None, "not installed"
        except Exception as exc:  # an import that crashes is exactly what the probe reports
            found, error = None, f"import {requirement.module} failed: {exc!r}"
        if found is not None:
            versions[requirement.distribution] = found
        elapsed = round(time.perf_counter() - started, 3)
        report.packages.append(PackageReport(requirement.distribution, found, elapsed, error))
    # alibi / alibi-detect are checked wherever they happen to be installed, not only where
    # they are required: a BSL release must not hide in the platform environment either.
    for guarded in ("alibi", "alibi-detect"):
        try:
            versions.setdefault(guarded, version(guarded))
        except PackageNotFoundError:
            continue
    report.licence_violations = [v.describe() for v in check_versions(versions, sys.prefix)]
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m getit_ml.environments NAME``: print the report as JSON; exit 1 if not ok."""
    parser = argparse.ArgumentParser(prog="python -m getit_ml.environments")
    parser.add_argument("name", choices=sorted(ENVIRONMENTS))
    report = probe(parser.parse_args(argv).name)
    sys.stdout.write(report.to_json() + "\n")
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
