"""evaluate_model: the family's held-out figures with their directions, plots for the UI."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def evaluate_model(
    family: str,
    training_set: Input[Dataset],
    model: Input[Model],
    evaluation: Output[Artifact],
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
    plots: Output[HTML],
    options: dict = {},  # noqa: B006 - KFP reads the default from the signature
) -> float:
    """Score the validation and test parts with the saved model, as the family evaluates.

    A binary family (fraud, churn) chooses the threshold that minimises the expected cost in
    taka on validation (``options``: ``review_rate``, ``false_alarm_cost_bdt``) and reports the
    test part at it: ROC-AUC, AUPRC, recall at the review rate, expected cost, Brier score and
    calibration error (per fraud pattern too), with the ROC curve and the confusion matrix.
    ``evaluation`` holds ``evaluation.json`` (every figure with its direction and the promotion
    metric) and the plots; ``plots`` is one page with all of them. Returns the promotion
    metric's value.
    """
    import html
    from pathlib import Path

    from getit_ml.families import get_family

    folder = Path(evaluation.path)
    report = get_family(family).trainer.evaluate(
        Path(training_set.path), Path(model.path), folder, {k: float(v) for k, v in options.items()}
    )
    for key, value in report.metrics.items():
        metrics.log_metric(key, value)
    if report.roc is not None:
        classification_metrics.log_roc_curve(*report.roc)
    if report.confusion is not None:
        classification_metrics.log_confusion_matrix(*report.confusion)
    pages = [page.read_text(encoding="utf-8") for page in report.plots.values()]
    bodies = [p[p.find("<body>") + 6 : p.rfind("</body>")] if "<body>" in p else p for p in pages]
    title = html.escape(f"{family}: {report.headline}")
    Path(plots.path).write_text(
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"</head><body><h1>{title}</h1>{''.join(bodies)}</body></html>\n",
        encoding="utf-8",
    )
    value = report.metrics[report.promotion_metric]
    evaluation.metadata.update(
        {"family": family, "promotion_metric": report.promotion_metric, "value": value}
    )
    return value
