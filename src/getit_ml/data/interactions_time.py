"""The timestamp column of an interactions import: its format detected, its values as UTC times.

The rules (also in :mod:`getit_ml.data.interactions_import`): a Parquet timestamp or date is taken
as it is (no zone: UTC). Numbers (a numeric column, or text of which most values are numbers) are
unix time whose unit is read from the median magnitude of the column: below 1e11 seconds, below
1e14 milliseconds, below 1e17 microseconds, else nanoseconds; for any time from 1973 to 5138 the
units cannot be confused, and the median means one stray value cannot change the unit of the
column (it is rejected instead: past 9999, or not a number). A column of only 8-digit whole
numbers that are all dates from 1900 to 2100 is ``yyyymmdd`` (as unix seconds those would all fall
in 1970-1973). Other text is ISO 8601; no zone: UTC. Without a column every row gets
:data:`NO_TIMESTAMP`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from getit_ml.data.contracts import TIMESTAMP as TIMESTAMP_TYPE
from getit_ml.data.importers import (
    BoolArray,
    FloatArray,
    IntArray,
    _column,
    _is_number_type,
    _is_text_type,
    _mask,
    _text,
    _time_values,
)
from getit_ml.errors import UserError

#: interaction_ts of every row when the file has no timestamp column: the contract needs a time,
#: and the row order is not one (a file is often sorted by user or item).
NO_TIMESTAMP: Final = datetime(1970, 1, 1, tzinfo=UTC)

# Microseconds of 9999-12-31T23:59:59.999999Z: the latest time the contract's type holds.
_MAX_MICROS: Final = 253_402_300_799_999_999
_INT64_MAX_TEXT: Final = str(np.iinfo(np.int64).max)
_NUMBER: Final = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
# Median magnitude below which a unix time is in this unit, and the unit's microseconds.
_UNITS: Final = (
    (1e11, "unix_seconds", 1_000_000),
    (1e14, "unix_milliseconds", 1_000),
    (1e17, "unix_microseconds", 1),
    (float("inf"), "unix_nanoseconds", 0),  # 0: divide by 1000
)
_UNIT_WORDS: Final = {
    "unix_seconds": "seconds",
    "unix_milliseconds": "milliseconds",
    "unix_microseconds": "microseconds",
    "unix_nanoseconds": "nanoseconds",
}


@dataclass(frozen=True)
class InteractionTimes:
    """The timestamp column as UTC times (null where invalid) and why rows are invalid."""

    name: str | None
    values: pa.Array
    missing: BoolArray
    unparseable: BoolArray
    negative: BoolArray
    too_late: BoolArray
    #: One of ``unix_seconds``..., ``yyyymmdd``, ``iso8601``, ``parquet_timestamp``,
    #: ``parquet_date``; None without a timestamp column.
    format: str | None
    #: Times read as UTC because they had no zone.
    without_zone: int = 0

    @property
    def described(self) -> str:
        """The format in words, for reasons."""
        fmt = self.format or ""
        return f"unix {_UNIT_WORDS[fmt]}" if fmt in _UNIT_WORDS else fmt

    @property
    def expected(self) -> str:
        """The reason of a value that is not of the column's format."""
        if self.format == "iso8601":
            return "is not an ISO 8601 time (the column's format)"
        return f"is not a number (the column holds {self.described})"

    @classmethod
    def of(cls, where: str, name: str | None, source: pa.Table) -> InteractionTimes:
        n_rows = source.num_rows
        none = np.zeros(n_rows, dtype=np.bool_)
        if name is None:
            micros = int(NO_TIMESTAMP.timestamp()) * 1_000_000
            values = pa.array(np.full(n_rows, micros, dtype=np.int64), pa.int64())
            return cls(None, pc.cast(values, TIMESTAMP_TYPE), none, none, none, none, None)
        array = _column(source, name)
        dtype = array.type
        if pa.types.is_timestamp(dtype) or pa.types.is_date(dtype):
            values, missing, bad, naive = _time_values(where, name, source)
            kind = "parquet_timestamp" if pa.types.is_timestamp(dtype) else "parquet_date"
            return cls(name, values, missing, bad, none, none, kind, naive)
        if pa.types.is_boolean(dtype):
            raise UserError(f"{where}: the timestamp column {name} holds booleans, not times")
        if _is_number_type(dtype):
            numbers = pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False)
            unix = _Unix.from_numbers(array, numbers)
            return cls._unix(name, unix, np.isnan(numbers), np.isinf(numbers))
        if not _is_text_type(dtype):
            raise UserError(
                f"{where}: the timestamp column {name} is {dtype}; expected unix times, "
                "ISO 8601 text or a Parquet timestamp or date"
            )
        text = _text(array)
        present = ~text.missing
        numeric = _mask(pc.match_substring_regex(text.trimmed, _NUMBER)) & present
        if present.any() and np.count_nonzero(numeric) * 2 > np.count_nonzero(present):
            unix = _Unix.from_text(text.trimmed, numeric)
            return cls._unix(name, unix, text.missing, present & ~numeric)
        values, missing, bad, naive = _time_values(where, name, source)
        return cls(name, values, missing, bad, none, none, "iso8601", naive)

    @classmethod
    def _unix(
        cls, name: str, unix: _Unix, missing: BoolArray, unparseable: BoolArray
    ) -> InteractionTimes:
        """Unix times (or yyyymmdd) in the unit their median magnitude says."""
        valid = ~missing & ~unparseable
        negative = valid & unix.negative
        usable = valid & ~negative
        days = _yyyymmdd(unix, usable)
        if days is not None:
            micros = days.astype("datetime64[us]").astype(np.int64)
            values = pa.array(micros, pa.int64(), mask=~usable)
            never = np.zeros(len(valid), dtype=np.bool_)
            values = pc.cast(values, TIMESTAMP_TYPE)
            return cls(name, values, missing, unparseable, negative, never, "yyyymmdd")
        magnitude = float(np.median(unix.magnitude[usable])) if usable.any() else 0.0
        unit, factor = next((u, f) for limit, u, f in _UNITS if magnitude < limit)
        micros, too_late = unix.micros(factor)
        too_late &= usable
        written = usable & ~too_late
        values = pc.cast(pa.array(np.where(written, micros, 0), mask=~written), TIMESTAMP_TYPE)
        return cls(name, values, missing, unparseable, negative, too_late, unit)


@dataclass(frozen=True)
class _Unix:
    """Numeric times as whole numbers (exact, int64) where they are whole, floats elsewhere."""

    whole: IntArray
    is_whole: BoolArray
    fraction: FloatArray

    @classmethod
    def from_numbers(cls, array: pa.Array, numbers: FloatArray) -> _Unix:
        if pa.types.is_integer(array.type):
            whole = pc.cast(pc.fill_null(array, 0), pa.int64()).to_numpy(zero_copy_only=False)
            is_whole = np.isfinite(numbers)
            return cls(np.asarray(whole, dtype=np.int64), is_whole, numbers)
        # Whole floats below 2**53 are exact; the rest are converted as floats.
        is_whole = np.isfinite(numbers) & (np.floor(numbers) == numbers) & (np.abs(numbers) < 2**53)
        whole = np.where(is_whole, numbers, 0).astype(np.int64)
        return cls(whole, is_whole, numbers)

    @classmethod
    def from_text(cls, trimmed: pa.Array, numeric: BoolArray) -> _Unix:
        unsigned = pc.utf8_ltrim(trimmed, characters="+")
        short = _mask(pc.match_substring_regex(unsigned, r"^-?[0-9]{1,18}$"))
        # 19 digits fit in int64 up to its maximum (nanoseconds since 2001 have 19 digits).
        long = _mask(pc.match_substring_regex(unsigned, r"^[0-9]{19}$")) & _mask(
            pc.less_equal(unsigned, _INT64_MAX_TEXT)
        )
        is_whole = numeric & (short | long)
        filled = pc.if_else(pa.array(is_whole), unsigned, "0")
        whole = np.asarray(pc.cast(filled, pa.int64()).to_numpy(zero_copy_only=False), np.int64)
        texts = pd.Series(trimmed.to_pylist(), dtype=object).where(numeric & ~is_whole, None)
        fraction = pd.to_numeric(texts, errors="coerce").to_numpy(dtype=np.float64)
        numbers = np.where(is_whole, whole.astype(np.float64), fraction)
        return cls(whole, is_whole, numbers)

    @property
    def negative(self) -> BoolArray:
        return np.where(self.is_whole, self.whole < 0, self.fraction < 0)

    @property
    def magnitude(self) -> FloatArray:
        return np.where(self.is_whole, self.whole.astype(np.float64), self.fraction)

    def micros(self, factor: int) -> tuple[IntArray, BoolArray]:
        """Microseconds since 1970 (0 where past 9999) and where the time is past 9999.

        ``factor`` is microseconds per unit, 0 for nanoseconds. Assumes no negative values."""
        with np.errstate(invalid="ignore", over="ignore"):
            if factor:
                limit = _MAX_MICROS // factor
                too_late = np.where(
                    self.is_whole, self.whole > limit, self.fraction * factor > _MAX_MICROS
                )
                whole = np.where(too_late | ~self.is_whole, 0, self.whole) * factor
                scaled = np.where(too_late | self.is_whole, 0.0, self.fraction * factor)
            else:
                # A whole int64 of nanoseconds ends in 2262; only a float can be too late.
                too_late = ~self.is_whole & (self.fraction / 1_000 > _MAX_MICROS)
                whole = np.where(self.is_whole, self.whole, 0) // 1_000
                scaled = np.where(self.is_whole, 0.0, self.fraction / 1_000)
            too_late |= ~self.is_whole & ~np.isfinite(self.fraction)
            fraction = np.round(np.nan_to_num(scaled, nan=0.0, posinf=0.0)).astype(np.int64)
        return np.where(self.is_whole, whole, fraction).astype(np.int64), too_late


def _yyyymmdd(unix: _Unix, usable: BoolArray) -> npt.NDArray[np.datetime64] | None:
    """The days when every usable value is an 8-digit yyyymmdd date from 1900 to 2100."""
    if not usable.any() or not unix.is_whole[usable].all():
        return None
    values = unix.whole[usable]
    if not ((values >= 19_000_101) & (values <= 21_001_231)).all():
        return None
    parsed = pd.to_datetime(pd.Series(values.astype(str)), format="%Y%m%d", errors="coerce")
    if parsed.isna().any():
        return None
    days = np.full(len(usable), np.datetime64("1970-01-01", "D"))
    days[usable] = parsed.to_numpy(dtype="datetime64[D]")
    return days
