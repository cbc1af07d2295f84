"""The feature transformer: request fields in, the model's answer out (Feast, then v2).

A caller knows ids and a few facts of the moment (a checkout's amount and payment rail), not the
model's hundred-odd features. The transformer (KServe's pre-processing step, in its own process in
front of the scorer) is the same for every family; it takes the family's request declaration
(:class:`~getit_ml.serving.runtime.ServingSpec`) and its Feast feature service:

1. decodes the request (v2 named inputs, ``[N]`` rows) against the declared inputs, filling the
   optional ones with their defaults;
2. reads the feature service's feature views online for each row's entity keys — the join keys
   of the service's views, found in the Feast registry (:class:`FeastLookup`: one
   ``get_online_features`` over the views' feature references, plus the view features the
   on-demand views consume);
3. adds the on-demand features with the very functions the feature repository's on-demand views
   run (:data:`getit_ml.features.context.ON_DEMAND_FUNCTIONS`, found by the name of each view's
   body), so serving equals training;
4. sends every model input by name to the scorer over v2 REST or gRPC, with the ``missing`` mask
   for values the store did not have (unknown customer, expired feature, null): the scorer turns
   them into NaN, the way the model was trained — never a crash, never a made-up value;
5. returns the scorer's outputs, adding ``parameters.missing_features`` (how many model inputs
   were missing, over all rows).

The model's inputs come from the scorer's v2 metadata at start-up, so the transformer needs no
copy of the model or its schema.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

from getit_ml.errors import UserError
from getit_ml.features.context import ON_DEMAND_FUNCTIONS
from getit_ml.serving.predictor import PredictorClient
from getit_ml.serving.protocol import (
    INTEGER_TYPES,
    NUMERIC_TYPES,
    InferenceRequest,
    InferenceResponse,
    ProtocolError,
    bad_request,
    model_metadata,
    select_outputs,
    tensor_metadata,
)
from getit_ml.serving.runtime import RequestInput
from getit_ml.serving.scorer import DEFAULT_MODEL_NAME, MISSING_INPUT

if TYPE_CHECKING:
    from feast import FeatureStore

logger = logging.getLogger(__name__)

TRANSFORMER_PLATFORM: Final = "getit-ml-feast-transformer"
#: An on-demand view's body: columns in (dicts of lists), its features out.
OnDemand = Callable[[dict[str, Any]], dict[str, Any]]
_DEF: Final = re.compile(r"def\s+(\w+)\s*\(")


def _on_demand_body(service: str, view: Any) -> OnDemand:
    """Our function that computes on-demand view ``view``, found by its body's name."""
    transformation = getattr(view, "feature_transformation", None)
    function = getattr(transformation, "udf", None)
    name = getattr(function, "__name__", None)
    if name not in ON_DEMAND_FUNCTIONS:
        found = _DEF.search(str(getattr(transformation, "udf_string", "") or ""))
        name = found.group(1) if found else name
    if name not in ON_DEMAND_FUNCTIONS:
        raise UserError(
            f"{service}: no serving code for on-demand view {view.name} (body {name!r}; add it "
            "to getit_ml.features.context.ON_DEMAND_FUNCTIONS)"
        )
    return ON_DEMAND_FUNCTIONS[str(name)]


class FeatureLookup(Protocol):
    """Online feature values for entity rows: column name -> one value per row (None: missing).

    ``entity_keys`` are the join keys a row needs, ``request_fields`` what the on-demand views
    read from the request, ``on_demand`` the bodies of the on-demand views to compute."""

    entity_keys: tuple[str, ...]
    request_fields: tuple[str, ...]
    on_demand: list[OnDemand]

    def read(self, entity_rows: Sequence[Mapping[str, int]]) -> dict[str, list[Any]]: ...


class FeastLookup:
    """Reads a feature service's feature views from a Feast online store (its on-demand views
    are computed by the transformer, not by Feast: same functions, a millisecond less)."""

    def __init__(self, store: FeatureStore, service: str) -> None:
        from feast.errors import FeastError

        try:
            feature_service = store.get_feature_service(service, allow_cache=True)
            on_demand = {v.name: v for v in store.list_on_demand_feature_views(allow_cache=True)}
            views = {v.name: v for v in store.list_feature_views(allow_cache=True)}
        except FeastError as error:
            raise UserError(f"feature service {service!r}: {error}") from None
        refs: list[str] = []
        keys: list[str] = []
        request_fields: list[str] = []
        self.on_demand: list[OnDemand] = []
        self.on_demand_outputs: set[str] = set()
        for projection in feature_service.feature_view_projections:
            if projection.name in on_demand:
                view = on_demand[projection.name]
                self.on_demand.append(_on_demand_body(service, view))
                self.on_demand_outputs.update(f.name for f in view.features)
                for source in view.source_feature_view_projections.values():
                    refs.extend(f"{source.name}:{f.name}" for f in source.features)
                    keys.extend(self._join_keys(views, source.name))
                for request_source in view.source_request_sources.values():
                    request_fields.extend(f.name for f in request_source.schema)
            else:
                refs.extend(f"{projection.name}:{f.name}" for f in projection.features)
                keys.extend(self._join_keys(views, projection.name))
        self.refs = list(dict.fromkeys(refs))
        self.entity_keys = tuple(dict.fromkeys(keys))
        self.request_fields = tuple(dict.fromkeys(request_fields))
        self.store = store
        self.service = service

    @staticmethod
    def _join_keys(views: Mapping[str, Any], name: str) -> list[str]:
        view = views.get(name)
        if view is None:
            raise UserError(f"feature view {name!r} is not in the registry")
        return [column.name for column in view.entity_columns]

    @property
    def feature_names(self) -> set[str]:
        """Every column a read returns, and what the on-demand views add."""
        return {ref.partition(":")[2] for ref in self.refs} | self.on_demand_outputs

    def read(self, entity_rows: Sequence[Mapping[str, int]]) -> dict[str, list[Any]]:
        from feast.errors import FeastError

        try:
            response = self.store.get_online_features(
                features=self.refs, entity_rows=[dict(r) for r in entity_rows]
            )
        except (FeastError, KeyError, ValueError, TypeError) as error:
            raise ProtocolError(503, f"feature store read failed: {error}") from None
        return {name: list(values) for name, values in response.to_dict().items()}


@dataclass(frozen=True)
class PredictorInput:
    name: str
    datatype: str


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    return isinstance(value, float) and not math.isfinite(value)


def _request_column(
    request: InferenceRequest, spec: RequestInput, rows: int | None
) -> list[Any] | None:
    tensor = request.input(spec.name)
    if tensor is None:
        return None
    name = spec.name
    shape = tensor.shape
    if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
        raise bad_request(f"input {name!r}: shape {list(shape)} must be [N] or [N, 1]")
    if rows is not None and shape[0] != rows:
        raise bad_request(f"input {name!r}: {shape[0]} rows, other inputs have {rows}")
    if spec.datatype == "INT64" and tensor.datatype not in INTEGER_TYPES:
        raise bad_request(f"input {name!r}: datatype must be an integer type")
    if spec.datatype == "FP64" and tensor.datatype not in NUMERIC_TYPES:
        raise bad_request(f"input {name!r}: datatype must be numeric")
    if spec.datatype in ("BYTES", "BOOL") and tensor.datatype != spec.datatype:
        raise bad_request(f"input {name!r}: datatype must be {spec.datatype}")
    values: list[Any] = tensor.data.reshape(-1).tolist()
    return values


def request_rows(request: InferenceRequest, spec: Sequence[RequestInput]) -> dict[str, list[Any]]:
    """The request as columns, with defaults filled in; 400 for anything malformed."""
    inputs = {field.name: field for field in spec}
    unknown = [t.name for t in request.inputs if t.name not in inputs]
    if unknown:
        raise bad_request(f"unknown input(s) {unknown}; the request takes {sorted(inputs)}")
    first = request.inputs[0]
    rows = first.shape[0] if first.shape else 0
    columns: dict[str, list[Any]] = {}
    for field in spec:
        column = _request_column(request, field, rows)
        if column is None and field.required:
            raise bad_request(f"input {field.name!r} is required")
        if column is not None:
            columns[field.name] = column
    if rows < 1:
        raise bad_request("the request has no rows")
    for field in spec:
        if field.name not in columns and field.default is not None:
            columns[field.name] = field.default.fill(columns, rows)
    return columns


class FeatureTransformer:
    """Request -> features -> the scorer, over v2 (see the module docstring)."""

    def __init__(
        self,
        lookup: FeatureLookup,
        predictor: PredictorClient,
        request: Sequence[RequestInput],
        *,
        name: str = DEFAULT_MODEL_NAME,
        max_rows: int = 1_000,
    ) -> None:
        names = {field.name for field in request}
        needed = [k for k in (*lookup.entity_keys, *lookup.request_fields) if k not in names]
        if needed:
            raise UserError(
                f"the feature service needs {needed} from the request, which declares only "
                f"{sorted(names)}"
            )
        self.lookup = lookup
        self.predictor = predictor
        self.request = tuple(request)
        self.name = name
        self.max_rows = max_rows
        self.version = ""
        self.ready = False
        self._inputs: list[PredictorInput] = []
        self._outputs: list[dict[str, Any]] = []

    def connect(self, timeout_s: float = 60.0) -> None:
        """Wait for the scorer (at most ``timeout_s``), then learn its inputs and outputs from
        its metadata."""
        meta = self.predictor.wait_for_metadata(self.name, timeout_s)
        self._inputs = [
            PredictorInput(t["name"], t["datatype"])
            for t in meta["inputs"]
            if t["name"] != MISSING_INPUT
        ]
        self._outputs = list(meta["outputs"])
        known = getattr(self.lookup, "feature_names", None)
        if known is not None:
            produced = set(known) | {field.name for field in self.request}
            never = [spec.name for spec in self._inputs if spec.name not in produced]
            if never:
                logger.warning(
                    "%d model input(s) are produced by neither the feature store nor the "
                    "request and will always be missing: %s",
                    len(never),
                    ", ".join(never[:10]),
                )
        versions = meta.get("versions") or []
        self.version = str(versions[0]) if versions else "unknown"
        self.ready = True
        logger.info(
            "transformer for %s version %s: %d model inputs",
            self.name,
            self.version,
            len(self._inputs),
        )

    def metadata(self) -> dict[str, Any]:
        return model_metadata(
            self.name,
            [self.version],
            TRANSFORMER_PLATFORM,
            [tensor_metadata(field.name, field.datatype, [-1]) for field in self.request],
            self._outputs,
        )

    def features(self, request: InferenceRequest) -> tuple[dict[str, list[Any]], int]:
        """Every column the model may need (request fields, store values, on-demand features)
        and the row count."""
        columns = request_rows(request, self.request)
        rows = len(next(iter(columns.values())))
        if rows > self.max_rows:
            raise bad_request(f"{rows} rows in one request (at most {self.max_rows})")
        keys = self.lookup.entity_keys
        entity_rows = [{key: int(columns[key][i]) for key in keys} for i in range(rows)]
        values = self.lookup.read(entity_rows)
        merged: dict[str, list[Any]] = {**values, **columns}
        for body in self.lookup.on_demand:
            merged.update(body(merged))
        return merged, rows

    def predictor_request(self, request: InferenceRequest) -> tuple[dict[str, Any], int]:
        """The scorer's v2 request document and how many values were missing."""
        merged, rows = self.features(request)
        inputs: list[dict[str, Any]] = []
        flags: list[list[bool]] = []
        missing = 0
        for spec in self._inputs:
            column = merged.get(spec.name)
            placeholder = _placeholder(spec.datatype)
            if column is None:
                data: list[Any] = [placeholder] * rows
                column_flags = [True] * rows
            else:
                data, column_flags = [], []
                for value in column:
                    absent = _is_missing(value)
                    column_flags.append(absent)
                    data.append(placeholder if absent else _value(value, spec.datatype))
            missing += sum(column_flags)
            flags.append(column_flags)
            inputs.append(
                {"name": spec.name, "datatype": spec.datatype, "shape": [rows], "data": data}
            )
        inputs.append(
            {
                "name": MISSING_INPUT,
                "datatype": "BOOL",
                "shape": [rows, len(self._inputs)],
                "data": [column[i] for i in range(rows) for column in flags],
            }
        )
        document: dict[str, Any] = {"inputs": inputs}
        if request.id is not None:
            document["id"] = request.id
        return document, missing

    async def aclose(self) -> None:
        """Close the connections to the predictor (the server calls it when it stops)."""
        await self.predictor.close()

    async def infer(self, request: InferenceRequest) -> InferenceResponse:
        document, missing = self.predictor_request(request)
        response = await self.predictor.infer(self.name, document)
        return InferenceResponse(
            model_name=self.name,
            model_version=response.model_version,
            id=request.id,
            outputs=select_outputs(response.outputs, request.outputs),
            parameters={**response.parameters, "missing_features": missing},
        )


def _placeholder(datatype: str) -> Any:
    if datatype == "BYTES":
        return ""
    if datatype == "BOOL":
        return False
    return 0


def _value(value: Any, datatype: str) -> Any:
    if datatype == "BYTES":
        return str(value)
    if datatype == "BOOL":
        return bool(value)
    if isinstance(value, bool):
        return int(value)
    if datatype in INTEGER_TYPES:
        return int(value)
    return float(value)
