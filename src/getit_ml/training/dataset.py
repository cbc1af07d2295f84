"""The fraud model's training data: entity rows, point-in-time join, time split, encoding.

The way from the payments table to numeric matrices:

1. :func:`fraud_entity_frame`: one entity row per payment, with the fields the checkout service
   sends at scoring time (so the on-demand features are computed as in serving), the label and
   the ground-truth fraud pattern.
2. :func:`training_frame`: Feast's point-in-time join of the model's feature service
   (:func:`getit_ml.features.store.historical_features`): every payment sees only what was known
   before it.
3. :func:`time_split`: train / validation / test by time cut points, never at random across time
   (a random split would let the model learn a fraud burst from its own siblings).
4. :func:`fit_schema` on the TRAIN part and :meth:`FeatureSchema.encode`: numbers and booleans as
   floats, strings as ordinal codes into a category list fixed from the train part. The schema is
   JSON (:meth:`FeatureSchema.to_json`) and is the contract with serving and with the monitoring
   sidecars, which read :func:`export_reference`'s Parquet and JSON in their own environment
   (numpy 1.24, pydantic 1): no pickles cross that border.

This module imports Feast only inside the functions that need a store, so that serving code and the
monitoring environment can use :class:`FeatureSchema` with nothing but numpy, pandas and pyarrow.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from getit_ml.errors import UserError
from getit_ml.features import schemas

if TYPE_CHECKING:
    from feast import FeatureStore

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
ObjectArray = npt.NDArray[np.object_]

#: The fraud model's feature service in the Feast repository.
FRAUD_SERVICE: Final = "fraud_scoring_v1"
#: Label column (True / 1 = fraud).
LABEL: Final = "is_fraud"
#: Ground-truth fraud pattern (null for a genuine payment): for per-pattern evaluation only.
PATTERN: Final = "fraud_pattern"
#: Payment amount: a model input (a request field) and what a missed fraud costs.
AMOUNT: Final = "amount_bdt"
#: The point-in-time key of the entity rows: the payment's timestamp.
EVENT_TIMESTAMP: Final = schemas.TIMESTAMP_FIELD

#: Request fields the checkout service sends, with their Feast types (as in
#: ``getit_ml.features.context.CHECKOUT_REQUEST_FIELDS``; repeated so that this module does not
#: import the calendar code, and a test checks they agree).
REQUEST_FIELDS: Final[dict[str, str]] = {
    "request_ts_us": "int64",
    "amount_bdt": "float64",
    "payment_method": "string",
    "checkout_device_id": "int64",
    "checkout_wallet_account_id": "int64",
}
#: Columns of the entity frame that Feast's join consumes.
ENTITY_COLUMNS: Final[tuple[str, ...]] = ("customer_id", "device_id", EVENT_TIMESTAMP,
                                          *REQUEST_FIELDS)  # fmt: skip
#: Keys, clocks and identifiers: in the joined frame, never model inputs. An id's value is an
#: arbitrary number (fraudsters' fresh devices even get ids from a separate range), so a tree
#: would learn the id allocator instead of behaviour; the comparisons that matter (new device,
#: wallet change) are features of their own (``transaction_context``).
IDENTIFIER_COLUMNS: Final[frozenset[str]] = frozenset(
    {
        "payment_id",
        "customer_id",
        "device_id",
        EVENT_TIMESTAMP,
        "request_ts_us",
        "checkout_device_id",
        "checkout_wallet_account_id",
        "last_device_id",
        "last_wallet_account_id",
    }
)

DEFAULT_FRACTIONS: Final = (0.7, 0.15, 0.15)
#: A string feature keeps at most this many categories (the most frequent in train); the rest
#: encode as missing, like a category first seen in serving.
DEFAULT_MAX_CATEGORIES: Final = 256

FeatureKind = Literal["numeric", "bool", "categorical"]
_KIND_OF_TYPE: Final[dict[str, FeatureKind]] = {
    "int64": "numeric",
    "float64": "numeric",
    "bool": "bool",
    "string": "categorical",
}

SCHEMA_FORMAT: Final = "getit-ml/feature-schema"
SCHEMA_VERSION: Final = 1
#: How values are encoded; written into the schema JSON so a reader needs no code of ours.
ENCODING_RULES: Final[dict[str, str]] = {
    "numeric": "float64; missing or infinite = null",
    "bool": "1.0 true, 0.0 false; missing = null",
    "categorical": "float64 index into `categories`; missing or unseen = null",
}
REFERENCE_FILE: Final = "reference.parquet"
SCHEMA_FILE: Final = "feature_schema.json"


# ------------------------------------------------------------------------------ entity rows
def fraud_entity_frame(payments: pd.DataFrame) -> pd.DataFrame:
    """One entity row per payment for the fraud feature service, in the order of ``payments``.

    Columns: the join keys (``customer_id``, ``device_id``), ``event_timestamp`` (the payment's
    time), the checkout request fields as serving receives them (``request_ts_us``,
    ``amount_bdt``, ``payment_method``, ``checkout_device_id``, ``checkout_wallet_account_id``:
    -1 when no wallet was used), then ``payment_id``, the label ``is_fraud`` and
    ``fraud_pattern``.
    """
    required = ("payment_id", "customer_id", "payment_ts", "payment_method", "amount_bdt",
                "device_id", "wallet_account_id", LABEL, PATTERN)  # fmt: skip
    missing = [c for c in required if c not in payments.columns]
    if missing:
        raise UserError(f"payments table lacks column(s) {missing}: is it the payments table?")
    if payments[LABEL].isna().any():
        raise UserError(f"payments: {int(payments[LABEL].isna().sum())} rows have no {LABEL}")
    stamps = pd.to_datetime(payments["payment_ts"], utc=True).dt.as_unit("us")
    wallet = payments["wallet_account_id"]
    frame = pd.DataFrame(
        {
            "customer_id": payments["customer_id"].astype("int64").to_numpy(),
            "device_id": payments["device_id"].astype("int64").to_numpy(),
            EVENT_TIMESTAMP: stamps.to_numpy(),
            "request_ts_us": stamps.astype("int64").to_numpy(),
            "amount_bdt": payments["amount_bdt"].astype("float64").to_numpy(),
            "payment_method": payments["payment_method"].astype(object).to_numpy(),
            "checkout_device_id": payments["device_id"].astype("int64").to_numpy(),
            "checkout_wallet_account_id": wallet.fillna(-1).astype("int64").to_numpy(),
            "payment_id": payments["payment_id"].astype("int64").to_numpy(),
            LABEL: payments[LABEL].astype(bool).to_numpy(),
            PATTERN: _optional_text(payments[PATTERN]),
        }
    )
    return frame.reset_index(drop=True)


def _optional_text(series: pd.Series) -> ObjectArray:
    """Values as Python objects, every kind of missing (None, NaN, NA) as None."""
    return np.asarray(series.astype(object).where(series.notna(), None), dtype=object)


def training_frame(
    store: FeatureStore, payments: pd.DataFrame, service: str = FRAUD_SERVICE
) -> pd.DataFrame:
    """The point-in-time joined training frame: entity rows plus the service's features.

    Only the entity columns go through Feast; the label and pattern are attached by position
    afterwards (the join keeps one row per entity row, in order), so ground truth can never
    leak into, or be altered by, the join.
    """
    from getit_ml.features.store import historical_features

    entities = fraud_entity_frame(payments)
    joined = historical_features(store, service, entities[list(ENTITY_COLUMNS)])
    if len(joined) != len(entities):
        raise UserError(f"{service}: the join returned {len(joined)} rows for {len(entities)}")
    for column in ("payment_id", LABEL, PATTERN):
        joined[column] = entities[column].to_numpy()
    logger.info("%s: %d rows x %d columns, %d fraud", service, len(joined), joined.shape[1],
                int(entities[LABEL].sum()))  # fmt: skip
    return joined


def service_feature_types(store: FeatureStore, service: str = FRAUD_SERVICE) -> dict[str, str]:
    """The model's inputs: the service's features in order, then the request fields that are
    not identifiers (amount, payment method), each with its Feast type name."""
    from feast.errors import FeastError
    from feast.types import PrimitiveFeastType

    from getit_ml.features.feast_support import FEAST_TYPES

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
                raise UserError(f"{service}: feature {feature.name} has unsupported type "
                                f"{feature.dtype}")  # fmt: skip
            if feature.name not in IDENTIFIER_COLUMNS:
                types[feature.name] = kind
    for name, kind in REQUEST_FIELDS.items():
        if name not in IDENTIFIER_COLUMNS:
            types.setdefault(name, kind)
    return types


# -------------------------------------------------------------------------------- time split
@dataclass(frozen=True)
class Split:
    """Three parts of a frame, each sorted by time; every train row is earlier than every
    validation row, every validation row earlier than every test row."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    time_column: str
    #: First time of the validation part and of the test part.
    cuts: tuple[Any, Any]

    def summary(self) -> dict[str, int]:
        return {"train": len(self.train), "validation": len(self.validation),
                "test": len(self.test)}  # fmt: skip


def time_split(
    frame: pd.DataFrame,
    time_column: str = EVENT_TIMESTAMP,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    label: str = LABEL,
) -> Split:
    """Split ``frame`` into train / validation / test by time: the first ``fractions[0]`` of the
    rows in time order train, the next ``fractions[1]`` validate, the rest test.

    Cut points are times, not row positions: rows sharing a timestamp stay in one part, so the
    order between parts is strict. Refuses (:class:`UserError`) a part without a positive label
    — no metric on it would mean anything.
    """
    if len(fractions) != 3 or any(not 0 < f < 1 for f in fractions):
        raise UserError(f"time split: need three fractions in (0, 1), got {tuple(fractions)}")
    if not math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
        raise UserError(f"time split: fractions must add up to 1, got {sum(fractions):.4f}")
    for column in (time_column, label):
        if column not in frame.columns:
            raise UserError(f"time split: no column {column!r} in the frame")
    times = frame[time_column]
    if frame.empty:
        raise UserError("time split: the frame is empty")
    if times.isna().any():
        raise UserError(f"time split: {int(times.isna().sum())} rows have no {time_column}")
    ordered = frame.sort_values(time_column, kind="stable").reset_index(drop=True)
    n = len(ordered)
    sorted_times = ordered[time_column]
    cut_valid = sorted_times.iloc[min(n - 1, int(n * fractions[0]))]
    cut_test = sorted_times.iloc[min(n - 1, int(n * (fractions[0] + fractions[1])))]
    in_train = (sorted_times < cut_valid).to_numpy()
    in_test = (sorted_times >= cut_test).to_numpy()
    parts = {
        "train": ordered[in_train].reset_index(drop=True),
        "validation": ordered[~in_train & ~in_test].reset_index(drop=True),
        "test": ordered[in_test].reset_index(drop=True),
    }
    for name, part in parts.items():
        positives = int(_label_array(part[label], label).sum()) if len(part) else 0
        if positives == 0:
            raise UserError(
                f"time split: the {name} part ({len(part)} rows) has no positive {label}; "
                "use more data (more days) or other fractions"
            )
    logger.info("time split at %s and %s: %s", cut_valid, cut_test,
                {k: len(v) for k, v in parts.items()})  # fmt: skip
    return Split(parts["train"], parts["validation"], parts["test"], time_column,
                 (cut_valid, cut_test))  # fmt: skip


# ---------------------------------------------------------------------------------- encoding
@dataclass(frozen=True)
class FeatureSpec:
    """One model input: its name, how it is encoded, its source type and (for strings) the
    category list whose positions are the codes."""

    name: str
    kind: FeatureKind
    dtype: str
    categories: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "dtype": self.dtype}
        if self.kind == "categorical":
            out["categories"] = list(self.categories)
        return out


@dataclass(frozen=True)
class FeatureSchema:
    """The model's input contract: feature order, encodings, categories and the label name.

    Serving encodes a request with :meth:`encode`; the sidecars read the same facts from
    :meth:`to_json`.
    """

    features: tuple[FeatureSpec, ...]
    label: str = LABEL
    metadata: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [f.name for f in self.features]
        if len(set(names)) != len(names):
            raise UserError("feature schema: duplicate feature names")
        if not names:
            raise UserError("feature schema: no features")

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def category_map(self) -> dict[int, list[str]]:
        """Column index -> category names, for each categorical feature (alibi's layout)."""
        return {
            i: list(f.categories) for i, f in enumerate(self.features) if f.kind == "categorical"
        }

    def encode(self, frame: pd.DataFrame) -> FloatArray:
        """The ``(rows, features)`` float64 matrix of ``frame``, columns in schema order."""
        missing = [name for name in self.feature_names if name not in frame.columns]
        if missing:
            shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
            raise UserError(f"encode: the frame lacks {len(missing)} feature(s): {shown}")
        matrix = np.empty((len(frame), len(self.features)), dtype=np.float64)
        for j, spec in enumerate(self.features):
            matrix[:, j] = _encode_column(frame[spec.name], spec)
        return matrix

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": SCHEMA_FORMAT,
            "version": SCHEMA_VERSION,
            "label": self.label,
            "encoding": dict(ENCODING_RULES),
            "feature_names": self.feature_names,
            "features": [f.to_dict() for f in self.features],
            "metadata": dict(self.metadata),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> FeatureSchema:
        if raw.get("format") != SCHEMA_FORMAT or raw.get("version") != SCHEMA_VERSION:
            raise UserError(
                f"not a {SCHEMA_FORMAT} v{SCHEMA_VERSION} document "
                f"(format={raw.get('format')!r}, version={raw.get('version')!r})"
            )
        try:
            features = tuple(
                FeatureSpec(
                    name=str(f["name"]),
                    kind=_checked_kind(f["kind"]),
                    dtype=str(f["dtype"]),
                    categories=tuple(str(c) for c in f.get("categories", ())),
                )
                for f in raw["features"]
            )
            return cls(features, str(raw["label"]), {str(k): str(v) for k, v in
                                                     raw.get("metadata", {}).items()})  # fmt: skip
        except (KeyError, TypeError, AttributeError) as error:
            raise UserError(f"malformed feature schema: {error!r}") from None

    @classmethod
    def from_json(cls, text: str) -> FeatureSchema:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as error:
            raise UserError(f"feature schema is not JSON: {error}") from None
        if not isinstance(raw, dict):
            raise UserError("feature schema: the JSON document is not an object")
        return cls.from_dict(raw)

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json(), encoding="utf-8")
        return path

    @classmethod
    def read(cls, path: Path) -> FeatureSchema:
        if not path.is_file():
            raise UserError(f"no feature schema at {path}")
        return cls.from_json(path.read_text(encoding="utf-8"))


def _checked_kind(value: object) -> FeatureKind:
    if value not in ("numeric", "bool", "categorical"):
        raise UserError(f"feature schema: unknown feature kind {value!r}")
    return value


def _encode_column(series: pd.Series, spec: FeatureSpec) -> FloatArray:
    if spec.kind == "categorical":
        # Codes are positions in the TRAIN category list; an unseen or missing value is -1 from
        # get_indexer and becomes NaN, which XGBoost routes down its learned "missing" branch.
        codes = pd.Index(spec.categories, dtype=object).get_indexer(
            pd.Index(series.astype("string"))
        )
        return np.where(codes >= 0, codes, np.nan).astype(np.float64)
    if spec.kind == "bool" and series.dtype == object:
        # Booleans with nulls arrive from the join as Python objects (True, False, None).
        return np.asarray(series.map({True: 1.0, False: 0.0}), dtype=np.float64)
    if pd.api.types.is_bool_dtype(series.dtype):
        series = series.astype("Float64")
    numbers = pd.to_numeric(series, errors="coerce")
    out = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
    # An infinite ratio (a denominator that rounded to zero) means "unknown" to the model.
    return np.where(np.isfinite(out), out, np.nan)


def _infer_type(series: pd.Series) -> str:
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "int64"
    if pd.api.types.is_float_dtype(dtype):
        return "float64"
    if pd.api.types.is_datetime64_any_dtype(dtype) or isinstance(dtype, pd.DatetimeTZDtype):
        raise UserError(f"feature {series.name!r} is a timestamp: derive numbers from it first")
    present = series.dropna()
    if len(present) and present.map(lambda v: isinstance(v, bool | np.bool_)).all():
        return "bool"
    return "string"


def fit_schema(
    frame: pd.DataFrame,
    features: Mapping[str, str] | Sequence[str],
    *,
    label: str = LABEL,
    max_categories: int = DEFAULT_MAX_CATEGORIES,
    metadata: Mapping[str, str] | None = None,
) -> FeatureSchema:
    """The schema for ``features`` with categories taken from ``frame`` (the TRAIN part).

    ``features`` maps names to Feast type names (``int64``, ``float64``, ``bool``, ``string``),
    or is a list of names whose types are inferred from the frame's columns. A string feature
    keeps its ``max_categories`` most frequent values, listed in sorted order.
    """
    if max_categories < 1:
        raise UserError(f"max_categories must be at least 1 (got {max_categories})")
    names = list(features)
    absent = [name for name in names if name not in frame.columns]
    if absent:
        raise UserError(f"fit schema: the frame lacks feature(s) {absent[:10]}")
    if label in names:
        raise UserError(f"fit schema: the label {label!r} cannot be a feature")
    specs: list[FeatureSpec] = []
    for name in names:
        dtype = features[name] if isinstance(features, Mapping) else _infer_type(frame[name])
        kind = _KIND_OF_TYPE.get(dtype)
        if kind is None:
            raise UserError(f"feature {name}: unknown type {dtype!r}; use {sorted(_KIND_OF_TYPE)}")
        categories: tuple[str, ...] = ()
        if kind == "categorical":
            # The same text form as encode() uses, so a code always finds its category.
            counts = frame[name].astype("string").dropna().value_counts(sort=False)
            # Most frequent first, ties by name, so the kept set is deterministic.
            ranked = sorted(counts.items(), key=lambda kv: (-int(kv[1]), str(kv[0])))
            categories = tuple(sorted(str(k) for k, _ in ranked[:max_categories]))
            if len(counts) > max_categories:
                logger.info("%s: kept %d of %d categories", name, max_categories, len(counts))
        specs.append(FeatureSpec(name, kind, dtype, categories))
    return FeatureSchema(tuple(specs), label, dict(metadata or {}))


@dataclass(frozen=True)
class FeatureMatrix:
    """One part of the data as arrays: features in schema order, the 0/1 label and, when the
    frame has them, the amount (for costs) and the fraud pattern (None for genuine rows)."""

    features: FloatArray
    label: FloatArray
    feature_names: tuple[str, ...]
    amount_bdt: FloatArray | None = None
    pattern: ObjectArray | None = None

    def __post_init__(self) -> None:
        rows = self.features.shape[0]
        if self.features.ndim != 2 or self.features.shape[1] != len(self.feature_names):
            raise ValueError(f"features {self.features.shape} vs {len(self.feature_names)} names")
        for extra in (self.label, self.amount_bdt, self.pattern):
            if extra is not None and extra.shape != (rows,):
                raise ValueError(f"an array of shape {extra.shape} for {rows} rows")

    @property
    def rows(self) -> int:
        return int(self.features.shape[0])

    @property
    def positives(self) -> int:
        return int(self.label.sum())


def _label_array(series: pd.Series, name: str) -> FloatArray:
    if series.isna().any():
        raise UserError(f"label {name!r}: {int(series.isna().sum())} rows have no value")
    values = pd.to_numeric(series.astype("int64") if series.dtype == bool else series)
    out = values.to_numpy(dtype=np.float64)
    if not np.isin(out, (0.0, 1.0)).all():
        raise UserError(f"label {name!r} must be 0/1 or boolean")
    return out


def to_matrix(
    frame: pd.DataFrame,
    schema: FeatureSchema,
    *,
    amount_column: str = AMOUNT,
    pattern_column: str = PATTERN,
) -> FeatureMatrix:
    """Encode ``frame`` (which must hold the label) as a :class:`FeatureMatrix`."""
    if schema.label not in frame.columns:
        raise UserError(f"to_matrix: the frame has no label column {schema.label!r}")
    amount = (
        frame[amount_column].to_numpy(dtype=np.float64) if amount_column in frame.columns else None
    )
    pattern = _optional_text(frame[pattern_column]) if pattern_column in frame.columns else None
    return FeatureMatrix(
        features=schema.encode(frame),
        label=_label_array(frame[schema.label], schema.label),
        feature_names=tuple(schema.feature_names),
        amount_bdt=amount,
        pattern=pattern,
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
    time_column: str = EVENT_TIMESTAMP,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    label: str = LABEL,
    max_categories: int = DEFAULT_MAX_CATEGORIES,
    metadata: Mapping[str, str] | None = None,
) -> TrainingSet:
    """Split a joined frame by time, fit the schema on train, encode the three parts."""
    split = time_split(frame, time_column, fractions, label)
    schema = fit_schema(split.train, feature_types, label=label, max_categories=max_categories,
                        metadata=metadata)  # fmt: skip
    return TrainingSet(
        split=split,
        schema=schema,
        train=to_matrix(split.train, schema),
        validation=to_matrix(split.validation, schema),
        test=to_matrix(split.test, schema),
    )


def build_training_set(
    store: FeatureStore,
    payments: pd.DataFrame,
    *,
    service: str = FRAUD_SERVICE,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    max_categories: int = DEFAULT_MAX_CATEGORIES,
) -> TrainingSet:
    """The fraud model's training set: Feast's point-in-time join of ``service`` for every
    payment, split by time, encoded with a schema fitted on the train part."""
    frame = training_frame(store, payments, service)
    return prepare_training_set(
        frame,
        service_feature_types(store, service),
        fractions=fractions,
        max_categories=max_categories,
        metadata={"feature_service": service},
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
