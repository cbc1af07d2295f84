"""A user's own interactions (CSV or Parquet) → the ``interactions`` contract table.

``getit-ml data import interactions FILE --out DIR`` reads a ``.csv`` or ``.parquet`` file (or a
folder holding exactly one) with a user column, an item column and, optionally, a timestamp, a
rating and an event type, and writes ``DIR/interactions.parquet`` (customer_id, product_id,
interaction_ts, rating, event_type) for the recommenders. The rules:

* Columns: ``--user``, ``--item``, ``--timestamp``, ``--rating`` and ``--event`` name them.
  Without a flag, the column is found by its name, compared without case, spaces, ``_`` or
  ``-`` (``User ID`` is ``user_id``), among :data:`USER_NAMES`, :data:`ITEM_NAMES`,
  :data:`TIMESTAMP_NAMES`, :data:`RATING_NAMES` and :data:`EVENT_NAMES`. Two columns that could
  both fill a role are an error asking for the flag (guessing would be silent); a user or item
  column that cannot be found is an error; an optional one that is not there is simply absent.
  Every other column is ignored and listed in ``import.json``.
* Ids: a column whose every value (over the rows written) is a non-negative integer of up to 18
  digits written canonically (``17``, not ``017`` or ``+17``; a Parquet float such as ``17.0``
  counts) is kept as it is. Any other id column (``A17``, ``007``, ``-3``...) is mapped as text
  to dense integers 0..n-1 in sorted order of the text (``007`` and ``7`` stay two ids), and the
  mapping is written beside the table as ``user_ids.parquet`` / ``item_ids.parquet``
  (``original_id`` string → ``customer_id`` / ``product_id`` int64) so results can be mapped
  back; a stale mapping from an earlier import into the same folder is removed. A missing id
  rejects the row.
* Timestamps (:mod:`getit_ml.data.interactions_time`): one format per column, detected and
  stated in ``import.json`` (``timestamp_format``). A Parquet timestamp or date is taken as it
  is (no zone: UTC). Numbers (a numeric column, or text that is mostly numbers) are unix time
  whose unit is read from the median magnitude: below 1e11 seconds, below 1e14 milliseconds,
  below 1e17 microseconds, else nanoseconds (for any time from 1973 to 5138 the units cannot be
  confused); a column of only 8-digit whole numbers that are all dates from 1900 to 2100 is
  ``yyyymmdd``. Other text is ISO 8601 (``2024-01-31``, ``2024-01-31T10:00:00+06:00``; no zone:
  UTC). A missing time, one that is not of the column's format, a negative unix time or one
  past 9999 rejects the row. **Without a timestamp column** every row gets
  :data:`~getit_ml.data.interactions_time.NO_TIMESTAMP` (1970-01-01T00:00:00Z): the contract
  needs a time, and the row order is not one (a file is often sorted by user or item).
  ``import.json`` then has ``timestamp_column: null``, ``timestamp_format: null`` and
  ``timestamp_constant``, so a time-based split (leave-last-out, temporal) can refuse the table
  instead of splitting on a constant.
* Ratings: numbers ≥ 0 (the contract's rule; a CSV's text is parsed). Blank or ``na``, ``nan``,
  ``null``, ``none`` is no rating (null); a value that is not a number or is negative rejects
  the row. A rating event without a rating is rejected (there is nothing to learn from it).
* Event types: the contract's own (:data:`~getit_ml.data.reference.EVENT_TYPES` and
  ``rating``) and the common words of :data:`EVENT_WORDS` (``click`` → view, ``cart`` →
  add_to_cart, ``buy``/``order``/``transaction`` → purchase...), compared like column names.
  A return or refund is negative feedback the contract has no type for, so it is rejected with
  that reason rather than counted as a purchase; any other value is rejected as unknown, and the
  values seen are listed in ``import.json`` (``event_values``). A missing event type rejects the
  row. Without an event column the event type is ``rating`` when a rating column is given, else
  ``view`` (:data:`DEFAULT_IMPLICIT_EVENT`: only "the user interacted with the item" is known).
* Duplicate rows (the same user, item, time, event and rating) are kept: they are repeated
  feedback (the interaction matrix sums them); ``import.json`` counts them (``duplicate_rows``).
* Rows keep the source's order. Every rejected row is in ``rejected/interactions.parquet`` with
  its source row and first reason, so ``rows_written + rows_rejected == rows_read``.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from getit_ml.data import reference
from getit_ml.data.importers import (
    INTERACTIONS_EXPECTS,
    BoolArray,
    FloatArray,
    ImportOptions,
    ImportResult,
    IntArray,
    _as_text,
    _check_tabular_names,
    _column,
    _id_text,
    _is_number_type,
    _is_text_type,
    _locate_tabular_file,
    _mask,
    _numbers,
    _output_table,
    _pick_column,
    _read_tabular_csv,
    _read_tabular_parquet,
    _Rejections,
    _text,
)
from getit_ml.data.interactions_time import NO_TIMESTAMP, InteractionTimes
from getit_ml.errors import UserError

logger = logging.getLogger(__name__)

FORMAT: Final = "interactions"
TABLE: Final = "interactions"

#: Names (compared as described in the module docstring) that identify each column by default.
USER_NAMES: Final = (
    "user_id", "user", "userid", "customer_id", "customer", "visitor_id", "reviewer_id",
    "member_id", "uid",
)  # fmt: skip
ITEM_NAMES: Final = (
    "item_id", "item", "itemid", "product_id", "product", "movie_id", "asin", "sku",
    "article_id", "iid",
)  # fmt: skip
TIMESTAMP_NAMES: Final = (
    "timestamp", "ts", "time", "datetime", "date", "event_time", "event_ts", "interaction_ts",
    "created_at", "unix_timestamp", "unix_review_time",
)  # fmt: skip
RATING_NAMES: Final = ("rating", "ratings", "score", "stars", "overall")
EVENT_NAMES: Final = (
    "event_type", "event", "action", "interaction_type", "behavior", "behaviour", "type",
)  # fmt: skip

#: The contract's event types.
CONTRACT_EVENT_TYPES: Final = (*reference.EVENT_TYPES, "rating")
#: Event words (compared like column names) and the contract type each one means.
EVENT_WORDS: Final[Mapping[str, str]] = {
    **{name: name for name in CONTRACT_EVENT_TYPES},
    "click": "view",
    "page_view": "view",
    "product_view": "view",
    "detail": "view",
    "cart": "add_to_cart",
    "add_to_basket": "add_to_cart",
    "basket": "add_to_cart",
    "remove_from_basket": "remove_from_cart",
    "buy": "purchase",
    "bought": "purchase",
    "purchased": "purchase",
    "order": "purchase",
    "transaction": "purchase",
    "rate": "rating",
    "rated": "rating",
}
#: Event words that mean negative feedback the contract has no type for: rejected, with a reason.
NEGATIVE_EVENT_WORDS: Final = ("return", "returned", "refund", "refunded")
#: The event type of every row of a file with neither an event nor a rating column.
DEFAULT_IMPLICIT_EVENT: Final = "view"

#: Files written beside ``interactions.parquet`` when ids were mapped.
USER_ID_MAP_FILE: Final = "user_ids.parquet"
ITEM_ID_MAP_FILE: Final = "item_ids.parquet"
ORIGINAL_ID_COLUMN: Final = "original_id"
#: Most distinct event values listed in ``import.json`` (most frequent first).
MAX_LISTED_EVENT_VALUES: Final = 50

_CANONICAL_ID: Final = r"^(0|[1-9][0-9]{0,17})$"

_ROLES: Final = (
    ("user", "--user", USER_NAMES, True),
    ("item", "--item", ITEM_NAMES, True),
    ("timestamp", "--timestamp", TIMESTAMP_NAMES, False),
    ("rating", "--rating", RATING_NAMES, False),
    ("event", "--event", EVENT_NAMES, False),
)


def _key(name: str) -> str:
    """A column name or an event word as compared: lower case, letters and digits only."""
    return re.sub(r"[^0-9a-z]", "", name.strip().lower())


_EVENT_KEYS: Final = {_key(word): kind for word, kind in EVENT_WORDS.items()}
_NEGATIVE_KEYS: Final = frozenset(_key(word) for word in NEGATIVE_EVENT_WORDS)


# ----------------------------------------------------------------------------------------------
# Public API


def import_interactions(
    path: Path,
    *,
    user_column: str | None = None,
    item_column: str | None = None,
    timestamp_column: str | None = None,
    rating_column: str | None = None,
    event_column: str | None = None,
) -> ImportResult:
    """A user's own interactions table → ``interactions`` (rules in the module docstring).

    ``details`` holds what ``import.json`` records (the columns used, the id mapping, the
    timestamp format, the event mapping, the duplicates); ``sidecars`` the id mappings.
    """
    source_path = _locate_tabular_file(FORMAT, INTERACTIONS_EXPECTS, path)
    is_csv = source_path.suffix.lower() == ".csv"
    source = (
        _read_tabular_csv(FORMAT, INTERACTIONS_EXPECTS, source_path)
        if is_csv
        else _read_tabular_parquet(FORMAT, INTERACTIONS_EXPECTS, source_path)
    )
    where = f"{FORMAT}: {source_path.name}"
    names = list(source.column_names)
    _check_tabular_names(where, names)
    given = {
        "user": user_column,
        "item": item_column,
        "timestamp": timestamp_column,
        "rating": rating_column,
        "event": event_column,
    }
    columns, detected = _pick_roles(where, names, given)
    if source.num_rows == 0:
        raise UserError(f"{where} has no data rows (only a header): there is nothing to import")

    n_rows = source.num_rows
    checks = _Rejections(n_rows)
    users = _Ids(where, columns["user"], _column(source, columns["user"]))
    items = _Ids(where, columns["item"], _column(source, columns["item"]))
    checks.flag(users.missing, f"{users.name} (the user) is missing")
    checks.flag(items.missing, f"{items.name} (the item) is missing")

    times = InteractionTimes.of(where, columns.get("timestamp"), source)
    label = f"{times.name} (the timestamp)"
    checks.flag(times.missing, f"{label} is missing")
    checks.flag(times.unparseable, f"{label} {times.expected}")
    checks.flag(times.negative, f"{label} is negative (before 1970)")
    checks.flag(times.too_late, f"{label} is after 9999-12-31 as {times.described}")

    events = _Events.of(where, columns.get("event"), source, rating=columns.get("rating"))
    checks.flag(events.missing, f"{events.name} (the event type) is missing")
    checks.flag(
        events.negative,
        f"{events.name} (the event type) is a return or refund: negative feedback, which the "
        "contract has no type for",
    )
    checks.flag(
        events.unknown,
        f"{events.name} (the event type) is not one of {', '.join(CONTRACT_EVENT_TYPES)} or a "
        "common word for one (click, cart, buy...)",
    )

    ratings = _Ratings.of(where, columns.get("rating"), source)
    checks.flag(ratings.bad, f"{ratings.name} (the rating) is not a number")
    checks.flag(ratings.values < 0, f"{ratings.name} (the rating) is negative")
    checks.flag(
        ratings.missing & (events.types == "rating"),
        f"{ratings.name} (the rating) is missing for a rating event"
        if ratings.name is not None
        else "a rating event, but the file has no rating column (name it with --rating)",
    )

    ok = checks.ok
    customer_id, user_map = users.written(ok, "customer_id")
    product_id, item_map = items.written(ok, "product_id")
    keep = pa.array(ok)
    rating_values = pa.array(ratings.values, pa.float64(), mask=np.isnan(ratings.values))
    table = _output_table(
        TABLE,
        {
            "customer_id": customer_id,
            "product_id": product_id,
            "interaction_ts": times.values.filter(keep),
            "rating": rating_values.filter(keep),
            "event_type": pa.array(events.types[ok].tolist(), pa.string()),
        },
    )
    duplicates = _count_duplicates(table)
    details = _details(
        source_path, names, columns, detected, (users, items), times, events, table, duplicates
    )
    if duplicates:
        logger.info(
            "%s: %d rows repeat an earlier row; kept as repeated feedback", where, duplicates
        )
    if not table.num_rows:
        logger.warning("%s: every one of its %d rows was rejected", where, n_rows)
    return ImportResult(
        TABLE,
        table,
        checks.table(source),
        n_rows,
        details,
        sidecars={USER_ID_MAP_FILE: user_map, ITEM_ID_MAP_FILE: item_map},
    )


def read_interactions(path: Path, options: ImportOptions) -> ImportResult:
    """:func:`import_interactions` with the checked options of ``getit-ml data import``."""

    def one(name: str) -> str | None:
        values = options.get(name, ())
        return values[0] if values else None

    return import_interactions(
        path,
        user_column=one("user_column"),
        item_column=one("item_column"),
        timestamp_column=one("timestamp_column"),
        rating_column=one("rating_column"),
        event_column=one("event_column"),
    )


# ----------------------------------------------------------------------------------------------
# Columns


def _pick_roles(
    where: str, names: Sequence[str], given: Mapping[str, str | None]
) -> tuple[dict[str, str], list[str]]:
    """The column of each role (given by flag, else found by name) and the roles found by name."""
    columns: dict[str, str] = {}
    for role, flag, _, _ in _ROLES:
        wanted = given.get(role)
        if wanted:
            name = _pick_column(where, names, wanted, flag)
            other = next((r for r, n in columns.items() if n == name), None)
            if other is not None:
                raise UserError(
                    f"{where}: --{other} and {flag} are the same column {name}; pick two"
                )
            columns[role] = name
    detected: list[str] = []
    for role, flag, known, required in _ROLES:
        if role in columns:
            continue
        keys = {_key(name) for name in known}
        taken = set(columns.values())
        found = [name for name in names if _key(name) in keys and name not in taken]
        if len(found) > 1:
            raise UserError(
                f"{where}: columns {', '.join(found)} could each be the {role}; name it with "
                f"{flag} COLUMN"
            )
        if found:
            columns[role] = found[0]
            detected.append(role)
            logger.info("%s: the %s is column %s (found by its name)", where, role, found[0])
        elif required:
            raise UserError(
                f"{where} has no {role} column: none of its columns {', '.join(names)} is named "
                f"one of {', '.join(known)}; name it with {flag} COLUMN"
            )
    return columns, detected


class _Ids:
    """An id column: kept as integers when every id written is one, else mapped (see the module
    docstring); :meth:`written` decides, over the rows written."""

    def __init__(self, where: str, name: str, array: pa.Array) -> None:
        self.where = where
        self.name = name
        self.text, self.missing = _id_text(where, name, array)
        self.mapped = False

    def written(self, ok: BoolArray, column: str) -> tuple[IntArray, pa.Table | None]:
        """The ids of the rows written, and the mapping table where the ids were mapped."""
        kept = pc.filter(self.text, pa.array(ok))
        canonical = _mask(pc.match_substring_regex(kept, _CANONICAL_ID))
        self.mapped = not canonical.all()
        if not self.mapped:
            values = pc.cast(kept, pa.int64()).to_numpy(zero_copy_only=False)
            return np.asarray(values, dtype=np.int64), None
        logger.info(
            "%s: %s holds ids that are not non-negative integers (e.g. %s); they are mapped to "
            "dense integers",
            self.where,
            self.name,
            ", ".join(_first_values(kept, ~canonical, 3)),
        )
        codes, uniques = pd.factorize(pd.Series(kept.to_pylist(), dtype=object), sort=True)
        mapping = pa.table(
            {
                ORIGINAL_ID_COLUMN: pa.array(list(uniques), pa.string()),
                column: pa.array(np.arange(len(uniques), dtype=np.int64)),
            }
        )
        return np.asarray(codes, dtype=np.int64), mapping


@dataclass(frozen=True)
class _Events:
    """Each row's contract event type (None where it has none) and why rows have none."""

    name: str | None
    types: Any  # object array of str | None
    missing: BoolArray
    negative: BoolArray
    unknown: BoolArray
    #: Distinct source values (most frequent first) → the type, or why they are rejected.
    mapping: dict[str, str]

    @classmethod
    def of(cls, where: str, name: str | None, source: pa.Table, *, rating: str | None) -> _Events:
        n_rows = source.num_rows
        none = np.zeros(n_rows, dtype=np.bool_)
        if name is None:
            kind = "rating" if rating is not None else DEFAULT_IMPLICIT_EVENT
            return cls(None, np.full(n_rows, kind, dtype=object), none, none, none, {})
        array = _column(source, name)
        if not _is_text_type(array.type):
            array = _as_text(array)
        text = _text(array)
        trimmed = pd.Series(text.trimmed.to_pylist(), dtype=object)
        distinct = trimmed[~text.missing].unique()
        kinds = {value: _EVENT_KEYS.get(_key(value)) for value in distinct}
        negative_values = {value for value in distinct if _key(value) in _NEGATIVE_KEYS}
        mapped = trimmed.map(kinds)
        known = ~text.missing & mapped.notna().to_numpy(dtype=np.bool_)
        types = np.full(n_rows, None, dtype=object)
        types[known] = mapped[known].to_numpy(dtype=object)
        negative = ~text.missing & trimmed.isin(negative_values).to_numpy(dtype=np.bool_)
        unknown = ~text.missing & ~negative & ~known
        counts = Counter(trimmed[~text.missing].tolist())
        mapping = {
            value: kinds[value]
            or ("rejected: return or refund" if value in negative_values else "rejected: unknown")
            for value, _ in counts.most_common(MAX_LISTED_EVENT_VALUES)
        }
        if unknown.any():  # the counts are logged with the other rejections; these name the values
            logger.info(
                "%s: %d rows have an event type that is not known (%s); they are rejected",
                where,
                int(np.count_nonzero(unknown)),
                ", ".join(v for v, k in mapping.items() if k == "rejected: unknown"),
            )
        return cls(name, types, text.missing, negative, unknown, mapping)


@dataclass(frozen=True)
class _Ratings:
    """Ratings as float64 (NaN where there is none or it is bad) and which rows are which."""

    name: str | None
    values: FloatArray
    missing: BoolArray
    bad: BoolArray

    @classmethod
    def of(cls, where: str, name: str | None, source: pa.Table) -> _Ratings:
        n_rows = source.num_rows
        if name is None:
            nothing = np.full(n_rows, np.nan)
            return cls(None, nothing, np.ones(n_rows, dtype=np.bool_), np.zeros(n_rows, np.bool_))
        array = _column(source, name)
        dtype = array.type
        if _is_number_type(dtype):
            values = pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False)
            missing = np.isnan(values)  # null or NaN: what pandas writes for "no value"
            bad = np.isinf(values)
        elif _is_text_type(dtype) or pa.types.is_null(dtype):
            text = _text(pc.cast(array, pa.string()))
            values = _numbers(text)
            missing = text.missing
            bad = ~missing & np.isnan(values)
        else:
            raise UserError(f"{where}: the rating column {name} is {dtype}; expected numbers")
        values = np.where(missing | bad, np.nan, values)
        return cls(name, values, missing, bad)


# ----------------------------------------------------------------------------------------------
# Summary


def _count_duplicates(table: pa.Table) -> int:
    """Rows written that repeat an earlier written row in every column."""
    if not table.num_rows:
        return 0
    frame = table.to_pandas()
    return int(frame.duplicated(keep="first").sum())


def _details(
    source_path: Path,
    names: Sequence[str],
    columns: Mapping[str, str],
    detected: Sequence[str],
    ids: tuple[_Ids, _Ids],
    times: InteractionTimes,
    events: _Events,
    table: pa.Table,
    duplicates: int,
) -> dict[str, Any]:
    """What ``import.json`` records about the mapping (JSON values)."""
    users, items = ids
    counts = Counter(table.column("event_type").to_pylist())
    return {
        "source_file": source_path.name,
        "user_column": columns["user"],
        "item_column": columns["item"],
        "timestamp_column": columns.get("timestamp"),
        "rating_column": columns.get("rating"),
        "event_column": columns.get("event"),
        "columns_found_by_name": list(detected),
        "ignored_columns": [name for name in names if name not in columns.values()],
        "user_ids": "mapped" if users.mapped else "as_is",
        "user_id_map": USER_ID_MAP_FILE if users.mapped else None,
        "item_ids": "mapped" if items.mapped else "as_is",
        "item_id_map": ITEM_ID_MAP_FILE if items.mapped else None,
        "n_users": len(pc.unique(table.column("customer_id"))),
        "n_items": len(pc.unique(table.column("product_id"))),
        "timestamp_format": times.format,
        # The time every row got because the file has none (null when it has a column).
        "timestamp_constant": NO_TIMESTAMP.isoformat() if times.name is None else None,
        "time_values_without_zone": times.without_zone if times.name is not None else None,
        "event_type_default": (
            None
            if events.name is not None
            else ("rating" if columns.get("rating") else DEFAULT_IMPLICIT_EVENT)
        ),
        "event_values": events.mapping,
        "event_types": dict(counts.most_common()),
        # Kept: repeated feedback, summed by the interaction matrix.
        "duplicate_rows": duplicates,
    }


def _first_values(values: pa.Array, rows: BoolArray, limit: int) -> list[str]:
    """Up to ``limit`` distinct values of ``rows`` in source order."""
    seen: dict[str, None] = {}
    for value in values.filter(pa.array(rows)).to_pylist():
        seen.setdefault(str(value), None)
        if len(seen) == limit:
            break
    return list(seen)
