"""What every retrieval model shares: checking hyperparameters and the users it is asked about.

Each model takes its hyperparameters as keyword arguments and checks them here, so that a bad
value (a negative regularisation, a fraction above one, a string where a number belongs) is a
:class:`~getit_ml.errors.UserError` that names the model and the parameter, raised when the model
is built rather than halfway through a fit.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from getit_ml.errors import UserError
from getit_ml.training.interactions import IntArray, InteractionMatrix


def int_param(model: str, name: str, value: Any, *, low: int, high: int | None = None) -> int:
    """``value`` as an int in ``[low, high]``; a bool or a float with a fraction is refused."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        if isinstance(value, float | np.floating) and float(value).is_integer():
            value = int(value)
        else:
            raise UserError(f"{model}: {name} must be an integer (got {value!r})")
    number = int(value)
    if number < low or (high is not None and number > high):
        bound = f"at least {low}" if high is None else f"between {low} and {high}"
        raise UserError(f"{model}: {name} must be {bound} (got {number})")
    return number


def float_param(
    model: str,
    name: str,
    value: Any,
    *,
    low: float,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a finite float within the bounds (open where ``*_open``)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise UserError(f"{model}: {name} must be a number (got {value!r})")
    number = float(value)
    too_low = number <= low if low_open else number < low
    too_high = high is not None and (number >= high if high_open else number > high)
    if not math.isfinite(number) or too_low or too_high:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        upper = "inf" if high is None else f"{high:g}"
        interval = f"{left}{low:g}, {upper}{right}"
        raise UserError(f"{model}: {name} must lie in {interval} (got {value!r})")
    return number


def choice_param(model: str, name: str, value: Any, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices``."""
    if value not in choices:
        raise UserError(f"{model}: {name} must be one of {', '.join(choices)} (got {value!r})")
    return str(value)


def check_train(model: str, train: InteractionMatrix) -> sp.csr_matrix:
    """The training matrix as float32 CSR, refusing one with no interactions or negative weights
    (implicit feedback: a weight is how much, never "against")."""
    if train.nnz == 0:
        raise UserError(f"{model}: the training matrix has no interactions")
    matrix = sp.csr_matrix(train.matrix, dtype=np.float32)
    if np.any(matrix.data < 0):
        raise UserError(f"{model}: interaction weights must not be negative")
    return matrix


def check_users(model: str, users: npt.ArrayLike, n_users: int | None) -> IntArray:
    """User positions as int64, each a row of the fitted training matrix."""
    if n_users is None:
        raise UserError(f"{model}: fit the model before scoring")
    positions = np.asarray(users)
    if positions.ndim != 1 or (positions.size and not np.issubdtype(positions.dtype, np.integer)):
        raise UserError(f"{model}: users must be a one-dimensional array of integer positions")
    positions = positions.astype(np.int64)
    bad = (positions < 0) | (positions >= n_users)
    if np.any(bad):
        raise UserError(
            f"{model}: user positions {positions[bad][:5].tolist()} are outside the "
            f"{n_users} users of the training matrix"
        )
    return positions
