"""Cross-sell ("bought together") from co-purchase, and up-sell within a subcategory.

**Bought together.** Baskets are orders (one row per order line of ``order_items``; a product
counts once per basket whatever its quantity). For products ``a`` and ``b`` over ``N`` baskets,
with ``n_a``, ``n_b`` the baskets holding each and ``n_ab`` those holding both:

* ``lift = n_ab * N / (n_a * n_b)`` — how much more often they meet than if independent;
* ``p_value = P(X >= n_ab)`` for ``X ~ Binomial(n_a, n_b / N)`` — a one-sided test of "``b`` is
  in ``a``'s baskets no more often than in any basket" (exact, so it stays honest at the small
  counts where a normal approximation flatters);
* ``confidence = n_ab / n_a`` — the share of ``a``'s baskets that also hold ``b``.

A pair is kept only when ``n_ab >= min_support`` AND ``lift >= min_lift`` AND ``p_value <=
alpha``: raw co-purchase counts rank the best sellers beside everything (the lift floor stops
that), and a lift of 10 from one shared basket is chance (the support and significance floors
stop that). Kept pairs are ranked by confidence (the chance the suggestion is taken), ties by
lift, then by product id. A product with no kept pair gets an empty list, never a filler: the
caller decides whether to fall back to something else (the benchmark measures "most bought").
The test is one-sided per pair with no multiple-testing correction, so ``alpha`` is a per-pair
floor, not a family-wise error rate; ``min_support`` bounds how many pairs can reach it.

For a basket, each candidate's score is the sum of the confidences of its kept pairs with the
basket's items (a product that goes with several of them ranks higher), the basket's own
products excluded.

**Up-sell.** For a product, the other products of its subcategory in a higher price band (bands:
``bands`` quantiles of price within the subcategory; at most ``max_price_ratio`` times the price,
since a jump from a 500-taka to a 20,000-taka item is not an up-sell), ranked by predicted
acceptance: of the sessions that viewed the product, the share that went on to buy the candidate
(view of ``a`` -> purchase of ``b``: ``(buys_ab + m * q_b) / (views_a + m)``), shrunk with ``m =
prior_views`` pseudo-sessions towards ``q_b``, the share of the subcategory's sessions that
bought the candidate, so a product seldom viewed falls back to what its subcategory buys.
Not the candidate's conversion rate among the sessions that also viewed it: on the marketplace
benchmark that rate (which ignores how often a candidate gets looked at) ranked held-out accepted
up-sells far below plain sales (hit@5 0.16 against 0.41), this score reaches 0.37. The
synthetic marketplace draws what a session buys independently of what else it viewed within a
subcategory, so there the per-product counts are noise and sales (``q_b``: this score as
``prior_views`` grows) is the ceiling; the per-product term is for real data, where it is not.
``support`` reports the co-viewing sessions behind each pair.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Self

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp
import scipy.stats

from getit_ml.errors import UserError
from getit_ml.training.recommenders._base import float_param, int_param

logger = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

NAME: Final = "cross_sell"


@dataclass(frozen=True)
class Suggestion:
    """One suggested product and why: ``score`` ranks (confidence, or a sum of them for a
    basket, or the predicted acceptance for up-sell); the rest explain it."""

    product_id: int
    score: float
    lift: float = float("nan")
    support: int = 0
    p_value: float = float("nan")


def _ids(values: npt.ArrayLike, what: str) -> IntArray:
    array = np.asarray(values)
    if array.ndim != 1 or (array.size and not np.issubdtype(array.dtype, np.integer)):
        raise UserError(f"{what} must be a one-dimensional array of integer ids")
    return array.astype(np.int64)


class BoughtTogether:
    """Products bought together with a product or a basket (see the module docstring)."""

    name = NAME

    def __init__(self, *, min_support: int = 3, min_lift: float = 1.5, alpha: float = 0.01) -> None:
        self.min_support = int_param(NAME, "min_support", min_support, low=1)
        self.min_lift = float_param(NAME, "min_lift", min_lift, low=1.0)
        self.alpha = float_param(NAME, "alpha", alpha, low=0.0, high=1.0, low_open=True)
        self._items: IntArray | None = None
        self._position: dict[int, int] = {}
        # Kept pairs, as sparse items x items matrices (row a, column b).
        self._confidence: sp.csr_matrix | None = None
        self._lift: sp.csr_matrix | None = None
        self._support: sp.csr_matrix | None = None
        self._p_value: sp.csr_matrix | None = None
        self.n_baskets = 0
        self.n_pairs_tested = 0
        self.n_pairs_kept = 0

    def fit(self, basket_ids: npt.ArrayLike, product_ids: npt.ArrayLike) -> Self:
        """Learns kept pairs from basket lines (``basket_ids[i]`` holds ``product_ids[i]``;
        repeated lines of one product in one basket count once)."""
        baskets = _ids(basket_ids, "basket ids")
        products = _ids(product_ids, "product ids")
        if baskets.shape != products.shape:
            raise UserError("basket ids and product ids must be of the same length")
        if not len(baskets):
            raise UserError(f"{NAME}: no basket lines to learn from")
        basket_axis, rows = np.unique(baskets, return_inverse=True)
        items, cols = np.unique(products, return_inverse=True)
        matrix = sp.csr_matrix(
            (np.ones(len(rows), dtype=np.float64), (rows, cols)),
            shape=(len(basket_axis), len(items)),
        )
        matrix.sum_duplicates()
        matrix.data[:] = 1.0  # repeated lines were summed: a product counts once per basket
        n = float(len(basket_axis))
        n_item = np.asarray(matrix.sum(axis=0)).ravel()
        co = (matrix.T @ matrix).tocoo()
        off = co.row != co.col
        a, b, n_ab = co.row[off], co.col[off], co.data[off]
        self.n_pairs_tested = len(a)
        lift = n_ab * n / (n_item[a] * n_item[b])
        # P(X >= n_ab) with X ~ Binomial(n_a, n_b / N): sf(n_ab - 1).
        p_value = scipy.stats.binom.sf(n_ab - 1, n_item[a], n_item[b] / n)
        keep = (n_ab >= self.min_support) & (lift >= self.min_lift) & (p_value <= self.alpha)
        a, b = a[keep], b[keep]
        shape = (len(items), len(items))

        def pairs(values: FloatArray) -> sp.csr_matrix:
            return sp.csr_matrix((values, (a, b)), shape=shape)

        self._confidence = pairs(n_ab[keep] / n_item[a])
        self._lift = pairs(lift[keep])
        self._support = pairs(n_ab[keep])
        # A p-value can underflow to 0, which a sparse matrix would drop: store it floored.
        self._p_value = pairs(np.maximum(p_value[keep], np.finfo(np.float64).tiny))
        self._items = items
        self._position = {int(v): i for i, v in enumerate(items)}
        self.n_baskets = len(basket_axis)
        self.n_pairs_kept = int(keep.sum())
        logger.info(
            "%s: %d baskets, %d products, %d of %d ordered pairs kept",
            NAME, self.n_baskets, len(items), self.n_pairs_kept, self.n_pairs_tested,
        )  # fmt: skip
        return self

    def _fitted(self) -> tuple[IntArray, sp.csr_matrix]:
        if self._items is None or self._confidence is None:
            raise UserError(f"{NAME}: fit the model before asking for suggestions")
        return self._items, self._confidence

    def for_product(self, product_id: int, k: int = 10) -> list[Suggestion]:
        """Up to ``k`` products bought together with ``product_id`` (empty for a product never
        bought, or with no pair that passes the floors)."""
        return self.for_basket([product_id], k)

    def for_basket(
        self, product_ids: Sequence[int] | npt.ArrayLike, k: int = 10
    ) -> list[Suggestion]:
        """Up to ``k`` products that go with the basket ``product_ids`` (its own products
        excluded; products never bought add nothing)."""
        items, confidence = self._fitted()
        k = int_param(NAME, "k", k, low=1)
        basket = _ids(product_ids, "the basket's product ids")
        rows = np.array(
            sorted({self._position[int(p)] for p in basket if int(p) in self._position}),
            dtype=np.int64,
        )
        if not len(rows):
            return []
        score = np.asarray(confidence[rows].sum(axis=0)).ravel()
        score[rows] = 0.0
        lift = self._best(self._lift, rows)
        candidates = np.flatnonzero(score > 0)
        order = np.lexsort((items[candidates], -lift[candidates], -score[candidates]))
        chosen = candidates[order][:k]
        support = self._best(self._support, rows)
        assert self._p_value is not None  # set with _confidence
        p_value = self._p_value[rows].tocsc()
        result = []
        for col in chosen:
            column = p_value[:, col].data
            result.append(
                Suggestion(
                    product_id=int(items[col]),
                    score=float(score[col]),
                    lift=float(lift[col]),
                    support=int(support[col]),
                    p_value=float(column.min()) if len(column) else float("nan"),
                )
            )
        return result

    @staticmethod
    def _best(matrix: sp.csr_matrix | None, rows: IntArray) -> FloatArray:
        # The strongest kept pair between the basket's rows and each candidate (for display).
        assert matrix is not None
        return np.asarray(matrix[rows].max(axis=0).toarray()).ravel()


class UpSell:
    """Higher-priced products of the same subcategory, ranked by predicted acceptance."""

    name = "up_sell"

    def __init__(
        self, *, bands: int = 4, max_price_ratio: float = 3.0, prior_views: float = 20.0
    ) -> None:
        self.bands = int_param("up_sell", "bands", bands, low=2, high=20)
        self.max_price_ratio = float_param(
            "up_sell", "max_price_ratio", max_price_ratio, low=1.0, low_open=True
        )
        self.prior_views = float_param(
            "up_sell", "prior_views", prior_views, low=0.0, low_open=True
        )
        self._products: pd.DataFrame | None = None
        self._pairs: pd.DataFrame | None = None

    def fit(self, products: pd.DataFrame, events: pd.DataFrame) -> Self:
        """Learns price bands from ``products`` (``product_id``, ``subcategory``,
        ``price_bdt``) and acceptance from ``events`` (``session_id``, ``event_type``,
        ``product_id``: views and purchases; other event types are ignored)."""
        _require(products, ("product_id", "subcategory", "price_bdt"), "products")
        _require(events, ("session_id", "event_type", "product_id"), "events")
        table = products[["product_id", "subcategory", "price_bdt"]].copy()
        if table["product_id"].duplicated().any():
            raise UserError("products: product_id must be unique")
        if table["price_bdt"].isna().any() or (table["price_bdt"] <= 0).any():
            raise UserError("products: every price_bdt must be a positive number")
        # Quantile bands within the subcategory: rank-based, so ties share a band.
        pct = table.groupby("subcategory")["price_bdt"].rank(method="min", pct=True)
        table["band"] = np.minimum((pct * self.bands).to_numpy() - 1e-9, self.bands - 1)
        table["band"] = np.floor(np.maximum(table["band"], 0)).astype(np.int64)

        known = events[events["product_id"].isin(table["product_id"])]
        views = known[known["event_type"] == "view"][["session_id", "product_id"]]
        views = views.drop_duplicates()
        bought = known[known["event_type"] == "purchase"][["session_id", "product_id"]]
        bought = bought.drop_duplicates().assign(bought=1)
        viewed = views.merge(bought, on=["session_id", "product_id"], how="left")
        viewed["bought"] = viewed["bought"].fillna(0)
        per_item = viewed.groupby("product_id")["bought"].agg(["sum", "count"])
        table = table.set_index("product_id")
        table["views"] = per_item["count"].reindex(table.index).fillna(0.0)
        table["buys"] = per_item["sum"].reindex(table.index).fillna(0.0)
        # The prior: the share of the subcategory's sessions (those viewing any of its
        # products) that bought b.
        sub_of = table["subcategory"]
        sessions = views.assign(subcategory=views["product_id"].map(sub_of))
        sub_sessions = sessions.drop_duplicates(["session_id", "subcategory"])
        per_sub = sub_sessions.groupby("subcategory").size()
        table["rate"] = table["buys"] / table["subcategory"].map(per_sub).fillna(0.0).clip(lower=1)

        # Co-views within a subcategory: session, viewed a, viewed (and maybe bought) b.
        left = views.assign(subcategory=views["product_id"].map(sub_of))
        right = viewed.assign(subcategory=viewed["product_id"].map(sub_of))
        pairs = left.merge(right, on=["session_id", "subcategory"], suffixes=("", "_to"))
        pairs = pairs[pairs["product_id"] != pairs["product_id_to"]]
        self._pairs = (
            pairs.groupby(["product_id", "product_id_to"])["bought"]
            .agg(["sum", "count"])
            .rename(columns={"sum": "buys", "count": "coviews"})
        )
        self._products = table
        return self

    def for_product(self, product_id: int, k: int = 10) -> list[Suggestion]:
        """Up to ``k`` up-sells for ``product_id`` (empty for an unknown product or one in the
        top band); ``support`` is the number of co-viewing sessions behind each score."""
        if self._products is None or self._pairs is None:
            raise UserError("up_sell: fit the model before asking for suggestions")
        k = int_param("up_sell", "k", k, low=1)
        table = self._products
        if int(product_id) not in table.index:
            return []
        base = table.loc[int(product_id)]
        same = table[
            (table["subcategory"] == base["subcategory"])
            & (table["band"] > base["band"])
            & (table["price_bdt"] <= base["price_bdt"] * self.max_price_ratio)
        ]
        if same.empty:
            return []
        try:
            pairs = self._pairs.loc[int(product_id)]
        except KeyError:
            pairs = self._pairs.iloc[:0].droplevel(0)
        buys = pairs["buys"].reindex(same.index).fillna(0.0)
        coviews = pairs["coviews"].reindex(same.index).fillna(0.0)
        m = self.prior_views
        views_a = float(table["views"].to_numpy(np.float64)[table.index.get_loc(int(product_id))])
        score = (buys + m * same["rate"]) / (views_a + m)
        ranked = pd.DataFrame({"score": score, "coviews": coviews})
        ranked = ranked.reset_index().sort_values(["score", "product_id"], ascending=[False, True])
        top = ranked.head(k)
        return [
            Suggestion(product_id=int(p), score=float(v), support=int(c))
            for p, v, c in zip(
                top["product_id"].to_numpy(np.int64),
                top["score"].to_numpy(np.float64),
                top["coviews"].to_numpy(np.float64),
                strict=True,
            )
        ]

    def band(self, product_id: int) -> int:
        """The price band (0 = cheapest) of ``product_id`` within its subcategory."""
        if self._products is None:
            raise UserError("up_sell: fit the model first")
        if int(product_id) not in self._products.index:
            raise UserError(f"up_sell: unknown product {product_id}")
        bands = self._products["band"].to_numpy(np.int64)
        return int(bands[self._products.index.get_loc(int(product_id))])


def _require(frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UserError(f"{what}: missing column(s) {', '.join(missing)}")
