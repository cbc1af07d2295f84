"""register_model: MLflow version with lineage; champion only if it beats the champion."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Model, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def register_model(
    model: Input[Model],
    evaluation: Input[Artifact],
    training_set: Input[Dataset],
    snapshot_id: str,
    pipeline_run_id: str,
    decision: Output[Markdown],
    model_name: str = "fraud",
    experiment: str = "fraud-training",
    feature_service: str = "fraud_scoring_v1",
    code_version: str = "",
    tracking_uri: str = "",
    promotion_metric: str = "test_auprc",
    promotion_margin: float = 0.005,
) -> str:
    """Register the model as a new version of ``model_name`` (alias ``challenger``) with its
    metrics, plots, sha256 and lineage (data snapshot, feature service, pipeline run, code
    version); promote it to ``champion`` only if it beats the current champion, re-scored on this
    run's held-out test set, by ``promotion_margin`` on ``promotion_metric``. The decision and
    its reason are written to ``decision`` and tagged on the version. Returns the version.

    ``tracking_uri`` empty: the registry the settings name (``GETIT_ML_MLFLOW_TRACKING_URI``,
    else the embedded SQLite registry under ``GETIT_ML_HOME``).
    """
    from pathlib import Path

    import getit_ml
    from getit_ml.registry.mlflow_registry import Lineage, RegistryConfig
    from getit_ml.registry.registration import register_and_promote, render_decision
    from getit_ml.settings import load_settings

    settings = load_settings()
    config = (
        RegistryConfig.from_uri(tracking_uri, settings.mlflow_artifact_location)
        if tracking_uri
        else RegistryConfig.from_settings(settings)
    )
    result = register_and_promote(
        config,
        name=model_name,
        model_dir=Path(model.path),
        evaluation_dir=Path(evaluation.path),
        training_dir=Path(training_set.path),
        lineage=Lineage(
            data_snapshot=snapshot_id,
            feature_service=feature_service,
            pipeline_run_id=pipeline_run_id,
            code_version=code_version or getit_ml.__version__,
        ),
        params={
            **model.metadata,
            "promotion_metric": promotion_metric,
            "promotion_margin": promotion_margin,
        },
        experiment=experiment,
        metric=promotion_metric,
        margin=promotion_margin,
        run_name=pipeline_run_id,
    )
    Path(decision.path).write_text(render_decision(result), encoding="utf-8")
    decision.metadata.update(
        {"version": result.registered.version, "promoted": result.decision.promoted,
         "reason": result.decision.reason}
    )  # fmt: skip
    return result.registered.version
