"""build_training_set: Feast point-in-time join of the model's features, split by time."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def build_training_set(
    data_dir: str,
    snapshot_id: str,
    feature_store: Input[Artifact],
    training_set: Output[Dataset],
    metrics: Output[Metrics],
    feature_service: str = "fraud_scoring_v1",
    validation_fraction: float = 0.15,
    test_fraction: float = 0.15,
) -> None:
    """Join ``feature_service`` for every payment as of the payment's time, split by time.

    The first ``1 - validation_fraction - test_fraction`` of the payments in time order train,
    the next ``validation_fraction`` validate (early stopping, tuning, the decision threshold),
    the last ``test_fraction`` are held out for evaluation and promotion. The folder holds the
    three joined frames as Parquet, ``feature_schema.json`` (fitted on train) and ``split.json``.
    """
    from pathlib import Path

    from getit_ml.settings import load_settings
    from getit_ml.training.steps import build_training_set_step

    train_fraction = 1.0 - validation_fraction - test_fraction
    facts = build_training_set_step(
        load_settings(),
        Path(data_dir),
        Path(feature_store.path),
        Path(training_set.path),
        service=feature_service,
        fractions=(train_fraction, validation_fraction, test_fraction),
        snapshot_id=snapshot_id,
    )
    for key, value in facts.items():
        if isinstance(value, int):
            metrics.log_metric(key, value)
    training_set.metadata.update(
        {"snapshot_id": snapshot_id, "feature_service": feature_service,
         "validation_from": facts["validation_from"], "test_from": facts["test_from"]}
    )  # fmt: skip
