"""Churn's examples: active customers at weekly snapshots, labelled by the next 60 days.

At each snapshot (the end of a Dhaka business day, weekly), a customer with an order in the
previous 90 days is active; the label ``churned`` says whether they placed no order in the 60
days after. The first snapshot leaves four weeks of history; the last leaves the whole horizon
before the data ends, so every label is known. ``request_ts_us`` is the snapshot's time, as a
scoring request carries it (the calendar features are computed from it).

The scoring request declares its inputs' domains, checked by the transformer before any feature
is read: ``customer_id`` >= 0 (the contracts' ids), ``request_ts_us`` epoch microseconds from
:data:`EARLIEST_REQUEST` (2015-01-01; absolute, since retention runs and the demo score past
snapshots, the demo's in 2025-26) to five minutes after the request's arrival: features are read
as of now, so a snapshot in the future cannot be scored, and the window refuses a stamp in
seconds, milliseconds or nanoseconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from getit_ml.errors import UserError
from getit_ml.serving.domains import CLOCK_SKEW, FieldDomain, TimeWindow
from getit_ml.serving.runtime import RequestDefault, RequestInput
from getit_ml.training.dataset import EVENT_TIMESTAMP, EntityFrame
from getit_ml.training.steps import read_marketplace_table

LABEL: Final = "churned"
HORIZON: Final = timedelta(days=60)
ACTIVE_WINDOW: Final = timedelta(days=90)
CADENCE: Final = timedelta(days=7)
WARM_UP: Final = timedelta(days=28)
JOIN_COLUMNS: Final = ("customer_id", EVENT_TIMESTAMP, "request_ts_us")
IDENTIFIERS: Final = frozenset(JOIN_COLUMNS)
#: The earliest snapshot a scoring request may ask about.
EARLIEST_REQUEST: Final = datetime(2015, 1, 1, tzinfo=UTC)
REQUEST: Final = (
    RequestInput("customer_id", "INT64", domain=FieldDomain(ge=0)),
    RequestInput(
        "request_ts_us",
        "INT64",
        RequestDefault.now_us(),
        FieldDomain(window=TimeWindow(not_before=EARLIEST_REQUEST, max_ahead=CLOCK_SKEW)),
    ),
)
_DHAKA: Final = pd.Timedelta(hours=6)


def snapshots(first: pd.Timestamp, last: pd.Timestamp) -> pd.DatetimeIndex:
    """Weekly snapshot times (UTC) at the end of a Dhaka day, from ``first + WARM_UP`` while
    the horizon still ends by ``last``."""
    local_day = (first + _DHAKA).normalize() + WARM_UP
    start = local_day + pd.Timedelta(days=1) - _DHAKA - pd.Timedelta(microseconds=1)
    end = last - HORIZON
    if start > end:
        raise UserError(
            f"the data spans {first.date()} to {last.date()}: churn needs at least "
            f"{(WARM_UP + HORIZON).days} days (four weeks of history and the 60-day horizon)"
        )
    return pd.date_range(start, end, freq=CADENCE)


def churn_frame(orders: pd.DataFrame) -> pd.DataFrame:
    """One row per (snapshot, active customer): ``customer_id``, ``event_timestamp``,
    ``request_ts_us`` and ``churned``."""
    missing = [c for c in ("customer_id", "order_ts") if c not in orders.columns]
    if missing:
        raise UserError(f"orders table lacks column(s) {missing}: is it the orders table?")
    stamps = pd.to_datetime(orders["order_ts"], utc=True)
    times = stamps.to_numpy(dtype="datetime64[us]")
    customers = orders["customer_id"].to_numpy(dtype=np.int64)
    parts = []
    for snapshot in snapshots(stamps.min(), stamps.max()):
        at = np.datetime64(snapshot.tz_convert(None), "us")
        active_window = (times > at - np.timedelta64(ACTIVE_WINDOW)) & (times <= at)
        active = np.unique(customers[active_window])
        future = (times > at) & (times <= at + np.timedelta64(HORIZON))
        churned = ~np.isin(active, np.unique(customers[future]))
        parts.append(
            pd.DataFrame(
                {
                    "customer_id": active,
                    EVENT_TIMESTAMP: snapshot,
                    "request_ts_us": snapshot.value // 1_000,
                    LABEL: churned,
                }
            )
        )
    frame = pd.concat(parts, ignore_index=True)
    frame[EVENT_TIMESTAMP] = frame[EVENT_TIMESTAMP].dt.as_unit("us")
    return frame


def entity_rows(data_dir: Path) -> EntityFrame:
    """The churn family's examples in a marketplace folder."""
    return EntityFrame(churn_frame(read_marketplace_table(data_dir, "orders")), JOIN_COLUMNS, LABEL)


def sample_customers(marketplace: Path, n: int) -> list[dict[str, Any]]:
    """``n`` customers active at the last snapshot, half of them churners when there are that
    many, as scoring requests at that snapshot with their ``label``."""
    frame = churn_frame(read_marketplace_table(marketplace, "orders"))
    last = frame[frame[EVENT_TIMESTAMP] == frame[EVENT_TIMESTAMP].max()]
    churners = last[last[LABEL]].head(n // 2)
    stayers = last[~last[LABEL]].head(n - len(churners))
    return [
        {"customer_id": int(row["customer_id"]), "request_ts_us": int(row["request_ts_us"]),
         "label": bool(row[LABEL])}
        for row in [*churners.to_dict("records"), *stayers.to_dict("records")]
    ]  # fmt: skip


def describe_customer(row: Mapping[str, Any]) -> str:
    return f"customer {row['customer_id']}"
