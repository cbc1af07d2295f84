"""The popularity baseline: every user gets the items most often interacted with in training."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from getit_ml.training.interactions import FloatMatrix, InteractionMatrix
from getit_ml.training.recommenders._base import check_train, check_users

NAME = "popularity"


class Popularity:
    """Scores each item by how many training users interacted with it (binary counts, so one
    heavy user cannot make an item popular); the same list for every user."""

    name = NAME

    def __init__(self) -> None:
        self._counts: FloatMatrix | None = None
        self._n_users: int | None = None

    def fit(self, train: InteractionMatrix, *, seed: int = 42) -> Self:
        """Counts each item's users; ``seed`` is unused (nothing is random)."""
        matrix = check_train(NAME, train)
        self._counts = np.asarray(matrix.getnnz(axis=0), dtype=np.float32)
        self._n_users = train.n_users
        return self

    def score(self, users: npt.ArrayLike) -> FloatMatrix:
        """The item counts, one identical row per user."""
        positions = check_users(NAME, users, self._n_users)
        assert self._counts is not None  # set with _n_users
        return np.tile(self._counts, (len(positions), 1))

    def params(self) -> Mapping[str, Any]:
        """No hyperparameters."""
        return {}
