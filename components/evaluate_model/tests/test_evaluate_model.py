"""evaluate_model as a plain function and as a kfp.local task."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Metrics, Model

from components.conftest import TrainingRun, run_locally
from components.evaluate_model.component import evaluate_model
from getit_ml.training.evaluation import average_precision
from getit_ml.training.xgb import load_model, predict_proba


def test_python_func_reports_the_test_part_at_the_validation_threshold(
    training_run: TrainingRun, tmp_path: Path
) -> None:
    plots = HTML(uri=str(tmp_path / "plots.html"))
    evaluation = Artifact(uri=str(tmp_path / "evaluation"))
    metrics = Metrics(uri=str(tmp_path / "metrics"))
    classification = ClassificationMetrics(uri=str(tmp_path / "classification"))
    test_auprc = evaluate_model.python_func(
        family="fraud",
        training_set=Dataset(uri=str(training_run.training_set)),
        model=Model(uri=str(training_run.model)),
        evaluation=evaluation,
        metrics=metrics,
        classification_metrics=classification,
        plots=plots,
        options={"review_rate": 0.01, "false_alarm_cost_bdt": 100.0},
    )
    # The figure is recomputed here from the model and the test part, independently.
    test = pd.read_parquet(training_run.training_set / "test.parquet")
    booster, schema = load_model(training_run.model)
    expected = average_precision(test["is_fraud"].to_numpy(), predict_proba(booster, schema, test))
    assert np.isclose(test_auprc, expected)
    assert np.isclose(metrics.metadata["test_auprc"], expected)
    assert metrics.metadata["test_rows"] == len(test)
    document = json.loads((Path(evaluation.path) / "evaluation.json").read_text())
    assert document["threshold_source"] == "cost-optimal on the validation part"
    assert document["threshold"] == metrics.metadata["test_threshold"]
    assert {p["pattern"] for p in document["per_pattern"]} <= set(test["fraud_pattern"].dropna())
    matrix = classification.metadata["confusionMatrix"]
    assert sum(sum(row["row"]) for row in matrix["rows"]) == len(test)
    assert len(classification.metadata["confidenceMetrics"]) > 2
    page = Path(plots.path).read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<img") == 3  # the PR, ROC and calibration plots on one page
    assert document["promotion_metric"] == "test_auprc"
    assert document["directions"]["test_auprc"] == "maximize"
    assert document["directions"]["test_expected_cost_bdt"] == "minimize"
    for name in ("pr", "roc", "calibration"):
        assert (Path(evaluation.path) / f"{name}.png").read_bytes()[:4] == b"\x89PNG"


def test_runs_as_a_kfp_local_task(training_run: TrainingRun, tmp_path: Path) -> None:
    outputs = run_locally(
        evaluate_model,
        tmp_path / "kfp",
        {
            "training_set": (training_run.training_set, Dataset),
            "model": (training_run.model, Model),
        },
    )
    assert (outputs / "evaluation" / "evaluation.json").is_file()
    assert (outputs / "plots").read_text().startswith("<!DOCTYPE html>")
