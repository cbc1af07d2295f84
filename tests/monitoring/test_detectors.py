"""Drift and outlier detectors against the reference."""

from __future__ import annotations

import numpy as np
import pytest

from getit_ml.errors import UserError
from getit_ml.monitoring.detectors import (
    DetectorConfig,
    Detectors,
    corrected_rejections,
)
from getit_ml.monitoring.schema import Reference
from getit_ml.monitoring.synthetic import FESTIVAL_MIX, FraudPopulation, fraud_probability


@pytest.fixture(scope="module")
def detectors(reference: Reference, population: FraudPopulation) -> Detectors:
    scores = fraud_probability(population.schema, reference.features)
    return Detectors(reference, DetectorConfig(seed=0), reference_scores=scores)


def test_bonferroni_and_benjamini_hochberg_by_hand() -> None:
    p = np.array([0.001, 0.008, 0.039, 0.041, 0.6])
    # Bonferroni at 0.05 over 5: p < 0.01.
    assert corrected_rejections(p, 0.05, "bonferroni").tolist() == [True, True, False, False, False]
    # BH: thresholds 0.01, 0.02, 0.03, 0.04, 0.05 -> the largest k with p_(k) <= k/5*0.05 is 2.
    assert corrected_rejections(p, 0.05, "fdr").tolist() == [True, True, False, False, False]
    p2 = np.array([0.01, 0.02, 0.03, 0.04, 0.05])
    assert corrected_rejections(p2, 0.05, "fdr").all()
    assert not corrected_rejections(p2, 0.05, "bonferroni").any()


def test_windows_from_the_reference_distribution_do_not_drift(
    detectors: Detectors, population: FraudPopulation
) -> None:
    rng = np.random.default_rng(100)
    alarms = 0
    for _ in range(8):
        window = population.sample(500, rng).features
        scores = fraud_probability(population.schema, window)
        result = detectors.run(window, scores, detectors.outliers(window))
        alarms += result.is_drift
        assert result.outlier_rate is not None
        assert result.outlier_rate < 0.05
    assert alarms <= 1


def test_a_mean_shift_of_one_feature_is_found_and_named(
    detectors: Detectors, population: FraudPopulation
) -> None:
    window = population.sample(
        500, np.random.default_rng(101), mean_shift={"amount_log": 0.5}
    ).features
    result = detectors.run(window)
    assert result.is_drift
    assert result.drifted_features == ["amount_log"]
    assert result.feature_p_values["amount_log"] < 0.05 / len(detectors.tested)


def test_a_payment_mix_change_is_found(detectors: Detectors, population: FraudPopulation) -> None:
    window = population.sample(500, np.random.default_rng(102), payment_mix=FESTIVAL_MIX).features
    result = detectors.run(window)
    assert result.is_drift
    assert "payment_method" in result.drifted_features


def test_a_change_in_the_missing_rate_is_drift(
    detectors: Detectors, population: FraudPopulation
) -> None:
    window = population.sample(500, np.random.default_rng(103)).features
    column = population.schema.index("amount_vs_avg_30d")
    window[:250, column] = np.nan  # the feature store stopped answering for half the payments
    assert "amount_vs_avg_30d" in detectors.run(window).drifted_features


def test_shifted_scores_are_drift(detectors: Detectors, population: FraudPopulation) -> None:
    window = population.sample(500, np.random.default_rng(104)).features
    scores = np.clip(fraud_probability(population.schema, window) + 0.2, 0, 1)
    result = detectors.run(window, scores)
    assert result.score_p_value is not None
    assert result.score_p_value < 1e-6
    assert result.drifted_features == ["<score>"]


def test_the_features_the_schema_names_are_left_out(detectors: Detectors) -> None:
    ignored = set(detectors.schema.monitoring.drift_ignored)
    assert "hour_local" in ignored  # the fraud-shaped schema's calendar context
    assert not ignored & set(detectors.tested_names)
    assert len(detectors.tested_names) == detectors.schema.width - len(ignored)


def test_extreme_instances_are_outliers(detectors: Detectors, population: FraudPopulation) -> None:
    normal = population.sample(200, np.random.default_rng(105)).features
    extreme = normal.copy()
    numeric = [j for j, f in enumerate(population.schema.features) if not f.is_discrete]
    extreme[:, numeric] = np.nan_to_num(extreme[:, numeric]) * 50 + 1_000
    flags_normal, flags_extreme = detectors.outliers(normal), detectors.outliers(extreme)
    assert flags_normal is not None
    assert flags_extreme is not None
    assert flags_normal.mean() < 0.05
    assert flags_extreme.mean() > 0.95


def test_mahalanobis_works_too(reference: Reference, population: FraudPopulation) -> None:
    detectors = Detectors(reference, DetectorConfig(outlier="mahalanobis", compare_scores=False))
    normal = population.sample(300, np.random.default_rng(106)).features
    flags = detectors.outliers(normal)
    assert flags is not None
    assert flags.mean() < 0.2


def test_configuration_mistakes_are_clear(reference: Reference) -> None:
    with pytest.raises(UserError, match="p_val"):
        DetectorConfig(p_val=0)
    with pytest.raises(UserError, match="not in the feature schema"):
        Detectors(reference, DetectorConfig(ignore_features=("no_such_feature",)))
    with pytest.raises(UserError, match="unknown correction"):
        DetectorConfig(correction="holm")  # type: ignore[arg-type]
