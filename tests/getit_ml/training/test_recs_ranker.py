"""The lambdarank ranker: labels, hand-computed metrics, learning a known signal, the pipeline."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from getit_ml.data.generator import MarketplaceConfig, generate
from getit_ml.errors import UserError
from getit_ml.features.recs_features import (
    FEATURE_GROUPS,
    US_PER_DAY,
    MarketHistory,
    as_of_micros,
)
from getit_ml.training.recs_ranker import (
    RankerParams,
    RankingFigures,
    Requests,
    all_features,
    build_requests,
    concat_requests,
    fit_ranker,
    next_period_labels,
    paired_interval,
    ranking_metrics,
    split_by_customer,
    without,
)

pytest.importorskip("lightgbm")


def _requests(labels: list[list[int]], ideal: list[float], relevant: list[int]) -> Requests:
    """Groups of candidates with the given labels (one feature column, all zero)."""
    rows = pd.DataFrame(
        [
            (g, 0, 100 + g, j, 0.0, j + 1, label)
            for g, group in enumerate(labels)
            for j, label in enumerate(group)
        ],
        columns=[
            "request", "as_of_us", "customer_id", "product_id", "retrieval_score",
            "retrieval_rank", "label",
        ],
    )  # fmt: skip
    return Requests(
        rows,
        pd.DataFrame({"x": np.zeros(len(rows))}),
        np.array(ideal, dtype=np.float64),
        np.array(relevant, dtype=np.int64),
    )


def test_ranking_metrics_on_a_hand_computed_case() -> None:
    # Group 0: labels 0, 2, 1 scored 3, 2, 1 (that order); a third labelled product (label 1)
    # was not retrieved, so the ideal list is gains 3, 1, 1.
    # Group 1: labels 1, 0 scored 0, 5: the relevant one comes second.
    ideal0 = 3 + 1 / math.log2(3) + 1 / math.log2(4)
    requests = _requests([[0, 2, 1], [1, 0]], [ideal0, 1.0], [3, 1])
    scores = [3.0, 2.0, 1.0, 0.0, 5.0]
    figures = ranking_metrics(requests, scores, k=10)
    ndcg0 = (3 / math.log2(3) + 1 / math.log2(4)) / ideal0
    ndcg1 = 1 / math.log2(3)
    assert figures.ndcg == pytest.approx((ndcg0 + ndcg1) / 2)
    assert figures.recall == pytest.approx((2 / 3 + 1) / 2)
    top1 = ranking_metrics(requests, scores, k=1)
    assert top1.ndcg == 0.0
    assert top1.recall == 0.0
    # Ties keep the candidate order: all-equal scores rank group 1's relevant item first.
    tied = ranking_metrics(requests, [0.0] * 5, k=1)
    assert tied.recall == pytest.approx((0 + 1) / 2)


def test_ranking_metrics_reject_bad_scores() -> None:
    requests = _requests([[1, 0]], [1.0], [1])
    with pytest.raises(UserError, match="scores for"):
        ranking_metrics(requests, [1.0])
    with pytest.raises(UserError, match="finite"):
        ranking_metrics(requests, [1.0, math.nan])


def test_paired_interval_of_per_group_differences() -> None:
    requests = _requests([[1, 0], [0, 1]], [1.0, 1.0], [1, 1])
    a = ranking_metrics(requests, [1.0, 0.0, 0.0, 1.0])  # both relevant first: 1, 1
    b = ranking_metrics(requests, [1.0, 0.0, 1.0, 0.0])  # 1, then 1/log2(3)
    assert b.per_group_ndcg.tolist() == pytest.approx([1.0, 1 / math.log2(3)])
    mean, low, high = paired_interval(a, b, draws=200, seed=0)
    assert mean == pytest.approx((1 - 1 / math.log2(3)) / 2)
    assert 0.0 <= low <= mean <= high <= 1 - 1 / math.log2(3)
    with pytest.raises(UserError, match="same requests"):
        paired_interval(a, RankingFigures(0.5, 0.5, 1, np.zeros(1)))


def _history(events: list[tuple[int, int, int, str]]) -> MarketHistory:
    products = pd.DataFrame(
        {
            "product_id": [1, 2, 3],
            "category": ["books"] * 3,
            "subcategory": ["Novel"] * 3,
            "brand": ["P"] * 3,
            "price_bdt": [100.0] * 3,
        }
    )
    customers = pd.DataFrame(
        {"customer_id": [1, 2], "district": ["Dhaka"] * 2, "division": ["Dhaka"] * 2,
         "is_urban": [True, True]}
    )  # fmt: skip
    frame = pd.DataFrame(events, columns=["customer_id", "product_id", "ts_us", "event_type"])
    return MarketHistory(frame, products, customers)


def test_next_period_labels_are_graded_and_windowed() -> None:
    t = as_of_micros("2025-06-20")
    history = _history(
        [
            (1, 1, t - 1, "purchase"),  # before the window
            (1, 2, t, "add_to_cart"),
            (1, 2, t + 1, "purchase"),  # cart then purchase: 2
            (1, 3, t + 2, "view"),  # a view is not a label
            (2, 3, t + 6 * US_PER_DAY, "add_to_cart"),
            (2, 1, t + 7 * US_PER_DAY, "purchase"),  # the window is half-open
        ]
    )
    labels = next_period_labels(history, t, days=7)
    assert labels.to_dict("records") == [
        {"customer_id": 1, "product_id": 2, "label": 2},
        {"customer_id": 2, "product_id": 3, "label": 1},
    ]
    with pytest.raises(UserError, match="at least one day"):
        next_period_labels(history, t, days=0)


def _signal_requests(seed: int, groups: int = 400, size: int = 20) -> Requests:
    """Groups where the label follows feature ``signal`` (plus noise) and ``noise`` is noise;
    the retrieval order is random."""
    rng = np.random.default_rng(seed)
    n = groups * size
    signal = rng.normal(size=n)
    noise = rng.normal(size=n)
    utility = signal + 0.5 * rng.normal(size=n)
    labels = np.zeros(n, dtype=np.int64)
    request = np.repeat(np.arange(groups), size)
    for g in range(groups):
        idx = np.flatnonzero(request == g)
        order = idx[np.argsort(-utility[idx])]
        labels[order[0]], labels[order[1]] = 2, 1
    rows = pd.DataFrame(
        {"request": request, "as_of_us": 0, "customer_id": request + 1,
         "product_id": np.tile(np.arange(size), groups), "retrieval_score": 0.0,
         "retrieval_rank": np.tile(np.arange(1, size + 1), groups), "label": labels}
    )  # fmt: skip
    ideal = np.full(groups, 3 + 1 / math.log2(3))
    return Requests(
        rows, pd.DataFrame({"signal": signal, "noise": noise}), ideal, np.full(groups, 2)
    )


def test_the_ranker_learns_a_known_signal_and_is_deterministic() -> None:
    data = _signal_requests(1)
    train, valid = split_by_customer(data, 0.25, seed=3)
    test = _signal_requests(2)
    params = RankerParams(num_leaves=7, min_data_in_leaf=20, max_rounds=60)
    ranker = fit_ranker(train, valid, features=["signal", "noise"], params=params, seed=5)
    ranked = ranking_metrics(test, ranker.score(test))
    baseline = ranking_metrics(test, -test.rows["retrieval_rank"].to_numpy(np.float64))
    assert ranked.ndcg > 0.7 > 0.4 > baseline.ndcg
    assert ranker.importance["signal"] > ranker.importance["noise"]
    again = fit_ranker(train, valid, features=["signal", "noise"], params=params, seed=5)
    np.testing.assert_array_equal(ranker.score(test), again.score(test))


def test_split_by_customer_keeps_customers_on_one_side() -> None:
    train, valid = split_by_customer(_signal_requests(1, groups=50), 0.2, seed=0)
    assert train.n_groups + valid.n_groups == 50
    assert valid.n_groups == 10
    assert not set(train.rows["customer_id"]) & set(valid.rows["customer_id"])
    assert train.rows["request"].max() == train.n_groups - 1  # renumbered 0..n-1
    with pytest.raises(UserError, match="valid_fraction"):
        split_by_customer(train, 1.0)


def test_bad_ranker_input_is_a_user_error() -> None:
    data = _signal_requests(1, groups=20)
    train, valid = split_by_customer(data, 0.25, seed=0)
    with pytest.raises(UserError, match="unknown feature"):
        fit_ranker(train, valid, features=["signal", "price"])
    empty = Requests(train.rows.assign(label=0), train.features, train.ideal_dcg, train.n_relevant)
    with pytest.raises(UserError, match="no relevant candidate"):
        fit_ranker(empty, valid, features=["signal"])
    with pytest.raises(UserError, match="learning_rate"):
        RankerParams(learning_rate=0.0)
    with pytest.raises(UserError, match="no requests"):
        concat_requests([])
    assert "in_festival" not in without(all_features(), FEATURE_GROUPS["festival"])


def test_the_pipeline_on_a_small_generated_marketplace(tmp_path: Path) -> None:
    out = tmp_path / "market"
    generate(MarketplaceConfig(customers=600, days=28, seed=3, start=date(2025, 3, 10)), out)
    history = MarketHistory.load(out)
    requests = build_requests(
        history, as_of_micros("2025-03-24"), label_days=14, n_candidates=30, k=10
    )
    sizes = requests.group_sizes
    assert (sizes == 30).all()
    rows = requests.rows
    # Candidates are contiguous per group, in retrieval order, and labels are graded.
    assert (np.diff(rows["request"].to_numpy()) >= 0).all()
    assert set(rows["label"].unique()) <= {0, 1, 2}
    assert (rows.groupby("request")["retrieval_rank"].first() == 1).all()
    # Every request has feedback in the window (retrieved or not), and the ideal DCG is set.
    assert (requests.n_relevant >= 1).all()
    assert (requests.ideal_dcg > 0).all()
    assert requests.features["in_festival"].eq(1.0).all()  # 24 March: Eid-ul-Fitr's window
    figures = ranking_metrics(requests, -rows["retrieval_rank"].to_numpy(np.float64))
    assert 0.0 <= figures.ndcg <= 1.0
    assert figures.groups == requests.n_groups
