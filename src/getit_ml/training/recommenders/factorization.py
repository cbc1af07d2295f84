"""Matrix factorisation from the ``implicit`` library (0.7, CPU): ALS and BPR.

- ``als`` — Hu, Koren & Volinsky's weighted ALS for implicit feedback: confidence
  ``1 + alpha * weight`` on observed pairs, 1 on the rest, squared loss.
- ``bpr`` — Rendle et al.'s Bayesian Personalised Ranking: SGD on sampled (user, seen item,
  unseen item) triples; ``implicit`` adds an item bias as one more factor.

Since ``implicit`` 0.7, ``fit`` takes the *user x item* matrix (before 0.5 it took item x user),
which is :class:`InteractionMatrix`'s orientation, so it goes in as it is. The models are built
from ``implicit.cpu`` directly (the top-level constructors pick the GPU when CUDA is present,
which would make results depend on the machine) with ``num_threads=1``: BPR's parallel SGD is
Hogwild (threads race on shared factors), so only one thread makes a seeded fit repeat exactly;
ALS keeps one thread too so that the platform's own parallelism (trials, folds) is not
oversubscribed. Factors are seeded from the ``seed`` given to :meth:`fit`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Self

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # implicit needs it

from getit_ml.training.interactions import FloatMatrix, InteractionMatrix
from getit_ml.training.recommenders._base import (
    check_train,
    check_users,
    float_param,
    int_param,
)

logger = logging.getLogger(__name__)


class _Factorization:
    """Shared by ALS and BPR: factors after :meth:`fit`, scores as their dot products."""

    name = ""

    def __init__(self) -> None:
        self._user_factors: FloatMatrix | None = None
        self._item_factors: FloatMatrix | None = None
        self._n_users: int | None = None

    def _fitted(self, model: Any, n_users: int) -> None:
        self._user_factors = np.ascontiguousarray(model.user_factors, dtype=np.float32)
        self._item_factors = np.ascontiguousarray(model.item_factors, dtype=np.float32)
        self._n_users = n_users

    def score(self, users: npt.ArrayLike) -> FloatMatrix:
        """User factors times item factors (BPR's item bias rides in the last factor)."""
        positions = check_users(self.name, users, self._n_users)
        if self._user_factors is None or self._item_factors is None:  # set with _n_users
            raise RuntimeError("factors missing after fit")
        scores = self._user_factors[positions] @ self._item_factors.T
        return np.asarray(scores, dtype=np.float32)


class ALS(_Factorization):
    """Implicit-feedback ALS: ``factors`` latent dimensions, ``regularization`` (L2 on the
    factors), ``alpha`` (confidence per unit of weight), ``iterations`` full sweeps."""

    name = "als"

    def __init__(
        self,
        *,
        factors: int = 16,
        regularization: float = 3.0,
        alpha: float = 5.0,
        iterations: int = 15,
    ) -> None:
        super().__init__()
        self.factors = int_param(self.name, "factors", factors, low=1, high=4096)
        self.regularization = float_param(self.name, "regularization", regularization, low=0.0)
        self.alpha = float_param(self.name, "alpha", alpha, low=0.0, low_open=True)
        self.iterations = int_param(self.name, "iterations", iterations, low=1, high=1000)

    def fit(self, train: InteractionMatrix, *, seed: int = 42) -> Self:
        """Alternates user and item least-squares solves (conjugate gradient, 3 steps)."""
        # Imported before the limit below: the import loads BLAS libraries, and a limit only
        # reaches those already loaded.
        from implicit.cpu.als import AlternatingLeastSquares

        matrix = check_train(self.name, train)
        # implicit warns (and runs up to 10x slower) when BLAS has its own thread pool: its
        # solver already works row by row; limited for this fit only.
        with threadpool_limits(1, "blas"):
            model = self._fit(AlternatingLeastSquares, matrix, seed)
        self._fitted(model, train.n_users)
        return self

    def _fit(self, als: Any, matrix: Any, seed: int) -> Any:
        model = als(
            factors=self.factors,
            regularization=self.regularization,
            alpha=self.alpha,
            iterations=self.iterations,
            dtype=np.float32,
            num_threads=1,
            random_state=seed,
        )
        model.fit(matrix, show_progress=False)
        return model

    def params(self) -> Mapping[str, Any]:
        """The four hyperparameters."""
        return {
            "factors": self.factors,
            "regularization": self.regularization,
            "alpha": self.alpha,
            "iterations": self.iterations,
        }


class BPR(_Factorization):
    """Bayesian Personalised Ranking: ``factors`` latent dimensions, SGD ``learning_rate``,
    ``regularization`` (L2), ``iterations`` epochs over the observed pairs."""

    name = "bpr"

    def __init__(
        self,
        *,
        factors: int = 64,
        learning_rate: float = 0.003,
        regularization: float = 0.001,
        iterations: int = 100,
    ) -> None:
        super().__init__()
        self.factors = int_param(self.name, "factors", factors, low=1, high=4096)
        self.learning_rate = float_param(
            self.name, "learning_rate", learning_rate, low=0.0, low_open=True, high=10.0
        )
        self.regularization = float_param(self.name, "regularization", regularization, low=0.0)
        self.iterations = int_param(self.name, "iterations", iterations, low=1, high=10_000)

    def fit(self, train: InteractionMatrix, *, seed: int = 42) -> Self:
        """SGD on sampled triples; negatives are checked against the user's seen items."""
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        matrix = check_train(self.name, train)
        model = BayesianPersonalizedRanking(
            factors=self.factors,
            learning_rate=self.learning_rate,
            regularization=self.regularization,
            iterations=self.iterations,
            dtype=np.float32,
            verify_negative_samples=True,
            num_threads=1,
            random_state=seed,
        )
        model.fit(matrix, show_progress=False)
        self._fitted(model, train.n_users)
        return self

    def params(self) -> Mapping[str, Any]:
        """The four hyperparameters."""
        return {
            "factors": self.factors,
            "learning_rate": self.learning_rate,
            "regularization": self.regularization,
            "iterations": self.iterations,
        }
