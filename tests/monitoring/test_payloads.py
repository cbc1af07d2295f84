"""v1 and v2 inference bodies to matrices and scores."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest

from getit_ml.monitoring.payloads import PayloadError, request_matrix, response_scores
from getit_ml.monitoring.predictor import encode_v2_request
from getit_ml.monitoring.schema import FeatureSchema, FeatureSpec

SCHEMA = FeatureSchema(
    (
        FeatureSpec("amount_bdt", "numeric"),
        FeatureSpec("is_new_device", "bool"),
        FeatureSpec("payment_method", "categorical", "string", ("bkash", "card", "cod")),
    )
)


def test_v1_lists_and_objects() -> None:
    rows = request_matrix({"instances": [[1.0, 0, 2], [None, 1, None]]}, SCHEMA)
    assert rows[0].tolist() == [1.0, 0.0, 2.0]
    assert math.isnan(rows[1, 0])
    assert rows[1, 1] == 1.0
    assert math.isnan(rows[1, 2])
    records = request_matrix(
        {"instances": [{"amount_bdt": 10, "is_new_device": True, "payment_method": "card"}]},
        SCHEMA,
    )
    assert records.tolist() == [[10.0, 1.0, 1.0]]


def test_v2_one_tensor_flat_or_nested() -> None:
    flat = {
        "inputs": [
            {"name": "input-0", "shape": [2, 3], "datatype": "FP64", "data": [1, 0, 2, 3, 1, None]}
        ]
    }
    nested = {
        "inputs": [
            {"name": "x", "shape": [2, 3], "datatype": "FP32", "data": [[1, 0, 2], [3, 1, None]]}
        ]
    }
    for body in (flat, nested):
        rows = request_matrix(body, SCHEMA)
        assert rows.shape == (2, 3)
        assert rows[1, :2].tolist() == [3.0, 1.0]
        assert math.isnan(rows[1, 2])


def test_v2_columns_per_feature_with_bytes() -> None:
    body = {
        "inputs": [
            {"name": "amount_bdt", "shape": [2], "datatype": "FP64", "data": [5.0, 6.0]},
            {
                "name": "payment_method",
                "shape": [2],
                "datatype": "BYTES",
                "data": ["cod", "rocket"],
            },
        ]
    }
    rows = request_matrix(body, SCHEMA)
    assert rows[:, 0].tolist() == [5.0, 6.0]
    assert rows[0, 2] == 2.0
    assert math.isnan(rows[1, 2])
    assert np.isnan(rows[:, 1]).all()  # a feature nobody sent is missing


def test_the_named_input_is_picked() -> None:
    body = {
        "inputs": [
            {"name": "ids", "shape": [1], "datatype": "INT64", "data": [7]},
            {"name": "features", "shape": [1, 3], "datatype": "FP64", "data": [1, 1, 0]},
        ]
    }
    assert request_matrix(body, SCHEMA, input_name="features").tolist() == [[1.0, 1.0, 0.0]]
    with pytest.raises(PayloadError, match="name the feature tensor"):
        request_matrix(body, SCHEMA)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([1, 2], "not a JSON object"),
        ({"foo": 1}, "needs `instances`"),
        ({"instances": [[1, 2]]}, "has 2 values; the schema has 3"),
        ({"instances": [{"nothing": 1}]}, "no instance names a feature"),
        ({"instances": [[1, "x", 3]]}, "not numeric"),
        (
            {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}]},
            "not a multiple",
        ),
    ],
)
def test_bad_requests_are_payload_errors(body: object, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        request_matrix(body, SCHEMA)


def test_response_scores_in_every_form() -> None:
    assert response_scores({"predictions": [0.1, 0.9]}).tolist() == [0.1, 0.9]
    assert response_scores({"predictions": [[0.9, 0.1], [0.2, 0.8]]}).tolist() == [0.1, 0.8]
    assert response_scores({"predictions": [{"fraud_probability": 0.3}]}).tolist() == [0.3]
    two_columns = {
        "outputs": [
            {"name": "output-0", "shape": [2, 2], "datatype": "FP32", "data": [0.7, 0.3, 0.4, 0.6]}
        ]
    }
    assert response_scores(two_columns).tolist() == pytest.approx([0.3, 0.6])
    several = {
        "outputs": [
            {"name": "label", "shape": [1], "datatype": "INT64", "data": [1]},
            {"name": "probability", "shape": [1], "datatype": "FP64", "data": [0.97]},
        ]
    }
    assert response_scores(several).tolist() == [0.97]
    assert response_scores(several, output_name="label").tolist() == [1.0]
    with pytest.raises(PayloadError, match="no output 'nope'"):
        response_scores(several, output_name="nope")
    with pytest.raises(PayloadError, match="not one score"):
        response_scores({"predictions": [[1, 2, 3]]})


def test_the_predictor_request_marks_missing_values_as_the_fraud_scorer_wants() -> None:
    rows = np.array([[1.5, np.nan, 2.0], [0.5, 1.0, np.nan]])
    masked = orjson.loads(encode_v2_request(rows, "features", "r1"))
    assert masked["id"] == "r1"
    features, mask = masked["inputs"]
    assert (features["name"], features["shape"]) == ("features", [2, 3])
    assert features["data"] == [1.5, 0.0, 2.0, 0.5, 1.0, 0.0]
    assert (mask["name"], mask["datatype"]) == ("missing", "BOOL")
    assert mask["data"] == [False, True, False, False, False, True]
    nulls = orjson.loads(encode_v2_request(rows, "input-0", "r2", missing="null"))
    assert len(nulls["inputs"]) == 1
    assert nulls["inputs"][0]["data"][1] is None
    # Both forms decode to the same matrix (the drift detector reads the scorer's requests).
    for body in (masked, nulls):
        np.testing.assert_array_equal(request_matrix(body, SCHEMA), rows)
    complete = orjson.loads(encode_v2_request(np.ones((1, 3)), "features", "r3"))
    assert len(complete["inputs"]) == 1  # no mask when nothing is missing


def test_a_mask_of_the_wrong_size_is_refused() -> None:
    body = {
        "inputs": [
            {"name": "features", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]},
            {"name": "missing", "shape": [1, 2], "datatype": "BOOL", "data": [True, False]},
        ]
    }
    with pytest.raises(PayloadError, match="mask has 2 values"):
        request_matrix(body, SCHEMA)
