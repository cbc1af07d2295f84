"""validate_data as a plain function and as a kfp.local task."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from kfp import local
from kfp.dsl import Artifact, Markdown

from components.validate_data.component import validate_data
from getit_ml.data.generator import MarketplaceConfig, generate
from getit_ml.data.snapshot import snapshot_id


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("market") / "data"
    generate(MarketplaceConfig(customers=300, days=3), out)
    return out


def test_python_func_passes_good_data(market: Path, tmp_path: Path) -> None:
    report = Markdown(uri=str(tmp_path / "report.md"))
    report_json = Artifact(uri=str(tmp_path / "report.json"))
    rows = validate_data.python_func(
        data_dir=str(market),
        snapshot_id=snapshot_id(market),
        report=report,
        report_json=report_json,
    )
    assert rows > 0
    assert json.loads(Path(report_json.path).read_text())["ok"] is True


def test_python_func_stops_on_bad_data_with_the_report(market: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    products = pd.read_parquet(market / "products.parquet")
    products.loc[0, "price_bdt"] = -1.0
    products.to_parquet(bad / "products.parquet")
    with pytest.raises(RuntimeError, match="price_bdt") as failure:
        validate_data.python_func(
            data_dir=str(bad),
            snapshot_id=snapshot_id(bad),
            report=Markdown(uri=str(tmp_path / "r.md")),
            report_json=Artifact(uri=str(tmp_path / "r.json")),
        )
    assert "below_min" in str(failure.value)


def test_python_func_refuses_data_changed_after_the_snapshot(market: Path, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="changed since the run started"):
        validate_data.python_func(
            data_dir=str(market),
            snapshot_id="sha256:stale",
            report=Markdown(uri=str(tmp_path / "r.md")),
            report_json=Artifact(uri=str(tmp_path / "r.json")),
        )


def test_runs_as_a_kfp_local_task(market: Path, tmp_path: Path) -> None:
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "kfp"))
    task = validate_data(data_dir=str(market), snapshot_id=snapshot_id(market))
    assert task.outputs["Output"] > 0
    assert "Data validation" in Path(task.outputs["report"].path).read_text()
