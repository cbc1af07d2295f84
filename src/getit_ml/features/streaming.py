"""Streaming push source: per-customer velocity features from a Redis Stream.

Fast-moving features (a customer's payments in the last 10 minutes, session clicks) cannot wait for
a batch materialisation. Marketplace services append one entry per event to a Redis Stream; a
:class:`StreamConsumer` reads it through a consumer group, keeps a one-hour window of events per
customer in a :class:`VelocityState`, and calls ``push`` once per batch with a DataFrame of one
row per customer touched by the batch: ``customer_id`` (int64), ``event_timestamp`` (UTC, the
customer's latest event time), ``created_timestamp`` (the same) and the six features. ``push`` is
how the online store is plugged in, e.g.
``lambda df: store.push("customer_velocity_push", df, to=PushMode.ONLINE)``; this module does not
import Feast.

**Event format.** One stream entry per event (default key :data:`DEFAULT_STREAM`), every value a
decimal or plain string:

=============== ====================================================================
``kind``        ``payment`` or ``click``
``customer_id`` integer, >= 0
``ts``          event time as integer **microseconds since the Unix epoch, UTC** (the
                contracts' ``timestamp[us, tz=UTC]``); cheaper to parse than ISO-8601
``amount_bdt``  payments only: amount in taka, finite and >= 0
``status``      payments only: ``succeeded``, ``failed`` or ``pending_cod``
=============== ====================================================================

Extra fields are ignored. An entry that breaks these rules is *rejected*: counted under a reason
(``missing:<field>``, ``bad:<field>``, ``deleted``), logged, acknowledged, and never fatal.

**Features** (:data:`FEATURE_NAMES`), as of the customer's latest event time ``t``; a window of
length ``w`` holds the events with ``t - w < ts <= t`` (closed on the right, like pandas'
``rolling("10min")``), so an event exactly 10 minutes before ``t`` is out of the 10-minute window:

* ``payments_10m`` / ``payments_1h``: payment attempts of any status;
* ``amount_10m_bdt`` / ``amount_1h_bdt``: the sum of their ``amount_bdt`` (any status);
* ``failed_payments_10m``: attempts with status ``failed``;
* ``clicks_10m``: ``click`` events (product views and add-to-carts).

**Lateness and memory.** The *watermark* is the latest event time seen on the stream. An event
with ``ts <= watermark - 1h`` is *late*: it could only change windows that are already closed, so
it is counted and ignored. Out-of-order events within the hour count exactly as if they had come
in order. The state keeps, per customer, only the events of its last hour (and at most
``max_events_per_customer`` of them, the newest; the rest are counted as *capped*), and forgets a
customer entirely once the watermark is two hours past its latest event, which cannot change any
future result.

**Delivery.** Entries are acknowledged (XACK) only after ``push`` returned; if it raises, the
batch's changes to the window state are rolled back and the entries stay pending, so a restarted
consumer (same group) gets them again: at-least-once delivery to the online store, where a
repeated push of the same row is harmless. The window state lives in memory: after a restart the
windows fill again from the events that follow.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import redis

from getit_ml.features.schemas import VELOCITY_FEATURES

logger = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

DEFAULT_STREAM: Final = "getit:events"
DEFAULT_GROUP: Final = "getit-ml-velocity"
#: The Feast push source the CLI wires ``push`` to.
PUSH_SOURCE: Final = "customer_velocity_push"

MINUTE_US: Final = 60_000_000
WINDOW_10M_US: Final = 10 * MINUTE_US
WINDOW_1H_US: Final = 60 * MINUTE_US
#: Customers whose latest event is this far behind the watermark are forgotten.
RETENTION_US: Final = 2 * WINDOW_1H_US

#: The features this job produces: the velocity schema the offline engineering also writes.
FEATURE_DTYPES: Final[dict[str, str]] = dict(VELOCITY_FEATURES)
FEATURE_NAMES: Final[tuple[str, ...]] = tuple(FEATURE_DTYPES)

PAYMENT: Final = "payment"
CLICK: Final = "click"
PAYMENT_STATUSES: Final[tuple[str, ...]] = ("succeeded", "failed", "pending_cod")
#: Event times must lie in [1970-01-01, 2100-01-01) UTC.
MAX_TS_US: Final = 4_102_444_800_000_000
MAX_ID: Final = 2**63 - 1
_DEAD: Final = np.iinfo(np.int64).min  # timestamp of a row dropped from the window state
_INF: Final = math.inf


# ------------------------------------------------------------------------------ event format
def _epoch_us(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError("ts must be epoch microseconds, an aware datetime or ISO-8601 text")
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"ts {value.isoformat()} has no time zone; give UTC explicitly")
        return int(pd.Timestamp(value).value // 1_000)
    raise TypeError("ts must be epoch microseconds, an aware datetime or ISO-8601 text")


def encode_event(event: Mapping[str, Any]) -> dict[str, str]:
    """The stream entry for one event: ``kind``, ``customer_id``, ``ts`` (epoch microseconds;
    an aware ``datetime`` or ISO-8601 text with an offset is converted) and, for a payment,
    ``amount_bdt`` and ``status``. Values are not validated here: the consumer validates."""
    fields = {
        "kind": str(event["kind"]),
        "customer_id": str(int(event["customer_id"])),
        "ts": str(_epoch_us(event["ts"])),
    }
    if fields["kind"] == PAYMENT:
        fields["amount_bdt"] = repr(float(event["amount_bdt"]))
        fields["status"] = str(event["status"])
    return fields


def publish_events(
    client: redis.Redis,
    stream: str,
    events: Iterable[Mapping[str, Any]],
    batch_size: int = 2_000,
    maxlen: int | None = None,
) -> int:
    """XADD every event (see :func:`encode_event`) to ``stream``, ``batch_size`` per pipelined
    round trip; returns how many were added. ``maxlen`` caps the stream approximately."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1 (got {batch_size})")
    added = 0
    pipe = client.pipeline(transaction=False)
    queued = 0
    for event in events:
        pipe.xadd(stream, encode_event(event), maxlen=maxlen)  # type: ignore[arg-type]
        queued += 1
        if queued == batch_size:
            pipe.execute()
            added += queued
            queued = 0
    if queued:
        pipe.execute()
        added += queued
    return added


def _partitions(data_dir: Path, table: str) -> dict[str, Path]:
    root = data_dir / table
    if not root.is_dir():
        raise FileNotFoundError(f"{root} not found: is {data_dir} a generated marketplace?")
    return {p.parent.name.removeprefix("date="): p for p in root.glob("date=*/part-0.parquet")}


def _load_day(
    payments: Path | None, events: Path | None
) -> tuple[IntArray, IntArray, BoolArray, FloatArray, list[str]]:
    """One day's payments and clicks as columns (customer, ts, is_payment, amount, status)."""
    parts: list[pa.Table] = []
    if payments is not None:
        t = pq.read_table(payments, columns=["customer_id", "payment_ts", "amount_bdt", "status"])
        parts.append(
            pa.table(
                {
                    "customer_id": t["customer_id"].cast(pa.int64()),
                    "ts": t["payment_ts"].cast(pa.int64()),
                    "is_payment": pa.array(np.ones(t.num_rows, dtype=bool)),
                    "amount_bdt": t["amount_bdt"].cast(pa.float64()),
                    "status": t["status"].cast(pa.string()),
                }
            )
        )
    if events is not None:
        t = pq.read_table(events, columns=["customer_id", "event_ts", "event_type"])
        keep = pc.and_(
            pc.is_in(t["event_type"], value_set=pa.array(["view", "add_to_cart"])),
            pc.is_valid(t["customer_id"]),
        )
        t = t.filter(keep)
        parts.append(
            pa.table(
                {
                    "customer_id": t["customer_id"].cast(pa.int64()),
                    "ts": t["event_ts"].cast(pa.int64()),
                    "is_payment": pa.array(np.zeros(t.num_rows, dtype=bool)),
                    "amount_bdt": pa.array(np.zeros(t.num_rows)),
                    "status": pa.nulls(t.num_rows, pa.string()),
                }
            )
        )
    table = pa.concat_tables(parts)
    return (
        table["customer_id"].to_numpy(),
        table["ts"].to_numpy(),
        table["is_payment"].to_numpy(zero_copy_only=False),
        table["amount_bdt"].to_numpy(),
        table["status"].to_pylist(),
    )


def events_from_marketplace(data_dir: Path | str) -> Iterator[dict[str, Any]]:
    """The stream entries a generated marketplace implies, in event-time order.

    Payments become ``payment`` events (amount and status kept); ``view`` and ``add_to_cart``
    events of logged-in customers become ``click`` events. ``ts`` is epoch microseconds. Reads
    the Hive partitions ``payments/date=*/part-0.parquet`` and ``events/date=*/part-0.parquet``
    one day at a time; rows of a day that are later than the start of a following day are held
    back until it is read, so the order is global. Ties keep payments before clicks.
    """
    payments = _partitions(Path(data_dir), "payments")
    events = _partitions(Path(data_dir), "events")
    days = sorted(set(payments) | set(events))
    # Earliest event time of each day's files, then of every later day (the merge frontier).
    starts = []
    for day in days:
        lows = [
            pc.min(pq.read_table(path, columns=[column])[column].cast(pa.int64())).as_py()
            for path, column in ((payments.get(day), "payment_ts"), (events.get(day), "event_ts"))
            if path is not None
        ]
        starts.append(min((low for low in lows if low is not None), default=_INF))
    later_start = [_INF] * (len(days) + 1)
    for i in range(len(days) - 1, -1, -1):
        later_start[i] = min(starts[i], later_start[i + 1])

    held: tuple[IntArray, IntArray, BoolArray, FloatArray, list[str]] | None = None
    for i, day in enumerate(days):
        columns = _load_day(payments.get(day), events.get(day))
        if held is not None:
            columns = (
                np.concatenate([held[0], columns[0]]),
                np.concatenate([held[1], columns[1]]),
                np.concatenate([held[2], columns[2]]),
                np.concatenate([held[3], columns[3]]),
                held[4] + columns[4],
            )
        customer, ts, is_payment, amount, status = columns
        order = np.lexsort((~is_payment, ts))
        frontier = later_start[i + 1]
        if frontier == _INF:
            emit, hold = order, order[:0]
        else:
            ready = int(np.searchsorted(ts[order], frontier, side="left"))
            emit, hold = order[:ready], order[ready:]
        held = (
            customer[hold],
            ts[hold],
            is_payment[hold],
            amount[hold],
            [status[j] for j in hold.tolist()],
        )
        for j, cid, t, pay, amt in zip(
            emit.tolist(),
            customer[emit].tolist(),
            ts[emit].tolist(),
            is_payment[emit].tolist(),
            amount[emit].tolist(),
            strict=True,
        ):
            if pay:
                yield {
                    "kind": PAYMENT,
                    "customer_id": cid,
                    "ts": t,
                    "amount_bdt": amt,
                    "status": status[j],
                }
            else:
                yield {"kind": CLICK, "customer_id": cid, "ts": t}


# ------------------------------------------------------------------------------ decoding
@dataclass(frozen=True)
class EventBatch:
    """Valid events as columns, in arrival order."""

    customer_id: IntArray
    ts_us: IntArray
    is_payment: BoolArray
    amount_bdt: FloatArray
    failed: BoolArray

    def __len__(self) -> int:
        return int(self.customer_id.shape[0])

    @classmethod
    def empty(cls) -> EventBatch:
        return cls(
            np.empty(0, np.int64),
            np.empty(0, np.int64),
            np.empty(0, np.bool_),
            np.empty(0, np.float64),
            np.empty(0, np.bool_),
        )


@dataclass
class DecodedEntries:
    """What :func:`decode_entries` made of a batch of stream entries."""

    batch: EventBatch
    #: Rejected entries by reason.
    rejected: Counter[str] = field(default_factory=Counter)
    #: The first rejected entry id of each reason, for the log.
    examples: dict[str, str] = field(default_factory=dict)


class _Keys:
    """Field names and values as the client returns them (bytes, or str if it decodes)."""

    def __init__(self, sample: Any) -> None:
        convert: Callable[[str], Any] = (lambda s: s.encode()) if isinstance(sample, bytes) else str
        self.kind, self.customer_id, self.ts = (
            convert("kind"),
            convert("customer_id"),
            convert("ts"),
        )
        self.amount, self.status = convert("amount_bdt"), convert("status")
        self.payment, self.click, self.failed = convert(PAYMENT), convert(CLICK), convert("failed")
        self.statuses = frozenset(convert(s) for s in PAYMENT_STATUSES)


Fields = Mapping[Any, Any] | list[Any] | None
Entries = list[tuple[Any, Fields]]


def decode_entries(entries: Sequence[tuple[Any, Fields]]) -> DecodedEntries:
    """Validate and decode stream entries ``(id, fields)``; ``fields`` is a mapping (as redis-py's
    XREADGROUP returns it) or the flat ``[name, value, ...]`` list of the raw reply, with bytes
    (or str, from a client with ``decode_responses=True``). Never raises for bad content: an entry
    with a missing field, an unparsable or out-of-range number, an unknown ``kind`` or payment
    ``status``, or no fields at all (deleted from the stream while pending) is counted in
    ``rejected`` under ``missing:<field>``, ``bad:<field>`` or ``deleted``."""
    rejected: Counter[str] = Counter()
    examples: dict[str, str] = {}
    sample = next((f[0] if isinstance(f, list) else next(iter(f)) for _, f in entries if f), b"")
    k = _Keys(sample)
    k_kind, k_cid, k_ts, k_amount, k_status = k.kind, k.customer_id, k.ts, k.amount, k.status
    v_payment, v_click, v_failed, statuses = k.payment, k.click, k.failed, k.statuses
    customers: list[int] = []
    times: list[int] = []
    is_payment: list[bool] = []
    amounts: list[float] = []
    failed: list[bool] = []
    for entry_id, fields in entries:
        name = "kind"
        try:
            if not fields:
                name = ""
                raise LookupError
            # The order publish_events writes is decoded by position; anything else by name.
            if (
                type(fields) is list
                and len(fields) in (6, 10)
                and fields[0] == k_kind
                and fields[2] == k_cid
                and fields[4] == k_ts
                and (len(fields) == 6 or (fields[6] == k_amount and fields[8] == k_status))
            ):
                kind, raw_customer, raw_ts = fields[1], fields[3], fields[5]
                raw_amount, raw_status = (
                    (fields[7], fields[9]) if len(fields) == 10 else (None, None)
                )
            else:
                if isinstance(fields, list):
                    fields = dict(zip(fields[::2], fields[1::2], strict=False))
                kind, raw_customer, raw_ts = fields.get(k_kind), fields.get(k_cid), fields.get(k_ts)
                raw_amount, raw_status = fields.get(k_amount), fields.get(k_status)
            if kind is None:
                raise LookupError
            name = "customer_id"
            if raw_customer is None:
                raise LookupError
            customer = int(raw_customer)
            if not 0 <= customer <= MAX_ID:
                raise ValueError
            name = "ts"
            if raw_ts is None:
                raise LookupError
            ts = int(raw_ts)
            if not 0 <= ts < MAX_TS_US:
                raise ValueError
            if kind == v_payment:
                name = "amount_bdt"
                if raw_amount is None:
                    raise LookupError
                amount = float(raw_amount)
                if not 0.0 <= amount < _INF:
                    raise ValueError
                name = "status"
                if raw_status is None:
                    raise LookupError
                if raw_status not in statuses:
                    raise ValueError
                payment, is_failed = True, raw_status == v_failed
            elif kind == v_click:
                payment, amount, is_failed = False, 0.0, False
            else:
                name = "kind"
                raise ValueError
        except LookupError:
            reason = f"missing:{name}" if name else "deleted"
        except (ValueError, TypeError):
            reason = f"bad:{name}"
        else:
            customers.append(customer)
            times.append(ts)
            is_payment.append(payment)
            amounts.append(amount)
            failed.append(is_failed)
            continue
        rejected[reason] += 1
        if reason not in examples:
            examples[reason] = _text(entry_id)
    batch = EventBatch(
        np.array(customers, dtype=np.int64),
        np.array(times, dtype=np.int64),
        np.array(is_payment, dtype=np.bool_),
        np.array(amounts, dtype=np.float64),
        np.array(failed, dtype=np.bool_),
    )
    return DecodedEntries(batch, rejected, examples)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# ------------------------------------------------------------------------------ window state
def empty_feature_frame() -> pd.DataFrame:
    """A frame with the pushed columns and dtypes and no rows: ``customer_id``,
    ``event_timestamp`` (the customer's latest event time), ``created_timestamp`` (the same, as
    in the offline files; the push source's batch source names it, so Feast requires it) and
    the features."""
    return pd.DataFrame(
        {
            "customer_id": pd.Series([], dtype="int64"),
            "event_timestamp": pd.Series([], dtype="datetime64[ns, UTC]"),
            "created_timestamp": pd.Series([], dtype="datetime64[ns, UTC]"),
            **{name: pd.Series([], dtype=dtype) for name, dtype in FEATURE_DTYPES.items()},
        }
    )


@dataclass
class _Pending:
    rows_before: int
    watermark_before: int | None
    late_before: int
    capped_before: int
    drop: IntArray


class VelocityState:
    """One hour of events per customer, and the six features as of each customer's latest event.

    Rows are held as columns in arrival order; a batch update finds the touched customers' rows
    with one hash lookup and computes every window with ``bincount``, so the cost per batch is
    linear in the rows held plus the batch. :meth:`update` is provisional until :meth:`commit`
    (or the next update) and can be undone with :meth:`rollback`, so a failed push leaves the
    state as it was.
    """

    def __init__(self, max_events_per_customer: int = 10_000, initial_capacity: int = 65_536):
        if max_events_per_customer < 1:
            raise ValueError("max_events_per_customer must be at least 1")
        self.max_events_per_customer = max_events_per_customer
        capacity = max(16, initial_capacity)
        self._customer = np.empty(capacity, np.int64)
        self._ts = np.empty(capacity, np.int64)
        self._is_payment = np.empty(capacity, np.bool_)
        self._amount = np.empty(capacity, np.float64)
        self._failed = np.empty(capacity, np.bool_)
        self._rows = 0
        self._watermark: int | None = None
        self._pending: _Pending | None = None
        #: Events ignored because they were older than the watermark minus one hour.
        self.late_events = 0
        #: Events dropped because a customer had more than ``max_events_per_customer`` in an hour.
        self.capped_events = 0

    # -- inspection
    @property
    def watermark_us(self) -> int | None:
        """The latest event time seen (epoch microseconds), or None before any event."""
        return self._watermark

    @property
    def rows_held(self) -> int:
        """Events currently held (including some not yet swept out)."""
        return self._rows

    @property
    def customers_held(self) -> int:
        """Customers with an event held (some may only be forgotten at the next sweep)."""
        live = self._ts[: self._rows] != _DEAD
        return int(np.unique(self._customer[: self._rows][live]).size)

    def features(self, customer_ids: Iterable[int]) -> pd.DataFrame:
        """The features of these customers as of each one's latest event; customers with no
        event in the state are left out."""
        wanted = np.unique(np.fromiter(customer_ids, dtype=np.int64))
        frame, _ = self._compute(wanted)
        return frame

    def features_for(self, customer_id: int) -> dict[str, Any] | None:
        """One customer's ``event_timestamp`` and features, or None if it has no event held."""
        frame = self.features([customer_id])
        if frame.empty:
            return None
        row = frame.iloc[0]
        result: dict[str, Any] = {"event_timestamp": row["event_timestamp"]}
        for name, dtype in FEATURE_DTYPES.items():
            result[name] = int(row[name]) if dtype == "int64" else float(row[name])
        return result

    # -- updates
    def update(self, batch: EventBatch) -> pd.DataFrame:
        """Add a batch (in arrival order) and return one row per customer it touched, sorted by
        ``customer_id``, in the columns of :func:`empty_feature_frame`. Late events are counted
        in :attr:`late_events` and touch nobody. Commits any previous update."""
        self.commit()
        count = len(batch)
        if count == 0:
            return empty_feature_frame()
        running = np.maximum.accumulate(batch.ts_us)
        if self._watermark is not None:
            running = np.maximum(running, self._watermark)
        on_time = batch.ts_us > running - WINDOW_1H_US
        accepted = int(on_time.sum())
        self._reserve(accepted)
        self._pending = _Pending(
            self._rows,
            self._watermark,
            self.late_events,
            self.capped_events,
            np.empty(0, np.int64),
        )
        self._watermark = int(running[-1])
        self.late_events += count - accepted
        start, stop = self._rows, self._rows + accepted
        self._customer[start:stop] = batch.customer_id[on_time]
        self._ts[start:stop] = batch.ts_us[on_time]
        self._is_payment[start:stop] = batch.is_payment[on_time]
        self._amount[start:stop] = batch.amount_bdt[on_time]
        self._failed[start:stop] = batch.failed[on_time]
        self._rows = stop
        touched = np.unique(batch.customer_id[on_time])
        frame, drop = self._compute(touched, enforce_cap=True)
        self._pending.drop = drop
        return frame

    def commit(self) -> None:
        """Make the last update permanent (drops the rows it found expired or over the cap)."""
        if self._pending is None:
            return
        self._ts[self._pending.drop] = _DEAD
        self._pending = None

    def rollback(self) -> None:
        """Undo the last uncommitted update, as if its batch had never been seen."""
        pending = self._pending
        if pending is None:
            return
        self._rows = pending.rows_before
        self._watermark = pending.watermark_before
        self.late_events = pending.late_before
        self.capped_events = pending.capped_before
        self._pending = None

    # -- internals
    def _compute(
        self, touched: IntArray, *, enforce_cap: bool = False
    ) -> tuple[pd.DataFrame, IntArray]:
        """Features of ``touched`` (sorted unique ids) and the rows that can be dropped."""
        if touched.size == 0 or self._rows == 0:
            return empty_feature_frame(), np.empty(0, np.int64)
        held = self._customer[: self._rows]
        group_of_row = pd.Index(touched).get_indexer(pd.Index(held))
        rows = np.flatnonzero(group_of_row >= 0)
        group = group_of_row[rows]
        ts = self._ts[rows]
        alive = ts != _DEAD
        if self._pending is not None and self._pending.drop.size:
            alive &= ~np.isin(rows, self._pending.drop)  # dropped once committed
        rows, group, ts = rows[alive], group[alive], ts[alive]
        n_groups = touched.size
        latest = np.full(n_groups, _DEAD, dtype=np.int64)
        np.maximum.at(latest, group, ts)
        present = latest != _DEAD
        row_latest = latest[group]
        in_hour = ts > row_latest - WINDOW_1H_US
        drop = rows[~in_hour]
        if enforce_cap:
            in_hour, capped = self._cap(rows, group, ts, in_hour, n_groups)
            if capped.size:
                self.capped_events += int(capped.size)
                drop = np.concatenate([drop, capped])
        in_10m = ts > row_latest - WINDOW_10M_US
        is_payment = self._is_payment[rows]
        amount = self._amount[rows]
        pay_1h = in_hour & is_payment
        pay_10m = in_10m & pay_1h
        failed_10m = pay_10m & self._failed[rows]
        clicks_10m = in_10m & in_hour & ~is_payment

        def count(mask: BoolArray) -> IntArray:
            return np.bincount(group[mask], minlength=n_groups).astype(np.int64)

        def total(mask: BoolArray) -> FloatArray:
            return np.asarray(
                np.bincount(group[mask], weights=amount[mask], minlength=n_groups), np.float64
            )

        stamps = pd.to_datetime(latest[present], unit="us", utc=True)
        frame = pd.DataFrame(
            {
                "customer_id": touched[present].astype(np.int64),
                "event_timestamp": stamps,
                "created_timestamp": stamps,
                "payments_10m": count(pay_10m)[present],
                "amount_10m_bdt": total(pay_10m)[present],
                "failed_payments_10m": count(failed_10m)[present],
                "payments_1h": count(pay_1h)[present],
                "amount_1h_bdt": total(pay_1h)[present],
                "clicks_10m": count(clicks_10m)[present],
            }
        )
        return frame, drop

    def _cap(
        self, rows: IntArray, group: IntArray, ts: IntArray, in_hour: BoolArray, n_groups: int
    ) -> tuple[BoolArray, IntArray]:
        """Keep each customer's newest ``max_events_per_customer`` in-hour events (ties: the
        later arrival is newer); returns the new in-hour mask and the rows beyond the cap."""
        per_customer = np.bincount(group[in_hour], minlength=n_groups)
        if per_customer.max(initial=0) <= self.max_events_per_customer:
            return in_hour, np.empty(0, np.int64)
        over = np.flatnonzero(in_hour & (per_customer[group] > self.max_events_per_customer))
        order = over[np.lexsort((rows[over], ts[over], group[over]))]
        sorted_group = group[order]
        # Position counted from the newest event of each customer (0 = newest).
        group_end = np.searchsorted(sorted_group, sorted_group, side="right")
        from_newest = group_end - 1 - np.arange(order.size)
        beyond = order[from_newest >= self.max_events_per_customer]
        in_hour = in_hour.copy()
        in_hour[beyond] = False
        return in_hour, rows[beyond]

    def _reserve(self, extra: int) -> None:
        """Room for ``extra`` more rows: sweep out what can no longer matter, grow if needed."""
        capacity = self._customer.shape[0]
        if self._rows + extra <= capacity:
            return
        self._sweep()
        if self._rows + extra <= capacity and self._rows <= capacity // 2:
            return
        capacity = max(2 * capacity, 2 * (self._rows + extra))
        for name in ("_customer", "_ts", "_is_payment", "_amount", "_failed"):
            old = getattr(self, name)
            new = np.empty(capacity, old.dtype)
            new[: self._rows] = old[: self._rows]
            setattr(self, name, new)

    def expire(self) -> None:
        """Commit, then free what can no longer matter now (also done as the buffer fills): the
        events out of their customer's hour and every customer whose latest event is two hours
        or more behind the watermark (no on-time event can bring its events back into a
        window)."""
        self.commit()
        self._sweep()

    def _sweep(self) -> None:
        n = self._rows
        ts = self._ts[:n]
        keep = ts != _DEAD
        if self._watermark is not None:
            customer = self._customer[:n]
            codes, uniques = pd.factorize(customer)
            latest = np.full(len(uniques), _DEAD, dtype=np.int64)
            np.maximum.at(latest, codes[keep], ts[keep])
            row_latest = latest[codes]
            keep &= (row_latest > self._watermark - RETENTION_US) & (ts > row_latest - WINDOW_1H_US)
        kept = int(keep.sum())
        for name in ("_customer", "_ts", "_is_payment", "_amount", "_failed"):
            array = getattr(self, name)
            array[:kept] = array[:n][keep]
        self._rows = kept


# ------------------------------------------------------------------------------ consumer
@dataclass
class StreamStats:
    """What one :meth:`StreamConsumer.run` did."""

    #: Stream entries read (accepted, late and rejected alike).
    events_read: int = 0
    #: Entries that were valid and on time, and so updated the windows.
    events_accepted: int = 0
    rows_pushed: int = 0
    batches: int = 0
    pushes: int = 0
    late_events: int = 0
    capped_events: int = 0
    #: Rejected entries by reason (``missing:<field>``, ``bad:<field>``, ``deleted``).
    rejected: dict[str, int] = field(default_factory=dict)
    #: Wall-clock seconds of the whole run, idle waits included.
    seconds: float = 0.0
    #: Seconds from asking Redis for each non-empty batch to having acknowledged it (reading,
    #: decoding, updating, pushing): the time the stream was actually flowing.
    busy_seconds: float = 0.0

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    @property
    def events_per_s(self) -> float:
        """Throughput while there was work: events read per busy second."""
        return self.events_read / self.busy_seconds if self.busy_seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "events_read": self.events_read,
            "events_accepted": self.events_accepted,
            "rows_pushed": self.rows_pushed,
            "batches": self.batches,
            "pushes": self.pushes,
            "late_events": self.late_events,
            "capped_events": self.capped_events,
            "rejected": dict(self.rejected),
            "seconds": round(self.seconds, 3),
            "busy_seconds": round(self.busy_seconds, 3),
            "events_per_s": round(self.events_per_s, 1),
        }

    def __str__(self) -> str:
        rejected = ", ".join(f"{k}={v}" for k, v in sorted(self.rejected.items())) or "none"
        return (
            f"{self.events_read} events read ({self.events_accepted} accepted, "
            f"{self.late_events} late, {self.rejected_total} rejected: {rejected}), "
            f"{self.rows_pushed} rows pushed in {self.pushes} pushes, "
            f"{self.events_per_s:,.0f} events/s over {self.busy_seconds:.2f}s busy "
            f"({self.seconds:.2f}s in all)"
        )


def _stream_entries(reply: Any) -> Entries:
    """The entries of a raw one-stream XREADGROUP reply: RESP2 ``[[stream, entries]]``, RESP3
    ``{stream: entries}``, or nil when BLOCK timed out."""
    if not reply:
        return []
    groups = reply.values() if isinstance(reply, dict) else (item[1] for item in reply)
    return [(entry[0], entry[1]) for items in groups for entry in items]


class _RawConnection:
    """A connection from the client's pool for raw, pipelined commands: replies skip redis-py's
    parsing callbacks (the entries stay flat lists), and a command may be sent before earlier
    replies were read; replies are read in order."""

    def __init__(self, client: redis.Redis) -> None:
        self._pool = client.connection_pool
        self._connection: Any = self._pool.get_connection()
        self._expected: deque[str] = deque()

    def send(self, tag: str, *args: Any) -> None:
        self._connection.send_command(*args)
        self._expected.append(tag)

    def receive(self, tag: str) -> Any:
        """The reply to the oldest outstanding ``tag`` command; replies to commands sent before
        it are read on the way (an error reply raises)."""
        while self._expected:
            current = self._expected.popleft()
            reply = self._connection.read_response()
            if current == tag:
                return reply
        raise RuntimeError(f"no {tag} command outstanding")

    def close(self) -> None:
        """Read the outstanding replies (so every XACK sent is known to have been applied) and
        give the connection back; on any error, drop it instead."""
        try:
            while self._expected:
                self._expected.popleft()
                self._connection.read_response()
        except BaseException:
            self._connection.disconnect()
            raise
        finally:
            self._pool.release(self._connection)


class StreamConsumer:
    """Reads ``stream`` as ``consumer_name`` of consumer group ``group`` and pushes features.

    The group is created at the start of the stream (with MKSTREAM) if missing. A run first
    re-reads this consumer's pending entries (delivered before a crash, never acknowledged),
    then, if ``claim_idle_ms`` is set, claims (XAUTOCLAIM) entries that any consumer of the group
    left pending for at least that long, then reads new entries, ``batch_size`` at a time
    (blocking up to ``block_ms`` when there are none). Each batch updates the window state and
    is pushed with ONE call to ``push`` (skipped when it touched no customer: all entries
    rejected or late), then acknowledged. While a batch is processed the next one is already
    requested, so Redis and the consumer work in parallel.
    """

    def __init__(
        self,
        client: redis.Redis,
        stream: str,
        group: str,
        consumer_name: str,
        push: Callable[[pd.DataFrame], None],
        batch_size: int = 5_000,
        block_ms: int = 1_000,
        *,
        state: VelocityState | None = None,
        claim_idle_ms: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1 (got {batch_size})")
        if block_ms < 1:
            raise ValueError(f"block_ms must be at least 1 (got {block_ms}); 0 blocks forever")
        if claim_idle_ms is not None and claim_idle_ms < 0:
            raise ValueError(f"claim_idle_ms must be >= 0 (got {claim_idle_ms})")
        self.client = client
        self.stream = stream
        self.group = group
        self.consumer_name = consumer_name
        self.push = push
        self.batch_size = batch_size
        self.block_ms = block_ms
        self.state = state if state is not None else VelocityState()
        self.claim_idle_ms = claim_idle_ms
        self._stopping = False
        self._phase = "pending"
        self._cursor = "0"

    def stop(self) -> None:
        """Ask a running :meth:`run` to return after the current batch (from ``push``, a signal
        handler or another thread)."""
        self._stopping = True

    def ensure_group(self) -> None:
        """Create the consumer group (and the stream) unless it exists."""
        try:
            self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    def run(
        self, max_events: int | None = None, idle_timeout_s: float | None = None
    ) -> StreamStats:
        """Consume until ``max_events`` entries were read, or no new entry came for
        ``idle_timeout_s`` seconds, or :meth:`stop` was called; with none of these, forever.

        An exception from ``push`` propagates after the batch's changes to the window state were
        rolled back; its entries stay pending and the next run reads them again.
        """
        if max_events is not None and max_events < 0:
            raise ValueError(f"max_events must be >= 0 (got {max_events})")
        if idle_timeout_s is not None and idle_timeout_s < 0:
            raise ValueError(f"idle_timeout_s must be >= 0 (got {idle_timeout_s})")
        self._stopping = False
        self._phase, self._cursor = "pending", "0"
        self.ensure_group()
        stats = StreamStats()
        started = time.perf_counter()
        last_entries_at = time.monotonic()
        connection = _RawConnection(self.client)
        in_flight = False
        try:
            while True:
                if not in_flight:
                    count = self._count(max_events, stats.events_read)
                    if self._stopping or count == 0:
                        break
                    block = self.block_ms
                    if idle_timeout_s is not None:
                        left = idle_timeout_s - (time.monotonic() - last_entries_at)
                        if left <= 0 and self._phase == "new":
                            break
                        block = max(1, min(block, math.ceil(left * 1000)))
                    self._request(connection, count, block)
                waiting = time.perf_counter()
                reply = connection.receive("read")
                in_flight = False
                entries = self._advance(reply, stats)
                if not entries:
                    continue
                # Ask for the next batch now: Redis prepares it while this one is processed.
                count = self._count(max_events, stats.events_read + len(entries))
                if count and not self._stopping:
                    block = self.block_ms
                    if idle_timeout_s is not None:
                        block = max(1, min(block, math.ceil(idle_timeout_s * 1000)))
                    self._request(connection, count, block)
                    in_flight = True
                self._process(entries, stats, connection)
                stats.busy_seconds += time.perf_counter() - waiting
                last_entries_at = time.monotonic()
        finally:
            try:
                connection.close()
            finally:
                stats.seconds = time.perf_counter() - started
                logger.info("stream %s: %s", self.stream, stats)
        return stats

    def _count(self, max_events: int | None, read: int) -> int:
        if max_events is None:
            return self.batch_size
        return max(0, min(self.batch_size, max_events - read))

    def _request(self, connection: _RawConnection, count: int, block: int) -> None:
        if self._phase == "claim":
            args: tuple[Any, ...] = (
                "XAUTOCLAIM",
                self.stream,
                self.group,
                self.consumer_name,
                self.claim_idle_ms,
                self._cursor,
                "COUNT",
                count,
            )
        else:
            blocking = ("BLOCK", block) if self._phase == "new" else ()
            args = (
                "XREADGROUP",
                "GROUP",
                self.group,
                self.consumer_name,
                "COUNT",
                count,
                *blocking,
                "STREAMS",
                self.stream,
                self._cursor,
            )
        connection.send("read", *args)

    def _advance(self, reply: Any, stats: StreamStats) -> Entries:
        """The entries of a read reply; moves the cursor and, at the end of the pending or
        claimable entries, on to the next phase."""
        if self._phase == "claim":
            self._cursor = _text(reply[0])
            entries: Entries = [(entry[0], entry[1]) for entry in reply[1]]
            deleted = len(reply[2]) if len(reply) > 2 else 0
            if deleted:
                # Redis already dropped them from the pending list: count them, nothing to ack.
                stats.rejected["deleted"] = stats.rejected.get("deleted", 0) + deleted
                logger.warning("stream %s: %d pending entries were deleted", self.stream, deleted)
            if self._cursor == "0-0":
                self._phase, self._cursor = "new", ">"
            return entries
        entries = _stream_entries(reply)
        if self._phase == "pending":
            if entries:
                self._cursor = _text(entries[-1][0])
            elif self.claim_idle_ms is not None:
                self._phase, self._cursor = "claim", "0-0"
            else:
                self._phase, self._cursor = "new", ">"
        return entries

    def _process(self, entries: Entries, stats: StreamStats, connection: _RawConnection) -> None:
        decoded = decode_entries(entries)
        late_before, capped_before = self.state.late_events, self.state.capped_events
        rows = self.state.update(decoded.batch)
        try:
            if len(rows):
                self.push(rows)
        except BaseException:
            self.state.rollback()
            raise
        self.state.commit()
        connection.send("ack", "XACK", self.stream, self.group, *[e[0] for e in entries])
        late = self.state.late_events - late_before
        stats.batches += 1
        stats.events_read += len(entries)
        stats.events_accepted += len(decoded.batch) - late
        stats.late_events += late
        stats.capped_events += self.state.capped_events - capped_before
        if len(rows):
            stats.pushes += 1
            stats.rows_pushed += len(rows)
        if decoded.rejected:
            for reason, n in decoded.rejected.items():
                stats.rejected[reason] = stats.rejected.get(reason, 0) + n
            logger.warning(
                "stream %s: rejected %s (first ids: %s)",
                self.stream,
                dict(decoded.rejected),
                decoded.examples,
            )
        if late:
            logger.warning("stream %s: ignored %d late events", self.stream, late)
