"""The contract with the training pipeline: what ``export_reference`` writes in the platform
environment (numpy 2, pydantic 2) is what the sidecars read here (numpy 1.24, pydantic 1)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from getit_ml.monitoring.schema import load_reference
from tests.monitoring.support.servers import ROOT

PLATFORM_PYTHON = ROOT / ".venv" / "bin" / "python"

EXPORT = """
import json, sys
from pathlib import Path
import numpy as np, pandas as pd
from getit_ml.families import get_family
from getit_ml.training.dataset import export_reference, fit_schema

frame = pd.DataFrame({
    "amount_bdt": [100.0, None, 2500.0, float("inf"), 40.0, 75.5],
    "is_new_device": pd.array([True, False, None, True, False, True], dtype="object"),
    "payment_method": ["bkash", "cod", None, "card", "nagad", "cod"],
    "payments_10m": pd.array([0, 1, 2, 3, 0, 1], dtype="int64"),
    "is_fraud": [False, True, False, True, False, False],
})
types = {"amount_bdt": "float64", "is_new_device": "bool", "payment_method": "string",
         "payments_10m": "int64"}
hints = get_family("fraud").trainer.task.monitoring
schema = fit_schema(frame, types, label="is_fraud", monitoring=hints,
                    metadata={"feature_service": "fraud_scoring_v1", "family": "fraud"})
out = Path(sys.argv[1])
files = export_reference(frame, schema, out, n=6)
expected = schema.encode(frame)
(out / "expected.json").write_text(json.dumps(
    [[None if np.isnan(v) else v for v in row] for row in expected.tolist()]))
"""


@pytest.mark.skipif(not PLATFORM_PYTHON.exists(), reason="the platform environment is not set up")
def test_export_reference_from_the_platform_reads_here(tmp_path: Path) -> None:
    subprocess.run(
        [str(PLATFORM_PYTHON), "-c", EXPORT, str(tmp_path)],
        check=True,
        cwd=ROOT,
        capture_output=True,
        timeout=120,
    )
    reference = load_reference(tmp_path)
    schema = reference.schema
    assert schema.feature_names == ["amount_bdt", "is_new_device", "payment_method", "payments_10m"]
    assert [f.kind for f in schema.features] == ["numeric", "bool", "categorical", "numeric"]
    assert schema.feature("payment_method").categories == ("bkash", "card", "cod", "nagad")
    assert schema.metadata["feature_service"] == "fraud_scoring_v1"
    # What the sidecars need of the family came through the file, not through family code.
    assert schema.monitoring.output == "fraud_probability"
    assert (schema.monitoring.positive_class, schema.monitoring.negative_class) == (
        "fraud",
        "genuine",
    )
    assert "hour_local" in schema.monitoring.drift_ignored
    assert ("is_new_device", "true") in schema.monitoring.reason_table()
    expected = np.array(json.loads((tmp_path / "expected.json").read_text()), dtype=float)
    np.testing.assert_array_equal(reference.features, expected)  # NaN where missing, both sides
    assert reference.labels is not None
    assert reference.labels.tolist() == [0, 1, 0, 1, 0, 0]
    # Raw values of a request encode as the training pipeline encodes them.
    raw = {"amount_bdt": 2500.0, "is_new_device": None, "payment_method": "cod", "payments_10m": 2}
    np.testing.assert_array_equal(schema.encode_records([raw])[0], [2500.0, np.nan, 2.0, 2.0])
    np.testing.assert_array_equal(expected[2], [2500.0, np.nan, np.nan, 2.0])  # method missing
