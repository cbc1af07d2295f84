"""What the training pipeline asks of a model family: the :class:`Trainer` protocol.

The pipeline template (``pipelines/training``) is the same for every family: validate the data,
engineer features, build the training set, tune, train, evaluate, export the monitoring
reference, register. Each step calls one method of the family's trainer, with folders in and
folders out, so a family that learns something quite unlike a tabular classifier (a retriever and
a ranker, a sequence model, a forecaster) fits the same template and the same components:

=====================  ======================================================================
``build_training_set``  the family's examples (its entity rows and label) joined with its
                        features, split, written as a training-set folder
``tune``                a hyper-parameter study on the validation part; ``tuning.json``
``train``               the model folder the family's serving runtime loads
``evaluate``            :class:`EvaluationReport`: every metric with its direction, the
                        promotion metric, plots
``export_reference``    what the monitoring sidecars compare live traffic with
``rescore``             the current champion scored on the challenger's test set (promotion)
``evaluate_dataset``    the ``getit-ml evaluate`` command: the family's method on a user's own
                        imported table, with a baseline from the same run
=====================  ======================================================================

:class:`~getit_ml.training.tabular.BinaryTabularTrainer` implements it for binary tabular
families (fraud, churn); the families themselves live in ``getit_ml.families``, above the layers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

from getit_ml.errors import UserError

if TYPE_CHECKING:
    from getit_ml.settings import PlatformSettings

Direction = Literal["maximize", "minimize"]
DIRECTIONS: Final = ("maximize", "minimize")
EVALUATION_FILE: Final = "evaluation.json"
TUNING_FILE: Final = "tuning.json"


@dataclass(frozen=True)
class EvaluationReport:
    """What ``evaluate`` found: named figures, the direction of each figure that ranks models,
    the metric promotion decides on, and what the pipeline UI shows.

    ``metrics`` are ``test_*`` (the held-out part, read once) and ``validation_*`` figures.
    """

    metrics: dict[str, float]
    directions: dict[str, Direction]
    promotion_metric: str
    #: More facts for ``evaluation.json`` (the threshold, a confusion matrix, per-group figures).
    document: dict[str, Any] = field(default_factory=dict)
    #: Plot name -> self-contained HTML page (a PNG beside it).
    plots: dict[str, Path] = field(default_factory=dict)
    #: ``(fpr, tpr, thresholds)`` for KFP's ClassificationMetrics, when the family has one.
    roc: tuple[list[float], list[float], list[float]] | None = None
    #: ``(categories, matrix)`` for KFP's ClassificationMetrics, when the family has one.
    confusion: tuple[list[str], list[list[int]]] | None = None
    #: One line for logs and the demo.
    headline: str = ""

    def __post_init__(self) -> None:
        if self.promotion_metric not in self.metrics:
            raise UserError(
                f"promotion metric {self.promotion_metric!r} is not among the evaluation's "
                f"metrics ({', '.join(sorted(self.metrics)[:8])}, ...)"
            )
        if self.promotion_metric not in self.directions:
            raise UserError(f"promotion metric {self.promotion_metric!r} has no direction")
        bad = {k: v for k, v in self.directions.items() if v not in DIRECTIONS}
        if bad:
            raise UserError(f"metric directions must be maximize or minimize: {bad}")

    def to_document(self) -> dict[str, Any]:
        return {
            **self.document,
            "metrics": self.metrics,
            "directions": self.directions,
            "promotion_metric": self.promotion_metric,
            "headline": self.headline,
        }

    def write(self, out_dir: Path) -> Path:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / EVALUATION_FILE
        path.write_text(json.dumps(self.to_document(), indent=1), encoding="utf-8")
        return path


def read_evaluation(folder: Path) -> dict[str, Any]:
    """``evaluation.json`` of an evaluation folder: at least ``metrics``; ``directions`` and
    ``promotion_metric`` when a family's evaluation wrote it."""
    path = folder / EVALUATION_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise UserError(f"{folder} holds no readable {EVALUATION_FILE}: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("metrics"), dict):
        raise UserError(f"{path} has no metrics")
    return document


@dataclass(frozen=True)
class DatasetEvaluation:
    """The ``getit-ml evaluate`` result on a user's table: one row per method (ours first, then
    the baselines from the same run), the protocol in words, and the report file."""

    family: str
    protocol: str
    #: Method -> metric -> value.
    rows: dict[str, dict[str, float]]
    #: The metrics shown, in order, with their directions.
    columns: dict[str, Direction]
    headline_metric: str
    report: Path | None = None
    notes: tuple[str, ...] = ()


class Trainer(Protocol):
    """The training pipeline's steps for one family (see the module docstring)."""

    @property
    def family(self) -> str: ...

    @property
    def feature_service(self) -> str: ...

    @property
    def promotion_metric(self) -> str: ...

    def build_training_set(
        self,
        settings: PlatformSettings,
        data_dir: Path,
        store_root: Path,
        out_dir: Path,
        *,
        fractions: tuple[float, float, float] | None,
        snapshot_id: str,
    ) -> dict[str, Any]: ...

    def tune(
        self,
        training_dir: Path,
        out_file: Path,
        *,
        n_trials: int,
        timeout_s: float | None,
        storage_url: str | None,
        study_name: str,
        seed: int,
    ) -> dict[str, Any]: ...

    def train(
        self, training_dir: Path, model_dir: Path, *, params: Mapping[str, Any] | None, seed: int
    ) -> dict[str, float]: ...

    def evaluate(
        self, training_dir: Path, model_dir: Path, out_dir: Path, options: Mapping[str, float]
    ) -> EvaluationReport: ...

    def export_reference(
        self, training_dir: Path, out_dir: Path, *, rows: int, seed: int
    ) -> int: ...

    def rescore(self, model_dir: Path, training_dir: Path, metric: str) -> float | None: ...

    def evaluate_dataset(
        self,
        data_dir: Path,
        out_dir: Path | None,
        *,
        seed: int,
        test_fraction: float,
        trials: int,
    ) -> DatasetEvaluation: ...
