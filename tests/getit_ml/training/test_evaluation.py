"""Fraud metrics against hand calculations (and scikit-learn where installed), costs, plots."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from getit_ml.errors import UserError
from getit_ml.training import evaluation as ev

# The textbook example (scikit-learn's documentation): ranked by score the labels read
# 1 (0.8), 0 (0.4), 1 (0.35), 0 (0.1).
Y = np.array([0, 0, 1, 1])
S = np.array([0.1, 0.4, 0.35, 0.8])


def test_roc_auc_and_average_precision_by_hand() -> None:
    # Pairs (fraud, genuine) ranked right: (0.8, 0.1), (0.8, 0.4), (0.35, 0.1) = 3 of 4.
    assert ev.roc_auc(Y, S) == pytest.approx(0.75)
    # Recall steps of 0.5 at precision 1/1 and 2/3: 0.5 * 1 + 0.5 * 2/3.
    assert ev.average_precision(Y, S) == pytest.approx(0.5 + 1 / 3)


def test_ties_count_together() -> None:
    # One fraud and one genuine payment with the same score: a coin toss.
    assert ev.roc_auc([1, 0], [0.5, 0.5]) == pytest.approx(0.5)
    # Flagging the tie flags both: precision 1/2 at recall 1.
    assert ev.average_precision([1, 0], [0.5, 0.5]) == pytest.approx(0.5)
    assert ev.average_precision([1, 0, 0], [0.9, 0.5, 0.5]) == pytest.approx(1.0)


def test_metrics_agree_with_scikit_learn() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(4)
    for _ in range(30):
        y = rng.random(200) < 0.1
        y[:2] = [True, False]
        s = rng.integers(0, 20, size=200) / 19.0  # many ties
        assert ev.roc_auc(y, s) == pytest.approx(metrics.roc_auc_score(y, s), abs=1e-12)
        assert ev.average_precision(y, s) == pytest.approx(
            metrics.average_precision_score(y, s), abs=1e-12
        )
        assert ev.brier_score(y, s) == pytest.approx(metrics.brier_score_loss(y, s), abs=1e-12)
        fpr, tpr, _ = metrics.roc_curve(y, s, drop_intermediate=False)
        curve = ev.roc_curve(y, s)
        assert np.allclose(curve.x, fpr)
        assert np.allclose(curve.y, tpr)


def test_recall_at_review_rate() -> None:
    # 10 payments, 3 fraud; a 20% budget reviews the two highest scores: one fraud, one not.
    y = [1, 0, 0, 1, 0, 0, 0, 1, 0, 0]
    s = [0.9, 0.8, 0.1, 0.3, 0.2, 0.1, 0.1, 0.7, 0.0, 0.05]
    budget = ev.recall_at_review_rate(y, s, 0.2)
    assert (budget.reviewed, budget.recall, budget.precision) == (2, pytest.approx(1 / 3), 0.5)
    assert ev.recall_at_review_rate(y, s, 0.3).recall == pytest.approx(2 / 3)
    with pytest.raises(UserError, match="review rate"):
        ev.recall_at_review_rate(y, s, 0.0)


# Five payments by descending score; a false alarm costs 100 taka.
#   flag nothing: 1000 + 30 missed        = 1030
#   flag 0.9:     30 missed               =   30   <- cheapest: the 30-taka fraud is not worth
#   flag 0.8:     30 + 100                =  130      a 100-taka review
#   flag 0.7:     100                     =  100
#   flag 0.6:     200; flag all: 300
COST_Y = np.array([1, 0, 1, 0, 0])
COST_S = np.array([0.9, 0.8, 0.7, 0.6, 0.1])
COST_AMOUNTS = np.array([1_000.0, 50.0, 30.0, 20.0, 10.0])


def test_cost_optimal_threshold_by_hand() -> None:
    curve = ev.cost_curve(COST_Y, COST_S, COST_AMOUNTS, cost_fp_bdt=100.0)
    assert curve.y.tolist() == [1030.0, 30.0, 130.0, 100.0, 200.0, 300.0]
    assert curve.x.tolist() == [0, 1, 2, 3, 4, 5]
    best = ev.cost_optimal_threshold(COST_Y, COST_S, COST_AMOUNTS, cost_fp_bdt=100.0)
    # Between the last score flagged (0.9) and the next one below (0.8).
    assert best.threshold == pytest.approx(0.85)
    assert (best.expected_cost_bdt, best.flagged) == (30.0, 1)
    at = ev.cost_at_threshold(COST_Y, COST_S, COST_AMOUNTS, best.threshold, cost_fp_bdt=100.0)
    assert (at.expected_cost_bdt, at.flagged) == (30.0, 1)
    # Cheaper reviews make the small fraud worth catching: flag down to 0.7, one 10-taka alarm.
    cheap = ev.cost_optimal_threshold(COST_Y, COST_S, COST_AMOUNTS, cost_fp_bdt=10.0)
    assert (cheap.threshold, cheap.expected_cost_bdt) == (pytest.approx(0.65), 10.0)


def test_evaluate_reports_the_given_threshold_not_the_hindsight_one() -> None:
    result = ev.evaluate(COST_Y, COST_S, COST_AMOUNTS, cost_fp_bdt=100.0, threshold=0.65)
    assert result.threshold_source == "given"
    assert result.expected_cost_bdt == 100.0  # flags 0.9, 0.8, 0.7
    assert result.best_possible_cost_bdt == 30.0
    assert result.cost_without_model_bdt == 1_030.0
    assert result.confusion.rows() == [[2, 1], [0, 2]]
    chosen = ev.evaluate(COST_Y, COST_S, COST_AMOUNTS, cost_fp_bdt=100.0)
    assert chosen.threshold_source == "chosen on this data"
    assert chosen.expected_cost_bdt == 30.0


def test_calibration_and_brier_by_hand() -> None:
    y = [0, 0, 1, 1]
    s = [0.05, 0.15, 0.95, 0.85]
    # Each score sits alone in its bin: ECE = mean(|0-.05|, |0-.15|, |1-.95|, |1-.85|) = 0.1.
    result = ev.calibration(y, s)
    assert result.ece == pytest.approx(0.1)
    assert result.count.tolist() == [1, 1, 1, 1]
    assert ev.brier_score(y, s) == pytest.approx((0.05**2 + 0.15**2 + 0.05**2 + 0.15**2) / 4)
    # A score of exactly 1.0 lands in the last bin.
    assert ev.calibration([1, 0], [1.0, 0.95]).count.tolist() == [2]


def test_per_pattern_auprc_sets_each_pattern_against_genuine() -> None:
    y = [0, 0, 0, 0, 1, 1, 1]
    s = [0.1, 0.2, 0.3, 0.4, 0.9, 0.8, 0.15]
    patterns = [None, None, np.nan, None, "mule_ring", "mule_ring", "promo_abuse"]
    by_name = {p.pattern: p for p in ev.per_pattern_metrics(y, s, patterns, threshold=0.5)}
    assert set(by_name) == {"mule_ring", "promo_abuse"}
    assert by_name["mule_ring"].auprc == pytest.approx(1.0)
    assert by_name["mule_ring"].recall_at_threshold == 1.0
    # promo_abuse's one fraud ranks 4th of 5 (below 0.4, 0.3, 0.2): precision 1/4 at recall 1.
    assert by_name["promo_abuse"].auprc == pytest.approx(0.25)
    assert by_name["promo_abuse"].recall_at_threshold == 0.0
    assert by_name["mule_ring"].positives == 2


def test_kfp_shapes_are_plain_finite_lists() -> None:
    rng = np.random.default_rng(0)
    y = rng.random(5_000) < 0.05
    s = np.clip(y * 0.3 + rng.random(5_000) * 0.7, 0, 1)
    result = ev.evaluate(y, s, rng.uniform(10, 1_000, 5_000), patterns=None)
    fpr, tpr, thresholds = ev.roc_points(result, max_points=50)
    assert len(fpr) == len(tpr) == len(thresholds) <= 50
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    json.dumps([fpr, tpr, thresholds], allow_nan=False)  # KFP stores them as JSON
    assert all(a >= b for a, b in itertools.pairwise(thresholds))
    categories, matrix = ev.confusion_matrix_data(result)
    assert categories == ["negative", "positive"]
    assert ev.confusion_matrix_data(result, ("genuine", "fraud"))[0] == ["genuine", "fraud"]
    assert sum(map(sum, matrix)) == 5_000
    assert matrix[1][0] + matrix[1][1] == int(y.sum())
    scalars = result.scalar_metrics()
    json.dumps(scalars, allow_nan=False)
    assert scalars["auprc"] == result.auprc


def test_evaluate_refuses_one_class() -> None:
    with pytest.raises(UserError, match="positive and negative"):
        ev.evaluate([0, 0], [0.1, 0.2], [1.0, 2.0])
    with pytest.raises(UserError, match="differ in length"):
        ev.evaluate([0, 1], [0.1], [1.0, 2.0])


def test_plots_are_png_and_self_contained_html(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    y = rng.random(2_000) < 0.1
    s = np.clip(y * 0.4 + rng.random(2_000) * 0.6, 0, 1)
    patterns = np.where(y, "velocity_burst", None)
    result = ev.evaluate(y, s, rng.uniform(10, 1_000, 2_000), patterns=patterns)
    files = ev.plots(result, tmp_path)
    assert set(files.png) == set(files.html) == {"pr", "roc", "calibration"}
    for name in files.png:
        assert files.png[name].read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
        page = files.html[name].read_text(encoding="utf-8")
        assert "data:image/png;base64," in page
        assert "http://" not in page
        assert "https://" not in page
        assert "<script" not in page
        assert "velocity_burst" in page
