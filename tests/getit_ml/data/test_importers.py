"""Importers of public data sets: value-by-value mapping on tiny files, counts on the real sets.

The tiny files are written in each set's real format (header, separators, line endings); the
real sets live in ``../shared/datasets`` and their tests skip when that folder is absent.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from getit_ml.data.contracts import CONTRACTS
from getit_ml.data.importers import (
    CREDITCARD_FEATURES,
    IMPORTERS,
    REASON_COLUMN,
    SOURCE_FILE_COLUMN,
    SOURCE_ROW_COLUMN,
    WALMART_COVARIATES,
    ImportResult,
    import_dataset,
)
from getit_ml.errors import UserError

DATASETS = Path(__file__).resolve().parents[3] / ".." / "shared" / "datasets"

FORMAT_TABLES = {
    "movielens": "interactions",
    "creditcard": "card_transactions",
    "diginetica": "session_sequences",
    "walmart": "demand_series",
    "cdnow": "order_history",
    "tabular": "labelled_examples",
    "interactions": "interactions",
}


def _real_dataset(folder: str) -> Path:
    path = DATASETS / folder
    if not path.is_dir():
        pytest.skip(f"real data set {path} is absent (it is optional)")
    return path


def _import(fmt: str, path: Path) -> ImportResult:
    result = IMPORTERS[fmt](path)
    assert result.table_name == FORMAT_TABLES[fmt]
    assert result.table.num_rows + result.rejected.num_rows == result.rows_read
    return result


def _assert_contract_schema(result: ImportResult, extras: tuple[str, ...] = ()) -> None:
    expected = CONTRACTS[result.table_name].schema()
    for name in extras:
        expected = expected.append(pa.field(name, pa.float64()))
    assert result.table.schema.equals(expected), result.table.schema


def _rejected(result: ImportResult) -> list[tuple[int, str]]:
    return list(
        zip(
            result.rejected.column(SOURCE_ROW_COLUMN).to_pylist(),
            result.rejected.column(REASON_COLUMN).to_pylist(),
            strict=True,
        )
    )


def _utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# ----------------------------------------------------------------------------------------------
# Registry


def test_every_format_is_registered_onto_a_contract_table() -> None:
    assert {fmt: importer.table_name for fmt, importer in IMPORTERS.items()} == FORMAT_TABLES
    for fmt, importer in IMPORTERS.items():
        assert importer.format == fmt
        assert importer.table_name in CONTRACTS


def test_import_result_refuses_counts_that_do_not_add_up() -> None:
    table = CONTRACTS["order_history"].schema().empty_table()
    rejected = pa.table({REASON_COLUMN: pa.array(["bad"], pa.string())})
    with pytest.raises(ValueError, match=r"0 rows written \+ 1 rejected != 2 read"):
        ImportResult("order_history", table, rejected, rows_read=2)


def test_import_result_refuses_a_schema_other_than_the_contracts() -> None:
    table = pa.table({"customer_id": pa.array([1], pa.int64())})
    rejected = pa.table({REASON_COLUMN: pa.array([], pa.string())})
    with pytest.raises(ValueError, match="not the contract's"):
        ImportResult("order_history", table, rejected, rows_read=1)


def test_import_result_refuses_extra_columns_the_contract_does_not_allow() -> None:
    table = (
        CONTRACTS["order_history"]
        .schema()
        .empty_table()
        .append_column("x", pa.array([], pa.int64()))
    )
    rejected = pa.table({REASON_COLUMN: pa.array([], pa.string())})
    with pytest.raises(ValueError, match="extra columns are not allowed"):
        ImportResult("order_history", table, rejected, rows_read=0)


# ----------------------------------------------------------------------------------------------
# MovieLens


def test_movielens_maps_ratings_to_interactions(tmp_path: Path) -> None:
    (tmp_path / "ratings.csv").write_text(
        "user_id,item_id,rating,timestamp\n"
        "196,242,3,881250949\n"
        "186,302,4.5,0\n"
        "7,8,x,100\n"
        "-1,5,3,100\n"
        "9,10,2,\n"
    )
    result = _import("movielens", tmp_path)

    _assert_contract_schema(result)
    assert result.table.to_pylist() == [
        {
            "customer_id": 196,
            "product_id": 242,
            "interaction_ts": _utc(1997, 12, 4, 15, 55, 49),
            "rating": 3.0,
            "event_type": "rating",
        },
        {
            "customer_id": 186,
            "product_id": 302,
            "interaction_ts": _utc(1970, 1, 1),
            "rating": 4.5,
            "event_type": "rating",
        },
    ]
    assert result.rows_read == 5
    assert _rejected(result) == [
        (2, "rating is not a number"),
        (3, "user_id is negative"),
        (4, "timestamp is not an integer (unix seconds)"),
    ]
    # The rejected rows are the source rows, as read.
    assert result.rejected.column("user_id").to_pylist() == ["7", "-1", "9"]


def test_movielens_accepts_the_csv_file_itself(tmp_path: Path) -> None:
    ratings = tmp_path / "my_ratings.csv"
    ratings.write_text("user_id,item_id,rating,timestamp\n1,2,5,10\n")
    result = _import("movielens", ratings)
    assert result.table.column("product_id").to_pylist() == [2]


def test_movielens_real_ratings() -> None:
    result = _import("movielens", _real_dataset("movielens-100k"))
    _assert_contract_schema(result)
    assert result.rows_read == 100_000
    assert result.table.num_rows == 100_000
    assert pc.count_distinct(result.table.column("customer_id")).as_py() == 943
    assert pc.count_distinct(result.table.column("product_id")).as_py() == 1_682
    assert pc.min_max(result.table.column("rating")).as_py() == {"min": 1.0, "max": 5.0}
    # u.data's first row: user 196 rated item 242 three stars at 881250949.
    assert result.table.slice(0, 1).to_pylist()[0]["interaction_ts"] == _utc(
        1997, 12, 4, 15, 55, 49
    )


# ----------------------------------------------------------------------------------------------
# ULB credit-card fraud


def _creditcard_table(rows: list[dict[str, Any]]) -> pa.Table:
    columns: dict[str, pa.Array] = {"Time": pa.array([row["Time"] for row in rows], pa.float64())}
    for number, name in enumerate(CREDITCARD_FEATURES, start=1):
        columns[name] = pa.array(
            [row.get(name, index * 100.0 + number) for index, row in enumerate(rows)],
            pa.float64(),
        )
    columns["Amount"] = pa.array([row["Amount"] for row in rows], pa.float64())
    columns["Class"] = pa.array([row["Class"] for row in rows], pa.int64())
    return pa.table(columns)


def test_creditcard_maps_transactions_with_features(tmp_path: Path) -> None:
    pq.write_table(
        _creditcard_table(
            [
                {"Time": 0.0, "Amount": 149.62, "Class": 0},
                {"Time": 90061.5, "Amount": 0.0, "Class": 1, "V5": None},
                {"Time": 5.0, "Amount": -1.0, "Class": 0},
                {"Time": 6.0, "Amount": 2.0, "Class": 2},
                {"Time": None, "Amount": 2.0, "Class": 0},
                {"Time": 7.0, "Amount": 3.5, "Class": 0},
            ]
        ),
        tmp_path / "creditcard.parquet",
    )
    result = _import("creditcard", tmp_path)

    _assert_contract_schema(result, extras=CREDITCARD_FEATURES)
    rows = result.table.to_pylist()
    assert [row["transaction_id"] for row in rows] == [0, 1, 5]
    assert [row["transaction_ts"] for row in rows] == [
        _utc(2013, 9, 1),
        datetime(2013, 9, 2, 1, 1, 1, 500_000, tzinfo=UTC),
        _utc(2013, 9, 1, 0, 0, 7),
    ]
    assert [row["amount"] for row in rows] == [149.62, 0.0, 3.5]
    assert [row["is_fraud"] for row in rows] == [False, True, False]
    assert rows[0]["V1"] == 1.0
    assert rows[0]["V28"] == 28.0
    assert rows[1]["V4"] == 104.0
    assert rows[1]["V5"] is None  # a missing feature stays missing, it is not invented
    assert rows[2]["V28"] == 528.0
    assert _rejected(result) == [
        (2, "Amount is negative"),
        (3, "Class is not 0 or 1"),
        (4, "Time is missing or not finite"),
    ]
    assert result.rejected.column("Amount").to_pylist() == [-1.0, 2.0, 2.0]


def test_creditcard_real_transactions() -> None:
    folder = _real_dataset("creditcard-fraud")
    started = time.perf_counter()
    result = _import("creditcard", folder / "creditcard.parquet")
    elapsed = time.perf_counter() - started

    assert elapsed < 10, f"the full set must import in seconds, took {elapsed:.1f}s"
    _assert_contract_schema(result, extras=CREDITCARD_FEATURES)
    assert result.rows_read == 284_807
    assert result.table.num_rows == 284_807
    assert pc.sum(result.table.column("is_fraud")).as_py() == 492
    assert pc.min_max(result.table.column("transaction_ts")).as_py() == {
        "min": _utc(2013, 9, 1),
        "max": _utc(2013, 9, 2, 23, 59, 52),
    }
    assert pc.count_distinct(result.table.column("transaction_id")).as_py() == 284_807


# ----------------------------------------------------------------------------------------------
# DIGINETICA

# pandas writes the SR-GNN files, so their lists name the value field "element".
_PANDAS_ITEM_LIST = pa.list_(pa.field("element", pa.int64()))


def _write_diginetica(
    folder: Path, train: list[list[int | None] | None], test: list[tuple[list[int], int | None]]
) -> None:
    pq.write_table(
        pa.table({"session_items": pa.array(train, _PANDAS_ITEM_LIST)}),
        folder / "all_train_seq.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "session_items": pa.array([items for items, _ in test], _PANDAS_ITEM_LIST),
                "target_item": pa.array([target for _, target in test], pa.int64()),
            }
        ),
        folder / "test.parquet",
    )


def test_diginetica_maps_train_sessions_and_test_cases(tmp_path: Path) -> None:
    _write_diginetica(
        tmp_path,
        train=[[1, 2], [3, 4, 5], [], None],
        test=[([7, 8], 9), ([9], 10), ([2], -4), ([2], None)],
    )
    result = _import("diginetica", tmp_path)

    _assert_contract_schema(result)
    assert result.table.to_pylist() == [
        {"session_id": 0, "product_ids": [1, 2], "target_product_id": None, "split": "train"},
        {"session_id": 1, "product_ids": [3, 4, 5], "target_product_id": None, "split": "train"},
        {"session_id": 4, "product_ids": [7, 8], "target_product_id": 9, "split": "test"},
        {"session_id": 5, "product_ids": [9], "target_product_id": 10, "split": "test"},
    ]
    assert result.rows_read == 8
    assert _rejected(result) == [
        (2, "session_items is empty"),
        (3, "session_items is missing"),
        (2, "target_item is negative"),
        (3, "target_item is missing"),
    ]
    assert result.rejected.column(SOURCE_FILE_COLUMN).to_pylist() == [
        "all_train_seq.parquet",
        "all_train_seq.parquet",
        "test.parquet",
        "test.parquet",
    ]


def test_diginetica_rejects_sessions_with_bad_item_ids(tmp_path: Path) -> None:
    _write_diginetica(tmp_path, train=[[1, None], [2, -3]], test=[([1], 2)])
    result = _import("diginetica", tmp_path)
    assert _rejected(result) == [
        (0, "session_items has a missing item id"),
        (1, "session_items has a negative item id"),
    ]
    assert result.table.column("session_id").to_pylist() == [2]


def test_diginetica_real_sessions() -> None:
    result = _import("diginetica", _real_dataset("diginetica-sessions"))
    _assert_contract_schema(result)
    assert result.rows_read == 186_670 + 60_858
    assert result.rejected.num_rows == 0
    splits = dict(
        zip(
            *pc.value_counts(result.table.column("split")).flatten(),
            strict=True,
        )
    )
    assert {key.as_py(): count.as_py() for key, count in splits.items()} == {
        "train": 186_670,
        "test": 60_858,
    }
    all_items = pc.unique(pc.list_flatten(result.table.column("product_ids")))
    targets = pc.unique(result.table.column("target_product_id").drop_null())
    assert len(pc.unique(pa.concat_arrays([all_items, targets]))) == 43_097
    assert pc.count_distinct(result.table.column("session_id")).as_py() == result.rows_read


# ----------------------------------------------------------------------------------------------
# Walmart weekly sales

_WALMART_HEADER = "Store,Date,Weekly_Sales,Holiday_Flag,Temperature,Fuel_Price,CPI,Unemployment\n"


def test_walmart_maps_weekly_store_sales(tmp_path: Path) -> None:
    (tmp_path / "walmart_weekly_sales.csv").write_text(
        _WALMART_HEADER + "2,12-02-2010,2137809.5,1,38.49,2.548,210.89,8.324\n"
        "1,19-02-2010,1611968.17,0,39.93,2.514,211.29,8.106\n"
        "1,12-02-2010,1641957.44,1,38.51,2.548,211.2421698,8.106\n"
        "1,31-02-2010,1.0,0,1,1,1,1\n"
        "1,12-02-2010,5.0,0,1,1,1,1\n"
        "10,26-02-2010,100.0,0,,2.5,200,7\n"
        "3,05-03-2010,100.0,2,1,1,1,1\n"
        "3,05-03-2010,100.0,0,warm,1,1,1\n"
    )
    result = _import("walmart", tmp_path)

    _assert_contract_schema(result, extras=WALMART_COVARIATES)
    # Date is the Friday that ends the week; period_start is the Saturday that starts it.
    assert result.table.to_pylist() == [
        {
            "series_id": "store-1",
            "period_start": date(2010, 2, 6),
            "frequency": "W",
            "value": 1641957.44,
            "is_holiday": True,
            "Temperature": 38.51,
            "Fuel_Price": 2.548,
            "CPI": 211.2421698,
            "Unemployment": 8.106,
        },
        {
            "series_id": "store-1",
            "period_start": date(2010, 2, 13),
            "frequency": "W",
            "value": 1611968.17,
            "is_holiday": False,
            "Temperature": 39.93,
            "Fuel_Price": 2.514,
            "CPI": 211.29,
            "Unemployment": 8.106,
        },
        {
            "series_id": "store-2",
            "period_start": date(2010, 2, 6),
            "frequency": "W",
            "value": 2137809.5,
            "is_holiday": True,
            "Temperature": 38.49,
            "Fuel_Price": 2.548,
            "CPI": 210.89,
            "Unemployment": 8.324,
        },
        {
            "series_id": "store-10",
            "period_start": date(2010, 2, 20),
            "frequency": "W",
            "value": 100.0,
            "is_holiday": False,
            "Temperature": None,
            "Fuel_Price": 2.5,
            "CPI": 200.0,
            "Unemployment": 7.0,
        },
    ]
    assert result.rows_read == 8
    assert _rejected(result) == [
        (3, "Date is not a valid dd-mm-yyyy date"),
        (4, "duplicate Store and Date"),
        (6, "Holiday_Flag is not 0 or 1"),
        (7, "Temperature is not a number"),
    ]


def test_walmart_real_weekly_sales() -> None:
    result = _import("walmart", _real_dataset("walmart-weekly-sales"))
    _assert_contract_schema(result, extras=WALMART_COVARIATES)
    assert result.rows_read == 6_435
    assert result.table.num_rows == 6_435
    series = result.table.column("series_id")
    assert pc.count_distinct(series).as_py() == 45
    weeks = pc.value_counts(series).field("counts")
    assert pc.min_max(weeks).as_py() == {"min": 143, "max": 143}
    # Weeks ending 2010-02-05 .. 2012-10-26.
    assert pc.min_max(result.table.column("period_start")).as_py() == {
        "min": date(2010, 1, 30),
        "max": date(2012, 10, 20),
    }
    assert pc.sum(result.table.column("is_holiday")).as_py() == 45 * 10


# ----------------------------------------------------------------------------------------------
# CDNOW

_CDNOW_MASTER = (
    " customer_id  date number_of_cds  dollar_value\r\n"
    " 00002 19970112  5   77.00\r\n"
    " 00001 19970101  1   11.77\r\n"
    " 00002 19970105  1   12.00\r\n"
    " 00003 19970102  0    0.00\r\n"
    " 00455 19970102  1    0.00\r\n"
    " 00004 1997013   1    5.00\r\n"
    " 00005 19970110  1\r\n"
    "\r\n"
)


def test_cdnow_maps_orders_and_rejects_zero_cd_rows(tmp_path: Path) -> None:
    (tmp_path / "CDNOW_master.txt").write_bytes(_CDNOW_MASTER.encode())
    result = _import("cdnow", tmp_path)

    _assert_contract_schema(result)
    # Sorted by customer, then time, as the contract orders them; the $0 order is kept.
    assert result.table.to_pylist() == [
        {"customer_id": 1, "order_ts": _utc(1997, 1, 1), "n_items": 1, "amount": 11.77},
        {"customer_id": 2, "order_ts": _utc(1997, 1, 5), "n_items": 1, "amount": 12.0},
        {"customer_id": 2, "order_ts": _utc(1997, 1, 12), "n_items": 5, "amount": 77.0},
        {"customer_id": 455, "order_ts": _utc(1997, 1, 2), "n_items": 1, "amount": 0.0},
    ]
    assert result.rows_read == 7  # the header and the blank line are not rows
    assert _rejected(result) == [
        (3, "number_of_cds is 0 (order_history requires n_items >= 1)"),
        (5, "date is not a valid yyyymmdd date"),
        (6, "expected 4 fields"),
    ]
    assert result.rejected.column("line").to_pylist()[0] == "00003 19970102  0    0.00"


def test_cdnow_reads_the_original_file_without_header(tmp_path: Path) -> None:
    master = tmp_path / "cdnow.txt"
    master.write_text("00001 19970101  1   11.77\n00002 19970112  2   20.00\n")
    result = _import("cdnow", master)
    assert result.table.column("amount").to_pylist() == [11.77, 20.0]
    assert result.rows_read == 2


def test_cdnow_real_orders() -> None:
    result = _import("cdnow", _real_dataset("cdnow-transactions"))
    _assert_contract_schema(result)
    assert result.rows_read == 69_659
    assert result.table.num_rows == 69_659
    assert pc.count_distinct(result.table.column("customer_id")).as_py() == 23_570
    # The real file has 80 orders of one CD for $0.00 and none of 0 CDs: all kept.
    assert pc.sum(pc.equal(result.table.column("amount"), 0.0)).as_py() == 80
    assert pc.min_max(result.table.column("order_ts")).as_py() == {
        "min": _utc(1997, 1, 1),
        "max": _utc(1998, 6, 30),
    }


# ----------------------------------------------------------------------------------------------
# import_dataset: files written


def test_import_dataset_writes_table_rejected_rows_and_summary(tmp_path: Path) -> None:
    source = tmp_path / "cdnow"
    source.mkdir()
    (source / "CDNOW_master.txt").write_bytes(_CDNOW_MASTER.encode())
    out = tmp_path / "out"

    result = import_dataset("cdnow", source, out)

    written = pq.read_table(out / "order_history.parquet")
    assert written.schema.equals(CONTRACTS["order_history"].schema())
    assert written.equals(result.table)
    rejected = pq.read_table(out / "rejected" / "order_history.parquet")
    assert rejected.num_rows == 3
    assert json.loads((out / "import.json").read_text()) == {
        "format": "cdnow",
        "source": str(source.resolve()),
        "table": "order_history",
        "output": "order_history.parquet",
        "rejected_output": "rejected/order_history.parquet",
        "rows_read": 7,
        "rows_written": 4,
        "rows_rejected": 3,
        "rejected_reasons": {
            "number_of_cds is 0 (order_history requires n_items >= 1)": 1,
            "date is not a valid yyyymmdd date": 1,
            "expected 4 fields": 1,
        },
    }
    assert not list(out.rglob("*.partial"))


def test_import_dataset_removes_a_stale_rejected_file(tmp_path: Path) -> None:
    source = tmp_path / "ratings.csv"
    source.write_text("user_id,item_id,rating,timestamp\n1,2,x,10\n")
    out = tmp_path / "out"
    import_dataset("movielens", source, out)
    assert (out / "rejected" / "interactions.parquet").exists()

    source.write_text("user_id,item_id,rating,timestamp\n1,2,5,10\n")
    result = import_dataset("movielens", source, out)

    assert result.rows_rejected == 0
    assert not (out / "rejected" / "interactions.parquet").exists()
    summary = json.loads((out / "import.json").read_text())
    assert summary["rows_written"] == 1
    assert summary["rejected_output"] is None
    assert summary["rejected_reasons"] == {}


def test_import_dataset_on_a_real_set(tmp_path: Path) -> None:
    folder = _real_dataset("walmart-weekly-sales")
    import_dataset("walmart", folder, tmp_path)
    written = pq.read_table(tmp_path / "demand_series.parquet")
    assert written.num_rows == 6_435
    assert written.schema.names[: len(CONTRACTS["demand_series"].columns)] == list(
        CONTRACTS["demand_series"].column_names
    )
    assert not (tmp_path / "rejected").exists()
    assert json.loads((tmp_path / "import.json").read_text())["rows_read"] == 6_435


# ----------------------------------------------------------------------------------------------
# Errors


def test_unknown_format_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(
        UserError,
        match=re.escape(
            "unknown import format 'netflix'; expected one of: "
            "cdnow, creditcard, diginetica, interactions, movielens, tabular, walmart"
        ),
    ):
        import_dataset("netflix", tmp_path, tmp_path / "out")


@pytest.mark.parametrize("fmt", sorted(FORMAT_TABLES))
def test_missing_path_says_what_was_expected(tmp_path: Path, fmt: str) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(
        UserError,
        match=rf"^{fmt}: expected {re.escape(IMPORTERS[fmt].expects)} in {re.escape(str(missing))}"
        "; it does not exist$",
    ):
        IMPORTERS[fmt](missing)


@pytest.mark.parametrize(
    ("fmt", "filename"),
    [
        ("movielens", "ratings.csv"),
        ("creditcard", "creditcard.parquet"),
        ("walmart", "walmart_weekly_sales.csv"),
        ("cdnow", "CDNOW_master.txt"),
        ("diginetica", "all_train_seq.parquet"),
    ],
)
def test_folder_without_the_file_names_it(tmp_path: Path, fmt: str, filename: str) -> None:
    with pytest.raises(UserError, match=rf"^{fmt}: expected .* in .*; there is no {filename}$"):
        IMPORTERS[fmt](tmp_path)


def test_movielens_wrong_columns(tmp_path: Path) -> None:
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,2,5,10\n")
    with pytest.raises(
        UserError,
        match=re.escape(
            f"movielens: expected ratings.csv with columns user_id,item_id,rating,timestamp in "
            f"{tmp_path}; ratings.csv has columns userId,movieId,rating,timestamp "
            "(missing user_id,item_id)"
        ),
    ):
        IMPORTERS["movielens"](tmp_path)


def test_movielens_not_a_csv(tmp_path: Path) -> None:
    pq.write_table(pa.table({"a": [1]}), tmp_path / "ratings.csv")
    with pytest.raises(UserError, match=r"^movielens: expected ratings\.csv with columns"):
        IMPORTERS["movielens"](tmp_path)


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        pytest.param(
            "1,2,3,4,5,6\n1,2,3,4\n",
            "the first row has more fields than the header",
            id="first-row-too-long",
        ),
        pytest.param(
            "1,2,3,4\n1,2,3,4,5,6\n", "Expected 4 fields in line 3, saw 6", id="later-row-too-long"
        ),
    ],
)
def test_movielens_row_with_more_fields_than_the_header(
    tmp_path: Path, rows: str, problem: str
) -> None:
    # pandas would otherwise read the extra leading fields as an index and shift the values.
    (tmp_path / "ratings.csv").write_text("user_id,item_id,rating,timestamp\n" + rows)
    with pytest.raises(
        UserError,
        match=r"^movielens: expected .*; cannot parse .*ratings\.csv: .*" + re.escape(problem),
    ):
        IMPORTERS["movielens"](tmp_path)


def test_movielens_short_row_is_rejected_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "ratings.csv").write_text("user_id,item_id,rating,timestamp\n1,2\n3,4,5,6\n")
    result = _import("movielens", tmp_path)
    assert _rejected(result) == [(0, "rating is not a number")]
    assert result.table.column("customer_id").to_pylist() == [3]


def test_creditcard_missing_column(tmp_path: Path) -> None:
    pq.write_table(
        _creditcard_table([{"Time": 0.0, "Amount": 1.0, "Class": 0}]).drop_columns(["Class"]),
        tmp_path / "creditcard.parquet",
    )
    with pytest.raises(
        UserError,
        match=re.escape(
            f"creditcard: expected creditcard.parquet with columns Time,V1..V28,Amount,Class in "
            f"{tmp_path}; creditcard.parquet has columns"
        )
        + ".*"
        + re.escape("(missing Class)"),
    ):
        IMPORTERS["creditcard"](tmp_path)


def test_creditcard_column_that_is_not_a_number(tmp_path: Path) -> None:
    table = _creditcard_table([{"Time": 0.0, "Amount": 1.0, "Class": 0}])
    table = table.set_column(
        table.schema.get_field_index("Amount"), "Amount", pa.array(["1.0"], pa.string())
    )
    pq.write_table(table, tmp_path / "creditcard.parquet")
    with pytest.raises(
        UserError, match=r"column Amount of creditcard\.parquet is string, not a number"
    ):
        IMPORTERS["creditcard"](tmp_path)


def test_creditcard_not_a_parquet_file(tmp_path: Path) -> None:
    (tmp_path / "creditcard.parquet").write_text("Time,Amount\n0,1\n")
    with pytest.raises(UserError, match=r"^creditcard: expected .*; cannot read "):
        IMPORTERS["creditcard"](tmp_path)


def test_diginetica_needs_a_folder_with_both_files(tmp_path: Path) -> None:
    _write_diginetica(tmp_path, train=[[1, 2]], test=[([1], 2)])
    with pytest.raises(UserError, match=r"; it is a file, not a folder$"):
        IMPORTERS["diginetica"](tmp_path / "test.parquet")
    (tmp_path / "test.parquet").unlink()
    with pytest.raises(UserError, match=r"^diginetica: expected .*; there is no test\.parquet$"):
        IMPORTERS["diginetica"](tmp_path)


def test_diginetica_wrong_columns(tmp_path: Path) -> None:
    _write_diginetica(tmp_path, train=[[1, 2]], test=[([1], 2)])
    pq.write_table(pa.table({"session_items": pa.array([[1]])}), tmp_path / "test.parquet")
    with pytest.raises(
        UserError, match=r"test.parquet has columns session_items \(missing target_item\)$"
    ):
        IMPORTERS["diginetica"](tmp_path)
    pq.write_table(pa.table({"session_items": ["1 2"]}), tmp_path / "all_train_seq.parquet")
    with pytest.raises(
        UserError,
        match=r"session_items of all_train_seq\.parquet is string, not a list of integers",
    ):
        IMPORTERS["diginetica"](tmp_path)


def test_walmart_wrong_columns(tmp_path: Path) -> None:
    (tmp_path / "walmart_weekly_sales.csv").write_text("Store,Dept,Date,Weekly_Sales\n1,1,x,1\n")
    with pytest.raises(
        UserError,
        match=re.escape(
            "walmart: expected walmart_weekly_sales.csv with columns Store,Date,Weekly_Sales,"
            f"Holiday_Flag,Temperature,Fuel_Price,CPI,Unemployment in {tmp_path}; "
            "walmart_weekly_sales.csv has columns Store,Dept,Date,Weekly_Sales (missing "
            "Holiday_Flag,Temperature,Fuel_Price,CPI,Unemployment)"
        ),
    ):
        IMPORTERS["walmart"](tmp_path)


def test_cdnow_sample_file_is_not_the_master_file(tmp_path: Path) -> None:
    # CDNOW_sample.txt has an extra column (the customer's id in the sample): 5 fields.
    sample = tmp_path / "CDNOW_sample.txt"
    sample.write_text(" 00004 0001 19970101  2   29.33\r\n")
    with pytest.raises(
        UserError,
        match=re.escape(
            "cdnow: expected CDNOW_master.txt with 4 whitespace-separated columns "
            f"customer_id,yyyymmdd,number_of_cds,dollar_value in {tmp_path}; the first row of "
            "CDNOW_sample.txt has 5 fields"
        ),
    ):
        IMPORTERS["cdnow"](sample)


def test_cdnow_wrong_header(tmp_path: Path) -> None:
    (tmp_path / "CDNOW_master.txt").write_text("id,date,cds,dollars\n1,19970101,1,2.0\n")
    with pytest.raises(
        UserError, match=r"CDNOW_master\.txt starts with the header id,date,cds,dollars$"
    ):
        IMPORTERS["cdnow"](tmp_path)


def test_out_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "ratings.csv").write_text("user_id,item_id,rating,timestamp\n1,2,5,10\n")
    out = tmp_path / "out"
    out.write_text("")
    with pytest.raises(UserError, match=rf"--out {re.escape(str(out))} is a file"):
        import_dataset("movielens", tmp_path, out)
