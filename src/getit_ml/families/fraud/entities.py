"""Fraud's examples: one entity row per payment, scored as the checkout service asks.

Each row carries the join keys (``customer_id``, ``device_id``), the payment's time as
``event_timestamp``, the checkout request fields exactly as serving receives them (so the
on-demand features are computed as in serving), then ``payment_id``, the label ``is_fraud`` and
the ground-truth ``fraud_pattern`` (for per-pattern evaluation only).

The checkout request declares each input's domain (:class:`FieldDomain`), which the transformer
checks before any feature is read (a field-level 400 otherwise):

* ``amount_bdt``: finite, > 0 and at most :data:`MAX_CHECKOUT_BDT` (10 million taka). The
  generated marketplace's largest payment is about 210,600 BDT (a basket of appliances, in the
  demo's population of 20,000 payments) and account takeovers reach 90,000; the largest
  transaction of the real ULB credit-card set is 25,691 EUR, about 3.3 million BDT. One crore
  taka is almost 50 times the generator's largest payment and three times that outlier, and still
  below 2^24, so float32 (XGBoost's feature type) holds every amount under it to the taka. A zero
  or negative amount is not a checkout (refunds and card verifications are other flows), and
  1e308 is infinity in float32.
* ``payment_method``: one of the marketplace's rails
  (:data:`getit_ml.data.reference.PAYMENT_METHODS`, which the generator, the contracts and
  feature engineering use), 1 to 64 characters. An unknown rail is **rejected**: the model
  derives ``is_wallet`` / ``is_card`` / ``is_cod`` and the rail category from it and never saw a
  checkout without a rail, so scoring ``paypal`` as "rail missing" would be a guess presented as
  a score. A new rail joins the reference list, and the model is retrained.
* ids (customer, devices) are >= 0, as the contracts declare them; the wallet id is >= -1 (-1:
  no wallet, its default).
* ``request_ts_us``: epoch microseconds from :data:`EARLIEST_REQUEST` (2015-01-01) to five minutes
  after the request's arrival (clock skew). The past bound is absolute because the demo and
  backfills score historical payments (the demo's are of 2025); it still refuses 0, a stamp in
  seconds or milliseconds (January 1970) and one in nanoseconds (far in the future).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import pandas as pd

from getit_ml.data.reference import PAYMENT_METHODS
from getit_ml.errors import UserError
from getit_ml.features.context import CHECKOUT_REQUEST_FIELDS
from getit_ml.serving.domains import CLOCK_SKEW, FieldDomain, TimeWindow
from getit_ml.serving.runtime import RequestDefault, RequestInput
from getit_ml.training.dataset import EVENT_TIMESTAMP, EntityFrame, optional_text
from getit_ml.training.steps import read_marketplace_table

LABEL: Final = "is_fraud"
PATTERN: Final = "fraud_pattern"
#: What a missed fraud costs: its amount (a request field, and a model input).
AMOUNT: Final = "amount_bdt"
#: Columns of the entity rows that Feast's join consumes.
JOIN_COLUMNS: Final = ("customer_id", "device_id", EVENT_TIMESTAMP, *CHECKOUT_REQUEST_FIELDS)
#: Keys, clocks and identifiers: never model inputs. Fraudsters' fresh devices even get ids from
#: a separate range, so a tree would learn the id allocator; the comparisons that matter (new
#: device, wallet change) are features of their own (``transaction_context``).
IDENTIFIERS: Final = frozenset(
    {
        "payment_id",
        "customer_id",
        "device_id",
        EVENT_TIMESTAMP,
        "request_ts_us",
        "checkout_device_id",
        "checkout_wallet_account_id",
        "last_device_id",
        "last_wallet_account_id",
    }
)
#: The largest checkout the model scores, in taka (one crore; see the module docstring).
MAX_CHECKOUT_BDT: Final = 10_000_000.0
#: The earliest checkout time a request may carry (the past bound is absolute: the demo and
#: backfills score historical payments).
EARLIEST_REQUEST: Final = datetime(2015, 1, 1, tzinfo=UTC)
#: Longest text a checkout input takes (rails are 3-6 characters).
MAX_TEXT: Final = 64
ID: Final = FieldDomain(ge=0)
#: The checkout request, in the order the transformer's metadata lists it, with each input's
#: domain (see the module docstring for the reasons behind each bound).
CHECKOUT_REQUEST: Final = (
    RequestInput("customer_id", "INT64", domain=ID),
    RequestInput("device_id", "INT64", RequestDefault.copy_of("checkout_device_id"), ID),
    RequestInput(
        "request_ts_us",
        "INT64",
        RequestDefault.now_us(),
        FieldDomain(window=TimeWindow(not_before=EARLIEST_REQUEST, max_ahead=CLOCK_SKEW)),
    ),
    RequestInput("amount_bdt", "FP64", domain=FieldDomain(gt=0, le=MAX_CHECKOUT_BDT, unit="BDT")),
    RequestInput(
        "payment_method",
        "BYTES",
        domain=FieldDomain(
            categories=PAYMENT_METHODS, unknown="reject", min_length=1, max_length=MAX_TEXT
        ),
    ),
    RequestInput("checkout_device_id", "INT64", domain=ID),
    RequestInput(
        "checkout_wallet_account_id", "INT64", RequestDefault.constant(-1), FieldDomain(ge=-1)
    ),
)


def fraud_entity_frame(payments: pd.DataFrame) -> pd.DataFrame:
    """One entity row per payment, in the order of ``payments`` (a wallet id of -1: no wallet)."""
    required = (
        "payment_id",
        "customer_id",
        "payment_ts",
        "payment_method",
        "amount_bdt",
        "device_id",
        "wallet_account_id",
        LABEL,
        PATTERN,
    )
    missing = [c for c in required if c not in payments.columns]
    if missing:
        raise UserError(f"payments table lacks column(s) {missing}: is it the payments table?")
    if payments[LABEL].isna().any():
        raise UserError(f"payments: {int(payments[LABEL].isna().sum())} rows have no {LABEL}")
    stamps = pd.to_datetime(payments["payment_ts"], utc=True).dt.as_unit("us")
    frame = pd.DataFrame(
        {
            "customer_id": payments["customer_id"].astype("int64").to_numpy(),
            "device_id": payments["device_id"].astype("int64").to_numpy(),
            EVENT_TIMESTAMP: stamps.to_numpy(),
            "request_ts_us": stamps.astype("int64").to_numpy(),
            "amount_bdt": payments["amount_bdt"].astype("float64").to_numpy(),
            "payment_method": payments["payment_method"].astype(object).to_numpy(),
            "checkout_device_id": payments["device_id"].astype("int64").to_numpy(),
            "checkout_wallet_account_id": payments["wallet_account_id"]
            .fillna(-1)
            .astype("int64")
            .to_numpy(),
            "payment_id": payments["payment_id"].astype("int64").to_numpy(),
            LABEL: payments[LABEL].astype(bool).to_numpy(),
            PATTERN: optional_text(payments[PATTERN]),
        }
    )
    return frame.reset_index(drop=True)


def entity_rows(data_dir: Path) -> EntityFrame:
    """The fraud family's examples in a marketplace folder: every payment."""
    frame = fraud_entity_frame(read_marketplace_table(data_dir, "payments"))
    return EntityFrame(frame, JOIN_COLUMNS, LABEL)


def sample_checkouts(marketplace: Path, n: int) -> list[dict[str, Any]]:
    """``n`` payments as checkout requests, half of them fraud when there are that many (the
    latest ones, so the store has their customers' features), each with its ``label``."""
    entities = fraud_entity_frame(read_marketplace_table(marketplace, "payments"))
    entities = entities.sort_values(EVENT_TIMESTAMP)
    fraud = entities[entities[LABEL]].tail(n // 2)
    genuine = entities[~entities[LABEL]].tail(n - len(fraud))
    fields = [field.name for field in CHECKOUT_REQUEST]
    return [
        {key: _plain(row[key]) for key in fields} | {"label": bool(row[LABEL])}
        for row in [*fraud.to_dict("records"), *genuine.to_dict("records")]
    ]


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def describe_checkout(row: Mapping[str, Any]) -> str:
    return f"customer {row['customer_id']}: {row['payment_method']} {row['amount_bdt']:,.0f} BDT"
