"""The user x item matrix every recommender trains on, and the protocol every recommender keeps.

A recommender family (retrieval, cross-sell, cold start) and ``getit-ml recs evaluate`` share
one representation: :class:`InteractionMatrix`, a sparse CSR matrix of implicit-feedback weights
(rows: users, columns: items) with the external ids of both axes, so that every split, model and
metric speaks row and column *positions* while files and answers speak ids. Each
:class:`Recommender` scores every item for a batch of users; the evaluation protocol removes the
items a user saw in training and ranks the rest (:mod:`getit_ml.training.recs_protocol`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, Self

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from getit_ml.errors import UserError

FloatMatrix = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class InteractionMatrix:
    """Users x items feedback weights (``csr``, float32, no explicit zeros), with the ids of
    each row (``user_ids``) and column (``item_ids``), both unique, in position order.

    Every split of one data set keeps the same two axes (a user with no training rows is an
    empty row), so that positions mean the same in the training, validation and test parts."""

    matrix: sp.csr_matrix
    user_ids: IntArray
    item_ids: IntArray
    _item_position: dict[int, int] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        users, items = self.matrix.shape
        if users != len(self.user_ids) or items != len(self.item_ids):
            raise ValueError(
                f"matrix {self.matrix.shape} does not match {len(self.user_ids)} user ids and "
                f"{len(self.item_ids)} item ids"
            )
        if len(np.unique(self.user_ids)) != users or len(np.unique(self.item_ids)) != items:
            raise ValueError("user and item ids must be unique")

    @property
    def n_users(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.matrix.shape[1])

    @property
    def nnz(self) -> int:
        return int(self.matrix.nnz)

    @classmethod
    def from_triples(
        cls,
        users: npt.ArrayLike,
        items: npt.ArrayLike,
        weights: npt.ArrayLike | None = None,
        *,
        user_ids: npt.ArrayLike | None = None,
        item_ids: npt.ArrayLike | None = None,
    ) -> InteractionMatrix:
        """A matrix from (user id, item id, weight) rows; duplicates are summed. ``user_ids`` /
        ``item_ids`` fix the axes (another split's, so positions agree); by default the sorted
        unique ids seen. An id outside given axes is an error, never a silent drop."""
        user_arr = np.asarray(users, dtype=np.int64)
        item_arr = np.asarray(items, dtype=np.int64)
        if user_arr.shape != item_arr.shape or user_arr.ndim != 1:
            raise UserError("users and items must be one-dimensional and of the same length")
        values = (
            np.ones(len(user_arr), dtype=np.float32)
            if weights is None
            else np.asarray(weights, dtype=np.float32)
        )
        if values.shape != user_arr.shape:
            raise UserError("weights must have one value per (user, item) row")
        if not np.all(np.isfinite(values)):
            raise UserError("interaction weights must be finite")
        u_axis = np.unique(user_arr) if user_ids is None else np.asarray(user_ids, np.int64)
        i_axis = np.unique(item_arr) if item_ids is None else np.asarray(item_ids, np.int64)
        rows = _positions(u_axis, user_arr, "user")
        cols = _positions(i_axis, item_arr, "item")
        matrix = sp.csr_matrix(
            (values, (rows, cols)), shape=(len(u_axis), len(i_axis)), dtype=np.float32
        )
        matrix.sum_duplicates()
        matrix.eliminate_zeros()
        return cls(matrix, u_axis, i_axis)

    def with_matrix(self, matrix: sp.csr_matrix) -> InteractionMatrix:
        """The same axes, other weights (a split of this matrix)."""
        csr = sp.csr_matrix(matrix, dtype=np.float32)
        csr.eliminate_zeros()
        return InteractionMatrix(csr, self.user_ids, self.item_ids)

    def binary(self) -> InteractionMatrix:
        """1 where a user interacted with an item (positive weight), else 0."""
        positive = self.matrix.copy()
        positive.data = (positive.data > 0).astype(np.float32)
        return self.with_matrix(positive)

    def item_positions(self, ids: npt.ArrayLike) -> IntArray:
        """Column positions of item ids (-1 for an id not on the axis: a new item)."""
        if not self._item_position:
            self._item_position.update({int(v): i for i, v in enumerate(self.item_ids)})
        lookup = self._item_position
        return np.array([lookup.get(int(v), -1) for v in np.asarray(ids)], dtype=np.int64)


def _positions(axis: IntArray, values: IntArray, what: str) -> IntArray:
    order = np.argsort(axis, kind="stable")
    sorted_axis = axis[order]
    found = np.searchsorted(sorted_axis, values)
    found = np.clip(found, 0, max(len(sorted_axis) - 1, 0))
    if len(values) and (len(sorted_axis) == 0 or np.any(sorted_axis[found] != values)):
        missing = values[(len(sorted_axis) == 0) | (sorted_axis[found] != values)]
        raise UserError(f"{len(missing)} {what} id(s) are not on the matrix's axis: {missing[:5]}")
    return order[found].astype(np.int64)


class Recommender(Protocol):
    """A model that scores every item for users (retrieval's contract).

    ``fit`` learns from a training matrix (weights: implicit feedback); ``score`` returns a dense
    ``[len(users), n_items]`` float32 array for user *positions* of that matrix — higher is
    better; the protocol masks the items a user saw in training, the model need not."""

    name: str

    def fit(self, train: InteractionMatrix, *, seed: int = 42) -> Self: ...

    def score(self, users: IntArray) -> FloatMatrix: ...

    def params(self) -> Mapping[str, Any]:
        """The hyperparameters the model was built with (for tables and the registry)."""
        ...
