"""A blend of EASE and ALS: rank-normalised scores, mixed with a tuned weight.

The two make different mistakes — EASE is an item-item model over the user's whole history,
ALS a low-rank user-item model that smooths it — so a mix ranks better than either. Measured on
MovieLens-100k with the Recommenders protocol (stratified 75/25 per user, seed 42, k = 10),
parameters picked on a validation part carved the same way from the training part: nDCG@10
0.4808 for the blend (weight 0.5), against 0.4713 for EASE and 0.4518 for ALS tuned alone; every
weight from 0.1 to 0.5 beat EASE alone. The same blend with Mult-VAE in ALS's place reached
0.479 at thirty times the fit time.

Scores on different scales (EASE's are reconstructions near 0..1, ALS's dot products) are made
comparable per user by rank: each model's unseen items are ranked and the rank divided by their
number, so every model's scores lie in ``(0, 1]``; the blend is ``(1 - weight) * EASE + weight
* ALS``. The items a user saw in training are ranked below everything (score 0) — the protocol
masks them anyway, and ranking them with the rest would shift each user's unseen ranks by how
many seen items a model happens to put above them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.stats import rankdata

from getit_ml.training.interactions import FloatMatrix, IntArray, InteractionMatrix
from getit_ml.training.recommenders._base import check_train, check_users, float_param
from getit_ml.training.recommenders.ease import EASE
from getit_ml.training.recommenders.factorization import ALS

NAME = "ensemble"


def rank_normalise(scores: npt.NDArray[np.floating[Any]], seen: sp.csr_matrix) -> FloatMatrix:
    """Per row, each unseen item's rank (1 = lowest score; ties share their mean rank) over the
    number of unseen items; seen items (nonzero in ``seen``, same shape) get 0."""
    masked = np.array(scores, dtype=np.float64)
    rows, cols = seen.nonzero()
    masked[rows, cols] = -np.inf
    ranks = rankdata(masked, axis=1)
    n_seen = np.asarray(seen.getnnz(axis=1), dtype=np.float64)[:, np.newaxis]
    # Seen items hold ranks 1..n_seen (all tied at -inf, so their mean); unseen ones above.
    unseen = masked.shape[1] - n_seen
    normalised = (ranks - n_seen) / np.maximum(unseen, 1.0)
    normalised[rows, cols] = 0.0
    return np.asarray(normalised, dtype=np.float32)


class Ensemble:
    """``(1 - weight)`` EASE (``l2``) plus ``weight`` ALS (``factors``, ``regularization``,
    ``alpha``, ``iterations``), on rank-normalised scores."""

    name = NAME

    def __init__(
        self,
        *,
        weight: float = 0.5,
        l2: float = 400.0,
        factors: int = 16,
        regularization: float = 3.0,
        alpha: float = 5.0,
        iterations: int = 15,
    ) -> None:
        self.weight = float_param(NAME, "weight", weight, low=0.0, high=1.0)
        self._ease = EASE(l2=l2)
        self._als = ALS(
            factors=factors, regularization=regularization, alpha=alpha, iterations=iterations
        )
        self._train: sp.csr_matrix | None = None
        self._n_users: int | None = None

    def fit(self, train: InteractionMatrix, *, seed: int = 42) -> Self:
        """Fits both models on the same training matrix (ALS seeded with ``seed``)."""
        self._train = check_train(NAME, train)
        self._ease.fit(train, seed=seed)
        self._als.fit(train, seed=seed)
        self._n_users = train.n_users
        return self

    def score(self, users: npt.ArrayLike) -> FloatMatrix:
        """The weighted sum of the two models' rank-normalised scores."""
        positions: IntArray = check_users(NAME, users, self._n_users)
        if self._train is None:  # set with _n_users
            raise RuntimeError("training matrix missing after fit")
        seen = self._train[positions]
        ease = rank_normalise(self._ease.score(positions), seen)
        als = rank_normalise(self._als.score(positions), seen)
        return np.asarray((1.0 - self.weight) * ease + self.weight * als, dtype=np.float32)

    def params(self) -> Mapping[str, Any]:
        """The blend weight and both models' hyperparameters (EASE's solve is float64)."""
        als = self._als.params()
        return {"weight": self.weight, "l2": self._ease.l2, **als}
