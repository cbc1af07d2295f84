"""The ``tabular`` importer: a user's own labelled CSV or Parquet table → ``labelled_examples``.

Every file is written here by hand, a few rows each, so each test states exactly what it expects;
the real IBM Telco churn set is imported when ``../shared/datasets`` holds it.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from getit_ml.cli.main import app
from getit_ml.data.contracts import CONTRACTS, TIMESTAMP
from getit_ml.data.importers import (
    IMPORTERS,
    REASON_COLUMN,
    SOURCE_ROW_COLUMN,
    Importer,
    ImportOption,
    ImportResult,
    import_dataset,
    import_tabular,
)
from getit_ml.data.validation import Rule, validate_dataset, validate_table
from getit_ml.errors import UserError

TELCO = (
    Path(__file__).resolve().parents[3]
    / ".."
    / "shared"
    / "datasets"
    / "telco-churn"
    / "Telco-Customer-Churn.csv"
)
CONTRACT = CONTRACTS["labelled_examples"]
DECLARED = ["example_id", "example_ts", "label"]
runner = CliRunner()


def _csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _parquet(path: Path, table: pa.Table) -> Path:
    pq.write_table(table, path)
    return path


def _check(result: ImportResult) -> ImportResult:
    """What every import must satisfy: counts add up, declared columns first, allowed types."""
    assert result.table_name == "labelled_examples"
    assert result.table.num_rows + result.rejected.num_rows == result.rows_read
    assert result.table.column_names[:3] == DECLARED
    head = pa.schema(list(result.table.schema)[:3])
    assert head.equals(CONTRACT.schema())
    for extra in list(result.table.schema)[3:]:
        assert extra.type in (pa.float64(), pa.int64(), pa.bool_(), pa.string()), extra
    assert validate_table(result.table, CONTRACT).ok
    return result


def _rejected(result: ImportResult) -> list[tuple[int, str]]:
    return list(
        zip(
            result.rejected.column(SOURCE_ROW_COLUMN).to_pylist(),
            result.rejected.column(REASON_COLUMN).to_pylist(),
            strict=True,
        )
    )


def _types(result: ImportResult) -> dict[str, str]:
    return {f.name: str(f.type) for f in list(result.table.schema)[3:]}


# ----------------------------------------------------------------------------------------------
# Typing of the features


def test_csv_features_are_typed_and_keep_their_order(tmp_path: Path) -> None:
    source = _csv(
        tmp_path / "churn.csv",
        "customerID,gender,SeniorCitizen,tenure,MonthlyCharges,TotalCharges,Promo,Note,Churn\n"
        "a-1,Female,0,1,29.85,29.85,true,,No\n"
        "a-2,Male,1,34,56.95, ,FALSE,vip,Yes\n"
        "a-3,Male,0,2,53.85,108.15,,NA,No\n"
        "a-4,Female,0,0,42.30,,True,call back,Yes\n",
    )
    result = _check(import_tabular(source, label="Churn", id_column="customerID"))

    assert result.table.column_names == [
        *DECLARED,
        "gender",
        "SeniorCitizen",
        "tenure",
        "MonthlyCharges",
        "TotalCharges",
        "Promo",
        "Note",
    ]
    assert _types(result) == {
        "gender": "string",
        "SeniorCitizen": "int64",
        "tenure": "int64",
        "MonthlyCharges": "double",
        "TotalCharges": "double",
        "Promo": "bool",
        "Note": "string",
    }
    table = result.table
    # Telco's blank TotalCharges (a space or nothing) become nulls, not rejections.
    assert table.column("TotalCharges").to_pylist() == [29.85, None, 108.15, None]
    assert table.column("Promo").to_pylist() == [True, False, None, True]
    # In a text column only blanks are missing: "NA" may be a real value there.
    assert table.column("Note").to_pylist() == [None, "vip", "NA", "call back"]
    assert table.column("example_id").to_pylist() == ["a-1", "a-2", "a-3", "a-4"]
    assert table.column("example_ts").null_count == 4
    assert table.column("label").to_pylist() == [False, True, False, True]
    assert result.rows_rejected == 0
    assert result.details["feature_types"] == {
        "gender": "string",
        "SeniorCitizen": "int64",
        "tenure": "int64",
        "MonthlyCharges": "float64",
        "TotalCharges": "float64",
        "Promo": "bool",
        "Note": "string",
    }


def test_missing_markers_and_text_that_is_not_all_numbers(tmp_path: Path) -> None:
    source = _csv(
        tmp_path / "t.csv",
        "score,count,code,amount,label\n1.5,3,007,12,yes\nNA,,x1,1e3,no\nnull,4,12,-2.5,yes\n",
    )
    result = _check(import_tabular(source))
    assert _types(result) == {
        "score": "double",
        "count": "double",  # whole numbers with a blank: float64 with a null
        "code": "string",  # one value is not a number
        "amount": "double",
    }
    assert result.table.column("score").to_pylist() == [1.5, None, None]
    assert result.table.column("count").to_pylist() == [3.0, None, 4.0]
    assert result.table.column("code").to_pylist() == ["007", "x1", "12"]
    assert result.table.column("amount").to_pylist() == [12.0, 1000.0, -2.5]


def test_parquet_features_keep_numeric_and_boolean_types(tmp_path: Path) -> None:
    source = _parquet(
        tmp_path / "t.parquet",
        pa.table(
            {
                "small": pa.array([1, 2, None], pa.int32()),
                "ratio": pa.array([0.5, None, 2.0], pa.float32()),
                "flag": pa.array([True, None, False]),
                "charges": pa.array(["1.5", " ", "3"], pa.string()),
                "city": pa.array(["Dhaka", "Sylhet", "Dhaka"]).dictionary_encode(),
                "joined": pa.array([date(2024, 1, 2), None, date(2024, 3, 4)]),
                "empty": pa.nulls(3),
                "target": pa.array([1, 0, 1], pa.int8()),
            }
        ),
    )
    result = _check(import_tabular(source))
    assert result.details["label_column"] == "target"
    assert result.details["label_auto_detected"] is True
    assert _types(result) == {
        "small": "int64",
        "ratio": "double",
        "flag": "bool",
        "charges": "double",
        "city": "string",
        "joined": "string",
        "empty": "string",
    }
    table = result.table
    assert table.column("small").to_pylist() == [1, 2, None]
    assert table.column("ratio").to_pylist() == [0.5, None, 2.0]
    assert table.column("flag").to_pylist() == [True, None, False]
    assert table.column("charges").to_pylist() == [1.5, None, 3.0]
    assert table.column("city").to_pylist() == ["Dhaka", "Sylhet", "Dhaka"]
    assert table.column("joined").to_pylist() == ["2024-01-02", None, "2024-03-04"]
    assert table.column("empty").to_pylist() == [None, None, None]
    assert table.column("label").to_pylist() == [True, False, True]
    assert table.column("example_id").to_pylist() == ["0", "1", "2"]


# ----------------------------------------------------------------------------------------------
# The label


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["Yes", "no", " YES ", "No"], [True, False, True, False]),
        (["1", "0", "0", "1.0"], [True, False, False, True]),
        (["true", "False", "t", "f"], [True, False, True, False]),
        (["y", "n", "N", "Y"], [True, False, False, True]),
        (["churned", "stayed", "Stayed", "Churned"], [True, False, False, True]),
    ],
)
def test_recognised_label_words(tmp_path: Path, values: list[str], expected: list[bool]) -> None:
    source = _csv(
        tmp_path / "t.csv", "x,Churn\n" + "".join(f"{i},{v}\n" for i, v in enumerate(values))
    )
    result = _check(import_tabular(source))
    assert result.table.column("label").to_pylist() == expected
    assert result.rows_rejected == 0


def test_numeric_zero_one_label_one_is_positive(tmp_path: Path) -> None:
    source = _parquet(
        tmp_path / "t.parquet",
        pa.table({"x": [1.0, 2.0, 3.0], "Exited": pa.array([0.0, 1.0, 0.0])}),
    )
    result = _check(import_tabular(source))
    assert result.table.column("label").to_pylist() == [False, True, False]
    assert (result.details["label_true_values"], result.details["label_false_values"]) == (
        ["1"],
        ["0"],
    )


def test_boolean_label(tmp_path: Path) -> None:
    source = _parquet(
        tmp_path / "t.parquet", pa.table({"is_fraud": [True, False, None], "amount": [1, 2, 3]})
    )
    result = _check(import_tabular(source))
    assert result.table.column("label").to_pylist() == [True, False]
    assert _rejected(result) == [(2, "is_fraud (the label) is missing")]
    flipped = _check(import_tabular(source, positive=["false"]))
    assert flipped.table.column("label").to_pylist() == [False, True]


def test_custom_positive_values(tmp_path: Path) -> None:
    source = _csv(
        tmp_path / "t.csv", "x,status\n1,Gone\n2,active\n3,GONE\n4,paused\n5,moved away\n"
    )
    result = _check(import_tabular(source, label="status", positive=["gone", "Moved away"]))
    assert result.table.column("label").to_pylist() == [True, False, True, False, True]
    assert result.details["label_true_values"] == ["Gone", "GONE", "moved away"]
    assert result.details["label_false_values"] == ["active", "paused"]
    assert result.details["label_auto_detected"] is False


def test_positive_for_a_numeric_label_compares_numbers(tmp_path: Path) -> None:
    source = _parquet(tmp_path / "t.parquet", pa.table({"x": [1, 2, 3], "class": [2, 1, 2]}))
    result = _check(import_tabular(source, positive=["2.0"]))
    assert result.table.column("label").to_pylist() == [True, False, True]
    with pytest.raises(UserError, match="holds numbers; --positive must be a number"):
        import_tabular(source, positive=["yes"])


def test_positive_that_matches_nothing_lists_the_values(tmp_path: Path) -> None:
    source = _csv(tmp_path / "t.csv", "x,label\n1,left\n2,stayed\n")
    with pytest.raises(UserError, match=r"no value of the label column label is gone or lost; "):
        import_tabular(source, positive=["gone", "lost"])


def test_two_unrecognised_values_ask_for_positive(tmp_path: Path) -> None:
    source = _csv(tmp_path / "t.csv", "x,target\n1,left\n2,active\n3,left\n")
    with pytest.raises(UserError, match=r"two values \(left, active\).*--positive"):
        import_tabular(source)
    # One recognised value and one that is not: still a two-valued label to be spelled out.
    source = _csv(tmp_path / "t.csv", "x,target\n1,1\n2,2\n")
    with pytest.raises(UserError, match="--positive"):
        import_tabular(source)


def test_no_recognised_value_at_all_asks_for_positive(tmp_path: Path) -> None:
    source = _csv(tmp_path / "t.csv", "x,y\n1,red\n2,green\n3,blue\n")
    with pytest.raises(UserError, match="no value of the label column y is recognised"):
        import_tabular(source)


def test_auto_detected_label_is_the_first_known_name(tmp_path: Path) -> None:
    source = _csv(tmp_path / "t.csv", "id,Target,Label\n1,yes,0\n2,no,1\n")
    result = _check(import_tabular(source))
    assert result.details["label_column"] == "Target"
    assert result.table.column("label").to_pylist() == [True, False]
    # "Label" is not the label here, so it is a feature (its name differs from "label").
    assert "Label" in result.table.column_names


def test_without_a_label_column_the_error_lists_the_columns(tmp_path: Path) -> None:
    source = _csv(tmp_path / "t.csv", "id,outcome,amount\n1,yes,3\n")
    with pytest.raises(UserError, match=r"none of its columns id, outcome, amount .*--label"):
        import_tabular(source)
    with pytest.raises(
        UserError, match=r"no column Outcome for --label \(did you mean outcome\?\)"
    ):
        import_tabular(source, label="Outcome")


def test_a_label_column_without_values_is_an_error(tmp_path: Path) -> None:
    source = _csv(tmp_path / "t.csv", "x,label\n1,\n2,NA\n")
    with pytest.raises(UserError, match="label column label has no values"):
        import_tabular(source)


# ----------------------------------------------------------------------------------------------
# Rejected rows, ids and time


def test_rows_with_a_missing_or_unrecognised_label_are_rejected(tmp_path: Path) -> None:
    source = _csv(tmp_path / "t.csv", "x,churn\n10,yes\n11,\n12,no\n13,maybe\n14,N/A\n15,Yes\n")
    result = _check(import_tabular(source))
    assert result.rows_read == 6
    assert (result.rows_written, result.rows_rejected) == (3, 3)
    assert result.table.column("example_id").to_pylist() == ["0", "2", "5"]
    assert result.table.column("x").to_pylist() == [10, 12, 15]
    unrecognised = (
        "churn (the label) is not a recognised true/false value (say which values are true with "
        "--positive)"
    )
    assert _rejected(result) == [
        (1, "churn (the label) is missing"),
        (3, unrecognised),
        (4, "churn (the label) is missing"),
    ]
    # The rejected rows keep the source's values as read.
    assert result.rejected.column("x").to_pylist() == ["11", "13", "14"]
    assert result.rejected.column("churn").to_pylist() == ["", "maybe", "N/A"]
    assert result.rejected_reasons() == {"churn (the label) is missing": 2, unrecognised: 1}


def test_duplicate_and_missing_ids_are_rejected(tmp_path: Path) -> None:
    source = _csv(
        tmp_path / "t.csv",
        "cid,label,v\nA,1,1\nB,1,2\nA,0,3\n,0,4\nC,x,5\nC,0,6\nB,0,7\n",
    )
    result = _check(import_tabular(source, id_column="cid"))
    assert result.table.column("example_id").to_pylist() == ["A", "B", "C"]
    assert result.table.column("v").to_pylist() == [1, 2, 6]
    assert _rejected(result) == [
        (2, "duplicate cid (the id)"),
        (3, "cid (the id) is missing"),
        # The first C has a bad label: it does not shadow the good one that follows.
        (4, "label (the label) is not a recognised true/false value (say which values are true "
         "with --positive)"),
        (6, "duplicate cid (the id)"),
    ]  # fmt: skip
    assert "cid" not in result.table.column_names


def test_numeric_ids_become_text(tmp_path: Path) -> None:
    source = _parquet(
        tmp_path / "t.parquet",
        pa.table({"uid": pa.array([7.0, 8.0, None]), "label": [1, 0, 1], "f": [1, 2, 3]}),
    )
    result = _check(import_tabular(source, id_column="uid"))
    assert result.table.column("example_id").to_pylist() == ["7", "8"]
    assert _rejected(result) == [(2, "uid (the id) is missing")]


def test_time_column_is_parsed_to_utc(tmp_path: Path) -> None:
    source = _csv(
        tmp_path / "t.csv",
        "when,label,v\n"
        "2024-01-31T10:00:00Z,yes,1\n"
        "2024-01-31 16:00:00+06:00,no,2\n"
        "2024-02-01,yes,3\n"
        "31/01/2024,no,4\n"
        ",yes,5\n"
        "2024-02-30,no,6\n",
    )
    result = _check(import_tabular(source, time_column="when"))
    ten = datetime(2024, 1, 31, 10, tzinfo=UTC)
    assert result.table.column("example_ts").to_pylist() == [
        ten,
        ten,
        datetime(2024, 2, 1, tzinfo=UTC),
    ]
    assert result.table.schema.field("example_ts").type == TIMESTAMP
    assert _rejected(result) == [
        (3, "when (the time) is not an ISO 8601 timestamp"),
        (4, "when (the time) is missing"),
        (5, "when (the time) is not an ISO 8601 timestamp"),
    ]
    assert "when" not in result.table.column_names
    assert result.details["time_column"] == "when"
    assert result.details["time_values_without_zone"] == 1


def test_parquet_timestamp_time_column(tmp_path: Path) -> None:
    naive = pa.array([datetime(2024, 5, 1, 12), None], pa.timestamp("ns"))
    source = _parquet(tmp_path / "t.parquet", pa.table({"ts": naive, "label": [True, False]}))
    result = _check(import_tabular(source, time_column="ts"))
    assert result.table.column("example_ts").to_pylist() == [datetime(2024, 5, 1, 12, tzinfo=UTC)]
    assert _rejected(result) == [(1, "ts (the time) is missing")]
    numbers = _parquet(tmp_path / "n.parquet", pa.table({"ts": [1, 2], "label": [True, False]}))
    with pytest.raises(UserError, match="time column ts is int64; write times as ISO 8601"):
        import_tabular(numbers, time_column="ts")


# ----------------------------------------------------------------------------------------------
# Names, files and options


def test_column_names_must_be_unique_and_not_collide(tmp_path: Path) -> None:
    duplicated = _csv(tmp_path / "d.csv", "a,a,label\n1,2,yes\n")
    with pytest.raises(UserError, match="duplicate column names: a"):
        import_tabular(duplicated)
    clash = _csv(tmp_path / "c.csv", "Churn,label,example_ts\nyes,1,x\n")
    with pytest.raises(UserError, match=r"label, example_ts would collide"):
        import_tabular(clash, label="Churn")
    unnamed = _csv(tmp_path / "u.csv", ",x,label\n0,1,yes\n")
    with pytest.raises(UserError, match=r"column\(s\) 1 \(counting from 1\) have no name"):
        import_tabular(unnamed)
    reserved = _csv(tmp_path / "r.csv", "_reason,label\n1,yes\n")
    with pytest.raises(UserError, match="reserved for the rejected rows"):
        import_tabular(reserved)
    same = _csv(tmp_path / "s.csv", "x,label\n1,yes\n")
    with pytest.raises(UserError, match="--id label is the label column"):
        import_tabular(same, id_column="label")


def test_the_label_column_may_be_called_label(tmp_path: Path) -> None:
    source = _csv(tmp_path / "t.csv", "example_id,label,f\nk1,yes,1\nk2,no,2\n")
    result = _check(import_tabular(source, id_column="example_id"))
    assert result.table.column_names == [*DECLARED, "f"]
    assert result.table.column("example_id").to_pylist() == ["k1", "k2"]


def test_a_folder_must_hold_exactly_one_table(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    with pytest.raises(UserError, match=r"; there is no \.csv or \.parquet file$"):
        import_tabular(folder)
    _csv(folder / "a.csv", "x,label\n1,yes\n2,no\n")
    (folder / ".hidden.csv").write_text("junk")
    assert _check(import_tabular(folder)).details["source_file"] == "a.csv"
    _csv(folder / "b.CSV", "x,label\n1,yes\n")
    with pytest.raises(UserError, match=r"it holds 2 \(a\.csv, b\.CSV\): give the file itself"):
        import_tabular(folder)
    other = _csv(tmp_path / "notes.txt", "x,label\n")
    with pytest.raises(UserError, match=r"notes\.txt is neither \.csv nor \.parquet"):
        import_tabular(other)
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet")
    with pytest.raises(UserError, match="cannot read"):
        import_tabular(broken)


def test_options_are_checked_per_format(tmp_path: Path) -> None:
    with pytest.raises(
        UserError,
        match=re.escape(
            "movielens: there is no option label (--label) for this format (it takes no "
            "options); only tabular does"
        ),
    ):
        import_dataset("movielens", tmp_path, tmp_path / "out", {"label": "rating"})
    with pytest.raises(UserError, match="there is no option 'sheet'"):
        IMPORTERS["tabular"](tmp_path, {"sheet": "1"})
    with pytest.raises(UserError, match=r"label \(--label\) takes one value, got 2"):
        IMPORTERS["tabular"](tmp_path, {"label": ["a", "b"]})
    with pytest.raises(UserError, match=r"id_column \(--id\) needs a non-empty value"):
        IMPORTERS["tabular"](tmp_path, {"id_column": " "})
    strict = Importer(
        "strict",
        "labelled_examples",
        "anything",
        lambda path, options: import_tabular(path),
        (ImportOption("label", "--label", "the label", required=True),),
    )
    with pytest.raises(UserError, match=r"strict: missing required option\(s\) label \(--label\)"):
        strict(tmp_path)
    # Not given (None or nothing) is not an option given to a format that takes none.
    source = tmp_path / "ratings.csv"
    source.write_text("user_id,item_id,rating,timestamp\n1,2,5,10\n")
    assert IMPORTERS["movielens"](source, {"label": None, "positive": ()}).rows_written == 1


# ----------------------------------------------------------------------------------------------
# Written files and validation


def test_import_writes_the_table_the_summary_and_passes_validation(tmp_path: Path) -> None:
    source = _csv(
        tmp_path / "t.csv",
        "id,ts,Churn,plan,charges\n"
        "u1,2024-01-01T00:00:00Z,Yes,basic,10.5\n"
        "u2,2024-01-02T00:00:00Z,No,pro, \n"
        "u3,2024-01-03T00:00:00Z,,pro,3\n",
    )
    out = tmp_path / "out"
    result = import_dataset(
        "tabular", source, out, {"label": "Churn", "id_column": "id", "time_column": "ts"}
    )
    written = pq.read_table(out / "labelled_examples.parquet")
    assert written.equals(result.table)
    assert written.column_names == [*DECLARED, "plan", "charges"]
    rejected = pq.read_table(out / "rejected" / "labelled_examples.parquet")
    assert rejected.column(SOURCE_ROW_COLUMN).to_pylist() == [2]
    assert json.loads((out / "import.json").read_text()) == {
        "format": "tabular",
        "source": str(source.resolve()),
        "table": "labelled_examples",
        "output": "labelled_examples.parquet",
        "rejected_output": "rejected/labelled_examples.parquet",
        "rows_read": 3,
        "rows_written": 2,
        "rows_rejected": 1,
        "rejected_reasons": {"Churn (the label) is missing": 1},
        "source_file": "t.csv",
        "label_column": "Churn",
        "label_auto_detected": False,
        "label_true_values": ["Yes"],
        "label_false_values": ["No"],
        "rows_positive": 1,
        "rows_negative": 1,
        "id_column": "id",
        "time_column": "ts",
        "feature_types": {"plan": "string", "charges": "float64"},
        "time_values_without_zone": 0,
    }

    validation = validate_dataset(out)
    assert [t.table for t in validation.tables] == ["labelled_examples"]
    assert validation.ok, validation.violations
    valid = validation.table("labelled_examples").valid
    assert valid.equals(written)


def test_validation_keeps_feature_types_and_rejects_others() -> None:
    base = pa.table(
        {
            "example_id": ["a", "b"],
            "example_ts": pa.array([None, None], TIMESTAMP),
            "label": [True, False],
        }
    )
    features = (
        base.append_column("f", pa.array([1.5, None]))
        .append_column("n", pa.array([1, 2], pa.int64()))
        .append_column("b", pa.array([True, None]))
        .append_column("s", pa.array(["x", None]))
    )
    result = validate_table(features, CONTRACT)
    assert result.ok
    assert result.valid.schema.types == features.schema.types
    assert result.valid.to_pylist() == features.to_pylist()

    for other in (pa.array([date(2024, 1, 1), None]), pa.array([1, 2], pa.int32())):
        bad = validate_table(base.append_column("other", other), CONTRACT)
        assert [(v.column, v.rule) for v in bad.violations] == [("other", Rule.UNEXPECTED_COLUMN)]
        message = bad.violations[0].message
        assert "only float64, int64, bool or string extra columns are allowed" in message
        assert bad.rows_valid == 0
    # Contracts without the flag still refuse any extra column.
    order_history = CONTRACTS["order_history"]
    assert not order_history.allow_extra_columns
    table = order_history.schema().empty_table().append_column("s", pa.array([], pa.string()))
    assert [v.rule for v in validate_table(table, order_history).violations] == [
        Rule.UNEXPECTED_COLUMN
    ]


# ----------------------------------------------------------------------------------------------
# Command line


def test_cli_imports_a_tabular_file(tmp_path: Path) -> None:
    source = _csv(tmp_path / "t.csv", "cid,status,v\nc1,gone,1\nc2,active,2\nc3,gone,3\n")
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "data", "import", "tabular", str(source), "--out", str(out),
            "--label", "status", "--positive", "gone", "--positive", "lost", "--id", "cid",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "tabular: read 3 rows, wrote 3" in result.output
    assert "label status: 2 true (gone), 1 false (active)" in result.output
    table = pq.read_table(out / "labelled_examples.parquet")
    assert table.column("label").to_pylist() == [True, False, True]
    assert table.column("example_id").to_pylist() == ["c1", "c2", "c3"]
    summary = json.loads((out / "import.json").read_text())
    assert summary["label_true_values"] == ["gone"]


def test_cli_reports_a_tabular_mistake_without_traceback(tmp_path: Path) -> None:
    source = _csv(tmp_path / "t.csv", "x,outcome\n1,a\n")
    result = runner.invoke(app, ["data", "import", "tabular", str(source), "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "--label" in result.output
    assert "Traceback" not in result.output


# ----------------------------------------------------------------------------------------------
# The real IBM Telco churn set


def test_real_telco_churn(tmp_path: Path) -> None:
    if not TELCO.is_file():
        pytest.skip(f"real data set {TELCO} is absent (it is optional)")
    result = _check(IMPORTERS["tabular"](TELCO, {"label": "Churn", "id_column": "customerID"}))
    assert result.rows_read == 7_043
    assert result.rows_rejected == 0
    assert result.details["rows_positive"] == 1_869
    assert result.details["label_true_values"] == ["Yes"]
    assert result.details["label_false_values"] == ["No"]
    total = result.table.column("TotalCharges")
    assert total.type == pa.float64()
    assert total.null_count == 11
    assert result.details["feature_types"]["SeniorCitizen"] == "int64"
    assert result.details["feature_types"]["Contract"] == "string"
    assert len(set(result.table.column("example_id").to_pylist())) == 7_043
