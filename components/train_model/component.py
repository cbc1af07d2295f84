"""train_model: XGBoost with the tuned parameters, saved for KServe and MLflow alike."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def train_model(
    training_set: Input[Dataset],
    tuning: Input[Artifact],
    model: Output[Model],
    metrics: Output[Metrics],
    seed: int = 0,
) -> None:
    """Train on the train part with the tuned parameters, stopping early on validation.

    The ``model`` folder holds ``model.json`` (loadable by KServe's xgbserver and our scorer),
    ``metadata/feature_schema.json`` (the input contract) and an ``MLmodel`` with the signature
    and an input example.
    """
    from pathlib import Path

    from getit_ml.training.steps import read_tuned_params, train_step

    figures = train_step(
        Path(training_set.path),
        Path(model.path),
        params=read_tuned_params(Path(tuning.path)),
        seed=seed,
    )
    for key, value in figures.items():
        metrics.log_metric(key, value)
    model.metadata.update({"framework": "xgboost", "rounds": int(figures["rounds"])})
