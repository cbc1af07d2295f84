"""Reason codes a checkout service can show."""

from __future__ import annotations

import numpy as np

from getit_ml.features.feature_schema import MonitoringHints, ReasonPhrase
from getit_ml.monitoring.reasons import ReasonCoder, humanize
from getit_ml.monitoring.schema import FeatureSchema, FeatureSpec
from getit_ml.monitoring.synthetic import fraud_feature_types
from tests.monitoring.conftest import FRAUD_HINTS

FEATURES = (
    FeatureSpec("is_new_device", "bool"),
    FeatureSpec("amount_vs_avg_30d", "numeric"),
    FeatureSpec("failed_payments_7d", "numeric"),
    FeatureSpec("payment_method", "categorical", "string", ("bkash", "card", "cod")),
    FeatureSpec("spend_7d_bdt", "numeric"),
    FeatureSpec("account_age_days", "numeric"),
)
#: The phrases come with the schema, as training writes them (the fraud family's here).
SCHEMA = FeatureSchema(FEATURES, "is_fraud", {}, FRAUD_HINTS)
REFERENCE = np.column_stack(
    [
        np.tile([0.0, 1.0], 50),
        np.linspace(0.2, 3.0, 100),
        np.arange(100.0) % 5,
        np.arange(100.0) % 3,
        np.linspace(0.0, 10_000.0, 100),
        np.linspace(1.0, 1_000.0, 100),
    ]
)


def test_known_features_get_their_phrases() -> None:
    coder = ReasonCoder(SCHEMA, REFERENCE)
    instance = np.array([1.0, 2.9, 0.0, 2.0, 5_000.0, 2.0])
    contributions = np.array([0.4, 0.3, 0.0, 0.1, 0.0, 0.2])
    reasons = coder.reasons(instance, contributions, top_k=4)
    assert [r.text for r in reasons] == [
        "new device",
        "amount far above usual",
        "new account",
        "payment method: cod",
    ]
    assert [r.code for r in reasons][:3] == ["NEW_DEVICE", "AMOUNT_FAR_ABOVE_USUAL", "NEW_ACCOUNT"]
    assert reasons[0].value == "true"
    assert reasons[0].contribution == 0.4


def test_typical_values_and_pushes_towards_genuine_are_not_reasons() -> None:
    coder = ReasonCoder(SCHEMA, REFERENCE)
    instance = np.array([0.0, 1.6, 2.0, 0.0, 5_000.0, 500.0])
    contributions = np.array([-0.3, 0.2, 0.1, -0.1, 0.3, 0.0])
    # amount 1.6 and spend 5000 are mid-reference; failed payments 2 of 0..4 likewise.
    assert coder.reasons(instance, contributions) == []


def test_a_small_share_of_the_push_is_no_reason() -> None:
    coder = ReasonCoder(SCHEMA, REFERENCE)
    instance = np.array([1.0, 2.9, 4.0, 0.0, 9_900.0, 500.0])
    contributions = np.array([0.6, 0.3, 0.01, 0.0, 0.02, 0.0])
    assert [r.code for r in coder.reasons(instance, contributions)] == [
        "NEW_DEVICE",
        "AMOUNT_FAR_ABOVE_USUAL",
    ]


def test_generic_phrases_come_from_the_name() -> None:
    coder = ReasonCoder(SCHEMA, REFERENCE)
    reason = coder.reason(4, 9_900.0)
    assert reason is not None
    assert reason.text == "high spend in the last 7 days"
    assert reason.code == "HIGH_SPEND_IN_THE_LAST_7_DAYS"
    missing = coder.reason(4, float("nan"))
    assert missing is not None
    assert missing.text == "spend in the last 7 days unknown"
    assert humanize("avg_basket_bdt_90d") == "average basket in the last 90 days"
    assert humanize("is_wallet_change") == "wallet change"


def test_anchor_features_give_reasons_without_attributions() -> None:
    coder = ReasonCoder(SCHEMA, REFERENCE)
    instance = np.array([1.0, 2.9, 0.0, 1.0, 0.0, 500.0])
    assert [r.code for r in coder.reasons(instance, None, order=[1, 0])] == [
        "AMOUNT_FAR_ABOVE_USUAL",
        "NEW_DEVICE",
    ]


def test_every_fraud_phrase_names_a_real_fraud_feature() -> None:
    names = set(fraud_feature_types())
    assert {phrase.feature for phrase in FRAUD_HINTS.reasons} <= names


def test_without_phrases_in_the_schema_every_reason_is_built_from_the_name() -> None:
    """The monitoring runtime holds no family's table: a schema without phrases gets generic
    ones, and another family's phrases change the words."""
    bare = ReasonCoder(FeatureSchema(FEATURES, "is_fraud"), REFERENCE)
    reason = bare.reason(0, 1.0)
    assert reason is not None
    assert (reason.code, reason.text) == ("NEW_DEVICE", "new device")  # from the name
    reason = bare.reason(1, 2.9)
    assert reason is not None
    assert reason.text == "high amount versus average in the last 30 days"
    other = MonitoringHints(reasons=(ReasonPhrase("amount_vs_avg_30d", "high", "BIG_BASKET",
                                                  "a much bigger basket than usual"),))  # fmt: skip
    coder = ReasonCoder(FeatureSchema(FEATURES, "label", {}, other), REFERENCE)
    reason = coder.reason(1, 2.9)
    assert reason is not None
    assert (reason.code, reason.text) == ("BIG_BASKET", "a much bigger basket than usual")
