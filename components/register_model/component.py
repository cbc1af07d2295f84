"""register_model: MLflow version with lineage; champion only if it beats the champion."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Model, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def register_model(
    family: str,
    model: Input[Model],
    evaluation: Input[Artifact],
    training_set: Input[Dataset],
    snapshot_id: str,
    pipeline_run_id: str,
    decision: Output[Markdown],
    model_name: str = "",
    experiment: str = "",
    code_version: str = "",
    tracking_uri: str = "",
    promotion_metric: str = "",
    promotion_margin: float = 0.005,
) -> str:
    """Register the model as a new version of ``model_name`` (empty: the family's name; alias
    ``challenger``) with its metrics, plots, sha256 and lineage (data snapshot, feature service,
    pipeline run, code version); promote it to ``champion`` only if it beats the current
    champion, re-scored by the family on this run's held-out test set, by ``promotion_margin``
    on ``promotion_metric`` (empty: the family's, as the evaluation names it; its direction is
    the evaluation's). The decision and its reason are written to ``decision`` and tagged on the
    version. Returns the version.

    ``tracking_uri`` empty: the registry the settings name (``GETIT_ML_MLFLOW_TRACKING_URI``,
    else the embedded SQLite registry under ``GETIT_ML_HOME``).
    """
    from pathlib import Path

    import getit_ml
    from getit_ml.families import get_family
    from getit_ml.registry.mlflow_registry import Lineage, RegistryConfig
    from getit_ml.registry.registration import register_and_promote, render_decision
    from getit_ml.settings import load_settings

    settings = load_settings()
    trainer = get_family(family).trainer
    config = (
        RegistryConfig.from_uri(tracking_uri, settings.mlflow_artifact_location)
        if tracking_uri
        else RegistryConfig.from_settings(settings)
    )
    training_dir = Path(training_set.path)
    result = register_and_promote(
        config,
        name=model_name or family,
        model_dir=Path(model.path),
        evaluation_dir=Path(evaluation.path),
        lineage=Lineage(
            data_snapshot=snapshot_id,
            feature_service=trainer.feature_service,
            pipeline_run_id=pipeline_run_id,
            code_version=code_version or getit_ml.__version__,
        ),
        params={**model.metadata, "family": family, "promotion_margin": promotion_margin},
        experiment=experiment or f"{family}-training",
        rescore=lambda champion, metric: trainer.rescore(champion, training_dir, metric),
        margin=promotion_margin,
        metric=promotion_metric or None,
        run_name=pipeline_run_id,
    )
    Path(decision.path).write_text(render_decision(result), encoding="utf-8")
    decision.metadata.update(
        {
            "version": result.registered.version,
            "promoted": result.decision.promoted,
            "reason": result.decision.reason,
        }
    )
    return result.registered.version
