"""evaluate_model: held-out figures, a cost-optimal threshold, curves for the Kubeflow UI."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def evaluate_model(
    training_set: Input[Dataset],
    model: Input[Model],
    evaluation: Output[Artifact],
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
    pr_curve: Output[HTML],
    roc_curve: Output[HTML],
    calibration_curve: Output[HTML],
    review_rate: float = 0.01,
    false_alarm_cost_bdt: float = 100.0,
) -> float:
    """Score the validation and test parts with the saved model.

    The threshold that minimises the expected cost in taka (missed fraud amounts plus
    ``false_alarm_cost_bdt`` per false alarm) is chosen on validation; the test part is reported
    at it: ROC-AUC, AUPRC, recall at ``review_rate``, expected cost, Brier score and calibration
    error, per fraud pattern too. Returns the test AUPRC.
    """
    import shutil
    from pathlib import Path

    from getit_ml.training.evaluation import confusion_matrix_data, roc_points
    from getit_ml.training.steps import evaluate_step

    folder = Path(evaluation.path)
    report = evaluate_step(
        Path(training_set.path),
        Path(model.path),
        folder,
        review_rate=review_rate,
        cost_fp_bdt=false_alarm_cost_bdt,
    )
    for key, value in report.metrics().items():
        metrics.log_metric(key, value)
    fpr, tpr, thresholds = roc_points(report.test)
    classification_metrics.log_roc_curve(fpr, tpr, thresholds)
    categories, matrix = confusion_matrix_data(report.test)
    classification_metrics.log_confusion_matrix(categories, matrix)
    for name, page in (("pr", pr_curve), ("roc", roc_curve), ("calibration", calibration_curve)):
        shutil.copyfile(folder / f"{name}.html", page.path)
    evaluation.metadata.update(
        {"test_auprc": report.test.auprc, "threshold": report.test.threshold}
    )
    return report.test.auprc
