"""Validation of user data against the table contracts, with quarantine instead of silent loss.

A table is read without trusting its types (:func:`read_table`), then :func:`validate_table`
converts every declared column to its contract type with a per-row mask of the values that did not
convert, and checks each row against the contract: nulls, allowed values, ranges, uniqueness, the
order of timestamps within a group and (for a whole data set) foreign keys. Every row ends up in
``valid`` (typed exactly as :meth:`TableContract.schema`) or in ``quarantined`` (its original
values as strings, its position ``_row_number`` and every reason it failed), so
``valid.num_rows + quarantined.num_rows == rows_in`` always holds. Each failed check is reported
once per column and rule, with the number of rows and up to five examples.

Design choices:

* A missing declared column or an undeclared column is a table-level violation: every row is
  quarantined with that reason (nothing can be trusted in a table of the wrong shape), and the
  other checks still run on the columns that are there, so one run reports every problem.
* Where ``allow_extra_numeric_columns`` is set, extra numeric columns are kept in ``valid`` after
  the declared ones. An extra text column (all a CSV has) is converted to ``float64`` row by row,
  a value that is not a number being a ``type`` violation; any other type is unexpected.
* Where ``allow_extra_columns`` is set (``labelled_examples``: a user's own features), an extra
  column of type float64, int64, bool or string is kept in ``valid`` as it is, after the declared
  ones and in the table's order; a column of any other type is unexpected (unless
  ``allow_extra_numeric_columns`` is set too and keeps it). A CSV's extras are text and stay text.
* NaN and the null markers ``""``, ``nan``, ``null``, ``none``, ``na``, ``n/a`` (any case) in a
  numeric, boolean or temporal column are nulls, so the nullability check decides about them.
  Infinite numbers are conversion failures.
* Timestamps without a time zone (naive timestamps or ISO strings without an offset) are read as
  UTC, and a note says how many there were; times with a zone are converted to UTC.
* ``out_of_order``: within a group, a row is out of order when its timestamp is earlier than the
  latest timestamp of the rows before it in that group (the running maximum, not only the row just
  before it), so that the rows kept in ``valid`` are always ordered and validating them again
  finds nothing.
* ``duplicate``: the first occurrence (in file order) of a value of a unique column is not a
  duplicate; every later copy is.
* Foreign keys are checked against the *valid* rows of the target table, tables being validated
  targets first, so a row referring to a quarantined row is quarantined too.

Everything is vectorised with pyarrow, numpy and pandas; Python loops run over columns, checks,
files and at most a few thousand example values, never over the rows of a table.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from getit_ml.data.contracts import (
    CONTRACTS,
    EXTRA_COLUMN_TYPES,
    MARKETPLACE_TABLES,
    ForeignKey,
    TableContract,
)
from getit_ml.errors import UserError

logger = logging.getLogger(__name__)

Mask = npt.NDArray[np.bool_]

#: Most examples (and example row numbers) kept per violation.
MAX_EXAMPLES: Final = 5
#: Longest example value shown; longer ones (descriptions, reviews) are cut.
MAX_EXAMPLE_CHARS: Final = 80
#: How many offending rows are looked at to find distinct examples.
_EXAMPLE_SCAN: Final = 2_000
#: Version of the layout of ``report.json``; bump it when a consumer would need to change.
REPORT_FORMAT_VERSION: Final = 1

#: Columns added to every quarantined row.
ROW_NUMBER_COLUMN: Final = "_row_number"
REASONS_COLUMN: Final = "_reasons"

_NULL_MARKERS: Final = ("", "nan", "null", "none", "na", "n/a")
_TRUE_WORDS: Final = ("true", "t", "yes", "y", "1")
_FALSE_WORDS: Final = ("false", "f", "no", "n", "0")
_INT64_MAX: Final = 2**63 - 1
#: Above this a float no longer holds every integer exactly, so text such as "1.2e18" cannot be
#: turned into an integer id without possibly changing it.
_EXACT_FLOAT_INT: Final = 2**53
_PLAIN_INT: Final = r"^[+-]?[0-9]{1,18}$"
_WIDE_INT: Final = r"^\+?[0-9]{19}$"
_DECIMAL_NUMBER: Final = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_ISO_DATE: Final = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
#: A time of day followed by a zone (``Z``, ``+06:00``, ``+0600``, ``+06``).
_HAS_ZONE: Final = r"[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?\s*([zZ]|[+-][0-9]{2}(:?[0-9]{2})?)$"
#: Partition folders such as ``date=2024-01-31``.
_PARTITION_SEGMENT: Final = re.compile(r"^([^=/]+)=(.*)$")


class Rule(StrEnum):
    """Stable codes of the checks; they appear in reports, ``_reasons`` and ``report.json``."""

    MISSING_TABLE = "missing_table"
    MISSING_COLUMN = "missing_column"
    UNEXPECTED_COLUMN = "unexpected_column"
    TYPE = "type"
    NULL = "null"
    NOT_ALLOWED = "not_allowed"
    BELOW_MIN = "below_min"
    ABOVE_MAX = "above_max"
    DUPLICATE = "duplicate"
    OUT_OF_ORDER = "out_of_order"
    UNKNOWN_REFERENCE = "unknown_reference"


@dataclass(frozen=True)
class Violation:
    """One failed check: which table, column and rule, how many rows, and a few examples."""

    table: str
    column: str | None
    rule: Rule
    #: Rows that fail this check (0 for a missing table, or a missing column of an empty table).
    rows: int
    #: Up to five distinct offending values, as strings (empty for nulls and missing columns).
    examples: tuple[str, ...] = ()
    #: ``_row_number`` of up to five offending rows.
    example_rows: tuple[int, ...] = ()
    message: str = ""

    @property
    def reason(self) -> str:
        """The code written into ``_reasons``: ``column:rule`` (or ``rule`` for a whole table)."""
        return f"{self.column}:{self.rule}" if self.column is not None else str(self.rule)

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "column": self.column,
            "rule": str(self.rule),
            "rows": self.rows,
            "examples": list(self.examples),
            "example_rows": list(self.example_rows),
            "message": self.message,
        }


@dataclass(frozen=True)
class TableValidation:
    """The outcome for one table; ``rows_in == rows_valid + rows_quarantined`` always."""

    table: str
    rows_in: int
    #: The rows that passed, typed exactly as ``contract.schema()`` (then any kept extra columns).
    valid: pa.Table
    #: The rows that failed: original values as strings, ``_row_number`` and ``_reasons``.
    quarantined: pa.Table
    violations: tuple[Violation, ...]
    #: Things the user should know that are not violations (time zones assumed, checks skipped).
    notes: tuple[str, ...] = ()
    source: Path | None = None

    def __post_init__(self) -> None:
        if self.valid.num_rows + self.quarantined.num_rows != self.rows_in:
            raise ValueError(
                f"{self.table}: {self.valid.num_rows} valid + {self.quarantined.num_rows} "
                f"quarantined rows != {self.rows_in} rows in"
            )

    @property
    def rows_valid(self) -> int:
        return int(self.valid.num_rows)

    @property
    def rows_quarantined(self) -> int:
        return int(self.quarantined.num_rows)

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "source": str(self.source) if self.source is not None else None,
            "rows_in": self.rows_in,
            "rows_valid": self.rows_valid,
            "rows_quarantined": self.rows_quarantined,
            "ok": self.ok,
            "notes": list(self.notes),
            "violations": [v.to_dict() for v in self.violations],
        }


@dataclass(frozen=True)
class DatasetValidation:
    """The outcome for a data-set directory: one :class:`TableValidation` per table found."""

    directory: Path
    tables: tuple[TableValidation, ...]
    #: Expected tables that are not in the directory (each is also a ``missing_table`` violation).
    missing_tables: tuple[str, ...] = ()

    @property
    def violations(self) -> tuple[Violation, ...]:
        """Every violation: missing tables first, then each table's in order."""
        missing = tuple(
            Violation(
                table=name,
                column=None,
                rule=Rule.MISSING_TABLE,
                rows=0,
                message=f"expected {name}.parquet, {name}/ or {name}.csv in {self.directory}",
            )
            for name in self.missing_tables
        )
        return missing + tuple(v for t in self.tables for v in t.violations)

    @property
    def rows_in(self) -> int:
        return sum(t.rows_in for t in self.tables)

    @property
    def rows_valid(self) -> int:
        return sum(t.rows_valid for t in self.tables)

    @property
    def rows_quarantined(self) -> int:
        return sum(t.rows_quarantined for t in self.tables)

    @property
    def ok(self) -> bool:
        """False when any row was quarantined, any table was missing or had the wrong shape."""
        return not self.violations

    def table(self, name: str) -> TableValidation:
        for table in self.tables:
            if table.table == name:
                return table
        raise KeyError(f"table {name!r} was not validated")

    def to_dict(self) -> dict[str, Any]:
        """The content of ``report.json``."""
        return {
            "format_version": REPORT_FORMAT_VERSION,
            "directory": str(self.directory),
            "ok": self.ok,
            "totals": {
                "tables": len(self.tables),
                "missing_tables": len(self.missing_tables),
                "rows_in": self.rows_in,
                "rows_valid": self.rows_valid,
                "rows_quarantined": self.rows_quarantined,
                "violations": len(self.violations),
            },
            "missing_tables": list(self.missing_tables),
            "tables": {t.table: t.to_dict() for t in self.tables},
            "violations": [v.to_dict() for v in self.violations],
        }


# ---------------------------------------------------------------------------------------- reading


def find_table(directory: Path, name: str) -> Path | None:
    """Where table ``name`` lives in a data-set directory: ``name.parquet``, ``name/`` (Parquet,
    possibly Hive-partitioned) or ``name.csv``; None when it is not there."""
    candidates = [
        path
        for path in (directory / f"{name}.parquet", directory / name, directory / f"{name}.csv")
        if path.exists()
    ]
    if len(candidates) > 1:
        found = ", ".join(p.name for p in candidates)
        raise UserError(
            f"table {name} is in {directory} more than once ({found}); keep one of them"
        )
    return candidates[0] if candidates else None


def read_table(path: Path, contract: TableContract) -> pa.Table:
    """Read a table without trusting its types (validation converts and checks them).

    ``path`` is a Parquet file, a directory of Parquet files (Hive partitions such as
    ``date=2024-01-31/part-0.parquet`` are read in path order; a partition value becomes a column
    only if the contract declares it and the files lack it) or a CSV file with a header line, whose
    columns are all read as text. Raises :class:`UserError` for anything the user can fix.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} does not exist")
    if path.is_dir():
        table = _read_parquet_directory(path, contract)
    elif path.suffix.lower() == ".parquet":
        table = _read_parquet_file(path)
    elif path.suffix.lower() == ".csv":
        table = _read_csv(path)
    else:
        raise UserError(
            f"{path} is not a table file: expected a .parquet file, a .csv file or a directory "
            "of Parquet files"
        )
    _reject_duplicate_names(table.column_names, str(path))
    logger.info("read %s: %d rows, %d columns", path, table.num_rows, table.num_columns)
    return table


def _read_parquet_file(path: Path) -> pa.Table:
    try:
        # ParquetFile reads just this file: no partition columns are guessed from its path.
        return pq.ParquetFile(path).read()
    except (pa.ArrowException, OSError) as exc:
        raise UserError(f"cannot read {path} as Parquet: {exc}") from exc


def _read_csv(path: Path) -> pa.Table:
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            header = next(csv.reader(handle), None)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"cannot read {path} as CSV: {exc} (CSV files must be UTF-8)") from exc
    if not header:
        raise UserError(f"{path} is empty: a CSV file needs a header line naming its columns")
    _reject_duplicate_names(header, str(path))
    # Every column is read as text, so that a value that is not of the declared type reaches
    # validation as it was written instead of failing the whole file or becoming null.
    convert = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in header},
        strings_can_be_null=True,
        null_values=[""],
    )
    try:
        return pacsv.read_csv(path, convert_options=convert)
    except (pa.ArrowException, OSError) as exc:
        raise UserError(f"cannot read {path} as CSV: {exc}") from exc


def _read_parquet_directory(directory: Path, contract: TableContract) -> pa.Table:
    files = sorted(
        (
            path
            for path in directory.rglob("*.parquet")
            if path.is_file() and not _is_hidden(path.relative_to(directory))
        ),
        key=lambda path: _natural_key(path.relative_to(directory)),
    )
    if not files:
        raise UserError(f"{directory} holds no Parquet files (*.parquet)")
    parts: list[tuple[Path, pa.Table]] = []
    for file in files:
        part = _read_parquet_file(file)
        for key, value in _partition_values(file.relative_to(directory)):
            if key in contract.column_names and key not in part.column_names:
                filled = pa.array([value], pa.string()).take(np.zeros(part.num_rows, np.int64))
                part = part.append_column(key, filled)
        parts.append((file, part))
    return _concat_parts(parts)


def _is_hidden(relative: Path) -> bool:
    # Spark and Hadoop leave _SUCCESS, _temporary/ and .crc files next to the data.
    return any(part.startswith((".", "_")) for part in relative.parts)


def _natural_key(relative: Path) -> list[tuple[int, int | str]]:
    # part-10 sorts after part-9, so file order is the order the files were written in.
    return [
        (0, int(piece)) if piece.isdigit() else (1, piece)
        for piece in re.split(r"(\d+)", relative.as_posix())
        if piece
    ]


def _partition_values(relative: Path) -> list[tuple[str, str]]:
    values = []
    for segment in relative.parent.parts:
        match = _PARTITION_SEGMENT.match(segment)
        if match:
            values.append((match.group(1), match.group(2)))
    return values


def _concat_parts(parts: Sequence[tuple[Path, pa.Table]]) -> pa.Table:
    first_file, first = parts[0]
    names = list(first.column_names)
    for file, part in parts[1:]:
        if set(part.column_names) != set(names):
            missing = sorted(set(names) - set(part.column_names))
            extra = sorted(set(part.column_names) - set(names))
            raise UserError(
                f"{file} does not have the columns of {first_file}: missing {missing or 'none'}, "
                f"extra {extra or 'none'}; every file of a table must have the same columns"
            )
    columns = []
    for name in names:
        pieces = [part.column(name) for _, part in parts]
        columns.append(_unify_pieces(pieces))
    return pa.table(dict(zip(names, columns, strict=True)))


def _unify_pieces(pieces: Sequence[pa.ChunkedArray]) -> pa.ChunkedArray:
    """One column from the same column of several files whose types may differ."""
    types = {piece.type for piece in pieces}
    if len(types) == 1:
        return pa.chunked_array([c for p in pieces for c in p.chunks], type=pieces[0].type)
    try:
        # int32 + int64, null + anything... widen the way Arrow would.
        target = (
            pa.unify_schemas(
                [pa.schema([pa.field("x", t)]) for t in types], promote_options="permissive"
            )
            .field("x")
            .type
        )
        cast = [pc.cast(piece, target) for piece in pieces]
    except (pa.ArrowException, TypeError):
        # Genuinely different types (numbers in one file, text in another): keep every value as
        # text and let validation say which ones are wrong.
        target = pa.string()
        cast = [_as_strings(piece) for piece in pieces]
    return pa.chunked_array([c for p in cast for c in p.chunks], type=target)


def _reject_duplicate_names(names: Sequence[str], where: str) -> None:
    duplicated = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicated:
        raise UserError(f"{where} has duplicate column names: {', '.join(duplicated)}")


# ------------------------------------------------------------------------------------- conversion


@dataclass(frozen=True)
class _Converted:
    #: Of the target type; null where the input was null or did not convert.
    values: pa.ChunkedArray
    #: A non-null input that did not convert.
    failed: Mask
    #: Timestamps read as UTC because they had no zone.
    naive: int = 0


def _convert_column(column: pa.ChunkedArray, target: pa.DataType) -> _Converted:
    values: list[pa.Array] = []
    failed: list[Mask] = []
    naive = 0
    for chunk in column.chunks:
        converted, counted_as_null, naive_in_chunk = _convert_array(chunk, target)
        failed.append(_true(chunk.is_valid()) & ~counted_as_null & _true(converted.is_null()))
        values.append(converted)
        naive += naive_in_chunk
    return _Converted(
        values=pa.chunked_array(values, type=target),
        failed=np.concatenate(failed) if failed else np.zeros(0, np.bool_),
        naive=naive,
    )


def _convert_array(array: pa.Array, target: pa.DataType) -> tuple[pa.Array, Mask, int]:
    """``array`` as ``target``: the converted values (null where conversion failed), which
    non-null inputs count as null (NaN, null markers), and how many timestamps had no zone."""
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    no_null_markers = np.zeros(len(array), np.bool_)
    if pa.types.is_null(array.type):
        return pa.nulls(len(array), target), no_null_markers, 0
    if _is_text(array.type) and not pa.types.is_string(array.type):
        array = pc.cast(array, pa.string())
    if pa.types.is_string(target):
        return _to_string(array), no_null_markers, 0
    if pa.types.is_string(array.type):
        text = pc.utf8_trim_whitespace(array)
        marker = _true(pc.is_in(pc.utf8_lower(text), value_set=pa.array(_NULL_MARKERS)))
        text = pc.if_else(pa.array(marker), pa.scalar(None, pa.string()), text)
        values, naive = _from_text(text, target)
        return values, marker, naive
    if pa.types.is_integer(target):
        return _number_to_int(array, target)
    if pa.types.is_floating(target):
        return _number_to_float(array, target)
    if pa.types.is_boolean(target):
        return _number_to_bool(array), _nan(array), 0
    if pa.types.is_timestamp(target):
        return _temporal_to_timestamp(array, target)
    if pa.types.is_date(target):
        return _temporal_to_date(array, target), no_null_markers, 0
    return _cast_or_fail(array, target), no_null_markers, 0


def _from_text(text: pa.Array, target: pa.DataType) -> tuple[pa.Array, int]:
    if pa.types.is_integer(target):
        return _text_to_int(text, target), 0
    if pa.types.is_floating(target):
        return _text_to_float(text, target), 0
    if pa.types.is_boolean(target):
        lower = pc.utf8_lower(text)
        is_true = pc.is_in(lower, value_set=pa.array(_TRUE_WORDS))
        is_false = pc.is_in(lower, value_set=pa.array(_FALSE_WORDS))
        none = pa.scalar(None, pa.bool_())
        return pc.if_else(is_true, True, pc.if_else(is_false, False, none)), 0
    if pa.types.is_timestamp(target):
        return _text_to_timestamp(text, target)
    if pa.types.is_date(target):
        iso = pc.match_substring_regex(text, _ISO_DATE)
        parsed = pc.strptime(
            pc.if_else(iso, text, pa.scalar(None, pa.string())),
            format="%Y-%m-%d",
            unit="s",
            error_is_null=True,
        )
        return _cast_or_fail(pc.cast(parsed, pa.date32()), target), 0
    return _cast_or_fail(text, target), 0


def _text_to_int(text: pa.Array, target: pa.DataType) -> pa.Array:
    try:
        return pc.cast(text, target)
    except pa.ArrowInvalid:
        pass  # some values are not plain integers: sort them out one kind at a time below
    unsigned = pc.utf8_ltrim(text, characters="+")
    plain = pc.match_substring_regex(text, _PLAIN_INT)
    # 19 digits may or may not fit in int64; equal-length digit strings compare like numbers.
    wide = pc.and_(
        pc.match_substring_regex(text, _WIDE_INT),
        pc.less_equal(unsigned, str(_INT64_MAX)),
    )
    exact = pc.fill_null(pc.or_(plain, wide), False)
    no_text = pa.scalar(None, pa.string())
    as_int = pc.cast(pc.if_else(exact, unsigned, no_text), pa.int64())
    # "12.0" (a nullable integer column written by pandas) or "1e3": integers written as decimals.
    decimal = pc.and_(pc.invert(exact), pc.match_substring_regex(text, _DECIMAL_NUMBER))
    as_float = pc.cast(pc.if_else(decimal, text, no_text), pa.float64())
    integral = pc.and_(
        pc.equal(pc.floor(as_float), as_float), pc.less(pc.abs(as_float), _EXACT_FLOAT_INT)
    )
    from_float = pc.cast(pc.if_else(integral, as_float, pa.scalar(None, pa.float64())), pa.int64())
    return _cast_or_fail(pc.coalesce(as_int, from_float), target)


def _text_to_float(text: pa.Array, target: pa.DataType) -> pa.Array:
    try:
        values = pc.cast(text, pa.float64())
    except pa.ArrowInvalid:
        number = pc.match_substring_regex(text, _DECIMAL_NUMBER)
        values = pc.cast(pc.if_else(number, text, pa.scalar(None, pa.string())), pa.float64())
    # A NaN written as text (rare once the null markers are out) is a null, like any NaN;
    # an infinite amount or rating is never meant, so it fails.
    return _cast_or_fail(_finite_or_null(values), target)


def _text_to_timestamp(text: pa.Array, target: pa.DataType) -> tuple[pa.Array, int]:
    parsed = pd.to_datetime(
        pd.Series(text.to_pandas(), dtype=object), utc=True, errors="coerce", format="ISO8601"
    )
    values = pc.cast(pa.Array.from_pandas(parsed), target, safe=False)
    has_zone = pc.fill_null(pc.match_substring_regex(text, _HAS_ZONE), True)
    naive = int(np.count_nonzero(_true(values.is_valid()) & ~_true(has_zone)))
    return values, naive


def _number_to_int(array: pa.Array, target: pa.DataType) -> tuple[pa.Array, Mask, int]:
    nan = _nan(array)
    if pa.types.is_integer(array.type):
        try:
            return pc.cast(array, target), nan, 0
        except pa.ArrowInvalid:
            # uint64 beyond int64: null out the values that do not fit, then cast.
            fits = pc.less_equal(array, pa.scalar(_INT64_MAX, array.type))
            kept = pc.if_else(fits, array, pa.scalar(None, array.type))
            return _cast_or_fail(kept, target), nan, 0
    if pa.types.is_floating(array.type):
        integral = pc.and_(pc.equal(pc.floor(array), array), pc.less(pc.abs(array), float(2**63)))
        kept = pc.if_else(integral, array, pa.scalar(None, array.type))
        return _cast_or_fail(kept, target), nan, 0
    if pa.types.is_decimal(array.type):
        return _cast_or_fail(array, target), nan, 0
    return pa.nulls(len(array), target), nan, 0


def _number_to_float(array: pa.Array, target: pa.DataType) -> tuple[pa.Array, Mask, int]:
    nan = _nan(array)
    if pa.types.is_integer(array.type) or pa.types.is_decimal(array.type):
        # Beyond 2**53 an integer amount is rounded to the nearest float, which is what a float
        # column means; a safe cast would refuse it.
        return pc.cast(array, target, safe=False), nan, 0
    if pa.types.is_floating(array.type):
        return _cast_or_fail(_finite_or_null(array), target), nan, 0
    return pa.nulls(len(array), target), nan, 0


def _number_to_bool(array: pa.Array) -> pa.Array:
    if pa.types.is_boolean(array.type):
        return array
    if pa.types.is_integer(array.type) or pa.types.is_floating(array.type):
        none = pa.scalar(None, pa.bool_())
        return pc.if_else(pc.equal(array, 1), True, pc.if_else(pc.equal(array, 0), False, none))
    return pa.nulls(len(array), pa.bool_())


def _temporal_to_timestamp(array: pa.Array, target: pa.DataType) -> tuple[pa.Array, Mask, int]:
    no_markers = np.zeros(len(array), np.bool_)
    if pa.types.is_timestamp(array.type):
        naive = 0 if array.type.tz is not None else len(array) - array.null_count
        # safe=False only lets nanoseconds be cut to microseconds, the contract's unit.
        return pc.cast(array, target, safe=False), no_markers, naive
    if pa.types.is_date(array.type):
        midnight = pc.cast(pc.cast(array, pa.date32()), pa.timestamp("us"))
        return pc.cast(midnight, target), no_markers, len(array) - array.null_count
    return pa.nulls(len(array), target), no_markers, 0


def _temporal_to_date(array: pa.Array, target: pa.DataType) -> pa.Array:
    if pa.types.is_date(array.type):
        return _cast_or_fail(array, target)
    if pa.types.is_timestamp(array.type):
        # A timestamp is a date only at midnight; a cast would silently drop the time of day.
        day = pc.cast(array, pa.date32(), safe=False)
        midnight = pc.equal(pc.cast(day, array.type), array)
        return _cast_or_fail(pc.if_else(midnight, day, pa.scalar(None, pa.date32())), target)
    return pa.nulls(len(array), target)


def _to_string(array: pa.Array) -> pa.Array:
    if pa.types.is_string(array.type):
        return array
    if pa.types.is_list(array.type) or pa.types.is_struct(array.type):
        return pa.nulls(len(array), pa.string())
    return _cast_or_fail(array, pa.string())


def _cast_or_fail(array: pa.Array, target: pa.DataType) -> pa.Array:
    """A cast that fails as a whole makes every value a conversion failure."""
    if array.type == target:
        return array
    try:
        return pc.cast(array, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.nulls(len(array), target)


def _finite_or_null(values: pa.Array) -> pa.Array:
    finite = pc.is_finite(values)
    return pc.if_else(finite, values, pa.scalar(None, values.type))


def _nan(array: pa.Array) -> Mask:
    if pa.types.is_floating(array.type):
        return _true(pc.is_nan(array))
    return np.zeros(len(array), np.bool_)


def _is_text(dtype: pa.DataType) -> bool:
    return bool(
        pa.types.is_string(dtype)
        or pa.types.is_large_string(dtype)
        or getattr(pa.types, "is_string_view", lambda _: False)(dtype)
    )


def _is_numeric(dtype: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype)
    )


def _true(flags: pa.Array | pa.ChunkedArray) -> Mask:
    """A boolean Arrow array as a numpy mask, null counting as False."""
    return np.asarray(pc.fill_null(flags, False).to_numpy(zero_copy_only=False), dtype=np.bool_)


def _as_strings(column: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    """Values as text, for examples and the quarantine (lists and bytes through ``str``)."""
    if isinstance(column, pa.Array):
        column = pa.chunked_array([column], type=column.type)
    if pa.types.is_string(column.type):
        return column
    try:
        return pc.cast(column, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        # Only lists, structs and binary get here: rare types, and only for quarantined rows.
        text = [None if value is None else str(value) for value in column.to_pylist()]
        return pa.chunked_array([pa.array(text, pa.string())], type=pa.string())


def _codes(values: pa.ChunkedArray) -> npt.NDArray[np.int64]:
    """An integer per distinct value, for duplicate and grouping checks (nulls get an arbitrary
    code: callers look at non-null rows only)."""
    if pa.types.is_integer(values.type):
        return np.asarray(pc.fill_null(pc.cast(values, pa.int64()), 0).to_numpy(), np.int64)
    encoded = pc.dictionary_encode(values).unify_dictionaries()
    indices = [
        np.asarray(pc.fill_null(chunk.indices, 0).to_numpy(zero_copy_only=False), np.int64)
        for chunk in encoded.chunks
    ]
    return np.concatenate(indices) if indices else np.zeros(0, np.int64)


def _temporal_ints(values: pa.ChunkedArray) -> npt.NDArray[np.int64]:
    if pa.types.is_date32(values.type):
        values = pc.cast(values, pa.int32())
    return np.asarray(pc.fill_null(pc.cast(values, pa.int64()), 0).to_numpy(), np.int64)


def _temporal_strings(ints: npt.NDArray[np.int64], dtype: pa.DataType) -> list[str]:
    as_arrow = pa.array(ints, pa.int64())
    if pa.types.is_date32(dtype):
        as_arrow = pc.cast(pc.cast(as_arrow, pa.int32()), dtype)
    else:
        as_arrow = pc.cast(as_arrow, dtype)
    return [str(v) for v in _as_strings(as_arrow).to_pylist()]


# ------------------------------------------------------------------------------------- validation


class _Findings:
    """The failed checks of one table: a violation and a per-row mask for each."""

    def __init__(self, table: str, raw: pa.Table) -> None:
        self.table = table
        self.raw = raw
        self.rows = int(raw.num_rows)
        self.found: list[tuple[Violation, Mask]] = []

    def add(
        self,
        column: str | None,
        rule: Rule,
        mask: Mask,
        message: str,
        *,
        examples: Sequence[str] | None = None,
        always: bool = False,
    ) -> None:
        count = int(np.count_nonzero(mask))
        if count == 0 and not always:
            return
        offending = np.flatnonzero(mask)
        if examples is None:
            examples = self.examples_of(column, offending)
        violation = Violation(
            table=self.table,
            column=column,
            rule=rule,
            rows=count,
            examples=tuple(_cut(e) for e in examples[:MAX_EXAMPLES]),
            example_rows=tuple(int(i) for i in offending[:MAX_EXAMPLES]),
            message=message,
        )
        self.found.append((violation, mask))
        logger.debug("%s: %s", self.table, violation)

    def whole_table(
        self, column: str, rule: Rule, message: str, examples: Sequence[str] = ()
    ) -> None:
        self.add(
            column, rule, np.ones(self.rows, np.bool_), message, examples=examples, always=True
        )

    def examples_of(self, column: str | None, offending: npt.NDArray[np.intp]) -> list[str]:
        """Up to five distinct original values of ``column`` at the ``offending`` rows."""
        if column is None or column not in self.raw.column_names:
            return []
        taken = self.raw.column(column).take(pa.array(offending[:_EXAMPLE_SCAN], pa.int64()))
        distinct = dict.fromkeys(v for v in _as_strings(taken).to_pylist() if v is not None)
        return list(distinct)[:MAX_EXAMPLES]

    def rejected(self) -> Mask:
        rejected = np.zeros(self.rows, np.bool_)
        for _, mask in self.found:
            rejected |= mask
        return rejected

    def reasons(self, quarantined: npt.NDArray[np.intp]) -> pa.Array:
        """``_reasons`` of the quarantined rows: every failed check, in the order checked."""
        position = np.full(self.rows, -1, np.int64)
        position[quarantined] = np.arange(len(quarantined))
        rows = [position[np.flatnonzero(mask)] for _, mask in self.found]
        codes = [np.full(len(r), k, np.int64) for k, r in enumerate(rows)]
        all_rows = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        all_codes = np.concatenate(codes) if codes else np.zeros(0, np.int64)
        # Stable: within a row, reasons stay in the order the checks ran.
        order = np.argsort(all_rows, kind="stable")
        per_row = np.bincount(all_rows, minlength=len(quarantined))
        offsets = np.zeros(len(quarantined) + 1, np.int32)
        np.cumsum(per_row, out=offsets[1:])
        names = pa.array([v.reason for v, _ in self.found], pa.string())
        values = names.take(pa.array(all_codes[order], pa.int64()))
        return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values)


def validate_table(
    raw: pa.Table,
    contract: TableContract,
    *,
    references: Mapping[ForeignKey, pa.Array | pa.ChunkedArray] | None = None,
) -> TableValidation:
    """Check every row of ``raw`` against ``contract``; split it into valid and quarantined rows.

    ``references`` gives, for foreign keys of the contract, the values the key must find (the
    valid target column); a foreign key not in it is not checked. See the module docstring for
    the rules.
    """
    _reject_duplicate_names(raw.column_names, f"table {contract.name}")
    findings = _Findings(contract.name, raw)
    present = set(raw.column_names)
    converted: dict[str, pa.ChunkedArray] = {}
    notes: list[str] = []

    for column in contract.columns:
        if column.name not in present:
            findings.whole_table(
                column.name,
                Rule.MISSING_COLUMN,
                f"declared column {column.name} ({column.dtype}) is missing; every row is "
                "quarantined",
            )
            converted[column.name] = pa.chunked_array([pa.nulls(raw.num_rows, column.dtype)])
            continue
        result = _convert_column(raw.column(column.name), column.dtype)
        converted[column.name] = result.values
        findings.add(
            column.name, Rule.TYPE, result.failed, f"values that are not {_describe(column.dtype)}"
        )
        if result.naive:
            notes.append(
                f"{column.name}: {result.naive} timestamps without a time zone were read as UTC"
            )
            logger.warning("%s.%s: %s", contract.name, column.name, notes[-1])
        has_value = _true(result.values.is_valid())
        if not column.nullable:
            findings.add(
                column.name, Rule.NULL, ~has_value & ~result.failed, "nulls in a required column"
            )
        if column.allowed is not None:
            allowed = pa.array(column.allowed, column.dtype)
            outside = has_value & ~_true(pc.is_in(result.values, value_set=allowed))
            findings.add(
                column.name,
                Rule.NOT_ALLOWED,
                outside,
                f"values not among {', '.join(column.allowed)}",
            )
        if column.min_value is not None:
            below = _true(pc.less(result.values, column.min_value))
            findings.add(column.name, Rule.BELOW_MIN, below, f"values below {column.min_value:g}")
        if column.max_value is not None:
            above = _true(pc.greater(result.values, column.max_value))
            findings.add(column.name, Rule.ABOVE_MAX, above, f"values above {column.max_value:g}")
        if column.unique:
            findings.add(
                column.name,
                Rule.DUPLICATE,
                _later_copies(result.values),
                "values already seen in an earlier row (every later copy is quarantined)",
            )

    extra = _check_extra_columns(raw, contract, findings)
    if contract.ordered_within is not None:
        _check_order(contract.ordered_within, present, converted, findings)
    for key in contract.foreign_keys:
        if references is not None and key in references and key.column in present:
            _check_reference(key, converted[key.column], references[key], findings)

    return _split(raw, contract, converted, extra, findings, tuple(notes))


def _describe(dtype: pa.DataType) -> str:
    if pa.types.is_integer(dtype):
        return "whole numbers"
    if pa.types.is_floating(dtype):
        return "finite numbers"
    if pa.types.is_boolean(dtype):
        return "booleans (true/false, 1/0, yes/no)"
    if pa.types.is_timestamp(dtype):
        return "timestamps (ISO 8601)"
    if pa.types.is_date(dtype):
        return "dates (YYYY-MM-DD)"
    return f"of type {dtype}"


def _later_copies(values: pa.ChunkedArray) -> Mask:
    codes = _codes(values)
    duplicate = np.zeros(len(codes), np.bool_)
    rows = np.flatnonzero(_true(values.is_valid()))
    if len(rows):
        _, first = np.unique(codes[rows], return_index=True)
        duplicate[rows] = True
        duplicate[rows[first]] = False
    return duplicate


def _check_extra_columns(
    raw: pa.Table, contract: TableContract, findings: _Findings
) -> dict[str, pa.ChunkedArray]:
    """Undeclared columns: kept where the contract allows them (``allow_extra_columns``: of one
    of :data:`EXTRA_COLUMN_TYPES`; ``allow_extra_numeric_columns``: numeric, or text that must be
    numbers), else a violation."""
    declared = set(contract.column_names)
    kept: dict[str, pa.ChunkedArray] = {}
    for name in raw.column_names:
        if name in declared:
            continue
        column = raw.column(name)
        feature = contract.allow_extra_columns and _is_extra_column_type(column.type)
        if feature or (contract.allow_extra_numeric_columns and _is_numeric(column.type)):
            kept[name] = column
        elif contract.allow_extra_numeric_columns and (
            _is_text(column.type) or pa.types.is_null(column.type)
        ):
            # Text (all a CSV has, whatever it means) is held to being numbers, row by row.
            result = _convert_column(column, pa.float64())
            findings.add(name, Rule.TYPE, result.failed, "values that are not finite numbers")
            kept[name] = result.values
        else:
            findings.whole_table(
                name,
                Rule.UNEXPECTED_COLUMN,
                f"column {name} ({column.type}) is not in the contract"
                + _extras_allowed(contract)
                + "; every row is quarantined",
                examples=findings.examples_of(name, np.flatnonzero(_true(column.is_valid()))),
            )
    return kept


def _is_extra_column_type(dtype: pa.DataType) -> bool:
    return any(dtype.equals(allowed) for allowed in EXTRA_COLUMN_TYPES)


def _extras_allowed(contract: TableContract) -> str:
    """What extra columns ``contract`` would have accepted, for the unexpected-column message."""
    allowed = []
    if contract.allow_extra_columns:
        # Arrow calls float64 "double"; the contracts say float64.
        names = ["float64" if t.equals(pa.float64()) else str(t) for t in EXTRA_COLUMN_TYPES]
        allowed.append(f"{', '.join(names[:-1])} or {names[-1]}")
    if contract.allow_extra_numeric_columns:
        allowed.append("numeric")
    return f" (only {' or '.join(allowed)} extra columns are allowed)" if allowed else ""


def _check_order(
    ordered_within: tuple[str, str],
    present: set[str],
    converted: Mapping[str, pa.ChunkedArray],
    findings: _Findings,
) -> None:
    group_name, time_name = ordered_within
    if group_name not in present or time_name not in present:
        return
    group, time = converted[group_name], converted[time_name]
    checked = np.flatnonzero(_true(group.is_valid()) & _true(time.is_valid()))
    if len(checked) == 0:
        return
    groups = _codes(group)[checked]
    times = pd.Series(_temporal_ints(time)[checked], dtype="Int64")
    # The latest time of the rows before each row in its group (NA for a group's first row).
    latest_before = times.groupby(groups).cummax().groupby(groups).shift(1)
    late = (times < latest_before).fillna(False).to_numpy(dtype=np.bool_)
    if not late.any():
        return
    mask = np.zeros(findings.rows, np.bool_)
    mask[checked[late]] = True
    first = np.flatnonzero(late)[:MAX_EXAMPLES]
    group_text = _as_strings(group.take(pa.array(checked[first], pa.int64()))).to_pylist()
    time_text = _temporal_strings(times.to_numpy(np.int64)[first], time.type)
    before_text = _temporal_strings(
        latest_before.to_numpy(dtype=np.int64, na_value=0)[first], time.type
    )
    examples = [
        f"{group_name}={g}: {t} after {b}"
        for g, t, b in zip(group_text, time_text, before_text, strict=True)
    ]
    findings.add(
        time_name,
        Rule.OUT_OF_ORDER,
        mask,
        f"{time_name} earlier than a previous row of the same {group_name}",
        examples=examples,
    )


def _check_reference(
    key: ForeignKey,
    values: pa.ChunkedArray,
    known: pa.Array | pa.ChunkedArray,
    findings: _Findings,
) -> None:
    if isinstance(known, pa.ChunkedArray):
        known = known.combine_chunks()
    try:
        known = pc.cast(known, values.type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        known = pa.array([], values.type)
    unknown = _true(values.is_valid()) & ~_true(pc.is_in(values, value_set=known))
    findings.add(
        key.column,
        Rule.UNKNOWN_REFERENCE,
        unknown,
        f"values not found in {key.table}.{key.target}",
    )


def _split(
    raw: pa.Table,
    contract: TableContract,
    converted: Mapping[str, pa.ChunkedArray],
    extra: Mapping[str, pa.ChunkedArray],
    findings: _Findings,
    notes: tuple[str, ...],
) -> TableValidation:
    rejected = findings.rejected()
    schema = contract.schema()
    for name, column in extra.items():
        schema = schema.append(pa.field(name, column.type))
    arrays = [converted[name] for name in contract.column_names] + list(extra.values())
    valid = pa.Table.from_arrays(arrays, schema=schema).filter(pa.array(~rejected))

    quarantined_rows = np.flatnonzero(rejected)
    take = pa.array(quarantined_rows, pa.int64())
    quarantined = pa.table(
        {
            **{name: _as_strings(raw.column(name).take(take)) for name in raw.column_names},
            ROW_NUMBER_COLUMN: take,
            REASONS_COLUMN: findings.reasons(quarantined_rows),
        }
    )
    result = TableValidation(
        table=contract.name,
        rows_in=int(raw.num_rows),
        valid=valid,
        quarantined=quarantined,
        violations=tuple(v for v, _ in findings.found),
        notes=notes,
    )
    logger.info(
        "%s: %d rows in, %d valid, %d quarantined, %d violations",
        contract.name,
        result.rows_in,
        result.rows_valid,
        result.rows_quarantined,
        len(result.violations),
    )
    return result


# -------------------------------------------------------------------------------------- data sets


def validate_dataset(directory: Path, tables: Iterable[str] | None = None) -> DatasetValidation:
    """Validate the tables of a data-set directory, then their foreign keys.

    With ``tables``, exactly those are expected. Without, every table with a contract that is
    found is validated, and if any marketplace table is there, all of ``MARKETPLACE_TABLES`` are
    expected. An expected table that is absent is a ``missing_table`` violation. Tables are
    validated targets first, so a foreign key is checked against the valid rows of its target;
    a foreign key whose target table is not validated is skipped, with a note.
    """
    directory = Path(directory)
    if not directory.exists():
        raise UserError(f"{directory} does not exist")
    if not directory.is_dir():
        raise UserError(f"{directory} is not a directory (a data set is a directory of tables)")
    if tables is not None:
        expected = tuple(dict.fromkeys(tables))
        unknown = [name for name in expected if name not in CONTRACTS]
        if unknown:
            raise UserError(
                f"no contract for table(s) {', '.join(unknown)}; tables: {', '.join(CONTRACTS)}"
            )
        candidates = expected
    else:
        candidates = tuple(CONTRACTS)
    found = {name: path for name in candidates if (path := find_table(directory, name))}
    if tables is None:
        expected = MARKETPLACE_TABLES if any(n in found for n in MARKETPLACE_TABLES) else ()
        if not found:
            raise UserError(
                f"no table found in {directory}: expected files such as customers.parquet, "
                f"events/ or payments.csv (tables: {', '.join(CONTRACTS)})"
            )
    missing = tuple(name for name in expected if name not in found)

    known_keys: dict[tuple[str, str], pa.Array] = {}
    targets = {(k.table, k.target) for n in found for k in CONTRACTS[n].foreign_keys}
    results: dict[str, TableValidation] = {}
    for name in _targets_first(list(found)):
        contract = CONTRACTS[name]
        references: dict[ForeignKey, pa.Array] = {}
        notes: list[str] = []
        for key in contract.foreign_keys:
            if (key.table, key.target) in known_keys:
                references[key] = known_keys[(key.table, key.target)]
            else:
                notes.append(
                    f"{key.column} -> {key.table}.{key.target} not checked: "
                    f"{key.table} was not validated with it"
                )
        result = validate_table(read_table(found[name], contract), contract, references=references)
        results[name] = replace(result, source=found[name], notes=result.notes + tuple(notes))
        for table, column in targets:
            if table == name:
                known_keys[(table, column)] = pc.unique(result.valid.column(column))

    for name in missing:
        logger.warning("table %s is missing from %s", name, directory)
    return DatasetValidation(
        directory=directory,
        tables=tuple(results[name] for name in found),
        missing_tables=missing,
    )


def _targets_first(names: list[str]) -> list[str]:
    """``names`` ordered so that every table comes after the tables its foreign keys point to
    (Kahn's algorithm; the given order breaks ties and any cycle)."""
    remaining = list(names)
    ordered: list[str] = []
    while remaining:
        ready = next(
            (
                name
                for name in remaining
                if all(
                    k.table not in remaining or k.table == name
                    for k in CONTRACTS[name].foreign_keys
                )
            ),
            remaining[0],
        )
        ordered.append(ready)
        remaining.remove(ready)
    return ordered


# -------------------------------------------------------------------------------------- reporting


def write_outputs(result: DatasetValidation, out_dir: Path) -> Path:
    """Write ``valid/<table>.parquet``, ``quarantine/<table>.parquet`` and ``report.json``
    under ``out_dir``; returns the path of ``report.json``."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir} exists and is not a directory")
    try:
        for kind in ("valid", "quarantine"):
            (out_dir / kind).mkdir(parents=True, exist_ok=True)
        for table in result.tables:
            pq.write_table(table.valid, out_dir / "valid" / f"{table.table}.parquet")
            pq.write_table(table.quarantined, out_dir / "quarantine" / f"{table.table}.parquet")
        report = out_dir / "report.json"
        report.write_text(
            json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    except OSError as exc:
        raise UserError(f"cannot write the validation outputs to {out_dir}: {exc}") from exc
    logger.info("wrote %s", report)
    return report


def render_report(result: DatasetValidation) -> str:
    """A plain-text report: one line per violation, per-table counts, notes and a totals line."""
    lines = [f"Validation of {result.directory}: {'OK' if result.ok else 'FAILED'}", ""]
    violations = result.violations
    if violations:
        header = ("table", "column", "rule", "rows", "examples")
        rows = [
            (
                v.table,
                v.column or "-",
                str(v.rule),
                f"{v.rows:,}",
                ", ".join(repr(e) for e in v.examples) or v.message,
            )
            for v in violations
        ]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
        for row in [header, *rows]:
            cells = [row[i].rjust(w) if i == 3 else row[i].ljust(w) for i, w in enumerate(widths)]
            lines.append("  ".join([*cells, row[4]]).rstrip())
        lines.append("")
    else:
        lines.extend(["No violations.", ""])
    lines.append("Tables:")
    name_width = max((len(t.table) for t in result.tables), default=0)
    for table in result.tables:
        lines.append(
            f"  {table.table.ljust(name_width)}  {table.rows_in:,} rows in, "
            f"{table.rows_valid:,} valid, {table.rows_quarantined:,} quarantined"
        )
    for name in result.missing_tables:
        lines.append(f"  {name.ljust(name_width)}  missing")
    notes = [f"  {t.table}: {note}" for t in result.tables for note in t.notes]
    if notes:
        lines.extend(["", "Notes:", *notes])
    lines.extend(
        [
            "",
            f"Total: {len(result.tables)} tables validated, {len(result.missing_tables)} missing; "
            f"{result.rows_in:,} rows in, {result.rows_valid:,} valid, "
            f"{result.rows_quarantined:,} quarantined; {len(violations)} violations",
        ]
    )
    return "\n".join(lines)


def _cut(text: str) -> str:
    return text if len(text) <= MAX_EXAMPLE_CHARS else text[: MAX_EXAMPLE_CHARS - 1] + "…"
