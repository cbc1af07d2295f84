"""export_reference_data: training rows for the drift detector and the explainer."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def export_reference_data(
    training_set: Input[Dataset],
    reference: Output[Dataset],
    rows: int = 5000,
    seed: int = 0,
) -> int:
    """Write a random sample of ``rows`` train rows, encoded as the model sees them
    (``reference.parquet``) with the feature schema (``feature_schema.json``): plain files that
    the monitoring environment (numpy 1.24, pydantic 1) reads without our training code.
    Returns the rows written."""
    from pathlib import Path

    from getit_ml.training.steps import export_reference_step

    written = export_reference_step(Path(training_set.path), Path(reference.path), rows=rows,
                                    seed=seed)  # fmt: skip
    reference.metadata["rows"] = written
    return written
