"""Tabular training data: entity rows, the point-in-time join, the split, the encoded parts.

The way from a family's entity rows to numeric matrices, the same for every tabular family:

1. an :class:`EntityFrame` (the family builds it from its tables): one row per example with the
   join keys, ``event_timestamp`` (the moment the prediction is made), the request fields serving
   receives (so the on-demand features are computed as in serving), the label and whatever else
   evaluation needs (an amount, a ground-truth pattern);
2. :func:`training_frame`: Feast's point-in-time join of the family's feature service
   (:func:`getit_ml.features.store.historical_features`): every row sees only what was known
   before its timestamp; the label and the carried columns are attached by position afterwards;
3. :func:`split_frame`: train / validation / test by time (:func:`time_split`, optionally with a
   purge gap as long as the label's horizon) or stratified at random (:func:`stratified_split`,
   for a snapshot without time);
4. :func:`~getit_ml.features.feature_schema.fit_schema` on the TRAIN part and
   :meth:`~getit_ml.features.feature_schema.FeatureSchema.encode` of each part.

This module imports Feast only inside the functions that need a store.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from getit_ml.errors import UserError
from getit_ml.features import schemas
from getit_ml.features.feature_schema import (
    DEFAULT_MAX_CATEGORIES,
    REFERENCE_FILE,
    SCHEMA_FILE,
    FeatureSchema,
    MonitoringHints,
    fit_schema,
)

if TYPE_CHECKING:
    from feast import FeatureStore

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
ObjectArray = npt.NDArray[np.object_]

#: The point-in-time key of the entity rows.
EVENT_TIMESTAMP: Final = schemas.TIMESTAMP_FIELD
DEFAULT_FRACTIONS: Final = (0.7, 0.15, 0.15)
PARTS: Final = ("train", "validation", "test")
SplitKind = Literal["time", "stratified"]


# ------------------------------------------------------------------------------ entity rows
@dataclass(frozen=True)
class EntityFrame:
    """A family's examples: ``frame`` holds, per row, the columns of ``join_columns`` (join keys,
    ``event_timestamp``, request fields: what Feast's join consumes) and every other column the
    training set carries along (the label, identifiers, what evaluation reads)."""

    frame: pd.DataFrame
    join_columns: tuple[str, ...]
    label: str

    def __post_init__(self) -> None:
        missing = [c for c in (*self.join_columns, self.label) if c not in self.frame.columns]
        if missing:
            raise UserError(f"entity rows lack column(s) {missing}")
        if EVENT_TIMESTAMP not in self.join_columns:
            raise UserError(f"entity rows: {EVENT_TIMESTAMP} must be a join column")
        if self.frame.empty:
            raise UserError("there are no entity rows: the data holds no example to learn from")
        if self.frame[self.label].isna().any():
            raise UserError(f"{int(self.frame[self.label].isna().sum())} rows have no {self.label}")

    @property
    def carried_columns(self) -> list[str]:
        return [c for c in self.frame.columns if c not in self.join_columns]


def optional_text(series: pd.Series) -> ObjectArray:
    """Values as Python objects, every kind of missing (None, NaN, NA) as None."""
    return np.asarray(series.astype(object).where(series.notna(), None), dtype=object)


def training_frame(store: FeatureStore, entities: EntityFrame, service: str) -> pd.DataFrame:
    """The point-in-time joined frame: the entity rows plus the service's features.

    Only the join columns go through Feast; the label and the carried columns are attached by
    position afterwards (the join keeps one row per entity row, in order), so ground truth can
    never leak into, or be altered by, the join.
    """
    from getit_ml.features.store import historical_features

    rows = entities.frame.reset_index(drop=True)
    joined = historical_features(store, service, rows[list(entities.join_columns)])
    if len(joined) != len(rows):
        raise UserError(f"{service}: the join returned {len(joined)} rows for {len(rows)}")
    for column in entities.carried_columns:
        joined[column] = rows[column].to_numpy()
    positives = int(_label_array(rows[entities.label], entities.label).sum())
    logger.info(
        "%s: %d rows x %d columns, %d positive", service, len(joined), joined.shape[1], positives
    )
    return joined


def service_feature_types(
    store: FeatureStore,
    service: str,
    *,
    request_fields: Mapping[str, str] | None = None,
    identifiers: Iterable[str] = (),
) -> dict[str, str]:
    """The model's inputs: the service's features in order, then the ``request_fields`` that are
    not ``identifiers`` (an amount, a payment method), each with its Feast type name.

    Identifiers (keys, clocks, ids) are never inputs: an id's value is an arbitrary number, and a
    tree would learn the id allocator instead of behaviour.
    """
    from feast.errors import FeastError
    from feast.types import PrimitiveFeastType

    from getit_ml.features.feast_support import FEAST_TYPES

    never = set(identifiers)
    type_names = {feast_type: name for name, feast_type in FEAST_TYPES.items()}
    try:
        feature_service = store.get_feature_service(service)
    except FeastError as error:
        raise UserError(f"unknown feature service {service!r}: {error}") from None
    types: dict[str, str] = {}
    for projection in feature_service.feature_view_projections:
        for feature in projection.features:
            dtype = feature.dtype
            kind = type_names.get(dtype) if isinstance(dtype, PrimitiveFeastType) else None
            if kind is None:
                raise UserError(
                    f"{service}: feature {feature.name} has unsupported type {feature.dtype}"
                )
            if feature.name not in never:
                types[feature.name] = kind
    for name, kind in (request_fields or {}).items():
        if name not in never:
            types.setdefault(name, kind)
    return types


# -------------------------------------------------------------------------------- the split
@dataclass(frozen=True)
class SplitSpec:
    """How a family's examples are split into train, validation and test.

    ``time``: by time cut points (never at random across time: a random split would let the model
    learn a burst from its own siblings); ``gap`` purges the rows of an earlier part whose
    timestamp lies within ``gap`` of the next part's start — rows whose label window (say, "no
    order in the next 60 days") would reach into the next part. ``stratified``: at random,
    stratified by the label, for a snapshot without time.
    """

    kind: SplitKind = "time"
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS
    gap: timedelta = timedelta(0)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("time", "stratified"):
            raise UserError(f"split kind must be time or stratified (got {self.kind!r})")
        check_fractions(self.fractions)
        if self.gap < timedelta(0):
            raise UserError(f"the split's gap must not be negative (got {self.gap})")

    def with_fractions(self, fractions: Sequence[float]) -> SplitSpec:
        check_fractions(fractions)
        a, b, c = (float(f) for f in fractions)
        return SplitSpec(self.kind, (a, b, c), self.gap, self.seed)


def check_fractions(fractions: Sequence[float]) -> None:
    if len(fractions) != 3 or any(not 0 < f < 1 for f in fractions):
        raise UserError(f"split: need three fractions in (0, 1), got {tuple(fractions)}")
    if not math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
        raise UserError(f"split: fractions must add up to 1, got {sum(fractions):.4f}")


@dataclass(frozen=True)
class Split:
    """Three parts of a frame. A time split's parts are sorted by time and every train row is
    earlier than every validation row, every validation row earlier than every test row."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    time_column: str | None
    #: First time of the validation part and of the test part (time split only).
    cuts: tuple[Any, Any] | None
    kind: SplitKind = "time"
    #: Rows left out by the purge gap (time split), per earlier part.
    purged: dict[str, int] = field(default_factory=dict)

    def part(self, name: str) -> pd.DataFrame:
        return {"train": self.train, "validation": self.validation, "test": self.test}[name]

    def summary(self) -> dict[str, int]:
        return {name: len(self.part(name)) for name in PARTS}


def _require_positives(parts: Mapping[str, pd.DataFrame], label: str, what: str) -> None:
    for name, part in parts.items():
        positives = int(_label_array(part[label], label).sum()) if len(part) else 0
        if len(part) == 0 or positives == 0 or positives == len(part):
            raise UserError(
                f"{what}: the {name} part ({len(part)} rows, {positives} positive) does not hold "
                f"both classes of {label}; use more data (more days) or other fractions"
            )


def time_split(
    frame: pd.DataFrame,
    time_column: str = EVENT_TIMESTAMP,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    label: str = "label",
    gap: timedelta = timedelta(0),
) -> Split:
    """Split ``frame`` into train / validation / test by time: the first ``fractions[0]`` of the
    rows in time order train, the next ``fractions[1]`` validate, the rest test.

    Cut points are times, not row positions: rows sharing a timestamp stay in one part, so the
    order between parts is strict. With ``gap``, rows of the train part later than
    ``validation start - gap`` and rows of the validation part later than ``test start - gap``
    are left out. Refuses (:class:`UserError`) a part without both classes — no metric on it
    would mean anything.
    """
    check_fractions(fractions)
    for column in (time_column, label):
        if column not in frame.columns:
            raise UserError(f"time split: no column {column!r} in the frame")
    if frame.empty:
        raise UserError("time split: the frame is empty")
    times = frame[time_column]
    if times.isna().any():
        raise UserError(f"time split: {int(times.isna().sum())} rows have no {time_column}")
    ordered = frame.sort_values(time_column, kind="stable").reset_index(drop=True)
    n = len(ordered)
    sorted_times = ordered[time_column]
    cut_valid = sorted_times.iloc[min(n - 1, int(n * fractions[0]))]
    cut_test = sorted_times.iloc[min(n - 1, int(n * (fractions[0] + fractions[1])))]
    in_train = (sorted_times < cut_valid).to_numpy()
    in_test = (sorted_times >= cut_test).to_numpy()
    in_valid = ~in_train & ~in_test
    purged: dict[str, int] = {}
    if gap > timedelta(0):
        late_train = in_train & (sorted_times > cut_valid - gap).to_numpy()
        late_valid = in_valid & (sorted_times > cut_test - gap).to_numpy()
        purged = {"train": int(late_train.sum()), "validation": int(late_valid.sum())}
        in_train &= ~late_train
        in_valid &= ~late_valid
    parts = {
        "train": ordered[in_train].reset_index(drop=True),
        "validation": ordered[in_valid].reset_index(drop=True),
        "test": ordered[in_test].reset_index(drop=True),
    }
    _require_positives(parts, label, "time split")
    logger.info(
        "time split at %s and %s (gap %s, purged %s): %s",
        cut_valid,
        cut_test,
        gap,
        purged,
        {k: len(v) for k, v in parts.items()},
    )
    return Split(
        parts["train"],
        parts["validation"],
        parts["test"],
        time_column,
        (cut_valid, cut_test),
        "time",
        purged,
    )


def stratified_split(
    frame: pd.DataFrame,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    label: str = "label",
    seed: int = 0,
) -> Split:
    """Split ``frame`` at random, keeping each part's share of positives: per class, a seeded
    permutation is cut at the fractions."""
    check_fractions(fractions)
    if label not in frame.columns:
        raise UserError(f"stratified split: no column {label!r} in the frame")
    if frame.empty:
        raise UserError("stratified split: the frame is empty")
    y = _label_array(frame[label], label)
    rng = np.random.default_rng(seed)
    chosen: dict[str, list[npt.NDArray[np.intp]]] = {name: [] for name in PARTS}
    for value in (0.0, 1.0):
        rows = rng.permutation(np.flatnonzero(y == value))
        first = round(len(rows) * fractions[0])
        second = first + round(len(rows) * fractions[1])
        for name, piece in zip(
            PARTS, (rows[:first], rows[first:second], rows[second:]), strict=True
        ):
            chosen[name].append(piece)
    parts = {
        name: frame.iloc[np.sort(np.concatenate(pieces))].reset_index(drop=True)
        for name, pieces in chosen.items()
    }
    _require_positives(parts, label, "stratified split")
    return Split(parts["train"], parts["validation"], parts["test"], None, None, "stratified")


def split_frame(
    frame: pd.DataFrame, spec: SplitSpec, label: str, time_column: str = EVENT_TIMESTAMP
) -> Split:
    """``frame`` split as ``spec`` says."""
    if spec.kind == "stratified":
        return stratified_split(frame, spec.fractions, label, spec.seed)
    return time_split(frame, time_column, spec.fractions, label, spec.gap)


# ---------------------------------------------------------------------------------- matrices
@dataclass(frozen=True)
class FeatureMatrix:
    """One part of the data as arrays: features in schema order, the 0/1 label, and any per-row
    columns evaluation needs (an amount, a ground-truth pattern), by name."""

    features: FloatArray
    label: FloatArray
    feature_names: tuple[str, ...]
    columns: Mapping[str, npt.NDArray[Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        rows = self.features.shape[0]
        if self.features.ndim != 2 or self.features.shape[1] != len(self.feature_names):
            raise ValueError(f"features {self.features.shape} vs {len(self.feature_names)} names")
        for name, extra in (("label", self.label), *self.columns.items()):
            if extra.shape != (rows,):
                raise ValueError(f"{name}: an array of shape {extra.shape} for {rows} rows")

    @property
    def rows(self) -> int:
        return int(self.features.shape[0])

    @property
    def positives(self) -> int:
        return int(self.label.sum())

    def take(self, rows: npt.NDArray[np.intp]) -> FeatureMatrix:
        """The rows ``rows`` of every array."""
        return FeatureMatrix(
            self.features[rows],
            self.label[rows],
            self.feature_names,
            {k: v[rows] for k, v in self.columns.items()},
        )


def _label_array(series: pd.Series, name: str) -> FloatArray:
    if series.isna().any():
        raise UserError(f"label {name!r}: {int(series.isna().sum())} rows have no value")
    values = pd.to_numeric(
        series.astype("int64") if series.dtype == bool else series, errors="coerce"
    )
    out = values.to_numpy(dtype=np.float64, na_value=np.nan)
    if not np.isin(out, (0.0, 1.0)).all():
        raise UserError(f"label {name!r} must be 0/1 or boolean")
    return out


def label_array(series: pd.Series, name: str) -> FloatArray:
    """A 0/1 label column as float64 (a clear error for missing or other values)."""
    return _label_array(series, name)


def to_matrix(
    frame: pd.DataFrame, schema: FeatureSchema, carry: Sequence[str] = ()
) -> FeatureMatrix:
    """Encode ``frame`` (which must hold the label) as a :class:`FeatureMatrix`, with the
    columns of ``carry`` that the frame has (numbers as float64, anything else as objects)."""
    if schema.label not in frame.columns:
        raise UserError(f"to_matrix: the frame has no label column {schema.label!r}")
    columns: dict[str, npt.NDArray[Any]] = {}
    for name in carry:
        if name not in frame.columns:
            continue
        series = frame[name]
        columns[name] = (
            series.to_numpy(dtype=np.float64, na_value=np.nan)
            if pd.api.types.is_numeric_dtype(series.dtype) and series.dtype != bool
            else optional_text(series)
        )
    return FeatureMatrix(
        features=schema.encode(frame),
        label=_label_array(frame[schema.label], schema.label),
        feature_names=tuple(schema.feature_names),
        columns=columns,
    )


# -------------------------------------------------------------------------- the training set
@dataclass(frozen=True)
class TrainingSet:
    """The split frames, the schema fitted on train, and each part encoded."""

    split: Split
    schema: FeatureSchema
    train: FeatureMatrix
    validation: FeatureMatrix
    test: FeatureMatrix


def prepare_training_set(
    frame: pd.DataFrame,
    feature_types: Mapping[str, str] | Sequence[str],
    *,
    label: str,
    split: SplitSpec = SplitSpec(),
    time_column: str = EVENT_TIMESTAMP,
    max_categories: int = DEFAULT_MAX_CATEGORIES,
    metadata: Mapping[str, str] | None = None,
    monitoring: MonitoringHints | None = None,
    carry: Sequence[str] = (),
) -> TrainingSet:
    """Split a joined frame, fit the schema on train, encode the three parts."""
    parts = split_frame(frame, split, label, time_column)
    schema = fit_schema(
        parts.train,
        feature_types,
        label=label,
        max_categories=max_categories,
        metadata=metadata,
        monitoring=monitoring,
    )
    return TrainingSet(
        split=parts,
        schema=schema,
        train=to_matrix(parts.train, schema, carry),
        validation=to_matrix(parts.validation, schema, carry),
        test=to_matrix(parts.test, schema, carry),
    )


# ------------------------------------------------------------------------ reference export
@dataclass(frozen=True)
class ReferenceFiles:
    reference: Path
    schema: Path
    rows: int


def export_reference(
    frame: pd.DataFrame,
    schema: FeatureSchema,
    out_dir: Path,
    *,
    n: int = 5_000,
    seed: int = 0,
) -> ReferenceFiles:
    """Write a random sample of ``frame`` (training rows), encoded, for the drift detector and
    the explainer: ``reference.parquet`` (one float64 column per feature in schema order, nulls
    for missing values, plus the label as int64 when the frame has it) and
    ``feature_schema.json``. Plain Parquet and JSON only: the sidecars run another environment.
    """
    if n < 1:
        raise UserError(f"reference sample size must be positive (got {n})")
    if frame.empty:
        raise UserError("reference export: the frame is empty")
    rng = np.random.default_rng(seed)
    take = np.sort(rng.choice(len(frame), size=min(n, len(frame)), replace=False))
    sample = frame.iloc[take]
    matrix = schema.encode(sample)
    columns: dict[str, Any] = {
        name: pa.array(matrix[:, j], type=pa.float64(), from_pandas=True)
        for j, name in enumerate(schema.feature_names)
    }
    if schema.label in sample.columns:
        labels = _label_array(sample[schema.label], schema.label).astype(np.int64)
        columns[schema.label] = pa.array(labels, type=pa.int64())
    out_dir.mkdir(parents=True, exist_ok=True)
    reference = out_dir / REFERENCE_FILE
    pq.write_table(pa.table(columns), reference)
    schema_path = schema.write(out_dir / SCHEMA_FILE)
    logger.info("reference: %d rows x %d features -> %s", len(take), len(schema.features), out_dir)
    return ReferenceFiles(reference, schema_path, len(take))
