"""Validation of user data: every bad row is reported and quarantined, none is lost.

Tables are built in code against the real contracts; each test states the exact number of rows it
expects to be valid and quarantined, and checks that they add up to the rows read.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from getit_ml.data.contracts import CONTRACTS, MARKETPLACE_TABLES, Column, TableContract
from getit_ml.data.validation import (
    REASONS_COLUMN,
    ROW_NUMBER_COLUMN,
    DatasetValidation,
    Rule,
    TableValidation,
    Violation,
    find_table,
    read_table,
    render_report,
    validate_dataset,
    validate_table,
    write_outputs,
)
from getit_ml.errors import UserError

UTC = dt.UTC
START = dt.datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
FIRST_DAY = dt.date(2024, 3, 1)


# ------------------------------------------------------------------------------------- builders


def _clean_value(column: Column, row: int) -> Any:
    """A value that satisfies ``column`` (every third value null where nulls are allowed)."""
    if column.nullable and row % 3 == 2:
        return None
    if column.allowed is not None:
        return column.allowed[row % len(column.allowed)]
    dtype = column.dtype
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype):
        value = float(row + 1) if column.unique else 1.0
        if column.min_value is not None:
            value = max(value, column.min_value)
        if column.max_value is not None:
            value = min(value, column.max_value)
        return int(value) if pa.types.is_integer(dtype) else value
    if pa.types.is_boolean(dtype):
        return row % 2 == 0
    if pa.types.is_timestamp(dtype):
        return START + dt.timedelta(minutes=row)
    if pa.types.is_date(dtype):
        return FIRST_DAY + dt.timedelta(days=row)
    if pa.types.is_list(dtype):
        return [1, 2, row + 1]
    return f"text, {row} — লেখা"


def clean_table(contract: TableContract, rows: int = 6) -> pa.Table:
    """A table that satisfies ``contract``: unique ids 1..rows, every other id 1, increasing
    times (so every foreign key finds id 1 in its target)."""
    return pa.Table.from_pydict(
        {c.name: [_clean_value(c, row) for row in range(rows)] for c in contract.columns},
        schema=contract.schema(),
    )


def frame(name: str, rows: int = 6) -> pd.DataFrame:
    """A clean table as an object-typed DataFrame, ready to be spoiled cell by cell."""
    table = clean_table(CONTRACTS[name], rows)
    return pd.DataFrame({n: table.column(n).to_pylist() for n in table.column_names}, dtype=object)


def typed(df: pd.DataFrame, name: str) -> pa.Table:
    """``df`` typed as the contract says, nulls allowed everywhere so bad data can be built."""
    declared = CONTRACTS[name].schema()
    schema = pa.schema([declared.field(c).with_nullable(True) for c in df.columns])
    return pa.Table.from_pandas(df, schema=schema, preserve_index=False)


def write_csv(df: pd.DataFrame, path: Path) -> Path:
    df.to_csv(path, index=False)
    return path


def assert_counts_add_up(result: TableValidation, rows_in: int) -> None:
    assert result.rows_in == rows_in
    assert result.valid.num_rows + result.quarantined.num_rows == rows_in
    assert sorted(result.quarantined.column(ROW_NUMBER_COLUMN).to_pylist()) == sorted(
        set(result.quarantined.column(ROW_NUMBER_COLUMN).to_pylist())
    )
    for violation in result.violations:
        assert violation.rows <= result.rows_quarantined


def only(result: TableValidation, rule: Rule, column: str | None) -> Violation:
    found = [v for v in result.violations if v.rule is rule and v.column == column]
    assert len(found) == 1, result.violations
    return found[0]


def rules(result: TableValidation) -> list[tuple[str | None, str, int]]:
    return [(v.column, str(v.rule), v.rows) for v in result.violations]


def reasons(result: TableValidation) -> dict[int, list[str]]:
    quarantined = result.quarantined
    return dict(
        zip(
            quarantined.column(ROW_NUMBER_COLUMN).to_pylist(),
            quarantined.column(REASONS_COLUMN).to_pylist(),
            strict=True,
        )
    )


# ------------------------------------------------------------------------------------ clean data


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_a_clean_table_of_every_contract_passes(name: str) -> None:
    contract = CONTRACTS[name]
    raw = clean_table(contract)
    result = validate_table(raw, contract)
    assert result.violations == ()
    assert result.ok
    assert result.rows_quarantined == 0
    assert result.rows_valid == 6
    assert result.valid.schema.equals(contract.schema())
    assert result.valid.equals(raw)
    assert_counts_add_up(result, 6)


@pytest.mark.parametrize("name", sorted(set(CONTRACTS) - {"session_sequences"}))
def test_a_clean_table_survives_a_trip_through_csv(name: str, tmp_path: Path) -> None:
    # Everything in a CSV is text: ids, amounts, booleans, timestamps and dates must all convert.
    contract = CONTRACTS[name]
    original = clean_table(contract)
    path = tmp_path / f"{name}.csv"
    pacsv.write_csv(original, path)
    raw = read_table(path, contract)
    assert all(pa.types.is_string(t) for t in raw.schema.types)
    result = validate_table(raw, contract)
    assert result.violations == ()
    assert result.valid.schema.equals(contract.schema())
    assert result.valid.equals(original)
    assert_counts_add_up(result, 6)


# ------------------------------------------------------------------------------------- bad rows


def test_wrong_type_in_a_csv_is_quarantined_with_its_original_value(tmp_path: Path) -> None:
    df = frame("payments", 4)
    df.loc[1, "amount_bdt"] = "abc"
    raw = read_table(write_csv(df, tmp_path / "payments.csv"), CONTRACTS["payments"])
    result = validate_table(raw, CONTRACTS["payments"])

    violation = only(result, Rule.TYPE, "amount_bdt")
    assert (violation.table, violation.rows, violation.examples) == ("payments", 1, ("abc",))
    assert violation.example_rows == (1,)
    assert len(result.violations) == 1
    assert (result.rows_valid, result.rows_quarantined) == (3, 1)
    assert_counts_add_up(result, 4)
    assert result.quarantined.column("amount_bdt").to_pylist() == ["abc"]
    assert result.quarantined.column("payment_id").to_pylist() == ["2"]
    assert reasons(result) == {1: ["amount_bdt:type"]}
    assert result.valid.schema.equals(CONTRACTS["payments"].schema())
    assert result.valid.column("payment_id").to_pylist() == [1, 3, 4]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12", 12),
        (" 12 ", 12),
        ("+12", 12),
        ("12.0", 12),  # a nullable integer column written by pandas
        ("1e3", 1000),
        ("9223372036854775807", 2**63 - 1),  # the largest int64, exactly
        ("9223372036854775808", None),
        ("12.5", None),
        ("1,000", None),
        ("twelve", None),
        ("true", None),
    ],
)
@pytest.mark.parametrize("first", ["1", "+1"])  # "+1" defeats Arrow's cast of the whole column
def test_integer_text_converts_only_when_it_is_a_whole_number(
    text: str, expected: int | None, first: str
) -> None:
    # A column may arrive as text even from Parquet; the other columns are typed already.
    raw = clean_table(CONTRACTS["payments"], 3)
    position = raw.schema.get_field_index("device_id")
    raw = raw.set_column(position, "device_id", pa.array([first, text, "2"]))
    result = validate_table(raw, CONTRACTS["payments"])
    assert_counts_add_up(result, 3)
    if expected is not None:
        assert result.violations == ()
        assert result.valid.column("device_id").to_pylist() == [1, expected, 2]
    else:
        assert rules(result) == [("device_id", "type", 1)]
        assert only(result, Rule.TYPE, "device_id").examples == (text,)
        assert result.valid.column("device_id").to_pylist() == [1, 2]


def test_booleans_and_null_markers_in_text(tmp_path: Path) -> None:
    df = frame("payments", 6)
    df["is_fraud"] = ["True", "false", "1", "no", "maybe", "NULL"]
    df["amount_bdt"] = ["10", "1e2", " 12.5 ", "NaN", "inf", "7"]
    raw = read_table(write_csv(df, tmp_path / "payments.csv"), CONTRACTS["payments"])
    result = validate_table(raw, CONTRACTS["payments"])
    assert rules(result) == [
        ("amount_bdt", "type", 1),  # inf
        ("amount_bdt", "null", 1),  # NaN is a null, and amount_bdt is required
        ("is_fraud", "type", 1),  # maybe
        ("is_fraud", "null", 1),  # NULL
    ]
    assert reasons(result) == {
        3: ["amount_bdt:null"],
        4: ["amount_bdt:type", "is_fraud:type"],
        5: ["is_fraud:null"],
    }
    assert only(result, Rule.TYPE, "amount_bdt").examples == ("inf",)
    assert only(result, Rule.TYPE, "is_fraud").examples == ("maybe",)
    assert result.valid.column("is_fraud").to_pylist() == [True, False, True]
    assert result.valid.column("amount_bdt").to_pylist() == [10.0, 100.0, 12.5]
    assert_counts_add_up(result, 6)


def test_a_missing_column_quarantines_every_row_and_other_checks_still_run() -> None:
    df = frame("payments", 4)
    df.loc[2, "payment_method"] = "paypal"
    raw = typed(df.drop(columns="amount_bdt"), "payments")
    result = validate_table(raw, CONTRACTS["payments"])

    missing = only(result, Rule.MISSING_COLUMN, "amount_bdt")
    assert missing.rows == 4
    assert only(result, Rule.NOT_ALLOWED, "payment_method").rows == 1
    assert (result.rows_valid, result.rows_quarantined) == (0, 4)
    assert_counts_add_up(result, 4)
    assert result.valid.schema.equals(CONTRACTS["payments"].schema())
    assert reasons(result) == {
        0: ["amount_bdt:missing_column"],
        1: ["amount_bdt:missing_column"],
        2: ["payment_method:not_allowed", "amount_bdt:missing_column"],
        3: ["amount_bdt:missing_column"],
    }
    assert not result.ok


def test_a_missing_column_of_an_empty_table_is_still_a_violation() -> None:
    raw = clean_table(CONTRACTS["payments"], 0).drop_columns(["amount_bdt"])
    result = validate_table(raw, CONTRACTS["payments"])
    assert rules(result) == [("amount_bdt", "missing_column", 0)]
    assert not result.ok
    assert_counts_add_up(result, 0)


def test_negative_price_and_out_of_range_rating() -> None:
    df = frame("products", 5)
    df.loc[1, "price_bdt"] = -5.0
    df.loc[3, "rating"] = 7.5
    df.loc[4, "stock"] = -1
    raw = typed(df, "products")
    result = validate_table(raw, CONTRACTS["products"])
    assert rules(result) == [
        ("price_bdt", "below_min", 1),
        ("rating", "above_max", 1),
        ("stock", "below_min", 1),
    ]
    assert only(result, Rule.BELOW_MIN, "price_bdt").examples == ("-5",)
    assert only(result, Rule.ABOVE_MAX, "rating").examples == ("7.5",)
    assert sorted(reasons(result)) == [1, 3, 4]
    assert result.valid.column("product_id").to_pylist() == [1, 3]
    assert_counts_add_up(result, 5)


def test_unknown_payment_method() -> None:
    df = frame("payments", 5)
    df.loc[[1, 3], "payment_method"] = "paypal"
    df.loc[4, "payment_method"] = "bKash"  # the codes are lower case
    raw = typed(df, "payments")
    result = validate_table(raw, CONTRACTS["payments"])
    violation = only(result, Rule.NOT_ALLOWED, "payment_method")
    assert (violation.rows, violation.examples, violation.example_rows) == (
        3,
        ("paypal", "bKash"),
        (1, 3, 4),
    )
    assert "bkash" in violation.message
    assert len(result.violations) == 1
    assert (result.rows_valid, result.rows_quarantined) == (2, 3)
    assert_counts_add_up(result, 5)


def test_duplicate_ids_keep_the_first_copy() -> None:
    df = frame("payments", 6)
    df["payment_id"] = [1, 2, 1, 1, 3, 2]
    raw = typed(df, "payments")
    result = validate_table(raw, CONTRACTS["payments"])
    violation = only(result, Rule.DUPLICATE, "payment_id")
    assert (violation.rows, violation.examples, violation.example_rows) == (
        3,
        ("1", "2"),
        (2, 3, 5),
    )
    assert result.valid.column("payment_id").to_pylist() == [1, 2, 3]
    assert result.quarantined.column(ROW_NUMBER_COLUMN).to_pylist() == [2, 3, 5]
    assert_counts_add_up(result, 6)


def test_nulls_in_required_columns_and_allowed_nulls() -> None:
    df = frame("payments", 4)
    df.loc[0, "customer_id"] = None
    df.loc[1, "order_id"] = None  # nullable: fine
    df.loc[2, "amount_bdt"] = float("nan")  # NaN is a null
    raw = typed(df, "payments")
    raw = raw.set_column(
        raw.schema.get_field_index("amount_bdt"),
        "amount_bdt",
        pa.array([1.0, 2.0, float("nan"), 3.0], pa.float64(), from_pandas=False),
    )
    result = validate_table(raw, CONTRACTS["payments"])
    assert rules(result) == [("customer_id", "null", 1), ("amount_bdt", "null", 1)]
    assert only(result, Rule.NULL, "customer_id").example_rows == (0,)
    assert result.valid.column("payment_id").to_pylist() == [2, 4]
    assert_counts_add_up(result, 4)


def test_timestamps_out_of_order_within_a_session() -> None:
    df = frame("events", 6)
    minute = dt.timedelta(minutes=1)
    # Session 7 goes 10:00, 10:05, 10:03 (late); session 8 starts earlier but is its own timeline.
    df["session_id"] = [7, 7, 8, 7, 8, 8]
    df["event_ts"] = [
        START,
        START + 5 * minute,
        START - 60 * minute,
        START + 3 * minute,
        START - 59 * minute,
        START - 59 * minute,
    ]
    raw = typed(df, "events")
    result = validate_table(raw, CONTRACTS["events"])
    violation = only(result, Rule.OUT_OF_ORDER, "event_ts")
    assert (violation.rows, violation.example_rows) == (1, (3,))
    assert violation.examples == (
        "session_id=7: 2024-03-01 10:03:00.000000Z after 2024-03-01 10:05:00.000000Z",
    )
    assert len(result.violations) == 1
    assert_counts_add_up(result, 6)


def test_out_of_order_compares_with_the_latest_earlier_time_so_valid_rows_are_ordered() -> None:
    df = frame("events", 5)
    minute = dt.timedelta(minutes=1)
    df["session_id"] = 7
    df["event_ts"] = [START, START + 10 * minute, START + 5 * minute, START + 7 * minute, START]
    df.loc[4, "event_ts"] = START + 11 * minute  # after everything before it: in order
    raw = typed(df, "events")
    result = validate_table(raw, CONTRACTS["events"])
    # 10:07 is after the row just before it (10:05) but still before 10:10.
    assert only(result, Rule.OUT_OF_ORDER, "event_ts").example_rows == (2, 3)
    assert_counts_add_up(result, 5)
    again = validate_table(result.valid, CONTRACTS["events"])
    assert again.violations == ()
    assert again.valid.equals(result.valid)


def test_an_undeclared_column_is_rejected() -> None:
    raw = clean_table(CONTRACTS["payments"], 3).append_column(
        "note", pa.array(["vip", None, "call back"])
    )
    result = validate_table(raw, CONTRACTS["payments"])
    violation = only(result, Rule.UNEXPECTED_COLUMN, "note")
    assert (violation.rows, violation.examples) == (3, ("vip", "call back"))
    assert (result.rows_valid, result.rows_quarantined) == (0, 3)
    assert result.quarantined.column("note").to_pylist() == ["vip", None, "call back"]
    assert_counts_add_up(result, 3)


def test_an_undeclared_numeric_column_is_rejected_where_extras_are_not_allowed() -> None:
    raw = clean_table(CONTRACTS["payments"], 3).append_column("score", pa.array([0.1, 0.2, 0.3]))
    result = validate_table(raw, CONTRACTS["payments"])
    assert rules(result) == [("score", "unexpected_column", 3)]
    assert_counts_add_up(result, 3)


def test_extra_numeric_columns_are_kept_for_card_transactions() -> None:
    contract = CONTRACTS["card_transactions"]
    raw = (
        clean_table(contract, 4)
        .append_column("V1", pa.array([0.5, -1.25, 3.0, None]))
        .append_column("V2", pa.array([1, 2, 3, 4], pa.int32()))
    )
    result = validate_table(raw, contract)
    assert result.violations == ()
    assert result.rows_valid == 4
    assert result.valid.column_names == [*contract.column_names, "V1", "V2"]
    assert result.valid.select(list(contract.column_names)).schema.equals(contract.schema())
    assert result.valid.column("V1").to_pylist() == [0.5, -1.25, 3.0, None]
    assert result.valid.schema.field("V2").type == pa.int32()
    assert_counts_add_up(result, 4)


def test_extra_columns_of_card_transactions_must_be_numbers(tmp_path: Path) -> None:
    contract = CONTRACTS["card_transactions"]
    df = frame("card_transactions", 4)
    df["V1"] = ["0.5", "abc", "-2", ""]
    raw = read_table(write_csv(df, tmp_path / "cards.csv"), contract)
    result = validate_table(raw, contract)
    assert rules(result) == [("V1", "type", 1)]
    assert only(result, Rule.TYPE, "V1").examples == ("abc",)
    assert result.valid.column("V1").to_pylist() == [0.5, -2.0, None]

    # Text is held to being numbers whatever the file format; other types are not numbers at all.
    text = clean_table(contract, 2).append_column("merchant", pa.array(["a", "7"]))
    assert rules(validate_table(text, contract)) == [("merchant", "type", 1)]
    flags = clean_table(contract, 2).append_column("flag", pa.array([True, False]))
    assert rules(validate_table(flags, contract)) == [("flag", "unexpected_column", 2)]


def test_every_reason_of_a_row_is_listed() -> None:
    df = frame("payments", 3)
    df.loc[1, "payment_method"] = "paypal"
    df.loc[1, "amount_bdt"] = -1.0
    df.loc[1, "payment_id"] = 1
    raw = typed(df, "payments")
    result = validate_table(raw, CONTRACTS["payments"])
    assert reasons(result) == {
        1: ["payment_id:duplicate", "payment_method:not_allowed", "amount_bdt:below_min"]
    }
    assert_counts_add_up(result, 3)


# ---------------------------------------------------------------------------------- timestamps


def test_timestamps_from_text_with_and_without_zones(tmp_path: Path) -> None:
    df = frame("payments", 5)
    df["payment_ts"] = [
        "2024-03-01T16:00:00+06:00",  # Dhaka time
        "2024-03-01T10:01:00Z",
        "2024-03-01 10:02:00",  # no zone: read as UTC
        "2024-03-01T10:03:00.5",  # no zone either
        "yesterday",
    ]
    raw = read_table(write_csv(df, tmp_path / "payments.csv"), CONTRACTS["payments"])
    result = validate_table(raw, CONTRACTS["payments"])
    assert rules(result) == [("payment_ts", "type", 1)]
    assert only(result, Rule.TYPE, "payment_ts").examples == ("yesterday",)
    assert result.valid.column("payment_ts").to_pylist() == [
        START,
        START + dt.timedelta(minutes=1),
        START + dt.timedelta(minutes=2),
        START + dt.timedelta(minutes=3, seconds=0.5),
    ]
    assert result.notes == ("payment_ts: 2 timestamps without a time zone were read as UTC",)
    assert_counts_add_up(result, 5)


def test_timestamps_from_parquet_are_converted_to_utc() -> None:
    contract = CONTRACTS["payments"]
    raw = clean_table(contract, 2)
    position = raw.schema.get_field_index("payment_ts")
    instants = pa.array([START, START + dt.timedelta(minutes=1)], pa.timestamp("ns", tz="UTC"))
    dhaka = pc.cast(instants, pa.timestamp("ns", tz="Asia/Dhaka"))  # 16:00 and 16:01 in Dhaka
    result = validate_table(raw.set_column(position, "payment_ts", dhaka), contract)
    assert result.violations == ()
    assert result.notes == ()
    assert result.valid.equals(raw)

    naive = pa.array([START.replace(tzinfo=None), START.replace(tzinfo=None)], pa.timestamp("ms"))
    result = validate_table(raw.set_column(position, "payment_ts", naive), contract)
    assert result.valid.column("payment_ts").to_pylist() == [START, START]
    assert result.notes == ("payment_ts: 2 timestamps without a time zone were read as UTC",)


def test_a_timestamp_is_not_a_date_unless_it_is_midnight() -> None:
    contract = CONTRACTS["calendar"]
    raw = clean_table(contract, 2)
    position = raw.schema.get_field_index("date")
    stamps = pa.array([dt.datetime(2024, 3, 1), dt.datetime(2024, 3, 2, 9, 30)], pa.timestamp("s"))
    result = validate_table(raw.set_column(position, "date", stamps), contract)
    assert rules(result) == [("date", "type", 1)]
    assert result.valid.column("date").to_pylist() == [FIRST_DAY]


# ------------------------------------------------------------------------------------- reading


def test_a_hive_partitioned_directory_reads_back_in_order(tmp_path: Path) -> None:
    contract = CONTRACTS["events"]
    table = clean_table(contract, 6)
    folder = tmp_path / "events"
    for day, first, count in (("2024-03-01", 0, 2), ("2024-03-02", 2, 3), ("2024-03-10", 5, 1)):
        (folder / f"date={day}").mkdir(parents=True)
        pq.write_table(table.slice(first, count), folder / f"date={day}" / "part-0.parquet")
    # What Spark and Hadoop leave behind is not data.
    (folder / "_SUCCESS").write_text("")
    (folder / "date=2024-03-02" / ".part-0.parquet").write_text("checksum")
    (folder / "_temporary").mkdir()
    (folder / "_temporary" / "part-9.parquet").write_text("half written")

    assert find_table(tmp_path, "events") == folder
    raw = read_table(folder, contract)
    assert raw.column_names == table.column_names  # no "date" from the folder names
    assert raw.to_pydict() == table.to_pydict()
    result = validate_table(raw, contract)
    assert result.violations == ()
    assert result.valid.equals(table)
    assert_counts_add_up(result, 6)


def test_part_files_read_in_numeric_order_and_with_widened_types(tmp_path: Path) -> None:
    contract = CONTRACTS["order_history"]
    table = clean_table(contract, 12)
    day = tmp_path / "order_history" / "date=2024-03-01"
    day.mkdir(parents=True)
    for part in range(12):
        piece = table.slice(part, 1)
        if part % 2:  # some writers use narrower integers
            piece = piece.cast(piece.schema.set(2, pa.field("n_items", pa.int32())))
        pq.write_table(piece, day / f"part-{part}.parquet")
    raw = read_table(tmp_path / "order_history", contract)
    result = validate_table(raw, contract)
    assert result.violations == ()  # part-10 after part-9, so the times are in order
    assert result.valid.equals(table)


def test_parts_with_conflicting_types_become_text_and_are_checked_row_by_row(
    tmp_path: Path,
) -> None:
    contract = CONTRACTS["order_history"]
    table = clean_table(contract, 2)
    folder = tmp_path / "order_history"
    folder.mkdir()
    pq.write_table(table.slice(0, 1), folder / "part-0.parquet")
    bad = table.slice(1, 1).set_column(3, "amount", pa.array(["lots"]))
    pq.write_table(bad, folder / "part-1.parquet")
    result = validate_table(read_table(folder, contract), contract)
    assert rules(result) == [("amount", "type", 1)]
    assert only(result, Rule.TYPE, "amount").examples == ("lots",)
    assert_counts_add_up(result, 2)


def test_parts_with_different_columns_are_a_user_error(tmp_path: Path) -> None:
    contract = CONTRACTS["order_history"]
    table = clean_table(contract, 2)
    folder = tmp_path / "order_history"
    folder.mkdir()
    pq.write_table(table.slice(0, 1), folder / "part-0.parquet")
    pq.write_table(table.slice(1, 1).drop_columns(["amount"]), folder / "part-1.parquet")
    with pytest.raises(UserError, match=r"part-1.parquet does not have the columns.*amount"):
        read_table(folder, contract)


def test_a_declared_partition_column_comes_from_the_path(tmp_path: Path) -> None:
    contract = CONTRACTS["calendar"]
    table = clean_table(contract, 2)
    for row in range(2):
        day = FIRST_DAY + dt.timedelta(days=row)
        folder = tmp_path / "calendar" / f"date={day.isoformat()}"
        folder.mkdir(parents=True)
        pq.write_table(table.slice(row, 1).drop_columns(["date"]), folder / "part-0.parquet")
    result = validate_table(read_table(tmp_path / "calendar", contract), contract)
    assert result.violations == ()
    assert result.valid.column("date").to_pylist() == [FIRST_DAY, FIRST_DAY + dt.timedelta(1)]
    assert result.valid.select(list(contract.column_names)).equals(table)


def test_find_table_knows_the_three_layouts(tmp_path: Path) -> None:
    pq.write_table(clean_table(CONTRACTS["customers"]), tmp_path / "customers.parquet")
    (tmp_path / "payments.csv").write_text("payment_id\n1\n")
    assert find_table(tmp_path, "customers") == tmp_path / "customers.parquet"
    assert find_table(tmp_path, "payments") == tmp_path / "payments.csv"
    assert find_table(tmp_path, "orders") is None
    (tmp_path / "customers.csv").write_text("customer_id\n1\n")
    with pytest.raises(UserError, match="more than once"):
        find_table(tmp_path, "customers")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("payments.json", "{}", "not a table file"),
        ("payments.csv", "", "is empty"),
        ("payments.csv", "a,b\n1,2\n3,4,5\n", "cannot read .* as CSV"),
        ("payments.csv", "a,a\n1,2\n", "duplicate column names: a"),
        ("payments.parquet", "not parquet at all", "cannot read .* as Parquet"),
    ],
)
def test_unreadable_files_are_user_errors(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(UserError, match=message):
        read_table(path, CONTRACTS["payments"])


def test_a_csv_that_is_not_utf8_is_a_user_error(tmp_path: Path) -> None:
    path = tmp_path / "payments.csv"
    path.write_bytes("payment_id,note\n1,café\n".encode("latin-1"))
    with pytest.raises(UserError, match="UTF-8"):
        read_table(path, CONTRACTS["payments"])


def test_missing_paths_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        read_table(tmp_path / "nope.parquet", CONTRACTS["payments"])
    with pytest.raises(UserError, match="does not exist"):
        validate_dataset(tmp_path / "nope")
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="not a directory"):
        validate_dataset(tmp_path / "file")
    with pytest.raises(UserError, match="no table found"):
        validate_dataset(tmp_path)
    with pytest.raises(UserError, match="no contract for table"):
        validate_dataset(tmp_path, ["payment"])
    (tmp_path / "events").mkdir()
    with pytest.raises(UserError, match="holds no Parquet files"):
        read_table(tmp_path / "events", CONTRACTS["events"])


# ------------------------------------------------------------------------------------ data sets


def write_marketplace(directory: Path, rows: int = 6) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name in MARKETPLACE_TABLES:
        pq.write_table(clean_table(CONTRACTS[name], rows), directory / f"{name}.parquet")


def test_a_clean_marketplace_passes(tmp_path: Path) -> None:
    write_marketplace(tmp_path)
    result = validate_dataset(tmp_path)
    assert result.ok
    assert [t.table for t in result.tables] == list(MARKETPLACE_TABLES)
    assert (result.rows_in, result.rows_valid, result.rows_quarantined) == (60, 60, 0)
    assert result.missing_tables == ()
    assert all(t.notes == () for t in result.tables)


def test_a_foreign_key_to_a_missing_customer(tmp_path: Path) -> None:
    pq.write_table(clean_table(CONTRACTS["customers"], 3), tmp_path / "customers.parquet")
    df = frame("payments", 6)
    df["customer_id"] = [1, 2, 3, 99, 98, 2]
    df.loc[0, "order_id"] = None  # a nullable reference may be null
    write_csv(df, tmp_path / "payments.csv")

    result = validate_dataset(tmp_path, ["customers", "payments"])
    payments = result.table("payments")
    violation = only(payments, Rule.UNKNOWN_REFERENCE, "customer_id")
    assert (violation.rows, violation.examples, violation.example_rows) == (2, ("99", "98"), (3, 4))
    assert "customers.customer_id" in violation.message
    assert len(payments.violations) == 1
    assert reasons(payments) == {
        3: ["customer_id:unknown_reference"],
        4: ["customer_id:unknown_reference"],
    }
    assert_counts_add_up(payments, 6)
    assert payments.notes == (
        "order_id -> orders.order_id not checked: orders was not validated with it",
    )
    assert payments.source == tmp_path / "payments.csv"
    assert not result.ok
    assert result.missing_tables == ()
    assert (result.rows_in, result.rows_valid, result.rows_quarantined) == (9, 7, 2)


def test_a_reference_to_a_quarantined_row_is_unknown(tmp_path: Path) -> None:
    # Customer 2 is quarantined (bad division), so the orders of customer 2 cannot be trusted.
    customers = frame("customers", 3)
    customers.loc[1, "division"] = "Dhaka North"
    write_csv(customers, tmp_path / "customers.csv")
    orders = frame("orders", 4)
    orders["customer_id"] = [1, 2, 3, 2]
    pq.write_table(
        typed(orders, "orders"),
        tmp_path / "orders.parquet",
    )
    result = validate_dataset(tmp_path, ["orders", "customers"])
    assert [t.table for t in result.tables] == ["orders", "customers"]
    assert rules(result.table("customers")) == [("division", "not_allowed", 1)]
    assert rules(result.table("orders")) == [("customer_id", "unknown_reference", 2)]
    assert result.table("orders").valid.column("order_id").to_pylist() == [1, 3]


def test_a_missing_table_is_a_violation(tmp_path: Path) -> None:
    write_marketplace(tmp_path)
    (tmp_path / "orders.parquet").unlink()
    result = validate_dataset(tmp_path)
    assert not result.ok
    assert result.missing_tables == ("orders",)
    assert [(v.table, v.rule) for v in result.violations] == [("orders", Rule.MISSING_TABLE)]
    assert result.rows_quarantined == 0
    assert result.table("payments").notes == (
        "order_id -> orders.order_id not checked: orders was not validated with it",
    )
    with pytest.raises(KeyError):
        result.table("orders")


def test_imported_tables_alone_are_not_held_to_the_marketplace(tmp_path: Path) -> None:
    pq.write_table(
        clean_table(CONTRACTS["card_transactions"]), tmp_path / "card_transactions.parquet"
    )
    result = validate_dataset(tmp_path)
    assert result.ok
    assert [t.table for t in result.tables] == ["card_transactions"]
    assert result.missing_tables == ()


# ---------------------------------------------------------------------------------- reporting


@pytest.fixture
def bad_dataset(tmp_path: Path) -> DatasetValidation:
    data = tmp_path / "data"
    write_marketplace(data)
    (data / "payments.parquet").unlink()
    df = frame("payments", 6)
    df.loc[1, "amount_bdt"] = "abc"
    df.loc[2, "payment_method"] = "paypal"
    write_csv(df, data / "payments.csv")
    (data / "reviews.parquet").unlink()
    return validate_dataset(data)


def test_outputs_hold_every_row_and_a_machine_readable_report(
    bad_dataset: DatasetValidation, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    report_path = write_outputs(bad_dataset, out)
    assert report_path == out / "report.json"
    report = json.loads(report_path.read_text(encoding="utf-8"))

    assert report["ok"] is False
    assert report["missing_tables"] == ["reviews"]
    assert report["totals"] == {
        "tables": 9,
        "missing_tables": 1,
        "rows_in": 54,
        "rows_valid": 52,
        "rows_quarantined": 2,
        "violations": 3,
    }
    payments = report["tables"]["payments"]
    assert (payments["rows_in"], payments["rows_valid"], payments["rows_quarantined"]) == (6, 4, 2)
    assert payments["violations"] == [
        {
            "table": "payments",
            "column": "payment_method",
            "rule": "not_allowed",
            "rows": 1,
            "examples": ["paypal"],
            "example_rows": [2],
            "message": "values not among bkash, nagad, rocket, card, cod",
        },
        {
            "table": "payments",
            "column": "amount_bdt",
            "rule": "type",
            "rows": 1,
            "examples": ["abc"],
            "example_rows": [1],
            "message": "values that are not finite numbers",
        },
    ]
    assert report["violations"][0]["rule"] == "missing_table"
    assert report["violations"][0]["table"] == "reviews"

    for table in bad_dataset.tables:
        valid = pq.read_table(out / "valid" / f"{table.table}.parquet")
        quarantined = pq.read_table(out / "quarantine" / f"{table.table}.parquet")
        assert valid.schema.equals(CONTRACTS[table.table].schema())
        assert valid.num_rows + quarantined.num_rows == table.rows_in
    quarantined = pq.read_table(out / "quarantine" / "payments.parquet")
    assert quarantined.column("amount_bdt").to_pylist() == ["abc", "1.0"]
    assert quarantined.column(REASONS_COLUMN).to_pylist() == [
        ["amount_bdt:type"],
        ["payment_method:not_allowed"],
    ]


def test_the_text_report_has_a_line_per_violation_and_totals(
    bad_dataset: DatasetValidation,
) -> None:
    text = render_report(bad_dataset)
    lines = text.splitlines()
    assert lines[0].endswith(": FAILED")
    type_line = next(line for line in lines if "amount_bdt" in line)
    assert type_line.split()[:4] == ["payments", "amount_bdt", "type", "1"]
    assert "'abc'" in type_line
    method_line = next(line for line in lines if "payment_method" in line)
    assert method_line.split()[:4] == ["payments", "payment_method", "not_allowed", "1"]
    assert "'paypal'" in method_line
    missing_line = next(line for line in lines if "missing_table" in line)
    assert missing_line.split()[:4] == ["reviews", "-", "missing_table", "0"]
    assert re.search(r"^ +payments +6 rows in, 4 valid, 2 quarantined$", text, re.MULTILINE)
    assert lines[-1] == (
        "Total: 9 tables validated, 1 missing; 54 rows in, 52 valid, 2 quarantined; 3 violations"
    )


def test_the_text_report_of_clean_data(tmp_path: Path) -> None:
    write_marketplace(tmp_path)
    text = render_report(validate_dataset(tmp_path))
    assert text.splitlines()[0].endswith(": OK")
    assert "No violations." in text
    assert text.splitlines()[-1].startswith("Total: 10 tables validated, 0 missing; 60 rows in")


def test_write_outputs_refuses_a_file_as_directory(
    bad_dataset: DatasetValidation, tmp_path: Path
) -> None:
    target = tmp_path / "taken"
    target.write_text("")
    with pytest.raises(UserError, match="not a directory"):
        write_outputs(bad_dataset, target)


def test_counts_add_up_on_a_large_table_with_many_problems() -> None:
    # Enough rows for several Arrow chunks, every kind of per-row problem mixed in.
    contract = CONTRACTS["payments"]
    rows = 200_000
    raw = clean_table(contract, 1).take(pa.array(np.zeros(rows, np.int64)))
    raw = raw.set_column(0, "payment_id", pa.array(range(rows), pa.int64()))
    ids = raw.column("payment_id")
    methods = pc.if_else(pc.equal(pc.bit_wise_and(ids, 7), 0), "paypal", raw["payment_method"])
    amounts = pc.if_else(pc.equal(pc.bit_wise_and(ids, 15), 1), -1.0, raw["amount_bdt"])
    raw = raw.set_column(4, "payment_method", methods).set_column(5, "amount_bdt", amounts)
    raw = pa.Table.from_batches(raw.to_batches(max_chunksize=30_000))
    result = validate_table(raw, contract)
    assert rules(result) == [
        ("payment_method", "not_allowed", rows // 8),
        ("amount_bdt", "below_min", rows // 16),
    ]
    assert result.rows_quarantined == rows // 8 + rows // 16
    assert_counts_add_up(result, rows)
