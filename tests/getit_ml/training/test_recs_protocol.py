"""The recommender evaluation protocol: metrics on hand-computed cases, the splits, the loop."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp

from getit_ml.errors import UserError
from getit_ml.training.interactions import FloatMatrix, IntArray, InteractionMatrix
from getit_ml.training.recs_metrics import (
    NO_ITEM,
    RankingAccumulator,
    SampledAccumulator,
    sampled_negatives,
    top_k,
)
from getit_ml.training.recs_protocol import (
    Ranking,
    Registry,
    best_row,
    evaluate,
    score_model,
)
from getit_ml.training.recs_splits import InteractionLog, load_interactions, split

# ------------------------------------------------------------------------------ top_k


def test_top_k_orders_by_score_and_breaks_ties_by_position() -> None:
    scores = np.array([[0.1, 0.9, 0.5, 0.9, 0.2]], dtype=np.float32)
    assert top_k(scores, 3).tolist() == [[1, 3, 2]]
    ties = np.zeros((1, 6), dtype=np.float32)
    ties[0, 5] = 1.0
    assert top_k(ties, 3).tolist() == [[5, 0, 1]]


def test_top_k_removes_excluded_items_and_marks_empty_slots() -> None:
    scores = np.array([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0]], dtype=np.float32)
    exclude = sp.csr_matrix(np.array([[1, 0, 1], [0, 0, 0]], dtype=np.float32))
    assert top_k(scores, 2, exclude).tolist() == [[1, NO_ITEM], [2, 1]]
    assert top_k(scores, 5).tolist() == [[0, 1, 2, NO_ITEM, NO_ITEM], [2, 1, 0, NO_ITEM, NO_ITEM]]


def test_top_k_refuses_nan_scores() -> None:
    with pytest.raises(UserError, match="NaN"):
        top_k(np.array([[np.nan, 1.0]], dtype=np.float32), 1)


# ------------------------------------------------------------------------------ metrics


def _relevant(rows: list[list[int]], n_items: int) -> sp.csr_matrix:
    dense = np.zeros((len(rows), n_items), dtype=np.float32)
    for row, items in enumerate(rows):
        dense[row, items] = 1.0
    return sp.csr_matrix(dense)


def test_ranking_metrics_match_hand_computed_values() -> None:
    # User A: relevant {1, 3, 5} (R=3), list [1, 2, 3, 4]: hits at ranks 1 and 3.
    # User B: relevant {0, 1, 2, 3, 9} (R=5 > k), list [0, 5, 1, 6]: hits at ranks 1 and 3.
    counts = np.array([4, 3, 2, 1, 1, 1, 1, 0, 0, 0], dtype=np.float64)
    acc = RankingAccumulator(4, counts)
    acc.add(np.array([[1, 2, 3, 4], [0, 5, 1, 6]]), _relevant([[1, 3, 5], [0, 1, 2, 3, 9]], 10))
    got = acc.result()
    dcg = 1 + 1 / math.log2(4)
    ndcg_a = dcg / (1 + 1 / math.log2(3) + 1 / math.log2(4))
    ndcg_b = dcg / (1 + 1 / math.log2(3) + 1 / math.log2(4) + 1 / math.log2(5))
    assert got["precision"] == pytest.approx((2 / 4 + 2 / 4) / 2)
    assert got["recall"] == pytest.approx((2 / 3 + 2 / 5) / 2)
    assert got["ndcg"] == pytest.approx((ndcg_a + ndcg_b) / 2)
    # Recommenders' map divides by every relevant item; map_at_k by min(R, k).
    assert got["map"] == pytest.approx(((1 + 2 / 3) / 3 + (1 + 2 / 3) / 5) / 2)
    assert got["map_at_k"] == pytest.approx(((1 + 2 / 3) / 3 + (1 + 2 / 3) / 4) / 2)
    # Recommended: items 0..6 — 7 distinct out of the 7 with training interactions.
    assert got["coverage"] == pytest.approx(7 / 7)
    total = counts.sum()  # 13
    recommended = [1, 2, 3, 4, 0, 5, 1, 6]
    expected = np.mean([-math.log2(counts[i] / total) for i in recommended])
    assert got["novelty"] == pytest.approx(expected)
    assert got["users"] == 2


def test_ranking_metrics_skip_users_without_relevant_items_and_count_unseen_items() -> None:
    counts = np.array([2, 1, 0], dtype=np.float64)
    acc = RankingAccumulator(2, counts)
    acc.add(np.array([[0, 2], [1, NO_ITEM]]), _relevant([[2], []], 3))
    got = acc.result()
    assert got["users"] == 1
    assert got["precision"] == pytest.approx(0.5)
    assert got["ndcg"] == pytest.approx((1 / math.log2(3)) / 1.0)
    assert got["map"] == pytest.approx(0.5)
    # Only evaluated users' lists count: item 0 of the two items with training interactions;
    # item 2 has none (left out of novelty, counted).
    assert got["coverage"] == pytest.approx(1 / 2)
    assert got["recommended_unseen"] == 1
    assert got["novelty"] == pytest.approx(-math.log2(2 / 3))


def test_no_user_to_evaluate_is_an_error() -> None:
    acc = RankingAccumulator(2, np.ones(3))
    acc.add(np.array([[0, 1]]), _relevant([[]], 3))
    with pytest.raises(UserError, match="no user"):
        acc.result()


def test_sampled_ranking_counts_ties_against_the_model() -> None:
    acc = SampledAccumulator(k=2, negatives=3)
    scores = np.array([[0.5, 0.9, 0.1, 0.5, 0.2], [0.9, 0.1, 0.2, 0.3, 0.4]], dtype=np.float32)
    # Row 0: positive 0 (0.5) vs negatives 1 (0.9), 2 (0.1), 3 (0.5 tie): rank 3, outside k=2.
    # Row 1: positive 0 (0.9) vs 2, 3, 4: rank 1.
    acc.add(scores, np.array([0, 0]), np.array([[1, 2, 3], [2, 3, 4]]))
    got = acc.result()
    assert got["sampled_hr"] == pytest.approx(0.5)
    assert got["sampled_ndcg"] == pytest.approx((0 + 1.0) / 2)


def test_sampled_negatives_avoid_seen_items_and_repeat_with_the_seed() -> None:
    seen = _relevant([[0, 1, 2], [5]], 20)
    users = np.array([0, 1])
    first = sampled_negatives(seen, users, 10, seed=7)
    assert first.shape == (2, 10)
    assert not set(first[0]) & {0, 1, 2}
    assert 5 not in set(first[1])
    assert all(len(set(row)) == 10 for row in first)
    assert np.array_equal(first, sampled_negatives(seen, users, 10, seed=7))
    assert not np.array_equal(first, sampled_negatives(seen, users, 10, seed=8))
    with pytest.raises(UserError, match="only 17"):
        sampled_negatives(seen, users, 18, seed=7)


# ------------------------------------------------------------------------------ the log


def test_log_merges_repeated_pairs_in_first_seen_order() -> None:
    log = InteractionLog.from_rows(
        [10, 20, 10, 10], [7, 7, 7, 8], weights=[1, 2, 3, 1], times=[5, 1, 2, 9]
    )
    assert log.merged_rows == 1
    assert log.user_ids.tolist() == [10, 20]
    assert log.item_ids.tolist() == [7, 8]
    assert list(zip(log.users.tolist(), log.items.tolist(), strict=True)) == [
        (0, 0),
        (1, 0),
        (0, 1),
    ]
    assert log.weights.tolist() == [4.0, 2.0, 1.0]
    assert log.times is not None
    assert log.times.tolist() == [2, 1, 9]  # the first time kept


@pytest.mark.parametrize(
    ("users", "items", "message"),
    [([], [], "no interactions"), (["a"], [1], "integers"), ([1, 2], [1], "same length")],
)
def test_log_refuses_bad_rows(users: list[Any], items: list[Any], message: str) -> None:
    with pytest.raises(UserError, match=message):
        InteractionLog.from_rows(np.array(users), np.array(items))


def test_load_interactions_reads_the_import_and_refuses_bad_folders(tmp_path: Path) -> None:
    table = pa.table(
        {
            "customer_id": pa.array([1, 1, 2], pa.int64()),
            "product_id": pa.array([5, 6, 5], pa.int64()),
            "interaction_ts": pa.array([1_000_000, 2_000_000, 3_000_000], pa.int64()).cast(
                pa.timestamp("us", tz="UTC")
            ),
            "rating": pa.array([4.0, None, 3.0]),
            "event_type": ["rating", "view", "rating"],
        }
    )
    pq.write_table(table, tmp_path / "interactions.parquet")
    log = load_interactions(tmp_path)
    assert log.n_pairs == 3
    assert log.times is not None
    assert log.times.tolist() == [1_000_000, 2_000_000, 3_000_000]
    with pytest.raises(UserError, match=r"no interactions\.parquet"):
        load_interactions(tmp_path / "elsewhere")
    pq.write_table(table.drop(["interaction_ts"]), tmp_path / "bad.parquet")
    with pytest.raises(UserError, match="interaction_ts"):
        load_interactions(tmp_path / "bad.parquet")


# ------------------------------------------------------------------------------ splits


def _recommenders_stratified(frame: pd.DataFrame, ratio: float, seed: int) -> pd.DataFrame:
    """Microsoft Recommenders' python_stratified_split, written out with pandas (its steps)."""
    data = frame.copy()
    np.random.seed(seed)
    data["random"] = np.random.rand(data.shape[0])
    data = data.sort_values(["user", "random"])
    groups = data.groupby("user")
    data["rank"] = (groups.cumcount() + 1) / groups["user"].transform("count")
    return data[data["rank"] <= ratio]


def test_stratified_split_is_recommenders_split() -> None:
    rng = np.random.default_rng(3)
    users = rng.integers(0, 30, size=600)
    items = rng.integers(0, 80, size=600)
    frame = pd.DataFrame({"user": users, "item": items}).drop_duplicates(["user", "item"])
    frame = frame[frame.groupby("user")["user"].transform("count") >= 2]
    log = InteractionLog.from_rows(frame["user"].to_numpy(), frame["item"].to_numpy())
    result = split(log, "stratified", fraction=0.75, seed=42)
    theirs = _recommenders_stratified(frame, 0.75, 42)
    ours = {
        (int(log.user_ids[u]), int(log.item_ids[i]))
        for u, i in zip(result.train.users, result.train.items, strict=True)
    }
    assert ours == set(zip(theirs["user"].tolist(), theirs["item"].tolist(), strict=True))
    assert result.report.train_pairs + result.report.test_pairs == log.n_pairs


def test_stratified_split_keeps_small_users_in_train() -> None:
    # User 1: four pairs (three train, one test); user 2: one pair (kept in train, counted).
    log = InteractionLog.from_rows([1, 1, 1, 1, 2], [1, 2, 3, 4, 1])
    result = split(log, "stratified", fraction=0.75)
    assert np.bincount(result.train.users).tolist() == [3, 1]
    assert result.test.users.tolist() == [0]
    assert result.report.users_train_only == 1
    assert result.report.test_users == 1


def test_leave_last_out_holds_out_each_users_latest_pair() -> None:
    log = InteractionLog.from_rows(
        [1, 1, 1, 2, 2, 2, 3], [1, 2, 3, 1, 2, 3, 1], times=[5, 9, 1, 4, 7, 7, 3]
    )
    result = split(log, "leave-last-out")
    held = sorted(zip(result.test.users.tolist(), result.test.items.tolist(), strict=True))
    # User 1's latest is item 2 (t=9); user 2's items 2 and 3 tie at t=7: the later row (3).
    assert held == [(0, 1), (1, 2)]
    assert result.report.users_train_only == 1  # user 3 has a single pair


def test_time_protocols_need_real_times() -> None:
    no_times = InteractionLog.from_rows([1, 1, 2, 2], [1, 2, 1, 2])
    constant = InteractionLog.from_rows([1, 1, 2, 2], [1, 2, 1, 2], times=[0, 0, 0, 0])
    for protocol in ("leave-last-out", "temporal"):
        with pytest.raises(UserError, match="needs interaction times"):
            split(no_times, protocol)
        with pytest.raises(UserError, match="same time"):
            split(constant, protocol)


def test_temporal_split_cuts_by_time_and_removes_cold_start() -> None:
    # Times 1..8 in order; fraction 0.5 cuts after t=4 (pairs at t<=4 train).
    users = [1, 1, 2, 2, 1, 2, 3, 1]
    items = [1, 2, 1, 3, 3, 2, 1, 9]
    log = InteractionLog.from_rows(users, items, times=[1, 2, 3, 4, 5, 6, 7, 8])
    result = split(log, "temporal", fraction=0.5)
    report = result.report
    assert report.cut_time == 4
    assert report.train_pairs == 4
    # t=5 (user 1, item 3) and t=6 (user 2, item 2) are warm; t=7 is a new user, t=8 a new item.
    assert sorted(zip(result.test.users.tolist(), result.test.items.tolist(), strict=True)) == [
        (0, 2),
        (1, 1),
    ]
    assert (report.cold_user_pairs, report.cold_users) == (1, 1)
    assert (report.cold_item_pairs, report.cold_items) == (1, 1)
    assert "cold start not scored" in report.describe()


def test_temporal_split_never_separates_simultaneous_pairs() -> None:
    # Half of four pairs is two, but the second and third share t=2: both stay in train.
    log = InteractionLog.from_rows([1, 1, 2, 2], [1, 2, 2, 1], times=[1, 2, 2, 3])
    result = split(log, "temporal", fraction=0.5)
    assert result.report.cut_time == 2
    assert result.report.train_pairs == 3
    assert list(zip(result.test.users.tolist(), result.test.items.tolist(), strict=True)) == [
        (1, 0)
    ]


def test_split_refuses_bad_arguments() -> None:
    log = InteractionLog.from_rows([1, 1, 2, 2], [1, 2, 1, 2], times=[1, 2, 3, 4])
    with pytest.raises(UserError, match="unknown protocol"):
        split(log, "random")
    with pytest.raises(UserError, match="fraction"):
        split(log, "stratified", fraction=1.0)


# ------------------------------------------------------------------------------ the loop


class BlockModel:
    """A test recommender: scores a user's own block of items ``strength`` above the rest, with
    seeded noise of scale ``noise``; the right ranking is known on block data."""

    name = "block"

    def __init__(self, strength: float = 1.0, noise: float = 5.0) -> None:
        self.strength = strength
        self.noise = noise
        self._train: sp.csr_matrix | None = None
        self._seed = 0

    def fit(self, train: InteractionMatrix, *, seed: int = 42) -> Self:
        self._train = train.matrix
        self._seed = seed
        return self

    def score(self, users: IntArray) -> FloatMatrix:
        assert self._train is not None
        n_items = self._train.shape[1]
        block = (np.arange(n_items) >= n_items // 2).astype(np.float32)
        own = np.where((users >= self._train.shape[0] // 2)[:, None], block, 1 - block)
        noise = np.random.default_rng(self._seed).random((len(users), n_items))
        return (self.strength * own + self.noise * noise).astype(np.float32)

    def params(self) -> Mapping[str, Any]:
        return {"strength": self.strength, "noise": self.noise}


class CountModel:
    """Popularity for the test registry: training counts, the same for every user."""

    name = "popularity"

    def fit(self, train: InteractionMatrix, *, seed: int = 42) -> Self:
        self._counts = np.asarray(train.matrix.getnnz(axis=0), dtype=np.float32)
        return self

    def score(self, users: IntArray) -> FloatMatrix:
        return np.tile(self._counts, (len(users), 1))

    def params(self) -> Mapping[str, Any]:
        return {}


def _test_registry() -> Registry:
    def build(name: str, **params: Any) -> Any:
        if name == "popularity":
            return CountModel()
        return BlockModel(**params)

    def space(name: str) -> Any:
        return lambda trial: {"noise": trial.suggest_float("noise", 0.0, 0.1)}

    return Registry(
        names=("popularity", "block"),
        build=build,
        default_params=lambda name: {} if name == "popularity" else {"strength": 1, "noise": 5},
        search_space=space,
    )


def _block_log(users: int = 20, items: int = 16, per_user: int = 6) -> InteractionLog:
    """Two blocks: the first half of the users only use the first half of the items."""
    rng = np.random.default_rng(0)
    rows, cols = [], []
    for user in range(users):
        low = 0 if user < users // 2 else items // 2
        chosen = rng.choice(np.arange(low, low + items // 2), size=per_user, replace=False)
        rows += [user] * per_user
        cols += chosen.tolist()
    return InteractionLog.from_rows(rows, cols, times=np.arange(len(rows)))


def test_score_model_of_a_perfect_block_model() -> None:
    # Each user: 6 of its block's 8 items, 4 to train and 2 to test. With its 4 training items
    # removed, the model's top 4 are exactly the block's other 4 items, both test items among
    # them: recall 1, precision 2/4.
    log = _block_log()
    data = split(log, "stratified")
    model = BlockModel(strength=10.0, noise=0.0).fit(data.train.matrix())
    got = score_model(model, data.train, data.test, Ranking(k=4))
    assert got["recall"] == pytest.approx(1.0)
    assert got["precision"] == pytest.approx(0.5)
    assert got["users"] == data.report.test_users == 20


def test_evaluate_tunes_on_validation_and_puts_the_baseline_first() -> None:
    log = _block_log()
    result = evaluate(
        log, ["block"], protocol="stratified", k=3, trials=4, registry=_test_registry()
    )
    assert [row.model for row in result.rows] == ["popularity", "block"]
    block = result.rows[1]
    # The defaults drown the block signal in noise; every trial's noise (<= 0.1) is far lower,
    # so a trial wins on validation and its parameters are the refitted model's.
    assert block.tuned
    assert block.trials == 4
    assert block.params["noise"] <= 0.1
    assert block.validation_ndcg > block.default_validation_ndcg
    assert block.test["ndcg"] > result.rows[0].test["ndcg"]
    assert best_row(result).model == "block"
    assert result.rows[0].trials == 0  # nothing to tune
    assert "4 Optuna TPE trials" in result.describe()


def test_evaluate_with_sampled_negatives_reports_both_rankings() -> None:
    log = _block_log(items=40, per_user=8)
    result = evaluate(
        log, ["block"], protocol="leave-last-out", k=5, trials=0, negatives=10,
        registry=_test_registry(),
    )  # fmt: skip
    block = result.rows[1]
    assert {"ndcg", "map", "sampled_hr", "sampled_ndcg"} <= set(block.test)
    assert result.test_split.test_pairs == 20  # one held-out pair per user
    assert "1 + 10 negatives" in result.describe()


def test_evaluate_refuses_bad_requests() -> None:
    log = _block_log()
    registry = _test_registry()
    with pytest.raises(UserError, match="leave-last-out"):
        evaluate(log, ["block"], protocol="stratified", negatives=5, registry=registry)
    with pytest.raises(UserError, match="unknown recommender"):
        evaluate(log, ["nope"], registry=registry)


def test_evaluate_with_the_platform_models() -> None:
    log = _block_log()
    result = evaluate(log, ["ease"], protocol="stratified", k=3, trials=2)
    assert [row.model for row in result.rows] == ["popularity", "ease"]
    ease = result.rows[1]
    assert "l2" in ease.params
    # On block data EASE learns that items co-occur within a block only.
    assert ease.test["ndcg"] > result.rows[0].test["ndcg"]
