"""export_reference_data as a plain function and as a kfp.local task."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
from kfp.dsl import Dataset

from components.conftest import TrainingRun, run_locally
from components.export_reference_data.component import export_reference_data


def test_python_func_writes_plain_parquet_and_the_schema(
    training_run: TrainingRun, tmp_path: Path
) -> None:
    reference = Dataset(uri=str(tmp_path / "reference"))
    rows = export_reference_data.python_func(
        family="fraud",
        training_set=Dataset(uri=str(training_run.training_set)),
        reference=reference,
        rows=500,
    )
    assert rows == 500 == reference.metadata["rows"]
    table = pq.read_table(Path(reference.path) / "reference.parquet")
    schema = json.loads((Path(reference.path) / "feature_schema.json").read_text())
    names = [feature["name"] for feature in schema["features"]]
    assert table.column_names == [*names, "is_fraud"]
    assert table.num_rows == 500
    assert all(str(table.schema.field(name).type) == "double" for name in names)


def test_runs_as_a_kfp_local_task(training_run: TrainingRun, tmp_path: Path) -> None:
    outputs = run_locally(
        export_reference_data,
        tmp_path / "kfp",
        {"training_set": (training_run.training_set, Dataset)},
        rows=100,
    )
    assert pq.read_table(outputs / "reference" / "reference.parquet").num_rows == 100
