"""The training pipeline's steps as functions from folders to folders.

Each Kubeflow component in ``components/`` is a thin adapter over one function here; the same
functions run in tests and benchmarks without KFP. Between steps only files travel, in formats any
later step (or another environment) reads without our code's pickles:

``training set`` folder (:func:`build_training_set_step`)
    ``train.parquet``, ``validation.parquet``, ``test.parquet``: the point-in-time joined frames
    (identifiers, request fields, every feature, label, fraud pattern), each sorted by time;
    ``feature_schema.json``: the encoding fitted on the train part; ``split.json``: cut times and
    counts.
``tuning.json`` (:func:`tune_step`)
    the best XGBoost parameters and round count of an Optuna study, with the study's counts.
``model`` folder (:func:`train_step`)
    ``model.json`` (what KServe's xgbserver loads), ``metadata/feature_schema.json`` and an
    ``MLmodel`` with the signature and an input example (:func:`~getit_ml.training.xgb.
    write_mlflow_metadata`).
``evaluation`` folder (:func:`evaluate_step`)
    ``evaluation.json`` (every figure, validation and test), ``pr|roc|calibration.png|html``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd

from getit_ml.errors import UserError
from getit_ml.training.dataset import (
    AMOUNT,
    DEFAULT_FRACTIONS,
    FRAUD_SERVICE,
    PATTERN,
    SCHEMA_FILE,
    FeatureMatrix,
    FeatureSchema,
    TrainingSet,
    to_matrix,
)
from getit_ml.training.evaluation import (
    DEFAULT_FALSE_ALARM_COST_BDT,
    DEFAULT_REVIEW_RATE,
    Evaluation,
)

if TYPE_CHECKING:
    from getit_ml.settings import PlatformSettings
    from getit_ml.training.tuning import TuningResult

logger = logging.getLogger(__name__)

PART_FILES: Final[dict[str, str]] = {
    "train": "train.parquet",
    "validation": "validation.parquet",
    "test": "test.parquet",
}
SPLIT_FILE: Final = "split.json"
TUNING_FILE: Final = "tuning.json"
EVALUATION_FILE: Final = "evaluation.json"


# ------------------------------------------------------------------------------ inputs
def read_payments(data_dir: Path) -> pd.DataFrame:
    """The marketplace's payments table (Hive-partitioned Parquet under ``data_dir/payments``)."""
    import pyarrow.dataset as ds

    folder = data_dir / "payments"
    if not folder.is_dir():
        raise UserError(f"{data_dir} has no payments table: is it a marketplace folder?")
    payments: pd.DataFrame = ds.dataset(folder, partitioning="hive").to_table().to_pandas()
    if payments.empty:
        raise UserError(f"{folder} holds no payments")
    return payments


# ------------------------------------------------------------------------- training set
@dataclass(frozen=True)
class TrainingSetFolder:
    """A training-set folder read back: the frames, the schema and the encoded parts."""

    frames: dict[str, pd.DataFrame]
    schema: FeatureSchema
    split: dict[str, Any]

    def matrix(self, part: str) -> FeatureMatrix:
        return to_matrix(self.frames[part], self.schema)


def write_training_set(data: TrainingSet, out_dir: Path) -> dict[str, Any]:
    """Write a :class:`TrainingSet`'s frames, schema and split facts; returns the split facts."""
    out_dir.mkdir(parents=True, exist_ok=True)
    frames = {"train": data.split.train, "validation": data.split.validation,
              "test": data.split.test}  # fmt: skip
    facts: dict[str, Any] = {
        "time_column": data.split.time_column,
        "validation_from": pd.Timestamp(data.split.cuts[0]).isoformat(),
        "test_from": pd.Timestamp(data.split.cuts[1]).isoformat(),
        "features": len(data.schema.features),
    }
    for part, frame in frames.items():
        frame.to_parquet(out_dir / PART_FILES[part], index=False)
        facts[f"{part}_rows"] = len(frame)
        facts[f"{part}_fraud"] = int(frame[data.schema.label].astype(bool).sum())
    data.schema.write(out_dir / SCHEMA_FILE)
    (out_dir / SPLIT_FILE).write_text(json.dumps(facts, indent=1), encoding="utf-8")
    return facts


def read_training_set(folder: Path) -> TrainingSetFolder:
    """Read what :func:`write_training_set` wrote."""
    missing = [name for name in (*PART_FILES.values(), SCHEMA_FILE, SPLIT_FILE)
               if not (folder / name).is_file()]  # fmt: skip
    if missing:
        raise UserError(f"{folder} is not a training set: it lacks {', '.join(missing)}")
    frames = {part: pd.read_parquet(folder / name) for part, name in PART_FILES.items()}
    split = json.loads((folder / SPLIT_FILE).read_text(encoding="utf-8"))
    return TrainingSetFolder(frames, FeatureSchema.read(folder / SCHEMA_FILE), split)


def build_training_set_step(
    settings: PlatformSettings,
    data_dir: Path,
    store_root: Path,
    out_dir: Path,
    *,
    service: str = FRAUD_SERVICE,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    snapshot_id: str = "",
) -> dict[str, Any]:
    """Join ``service`` point-in-time for every payment in ``data_dir`` from the store under
    ``store_root``, split by time, fit the schema on train and write the training-set folder."""
    from getit_ml.features.store import open_store
    from getit_ml.training.dataset import prepare_training_set, service_feature_types
    from getit_ml.training.dataset import training_frame as joined_frame

    store = open_store(settings, store_root)
    frame = joined_frame(store, read_payments(data_dir), service)
    metadata = {"feature_service": service}
    if snapshot_id:
        metadata["data_snapshot"] = snapshot_id
    data = prepare_training_set(
        frame, service_feature_types(store, service), fractions=fractions, metadata=metadata
    )
    return write_training_set(data, out_dir)


# ------------------------------------------------------------------------------- tuning
def tune_step(
    training_dir: Path,
    out_file: Path,
    *,
    n_trials: int,
    timeout_s: float | None,
    storage_url: str | None,
    study_name: str,
    seed: int = 0,
    nthread: int | None = None,
) -> TuningResult:
    """Run (or resume) the Optuna study on the training set; write ``tuning.json``."""
    from getit_ml.training.tuning import tune_xgboost

    data = read_training_set(training_dir)
    result = tune_xgboost(
        data.matrix("train"),
        data.matrix("validation"),
        n_trials=n_trials,
        timeout_s=timeout_s,
        storage_url=storage_url,
        study_name=study_name,
        seed=seed,
        nthread=nthread,
    )
    out_file.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "best_params": result.best_params,
        "best_value": result.best_value,
        "best_trial": result.best_trial,
        "best_rounds": result.best_rounds,
        "trials": result.trials,
        "complete": result.complete,
        "pruned": result.pruned,
        "failed": result.failed,
        "trials_this_run": result.trials_this_run,
        "study_name": result.study_name,
    }
    out_file.write_text(json.dumps(document, indent=1, sort_keys=True), encoding="utf-8")
    return result


def read_tuned_params(tuning_file: Path) -> dict[str, Any]:
    """The best parameters from a ``tuning.json``."""
    try:
        document = json.loads(tuning_file.read_text(encoding="utf-8"))
        params = document["best_params"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as error:
        raise UserError(f"{tuning_file} is not a tuning result: {error}") from None
    if not isinstance(params, dict):
        raise UserError(f"{tuning_file}: best_params is not an object")
    return params


# ----------------------------------------------------------------------------- training
def train_step(
    training_dir: Path,
    model_dir: Path,
    *,
    params: Mapping[str, Any] | None = None,
    seed: int = 0,
    nthread: int | None = None,
    example_rows: int = 5,
) -> dict[str, float]:
    """Train the booster (early stopping on validation), save the model folder with its MLflow
    metadata; returns the booster's validation figures and round count."""
    from getit_ml.training.xgb import save_model, train_xgboost, write_mlflow_metadata

    data = read_training_set(training_dir)
    train, valid = data.matrix("train"), data.matrix("validation")
    booster = train_xgboost(train, valid, params, seed=seed, nthread=nthread)
    save_model(booster, data.schema, model_dir)
    write_mlflow_metadata(model_dir, booster, data.schema, valid.features[:example_rows])
    figures = {"rounds": float(booster.num_boosted_rounds())}
    for key, value in booster.attributes().items():
        if value is not None and (key.startswith("validation_") or key == "scale_pos_weight"):
            figures[key] = float(value)
    return figures


# ---------------------------------------------------------------------------- evaluation
@dataclass(frozen=True)
class EvaluationReport:
    """The test-set evaluation at the threshold chosen on validation, plus validation figures."""

    test: Evaluation
    validation: Evaluation

    def metrics(self) -> dict[str, float]:
        """``test_*`` and ``validation_*`` figures (the registry promotes on ``test_auprc``)."""
        out = {f"test_{k}": v for k, v in self.test.scalar_metrics().items()}
        for key in ("auprc", "roc_auc", "recall_at_review_rate", "brier", "ece",
                    "expected_cost_bdt"):  # fmt: skip
            out[f"validation_{key}"] = self.validation.scalar_metrics()[key]
        return out


def evaluate_step(
    training_dir: Path,
    model_dir: Path,
    out_dir: Path,
    *,
    review_rate: float = DEFAULT_REVIEW_RATE,
    cost_fp_bdt: float = DEFAULT_FALSE_ALARM_COST_BDT,
) -> EvaluationReport:
    """Score validation and test with the saved model; pick the cost-optimal threshold on
    validation and report the test set at that threshold; write ``evaluation.json`` and plots.

    The model is read back from ``model_dir`` exactly as serving reads it, so what is evaluated
    is what gets registered.
    """
    from getit_ml.training.evaluation import evaluate, plots
    from getit_ml.training.xgb import load_model, predict_proba

    data = read_training_set(training_dir)
    booster, schema = load_model(model_dir)
    scored: dict[str, tuple[pd.DataFrame, np.ndarray[Any, np.dtype[np.float64]]]] = {}
    for part in ("validation", "test"):
        frame = data.frames[part]
        scored[part] = (frame, predict_proba(booster, schema, frame))

    def run(part: str, threshold: float | None) -> Evaluation:
        frame, scores = scored[part]
        patterns = frame[PATTERN].astype(object).where(frame[PATTERN].notna(), None)
        return evaluate(
            frame[schema.label].astype(bool).to_numpy(),
            scores,
            frame[AMOUNT].to_numpy(dtype=np.float64),
            review_rate=review_rate,
            cost_fp_bdt=cost_fp_bdt,
            threshold=threshold,
            patterns=patterns.to_numpy(),
        )

    validation = run("validation", None)
    report = EvaluationReport(test=run("test", validation.threshold), validation=validation)
    out_dir.mkdir(parents=True, exist_ok=True)
    plots(report.test, out_dir)
    document = {
        "metrics": report.metrics(),
        "threshold": report.test.threshold,
        "threshold_source": "cost-optimal on the validation part",
        "review_rate": review_rate,
        "false_alarm_cost_bdt": cost_fp_bdt,
        "confusion_matrix": report.test.confusion.rows(),
        "per_pattern": [
            {
                "pattern": p.pattern,
                "positives": p.positives,
                "auprc": p.auprc,
                "recall_at_threshold": p.recall_at_threshold,
            }
            for p in report.test.per_pattern
        ],
    }
    (out_dir / EVALUATION_FILE).write_text(json.dumps(document, indent=1), encoding="utf-8")
    logger.info("test AUPRC %.4f, ROC-AUC %.4f at threshold %.4g", report.test.auprc,
                report.test.roc_auc, report.test.threshold)  # fmt: skip
    return report


def read_evaluation(folder: Path) -> dict[str, Any]:
    """``evaluation.json`` of an evaluation folder."""
    path = folder / EVALUATION_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise UserError(f"{folder} holds no readable {EVALUATION_FILE}: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("metrics"), dict):
        raise UserError(f"{path} has no metrics")
    return document


# ----------------------------------------------------------------------- reference export
def export_reference_step(
    training_dir: Path, out_dir: Path, *, rows: int = 5_000, seed: int = 0
) -> int:
    """A sample of the train part, encoded, for the drift detector and the explainer."""
    from getit_ml.training.dataset import export_reference

    data = read_training_set(training_dir)
    return export_reference(data.frames["train"], data.schema, out_dir, n=rows, seed=seed).rows
