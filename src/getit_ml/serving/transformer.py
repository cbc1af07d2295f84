"""The feature transformer: checkout fields in, fraud score out (Feast online store, then v2).

A checkout service knows the customer, the device, the amount and the payment rail — not the
model's hundred-odd features. The transformer (KServe's pre-processing step, in its own process
in front of the scorer):

1. decodes the checkout request (v2 named inputs, see :data:`CHECKOUT_INPUTS`; ``[N]`` rows);
2. reads the ``fraud_scoring_v1`` feature views online for each ``customer_id`` / ``device_id``
   (:class:`FeastLookup`: one ``get_online_features`` over the views' feature references, plus
   the view features the on-demand views consume);
3. adds the on-demand context with the very functions the feature repository's on-demand views
   run (:func:`getit_ml.features.context.calendar_context_view` and
   :func:`~getit_ml.features.context.transaction_context_view`), so serving equals training;
4. sends every model input by name to the scorer over v2 REST or gRPC, with the ``missing`` mask
   for values the store did not have (unknown customer, expired feature, null): the scorer turns
   them into NaN, the way the model was trained — never a crash, never a made-up value;
5. returns the scorer's outputs (probability, decision, model version), adding
   ``parameters.missing_features`` (how many model inputs were missing, over all rows).

The model's inputs come from the scorer's v2 metadata at start-up, so the transformer needs no
copy of the model or its schema.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

import httpx
import numpy as np
import orjson

from getit_ml.errors import UserError
from getit_ml.features import context
from getit_ml.serving.http_client import HttpError, KeepAliveClient
from getit_ml.serving.protocol import (
    INTEGER_TYPES,
    NUMERIC_TYPES,
    NUMPY_TYPES,
    InferenceRequest,
    InferenceResponse,
    OutputTensor,
    ProtocolError,
    bad_request,
    model_metadata,
    select_outputs,
    tensor_metadata,
)
from getit_ml.serving.scorer import DEFAULT_MODEL_NAME, MISSING_INPUT
from getit_ml.training.dataset import FRAUD_SERVICE

if TYPE_CHECKING:
    from feast import FeatureStore

logger = logging.getLogger(__name__)

#: The checkout request: v2 input name -> (datatype in metadata, required).
CHECKOUT_INPUTS: Final[dict[str, tuple[str, bool]]] = {
    "customer_id": ("INT64", True),
    "device_id": ("INT64", False),  # default: checkout_device_id
    "request_ts_us": ("INT64", False),  # default: now
    "amount_bdt": ("FP64", True),
    "payment_method": ("BYTES", True),
    "checkout_device_id": ("INT64", True),
    "checkout_wallet_account_id": ("INT64", False),  # default: -1, no wallet
}
#: On-demand views of the feature repository and the functions that compute them.
ON_DEMAND: Final[dict[str, Callable[[dict[str, Any]], dict[str, Any]]]] = {
    "calendar_context": context.calendar_context_view,
    "transaction_context": context.transaction_context_view,
}
ENTITY_KEYS: Final = ("customer_id", "device_id")
TRANSFORMER_PLATFORM: Final = "getit-ml-feast-transformer"


class FeatureLookup(Protocol):
    """Online feature values for entity rows: column name -> one value per row (None: missing)."""

    def read(self, entity_rows: Sequence[Mapping[str, int]]) -> dict[str, list[Any]]: ...


class FeastLookup:
    """Reads a feature service's feature views from a Feast online store (its on-demand views
    are computed by the transformer, not by Feast: same functions, a millisecond less)."""

    def __init__(self, store: FeatureStore, service: str = FRAUD_SERVICE) -> None:
        from feast.errors import FeastError

        try:
            feature_service = store.get_feature_service(service, allow_cache=True)
            on_demand = {v.name: v for v in store.list_on_demand_feature_views(allow_cache=True)}
        except FeastError as error:
            raise UserError(f"feature service {service!r}: {error}") from None
        refs: list[str] = []
        self.on_demand: list[str] = []
        for projection in feature_service.feature_view_projections:
            if projection.name in on_demand:
                unknown = projection.name not in ON_DEMAND
                if unknown:
                    raise UserError(
                        f"{service}: no serving code for on-demand view {projection.name}"
                    )
                self.on_demand.append(projection.name)
                for source in on_demand[projection.name].source_feature_view_projections.values():
                    refs.extend(f"{source.name}:{f.name}" for f in source.features)
            else:
                refs.extend(f"{projection.name}:{f.name}" for f in projection.features)
        self.refs = list(dict.fromkeys(refs))
        self.store = store
        self.service = service

    @property
    def feature_names(self) -> set[str]:
        """Every column a read returns."""
        return {ref.partition(":")[2] for ref in self.refs}

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


def _checkout_column(request: InferenceRequest, name: str, rows: int | None) -> list[Any] | None:
    tensor = request.input(name)
    if tensor is None:
        return None
    datatype, _ = CHECKOUT_INPUTS[name]
    shape = tensor.shape
    if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
        raise bad_request(f"input {name!r}: shape {list(shape)} must be [N] or [N, 1]")
    if rows is not None and shape[0] != rows:
        raise bad_request(f"input {name!r}: {shape[0]} rows, other inputs have {rows}")
    if datatype == "INT64" and tensor.datatype not in INTEGER_TYPES:
        raise bad_request(f"input {name!r}: datatype must be an integer type")
    if datatype == "FP64" and tensor.datatype not in NUMERIC_TYPES:
        raise bad_request(f"input {name!r}: datatype must be numeric")
    if datatype == "BYTES" and tensor.datatype != "BYTES":
        raise bad_request(f"input {name!r}: datatype must be BYTES")
    values: list[Any] = tensor.data.reshape(-1).tolist()
    return values


def checkout_rows(request: InferenceRequest) -> dict[str, list[Any]]:
    """The checkout request as columns, with defaults filled in; 400 for anything malformed."""
    unknown = [t.name for t in request.inputs if t.name not in CHECKOUT_INPUTS]
    if unknown:
        raise bad_request(f"unknown input(s) {unknown}; a checkout has {sorted(CHECKOUT_INPUTS)}")
    first = request.inputs[0]
    rows = first.shape[0] if first.shape else 0
    columns: dict[str, list[Any]] = {}
    for name, (_datatype, required) in CHECKOUT_INPUTS.items():
        column = _checkout_column(request, name, rows)
        if column is None and required:
            raise bad_request(f"input {name!r} is required")
        if column is not None:
            columns[name] = column
    if rows < 1:
        raise bad_request("the request has no rows")
    columns.setdefault("device_id", list(columns["checkout_device_id"]))
    now_us = int(time.time() * 1_000_000)
    columns.setdefault("request_ts_us", [now_us] * rows)
    columns.setdefault("checkout_wallet_account_id", [-1] * rows)
    return columns


def checkout_document(
    rows: Sequence[Mapping[str, Any]], request_id: str | None = None
) -> dict[str, Any]:
    """A v2 request for checkouts given as dicts of :data:`CHECKOUT_INPUTS` fields (what a
    checkout service sends; fields absent from every row are left out)."""
    if not rows:
        raise UserError("no checkout rows")
    inputs = []
    for name, (datatype, _required) in CHECKOUT_INPUTS.items():
        if not any(name in row for row in rows):
            continue
        values = [row[name] for row in rows]
        if datatype == "INT64":
            values = [int(v) for v in values]
        elif datatype == "FP64":
            values = [float(v) for v in values]
        else:
            values = [str(v) for v in values]
        inputs.append({"name": name, "datatype": datatype, "shape": [len(rows)], "data": values})
    document: dict[str, Any] = {"inputs": inputs}
    if request_id is not None:
        document["id"] = request_id
    return document


class FeatureTransformer:
    """Checkout request -> features -> the scorer, over v2 (see the module docstring)."""

    def __init__(
        self,
        lookup: FeatureLookup,
        predictor: PredictorClient,
        *,
        name: str = DEFAULT_MODEL_NAME,
        max_rows: int = 1_000,
    ) -> None:
        self.lookup = lookup
        self.predictor = predictor
        self.name = name
        self.max_rows = max_rows
        self.version = ""
        self.ready = False
        self._inputs: list[PredictorInput] = []
        self._outputs: list[dict[str, Any]] = []

    def connect(self, timeout_s: float = 60.0) -> None:
        """Wait for the scorer, then learn its inputs and outputs from its metadata."""
        meta = self.predictor.wait_for_metadata(self.name, timeout_s)
        self._inputs = [
            PredictorInput(t["name"], t["datatype"])
            for t in meta["inputs"]
            if t["name"] != MISSING_INPUT
        ]
        self._outputs = list(meta["outputs"])
        known = getattr(self.lookup, "feature_names", None)
        if known is not None:
            produced = (
                set(known)
                | set(CHECKOUT_INPUTS)
                | set(context.CALENDAR_CONTEXT_FEATURES)
                | set(context.TRANSACTION_CONTEXT_FEATURES)
            )
            never = [spec.name for spec in self._inputs if spec.name not in produced]
            if never:
                logger.warning(
                    "%d model input(s) are produced by neither the feature store nor the "
                    "context and will always be missing: %s",
                    len(never), ", ".join(never[:10]),
                )  # fmt: skip
        versions = meta.get("versions") or []
        self.version = str(versions[0]) if versions else "unknown"
        self.ready = True
        logger.info(
            "transformer for %s version %s: %d model inputs", self.name, self.version,
            len(self._inputs),
        )  # fmt: skip

    def metadata(self) -> dict[str, Any]:
        return model_metadata(
            self.name,
            [self.version],
            TRANSFORMER_PLATFORM,
            [tensor_metadata(n, d, [-1]) for n, (d, _) in CHECKOUT_INPUTS.items()],
            self._outputs,
        )

    def features(self, request: InferenceRequest) -> tuple[dict[str, list[Any]], int]:
        """Every column the model may need (request fields, store values, on-demand context)
        and the row count."""
        columns = checkout_rows(request)
        rows = len(columns["customer_id"])
        if rows > self.max_rows:
            raise bad_request(f"{rows} rows in one request (at most {self.max_rows})")
        entity_rows = [{key: int(columns[key][i]) for key in ENTITY_KEYS} for i in range(rows)]
        values = self.lookup.read(entity_rows)
        merged: dict[str, list[Any]] = {**values, **columns}
        for view in ON_DEMAND:
            merged.update(ON_DEMAND[view](merged))
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


# ------------------------------------------------------------------------------ the predictor
class PredictorClient(Protocol):
    def wait_for_metadata(self, model: str, timeout_s: float) -> dict[str, Any]: ...

    async def infer(self, model: str, document: dict[str, Any]) -> InferenceResponse: ...

    async def close(self) -> None: ...


def _response_from_document(document: Any) -> InferenceResponse:
    try:
        outputs = tuple(
            OutputTensor(
                o["name"],
                o["datatype"],
                np.asarray(o["data"], dtype=NUMPY_TYPES[o["datatype"]]).reshape(o["shape"]),
            )
            for o in document["outputs"]
        )
        return InferenceResponse(
            model_name=str(document["model_name"]),
            outputs=outputs,
            model_version=document.get("model_version"),
            parameters=dict(document.get("parameters") or {}),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ProtocolError(502, f"the predictor's response is malformed: {error!r}") from None


class RestPredictor:
    """The scorer over v2 REST: keep-alive connections (:class:`KeepAliveClient`), orjson."""

    def __init__(self, base_url: str, *, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._client: KeepAliveClient | None = None

    def wait_for_metadata(self, model: str, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        last = "no answer"
        with httpx.Client(base_url=self.base_url, timeout=5.0) as client:
            while time.monotonic() < deadline:
                try:
                    ready = client.get(f"/v2/models/{model}/ready")
                    if ready.status_code == 200:
                        meta: dict[str, Any] = client.get(f"/v2/models/{model}").json()
                        return meta
                    last = f"{ready.status_code} {ready.text}"
                except httpx.HTTPError as error:
                    last = str(error)
                time.sleep(0.2)
        raise UserError(f"the predictor at {self.base_url} is not ready for {model!r}: {last}")

    async def infer(self, model: str, document: dict[str, Any]) -> InferenceResponse:
        if self._client is None:
            self._client = KeepAliveClient(self.base_url, timeout_s=self.timeout_s)
        try:
            response = await self._client.post(f"/v2/models/{model}/infer", orjson.dumps(document))
        except HttpError as error:
            raise ProtocolError(503, f"the predictor is unreachable: {error}") from None
        if response.status != 200:
            raise _predictor_error(response.status, response.body)
        try:
            parsed = orjson.loads(response.body)
        except orjson.JSONDecodeError:
            raise ProtocolError(502, "the predictor's response is not JSON") from None
        return _response_from_document(parsed)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


def _predictor_error(status: int, body: bytes) -> ProtocolError:
    try:
        message = str(orjson.loads(body).get("error", body[:200]))
    except (orjson.JSONDecodeError, AttributeError):
        message = body[:200].decode("utf-8", "replace")
    # A 4xx from the scorer means this transformer built a bad request: our bug, not the
    # client's. A 5xx is the scorer's failure, passed on as a bad gateway.
    return ProtocolError(
        500 if status < 500 else 502, f"the predictor answered {status}: {message}"
    )


class GrpcPredictor:
    """The scorer over v2 gRPC (``grpc.aio``; the request built as for REST, then converted)."""

    def __init__(self, target: str, *, timeout_s: float = 10.0) -> None:
        self.target = target
        self.timeout_s = timeout_s
        self._channel: Any = None
        self._stub: Any = None

    def wait_for_metadata(self, model: str, timeout_s: float) -> dict[str, Any]:
        import grpc  # type: ignore[import-untyped]
        from google.protobuf.json_format import MessageToDict  # type: ignore[import-untyped]
        from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb  # type: ignore[import-untyped]
        from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

        deadline = time.monotonic() + timeout_s
        last = "no answer"
        with grpc.insecure_channel(self.target) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            while time.monotonic() < deadline:
                try:
                    if stub.ModelReady(pb.ModelReadyRequest(name=model), timeout=5).ready:
                        meta = stub.ModelMetadata(pb.ModelMetadataRequest(name=model), timeout=5)
                        out: dict[str, Any] = MessageToDict(meta, preserving_proto_field_name=True)
                        for key in ("inputs", "outputs"):
                            for tensor in out.get(key, []):
                                tensor["shape"] = [int(d) for d in tensor.get("shape", [])]
                        return out
                    last = "not ready"
                except grpc.RpcError as error:
                    last = f"{error.code()}: {error.details()}"
                time.sleep(0.2)
        raise UserError(f"the predictor at {self.target} is not ready for {model!r}: {last}")

    async def infer(self, model: str, document: dict[str, Any]) -> InferenceResponse:
        import grpc
        from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

        from getit_ml.serving.grpc_server import request_message, response_outputs

        if self._stub is None:
            self._channel = grpc.aio.insecure_channel(self.target)
            self._stub = pb_grpc.GRPCInferenceServiceStub(self._channel)
        message = request_message(model, document)
        try:
            reply = await self._stub.ModelInfer(message, timeout=self.timeout_s)
        except grpc.RpcError as error:
            code = error.code()
            status = 503 if code == grpc.StatusCode.UNAVAILABLE else 502
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                status = 500
            raise ProtocolError(
                status, f"the predictor answered {code}: {error.details()}"
            ) from None
        return InferenceResponse(
            model_name=reply.model_name,
            outputs=response_outputs(reply),
            model_version=reply.model_version or None,
            parameters={k: getattr(v, v.WhichOneof("parameter_choice")) for k, v in
                        reply.parameters.items() if v.WhichOneof("parameter_choice")},
        )  # fmt: skip

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
            self._stub = None


def predictor_client(host: str, protocol: str, *, timeout_s: float = 10.0) -> PredictorClient:
    """A client for the scorer at ``host`` (``host:port``, or a URL for REST) speaking
    ``protocol``: ``v2`` (REST) or ``grpc-v2``, as KServe's ``--predictor_protocol`` names them."""
    if protocol == "v2":
        url = host if "://" in host else f"http://{host}"
        return RestPredictor(url, timeout_s=timeout_s)
    if protocol == "grpc-v2":
        return GrpcPredictor(host.split("://")[-1], timeout_s=timeout_s)
    raise UserError(f"predictor protocol must be v2 or grpc-v2 (got {protocol!r})")
