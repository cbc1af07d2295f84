"""export_reference_data: what the drift detector and the explainer compare traffic with."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def export_reference_data(
    family: str,
    training_set: Input[Dataset],
    reference: Output[Dataset],
    rows: int = 5000,
    seed: int = 0,
) -> int:
    """Write a random sample of ``rows`` train rows, encoded as the model sees them
    (``reference.parquet``), with the feature schema and its monitoring hints
    (``feature_schema.json``): plain files that the monitoring environment (numpy 1.24,
    pydantic 1) reads without our training code. Returns the rows written."""
    from pathlib import Path

    from getit_ml.families import get_family

    written = get_family(family).trainer.export_reference(
        Path(training_set.path), Path(reference.path), rows=rows, seed=seed
    )
    reference.metadata.update({"rows": written, "family": family})
    return written
