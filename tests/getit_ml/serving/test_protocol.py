"""The v2 codec on its own: nested and binary data, element checks, binary outputs."""

from __future__ import annotations

import struct

import numpy as np
import orjson
import pytest

from getit_ml.serving.protocol import (
    InferenceResponse,
    OutputTensor,
    ProtocolError,
    RequestedOutput,
    decode_rest,
    encode_rest,
)


def _one(tensor: dict[str, object], binary: bytes = b"") -> tuple[bytes, str | None]:
    header = orjson.dumps({"inputs": [tensor]})
    if not binary:
        return header, None
    return header + binary, str(len(header))


def test_nested_data_equals_flat_data() -> None:
    nested = {"name": "x", "datatype": "FP32", "shape": [2, 2], "data": [[1, 2.5], [3, 4]]}
    flat = {**nested, "data": [1, 2.5, 3, 4]}
    a = decode_rest(*_one(nested)).inputs[0].data
    b = decode_rest(*_one(flat)).inputs[0].data
    assert a.dtype == np.float32
    assert a.shape == (2, 2)
    np.testing.assert_array_equal(a, b)


def test_binary_tensors_of_every_kind() -> None:
    words = [b"bkash", "নগদ".encode()]
    raw = b"".join(struct.pack("<I", len(w)) + w for w in words)
    tensor = {
        "name": "m",
        "datatype": "BYTES",
        "shape": [2],
        "parameters": {"binary_data_size": len(raw)},
    }
    assert decode_rest(*_one(tensor, raw)).inputs[0].data.tolist() == ["bkash", "নগদ"]
    ints = np.array([1, -2, 3], dtype="<i8").tobytes()
    tensor = {
        "name": "i",
        "datatype": "INT64",
        "shape": [3],
        "parameters": {"binary_data_size": 24},
    }
    assert decode_rest(*_one(tensor, ints)).inputs[0].data.tolist() == [1, -2, 3]


@pytest.mark.parametrize(
    ("tensor", "binary", "message"),
    [
        (
            {"name": "b", "datatype": "BOOL", "shape": [2], "parameters": {"binary_data_size": 2}},
            b"\x01\x02",
            "0 or 1",
        ),
        (
            {"name": "m", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": 6}},
            struct.pack("<I", 9) + b"ab",
            "truncated",
        ),
        (
            {"name": "m", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": 6}},
            struct.pack("<I", 2) + b"\xff\xfe",
            "UTF-8",
        ),
        ({"name": "u", "datatype": "UINT8", "shape": [1], "data": [-1]}, b"", "out of range"),
        ({"name": "h", "datatype": "FP16", "shape": [1], "data": [70000.0]}, b"", "finite"),
        ({"name": "s", "datatype": "BYTES", "shape": [1], "data": [1]}, b"", "strings"),
        ({"name": "t", "datatype": "BOOL", "shape": [1], "data": [1]}, b"", "true/false"),
    ],
    ids=[
        "bool byte 2",
        "truncated bytes",
        "not utf-8",
        "uint8 -1",
        "fp16 overflow",
        "bytes not str",
        "bool as 1",
    ],
)
def test_element_checks(tensor: dict[str, object], binary: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message) as caught:
        decode_rest(*_one(tensor, binary))
    assert caught.value.status == 400


def test_binary_outputs_on_request() -> None:
    response = InferenceResponse(
        "fraud",
        (
            OutputTensor("p", "FP64", np.array([0.25, 0.5])),
            OutputTensor("d", "BOOL", np.array([False, True])),
        ),
        "3",
    )
    body, json_length = encode_rest(response, [RequestedOutput("p", binary=True)])
    assert json_length is not None
    header = orjson.loads(body[:json_length])
    outputs = {o["name"]: o for o in header["outputs"]}
    assert outputs["p"]["parameters"] == {"binary_data_size": 16}
    assert outputs["d"]["data"] == [False, True]
    assert np.frombuffer(body[json_length:], "<f8").tolist() == [0.25, 0.5]
    plain, none = encode_rest(response)
    assert none is None
    assert orjson.loads(plain)["model_version"] == "3"
