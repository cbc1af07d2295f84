"""EASE (Steck 2019, "Embarrassingly Shallow Autoencoders for Sparse Data"): an item-item
weight matrix in closed form.

EASE solves ``min_B ||X - XB||^2 + lambda ||B||^2`` subject to ``diag(B) = 0`` (an item may not
recommend itself, which would make the identity the trivial answer). With
``P = (X^T X + lambda I)^-1`` the solution is ``B = I - P diag(1 / diag(P))``: off the diagonal
``B_ij = -P_ij / P_jj``, and zero on it. A user's scores are their training row times ``B``.

The Gram matrix is dense ``n_items x n_items``; the inverse is taken in ``dtype`` (float64 by
default: the inverse of an ill-conditioned Gram matrix loses digits in float32) through a
Cholesky factorisation (``X^T X + lambda I`` is symmetric positive definite for ``lambda > 0``)
and kept in float32 for scoring.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final, Self

import numpy as np
import numpy.typing as npt
import scipy.linalg

from getit_ml.errors import UserError
from getit_ml.training.interactions import FloatMatrix, InteractionMatrix
from getit_ml.training.recommenders._base import (
    check_train,
    check_users,
    choice_param,
    float_param,
)

logger = logging.getLogger(__name__)

NAME = "ease"
#: Catalogue size above which the dense item-item matrix is refused (40k items: 6.4 GB per
#: float32 copy, and the solve needs a float64 one too).
MAX_ITEMS: Final = 40_000
DTYPES: Final = ("float64", "float32")


def ease_weights(gram: npt.NDArray[np.floating[Any]], l2: float) -> npt.NDArray[np.floating[Any]]:
    """The EASE item-item matrix ``B`` for a Gram matrix ``X^T X`` (in the Gram matrix's dtype):
    ``B = I - P / diag(P)`` with ``P = (gram + l2 I)^-1``, so ``diag(B) = 0``."""
    regularised = gram.copy()
    regularised[np.diag_indices_from(regularised)] += l2
    factor = scipy.linalg.cho_factor(regularised, overwrite_a=True, check_finite=False)
    identity = np.eye(len(gram), dtype=gram.dtype)
    precision = scipy.linalg.cho_solve(factor, identity, overwrite_b=True, check_finite=False)
    weights: npt.NDArray[np.floating[Any]] = np.asarray(
        -precision / np.diag(precision)[np.newaxis, :], dtype=gram.dtype
    )
    weights[np.diag_indices_from(weights)] = 0.0
    return weights


class EASE:
    """Steck's EASE: ``l2`` is the ridge penalty ``lambda`` (hundreds on MovieLens-100k)."""

    name = NAME

    def __init__(self, *, l2: float = 400.0, dtype: str = "float64") -> None:
        self.l2 = float_param(NAME, "l2", l2, low=0.0, low_open=True)
        self.dtype = choice_param(NAME, "dtype", dtype, DTYPES)
        self._train: Any = None
        self._weights: FloatMatrix | None = None
        self._n_users: int | None = None

    def fit(self, train: InteractionMatrix, *, seed: int = 42) -> Self:
        """Solves for ``B`` in closed form; ``seed`` is unused (nothing is random)."""
        matrix = check_train(NAME, train)
        if train.n_items > MAX_ITEMS:
            raise UserError(
                f"{NAME}: {train.n_items} items is more than the {MAX_ITEMS} a dense item-item "
                "matrix allows here; filter rare items first or use als/bpr"
            )
        as_dtype = matrix.astype(np.dtype(self.dtype))
        gram = np.asarray((as_dtype.T @ as_dtype).toarray())
        try:
            self._weights = ease_weights(gram, self.l2).astype(np.float32)
        except np.linalg.LinAlgError as error:  # only from a numerically singular Gram matrix
            raise UserError(
                f"{NAME}: the Gram matrix is numerically singular with l2={self.l2:g} in "
                f"{self.dtype}; raise l2 or use float64"
            ) from error
        self._train = matrix
        self._n_users = train.n_users
        logger.debug("EASE fitted on %d items with l2=%g", train.n_items, self.l2)
        return self

    def score(self, users: npt.ArrayLike) -> FloatMatrix:
        """Each user's training row times ``B``."""
        positions = check_users(NAME, users, self._n_users)
        rows = self._train[positions]
        return np.asarray(rows @ self._weights, dtype=np.float32)

    def params(self) -> Mapping[str, Any]:
        """``l2`` and the solve's ``dtype``."""
        return {"l2": self.l2, "dtype": self.dtype}
