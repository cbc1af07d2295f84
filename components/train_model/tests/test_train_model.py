"""train_model as a plain function and as a kfp.local task."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow.pyfunc
from kfp.dsl import Artifact, Dataset, Metrics, Model
from mlflow.models import Model as MlflowModel

from components.conftest import TrainingRun, run_locally
from components.train_model.component import train_model
from getit_ml.training.xgb import load_model


def _tuning_file(tmp_path: Path) -> Path:
    path = tmp_path / "tuning.json"
    path.write_text(json.dumps({"best_params": {"max_depth": 3, "learning_rate": 0.3}}))
    return path


def test_python_func_saves_a_model_for_kserve_and_mlflow(
    training_run: TrainingRun, tmp_path: Path
) -> None:
    model = Model(uri=str(tmp_path / "model"))
    metrics = Metrics(uri=str(tmp_path / "metrics"))
    train_model.python_func(
        family="fraud",
        training_set=Dataset(uri=str(training_run.training_set)),
        tuning=Artifact(uri=str(_tuning_file(tmp_path))),
        model=model,
        metrics=metrics,
    )
    folder = Path(model.path)
    # KServe's xgbserver refuses a folder with more than one model-like file at the top.
    assert [p.name for p in folder.iterdir() if p.suffix in {".json", ".bst", ".ubj"}] == [
        "model.json"
    ]
    booster, schema = load_model(folder)
    assert int(booster.attr("best_iteration")) + 1 == metrics.metadata["rounds"]
    assert 0 < metrics.metadata["validation_aucpr"] <= 1
    mlflow_model = MlflowModel.load(str(folder / "MLmodel"))
    assert mlflow_model.signature.inputs.input_names() == schema.feature_names
    example = mlflow_model.load_input_example(str(folder))
    scores = mlflow.pyfunc.load_model(str(folder)).predict(example)
    assert len(scores) == len(example)
    assert ((scores >= 0) & (scores <= 1)).all()


def test_runs_as_a_kfp_local_task(training_run: TrainingRun, tmp_path: Path) -> None:
    outputs = run_locally(
        train_model,
        tmp_path / "kfp",
        {
            "training_set": (training_run.training_set, Dataset),
            "tuning": (_tuning_file(tmp_path), Artifact),
        },
    )
    assert (outputs / "model" / "model.json").is_file()
    assert (outputs / "model" / "metadata" / "feature_schema.json").is_file()
