"""The v2 gRPC data plane (``inference.GRPCInferenceService``) on ``grpc.aio``.

KServe's generated messages and service base class are reused (so KServe's and Triton's gRPC
clients speak to it unchanged); the servicer is ours so that a request goes through the same
checks as on REST (:mod:`getit_ml.serving.protocol`) and errors map to the matching status codes:
400 ``INVALID_ARGUMENT``, 403 ``PERMISSION_DENIED``, 404 ``NOT_FOUND``, 413 ``RESOURCE_EXHAUSTED``
(gRPC itself also refuses a message above the size limit), 503 ``UNAVAILABLE``, 500 ``INTERNAL``.

``ModelInfer`` is counted and timed in the server's
:class:`~getit_ml.serving.metrics.InferenceMetrics` (``protocol="grpc"``) under the HTTP status
above, not the gRPC code, so one alert expression covers REST and gRPC.
"""

from __future__ import annotations

import asyncio
import logging
import math
from time import perf_counter
from typing import Any, Final

import grpc  # type: ignore[import-untyped]
import numpy as np
from grpc import aio
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb  # type: ignore[import-untyped]
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

from getit_ml import __version__
from getit_ml.serving.app import SERVER_NAME
from getit_ml.serving.metrics import CANCELLED, InferenceMetrics
from getit_ml.serving.protocol import (
    FLOAT_TYPES,
    INT_RANGES,
    MAX_DIMS,
    NUMPY_TYPES,
    AnyArray,
    InferenceRequest,
    InferenceResponse,
    OutputTensor,
    Parameters,
    ProtocolError,
    RequestedOutput,
    Tensor,
    bad_request,
    binary_data,
    binary_tensor,
    check_finite,
    element_count,
    utf8_text,
)
from getit_ml.serving.repository import ModelRepository, ServedModel

logger = logging.getLogger(__name__)

#: Which ``InferTensorContents`` field carries each datatype (FP16 travels only as raw bytes).
CONTENTS_FIELD: Final[dict[str, str]] = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
_ALL_CONTENTS: Final = frozenset(CONTENTS_FIELD.values())
STATUS_CODES: Final[dict[int, Any]] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    405: grpc.StatusCode.UNIMPLEMENTED,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
}
#: Concurrent calls one HTTP/2 connection may carry (gRPC's default is unlimited).
MAX_CONCURRENT_STREAMS: Final = 256


def _parameters(raw: Any) -> Parameters:
    out: Parameters = {}
    for key, value in raw.items():
        choice = value.WhichOneof("parameter_choice")
        if choice is not None:
            out[str(key)] = getattr(value, choice)
    return out


def _contents_array(tensor: Any, datatype: str, shape: tuple[int, ...], name: str) -> AnyArray:
    field = CONTENTS_FIELD.get(datatype)
    if field is None:
        raise bad_request(f"input {name!r}: {datatype} data must be sent in raw_input_contents")
    contents = tensor.contents
    for other in _ALL_CONTENTS - {field}:
        if len(getattr(contents, other)):
            raise bad_request(f"input {name!r}: {datatype} data belongs in {field}, not {other}")
    values = getattr(contents, field)
    count = element_count(shape, name)
    if len(values) != count:
        raise bad_request(
            f"input {name!r}: shape {list(shape)} needs {count} elements, data has {len(values)}"
        )
    if datatype == "BYTES":
        array = np.empty(count, dtype=object)
        array[:] = [utf8_text(v, name) for v in values]
        return array.reshape(shape)
    if datatype in INT_RANGES and field in ("int_contents", "uint_contents"):
        low, high = INT_RANGES[datatype]
        wide = np.array(values, dtype=np.int64)
        if wide.size and (wide.min() < low or wide.max() > high):
            raise bad_request(f"input {name!r}: a value is out of range for {datatype}")
    array = np.array(values, dtype=NUMPY_TYPES[datatype])
    if datatype in FLOAT_TYPES:
        check_finite(array, name)
    return array.reshape(shape)


def decode_grpc(message: Any) -> InferenceRequest:
    """A ``ModelInferRequest`` checked like a REST request."""
    raw = list(message.raw_input_contents)
    if not message.inputs:
        raise bad_request("inputs is empty")
    if raw and len(raw) != len(message.inputs):
        raise bad_request(f"{len(message.inputs)} inputs but {len(raw)} raw_input_contents entries")
    inputs: list[Tensor] = []
    for index, tensor in enumerate(message.inputs):
        name = tensor.name
        if not name:
            raise bad_request(f"inputs[{index}]: name must be a non-empty string")
        datatype = tensor.datatype
        if datatype not in NUMPY_TYPES:
            raise bad_request(f"input {name!r}: unsupported datatype {datatype!r}")
        shape = tuple(int(d) for d in tensor.shape)
        if len(shape) > MAX_DIMS or any(d < 0 for d in shape):
            raise bad_request(f"input {name!r}: shape {list(shape)} is not a valid shape")
        if raw:
            if tensor.HasField("contents"):
                raise bad_request(f"input {name!r}: both contents and raw_input_contents given")
            data = binary_tensor(raw[index], datatype, shape, name)
        else:
            data = _contents_array(tensor, datatype, shape, name)
        inputs.append(Tensor(name, datatype, shape, data, _parameters(tensor.parameters)))
    names = [t.name for t in inputs]
    if len(set(names)) != len(names):
        raise bad_request("an input is given twice")
    outputs = tuple(RequestedOutput(o.name) for o in message.outputs)
    if any(not o.name for o in outputs):
        raise bad_request("outputs: a requested output has no name")
    if len({o.name for o in outputs}) != len(outputs):
        raise bad_request("outputs: an output is requested twice")
    return InferenceRequest(
        tuple(inputs), message.id or None, _parameters(message.parameters), outputs
    )


def request_message(model: str, document: dict[str, Any]) -> Any:
    """A REST-style request document (``inputs`` with ``data`` lists) as a ``ModelInferRequest``
    with typed contents: what a gRPC client of ours sends."""
    tensors = []
    for item in document["inputs"]:
        field = CONTENTS_FIELD[item["datatype"]]
        data = item["data"]
        if item["datatype"] == "BYTES":
            data = [str(v).encode("utf-8") for v in data]
        tensors.append(
            pb.ModelInferRequest.InferInputTensor(
                name=item["name"],
                datatype=item["datatype"],
                shape=item["shape"],
                contents=pb.InferTensorContents(**{field: data}),
            )
        )
    return pb.ModelInferRequest(model_name=model, id=document.get("id", ""), inputs=tensors)


def _parameter(value: Any) -> Any:
    if isinstance(value, bool):
        return pb.InferParameter(bool_param=value)
    if isinstance(value, int):
        return pb.InferParameter(int64_param=value)
    if isinstance(value, float) and math.isfinite(value):
        return pb.InferParameter(string_param=repr(value))
    return pb.InferParameter(string_param=str(value))


def encode_grpc(response: InferenceResponse) -> Any:
    """An ``InferenceResponse`` as a ``ModelInferResponse`` with the tensors in
    ``raw_output_contents`` (little-endian bytes, as Triton sends them: Triton's gRPC client reads
    nothing else, KServe's client reads both)."""
    outputs = [
        pb.ModelInferResponse.InferOutputTensor(
            name=tensor.name, datatype=tensor.datatype, shape=tensor.shape
        )
        for tensor in response.outputs
    ]
    return pb.ModelInferResponse(
        model_name=response.model_name,
        model_version=response.model_version or "",
        id=response.id or "",
        parameters={k: _parameter(v) for k, v in response.parameters.items()},
        outputs=outputs,
        raw_output_contents=[binary_data(tensor) for tensor in response.outputs],
    )


def response_outputs(reply: Any) -> tuple[OutputTensor, ...]:
    """The outputs of a ``ModelInferResponse`` (typed contents or raw bytes) as arrays."""
    raw = list(reply.raw_output_contents)
    outputs = []
    for index, tensor in enumerate(reply.outputs):
        datatype = tensor.datatype
        shape = tuple(int(d) for d in tensor.shape)
        if raw:
            data = binary_tensor(raw[index], datatype, shape, tensor.name)
        else:
            values = getattr(tensor.contents, CONTENTS_FIELD[datatype])
            if datatype == "BYTES":
                data = np.empty(len(values), dtype=object)
                data[:] = [bytes(v) for v in values]
            else:
                data = np.array(values, dtype=NUMPY_TYPES[datatype])
            data = data.reshape(shape)
        outputs.append(OutputTensor(tensor.name, datatype, data))
    return tuple(outputs)


async def _abort(context: Any, error: ProtocolError) -> None:
    code = STATUS_CODES.get(error.status, grpc.StatusCode.INTERNAL)
    retry_after = error.retry_after_header
    if retry_after is not None:
        await context.abort(code, error.message, (("retry-after", retry_after),))
    await context.abort(code, error.message)


class V2Servicer(pb_grpc.GRPCInferenceServiceServicer):  # type: ignore[misc]
    """``inference.GRPCInferenceService`` over a :class:`ModelRepository`; ``metrics`` (the
    server's, shared with its REST app) count and time ``ModelInfer``, ``None`` nothing."""

    def __init__(
        self, repository: ModelRepository, metrics: InferenceMetrics | None = None
    ) -> None:
        self.repository = repository
        self._metrics = None if metrics is None else metrics.grpc

    async def ServerLive(self, request: Any, context: Any) -> Any:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: Any, context: Any) -> Any:
        return pb.ServerReadyResponse(ready=self.repository.readiness()[0])

    async def ServerMetadata(self, request: Any, context: Any) -> Any:
        extensions = ["binary_tensor_data"]
        if self.repository.enable_load_unload:
            extensions.append("model_repository")
        return pb.ServerMetadataResponse(
            name=SERVER_NAME, version=__version__, extensions=extensions
        )

    async def ModelReady(self, request: Any, context: Any) -> Any:
        try:
            ready, _reason = self.repository.model_readiness(request.name, request.version or None)
        except ProtocolError as error:
            await _abort(context, error)
        return pb.ModelReadyResponse(ready=ready)

    async def ModelMetadata(self, request: Any, context: Any) -> Any:
        try:
            meta = self.repository.get(request.name, request.version or None).metadata()
        except ProtocolError as error:
            await _abort(context, error)
        tensors = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=meta["name"],
            versions=meta["versions"],
            platform=meta["platform"],
            inputs=[tensors(**t) for t in meta["inputs"]],
            outputs=[tensors(**t) for t in meta["outputs"]],
        )

    async def ModelInfer(self, request: Any, context: Any) -> Any:
        start = perf_counter()
        model: ServedModel | None = None
        status = 500
        try:
            model = self.repository.ready_model(request.model_name, request.model_version or None)
            response = await model.infer(decode_grpc(request))
            reply = encode_grpc(response)
            status = 200
            return reply
        except ProtocolError as error:
            status = error.status
            await _abort(context, error)
        except asyncio.CancelledError:  # the client cancelled or its deadline passed
            status = CANCELLED
            raise
        except Exception as error:
            logger.exception("unhandled error in ModelInfer")
            await context.abort(
                grpc.StatusCode.INTERNAL, f"internal server error ({type(error).__name__})"
            )
        finally:
            if self._metrics is not None:
                self._metrics.observe_request(
                    self.repository,
                    model,
                    request.model_name,
                    request.model_version or None,
                    status,
                    perf_counter() - start,
                )

    async def RepositoryModelLoad(self, request: Any, context: Any) -> Any:
        try:
            await self.repository.load(request.model_name)
        except ProtocolError as error:
            await _abort(context, error)
        return pb.RepositoryModelLoadResponse(model_name=request.model_name, isLoaded=True)

    async def RepositoryModelUnload(self, request: Any, context: Any) -> Any:
        try:
            await self.repository.unload(request.model_name)
        except ProtocolError as error:
            await _abort(context, error)
        return pb.RepositoryModelUnloadResponse(model_name=request.model_name, isUnloaded=True)


def grpc_server(
    repository: ModelRepository,
    port: int,
    *,
    max_message_bytes: int,
    max_concurrent_rpcs: int | None = None,
    host: str = "0.0.0.0",
    metrics: InferenceMetrics | None = None,
) -> Any:
    """An unstarted ``grpc.aio`` server for ``repository`` on ``host:port`` (``0.0.0.0`` means
    every address, IPv6 included, as KServe binds ``[::]``; port ``0``: any free port, read
    ``server.getit_port``), counting ``ModelInfer`` in ``metrics`` when given.

    Limits: messages of ``max_message_bytes``; at most ``max_concurrent_rpcs`` calls at once
    (more get ``RESOURCE_EXHAUSTED``, which a client retries later) and
    :data:`MAX_CONCURRENT_STREAMS` per connection, so one client cannot hold every slot."""
    server = aio.server(
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_concurrent_streams", MAX_CONCURRENT_STREAMS),
            ("grpc.so_reuseport", 0),
        ],
        maximum_concurrent_rpcs=max_concurrent_rpcs,
    )
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(V2Servicer(repository, metrics), server)
    address = "[::]" if host in ("0.0.0.0", "::") else (f"[{host}]" if ":" in host else host)
    server.getit_port = server.add_insecure_port(f"{address}:{port}")
    return server
