"""Context features computed at request time: calendar, festival proximity and the checkout.

These are the bodies of the feature repository's on-demand feature views, and the feature
transformer calls the same functions, so training (``get_historical_features``) and serving
(``get_online_features``) compute them identically. Every function takes and returns pandas
objects, is vectorised (calendar work is done once per distinct local date, not per row), and
turns missing inputs into missing outputs instead of raising.

Time arrives as ``request_ts_us``: microseconds since the Unix epoch, UTC, as the checkout service
stamps its request. Local time is Asia/Dhaka (UTC+6, no daylight saving).
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from typing import Final

import numpy as np
import pandas as pd

from getit_ml.data import calendar

DHAKA: Final = "Asia/Dhaka"
#: Friday is the weekend in Bangladesh (Saturday too for offices; shopping peaks on Friday).
FRIDAY: Final = 4

#: Festivals whose distance is a feature of its own (the rest count in days_to_next_festival).
TRACKED_FESTIVALS: Final[dict[str, str]] = {
    "days_to_eid_ul_fitr": calendar.EID_UL_FITR,
    "days_to_eid_ul_adha": calendar.EID_UL_ADHA,
    "days_to_pohela_boishakh": calendar.POHELA_BOISHAKH,
    "days_to_durga_puja": calendar.DURGA_PUJA,
}

#: Output columns of :func:`calendar_context`, with their Feast types.
CALENDAR_CONTEXT_FEATURES: Final[dict[str, str]] = {
    "hour_local": "int64",
    "day_of_week": "int64",
    "is_weekend": "bool",
    "is_ramadan": "bool",
    "is_payday": "bool",
    "days_since_payday": "int64",
    **dict.fromkeys(TRACKED_FESTIVALS, "int64"),
    "days_to_next_festival": "int64",
    "festival_demand_multiplier": "float64",
}

#: Output columns of :func:`transaction_context`, with their Feast types.
TRANSACTION_CONTEXT_FEATURES: Final[dict[str, str]] = {
    "amount_log": "float64",
    "amount_vs_avg_30d": "float64",
    "amount_vs_max_30d": "float64",
    "is_new_device": "bool",
    "is_wallet_change": "bool",
    "is_wallet": "bool",
    "is_card": "bool",
    "is_cod": "bool",
}

#: Request fields the checkout service sends (and training rows carry).
CHECKOUT_REQUEST_FIELDS: Final[dict[str, str]] = {
    "request_ts_us": "int64",
    "amount_bdt": "float64",
    "payment_method": "string",
    "checkout_device_id": "int64",
    "checkout_wallet_account_id": "int64",
}

_WALLETS: Final = ("bkash", "nagad", "rocket")


@lru_cache(maxsize=4096)
def _calendar_row(day: date) -> tuple[int, ...]:
    """Calendar facts of one local date (cached: a batch has few distinct dates)."""
    festival_days = [
        calendar.days_to_next_festival(day, [name])[1] for name in TRACKED_FESTIVALS.values()
    ]
    _, to_next = calendar.days_to_next_festival(day)
    return (
        int(calendar.is_ramadan(day)),
        int(calendar.is_payday(day)),
        calendar.days_since_payday(day),
        *festival_days,
        to_next,
    )


def local_times(request_ts_us: pd.Series) -> pd.Series:
    """Epoch microseconds (UTC) as Dhaka local timestamps; unparseable values become NaT."""
    micros = pd.to_numeric(request_ts_us, errors="coerce")
    return pd.to_datetime(micros, unit="us", utc=True).dt.tz_convert(DHAKA)


def calendar_context(request_ts_us: pd.Series) -> pd.DataFrame:
    """Calendar and festival features for each request time (rows with no time stay null)."""
    local = local_times(request_ts_us)
    days = local.dt.date
    known = local.notna().to_numpy()
    distinct = sorted({d for d in days[known]})
    facts = {d: _calendar_row(d) for d in distinct}
    multipliers = {d: calendar.demand_multiplier(d) for d in distinct}
    names = ["is_ramadan", "is_payday", "days_since_payday", *TRACKED_FESTIVALS, "to_next"]
    table = pd.DataFrame.from_dict(facts, orient="index", columns=names)
    joined = table.reindex(days.where(known, None).to_numpy())
    result = pd.DataFrame(index=request_ts_us.index)
    result["hour_local"] = local.dt.hour.astype("Int64")
    result["day_of_week"] = local.dt.dayofweek.astype("Int64")
    result["is_weekend"] = (local.dt.dayofweek == FRIDAY).where(known).astype("boolean")
    for flag in ("is_ramadan", "is_payday"):
        result[flag] = pd.array(joined[flag].to_numpy(), dtype="Int64").astype("boolean")
    result["days_since_payday"] = pd.array(joined["days_since_payday"].to_numpy(), dtype="Int64")
    for column in TRACKED_FESTIVALS:
        result[column] = pd.array(joined[column].to_numpy(), dtype="Int64")
    result["days_to_next_festival"] = pd.array(joined["to_next"].to_numpy(), dtype="Int64")
    result["festival_demand_multiplier"] = pd.array(
        [multipliers.get(d, np.nan) if ok else np.nan for d, ok in zip(days, known, strict=True)],
        dtype="Float64",
    )
    return result


def transaction_context(inputs: pd.DataFrame) -> pd.DataFrame:
    """Checkout features from the request and the customer's recent payment history.

    Expects the request fields of :data:`CHECKOUT_REQUEST_FIELDS` plus ``avg_payment_amount_30d``,
    ``max_payment_amount_30d``, ``last_device_id`` and ``last_wallet_account_id`` (null for a
    customer the store does not know). A first-time customer has no last device: every device is
    new to them, and no wallet is a change.
    """
    amount = pd.to_numeric(inputs["amount_bdt"], errors="coerce").astype("Float64")
    average = pd.to_numeric(inputs["avg_payment_amount_30d"], errors="coerce").astype("Float64")
    largest = pd.to_numeric(inputs["max_payment_amount_30d"], errors="coerce").astype("Float64")
    method = inputs["payment_method"].astype("string").str.lower()
    device = pd.to_numeric(inputs["checkout_device_id"], errors="coerce").astype("Int64")
    last_device = pd.to_numeric(inputs["last_device_id"], errors="coerce").astype("Int64")
    wallet = pd.to_numeric(inputs["checkout_wallet_account_id"], errors="coerce").astype("Int64")
    last_wallet = pd.to_numeric(inputs["last_wallet_account_id"], errors="coerce").astype("Int64")
    result = pd.DataFrame(index=inputs.index)
    result["amount_log"] = np.log1p(amount.clip(lower=0))
    result["amount_vs_avg_30d"] = amount / average.where(average > 0)
    result["amount_vs_max_30d"] = amount / largest.where(largest > 0)
    result["is_new_device"] = (device != last_device).fillna(device.notna())
    has_previous_wallet = last_wallet.notna() & (last_wallet >= 0)
    result["is_wallet_change"] = (
        (wallet.notna() & (wallet >= 0) & has_previous_wallet & (wallet != last_wallet))
        .fillna(False)
        .astype(bool)
    )
    result["is_wallet"] = method.isin(_WALLETS).fillna(False).astype(bool)
    result["is_card"] = (method == "card").fillna(False).astype(bool)
    result["is_cod"] = (method == "cod").fillna(False).astype(bool)
    return result


# The two bodies below are what the feature repository registers as on-demand feature views.
# Feast stores a view's *source text* and re-executes it in a bare namespace (only pd and np) when
# it loads the registry, so each body imports what it needs itself and stays a one-liner.


def calendar_context_view(inputs: pd.DataFrame) -> pd.DataFrame:
    """Body of the ``calendar_context`` on-demand feature view."""
    from getit_ml.features.context import calendar_context

    return calendar_context(inputs["request_ts_us"])


def transaction_context_view(inputs: pd.DataFrame) -> pd.DataFrame:
    """Body of the ``transaction_context`` on-demand feature view."""
    from getit_ml.features.context import transaction_context

    return transaction_context(inputs)
