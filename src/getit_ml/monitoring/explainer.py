"""Explanations of a served model: Alibi's AnchorTabular rules and Kernel SHAP attributions.

The model is a black box — a function from encoded rows to the positive class's probability (a
fraud's, a churner's), in production a
:class:`~getit_ml.monitoring.predictor.V2Predictor` calling the served model — so one explainer
works with every model the platform serves. Both methods are fitted on the reference data that
the training pipeline exports.

* **Anchors** (``AnchorTabular`` from alibi 0.9.4): a rule such as ``IF is_new_device = true AND
  amount_vs_avg_30d > 3.20 THEN fraud`` with its precision (how often the model agrees when the
  rule holds) and coverage (how much of the reference the rule covers). Alibi asks the model once
  per candidate rule; :class:`_BatchedSampler` gathers the candidates of one search step into one
  predictor call, which is what keeps an explanation over HTTP fast.
* **Kernel SHAP**: each feature's share of ``score - base score``. Alibi's ``KernelShap`` needs
  the ``shap`` package, which the monitoring lock does not include; without it the numpy
  implementation in :mod:`getit_ml.monitoring.kernel_shap` (same algorithm) is used, and the
  explanation says which one ran.

Missing values (NaN) are part of the model's input. Anchors cannot bin NaN, so the explainer works
in a space where a missing number is a sentinel far below every value and a missing category is
one extra category (``missing``); the predictor wrapper turns them back into NaN.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np

from getit_ml.errors import UserError
from getit_ml.monitoring.kernel_shap import kernel_shap
from getit_ml.monitoring.reasons import ReasonCoder
from getit_ml.monitoring.schema import FeatureSchema, FloatArray, Reference

logger = logging.getLogger(__name__)

Method = Literal["anchor", "kernel_shap"]
METHODS: Final[tuple[Method, ...]] = ("anchor", "kernel_shap")
ShapBackend = Literal["auto", "alibi", "numpy"]
#: A missing number in the explainer's space: exactly representable, far below any feature.
MISSING_SENTINEL: Final = -float(2**40)
_SENTINEL_TEXT: Final = re.compile(r"-1099511627776(?:\.0+)?")

Predict = Callable[[FloatArray], FloatArray]


@dataclass(frozen=True)
class ExplainerConfig:
    """What to explain with and how hard to search."""

    methods: tuple[Method, ...] = METHODS
    #: Scores at or above this are the positive class for the anchor's class.
    threshold: float = 0.5
    #: Reasons returned per explanation.
    top_k: int = 3
    #: Attributions listed per explanation (largest magnitude first); 0 = all.
    max_attributions: int = 10
    anchor_precision: float = 0.95
    anchor_max_size: int | None = 4
    anchor_beam_size: int = 1
    anchor_batch_size: int = 100
    anchor_coverage_samples: int = 1000
    anchor_percentiles: tuple[float, ...] = (5.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0)
    #: The anchor's predicates are searched among this many features, the most influential for
    #: the instance (by SHAP, or by a one-call sensitivity ranking); 0 = every feature. The
    #: precision and coverage of the rule are still estimated with every feature perturbed.
    anchor_candidates: int = 8
    shap_backend: ShapBackend = "auto"
    shap_background: int = 12
    shap_nsamples: int = 256
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.methods:
            raise UserError("explainer: choose at least one method (anchor, kernel_shap)")
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise UserError(f"explainer: unknown method(s) {unknown}; choose from {METHODS}")
        if not 0.0 < self.threshold < 1.0:
            raise UserError(f"explainer: threshold must be in (0, 1), got {self.threshold}")
        if not 0.0 < self.anchor_precision < 1.0:
            raise UserError("explainer: anchor precision must be in (0, 1)")
        for name in (
            "top_k",
            "anchor_batch_size",
            "anchor_coverage_samples",
            "shap_background",
            "anchor_beam_size",
        ):
            if getattr(self, name) < 1:
                raise UserError(f"explainer: {name} must be at least 1")
        if self.anchor_candidates < 0:
            raise UserError("explainer: anchor_candidates must be >= 0 (0 = every feature)")
        if self.shap_nsamples < 2:
            raise UserError("explainer: shap_nsamples must be at least 2")
        if self.shap_backend not in ("auto", "alibi", "numpy"):
            raise UserError(f"explainer: unknown SHAP backend {self.shap_backend!r}")


@dataclass(frozen=True)
class ExplanationSpace:
    """Model space (NaN = missing) <-> explainer space (sentinel / extra category)."""

    schema: FeatureSchema

    def to_space(self, matrix: FloatArray) -> FloatArray:
        out = np.array(matrix, dtype=np.float64, copy=True)
        for j, feature in enumerate(self.schema.features):
            column = out[:, j]
            missing = np.isnan(column)
            if feature.is_discrete:
                levels = len(feature.levels)
                invalid = ~missing & ((column < 0) | (column >= levels) | (column % 1 != 0))
                column[missing | invalid] = levels
            else:
                column[missing] = MISSING_SENTINEL
        return out

    def to_model(self, matrix: FloatArray) -> FloatArray:
        out = np.array(matrix, dtype=np.float64, copy=True)
        for j, feature in enumerate(self.schema.features):
            column = out[:, j]
            if feature.is_discrete:
                column[column >= len(feature.levels)] = np.nan
            else:
                column[column <= MISSING_SENTINEL] = np.nan
        return out

    def category_map(self) -> dict[int, list[str]]:
        return {
            j: [*feature.levels, "missing"]
            for j, feature in enumerate(self.schema.features)
            if feature.is_discrete
        }


class _BatchedSampler:
    """Wraps alibi's ``TabularSampler`` so that the samples drawn for every candidate anchor of
    one search step are labelled by ONE predictor call instead of one call per candidate.

    Alibi's ``AnchorBaseBeam.draw_samples`` first calls the sampler for every candidate and only
    then unpacks the results; this wrapper draws the perturbations at call time (same random
    stream, so the search is unchanged) and hands back lazy results whose first unpacking labels
    all pending samples at once. Written against alibi 0.9.4, which the licence pins forever.
    """

    def __init__(self, sampler: Any) -> None:
        self._sampler = sampler
        self._pending: list[_LazySamples] = []
        self.allowed: set[int] | None = None
        #: False: label each candidate's samples at once, as alibi does (for comparison).
        self.batch = True
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sampler, name)

    def build_lookups(self, instance: Any) -> list[dict[int, Any]]:
        """Alibi's lookups for ``instance`` (fresh each time: alibi's accumulate across calls),
        keeping only predicates on the ``allowed`` features, renumbered from 0."""
        sampler = self._sampler
        sampler.cat_lookup, sampler.ord_lookup, sampler.enc2feat_idx = {}, {}, {}
        categorical, ordinal, features = sampler.build_lookups(instance)
        if self.allowed is None:
            return [categorical, ordinal, features]
        kept_cat: dict[int, Any] = {}
        kept_ord: dict[int, Any] = {}
        kept_features: dict[int, int] = {}
        for old in sorted(features):
            if features[old] not in self.allowed:
                continue
            new = len(kept_features)
            kept_features[new] = features[old]
            if old in categorical:
                kept_cat[new] = categorical[old]
            if old in ordinal:
                kept_ord[new] = ordinal[old]
        sampler.cat_lookup, sampler.ord_lookup, sampler.enc2feat_idx = (
            kept_cat,
            kept_ord,
            kept_features,
        )
        return [kept_cat, kept_ord, kept_features]

    def __call__(
        self, anchor: tuple[int, tuple[int, ...]], num_samples: int, compute_labels: bool = True
    ) -> Any:
        if not compute_labels or not self.batch:
            return self._sampler(anchor, num_samples, compute_labels=compute_labels)
        sampler = self._sampler
        raw, discretized, coverage = sampler.perturbation(anchor[1], num_samples)
        data = np.zeros((num_samples, len(sampler.enc2feat_idx)), int)
        for i in sampler.enc2feat_idx:
            column = discretized[:, sampler.enc2feat_idx[i]]
            if i in sampler.cat_lookup:
                data[:, i] = column == sampler.cat_lookup[i]
            else:
                bins = sampler.ord_lookup[i]
                data[:, i] = (min(bins) <= column) & (column <= max(bins))
        lazy = _LazySamples(self, raw, data, coverage, anchor[0])
        self._pending.append(lazy)
        return lazy

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        if not pending:
            return
        labels = self._sampler.compare_labels(np.concatenate([p.raw for p in pending]))
        self.calls += 1
        start = 0
        for lazy in pending:
            lazy.labels = np.asarray(labels[start : start + len(lazy.raw)])
            start += len(lazy.raw)


@dataclass
class _LazySamples:
    owner: _BatchedSampler
    raw: FloatArray
    data: Any
    coverage: float
    position: int
    labels: Any = None

    def __iter__(self) -> Any:
        if self.labels is None:
            self.owner.flush()
        labels = np.asarray(self.labels)
        n_covered = self.owner._sampler.n_covered_ex
        covered_true = self.raw[labels, :][:n_covered]
        covered_false = self.raw[np.logical_not(labels), :][:n_covered]
        yield from (
            covered_true,
            covered_false,
            labels.astype(int),
            self.data,
            self.coverage,
            self.position,
        )


@dataclass
class _Counter:
    calls: int = 0
    rows: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _unique_rows(rows: FloatArray) -> tuple[FloatArray, Any]:
    """The distinct rows (NaN equal to NaN) and, per input row, its index among them."""
    if rows.shape[0] < 2:
        return rows, np.arange(rows.shape[0])
    keyed = np.where(np.isnan(rows), np.inf, rows)  # NaN never equals itself; inf does
    _, first, inverse = np.unique(keyed, axis=0, return_index=True, return_inverse=True)
    return rows[first], np.asarray(inverse).reshape(-1)


class TabularExplainer:
    """Anchors and SHAP attributions for rows of the model's encoded input."""

    def __init__(
        self, reference: Reference, predict: Predict, config: ExplainerConfig | None = None
    ) -> None:
        self.reference = reference
        self.schema = reference.schema
        self.config = config or ExplainerConfig()
        self.space = ExplanationSpace(self.schema)
        self.reasons = ReasonCoder(self.schema, reference.features)
        self._predict = predict
        self._counter = _Counter()
        self._lock = threading.Lock()  # alibi's anchor search keeps state on the explainer
        self._anchor: Any = None
        self._alibi_shap: Any = None
        self.shap_backend: str | None = None
        rng = np.random.default_rng(self.config.seed)
        take = min(self.config.shap_background, reference.rows)
        self.background = reference.features[np.sort(rng.choice(reference.rows, take, False))]
        self._fitted = False

    # ------------------------------------------------------------------------ the black box
    def predict_scores(self, matrix: FloatArray) -> FloatArray:
        """Fraud probabilities of model-space rows. Identical rows are sent once (perturbation
        methods repeat many rows: a feature replaced by the value it already had); the counter
        records the rows the predictor really scored."""
        rows = np.atleast_2d(np.asarray(matrix, dtype=np.float64))
        unique, inverse = _unique_rows(rows)
        scores = np.asarray(self._predict(unique), dtype=np.float64).reshape(-1)
        if scores.shape[0] != unique.shape[0]:
            raise ValueError(f"the model returned {scores.shape[0]} scores for {unique.shape[0]}")
        with self._counter.lock:
            self._counter.calls += 1
            self._counter.rows += unique.shape[0]
        return np.asarray(scores[inverse], dtype=np.float64)

    def _space_labels(self, matrix: FloatArray) -> Any:
        scores = self.predict_scores(self.space.to_model(np.asarray(matrix, dtype=np.float64)))
        return (scores >= self.config.threshold).astype(np.int64)

    def _space_proba(self, matrix: FloatArray) -> FloatArray:
        scores = self.predict_scores(self.space.to_model(np.asarray(matrix, dtype=np.float64)))
        return np.column_stack([1.0 - scores, scores])

    # ------------------------------------------------------------------------------- fitting
    def fit(self) -> TabularExplainer:
        """Fit the configured methods on the reference data (needs no predictor call for
        anchors; SHAP's base value is computed per explanation)."""
        if "anchor" in self.config.methods:
            explainers: Any = importlib.import_module("alibi.explainers")
            anchor: Any = explainers.AnchorTabular(
                self._space_labels,
                feature_names=self.schema.feature_names,
                categorical_names=self.space.category_map(),
                dtype=np.float64,
                seed=self.config.seed,
            )
            anchor.fit(
                self.space.to_space(self.reference.features),
                disc_perc=self.config.anchor_percentiles,
            )
            anchor.samplers = [_BatchedSampler(s) for s in anchor.samplers]
            self._anchor = anchor
        if "kernel_shap" in self.config.methods:
            self.shap_backend = self._choose_shap_backend()
            if self.shap_backend == "alibi":
                explainers = importlib.import_module("alibi.explainers")
                shap_explainer: Any = explainers.KernelShap(
                    self._space_proba,
                    link="identity",
                    feature_names=self.schema.feature_names,
                    task="classification",
                    seed=self.config.seed,
                )
                shap_explainer.fit(self.space.to_space(self.background))
                self._alibi_shap = shap_explainer
        self._fitted = True
        logger.info(
            "explainer fitted: methods %s, %d reference rows, SHAP backend %s",
            ",".join(self.config.methods),
            self.reference.rows,
            self.shap_backend,
        )
        return self

    def _choose_shap_backend(self) -> str:
        has_shap = importlib.util.find_spec("shap") is not None
        backend = self.config.shap_backend
        if backend == "alibi" and not has_shap:
            raise UserError(
                "SHAP backend 'alibi' needs the `shap` package, which this "
                "environment lacks; use --shap_backend numpy"
            )
        if backend == "auto":
            return "alibi" if has_shap else "numpy"
        return backend

    # ---------------------------------------------------------------------------- explaining
    def explain(self, matrix: FloatArray) -> list[dict[str, Any]]:
        """One explanation document per row of ``matrix`` (model space)."""
        if not self._fitted:
            raise RuntimeError("explainer not fitted: call fit() first")
        rows = np.atleast_2d(np.asarray(matrix, dtype=np.float64))
        if rows.shape[1] != self.schema.width:
            raise UserError(
                f"an instance has {rows.shape[1]} values; the model has "
                f"{self.schema.width} features"
            )
        return [self.explain_one(row) for row in rows]

    def explain_one(self, instance: FloatArray) -> dict[str, Any]:
        started = time.perf_counter()
        with self._counter.lock:
            calls_before, rows_before = self._counter.calls, self._counter.rows
        x = np.asarray(instance, dtype=np.float64).reshape(-1)
        score = float(self.predict_scores(x[None, :])[0])
        is_positive = score >= self.config.threshold
        hints = self.schema.monitoring
        out: dict[str, Any] = {
            "score": score,
            "label": hints.positive_class if is_positive else hints.negative_class,
            "threshold": self.config.threshold,
            "anchor": None,
            "attributions": None,
        }
        contributions: FloatArray | None = None
        if "kernel_shap" in self.config.methods:
            out["attributions"], contributions = self._shap(x)
        anchor_features: list[int] = []
        if self._anchor is not None:
            candidates = self._candidates(x, contributions)
            out["anchor"], anchor_features = self._anchor_rule(x, is_positive, candidates)
        reasons = self.reasons.reasons(
            x, contributions, order=anchor_features, top_k=self.config.top_k
        )
        out["reason_codes"] = [r.to_dict() for r in reasons]
        out["reasons"] = [r.text for r in reasons]
        with self._counter.lock:
            out["predictor_calls"] = self._counter.calls - calls_before
            out["predictor_rows"] = self._counter.rows - rows_before
        out["seconds"] = round(time.perf_counter() - started, 4)
        return out

    def _shap(self, x: FloatArray) -> tuple[dict[str, Any], FloatArray]:
        if self._alibi_shap is not None:
            explanation = self._alibi_shap.explain(
                self.space.to_space(x[None, :]), nsamples=self.config.shap_nsamples
            )
            values = np.asarray(explanation.shap_values[1], dtype=np.float64).reshape(-1)
            base = float(np.asarray(explanation.expected_value)[1])
            method, exact = "kernel_shap (alibi)", False
        else:
            result = kernel_shap(
                self.predict_scores,
                x,
                self.background,
                nsamples=self.config.shap_nsamples,
                seed=self.config.seed,
            )
            values, base, exact = result.values, result.base_value, result.exact
            method = "kernel_shap (numpy)"
        order = np.argsort(-np.abs(values), kind="stable")
        limit = self.config.max_attributions or len(order)
        listed = [
            {
                "feature": self.schema.features[j].name,
                "value": self.schema.features[j].describe(float(x[j])),
                "contribution": float(values[j]),
            }
            for j in order[:limit]
            if values[j] != 0.0
        ]
        document = {"method": method, "base_value": base, "exact": exact, "values": listed}
        return document, values

    def _candidates(self, x: FloatArray, contributions: FloatArray | None) -> set[int] | None:
        """The features the anchor search may use: the ``anchor_candidates`` most influential."""
        limit = self.config.anchor_candidates
        if limit == 0 or limit >= self.schema.width:
            return None
        influence = np.abs(contributions) if contributions is not None else self._sensitivity(x)
        ranked = np.argsort(-influence, kind="stable")
        return {int(j) for j in ranked[:limit] if influence[j] > 0} or {int(ranked[0])}

    def _sensitivity(self, x: FloatArray) -> FloatArray:
        """Mean absolute score change when one feature takes a background row's value, per
        feature: one predictor call of ``features x background`` rows."""
        width, rows = self.schema.width, self.background.shape[0]
        probes = np.repeat(x[None, :], width * rows, axis=0)
        for j in range(width):
            probes[j * rows : (j + 1) * rows, j] = self.background[:, j]
        scores = self.predict_scores(np.vstack([x[None, :], probes]))
        changes = np.abs(scores[1:] - scores[0]).reshape(width, rows)
        return np.asarray(changes.mean(axis=1), dtype=np.float64)

    def _anchor_rule(
        self, x: FloatArray, is_positive: bool, candidates: set[int] | None
    ) -> tuple[dict[str, Any], list[int]]:
        cfg = self.config
        with self._lock:  # alibi keeps the instance's lookups on the explainer
            for sampler in self._anchor.samplers:
                sampler.allowed = candidates
            # Alibi samples from numpy's global generator: reseeding makes an instance's
            # explanation the same every time it is asked for.
            np.random.seed(cfg.seed)
            explanation = self._anchor.explain(
                self.space.to_space(x[None, :])[0],
                threshold=cfg.anchor_precision,
                batch_size=cfg.anchor_batch_size,
                coverage_samples=cfg.anchor_coverage_samples,
                beam_size=cfg.anchor_beam_size,
                max_anchor_size=cfg.anchor_max_size,
            )
        predicates = [_SENTINEL_TEXT.sub("missing", p) for p in explanation.anchor]
        features = [int(j) for j in explanation.data["raw"]["feature"]]
        hints = self.schema.monitoring
        outcome = hints.positive_class if is_positive else hints.negative_class
        rule = (
            f"IF {' AND '.join(predicates)} THEN {outcome}"
            if predicates
            else (f"{outcome} whatever the features (no anchor needed)")
        )
        document = {
            "rule": rule,
            "predicates": predicates,
            "features": [self.schema.features[j].name for j in features],
            "precision": float(np.asarray(explanation.precision).reshape(-1)[0]),
            "coverage": float(explanation.coverage),
        }
        return document, features
