"""Offline feature engineering: marketplace tables to point-in-time Parquet feature sources.

:func:`build_offline_features` reads the marketplace tables of a data-set folder and writes the
five offline sources of :data:`~getit_ml.features.schemas.OFFLINE_FILES`; one function per source
(:func:`customer_features`, :func:`product_features`, :func:`device_features`,
:func:`customer_risk`, :func:`customer_velocity`) computes it from tables held in memory, so the
same code runs in a test, on a laptop and as a Kubeflow component.

Point in time (what each row may have seen):

* ``customer_features`` and ``product_features``: one row per entity per Bangladesh business day
  with activity, stamped at the end of that local day (23:59:59.999999 Asia/Dhaka). Every value
  uses only data stamped at or before that instant, and a window of N days holds the N local days
  ending with the stamp's day. Things whose time is not recorded are placed where they become
  known: an order's outcome (return, COD refusal, cancellation) counts
  :data:`~getit_ml.features.schemas.OUTCOME_DELAY_DAYS` days after the order, and a session counts
  on the day of its last event.
* ``customer_risk``, ``device_features`` and ``customer_velocity``: one row per payment, stamped at
  the payment and computed from everything strictly before it (``t - W < s < t``), so a payment
  never sees itself, nor another payment made at the same microsecond. Rows of one entity at one
  instant are therefore identical and written once. A training row for a payment joins the row
  stamped at that payment: the history just before it, which is what the model must score on.
  Transaction-specific values (amount against the average, new device, new wallet) come from the
  request and the ``last_*`` / ``*_30d`` features at request time
  (:func:`getit_ml.features.context.transaction_context`).
* Catalogue attributes (list price, stock, catalogue and seller ratings) and customer attributes
  are the snapshot the tables hold: they have no history, so every stamp sees the same value.

Everything is vectorised. The core is :class:`_Timeline`: rows sorted by (entity, time) with
composite integer keys, so that for millions of (entity, time) queries at once ``searchsorted``
finds the rows of a window, prefix sums give window sums, a sparse table gives window maxima, and
the last row gives "last value before t". Distinct counts expand each query to the (entity, item)
pairs of its entity and test each pair for a row in the window.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from getit_ml.data import reference as ref
from getit_ml.data.calendar import build_calendar
from getit_ml.data.contracts import CONTRACTS
from getit_ml.data.validation import find_table, read_table
from getit_ml.errors import UserError
from getit_ml.features import schemas

logger = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
Tables = Mapping[str, pd.DataFrame]

US_PER_S: Final = 1_000_000
US_PER_HOUR: Final = 3_600 * US_PER_S
US_PER_DAY: Final = 24 * US_PER_HOUR
#: Bangladesh Standard Time is UTC+6 all year.
DHAKA_OFFSET_US: Final = 6 * US_PER_HOUR
#: A session that starts before 06:00 local time is a night session.
NIGHT_ENDS_HOUR: Final = 6
#: A unit bought this much below its list price was bought on a campaign discount (prices are
#: whole taka; the margin only absorbs float noise).
DISCOUNT_TOLERANCE_BDT: Final = 0.005

_EVENT = {name: code for code, name in enumerate(ref.EVENT_TYPES)}
_STATUS = {name: code for code, name in enumerate(ref.ORDER_STATUSES)}
_PAYMENT_STATUS = {name: code for code, name in enumerate(ref.PAYMENT_STATUSES)}
_METHOD = {name: code for code, name in enumerate(ref.PAYMENT_METHODS)}
_WEB = ref.DEVICE_TYPES.index("web")
_SENTIMENT = {name: code for code, name in enumerate(ref.SENTIMENTS)}

#: The tables the features read; reviews, daily demand, sellers and the calendar are optional.
REQUIRED_TABLES: Final = ("customers", "products", "events", "orders", "order_items", "payments")
OPTIONAL_TABLES: Final = ("sellers", "reviews", "calendar", "daily_demand")
#: Columns read from each table (free text, titles and ground truth are never features here).
COLUMNS_USED: Final[dict[str, tuple[str, ...]]] = {
    "customers": (
        "customer_id", "signup_ts", "division", "district", "is_urban", "preferred_language",
        "device_type", "acquisition_channel", "phone_id", "address_id",
    ),
    "products": (
        "product_id", "seller_id", "category", "subcategory", "brand", "price_bdt", "rating",
        "stock", "listed_ts",
    ),
    "events": (
        "session_id", "customer_id", "event_ts", "event_type", "product_id", "device_type",
    ),
    "orders": (
        "order_id", "customer_id", "order_ts", "address_id", "n_items", "subtotal_bdt",
        "discount_bdt", "voucher_code", "total_bdt", "payment_method", "status",
    ),
    "order_items": ("order_id", "product_id", "order_ts", "quantity", "unit_price_bdt"),
    "payments": (
        "payment_id", "order_id", "customer_id", "payment_ts", "payment_method", "amount_bdt",
        "device_id", "wallet_account_id", "card_id", "status",
    ),
    "sellers": ("seller_id", "seller_rating"),
    "reviews": ("review_id", "product_id", "customer_id", "review_ts", "rating", "sentiment"),
    "calendar": ("date", "festival"),
    "daily_demand": ("product_id", "date", "avg_price_bdt"),
}  # fmt: skip


# ------------------------------------------------------------------------------ conversions


def _ints(values: pd.Series | npt.NDArray[Any] | Sequence[Any], missing: int = -1) -> IntArray:
    """Integer ids as int64; null becomes ``missing`` (ids are never negative)."""
    numbers = pd.to_numeric(pd.Series(values), errors="coerce")
    return np.asarray(numbers.fillna(missing), dtype=np.int64)


def _floats(values: pd.Series | npt.NDArray[Any] | Sequence[Any]) -> FloatArray:
    return np.asarray(pd.to_numeric(pd.Series(values), errors="coerce"), dtype=np.float64)


def _micros(values: pd.Series | Sequence[Any]) -> IntArray:
    """Timestamps as microseconds since the Unix epoch (UTC); naive values are taken as UTC."""
    stamps = pd.to_datetime(pd.Series(values), utc=True)
    delta = stamps - pd.Timestamp(0, tz="UTC")
    return np.asarray(delta // pd.Timedelta(1, "us"), dtype=np.int64)


def _codes(values: pd.Series | Sequence[Any], categories: Sequence[str]) -> IntArray:
    """Index of each value in ``categories``; -1 for null or an unknown value."""
    categorical = pd.Categorical(pd.Series(values), categories=list(categories))
    return np.asarray(categorical.codes, dtype=np.int64)


def local_day(micros: IntArray) -> IntArray:
    """Bangladesh business day (days since 1970-01-01, local) of UTC epoch microseconds."""
    day: IntArray = np.floor_divide(micros + DHAKA_OFFSET_US, US_PER_DAY)
    return day


def end_of_local_day(day: IntArray) -> IntArray:
    """The last microsecond of local day ``day``, as UTC epoch microseconds."""
    stamp: IntArray = (day + 1) * US_PER_DAY - DHAKA_OFFSET_US - 1
    return stamp


def _ratio(numerator: npt.NDArray[Any], denominator: npt.NDArray[Any]) -> FloatArray:
    """numerator / denominator, NaN where the denominator is 0 (no data)."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    result = np.full(len(numerator), np.nan)
    np.divide(numerator, denominator, out=result, where=denominator != 0)
    return result


def _segment_positions(counts: IntArray) -> IntArray:
    """For groups of the given sizes laid end to end, each element's position in its group."""
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    positions: IntArray = np.arange(int(counts.sum()), dtype=np.int64) - starts
    return positions


# ------------------------------------------------------------------------------ the timeline


def _unique(values: IntArray) -> IntArray:
    """Sorted distinct values (by sorting: faster than numpy's hashing for millions of ints)."""
    ordered = np.sort(values)
    keep = np.ones(len(ordered), dtype=bool)
    keep[1:] = ordered[1:] != ordered[:-1]
    distinct: IntArray = ordered[keep]
    return distinct


def _is_in(values: IntArray, distinct: IntArray) -> BoolArray:
    """Whether each value is one of ``distinct`` (sorted, unique)."""
    if len(distinct) == 0:
        return np.zeros(len(values), dtype=bool)
    position = np.minimum(np.searchsorted(distinct, values), len(distinct) - 1)
    found: BoolArray = distinct[position] == values
    return found


def _unique_inverse(values: IntArray) -> tuple[IntArray, IntArray]:
    """Sorted distinct values and, for each value, the index of its distinct value."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    new = np.ones(len(ordered), dtype=bool)
    new[1:] = ordered[1:] != ordered[:-1]
    inverse = np.empty(len(values), dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    return ordered[new], inverse


@dataclass(frozen=True)
class _Span:
    """For each query, the sorted rows ``[lo, hi)`` of a timeline in its window; ``start`` is the
    first row of the query's entity (rows before it belong to other entities)."""

    start: IntArray
    lo: IntArray
    hi: IntArray

    @property
    def count(self) -> IntArray:
        count: IntArray = self.hi - self.lo
        return count


class _Timeline:
    """Rows of (entity, time, values...) sorted by entity then time, for window queries.

    Times are compressed to their rank among the distinct row times, so the composite key
    ``entity_code * stride + rank`` stays far below 2**63 whatever the time unit (microseconds or
    days) and however large the entity ids are.
    """

    def __init__(
        self,
        entity: IntArray,
        when: IntArray,
        values: Mapping[str, npt.NDArray[Any]] | None = None,
    ) -> None:
        self.ids: IntArray = _unique(entity)
        code = np.searchsorted(self.ids, entity).astype(np.int64)
        # lexsort is stable: rows with equal (entity, time) keep their input order.
        self.order = np.lexsort((when, code))
        self.code: IntArray = code[self.order]
        self.when: IntArray = np.asarray(when, dtype=np.int64)[self.order]
        self.times: IntArray = _unique(when)
        self.stride = len(self.times) + 1
        self.keys: IntArray = self.code * self.stride + np.searchsorted(self.times, self.when)
        self.values = {name: np.asarray(v)[self.order] for name, v in (values or {}).items()}
        self._prefix: dict[str, npt.NDArray[Any]] = {}

    def __len__(self) -> int:
        return len(self.code)

    def codes(self, entity: IntArray) -> IntArray:
        """Entity codes of query ids; an id with no rows gets a code past every row."""
        if len(self.ids) == 0:
            return np.zeros(len(entity), dtype=np.int64)
        code = np.searchsorted(self.ids, entity).astype(np.int64)
        found = self.ids[np.minimum(code, len(self.ids) - 1)] == entity
        result: IntArray = np.where(found, code, len(self.ids))
        return result

    def _position(self, code: IntArray, when: IntArray, *, inclusive: bool) -> IntArray:
        """Number of rows before (code, when): rows of earlier entities, and rows of this entity
        with time < when (or <= when when ``inclusive``)."""
        rank = np.searchsorted(self.times, when, side="right" if inclusive else "left")
        position: IntArray = np.searchsorted(self.keys, code * self.stride + rank, side="left")
        return position

    def spans(
        self, entity: IntArray, when: IntArray, lengths: Sequence[int | None], *, include_end: bool
    ) -> dict[int | None, _Span]:
        """For each window length, the rows of each query's entity with ``when - length < time``
        and ``time <= when`` (``time < when`` unless ``include_end``); ``None``: since the
        beginning."""
        code = self.codes(entity)
        start: IntArray = np.searchsorted(self.code, code, side="left").astype(np.int64)
        hi = self._position(code, when, inclusive=include_end)
        return {
            length: _Span(
                start=start,
                lo=start if length is None else self._position(code, when - length, inclusive=True),
                hi=hi,
            )
            for length in lengths
        }

    def span(
        self, entity: IntArray, when: IntArray, length: int | None, *, include_end: bool
    ) -> _Span:
        """The rows of one window (see :meth:`spans`)."""
        return self.spans(entity, when, [length], include_end=include_end)[length]

    def _prefix_sums(self, name: str) -> npt.NDArray[Any]:
        """Cumulative sums restarting at each entity (keeps float sums exact to the entity's own
        magnitude rather than the whole table's)."""
        if name not in self._prefix:
            values = pd.Series(self.values[name])
            self._prefix[name] = values.groupby(self.code).cumsum().to_numpy()
        return self._prefix[name]

    def sum(self, name: str, span: _Span) -> npt.NDArray[Any]:
        """Sum of ``name`` over each span (0 for an empty one)."""
        prefix = self._prefix_sums(name)
        if len(prefix) == 0:
            return np.zeros(len(span.lo), dtype=prefix.dtype)
        zero = prefix.dtype.type(0)
        upper = np.where(span.hi > span.start, prefix[np.maximum(span.hi - 1, 0)], zero)
        lower = np.where(span.lo > span.start, prefix[np.maximum(span.lo - 1, 0)], zero)
        result: npt.NDArray[Any] = upper - lower
        return result

    def max(self, name: str, span: _Span) -> FloatArray:
        """Maximum of ``name`` over each span (NaN for an empty one)."""
        return _range_max(np.asarray(self.values[name], dtype=np.float64), span.lo, span.hi)

    def last(self, name: str, span: _Span, missing: Any) -> npt.NDArray[Any]:
        """Value of the last row of each span; ``missing`` for an empty one."""
        values = self.values[name]
        if len(values) == 0:
            return np.full(len(span.lo), missing)
        picked = values[np.maximum(span.hi - 1, 0)]
        result: npt.NDArray[Any] = np.where(span.hi > span.lo, picked, missing)
        return result

    def first(self, name: str, span: _Span, missing: Any) -> npt.NDArray[Any]:
        """Value of the first row of each span; ``missing`` for an empty one."""
        values = self.values[name]
        if len(values) == 0:
            return np.full(len(span.lo), missing)
        picked = values[np.minimum(span.lo, len(values) - 1)]
        result: npt.NDArray[Any] = np.where(span.hi > span.lo, picked, missing)
        return result


def _range_max(values: FloatArray, lo: IntArray, hi: IntArray) -> FloatArray:
    """max(values[lo:hi]) for many ranges at once (NaN for empty ones), with a sparse table:
    level k holds the maxima of windows of 2**k rows, and any range is covered by two of them."""
    result = np.full(len(lo), np.nan)
    length = hi - lo
    nonempty = length > 0
    if not nonempty.any():
        return result
    # frexp gives length = m * 2**e with 0.5 <= m < 1, so floor(log2(length)) = e - 1.
    level_of = np.frexp(np.maximum(length, 1).astype(np.float64))[1].astype(np.int64) - 1
    levels = [values]
    for level in range(1, int(level_of[nonempty].max()) + 1):
        previous, step = levels[-1], 1 << (level - 1)
        levels.append(np.maximum(previous[:-step], previous[step:]))
    for level, table in enumerate(levels):
        chosen = nonempty & (level_of == level)
        if chosen.any():
            width = 1 << level
            result[chosen] = np.maximum(table[lo[chosen]], table[hi[chosen] - width])
    return result


def _distinct_in_window(
    entity: IntArray,
    item: IntArray,
    when: IntArray,
    query_entity: IntArray,
    query_time: IntArray,
    length: int | None,
) -> IntArray:
    """Distinct items (>= 0) of each query's entity with a row in ``query_time - length < time <
    query_time`` (``length=None``: any time before). Each query is expanded to its entity's
    (entity, item) pairs, so the cost is the number of such pairs, small for devices, customers
    and wallets."""
    keep = item >= 0
    entity, item, when = entity[keep], item[keep], when[keep]
    if len(entity) == 0:
        return np.zeros(len(query_entity), dtype=np.int64)
    pairs = pd.DataFrame({"entity": entity, "item": item})
    pair_code = np.asarray(pairs.groupby(["entity", "item"], sort=True).ngroup(), dtype=np.int64)
    pair_entity = np.empty(int(pair_code.max()) + 1, dtype=np.int64)
    pair_entity[pair_code] = entity
    timeline = _Timeline(pair_code, when)
    first = np.searchsorted(pair_entity, query_entity, side="left")
    per_query = (np.searchsorted(pair_entity, query_entity, side="right") - first).astype(np.int64)
    rows = np.repeat(np.arange(len(query_entity)), per_query)
    pair = np.repeat(first, per_query) + _segment_positions(per_query)
    span = timeline.span(pair, query_time[rows], length, include_end=False)
    present = (span.count > 0).astype(np.float64)
    return np.bincount(rows, weights=present, minlength=len(query_entity)).astype(np.int64)


def _daily_panel(
    entity: IntArray,
    day: IntArray,
    sums: Mapping[str, npt.NDArray[Any]],
    maxima: Mapping[str, IntArray] | None = None,
    minima: Mapping[str, IntArray] | None = None,
) -> _Timeline:
    """Per (entity, day) sums (and maxima / minima of integer columns) as a timeline.

    Boolean and integer columns sum to int64, others to float64. Grouping is one sort
    of an (entity, day) key and one ``bincount`` per column, so indicator columns can be passed as
    cheap booleans.
    """
    maxima, minima = maxima or {}, minima or {}
    if len(entity) == 0:
        empty = np.zeros(0, dtype=np.int64)
        columns = {name: np.zeros(0, dtype=_sum_dtype(v)) for name, v in sums.items()}
        columns |= {name: empty for name in (*maxima, *minima)}
        return _Timeline(empty, empty, columns)
    ids, entity_code = _unique_inverse(entity)
    first_day = int(day.min())
    days = int(day.max()) - first_day + 1
    groups, group_of = _unique_inverse(entity_code * days + (day - first_day))
    values: dict[str, npt.NDArray[Any]] = {}
    for name, column in sums.items():
        summed = np.bincount(group_of, weights=column, minlength=len(groups))
        values[name] = summed.astype(_sum_dtype(column))
    if maxima or minima:
        order = np.argsort(group_of, kind="stable")
        starts = np.searchsorted(group_of[order], np.arange(len(groups)))
        for name, column in maxima.items():
            values[name] = np.maximum.reduceat(column[order], starts)
        for name, column in minima.items():
            values[name] = np.minimum.reduceat(column[order], starts)
    return _Timeline(ids[groups // days], groups % days + first_day, values)


def _sum_dtype(column: npt.NDArray[Any]) -> type[np.int64] | type[np.float64]:
    return np.int64 if column.dtype.kind in "biu" else np.float64


# ------------------------------------------------------------------------------ inputs


@dataclass(frozen=True)
class _Events:
    customer: IntArray  # -1: guest
    ts: IntArray
    day: IntArray
    kind: IntArray  # index into reference.EVENT_TYPES
    product: IntArray  # -1: none (searches)
    session: IntArray
    web: BoolArray


@dataclass(frozen=True)
class _Orders:
    order_id: IntArray
    customer: IntArray
    ts: IntArray
    day: IntArray
    total: FloatArray
    subtotal: FloatArray
    discount: FloatArray
    n_items: IntArray
    has_voucher: BoolArray
    method: IntArray  # index into reference.PAYMENT_METHODS
    status: IntArray  # index into reference.ORDER_STATUSES
    address: IntArray


@dataclass(frozen=True)
class _Items:
    order_id: IntArray
    product: IntArray
    ts: IntArray
    day: IntArray
    quantity: IntArray
    unit_price: FloatArray


@dataclass(frozen=True)
class _Payments:
    """Payment attempts sorted by (customer, time, payment id), with the switch flags that need
    that order: whether the device (wallet) differs from the customer's previous payment's (the
    previous wallet payment's)."""

    customer: IntArray
    ts: IntArray
    day: IntArray
    order_id: IntArray  # -1: an attempt without an order
    device: IntArray
    wallet: IntArray  # -1: none
    card: IntArray  # -1: none
    amount: FloatArray
    failed: BoolArray
    device_switch: BoolArray
    wallet_switch: BoolArray


@dataclass(frozen=True)
class _Reviews:
    product: IntArray
    customer: IntArray
    ts: IntArray
    day: IntArray
    rating: FloatArray
    sentiment: IntArray  # index into reference.SENTIMENTS


def _frame(tables: Tables, name: str) -> pd.DataFrame:
    """Table ``name``, or an empty frame with its contract's columns when it is optional and
    absent."""
    if name in tables:
        return tables[name]
    if name in REQUIRED_TABLES:
        raise UserError(f"table {name} is missing: the features need {', '.join(REQUIRED_TABLES)}")
    return pd.DataFrame({column: [] for column in COLUMNS_USED[name]})


class _Marketplace:
    """The marketplace tables as the arrays the features use, each prepared once on demand."""

    def __init__(self, tables: Tables) -> None:
        self.tables = tables

    @cached_property
    def events(self) -> _Events:
        frame = _frame(self.tables, "events")
        ts = _micros(frame["event_ts"])
        return _Events(
            customer=_ints(frame["customer_id"]),
            ts=ts,
            day=local_day(ts),
            kind=_codes(frame["event_type"], ref.EVENT_TYPES),
            product=_ints(frame["product_id"]),
            session=_ints(frame["session_id"]),
            web=_codes(frame["device_type"], ref.DEVICE_TYPES) == _WEB,
        )

    @cached_property
    def orders(self) -> _Orders:
        frame = _frame(self.tables, "orders")
        ts = _micros(frame["order_ts"])
        return _Orders(
            order_id=_ints(frame["order_id"]),
            customer=_ints(frame["customer_id"]),
            ts=ts,
            day=local_day(ts),
            total=_floats(frame["total_bdt"]),
            subtotal=_floats(frame["subtotal_bdt"]),
            discount=_floats(frame["discount_bdt"]),
            n_items=_ints(frame["n_items"], missing=0),
            has_voucher=np.asarray(frame["voucher_code"].notna(), dtype=bool),
            method=_codes(frame["payment_method"], ref.PAYMENT_METHODS),
            status=_codes(frame["status"], ref.ORDER_STATUSES),
            address=_ints(frame["address_id"]),
        )

    @cached_property
    def items(self) -> _Items:
        frame = _frame(self.tables, "order_items")
        ts = _micros(frame["order_ts"])
        return _Items(
            order_id=_ints(frame["order_id"]),
            product=_ints(frame["product_id"]),
            ts=ts,
            day=local_day(ts),
            quantity=_ints(frame["quantity"], missing=0),
            unit_price=_floats(frame["unit_price_bdt"]),
        )

    @cached_property
    def payments(self) -> _Payments:
        frame = _frame(self.tables, "payments")
        customer = _ints(frame["customer_id"])
        ts = _micros(frame["payment_ts"])
        order = np.lexsort((_ints(frame["payment_id"]), ts, customer))
        customer, ts = customer[order], ts[order]
        device = _ints(frame["device_id"])[order]
        wallet = _ints(frame["wallet_account_id"])[order]
        same_customer = np.zeros(len(customer), dtype=bool)
        same_customer[1:] = customer[1:] == customer[:-1]
        device_switch = same_customer.copy()
        device_switch[1:] &= device[1:] != device[:-1]
        # Wallet switches compare wallet payments only: a COD order in between hides nothing.
        wallet_rows = np.flatnonzero(wallet >= 0)
        wallet_switch = np.zeros(len(customer), dtype=bool)
        if len(wallet_rows) > 1:
            w_customer, w_wallet = customer[wallet_rows], wallet[wallet_rows]
            changed = (w_customer[1:] == w_customer[:-1]) & (w_wallet[1:] != w_wallet[:-1])
            wallet_switch[wallet_rows[1:]] = changed
        status = _codes(frame["status"], ref.PAYMENT_STATUSES)[order]
        return _Payments(
            customer=customer,
            ts=ts,
            day=local_day(ts),
            order_id=_ints(frame["order_id"])[order],
            device=device,
            wallet=wallet,
            card=_ints(frame["card_id"])[order],
            amount=_floats(frame["amount_bdt"])[order],
            failed=status == _PAYMENT_STATUS["failed"],
            device_switch=device_switch,
            wallet_switch=wallet_switch,
        )

    @cached_property
    def reviews(self) -> _Reviews:
        frame = _frame(self.tables, "reviews")
        ts = _micros(frame["review_ts"])
        return _Reviews(
            product=_ints(frame["product_id"]),
            customer=_ints(frame["customer_id"]),
            ts=ts,
            day=local_day(ts),
            rating=_floats(frame["rating"]),
            sentiment=_codes(frame["sentiment"], ref.SENTIMENTS),
        )

    @cached_property
    def customers(self) -> pd.DataFrame:
        """Customers indexed by id (the last row wins if an id repeats)."""
        frame = _frame(self.tables, "customers")
        indexed = frame.assign(customer_id=_ints(frame["customer_id"]))
        return indexed.drop_duplicates("customer_id", keep="last").set_index("customer_id")

    @cached_property
    def products(self) -> pd.DataFrame:
        """Products indexed by id, with their seller's rating and price rank in the category."""
        frame = _frame(self.tables, "products")
        products = frame.assign(
            product_id=_ints(frame["product_id"]),
            seller_id=_ints(frame["seller_id"]),
            price_bdt=_floats(frame["price_bdt"]),
        ).drop_duplicates("product_id", keep="last")
        sellers = _frame(self.tables, "sellers")
        seller_rating = pd.Series(
            _floats(sellers["seller_rating"]), index=_ints(sellers["seller_id"])
        )
        seller_rating = seller_rating[~seller_rating.index.duplicated(keep="last")]
        by_category = products.groupby("category", observed=True)["price_bdt"]
        products = products.assign(
            seller_rating=seller_rating.reindex(products["seller_id"]).to_numpy(),
            price_rank_in_category=by_category.rank(pct=True, method="average"),
            price_vs_category_median=products["price_bdt"] / by_category.transform("median"),
            category_code=_codes(products["category"], ref.CATEGORIES),
        )
        return products.set_index("product_id")

    def product_column(self, product: IntArray, column: str) -> npt.NDArray[Any]:
        """``column`` of the products table for each id (NaN / None for an unknown product)."""
        return self.products[column].reindex(product).to_numpy()

    @cached_property
    def first_day(self) -> int:
        """The first business day with any clickstream or order: where the data set begins."""
        days = [a.min() for a in (self.events.day, self.orders.day, self.payments.day) if len(a)]
        return int(min(days)) if days else 0

    @cached_property
    def last_day(self) -> int:
        days = [a.max() for a in (self.events.day, self.orders.day, self.payments.day) if len(a)]
        return int(max(days)) if days else 0

    @cached_property
    def festival(self) -> _FestivalDays:
        return _FestivalDays.build(_frame(self.tables, "calendar"), self.first_day, self.last_day)


_EPOCH: Final = date(1970, 1, 1)


@dataclass(frozen=True)
class _FestivalDays:
    """Which local days are festival season (the calendar names a festival), with cumulative
    counts for "festival days in a window"."""

    first: int
    flags: BoolArray  # flags[d - first]
    cumulative: IntArray  # cumulative[i] = festival days among flags[:i]

    @classmethod
    def build(cls, calendar: pd.DataFrame, first: int, last: int) -> _FestivalDays:
        n = max(last - first + 1, 0)
        flags = np.zeros(n, dtype=bool)
        known = np.zeros(n, dtype=bool)
        if len(calendar):
            day = np.asarray(
                (pd.to_datetime(calendar["date"]) - pd.Timestamp(0)) // pd.Timedelta(days=1),
                dtype=np.int64,
            )
            inside = (day >= first) & (day <= last)
            flags[day[inside] - first] = np.asarray(calendar["festival"].notna())[inside]
            known[day[inside] - first] = True
        if n and not known.all():
            # The data set has no calendar for these days: compute it from the rules.
            missing = np.flatnonzero(~known)
            start = _EPOCH + timedelta(days=int(first + missing[0]))
            end = _EPOCH + timedelta(days=int(first + missing[-1]))
            computed = (
                build_calendar(start, end)
                .column("festival")
                .is_valid()
                .to_numpy(zero_copy_only=False)
            )
            offsets = missing - missing[0]
            flags[missing] = computed[offsets]
        cumulative = np.concatenate([[0], np.cumsum(flags)]).astype(np.int64)
        return cls(first=first, flags=flags, cumulative=cumulative)

    def on(self, day: IntArray) -> BoolArray:
        index = day - self.first
        inside = (index >= 0) & (index < len(self.flags))
        result: BoolArray = np.zeros(len(day), dtype=bool)
        result[inside] = self.flags[index[inside]]
        return result

    def count(self, after: IntArray, through: IntArray) -> IntArray:
        """Festival days d with ``after < d <= through``."""
        lo = np.clip(after + 1 - self.first, 0, len(self.flags))
        hi = np.clip(through + 1 - self.first, 0, len(self.flags))
        counted: IntArray = self.cumulative[hi] - self.cumulative[np.minimum(lo, hi)]
        return counted


# ------------------------------------------------------------------------------ outputs


def feature_schema(name: str) -> pa.Schema:
    """The Arrow schema of offline source ``name``: entity key, event and created timestamps,
    then the features of its schema dict in order."""
    try:
        entity, features = schemas.SOURCES[name]
    except KeyError:
        known = ", ".join(schemas.SOURCES)
        raise KeyError(f"unknown feature source {name!r}; sources: {known}") from None
    arrow_types = {
        "int64": pa.int64(),
        "float64": pa.float64(),
        "string": pa.string(),
        "bool": pa.bool_(),
    }
    timestamp = pa.timestamp("us", tz="UTC")
    return pa.schema(
        [
            pa.field(entity, pa.int64(), nullable=False),
            pa.field(schemas.TIMESTAMP_FIELD, timestamp, nullable=False),
            pa.field(schemas.CREATED_FIELD, timestamp, nullable=False),
            *(pa.field(feature, arrow_types[kind]) for feature, kind in features.items()),
        ]
    )


@dataclass(frozen=True)
class FeatureRows:
    """The rows of one offline source: entity keys, event times (UTC epoch microseconds) and the
    feature columns in schema order, sorted by time then entity. ``created_timestamp`` is the
    event time (a deterministic value: the same input gives identical files)."""

    name: str
    entity: IntArray
    stamp: IntArray
    features: dict[str, Any]

    def to_frame(self) -> pd.DataFrame:
        """As pandas: timestamps ``datetime64[us, UTC]``; int64 and bool columns with nulls (an
        entity unknown to its dimension table) in pandas' nullable dtypes."""
        key, _ = schemas.SOURCES[self.name]
        stamps = pd.Series(pd.DatetimeIndex(self.stamp.astype("datetime64[us]")).tz_localize("UTC"))
        columns: dict[str, Any] = {
            key: self.entity,
            schemas.TIMESTAMP_FIELD: stamps,
            schemas.CREATED_FIELD: stamps.copy(),
            **self.features,
        }
        return pd.DataFrame(columns)

    def to_arrow(self, rows: slice | None = None) -> pa.Table:
        """As Arrow, in :func:`feature_schema` (NaN becomes null); ``rows``: only those."""
        rows = rows or slice(None)
        schema = feature_schema(self.name)
        stamps = pa.array(self.stamp[rows], type=pa.int64()).cast(schema.field(1).type)
        arrays = [pa.array(self.entity[rows], type=pa.int64()), stamps, stamps]
        arrays += [
            pa.array(self.features[f.name][rows], type=f.type, from_pandas=True)
            for f in list(schema)[3:]
        ]
        return pa.Table.from_arrays(arrays, schema=schema)

    def write_parquet(self, path: Path, rows_per_group: int = 500_000) -> None:
        """Write to ``path``, converting one row group at a time (the Arrow copy of a whole
        source would double the memory it needs)."""
        schema = feature_schema(self.name)
        with pq.ParquetWriter(path, schema) as writer:
            for first in range(0, max(len(self.entity), 1), rows_per_group):
                writer.write_table(self.to_arrow(slice(first, first + rows_per_group)))


def _result(name: str, entity: IntArray, stamp: IntArray, features: dict[str, Any]) -> FeatureRows:
    """The rows of source ``name``: features in schema order and type, sorted by time then entity
    (time-ordered row groups let readers skip by time). int64 and bool features with nulls get
    pandas' nullable arrays. Consumes ``features`` (each column is released once sorted)."""
    _, schema = schemas.SOURCES[name]
    if set(features) != set(schema):
        wrong = sorted(set(features) ^ set(schema))
        raise AssertionError(f"{name}: computed features differ from the schema: {wrong}")
    order = np.lexsort((entity, stamp))
    columns: dict[str, Any] = {}
    for feature, kind in schema.items():
        values = pd.Series(features.pop(feature)).take(order).reset_index(drop=True)
        if kind == "float64":
            columns[feature] = values.to_numpy(dtype=np.float64, na_value=np.nan)
        elif kind == "string":
            columns[feature] = values.astype(object).where(values.notna(), None).to_numpy()
        elif values.isna().any():
            columns[feature] = values.astype("Int64" if kind == "int64" else "boolean").array
        else:
            columns[feature] = values.to_numpy(dtype=np.int64 if kind == "int64" else bool)
    return FeatureRows(
        name=name,
        entity=np.asarray(entity, dtype=np.int64)[order],
        stamp=np.asarray(stamp, dtype=np.int64)[order],
        features=columns,
    )


def _unique_queries(entity: IntArray, stamp: IntArray) -> tuple[IntArray, IntArray]:
    """Distinct (entity, stamp) pairs, in time then entity order."""
    order = np.lexsort((entity, stamp))
    entity, stamp = entity[order], stamp[order]
    keep = np.ones(len(entity), dtype=bool)
    keep[1:] = (entity[1:] != entity[:-1]) | (stamp[1:] != stamp[:-1])
    return entity[keep], stamp[keep]


def _active_days(*pairs: tuple[IntArray, IntArray]) -> tuple[IntArray, IntArray]:
    """Distinct (entity, day) of the given (entity, day) arrays, sorted by entity then day."""
    entity = np.concatenate([p[0] for p in pairs])
    day = np.concatenate([p[1] for p in pairs])
    keep = entity >= 0
    frame = pd.DataFrame({"entity": entity[keep], "day": day[keep]}).drop_duplicates()
    frame = frame.sort_values(["entity", "day"], kind="stable")
    return np.asarray(frame["entity"], dtype=np.int64), np.asarray(frame["day"], dtype=np.int64)


# ------------------------------------------------------------------------------ customer


def customer_features(tables: Tables) -> pd.DataFrame:
    """Daily customer features (see :data:`~getit_ml.features.schemas.CUSTOMER_FEATURES`).

    Reads customers, events, orders, order_items, payments, products and (if present) reviews and
    calendar. One row per customer per business day with an event, order or payment, stamped at
    the end of that day.
    """
    return _customer_features(_Marketplace(tables)).to_frame()


def _customer_features(m: _Marketplace) -> FeatureRows:
    events, orders, items, payments, reviews = m.events, m.orders, m.items, m.payments, m.reviews
    customer, day = _active_days(
        (events.customer, events.day),
        (orders.customer, orders.day),
        (payments.customer, payments.day),
    )
    stamp = end_of_local_day(day)
    f: dict[str, Any] = {}

    def spans(timeline: _Timeline, *windows: int | None) -> dict[int | None, _Span]:
        return {w: timeline.span(customer, day, w, include_end=True) for w in windows}

    # Static attributes. account_age_days: whole days since signup (null: unknown customer).
    known = m.customers.reindex(customer)
    for feature, column in (
        ("division", "division"),
        ("district", "district"),
        ("preferred_language", "preferred_language"),
        ("signup_device_type", "device_type"),
        ("acquisition_channel", "acquisition_channel"),
    ):
        f[feature] = known[column].astype(object).to_numpy()
    f["is_urban"] = known["is_urban"].astype("boolean").array
    signup = known["signup_ts"]
    age = pd.Series(np.nan, index=range(len(customer)))
    has_signup = signup.notna().to_numpy()
    if has_signup.any():
        age[has_signup] = (stamp[has_signup] - _micros(signup[has_signup])) // US_PER_DAY
    f["account_age_days"] = age.astype("Int64").array

    # Orders: RFM, basket, discounts, payment mix, festival share. Monetary is total_bdt of every
    # order placed (its outcome is not known yet on the day it is placed).
    festival_order = m.festival.on(orders.day)
    order_panel = _daily_panel(
        orders.customer,
        orders.day,
        {
            "orders": np.ones(len(orders.ts), dtype=np.int64),
            "spend": orders.total,
            "subtotal": orders.subtotal,
            "discount": orders.discount,
            "items": orders.n_items,
            "vouchers": orders.has_voucher.astype(np.int64),
            "festival_orders": festival_order.astype(np.int64),
            "festival_spend": np.where(festival_order, orders.total, 0.0),
            **{
                f"method_{k}": (orders.method == k).astype(np.int64)
                for k in range(len(ref.PAYMENT_METHODS))
            },
        },
        maxima={"last_ts": orders.ts},
        minima={"first_ts": orders.ts},
    )
    o = spans(order_panel, 7, 30, 90, None)
    for w in (7, 30, 90):
        f[f"orders_{w}d"] = order_panel.sum("orders", o[w])
        f[f"spend_{w}d_bdt"] = order_panel.sum("spend", o[w])
    f["orders_lifetime"] = order_panel.sum("orders", o[None])
    f["spend_lifetime_bdt"] = order_panel.sum("spend", o[None])
    # days_since_last_order / avg_days_between_orders: NaN before the first (second) order.
    last_order = order_panel.last("last_ts", o[None], missing=-1)
    first_order = order_panel.first("first_ts", o[None], missing=-1)
    ever_ordered = o[None].count > 0
    f["days_since_last_order"] = np.where(ever_ordered, (stamp - last_order) / US_PER_DAY, np.nan)
    f["avg_days_between_orders"] = _ratio(
        (last_order - first_order) / US_PER_DAY,
        np.where(f["orders_lifetime"] >= 2, f["orders_lifetime"] - 1, 0),
    )
    orders_90d = f["orders_90d"]
    # Ratios over the orders of the last 90 days: NaN when there were none.
    f["avg_basket_bdt_90d"] = _ratio(f["spend_90d_bdt"], orders_90d)
    f["avg_items_per_order_90d"] = _ratio(order_panel.sum("items", o[90]), orders_90d)
    f["discount_share_90d"] = _ratio(
        order_panel.sum("discount", o[90]), order_panel.sum("subtotal", o[90])
    )
    f["voucher_order_share_90d"] = _ratio(order_panel.sum("vouchers", o[90]), orders_90d)
    for k, method in enumerate(ref.PAYMENT_METHODS):
        f[f"{method}_share_90d"] = _ratio(order_panel.sum(f"method_{k}", o[90]), orders_90d)
    f["festival_spend_share_90d"] = _ratio(
        order_panel.sum("festival_spend", o[90]), f["spend_90d_bdt"]
    )
    f["festival_order_share_90d"] = _ratio(order_panel.sum("festival_orders", o[90]), orders_90d)

    # Units bought below list price (campaign discounts), by the order's customer and day.
    order_index = pd.Series(np.arange(len(orders.order_id)), index=orders.order_id)
    order_index = order_index[~order_index.index.duplicated(keep="first")]
    item_order = order_index.reindex(items.order_id).to_numpy()
    has_order = ~np.isnan(item_order)
    item_order = item_order[has_order].astype(np.int64)
    list_price = _floats(m.product_column(items.product[has_order], "price_bdt"))
    quantity = items.quantity[has_order]
    discounted = items.unit_price[has_order] < list_price - DISCOUNT_TOLERANCE_BDT
    item_panel = _daily_panel(
        orders.customer[item_order],
        orders.day[item_order],
        {"units": quantity, "discounted_units": np.where(discounted, quantity, 0)},
    )
    i90 = item_panel.span(customer, day, 90, include_end=True)
    f["discounted_item_share_90d"] = _ratio(
        item_panel.sum("discounted_units", i90), item_panel.sum("units", i90)
    )

    # Outcomes count on the day they become known (OUTCOME_DELAY_DAYS after the order).
    # cod_refusal_rate: refused / COD orders; return_rate: returned / orders that reached the
    # customer (not cancelled, not refused); cancel_rate: cancelled / orders. NaN: none known.
    refused = orders.status == _STATUS["cod_refused"]
    cancelled = orders.status == _STATUS["cancelled"]
    outcome_panel = _daily_panel(
        orders.customer,
        orders.day + schemas.OUTCOME_DELAY_DAYS,
        {
            "known": np.ones(len(orders.ts), dtype=np.int64),
            "cod": (orders.method == _METHOD["cod"]).astype(np.int64),
            "refused": refused.astype(np.int64),
            "returned": (orders.status == _STATUS["returned"]).astype(np.int64),
            "cancelled": cancelled.astype(np.int64),
            "received": (~refused & ~cancelled).astype(np.int64),
        },
    )
    r = spans(outcome_panel, 90, None)
    f["cod_refusal_rate"] = _ratio(
        outcome_panel.sum("refused", r[None]), outcome_panel.sum("cod", r[None])
    )
    f["return_rate"] = _ratio(
        outcome_panel.sum("returned", r[None]), outcome_panel.sum("received", r[None])
    )
    f["cancel_rate"] = _ratio(
        outcome_panel.sum("cancelled", r[None]), outcome_panel.sum("known", r[None])
    )
    f["cod_refusals_90d"] = outcome_panel.sum("refused", r[90])
    f["returns_90d"] = outcome_panel.sum("returned", r[90])

    # Payments: attempts, failures, device and wallet switches.
    payment_panel = _daily_panel(
        payments.customer,
        payments.day,
        {
            "attempts": np.ones(len(payments.ts), dtype=np.int64),
            "failed": payments.failed.astype(np.int64),
            "device_switches": payments.device_switch.astype(np.int64),
            "wallet_switches": payments.wallet_switch.astype(np.int64),
        },
    )
    p = spans(payment_panel, 1, 7)
    for w in (1, 7):
        f[f"device_switches_{w}d"] = payment_panel.sum("device_switches", p[w])
        f[f"wallet_switches_{w}d"] = payment_panel.sum("wallet_switches", p[w])
    f["payment_attempts_7d"] = payment_panel.sum("attempts", p[7])
    f["failed_payment_attempts_7d"] = payment_panel.sum("failed", p[7])

    # Clickstream: event counts and category affinities by the event's day.
    logged_in = events.customer >= 0
    ev_customer, ev_day, kind = (
        events.customer[logged_in],
        events.day[logged_in],
        events.kind[logged_in],
    )
    category = np.asarray(
        pd.Series(m.product_column(events.product[logged_in], "category_code")).fillna(-1),
        dtype=np.int64,
    )
    event_panel = _daily_panel(
        ev_customer,
        ev_day,
        {
            "views": kind == _EVENT["view"],
            "searches": kind == _EVENT["search"],
            "cart_adds": kind == _EVENT["add_to_cart"],
            "cart_removes": kind == _EVENT["remove_from_cart"],
            "product_events": category >= 0,
            **{f"category_{k}": category == k for k in range(len(ref.CATEGORIES))},
        },
        maxima={"last_ts": events.ts[logged_in]},
    )
    e = spans(event_panel, 30, 90, None)
    for name in ("views", "searches", "cart_adds", "cart_removes"):
        f[f"{name}_30d"] = event_panel.sum(name, e[30])
    f["add_to_cart_rate_30d"] = _ratio(f["cart_adds_30d"], f["views_30d"])
    last_event = event_panel.last("last_ts", e[None], missing=-1)
    f["days_since_last_session"] = np.where(
        e[None].count > 0, (stamp - last_event) / US_PER_DAY, np.nan
    )
    # Affinity: share of the product events of the last 90 days (NaN: none); the top category is
    # the first of the most frequent (null: none).
    product_events = event_panel.sum("product_events", e[90])
    by_category = np.column_stack(
        [event_panel.sum(f"category_{k}", e[90]) for k in range(len(ref.CATEGORIES))]
    )
    for k, name in enumerate(ref.CATEGORIES):
        f[f"affinity_{name}_90d"] = _ratio(by_category[:, k], product_events)
    top = np.asarray(ref.CATEGORIES, dtype=object)[by_category.argmax(axis=1)]
    f["top_category_90d"] = np.where(product_events > 0, top, None)

    # Sessions count on the day of their last event (complete by the stamp).
    sessions = _sessions(events)
    session_panel = _daily_panel(
        sessions["customer"].to_numpy(),
        local_day(sessions["end"].to_numpy()),
        {
            "sessions": np.ones(len(sessions), dtype=np.int64),
            "events": sessions["events"].to_numpy(),
            "duration_s": (sessions["end"] - sessions["start"]).to_numpy() / US_PER_S,
            "converted": sessions["converted"].to_numpy().astype(np.int64),
            "night": sessions["night"].to_numpy().astype(np.int64),
            "web": sessions["web"].to_numpy().astype(np.int64),
        },
    )
    s = spans(session_panel, 7, 30)
    f["sessions_7d"] = session_panel.sum("sessions", s[7])
    sessions_30d = session_panel.sum("sessions", s[30])
    f["sessions_30d"] = sessions_30d
    # Per-session averages and shares over the last 30 days: NaN with no session.
    f["events_per_session_30d"] = _ratio(session_panel.sum("events", s[30]), sessions_30d)
    f["avg_session_duration_s_30d"] = _ratio(session_panel.sum("duration_s", s[30]), sessions_30d)
    f["session_conversion_rate_30d"] = _ratio(session_panel.sum("converted", s[30]), sessions_30d)
    f["night_session_share_30d"] = _ratio(session_panel.sum("night", s[30]), sessions_30d)
    f["web_session_share_30d"] = _ratio(session_panel.sum("web", s[30]), sessions_30d)

    # Active days: the rows themselves.
    active_panel = _Timeline(customer, day, {"one": np.ones(len(day), dtype=np.int64)})
    f["active_days_30d"] = active_panel.sum(
        "one", active_panel.span(customer, day, 30, include_end=True)
    )

    # Reviews written (avg rating NaN without one).
    review_panel = _daily_panel(
        reviews.customer,
        reviews.day,
        {"reviews": np.ones(len(reviews.ts), dtype=np.int64), "rating": reviews.rating},
    )
    v90 = review_panel.span(customer, day, 90, include_end=True)
    f["reviews_90d"] = review_panel.sum("reviews", v90)
    f["avg_review_rating_given_90d"] = _ratio(review_panel.sum("rating", v90), f["reviews_90d"])

    return _result("customer_features", customer, stamp, f)


def _sessions(events: _Events) -> pd.DataFrame:
    """One row per logged-in session: customer, first and last event time, events, whether it
    bought, started at night, ran on the web."""
    logged_in = events.customer >= 0
    frame = pd.DataFrame(
        {
            "session": events.session[logged_in],
            "customer": events.customer[logged_in],
            "ts": events.ts[logged_in],
            "purchase": events.kind[logged_in] == _EVENT["purchase"],
            "web": events.web[logged_in],
        }
    )
    grouped = frame.groupby("session", sort=True).agg(
        customer=("customer", "first"),
        start=("ts", "min"),
        end=("ts", "max"),
        events=("ts", "size"),
        converted=("purchase", "max"),
        web=("web", "max"),
    )
    hour = ((grouped["start"] + DHAKA_OFFSET_US) % US_PER_DAY) // US_PER_HOUR
    return grouped.assign(night=hour < NIGHT_ENDS_HOUR).reset_index(drop=True)


# ------------------------------------------------------------------------------ product


def product_features(tables: Tables) -> pd.DataFrame:
    """Daily product features (see :data:`~getit_ml.features.schemas.PRODUCT_FEATURES`).

    Reads products, events, order_items and (if present) sellers, reviews, daily_demand and
    calendar. One row per product per business day with an event on it or an order line for it,
    stamped at the end of that day.
    """
    return _product_features(_Marketplace(tables)).to_frame()


def _product_features(m: _Marketplace) -> FeatureRows:
    events, items, reviews = m.events, m.items, m.reviews
    has_product = events.product >= 0
    ev_product, ev_day, kind = (
        events.product[has_product],
        events.day[has_product],
        events.kind[has_product],
    )
    product, day = _active_days((ev_product, ev_day), (items.product, items.day))
    stamp = end_of_local_day(day)
    f: dict[str, Any] = {}

    # Catalogue snapshot (null: product unknown to the catalogue).
    for feature, column in (
        ("category", "category"),
        ("subcategory", "subcategory"),
        ("brand", "brand"),
        ("seller_id", "seller_id"),
        ("list_price_bdt", "price_bdt"),
        ("stock", "stock"),
        ("catalogue_rating", "rating"),
        ("seller_rating", "seller_rating"),
        ("price_rank_in_category", "price_rank_in_category"),
        ("price_vs_category_median", "price_vs_category_median"),
    ):
        f[feature] = m.product_column(product, column)
    f["stock"] = pd.array(m.product_column(product, "stock"), dtype="Int64")
    f["seller_id"] = pd.array(m.product_column(product, "seller_id"), dtype="Int64")
    listed = pd.Series(m.product_column(product, "listed_ts"))
    days_listed = pd.Series(np.nan, index=range(len(product)))
    has_listed = listed.notna().to_numpy()
    if has_listed.any():
        days_listed[has_listed] = (stamp[has_listed] - _micros(listed[has_listed])) // US_PER_DAY
    f["days_since_listed"] = days_listed.astype("Int64").array
    list_price = _floats(f["list_price_bdt"])

    # Price on the stamp's day: the daily price table when there is one, else the list price.
    current = _daily_price(m.tables, product, day)
    current = np.where(np.isnan(current), list_price, current)
    f["current_price_bdt"] = current
    f["current_discount_pct"] = 1.0 - _ratio(current, list_price)

    event_panel = _daily_panel(
        ev_product,
        ev_day,
        {
            "views": kind == _EVENT["view"],
            "cart_adds": kind == _EVENT["add_to_cart"],
        },
    )
    festival = m.festival.on(items.day)
    item_list_price = _floats(m.product_column(items.product, "price_bdt"))
    item_panel = _daily_panel(
        items.product,
        items.day,
        {
            "lines": np.ones(len(items.ts), dtype=np.int64),
            "units": items.quantity,
            "revenue": items.unit_price * items.quantity,
            "list_revenue": item_list_price * items.quantity,
            "festival_units": np.where(festival, items.quantity, 0),
        },
        maxima={"last_ts": items.ts},
    )
    e = {w: event_panel.span(product, day, w, include_end=True) for w in (1, 7, 30)}
    i = {w: item_panel.span(product, day, w, include_end=True) for w in (1, 7, 30, 90, None)}
    for w in (1, 7, 30):
        f[f"views_{w}d"] = event_panel.sum("views", e[w])
        f[f"cart_adds_{w}d"] = event_panel.sum("cart_adds", e[w])
        f[f"order_lines_{w}d"] = item_panel.sum("lines", i[w])
        f[f"units_sold_{w}d"] = item_panel.sum("units", i[w])
        # Conversion: order lines per view (NaN without views).
        f[f"conversion_rate_{w}d"] = _ratio(f[f"order_lines_{w}d"], f[f"views_{w}d"])
    for w in (7, 30):
        f[f"revenue_{w}d_bdt"] = item_panel.sum("revenue", i[w])
        f[f"cart_rate_{w}d"] = _ratio(f[f"cart_adds_{w}d"], f[f"views_{w}d"])
    # What buyers paid below list price over 30 days (NaN: nothing sold).
    f["sold_discount_pct_30d"] = 1.0 - _ratio(
        f["revenue_30d_bdt"], item_panel.sum("list_revenue", i[30])
    )
    last_sale = item_panel.last("last_ts", i[None], missing=-1)
    f["days_since_last_sale"] = np.where(
        i[None].count > 0, (stamp - last_sale) / US_PER_DAY, np.nan
    )

    # Festival uplift: units per festival day / units per ordinary day over the last 90 days that
    # the data set covers. NaN when the window has no festival day, no ordinary day or no
    # ordinary-day sale.
    window_start = np.maximum(day - 90, m.first_day - 1)  # exclusive
    festival_days = m.festival.count(window_start, day)
    ordinary_days = (day - window_start) - festival_days
    festival_units = item_panel.sum("festival_units", i[90])
    ordinary_units = item_panel.sum("units", i[90]) - festival_units
    f["festival_uplift_90d"] = _ratio(
        _ratio(festival_units, festival_days), _ratio(ordinary_units, ordinary_days)
    )

    # Reviews: lifetime and 30-day summaries (averages and shares NaN without reviews).
    review_panel = _daily_panel(
        reviews.product,
        reviews.day,
        {
            "reviews": np.ones(len(reviews.ts), dtype=np.int64),
            "rating": reviews.rating,
            "positive": (reviews.sentiment == _SENTIMENT["positive"]).astype(np.int64),
            "negative": (reviews.sentiment == _SENTIMENT["negative"]).astype(np.int64),
        },
    )
    v = {w: review_panel.span(product, day, w, include_end=True) for w in (30, None)}
    f["review_count"] = review_panel.sum("reviews", v[None])
    f["avg_review_rating"] = _ratio(review_panel.sum("rating", v[None]), f["review_count"])
    f["positive_review_share"] = _ratio(review_panel.sum("positive", v[None]), f["review_count"])
    f["negative_review_share"] = _ratio(review_panel.sum("negative", v[None]), f["review_count"])
    f["review_count_30d"] = review_panel.sum("reviews", v[30])
    f["avg_review_rating_30d"] = _ratio(review_panel.sum("rating", v[30]), f["review_count_30d"])

    return _result("product_features", product, stamp, f)


def _daily_price(tables: Tables, product: IntArray, day: IntArray) -> FloatArray:
    """The price offered for each (product, day) from ``daily_demand`` (NaN where absent)."""
    demand = _frame(tables, "daily_demand")
    if not len(demand):
        return np.full(len(product), np.nan)
    prices = pd.DataFrame(
        {
            "product": _ints(demand["product_id"]),
            "day": np.asarray(
                (pd.to_datetime(demand["date"]) - pd.Timestamp(0)) // pd.Timedelta(days=1),
                dtype=np.int64,
            ),
            "price": _floats(demand["avg_price_bdt"]),
        }
    ).drop_duplicates(["product", "day"], keep="last")
    wanted = pd.DataFrame({"product": product, "day": day})
    joined = wanted.merge(prices, on=["product", "day"], how="left", sort=False)
    return np.asarray(joined["price"], dtype=np.float64)


# ------------------------------------------------------------------------------ payment time


def device_features(tables: Tables) -> pd.DataFrame:
    """Device features at each payment (see
    :data:`~getit_ml.features.schemas.DEVICE_FEATURES`), from the payments strictly before it."""
    return _device_features(_Marketplace(tables)).to_frame()


def _device_features(m: _Marketplace) -> FeatureRows:
    pay = m.payments
    device, stamp = _unique_queries(pay.device, pay.ts)
    timeline = _Timeline(
        pay.device,
        pay.ts,
        {"failed": pay.failed.astype(np.int64), "amount": pay.amount, "ts": pay.ts},
    )
    spans = timeline.spans(device, stamp, [US_PER_DAY, 7 * US_PER_DAY, None], include_end=False)
    day_span, week_span, ever = spans[US_PER_DAY], spans[7 * US_PER_DAY], spans[None]
    total = ever.count
    first_seen = timeline.first("ts", ever, missing=-1)
    f: dict[str, Any] = {
        "device_customers_30d": _distinct_in_window(
            pay.device, pay.customer, pay.ts, device, stamp, 30 * US_PER_DAY
        ),
        "device_customers_total": _distinct_in_window(
            pay.device, pay.customer, pay.ts, device, stamp, None
        ),
        "device_payments_24h": day_span.count,
        "device_failed_payments_24h": timeline.sum("failed", day_span),
        "device_amount_24h_bdt": timeline.sum("amount", day_span),
        "device_payments_7d": week_span.count,
        "device_payments_total": total,
        "device_wallets_30d": _distinct_in_window(
            pay.device, pay.wallet, pay.ts, device, stamp, 30 * US_PER_DAY
        ),
        # NaN: the device never paid before.
        "device_age_days": np.where(total > 0, (stamp - first_seen) / US_PER_DAY, np.nan),
        "device_is_new": total == 0,
    }
    return _result("device_features", device, stamp, f)


def customer_risk(tables: Tables) -> pd.DataFrame:
    """Customer payment-risk features at each payment (see
    :data:`~getit_ml.features.schemas.CUSTOMER_RISK_FEATURES`), from data strictly before it."""
    return _customer_risk(_Marketplace(tables)).to_frame()


def _customer_risk(m: _Marketplace) -> FeatureRows:
    pay, orders = m.payments, m.orders
    customer, stamp = _unique_queries(pay.customer, pay.ts)
    timeline = _Timeline(
        pay.customer,
        pay.ts,
        {
            "failed": pay.failed.astype(np.int64),
            "amount": pay.amount,
            "device_switch": pay.device_switch.astype(np.int64),
            "wallet_switch": pay.wallet_switch.astype(np.int64),
            "device": pay.device,
            "ts": pay.ts,
        },
    )
    windows = {"24h": US_PER_DAY, "7d": 7 * US_PER_DAY, "30d": 30 * US_PER_DAY}
    by_length = timeline.spans(customer, stamp, [*windows.values(), None], include_end=False)
    span = {w: by_length[n] for w, n in windows.items()}
    ever = by_length[None]
    f: dict[str, Any] = {}
    for w in ("24h", "7d", "30d"):
        f[f"payments_{w}"] = span[w].count
    for w in ("24h", "7d"):
        f[f"failed_payments_{w}"] = timeline.sum("failed", span[w])
        f[f"device_changes_{w}"] = timeline.sum("device_switch", span[w])
        f[f"wallet_changes_{w}"] = timeline.sum("wallet_switch", span[w])
    f["amount_24h_bdt"] = timeline.sum("amount", span["24h"])
    # Average and maximum amount: NaN without a payment in the last 30 days.
    f["avg_payment_amount_30d"] = _ratio(timeline.sum("amount", span["30d"]), span["30d"].count)
    f["max_payment_amount_30d"] = timeline.max("amount", span["30d"])
    for w in ("7d", "30d"):
        f[f"devices_{w}"] = _distinct_in_window(
            pay.customer, pay.device, pay.ts, customer, stamp, windows[w]
        )
    f["devices_total"] = _distinct_in_window(
        pay.customer, pay.device, pay.ts, customer, stamp, None
    )
    f["wallets_30d"] = _distinct_in_window(
        pay.customer, pay.wallet, pay.ts, customer, stamp, windows["30d"]
    )
    f["cards_7d"] = _distinct_in_window(
        pay.customer, pay.card, pay.ts, customer, stamp, windows["7d"]
    )
    # Delivery addresses of the orders paid by earlier payments (the order being paid now is
    # not counted: at checkout it is the request, not history).
    order_row = pd.Series(np.arange(len(orders.order_id)), index=orders.order_id)
    order_row = order_row[~order_row.index.duplicated(keep="first")]
    paid_row = order_row.reindex(pay.order_id).to_numpy()
    paid_address = np.full(len(pay.ts), -1, dtype=np.int64)
    has_order = ~np.isnan(paid_row)
    paid_address[has_order] = orders.address[paid_row[has_order].astype(np.int64)]
    f["order_addresses_30d"] = _distinct_in_window(
        pay.customer, paid_address, pay.ts, customer, stamp, windows["30d"]
    )
    # Last device / wallet: -1 before the first (wallet) payment; seconds since: NaN then.
    f["last_device_id"] = timeline.last("device", ever, missing=-1)
    wallet_rows = pay.wallet >= 0
    wallets = _Timeline(
        pay.customer[wallet_rows], pay.ts[wallet_rows], {"wallet": pay.wallet[wallet_rows]}
    )
    f["last_wallet_account_id"] = wallets.last(
        "wallet", wallets.span(customer, stamp, None, include_end=False), missing=-1
    )
    last_ts = timeline.last("ts", ever, missing=-1)
    f["seconds_since_last_payment"] = np.where(ever.count > 0, (stamp - last_ts) / US_PER_S, np.nan)

    # Identity sharing: other customers with this customer's phone (default address) who had
    # signed up before the payment. 0 for a customer unknown to the customers table.
    people = m.customers
    signup = _micros(people["signup_ts"])
    known = people.reindex(customer)
    own_signup = np.full(len(customer), np.iinfo(np.int64).max)
    is_known = known["signup_ts"].notna().to_numpy()
    own_signup[is_known] = _micros(known["signup_ts"][is_known])
    for feature, column in (
        ("phone_shared_customers", "phone_id"),
        ("address_shared_customers", "address_id"),
    ):
        shared = _ints(people[column])
        query = np.asarray(known[column].fillna(-1), dtype=np.int64)
        registry = _Timeline(shared, signup)
        before = registry.span(query, stamp, None, include_end=False).count
        f[feature] = np.where(is_known, before - (own_signup < stamp), 0)
    f["account_age_hours"] = np.where(is_known, (stamp - own_signup) / US_PER_HOUR, np.nan)
    return _result("customer_risk", customer, stamp, f)


def customer_velocity(tables: Tables) -> pd.DataFrame:
    """Velocity counters at each payment (see
    :data:`~getit_ml.features.schemas.VELOCITY_FEATURES`): payments and clicks in the 10 minutes
    and 1 hour strictly before it."""
    return _customer_velocity(_Marketplace(tables)).to_frame()


def _customer_velocity(m: _Marketplace) -> FeatureRows:
    pay, events = m.payments, m.events
    customer, stamp = _unique_queries(pay.customer, pay.ts)
    timeline = _Timeline(
        pay.customer,
        pay.ts,
        {"failed": pay.failed.astype(np.int64), "amount": pay.amount},
    )
    ten_minutes, hour = 600 * US_PER_S, US_PER_HOUR
    spans = timeline.spans(customer, stamp, [ten_minutes, hour], include_end=False)
    short, long = spans[ten_minutes], spans[hour]
    # Clicks are product views and cart adds (as in the streaming job); only those of paying
    # customers matter, so filter before sorting 10M events.
    is_click = (events.kind == _EVENT["view"]) | (events.kind == _EVENT["add_to_cart"])
    paying = is_click & _is_in(events.customer, _unique(customer))
    clicks = _Timeline(events.customer[paying], events.ts[paying])
    f: dict[str, Any] = {
        "payments_10m": short.count,
        "amount_10m_bdt": timeline.sum("amount", short),
        "failed_payments_10m": timeline.sum("failed", short),
        "payments_1h": long.count,
        "amount_1h_bdt": timeline.sum("amount", long),
        "clicks_10m": clicks.span(customer, stamp, ten_minutes, include_end=False).count,
    }
    return _result("customer_velocity", customer, stamp, f)


# ------------------------------------------------------------------------------ the job

_BUILDERS: Final = {
    "customer_features": _customer_features,
    "product_features": _product_features,
    "device_features": _device_features,
    "customer_risk": _customer_risk,
    "customer_velocity": _customer_velocity,
}


def load_tables(data_dir: Path) -> dict[str, pd.DataFrame]:
    """The marketplace tables of a data-set folder as pandas frames in their contract's columns
    and types (optional tables that are absent are left out)."""
    data_dir = Path(data_dir)
    tables: dict[str, pd.DataFrame] = {}
    for name in (*REQUIRED_TABLES, *OPTIONAL_TABLES):
        path = find_table(data_dir, name)
        if path is None:
            if name in REQUIRED_TABLES:
                raise UserError(
                    f"{data_dir} has no {name} table (expected {name}.parquet or {name}/)"
                )
            continue
        contract = CONTRACTS[name].schema()
        schema = pa.schema([contract.field(column) for column in COLUMNS_USED[name]])
        raw = read_table(path, CONTRACTS[name])
        missing = [f.name for f in schema if f.name not in raw.column_names]
        if missing:
            raise UserError(f"table {name} in {data_dir} lacks columns {missing}")
        try:
            table = raw.select(schema.names).cast(schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise UserError(
                f"table {name} in {data_dir} does not have its contract's types ({exc}); "
                "run `getit-ml data validate` first"
            ) from exc
        # Categorical strings: a few distinct values repeated millions of times.
        tables[name] = table.to_pandas(strings_to_categorical=True)
    return tables


def build_offline_features(data_dir: Path, out_dir: Path) -> dict[str, int]:
    """Compute every offline feature source from the marketplace in ``data_dir`` and write them
    to ``out_dir`` as :data:`~getit_ml.features.schemas.OFFLINE_FILES`; returns rows per file."""
    started = time.perf_counter()
    marketplace = _Marketplace(load_tables(data_dir))
    logger.info("read the marketplace in %.1fs", time.perf_counter() - started)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: dict[str, int] = {}
    for name, build in _BUILDERS.items():
        began = time.perf_counter()
        result = build(marketplace)
        result.write_parquet(out_dir / schemas.OFFLINE_FILES[name])
        rows[schemas.OFFLINE_FILES[name]] = len(result.entity)
        logger.info("%s: %d rows in %.1fs", name, len(result.entity), time.perf_counter() - began)
        del result
    logger.info("offline features written to %s in %.1fs", out_dir, time.perf_counter() - started)
    return rows
