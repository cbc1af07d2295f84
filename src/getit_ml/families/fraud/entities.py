"""Fraud's examples: one entity row per payment, scored as the checkout service asks.

Each row carries the join keys (``customer_id``, ``device_id``), the payment's time as
``event_timestamp``, the checkout request fields exactly as serving receives them (so the
on-demand features are computed as in serving), then ``payment_id``, the label ``is_fraud`` and
the ground-truth ``fraud_pattern`` (for per-pattern evaluation only).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import pandas as pd

from getit_ml.errors import UserError
from getit_ml.features.context import CHECKOUT_REQUEST_FIELDS
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
#: The checkout request, in the order the transformer's metadata lists it.
CHECKOUT_REQUEST: Final = (
    RequestInput("customer_id", "INT64"),
    RequestInput("device_id", "INT64", RequestDefault.copy_of("checkout_device_id")),
    RequestInput("request_ts_us", "INT64", RequestDefault.now_us()),
    RequestInput("amount_bdt", "FP64"),
    RequestInput("payment_method", "BYTES"),
    RequestInput("checkout_device_id", "INT64"),
    RequestInput("checkout_wallet_account_id", "INT64", RequestDefault.constant(-1)),
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
