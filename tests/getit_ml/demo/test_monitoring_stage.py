"""The monitoring demo stage's data handling (the stage itself runs in the demo's end-to-end
test, with real servers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from getit_ml.demo.monitoring import find_reference_export, split_reference
from getit_ml.errors import UserError
from getit_ml.training.dataset import export_reference, fit_schema


def _export(folder: Path, rows: int = 500) -> Path:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"t": np.arange(rows, dtype=np.float64), "x": rng.normal(size=rows),
                          "is_fraud": rng.random(rows) < 0.1})  # fmt: skip
    schema = fit_schema(frame, {"t": "float64", "x": "float64"}, label="is_fraud",
                        metadata={"family": "fraud"})  # fmt: skip
    export_reference(frame, schema, folder, n=rows)
    return folder


def test_split_is_disjoint_complete_and_the_traffic_is_shuffled(tmp_path: Path) -> None:
    export = _export(tmp_path / "export")
    held_out = split_reference(export, tmp_path / "monitoring" / "reference", share=0.8)
    reference = pq.read_table(tmp_path / "monitoring" / "reference" / "reference.parquet")
    kept = reference.column("t").to_numpy()
    traffic = held_out.features[:, held_out.schema.index("t")]
    assert len(kept) == 400
    assert len(traffic) == 100
    assert set(kept).isdisjoint(traffic)
    assert sorted([*kept, *traffic]) == list(range(500))
    # In time order the first window would be the earliest payments, not a random sample.
    assert not np.all(np.diff(traffic) > 0)


def test_no_export_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no fraud reference export"):
        find_reference_export(tmp_path, "fraud")
    target = _export(tmp_path / "pipelines" / "run" / "job" / "export-reference-data" / "reference")
    assert find_reference_export(tmp_path, "fraud") == target
    with pytest.raises(UserError, match="no churn reference export"):
        find_reference_export(tmp_path, "churn")  # another family's export is not churn's
