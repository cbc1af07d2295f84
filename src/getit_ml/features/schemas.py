"""The feature contract between offline feature engineering and the Feast repository.

Each feature view is an ordered ``name -> type`` mapping; the type is one of ``"int64"``,
``"float64"``, ``"string"`` or ``"bool"`` (the Feast repository maps them to Feast types, the
engineering code to Arrow types). Every offline file holds the entity key, ``event_timestamp``,
``created_timestamp`` and then exactly these features, in this order.

Conventions shared by all views (the engineering module implements them, the streaming job must
match the velocity ones):

* Time is UTC; a "business day" is a local day in Asia/Dhaka (UTC+6, no daylight saving).
* A window of length W ending at a stamp t holds what happened at times s with ``t - W < s <= t``
  for the daily views (stamped at the end of the local day, so the whole day counts), and with
  ``t - W < s < t`` for the per-payment views (stamped at the payment, which itself never counts).
* Counts are 0 when there is no data; ratios and averages whose denominator is 0 are null (NaN);
  "days since" values are null when the thing never happened. Id-valued features are -1 when
  there is none. Strings are null when unknown.

This module is imported by the Feast repository, so it uses only the standard library.
"""

from __future__ import annotations

from typing import Final

#: Top-level categories of the catalogue, in the order of ``getit_ml.data.reference.CATEGORIES``
#: (repeated here so that this module imports nothing; a test checks they agree).
CATEGORIES: Final[tuple[str, ...]] = (
    "fashion", "electronics", "groceries", "beauty", "home", "books", "mobile", "sports",
)  # fmt: skip

#: Payment rails, in the order of ``getit_ml.data.reference.PAYMENT_METHODS``.
PAYMENT_METHODS: Final[tuple[str, ...]] = ("bkash", "nagad", "rocket", "card", "cod")

# ----------------------------------------------------------------------------------------------
# Customer features: one row per customer per business day with activity (an event, an order or
# a payment), stamped at the end of that day. Windows are 1, 7, 30 and 90 business days ending
# with the stamp's day. An order's outcome (delivered, returned, refused, cancelled) is counted
# only once it is known: OUTCOME_DELAY_DAYS after the order was placed.

CUSTOMER_FEATURES: Final[dict[str, str]] = {
    # Who the customer is (static attributes, from the customers table).
    "division": "string",
    "district": "string",
    "is_urban": "bool",
    "preferred_language": "string",
    "signup_device_type": "string",
    "acquisition_channel": "string",
    "account_age_days": "int64",
    # Recency, frequency, monetary (monetary = total_bdt of orders placed, any outcome).
    "days_since_last_order": "float64",
    "days_since_last_session": "float64",
    "orders_7d": "int64",
    "orders_30d": "int64",
    "orders_90d": "int64",
    "spend_7d_bdt": "float64",
    "spend_30d_bdt": "float64",
    "spend_90d_bdt": "float64",
    "orders_lifetime": "int64",
    "spend_lifetime_bdt": "float64",
    "avg_days_between_orders": "float64",
    # Basket.
    "avg_basket_bdt_90d": "float64",
    "avg_items_per_order_90d": "float64",
    # Discount sensitivity.
    "discount_share_90d": "float64",
    "voucher_order_share_90d": "float64",
    "discounted_item_share_90d": "float64",
    # Payment-method mix: share of the orders of the last 90 days paid with each rail.
    **{f"{method}_share_90d": "float64" for method in PAYMENT_METHODS},
    # Outcomes known at the stamp: refusals, returns, cancellations.
    "cod_refusal_rate": "float64",
    "return_rate": "float64",
    "cancel_rate": "float64",
    "cod_refusals_90d": "int64",
    "returns_90d": "int64",
    # Devices and wallets (a switch: a payment from another device / wallet than the one before).
    "device_switches_1d": "int64",
    "device_switches_7d": "int64",
    "wallet_switches_1d": "int64",
    "wallet_switches_7d": "int64",
    "payment_attempts_7d": "int64",
    "failed_payment_attempts_7d": "int64",
    # Sessions (a session counts on the day of its last event, when it is complete).
    "sessions_7d": "int64",
    "sessions_30d": "int64",
    "active_days_30d": "int64",
    "events_per_session_30d": "float64",
    "views_30d": "int64",
    "searches_30d": "int64",
    "cart_adds_30d": "int64",
    "cart_removes_30d": "int64",
    "add_to_cart_rate_30d": "float64",
    "session_conversion_rate_30d": "float64",
    "avg_session_duration_s_30d": "float64",
    "night_session_share_30d": "float64",
    "web_session_share_30d": "float64",
    # Festival season (any day the calendar names a festival, Ramadan included).
    "festival_spend_share_90d": "float64",
    "festival_order_share_90d": "float64",
    # Category affinities: share of the product events (views, cart changes, purchases).
    **{f"affinity_{category}_90d": "float64" for category in CATEGORIES},
    "top_category_90d": "string",
    # Reviews written.
    "reviews_90d": "int64",
    "avg_review_rating_given_90d": "float64",
}

#: Days after an order until its outcome (delivery, return window, COD refusal) is known.
OUTCOME_DELAY_DAYS: Final = 7

# ----------------------------------------------------------------------------------------------
# Product features: one row per product per business day with activity (an event on it or an
# order line for it), stamped at the end of that day. Catalogue attributes (list price, stock,
# catalogue rating, seller rating) are the snapshot in the products and sellers tables.

PRODUCT_FEATURES: Final[dict[str, str]] = {
    "category": "string",
    "subcategory": "string",
    "brand": "string",
    "seller_id": "int64",
    "list_price_bdt": "float64",
    "stock": "int64",
    "catalogue_rating": "float64",
    "seller_rating": "float64",
    "price_rank_in_category": "float64",
    "price_vs_category_median": "float64",
    "days_since_listed": "int64",
    # Price and discount on the stamp's day, and what buyers actually paid.
    "current_price_bdt": "float64",
    "current_discount_pct": "float64",
    "sold_discount_pct_30d": "float64",
    # Popularity and conversion.
    "views_1d": "int64",
    "views_7d": "int64",
    "views_30d": "int64",
    "cart_adds_1d": "int64",
    "cart_adds_7d": "int64",
    "cart_adds_30d": "int64",
    "order_lines_1d": "int64",
    "order_lines_7d": "int64",
    "order_lines_30d": "int64",
    "units_sold_1d": "int64",
    "units_sold_7d": "int64",
    "units_sold_30d": "int64",
    "revenue_7d_bdt": "float64",
    "revenue_30d_bdt": "float64",
    "conversion_rate_1d": "float64",
    "conversion_rate_7d": "float64",
    "conversion_rate_30d": "float64",
    "cart_rate_7d": "float64",
    "cart_rate_30d": "float64",
    "days_since_last_sale": "float64",
    # Reviews: rating and sentiment summary.
    "review_count": "int64",
    "avg_review_rating": "float64",
    "positive_review_share": "float64",
    "negative_review_share": "float64",
    "review_count_30d": "int64",
    "avg_review_rating_30d": "float64",
    # Festival uplift: units per festival day over units per ordinary day, last 90 days.
    "festival_uplift_90d": "float64",
}

# ----------------------------------------------------------------------------------------------
# Payment-time views: one row per payment (rows of the same entity at the same instant are
# identical and written once), stamped at the payment's timestamp and computed from everything
# strictly before it, so that a payment never sees itself.

#: Entity ``device_id``: the device a payment came from. Shared devices are the mule-ring signal.
DEVICE_FEATURES: Final[dict[str, str]] = {
    "device_customers_30d": "int64",  # distinct customers who paid from it in the last 30 days
    "device_customers_total": "int64",  # ... ever
    "device_payments_24h": "int64",
    "device_failed_payments_24h": "int64",
    "device_amount_24h_bdt": "float64",
    "device_payments_7d": "int64",
    "device_payments_total": "int64",
    "device_wallets_30d": "int64",  # distinct wallet accounts used from it in the last 30 days
    "device_age_days": "float64",  # since its first payment; null for a device never seen
    "device_is_new": "bool",  # no payment ever came from it
}

#: Entity ``customer_id``: slower-moving payment risk.
CUSTOMER_RISK_FEATURES: Final[dict[str, str]] = {
    "phone_shared_customers": "int64",  # other customers (signed up earlier) with this phone
    "address_shared_customers": "int64",  # ... with this default delivery address
    "payments_24h": "int64",
    "payments_7d": "int64",
    "payments_30d": "int64",
    "failed_payments_24h": "int64",
    "failed_payments_7d": "int64",
    "amount_24h_bdt": "float64",
    "avg_payment_amount_30d": "float64",
    "max_payment_amount_30d": "float64",
    "devices_7d": "int64",  # distinct devices paid from
    "devices_30d": "int64",
    "devices_total": "int64",
    "device_changes_24h": "int64",  # payments from another device than the payment before
    "device_changes_7d": "int64",
    "wallet_changes_24h": "int64",  # wallet payments from another wallet than the one before
    "wallet_changes_7d": "int64",
    "wallets_30d": "int64",
    "cards_7d": "int64",  # distinct cards: card testing cycles through fresh ones
    "order_addresses_30d": "int64",  # distinct delivery addresses of the orders paid
    "last_device_id": "int64",  # -1 before the first payment
    "last_wallet_account_id": "int64",  # of the last payment that used a wallet; -1 if none
    "seconds_since_last_payment": "float64",
    "account_age_hours": "float64",
}

#: Entity ``customer_id``: the fast-moving counters the streaming job also produces, with its
#: definitions: every payment attempt counts whatever its outcome (``failed_payments_10m``: status
#: ``failed``; amounts: ``amount_bdt`` of every attempt); a click is a ``view`` or ``add_to_cart``
#: event of the customer. Offline rows are stamped at each payment t and hold the events with
#: ``t - W < s < t``: what the stream's window state holds just before the payment arrives, i.e.
#: the value the online store serves when that payment is scored.
VELOCITY_FEATURES: Final[dict[str, str]] = {
    "payments_10m": "int64",
    "amount_10m_bdt": "float64",
    "failed_payments_10m": "int64",
    "payments_1h": "int64",
    "amount_1h_bdt": "float64",
    "clicks_10m": "int64",
}

# ----------------------------------------------------------------------------------------------
# Entities, timestamps and the offline files.

#: Entity name -> join key.
ENTITY_KEYS: Final[dict[str, str]] = {
    "customer": "customer_id",
    "product": "product_id",
    "device": "device_id",
}

#: When the feature values became true (the point-in-time join key).
TIMESTAMP_FIELD: Final = "event_timestamp"
#: When the row was computed (ties between rows of the same event time); equal to the event
#: timestamp in the offline files, so they are reproducible.
CREATED_FIELD: Final = "created_timestamp"

#: Offline source name -> Parquet file name (inside the offline feature folder).
OFFLINE_FILES: Final[dict[str, str]] = {
    "customer_features": "customer_features.parquet",
    "product_features": "product_features.parquet",
    "device_features": "device_features.parquet",
    "customer_risk": "customer_risk.parquet",
    "customer_velocity": "customer_velocity.parquet",
}

#: Offline source name -> (entity join key, feature schema).
SOURCES: Final[dict[str, tuple[str, dict[str, str]]]] = {
    "customer_features": ("customer_id", CUSTOMER_FEATURES),
    "product_features": ("product_id", PRODUCT_FEATURES),
    "device_features": ("device_id", DEVICE_FEATURES),
    "customer_risk": ("customer_id", CUSTOMER_RISK_FEATURES),
    "customer_velocity": ("customer_id", VELOCITY_FEATURES),
}
