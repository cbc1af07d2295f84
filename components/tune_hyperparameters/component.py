"""tune_hyperparameters: an Optuna study over the family's model, pruned, resumable."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def tune_hyperparameters(
    family: str,
    training_set: Input[Dataset],
    snapshot_id: str,
    tuning: Output[Artifact],
    metrics: Output[Metrics],
    n_trials: int = 20,
    timeout_s: float = 900.0,
    seed: int = 0,
    storage_url: str = "",
    study_name: str = "",
) -> float:
    """Run ``n_trials`` more trials (or until ``timeout_s``) of an Optuna study that maximises
    the family's validation objective (AUPRC for fraud, ROC-AUC for churn); write the best
    parameters as ``tuning`` JSON and return the best validation value.

    The study lives in a database (``storage_url``; empty: SQLite under ``GETIT_ML_HOME``), named
    ``study_name`` (empty: ``<family>-<snapshot id>``), so a run that was interrupted, or re-run
    on the same snapshot, resumes the study instead of starting over.
    """
    from pathlib import Path

    from getit_ml.families import get_family
    from getit_ml.settings import load_settings
    from getit_ml.training.tuning import sqlite_url

    if not storage_url:
        database = load_settings().home / "optuna" / "studies.db"
        database.parent.mkdir(parents=True, exist_ok=True)
        storage_url = sqlite_url(database)
    result = get_family(family).trainer.tune(
        Path(training_set.path),
        Path(tuning.path),
        n_trials=n_trials,
        timeout_s=timeout_s,
        storage_url=storage_url,
        study_name=study_name or f"{family}-{snapshot_id.removeprefix('sha256:')[:16]}",
        seed=seed,
    )
    metrics.log_metric(f"best_{result.get('objective', 'validation_value')}", result["best_value"])
    for key in ("best_rounds", "trials", "trials_this_run", "pruned"):
        if key in result:
            metrics.log_metric(key, result[key])
    tuning.metadata.update({"study_name": result["study_name"], "best_trial": result["best_trial"]})
    return float(result["best_value"])
