"""Training with early stopping, the saved model's layout, save/load round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from getit_ml.errors import UserError
from getit_ml.training import xgb as model
from getit_ml.training.dataset import fit_schema, to_matrix
from tests.getit_ml.training.support import noisy_matrix


def _frames(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    method = rng.choice(["bkash", "card", "cod"], size=rows)
    amount = rng.lognormal(6, 1, size=rows)
    score = (method == "card") * 1.5 + np.log(amount) / 3 + rng.normal(size=rows)
    return pd.DataFrame(
        {
            "payment_method": method,
            "amount_bdt": amount,
            "is_new_device": rng.random(rows) < 0.1,
            "noise": rng.normal(size=rows),
            "is_fraud": score > np.quantile(score, 0.9),
        }
    )


def test_early_stopping_keeps_only_the_best_trees() -> None:
    train, valid = noisy_matrix(3_000, seed=1), noisy_matrix(1_000, seed=2)
    booster = model.train_xgboost(
        train, valid, {"learning_rate": 0.3}, seed=0, num_boost_round=300,
        early_stopping_rounds=20, nthread=1,
    )  # fmt: skip
    best = int(booster.attr("best_iteration") or -1)
    assert booster.num_boosted_rounds() == best + 1 < 300
    assert float(booster.attr("scale_pos_weight") or 0) == pytest.approx(
        (train.rows - train.positives) / train.positives
    )
    refit = model.train_xgboost(train, None, seed=0, num_boost_round=7, nthread=1)
    assert refit.num_boosted_rounds() == 7


def test_early_stopping_outlasts_a_saturated_validation_aucpr() -> None:
    # Separable data: validation AUPRC is 1.0 from the first rounds on. Stopping on it would keep
    # a handful of trees with scores near 0.5; log-loss keeps improving, and so does the model.
    train, valid = noisy_matrix(2_000, seed=1), noisy_matrix(1_000, seed=2)
    separable = [
        type(part)(np.c_[part.label * 4.0, part.features[:, 1:]], part.label, part.feature_names)
        for part in (train, valid)
    ]
    booster = model.train_xgboost(*separable, {"learning_rate": 0.1}, seed=0, nthread=1,
                                  num_boost_round=400, early_stopping_rounds=20)  # fmt: skip
    assert float(booster.attr("validation_aucpr") or 0) == 1.0
    assert booster.num_boosted_rounds() > 50
    scores = model.predict_matrix(booster, separable[1].features, valid.feature_names)
    assert scores[valid.label == 1].min() > 0.9
    assert scores[valid.label == 0].max() < 0.1


def _replay(aucpr: list[float], logloss: list[float], patience: int) -> tuple[int, int]:
    """Feed a validation log to the stopping rule: (best round, round it stopped after)."""
    rule = model.PlateauAwareStopping(patience)
    for epoch in range(len(aucpr)):
        log = {"validation": {"aucpr": aucpr[: epoch + 1], "logloss": logloss[: epoch + 1]}}
        if rule.after_iteration(None, epoch, log):
            return rule.best_round, epoch
    return rule.best_round, len(aucpr) - 1


def test_the_stopping_rule_ranks_by_aucpr_then_logloss() -> None:
    # A plateau: AUPRC jitters below its round-1 peak by less than 0.001 while the log-loss
    # keeps falling; the rule follows the log-loss (XGBoost's would keep round 1).
    best, stopped = _replay([0.9, 0.99989, 0.99985, 0.99987, 0.99986],
                            [0.5, 0.40, 0.30, 0.20, 0.25], patience=3)  # fmt: skip
    assert (best, stopped) == (3, 4)
    # A real AUPRC gain (>= 0.001) wins over a lower log-loss.
    best, _ = _replay([0.80, 0.85, 0.84], [0.3, 0.4, 0.1], patience=5)
    assert best == 1
    # No better round for `patience` rounds: stop.
    assert _replay([0.8, 0.7, 0.7, 0.7, 0.7], [0.1, 0.2, 0.2, 0.2, 0.2], patience=2) == (0, 2)


def test_eval_metric_cannot_be_overridden() -> None:
    train = noisy_matrix(200, seed=1)
    with pytest.raises(UserError, match="eval_metric is fixed"):
        model.train_xgboost(train, train, {"eval_metric": "auc"}, seed=0, nthread=1)


def test_training_is_deterministic_given_the_seed() -> None:
    train, valid = noisy_matrix(2_000, seed=1), noisy_matrix(500, seed=2)
    params = {"subsample": 0.7, "colsample_bytree": 0.6}
    first = model.train_xgboost(train, valid, params, seed=5, num_boost_round=50, nthread=1)
    second = model.train_xgboost(train, valid, params, seed=5, num_boost_round=50, nthread=1)
    assert first.save_raw("json") == second.save_raw("json")


def test_save_and_load_give_identical_predictions(tmp_path: Path) -> None:
    train_frame, test_frame = _frames(3_000, seed=1), _frames(800, seed=2)
    schema = fit_schema(
        train_frame, ["payment_method", "amount_bdt", "is_new_device", "noise"], label="is_fraud"
    )
    train = to_matrix(train_frame, schema)
    booster = model.train_xgboost(train, to_matrix(_frames(800, seed=3), schema), seed=0,
                                  num_boost_round=100, nthread=1)  # fmt: skip
    before = model.predict_proba(booster, schema, test_frame)
    files = model.save_model(booster, schema, tmp_path / "fraud")
    # KServe's xgbserver loads the one model file at the top level; the schema sits below.
    top = sorted(p.name for p in (tmp_path / "fraud").iterdir() if p.is_file())
    assert top == ["model.json"]
    assert "learner" in json.loads(files.model.read_text(encoding="utf-8"))
    loaded, loaded_schema = model.load_model(tmp_path / "fraud")
    assert loaded_schema == schema
    after = model.predict_proba(loaded, loaded_schema, test_frame)
    np.testing.assert_array_equal(before, after)
    assert after.min() > 0.0
    assert after.max() < 1.0
    # Scoring by matrix (what a server with pre-encoded input does) gives the same numbers.
    matrix = model.predict_matrix(loaded, schema.encode(test_frame), schema.feature_names)
    np.testing.assert_array_equal(matrix, after)
    # KServe's xgbserver: Booster(model_file=...) and predict on an unnamed DMatrix, which a
    # booster saved with feature names refuses.
    stock = xgb.Booster(model_file=str(files.model))
    stock_scores = stock.predict(xgb.DMatrix(schema.encode(test_frame)))
    np.testing.assert_array_equal(stock_scores.astype(np.float64), after)


def test_save_refuses_a_schema_of_other_features(tmp_path: Path) -> None:
    frame = _frames(500, seed=1)
    schema = fit_schema(frame, ["amount_bdt", "noise"], label="is_fraud")
    booster = model.train_xgboost(to_matrix(frame, schema), None, seed=0, num_boost_round=3,
                                  nthread=1)  # fmt: skip
    other = fit_schema(frame, ["noise", "amount_bdt"], label="is_fraud")
    with pytest.raises(UserError, match="differ from the feature schema"):
        model.save_model(booster, other, tmp_path / "m")
    with pytest.raises(UserError, match=r"no model\.json"):
        model.load_model(tmp_path / "nothing-here")
