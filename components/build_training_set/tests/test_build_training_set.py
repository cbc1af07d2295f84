"""build_training_set as a plain function and as a kfp.local task."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from kfp.dsl import Artifact, Dataset, Metrics

from components.build_training_set.component import build_training_set
from components.conftest import TrainingRun, run_locally
from getit_ml.training.dataset import FeatureSchema


def test_python_func_splits_by_time_and_fits_the_schema_on_train(
    training_run: TrainingRun, tmp_path: Path
) -> None:
    out = Dataset(uri=str(tmp_path / "training_set"))
    metrics = Metrics(uri=str(tmp_path / "metrics"))
    build_training_set.python_func(
        family="fraud",
        data_dir=str(training_run.market),
        snapshot_id=training_run.snapshot,
        feature_store=Artifact(uri=str(training_run.store)),
        training_set=out,
        metrics=metrics,
        validation_fraction=0.2,
        test_fraction=0.1,
    )
    folder = Path(out.path)
    parts = {p: pd.read_parquet(folder / f"{p}.parquet") for p in ("train", "validation", "test")}
    assert parts["train"]["event_timestamp"].max() < parts["validation"]["event_timestamp"].min()
    assert parts["validation"]["event_timestamp"].max() < parts["test"]["event_timestamp"].min()
    total = sum(len(p) for p in parts.values())
    assert abs(len(parts["test"]) / total - 0.1) < 0.01
    assert abs(len(parts["validation"]) / total - 0.2) < 0.01
    assert all(p["is_fraud"].sum() > 0 for p in parts.values())
    schema = FeatureSchema.read(folder / "feature_schema.json")
    assert schema.metadata["data_snapshot"] == training_run.snapshot
    # Categories come from train alone: a method seen only later would be "unseen", not a code.
    methods = next(f for f in schema.features if f.name == "payment_method").categories
    assert set(methods) <= set(parts["train"]["payment_method"])
    split = json.loads((folder / "split.json").read_text())
    assert metrics.metadata["test_rows"] == split["test_rows"] == len(parts["test"])
    assert out.metadata["snapshot_id"] == training_run.snapshot


def test_runs_as_a_kfp_local_task(training_run: TrainingRun, tmp_path: Path) -> None:
    outputs = run_locally(
        build_training_set,
        tmp_path / "kfp",
        {"feature_store": (training_run.store, Artifact)},
        data_dir=str(training_run.market),
        snapshot_id=training_run.snapshot,
    )
    assert (outputs / "training_set" / "test.parquet").is_file()
    assert (outputs / "training_set" / "feature_schema.json").is_file()
