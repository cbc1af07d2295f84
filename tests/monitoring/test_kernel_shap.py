"""Kernel SHAP in numpy: exact Shapley values when the budget covers every coalition."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from getit_ml.monitoring.kernel_shap import coalitions, kernel_shap


def _model(rows: np.ndarray) -> np.ndarray:
    """Interactions, a non-linearity and an inert last feature."""
    return np.tanh(rows[:, 0] * rows[:, 1] + 0.5 * rows[:, 2] ** 2 - rows[:, 3]) + 0 * rows[:, 4]


def _brute_force(x: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Interventional Shapley values by the definition."""
    m = x.size

    def value(coalition: tuple[int, ...]) -> float:
        rows = background.copy()
        rows[:, list(coalition)] = x[list(coalition)]
        return float(_model(rows).mean())

    phi = np.zeros(m)
    for j in range(m):
        others = [k for k in range(m) if k != j]
        for size in range(m):
            for subset in itertools.combinations(others, size):
                weight = math.factorial(size) * math.factorial(m - size - 1) / math.factorial(m)
                phi[j] += weight * (value((*subset, j)) - value(subset))
    return phi


def test_equals_the_shapley_values_when_every_coalition_fits() -> None:
    rng = np.random.default_rng(3)
    background = rng.normal(size=(6, 5))
    x = rng.normal(size=5)
    result = kernel_shap(_model, x, background, nsamples=100, screen=False)
    assert result.exact
    np.testing.assert_allclose(result.values, _brute_force(x, background), atol=1e-9)
    assert result.values.sum() == pytest.approx(result.prediction - result.base_value)


def test_screening_gives_inert_features_exactly_zero_and_keeps_the_rest() -> None:
    rng = np.random.default_rng(4)
    background = rng.normal(size=(6, 5))
    x = rng.normal(size=5)
    screened = kernel_shap(_model, x, background, nsamples=100, screen=True)
    assert screened.values[4] == 0.0
    np.testing.assert_allclose(screened.values, _brute_force(x, background), atol=1e-9)


def test_sampled_estimate_keeps_efficiency_and_finds_the_driver() -> None:
    rng = np.random.default_rng(5)
    width = 30
    background = rng.normal(size=(8, width))
    x = rng.normal(size=width)
    x[7] = 4.0

    def model(rows: np.ndarray) -> np.ndarray:
        return 2.0 * rows[:, 7] + 0.1 * rows[:, :7].sum(axis=1) + 0.05 * rows[:, 8:].sum(axis=1)

    result = kernel_shap(model, x, background, nsamples=200, screen=False)
    assert not result.exact
    assert result.values.sum() == pytest.approx(result.prediction - result.base_value)
    assert int(np.argmax(np.abs(result.values))) == 7
    # A linear model's Shapley value is w_j * (x_j - mean background_j).
    assert result.values[7] == pytest.approx(2.0 * (x[7] - background[:, 7].mean()), rel=0.05)


def test_missing_values_count_as_values() -> None:
    background = np.array([[np.nan, 1.0], [np.nan, 2.0]])
    x = np.array([np.nan, 5.0])

    def model(rows: np.ndarray) -> np.ndarray:
        return np.where(np.isnan(rows[:, 0]), 0.0, 1.0) + rows[:, 1]

    result = kernel_shap(model, x, background)
    assert result.values[0] == 0.0  # missing in the instance and everywhere in the background
    assert result.values[1] == pytest.approx(5.0 - 1.5)


def test_coalitions_are_weighted_by_the_shapley_kernel() -> None:
    masks, weights, exact = coalitions(4, 1000, np.random.default_rng(0))
    assert exact
    assert len(masks) == 2**4 - 2
    assert weights.sum() == pytest.approx(1.0)
    sizes = masks.sum(axis=1)
    # Per-coalition kernel weight is proportional to (m-1) / (C(m,s) s (m-s)).
    expected = {s: (3 / (math.comb(4, s) * s * (4 - s))) for s in (1, 2, 3)}
    ratio = {s: weights[sizes == s][0] / expected[s] for s in (1, 2, 3)}
    assert ratio[1] == pytest.approx(ratio[2]) == pytest.approx(ratio[3])
