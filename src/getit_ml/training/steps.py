"""The training pipeline's folders: what travels between steps, for every family.

Each Kubeflow component in ``components/`` is a thin adapter over one method of the family's
:class:`~getit_ml.training.family.Trainer`; the same methods run in tests and benchmarks without
KFP. Between steps only files travel, in formats any later step (or another environment) reads
without our code's pickles:

``training set`` folder (:func:`write_training_set`)
    ``train.parquet``, ``validation.parquet``, ``test.parquet``: the joined frames (identifiers,
    request fields, every feature, the label, what evaluation reads), each sorted by time for a
    time split; ``feature_schema.json``: the encoding fitted on the train part; ``split.json``:
    the split's kind, cut times and counts.
``tuning.json`` (:func:`write_tuning`)
    the best parameters and round count of a study, with the study's counts.
``model`` folder
    what the family's serving runtime loads (an XGBoost family: ``model.json``,
    ``metadata/feature_schema.json`` and an ``MLmodel``).
``evaluation`` folder
    ``evaluation.json`` (every figure with its direction, the promotion metric) and the plots.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pandas as pd

from getit_ml.errors import UserError
from getit_ml.features.feature_schema import SCHEMA_FILE, FeatureSchema
from getit_ml.training.dataset import FeatureMatrix, TrainingSet, to_matrix
from getit_ml.training.family import EVALUATION_FILE, TUNING_FILE, read_evaluation

logger = logging.getLogger(__name__)

PART_FILES: Final[dict[str, str]] = {
    "train": "train.parquet",
    "validation": "validation.parquet",
    "test": "test.parquet",
}
SPLIT_FILE: Final = "split.json"

__all__ = [
    "EVALUATION_FILE",
    "PART_FILES",
    "SPLIT_FILE",
    "TUNING_FILE",
    "TrainingSetFolder",
    "read_evaluation",
    "read_marketplace_table",
    "read_training_set",
    "read_tuned_params",
    "write_training_set",
    "write_tuning",
]


# ------------------------------------------------------------------------------ inputs
def read_marketplace_table(data_dir: Path, table: str) -> pd.DataFrame:
    """A marketplace table (``<table>.parquet``, or Hive-partitioned Parquet under ``<table>/``)
    as a frame; a clear error when the folder does not hold it or it is empty."""
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    folder = data_dir / table
    single = data_dir / f"{table}.parquet"
    if folder.is_dir():
        frame: pd.DataFrame = ds.dataset(folder, partitioning="hive").to_table().to_pandas()
    elif single.is_file():
        frame = pq.read_table(single).to_pandas()
    else:
        raise UserError(f"{data_dir} has no {table} table: is it a marketplace folder?")
    if frame.empty:
        raise UserError(f"{data_dir}: the {table} table is empty")
    return frame


# ------------------------------------------------------------------------- training set
@dataclass(frozen=True)
class TrainingSetFolder:
    """A training-set folder read back: the frames, the schema and the split facts."""

    frames: dict[str, pd.DataFrame]
    schema: FeatureSchema
    split: dict[str, Any]

    def matrix(self, part: str, carry: tuple[str, ...] = ()) -> FeatureMatrix:
        return to_matrix(self.frames[part], self.schema, carry)


def write_training_set(data: TrainingSet, out_dir: Path) -> dict[str, Any]:
    """Write a :class:`TrainingSet`'s frames, schema and split facts; returns the split facts."""
    out_dir.mkdir(parents=True, exist_ok=True)
    split = data.split
    facts: dict[str, Any] = {"kind": split.kind, "features": len(data.schema.features)}
    if split.time_column is not None and split.cuts is not None:
        facts["time_column"] = split.time_column
        facts["validation_from"] = pd.Timestamp(split.cuts[0]).isoformat()
        facts["test_from"] = pd.Timestamp(split.cuts[1]).isoformat()
    for part, rows in split.purged.items():
        facts[f"{part}_purged"] = rows
    for part in PART_FILES:
        frame = split.part(part)
        frame.to_parquet(out_dir / PART_FILES[part], index=False)
        facts[f"{part}_rows"] = len(frame)
        facts[f"{part}_positives"] = int(frame[data.schema.label].astype(bool).sum())
    data.schema.write(out_dir / SCHEMA_FILE)
    (out_dir / SPLIT_FILE).write_text(json.dumps(facts, indent=1), encoding="utf-8")
    return facts


def read_training_set(folder: Path) -> TrainingSetFolder:
    """Read what :func:`write_training_set` wrote."""
    missing = [
        name
        for name in (*PART_FILES.values(), SCHEMA_FILE, SPLIT_FILE)
        if not (folder / name).is_file()
    ]
    if missing:
        raise UserError(f"{folder} is not a training set: it lacks {', '.join(missing)}")
    frames = {part: pd.read_parquet(folder / name) for part, name in PART_FILES.items()}
    split = json.loads((folder / SPLIT_FILE).read_text(encoding="utf-8"))
    return TrainingSetFolder(frames, FeatureSchema.read(folder / SCHEMA_FILE), split)


# ------------------------------------------------------------------------------- tuning
def write_tuning(document: Mapping[str, Any], out_file: Path) -> None:
    """Write a tuning result (``best_params`` among its keys) as ``tuning.json``."""
    if not isinstance(document.get("best_params"), Mapping):
        raise UserError("a tuning result needs best_params")
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(json.dumps(dict(document), indent=1, sort_keys=True), encoding="utf-8")


def read_tuned_params(tuning_file: Path) -> dict[str, Any]:
    """The best parameters from a ``tuning.json``."""
    try:
        document = json.loads(tuning_file.read_text(encoding="utf-8"))
        params = document["best_params"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as error:
        raise UserError(f"{tuning_file} is not a tuning result: {error}") from None
    if not isinstance(params, dict):
        raise UserError(f"{tuning_file}: best_params is not an object")
    return params
