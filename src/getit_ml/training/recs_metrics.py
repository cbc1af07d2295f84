"""How good a top-k list is: the ranking metrics of ``getit-ml recs evaluate``.

Every accuracy metric follows Microsoft Recommenders (``recommenders.evaluation.
python_evaluation``), so that figures compare with their published MovieLens tables. With binary
relevance (every held-out interaction of a user is relevant), for a user with ``R`` relevant
items, ``hit_j`` = 1 when the item at rank ``j`` (1-based) of the top-``k`` list is relevant:

* ``precision@k`` = ``sum_j hit_j / k`` (Spark's definition: the best reachable value is below 1
  when ``R < k``);
* ``recall@k`` = ``sum_j hit_j / R``;
* ``ndcg@k`` = ``DCG / IDCG`` with ``DCG = sum_j hit_j / log(1 + j)`` and ``IDCG`` the same sum
  over the first ``min(R, k)`` ranks (their ``ndcg_at_k`` with ``score_type="binary"``; the log's
  base cancels);
* ``map`` = ``sum_j hit_j * (hits in ranks 1..j) / j`` divided by ``R`` — Recommenders' ``map``,
  the denominator being *every* relevant item of the user. Their ``map_at_k`` divides by
  ``min(R, k)`` instead; their published tables (BiVAE 0.1461 MAP on MovieLens-100k) were made
  before the two were separated, with the function that divided by ``R``, which is ``map`` now
  (with about 25 test items per user ``min(R, k)`` would give about twice those figures). Both are
  reported: ``map`` and ``map_at_k``.

Each is averaged over the users with at least one relevant item (Recommenders' "common users").
Beyond accuracy, over the same users' lists together:

* ``coverage``: distinct recommended items / distinct items in training (their
  ``catalog_coverage``);
* ``novelty``: the mean over recommendations of ``-log2(n_i / N)``, ``n_i`` the training
  interactions of item ``i`` and ``N`` all training interactions (their ``historical_item_novelty``
  and ``novelty``). A recommended item with no training interaction has no defined novelty: it is
  left out of the mean and counted (``recommended_unseen``); Recommenders divides by every
  recommendation instead, which gives such items novelty 0 (identical when there are none).

Sampled ranking (leave-last-out with ``N`` negatives, as in NCF): the held-out item is ranked
among itself and ``N`` items the user never interacted with (drawn with a seed); ``hr@k`` is 1 when
it is in the top ``k`` of those ``1 + N``, ``ndcg@k`` is ``1 / log2(1 + rank)`` then. A negative
that ties with the held-out item ranks above it (a tie never flatters a model). Sampled figures
are easier than full-ranking ones and can order models differently (Krichene and Rendle, 2020):
the output says which one it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from getit_ml.errors import UserError
from getit_ml.training.interactions import FloatMatrix, IntArray

FloatArray = npt.NDArray[np.float64]

#: The figures :class:`RankingAccumulator` produces for a full ranking, in table order.
FULL_METRICS: Final = ("map", "ndcg", "precision", "recall", "coverage", "novelty")
#: The figures of a sampled ranking.
SAMPLED_METRICS: Final = ("sampled_hr", "sampled_ndcg")
#: Marks an empty slot of a top-k list (fewer than k items could be recommended).
NO_ITEM: Final = -1


def top_k(scores: FloatMatrix, k: int, exclude: sp.csr_matrix | None = None) -> IntArray:
    """The ``k`` best item positions of each row of ``scores``, best first.

    ``exclude`` (rows aligned with ``scores``) marks items that may not be recommended (the
    user's training items): they score ``-inf``. Ties are broken by the lower item position, so
    a list never depends on the sort algorithm. A slot that only an excluded (or ``-inf``) item
    could fill holds :data:`NO_ITEM`. NaN or ``+inf`` scores are a :class:`UserError`."""
    if k < 1:
        raise UserError(f"k must be at least 1 (got {k})")
    values = np.array(scores, dtype=np.float64, copy=True)
    if values.ndim != 2:
        raise UserError(f"scores must be a users x items matrix (got shape {values.shape})")
    if np.isnan(values).any() or np.isposinf(values).any():
        raise UserError("the model returned NaN or +inf scores")
    n_rows, n_items = values.shape
    if exclude is not None:
        if exclude.shape != values.shape:
            raise UserError(f"mask {exclude.shape} does not match scores {values.shape}")
        mask = sp.csr_matrix(exclude).tocoo()
        values[mask.row, mask.col] = -np.inf
    width = min(k, n_items)
    result = np.full((n_rows, k), NO_ITEM, dtype=np.int64)
    if n_rows == 0 or width == 0:
        return result
    # The k-th best value of each row, then every item above it plus as many tied items as fill
    # the list, lowest positions first: exact tie-breaking without sorting whole rows.
    kth = -np.partition(-values, width - 1, axis=1)[:, width - 1 : width]
    above = values > kth
    tied = values == kth
    needed = width - above.sum(axis=1, keepdims=True)
    chosen = above | (tied & (np.cumsum(tied, axis=1) <= needed))
    # np.nonzero is row-major: within each row the positions come ascending.
    cols = np.nonzero(chosen)[1].reshape(n_rows, width)
    picked = np.take_along_axis(values, cols, axis=1)
    # lexsort's last key is primary: score descending, then position ascending.
    order = np.lexsort((cols, -picked), axis=1)
    ranked = np.take_along_axis(cols, order, axis=1)
    ranked[np.take_along_axis(picked, order, axis=1) == -np.inf] = NO_ITEM
    result[:, :width] = ranked
    return result


@dataclass
class RankingAccumulator:
    """Per-user ranking figures summed over batches of users, and what was recommended.

    ``train_counts`` is each item's number of training interactions (for coverage and novelty);
    :meth:`add` takes a batch's top-k lists and the same users' relevant items; :meth:`result`
    averages."""

    k: int
    train_counts: FloatArray
    users: int = 0
    sums: dict[str, float] = field(default_factory=dict)
    recommended: npt.NDArray[np.int64] = field(init=False)

    def __post_init__(self) -> None:
        if self.k < 1:
            raise UserError(f"k must be at least 1 (got {self.k})")
        self.recommended = np.zeros(len(self.train_counts), dtype=np.int64)
        self.sums = dict.fromkeys(("map", "map_at_k", "ndcg", "precision", "recall"), 0.0)

    def add(self, lists: IntArray, relevant: sp.csr_matrix) -> None:
        """Add users' top-k ``lists`` (``[users, k]``, :data:`NO_ITEM` in empty slots) and their
        ``relevant`` items (rows aligned, positive entries relevant). A user with no relevant
        item is skipped, its list too (it has no defined recall or nDCG)."""
        if lists.shape[1] != self.k or lists.shape[0] != relevant.shape[0]:
            raise UserError(
                f"top-k lists {lists.shape} do not match k={self.k} and {relevant.shape[0]} users"
            )
        truth = sp.csr_matrix(relevant)
        n_relevant = np.diff(truth.indptr).astype(np.float64)
        keep = n_relevant > 0
        lists, n_relevant = lists[keep], n_relevant[keep]
        truth = truth[np.flatnonzero(keep)]
        valid = lists != NO_ITEM
        self.recommended += np.bincount(lists[valid], minlength=len(self.recommended))
        if not len(lists):
            return
        dense = (truth > 0).toarray()
        hits = np.take_along_axis(dense, np.where(valid, lists, 0), axis=1) & valid
        ranks = np.arange(1, self.k + 1, dtype=np.float64)
        discount = 1.0 / np.log2(1.0 + ranks)
        n_hits = hits.sum(axis=1)
        ideal = np.cumsum(discount)[np.minimum(n_relevant, self.k).astype(np.int64) - 1]
        precision_at_hits = np.cumsum(hits, axis=1) / ranks * hits
        self.users += len(lists)
        self.sums["precision"] += float((n_hits / self.k).sum())
        self.sums["recall"] += float((n_hits / n_relevant).sum())
        self.sums["ndcg"] += float(((hits * discount).sum(axis=1) / ideal).sum())
        self.sums["map"] += float((precision_at_hits.sum(axis=1) / n_relevant).sum())
        self.sums["map_at_k"] += float(
            (precision_at_hits.sum(axis=1) / np.minimum(n_relevant, self.k)).sum()
        )

    def result(self) -> dict[str, float]:
        """The averages over the users added, plus coverage, novelty and their counts."""
        if self.users == 0:
            raise UserError("no user with a relevant item to evaluate")
        figures = {name: total / self.users for name, total in self.sums.items()}
        seen = self.train_counts > 0
        n_seen = int(seen.sum())
        figures["coverage"] = float(((self.recommended > 0) & seen).sum() / max(n_seen, 1))
        total = float(self.train_counts.sum())
        counted = self.recommended * seen
        if counted.sum() > 0:
            novelty = -np.log2(self.train_counts[seen] / total)
            figures["novelty"] = float((counted[seen] * novelty).sum() / counted.sum())
        else:
            figures["novelty"] = float("nan")
        figures["recommended_unseen"] = float((self.recommended * ~seen).sum())
        figures["users"] = float(self.users)
        return figures


def sampled_negatives(
    seen: sp.csr_matrix, users: IntArray, n: int, seed: int
) -> npt.NDArray[np.int64]:
    """``n`` distinct items per user (rows of ``seen``, the items a user interacted with in any
    part) that the user never interacted with, drawn without replacement with ``seed``: the
    same seed gives the same negatives, whatever model is evaluated."""
    if n < 1:
        raise UserError(f"the number of sampled negatives must be at least 1 (got {n})")
    matrix = sp.csr_matrix(seen)
    n_items = matrix.shape[1]
    rng = np.random.default_rng(seed)
    result = np.empty((len(users), n), dtype=np.int64)
    for row, user in enumerate(users):
        own = matrix.indices[matrix.indptr[user] : matrix.indptr[user + 1]]
        if n_items - len(own) < n:
            raise UserError(
                f"{n} sampled negatives asked for, but user position {int(user)} has only "
                f"{n_items - len(own)} items it never interacted with: ask for fewer negatives"
            )
        # Draw enough distinct items that n unseen ones remain after removing the user's own.
        draw = rng.choice(n_items, size=min(n_items, n + len(own)), replace=False)
        result[row] = draw[~np.isin(draw, own)][:n]
    return result


@dataclass
class SampledAccumulator:
    """Hit rate and nDCG at ``k`` of one held-out item ranked among sampled negatives."""

    k: int
    negatives: int
    users: int = 0
    hits: float = 0.0
    ndcg: float = 0.0

    def add(self, scores: FloatMatrix, positives: IntArray, negatives: IntArray) -> None:
        """Rank each row's ``positives[i]`` against its ``negatives[i]`` under ``scores``."""
        if np.isnan(scores).any():
            raise UserError("the model returned NaN scores")
        rows = np.arange(len(positives))
        positive = scores[rows, positives][:, None]
        others = np.take_along_axis(scores, negatives, axis=1)
        rank = 1 + (others >= positive).sum(axis=1)
        inside = rank <= self.k
        self.users += len(positives)
        self.hits += float(inside.sum())
        self.ndcg += float((inside / np.log2(1.0 + rank)).sum())

    def result(self) -> dict[str, float]:
        """``sampled_hr`` and ``sampled_ndcg`` averaged over the users added."""
        if self.users == 0:
            raise UserError("no held-out item to rank among sampled negatives")
        return {"sampled_hr": self.hits / self.users, "sampled_ndcg": self.ndcg / self.users}
