"""Where the demo keeps its state: one working directory, a folder per layer.

A family's synthetic population (``DemoSpec.population``) has its marketplace under
``data/<population>`` and its feature store under ``features/<population>``; families that share
a population share both. The registry (``mlflow/``), the Optuna studies and the pipeline runs
(``pipelines/``) are shared by every family.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

#: Sub-folders of the demo's working directory, one per layer that keeps state there.
WORKSPACE_LAYOUT: Final = ("data", "features", "mlflow", "pipelines", "serving", "monitoring")


def data_dir(workdir: Path, population: str) -> Path:
    """The marketplace folder of ``population``."""
    return workdir / "data" / population


def store_dir(workdir: Path, population: str) -> Path:
    """The feature store root of ``population``."""
    return workdir / "features" / population
