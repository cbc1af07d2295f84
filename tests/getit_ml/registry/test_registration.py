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
    higher_is_better,
    register_and_promote,
    rescore_champion,
)
from getit_ml.training.dataset import fit_schema, to_matrix
from getit_ml.training.xgb import save_model, train_xgboost

LINEAGE = Lineage("sha256:abc", "fraud_scoring_v1", "local-test", "deadbeef")


def _frame(rows: int, seed: int, signal: str) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(size=rows)})
    frame["is_fraud"] = frame[signal] + rng.normal(scale=0.3, size=rows) > 1.5
    frame["amount_bdt"] = 500.0
    return frame


def _model(tmp_path: Path, name: str, frame: pd.DataFrame, features: dict[str, str]) -> Path:
    schema = fit_schema(frame, features)
    matrix = to_matrix(frame, schema)
    booster = train_xgboost(matrix, matrix, seed=0, num_boost_round=20)
    save_model(booster, schema, tmp_path / name)
    return tmp_path / name


def _training_set(tmp_path: Path, test: pd.DataFrame) -> Path:
    folder = tmp_path / "training_set"
    folder.mkdir()
    test.to_parquet(folder / "test.parquet")
    return folder


def _evaluation(tmp_path: Path, name: str, auprc: float) -> Path:
    folder = tmp_path / f"evaluation-{name}"
    folder.mkdir()
    (folder / "evaluation.json").write_text(json.dumps({"metrics": {"test_auprc": auprc}}))
    return folder


def test_direction_of_metrics() -> None:
    assert higher_is_better("test_auprc")
    assert not higher_is_better("test_expected_cost_bdt")
    assert not higher_is_better("test_brier")


def test_a_better_recorded_champion_loses_when_rescored_on_the_new_test_set(
    tmp_path: Path,
) -> None:
    """The champion's record says 0.99 (another month's test set); on this test set it is
    worse than the challenger, and the decision follows this test set."""
    config = RegistryConfig.from_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    test = _frame(2_000, 1, "a")
    training = _training_set(tmp_path, test)
    # The champion learned a feature that does not matter on this data.
    old = _model(tmp_path, "old", _frame(2_000, 2, "b"), {"a": "float64", "b": "float64"})
    register_and_promote(config, name="fraud", model_dir=old,
                         evaluation_dir=_evaluation(tmp_path, "old", 0.99),
                         training_dir=training, lineage=LINEAGE, params={},
                         experiment="t", metric="test_auprc", margin=0.005)  # fmt: skip
    new = _model(tmp_path, "new", _frame(2_000, 3, "a"), {"a": "float64", "b": "float64"})
    result = register_and_promote(config, name="fraud", model_dir=new,
                                  evaluation_dir=_evaluation(tmp_path, "new", 0.90),
                                  training_dir=training, lineage=LINEAGE, params={},
                                  experiment="t", metric="test_auprc", margin=0.005)  # fmt: skip
    assert result.champion_score is not None
    assert result.champion_score.version == "1"
    assert result.champion_score.value is not None
    assert result.champion_score.value < 0.5
    assert result.decision.promoted
    assert result.decision.champion_value == pytest.approx(result.champion_score.value)
    champion = next(v for v in list_versions(config, "fraud") if "champion" in v.aliases)
    assert champion.version == "2"


def test_a_champion_that_cannot_be_rescored_falls_back_to_its_record(tmp_path: Path) -> None:
    config = RegistryConfig.from_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    test = _frame(1_000, 1, "a")
    training = _training_set(tmp_path, test)
    frame = _frame(1_000, 2, "a").assign(c=1.0)
    old = _model(tmp_path, "old", frame, {"a": "float64", "c": "float64"})
    register_and_promote(config, name="fraud", model_dir=old,
                         evaluation_dir=_evaluation(tmp_path, "old", 0.95),
                         training_dir=training, lineage=LINEAGE, params={},
                         experiment="t", metric="test_auprc", margin=0.005)  # fmt: skip
    score = rescore_champion(config, "fraud", test, "test_auprc")
    assert score is not None
    assert score.value is None
    assert "lacks 1 feature(s): c" in score.note
    new = _model(tmp_path, "new", _frame(1_000, 3, "a"), {"a": "float64", "b": "float64"})
    result = register_and_promote(config, name="fraud", model_dir=new,
                                  evaluation_dir=_evaluation(tmp_path, "new", 0.9),
                                  training_dir=training, lineage=LINEAGE, params={},
                                  experiment="t", metric="test_auprc", margin=0.005)  # fmt: skip
    assert not result.decision.promoted  # 0.90 against the champion's recorded 0.95
    assert "0.9500" in result.decision.reason


def test_an_unknown_metric_is_refused_before_anything_is_registered(tmp_path: Path) -> None:
    config = RegistryConfig.from_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    model = _model(tmp_path, "m", _frame(500, 1, "a"), {"a": "float64"})
    with pytest.raises(UserError, match="not among the evaluation's metrics"):
        register_and_promote(config, name="fraud", model_dir=model,
                             evaluation_dir=_evaluation(tmp_path, "m", 0.9),
                             training_dir=_training_set(tmp_path, _frame(100, 1, "a")),
                             lineage=LINEAGE, params={}, experiment="t",
                             metric="test_f1", margin=0.0)  # fmt: skip
    assert rescore_champion(config, "fraud", _frame(10, 1, "a"), "test_auprc") is None


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
