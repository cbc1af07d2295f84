"""Context features computed at request time: calendar, festival proximity and the checkout.

These are the bodies of the feature repository's on-demand feature views (Feast ``python``
mode: columns in, columns out, as dicts of lists), and the feature transformer calls the same
functions, so training (``get_historical_features``) and serving (``get_online_features``)
compute them identically. Plain Python on purpose: a checkout scores one payment, and building
pandas frames for one row costs more than the whole online read. Calendar work is cached per
local date. Missing inputs give missing outputs, never an exception.

Time arrives as ``request_ts_us``: microseconds since the Unix epoch, UTC, as the checkout service
stamps its request. Local time is Asia/Dhaka (UTC+6, no daylight saving).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any, Final

from getit_ml.data import calendar

DHAKA_OFFSET: Final = timedelta(hours=6)
#: Friday is the weekend in Bangladesh (Saturday too for offices; shopping peaks on Friday).
FRIDAY: Final = 4

#: Festivals whose distance is a feature of its own (the rest count in days_to_next_festival).
TRACKED_FESTIVALS: Final[dict[str, str]] = {
    "days_to_eid_ul_fitr": calendar.EID_UL_FITR,
    "days_to_eid_ul_adha": calendar.EID_UL_ADHA,
    "days_to_pohela_boishakh": calendar.POHELA_BOISHAKH,
    "days_to_durga_puja": calendar.DURGA_PUJA,
}

#: Output columns of :func:`calendar_features`, with their Feast types.
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

#: Output columns of :func:`transaction_features`, with their Feast types.
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

_WALLETS: Final = frozenset({"bkash", "nagad", "rocket"})
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _number(value: Any) -> float | None:
    """A finite float, or None for anything missing or unusable (None, NaN, text)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _integer(value: Any) -> int | None:
    number = _number(value)
    return None if number is None else int(number)


@lru_cache(maxsize=8192)
def _day_facts(day: date) -> tuple[Any, ...]:
    """Calendar facts of one local date (a batch has few distinct dates)."""
    festival_days = [
        calendar.days_to_next_festival(day, [name])[1] for name in TRACKED_FESTIVALS.values()
    ]
    return (
        calendar.is_ramadan(day),
        calendar.is_payday(day),
        calendar.days_since_payday(day),
        *festival_days,
        calendar.days_to_next_festival(day)[1],
        calendar.demand_multiplier(day),
    )


def local_time(request_ts_us: Any) -> datetime | None:
    """Dhaka local time of an epoch-microsecond stamp; None when missing or out of range."""
    micros = _integer(request_ts_us)
    if micros is None:
        return None
    try:
        moment = _EPOCH + timedelta(microseconds=micros) + DHAKA_OFFSET
        _day_facts(moment.date())
    except (OverflowError, ValueError):  # outside the calendar's 1900-2100
        return None
    return moment


def calendar_features(request_ts_us: Sequence[Any]) -> dict[str, list[Any]]:
    """Calendar and festival features for each request time (None where the time is missing)."""
    columns: dict[str, list[Any]] = {name: [] for name in CALENDAR_CONTEXT_FEATURES}
    facts_names = [
        "is_ramadan",
        "is_payday",
        "days_since_payday",
        *TRACKED_FESTIVALS,
        "days_to_next_festival",
        "festival_demand_multiplier",
    ]
    for stamp in request_ts_us:
        moment = local_time(stamp)
        if moment is None:
            for values in columns.values():
                values.append(None)
            continue
        columns["hour_local"].append(moment.hour)
        columns["day_of_week"].append(moment.weekday())
        columns["is_weekend"].append(moment.weekday() == FRIDAY)
        for name, fact in zip(facts_names, _day_facts(moment.date()), strict=True):
            columns[name].append(fact)
    return columns


def transaction_features(inputs: Mapping[str, Sequence[Any]]) -> dict[str, list[Any]]:
    """Checkout features from the request and the customer's recent payment history.

    Expects the request fields of :data:`CHECKOUT_REQUEST_FIELDS` plus ``avg_payment_amount_30d``,
    ``max_payment_amount_30d``, ``last_device_id`` and ``last_wallet_account_id`` (None for a
    customer the store does not know; -1 means "none yet"). A first-time customer has no last
    device: every device is new to them, and no wallet is a change.
    """
    columns: dict[str, list[Any]] = {name: [] for name in TRANSACTION_CONTEXT_FEATURES}
    rows = zip(
        inputs["amount_bdt"],
        inputs["avg_payment_amount_30d"],
        inputs["max_payment_amount_30d"],
        inputs["payment_method"],
        inputs["checkout_device_id"],
        inputs["last_device_id"],
        inputs["checkout_wallet_account_id"],
        inputs["last_wallet_account_id"],
        strict=True,
    )
    for amount, average, largest, method, device, last_device, wallet, last_wallet in rows:
        money = _number(amount)
        mean = _number(average)
        peak = _number(largest)
        columns["amount_log"].append(math.log1p(max(money, 0.0)) if money is not None else None)
        columns["amount_vs_avg_30d"].append(money / mean if money is not None and mean else None)
        columns["amount_vs_max_30d"].append(money / peak if money is not None and peak else None)
        device_id, previous_device = _integer(device), _integer(last_device)
        known_previous = previous_device is not None and previous_device >= 0
        columns["is_new_device"].append(
            device_id is not None and (not known_previous or device_id != previous_device)
        )
        wallet_id, previous_wallet = _integer(wallet), _integer(last_wallet)
        columns["is_wallet_change"].append(
            wallet_id is not None
            and wallet_id >= 0
            and previous_wallet is not None
            and previous_wallet >= 0
            and wallet_id != previous_wallet
        )
        rail = method.lower() if isinstance(method, str) else ""
        columns["is_wallet"].append(rail in _WALLETS)
        columns["is_card"].append(rail == "card")
        columns["is_cod"].append(rail == "cod")
    return columns


# The two bodies below are what the feature repository registers as on-demand feature views.
# Feast stores a view's *source text* and re-executes it in a bare namespace when it loads the
# registry, so each body imports what it needs itself and stays a one-liner.


def calendar_context_view(inputs: dict[str, Any]) -> dict[str, Any]:
    """Body of the ``calendar_context`` on-demand feature view (python mode)."""
    from getit_ml.features.context import calendar_features

    return calendar_features(inputs["request_ts_us"])


def transaction_context_view(inputs: dict[str, Any]) -> dict[str, Any]:
    """Body of the ``transaction_context`` on-demand feature view (python mode)."""
    from getit_ml.features.context import transaction_features

    return transaction_features(inputs)


#: The bodies the feature repository's on-demand views may run, by function name: the feature
#: transformer computes a feature service's on-demand views with these (the same code as
#: Feast's, a millisecond less per request), finding each view's body by the name of the
#: function the repository gave it. A view with a new body adds its function here.
ON_DEMAND_FUNCTIONS: Final[dict[str, Callable[[dict[str, Any]], dict[str, Any]]]] = {
    function.__name__: function for function in (calendar_context_view, transaction_context_view)
}
