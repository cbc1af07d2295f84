"""build_training_set: the family's examples joined point-in-time with its features, split."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def build_training_set(
    family: str,
    data_dir: str,
    snapshot_id: str,
    feature_store: Input[Artifact],
    training_set: Output[Dataset],
    metrics: Output[Metrics],
    validation_fraction: float = 0.15,
    test_fraction: float = 0.15,
) -> None:
    """Build ``family``'s examples from ``data_dir``, join its feature service as of each
    example's time, and split them as the family does (by time for fraud and churn).

    The first ``1 - validation_fraction - test_fraction`` train, the next ``validation_fraction``
    validate (early stopping, tuning, the decision threshold), the last ``test_fraction`` are
    held out for evaluation and promotion. The folder holds the three joined frames as Parquet,
    ``feature_schema.json`` (fitted on train) and ``split.json``.
    """
    from pathlib import Path

    from getit_ml.families import get_family
    from getit_ml.settings import load_settings

    trainer = get_family(family).trainer
    train_fraction = 1.0 - validation_fraction - test_fraction
    facts = trainer.build_training_set(
        load_settings(),
        Path(data_dir),
        Path(feature_store.path),
        Path(training_set.path),
        fractions=(train_fraction, validation_fraction, test_fraction),
        snapshot_id=snapshot_id,
    )
    for key, value in facts.items():
        if isinstance(value, int):
            metrics.log_metric(key, value)
    training_set.metadata.update(
        {"snapshot_id": snapshot_id, "family": family, "feature_service": trainer.feature_service}
    )
    for key in ("validation_from", "test_from"):
        if key in facts:
            training_set.metadata[key] = facts[key]
