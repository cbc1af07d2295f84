"""Fraud's reason phrases: why a payment scored high, in words a checkout service can show.

Keyed by (feature, direction): ``true``/``false`` for a flag, ``high``/``low`` for a number
outside the reference's middle half. Training writes them into the model's feature schema, where
the explainer (monitoring environment) reads them; features without a phrase get one built from
their name.
"""

from __future__ import annotations

from typing import Final

from getit_ml.features.feature_schema import ReasonPhrase

_PHRASES: Final[dict[tuple[str, str], tuple[str, str]]] = {
    ("is_new_device", "true"): ("NEW_DEVICE", "new device"),
    ("device_is_new", "true"): ("DEVICE_NEVER_SEEN", "device never seen before"),
    ("is_wallet_change", "true"): ("WALLET_CHANGED", "wallet changed since the last payment"),
    ("amount_vs_avg_30d", "high"): ("AMOUNT_FAR_ABOVE_USUAL", "amount far above usual"),
    ("amount_vs_max_30d", "high"): (
        "AMOUNT_ABOVE_LARGEST",
        "amount above the customer's largest recent payment",
    ),
    ("amount_bdt", "high"): ("LARGE_AMOUNT", "large amount"),
    ("amount_log", "high"): ("LARGE_AMOUNT", "large amount"),
    ("payments_10m", "high"): ("MANY_PAYMENTS_10M", "many payments in the last 10 minutes"),
    ("amount_10m_bdt", "high"): ("HIGH_SPEND_10M", "high spending in the last 10 minutes"),
    ("payments_1h", "high"): ("MANY_PAYMENTS_1H", "many payments in the last hour"),
    ("amount_1h_bdt", "high"): ("HIGH_SPEND_1H", "high spending in the last hour"),
    ("payments_24h", "high"): ("MANY_PAYMENTS_24H", "many payments today"),
    ("failed_payments_10m", "high"): ("RECENT_FAILED_PAYMENTS", "recent failed payments"),
    ("failed_payments_24h", "high"): ("RECENT_FAILED_PAYMENTS", "recent failed payments"),
    ("failed_payments_7d", "high"): ("FAILED_PAYMENTS_7D", "failed payments this week"),
    ("device_failed_payments_24h", "high"): (
        "DEVICE_FAILED_PAYMENTS",
        "failed payments from this device today",
    ),
    ("device_customers_30d", "high"): ("SHARED_DEVICE", "device shared by several customers"),
    ("device_customers_total", "high"): ("SHARED_DEVICE", "device shared by several customers"),
    ("device_wallets_30d", "high"): ("MANY_WALLETS_ON_DEVICE", "many wallets used on this device"),
    ("phone_shared_customers", "high"): ("SHARED_PHONE", "phone number shared with other accounts"),
    ("address_shared_customers", "high"): (
        "SHARED_ADDRESS",
        "delivery address shared with other accounts",
    ),
    ("account_age_days", "low"): ("NEW_ACCOUNT", "new account"),
    ("account_age_hours", "low"): ("NEW_ACCOUNT", "new account"),
    ("device_age_days", "low"): ("DEVICE_RECENTLY_SEEN", "device first seen recently"),
    ("device_changes_24h", "high"): ("DEVICE_CHANGES_24H", "several device changes today"),
    ("wallet_changes_24h", "high"): ("WALLET_CHANGES_24H", "several wallet changes today"),
    ("devices_7d", "high"): ("MANY_DEVICES_7D", "many devices this week"),
    ("cards_7d", "high"): ("MANY_CARDS", "many different cards this week"),
    ("seconds_since_last_payment", "low"): ("RAPID_REPEAT_PAYMENT", "payments in quick succession"),
    ("clicks_10m", "low"): ("LITTLE_BROWSING", "paid with little browsing"),
    ("cod_refusal_rate", "high"): ("COD_REFUSALS", "refused cash-on-delivery orders before"),
    ("orders_lifetime", "low"): ("FEW_PAST_ORDERS", "few past orders"),
    ("order_addresses_30d", "high"): ("MANY_ADDRESSES", "many delivery addresses this month"),
    ("is_cod", "true"): ("CASH_ON_DELIVERY", "cash on delivery"),
    ("is_card", "true"): ("CARD_PAYMENT", "card payment"),
    ("is_wallet", "true"): ("MOBILE_WALLET", "mobile wallet payment"),
    ("night_session_share_30d", "high"): ("NIGHT_ACTIVITY", "mostly active at night"),
}

REASONS: Final[tuple[ReasonPhrase, ...]] = tuple(
    ReasonPhrase(feature, direction, code, text)
    for (feature, direction), (code, text) in _PHRASES.items()
)
