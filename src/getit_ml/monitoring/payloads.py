"""Inference bodies (KServe v1 and the v2 / Open Inference Protocol) to matrices and scores.

Requests: v1 ``{"instances": [...]}`` (each instance a list of encoded values in schema order,
or an object ``{feature name: raw value}``) and v2 ``{"inputs": [...]}`` (one ``[rows, features]``
tensor, or one tensor per feature named after it: KServe's columnar form, strings as BYTES).
Responses: v1 ``{"predictions": [...]}`` and v2 ``{"outputs": [...]}`` with the fraud
probability per row (a ``[rows, 2]`` output gives its second column).

Missing values travel as JSON ``null`` (``NaN`` is not JSON), or — the platform's fraud scorer's
convention — as a ``BOOL`` input ``missing`` of the features' shape; all are accepted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np

from getit_ml.monitoring.schema import FeatureSchema, FloatArray

#: Output names recognised as the fraud score when a response has several outputs.
SCORE_OUTPUT_NAMES: Final = (
    "probability",
    "fraud_probability",
    "score",
    "scores",
    "predict_proba",
    "probabilities",
    "output-0",
)
#: The optional BOOL tensor (same shape as the features, schema order) that marks missing values,
#: as the platform's fraud scorer takes them (it refuses NaN and null in its FP64 input).
MISSING_INPUT: Final = "missing"
#: Keys recognised as the score when a v1 prediction is an object.
SCORE_KEYS: Final = ("fraud_probability", "probability", "score")


class PayloadError(ValueError):
    """A body that is not a v1/v2 inference request or response the monitor understands."""


def is_v2(body: Mapping[str, Any]) -> bool:
    inputs = body.get("inputs")
    outputs = body.get("outputs")
    tensors = inputs if inputs is not None else outputs
    return (
        isinstance(tensors, list)
        and bool(tensors)
        and all(isinstance(t, Mapping) and "data" in t for t in tensors)
    )


def request_matrix(
    body: Any, schema: FeatureSchema, *, input_name: str | None = None
) -> FloatArray:
    """The ``(rows, features)`` float matrix of an inference request body."""
    if not isinstance(body, Mapping):
        raise PayloadError("the request body is not a JSON object")
    if is_v2(body) and "inputs" in body:
        return _v2_matrix(body["inputs"], schema, input_name)
    instances = body.get("instances", body.get("inputs"))
    if not isinstance(instances, list):
        raise PayloadError("a request needs `instances` (v1) or `inputs` (v2)")
    return _v1_matrix(instances, schema)


def _v1_matrix(instances: list[Any], schema: FeatureSchema) -> FloatArray:
    if not instances:
        raise PayloadError("the request has no instances")
    if all(isinstance(row, Mapping) for row in instances):
        known = set(schema.feature_names)
        if not any(known.intersection(row) for row in instances):
            raise PayloadError("no instance names a feature of the schema")
        return schema.encode_records(instances)
    if all(isinstance(row, list) for row in instances):
        return _numeric_rows(instances, schema.width)
    raise PayloadError("instances must all be lists (encoded) or all objects (by feature)")


def _numeric_rows(rows: Sequence[Any], width: int) -> FloatArray:
    bad = [len(row) for row in rows if len(row) != width]
    if bad:
        raise PayloadError(f"an instance has {bad[0]} values; the schema has {width} features")
    try:
        matrix = np.array([[_number(v) for v in row] for row in rows], dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise PayloadError(f"instances are not numeric: {error}") from None
    return matrix.reshape(len(rows), width)


def _number(value: Any) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    number = float(value)
    return number if math.isfinite(number) else math.nan


def _v2_matrix(inputs: list[Any], schema: FeatureSchema, input_name: str | None) -> FloatArray:
    if not inputs:
        raise PayloadError("the v2 request has no inputs")
    by_name = {str(t.get("name")): t for t in inputs}
    mask = by_name.pop(MISSING_INPUT, None) if MISSING_INPUT not in schema.feature_names else None
    matrix = _v2_values(list(by_name.values()), by_name, schema, input_name)
    if mask is not None:
        flags = [bool(v) for v in _flat_data(mask)]
        if len(flags) != matrix.size:
            raise PayloadError(
                f"the `{MISSING_INPUT}` mask has {len(flags)} values for a "
                f"{matrix.shape[0]} x {matrix.shape[1]} input"
            )
        matrix[np.asarray(flags, dtype=np.bool_).reshape(matrix.shape)] = np.nan
    return matrix


def _v2_values(
    inputs: list[Any], by_name: Mapping[str, Any], schema: FeatureSchema, input_name: str | None
) -> FloatArray:
    if not inputs:
        raise PayloadError("the v2 request has no feature input")
    features = set(schema.feature_names)
    if input_name is None and len(inputs) > 1 and features.intersection(by_name):
        return _v2_columns(by_name, schema)
    if input_name is not None:
        if input_name not in by_name:
            raise PayloadError(f"the v2 request has no input {input_name!r}")
        tensor = by_name[input_name]
    elif len(inputs) == 1:
        tensor = inputs[0]
    else:
        raise PayloadError(f"the v2 request has {len(inputs)} inputs: name the feature tensor")
    if len(inputs) == 1 and str(tensor.get("name")) in features and schema.width > 1:
        return _v2_columns(by_name, schema)
    data = _flat_data(tensor)
    width = schema.width
    if len(data) % width:
        raise PayloadError(
            f"input {tensor.get('name')!r} has {len(data)} values, not a "
            f"multiple of the schema's {width} features"
        )
    shape = tensor.get("shape")
    if isinstance(shape, list) and shape and shape[-1] != width and len(shape) > 1:
        raise PayloadError(f"input shape {shape} does not end with {width} features")
    return _numeric_rows([data[i : i + width] for i in range(0, len(data), width)], width)


def _v2_columns(by_name: Mapping[str, Mapping[str, Any]], schema: FeatureSchema) -> FloatArray:
    """One tensor per feature (KServe's columnar v2 form): raw values, encoded here."""
    columns = {name: _flat_data(t) for name, t in by_name.items() if name in schema.feature_names}
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1:
        raise PayloadError(f"feature tensors of different lengths {sorted(lengths)}")
    rows = lengths.pop()
    records = [{name: values[i] for name, values in columns.items()} for i in range(rows)]
    return schema.encode_records(records)


def _flat_data(tensor: Mapping[str, Any]) -> list[Any]:
    data = tensor.get("data")
    if not isinstance(data, list):
        raise PayloadError(f"tensor {tensor.get('name')!r} has no `data` list")
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:  # row-major flattening of nested lists, as the protocol allows
        for value in stack[-1]:
            if isinstance(value, list):
                stack.append(iter(value))
                break
            flat.append(value)
        else:
            stack.pop()
    if tensor.get("datatype") == "BYTES":
        return [v.decode() if isinstance(v, bytes) else v for v in flat]
    return flat


def response_scores(body: Any, *, output_name: str | None = None) -> FloatArray:
    """The fraud probability of each row of an inference response body."""
    if not isinstance(body, Mapping):
        raise PayloadError("the response body is not a JSON object")
    if "outputs" in body:
        outputs = body["outputs"]
        if not isinstance(outputs, list) or not outputs:
            raise PayloadError("the v2 response has no outputs")
        return _v2_scores(outputs, output_name)
    predictions = body.get("predictions")
    if not isinstance(predictions, list):
        raise PayloadError("a response needs `predictions` (v1) or `outputs` (v2)")
    return _score_rows(predictions)


def _v2_scores(outputs: list[Any], output_name: str | None) -> FloatArray:
    by_name = {str(t.get("name")): t for t in outputs if isinstance(t, Mapping)}
    if output_name is not None:
        if output_name not in by_name:
            raise PayloadError(f"the v2 response has no output {output_name!r}")
        tensor = by_name[output_name]
    else:
        named = [by_name[n] for n in SCORE_OUTPUT_NAMES if n in by_name]
        tensor = named[0] if named else outputs[0]
    shape = tensor.get("shape")
    data = _flat_data(tensor)
    if isinstance(shape, list) and len(shape) == 2 and shape[1] == 2:
        data = data[1::2]
    elif isinstance(shape, list) and len(shape) == 2 and shape[1] != 1:
        raise PayloadError(
            f"output {tensor.get('name')!r} of shape {shape} is not one score per row"
        )
    return _score_rows(data)


def _score_rows(rows: Sequence[Any]) -> FloatArray:
    scores: list[float] = []
    for row in rows:
        value: Any = row
        if isinstance(row, Mapping):
            keys = [k for k in SCORE_KEYS if k in row]
            if not keys:
                raise PayloadError(f"a prediction object has none of the keys {SCORE_KEYS}")
            value = row[keys[0]]
        elif isinstance(row, list):
            if len(row) == 2:
                value = row[1]
            elif len(row) == 1:
                value = row[0]
            else:
                raise PayloadError(f"a prediction of {len(row)} values is not one score")
        try:
            scores.append(_number(value))
        except (TypeError, ValueError):
            raise PayloadError(f"a prediction {value!r} is not a number") from None
    return np.asarray(scores, dtype=np.float64)
