"""Importers that map public data sets, and a user's own labelled table, onto the model-facing
table contracts.

``getit-ml data import FORMAT PATH --out DIR`` runs one of these, so that the same pipelines that
train on the synthetic marketplace also train (and are benchmarked) on real, published data, and
every binary family can be evaluated on a table nobody has seen (``tabular``):

============  ==========================================  =====================
format        PATH                                        table
============  ==========================================  =====================
movielens     folder with ``ratings.csv``                 ``interactions``
creditcard    ``creditcard.parquet`` or its folder        ``card_transactions``
diginetica    folder with ``all_train_seq.parquet`` and   ``session_sequences``
              ``test.parquet``
walmart       ``walmart_weekly_sales.csv`` or its folder  ``demand_series``
cdnow         ``CDNOW_master.txt`` or its folder          ``order_history``
tabular       a user's own ``.csv`` or ``.parquet`` file  ``labelled_examples``
              (or a folder holding exactly one); options
              ``--label``, ``--positive``, ``--id``,
              ``--time``
interactions  a user's own ``.csv`` or ``.parquet`` file  ``interactions``
              of user, item [, timestamp, rating, event]
              (or a folder holding exactly one); options
              ``--user``, ``--item``, ``--timestamp``,
              ``--rating``, ``--event``
============  ==========================================  =====================

Only ``tabular`` (:data:`TABULAR_OPTIONS`) and ``interactions`` (:data:`INTERACTIONS_OPTIONS`)
take options; giving one to another format, or leaving out an option a format requires, is a
:class:`~getit_ml.errors.UserError`. The ``interactions`` importer lives in
:mod:`getit_ml.data.interactions_import` (its docstring has its rules).

Every importer returns an :class:`ImportResult`: the mapped table, whose schema is exactly the
contract's (plus, where the contract allows them, extra float64 columns such as V1..V28, or the
float64/int64/bool/string features of a tabular import), and the source rows that could not be
mapped, each with the first reason it failed. No row is dropped silently:
``table.num_rows + rejected.num_rows == rows_read`` always holds. A wrong path, a wrong file or
wrong columns is the user's mistake and raises :class:`~getit_ml.errors.UserError`; a bad value in
one row only rejects that row.

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
* tabular (any labelled table, so every binary family can be evaluated on data nobody has seen):

  - label: ``--label`` or, without it, the first column whose name is (in any case) one of
    :data:`TABULAR_LABEL_NAMES`. Without ``--positive``, the words of :data:`LABEL_TRUE_WORDS`
    and :data:`LABEL_FALSE_WORDS` (any case) and the numbers 1 and 0 are recognised; a column of
    exactly two distinct values that are not both recognised is an error asking for
    ``--positive``; with more values, a row whose value is not recognised is rejected. With
    ``--positive`` (repeatable; compared without case, and as numbers where both are numbers),
    those values are True and every other value is False. A missing label rejects the row.
  - example_id: the ``--id`` column as text (a missing or duplicate id rejects the row: the
    first valid copy is kept), else the 0-based source row number as text.
  - example_ts: the ``--time`` column (ISO 8601 text, a Parquet timestamp or date; times without
    a zone are UTC), else null. A missing or unparseable time rejects the row.
  - features: every other column, in source order. Numeric columns stay numeric (int64 or
    float64); booleans stay bool. A text column (all a CSV has) becomes int64 when every value is
    a whole number, float64 when every non-missing value is a number (missing: blank or one of
    ``na``, ``n/a``, ``nan``, ``null``, ``none``, which become null: IBM Telco's blank
    ``TotalCharges``), bool when every non-missing value is ``true``/``false``, and stays string
    otherwise, blank strings becoming null. Any other Parquet type (dates, lists...) becomes
    text. Column names must be unique and must not be example_id, example_ts or label.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from getit_ml.data.contracts import CONTRACTS, EXTRA_COLUMN_TYPES, TableContract
from getit_ml.data.contracts import TIMESTAMP as TIMESTAMP_TYPE
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
    #: Format-specific facts recorded in ``import.json`` besides the counts (JSON values).
    details: Mapping[str, Any] = field(default_factory=dict)
    #: Further Parquet files written beside the table, by file name (e.g. an id mapping);
    #: ``None`` removes a stale file of that name left by an earlier import.
    sidecars: Mapping[str, pa.Table | None] = field(default_factory=dict)

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
        reserved = (f"{self.table_name}.parquet", SUMMARY_FILE)
        for name in self.sidecars:
            if Path(name).name != name or not name.endswith(".parquet") or name in reserved:
                raise ValueError(f"{self.table_name}: bad sidecar file name {name!r}")

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


#: An option's value as given: one text, several (a repeatable option), or None (not given).
OptionValue = str | Sequence[str] | None
#: Options after checking: each given option's values, in the order given.
ImportOptions = Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class ImportOption:
    """An option a format takes; ``flag`` is how ``getit-ml data import`` spells it."""

    name: str
    flag: str
    help: str
    required: bool = False
    repeatable: bool = False

    def describe(self) -> str:
        return f"{self.name} ({self.flag})"


@dataclass(frozen=True)
class Importer:
    """Maps one format onto one contract table.

    ``expects`` describes what PATH must be and is quoted in every error message. ``read`` gets
    the checked options (only those in ``options``, each as a tuple of its values).
    """

    format: str
    table_name: str
    expects: str
    read: Callable[[Path, ImportOptions], ImportResult]
    options: tuple[ImportOption, ...] = ()

    def check_options(
        self, options: Mapping[str, OptionValue] | None
    ) -> dict[str, tuple[str, ...]]:
        """The given options as tuples of values; a UserError for one this format does not take,
        a repeated one that is not repeatable, an empty value or a missing required one."""
        known = {option.name: option for option in self.options}
        checked: dict[str, tuple[str, ...]] = {}
        for name, value in (options or {}).items():
            values = (value,) if isinstance(value, str) else tuple(value or ())
            if not values:
                continue  # not given
            option = known.get(name)
            if option is None:
                raise UserError(self._refusal(name))
            if len(values) > 1 and not option.repeatable:
                raise UserError(
                    f"{self.format}: {option.describe()} takes one value, got {len(values)}: "
                    f"{', '.join(map(repr, values))}"
                )
            if any(not isinstance(v, str) or not v.strip() for v in values):
                raise UserError(f"{self.format}: {option.describe()} needs a non-empty value")
            checked[name] = tuple(v.strip() for v in values)
        missing = [o.describe() for o in self.options if o.required and o.name not in checked]
        if missing:
            raise UserError(f"{self.format}: missing required option(s) {', '.join(missing)}")
        return checked

    def _refusal(self, name: str) -> str:
        takers = sorted(
            fmt
            for fmt, importer in IMPORTERS.items()
            if any(option.name == name for option in importer.options)
        )
        flag = next((o.flag for i in IMPORTERS.values() for o in i.options if o.name == name), None)
        spelled = f"{name} ({flag})" if flag else repr(name)
        taken = (
            f"it takes {', '.join(o.describe() for o in self.options)}"
            if self.options
            else "it takes no options"
        )
        where = f"; only {', '.join(takers)} does" if takers else ""
        return f"{self.format}: there is no option {spelled} for this format ({taken}){where}"

    def __call__(
        self, path: Path, options: Mapping[str, OptionValue] | None = None
    ) -> ImportResult:
        result = self.read(path, self.check_options(options))
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


def import_dataset(
    format: str,
    path: Path,
    out: Path,
    options: Mapping[str, OptionValue] | None = None,
) -> ImportResult:
    """Import ``path`` in ``format`` and write it under ``out``.

    ``options`` are the format's options (see :attr:`Importer.options`; only ``tabular`` and
    ``interactions`` take any); an option the format does not take is a UserError. Writes
    ``<out>/<table>.parquet``, ``<out>/rejected/<table>.parquet`` when rows were rejected (a stale
    one from an earlier run is removed otherwise), the result's sidecars (an interactions import's
    id mappings) and ``<out>/import.json``, last, with the counts, the rejection reasons
    and the format's details (for tabular: the label mapping, id, time and feature types).
    """
    importer = get_importer(format)
    result = importer(path, options)
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
        for name, sidecar in result.sidecars.items():
            if sidecar is None:
                (out / name).unlink(missing_ok=True)
            else:
                _write_parquet(sidecar, out / name)
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
        clash = sorted(set(summary) & set(result.details))
        if clash:  # a bug in an importer
            raise ValueError(f"{format}: details {clash} would overwrite the summary's fields")
        summary.update(result.details)
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
    """Raise (a bug) unless ``schema`` is the contract's plus, where allowed, extra columns
    (numeric ones, or those of :data:`EXTRA_COLUMN_TYPES`)."""
    declared = contract.schema()
    head = pa.schema(list(schema)[: len(declared)])
    if not head.equals(declared):
        raise ValueError(f"{contract.name}: schema {head} is not the contract's {declared}")
    extras = list(schema)[len(declared) :]
    if extras and not (contract.allow_extra_numeric_columns or contract.allow_extra_columns):
        raise ValueError(f"{contract.name}: extra columns are not allowed: {extras}")
    for extra in extras:
        numeric = pa.types.is_integer(extra.type) or pa.types.is_floating(extra.type)
        if contract.allow_extra_columns and any(extra.type.equals(t) for t in EXTRA_COLUMN_TYPES):
            continue
        if not (contract.allow_extra_numeric_columns and numeric):
            raise ValueError(
                f"{contract.name}: extra column {extra.name} of type {extra.type} is not allowed"
            )


def _output_table(
    table_name: str,
    columns: Mapping[str, Any],
    extra_float_columns: Mapping[str, Any] | None = None,
    extra_columns: Mapping[str, pa.Array] | None = None,
) -> pa.Table:
    """Assemble columns into exactly the contract's schema, extras appended as nullable float64
    (``extra_float_columns``) or as nullable columns of their own type (``extra_columns``).

    A column is a NumPy array or a pyarrow array; either is converted (or cast) to the type the
    contract declares.
    """
    fields = list(CONTRACTS[table_name].schema())
    arrays = [_as_arrow(columns[f.name], f.type) for f in fields]
    for name, values in (extra_float_columns or {}).items():
        fields.append(pa.field(name, pa.float64(), nullable=True))
        arrays.append(_as_arrow(values, pa.float64()))
    for name, array in (extra_columns or {}).items():
        fields.append(pa.field(name, array.type, nullable=True))
        arrays.append(array)
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
# A user's own labelled table (CSV or Parquet) → labelled_examples

#: Column names (compared without case) taken as the label when ``--label`` is not given; the
#: first column of the source with one of these names is the label.
TABULAR_LABEL_NAMES: Final = (
    "churn",
    "churned",
    "exited",
    "label",
    "target",
    "y",
    "class",
    "is_fraud",
    "fraud",
)
#: Label values (compared without case, after trimming) that mean True without ``--positive``.
LABEL_TRUE_WORDS: Final = (
    "yes",
    "y",
    "true",
    "t",
    "1",
    "churned",
    "churn",
    "exited",
    "fraud",
    "fraudulent",
    "positive",
    "pos",
)
#: Label values that mean False without ``--positive``.
LABEL_FALSE_WORDS: Final = (
    "no",
    "n",
    "false",
    "f",
    "0",
    "stayed",
    "retained",
    "not churned",
    "genuine",
    "legit",
    "legitimate",
    "negative",
    "neg",
)
TABULAR_OPTIONS: Final = (
    ImportOption(
        "label",
        "--label",
        "the label column (default: the first column named one of "
        f"{', '.join(TABULAR_LABEL_NAMES)}, in any case)",
    ),
    ImportOption(
        "positive",
        "--positive",
        "a value of the label column that means True (repeatable; default: yes/true/1/... are "
        "True, no/false/0/... False)",
        repeatable=True,
    ),
    ImportOption("id_column", "--id", "the id column (default: the 0-based row number)"),
    ImportOption("time_column", "--time", "the time column (ISO 8601; default: none)"),
)
_TABULAR_EXPECTS: Final = (
    "a .csv or .parquet file with a header and a label column (or a folder holding exactly one)"
)
_TABULAR_SUFFIXES: Final = (".csv", ".parquet")
#: The columns the import writes itself, and those its rejected table adds to the source's.
_TABULAR_OUTPUT_COLUMNS: Final = ("example_id", "example_ts", "label")
_TABULAR_RESERVED: Final = (*_TABULAR_OUTPUT_COLUMNS, SOURCE_ROW_COLUMN, REASON_COLUMN)
#: Text that means "no value" in a column that turns out numeric, boolean, a label or a time.
_MISSING_MARKERS: Final = ("", "na", "n/a", "nan", "null", "none")
_BOOLEAN_WORDS: Final = ("true", "false")
_WHOLE_NUMBER: Final = r"[+-]?[0-9]{1,18}"
#: Most distinct label values listed per side in ``import.json`` (most frequent first).
MAX_LISTED_LABEL_VALUES: Final = 100
#: Names of the feature types in ``import.json``.
_TYPE_NAMES: Final = {"double": "float64", "int64": "int64", "bool": "bool", "string": "string"}


def import_tabular(
    path: Path,
    *,
    label: str | None = None,
    positive: Sequence[str] = (),
    id_column: str | None = None,
    time_column: str | None = None,
) -> ImportResult:
    """A user's own labelled CSV or Parquet table → ``labelled_examples`` (see the module
    docstring for the rules); ``details`` holds what ``import.json`` records about the mapping."""
    fmt, expects = "tabular", _TABULAR_EXPECTS
    source_path = _locate_tabular_file(fmt, expects, path)
    source = (
        _read_tabular_csv(fmt, expects, source_path)
        if source_path.suffix.lower() == ".csv"
        else _read_tabular_parquet(fmt, expects, source_path)
    )
    names = list(source.column_names)
    where = f"{fmt}: {source_path.name}"
    _check_tabular_names(where, names)

    label_name = _pick_column(where, names, label, "--label") if label else None
    if label_name is None:
        label_name = next((n for n in names if n.lower() in TABULAR_LABEL_NAMES), None)
        if label_name is None:
            raise UserError(
                f"{where} has no label column: none of its columns {', '.join(names)} is named "
                f"one of {', '.join(TABULAR_LABEL_NAMES)}; name it with --label COLUMN"
            )
        logger.info("%s: the label is column %s (found by its name)", where, label_name)
    id_name = _pick_column(where, names, id_column, "--id") if id_column else None
    time_name = _pick_column(where, names, time_column, "--time") if time_column else None
    roles = [(flag, n) for flag, n in (("--id", id_name), ("--time", time_name)) if n is not None]
    for flag, name in roles:
        if name == label_name:
            raise UserError(f"{where}: {flag} {name} is the label column; pick another column")
    if id_name is not None and id_name == time_name:
        raise UserError(f"{where}: --id and --time are the same column {id_name}; pick two")
    features = [n for n in names if n not in {label_name, id_name, time_name}]
    clashing = [n for n in features if n in _TABULAR_OUTPUT_COLUMNS]
    if clashing:
        raise UserError(
            f"{where}: column(s) {', '.join(clashing)} would collide with the columns the import "
            f"writes ({', '.join(_TABULAR_OUTPUT_COLUMNS)}); rename them in the source"
        )

    n_rows = source.num_rows
    checks = _Rejections(n_rows)
    mapping = _map_label(where, label_name, _column(source, label_name), positive)
    checks.flag(mapping.missing, f"{label_name} (the label) is missing")
    checks.flag(
        mapping.unrecognised,
        f"{label_name} (the label) is not a recognised true/false value (say which values are "
        "true with --positive)",
    )
    if id_name is not None:
        ids, id_missing = _id_text(where, id_name, _column(source, id_name))
        checks.flag(id_missing, f"{id_name} (the id) is missing")
    else:
        ids = pa.array(np.arange(n_rows).astype(str).astype(object), pa.string())
    naive = 0
    if time_name is not None:
        times, time_missing, time_bad, naive = _time_values(where, time_name, source)
        checks.flag(time_missing, f"{time_name} (the time) is missing")
        checks.flag(time_bad, f"{time_name} (the time) is not an ISO 8601 timestamp")
    else:
        times = pa.nulls(n_rows, TIMESTAMP_TYPE)
    if id_name is not None:
        # Only among rows that pass every other check, so a bad row never shadows a good one.
        duplicate = np.zeros(n_rows, dtype=np.bool_)
        kept_ids = pd.Series(ids.filter(pa.array(checks.ok)).to_pylist(), dtype=object)
        duplicate[checks.ok] = kept_ids.duplicated().to_numpy(dtype=np.bool_)
        checks.flag(duplicate, f"duplicate {id_name} (the id)")

    typed = {name: _feature_column(where, name, _column(source, name)) for name in features}
    keep = pa.array(checks.ok)
    table = _output_table(
        "labelled_examples",
        {
            "example_id": ids.filter(keep),
            "example_ts": times.filter(keep),
            "label": mapping.values[checks.ok],
        },
        extra_columns={name: array.filter(keep) for name, array in typed.items()},
    )
    positives = int(np.count_nonzero(mapping.values[checks.ok]))
    details: dict[str, Any] = {
        "source_file": source_path.name,
        "label_column": label_name,
        "label_auto_detected": label is None,
        "label_true_values": mapping.true_values,
        "label_false_values": mapping.false_values,
        "rows_positive": positives,
        "rows_negative": table.num_rows - positives,
        "id_column": id_name,
        "time_column": time_name,
        # Times read as UTC because they had no zone (null without a time column).
        "time_values_without_zone": naive if time_name is not None else None,
        "feature_types": {name: _TYPE_NAMES[str(a.type)] for name, a in typed.items()},
    }
    if naive:
        logger.warning("%s: %d times of %s had no time zone; read as UTC", where, naive, time_name)
    if table.num_rows and positives in (0, table.num_rows):
        logger.warning(
            "%s: every imported row has label %s: a model cannot be evaluated on one class",
            where,
            positives > 0,
        )
    return ImportResult("labelled_examples", table, checks.table(source), n_rows, details)


def _read_tabular(path: Path, options: ImportOptions) -> ImportResult:
    def one(name: str) -> str | None:
        values = options.get(name, ())
        return values[0] if values else None

    return import_tabular(
        path,
        label=one("label"),
        positive=options.get("positive", ()),
        id_column=one("id_column"),
        time_column=one("time_column"),
    )


# A user's own interactions → interactions. The importer is getit_ml.data.interactions_import,
# which builds on this module's machinery: it is imported when it runs, so that neither module
# needs the other to be loaded first.
INTERACTIONS_OPTIONS: Final = (
    ImportOption("user_column", "--user", "the user column (default: found by its name)"),
    ImportOption("item_column", "--item", "the item column (default: found by its name)"),
    ImportOption(
        "timestamp_column",
        "--timestamp",
        "the time column: unix s/ms/µs/ns, yyyymmdd or ISO 8601 (default: found by its name)",
    ),
    ImportOption("rating_column", "--rating", "the rating column (default: found by its name)"),
    ImportOption("event_column", "--event", "the event-type column (default: found by its name)"),
)
INTERACTIONS_EXPECTS: Final = (
    "a .csv or .parquet file with a header, a user column and an item column (or a folder "
    "holding exactly one)"
)


def _read_interactions(path: Path, options: ImportOptions) -> ImportResult:
    from getit_ml.data.interactions_import import read_interactions

    return read_interactions(path, options)


def _path_only(
    read: Callable[[Path], ImportResult],
) -> Callable[[Path, ImportOptions], ImportResult]:
    """An importer that takes no options, as :attr:`Importer.read`."""

    def read_without_options(path: Path, options: ImportOptions) -> ImportResult:
        return read(path)

    return read_without_options


def _locate_tabular_file(fmt: str, expects: str, path: Path) -> Path:
    if not path.exists():
        raise UserError(f"{fmt}: expected {expects} in {path}; it does not exist")
    if path.is_dir():
        found = sorted(
            candidate
            for candidate in path.iterdir()
            if candidate.is_file()
            and candidate.suffix.lower() in _TABULAR_SUFFIXES
            and not candidate.name.startswith((".", "_"))
        )
        if not found:
            raise UserError(
                f"{fmt}: expected {expects} in {path}; there is no .csv or .parquet file"
            )
        if len(found) > 1:
            raise UserError(
                f"{fmt}: expected {expects} in {path}; it holds {len(found)} "
                f"({', '.join(p.name for p in found)}): give the file itself"
            )
        return found[0]
    if path.suffix.lower() not in _TABULAR_SUFFIXES:
        raise UserError(
            f"{fmt}: expected {expects} in {path.parent}; {path.name} is neither .csv nor .parquet"
        )
    return path


def _read_tabular_csv(fmt: str, expects: str, path: Path) -> pa.Table:
    """Every column as text ("" where empty); the header is read first, so that duplicate names
    are an error instead of being renamed ``name.1`` by pandas."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            header = next(csv.reader(handle), None)
    except (UnicodeDecodeError, csv.Error, OSError) as error:
        raise UserError(
            f"{fmt}: expected {expects} in {path.parent}; cannot read {path}: {error} (a CSV "
            "file must be UTF-8)"
        ) from error
    if not header:
        raise UserError(f"{fmt}: expected {expects} in {path.parent}; {path} is empty")
    _check_tabular_names(f"{fmt}: {path.name}", [name.strip() for name in header])
    return _text_table(_read_csv_as_text(fmt, expects, path, ()))


def _read_tabular_parquet(fmt: str, expects: str, path: Path) -> pa.Table:
    try:
        # ParquetFile reads just this file: no partition columns are guessed from its path.
        return pq.ParquetFile(path).read()
    except (pa.ArrowException, OSError) as error:
        raise UserError(
            f"{fmt}: expected {expects} in {path.parent}; cannot read {path}: {error}"
        ) from error


def _check_tabular_names(where: str, names: Sequence[str]) -> None:
    blank = [str(position + 1) for position, name in enumerate(names) if not name.strip()]
    if blank:
        raise UserError(
            f"{where}: column(s) {', '.join(blank)} (counting from 1) have no name (an index "
            "written by pandas' to_csv? write it with index=False, or name the column)"
        )
    duplicated = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicated:
        raise UserError(f"{where} has duplicate column names: {', '.join(duplicated)}")
    reserved = [name for name in names if name in (SOURCE_ROW_COLUMN, REASON_COLUMN)]
    if reserved:
        raise UserError(
            f"{where}: column(s) {', '.join(reserved)} are reserved for the rejected rows; "
            "rename them in the source"
        )


def _pick_column(where: str, names: Sequence[str], wanted: str, flag: str) -> str:
    if wanted in names:
        return wanted
    near = [name for name in names if name.lower() == wanted.lower()]
    hint = f" (did you mean {near[0]}?)" if len(near) == 1 else ""
    raise UserError(f"{where} has no column {wanted} for {flag}{hint}; columns: {', '.join(names)}")


def _column(table: pa.Table, name: str) -> pa.Array:
    """One column as a single array, dictionaries decoded."""
    array = table.column(name).combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    return array


def _mask(flags: pa.Array | pa.ChunkedArray) -> BoolArray:
    """A boolean Arrow array as a NumPy mask, null counting as False."""
    return np.asarray(pc.fill_null(flags, False).to_numpy(zero_copy_only=False), dtype=np.bool_)


def _is_text_type(dtype: pa.DataType) -> bool:
    return bool(
        pa.types.is_string(dtype)
        or pa.types.is_large_string(dtype)
        or getattr(pa.types, "is_string_view", lambda _: False)(dtype)
    )


def _is_number_type(dtype: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype)
    )


@dataclass(frozen=True)
class _Text:
    """A text column prepared for typing: trimmed, lower-cased, and where it holds no value."""

    original: pa.Array
    trimmed: pa.Array
    lower: pa.Array
    #: Null, blank or a missing-value marker (na, n/a, nan, null, none).
    missing: BoolArray
    #: Null or blank (what becomes null in a text column).
    blank: BoolArray


def _text(array: pa.Array) -> _Text:
    original = pc.cast(array, pa.string()) if not pa.types.is_string(array.type) else array
    trimmed = pc.utf8_trim_whitespace(original)
    lower = pc.utf8_lower(trimmed)
    null = ~_mask(original.is_valid())
    return _Text(
        original=original,
        trimmed=trimmed,
        lower=lower,
        missing=null | _mask(pc.is_in(lower, value_set=pa.array(_MISSING_MARKERS))),
        blank=null | _mask(pc.equal(trimmed, "")),
    )


def _numbers(text: _Text) -> FloatArray:
    """The text as float64 (NaN where missing or not a finite number)."""
    trimmed = pd.Series(text.trimmed.to_pylist(), dtype=object).where(~text.missing, None)
    values = pd.to_numeric(trimmed, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return np.where(np.isfinite(values), values, np.nan)


def _feature_column(where: str, name: str, array: pa.Array) -> pa.Array:
    """A source column as a feature: int64, float64, bool or string (see the module docstring)."""
    dtype = array.type
    if pa.types.is_boolean(dtype):
        return array
    if pa.types.is_integer(dtype):
        try:
            return pc.cast(array, pa.int64())
        except pa.ArrowInvalid as error:
            raise UserError(
                f"{where}: column {name} holds integers beyond int64: {error}"
            ) from None
    if pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return pc.cast(array, pa.float64())
    if pa.types.is_null(dtype):
        return pa.nulls(len(array), pa.string())
    if not _is_text_type(dtype):
        logger.info("%s: column %s (%s) is kept as text", where, name, dtype)
        return _text_feature(_as_text(array))
    return _text_feature(array)


def _text_feature(array: pa.Array) -> pa.Array:
    text = _text(array)
    present = ~text.missing
    if not present.any():
        return pc.if_else(pa.array(text.blank), pa.scalar(None, pa.string()), text.original)
    lower_present = pc.filter(text.lower, pa.array(present))
    if _mask(pc.is_in(lower_present, value_set=pa.array(_BOOLEAN_WORDS))).all():
        is_true = pc.equal(text.lower, "true")
        return pc.if_else(pa.array(text.missing), pa.scalar(None, pa.bool_()), is_true)
    whole = _mask(pc.match_substring_regex(text.trimmed, f"^{_WHOLE_NUMBER}$"))
    if whole.all():
        values = pd.to_numeric(pd.Series(text.trimmed.to_pylist(), dtype=object))
        return pa.array(values.to_numpy(dtype=np.int64), pa.int64())
    numbers = _numbers(text)
    if np.isfinite(numbers[present]).all():
        return pa.array(numbers, pa.float64(), mask=text.missing)
    return pc.if_else(pa.array(text.blank), pa.scalar(None, pa.string()), text.original)


def _as_text(array: pa.Array) -> pa.Array:
    """Any column as text: a cast where Arrow has one, else each value's ``str``."""
    try:
        return pc.cast(array, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        text = [None if value is None else str(value) for value in array.to_pylist()]
        return pa.array(text, pa.string())


@dataclass(frozen=True)
class _LabelMapping:
    values: BoolArray
    missing: BoolArray
    unrecognised: BoolArray
    true_values: list[str]
    false_values: list[str]


def _map_label(where: str, name: str, array: pa.Array, positive: Sequence[str]) -> _LabelMapping:
    """The label as True/False, which rows have none and which hold an unrecognised value."""
    dtype = array.type
    if pa.types.is_boolean(dtype):
        missing = ~_mask(array.is_valid())
        shown = pa.array(np.where(_mask(array), "true", "false").astype(object), pa.string())
        keys = shown
        numbers = np.where(_mask(array), 1.0, 0.0)
    elif _is_number_type(dtype):
        numbers = pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False)
        numbers = np.where(np.isfinite(numbers), numbers, np.nan)
        missing = np.isnan(numbers)
        shown = _as_text(array)
        keys = shown
    elif _is_text_type(dtype):
        text = _text(array)
        missing = text.missing
        shown, keys = text.trimmed, text.lower
        numbers = _numbers(text)
    else:
        raise UserError(
            f"{where}: the label column {name} is {dtype}; expected text, numbers or booleans"
        )
    present = ~missing
    if not present.any():
        raise UserError(f"{where}: the label column {name} has no values")
    key_list = np.asarray(keys.to_pylist(), dtype=object)

    if positive:
        is_true = _positive_rows(where, name, dtype, (shown, keys, numbers), present, positive)
        is_false = present & ~is_true
    else:
        is_true = present & (np.isin(key_list, LABEL_TRUE_WORDS) | (numbers == 1.0))
        is_false = present & ~is_true & (np.isin(key_list, LABEL_FALSE_WORDS) | (numbers == 0.0))
        unknown = present & ~is_true & ~is_false
        if unknown.any():
            distinct = _distinct(keys, present, limit=3)
            values = ", ".join(_distinct(shown, present, limit=10))
            if len(distinct) == 2:
                raise UserError(
                    f"{where}: the label column {name} has two values ({values}) that are not "
                    "recognised as true/false; say which one means True with --positive VALUE"
                )
            if not (is_true | is_false).any():
                raise UserError(
                    f"{where}: no value of the label column {name} is recognised as true/false "
                    f"(values: {values}); say which values mean True with --positive VALUE "
                    "(repeatable)"
                )
            logger.warning(
                "%s: %d rows have a label %s that is not recognised; they are rejected",
                where,
                int(np.count_nonzero(unknown)),
                name,
            )
    return _LabelMapping(
        values=is_true,
        missing=missing,
        unrecognised=present & ~is_true & ~is_false,
        true_values=_distinct(shown, is_true, limit=MAX_LISTED_LABEL_VALUES),
        false_values=_distinct(shown, is_false, limit=MAX_LISTED_LABEL_VALUES),
    )


def _positive_rows(
    where: str,
    name: str,
    dtype: pa.DataType,
    label: tuple[pa.Array, pa.Array, FloatArray],
    present: BoolArray,
    positive: Sequence[str],
) -> BoolArray:
    """The rows whose label is one of the ``--positive`` values: the same text without case,
    or the same number (a number column takes numbers only, a boolean one true/false words).
    ``label`` is the column as shown (trimmed), lower-cased and as numbers."""
    shown, keys, numbers = label
    is_true = np.zeros(len(present), dtype=np.bool_)
    for value in positive:
        lowered = value.lower()
        number = _finite_number(value)
        if pa.types.is_boolean(dtype):
            if lowered not in (*LABEL_TRUE_WORDS, *LABEL_FALSE_WORDS):
                raise UserError(
                    f"{where}: the label column {name} holds booleans; --positive must be true "
                    f"or false (got {value})"
                )
            matched = numbers == (1.0 if lowered in LABEL_TRUE_WORDS else 0.0)
        elif _is_number_type(dtype) and number is None:
            raise UserError(
                f"{where}: the label column {name} holds numbers; --positive must be a number "
                f"(got {value})"
            )
        else:
            matched = _mask(pc.equal(keys, lowered))
            if number is not None:
                matched |= numbers == number
        matched &= present
        if not matched.any():
            logger.warning("%s: --positive %s matches no value of %s", where, value, name)
        is_true |= matched
    if not is_true.any():
        raise UserError(
            f"{where}: no value of the label column {name} is {' or '.join(positive)}; its "
            f"values are: {', '.join(_distinct(shown, present))}"
        )
    return is_true


def _finite_number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if np.isfinite(number) else None


def _distinct(values: pa.Array, rows: BoolArray, limit: int = 10) -> list[str]:
    """Up to ``limit`` distinct values of ``rows``, most frequent first (ties: first seen)."""
    counts = Counter(str(v) for v in values.filter(pa.array(rows)).to_pylist())
    return [value for value, _ in counts.most_common(limit)]


def _id_text(where: str, name: str, array: pa.Array) -> tuple[pa.Array, BoolArray]:
    """Ids as text (trimmed; whole floats without ".0") and where they are missing."""
    dtype = array.type
    if pa.types.is_floating(dtype):
        values = pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False)
        whole = np.isfinite(values) & (np.floor(values) == values) & (np.abs(values) < 2**53)
        if whole[np.isfinite(values)].all():
            ints = pa.array(np.where(whole, values, 0).astype(np.int64), mask=~whole)
            return _as_text(ints), ~whole
        missing = ~np.isfinite(values)
        return pc.if_else(pa.array(missing), pa.scalar(None, pa.string()), _as_text(array)), missing
    if pa.types.is_boolean(dtype):
        raise UserError(f"{where}: the id column {name} holds booleans; it cannot identify rows")
    text = _text(_as_text(array) if not _is_text_type(dtype) else array)
    return pc.if_else(pa.array(text.blank), pa.scalar(None, pa.string()), text.trimmed), text.blank


def _time_values(
    where: str, name: str, source: pa.Table
) -> tuple[pa.Array, BoolArray, BoolArray, int]:
    """The time column as UTC timestamps: values, missing, unparseable, and how many had no zone."""
    array = _column(source, name)
    dtype = array.type
    none = np.zeros(len(array), dtype=np.bool_)
    if pa.types.is_timestamp(dtype):
        missing = ~_mask(array.is_valid())
        naive = 0 if dtype.tz is not None else int(np.count_nonzero(~missing))
        if dtype.tz is None:
            array = pc.assume_timezone(array, "UTC")
        return pc.cast(array, TIMESTAMP_TYPE, safe=False), missing, none, naive
    if pa.types.is_date(dtype):
        missing = ~_mask(array.is_valid())
        midnight = pc.cast(pc.cast(array, pa.date32()), pa.timestamp("us"))
        return pc.cast(midnight, TIMESTAMP_TYPE), missing, none, int(np.count_nonzero(~missing))
    if not _is_text_type(dtype):
        raise UserError(
            f"{where}: the time column {name} is {dtype}; write times as ISO 8601 text "
            "(2024-01-31T10:00:00Z) or as a Parquet timestamp or date"
        )
    text = _text(array)
    trimmed = pd.Series(text.trimmed.to_pylist(), dtype=object).where(~text.missing, None)
    parsed = pd.to_datetime(trimmed, utc=True, errors="coerce", format="ISO8601")
    values = pc.cast(pa.Array.from_pandas(parsed), TIMESTAMP_TYPE, safe=False)
    bad = ~text.missing & ~_mask(values.is_valid())
    has_zone = _mask(pc.match_substring_regex(text.trimmed, _ZONE_SUFFIX))
    naive = int(np.count_nonzero(_mask(values.is_valid()) & ~has_zone))
    return values, text.missing, bad, naive


#: A time of day followed by a zone (``Z``, ``+06:00``, ``+0600``, ``+06``).
_ZONE_SUFFIX: Final = (
    r"[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?\s*([zZ]|[+-][0-9]{2}(:?[0-9]{2})?)$"
)


# ----------------------------------------------------------------------------------------------
# Registry

IMPORTERS: Final[dict[str, Importer]] = {
    importer.format: importer
    for importer in (
        Importer("movielens", "interactions", _MOVIELENS_EXPECTS, _path_only(import_movielens)),
        Importer(
            "creditcard", "card_transactions", _CREDITCARD_EXPECTS, _path_only(import_creditcard)
        ),
        Importer(
            "diginetica", "session_sequences", _DIGINETICA_EXPECTS, _path_only(import_diginetica)
        ),
        Importer("walmart", "demand_series", _WALMART_EXPECTS, _path_only(import_walmart)),
        Importer("cdnow", "order_history", _CDNOW_EXPECTS, _path_only(import_cdnow)),
        Importer("tabular", "labelled_examples", _TABULAR_EXPECTS, _read_tabular, TABULAR_OPTIONS),
        Importer(
            "interactions",
            "interactions",
            INTERACTIONS_EXPECTS,
            _read_interactions,
            INTERACTIONS_OPTIONS,
        ),
    )
}
