"""The binary tabular trainer: one implementation of the pipeline's steps for every family that
scores a row with a probability (fraud: this payment; churn: this customer).

A family describes itself with a :class:`BinaryTask` — its feature service, how to build its
entity rows and label from a marketplace folder, its split, which XGBoost metric early stopping
ranks rounds by, what it optimises when tuning, what a miss and a false alarm cost, its class
names and the monitoring hints — and :class:`BinaryTabularTrainer` does the rest: Feast's
point-in-time join, the split, the schema, Optuna, XGBoost, the cost-aware evaluation at a
threshold chosen on validation, the reference export, champion re-scoring, and the
``getit-ml evaluate`` protocol on a user's own labelled table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from getit_ml.errors import UserError
from getit_ml.features.feature_schema import MonitoringHints
from getit_ml.training import evaluation as ev
from getit_ml.training.dataset import (
    EntityFrame,
    SplitSpec,
    TrainingSet,
    label_array,
    prepare_training_set,
    service_feature_types,
    training_frame,
)
from getit_ml.training.family import DatasetEvaluation, Direction, EvaluationReport
from getit_ml.training.steps import (
    read_training_set,
    write_training_set,
    write_tuning,
)
from getit_ml.training.table_evaluation import LABELLED_EXAMPLES, CostModel, LabelledTable

if TYPE_CHECKING:
    from feast import FeatureStore

    from getit_ml.settings import PlatformSettings
    from getit_ml.training.tuning import SearchSpace

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

#: Tuning objectives by name: (labels, scores) -> a number to maximise.
OBJECTIVES: Final[dict[str, Callable[[npt.ArrayLike, npt.ArrayLike], float]]] = {
    "auprc": ev.average_precision,
    "roc_auc": ev.roc_auc,
}
#: Metrics that can be recomputed for a champion on the challenger's test set.
RESCORABLE: Final[dict[str, Callable[[npt.ArrayLike, npt.ArrayLike], float]]] = {
    "test_auprc": ev.average_precision,
    "test_roc_auc": ev.roc_auc,
    "test_brier": ev.brier_score,
}
#: The validation figures reported beside every test figure.
VALIDATION_METRICS: Final = (
    "auprc",
    "roc_auc",
    "recall_at_review_rate",
    "brier",
    "ece",
    "expected_cost_bdt",
)


@dataclass(frozen=True)
class BinaryTask:
    """Everything a binary tabular family knows (see the module docstring)."""

    family: str
    feature_service: str
    label: str
    #: A marketplace folder -> the family's entity rows and label.
    entity_rows: Callable[[Path], EntityFrame]
    monitoring: MonitoringHints
    #: Columns of the joined frame that are never model inputs (keys, clocks, ids).
    identifiers: frozenset[str] = frozenset()
    #: Request fields (name -> Feast type) that are model inputs unless identifiers.
    request_fields: Mapping[str, str] = field(default_factory=dict)
    split: SplitSpec = field(default_factory=SplitSpec)
    #: XGBoost metric early stopping and pruning rank rounds by: ``aucpr`` or ``auc``.
    ranking_metric: str = "aucpr"
    #: What tuning maximises on validation: a key of :data:`OBJECTIVES`.
    tuning_objective: str = "auprc"
    promotion_metric: str = "test_auprc"
    cost: CostModel = field(default_factory=CostModel)
    #: Per-group figures (fraud: the ground-truth pattern), read from this column.
    group_column: str | None = None
    #: Overrides of the untuned XGBoost parameters (the tuning space's defaults).
    params: Mapping[str, Any] = field(default_factory=dict)
    #: The Optuna search space (None: :func:`getit_ml.training.tuning.suggest_params`).
    search_space: SearchSpace | None = None
    #: Tables ``getit-ml evaluate`` accepts, tried in order.
    tables: tuple[LabelledTable, ...] = (LABELLED_EXAMPLES,)
    #: How ``getit-ml evaluate`` chooses on the training rows: ``validation`` (a stratified 20%
    #: part) or ``cv`` (5-fold cross-validation over a few settings, then a refit).
    selection: str = "validation"

    def __post_init__(self) -> None:
        if self.ranking_metric not in ("aucpr", "auc"):
            raise UserError(f"{self.family}: ranking metric must be aucpr or auc")
        if self.tuning_objective not in OBJECTIVES:
            raise UserError(f"{self.family}: tuning objective must be one of {sorted(OBJECTIVES)}")
        if self.selection not in ("validation", "cv"):
            raise UserError(f"{self.family}: selection must be validation or cv")
        if ev.metric_direction(self.promotion_metric.removeprefix("test_")) is None:
            raise UserError(f"{self.family}: {self.promotion_metric} cannot decide promotion")

    @property
    def classes(self) -> tuple[str, str]:
        """Negative class first, as in the confusion matrix's rows."""
        return (self.monitoring.negative_class, self.monitoring.positive_class)

    @property
    def carry(self) -> tuple[str, ...]:
        return tuple(c for c in (self.cost.miss_column, self.group_column) if c is not None)


class BinaryTabularTrainer:
    """The :class:`~getit_ml.training.family.Trainer` of a :class:`BinaryTask`."""

    def __init__(self, task: BinaryTask) -> None:
        self.task = task

    @property
    def family(self) -> str:
        return self.task.family

    @property
    def feature_service(self) -> str:
        return self.task.feature_service

    @property
    def promotion_metric(self) -> str:
        return self.task.promotion_metric

    # ----------------------------------------------------------------------- training set
    def build_training_set(
        self,
        settings: PlatformSettings,
        data_dir: Path,
        store_root: Path,
        out_dir: Path,
        *,
        fractions: tuple[float, float, float] | None = None,
        snapshot_id: str = "",
    ) -> dict[str, Any]:
        """Join the feature service point-in-time for every entity row, split, fit the schema
        on train and write the training-set folder; returns the split facts."""
        from getit_ml.features.store import open_store

        split = self.task.split if fractions is None else self.task.split.with_fractions(fractions)
        data = self.training_set(
            open_store(settings, store_root), data_dir, split=split, snapshot_id=snapshot_id
        )
        return write_training_set(data, out_dir)

    def training_set(
        self,
        store: FeatureStore,
        data_dir: Path,
        *,
        split: SplitSpec | None = None,
        snapshot_id: str = "",
    ) -> TrainingSet:
        """The family's training set from a marketplace folder and an applied feature store,
        in memory (the benchmarks' way; the pipeline's writes it with
        :meth:`build_training_set`)."""
        task = self.task
        frame = training_frame(store, task.entity_rows(data_dir), task.feature_service)
        types = service_feature_types(
            store,
            task.feature_service,
            request_fields=task.request_fields,
            identifiers=task.identifiers,
        )
        metadata = {"family": task.family, "feature_service": task.feature_service}
        if snapshot_id:
            metadata["data_snapshot"] = snapshot_id
        return prepare_training_set(
            frame,
            types,
            label=task.label,
            split=split or task.split,
            metadata=metadata,
            monitoring=task.monitoring,
            carry=task.carry,
        )

    # ----------------------------------------------------------------------------- tuning
    def _tuning_arguments(self) -> dict[str, Any]:
        from getit_ml.training.tuning import DEFAULT_TRIAL, suggest_params

        task = self.task
        return {
            "ranking_metric": task.ranking_metric,
            "objective": OBJECTIVES[task.tuning_objective],
            "space": task.search_space or suggest_params,
            "default_trial": {**DEFAULT_TRIAL, **task.params},
        }

    def tune(
        self,
        training_dir: Path,
        out_file: Path,
        *,
        n_trials: int,
        timeout_s: float | None,
        storage_url: str | None,
        study_name: str,
        seed: int = 0,
        nthread: int | None = None,
    ) -> dict[str, Any]:
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
            **self._tuning_arguments(),
        )
        document = {
            "best_params": result.best_params,
            "best_value": result.best_value,
            "objective": f"validation_{self.task.tuning_objective}",
            "best_trial": result.best_trial,
            "best_rounds": result.best_rounds,
            "trials": result.trials,
            "complete": result.complete,
            "pruned": result.pruned,
            "failed": result.failed,
            "trials_this_run": result.trials_this_run,
            "study_name": result.study_name,
        }
        write_tuning(document, out_file)
        return document

    # --------------------------------------------------------------------------- training
    def train(
        self,
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
        merged = {**self.task.params, **(params or {})}
        booster = train_xgboost(
            train,
            valid,
            merged,
            seed=seed,
            nthread=nthread,
            ranking_metric=self.task.ranking_metric,
        )
        save_model(booster, data.schema, model_dir)
        write_mlflow_metadata(model_dir, booster, data.schema, valid.features[:example_rows])
        figures = {"rounds": float(booster.num_boosted_rounds())}
        for key, value in booster.attributes().items():
            if value is not None and (key.startswith("validation_") or key == "scale_pos_weight"):
                figures[key] = float(value)
        return figures

    # ------------------------------------------------------------------------- evaluation
    def _evaluation(
        self,
        frame: pd.DataFrame,
        label: FloatArray,
        scores: FloatArray,
        cost: CostModel,
        threshold: float | None,
    ) -> ev.Evaluation:
        group = self.task.group_column
        patterns = None
        if group is not None and group in frame.columns:
            patterns = frame[group].astype(object).where(frame[group].notna(), None).to_numpy()
        return ev.evaluate(
            label,
            scores,
            cost.miss_costs(frame),
            review_rate=cost.review_rate,
            cost_fp_bdt=cost.false_alarm_cost_bdt,
            threshold=threshold,
            patterns=patterns,
        )

    def evaluate(
        self,
        training_dir: Path,
        model_dir: Path,
        out_dir: Path,
        options: Mapping[str, float] | None = None,
    ) -> EvaluationReport:
        """Score validation and test with the saved model; pick the cost-optimal threshold on
        validation and report the test part at it; write ``evaluation.json`` and the plots.

        ``options`` may set ``review_rate`` and ``false_alarm_cost_bdt``. The model is read back
        from ``model_dir`` exactly as serving reads it, so what is evaluated is what gets
        registered.
        """
        from getit_ml.training.xgb import load_model, predict_proba

        cost = self._cost(options or {})
        data = read_training_set(training_dir)
        booster, schema = load_model(model_dir)
        parts: dict[str, ev.Evaluation] = {}
        threshold: float | None = None
        for part in ("validation", "test"):
            frame = data.frames[part]
            scores = predict_proba(booster, schema, frame)
            labels = label_array(frame[schema.label], schema.label)
            parts[part] = self._evaluation(frame, labels, scores, cost, threshold)
            threshold = parts[part].threshold
        test, validation = parts["test"], parts["validation"]
        metrics = {f"test_{k}": v for k, v in test.scalar_metrics().items()}
        metrics.update(
            {f"validation_{k}": validation.scalar_metrics()[k] for k in VALIDATION_METRICS}
        )
        out_dir.mkdir(parents=True, exist_ok=True)
        files = ev.plots(test, out_dir, self.task.monitoring.positive_class)
        document = {
            "family": self.task.family,
            "threshold": test.threshold,
            "threshold_source": "cost-optimal on the validation part",
            "review_rate": cost.review_rate,
            "false_alarm_cost_bdt": cost.false_alarm_cost_bdt,
            "miss_cost": cost.miss_column or f"{cost.miss_cost_bdt:g} BDT per positive",
            "classes": list(self.task.classes),
            "confusion_matrix": test.confusion.rows(),
            "per_pattern": [
                {
                    "pattern": p.pattern,
                    "positives": p.positives,
                    "auprc": p.auprc,
                    "recall_at_threshold": p.recall_at_threshold,
                }
                for p in test.per_pattern
            ],
        }
        report = EvaluationReport(
            metrics=metrics,
            directions=_directions(metrics),
            promotion_metric=self.task.promotion_metric,
            document=document,
            plots=dict(files.html),
            roc=ev.roc_points(test),
            confusion=ev.confusion_matrix_data(test, self.task.classes),
            headline=f"test AUPRC {test.auprc:.4f}, ROC-AUC {test.roc_auc:.4f} at threshold "
            f"{test.threshold:.4g}",
        )
        report.write(out_dir)
        logger.info("%s: %s", self.task.family, report.headline)
        return report

    def _cost(self, options: Mapping[str, float]) -> CostModel:
        base = self.task.cost
        unknown = set(options) - {"review_rate", "false_alarm_cost_bdt"}
        if unknown:
            raise UserError(f"unknown evaluation option(s) {sorted(unknown)}")
        return CostModel(
            miss_column=base.miss_column,
            miss_cost_bdt=base.miss_cost_bdt,
            false_alarm_cost_bdt=float(
                options.get("false_alarm_cost_bdt", base.false_alarm_cost_bdt)
            ),
            review_rate=float(options.get("review_rate", base.review_rate)),
        )

    # ------------------------------------------------------------------- reference export
    def export_reference(
        self, training_dir: Path, out_dir: Path, *, rows: int = 5_000, seed: int = 0
    ) -> int:
        """A sample of the train part, encoded, for the drift detector and the explainer."""
        from getit_ml.training.dataset import export_reference

        data = read_training_set(training_dir)
        return export_reference(data.frames["train"], data.schema, out_dir, n=rows, seed=seed).rows

    # -------------------------------------------------------------------------- promotion
    def rescore(self, model_dir: Path, training_dir: Path, metric: str) -> float | None:
        """``metric`` of the model in ``model_dir`` on the test part of ``training_dir``; None
        when the metric cannot be recomputed (its recorded value is used instead). A model that
        cannot score this test set (another feature schema) is a :class:`UserError`."""
        from getit_ml.training.xgb import load_model, predict_proba

        score = RESCORABLE.get(metric)
        if score is None:
            return None
        test = read_training_set(training_dir).frames["test"]
        booster, schema = load_model(model_dir)
        if schema.label not in test.columns:
            raise UserError(f"the test set has no label {schema.label!r}")
        scores = predict_proba(booster, schema, test)
        return float(score(label_array(test[schema.label], schema.label), scores))

    # ----------------------------------------------------------------- getit-ml evaluate
    def evaluate_dataset(
        self,
        data_dir: Path,
        out_dir: Path | None = None,
        *,
        seed: int = 42,
        test_fraction: float = 0.2,
        trials: int = 0,
        nthread: int | None = None,
    ) -> DatasetEvaluation:
        """The family's method on a user's imported table, beside logistic regression (see
        :func:`getit_ml.training.table_evaluation.evaluate_table`)."""
        from getit_ml.training.table_evaluation import evaluate_table

        return evaluate_table(
            self.task,
            data_dir,
            out_dir,
            seed=seed,
            test_fraction=test_fraction,
            trials=trials,
            nthread=nthread,
            tuning=self._tuning_arguments(),
        )


def _directions(metrics: Mapping[str, float]) -> dict[str, Direction]:
    out: dict[str, Direction] = {}
    for name in metrics:
        direction = ev.metric_direction(name.removeprefix("test_").removeprefix("validation_"))
        if direction == "maximize":
            out[name] = "maximize"
        elif direction == "minimize":
            out[name] = "minimize"
    return out
