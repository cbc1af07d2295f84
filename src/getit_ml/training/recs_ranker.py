"""The second stage of recommendation: a LightGBM lambdarank ranker over retrieved candidates.

Retrieval (a registry model, EASE by default) proposes ``n_candidates`` products per customer
at a request time ``as_of``; the ranker reorders them with customer x product features
(:mod:`getit_ml.features.recs_features`, computed from what happened before ``as_of`` only).

* **Labels** are the next period's feedback (``label_days`` from ``as_of``): 2 for a purchase,
  1 for a cart add (graded relevance; the larger one when both), 0 otherwise.
* **Groups** are one customer at one request time (lambdarank ranks within a group).
* **Requests** are the customers active before ``as_of`` with at least one labelled product in
  the window: a customer with nothing next period has nothing to rank against.
* **Candidates** are the model's best ``n_candidates`` over the whole catalogue, items the
  customer already saw included: on a marketplace people come back to a product they viewed
  (and buy it again), so history is a signal here, not a leak to mask.
* **Metrics** (:func:`ranking_metrics`) count every labelled product of the window, found by
  retrieval or not: nDCG@k with gain ``2**label - 1`` (LightGBM's default label gain) and
  ``1 / log2(1 + rank)``, the ideal list built from *all* the customer's labels; Recall@k over
  all of them. So "candidates alone" and "ranked" are scored on the same denominators and a
  ranker can only gain by reordering.
* **Training** uses a validation part (whole groups, drawn by customer with a seed) for early
  stopping and for a small grid over leaves and learning rate (:func:`tune_ranker`); LightGBM
  runs single-threaded and deterministic so that a seed gives the same model.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from getit_ml.errors import UserError
from getit_ml.features.recs_features import (
    CATEGORICAL_FEATURES,
    FEATURES,
    US_PER_DAY,
    MarketHistory,
    candidate_features,
)
from getit_ml.training.interactions import InteractionMatrix
from getit_ml.training.recommenders import build

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
#: Graded relevance of next-period feedback.
LABELS: Final[dict[str, int]] = {"add_to_cart": 1, "purchase": 2}


@dataclass(frozen=True)
class Requests:
    """Candidates of many (customer, request time) groups, contiguous per group.

    ``rows``: request (0-based group number), as_of_us, customer_id, product_id,
    retrieval_score, retrieval_rank (1 = best), label. ``features``: one row per candidate.
    ``ideal_dcg`` and ``n_relevant``: per group, over all its labelled products (retrieved or
    not), for :func:`ranking_metrics`."""

    rows: pd.DataFrame
    features: pd.DataFrame
    ideal_dcg: FloatArray
    n_relevant: npt.NDArray[np.int64]

    @property
    def n_groups(self) -> int:
        return len(self.ideal_dcg)

    @property
    def group_sizes(self) -> npt.NDArray[np.int64]:
        return np.bincount(self.rows["request"].to_numpy(), minlength=self.n_groups)

    def with_positives(self) -> Requests:
        """The groups with at least one relevant candidate: the only ones lambdarank learns
        from (an all-zero group has no pair to order), and the only ones LightGBM's nDCG can
        tell apart (it scores an all-zero group 1, which flattens early stopping)."""
        best = self.rows.groupby("request")["label"].max()
        return self.take(best.index[best.to_numpy() > 0].to_numpy(np.int64))

    def take(self, groups: npt.NDArray[np.int64]) -> Requests:
        """The given groups (sorted), renumbered 0..n-1."""
        keep = np.sort(np.asarray(groups, dtype=np.int64))
        mask = self.rows["request"].isin(keep).to_numpy()
        rows = self.rows[mask].reset_index(drop=True)
        renumber = np.full(self.n_groups, -1, dtype=np.int64)
        renumber[keep] = np.arange(len(keep))
        rows["request"] = renumber[rows["request"].to_numpy()]
        return Requests(
            rows,
            self.features[mask].reset_index(drop=True),
            self.ideal_dcg[keep],
            self.n_relevant[keep],
        )


def concat_requests(parts: Sequence[Requests]) -> Requests:
    """One set of requests from several (group numbers shifted to stay unique)."""
    if not parts:
        raise UserError("no requests to combine")
    rows, offset = [], 0
    for part in parts:
        rows.append(part.rows.assign(request=part.rows["request"] + offset))
        offset += part.n_groups
    return Requests(
        pd.concat(rows, ignore_index=True),
        pd.concat([p.features for p in parts], ignore_index=True),
        np.concatenate([p.ideal_dcg for p in parts]),
        np.concatenate([p.n_relevant for p in parts]),
    )


def next_period_labels(history: MarketHistory, as_of_us: int, days: int) -> pd.DataFrame:
    """customer_id, product_id, label: the best feedback in ``[as_of, as_of + days)``."""
    if days < 1:
        raise UserError(f"the label window must be at least one day (got {days})")
    events = history.events
    window = events[
        (events["ts_us"] >= as_of_us) & (events["ts_us"] < as_of_us + days * US_PER_DAY)
    ]
    graded = window.assign(label=window["event_type"].map(LABELS))
    graded = graded[graded["label"].notna()]
    best = graded.groupby(["customer_id", "product_id"])["label"].max().reset_index()
    return best.astype({"label": np.int64})


def _dcg_weights(k: int) -> FloatArray:
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def _ideal_dcg(labels: pd.DataFrame, customers: npt.NDArray[np.int64], k: int) -> FloatArray:
    """Per customer (in ``customers`` order, sorted): the DCG@k of their labels best first."""
    weights = _dcg_weights(k)
    gains = labels.assign(gain=2.0 ** labels["label"] - 1.0)
    ordered = gains.sort_values(["customer_id", "gain"], ascending=[True, False])
    rank = ordered.groupby("customer_id").cumcount().to_numpy()
    top = rank < k
    group = np.searchsorted(customers, ordered["customer_id"].to_numpy()[top])
    contribution = ordered["gain"].to_numpy()[top] * weights[rank[top]]
    return np.bincount(group, weights=contribution, minlength=len(customers)).astype(np.float64)


def retrieve(
    history: MarketHistory,
    as_of_us: int,
    customers: npt.NDArray[np.int64],
    *,
    n_candidates: int,
    model: str = "ease",
    params: Mapping[str, Any] | None = None,
    seed: int = 42,
) -> pd.DataFrame:
    """customer_id, product_id, retrieval_score, retrieval_rank: the registry model's best
    ``n_candidates`` per customer, fitted on the (binary) interactions before ``as_of``."""
    past = history.before(as_of_us)
    if past.empty:
        raise UserError("no interactions before the request time: nothing to retrieve from")
    items = np.sort(history.products["product_id"].to_numpy(np.int64))
    users = np.unique(past["customer_id"].to_numpy(np.int64))
    matrix = InteractionMatrix.from_triples(
        past["customer_id"], past["product_id"], user_ids=users, item_ids=items
    ).binary()
    n = min(n_candidates, len(items))
    if n < 1:
        raise UserError(f"n_candidates must be at least 1 (got {n_candidates})")
    recommender = build(model, **dict(params or {})).fit(matrix, seed=seed)
    positions = np.searchsorted(users, customers)
    if np.any(positions >= len(users)) or np.any(
        users[np.minimum(positions, len(users) - 1)] != customers
    ):
        raise UserError("retrieval only serves customers with interactions before the request")
    frames = []
    for start in range(0, len(customers), 1024):  # bounded memory: users x catalogue per batch
        batch = positions[start : start + 1024]
        scores = recommender.score(batch.astype(np.int64))
        # Ties break by the lower position (stable sort), so lists never depend on the sort.
        order = np.argsort(-scores, axis=1, kind="stable")[:, :n]
        frames.append(
            pd.DataFrame(
                {
                    "customer_id": np.repeat(customers[start : start + 1024], n),
                    "product_id": items[order].ravel(),
                    "retrieval_score": np.take_along_axis(scores, order, axis=1).ravel(),
                    "retrieval_rank": np.tile(np.arange(1, n + 1), len(batch)),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def build_requests(
    history: MarketHistory,
    as_of_us: int,
    *,
    label_days: int = 7,
    n_candidates: int = 50,
    model: str = "ease",
    params: Mapping[str, Any] | None = None,
    k: int = 10,
    seed: int = 42,
) -> Requests:
    """The ranking requests at ``as_of``: every customer with history before it and at least one
    labelled product in the next ``label_days``, with retrieved candidates, features, labels."""
    labels = next_period_labels(history, as_of_us, label_days)
    active = np.unique(history.before(as_of_us)["customer_id"].to_numpy(np.int64))
    customers = np.intersect1d(active, labels["customer_id"].to_numpy(np.int64))
    if len(customers) == 0:
        raise UserError("no customer has both history before the request and feedback after it")
    labels = labels[labels["customer_id"].isin(customers)]
    candidates = retrieve(
        history, as_of_us, customers, n_candidates=n_candidates, model=model, params=params,
        seed=seed,
    )  # fmt: skip
    rows = candidates.merge(labels, on=["customer_id", "product_id"], how="left")
    rows["label"] = rows["label"].fillna(0).astype(np.int64)
    rows.insert(0, "request", np.searchsorted(customers, rows["customer_id"].to_numpy()))
    rows.insert(1, "as_of_us", as_of_us)
    features = candidate_features(history, rows[["customer_id", "product_id"]], as_of_us)
    features = features.assign(
        retrieval_score=rows["retrieval_score"].to_numpy(np.float64),
        retrieval_rank=rows["retrieval_rank"].to_numpy(np.float64),
    )
    n_relevant = np.asarray(
        labels.groupby("customer_id").size().reindex(customers).to_numpy(), dtype=np.int64
    )
    logger.info(
        "%d requests, %d candidates, %d labelled products (%d retrieved)",
        len(customers), len(rows), int(n_relevant.sum()), int((rows["label"] > 0).sum()),
    )  # fmt: skip
    return Requests(rows, features, _ideal_dcg(labels, customers, k), n_relevant)


@dataclass(frozen=True)
class RankingFigures:
    """Mean nDCG@k and Recall@k over groups, the number of groups, and each group's nDCG@k
    (for paired comparisons of two rankings of the same requests)."""

    ndcg: float
    recall: float
    groups: int
    per_group_ndcg: FloatArray = field(
        repr=False, compare=False, default_factory=lambda: np.zeros(0)
    )


def paired_interval(
    a: RankingFigures, b: RankingFigures, *, draws: int = 1000, seed: int = 42
) -> tuple[float, float, float]:
    """Mean nDCG difference ``a - b`` over the same groups and its 95% bootstrap interval
    (groups resampled with a seed): whether a difference is larger than the noise."""
    if a.per_group_ndcg.shape != b.per_group_ndcg.shape or a.groups == 0:
        raise UserError("a paired comparison needs two rankings of the same requests")
    difference = a.per_group_ndcg - b.per_group_ndcg
    rng = np.random.default_rng(seed)
    means = np.array(
        [difference[rng.integers(0, len(difference), len(difference))].mean() for _ in range(draws)]
    )
    low, high = np.quantile(means, [0.025, 0.975])
    return float(difference.mean()), float(low), float(high)


def ranking_metrics(requests: Requests, scores: npt.ArrayLike, k: int = 10) -> RankingFigures:
    """nDCG@k and Recall@k of ranking each group's candidates by ``scores`` (higher first; ties
    keep the candidate order), against all of the group's labelled products."""
    values = np.asarray(scores, dtype=np.float64)
    if values.shape != (len(requests.rows),):
        raise UserError(f"{values.shape} scores for {len(requests.rows)} candidates")
    if not np.all(np.isfinite(values)):
        raise UserError("ranking scores must be finite")
    if requests.n_groups == 0:
        raise UserError("no groups to score")
    frame = pd.DataFrame(
        {"request": requests.rows["request"].to_numpy(), "score": values,
         "label": requests.rows["label"].to_numpy()}
    )  # fmt: skip
    frame["position"] = np.arange(len(frame))
    ordered = frame.sort_values(["request", "score", "position"], ascending=[True, False, True])
    rank = ordered.groupby("request").cumcount().to_numpy()
    top = rank < k
    weights = _dcg_weights(k)
    gain = (2.0 ** ordered["label"].to_numpy() - 1.0) * np.where(
        top, weights[np.minimum(rank, k - 1)], 0
    )
    groups = ordered["request"].to_numpy()
    dcg = np.bincount(groups, weights=gain, minlength=requests.n_groups)
    hits = np.bincount(
        groups, weights=(top & (ordered["label"].to_numpy() > 0)), minlength=requests.n_groups
    )
    ndcg = np.where(requests.ideal_dcg > 0, dcg / np.maximum(requests.ideal_dcg, 1e-300), 0.0)
    recall = hits / np.maximum(requests.n_relevant, 1)
    return RankingFigures(float(ndcg.mean()), float(recall.mean()), requests.n_groups, ndcg)


def split_by_customer(
    requests: Requests, valid_fraction: float = 0.2, seed: int = 42
) -> tuple[Requests, Requests]:
    """(train, validation): whole customers to one side, so the validation part's customers
    are unseen in training (early stopping then measures generalisation, not memory)."""
    if not 0 < valid_fraction < 1:
        raise UserError(f"valid_fraction must be in (0, 1) (got {valid_fraction})")
    customer_of_group = requests.rows.groupby("request")["customer_id"].first()
    customers = np.unique(customer_of_group.to_numpy())
    rng = np.random.default_rng(seed)
    chosen = set(
        rng.choice(
            customers, size=max(1, int(len(customers) * valid_fraction)), replace=False
        ).tolist()
    )
    is_valid = customer_of_group.isin(chosen).to_numpy()
    groups = customer_of_group.index.to_numpy(np.int64)
    if is_valid.all() or not is_valid.any():
        raise UserError("too few customers to carve a validation part")
    return requests.take(groups[~is_valid]), requests.take(groups[is_valid])


@dataclass(frozen=True)
class RankerParams:
    """LightGBM lambdarank settings (the tuned ones: leaves and learning rate)."""

    num_leaves: int = 31
    learning_rate: float = 0.05
    min_data_in_leaf: int = 50
    feature_fraction: float = 0.8
    max_rounds: int = 500
    early_stopping_rounds: int = 30

    def __post_init__(self) -> None:
        if self.num_leaves < 2 or self.min_data_in_leaf < 1 or self.max_rounds < 1:
            raise UserError("num_leaves >= 2, min_data_in_leaf >= 1 and max_rounds >= 1 needed")
        if not 0 < self.learning_rate <= 1 or not 0 < self.feature_fraction <= 1:
            raise UserError("learning_rate and feature_fraction must be in (0, 1]")


#: The small grid :func:`tune_ranker` searches by default.
DEFAULT_GRID: Final[tuple[RankerParams, ...]] = (
    RankerParams(num_leaves=15, learning_rate=0.05, min_data_in_leaf=50),
    RankerParams(num_leaves=31, learning_rate=0.05, min_data_in_leaf=50),
    # Heavily regularised: next-period feedback is sparse (about one labelled product per
    # customer), and small leaves over many rows keep the trees from fitting its noise.
    RankerParams(
        num_leaves=7,
        learning_rate=0.02,
        min_data_in_leaf=1000,
        feature_fraction=1.0,
        early_stopping_rounds=100,
    ),
)


@dataclass
class LambdaRanker:
    """A fitted lambdarank booster over a fixed list of feature columns."""

    features: tuple[str, ...]
    params: RankerParams
    booster: Any
    best_iteration: int
    valid: RankingFigures | None = None
    importance: dict[str, float] = field(default_factory=dict)

    def score(self, requests: Requests) -> FloatArray:
        """Ranking scores of every candidate (higher first)."""
        missing = sorted(set(self.features) - set(requests.features.columns))
        if missing:
            raise UserError(f"requests lack feature(s) {', '.join(missing)}")
        matrix = requests.features[list(self.features)].to_numpy(np.float64)
        return np.asarray(
            self.booster.predict(matrix, num_iteration=self.best_iteration), dtype=np.float64
        )


def fit_ranker(
    train: Requests,
    valid: Requests,
    *,
    features: Sequence[str] | None = None,
    params: RankerParams | None = None,
    seed: int = 42,
    k: int = 10,
) -> LambdaRanker:
    """A lambdarank model on ``train``'s groups, early-stopped on ``valid``'s nDCG@k."""
    import lightgbm as lgb

    columns = tuple(features) if features is not None else all_features()
    unknown = sorted(set(columns) - set(train.features.columns))
    if unknown:
        raise UserError(f"unknown feature(s) {', '.join(unknown)}")
    for part, what in ((train, "training"), (valid, "validation")):
        if not (part.rows["label"] > 0).any():
            raise UserError(f"the {what} requests have no relevant candidate: nothing to rank")
    chosen = params or RankerParams()
    categorical = [c for c in CATEGORICAL_FEATURES if c in columns]

    def dataset(part: Requests, reference: Any = None) -> Any:
        return lgb.Dataset(
            part.features[list(columns)].to_numpy(np.float64),
            label=part.rows["label"].to_numpy(),
            group=part.group_sizes,
            feature_name=list(columns),
            categorical_feature=categorical,
            reference=reference,
            free_raw_data=False,
        )

    train_set = dataset(train.with_positives())
    valid_set = dataset(valid.with_positives(), train_set)
    booster = lgb.train(
        {
            "objective": "lambdarank",
            "metric": "ndcg",
            "eval_at": [k],
            "num_leaves": chosen.num_leaves,
            "learning_rate": chosen.learning_rate,
            "min_data_in_leaf": chosen.min_data_in_leaf,
            "feature_fraction": chosen.feature_fraction,
            "bagging_seed": seed,
            "feature_fraction_seed": seed,
            "seed": seed,
            # One thread and deterministic: the same seed gives the same model, and training
            # leaves the other cores to whatever else the machine runs.
            "num_threads": 1,
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
        },
        train_set,
        num_boost_round=chosen.max_rounds,
        valid_sets=[valid_set],
        callbacks=[lgb.early_stopping(chosen.early_stopping_rounds, verbose=False)],
    )
    best = int(booster.best_iteration) or chosen.max_rounds
    ranker = LambdaRanker(columns, chosen, booster, best)
    ranker.valid = ranking_metrics(valid, ranker.score(valid), k)
    gains = booster.feature_importance(importance_type="gain", iteration=best)
    ranker.importance = {name: float(g) for name, g in zip(columns, gains, strict=True)}
    return ranker


def tune_ranker(
    train: Requests,
    valid: Requests,
    *,
    features: Sequence[str] | None = None,
    grid: Sequence[RankerParams] = DEFAULT_GRID,
    seed: int = 42,
    k: int = 10,
) -> LambdaRanker:
    """The best of ``grid`` by validation nDCG@k (ties: the earlier, simpler setting)."""
    if not grid:
        raise UserError("the tuning grid is empty")
    best: LambdaRanker | None = None
    for params in grid:
        ranker = fit_ranker(train, valid, features=features, params=params, seed=seed, k=k)
        assert ranker.valid is not None
        logger.info("ranker %s: valid nDCG@%d %.4f", params, k, ranker.valid.ndcg)
        if best is None or (best.valid is not None and ranker.valid.ndcg > best.valid.ndcg):
            best = ranker
    assert best is not None
    return best


def without(features: Sequence[str], dropped: Sequence[str]) -> tuple[str, ...]:
    """``features`` less ``dropped`` (for ablations), in order."""
    drop = set(dropped)
    return tuple(f for f in features if f not in drop)


def all_features() -> tuple[str, ...]:
    """Every feature the ranker uses by default: the customer x product ones and retrieval's."""
    return (*FEATURES, "retrieval_score", "retrieval_rank")


__all__ = [
    "DEFAULT_GRID",
    "LABELS",
    "LambdaRanker",
    "RankerParams",
    "RankingFigures",
    "Requests",
    "all_features",
    "build_requests",
    "concat_requests",
    "fit_ranker",
    "next_period_labels",
    "paired_interval",
    "ranking_metrics",
    "retrieve",
    "split_by_customer",
    "tune_ranker",
    "without",
]
