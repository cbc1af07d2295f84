"""``getit-ml evaluate``: a binary family's method on a user's own labelled table, with a
baseline from the same run — the one evaluation protocol for snapshot tables.

The protocol of the published benchmarks (ULB credit-card fraud, IBM Telco churn): a stratified
``test_fraction`` of the rows is held out (scikit-learn's ``train_test_split`` with the seed) and
read once, at the end, for the reported figure. Everything else is chosen on the rest, in one of
two ways a family declares (``BinaryTask.selection``):

* ``validation``: early stopping (and, with trials, an Optuna study) on a stratified 20%
  validation part carved from the training rows; the decision threshold on that part (fraud:
  the ULB protocol of ``benchmarks/fraud_quality.py``);
* ``cv``: 5-fold stratified cross-validation on the training rows picks the XGBoost settings
  among a few (:data:`CV_GRID`, from deep and fast to shallow and slow) and their round count;
  the winner is refitted on every training row; the threshold comes from its out-of-fold
  scores. On a small table (a few thousand customers) the 20% a validation part would take is
  worth more as training data, and five folds decide more steadily than one.

Features are every column but the label, the id and the time; a timestamp column counts as
seconds since the earliest one in the training part. The baseline is a logistic regression on
the same inputs (numbers standardised, with missing flags; categories one-hot).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd

from getit_ml.errors import UserError
from getit_ml.features.feature_schema import fit_schema
from getit_ml.training import evaluation as ev
from getit_ml.training.dataset import FeatureMatrix, label_array, to_matrix
from getit_ml.training.family import DatasetEvaluation, Direction

if TYPE_CHECKING:
    from getit_ml.features.feature_schema import MonitoringHints

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.intp]

#: Settings cross-validation chooses among (over the family's own parameters): XGBoost's
#: defaults here, then ever shallower, slower and more regularised trees. Nearly additive data
#: (Telco: Optuna chose depth 1 or 2) wants the last ones; data with interactions the first.
CV_GRID: Final[tuple[dict[str, Any], ...]] = (
    {},
    {
        "max_depth": 4,
        "learning_rate": 0.03,
        "min_child_weight": 10.0,
        "subsample": 0.8,
        "colsample_bytree": 0.6,
        "reg_lambda": 10.0,
    },
    {
        "max_depth": 3,
        "learning_rate": 0.02,
        "min_child_weight": 5.0,
        "subsample": 0.8,
        "colsample_bytree": 0.5,
    },
    {
        "max_depth": 2,
        "learning_rate": 0.02,
        "min_child_weight": 5.0,
        "subsample": 0.8,
        "colsample_bytree": 0.5,
    },
    {
        "max_depth": 1,
        "learning_rate": 0.05,
        "min_child_weight": 5.0,
        "subsample": 0.8,
        "colsample_bytree": 0.5,
    },
)
CV_FOLDS: Final = 5
CV_MAX_ROUNDS: Final = 3_000
CV_PATIENCE: Final = 100
COLUMNS: Final[dict[str, Direction]] = {
    "roc_auc": "maximize",
    "auprc": "maximize",
    "recall_at_review_rate": "maximize",
    "brier": "minimize",
    "expected_cost_bdt": "minimize",
}


@dataclass(frozen=True)
class CostModel:
    """The money at the operating point: a missed positive costs the value of ``miss_column``
    (a fraud's payment amount) or, without one, ``miss_cost_bdt`` (a churner's expected
    margin); a false alarm costs ``false_alarm_cost_bdt`` (a review, a voucher). ``review_rate``
    is the share of rows a team can look at (recall at that budget is reported)."""

    miss_column: str | None = None
    miss_cost_bdt: float = 1.0
    false_alarm_cost_bdt: float = ev.DEFAULT_FALSE_ALARM_COST_BDT
    review_rate: float = ev.DEFAULT_REVIEW_RATE

    def __post_init__(self) -> None:
        if self.miss_cost_bdt < 0 or self.false_alarm_cost_bdt < 0:
            raise UserError("costs must be non-negative")
        if not 0 < self.review_rate <= 1:
            raise UserError(f"review rate must be in (0, 1], got {self.review_rate}")

    def miss_costs(self, frame: pd.DataFrame) -> FloatArray:
        if self.miss_column is None:
            return np.full(len(frame), self.miss_cost_bdt, dtype=np.float64)
        if self.miss_column not in frame.columns:
            raise UserError(f"the cost column {self.miss_column!r} is not in the data")
        values = pd.to_numeric(frame[self.miss_column], errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan
        )
        return np.where(np.isfinite(values) & (values >= 0), values, 0.0)


@dataclass(frozen=True)
class LabelledTable:
    """A table a user imported, as ``getit-ml evaluate`` reads it: which file, which columns
    are the label, the id and the time (never features), and which column prices a miss."""

    table: str = "labelled_examples"
    label: str = "label"
    id_column: str | None = "example_id"
    time_column: str | None = "example_ts"
    miss_column: str | None = None


#: What ``getit-ml data import tabular`` writes.
LABELLED_EXAMPLES: Final = LabelledTable()


class BinaryTask(Protocol):
    """What this protocol reads of a binary family's task
    (:class:`~getit_ml.training.tabular.BinaryTask` has it all)."""

    @property
    def family(self) -> str: ...

    @property
    def monitoring(self) -> MonitoringHints: ...

    @property
    def params(self) -> Mapping[str, Any]: ...

    @property
    def ranking_metric(self) -> str: ...

    @property
    def promotion_metric(self) -> str: ...

    @property
    def cost(self) -> CostModel: ...

    @property
    def tables(self) -> tuple[LabelledTable, ...]: ...

    @property
    def selection(self) -> str: ...


@dataclass(frozen=True)
class _Scores:
    """One method's scores: where its threshold is chosen (labels, scores, rows) and the test
    part's scores."""

    threshold_part: FeatureMatrix
    threshold_scores: FloatArray
    test_scores: FloatArray
    seconds: float
    note: str


def evaluate_table(
    task: BinaryTask,
    data_dir: Path,
    out_dir: Path | None,
    *,
    seed: int,
    test_fraction: float,
    trials: int,
    nthread: int | None,
    tuning: Mapping[str, Any],
) -> DatasetEvaluation:
    """The module docstring's protocol for ``task``'s family on the table in ``data_dir``."""
    spec, frame = read_table(task.tables, data_dir)
    features = [c for c in frame.columns if c not in {spec.label, spec.id_column, spec.time_column}]
    if not features:
        raise UserError(f"{spec.table}: no feature columns besides the label and the id")
    y = label_array(frame[spec.label], spec.label)
    if y.sum() < 2 * CV_FOLDS or (1 - y).sum() < 2 * CV_FOLDS:
        raise UserError(f"{spec.table}: need at least {2 * CV_FOLDS} rows of each class")
    train_rows, test_rows = stratified_rows(y, test_fraction, seed)
    frame = numeric_times(frame, features, train_rows)
    schema = fit_schema(
        frame.iloc[train_rows], features, label=spec.label, monitoring=task.monitoring
    )
    carry = (spec.miss_column,) if spec.miss_column else ()
    everything = to_matrix(frame, schema, carry)
    train, test = everything.take(train_rows), everything.take(test_rows)
    if task.selection == "cv":
        ours = _cross_validated(task, train, test, seed, nthread)
        fit = train
    else:
        fit_rows, valid_rows = stratified_rows(y[train_rows], 0.2, seed)
        fit, valid = train.take(fit_rows), train.take(valid_rows)
        ours = _validated(task, fit, valid, test, seed, trials, nthread, tuning)
    started = time.perf_counter()
    baseline = _baseline(task, fit, ours.threshold_part, test, schema.category_map(), seed)
    baseline = _Scores(
        baseline.threshold_part,
        baseline.threshold_scores,
        baseline.test_scores,
        time.perf_counter() - started,
        baseline.note,
    )
    cost = CostModel(
        spec.miss_column,
        task.cost.miss_cost_bdt,
        task.cost.false_alarm_cost_bdt,
        task.cost.review_rate,
    )
    rows = {
        "ours: XGBoost": _figures(ours, test, cost),
        "baseline: logistic regression": _figures(baseline, test, cost),
    }
    notes = (f"ours: {ours.note}", f"baseline: {baseline.note}")
    how = (
        "settings and rounds by 5-fold CV on the training part, refitted on all of it; threshold "
        "on out-of-fold scores"
        if task.selection == "cv"
        else "early stopping and threshold on a stratified 20% of the training part"
    )
    protocol = (
        f"{spec.table}: {len(frame):,} rows ({int(y.sum()):,} positive), {len(features)} "
        f"features; stratified {1 - test_fraction:.0%}/{test_fraction:.0%} split (seed {seed}), "
        f"{how}; recall at {cost.review_rate:.0%} reviewed"
    )
    result = DatasetEvaluation(
        task.family,
        protocol,
        rows,
        dict(COLUMNS),
        task.promotion_metric.removeprefix("test_"),
        notes=notes,
    )
    return result if out_dir is None else _write(result, out_dir)


# ------------------------------------------------------------------------------ our model
def _validated(
    task: BinaryTask,
    fit: FeatureMatrix,
    valid: FeatureMatrix,
    test: FeatureMatrix,
    seed: int,
    trials: int,
    nthread: int | None,
    tuning: Mapping[str, Any],
) -> _Scores:
    from getit_ml.training.xgb import predict_matrix, train_xgboost

    started = time.perf_counter()
    params: dict[str, Any] = dict(task.params)
    note = "default parameters"
    if trials > 0:
        from getit_ml.training.tuning import tune_xgboost

        tuned = tune_xgboost(
            fit,
            valid,
            n_trials=trials,
            timeout_s=None,
            storage_url=None,
            study_name=f"{task.family}-evaluate",
            seed=seed,
            nthread=nthread,
            **tuning,
        )
        params = {**params, **tuned.best_params}
        note = f"tuned: {tuned.trials} trials, validation {tuned.best_value:.4f}"
    booster = train_xgboost(
        fit, valid, params, seed=seed, nthread=nthread, ranking_metric=task.ranking_metric
    )
    return _Scores(
        valid,
        predict_matrix(booster, valid.features, valid.feature_names),
        predict_matrix(booster, test.features, test.feature_names),
        time.perf_counter() - started,
        f"{note}, {booster.num_boosted_rounds()} rounds early-stopped on validation",
    )


def _folds(label: FloatArray, seed: int) -> list[tuple[IndexArray, IndexArray]]:
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(CV_FOLDS, shuffle=True, random_state=seed)
    return [(np.asarray(a), np.asarray(b)) for a, b in splitter.split(label, label)]


def _cross_validated(
    task: BinaryTask, train: FeatureMatrix, test: FeatureMatrix, seed: int, nthread: int | None
) -> _Scores:
    import xgboost as xgb

    from getit_ml.training.xgb import (
        BASE_PARAMS,
        DEFAULT_PARAMS,
        STOPPING_METRIC,
        positive_weight,
        predict_matrix,
        train_xgboost,
    )

    started = time.perf_counter()
    folds = _folds(train.label, seed)
    dtrain = xgb.DMatrix(
        train.features,
        label=train.label,
        feature_names=list(train.feature_names),
        nthread=nthread if nthread is not None else -1,
    )
    metric = task.ranking_metric
    best: tuple[float, int, dict[str, Any]] | None = None
    for candidate in CV_GRID:
        params = {**DEFAULT_PARAMS, **candidate, **task.params}
        merged = {**BASE_PARAMS, **params, "eval_metric": [STOPPING_METRIC, metric], "seed": seed}
        merged.setdefault("scale_pos_weight", positive_weight(train.label))
        if nthread is not None:
            merged["nthread"] = nthread
        history = xgb.cv(
            merged,
            dtrain,
            num_boost_round=CV_MAX_ROUNDS,
            folds=folds,
            early_stopping_rounds=CV_PATIENCE,
            seed=seed,
        )
        assert isinstance(history, pd.DataFrame)  # xgb.cv answers a frame when pandas is there
        value = float(history[f"test-{metric}-mean"].iloc[-1])
        logger.info(
            "cv %s: %s %.4f at %d rounds", candidate or "defaults", metric, value, len(history)
        )
        if best is None or value > best[0]:
            best = (value, len(history), params)
    assert best is not None
    value, rounds, params = best
    out_of_fold = np.empty(train.rows, dtype=np.float64)
    for fit_rows, held_rows in folds:
        fold = train_xgboost(
            train.take(fit_rows), None, params, seed=seed, num_boost_round=rounds, nthread=nthread
        )
        held = train.take(held_rows)
        out_of_fold[held_rows] = predict_matrix(fold, held.features, held.feature_names)
    booster = train_xgboost(train, None, params, seed=seed, num_boost_round=rounds, nthread=nthread)
    shown = {k: params[k] for k in ("max_depth", "learning_rate") if k in params}
    return _Scores(
        train,
        out_of_fold,
        predict_matrix(booster, test.features, test.feature_names),
        time.perf_counter() - started,
        f"{shown} of {len(CV_GRID)} by 5-fold CV {metric} {value:.4f}, {rounds} rounds, refitted",
    )


# ------------------------------------------------------------------------------ the baseline
def _baseline(
    task: BinaryTask,
    fit: FeatureMatrix,
    threshold_part: FeatureMatrix,
    test: FeatureMatrix,
    categories: Mapping[int, Sequence[str]],
    seed: int,
) -> _Scores:
    """Logistic regression; its threshold from out-of-fold scores when ours is cross-validated
    (then ``threshold_part`` is ``fit``), else on the same validation part as ours."""
    if threshold_part is fit:
        out_of_fold = np.empty(fit.rows, dtype=np.float64)
        for fit_rows, held_rows in _folds(fit.label, seed):
            part = logistic_baseline(fit.take(fit_rows), {"held": fit.take(held_rows)}, categories)
            out_of_fold[held_rows] = part["held"]
        scores = logistic_baseline(fit, {"test": test}, categories)
        return _Scores(fit, out_of_fold, scores["test"], 0.0, "L2, C=1, threshold out of fold")
    scores = logistic_baseline(fit, {"valid": threshold_part, "test": test}, categories)
    return _Scores(threshold_part, scores["valid"], scores["test"], 0.0, "L2, C=1")


def logistic_baseline(
    fit: FeatureMatrix,
    parts: Mapping[str, FeatureMatrix],
    categories: Mapping[int, Sequence[str]],
) -> dict[str, FloatArray]:
    """Scores of a logistic regression on the same inputs: numbers standardised on ``fit``
    (missing as the mean, with a missing flag), categories one-hot (scikit-learn, L2, C=1)."""
    from sklearn.linear_model import LogisticRegression

    numeric = [j for j in range(fit.features.shape[1]) if j not in categories]
    values = fit.features[:, numeric]
    mean = np.nan_to_num(np.nanmean(values, axis=0)) if numeric else np.zeros(0)
    scale = np.nan_to_num(np.nanstd(values, axis=0), nan=1.0) if numeric else np.zeros(0)
    scale[scale == 0] = 1.0
    missing_any = np.isnan(values).any(axis=0) if numeric else np.zeros(0, dtype=bool)

    def design(x: FloatArray) -> FloatArray:
        blocks = []
        if numeric:
            part = x[:, numeric]
            missing = np.isnan(part)
            filled = np.where(missing, mean, part)
            blocks += [(filled - mean) / scale, missing[:, missing_any].astype(np.float64)]
        for j, levels in categories.items():
            codes = x[:, j]
            blocks.append(
                np.stack([codes == k for k in range(len(levels))], axis=1).astype(np.float64)
            )
        return np.hstack(blocks) if blocks else np.zeros((x.shape[0], 1))

    model = LogisticRegression(max_iter=2_000)
    model.fit(design(fit.features), fit.label)
    return {
        name: np.asarray(model.predict_proba(design(part.features))[:, 1], dtype=np.float64)
        for name, part in parts.items()
    }


# ------------------------------------------------------------------------------ helpers
def _figures(scores: _Scores, test: FeatureMatrix, cost: CostModel) -> dict[str, float]:
    """The test figures of one method at the threshold chosen where its protocol says."""

    def costs(part: FeatureMatrix) -> FloatArray:
        if cost.miss_column and cost.miss_column in part.columns:
            values = np.asarray(part.columns[cost.miss_column], dtype=np.float64)
            return np.where(np.isfinite(values) & (values >= 0), values, 0.0)
        return np.full(part.rows, cost.miss_cost_bdt)

    part = scores.threshold_part
    chosen = ev.cost_optimal_threshold(
        part.label, scores.threshold_scores, costs(part), cost.false_alarm_cost_bdt
    )
    result = ev.evaluate(
        test.label,
        scores.test_scores,
        costs(test),
        review_rate=cost.review_rate,
        cost_fp_bdt=cost.false_alarm_cost_bdt,
        threshold=chosen.threshold,
    )
    return {
        "roc_auc": result.roc_auc,
        "auprc": result.auprc,
        "recall_at_review_rate": result.review.recall,
        "brier": result.brier,
        "expected_cost_bdt": result.expected_cost_bdt,
        "seconds": scores.seconds,
    }


def read_table(
    tables: Sequence[LabelledTable], data_dir: Path
) -> tuple[LabelledTable, pd.DataFrame]:
    """The first of ``tables`` that ``data_dir`` holds, as a frame."""
    import pyarrow.parquet as pq

    if not data_dir.is_dir():
        raise UserError(
            f"{data_dir} is not a folder: import the data with `getit-ml data import` first"
        )
    for spec in tables:
        path = data_dir / f"{spec.table}.parquet"
        if path.is_file():
            frame = pq.read_table(path).to_pandas()
            if spec.label not in frame.columns:
                raise UserError(f"{path} has no label column {spec.label!r}")
            return spec, frame
    names = ", ".join(f"{t.table}.parquet" for t in tables)
    raise UserError(
        f"{data_dir} holds none of {names}: import your table with `getit-ml data import "
        "tabular FILE --label COLUMN --out DIR`"
    )


def stratified_rows(
    label: FloatArray, test_fraction: float, seed: int
) -> tuple[IndexArray, IndexArray]:
    """scikit-learn's stratified ``train_test_split`` of row indices (the published protocol)."""
    from sklearn.model_selection import train_test_split

    if not 0 < test_fraction < 1:
        raise UserError(f"the test fraction must be in (0, 1), got {test_fraction}")
    indices = np.arange(label.size)
    train, test = train_test_split(
        indices, test_size=test_fraction, stratify=label, random_state=seed
    )
    return np.asarray(train), np.asarray(test)


def numeric_times(
    frame: pd.DataFrame, features: Sequence[str], train_rows: IndexArray
) -> pd.DataFrame:
    """Timestamp feature columns as seconds since their earliest value in the training part (a
    shift keeps the values small enough for XGBoost's float32 histograms)."""
    out = frame
    for name in features:
        series = frame[name]
        if pd.api.types.is_datetime64_any_dtype(series.dtype):
            seconds = (series.astype("int64") / 1e9).where(series.notna())
            origin = float(np.nanmin(seconds.iloc[train_rows].to_numpy(dtype=np.float64)))
            if out is frame:
                out = frame.copy()
            out[name] = seconds - origin
    return out


def _write(result: DatasetEvaluation, out_dir: Path) -> DatasetEvaluation:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "evaluation.json"
    document = {
        "family": result.family,
        "protocol": result.protocol,
        "methods": result.rows,
        "directions": result.columns,
        "headline_metric": result.headline_metric,
        "notes": list(result.notes),
    }
    path.write_text(json.dumps(document, indent=1), encoding="utf-8")
    return DatasetEvaluation(
        result.family,
        result.protocol,
        result.rows,
        result.columns,
        result.headline_metric,
        path,
        result.notes,
    )
