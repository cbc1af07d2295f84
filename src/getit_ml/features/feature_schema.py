"""The model's input contract, ``feature_schema.json``: one reader and writer for every layer.

Training fits it on the train part (:func:`fit_schema`) and writes it beside the model and the
reference export; serving encodes requests with it; the monitoring sidecars read the same file in
their own environment (numpy 1.24, pydantic 1). So this module imports nothing but the standard
library, numpy and pandas, and no family code: what the sidecars need to know of a model family
(the output they watch, the class names, the features drift ignores, the reason phrases) travels
in the file's ``monitoring`` section (:class:`MonitoringHints`), written by training from the
family's declaration.

The document (format ``getit-ml/feature-schema``; version 2 is written, 1 is still read):

* ``features``: the model's inputs in column order, each with ``name``, ``kind`` (``numeric``,
  ``bool`` or ``categorical``), ``dtype`` (its Feast type) and, for a categorical feature,
  ``categories`` (a value's code is its position in that list);
* ``label``: the label column of the training frames;
* ``encoding``: the rules below, so that a reader needs no code of ours;
* ``metadata``: string facts (feature service, data snapshot, family);
* ``monitoring``: :class:`MonitoringHints` (version 2).

Encoding: numbers and booleans as float64 (1.0 true, 0.0 false), categories as the float code of
the category; missing, infinite, unusable or unseen values are NaN (XGBoost's learned "missing"
branch), exactly as in training.
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
import pandas as pd

from getit_ml.errors import UserError

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
FeatureKind = Literal["numeric", "bool", "categorical"]

SCHEMA_FORMAT: Final = "getit-ml/feature-schema"
SCHEMA_VERSION: Final = 2
#: Versions :meth:`FeatureSchema.from_dict` reads (version 1 had no ``monitoring`` section).
READABLE_VERSIONS: Final = (1, 2)
SCHEMA_FILE: Final = "feature_schema.json"
REFERENCE_FILE: Final = "reference.parquet"
KINDS: Final[tuple[FeatureKind, ...]] = ("numeric", "bool", "categorical")
#: Feast type name -> how the feature is encoded.
KIND_OF_TYPE: Final[dict[str, FeatureKind]] = {
    "int64": "numeric",
    "float64": "numeric",
    "bool": "bool",
    "string": "categorical",
}
#: How values are encoded; written into the document so a reader needs no code of ours.
ENCODING_RULES: Final[dict[str, str]] = {
    "numeric": "float64; missing or infinite = null",
    "bool": "1.0 true, 0.0 false; missing = null",
    "categorical": "float64 index into `categories`; missing or unseen = null",
}
#: A string feature keeps at most this many categories (the most frequent in train); the rest
#: encode as missing, like a category first seen in serving.
DEFAULT_MAX_CATEGORIES: Final = 256
#: The directions a reason phrase can be attached to (a categorical feature's: its categories).
REASON_DIRECTIONS: Final = ("high", "low", "true", "false", "missing")
_TRUE: Final = frozenset({"true", "1", "yes", "t", "y"})
_FALSE: Final = frozenset({"false", "0", "no", "f", "n"})


# ------------------------------------------------------------------------------ one feature
@dataclass(frozen=True)
class FeatureSpec:
    """One model input: its name, how it is encoded, its source type and (for strings) the
    category list whose positions are the codes."""

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
        missing, unusable or unseen values (as the frame encoding does)."""
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


# ------------------------------------------------------------------- what monitoring needs
@dataclass(frozen=True)
class ReasonPhrase:
    """A hand-written reason for one feature in one direction: ``is_new_device`` ``true`` ->
    ``NEW_DEVICE`` "new device". Features without one get a phrase built from their name."""

    feature: str
    direction: str
    code: str
    text: str

    def __post_init__(self) -> None:
        if not self.direction:
            raise UserError(
                f"reason for {self.feature!r}: the direction must be one of "
                f"{', '.join(REASON_DIRECTIONS)} or, for a categorical feature, a category"
            )
        if not self.code or not self.text:
            raise UserError(f"reason for {self.feature!r}: code and text must not be empty")

    def to_dict(self) -> dict[str, str]:
        return {
            "feature": self.feature,
            "direction": self.direction,
            "code": self.code,
            "text": self.text,
        }


@dataclass(frozen=True)
class MonitoringHints:
    """What the explainer and the drift detector need to know of a model, without its family's
    code: the output tensor that holds the score, the names of the two classes, the features the
    drift test leaves out (constant within a window, such as the local hour) and reason phrases.
    """

    #: The response output that holds the positive class's probability.
    output: str = "probability"
    positive_class: str = "positive"
    negative_class: str = "negative"
    drift_ignored: tuple[str, ...] = ()
    reasons: tuple[ReasonPhrase, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "positive_class": self.positive_class,
            "negative_class": self.negative_class,
            "drift_ignored": list(self.drift_ignored),
            "reasons": [r.to_dict() for r in self.reasons],
        }

    @classmethod
    def from_dict(cls, raw: Any) -> MonitoringHints:
        if not isinstance(raw, Mapping):
            raise UserError("feature schema: `monitoring` must be an object")
        try:
            reasons = tuple(
                ReasonPhrase(str(r["feature"]), str(r["direction"]), str(r["code"]), str(r["text"]))
                for r in raw.get("reasons", [])
            )
            return cls(
                output=str(raw.get("output", cls.output)),
                positive_class=str(raw.get("positive_class", cls.positive_class)),
                negative_class=str(raw.get("negative_class", cls.negative_class)),
                drift_ignored=tuple(str(n) for n in raw.get("drift_ignored", [])),
                reasons=reasons,
            )
        except (KeyError, TypeError) as error:
            raise UserError(f"feature schema: malformed `monitoring` section ({error!r})") from None

    def reason_table(self) -> dict[tuple[str, str], tuple[str, str]]:
        """``(feature, direction) -> (code, text)``."""
        return {(r.feature, r.direction): (r.code, r.text) for r in self.reasons}


# --------------------------------------------------------------------------------- the schema
@dataclass(frozen=True)
class FeatureSchema:
    """The model's input contract: feature order, encodings, categories, the label name, string
    metadata and the monitoring hints."""

    features: tuple[FeatureSpec, ...]
    label: str = "label"
    metadata: Mapping[str, str] = field(default_factory=dict)
    monitoring: MonitoringHints = field(default_factory=MonitoringHints)

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

    def feature(self, name: str) -> FeatureSpec:
        return self.features[self.index(name)]

    def discrete_indices(self) -> list[int]:
        return [i for i, f in enumerate(self.features) if f.is_discrete]

    def category_map(self) -> dict[int, list[str]]:
        """Column index -> category names, for each categorical feature (alibi's layout)."""
        return {
            i: list(f.categories) for i, f in enumerate(self.features) if f.kind == "categorical"
        }

    def with_metadata(self, **facts: str) -> FeatureSchema:
        """The same schema with ``facts`` added to its metadata."""
        return FeatureSchema(self.features, self.label, {**self.metadata, **facts}, self.monitoring)

    # ------------------------------------------------------------------------------ encoding
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

    def encode_records(self, records: Sequence[Mapping[str, Any]]) -> FloatArray:
        """Rows given as ``{feature name: raw value}`` as the ``(rows, features)`` matrix; a
        feature a record lacks is missing (NaN), names the schema does not know are ignored."""
        matrix = np.full((len(records), self.width), np.nan, dtype=np.float64)
        for i, record in enumerate(records):
            for j, feature in enumerate(self.features):
                if feature.name in record:
                    matrix[i, j] = feature.encode(record[feature.name])
        return matrix

    # ---------------------------------------------------------------------------- the file
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": SCHEMA_FORMAT,
            "version": SCHEMA_VERSION,
            "label": self.label,
            "encoding": dict(ENCODING_RULES),
            "feature_names": self.feature_names,
            "features": [f.to_dict() for f in self.features],
            "metadata": dict(self.metadata),
            "monitoring": self.monitoring.to_dict(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> FeatureSchema:
        if raw.get("format") != SCHEMA_FORMAT or raw.get("version") not in READABLE_VERSIONS:
            raise UserError(
                f"not a {SCHEMA_FORMAT} document of version "
                f"{' or '.join(str(v) for v in READABLE_VERSIONS)} "
                f"(format={raw.get('format')!r}, version={raw.get('version')!r})"
            )
        entries = raw.get("features")
        if not isinstance(entries, list):
            raise UserError("feature schema: `features` must be a list")
        features: list[FeatureSpec] = []
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
                FeatureSpec(
                    name=str(entry["name"]),
                    kind=kind,
                    dtype=str(entry.get("dtype", "float64")),
                    categories=tuple(str(c) for c in categories),
                )
            )
        metadata = raw.get("metadata") or {}
        if not isinstance(metadata, Mapping):
            raise UserError("feature schema: `metadata` must be an object")
        monitoring = MonitoringHints.from_dict(raw.get("monitoring") or {})
        return cls(
            tuple(features),
            str(raw.get("label", "label")),
            {str(k): str(v) for k, v in metadata.items()},
            monitoring,
        )

    @classmethod
    def from_json(cls, text: str, source: str = "feature schema") -> FeatureSchema:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as error:
            raise UserError(f"{source}: the feature schema is not JSON ({error})") from None
        if not isinstance(raw, dict):
            raise UserError(f"{source}: the feature schema is not a JSON object")
        return cls.from_dict(raw)

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json(), encoding="utf-8")
        return path

    @classmethod
    def read(cls, path: Path) -> FeatureSchema:
        if not path.is_file():
            raise UserError(f"no feature schema at {path} (written by the training pipeline)")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            raise UserError(f"{path}: the feature schema is not JSON ({error})") from None
        return cls.from_json(text, str(path))


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


# ---------------------------------------------------------------------------------- fitting
def infer_type(series: pd.Series) -> str:
    """The Feast type name of a frame column (``int64``, ``float64``, ``bool``, ``string``)."""
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
    label: str,
    max_categories: int = DEFAULT_MAX_CATEGORIES,
    metadata: Mapping[str, str] | None = None,
    monitoring: MonitoringHints | None = None,
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
        dtype = features[name] if isinstance(features, Mapping) else infer_type(frame[name])
        kind = KIND_OF_TYPE.get(dtype)
        if kind is None:
            raise UserError(f"feature {name}: unknown type {dtype!r}; use {sorted(KIND_OF_TYPE)}")
        categories: tuple[str, ...] = ()
        if kind == "categorical":
            # The same text form as encode() uses, so a code always finds its category.
            counts = frame[name].astype("string").dropna().value_counts(sort=False)
            # Most frequent first, ties by name, so the kept set is deterministic.
            ranked = sorted(counts.items(), key=lambda kv: (-int(kv[1]), str(kv[0])))
            categories = tuple(sorted(str(k) for k, _ in ranked[:max_categories]))
            if len(counts) > max_categories:
                logger.info("%s: kept %d of %d categories", name, max_categories, len(counts))
            if not categories:
                # A string column with no value in train: one placeholder level, so the schema
                # stays valid; every value encodes as missing.
                categories = ("<none>",)
        specs.append(FeatureSpec(name, kind, dtype, categories))
    return FeatureSchema(tuple(specs), label, dict(metadata or {}), monitoring or MonitoringHints())
