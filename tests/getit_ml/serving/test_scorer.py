"""The scorer's semantics: the same scores as the model's own prediction, in both input forms;
missing values and unseen categories exactly as in training; the threshold; loading from the
registry only when the artefact's bytes match the registry's record."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from getit_ml.errors import UserError
from getit_ml.serving.protocol import InferenceRequest, ProtocolError, Tensor
from getit_ml.serving.scorer import BinaryTabularScorer, ScorerOptions, load_scorer
from getit_ml.training.xgb import load_model, predict_proba
from tests.getit_ml.serving.support import toy_frame


def _tensor(name: str, datatype: str, values: Any, shape: tuple[int, ...] | None = None) -> Tensor:
    dtype = {"BYTES": object, "FP64": np.float64, "BOOL": np.bool_, "INT64": np.int64}[datatype]
    array = np.asarray(values, dtype=dtype)
    return Tensor(name, datatype, shape or array.shape, array.reshape(shape or array.shape))


def _named(frame: pd.DataFrame, missing: np.ndarray | None = None) -> InferenceRequest:
    inputs = [
        _tensor("payment_method", "BYTES", frame["payment_method"].astype(str).tolist()),
        _tensor("amount_bdt", "FP64", frame["amount_bdt"].to_numpy()),
        _tensor("is_new_device", "BOOL", frame["is_new_device"].to_numpy()),
        _tensor("orders_30d", "INT64", frame["orders_30d"].to_numpy()),
    ]
    if missing is not None:
        inputs.append(_tensor("missing", "BOOL", missing))
    return InferenceRequest(tuple(inputs))


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return toy_frame(50, seed=3).drop(columns=["is_fraud"])


def _probability(scorer: BinaryTabularScorer, request: InferenceRequest) -> np.ndarray:
    return scorer.infer_sync(request).output("fraud_probability").data


def test_named_and_batch_inputs_score_like_the_model(
    scorer: BinaryTabularScorer, toy_model_dir: Path, frame: pd.DataFrame
) -> None:
    booster, schema = load_model(toy_model_dir)
    expected = predict_proba(booster, schema, frame)
    np.testing.assert_allclose(_probability(scorer, _named(frame)), expected, rtol=1e-6)
    batch = InferenceRequest((_tensor("features", "FP64", schema.encode(frame)),))
    np.testing.assert_allclose(_probability(scorer, batch), expected, rtol=1e-6)
    assert len(set(np.round(expected, 6))) > 5  # the model tells rows apart


def test_missing_values_are_nan_as_in_training(
    scorer: BinaryTabularScorer, toy_model_dir: Path, frame: pd.DataFrame
) -> None:
    booster, schema = load_model(toy_model_dir)
    with_nulls = frame.astype(object).copy()
    with_nulls.loc[::2, "amount_bdt"] = None
    with_nulls.loc[1::3, "payment_method"] = None
    with_nulls.loc[::5, "is_new_device"] = None
    expected = predict_proba(booster, schema, with_nulls)
    mask = with_nulls[schema.feature_names].isna().to_numpy()
    placeholders = frame.copy()  # any value under a missing flag is ignored
    got = _probability(scorer, _named(placeholders, mask))
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert not np.allclose(got, predict_proba(booster, schema, frame))


def test_an_unseen_category_counts_as_missing(
    scorer: BinaryTabularScorer, frame: pd.DataFrame
) -> None:
    unseen = frame.assign(payment_method="upay")  # not a category the model was trained on
    mask = np.zeros((len(frame), 4), dtype=bool)
    mask[:, 0] = True
    np.testing.assert_allclose(
        _probability(scorer, _named(unseen)), _probability(scorer, _named(frame, mask))
    )


def test_decision_follows_the_threshold(
    scorer: BinaryTabularScorer, toy_model_dir: Path, frame: pd.DataFrame
) -> None:
    threshold = float(np.median(_probability(scorer, _named(frame))))
    strict = load_scorer(model_dir=toy_model_dir, options=ScorerOptions(threshold=threshold))
    response = strict.infer_sync(_named(frame))
    probability = response.output("fraud_probability").data
    assert response.output("decision").data.tolist() == (probability >= threshold).tolist()
    assert response.parameters == {"threshold": threshold}
    assert 0 < response.output("decision").data.sum() < len(frame)
    with pytest.raises(UserError, match="threshold"):
        load_scorer(model_dir=toy_model_dir, options=ScorerOptions(threshold=1.5))


def test_requested_outputs_only(scorer: BinaryTabularScorer, frame: pd.DataFrame) -> None:
    from getit_ml.serving.protocol import RequestedOutput

    request = _named(frame)
    only = InferenceRequest(request.inputs, outputs=(RequestedOutput("decision"),))
    assert [o.name for o in scorer.infer_sync(only).outputs] == ["decision"]


def test_too_many_rows(toy_model_dir: Path, frame: pd.DataFrame) -> None:
    small = load_scorer(model_dir=toy_model_dir, options=ScorerOptions(max_rows=10))
    with pytest.raises(ProtocolError, match="at most 10") as caught:
        small.infer_sync(_named(frame))
    assert caught.value.status == 400


def test_a_missing_model_folder_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        load_scorer(model_dir=tmp_path / "nothing")
    with pytest.raises(UserError, match="exactly one"):
        load_scorer()


def test_registry_model_loads_only_with_matching_bytes(toy_model_dir: Path, tmp_path: Path) -> None:
    from getit_ml.registry.mlflow_registry import (
        ArtifactMismatchError,
        Lineage,
        RegistryConfig,
        artifact_sha256,
        promote,
        register_model_version,
    )

    config = RegistryConfig.embedded(tmp_path / "home")
    version = register_model_version(
        config,
        name="fraud",
        model_dir=toy_model_dir,
        metrics={"test_auprc": 0.9},
        params={},
        lineage=Lineage("snap", "fraud_scoring_v1", "run-1", "test"),
        experiment="serving-test",
    )
    promote(config, "fraud", version.version, reason="serving test")
    scorer = load_scorer(model_uri="models:/fraud@champion", registry=config)
    assert scorer.version == version.version
    # A folder with an expected digest: right bytes load, changed bytes are refused.
    copy = tmp_path / "copy"
    shutil.copytree(toy_model_dir, copy)
    load_scorer(model_dir=copy, expected_sha256=artifact_sha256(toy_model_dir))
    (copy / "metadata" / "extra.txt").write_text("tampered")
    with pytest.raises(ArtifactMismatchError):
        load_scorer(model_dir=copy, expected_sha256=artifact_sha256(toy_model_dir))
    # The registered artefact itself changed after registration: nothing is served.
    stored = next((tmp_path / "home" / "mlflow").rglob("model.json")).parent
    (stored / "metadata" / "extra.txt").write_text("tampered")
    with pytest.raises(ArtifactMismatchError):
        load_scorer(model_uri="models:/fraud@champion", registry=config)


@pytest.mark.parametrize("rows", [1, 5, 40])
def test_flat_forest_and_xgboost_agree(toy_model_dir: Path, rows: int) -> None:
    """Both engines, with missing values, on one row, a small batch and a batch for XGBoost."""
    booster, schema = load_model(toy_model_dir)
    frame = toy_frame(rows, seed=11).drop(columns=["is_fraud"]).astype(object)
    frame.loc[::3, "amount_bdt"] = None
    frame.loc[1::4, "payment_method"] = None
    expected = predict_proba(booster, schema, frame)
    mask = frame[schema.feature_names].isna().to_numpy()
    filled = toy_frame(rows, seed=11).drop(columns=["is_fraud"])
    fast = load_scorer(model_dir=toy_model_dir)
    plain = load_scorer(model_dir=toy_model_dir, options=ScorerOptions(engine="xgboost"))
    assert (fast.engine, plain.engine) == ("flat-forest", "xgboost")
    for scorer in (fast, plain):
        got = _probability(scorer, _named(filled, mask))
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)


def test_the_flat_forest_refuses_what_it_cannot_compute(toy_model_dir: Path) -> None:
    import xgboost as xgb

    from getit_ml.serving.forest import flat_forest, verified_forest

    rng = np.random.default_rng(0)
    data = xgb.DMatrix(rng.normal(size=(200, 3)), label=rng.normal(size=200))
    regression = xgb.train({"objective": "reg:squarederror"}, data, num_boost_round=3)
    assert flat_forest(regression) is None
    booster, _ = load_model(toy_model_dir)
    forest = verified_forest(booster)
    assert forest is not None
    assert forest.roots.size == booster.num_boosted_rounds()


# ------------------------------------------------------------------- values beyond float32
@pytest.mark.parametrize("value", [1e308, -3.5e38, np.inf, -np.inf])
def test_a_value_beyond_float32_is_a_400_naming_its_input(
    scorer: BinaryTabularScorer, frame: pd.DataFrame, value: float
) -> None:
    """1e308 is a fine FP64 but infinity in the trees' float32: refused, never scored."""
    rows = frame.head(3).copy()
    rows["amount_bdt"] = rows["amount_bdt"].astype(float)
    rows.loc[rows.index[2], "amount_bdt"] = value
    with pytest.raises(ProtocolError, match=r"input 'amount_bdt', row 2: .*float32") as caught:
        scorer.infer_sync(_named(rows))
    assert caught.value.status == 400
    batch = scorer.schema.encode(rows.assign(amount_bdt=1.0))
    batch[1, 1] = value
    with pytest.raises(ProtocolError, match=r"input 'features', column 1 \('amount_bdt'\), row 1"):
        scorer.infer_sync(InferenceRequest((_tensor("features", "FP64", batch),)))


def test_float32_limits_are_scored_and_missing_values_are_not_judged(
    scorer: BinaryTabularScorer, frame: pd.DataFrame
) -> None:
    limit = float(np.finfo(np.float32).max)
    rows = frame.head(2).copy()
    rows["amount_bdt"] = [limit, -limit]
    assert _probability(scorer, _named(rows)).shape == (2,)
    # Under a "missing" flag the placeholder is never used, so never judged; a NaN that gets
    # this far (the codec refuses NaN on the wire) is missing too, as in training.
    mask = np.zeros((2, 4), dtype=bool)
    mask[0, 1] = True
    flagged = _probability(scorer, _named(rows.assign(amount_bdt=[1e308, 10.0]), mask))
    nan = _probability(scorer, _named(rows.assign(amount_bdt=[np.nan, 10.0])))
    np.testing.assert_allclose(flagged, nan)
