"""Shared inputs of the training components' tests, built once per session through the real
steps: a generated marketplace, its feature store (offline sources and applied definitions; the
training set only needs the offline side), the training-set folder and a trained model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kfp import dsl, local
from kfp.dsl import Artifact

from getit_ml.data.generator import MarketplaceConfig, generate
from getit_ml.data.snapshot import snapshot_id
from getit_ml.families import get_family
from getit_ml.features.engineering import build_offline_features
from getit_ml.features.store import StoreLayout, apply_definitions, open_store
from getit_ml.settings import load_settings

#: About 20,000 payments with 150 frauds: every time-split part holds a few dozen.
TRAINING_MARKET = MarketplaceConfig(customers=60_000, days=90, seed=11)
#: Small, fast boosters: the tests check the plumbing, benchmarks check the quality.
FAST_PARAMS = {"max_depth": 4, "learning_rate": 0.3}


@dataclass(frozen=True)
class TrainingRun:
    market: Path
    snapshot: str
    store: Path
    training_set: Path
    model: Path
    evaluation: Path


@pytest.fixture(scope="session")
def training_run(tmp_path_factory: pytest.TempPathFactory) -> TrainingRun:
    root = tmp_path_factory.mktemp("training-run")
    market = root / "market"
    generate(TRAINING_MARKET, market)
    settings = load_settings()
    build_offline_features(market, StoreLayout(root / "store").offline_dir)
    apply_definitions(open_store(settings, root / "store"), settings.feature_repo)
    snapshot = snapshot_id(market)
    trainer = get_family("fraud").trainer
    trainer.build_training_set(
        settings, market, root / "store", root / "training_set", fractions=None,
        snapshot_id=snapshot,
    )  # fmt: skip
    trainer.train(root / "training_set", root / "model", params=FAST_PARAMS, seed=0)
    trainer.evaluate(root / "training_set", root / "model", root / "evaluation", {})
    return TrainingRun(
        market, snapshot, root / "store", root / "training_set", root / "model", root / "evaluation"
    )


def run_locally(
    component: Any,
    pipeline_root: Path,
    imports: dict[str, tuple[Path, type[Artifact]]],
    **arguments: Any,
) -> Path:
    """Run ``component`` as a kfp.local task of a one-step pipeline whose artefact inputs are
    ``dsl.importer``s of existing folders (a local task alone cannot take an artefact input).
    Returns the task's output folder (its outputs are sub-folders named after them). A
    component that takes a family runs the fraud family's steps unless told otherwise."""
    if "family" in (component.component_spec.inputs or {}):
        arguments.setdefault("family", "fraud")

    @dsl.pipeline(name="component-test")
    def one_step():  # type: ignore[no-untyped-def]  # kfp reads the annotation: none here
        inputs = {
            name: dsl.importer(artifact_uri=str(path), artifact_class=kind, reimport=True).output
            for name, (path, kind) in imports.items()
        }
        component(**inputs, **arguments)

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(pipeline_root))
    one_step()
    task_name = component.component_spec.name.replace("_", "-")
    found = [p for p in pipeline_root.glob(f"*/{task_name}") if p.is_dir()]
    assert len(found) == 1, f"expected one output folder of {task_name}, found {found}"
    return found[0]
