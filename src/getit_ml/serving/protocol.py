"""The Open Inference Protocol (KServe v2) data model, its strict codec and request validation.

Every way a request can be wrong ends here as a :class:`ProtocolError` carrying the HTTP status
(400 malformed, 404 unknown model, 413 too large, 500 for an answer the server refuses to give)
and one readable message; the REST app sends it as ``{"error": "<message>"}``, the gRPC service as
the matching status code. Stock KServe 0.21 lets FastAPI answer 422 for bad JSON and 500 for a
shape mismatch; here the codec checks, before any model code runs:

* the JSON document: an object with only ``id``, ``parameters``, ``inputs``, ``outputs`` (and
  the ``model_name`` / ``model_version`` strings KServe's client adds); each
  input an object with ``name``, ``shape``, ``datatype``, ``data`` (or binary data) and optional
  ``parameters``; names unique and non-empty;
* datatypes (``BOOL``, ``UINT8``..``UINT64``, ``INT8``..``INT64``, ``FP16``..``FP64``, ``BYTES``);
* shapes: non-negative integers, at most :data:`MAX_DIMS` dimensions, element count equal to the
  data's (nested or flat), at most :data:`MAX_ELEMENTS` elements;
* element types: JSON booleans for ``BOOL``, integers in range for the integer types, numbers for
  the float types (finite after conversion: ``1e300`` as ``FP32`` is infinity, so it is rejected),
  strings for ``BYTES``;
* the binary tensor extension (``Inference-Header-Content-Length`` plus
  ``parameters.binary_data_size``), used by ``tritonclient`` and KServe's clients.

Decoded tensors are numpy arrays in their datatype, reshaped to the declared shape.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import orjson

#: v2 datatype -> numpy dtype (``BYTES`` holds Python ``str`` / ``bytes`` objects).
NUMPY_TYPES: Final[dict[str, np.dtype[Any]]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(np.object_),
}
INTEGER_TYPES: Final = frozenset(
    {"UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64"}
)
FLOAT_TYPES: Final = frozenset({"FP16", "FP32", "FP64"})
NUMERIC_TYPES: Final = INTEGER_TYPES | FLOAT_TYPES
MAX_DIMS: Final = 8
#: Elements per tensor; the body-size limit usually binds first.
MAX_ELEMENTS: Final = 50_000_000
#: Header of the binary tensor extension (lower case, as ASGI delivers header names).
BINARY_HEADER: Final = "inference-header-content-length"
DEFAULT_MAX_BODY_BYTES: Final = 16 * 1024 * 1024

#: ``model_name`` / ``model_version`` are not in the specification's request object, but KServe's
#: own client sends them; they are accepted (as strings) and ignored: the URL names the model.
_REQUEST_KEYS: Final = frozenset(
    {"id", "parameters", "inputs", "outputs", "model_name", "model_version"}
)
_INPUT_KEYS: Final = frozenset({"name", "shape", "datatype", "parameters", "data"})
_OUTPUT_KEYS: Final = frozenset({"name", "parameters"})
INT_RANGES: Final[dict[str, tuple[int, int]]] = {
    name: (int(np.iinfo(NUMPY_TYPES[name]).min), int(np.iinfo(NUMPY_TYPES[name]).max))
    for name in INTEGER_TYPES
}
_NUMBER: Final = (int, float)

AnyArray = npt.NDArray[Any]
Parameters = dict[str, Any]


class ProtocolError(Exception):
    """A request the server answers with an error: ``status`` is the HTTP status code."""

    def __init__(self, status: int, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        #: When to try again (a dependency is down or the server is shedding load): REST sends
        #: it as ``Retry-After`` (whole seconds, at least 1), gRPC as ``retry-after`` metadata.
        self.retry_after_s = retry_after_s

    @property
    def retry_after_header(self) -> str | None:
        """``Retry-After``'s value: whole seconds, rounded up, at least 1; ``None`` if unset."""
        if self.retry_after_s is None:
            return None
        return str(max(1, math.ceil(self.retry_after_s)))


def bad_request(message: str) -> ProtocolError:
    return ProtocolError(400, message)


@dataclass(frozen=True)
class Tensor:
    """A decoded input tensor: ``data`` has ``shape`` and the numpy dtype of ``datatype``."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: AnyArray
    parameters: Parameters = field(default_factory=dict)


@dataclass(frozen=True)
class RequestedOutput:
    name: str
    #: ``True``/``False`` from ``parameters.binary_data``; ``None`` when not said.
    binary: bool | None = None


@dataclass(frozen=True)
class InferenceRequest:
    inputs: tuple[Tensor, ...]
    id: str | None = None
    parameters: Parameters = field(default_factory=dict)
    outputs: tuple[RequestedOutput, ...] = ()

    def input(self, name: str) -> Tensor | None:
        for tensor in self.inputs:
            if tensor.name == name:
                return tensor
        return None

    @property
    def binary_outputs(self) -> bool:
        """The request's default for output encoding (``parameters.binary_data_output``)."""
        return self.parameters.get("binary_data_output") is True


@dataclass(frozen=True)
class OutputTensor:
    name: str
    datatype: str
    data: AnyArray

    @property
    def shape(self) -> list[int]:
        return [int(d) for d in self.data.shape]


@dataclass(frozen=True)
class InferenceResponse:
    model_name: str
    outputs: tuple[OutputTensor, ...]
    model_version: str | None = None
    id: str | None = None
    parameters: Parameters = field(default_factory=dict)

    def output(self, name: str) -> OutputTensor:
        for tensor in self.outputs:
            if tensor.name == name:
                return tensor
        raise KeyError(name)


# ----------------------------------------------------------------------------------- decoding
def _parameters(raw: object, where: str) -> Parameters:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise bad_request(f"{where}: parameters must be a JSON object")
    for key, value in raw.items():
        if not isinstance(value, bool | int | float | str):
            raise bad_request(f"{where}: parameter {key!r} must be a boolean, number or string")
    return raw


def _shape(raw: object, name: str) -> tuple[int, ...]:
    if not isinstance(raw, list):
        raise bad_request(f"input {name!r}: shape must be a list of integers")
    if len(raw) > MAX_DIMS:
        raise bad_request(f"input {name!r}: shape has {len(raw)} dimensions (at most {MAX_DIMS})")
    for dim in raw:
        if type(dim) is not int or dim < 0:
            raise bad_request(f"input {name!r}: shape {raw} must hold non-negative integers")
    return tuple(raw)


def element_count(shape: Sequence[int], name: str) -> int:
    count = math.prod(shape)
    if count > MAX_ELEMENTS:
        raise bad_request(f"input {name!r}: shape {list(shape)} has {count} elements "
                          f"(at most {MAX_ELEMENTS})")  # fmt: skip
    return count


def _flatten(data: list[Any], name: str) -> list[Any]:
    """The elements of a flat or nested JSON list, in row-major order."""
    if not any(type(item) is list for item in data):
        return data
    flat: list[Any] = []

    def walk(items: list[Any], depth: int) -> None:
        if depth > MAX_DIMS:
            raise bad_request(f"input {name!r}: data is nested deeper than {MAX_DIMS} levels")
        for item in items:
            if type(item) is list:
                walk(item, depth + 1)
            else:
                flat.append(item)

    walk(data, 1)
    return flat


def _check_elements(values: list[Any], datatype: str, name: str) -> None:
    if datatype == "BOOL":
        for value in values:
            if type(value) is not bool:
                raise bad_request(f"input {name!r}: BOOL data must be true/false, got {value!r}")
    elif datatype == "BYTES":
        for value in values:
            if type(value) is not str:
                raise bad_request(f"input {name!r}: BYTES data must be strings, got {value!r}")
    elif datatype in INTEGER_TYPES:
        low, high = INT_RANGES[datatype]
        for value in values:
            if type(value) is not int:
                raise bad_request(
                    f"input {name!r}: {datatype} data must be integers, got {value!r}"
                )
            if not low <= value <= high:
                raise bad_request(f"input {name!r}: {value} is out of range for {datatype}")
    else:
        for value in values:
            kind = type(value)
            if kind is float:
                if not math.isfinite(value):  # JSON has none, but decoded objects may
                    raise bad_request(
                        f"input {name!r}: {value} is not a finite number (NaN and infinity are "
                        "rejected; mark missing values with the 'missing' input)"
                    )
            elif kind is not int:
                raise bad_request(f"input {name!r}: {datatype} data must be numbers, got {value!r}")


def to_array(values: list[Any], datatype: str, shape: tuple[int, ...], name: str) -> AnyArray:
    """Checked JSON elements as an array of ``datatype`` with ``shape``."""
    _check_elements(values, datatype, name)
    dtype = NUMPY_TYPES[datatype]
    if datatype == "FP32" or datatype == "FP16":
        with np.errstate(over="ignore"):  # an overflow becomes infinity, rejected below
            array = np.array(values, dtype=dtype)
        check_finite(array, name)
    else:
        try:
            array = np.array(values, dtype=dtype)
        except OverflowError:  # an integer beyond float64
            raise bad_request(f"input {name!r}: a value does not fit {datatype}") from None
    return array if len(shape) == 1 else array.reshape(shape)


def check_finite(array: AnyArray, name: str) -> None:
    if array.size and not np.isfinite(array).all():
        bad = int(np.flatnonzero(~np.isfinite(array.ravel()))[0])
        raise bad_request(
            f"input {name!r}: element {bad} is not a finite number (NaN and infinity are "
            "rejected; mark missing values with the 'missing' input)"
        )


def binary_tensor(chunk: bytes, datatype: str, shape: tuple[int, ...], name: str) -> AnyArray:
    count = element_count(shape, name)
    if datatype == "BYTES":
        items: list[Any] = []
        offset = 0
        while offset < len(chunk):
            if offset + 4 > len(chunk):
                raise bad_request(f"input {name!r}: truncated BYTES element length")
            (size,) = struct.unpack_from("<I", chunk, offset)
            offset += 4
            if offset + size > len(chunk):
                raise bad_request(f"input {name!r}: truncated BYTES element")
            items.append(utf8_text(chunk[offset : offset + size], name))
            offset += size
        if len(items) != count:
            raise bad_request(f"input {name!r}: {len(items)} elements for shape {list(shape)}")
        array = np.empty(count, dtype=object)
        array[:] = items
        return array.reshape(shape)
    dtype = NUMPY_TYPES[datatype]
    if len(chunk) != count * dtype.itemsize:
        raise bad_request(
            f"input {name!r}: {len(chunk)} bytes of binary data for shape {list(shape)} of "
            f"{datatype} ({count * dtype.itemsize} expected)"
        )
    array = np.frombuffer(chunk, dtype=dtype.newbyteorder("<")).astype(dtype)
    if (
        datatype == "BOOL"
        and array.size
        and not np.isin(np.frombuffer(chunk, np.uint8), (0, 1)).all()
    ):
        raise bad_request(f"input {name!r}: BOOL bytes must be 0 or 1")
    if datatype in FLOAT_TYPES:
        check_finite(array, name)
    return array.reshape(shape)


def utf8_text(raw: bytes, name: str) -> str:
    """A BYTES element as text; anything but UTF-8 is the client's error (400)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request(f"input {name!r}: BYTES element is not UTF-8 text") from None


def _decode_input(raw: object, index: int, binary: _BinaryReader | None) -> Tensor:
    if not isinstance(raw, dict):
        raise bad_request(f"inputs[{index}] must be a JSON object")
    extra = raw.keys() - _INPUT_KEYS
    if extra:
        raise bad_request(f"inputs[{index}]: unknown field(s) {sorted(extra)}")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise bad_request(f"inputs[{index}]: name must be a non-empty string")
    datatype = raw.get("datatype")
    if not isinstance(datatype, str):
        raise bad_request(f"input {name!r}: datatype must be a string")
    if datatype not in NUMPY_TYPES:
        raise bad_request(f"input {name!r}: unsupported datatype {datatype!r}")
    if "shape" not in raw:
        raise bad_request(f"input {name!r}: shape is required")
    shape = _shape(raw["shape"], name)
    parameters = _parameters(raw.get("parameters"), f"input {name!r}")
    size = parameters.get("binary_data_size")
    if size is not None:
        if type(size) is not int or size < 0:
            raise bad_request(f"input {name!r}: binary_data_size must be a non-negative integer")
        if "data" in raw:
            raise bad_request(f"input {name!r}: both data and binary_data_size are given")
        if binary is None:
            raise bad_request(f"input {name!r}: binary_data_size needs the {BINARY_HEADER} header")
        data = binary_tensor(binary.take(size, name), datatype, shape, name)
        return Tensor(name, datatype, shape, data, parameters)
    if "data" not in raw:
        raise bad_request(f"input {name!r}: data is required")
    values = raw["data"]
    if not isinstance(values, list):
        raise bad_request(f"input {name!r}: data must be a list")
    flat = _flatten(values, name)
    if len(flat) != element_count(shape, name):
        raise bad_request(
            f"input {name!r}: shape {list(shape)} needs {math.prod(shape)} elements, "
            f"data has {len(flat)}"
        )
    return Tensor(name, datatype, shape, to_array(flat, datatype, shape, name), parameters)


class _BinaryReader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._offset = 0

    def take(self, size: int, name: str) -> bytes:
        end = self._offset + size
        if end > len(self._data):
            raise bad_request(f"input {name!r}: binary_data_size {size} runs past the body")
        chunk = self._data[self._offset : end]
        self._offset = end
        return chunk

    def finish(self) -> None:
        if self._offset != len(self._data):
            raise bad_request(f"{len(self._data) - self._offset} unclaimed bytes of binary data")


def _decode_outputs(raw: object) -> tuple[RequestedOutput, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise bad_request("outputs must be a list")
    outputs: list[RequestedOutput] = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise bad_request(f"outputs[{index}] must be a JSON object")
        extra = item.keys() - _OUTPUT_KEYS
        if extra:
            raise bad_request(f"outputs[{index}]: unknown field(s) {sorted(extra)}")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise bad_request(f"outputs[{index}]: name must be a non-empty string")
        parameters = _parameters(item.get("parameters"), f"output {name!r}")
        binary = parameters.get("binary_data")
        if binary is not None and not isinstance(binary, bool):
            raise bad_request(f"output {name!r}: binary_data must be a boolean")
        outputs.append(RequestedOutput(name, binary))
    if len({o.name for o in outputs}) != len(outputs):
        raise bad_request("outputs: an output is requested twice")
    return tuple(outputs)


def decode_document(document: object, binary: _BinaryReader | None = None) -> InferenceRequest:
    """Validate a parsed inference request document (see the module's rules)."""
    if not isinstance(document, dict):
        raise bad_request("the request body must be a JSON object")
    extra = document.keys() - _REQUEST_KEYS
    if extra:
        raise bad_request(f"unknown field(s) {sorted(extra)} in the inference request")
    request_id = document.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise bad_request("id must be a string")
    for key in ("model_name", "model_version"):
        if document.get(key) is not None and not isinstance(document[key], str):
            raise bad_request(f"{key} must be a string")
    parameters = _parameters(document.get("parameters"), "request")
    raw_inputs = document.get("inputs")
    if not isinstance(raw_inputs, list):
        raise bad_request("inputs must be a list of tensors")
    if not raw_inputs:
        raise bad_request("inputs is empty")
    inputs = tuple(_decode_input(raw, i, binary) for i, raw in enumerate(raw_inputs))
    if binary is not None:
        binary.finish()
    names = [t.name for t in inputs]
    if len(set(names)) != len(names):
        duplicate = next(n for n in names if names.count(n) > 1)
        raise bad_request(f"input {duplicate!r} is given twice")
    return InferenceRequest(
        inputs, request_id, parameters, _decode_outputs(document.get("outputs"))
    )


def decode_rest(body: bytes, header_length: str | None = None) -> InferenceRequest:
    """Decode a REST inference body; ``header_length`` is the binary extension's header value."""
    binary: _BinaryReader | None = None
    if header_length is not None:
        try:
            json_length = int(header_length)
        except ValueError:
            raise bad_request(f"{BINARY_HEADER} must be an integer") from None
        if not 0 <= json_length <= len(body):
            raise bad_request(f"{BINARY_HEADER} {json_length} is outside the body's length")
        binary = _BinaryReader(body[json_length:])
        body = body[:json_length]
    if not body:
        raise bad_request("the request body is empty")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise bad_request(f"the request body is not valid JSON: {error}") from None
    return decode_document(document, binary)


# ----------------------------------------------------------------------------------- encoding
def _json_data(tensor: OutputTensor) -> Any:
    if tensor.datatype == "BYTES":
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                for v in tensor.data.ravel()]  # fmt: skip
    return tensor.data.ravel()


def binary_data(tensor: OutputTensor) -> bytes:
    """An output tensor's bytes in the binary tensor format (little-endian; BYTES elements
    each preceded by its 4-byte length)."""
    if tensor.datatype == "BYTES":
        parts = []
        for value in tensor.data.ravel():
            raw = value if isinstance(value, bytes) else str(value).encode("utf-8")
            parts.append(struct.pack("<I", len(raw)) + raw)
        return b"".join(parts)
    return np.ascontiguousarray(
        tensor.data, dtype=NUMPY_TYPES[tensor.datatype].newbyteorder("<")
    ).tobytes()


def encode_rest(
    response: InferenceResponse,
    requested: Sequence[RequestedOutput] = (),
    binary_default: bool = False,
) -> tuple[bytes, int | None]:
    """The response body and, when any output travels as binary, the JSON header's length."""
    binary_flags = {o.name: o.binary for o in requested}
    outputs: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for tensor in response.outputs:
        entry: dict[str, Any] = {"name": tensor.name, "datatype": tensor.datatype,
                                 "shape": tensor.shape}  # fmt: skip
        flag = binary_flags.get(tensor.name)
        if flag if flag is not None else binary_default:
            chunk = binary_data(tensor)
            entry["parameters"] = {"binary_data_size": len(chunk)}
            chunks.append(chunk)
        else:
            entry["data"] = _json_data(tensor)
        outputs.append(entry)
    document: dict[str, Any] = {"model_name": response.model_name}
    if response.model_version is not None:
        document["model_version"] = response.model_version
    if response.id is not None:
        document["id"] = response.id
    if response.parameters:
        document["parameters"] = response.parameters
    document["outputs"] = outputs
    header = orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)
    if not chunks:
        return header, None
    return header + b"".join(chunks), len(header)


def error_body(message: str) -> bytes:
    return orjson.dumps({"error": message})


def select_outputs(
    outputs: Sequence[OutputTensor], requested: Sequence[RequestedOutput]
) -> tuple[OutputTensor, ...]:
    """The requested outputs (all when none are named); an unknown name is a 400."""
    if not requested:
        return tuple(outputs)
    by_name = {o.name: o for o in outputs}
    unknown = [r.name for r in requested if r.name not in by_name]
    if unknown:
        raise bad_request(f"unknown output(s) {unknown}; this model has {sorted(by_name)}")
    return tuple(by_name[r.name] for r in requested)


def tensor_metadata(name: str, datatype: str, shape: Sequence[int]) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": list(shape)}


def model_metadata(
    name: str,
    versions: Sequence[str],
    platform: str,
    inputs: Sequence[Mapping[str, Any]],
    outputs: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    return {"name": name, "versions": list(versions), "platform": platform,
            "inputs": list(inputs), "outputs": list(outputs)}  # fmt: skip
