"""Registration with champion gating: the champion is re-scored on the challenger's test set."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from getit_ml.errors import UserError
from getit_ml.registry.mlflow_registry import Lineage, RegistryConfig, list_versions
from getit_ml.registry.registration import (
    RegistrationResult,
    Rescorer,
    metric_is_higher_better,
    register_and_promote,
    rescore_champion,
)
from getit_ml.training.dataset import fit_schema, to_matrix
from getit_ml.training.evaluation import average_precision, brier_score
from getit_ml.training.xgb import load_model, predict_proba, save_model, train_xgboost

LINEAGE = Lineage("sha256:abc", "fraud_scoring_v1", "local-test", "deadbeef")


def _frame(rows: int, seed: int, signal: str) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(size=rows)})
    frame["is_fraud"] = frame[signal] + rng.normal(scale=0.3, size=rows) > 1.5
    frame["amount_bdt"] = 500.0
    return frame


def _model(tmp_path: Path, name: str, frame: pd.DataFrame, features: dict[str, str]) -> Path:
    schema = fit_schema(frame, features, label="is_fraud")
    matrix = to_matrix(frame, schema)
    booster = train_xgboost(matrix, matrix, seed=0, num_boost_round=20)
    save_model(booster, schema, tmp_path / name)
    return tmp_path / name


def _rescorer(test: pd.DataFrame) -> Rescorer:
    """What a family's trainer does: the champion's metric on this run's test part."""
    scores = {"test_auprc": average_precision, "test_brier": brier_score}

    def rescore(model_dir: Path, metric: str) -> float | None:
        if metric not in scores:
            return None
        booster, schema = load_model(model_dir)
        return scores[metric](test["is_fraud"], predict_proba(booster, schema, test))

    return rescore


def _evaluation(tmp_path: Path, name: str, auprc: float, brier: float = 0.1) -> Path:
    folder = tmp_path / f"evaluation-{name}"
    folder.mkdir()
    document = {
        "metrics": {"test_auprc": auprc, "test_brier": brier, "test_rows": 100.0},
        "directions": {"test_auprc": "maximize", "test_brier": "minimize"},
        "promotion_metric": "test_auprc",
    }
    (folder / "evaluation.json").write_text(json.dumps(document))
    return folder


def _register(
    config: RegistryConfig,
    model: Path,
    evaluation: Path,
    test: pd.DataFrame,
    metric: str | None = None,
) -> RegistrationResult:
    return register_and_promote(
        config,
        name="fraud",
        model_dir=model,
        evaluation_dir=evaluation,
        lineage=LINEAGE,
        params={},
        experiment="t",
        rescore=_rescorer(test),
        margin=0.005,
        metric=metric,
    )


def test_the_direction_is_the_evaluations_not_a_guess() -> None:
    evaluation = {"directions": {"test_auprc": "maximize", "test_cost": "minimize"}}
    assert metric_is_higher_better(evaluation, "test_auprc")
    assert not metric_is_higher_better(evaluation, "test_cost")
    with pytest.raises(UserError, match="no direction for 'test_rows'"):
        metric_is_higher_better(evaluation, "test_rows")


def test_a_better_recorded_champion_loses_when_rescored_on_the_new_test_set(
    tmp_path: Path,
) -> None:
    """The champion's record says 0.99 (another month's test set); on this test set it is
    worse than the challenger, and the decision follows this test set."""
    config = RegistryConfig.from_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    test = _frame(2_000, 1, "a")
    # The champion learned a feature that does not matter on this data.
    old = _model(tmp_path, "old", _frame(2_000, 2, "b"), {"a": "float64", "b": "float64"})
    _register(config, old, _evaluation(tmp_path, "old", 0.99), test)
    new = _model(tmp_path, "new", _frame(2_000, 3, "a"), {"a": "float64", "b": "float64"})
    result = _register(config, new, _evaluation(tmp_path, "new", 0.90), test)
    assert result.champion_score is not None
    assert result.champion_score.version == "1"
    assert result.champion_score.value is not None
    assert result.champion_score.value < 0.5
    assert result.decision.promoted
    assert result.decision.metric == "test_auprc"  # the evaluation's promotion metric
    assert result.decision.champion_value == pytest.approx(result.champion_score.value)
    champion = next(v for v in list_versions(config, "fraud") if "champion" in v.aliases)
    assert champion.version == "2"
    assert champion.metric_name == "test_auprc"


def test_a_minimised_metric_promotes_the_lower_value(tmp_path: Path) -> None:
    """On the Brier score (declared ``minimize``) the champion's lower re-scored loss wins, even
    though the challenger's own record claims a lower one."""
    config = RegistryConfig.from_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    test = _frame(2_000, 1, "a")
    good = _model(tmp_path, "good", _frame(2_000, 3, "a"), {"a": "float64", "b": "float64"})
    _register(config, good, _evaluation(tmp_path, "good", 0.9), test, "test_brier")
    bad = _model(tmp_path, "bad", _frame(2_000, 2, "b"), {"a": "float64", "b": "float64"})
    # The challenger's record (0.05) claims to beat the champion's re-scored loss; the
    # challenger is compared by its record, the champion re-scored: lower is better here.
    result = _register(config, bad, _evaluation(tmp_path, "bad", 0.9, brier=0.5), test,
                       "test_brier")  # fmt: skip
    assert result.champion_score is not None
    assert result.champion_score.value is not None
    assert result.champion_score.value < 0.5
    assert not result.decision.promoted


def test_a_champion_that_cannot_be_rescored_falls_back_to_its_record(tmp_path: Path) -> None:
    config = RegistryConfig.from_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    test = _frame(1_000, 1, "a")
    frame = _frame(1_000, 2, "a").assign(c=1.0)
    old = _model(tmp_path, "old", frame, {"a": "float64", "c": "float64"})
    _register(config, old, _evaluation(tmp_path, "old", 0.95), test)
    score = rescore_champion(config, "fraud", "test_auprc", _rescorer(test))
    assert score is not None
    assert score.value is None
    assert "lacks 1 feature(s): c" in score.note
    new = _model(tmp_path, "new", _frame(1_000, 3, "a"), {"a": "float64", "b": "float64"})
    result = _register(config, new, _evaluation(tmp_path, "new", 0.9), test)
    assert not result.decision.promoted  # 0.90 against the champion's recorded 0.95
    assert "0.9500" in result.decision.reason


def test_an_unknown_metric_is_refused_before_anything_is_registered(tmp_path: Path) -> None:
    config = RegistryConfig.from_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    model = _model(tmp_path, "m", _frame(500, 1, "a"), {"a": "float64"})
    test = _frame(100, 1, "a")
    with pytest.raises(UserError, match="not among the evaluation's metrics"):
        _register(config, model, _evaluation(tmp_path, "m", 0.9), test, "test_f1")
    with pytest.raises(UserError, match="no direction"):
        _register(config, model, _evaluation(tmp_path, "n", 0.9), test, "test_rows")
    assert rescore_champion(config, "fraud", "test_auprc", _rescorer(test)) is None


def test_registry_follows_the_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from getit_ml.settings import load_settings

    embedded = RegistryConfig.from_settings(load_settings(home=tmp_path))
    assert embedded.tracking_uri == f"sqlite:///{(tmp_path / 'mlflow' / 'mlflow.db').resolve()}"
    assert embedded.artifact_location == str((tmp_path / "mlflow" / "artifacts").resolve())
    monkeypatch.setenv("GETIT_ML_MLFLOW_TRACKING_URI", "postgresql://mlflow:secret@db:5432/mlflow")
    monkeypatch.setenv("GETIT_ML_MLFLOW_ARTIFACT_LOCATION", "s3://getit-ml-models/mlflow")
    production = RegistryConfig.from_settings(load_settings())
    assert production.tracking_uri.startswith("postgresql+psycopg://")
    assert production.artifact_location == "s3://getit-ml-models/mlflow"
    assert "secret" not in production.display_uri
    monkeypatch.setenv("GETIT_ML_PROMOTION_MARGIN", "-0.1")
    with pytest.raises(UserError, match="GETIT_ML_PROMOTION_MARGIN"):
        load_settings()
