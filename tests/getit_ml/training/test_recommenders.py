"""The retrieval models and their registry, on small matrices whose right answer is known."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import optuna
import pytest
import scipy.sparse as sp
import torch

from getit_ml.errors import UserError
from getit_ml.training.interactions import InteractionMatrix
from getit_ml.training.recommenders import MODEL_NAMES, build, default_params, search_space
from getit_ml.training.recommenders.ease import MAX_ITEMS, ease_weights
from getit_ml.training.recommenders.ensemble import rank_normalise

#: Small settings so every model fits the 24 x 24 block matrix in well under a second.
FAST: dict[str, dict[str, Any]] = {
    "popularity": {},
    "ease": {"l2": 1.0},
    "als": {"factors": 4, "regularization": 0.1, "alpha": 5.0, "iterations": 10},
    "bpr": {"factors": 8, "learning_rate": 0.05, "regularization": 0.001, "iterations": 200},
    "multvae": {"hidden": 16, "latent": 4, "epochs": 60, "batch_size": 8, "learning_rate": 0.01},
    "ensemble": {"l2": 1.0, "factors": 4, "regularization": 0.1, "alpha": 5.0},
}
PERSONALISED = [name for name in MODEL_NAMES if name != "popularity"]
RANDOM = ["als", "bpr", "multvae", "ensemble"]


def two_blocks() -> InteractionMatrix:
    """Users 0-11 saw only items 0-11, users 12-23 only items 12-23; each user misses two items
    of their own block (positions u+1 and u+5 within it, so every item is missed by someone)."""
    users, items = [], []
    for user in range(24):
        block = 0 if user < 12 else 12
        missed = {block + (user + 1) % 12, block + (user + 5) % 12}
        for item in range(block, block + 12):
            if item not in missed:
                users.append(user)
                items.append(item)
    return InteractionMatrix.from_triples(users, items)


def test_registry_names_and_defaults() -> None:
    assert MODEL_NAMES[0] == "popularity"
    assert set(MODEL_NAMES) == {"popularity", "ease", "als", "bpr", "multvae", "ensemble"}
    for name in MODEL_NAMES:
        model = build(name)
        assert model.name == name
        assert dict(model.params()) == default_params(name)
    defaults = default_params("ease")
    defaults["l2"] = -1.0  # a copy: changing it must not change the registry
    assert default_params("ease")["l2"] == 400.0


def test_build_overrides_defaults() -> None:
    assert build("ease", l2=7.5).params()["l2"] == 7.5
    assert build("bpr", factors=3).params()["factors"] == 3


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("knn", {}, "unknown recommender 'knn'"),
        ("ease", {"lambda_": 3.0}, "unknown parameter(s) lambda_"),
        ("popularity", {"k": 1}, "allowed: none"),
        ("ease", {"l2": 0.0}, "l2 must lie in (0"),
        ("ease", {"l2": float("nan")}, "l2 must lie in"),
        ("ease", {"dtype": "float16"}, "dtype must be one of"),
        ("als", {"factors": 0}, "factors must be between 1"),
        ("als", {"factors": 2.5}, "factors must be an integer"),
        ("als", {"alpha": "big"}, "alpha must be a number"),
        ("bpr", {"learning_rate": -0.1}, "learning_rate must lie in"),
        ("bpr", {"iterations": True}, "iterations must be an integer"),
        ("multvae", {"dropout": 1.0}, "dropout must lie in [0, 1)"),
        ("multvae", {"anneal_fraction": 0.0}, "anneal_fraction must lie in (0, 1]"),
        ("ensemble", {"weight": 1.5}, "weight must lie in [0, 1]"),
        ("ensemble", {"l2": -2.0}, "ease: l2 must lie in"),
    ],
)
def test_bad_names_and_params_are_user_errors(
    name: str, params: dict[str, Any], message: str
) -> None:
    with pytest.raises(UserError, match=re.escape(message)):
        build(name, **params)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_search_space_suggests_buildable_params(name: str) -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    for _ in range(3):
        params = search_space(name)(study.ask())
        assert set(params) <= set(default_params(name))
        build(name, **params)  # every suggestion is within the model's accepted ranges


def test_search_space_of_unknown_model() -> None:
    with pytest.raises(UserError, match="unknown recommender"):
        search_space("svd")


def test_popularity_counts_users_per_item() -> None:
    # Item 11: two users (one of them twice, with weight 3); item 10: one; item 12: three.
    train = InteractionMatrix.from_triples(
        [1, 2, 2, 1, 2, 3, 1], [11, 11, 11, 10, 12, 12, 12], [1, 1, 3, 1, 1, 1, 1]
    )
    scores = build("popularity").fit(train).score(np.array([0, 2]))
    np.testing.assert_array_equal(scores, [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    assert scores.dtype == np.float32


@pytest.mark.parametrize("name", PERSONALISED)
def test_each_user_ranks_their_own_block_first(name: str) -> None:
    train = two_blocks()
    scores = build(name, **FAST[name]).fit(train, seed=42).score(np.arange(24))
    assert scores.shape == (24, 24)
    assert scores.dtype == np.float32
    seen = train.matrix.toarray() > 0
    for user in range(24):
        own = np.zeros(24, dtype=bool)
        own[(0 if user < 12 else 12) : (12 if user < 12 else 24)] = True
        unseen_own = scores[user, own & ~seen[user]]
        other = scores[user, ~own]
        assert unseen_own.min() > other.max(), f"user {user}: {unseen_own} vs {other.max()}"


def test_ease_matches_column_by_column_ridge_regression() -> None:
    # EASE's closed form equals, for each item j, the ridge regression of column j on all the
    # other columns (diag(B) = 0 is exactly "leave column j out"), solved directly.
    rng = np.random.default_rng(5)
    x = (rng.random((9, 6)) < 0.45).astype(np.float64)
    l2 = 0.7
    expected = np.zeros((6, 6))
    for j in range(6):
        others = [i for i in range(6) if i != j]
        xo = x[:, others]
        expected[others, j] = np.linalg.solve(xo.T @ xo + l2 * np.eye(5), xo.T @ x[:, j])
    np.testing.assert_allclose(ease_weights(x.T @ x, l2), expected, atol=1e-10)

    train = InteractionMatrix.from_triples(*np.nonzero(x), user_ids=range(9), item_ids=range(6))
    for dtype, tol in (("float64", 1e-6), ("float32", 1e-4)):
        scores = build("ease", l2=l2, dtype=dtype).fit(train).score(np.arange(9))
        np.testing.assert_allclose(scores, x @ expected, atol=tol)


def test_ease_refuses_a_catalogue_too_large_for_a_dense_matrix() -> None:
    train = InteractionMatrix.from_triples([0], [0], item_ids=np.arange(MAX_ITEMS + 1))
    with pytest.raises(UserError, match="dense item-item matrix"):
        build("ease").fit(train)


@pytest.mark.parametrize("name", RANDOM)
def test_fits_repeat_with_a_seed(name: str) -> None:
    train = two_blocks()
    users = np.arange(24)
    first = build(name, **FAST[name]).fit(train, seed=7).score(users)
    again = build(name, **FAST[name]).fit(train, seed=7).score(users)
    other = build(name, **FAST[name]).fit(train, seed=8).score(users)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_multvae_leaves_torch_global_state_alone() -> None:
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    state = torch.get_rng_state()
    model = build("multvae", **FAST["multvae"]).fit(two_blocks())
    model.score(np.arange(3))
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.get_num_threads() == threads


def test_multvae_scores_a_user_without_training_rows() -> None:
    train = InteractionMatrix.from_triples([0, 0, 1], [0, 1, 1], user_ids=[0, 1, 2])
    scores = build("multvae", hidden=4, latent=2, epochs=2).fit(train).score(np.array([2]))
    assert scores.shape == (1, 2)
    assert np.all(np.isfinite(scores))


def test_rank_normalise_by_hand() -> None:
    scores = np.array([[0.3, 0.9, 0.1, 0.5], [2.0, 2.0, 1.0, 0.0]])
    seen = sp.csr_matrix(np.array([[0, 1, 0, 0], [0, 0, 0, 0]]))
    # Row 0: unseen 0.3, 0.1, 0.5 rank 2, 1, 3 of 3; seen item -> 0.
    # Row 1: nothing seen; 0.0 -> 1, 1.0 -> 2, the tied 2.0s share rank 3.5; over 4 items.
    expected = [[2 / 3, 0.0, 1 / 3, 1.0], [3.5 / 4, 3.5 / 4, 2 / 4, 1 / 4]]
    np.testing.assert_allclose(rank_normalise(scores, seen), expected, rtol=1e-6)


def test_ensemble_is_its_weighted_parts() -> None:
    train = two_blocks()
    users = np.arange(24)
    seen = train.matrix
    params = FAST["ensemble"]
    ease_only = build("ensemble", **{**params, "weight": 0.0}).fit(train).score(users)
    als_only = build("ensemble", **{**params, "weight": 1.0}).fit(train).score(users)
    ease = build("ease", l2=params["l2"]).fit(train).score(users)
    np.testing.assert_allclose(ease_only, rank_normalise(ease, seen), rtol=1e-6)
    mixed = build("ensemble", **{**params, "weight": 0.25}).fit(train).score(users)
    np.testing.assert_allclose(mixed, 0.75 * ease_only + 0.25 * als_only, rtol=1e-5)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_bad_use_is_a_user_error(name: str) -> None:
    model = build(name, **FAST[name])
    with pytest.raises(UserError, match="fit the model before scoring"):
        model.score(np.array([0]))
    empty = InteractionMatrix.from_triples([], [], user_ids=[1, 2], item_ids=[5])
    with pytest.raises(UserError, match="no interactions"):
        build(name, **FAST[name]).fit(empty)
    negative = InteractionMatrix.from_triples([1, 2], [5, 5], [1.0, -1.0])
    with pytest.raises(UserError, match="must not be negative"):
        build(name, **FAST[name]).fit(negative)
    fitted = build(name, **FAST[name]).fit(two_blocks())
    with pytest.raises(UserError, match=r"positions \[24, -1\] are outside the 24 users"):
        fitted.score(np.array([0, 24, -1]))
    with pytest.raises(UserError, match="integer positions"):
        fitted.score(np.array([0.5]))
