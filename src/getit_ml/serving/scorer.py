"""The binary tabular scorer: v2 inputs to an encoded matrix, XGBoost ``inplace_predict``, checked
scores. It serves every family of the ``xgboost-binary`` runtime (fraud, churn): everything it
needs to know of one — the features, their encodings, the name of its probability output — is in
the model folder's feature schema.

Two input forms (never mixed in one request):

* **named** — one tensor per model feature, named as in the feature schema, shape ``[N]`` or
  ``[N, 1]``: numeric features as any numeric datatype, boolean features as ``BOOL`` (or 0/1),
  categorical features as ``BYTES`` holding the category text (a category the model never saw
  is missing, exactly as in training) or as integer codes;
* **batch** — one tensor ``features``, shape ``[N, F]`` (or ``[F]`` for one row), columns in schema
  order, already encoded (:meth:`~getit_ml.training.dataset.FeatureSchema.encode`).

Missing values cannot travel as NaN (non-finite input is rejected with 400, so that a broken
client cannot pass garbage off as "missing"): an optional ``BOOL`` input ``missing`` of shape
``[N, F]`` (schema order) marks them, and they reach the booster as NaN — XGBoost's learned
default branch, as the model was trained (:class:`~getit_ml.training.dataset.FeatureSchema`
encodes missing as NaN).

Values outside float32's finite range (``|x| > 3.4e38``: ``1e308`` is a valid FP64) are a 400
naming the input: the trees compare in float32, where such a value is infinity and scores as
whatever branch infinity happens to take. (Infinity itself never gets this far: the codec
refuses it.) Under a ``missing`` flag a value is not judged: it is never used.

Outputs: the positive class's probability (FP64 ``[N]``, named by the schema's monitoring hints:
``fraud_probability``, ``churn_probability``) and ``decision`` (BOOL ``[N]``, probability at or
above the threshold); the response carries ``model_version`` and ``parameters.threshold``. A score
that is not a finite probability is never returned: the request fails with 500.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import xgboost as xgb

from getit_ml.errors import UserError
from getit_ml.features.feature_schema import FeatureSchema, FloatArray
from getit_ml.serving.forest import MAX_FLAT_ROWS, verified_forest
from getit_ml.serving.protocol import (
    INTEGER_TYPES,
    NUMERIC_TYPES,
    AnyArray,
    InferenceRequest,
    InferenceResponse,
    OutputTensor,
    ProtocolError,
    Tensor,
    bad_request,
    model_metadata,
    select_outputs,
    tensor_metadata,
)
from getit_ml.training.xgb import load_model

if TYPE_CHECKING:
    from getit_ml.registry.mlflow_registry import RegistryConfig

logger = logging.getLogger(__name__)

DEFAULT_MODEL_NAME: Final = "model"
DEFAULT_THRESHOLD: Final = 0.5
#: Schema metadata key a training pipeline may set to carry its chosen decision threshold.
THRESHOLD_METADATA_KEY: Final = "decision_threshold"
DEFAULT_MAX_ROWS: Final = 10_000
BATCH_INPUT: Final = "features"
MISSING_INPUT: Final = "missing"
DECISION_OUTPUT: Final = "decision"
PLATFORM: Final = "xgboost_json"
#: The largest magnitude the trees (float32) can hold.
FLOAT32_MAX: Final = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class ScorerOptions:
    #: ``None``: the family the model was trained for (its schema's metadata), else ``model``.
    name: str | None = None
    #: ``None``: the schema's ``decision_threshold`` metadata, else :data:`DEFAULT_THRESHOLD`.
    threshold: float | None = None
    max_rows: int = DEFAULT_MAX_ROWS
    #: XGBoost prediction threads; 1 is fastest for small batches (no OpenMP hand-off).
    nthread: int = 1
    #: ``auto``: the verified flat forest (:mod:`getit_ml.serving.forest`) for small batches,
    #: XGBoost otherwise; ``xgboost``: always ``inplace_predict``.
    engine: str = "auto"


class BinaryTabularScorer:
    """A loaded binary XGBoost model that answers v2 inference requests (see the module
    docstring)."""

    def __init__(
        self,
        booster: xgb.Booster,
        schema: FeatureSchema,
        *,
        version: str,
        options: ScorerOptions = ScorerOptions(),
    ) -> None:
        names = booster.feature_names
        if names is not None and list(names) != schema.feature_names:
            raise UserError("the booster's features differ from the feature schema's")
        threshold = options.threshold
        if threshold is None:
            threshold = float(schema.metadata.get(THRESHOLD_METADATA_KEY, DEFAULT_THRESHOLD))
        if not (math.isfinite(threshold) and 0.0 <= threshold <= 1.0):
            raise UserError(f"the decision threshold must be in [0, 1] (got {threshold})")
        if options.max_rows < 1:
            raise UserError(f"max rows per request must be positive (got {options.max_rows})")
        if options.engine not in ("auto", "xgboost"):
            raise UserError(f"engine must be auto or xgboost (got {options.engine!r})")
        booster.set_param({"nthread": options.nthread})
        self._forest = verified_forest(booster) if options.engine == "auto" else None
        #: What scores small batches: ``flat-forest`` or ``xgboost``.
        self.engine = "xgboost" if self._forest is None else "flat-forest"
        self.name = options.name or schema.metadata.get("family") or DEFAULT_MODEL_NAME
        self.version = version
        self.threshold = threshold
        self.schema = schema
        self.probability_output = schema.monitoring.output
        self.max_rows = options.max_rows
        self.ready = True
        self._booster = booster
        self._width = len(schema.features)
        self._index = {name: j for j, name in enumerate(schema.feature_names)}
        self._codes = [
            {category: float(code) for code, category in enumerate(spec.categories)}
            if spec.kind == "categorical"
            else None
            for spec in schema.features
        ]
        self._categorical_columns = [j for j, c in enumerate(self._codes) if c is not None]
        self._bool_columns = [j for j, s in enumerate(schema.features) if s.kind == "bool"]
        self._metadata = model_metadata(
            self.name,
            [version],
            PLATFORM,
            [
                *(
                    tensor_metadata(spec.name, _datatype_of(spec.kind), [-1])
                    for spec in schema.features
                ),
                tensor_metadata(MISSING_INPUT, "BOOL", [-1, self._width]),
            ],
            [
                tensor_metadata(self.probability_output, "FP64", [-1]),
                tensor_metadata(DECISION_OUTPUT, "BOOL", [-1]),
            ],
        )

    # ------------------------------------------------------------------------ v2 model interface
    def metadata(self) -> dict[str, Any]:
        return self._metadata

    async def infer(self, request: InferenceRequest) -> InferenceResponse:
        return self.infer_sync(request)

    def infer_sync(self, request: InferenceRequest) -> InferenceResponse:
        matrix = self.encode(request)
        probability = self.predict(matrix)
        outputs = (
            OutputTensor(self.probability_output, "FP64", probability),
            OutputTensor(DECISION_OUTPUT, "BOOL", probability >= self.threshold),
        )
        return InferenceResponse(
            model_name=self.name,
            model_version=self.version,
            id=request.id,
            outputs=select_outputs(outputs, request.outputs),
            parameters={"threshold": self.threshold},
        )

    # ---------------------------------------------------------------------------- the two steps
    def encode(self, request: InferenceRequest) -> FloatArray:
        """The ``(N, F)`` float64 matrix of a request, NaN where a value is missing."""
        batch = request.input(BATCH_INPUT) if BATCH_INPUT not in self._index else None
        mask_tensor = request.input(MISSING_INPUT) if MISSING_INPUT not in self._index else None
        if batch is not None:
            extra = [t.name for t in request.inputs if t.name not in (BATCH_INPUT, MISSING_INPUT)]
            if extra:
                raise bad_request(
                    f"input(s) {extra} given with {BATCH_INPUT!r}: send the batch tensor or "
                    "named features, not both"
                )
            matrix = self._batch_matrix(batch)
        else:
            matrix = self._named_matrix(request)
        if mask_tensor is not None:
            mask = self._mask(mask_tensor, matrix.shape[0])
            matrix[mask] = np.nan
        # Checked after the mask: a placeholder under a "missing" flag is never judged.
        # One reduction over |x| (fmax skips NaN, the missing values): ~3 µs for a row.
        if matrix.size and np.fmax.reduce(np.abs(matrix), axis=None) > FLOAT32_MAX:
            self._reject_overflow(matrix, batch is not None)
        for j in self._categorical_columns:
            self._check_codes(matrix[:, j], j)
        for j in self._bool_columns:
            self._check_flags(matrix[:, j], j)
        return matrix

    def predict(self, matrix: FloatArray) -> FloatArray:
        """Probabilities; a 500 :class:`ProtocolError` unless all are finite in [0, 1]."""
        try:
            if self._forest is not None and matrix.shape[0] <= MAX_FLAT_ROWS:
                raw = self._forest.predict(matrix)
            else:
                raw = self._booster.inplace_predict(matrix, missing=np.nan, validate_features=False)
        except xgb.core.XGBoostError as error:
            logger.error("prediction failed: %s", error)
            raise ProtocolError(500, f"the model failed to score the request: {error}") from None
        probability = np.asarray(raw, dtype=np.float64).reshape(-1)
        if probability.shape[0] != matrix.shape[0] or not (
            np.isfinite(probability).all()
            and (probability >= 0.0).all()
            and (probability <= 1.0).all()
        ):
            logger.error("the model produced an invalid score: %s", probability[:10])
            raise ProtocolError(500, "the model produced a score that is not a finite probability")
        return probability

    # ---------------------------------------------------------------------------------- helpers
    def _rows(self, rows: int) -> int:
        if rows < 1:
            raise bad_request("the request has no rows to score")
        if rows > self.max_rows:
            raise bad_request(f"{rows} rows in one request (at most {self.max_rows})")
        return rows

    def _batch_matrix(self, tensor: Tensor) -> FloatArray:
        if tensor.datatype not in NUMERIC_TYPES:
            raise bad_request(f"input {BATCH_INPUT!r}: datatype must be numeric, not BOOL/BYTES")
        shape = tensor.shape
        if len(shape) == 1 and shape[0] == self._width:
            shape = (1, self._width)
        if len(shape) != 2 or shape[1] != self._width:
            raise bad_request(
                f"input {BATCH_INPUT!r}: shape {list(tensor.shape)} must be [N, {self._width}] "
                f"(the model has {self._width} features)"
            )
        self._rows(shape[0])
        return np.array(tensor.data, dtype=np.float64).reshape(shape)

    def _named_matrix(self, request: InferenceRequest) -> FloatArray:
        unknown = [
            t.name for t in request.inputs if t.name not in self._index and t.name != MISSING_INPUT
        ]
        if unknown:
            shown = ", ".join(repr(n) for n in unknown[:5])
            raise bad_request(
                f"unknown input(s) {shown}: send the model's features by name (see the model "
                f"metadata) or one {BATCH_INPUT!r} tensor"
            )
        given = [t for t in request.inputs if t.name in self._index]
        if len(given) != self._width:
            absent = [n for n in self.schema.feature_names if request.input(n) is None]
            shown = ", ".join(absent[:5]) + (" ..." if len(absent) > 5 else "")
            raise bad_request(
                f"{len(absent)} feature(s) missing from the request: {shown} (send every "
                f"feature; mark unknown values with the {MISSING_INPUT!r} input)"
            )
        rows = self._rows(_column_length(given[0]))
        matrix = np.empty((rows, self._width), dtype=np.float64)
        for tensor in given:
            if _column_length(tensor) != rows:
                raise bad_request(
                    f"input {tensor.name!r}: shape {list(tensor.shape)} disagrees with "
                    f"{rows} row(s)"
                )
            j = self._index[tensor.name]
            matrix[:, j] = self._column(tensor, j)
        return matrix

    def _column(self, tensor: Tensor, j: int) -> FloatArray:
        values = tensor.data.reshape(-1)
        codes = self._codes[j]
        if codes is not None:
            if tensor.datatype == "BYTES":
                return np.array([codes.get(v, np.nan) for v in values], dtype=np.float64)
            if tensor.datatype not in INTEGER_TYPES:
                raise bad_request(
                    f"input {tensor.name!r}: a categorical feature takes BYTES (the category) "
                    f"or integer codes, not {tensor.datatype}"
                )
            return values.astype(np.float64)
        if tensor.datatype == "BYTES":
            raise bad_request(f"input {tensor.name!r}: a numeric feature cannot be BYTES")
        return values.astype(np.float64)

    def _reject_overflow(self, matrix: FloatArray, batch: bool) -> None:
        """The 400 for a value beyond float32, naming its input (and row)."""
        with np.errstate(invalid="ignore"):
            row, j = (int(k) for k in np.argwhere(np.abs(matrix) > FLOAT32_MAX)[0])
        name = self.schema.features[j].name
        where = f"input {BATCH_INPUT!r}, column {j} ({name!r})" if batch else f"input {name!r}"
        raise bad_request(
            f"{where}, row {row}: {matrix[row, j]:g} is outside the finite float32 range the "
            f"model computes in (|x| <= {FLOAT32_MAX:.4g})"
        )

    def _check_codes(self, column: FloatArray, j: int) -> None:
        spec = self.schema.features[j]
        known = column[~np.isnan(column)]
        if (
            known.size
            and not (
                (known >= 0) & (known < len(spec.categories)) & (known == np.floor(known))
            ).all()
        ):
            raise bad_request(
                f"feature {spec.name!r}: category codes must be integers in [0, "
                f"{len(spec.categories)}); send an unknown category as missing"
            )

    def _check_flags(self, column: FloatArray, j: int) -> None:
        known = column[~np.isnan(column)]
        if known.size and not np.isin(known, (0.0, 1.0)).all():
            raise bad_request(
                f"feature {self.schema.features[j].name!r}: a boolean feature takes "
                "true/false or 0/1"
            )

    def _mask(self, tensor: Tensor, rows: int) -> AnyArray:
        if tensor.datatype != "BOOL":
            raise bad_request(f"input {MISSING_INPUT!r}: datatype must be BOOL")
        shape = tensor.shape
        if shape == (self._width,) and rows == 1:
            shape = (1, self._width)
        if shape != (rows, self._width):
            raise bad_request(
                f"input {MISSING_INPUT!r}: shape {list(tensor.shape)} must be "
                f"[{rows}, {self._width}] (rows x features in schema order)"
            )
        return tensor.data.reshape(shape)


def _datatype_of(kind: str) -> str:
    return {"numeric": "FP64", "bool": "BOOL", "categorical": "BYTES"}[kind]


def _column_length(tensor: Tensor) -> int:
    shape = tensor.shape
    if len(shape) == 1 or (len(shape) == 2 and shape[1] == 1):
        return shape[0]
    raise bad_request(f"input {tensor.name!r}: shape {list(shape)} must be [N] or [N, 1]")


# ------------------------------------------------------------------------------------- loading
def _short_digest(path: Path) -> str:
    from getit_ml.registry.mlflow_registry import artifact_sha256

    return f"sha256-{artifact_sha256(path)[:12]}"


def load_scorer(
    *,
    model_dir: Path | None = None,
    model_uri: str | None = None,
    registry: RegistryConfig | None = None,
    expected_sha256: str | None = None,
    options: ScorerOptions = ScorerOptions(),
) -> BinaryTabularScorer:
    """Load a model from the registry (``models:/fraud@champion``) or a folder.

    From the registry the artefact's SHA-256 must equal the registry's record
    (:class:`~getit_ml.registry.mlflow_registry.ArtifactMismatchError` otherwise: nothing is
    served) and the version is the registry's version number. From a folder, ``expected_sha256``
    (if given) must match, and the version is ``sha256-`` plus the artefact digest's first 12
    hex digits.
    """
    if (model_dir is None) == (model_uri is None):
        raise UserError("give exactly one of a model folder or a registry model URI")
    if model_uri is not None:
        from getit_ml.registry.mlflow_registry import resolve

        if registry is None:
            raise UserError(f"{model_uri}: no registry to resolve it in")
        resolved = resolve(registry, model_uri)
        path, version = resolved.path, resolved.info.version
    else:
        assert model_dir is not None
        if not model_dir.is_dir():
            raise UserError(f"model folder {model_dir} does not exist")
        path = model_dir
        if expected_sha256 is not None:
            from getit_ml.registry.mlflow_registry import verify_artifact

            verify_artifact(path, expected_sha256)
        version = _short_digest(path)
    booster, schema = load_model(path)
    scorer = BinaryTabularScorer(booster, schema, version=version, options=options)
    logger.info(
        "scorer %s version %s: %d features, threshold %.4f, engine %s, from %s",
        scorer.name, version, len(schema.features), scorer.threshold, scorer.engine, path,
    )  # fmt: skip
    return scorer


def describe(scorer: BinaryTabularScorer) -> Mapping[str, str]:
    """A few facts for logs and the demo's summary."""
    return {
        "model": scorer.name,
        "version": scorer.version,
        "features": str(len(scorer.schema.features)),
        "threshold": f"{scorer.threshold:g}",
        "engine": scorer.engine,
    }
