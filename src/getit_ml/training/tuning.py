"""Hyper-parameter search for an XGBoost binary classifier with Optuna.

TPE (seeded) proposes parameters from a search space (:func:`suggest_params` unless the family
gives its own), each trial trains with early stopping on the validation part and scores the
family's objective on validation (AUPRC for fraud, ROC-AUC for churn: any function of labels and
scores). A median pruner stops a trial whose validation ranking metric (XGBoost's ``aucpr`` or
``auc``) trails the earlier trials' median at the same boosting round; the report
happens in :class:`XGBoostPruningCallback`, an XGBoost training callback (optuna 5 moved its own
to the separate ``optuna-integration`` package, which this platform does not install).

With ``storage_url`` (e.g. ``sqlite:////abs/path/optuna.db`` or a PostgreSQL URL) the study lives
in that database and a second call with the same ``study_name`` continues it: ``n_trials`` more
trials on top of those already there, an interrupted run's trials kept. Such a study is tied to
its data: resuming it with other training data is refused.

A caution, measured on the ULB credit-card set (``benchmarks/fraud_quality.py``): with 79 frauds
in the validation part, 12 trials found parameters 0.0014 AUPRC better than the defaults on
validation and 0.024 worse on test — the search fits the noise of a small validation set. Tune
when the validation part holds several hundred frauds; otherwise the defaults are the safer bet.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy.typing as npt
import optuna
import xgboost as xgb

from getit_ml.errors import UserError
from getit_ml.training.dataset import FeatureMatrix
from getit_ml.training.evaluation import average_precision
from getit_ml.training.xgb import (
    DEFAULT_PARAMS,
    RANKING_METRIC,
    VALIDATION,
    positive_weight,
    predict_matrix,
    train_xgboost,
)

logger = logging.getLogger(__name__)

#: XGBoost's evaluation metric that pruning watches (cheap, per round; the trial's final value
#: is the exact average precision).
PRUNING_METRIC: Final = RANKING_METRIC
#: Seconds between a running trial's heartbeats in an RDB study; a trial silent for the grace
#: period (its process died) is marked failed when the study is next resumed.
HEARTBEAT_S: Final = 30
GRACE_S: Final = 120
_FINGERPRINT: Final = "data_fingerprint"


class XGBoostPruningCallback(xgb.callback.TrainingCallback):
    """Reports a validation metric to an Optuna trial every ``report_every`` boosting rounds
    and stops training (``optuna.TrialPruned``) when the trial's pruner says so.

    Not every round: with an RDB study each report and each pruning decision is a database
    round trip (tens of milliseconds on SQLite), often more than the round itself.
    """

    def __init__(
        self,
        trial: optuna.Trial,
        data: str = VALIDATION,
        metric: str = PRUNING_METRIC,
        report_every: int = 1,
    ):
        super().__init__()
        if report_every < 1:
            raise UserError(f"report_every must be at least 1 (got {report_every})")
        self.trial = trial
        self.data = data
        self.metric = metric
        self.report_every = report_every

    def after_iteration(
        self, model: Any, epoch: int, evals_log: xgb.callback.TrainingCallback.EvalsLog
    ) -> bool:
        if epoch % self.report_every:
            return False
        try:
            latest = evals_log[self.data][self.metric][-1]
        except (KeyError, IndexError):
            raise UserError(
                f"pruning: no {self.data}-{self.metric} in XGBoost's evaluation log"
            ) from None
        value = float(latest[0] if isinstance(latest, tuple) else latest)
        self.trial.report(value, step=epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"{self.data}-{self.metric} {value:.4f} at round {epoch}")
        return False


#: A search space: (trial, negatives/positives of train) -> XGBoost parameters.
SearchSpace = Callable[[optuna.Trial, float], dict[str, Any]]
#: A tuning objective: (labels, scores) -> a number to maximise.
Objective = Callable[[npt.ArrayLike, npt.ArrayLike], float]


def suggest_params(trial: optuna.Trial, balance_weight: float) -> dict[str, Any]:
    """XGBoost parameters for one trial. ``balance_weight`` is negatives/positives of train;
    the trial picks ``scale_pos_weight`` between 1 (none) and it, on a log scale, because full
    re-weighting helps recall but often costs precision at the top of the ranking."""
    exponent = trial.suggest_float("pos_weight_exponent", 0.0, 1.0)
    return {
        "max_depth": trial.suggest_int("max_depth", 2, 10),
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "min_child_weight": trial.suggest_float("min_child_weight", 0.5, 20.0, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.4, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
        "reg_alpha": trial.suggest_float("reg_alpha", 1e-3, 10.0, log=True),
        "gamma": trial.suggest_float("gamma", 0.0, 5.0),
        "scale_pos_weight": float(max(1.0, balance_weight) ** exponent),
    }


#: :data:`~getit_ml.training.xgb.DEFAULT_PARAMS` in the search space's terms (full class
#: balancing, the lowest L1 penalty the log-scale range allows).
DEFAULT_TRIAL: Final[dict[str, Any]] = {
    **DEFAULT_PARAMS,
    "pos_weight_exponent": 1.0,
    "reg_lambda": 1.0,
    "reg_alpha": 1e-3,
    "gamma": 0.0,
}


@dataclass(frozen=True)
class TuningResult:
    """The study's best trial so far (over every run of a resumed study) and its counts."""

    best_params: dict[str, Any]
    best_value: float
    best_trial: int
    best_rounds: int
    trials: int
    complete: int
    pruned: int
    failed: int
    trials_this_run: int
    study_name: str
    storage_url: str | None


def sqlite_url(path: Path) -> str:
    """An SQLAlchemy URL for an SQLite study database at ``path``."""
    return f"sqlite:///{path.resolve()}"


def data_fingerprint(train: FeatureMatrix, valid: FeatureMatrix) -> str:
    """A short hash of the data's shape, feature names and label counts (not its values: cheap,
    and enough to catch resuming a study with another data set by mistake)."""
    digest = hashlib.sha256()
    for part in (train, valid):
        digest.update(repr((part.rows, part.positives, part.feature_names)).encode())
    return digest.hexdigest()[:16]


def _storage(storage_url: str | None) -> optuna.storages.BaseStorage | None:
    if storage_url is None:
        return None
    try:
        with warnings.catch_warnings():
            # The heartbeat is marked experimental; it is what turns a dead run's trials into
            # failed ones instead of leaving them "running" in the study for ever.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                storage_url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S
            )
    except Exception as error:  # SQLAlchemy's many URL and connection errors
        raise UserError(f"cannot open the Optuna storage {storage_url!r}: {error}") from None


def tune_xgboost(
    train: FeatureMatrix,
    valid: FeatureMatrix,
    *,
    n_trials: int,
    timeout_s: float | None,
    storage_url: str | None,
    study_name: str,
    seed: int,
    max_rounds: int = 1_000,
    early_stopping_rounds: int = 50,
    pruner_startup_trials: int = 5,
    pruner_warmup_steps: int = 20,
    report_every: int = 5,
    nthread: int | None = None,
    ranking_metric: str = PRUNING_METRIC,
    objective: Objective = average_precision,
    space: SearchSpace = suggest_params,
    default_trial: Mapping[str, Any] = DEFAULT_TRIAL,
) -> TuningResult:
    """Run ``n_trials`` more trials (or until ``timeout_s``) of the study ``study_name``.

    The objective is ``objective`` on the validation part (default: AUPRC); pruning looks at
    XGBoost's validation ``ranking_metric`` every ``report_every`` rounds, after
    ``pruner_warmup_steps`` rounds and ``pruner_startup_trials`` finished trials. The study's
    first trial is ``default_trial`` (the untuned defaults in ``space``'s terms). ``nthread`` is
    XGBoost's thread count (all cores by default). The TPE sampler's seed is ``seed`` plus the
    number of trials the study already holds, so a resumed study proposes new points, and two
    runs from the same state propose the same ones.
    """
    if n_trials < 1:
        raise UserError(f"n_trials must be at least 1 (got {n_trials})")
    if timeout_s is not None and timeout_s <= 0:
        raise UserError(f"timeout_s must be positive (got {timeout_s})")
    fingerprint = data_fingerprint(train, valid)
    study = optuna.create_study(
        storage=_storage(storage_url),
        study_name=study_name,
        direction="maximize",
        load_if_exists=True,
        pruner=optuna.pruners.MedianPruner(
            n_startup_trials=pruner_startup_trials, n_warmup_steps=pruner_warmup_steps
        ),
    )
    known = study.user_attrs.get(_FINGERPRINT)
    if known is None:
        study.set_user_attr(_FINGERPRINT, fingerprint)
    elif known != fingerprint:
        raise UserError(
            f"study {study_name!r} was run on other data (fingerprint {known}, now "
            f"{fingerprint}): choose a new study name"
        )
    before = len(study.trials)
    study.sampler = optuna.samplers.TPESampler(seed=seed + before)
    if before == 0:
        # The untuned defaults go first: on validation, the best is never worse than them.
        study.enqueue_trial(dict(default_trial))
    balance = positive_weight(train.label)

    def run_trial(trial: optuna.Trial) -> float:
        params = space(trial, balance)
        trial.set_user_attr("xgb_params", params)
        booster = train_xgboost(
            train,
            valid,
            params,
            seed=seed,
            num_boost_round=max_rounds,
            early_stopping_rounds=early_stopping_rounds,
            nthread=nthread,
            callbacks=[
                XGBoostPruningCallback(trial, metric=ranking_metric, report_every=report_every)
            ],
            ranking_metric=ranking_metric,
        )
        trial.set_user_attr("rounds", booster.num_boosted_rounds())
        scores = predict_matrix(booster, valid.features, valid.feature_names)
        return float(objective(valid.label, scores))

    study.optimize(run_trial, n_trials=n_trials, timeout=timeout_s)
    states = [t.state for t in study.trials]
    complete = states.count(optuna.trial.TrialState.COMPLETE)
    if complete == 0:
        raise UserError(f"study {study_name!r}: no trial completed (all pruned or failed)")
    best = study.best_trial
    result = TuningResult(
        best_params=dict(best.user_attrs["xgb_params"]),
        best_value=float(study.best_value),
        best_trial=best.number,
        best_rounds=int(best.user_attrs["rounds"]),
        trials=len(states),
        complete=complete,
        pruned=states.count(optuna.trial.TrialState.PRUNED),
        failed=states.count(optuna.trial.TrialState.FAIL),
        trials_this_run=len(states) - before,
        study_name=study_name,
        storage_url=storage_url,
    )
    logger.info("study %s: best validation value %.4f (trial %d of %d; %d pruned)", study_name,
                result.best_value, result.best_trial, result.trials, result.pruned)  # fmt: skip
    return result
