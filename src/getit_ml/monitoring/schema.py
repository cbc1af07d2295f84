"""The feature schema and the reference data, as the training pipeline exports them.

``getit_ml.training.dataset.export_reference`` writes two files into one folder:

* ``feature_schema.json`` — format ``getit-ml/feature-schema`` version 1: the features in model
  order, each with ``name``, ``kind`` (``numeric``, ``bool`` or ``categorical``), ``dtype`` and,
  for a categorical feature, ``categories`` (a value's code is its position in that list);
* ``reference.parquet`` — a sample of training rows encoded as the model sees them: one float64
  column per feature in schema order (nulls for missing values) and the label (``is_fraud``) as
  int64.

This module parses both itself, with nothing but the standard library, numpy and pyarrow: the
monitoring environment (numpy 1.24, pydantic 1) must not import the training code.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from getit_ml.errors import UserError

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
FeatureKind = Literal["numeric", "bool", "categorical"]

SCHEMA_FORMAT: Final = "getit-ml/feature-schema"
SCHEMA_VERSION: Final = 1
SCHEMA_FILE: Final = "feature_schema.json"
REFERENCE_FILE: Final = "reference.parquet"
KINDS: Final[tuple[FeatureKind, ...]] = ("numeric", "bool", "categorical")
_TRUE: Final = frozenset({"true", "1", "yes", "t", "y"})
_FALSE: Final = frozenset({"false", "0", "no", "f", "n"})


@dataclass(frozen=True)
class Feature:
    """One model input: name, kind, source type and (categorical) the category list."""

    name: str
    kind: FeatureKind
    dtype: str = "float64"
    categories: tuple[str, ...] = ()

    @property
    def levels(self) -> tuple[str, ...]:
        """Names of the codes of a discrete feature (bool: ``false``, ``true``); empty for a
        numeric one."""
        if self.kind == "bool":
            return ("false", "true")
        return self.categories

    @property
    def is_discrete(self) -> bool:
        return self.kind != "numeric"

    def encode(self, value: Any) -> float:
        """One raw value as the model's float: a number, 1.0/0.0, or a category's code; NaN for
        missing, unusable or unseen values (as the training encoding does)."""
        if value is None:
            return math.nan
        if self.kind == "categorical":
            if isinstance(value, str):
                try:
                    return float(self.categories.index(value))
                except ValueError:
                    return math.nan
            code = _finite(value)
            # A number is taken as an already encoded code when it is one.
            if code is not None and code.is_integer() and 0 <= code < len(self.categories):
                return code
            return math.nan
        if self.kind == "bool":
            if isinstance(value, str):
                text = value.strip().lower()
                return 1.0 if text in _TRUE else 0.0 if text in _FALSE else math.nan
            number = _finite(value)
            return math.nan if number is None or number not in (0.0, 1.0) else number
        number = _finite(value)
        return math.nan if number is None else number

    def describe(self, code: float) -> str:
        """A value in words: the category or true/false for a discrete feature, else the number;
        ``missing`` for NaN."""
        if math.isnan(code):
            return "missing"
        if self.is_discrete:
            index = int(code)
            return self.levels[index] if 0 <= index < len(self.levels) else f"code {code:g}"
        return f"{code:.4g}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "dtype": self.dtype}
        if self.kind == "categorical":
            out["categories"] = list(self.categories)
        return out


def _finite(value: Any) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, str):
        value = value.strip()
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class Schema:
    """The model's input contract: feature order, kinds, categories and the label name."""

    features: tuple[Feature, ...]
    label: str = "is_fraud"
    metadata: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [f.name for f in self.features]
        if not names:
            raise UserError("feature schema: no features")
        if len(set(names)) != len(names):
            duplicated = sorted({n for n in names if names.count(n) > 1})
            raise UserError(f"feature schema: duplicate feature names {duplicated}")

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def width(self) -> int:
        return len(self.features)

    def index(self, name: str) -> int:
        for i, feature in enumerate(self.features):
            if feature.name == name:
                return i
        raise UserError(f"feature schema: no feature {name!r}")

    def feature(self, name: str) -> Feature:
        return self.features[self.index(name)]

    def discrete_indices(self) -> list[int]:
        return [i for i, f in enumerate(self.features) if f.is_discrete]

    def encode_records(self, records: Sequence[Mapping[str, Any]]) -> FloatArray:
        """Rows given as ``{feature name: raw value}`` as the ``(rows, features)`` matrix; a
        feature a record lacks is missing (NaN), names the schema does not know are ignored."""
        matrix = np.full((len(records), self.width), np.nan, dtype=np.float64)
        for i, record in enumerate(records):
            for j, feature in enumerate(self.features):
                if feature.name in record:
                    matrix[i, j] = feature.encode(record[feature.name])
        return matrix

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": SCHEMA_FORMAT,
            "version": SCHEMA_VERSION,
            "label": self.label,
            "feature_names": self.feature_names,
            "features": [f.to_dict() for f in self.features],
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Schema:
        if raw.get("format") != SCHEMA_FORMAT or raw.get("version") != SCHEMA_VERSION:
            raise UserError(
                f"not a {SCHEMA_FORMAT} v{SCHEMA_VERSION} document "
                f"(format={raw.get('format')!r}, version={raw.get('version')!r})"
            )
        entries = raw.get("features")
        if not isinstance(entries, list):
            raise UserError("feature schema: `features` must be a list")
        features: list[Feature] = []
        for position, entry in enumerate(entries):
            if not isinstance(entry, Mapping) or "name" not in entry or "kind" not in entry:
                raise UserError(f"feature schema: feature #{position} needs a name and a kind")
            kind = entry["kind"]
            if kind not in KINDS:
                raise UserError(f"feature schema: {entry['name']!r} has unknown kind {kind!r}")
            categories = entry.get("categories", [])
            if not isinstance(categories, list):
                raise UserError(f"feature schema: categories of {entry['name']!r} not a list")
            if kind == "categorical" and not categories:
                raise UserError(f"feature schema: categorical {entry['name']!r} has no categories")
            features.append(
                Feature(
                    name=str(entry["name"]),
                    kind=kind,
                    dtype=str(entry.get("dtype", "float64")),
                    categories=tuple(str(c) for c in categories),
                )
            )
        metadata = raw.get("metadata") or {}
        if not isinstance(metadata, Mapping):
            raise UserError("feature schema: `metadata` must be an object")
        return cls(
            tuple(features),
            str(raw.get("label", "is_fraud")),
            {str(k): str(v) for k, v in metadata.items()},
        )

    @classmethod
    def read(cls, path: Path) -> Schema:
        if not path.is_file():
            raise UserError(f"no feature schema at {path} (written by the training pipeline)")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise UserError(f"{path}: the feature schema is not JSON ({error})") from None
        if not isinstance(raw, dict):
            raise UserError(f"{path}: the feature schema is not a JSON object")
        return cls.from_dict(raw)


@dataclass(frozen=True)
class Reference:
    """The reference sample: encoded features (``rows x features``, NaN = missing) and the
    labels when the export has them."""

    schema: Schema
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

    schema = Schema.read(schema_path or directory / SCHEMA_FILE)
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
