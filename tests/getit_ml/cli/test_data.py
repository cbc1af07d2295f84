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


def test_import_refuses_tabular_options_for_other_formats(tmp_path: Path) -> None:
    (tmp_path / "ratings.csv").write_text("user_id,item_id,rating,timestamp\n1,10,4,874965758\n")
    for option in (
        ["--label", "rating"],
        ["--positive", "5"],
        ["--id", "user_id"],
        ["--time", "x"],
    ):
        result = runner.invoke(
            app,
            ["data", "import", "movielens", str(tmp_path), "--out", str(tmp_path / "o"), *option],
        )
        assert result.exit_code == 2, result.output
        assert f"({option[0]}) for this format" in result.output
        assert "only tabular does" in result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_import_tabular_writes_labelled_examples(tmp_path: Path) -> None:
    source = tmp_path / "churn.csv"
    source.write_text("customerID,tenure,TotalCharges,Churn\nc1,1,29.85,No\nc2,0, ,Yes\n")
    out = tmp_path / "o"
    result = runner.invoke(
        app,
        ["data", "import", "tabular", str(source), "--out", str(out), "--label", "Churn",
         "--id", "customerID"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "label Churn: 1 true (Yes), 1 false (No); 2 feature columns" in result.output
    table = pq.read_table(out / "labelled_examples.parquet")
    assert table.column_names == ["example_id", "example_ts", "label", "tenure", "TotalCharges"]
    assert table.column("TotalCharges").to_pylist() == [29.85, None]


def test_validate_passes_generated_data_and_fails_bad_data(tmp_path: Path) -> None:
    import json

    import pandas as pd

    market = tmp_path / "market"
    assert (
        runner.invoke(
            app, ["data", "generate", "--out", str(market), "--customers", "300", "--days", "3"]
        ).exit_code
        == 0
    )
    good = runner.invoke(app, ["data", "validate", str(market)])
    assert good.exit_code == 0, good.output

    bad = tmp_path / "bad"
    bad.mkdir()
    products = pd.read_parquet(market / "products.parquet").head(20)
    products.loc[3, "price_bdt"] = -50.0  # negative price
    products.loc[7, "product_id"] = products.loc[6, "product_id"]  # duplicate id
    products.drop(columns=["stock"]).to_csv(bad / "products.csv", index=False)  # missing column
    result = runner.invoke(
        app,
        ["data", "validate", str(bad), "--table", "products", "--out", str(tmp_path / "report")],
    )
    assert result.exit_code == 1
    assert "stock" in result.output
    assert "missing_column" in result.output
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    products_report = report["tables"]["products"]
    assert products_report["rows_in"] == 20
    assert products_report["rows_valid"] + products_report["rows_quarantined"] == 20
    rules = {v["rule"] for v in report["violations"]}
    assert {"missing_column", "below_min", "duplicate"} <= rules


def test_validate_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "validate", str(tmp_path / "nowhere")])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_import_interactions_maps_ids_and_reports_rejections(tmp_path: Path) -> None:
    source = tmp_path / "events.csv"
    source.write_text(
        "visitor,sku,ts,action\n"
        "A17,p-1,1700000000000,click\n"
        "A17,p-2,1700000001000,buy\n"
        "B2,p-1,1700000002000,refund\n"
        "B2,p-1,later,view\n"
    )
    out = tmp_path / "o"
    result = runner.invoke(
        app,
        ["data", "import", "interactions", str(source), "--out", str(out), "--user", "visitor",
         "--item", "sku", "--event", "action"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "read 4 rows, wrote 2" in result.output
    assert "1 users, 2 items" in result.output
    assert "mapped to integers" in result.output
    assert "time ts: unix_milliseconds" in result.output
    assert "events: view 1, purchase 1" in result.output
    assert "rejected 2 rows" in result.output
    assert "return or refund" in result.output
    table = pq.read_table(out / "interactions.parquet")
    assert table.column("event_type").to_pylist() == ["view", "purchase"]
    assert pq.read_table(out / "user_ids.parquet").column("original_id").to_pylist() == ["A17"]


def test_import_interactions_refuses_a_folder_with_two_files(tmp_path: Path) -> None:
    for name in ("a.csv", "b.parquet"):
        (tmp_path / name).write_text("user_id,item_id\n1,2\n")
    result = runner.invoke(
        app, ["data", "import", "interactions", str(tmp_path), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert "holds 2" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_import_refuses_interactions_options_for_other_formats(tmp_path: Path) -> None:
    (tmp_path / "ratings.csv").write_text("user_id,item_id,rating,timestamp\n1,10,4,874965758\n")
    result = runner.invoke(
        app,
        ["data", "import", "movielens", str(tmp_path), "--out", str(tmp_path / "o"),
         "--timestamp", "timestamp"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "(--timestamp) for this format" in result.output
    assert "only interactions does" in result.output
