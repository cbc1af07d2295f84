"""Explanations: faithful to a model where only known features matter, in words a checkout can
show, and the anchor search batched without changing its result."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from getit_ml.errors import UserError
from getit_ml.monitoring.explainer import (
    MISSING_SENTINEL,
    ExplainerConfig,
    ExplanationSpace,
    TabularExplainer,
)
from getit_ml.monitoring.schema import Reference
from getit_ml.monitoring.synthetic import FraudPopulation

KNOWN = ("is_new_device", "is_wallet_change", "amount_vs_avg_30d")


def _rule(population: FraudPopulation, rows: np.ndarray) -> np.ndarray:
    """Fraud when a new device pays far above the usual amount, or a new device comes with a
    wallet change: nothing else matters."""
    schema = population.schema
    new_device = rows[:, schema.index("is_new_device")] == 1
    wallet_change = rows[:, schema.index("is_wallet_change")] == 1
    ratio = np.nan_to_num(rows[:, schema.index("amount_vs_avg_30d")], nan=1.0)
    return (new_device & (ratio > 2.0)) | (new_device & wallet_change)


@pytest.fixture(scope="module")
def trained(population: FraudPopulation) -> tuple[Any, Reference, np.ndarray]:
    """A gradient-boosted model trained on the rule (every feature offered as input)."""
    rng = np.random.default_rng(11)
    sample = population.sample(12_000, rng)
    schema = population.schema
    # Enough positives to learn from: oversample new devices with wallet changes and large amounts.
    rows = sample.features
    boost = rng.random(len(rows)) < 0.25
    rows[boost, schema.index("is_new_device")] = 1.0
    labels = _rule(population, rows).astype(int)
    model = HistGradientBoostingClassifier(max_iter=80, random_state=0).fit(rows, labels)
    held_out = population.sample(4_000, np.random.default_rng(12)).features
    held_out[: len(held_out) // 4, schema.index("is_new_device")] = 1.0
    return model, Reference(schema, rows[:3_000], labels[:3_000]), held_out


def _predict(model: Any) -> Any:
    return lambda rows: model.predict_proba(rows)[:, 1]


def test_only_the_known_features_rank_top_and_the_anchor_names_them(
    trained: tuple[Any, Reference, np.ndarray], population: FraudPopulation
) -> None:
    model, reference, held_out = trained
    explainer = TabularExplainer(reference, _predict(model), ExplainerConfig(seed=1)).fit()
    scores = model.predict_proba(held_out)[:, 1]
    flagged = held_out[np.argsort(-scores)[:3]]
    assert (_rule(population, flagged)).all(), "the model should flag rule-matching payments"
    for explanation in explainer.explain(flagged):
        assert explanation["label"] == "fraud"
        values = explanation["attributions"]["values"]
        contributions = {v["feature"]: abs(v["contribution"]) for v in values}
        known_share = sum(contributions.get(k, 0.0) for k in KNOWN) / sum(contributions.values())
        assert known_share > 0.9, values
        top = [v["feature"] for v in values[:2]]
        assert set(top) <= set(KNOWN), values
        anchor = explanation["anchor"]
        assert anchor["features"], anchor
        assert set(anchor["features"]) <= set(KNOWN), anchor
        assert "is_new_device" in anchor["features"]
        assert anchor["rule"].startswith("IF ")
        assert anchor["rule"].endswith(" THEN fraud")
        assert anchor["precision"] >= 0.9
        assert "new device" in explanation["reasons"]
        codes = [r["code"] for r in explanation["reason_codes"]]
        assert "NEW_DEVICE" in codes
        assert set(codes) <= {"NEW_DEVICE", "WALLET_CHANGED", "AMOUNT_FAR_ABOVE_USUAL"}


def test_a_genuine_payment_gets_an_empty_anchor_and_no_fraud_label(
    trained: tuple[Any, Reference, np.ndarray],
) -> None:
    model, reference, held_out = trained
    explainer = TabularExplainer(reference, _predict(model), ExplainerConfig()).fit()
    scores = model.predict_proba(held_out)[:, 1]
    [explanation] = explainer.explain(held_out[np.argsort(scores)[:1]])
    assert explanation["label"] == "genuine"
    assert (
        explanation["anchor"]["rule"].endswith("genuine")
        or "genuine" in (explanation["anchor"]["rule"])
    )
    assert explanation["score"] < 0.5


def test_batching_the_anchor_search_changes_calls_not_results(
    trained: tuple[Any, Reference, np.ndarray],
) -> None:
    model, reference, held_out = trained
    scores = model.predict_proba(held_out)[:, 1]
    instance = held_out[int(np.argmax(scores))]
    config = ExplainerConfig(methods=("anchor",), seed=5, anchor_candidates=12)
    batched = TabularExplainer(reference, _predict(model), config).fit()
    plain = TabularExplainer(reference, _predict(model), config).fit()
    for sampler in plain._anchor.samplers:
        sampler.batch = False
    fast, slow = batched.explain_one(instance), plain.explain_one(instance)
    assert fast["anchor"]["rule"] == slow["anchor"]["rule"]
    assert fast["anchor"]["precision"] == pytest.approx(slow["anchor"]["precision"])
    assert fast["anchor"]["coverage"] == pytest.approx(slow["anchor"]["coverage"])
    assert fast["predictor_calls"] < slow["predictor_calls"]


def test_missing_values_survive_the_explanation_space(reference: Reference) -> None:
    space = ExplanationSpace(reference.schema)
    rows = reference.features[:200]
    moved = space.to_space(rows)
    assert not np.isnan(moved).any()
    assert (moved[np.isnan(rows)] != 0).all()
    numeric = [j for j, f in enumerate(reference.schema.features) if not f.is_discrete]
    assert (moved[:, numeric][np.isnan(rows[:, numeric])] == MISSING_SENTINEL).all()
    np.testing.assert_array_equal(np.isnan(space.to_model(moved)), np.isnan(rows))
    np.testing.assert_array_equal(np.nan_to_num(space.to_model(moved)), np.nan_to_num(rows))


def test_configuration_mistakes_are_clear(reference: Reference) -> None:
    with pytest.raises(UserError, match="unknown method"):
        ExplainerConfig(methods=("lime",))  # type: ignore[arg-type]
    with pytest.raises(UserError, match="threshold"):
        ExplainerConfig(threshold=1.5)
    explainer = TabularExplainer(
        reference, lambda rows: np.zeros(len(rows)), ExplainerConfig(methods=("kernel_shap",))
    ).fit()
    with pytest.raises(UserError, match="the model has 125 features"):
        explainer.explain(np.zeros((1, 3)))


def test_identical_rows_are_scored_once(reference: Reference) -> None:
    seen: list[int] = []

    def model(rows: np.ndarray) -> np.ndarray:
        seen.append(rows.shape[0])
        return np.nan_to_num(rows[:, 0], nan=-1.0) / 10

    explainer = TabularExplainer(reference, model, ExplainerConfig(methods=("kernel_shap",)))
    rows = reference.features[:3].copy()
    rows[1, 0] = np.nan
    batch = np.vstack([rows, rows[::-1], rows[1:2]])
    scores = explainer.predict_scores(batch)
    assert seen == [3]
    np.testing.assert_array_equal(scores, model(batch))
