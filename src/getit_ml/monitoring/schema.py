"""The reference data, as the training pipeline exports it, beside its feature schema.

``getit_ml.training.dataset.export_reference`` writes two files into one folder:

* ``feature_schema.json`` — read by :class:`getit_ml.features.feature_schema.FeatureSchema`, the
  one reader of that file in every layer (numpy, pandas and the standard library only);
* ``reference.parquet`` — a sample of training rows encoded as the model sees them: one float64
  column per feature in schema order (nulls for missing values) and the label as int64.

Nothing here imports the training code: the monitoring environment (numpy 1.24, pydantic 1)
reads the files as plain Parquet and JSON.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from getit_ml.errors import UserError
from getit_ml.features.feature_schema import (
    REFERENCE_FILE,
    SCHEMA_FILE,
    FeatureKind,
    FeatureSchema,
    FeatureSpec,
    FloatArray,
)

logger = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]

__all__ = [
    "REFERENCE_FILE",
    "SCHEMA_FILE",
    "FeatureKind",
    "FeatureSchema",
    "FeatureSpec",
    "FloatArray",
    "IntArray",
    "Reference",
    "load_reference",
]


@dataclass(frozen=True)
class Reference:
    """The reference sample: encoded features (``rows x features``, NaN = missing) and the
    labels when the export has them."""

    schema: FeatureSchema
    features: FloatArray
    labels: IntArray | None = None

    def __post_init__(self) -> None:
        if self.features.ndim != 2 or self.features.shape[1] != self.schema.width:
            raise UserError(
                f"reference data of shape {self.features.shape} does not match the schema's "
                f"{self.schema.width} features"
            )
        if self.features.shape[0] < 2:
            raise UserError("reference data needs at least 2 rows")

    @property
    def rows(self) -> int:
        return int(self.features.shape[0])


def load_reference(directory: Path, schema_path: Path | None = None) -> Reference:
    """Read ``reference.parquet`` and ``feature_schema.json`` from ``directory`` (the schema
    from ``schema_path`` when given) and check they agree."""
    import pyarrow.parquet as pq

    schema = FeatureSchema.read(schema_path or directory / SCHEMA_FILE)
    path = directory / REFERENCE_FILE if directory.is_dir() else directory
    if not path.is_file():
        raise UserError(f"no reference data at {path} (written by the training pipeline)")
    try:
        table = pq.read_table(path)
    except Exception as error:  # pyarrow raises several types for a damaged file
        raise UserError(f"{path}: not a readable Parquet file ({error})") from None
    missing = [name for name in schema.feature_names if name not in table.column_names]
    if missing:
        shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise UserError(f"{path} lacks {len(missing)} schema feature(s): {shown}")
    columns = []
    for name in schema.feature_names:
        column = table.column(name).to_numpy(zero_copy_only=False)
        try:
            columns.append(np.asarray(column, dtype=np.float64))
        except (TypeError, ValueError):
            raise UserError(f"{path}: column {name!r} is not numeric (encoded)") from None
    features = np.column_stack(columns) if columns else np.empty((table.num_rows, 0))
    features = np.where(np.isfinite(features), features, np.nan)
    labels = None
    if schema.label in table.column_names:
        raw_labels = table.column(schema.label).to_numpy(zero_copy_only=False)
        labels = np.nan_to_num(np.asarray(raw_labels, dtype=np.float64)).astype(np.int64)
    reference = Reference(schema, features, labels)
    logger.info("reference %s: %d rows x %d features", path, reference.rows, schema.width)
    return reference
