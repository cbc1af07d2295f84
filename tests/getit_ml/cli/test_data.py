"""`getit-ml data ...` driven as a user would."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
from typer.testing import CliRunner

from getit_ml.cli.main import app

runner = CliRunner()


def test_generate_writes_the_marketplace_and_summarises(tmp_path: Path) -> None:
    out = tmp_path / "market"
    result = runner.invoke(
        app, ["data", "generate", "--out", str(out), "--customers", "500", "--days", "7"]
    )
    assert result.exit_code == 0, result.output
    assert "customers" in result.output
    assert "fraud" in result.output
    assert pq.read_table(out / "customers.parquet").num_rows == 500
    assert len(list((out / "events").iterdir())) == 7


def test_generate_refuses_a_folder_in_use(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    result = runner.invoke(app, ["data", "generate", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "not empty" in result.output
    assert "Traceback" not in result.output


def test_generate_rejects_a_bad_start_date(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["data", "generate", "--out", str(tmp_path / "x"), "--start", "31/03/2025"]
    )
    assert result.exit_code == 2
    assert "YYYY-MM-DD" in result.output


def test_generate_rejects_too_few_customers(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["data", "generate", "--out", str(tmp_path / "x"), "--customers", "5"]
    )
    assert result.exit_code == 2
    assert not (tmp_path / "x").exists()


def test_import_maps_a_public_format(tmp_path: Path) -> None:
    source = tmp_path / "ml"
    source.mkdir()
    (source / "ratings.csv").write_text(
        "user_id,item_id,rating,timestamp\n1,10,4,874965758\n2,10,5,876893171\n"
    )
    result = runner.invoke(
        app, ["data", "import", "movielens", str(source), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 0, result.output
    assert "read 2 rows, wrote 2" in result.output
    assert pq.read_table(tmp_path / "o" / "interactions.parquet").num_rows == 2


def test_import_unknown_format_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["data", "import", "kaggle", str(tmp_path), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert "movielens" in result.output
    assert "Traceback" not in result.output
