"""Drift and outlier detectors fitted on the reference data (alibi-detect 0.11.4).

* Inputs: ``TabularDrift`` — a Kolmogorov-Smirnov test per numeric feature and a Chi-square test
  per categorical or boolean feature, window against reference.
* Output: ``KSDrift`` on the model's scores of the window against the scores of the reference.
* Per instance: ``IForest`` (isolation forest) or ``Mahalanobis``, with the threshold set at a
  percentile of the reference's own outlier scores.

The feature tests and the score test form one family of hypotheses: the window drifts when the
family, corrected for multiple testing (Bonferroni, or Benjamini-Hochberg FDR), rejects at
``p_val``. One correction over everything keeps the false-alarm rate of a window at ``p_val``.

Missing values are data: a missing number becomes a sentinel below every value (a change in the
missing rate moves the KS statistic), a missing category an extra category. Features that cannot
be stationary over a window of minutes (local hour, weekday, festival distances) are left out as
the model's feature schema says (its monitoring hints, from the family): a window is never
distributed like a reference drawn over months.
"""

from __future__ import annotations

import importlib
import logging
import math
import threading
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from getit_ml.errors import UserError
from getit_ml.monitoring.schema import FeatureSchema, FloatArray, Reference

logger = logging.getLogger(__name__)

Correction = Literal["bonferroni", "fdr"]
OutlierMethod = Literal["iforest", "mahalanobis", "none"]
BoolArray = npt.NDArray[np.bool_]

MISSING_NUMBER: Final = -float(2**40)


@dataclass(frozen=True)
class DetectorConfig:
    """How the window is compared with the reference."""

    p_val: float = 0.05
    correction: Correction = "bonferroni"
    #: Features left out of the input test; ``None``: those the schema's monitoring hints name
    #: (a family's calendar context, constant within a window), when the schema has them.
    ignore_features: tuple[str, ...] | None = None
    compare_scores: bool = True
    outlier: OutlierMethod = "iforest"
    #: Percentile of the reference's outlier scores above which an instance is an outlier.
    outlier_percentile: float = 99.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.p_val < 1.0:
            raise UserError(f"p_val must be in (0, 1), got {self.p_val}")
        if self.correction not in ("bonferroni", "fdr"):
            raise UserError(f"unknown correction {self.correction!r}: bonferroni or fdr")
        if self.outlier not in ("iforest", "mahalanobis", "none"):
            raise UserError(f"unknown outlier detector {self.outlier!r}")
        if not 50.0 <= self.outlier_percentile < 100.0:
            raise UserError("outlier_percentile must be in [50, 100)")


@dataclass(frozen=True)
class DriftResult:
    """The outcome for one window."""

    is_drift: bool
    threshold: float
    correction: str
    feature_p_values: dict[str, float]
    feature_distances: dict[str, float]
    drifted_features: list[str]
    score_p_value: float | None
    score_distance: float | None
    outlier_rate: float | None
    window_rows: int
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "is_drift": self.is_drift,
            "threshold": self.threshold,
            "correction": self.correction,
            "drifted_features": self.drifted_features,
            "score_p_value": self.score_p_value,
            "score_distance": self.score_distance,
            "outlier_rate": self.outlier_rate,
            "window_rows": self.window_rows,
            "feature_p_values": self.feature_p_values,
            "feature_distances": self.feature_distances,
            **self.extra,
        }


def _median_present(column: FloatArray) -> float:
    present = column[column > MISSING_NUMBER]
    return float(np.median(present)) if present.size else 0.0


def corrected_rejections(p_values: FloatArray, alpha: float, correction: Correction) -> BoolArray:
    """Which hypotheses the family rejects at ``alpha`` (Bonferroni or Benjamini-Hochberg)."""
    n = p_values.size
    if n == 0:
        return np.zeros(0, dtype=np.bool_)
    if correction == "bonferroni":
        return np.asarray(p_values < alpha / n, dtype=np.bool_)
    order = np.argsort(p_values, kind="stable")
    ranked = p_values[order]
    passing = np.flatnonzero(ranked <= alpha * np.arange(1, n + 1) / n)
    rejected = np.zeros(n, dtype=np.bool_)
    if passing.size:
        rejected[order[: passing[-1] + 1]] = True
    return rejected


class Detectors:
    """The reference-fitted detectors; thread-safe for concurrent ``run`` calls (read-only)."""

    def __init__(
        self,
        reference: Reference,
        config: DetectorConfig | None = None,
        reference_scores: FloatArray | None = None,
    ) -> None:
        self.schema: FeatureSchema = reference.schema
        self.config = config or DetectorConfig()
        if self.config.ignore_features is None:
            hinted = self.schema.monitoring.drift_ignored
            ignored = {n for n in hinted if n in self.schema.feature_names}
        else:
            unknown = [n for n in self.config.ignore_features if n not in self.schema.feature_names]
            if unknown:
                raise UserError(f"ignored feature(s) {unknown} are not in the feature schema")
            ignored = set(self.config.ignore_features)
        self.ignored = sorted(ignored)
        self.tested = [j for j, f in enumerate(self.schema.features) if f.name not in ignored]
        if not self.tested:
            raise UserError("every feature is ignored: nothing to test for drift")
        self.tested_names = [self.schema.features[j].name for j in self.tested]
        self._reference = self.encode(reference.features)
        self._medians = np.array(
            [_median_present(self._reference[:, k]) for k in range(self._reference.shape[1])]
        )
        self._outlier_lock = threading.Lock()  # Mahalanobis updates its running statistics
        self._categorical = {
            k: None for k, j in enumerate(self.tested) if self.schema.features[j].is_discrete
        }
        self._tabular = self._fit_tabular()
        self._scores: Any = None
        self.reference_scores_source: str | None = None
        if reference_scores is not None:
            self.set_reference_scores(reference_scores, "given")
        self._outlier, self._outlier_threshold = self._fit_outlier(reference.features)

    # ---------------------------------------------------------------------------- encoding
    def encode(self, matrix: FloatArray) -> FloatArray:
        """Model-space rows as the tests see them (tested columns, missing values encoded)."""
        out = np.array(matrix[:, self.tested], dtype=np.float64, copy=True)
        for k, j in enumerate(self.tested):
            feature = self.schema.features[j]
            column = out[:, k]
            missing = np.isnan(column)
            column[missing] = len(feature.levels) if feature.is_discrete else MISSING_NUMBER
        return out

    def _fit_tabular(self) -> Any:
        drift: Any = importlib.import_module("alibi_detect.cd")
        return drift.TabularDrift(
            self._reference,
            p_val=self.config.p_val,
            categories_per_feature=dict(self._categorical),
            correction=self.config.correction,
        )

    def set_reference_scores(self, scores: FloatArray, source: str) -> None:
        drift: Any = importlib.import_module("alibi_detect.cd")

        values = np.asarray(scores, dtype=np.float64).reshape(-1)
        values = values[np.isfinite(values)]
        if values.size < 2:
            raise UserError("reference scores: need at least 2 finite scores")
        self._scores = drift.KSDrift(values.reshape(-1, 1), p_val=self.config.p_val)
        self.reference_scores_source = source
        logger.info("score reference: %d scores (%s)", values.size, source)

    @property
    def has_reference_scores(self) -> bool:
        return self._scores is not None

    def _fit_outlier(self, features: FloatArray) -> tuple[Any, float | None]:
        method = self.config.outlier
        if method == "none":
            return None, None
        data = self._outlier_input(features)
        if method == "iforest":
            detector: Any = importlib.import_module("alibi_detect.od").IForest(
                threshold=0.0, n_estimators=100
            )
            detector.isolationforest.set_params(random_state=self.config.seed)
            detector.fit(data)
        else:
            detector = importlib.import_module("alibi_detect.od").Mahalanobis(
                n_components=min(3, data.shape[1])
            )
            detector.score(data)  # the online mean and covariance start from the reference
        detector.infer_threshold(data, threshold_perc=self.config.outlier_percentile)
        logger.info(
            "%s outlier threshold %.4g at the reference's %.1fth percentile",
            method,
            detector.threshold,
            self.config.outlier_percentile,
        )
        return detector, float(detector.threshold)

    def _outlier_input(self, matrix: FloatArray) -> FloatArray:
        encoded = self.encode(matrix)
        if self.config.outlier == "mahalanobis":
            # A sentinel would dominate a covariance: missing numbers become the reference median.
            encoded = np.where(encoded <= MISSING_NUMBER, self._medians[None, :], encoded)
        return encoded

    def outliers(self, matrix: FloatArray) -> BoolArray | None:
        """Per row: is it an outlier against the reference? None without an outlier detector."""
        if self._outlier is None:
            return None
        data = self._outlier_input(matrix)
        if self.config.outlier == "mahalanobis":
            with self._outlier_lock:
                scores = self._outlier.score(data)
            return np.asarray(scores > self._outlier.threshold, dtype=np.bool_)
        prediction = self._outlier.predict(data, return_instance_score=False)
        return np.asarray(prediction["data"]["is_outlier"], dtype=np.bool_)

    # ------------------------------------------------------------------------------- tests
    def run(
        self,
        matrix: FloatArray,
        scores: FloatArray | None = None,
        outliers: BoolArray | None = None,
    ) -> DriftResult:
        """Compare one window (model-space rows, their scores) with the reference."""
        if matrix.ndim != 2 or matrix.shape[1] != self.schema.width or matrix.shape[0] < 2:
            raise ValueError(f"a window of shape {matrix.shape} for {self.schema.width} features")
        tabular = self._tabular.predict(
            self.encode(matrix), drift_type="feature", return_p_val=True, return_distance=True
        )
        p_values = np.nan_to_num(np.asarray(tabular["data"]["p_val"], dtype=np.float64), nan=1.0)
        distances = np.asarray(tabular["data"]["distance"], dtype=np.float64)
        family = list(p_values)
        score_p: float | None = None
        score_distance: float | None = None
        if self.config.compare_scores and self._scores is not None and scores is not None:
            finite = scores[np.isfinite(scores)]
            if finite.size >= 2:
                result = self._scores.predict(
                    finite.reshape(-1, 1), return_p_val=True, return_distance=True
                )
                score_p = float(np.asarray(result["data"]["p_val"]).reshape(-1)[0])
                score_distance = float(np.asarray(result["data"]["distance"]).reshape(-1)[0])
                family.append(0.0 if math.isnan(score_p) else score_p)
        rejected = corrected_rejections(
            np.asarray(family), self.config.p_val, self.config.correction
        )
        drifted = [self.tested_names[k] for k in np.flatnonzero(rejected[: len(self.tested)])]
        if score_p is not None and rejected[-1]:
            drifted.append("<score>")
        outlier_rate = None if outliers is None or outliers.size == 0 else float(outliers.mean())
        return DriftResult(
            is_drift=bool(rejected.any()),
            threshold=self.config.p_val,
            correction=self.config.correction,
            feature_p_values={
                n: float(p) for n, p in zip(self.tested_names, p_values, strict=True)
            },
            feature_distances={
                n: float(d) for n, d in zip(self.tested_names, distances, strict=True)
            },
            drifted_features=drifted,
            score_p_value=score_p,
            score_distance=score_distance,
            outlier_rate=outlier_rate,
            window_rows=int(matrix.shape[0]),
        )
