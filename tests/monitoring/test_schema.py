"""The feature schema and reference files, read without the training code."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from getit_ml.errors import UserError
from getit_ml.monitoring.schema import FeatureSchema, FeatureSpec, Reference, load_reference

SCHEMA = {
    "format": "getit-ml/feature-schema",
    "version": 1,
    "label": "is_fraud",
    "feature_names": ["amount_bdt", "is_new_device", "payment_method"],
    "features": [
        {"name": "amount_bdt", "kind": "numeric", "dtype": "float64"},
        {"name": "is_new_device", "kind": "bool", "dtype": "bool"},
        {
            "name": "payment_method",
            "kind": "categorical",
            "dtype": "string",
            "categories": ["bkash", "card", "cod"],
        },
    ],
    "metadata": {"feature_service": "fraud_scoring_v1"},
}


def _write(directory: Path, schema: dict[str, object], columns: dict[str, list[float]]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "feature_schema.json").write_text(json.dumps(schema))
    pq.write_table(
        pa.table({k: pa.array(v, type=pa.float64()) for k, v in columns.items()}),
        directory / "reference.parquet",
    )
    return directory


def test_reads_the_exported_files(tmp_path: Path) -> None:
    columns = {
        "amount_bdt": [100.0, None, 900.0],
        "is_new_device": [0.0, 1.0, None],
        "payment_method": [0.0, 2.0, None],
        "is_fraud": [0, 1, 0],
    }
    reference = load_reference(_write(tmp_path, SCHEMA, columns))
    assert reference.schema.feature_names == ["amount_bdt", "is_new_device", "payment_method"]
    assert reference.rows == 3
    assert np.isnan(reference.features[1, 0])
    assert reference.features[1, 2] == 2.0
    assert reference.labels is not None
    assert reference.labels.tolist() == [0, 1, 0]
    assert reference.schema.metadata["feature_service"] == "fraud_scoring_v1"


def test_the_real_reference_fixture_round_trips(reference: Reference, reference_dir: Path) -> None:
    loaded = load_reference(reference_dir)
    assert loaded.schema == reference.schema
    np.testing.assert_array_equal(loaded.features, reference.features)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "something/else"}, "not a getit-ml/feature-schema document of version 1 or 2"),
        ({"version": 3}, "version=3"),
        ({"monitoring": {"reasons": [{"feature": "a"}]}}, "malformed `monitoring`"),
        ({"features": []}, "no features"),
        ({"features": [{"name": "a", "kind": "text"}]}, "unknown kind"),
        ({"features": [{"name": "a", "kind": "categorical"}]}, "has no categories"),
        ({"features": [{"name": "a", "kind": "numeric"}] * 2}, "duplicate feature names"),
    ],
)
def test_a_bad_schema_is_a_clear_error(change: dict[str, object], message: str) -> None:
    with pytest.raises(UserError, match=message):
        FeatureSchema.from_dict({**SCHEMA, **change})


def test_missing_files_and_columns_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no feature schema"):
        load_reference(tmp_path)
    directory = _write(tmp_path / "partial", SCHEMA, {"amount_bdt": [1.0, 2.0]})
    with pytest.raises(UserError, match=r"lacks 2 schema feature\(s\): is_new_device"):
        load_reference(directory)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "feature_schema.json").write_text("{not json")
    with pytest.raises(UserError, match="not JSON"):
        load_reference(tmp_path / "bad")


def test_raw_values_encode_like_the_training_encoding() -> None:
    schema = FeatureSchema.from_dict(SCHEMA)
    matrix = schema.encode_records(
        [
            {"amount_bdt": "1500", "is_new_device": True, "payment_method": "cod"},
            {"amount_bdt": float("inf"), "is_new_device": "false", "payment_method": "nagad"},
            {"is_new_device": None, "payment_method": 1, "unknown": 3},
        ]
    )
    assert matrix[0].tolist() == [1500.0, 1.0, 2.0]
    assert math.isnan(matrix[1, 0])
    assert matrix[1, 1] == 0.0
    assert math.isnan(matrix[1, 2])
    assert math.isnan(matrix[2, 0])
    assert math.isnan(matrix[2, 1])
    assert matrix[2, 2] == 1.0


def test_values_are_described_in_words() -> None:
    method = FeatureSpec("payment_method", "categorical", "string", ("bkash", "card"))
    assert method.describe(1.0) == "card"
    assert FeatureSpec("is_new_device", "bool").describe(1.0) == "true"
    assert FeatureSpec("amount_bdt", "numeric").describe(float("nan")) == "missing"


def test_a_reference_that_does_not_fit_the_schema_is_refused() -> None:
    with pytest.raises(UserError, match="does not match"):
        Reference(FeatureSchema.from_dict(SCHEMA), np.zeros((5, 2)))
