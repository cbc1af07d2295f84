"""How good a binary score is: ranking, review budget, money, calibration, per subgroup.

The evaluation protocol of every binary family (fraud: is this payment fraud; churn: will this
customer stop ordering). Every metric is computed here with numpy (no scikit-learn at run time),
with scikit-learn's definitions so numbers compare with published ones:

* ROC-AUC: the probability that a random positive scores above a random negative (ties count one
  half).
* AUPRC: average precision, ``sum_n (R_n - R_{n-1}) P_n`` over the distinct score thresholds —
  the step-wise area the ULB data set's authors recommend, not a trapezoid.
* Recall at a fixed review rate: the share of positives among the top ``review_rate`` of rows by
  score, i.e. what a team that can look at 1% of payments (or call 10% of customers) would catch.
* Expected cost in taka: a missed positive costs its amount (a fraud's payment, a churner's
  value), a false alarm costs a stated review, friction or voucher cost. The threshold that
  minimises it is chosen on validation data (:func:`cost_optimal_threshold`) and then applied,
  unchanged, to the test data.
* Brier score and expected calibration error (10 equal-width bins), with the reliability curve.
* Per subgroup (a fraud pattern): each group's positives against every negative.

:func:`plots` draws the PR, ROC and calibration curves as PNG and as self-contained HTML (the PNG
inlined as base64: no network). :func:`roc_points` and :func:`confusion_matrix_data` return plain
lists in the shapes KFP's ``ClassificationMetrics.log_roc_curve`` and ``log_confusion_matrix``
take; KFP itself is imported by the pipeline components, not here.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from getit_ml.errors import UserError

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

#: What a false alarm costs, in taka: an analyst's review (about ten minutes) plus the friction
#: of a held checkout (some customers abandon). A business assumption: callers pass their own.
DEFAULT_FALSE_ALARM_COST_BDT: Final = 100.0
DEFAULT_REVIEW_RATE: Final = 0.01
CALIBRATION_BINS: Final = 10
#: Categories of the confusion matrix, in the order of its rows (actual) and columns (predicted),
#: unless a family names its own classes.
CLASSES: Final = ("negative", "positive")


# ------------------------------------------------------------------------------ inputs
def _as_arrays(
    y_true: npt.ArrayLike, scores: npt.ArrayLike
) -> tuple[npt.NDArray[np.bool_], FloatArray]:
    y = np.asarray(y_true, dtype=np.float64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise UserError(f"labels ({y.size}) and scores ({s.size}) differ in length")
    if y.size == 0:
        raise UserError("no rows to evaluate")
    if not np.isin(y, (0.0, 1.0)).all():
        raise UserError("labels must be 0/1 (or booleans)")
    if not np.isfinite(s).all():
        raise UserError("scores contain NaN or infinite values")
    return y.astype(bool), s


def _descending(
    y: npt.NDArray[np.bool_], s: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, npt.NDArray[np.intp]]:
    """Cumulative true and false positives at each distinct threshold, highest score first.

    Returns ``(thresholds, tp, fp, last)``: flagging every payment with score >= thresholds[i]
    flags ``tp[i]`` frauds and ``fp[i]`` genuine payments; ``last[i]`` is the position (in the
    descending order) of the last payment flagged.
    """
    order = np.argsort(-s, kind="mergesort")
    s_sorted = s[order]
    y_sorted = y[order].astype(np.float64)
    # Ties flag together: a threshold sits at the last position of each run of equal scores.
    last = np.flatnonzero(np.r_[s_sorted[1:] != s_sorted[:-1], True])
    tp = np.cumsum(y_sorted)[last]
    fp = (last + 1) - tp
    return s_sorted[last], tp, fp.astype(np.float64), last


# ------------------------------------------------------------------------------ metrics
def roc_auc(y_true: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """Area under the ROC curve (Mann-Whitney U with midranks for ties)."""
    y, s = _as_arrays(y_true, scores)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise UserError("ROC-AUC needs both classes")
    order = np.argsort(s, kind="mergesort")
    s_sorted = s[order]
    ranks = np.empty(y.size, dtype=np.float64)
    # Midranks: each run of equal scores gets the mean of the ranks it spans.
    starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])
    ends = np.r_[starts[1:], y.size]
    run_rank = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(run_rank, ends - starts)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def average_precision(y_true: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """AUPRC as average precision (scikit-learn's ``average_precision_score``)."""
    y, s = _as_arrays(y_true, scores)
    n_pos = float(y.sum())
    if n_pos == 0:
        raise UserError("average precision needs at least one positive")
    _, tp, fp, _ = _descending(y, s)
    precision = tp / (tp + fp)
    recall = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


@dataclass(frozen=True)
class Curve:
    """A curve as arrays: ``x`` and ``y`` per threshold (ROC: fpr/tpr; PR: recall/precision)."""

    x: FloatArray
    y: FloatArray
    thresholds: FloatArray


def _flag_nothing_threshold(s: FloatArray) -> float:
    # Just above the highest score: flags nothing, yet is a finite number (JSON, KFP).
    return float(np.nextafter(s.max(), np.inf))


def roc_curve(y_true: npt.ArrayLike, scores: npt.ArrayLike) -> Curve:
    """False and true positive rates at every distinct threshold, starting at (0, 0)."""
    y, s = _as_arrays(y_true, scores)
    n_pos = float(y.sum())
    n_neg = float(y.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        raise UserError("a ROC curve needs both classes")
    thresholds, tp, fp, _ = _descending(y, s)
    return Curve(
        x=np.r_[0.0, fp / n_neg],
        y=np.r_[0.0, tp / n_pos],
        thresholds=np.r_[_flag_nothing_threshold(s), thresholds],
    )


def precision_recall_curve(y_true: npt.ArrayLike, scores: npt.ArrayLike) -> Curve:
    """Recall (x) and precision (y) at every distinct threshold, from the highest score down."""
    y, s = _as_arrays(y_true, scores)
    n_pos = float(y.sum())
    if n_pos == 0:
        raise UserError("a precision-recall curve needs at least one positive")
    thresholds, tp, fp, _ = _descending(y, s)
    return Curve(x=tp / n_pos, y=tp / (tp + fp), thresholds=thresholds)


@dataclass(frozen=True)
class ReviewBudget:
    """What reviewing the top ``rate`` of payments by score catches."""

    rate: float
    reviewed: int
    recall: float
    precision: float


def recall_at_review_rate(
    y_true: npt.ArrayLike, scores: npt.ArrayLike, rate: float = DEFAULT_REVIEW_RATE
) -> ReviewBudget:
    """Recall and precision when the ``ceil(rate * n)`` highest-scored payments are reviewed.

    The budget is a count: payments tied at its edge are taken in their given order, so the
    count is exactly the budget.
    """
    if not 0 < rate <= 1:
        raise UserError(f"review rate must be in (0, 1], got {rate}")
    y, s = _as_arrays(y_true, scores)
    n_pos = int(y.sum())
    if n_pos == 0:
        raise UserError("recall needs at least one positive")
    k = max(1, math.ceil(rate * y.size - 1e-9))
    top = np.argsort(-s, kind="mergesort")[:k]
    caught = int(y[top].sum())
    return ReviewBudget(rate=rate, reviewed=k, recall=caught / n_pos, precision=caught / k)


@dataclass(frozen=True)
class CostThreshold:
    """A score threshold (flag payments with score >= threshold) and its cost on some data."""

    threshold: float
    expected_cost_bdt: float
    flagged: int


def _check_amounts(amounts_bdt: npt.ArrayLike, size: int) -> FloatArray:
    amounts = np.asarray(amounts_bdt, dtype=np.float64).ravel()
    if amounts.shape != (size,):
        raise UserError(f"amounts ({amounts.size}) and labels ({size}) differ in length")
    if not np.isfinite(amounts).all() or (amounts < 0).any():
        raise UserError("amounts must be finite and non-negative")
    return amounts


def cost_curve(
    y_true: npt.ArrayLike,
    scores: npt.ArrayLike,
    amounts_bdt: npt.ArrayLike,
    cost_fp_bdt: float = DEFAULT_FALSE_ALARM_COST_BDT,
) -> Curve:
    """Total cost (y, taka) against the number flagged (x) at every threshold, flag-nothing
    first. Cost = amounts of the frauds not flagged + ``cost_fp_bdt`` per genuine flagged."""
    if cost_fp_bdt < 0:
        raise UserError(f"the false-alarm cost must be non-negative, got {cost_fp_bdt}")
    y, s = _as_arrays(y_true, scores)
    amounts = _check_amounts(amounts_bdt, y.size)
    order = np.argsort(-s, kind="mergesort")
    fraud_amount = np.where(y, amounts, 0.0)[order]
    thresholds, _, fp, last = _descending(y, s)
    caught = np.cumsum(fraud_amount)[last]
    missed = fraud_amount.sum() - caught
    cost = missed + cost_fp_bdt * fp
    return Curve(
        x=np.r_[0.0, last + 1.0],
        y=np.r_[fraud_amount.sum(), cost],
        thresholds=np.r_[_flag_nothing_threshold(s), thresholds],
    )


def cost_at_threshold(
    y_true: npt.ArrayLike,
    scores: npt.ArrayLike,
    amounts_bdt: npt.ArrayLike,
    threshold: float,
    cost_fp_bdt: float = DEFAULT_FALSE_ALARM_COST_BDT,
) -> CostThreshold:
    """The cost of flagging every payment with score >= ``threshold``."""
    y, s = _as_arrays(y_true, scores)
    amounts = _check_amounts(amounts_bdt, y.size)
    flagged = s >= threshold
    cost = float(amounts[y & ~flagged].sum() + cost_fp_bdt * np.sum(~y & flagged))
    return CostThreshold(float(threshold), cost, int(flagged.sum()))


def cost_optimal_threshold(
    y_true: npt.ArrayLike,
    scores: npt.ArrayLike,
    amounts_bdt: npt.ArrayLike,
    cost_fp_bdt: float = DEFAULT_FALSE_ALARM_COST_BDT,
) -> CostThreshold:
    """The threshold with the lowest total cost on this data (choose it on validation data).

    Of equally cheap cuts the one flagging fewest wins (fewer customers held for the same
    money). Every threshold between the lowest score flagged and the next score below flags the
    same payments; the midpoint is returned, not the lowest flagged score itself: that edge is a
    property of this sample, and new data scattered around it would fall half below.
    """
    curve = cost_curve(y_true, scores, amounts_bdt, cost_fp_bdt)
    best = int(np.argmin(curve.y))  # the first minimum = the fewest flagged
    threshold = float(curve.thresholds[best])
    if 0 < best < curve.thresholds.size - 1:
        threshold = float((curve.thresholds[best] + curve.thresholds[best + 1]) / 2.0)
    return CostThreshold(threshold, float(curve.y[best]), int(curve.x[best]))


def brier_score(y_true: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    y, s = _as_arrays(y_true, scores)
    return float(np.mean((s - y) ** 2))


@dataclass(frozen=True)
class Calibration:
    """Reliability curve over equal-width score bins (empty bins left out)."""

    bin_edges: FloatArray
    mean_score: FloatArray
    positive_rate: FloatArray
    count: npt.NDArray[np.int64]
    #: Expected calibration error: sum over bins of (share of rows) * |positive rate - mean
    #: score|.
    ece: float


def calibration(
    y_true: npt.ArrayLike, scores: npt.ArrayLike, bins: int = CALIBRATION_BINS
) -> Calibration:
    """Calibration of scores in [0, 1] (probabilities) against outcomes."""
    y, s = _as_arrays(y_true, scores)
    if (s < 0).any() or (s > 1).any():
        raise UserError("calibration needs scores in [0, 1]")
    edges = np.linspace(0.0, 1.0, bins + 1)
    # A score of exactly 1.0 belongs to the last bin, not to a bin of its own.
    index = np.minimum(np.searchsorted(edges, s, side="right") - 1, bins - 1)
    count = np.bincount(index, minlength=bins)
    score_sum = np.bincount(index, weights=s, minlength=bins)
    positive_sum = np.bincount(index, weights=y.astype(np.float64), minlength=bins)
    used = count > 0
    mean_score = score_sum[used] / count[used]
    positive_rate = positive_sum[used] / count[used]
    ece = float(np.sum(count[used] / y.size * np.abs(positive_rate - mean_score)))
    return Calibration(edges, mean_score, positive_rate, count[used].astype(np.int64), ece)


@dataclass(frozen=True)
class PatternMetrics:
    """One subgroup's positives (a fraud pattern) against every negative."""

    pattern: str
    positives: int
    auprc: float
    recall_at_threshold: float


def per_pattern_metrics(
    y_true: npt.ArrayLike,
    scores: npt.ArrayLike,
    patterns: npt.ArrayLike,
    threshold: float,
) -> list[PatternMetrics]:
    """AUPRC of each pattern's positives against every negative row, and the share of them the
    threshold flags. Patterns are strings on positive rows (None/NaN on negative ones); a
    pattern absent from this data is not listed."""
    y, s = _as_arrays(y_true, scores)
    raw = np.asarray(patterns, dtype=object).ravel()
    if raw.shape != y.shape:
        raise UserError(f"patterns ({raw.size}) and labels ({y.size}) differ in length")
    names = np.array([p if isinstance(p, str) else "" for p in raw], dtype=object)
    genuine = ~y
    out: list[PatternMetrics] = []
    for pattern in sorted({str(p) for p in names[y] if p}):
        mine = y & (names == pattern)
        rows = genuine | mine
        out.append(
            PatternMetrics(
                pattern=pattern,
                positives=int(mine.sum()),
                auprc=average_precision(mine[rows], s[rows]),
                recall_at_threshold=float(np.mean(s[mine] >= threshold)),
            )
        )
    unlabelled = int(np.sum(y & (names == "")))
    if unlabelled:
        logger.info("per-pattern metrics: %d positive rows carry no pattern", unlabelled)
    return out


# ------------------------------------------------------------------------------ evaluation
@dataclass(frozen=True)
class ConfusionMatrix:
    """Counts at the threshold; rows are the actual class, columns the predicted one."""

    true_negative: int
    false_positive: int
    false_negative: int
    true_positive: int

    def rows(self) -> list[list[int]]:
        return [
            [self.true_negative, self.false_positive],
            [self.false_negative, self.true_positive],
        ]


@dataclass(frozen=True)
class Evaluation:
    """Every figure of one scored data set, plus the curves for plots and KFP."""

    rows: int
    positives: int
    roc_auc: float
    auprc: float
    review: ReviewBudget
    threshold: float
    #: "given" (chosen elsewhere, e.g. on validation) or "chosen on this data".
    threshold_source: str
    cost_fp_bdt: float
    expected_cost_bdt: float
    #: The cost of flagging nothing (every positive's amount lost): what the model saves money
    #: from.
    cost_without_model_bdt: float
    #: The lowest cost any threshold reaches on this data (hindsight, for reference).
    best_possible_cost_bdt: float
    confusion: ConfusionMatrix
    brier: float
    calibration: Calibration
    roc: Curve
    pr: Curve
    per_pattern: list[PatternMetrics] = field(default_factory=list)

    @property
    def prevalence(self) -> float:
        return self.positives / self.rows

    @property
    def precision_at_threshold(self) -> float:
        flagged = self.confusion.true_positive + self.confusion.false_positive
        return self.confusion.true_positive / flagged if flagged else 0.0

    @property
    def recall_at_threshold(self) -> float:
        return self.confusion.true_positive / self.positives

    def scalar_metrics(self) -> dict[str, float]:
        """Named numbers, ready for KFP ``Metrics.log_metric`` or MLflow ``log_metrics``."""
        metrics = {
            "rows": float(self.rows),
            "positives": float(self.positives),
            "prevalence": self.prevalence,
            "roc_auc": self.roc_auc,
            "auprc": self.auprc,
            "review_rate": self.review.rate,
            "recall_at_review_rate": self.review.recall,
            "precision_at_review_rate": self.review.precision,
            "threshold": self.threshold,
            "precision_at_threshold": self.precision_at_threshold,
            "recall_at_threshold": self.recall_at_threshold,
            "expected_cost_bdt": self.expected_cost_bdt,
            "expected_cost_per_row_bdt": self.expected_cost_bdt / self.rows,
            "cost_without_model_bdt": self.cost_without_model_bdt,
            "cost_saved_bdt": self.cost_without_model_bdt - self.expected_cost_bdt,
            "best_possible_cost_bdt": self.best_possible_cost_bdt,
            "false_alarm_cost_bdt": self.cost_fp_bdt,
            "brier": self.brier,
            "ece": self.calibration.ece,
        }
        for p in self.per_pattern:
            metrics[f"auprc_{p.pattern}"] = p.auprc
            metrics[f"recall_at_threshold_{p.pattern}"] = p.recall_at_threshold
        return metrics


#: Whether more is better (``maximize``) or worse (``minimize``) for each figure of
#: :meth:`Evaluation.scalar_metrics` that ranks models; counts, rates of the data and the
#: operating point's inputs have no direction. Per-pattern figures follow their base name.
METRIC_DIRECTIONS: Final[dict[str, str]] = {
    "roc_auc": "maximize",
    "auprc": "maximize",
    "recall_at_review_rate": "maximize",
    "precision_at_review_rate": "maximize",
    "precision_at_threshold": "maximize",
    "recall_at_threshold": "maximize",
    "expected_cost_bdt": "minimize",
    "expected_cost_per_row_bdt": "minimize",
    "cost_saved_bdt": "maximize",
    "brier": "minimize",
    "ece": "minimize",
}


def metric_direction(name: str) -> str | None:
    """The direction of a scalar metric (``auprc_card_testing`` as ``auprc``), None for a
    descriptive figure."""
    if name in METRIC_DIRECTIONS:
        return METRIC_DIRECTIONS[name]
    for base in ("auprc", "recall_at_threshold"):
        if name.startswith(f"{base}_") and name.removeprefix(f"{base}_") not in METRIC_DIRECTIONS:
            return METRIC_DIRECTIONS[base]
    return None


def evaluate(
    y_true: npt.ArrayLike,
    scores: npt.ArrayLike,
    amounts_bdt: npt.ArrayLike,
    *,
    review_rate: float = DEFAULT_REVIEW_RATE,
    cost_fp_bdt: float = DEFAULT_FALSE_ALARM_COST_BDT,
    threshold: float | None = None,
    patterns: npt.ArrayLike | None = None,
    calibration_bins: int = CALIBRATION_BINS,
) -> Evaluation:
    """Evaluate scores (probabilities of the positive class) against labels.

    ``threshold`` should be the one :func:`cost_optimal_threshold` chose on validation data;
    without it the cost-optimal threshold of THIS data is used (and ``threshold_source`` says
    so: a number tuned on the data it is reported on flatters the model).
    """
    y, s = _as_arrays(y_true, scores)
    amounts = _check_amounts(amounts_bdt, y.size)
    positives = int(y.sum())
    if positives == 0 or positives == y.size:
        raise UserError(
            f"evaluation needs positive and negative rows ({positives} of {y.size} positive)"
        )
    best = cost_optimal_threshold(y, s, amounts, cost_fp_bdt)
    source = "given"
    if threshold is None:
        threshold, source = best.threshold, "chosen on this data"
    at = cost_at_threshold(y, s, amounts, threshold, cost_fp_bdt)
    flagged = s >= threshold
    confusion = ConfusionMatrix(
        true_negative=int(np.sum(~y & ~flagged)),
        false_positive=int(np.sum(~y & flagged)),
        false_negative=int(np.sum(y & ~flagged)),
        true_positive=int(np.sum(y & flagged)),
    )
    return Evaluation(
        rows=int(y.size),
        positives=positives,
        roc_auc=roc_auc(y, s),
        auprc=average_precision(y, s),
        review=recall_at_review_rate(y, s, review_rate),
        threshold=float(threshold),
        threshold_source=source,
        cost_fp_bdt=float(cost_fp_bdt),
        expected_cost_bdt=at.expected_cost_bdt,
        cost_without_model_bdt=float(amounts[y].sum()),
        best_possible_cost_bdt=best.expected_cost_bdt,
        confusion=confusion,
        brier=brier_score(y, s),
        calibration=calibration(y, s, calibration_bins),
        roc=roc_curve(y, s),
        pr=precision_recall_curve(y, s),
        per_pattern=[] if patterns is None else per_pattern_metrics(y, s, patterns, threshold),
    )


# ------------------------------------------------------------------------------ KFP shapes
def _thin(size: int, max_points: int) -> npt.NDArray[np.intp]:
    """At most ``max_points`` evenly spaced indices of ``range(size)``, ends included."""
    if size <= max_points:
        return np.arange(size)
    return np.unique(np.linspace(0, size - 1, max_points).round().astype(np.intp))


def roc_points(
    evaluation: Evaluation, max_points: int = 200
) -> tuple[list[float], list[float], list[float]]:
    """``(fpr, tpr, thresholds)`` for ``ClassificationMetrics.log_roc_curve``, thinned to at most
    ``max_points`` (a UI needs no more; a metadata store should not get 100k rows)."""
    keep = _thin(evaluation.roc.x.size, max(2, max_points))
    return (
        evaluation.roc.x[keep].tolist(),
        evaluation.roc.y[keep].tolist(),
        evaluation.roc.thresholds[keep].tolist(),
    )


def confusion_matrix_data(
    evaluation: Evaluation, classes: tuple[str, str] = CLASSES
) -> tuple[list[str], list[list[int]]]:
    """``(categories, matrix)`` for ``ClassificationMetrics.log_confusion_matrix``: negative
    class first, as in the matrix's rows."""
    return list(classes), evaluation.confusion.rows()


# ------------------------------------------------------------------------------ plots
@dataclass(frozen=True)
class PlotFiles:
    """Each plot as a PNG and as a self-contained HTML page."""

    png: dict[str, Path]
    html: dict[str, Path]


def _figure_png(draw: Any, title: str) -> bytes:
    # The object-oriented API with the Agg canvas: no pyplot global state, no display needed.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.5, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    draw(axes)
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _html_page(title: str, png: bytes, facts: Mapping[str, str]) -> str:
    rows = "\n".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in facts.items()
    )
    data = base64.b64encode(png).decode("ascii")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:1.5em}}th{{text-align:left;padding-right:1em}}</style>
</head><body>
<h2>{html.escape(title)}</h2>
<img alt="{html.escape(title)}" src="data:image/png;base64,{data}">
<table>
{rows}
</table>
</body></html>
"""


def plots(evaluation: Evaluation, out_dir: Path, positive_class: str = "positive") -> PlotFiles:
    """Write ``pr``, ``roc`` and ``calibration`` as ``<name>.png`` and ``<name>.html``."""
    e = evaluation
    operating_recall = e.recall_at_threshold
    operating_precision = e.precision_at_threshold
    fpr_at_threshold = e.confusion.false_positive / max(1, e.rows - e.positives)

    def draw_pr(axes: Any) -> None:
        # Precision P_n holds on (R_{n-1}, R_n]: the steps whose area is the average precision.
        recall, precision = np.r_[0.0, e.pr.x], np.r_[e.pr.y[0], e.pr.y]
        axes.step(recall, precision, where="pre", label=f"model (AUPRC {e.auprc:.3f})")
        axes.axhline(e.prevalence, linestyle="--", color="grey", label="no skill")
        axes.plot([operating_recall], [operating_precision], "o", color="crimson",
                  label=f"threshold {e.threshold:.3g}")  # fmt: skip
        axes.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
        axes.legend(loc="lower left")

    def draw_roc(axes: Any) -> None:
        axes.plot(e.roc.x, e.roc.y, label=f"model (ROC-AUC {e.roc_auc:.3f})")
        axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="no skill")
        axes.plot([fpr_at_threshold], [operating_recall], "o", color="crimson",
                  label=f"threshold {e.threshold:.3g}")  # fmt: skip
        axes.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1),
                 ylim=(0, 1.02))  # fmt: skip
        axes.legend(loc="lower right")

    def draw_calibration(axes: Any) -> None:
        c = e.calibration
        axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
        axes.plot(c.mean_score, c.positive_rate, "o-", label=f"model (ECE {c.ece:.3f})")
        axes.set(xlabel="mean predicted probability", ylabel=f"observed {positive_class} rate",
                 xlim=(0, 1), ylim=(0, 1.02))  # fmt: skip
        axes.legend(loc="upper left")

    facts = {
        "rows": f"{e.rows:,}",
        positive_class: f"{e.positives:,} ({e.prevalence:.3%})",
        "ROC-AUC": f"{e.roc_auc:.4f}",
        "AUPRC": f"{e.auprc:.4f}",
        f"recall at {e.review.rate:.1%} reviewed": f"{e.review.recall:.3f}",
        "threshold": f"{e.threshold:.4g} ({e.threshold_source})",
        "expected cost": f"{e.expected_cost_bdt:,.0f} BDT (no model: "
        f"{e.cost_without_model_bdt:,.0f} BDT)",
        "Brier / ECE": f"{e.brier:.4f} / {e.calibration.ece:.4f}",
    }
    for p in e.per_pattern:
        facts[f"AUPRC {p.pattern}"] = f"{p.auprc:.3f} ({p.positives} {positive_class})"
    drawings = {
        "pr": (draw_pr, "Precision-recall"),
        "roc": (draw_roc, "ROC"),
        "calibration": (draw_calibration, "Calibration"),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    pngs: dict[str, Path] = {}
    pages: dict[str, Path] = {}
    for name, (draw, title) in drawings.items():
        png = _figure_png(draw, title)
        pngs[name] = out_dir / f"{name}.png"
        pngs[name].write_bytes(png)
        pages[name] = out_dir / f"{name}.html"
        pages[name].write_text(_html_page(title, png, facts), encoding="utf-8")
    return PlotFiles(pngs, pages)
