"""The evaluation protocol of retrieval: how models are tuned, refitted and compared.

One protocol for every recommender (``getit-ml recs evaluate``, ``benchmarks/recs_quality.py``):

1. **The split** (:mod:`getit_ml.training.recs_splits`): ``stratified`` (Microsoft Recommenders'
   per-user 75/25, seed 42), ``leave-last-out`` or ``temporal``, of an :class:`InteractionLog`.
2. **Validation.** The same protocol carves a validation part out of the *training* part; Optuna
   tunes each model there (TPE, seeded, a stated number of trials; the objective nDCG@k of the
   full ranking, which, unlike a sampled figure, orders models as the full ranking does). The
   untuned defaults are scored too and kept unless a trial beats them.
3. **Test.** The model is refitted on the whole training part with the chosen parameters and
   scores the test part once: every item is ranked for each test user, the user's training items
   removed; MAP, nDCG@k, precision@k, recall@k, coverage and novelty with Microsoft Recommenders'
   definitions (:mod:`getit_ml.training.recs_metrics`). With ``negatives`` (leave-last-out only)
   the held-out item is also ranked among that many sampled items the user never interacted with
   (HR@k and nDCG@k among ``1 + N``), reported apart as "sampled".

Models come from :mod:`getit_ml.training.recommenders` (its registry: ``MODEL_NAMES``, ``build``,
``default_params``, ``search_space``); the popularity baseline is always evaluated, first. The
model reported "best" is the one with the best *validation* nDCG@k: choosing by the test figures
would read the test part twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from getit_ml.errors import UserError
from getit_ml.training.interactions import IntArray, Recommender
from getit_ml.training.recs_metrics import (
    RankingAccumulator,
    SampledAccumulator,
    sampled_negatives,
    top_k,
)
from getit_ml.training.recs_splits import (
    DEFAULT_FRACTION,
    DEFAULT_SEED,
    InteractionLog,
    Split,
    SplitReport,
    split,
)

logger = logging.getLogger(__name__)

BASELINE: Final = "popularity"
#: Score at most this many matrix cells per batch of users (bounds memory on big catalogues).
_CELLS_PER_BATCH: Final = 1 << 22


# ------------------------------------------------------------------------------ scoring
@dataclass(frozen=True)
class Ranking:
    """How test users are ranked: top ``k`` of the full catalogue, and with ``negatives`` also
    the held-out item among that many sampled items (``seed``)."""

    k: int = 10
    negatives: int = 0
    seed: int = DEFAULT_SEED

    def describe(self) -> str:
        text = f"full ranking of every item, training items removed, k={self.k}"
        if self.negatives:
            text += f"; sampled: the held-out item among 1 + {self.negatives} negatives"
        return text


def score_model(
    model: Recommender, train: InteractionLog, test: InteractionLog, ranking: Ranking,
    *, seen: sp.csr_matrix | None = None,
) -> dict[str, float]:  # fmt: skip
    """The ranking figures of a model fitted on ``train`` over the users of ``test``.

    ``seen`` (every part's pairs) is where sampled negatives may not come from; by default the
    union of ``train`` and ``test``."""
    train_matrix = train.matrix().binary().matrix
    test_matrix = test.matrix().binary().matrix
    users = np.unique(test.users)
    counts = np.asarray(train_matrix.getnnz(axis=0), dtype=np.float64)
    accumulator = RankingAccumulator(ranking.k, counts)
    sampled: SampledAccumulator | None = None
    negatives: npt.NDArray[np.int64] | None = None
    positives: IntArray | None = None
    if ranking.negatives:
        per_user = np.diff(test_matrix.indptr)[users]
        if np.any(per_user != 1):
            raise UserError("sampled negatives need exactly one held-out item per user "
                            "(--protocol leave-last-out)")  # fmt: skip
        union = seen if seen is not None else (train_matrix + test_matrix)
        negatives = sampled_negatives(union, users, ranking.negatives, ranking.seed)
        positives = test_matrix.indices[test_matrix.indptr[users]].astype(np.int64)
        sampled = SampledAccumulator(ranking.k, ranking.negatives)
    n_items = train_matrix.shape[1]
    batch = max(1, _CELLS_PER_BATCH // max(n_items, 1))
    for start in range(0, len(users), batch):
        chunk = users[start : start + batch]
        scores = np.asarray(model.score(chunk), dtype=np.float32)
        if scores.shape != (len(chunk), n_items):
            raise UserError(f"{model.name}: score returned shape {scores.shape}, expected "
                            f"{(len(chunk), n_items)}")  # fmt: skip
        lists = top_k(scores, ranking.k, exclude=train_matrix[chunk])
        accumulator.add(lists, test_matrix[chunk])
        if sampled is not None and negatives is not None and positives is not None:
            part = slice(start, start + len(chunk))
            sampled.add(scores, positives[part], negatives[part])
    figures = accumulator.result()
    if sampled is not None:
        figures.update(sampled.result())
    return figures


# ------------------------------------------------------------------------------ the loop
@dataclass(frozen=True)
class Registry:
    """Where the loop gets its models: the registry API of
    :mod:`getit_ml.training.recommenders` (:func:`default_registry`), or another with the same
    four members (a test's own models)."""

    names: tuple[str, ...]
    build: Callable[..., Recommender]
    default_params: Callable[[str], dict[str, Any]]
    search_space: Callable[[str], Callable[[Any], dict[str, Any]]]


def default_registry() -> Registry:
    """The platform's retrieval models."""
    from getit_ml.training import recommenders

    return Registry(
        names=recommenders.MODEL_NAMES,
        build=recommenders.build,
        default_params=recommenders.default_params,
        search_space=recommenders.search_space,
    )


@dataclass(frozen=True)
class ModelResult:
    """One model's row: its chosen parameters, test figures and how they were reached."""

    model: str
    params: dict[str, Any]
    test: dict[str, float]
    validation_ndcg: float
    default_validation_ndcg: float
    #: Whether a trial beat the defaults on validation (else the defaults were kept).
    tuned: bool
    trials: int
    fit_seconds: float
    seconds: float


@dataclass(frozen=True)
class RecsEvaluation:
    """Every model's row on one split, and how the split and the ranking were made."""

    protocol: str
    ranking: Ranking
    test_split: SplitReport
    validation_split: SplitReport
    trials: int
    seed: int
    rows: list[ModelResult]
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """The protocol in one paragraph (for the command's and the benchmark's output)."""
        tuning = (
            f"{self.trials} Optuna TPE trials (seed {self.seed}) plus the defaults on validation, "
            f"objective nDCG@{self.ranking.k}"
            if self.trials
            else "default parameters (no tuning)"
        )
        return (
            f"test: {self.test_split.describe()}\nvalidation (carved from train): "
            f"{self.validation_split.describe()}\nranking: {self.ranking.describe()}\n"
            f"tuning: {tuning}; refit on the whole training part, test read once"
        )


@contextmanager
def _quiet_optuna() -> Iterator[None]:
    import optuna

    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)


def _fit(
    registry: Registry, name: str, params: dict[str, Any], train: InteractionLog, seed: int
) -> Recommender:
    model = registry.build(name, **params)
    return model.fit(train.matrix().binary(), seed=seed)


def tune(
    registry: Registry,
    name: str,
    data: Split,
    ranking: Ranking,
    *,
    trials: int,
    seed: int,
    seen: sp.csr_matrix | None = None,
) -> tuple[dict[str, Any], float, float, int]:
    """Model ``name``'s parameters chosen on ``data`` (a validation split): the defaults, then
    ``trials`` TPE trials; returns (the best trial's parameters — {} for the defaults — its
    validation nDCG@k, the defaults' nDCG@k, the trials run)."""
    import optuna

    def objective(params: dict[str, Any]) -> float:
        model = _fit(registry, name, params, data.train, seed)
        return score_model(model, data.train, data.test, replace(ranking, negatives=0),
                           seen=seen)["ndcg"]  # fmt: skip

    default_value = objective({})
    if trials == 0 or not registry.default_params(name):
        return {}, default_value, default_value, 0
    space = registry.search_space(name)
    with _quiet_optuna():
        study = optuna.create_study(
            direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed)
        )

        def run_trial(trial: optuna.Trial) -> float:
            params = space(trial)
            trial.set_user_attr("params", params)
            return objective(params)

        study.optimize(run_trial, n_trials=trials)
    best = study.best_trial
    if best.value is None or best.value <= default_value:
        return {}, default_value, default_value, trials
    return dict(best.user_attrs["params"]), float(best.value), default_value, trials


def evaluate(
    log: InteractionLog,
    models: Sequence[str],
    *,
    protocol: str = "stratified",
    k: int = 10,
    trials: int = 10,
    negatives: int = 0,
    fraction: float = DEFAULT_FRACTION,
    seed: int = DEFAULT_SEED,
    on_model: Callable[[ModelResult], None] | None = None,
    registry: Registry | None = None,
) -> RecsEvaluation:
    """Split ``log``, tune each model on validation, refit on train, score test once; one row
    per model, the popularity baseline first (added when not asked for). ``on_model`` is called
    with each row as soon as it is ready; ``registry`` is where models come from (default:
    :func:`default_registry`)."""
    registry = registry or default_registry()
    if k < 1:
        raise UserError(f"k must be at least 1 (got {k})")
    if trials < 0:
        raise UserError(f"trials must not be negative (got {trials})")
    if negatives < 0:
        raise UserError(f"negatives must not be negative (got {negatives})")
    if negatives and protocol != "leave-last-out":
        raise UserError("sampled negatives rank one held-out item per user: use them with "
                        "--protocol leave-last-out")  # fmt: skip
    names = list(dict.fromkeys([BASELINE, *models]))
    unknown = [name for name in names if name not in registry.names]
    if unknown:
        raise UserError(f"unknown recommender(s) {', '.join(unknown)}; choose from "
                        f"{', '.join(registry.names)}")  # fmt: skip
    outer = split(log, protocol, fraction=fraction, seed=seed)
    try:
        inner = split(outer.train, protocol, fraction=fraction, seed=seed)
    except UserError as error:
        raise UserError(f"cannot carve a validation part from the training part: {error}") from None
    ranking = Ranking(k=k, negatives=negatives, seed=seed)
    everything = log.matrix().binary().matrix
    rows: list[ModelResult] = []
    for name in names:
        started = time.perf_counter()
        params, valid_ndcg, default_ndcg, ran = tune(
            registry, name, inner, ranking, trials=trials, seed=seed, seen=everything
        )
        fit_started = time.perf_counter()
        model = _fit(registry, name, params, outer.train, seed)
        fit_seconds = time.perf_counter() - fit_started
        figures = score_model(model, outer.train, outer.test, ranking, seen=everything)
        row = ModelResult(
            model=name,
            params=dict(model.params()),
            test=figures,
            validation_ndcg=valid_ndcg,
            default_validation_ndcg=default_ndcg,
            tuned=bool(params),
            trials=ran,
            fit_seconds=fit_seconds,
            seconds=time.perf_counter() - started,
        )
        logger.info("%s: test nDCG@%d %.4f (validation %.4f)", name, k, figures["ndcg"],
                    valid_ndcg)  # fmt: skip
        rows.append(row)
        if on_model is not None:
            on_model(row)
    notes = []
    if log.merged_rows:
        notes.append(f"{log.merged_rows:,} rows repeated an earlier (user, item) pair: "
                     "summed into one pair (repeated feedback), its first time kept")  # fmt: skip
    unseen = {
        r.model: int(r.test["recommended_unseen"]) for r in rows if r.test["recommended_unseen"]
    }
    if unseen:
        notes.append("recommended items with no training interaction (left out of novelty): "
                     + ", ".join(f"{m} {n:,}" for m, n in unseen.items()))  # fmt: skip
    return RecsEvaluation(
        protocol=protocol,
        ranking=ranking,
        test_split=outer.report,
        validation_split=inner.report,
        trials=trials,
        seed=seed,
        rows=rows,
        notes=notes,
    )


def best_row(evaluation: RecsEvaluation) -> ModelResult:
    """The model with the best *validation* nDCG@k (choosing by test would read it twice)."""
    return max(evaluation.rows, key=lambda row: row.validation_ndcg)
