"""tune_hyperparameters as a plain function and as a kfp.local task."""

from __future__ import annotations

import json
from pathlib import Path

from kfp.dsl import Artifact, Dataset, Metrics

from components.conftest import TrainingRun, run_locally
from components.tune_hyperparameters.component import tune_hyperparameters
from getit_ml.training.tuning import sqlite_url


def _tune(training_run: TrainingRun, tmp_path: Path, storage: str, n_trials: int) -> dict:
    out = Artifact(uri=str(tmp_path / f"tuning-{n_trials}.json"))
    metrics = Metrics(uri=str(tmp_path / "metrics"))
    best = tune_hyperparameters.python_func(
        family="fraud",
        training_set=Dataset(uri=str(training_run.training_set)),
        snapshot_id=training_run.snapshot,
        tuning=out,
        metrics=metrics,
        n_trials=n_trials,
        timeout_s=300.0,
        storage_url=storage,
    )
    document = json.loads(Path(out.path).read_text())
    assert document["best_value"] == best
    assert metrics.metadata["trials"] == document["trials"]
    return document


def test_python_func_writes_the_best_trial_and_resumes_the_study(
    training_run: TrainingRun, tmp_path: Path
) -> None:
    storage = sqlite_url(tmp_path / "studies.db")
    first = _tune(training_run, tmp_path, storage, n_trials=2)
    assert first["trials"] == 2
    assert first["study_name"] == "fraud-" + training_run.snapshot.removeprefix("sha256:")[:16]
    assert 0 < first["best_value"] <= 1
    assert {"max_depth", "learning_rate"} <= set(first["best_params"])
    resumed = _tune(training_run, tmp_path, storage, n_trials=1)
    assert resumed["trials"] == 3  # the same study, continued: not a new one
    assert resumed["trials_this_run"] == 1
    assert resumed["best_value"] >= first["best_value"]


def test_runs_as_a_kfp_local_task(training_run: TrainingRun, tmp_path: Path) -> None:
    outputs = run_locally(
        tune_hyperparameters,
        tmp_path / "kfp",
        {"training_set": (training_run.training_set, Dataset)},
        snapshot_id=training_run.snapshot,
        n_trials=1,
        storage_url=sqlite_url(tmp_path / "studies.db"),
    )
    document = json.loads((outputs / "tuning").read_text())
    assert document["trials"] == 1
    assert document["best_rounds"] >= 1
