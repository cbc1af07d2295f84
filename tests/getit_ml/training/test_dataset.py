"""Entity rows, the time split, the feature schema and its encoding, the reference export."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from getit_ml.data import reference as ref
from getit_ml.errors import UserError
from getit_ml.families.fraud import entities as fraud
from getit_ml.features.feature_schema import FeatureSchema
from getit_ml.training import dataset as ds
from getit_ml.training.dataset import export_reference, fit_schema, stratified_split, time_split
from tests.getit_ml.training.support import Marketplace

T0 = datetime(2025, 3, 1, tzinfo=UTC)


def _nan_equal(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(a, b, equal_nan=True))


# ------------------------------------------------------------------------------ entity rows
def test_entity_frame_carries_the_checkout_request_and_the_label() -> None:
    payments = pd.DataFrame(
        {
            "payment_id": [10, 11],
            "customer_id": [1, 2],
            "payment_ts": pd.to_datetime([T0, T0 + timedelta(seconds=1.5)]).as_unit("us"),
            "payment_method": ["bkash", "card"],
            "amount_bdt": [120.0, 9_999.0],
            "device_id": [7, 8],
            "wallet_account_id": [55.0, np.nan],
            "is_fraud": [False, True],
            "fraud_pattern": [None, "card_testing"],
        }
    )
    frame = fraud.fraud_entity_frame(payments)
    epoch_us = int(T0.timestamp() * 1_000_000)
    assert frame["request_ts_us"].tolist() == [epoch_us, epoch_us + 1_500_000]
    assert frame["checkout_device_id"].tolist() == [7, 8]
    assert frame["checkout_wallet_account_id"].tolist() == [55, -1]
    assert frame["event_timestamp"].tolist() == payments["payment_ts"].tolist()
    assert frame["is_fraud"].tolist() == [False, True]
    assert frame["fraud_pattern"].tolist() == [None, "card_testing"]
    assert set(fraud.JOIN_COLUMNS) <= set(frame.columns)


def test_entity_frame_refuses_another_table() -> None:
    with pytest.raises(UserError, match="payments table lacks"):
        fraud.fraud_entity_frame(pd.DataFrame({"order_id": [1]}))


# ------------------------------------------------------------------------------ time split
def _frame(times: list[int], labels: list[int]) -> pd.DataFrame:
    return pd.DataFrame(
        {"event_timestamp": [T0 + timedelta(hours=h) for h in times], "is_fraud": labels}
    )


def test_time_split_of_the_marketplace_is_ordered_and_complete(marketplace: Marketplace) -> None:
    split = marketplace.data.split
    train, valid, test = (p["event_timestamp"] for p in (split.train, split.validation, split.test))
    assert train.max() < valid.min()
    assert valid.max() < test.min()
    assert len(train) + len(valid) + len(test) == len(marketplace.payments)
    assert len(train) == pytest.approx(0.7 * len(marketplace.payments), rel=0.02)
    assert all(part["is_fraud"].any() for part in (split.train, split.validation, split.test))
    assert split.cuts == (valid.min(), test.min())


def test_time_split_keeps_rows_of_one_instant_together() -> None:
    # 20 rows; rows 13-16 share hour 13. A positional cut at 70% (row 14) would put rows 13 and
    # 14-16 in different parts; the time cut puts all four in validation.
    hours = [*range(13), 13, 13, 13, 13, 14, 15, 16]
    labels = [1] + [0] * 13 + [1, 0, 0, 0, 1, 0]
    split = time_split(_frame(hours, labels), fractions=(0.7, 0.15, 0.15), label="is_fraud")
    assert split.summary() == {"train": 13, "validation": 4, "test": 3}
    assert set(split.validation["event_timestamp"]) == {T0 + timedelta(hours=13)}


def test_time_split_refuses_a_part_without_fraud() -> None:
    # 20 hourly rows: train is rows 0-13, validation 14-16, test 17-19, which has no fraud.
    labels = [1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0]
    frame = _frame(list(range(20)), labels)
    with pytest.raises(UserError, match=r"the test part .* does not hold both classes"):
        time_split(frame, label="is_fraud")
    # With the fraud spread out, the same frame splits.
    frame["is_fraud"] = [1 if h % 3 == 0 else 0 for h in range(20)]
    assert time_split(frame, label="is_fraud").test["is_fraud"].sum() > 0


def test_the_purge_gap_leaves_out_rows_whose_label_reaches_the_next_part() -> None:
    # Daily rows over 40 days; a label window of 5 days: train rows less than 5 days before the
    # validation cut, and validation rows less than 5 days before the test cut, are purged.
    days = list(range(40))
    frame = pd.DataFrame({"event_timestamp": [T0 + timedelta(days=d) for d in days],
                          "churned": [d % 2 for d in days]})  # fmt: skip
    split = time_split(frame, fractions=(0.5, 0.25, 0.25), label="churned",
                       gap=timedelta(days=5))  # fmt: skip
    valid_from, test_from = split.cuts
    assert split.train["event_timestamp"].max() <= valid_from - timedelta(days=5)
    assert split.validation["event_timestamp"].max() <= test_from - timedelta(days=5)
    # A row 5 days before the cut has a label window ending at the cut: it stays.
    assert split.purged == {"train": 4, "validation": 4}
    assert len(split.train) + len(split.validation) + len(split.test) == 40 - 8


def test_a_stratified_split_keeps_the_prevalence() -> None:
    frame = pd.DataFrame({"x": range(1_000), "label": [i % 10 == 0 for i in range(1_000)]})
    split = stratified_split(frame, (0.6, 0.2, 0.2), "label", seed=1)
    assert split.summary() == {"train": 600, "validation": 200, "test": 200}
    assert [int(p["label"].sum()) for p in (split.train, split.validation, split.test)] == [
        60, 20, 20,
    ]  # fmt: skip
    assert set(split.train["x"]).isdisjoint(split.test["x"])
    assert split.time_column is None


@pytest.mark.parametrize("fractions", [(0.5, 0.5), (0.7, 0.2, 0.2), (0.0, 0.5, 0.5)])
def test_time_split_rejects_bad_fractions(fractions: tuple[float, ...]) -> None:
    with pytest.raises(UserError, match="fractions"):
        time_split(_frame([1, 2, 3], [1, 1, 1]), fractions=fractions, label="is_fraud")


# ------------------------------------------------------------------------------ encoding
def test_categories_come_from_train_and_unseen_values_encode_as_missing() -> None:
    train = pd.DataFrame(
        {
            "division": ["Dhaka", "Sylhet", "Dhaka", None],
            "flag": pd.Series([True, None, False, True], dtype=object),
            "ratio": [1.0, np.inf, np.nan, 2.5],
            "count": pd.array([1, None, 3, 4], dtype="Int64"),
            "is_fraud": [0, 1, 0, 0],
        }
    )
    schema = fit_schema(train, ["division", "flag", "ratio", "count"], label="is_fraud")
    kinds = {f.name: (f.kind, f.categories) for f in schema.features}
    assert kinds == {
        "division": ("categorical", ("Dhaka", "Sylhet")),
        "flag": ("bool", ()),
        "ratio": ("numeric", ()),
        "count": ("numeric", ()),
    }
    later = pd.DataFrame(
        {
            "division": ["Sylhet", "Khulna", None],
            "flag": [False, True, None],
            "ratio": [0.5, -np.inf, 3.0],
            "count": [7, 8, 9],
        }
    )
    expected = np.array(
        [[1.0, 0.0, 0.5, 7.0], [np.nan, 1.0, np.nan, 8.0], [np.nan, np.nan, 3.0, 9.0]]
    )
    assert _nan_equal(schema.encode(later), expected)


def test_the_training_set_fits_categories_on_the_train_part_only() -> None:
    # 20 hourly rows: train 0-13 pays by bKash; "card" first appears in validation (14-16),
    # "nagad" in test (17-19). Neither may enter the category list.
    hours = list(range(20))
    frame = _frame(hours, [1 if h % 3 == 0 else 0 for h in hours])
    frame["payment_method"] = ["bkash"] * 14 + ["card"] * 3 + ["nagad"] * 3
    frame["amount_bdt"] = [float(h) for h in hours]
    data = ds.prepare_training_set(frame, {"payment_method": "string", "amount_bdt": "float64"},
                                   label="is_fraud", carry=("amount_bdt",))  # fmt: skip
    assert data.schema.features[0].categories == ("bkash",)
    assert data.train.features[:, 0].tolist() == [0.0] * 14
    assert np.isnan(data.validation.features[:, 0]).all()
    assert np.isnan(data.test.features[:, 0]).all()
    assert data.test.columns["amount_bdt"].tolist() == [17.0, 18.0, 19.0]


def test_max_categories_keeps_the_most_frequent() -> None:
    frame = pd.DataFrame({"c": ["b"] * 3 + ["a"] * 2 + ["z"], "is_fraud": [0] * 6})
    schema = fit_schema(frame, {"c": "string"}, max_categories=2, label="is_fraud")
    assert schema.features[0].categories == ("a", "b")
    assert _nan_equal(schema.encode(pd.DataFrame({"c": ["z", "b"]}))[:, 0], np.array([np.nan, 1]))


def test_encode_names_missing_features() -> None:
    schema = fit_schema(pd.DataFrame({"x": [1.0], "y": [2.0]}), ["x", "y"], label="is_fraud")
    with pytest.raises(UserError, match="lacks 1 feature"):
        schema.encode(pd.DataFrame({"x": [1.0]}))


def test_the_model_inputs_exclude_identifiers(marketplace: Marketplace) -> None:
    schema = marketplace.data.schema
    names = set(schema.feature_names)
    assert not names & fraud.IDENTIFIERS
    assert {"amount_bdt", "payment_method", "device_customers_30d", "is_new_device"} <= names
    kinds = {f.name: f for f in schema.features}
    assert kinds["division"].kind == "categorical"
    assert set(kinds["division"].categories) <= set(ref.DIVISIONS)
    assert kinds["payment_method"].categories == tuple(sorted(ref.PAYMENT_METHODS))
    assert kinds["is_new_device"].kind == "bool"
    assert len(names) >= 100
    # Category lists are the TRAIN part's values (a value first seen later encodes as missing).
    train = marketplace.data.split.train
    for spec in schema.features:
        if spec.kind == "categorical":
            assert set(spec.categories) == set(train[spec.name].dropna().astype(str))


def test_encoding_is_reproduced_from_the_schema_json(marketplace: Marketplace) -> None:
    data = marketplace.data
    text = data.schema.to_json()
    reloaded = FeatureSchema.from_json(text)
    assert reloaded == data.schema
    assert reloaded.to_json() == text
    # Serving sees a frame, not our matrices: re-encoding the test part from JSON alone must
    # give the training code's matrix, bit for bit.
    assert _nan_equal(reloaded.encode(data.split.test), data.test.features)
    raw = json.loads(text)
    assert raw["feature_names"] == data.schema.feature_names
    assert raw["label"] == "is_fraud"
    # What the sidecars need of the family travels in the file (version 2).
    assert raw["version"] == 2
    assert raw["metadata"]["family"] == "fraud"
    assert raw["monitoring"]["output"] == "fraud_probability"
    assert raw["monitoring"]["positive_class"] == "fraud"
    assert "hour_local" in raw["monitoring"]["drift_ignored"]
    assert {"feature": "is_new_device", "direction": "true", "code": "NEW_DEVICE",
            "text": "new device"} in raw["monitoring"]["reasons"]  # fmt: skip


def test_schema_json_rejects_other_documents() -> None:
    with pytest.raises(UserError, match="not a getit-ml/feature-schema"):
        FeatureSchema.from_json('{"format": "something-else", "version": 1}')
    with pytest.raises(UserError, match="version 1 or 2"):
        FeatureSchema.from_json('{"format": "getit-ml/feature-schema", "version": 9}')
    with pytest.raises(UserError, match="not JSON"):
        FeatureSchema.from_json("{")


# ------------------------------------------------------------------------------ reference
def test_reference_export_is_plain_parquet_and_json(
    marketplace: Marketplace, tmp_path: Path
) -> None:
    data = marketplace.data
    files = export_reference(data.split.train, data.schema, tmp_path / "ref", n=500, seed=3)
    table = pq.read_table(files.reference)
    assert files.rows == table.num_rows == 500
    assert table.column_names == [*data.schema.feature_names, "is_fraud"]
    assert table.schema.metadata is None or b"pandas" not in table.schema.metadata
    raw = json.loads(files.schema.read_text(encoding="utf-8"))
    assert raw["feature_names"] == data.schema.feature_names
    # The sampled rows are training rows, encoded as the model sees them.
    sample = table.to_pandas()[data.schema.feature_names].to_numpy()
    rows = {tuple(np.nan_to_num(r, nan=-9e9)) for r in np.nan_to_num(data.train.features, nan=-9e9)}
    assert all(tuple(np.nan_to_num(r, nan=-9e9)) in rows for r in sample)
    again = export_reference(data.split.train, data.schema, tmp_path / "again", n=500, seed=3)
    assert pq.read_table(again.reference).equals(table)
