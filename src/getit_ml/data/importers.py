"""Importers that map public data sets onto the model-facing table contracts.

``getit-ml data import FORMAT PATH --out DIR`` runs one of these, so that the same pipelines that
train on the synthetic marketplace also train (and are benchmarked) on real, published data:

============  ==========================================  =====================
format        PATH                                        table
============  ==========================================  =====================
movielens     folder with ``ratings.csv``                 ``interactions``
creditcard    ``creditcard.parquet`` or its folder        ``card_transactions``
diginetica    folder with ``all_train_seq.parquet`` and   ``session_sequences``
              ``test.parquet``
walmart       ``walmart_weekly_sales.csv`` or its folder  ``demand_series``
cdnow         ``CDNOW_master.txt`` or its folder          ``order_history``
============  ==========================================  =====================

Every importer returns an :class:`ImportResult`: the mapped table, whose schema is exactly the
contract's (plus, where the contract allows them, extra float64 columns such as V1..V28), and the
source rows that could not be mapped, each with the first reason it failed. No row is dropped
silently: ``table.num_rows + rejected.num_rows == rows_read`` always holds. A wrong path, a wrong
file or wrong columns is the user's mistake and raises :class:`~getit_ml.errors.UserError`; a bad
value in one row only rejects that row.

Mapping decisions that are not obvious from the source:

* creditcard: ``Time`` is seconds since the first transaction of the two days recorded in
  September 2013; transaction_ts = :data:`CREDITCARD_EPOCH` (2013-09-01T00:00:00Z) + ``Time``.
  transaction_id is the 0-based row number in the file.
* diginetica: the SR-GNN files carry no session ids, so session_id is the 0-based row number in
  ``all_train_seq.parquet`` for train sessions and continues after the last train row for the
  test cases of ``test.parquet`` (each test case, i.e. each prefix, gets its own id).
* walmart: ``Date`` is the Friday that ends the sales week (the holiday flags prove it: Christmas
  2011, a Sunday, is flagged on Friday 30-12-2011, and the week starting that Friday holds no
  holiday), so period_start = Date - 6 days, the Saturday that starts the week; that way
  is_holiday means "a holiday falls in the period", as the contract says.
* cdnow: rows with 0 CDs are rejected (the contract requires n_items >= 1); rows with $0.00 and
  at least one CD are kept (the contract allows amount >= 0; the real file has 80, all with 1 CD).
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from getit_ml.data.contracts import CONTRACTS, TableContract
from getit_ml.errors import UserError

logger = logging.getLogger(__name__)

#: Column of the rejected table that says why the row could not be mapped.
REASON_COLUMN: Final = "_reason"
#: Column of the rejected table with the row's 0-based position among the source's data rows.
SOURCE_ROW_COLUMN: Final = "_source_row"
#: Column of the rejected DIGINETICA rows naming the file the row came from.
SOURCE_FILE_COLUMN: Final = "_source_file"
#: Name of the summary written next to the imported table.
SUMMARY_FILE: Final = "import.json"

#: When the ULB credit-card set was recorded (two days of September 2013); ``Time`` counts from it.
CREDITCARD_EPOCH: Final = datetime(2013, 9, 1, tzinfo=UTC)

# Largest unix time we accept (9999-12-31T23:59:59Z): beyond it microseconds overflow int64.
_MAX_UNIX_SECONDS: Final = 253_402_300_799
# Up to 18 digits always fits in int64, so parsing can never overflow.
_INTEGER_PATTERN: Final = r"[+-]?\d{1,18}"

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


# ----------------------------------------------------------------------------------------------
# Public API


@dataclass(frozen=True)
class ImportResult:
    """A mapped table and the source rows that could not be mapped.

    ``rejected`` holds the source columns as read (text for text files), ``_source_row`` (the
    row's 0-based position among the source's data rows) and ``_reason``.
    """

    table_name: str
    table: pa.Table
    rejected: pa.Table
    rows_read: int

    def __post_init__(self) -> None:
        # A violation here is a bug in an importer, not a user mistake.
        if self.table.num_rows + self.rejected.num_rows != self.rows_read:
            raise ValueError(
                f"{self.table_name}: {self.table.num_rows} rows written + "
                f"{self.rejected.num_rows} rejected != {self.rows_read} read"
            )
        if REASON_COLUMN not in self.rejected.column_names:
            raise ValueError(f"{self.table_name}: the rejected table has no {REASON_COLUMN}")
        _check_output_schema(CONTRACTS[self.table_name], self.table.schema)

    @property
    def rows_written(self) -> int:
        return int(self.table.num_rows)

    @property
    def rows_rejected(self) -> int:
        return int(self.rejected.num_rows)

    def rejected_reasons(self) -> dict[str, int]:
        """How many rows were rejected for each reason, most frequent first."""
        reasons = self.rejected.column(REASON_COLUMN).to_pylist()
        return dict(Counter(str(reason) for reason in reasons).most_common())


@dataclass(frozen=True)
class Importer:
    """Maps one public format onto one contract table.

    ``expects`` describes what PATH must be and is quoted in every error message.
    """

    format: str
    table_name: str
    expects: str
    read: Callable[[Path], ImportResult]

    def __call__(self, path: Path) -> ImportResult:
        result = self.read(path)
        logger.info(
            "%s: read %d rows from %s, wrote %d to %s, rejected %d",
            self.format,
            result.rows_read,
            path,
            result.rows_written,
            result.table_name,
            result.rows_rejected,
        )
        for reason, count in result.rejected_reasons().items():
            logger.warning("%s: rejected %d rows: %s", self.format, count, reason)
        return result


def import_dataset(format: str, path: Path, out: Path) -> ImportResult:
    """Import ``path`` in ``format`` and write it under ``out``.

    Writes ``<out>/<table>.parquet``, ``<out>/rejected/<table>.parquet`` when rows were rejected
    (a stale one from an earlier run is removed otherwise) and ``<out>/import.json``, last, with
    the counts and the rejection reasons.
    """
    importer = get_importer(format)
    result = importer(path)
    table_name = result.table_name
    if out.exists() and not out.is_dir():
        raise UserError(f"{format}: --out {out} is a file; expected a folder to write into")
    table_path = out / f"{table_name}.parquet"
    rejected_path = out / "rejected" / f"{table_name}.parquet"
    try:
        out.mkdir(parents=True, exist_ok=True)
        _write_parquet(result.table, table_path)
        if result.rows_rejected:
            rejected_path.parent.mkdir(exist_ok=True)
            _write_parquet(result.rejected, rejected_path)
        else:
            rejected_path.unlink(missing_ok=True)
        summary = {
            "format": format,
            "source": str(path.resolve()),
            "table": table_name,
            "output": table_path.name,
            "rejected_output": (
                str(rejected_path.relative_to(out)) if result.rows_rejected else None
            ),
            "rows_read": result.rows_read,
            "rows_written": result.rows_written,
            "rows_rejected": result.rows_rejected,
            "rejected_reasons": result.rejected_reasons(),
        }
        _write_text(json.dumps(summary, indent=2) + "\n", out / SUMMARY_FILE)
    except OSError as error:
        raise UserError(f"{format}: cannot write the import to {out}: {error}") from error
    return result


def get_importer(format: str) -> Importer:
    """The importer of ``format``; a clear error naming the known formats otherwise."""
    try:
        return IMPORTERS[format]
    except KeyError:
        raise UserError(
            f"unknown import format {format!r}; expected one of: {', '.join(sorted(IMPORTERS))}"
        ) from None


# ----------------------------------------------------------------------------------------------
# Shared machinery


class _Rejections:
    """Collects, per source row, the first check it failed (later failures do not overwrite)."""

    def __init__(self, n_rows: int) -> None:
        self.ok: BoolArray = np.ones(n_rows, dtype=np.bool_)
        self._reasons: npt.NDArray[np.object_] = np.full(n_rows, None, dtype=object)

    def flag(self, failed: BoolArray, reason: str) -> None:
        self._reasons[failed & self.ok] = reason
        self.ok &= ~failed

    def table(self, source: pa.Table, source_rows: IntArray | None = None) -> pa.Table:
        """The rejected rows of ``source`` (aligned with the checks) with row number and reason."""
        rows = np.flatnonzero(~self.ok)
        positions = rows if source_rows is None else source_rows[rows]
        return (
            source.take(pa.array(rows, pa.int64()))
            .append_column(SOURCE_ROW_COLUMN, pa.array(positions, pa.int64()))
            .append_column(REASON_COLUMN, pa.array(self._reasons[rows].tolist(), pa.string()))
        )


def _check_output_schema(contract: TableContract, schema: pa.Schema) -> None:
    """Raise (a bug) unless ``schema`` is the contract's plus, where allowed, numeric extras."""
    declared = contract.schema()
    head = pa.schema(list(schema)[: len(declared)])
    if not head.equals(declared):
        raise ValueError(f"{contract.name}: schema {head} is not the contract's {declared}")
    extras = list(schema)[len(declared) :]
    if extras and not contract.allow_extra_numeric_columns:
        raise ValueError(f"{contract.name}: extra columns are not allowed: {extras}")
    for extra in extras:
        if not (pa.types.is_integer(extra.type) or pa.types.is_floating(extra.type)):
            raise ValueError(f"{contract.name}: extra column {extra.name} is not numeric")


def _output_table(
    table_name: str,
    columns: Mapping[str, Any],
    extra_float_columns: Mapping[str, Any] | None = None,
) -> pa.Table:
    """Assemble columns into exactly the contract's schema, extras appended as nullable float64.

    A column is a NumPy array or a pyarrow array; either is converted (or cast) to the type the
    contract declares.
    """
    fields = list(CONTRACTS[table_name].schema())
    arrays = [_as_arrow(columns[field.name], field.type) for field in fields]
    for name, values in (extra_float_columns or {}).items():
        fields.append(pa.field(name, pa.float64(), nullable=True))
        arrays.append(_as_arrow(values, pa.float64()))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _as_arrow(values: Any, dtype: pa.DataType) -> pa.Array:
    if isinstance(values, pa.Array | pa.ChunkedArray):
        return values if values.type.equals(dtype) else pc.cast(values, dtype)
    return pa.array(values, type=dtype)


def _locate_file(fmt: str, expects: str, path: Path, filename: str) -> Path:
    """``path`` itself if it is a file, else ``path/filename``, which must exist."""
    if not path.exists():
        raise UserError(f"{fmt}: expected {expects} in {path}; it does not exist")
    if path.is_dir():
        candidate = path / filename
        if not candidate.is_file():
            raise UserError(f"{fmt}: expected {expects} in {path}; there is no {filename}")
        return candidate
    return path


def _read_csv_as_text(
    fmt: str, expects: str, path: Path, required: tuple[str, ...]
) -> pd.DataFrame:
    """Every column as text ("" where empty), so a bad value rejects a row instead of the file.

    A row with more fields than the header makes the file unreadable (UserError): without
    ``index_col=False`` pandas would silently turn the extra leading fields into an index and
    shift every value into the wrong column.
    """
    try:
        with warnings.catch_warnings():
            # pandas only warns when the first data row is too long; that is an error here.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                path, dtype=str, keep_default_na=False, skipinitialspace=True, index_col=False
            )
    except pd.errors.ParserWarning as error:
        raise UserError(
            f"{fmt}: expected {expects} in {path.parent}; cannot parse {path}: the first row has "
            "more fields than the header"
        ) from error
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise UserError(
            f"{fmt}: expected {expects} in {path.parent}; cannot parse {path}: {error}"
        ) from error
    frame.columns = pd.Index([str(name).strip() for name in frame.columns])
    missing = [name for name in required if name not in frame.columns]
    if missing:
        raise UserError(
            f"{fmt}: expected {expects} in {path.parent}; {path.name} has columns "
            f"{','.join(map(str, frame.columns))} (missing {','.join(missing)})"
        )
    # Short rows leave NaN even with keep_default_na=False; treat them as empty text.
    return frame.fillna("")


def _text_table(frame: pd.DataFrame) -> pa.Table:
    schema = pa.schema([pa.field(str(name), pa.string()) for name in frame.columns])
    return pa.Table.from_pandas(frame, schema=schema, preserve_index=False)


def _parse_int(text: pd.Series[str]) -> tuple[IntArray, BoolArray]:
    """Values (0 where invalid) and validity of integers written as text."""
    stripped = text.str.strip()
    valid = stripped.str.fullmatch(_INTEGER_PATTERN).fillna(False).to_numpy(dtype=np.bool_)
    values = pd.to_numeric(stripped.where(valid, "0")).to_numpy(dtype=np.int64)
    return values, valid


def _parse_float(text: pd.Series[str]) -> tuple[FloatArray, BoolArray]:
    """Values (NaN where invalid) and validity of finite numbers written as text."""
    values = pd.to_numeric(text.str.strip(), errors="coerce").to_numpy(dtype=np.float64)
    return values, np.isfinite(values)


def _parse_date(text: pd.Series[str], pattern: str, date_format: str) -> npt.NDArray[Any]:
    """``datetime64[D]`` values (NaT where invalid) of dates that match ``pattern`` exactly."""
    stripped = text.str.strip()
    well_formed = stripped.str.fullmatch(pattern).fillna(False)
    parsed = pd.to_datetime(stripped.where(well_formed), format=date_format, errors="coerce")
    return parsed.to_numpy(dtype="datetime64[D]")


def _require_numeric(fmt: str, expects: str, path: Path, table: pa.Table, name: str) -> None:
    """UserError unless column ``name`` of the Parquet file ``path`` holds numbers."""
    dtype = table.schema.field(name).type
    if not (pa.types.is_integer(dtype) or pa.types.is_floating(dtype)):
        raise UserError(
            f"{fmt}: expected {expects} in {path.parent}; column {name} of {path.name} is "
            f"{dtype}, not a number"
        )


def _numeric_column(fmt: str, expects: str, path: Path, table: pa.Table, name: str) -> FloatArray:
    """A numeric Parquet column as float64 with NaN for nulls; UserError if it is not numeric."""
    _require_numeric(fmt, expects, path, table, name)
    values: FloatArray = pc.cast(table.column(name), pa.float64()).to_numpy()
    return values


def _write_parquet(table: pa.Table, path: Path) -> None:
    # Write then rename, so a crash never leaves a half-written file under the final name.
    partial = path.with_name(path.name + ".partial")
    pq.write_table(table, partial)
    os.replace(partial, path)


def _write_text(text: str, path: Path) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


# ----------------------------------------------------------------------------------------------
# MovieLens → interactions

MOVIELENS_COLUMNS: Final = ("user_id", "item_id", "rating", "timestamp")
_MOVIELENS_EXPECTS: Final = f"ratings.csv with columns {','.join(MOVIELENS_COLUMNS)}"


def import_movielens(path: Path) -> ImportResult:
    """MovieLens ``ratings.csv`` (unix seconds) → ``interactions`` with event_type "rating"."""
    source = _locate_file("movielens", _MOVIELENS_EXPECTS, path, "ratings.csv")
    frame = _read_csv_as_text("movielens", _MOVIELENS_EXPECTS, source, MOVIELENS_COLUMNS)
    user_id, user_ok = _parse_int(frame["user_id"])
    item_id, item_ok = _parse_int(frame["item_id"])
    rating, rating_ok = _parse_float(frame["rating"])
    seconds, seconds_ok = _parse_int(frame["timestamp"])

    checks = _Rejections(len(frame))
    checks.flag(~user_ok, "user_id is not an integer")
    checks.flag(user_id < 0, "user_id is negative")
    checks.flag(~item_ok, "item_id is not an integer")
    checks.flag(item_id < 0, "item_id is negative")
    checks.flag(~rating_ok, "rating is not a number")
    checks.flag(rating < 0, "rating is negative")
    checks.flag(~seconds_ok, "timestamp is not an integer (unix seconds)")
    checks.flag(
        (seconds < 0) | (seconds > _MAX_UNIX_SECONDS),
        "timestamp is not unix seconds between 1970 and 9999",
    )

    ok = checks.ok
    table = _output_table(
        "interactions",
        {
            "customer_id": user_id[ok],
            "product_id": item_id[ok],
            "interaction_ts": seconds[ok] * 1_000_000,
            "rating": rating[ok],
            "event_type": np.full(int(ok.sum()), "rating", dtype=object),
        },
    )
    return ImportResult("interactions", table, checks.table(_text_table(frame)), len(frame))


# ----------------------------------------------------------------------------------------------
# ULB credit-card fraud → card_transactions

CREDITCARD_FEATURES: Final = tuple(f"V{i}" for i in range(1, 29))
CREDITCARD_COLUMNS: Final = ("Time", *CREDITCARD_FEATURES, "Amount", "Class")
_CREDITCARD_EXPECTS: Final = "creditcard.parquet with columns Time,V1..V28,Amount,Class"


def import_creditcard(path: Path) -> ImportResult:
    """ULB ``creditcard.parquet`` → ``card_transactions``, V1..V28 kept as float64 extras."""
    fmt, expects = "creditcard", _CREDITCARD_EXPECTS
    source_path = _locate_file(fmt, expects, path, "creditcard.parquet")
    try:
        source = pq.read_table(source_path)
    except (pa.ArrowInvalid, OSError) as error:
        raise UserError(
            f"{fmt}: expected {expects} in {source_path.parent}; cannot read {source_path}: {error}"
        ) from error
    missing = [name for name in CREDITCARD_COLUMNS if name not in source.column_names]
    if missing:
        raise UserError(
            f"{fmt}: expected {expects} in {source_path.parent}; {source_path.name} has columns "
            f"{','.join(source.column_names)} (missing {','.join(missing)})"
        )
    ignored = [name for name in source.column_names if name not in CREDITCARD_COLUMNS]
    if ignored:
        logger.warning("%s: ignoring columns %s of %s", fmt, ",".join(ignored), source_path)

    seconds = _numeric_column(fmt, expects, source_path, source, "Time")
    amount = _numeric_column(fmt, expects, source_path, source, "Amount")
    label = _numeric_column(fmt, expects, source_path, source, "Class")
    for name in CREDITCARD_FEATURES:
        _require_numeric(fmt, expects, source_path, source, name)

    checks = _Rejections(source.num_rows)
    # NaN compares False, so the "not finite" checks come first and catch it.
    checks.flag(~np.isfinite(seconds), "Time is missing or not finite")
    checks.flag(seconds < 0, "Time is negative")
    checks.flag(~np.isfinite(amount), "Amount is missing or not finite")
    checks.flag(amount < 0, "Amount is negative")
    checks.flag(~np.isin(label, (0.0, 1.0)), "Class is not 0 or 1")

    ok = checks.ok
    epoch_us = int(CREDITCARD_EPOCH.timestamp()) * 1_000_000
    table = _output_table(
        "card_transactions",
        {
            "transaction_id": np.flatnonzero(ok).astype(np.int64),
            "transaction_ts": epoch_us + np.round(seconds[ok] * 1_000_000).astype(np.int64),
            "amount": amount[ok],
            "is_fraud": label[ok] == 1.0,
        },
        # Through pyarrow, so a null feature stays null rather than becoming NaN.
        {
            name: pc.cast(source.column(name), pa.float64()).combine_chunks().filter(pa.array(ok))
            for name in CREDITCARD_FEATURES
        },
    )
    return ImportResult("card_transactions", table, checks.table(source), source.num_rows)


# ----------------------------------------------------------------------------------------------
# DIGINETICA (SR-GNN preprocessing) → session_sequences

DIGINETICA_TRAIN_FILE: Final = "all_train_seq.parquet"
DIGINETICA_TEST_FILE: Final = "test.parquet"
_DIGINETICA_EXPECTS: Final = (
    f"a folder with {DIGINETICA_TRAIN_FILE} (column session_items: list of item ids) and "
    f"{DIGINETICA_TEST_FILE} (columns session_items,target_item)"
)
_ITEM_LIST: Final = pa.list_(pa.int64())


def _read_diginetica_file(folder: Path, filename: str, columns: tuple[str, ...]) -> pa.Table:
    fmt, expects = "diginetica", _DIGINETICA_EXPECTS
    path = folder / filename
    if not path.is_file():
        raise UserError(f"{fmt}: expected {expects} in {folder}; there is no {filename}")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise UserError(
            f"{fmt}: expected {expects} in {folder}; cannot read {path}: {error}"
        ) from error
    missing = [name for name in columns if name not in table.column_names]
    if missing:
        raise UserError(
            f"{fmt}: expected {expects} in {folder}; {filename} has columns "
            f"{','.join(table.column_names)} (missing {','.join(missing)})"
        )
    items_type = table.schema.field("session_items").type
    if not (pa.types.is_list(items_type) or pa.types.is_large_list(items_type)) or not (
        pa.types.is_integer(items_type.value_type)
    ):
        raise UserError(
            f"{fmt}: expected {expects} in {folder}; session_items of {filename} is {items_type}, "
            "not a list of integers"
        )
    if "target_item" in columns and not pa.types.is_integer(table.schema.field("target_item").type):
        raise UserError(
            f"{fmt}: expected {expects} in {folder}; target_item of {filename} is "
            f"{table.schema.field('target_item').type}, not an integer"
        )
    return table


def import_diginetica(path: Path) -> ImportResult:
    """SR-GNN DIGINETICA files → ``session_sequences``; train sessions first, then test cases."""
    fmt, expects = "diginetica", _DIGINETICA_EXPECTS
    if not path.exists():
        raise UserError(f"{fmt}: expected {expects} in {path}; it does not exist")
    if not path.is_dir():
        raise UserError(f"{fmt}: expected {expects} in {path}; it is a file, not a folder")
    train = _read_diginetica_file(path, DIGINETICA_TRAIN_FILE, ("session_items",))
    test = _read_diginetica_file(path, DIGINETICA_TEST_FILE, ("session_items", "target_item"))
    n_train, n_test = train.num_rows, test.num_rows

    # One source table for both files, so checks and rejected rows line up with session ids.
    items = pa.chunked_array(
        [
            *pc.cast(train.column("session_items"), _ITEM_LIST).chunks,
            *pc.cast(test.column("session_items"), _ITEM_LIST).chunks,
        ],
        type=_ITEM_LIST,
    ).combine_chunks()
    targets = pa.chunked_array(
        [pa.nulls(n_train, pa.int64()), *pc.cast(test.column("target_item"), pa.int64()).chunks],
        type=pa.int64(),
    ).combine_chunks()
    is_test = np.arange(n_train + n_test) >= n_train

    lengths = pc.fill_null(pc.list_value_length(items), 0).to_numpy(zero_copy_only=False)
    flat_items = pc.list_flatten(items)
    owners = pc.list_parent_indices(items).to_numpy(zero_copy_only=False)
    missing_item = np.zeros(len(items), dtype=np.bool_)
    missing_item[owners[pc.is_null(flat_items).to_numpy(zero_copy_only=False)]] = True
    negative_item = np.zeros(len(items), dtype=np.bool_)
    negative_item[
        owners[pc.fill_null(pc.less(flat_items, 0), False).to_numpy(zero_copy_only=False)]
    ] = True
    target_missing = pc.is_null(targets).to_numpy(zero_copy_only=False)
    target_negative = pc.fill_null(pc.less(targets, 0), False).to_numpy(zero_copy_only=False)

    checks = _Rejections(n_train + n_test)
    checks.flag(pc.is_null(items).to_numpy(zero_copy_only=False), "session_items is missing")
    checks.flag(lengths == 0, "session_items is empty")
    checks.flag(missing_item, "session_items has a missing item id")
    checks.flag(negative_item, "session_items has a negative item id")
    checks.flag(is_test & target_missing, "target_item is missing")
    checks.flag(is_test & target_negative, "target_item is negative")

    ok = checks.ok
    keep = pa.array(ok)
    table = _output_table(
        "session_sequences",
        {
            "session_id": np.flatnonzero(ok).astype(np.int64),
            "product_ids": items.filter(keep),
            "target_product_id": targets.filter(keep),
            "split": np.where(is_test[ok], "test", "train").astype(object),
        },
    )
    source = pa.table(
        {
            "session_items": items,
            "target_item": targets,
            SOURCE_FILE_COLUMN: pa.array(
                np.where(is_test, DIGINETICA_TEST_FILE, DIGINETICA_TRAIN_FILE).astype(object),
                pa.string(),
            ),
        }
    )
    row_in_file = np.concatenate([np.arange(n_train), np.arange(n_test)]).astype(np.int64)
    rejected = checks.table(source, source_rows=row_in_file)
    return ImportResult("session_sequences", table, rejected, n_train + n_test)


# ----------------------------------------------------------------------------------------------
# Walmart weekly sales → demand_series

WALMART_COVARIATES: Final = ("Temperature", "Fuel_Price", "CPI", "Unemployment")
WALMART_COLUMNS: Final = ("Store", "Date", "Weekly_Sales", "Holiday_Flag", *WALMART_COVARIATES)
_WALMART_EXPECTS: Final = f"walmart_weekly_sales.csv with columns {','.join(WALMART_COLUMNS)}"
# Date is the Friday that ends the week; the period starts on the Saturday before it.
_WALMART_WEEK_START_OFFSET: Final = np.timedelta64(6, "D")


def import_walmart(path: Path) -> ImportResult:
    """Walmart weekly store sales → weekly ``demand_series`` "store-<n>" with covariates."""
    fmt, expects = "walmart", _WALMART_EXPECTS
    source = _locate_file(fmt, expects, path, "walmart_weekly_sales.csv")
    frame = _read_csv_as_text(fmt, expects, source, WALMART_COLUMNS)
    store, store_ok = _parse_int(frame["Store"])
    week_end = _parse_date(frame["Date"], r"\d{2}-\d{2}-\d{4}", "%d-%m-%Y")
    sales, sales_ok = _parse_float(frame["Weekly_Sales"])
    holiday, holiday_ok = _parse_int(frame["Holiday_Flag"])

    checks = _Rejections(len(frame))
    checks.flag(~store_ok, "Store is not an integer")
    checks.flag(store < 0, "Store is negative")
    checks.flag(np.isnat(week_end), "Date is not a valid dd-mm-yyyy date")
    checks.flag(~sales_ok, "Weekly_Sales is not a number")
    checks.flag(sales < 0, "Weekly_Sales is negative")
    checks.flag(~holiday_ok | ~np.isin(holiday, (0, 1)), "Holiday_Flag is not 0 or 1")
    covariates: dict[str, FloatArray] = {}
    for name in WALMART_COVARIATES:
        # An empty covariate is a missing value (null); text that is not a number is an error.
        values, valid = _parse_float(frame[name])
        blank = (frame[name].str.strip() == "").to_numpy(dtype=np.bool_)
        checks.flag(~valid & ~blank, f"{name} is not a number")
        covariates[name] = values
    # Only among rows that pass every other check, so a bad row never shadows a good one.
    duplicate = np.zeros(len(frame), dtype=np.bool_)
    duplicate[checks.ok] = (
        pd.DataFrame({"store": store[checks.ok], "date": week_end[checks.ok]})
        .duplicated()
        .to_numpy(dtype=np.bool_)
    )
    checks.flag(duplicate, "duplicate Store and Date")

    ok = checks.ok
    # Series in store order, weeks in time order: the contract orders time within a series.
    order = np.flatnonzero(ok)[np.lexsort((week_end[ok], store[ok]))]
    store_ids = pa.array(store[order], pa.int64())
    table = _output_table(
        "demand_series",
        {
            "series_id": pc.binary_join_element_wise("store-", pc.cast(store_ids, pa.string()), ""),
            "period_start": week_end[order] - _WALMART_WEEK_START_OFFSET,
            "frequency": np.full(len(order), "W", dtype=object),
            "value": sales[order],
            "is_holiday": holiday[order] == 1,
        },
        {
            name: pa.array(values[order], pa.float64(), from_pandas=True)
            for name, values in covariates.items()
        },
    )
    return ImportResult("demand_series", table, checks.table(_text_table(frame)), len(frame))


# ----------------------------------------------------------------------------------------------
# CDNOW → order_history

CDNOW_COLUMNS: Final = ("customer_id", "date", "number_of_cds", "dollar_value")
_CDNOW_EXPECTS: Final = (
    "CDNOW_master.txt with 4 whitespace-separated columns "
    "customer_id,yyyymmdd,number_of_cds,dollar_value"
)


def import_cdnow(path: Path) -> ImportResult:
    """CDNOW master file → ``order_history``; orders of 0 CDs are rejected, $0 orders kept.

    The header line (`` customer_id  date number_of_cds  dollar_value``) is optional: the
    original distribution has none. The rejected table holds the raw ``line``.
    """
    fmt, expects = "cdnow", _CDNOW_EXPECTS
    source = _locate_file(fmt, expects, path, "CDNOW_master.txt")
    try:
        text = source.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError) as error:
        raise UserError(
            f"{fmt}: expected {expects} in {source.parent}; cannot read {source}: {error}"
        ) from error
    lines = pd.Series(text.splitlines(), dtype=object).str.strip()
    lines = lines[lines != ""].reset_index(drop=True)
    if len(lines) and not lines.iloc[0].split()[0].isdigit():
        header = lines.iloc[0].split()
        if [name.lower() for name in header] != list(CDNOW_COLUMNS):
            raise UserError(
                f"{fmt}: expected {expects} in {source.parent}; {source.name} starts with the "
                f"header {' '.join(header)}"
            )
        lines = lines.iloc[1:].reset_index(drop=True)
    # One column per field; rows with fewer fields are padded with None.
    fields = lines.str.split(expand=True).reindex(columns=range(len(CDNOW_COLUMNS)))
    n_fields = lines.str.split().map(len).to_numpy(dtype=np.int64)
    if len(lines) and n_fields[0] != len(CDNOW_COLUMNS):
        # One bad row is rejected; a first row of the wrong shape means the wrong file.
        raise UserError(
            f"{fmt}: expected {expects} in {source.parent}; the first row of {source.name} has "
            f"{n_fields[0]} fields: {lines.iloc[0]!r}"
        )

    def field(position: int) -> pd.Series[str]:
        return fields[position].fillna("").astype(str)

    customer, customer_ok = _parse_int(field(0))
    day = _parse_date(field(1), r"\d{8}", "%Y%m%d")
    n_cds, n_cds_ok = _parse_int(field(2))
    dollars, dollars_ok = _parse_float(field(3))

    checks = _Rejections(len(lines))
    checks.flag(n_fields != len(CDNOW_COLUMNS), f"expected {len(CDNOW_COLUMNS)} fields")
    checks.flag(~customer_ok, "customer_id is not an integer")
    checks.flag(customer < 0, "customer_id is negative")
    checks.flag(np.isnat(day), "date is not a valid yyyymmdd date")
    checks.flag(~n_cds_ok, "number_of_cds is not an integer")
    checks.flag(n_cds < 0, "number_of_cds is negative")
    checks.flag(n_cds == 0, "number_of_cds is 0 (order_history requires n_items >= 1)")
    checks.flag(~dollars_ok, "dollar_value is not a number")
    checks.flag(dollars < 0, "dollar_value is negative")

    ok = checks.ok
    # Orders in time order within each customer, as the contract requires (stable sort).
    order = np.flatnonzero(ok)[np.lexsort((day[ok], customer[ok]))]
    table = _output_table(
        "order_history",
        {
            "customer_id": customer[order],
            "order_ts": day[order].astype("datetime64[us]").astype(np.int64),
            "n_items": n_cds[order],
            "amount": dollars[order],
        },
    )
    source_table = pa.table({"line": pa.array(lines.to_numpy(), pa.string())})
    return ImportResult("order_history", table, checks.table(source_table), len(lines))


# ----------------------------------------------------------------------------------------------
# Registry

IMPORTERS: Final[dict[str, Importer]] = {
    importer.format: importer
    for importer in (
        Importer("movielens", "interactions", _MOVIELENS_EXPECTS, import_movielens),
        Importer("creditcard", "card_transactions", _CREDITCARD_EXPECTS, import_creditcard),
        Importer("diginetica", "session_sequences", _DIGINETICA_EXPECTS, import_diginetica),
        Importer("walmart", "demand_series", _WALMART_EXPECTS, import_walmart),
        Importer("cdnow", "order_history", _CDNOW_EXPECTS, import_cdnow),
    )
}
