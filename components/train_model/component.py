"""train_model: the family's model with the tuned parameters, saved for KServe and MLflow."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def train_model(
    family: str,
    training_set: Input[Dataset],
    tuning: Input[Artifact],
    model: Output[Model],
    metrics: Output[Metrics],
    seed: int = 0,
) -> None:
    """Train on the train part with the tuned parameters, stopping early on validation.

    The ``model`` folder is what the family's serving runtime loads; for an XGBoost family:
    ``model.json`` (loadable by KServe's xgbserver and our scorer), ``metadata/
    feature_schema.json`` (the input contract) and an ``MLmodel`` with the signature and an
    input example.
    """
    from pathlib import Path

    from getit_ml.families import get_family
    from getit_ml.training.steps import read_tuned_params

    figures = get_family(family).trainer.train(
        Path(training_set.path),
        Path(model.path),
        params=read_tuned_params(Path(tuning.path)),
        seed=seed,
    )
    for key, value in figures.items():
        metrics.log_metric(key, value)
    model.metadata.update({"family": family, "framework": "xgboost"})
    if "rounds" in figures:
        model.metadata["rounds"] = int(figures["rounds"])
