"""Offline feature engineering: schemas, hand-computed values, point in time, determinism.

Two kinds of input: a generated marketplace (module fixture) for the properties that must hold at
scale, and a small hand-made marketplace whose every expected value is worked out in comments.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from getit_ml.data import reference as ref
from getit_ml.data.generator import MarketplaceConfig, generate
from getit_ml.errors import UserError
from getit_ml.features import engineering as fe
from getit_ml.features import schemas

DHAKA = "Asia/Dhaka"
FEATURE_FUNCTIONS: dict[str, Callable[[fe.Tables], pd.DataFrame]] = {
    "customer_features": fe.customer_features,
    "product_features": fe.product_features,
    "device_features": fe.device_features,
    "customer_risk": fe.customer_risk,
    "customer_velocity": fe.customer_velocity,
}
SCHEMAS = {
    "customer_features": schemas.CUSTOMER_FEATURES,
    "product_features": schemas.PRODUCT_FEATURES,
    "device_features": schemas.DEVICE_FEATURES,
    "customer_risk": schemas.CUSTOMER_RISK_FEATURES,
    "customer_velocity": schemas.VELOCITY_FEATURES,
}


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two months for 40,000 customers (about 700k events, 9,500 payments, a dozen mule-ring
    payments): seed 5 is fixed, so the fraud counts are too."""
    out = tmp_path_factory.mktemp("market") / "data"
    generate(MarketplaceConfig(customers=40_000, days=60, seed=5, start=date(2025, 3, 1)), out)
    return out


@pytest.fixture(scope="module")
def offline(market: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    out = tmp_path_factory.mktemp("offline")
    return out, fe.build_offline_features(market, out)


@pytest.fixture(scope="module")
def tables(market: Path) -> dict[str, pd.DataFrame]:
    return fe.load_tables(market)


@pytest.fixture(scope="module")
def labelled_payments(market: Path) -> pd.DataFrame:
    """Payments with their fraud ground truth (which the features never read)."""
    columns = ["customer_id", "device_id", "payment_ts", "amount_bdt", "fraud_pattern"]
    return pd.read_parquet(market / "payments", columns=columns)


def _read(offline: tuple[Path, dict[str, int]], name: str) -> pd.DataFrame:
    return pd.read_parquet(offline[0] / schemas.OFFLINE_FILES[name])


# ------------------------------------------------------------------------------ schemas


def test_schema_sizes_and_types() -> None:
    assert len(schemas.CUSTOMER_FEATURES) >= 50
    assert len(schemas.PRODUCT_FEATURES) >= 30
    assert schemas.VELOCITY_FEATURES == {
        "payments_10m": "int64",
        "amount_10m_bdt": "float64",
        "failed_payments_10m": "int64",
        "payments_1h": "int64",
        "amount_1h_bdt": "float64",
        "clicks_10m": "int64",
    }
    for features in SCHEMAS.values():
        assert set(features.values()) <= {"int64", "float64", "string", "bool"}
    for name in ("device_customers_30d", "device_customers_total", "device_payments_24h"):
        assert schemas.DEVICE_FEATURES[name] == "int64"
    assert schemas.DEVICE_FEATURES["device_age_days"] == "float64"
    risk = schemas.CUSTOMER_RISK_FEATURES
    assert risk["last_device_id"] == risk["last_wallet_account_id"] == "int64"
    for name in (
        "phone_shared_customers",
        "address_shared_customers",
        "devices_7d",
        "payments_30d",
    ):
        assert risk[name] == "int64"
    assert schemas.CUSTOMER_FEATURES["division"] == "string"


def test_views_of_one_entity_never_share_a_feature_name() -> None:
    # A feature service joining several views of an entity needs distinct names (and so do the
    # context features computed at request time from them).
    customer_views = [
        schemas.CUSTOMER_FEATURES,
        schemas.CUSTOMER_RISK_FEATURES,
        schemas.VELOCITY_FEATURES,
    ]
    names = [name for view in customer_views for name in view]
    assert len(names) == len(set(names))
    keys = {*schemas.ENTITY_KEYS.values(), schemas.TIMESTAMP_FIELD, schemas.CREATED_FIELD}
    for features in SCHEMAS.values():
        assert not keys & set(features)


def test_schema_constants_match_the_reference_data() -> None:
    assert schemas.CATEGORIES == ref.CATEGORIES
    assert schemas.PAYMENT_METHODS == ref.PAYMENT_METHODS
    assert set(schemas.OFFLINE_FILES) == set(SCHEMAS) == set(schemas.SOURCES)
    for name, (key, features) in schemas.SOURCES.items():
        assert features is SCHEMAS[name]
        assert key in schemas.ENTITY_KEYS.values()


# ------------------------------------------------------------------------------ the files


def test_every_file_has_its_schema_and_rows(offline: tuple[Path, dict[str, int]]) -> None:
    out, rows = offline
    assert set(rows) == set(schemas.OFFLINE_FILES.values())
    for name, file in schemas.OFFLINE_FILES.items():
        parquet = pq.ParquetFile(out / file)
        assert parquet.schema_arrow.equals(fe.feature_schema(name)), name
        assert parquet.metadata.num_rows == rows[file] > 0, name


def test_rows_are_unique_per_entity_and_time(offline: tuple[Path, dict[str, int]]) -> None:
    for name, (key, _) in schemas.SOURCES.items():
        frame = _read(offline, name)
        assert not frame.duplicated([key, schemas.TIMESTAMP_FIELD]).any(), name
        assert (frame[schemas.CREATED_FIELD] == frame[schemas.TIMESTAMP_FIELD]).all(), name
        assert frame[key].notna().all(), name


def test_daily_rows_are_stamped_at_the_end_of_the_local_day(
    offline: tuple[Path, dict[str, int]],
) -> None:
    for name in ("customer_features", "product_features"):
        local = _read(offline, name)[schemas.TIMESTAMP_FIELD].dt.tz_convert(DHAKA)
        assert (local.dt.strftime("%H:%M:%S.%f") == "23:59:59.999999").all(), name


def test_payment_rows_are_stamped_at_the_payments(
    offline: tuple[Path, dict[str, int]], tables: dict[str, pd.DataFrame]
) -> None:
    payments = tables["payments"]
    for name, key in (
        ("customer_risk", "customer_id"),
        ("customer_velocity", "customer_id"),
        ("device_features", "device_id"),
    ):
        rows = _read(offline, name)
        expected = payments[[key, "payment_ts"]].drop_duplicates()
        assert len(rows) == len(expected), name
        joined = rows.merge(
            expected, left_on=[key, schemas.TIMESTAMP_FIELD], right_on=[key, "payment_ts"]
        )
        assert len(joined) == len(rows), name


def test_same_input_gives_identical_files(
    market: Path, offline: tuple[Path, dict[str, int]], tmp_path: Path
) -> None:
    again = fe.build_offline_features(market, tmp_path)
    assert again == offline[1]
    for file in schemas.OFFLINE_FILES.values():
        first = hashlib.sha256((offline[0] / file).read_bytes()).hexdigest()
        second = hashlib.sha256((tmp_path / file).read_bytes()).hexdigest()
        assert first == second, file


def test_feature_functions_give_what_the_files_hold(
    tables: dict[str, pd.DataFrame], offline: tuple[Path, dict[str, int]]
) -> None:
    for name in ("customer_risk", "device_features"):
        frame = FEATURE_FUNCTIONS[name](tables)
        pd.testing.assert_frame_equal(frame, _read(offline, name), check_dtype=False)


def test_unknown_source_is_refused() -> None:
    with pytest.raises(KeyError, match="unknown feature source"):
        fe.feature_schema("orders")


# ------------------------------------------------------------------------------ hand-made market

BASE = date(2025, 3, 10)  # local day 0


def at(day: int, hour: int, minute: int, second: int = 0) -> pd.Timestamp:
    """A local (Dhaka) time on day ``day`` after BASE, as a UTC timestamp."""
    local = datetime.combine(BASE + timedelta(days=day), datetime.min.time())
    local += timedelta(hours=hour, minutes=minute, seconds=second)
    return pd.Timestamp(local, tz=DHAKA).tz_convert("UTC")


def end_of(day: int) -> pd.Timestamp:
    return at(day, 23, 59, 59) + pd.Timedelta(microseconds=999_999)


def _frame(rows: list[dict[str, Any]], table: str) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(fe.COLUMNS_USED[table]))


def _customer(cid: int, signup: pd.Timestamp, phone: int, address: int) -> dict[str, Any]:
    return {
        "customer_id": cid, "signup_ts": signup, "division": "Dhaka", "district": "Dhaka",
        "is_urban": True, "preferred_language": "bn", "device_type": "android",
        "acquisition_channel": "organic", "phone_id": phone, "address_id": address,
    }  # fmt: skip


def _order(
    oid: int, cid: int, ts: pd.Timestamp, total: float, method: str, status: str, **extra: Any
) -> dict[str, Any]:
    return {
        "order_id": oid, "customer_id": cid, "order_ts": ts, "address_id": 700 + cid,
        "n_items": 1, "subtotal_bdt": extra.get("subtotal", total),
        "discount_bdt": extra.get("discount", 0.0), "voucher_code": extra.get("voucher"),
        "total_bdt": total, "payment_method": method, "status": status,
    }  # fmt: skip


def _payment(
    pid: int,
    cid: int,
    ts: pd.Timestamp,
    amount: float,
    device: int,
    *,
    order: int | None = None,
    method: str = "cod",
    wallet: int | None = None,
    card: int | None = None,
    status: str = "succeeded",
) -> dict[str, Any]:
    return {
        "payment_id": pid, "order_id": order, "customer_id": cid, "payment_ts": ts,
        "payment_method": method, "amount_bdt": amount, "device_id": device,
        "wallet_account_id": wallet, "card_id": card, "status": status,
    }  # fmt: skip


def _event(
    session: int, cid: int, ts: pd.Timestamp, kind: str, product: int | None
) -> dict[str, Any]:
    return {
        "session_id": session, "customer_id": cid, "event_ts": ts, "event_type": kind,
        "product_id": product, "device_type": "android",
    }  # fmt: skip


def hand_tables() -> dict[str, pd.DataFrame]:
    """Customer 1 orders on days 0, 2, 8 and 9 and pays from devices 11 and 12 with wallets 21,
    22 and 23; customers 2 and 3 share customer 1's phone; customer 2 pays once from device 11;
    customer 4 only browses."""
    customers = [
        _customer(1, at(-60, 10, 0), phone=500, address=801),
        _customer(2, at(-5, 10, 0), phone=500, address=802),
        _customer(3, at(2, 12, 0), phone=500, address=803),
        _customer(4, at(-30, 10, 0), phone=900, address=804),
    ]
    products = [
        {
            "product_id": 1, "seller_id": 1, "category": "fashion", "subcategory": "saree",
            "brand": "A", "price_bdt": 1000.0, "rating": 4.0, "stock": 5,
            "listed_ts": at(-100, 0, 0),
        },
        {
            "product_id": 2, "seller_id": 1, "category": "mobile", "subcategory": "phone",
            "brand": "B", "price_bdt": 5000.0, "rating": None, "stock": 9,
            "listed_ts": at(-50, 0, 0),
        },
    ]  # fmt: skip
    orders = [
        _order(1, 1, at(0, 10, 0), 1000.0, "cod", "cod_refused"),
        _order(2, 1, at(2, 11, 0), 2000.0, "bkash", "delivered", subtotal=2100.0, discount=100.0,
               voucher="EID25"),
        _order(3, 1, at(8, 12, 0), 500.0, "cod", "delivered"),
        _order(4, 1, at(9, 9, 0), 3000.0, "card", "returned"),
        _order(5, 2, at(3, 15, 0), 700.0, "bkash", "delivered"),
    ]  # fmt: skip
    items = [
        {"order_id": o["order_id"], "product_id": 2 if o["order_id"] == 4 else 1,
         "order_ts": o["order_ts"], "quantity": 1, "unit_price_bdt": o["subtotal_bdt"]}
        for o in orders
    ]  # fmt: skip
    payments = [
        _payment(1, 1, at(0, 10, 1), 1000.0, 11, order=1, status="pending_cod"),
        _payment(2, 1, at(2, 11, 1), 2000.0, 11, order=2, method="bkash", wallet=21),
        _payment(3, 1, at(8, 12, 1), 500.0, 12, order=3, status="pending_cod"),
        _payment(4, 1, at(9, 9, 1), 3000.0, 12, order=4, method="card", card=31),
        _payment(5, 1, at(9, 9, 5), 400.0, 11, method="bkash", wallet=22, status="failed"),
        _payment(6, 1, at(9, 9, 10), 100.0, 11, method="nagad", wallet=23),
        _payment(7, 2, at(3, 15, 1), 700.0, 11, order=5, method="bkash", wallet=41),
    ]
    events = [
        _event(100, 1, at(0, 9, 50), "view", 1),
        _event(100, 1, at(0, 9, 59), "purchase", 1),
        _event(101, 1, at(9, 8, 50), "view", 2),  # 11 minutes before payment 4
        _event(101, 1, at(9, 8, 55), "view", 2),  # exactly 10 minutes before payment 5
        _event(101, 1, at(9, 8, 58), "add_to_cart", 2),
        _event(101, 1, at(9, 9, 0), "view", 2),  # exactly 10 minutes before payment 6
        _event(101, 1, at(9, 9, 5), "view", 2),  # at payment 5 itself
        _event(101, 1, at(9, 9, 6), "search", None),  # a search is not a click
        _event(102, 1, at(17, 20, 0), "view", 1),
        _event(103, 4, at(5, 21, 0), "view", 1),
        _event(104, 4, at(5, 23, 58), "view", 1),  # a session across local midnight
        _event(104, 4, at(6, 0, 3), "view", 2),
        _event(105, 99, at(1, 12, 0), "view", 2),  # customer 99 is not in the customers table
    ]
    return {
        "customers": _frame(customers, "customers"),
        "products": _frame(products, "products"),
        "events": _frame(events, "events"),
        "orders": _frame(orders, "orders"),
        "order_items": _frame(items, "order_items"),
        "payments": _frame(payments, "payments"),
    }


def _row(frame: pd.DataFrame, key: str, entity: int, stamp: pd.Timestamp) -> pd.Series:
    rows = frame[(frame[key] == entity) & (frame[schemas.TIMESTAMP_FIELD] == stamp)]
    assert len(rows) == 1, (entity, stamp)
    return rows.iloc[0]


def test_hand_computed_customer_features() -> None:
    frame = fe.customer_features(hand_tables())
    # Customer 1 is active on days 0, 2, 8, 9 and 17; customer 2 on day 3; customer 4 on day 5.
    assert sorted(frame.loc[frame["customer_id"] == 1, "event_timestamp"]) == [
        end_of(d) for d in (0, 2, 8, 9, 17)
    ]
    day9 = _row(frame, "customer_id", 1, end_of(9))
    # RFM 7d: days 3..9 hold orders 3 (500) and 4 (3000); 30 days hold all four.
    assert day9["orders_7d"] == 2
    assert day9["spend_7d_bdt"] == pytest.approx(3500.0)
    assert day9["orders_30d"] == 4
    assert day9["spend_30d_bdt"] == pytest.approx(6500.0)
    assert day9["avg_basket_bdt_90d"] == pytest.approx(6500.0 / 4)
    # Last order 09:00, stamp 23:59:59.999999: 15 hours less a microsecond.
    assert day9["days_since_last_order"] == pytest.approx(15 / 24)
    assert day9["avg_days_between_orders"] == pytest.approx((9 * 24 - 1) / 24 / 3)
    # Payment mix of the four orders: two COD, one bKash, one card.
    assert day9["cod_share_90d"] == pytest.approx(0.5)
    assert day9["bkash_share_90d"] == pytest.approx(0.25)
    assert day9["card_share_90d"] == pytest.approx(0.25)
    assert day9["nagad_share_90d"] == 0.0
    assert day9["discount_share_90d"] == pytest.approx(100.0 / 6600.0)
    assert day9["voucher_order_share_90d"] == pytest.approx(0.25)
    # Day 9's payments: 4 (device 12 after 12), 5 (11 after 12: a switch), 6 (11 after 11);
    # day 8's payment 3 (12 after 11) is the other switch of the week. Wallets: 21 -> 22 -> 23.
    assert (day9["device_switches_1d"], day9["device_switches_7d"]) == (1, 2)
    assert (day9["wallet_switches_1d"], day9["wallet_switches_7d"]) == (2, 2)
    assert day9["payment_attempts_7d"] == 4
    assert day9["failed_payment_attempts_7d"] == 1
    # Outcomes count OUTCOME_DELAY_DAYS = 7 days after the order: none known on day 2, the
    # refused COD order of day 0 on day 9, all four on day 17 (COD: 1 refused of 2; returned:
    # order 4 of the three that reached the customer).
    assert np.isnan(_row(frame, "customer_id", 1, end_of(2))["cod_refusal_rate"])
    assert day9["cod_refusal_rate"] == 1.0
    assert day9["cod_refusals_90d"] == 1
    day17 = _row(frame, "customer_id", 1, end_of(17))
    assert day17["cod_refusal_rate"] == pytest.approx(0.5)
    assert day17["return_rate"] == pytest.approx(1 / 3)
    assert day17["orders_7d"] == 0
    assert day17["orders_lifetime"] == 4
    # Sessions: day 9's session (6 events, 08:50 to 09:06) in the last 7 days; 8 events of
    # 2 sessions in 30 days, one of which bought.
    assert day9["sessions_7d"] == 1
    assert day9["sessions_30d"] == 2
    assert day9["events_per_session_30d"] == pytest.approx(4.0)
    assert day9["session_conversion_rate_30d"] == pytest.approx(0.5)
    assert day9["avg_session_duration_s_30d"] == pytest.approx((540 + 16 * 60) / 2)
    assert day9["views_30d"] == 5
    assert day9["add_to_cart_rate_30d"] == pytest.approx(1 / 5)
    # Affinity: 7 product events (the search has no product), 2 on fashion (product 1) and 5 on
    # mobile (product 2).
    assert day9["affinity_fashion_90d"] == pytest.approx(2 / 7)
    assert day9["affinity_mobile_90d"] == pytest.approx(5 / 7)
    assert day9["affinity_books_90d"] == 0.0
    assert day9["top_category_90d"] == "mobile"
    assert day9["active_days_30d"] == 4
    assert day9["account_age_days"] == 69
    assert day9["division"] == "Dhaka"


def test_no_data_means_zero_counts_and_null_ratios() -> None:
    frame = fe.customer_features(hand_tables())
    browser = _row(frame, "customer_id", 4, end_of(5))  # customer 4 never ordered
    assert browser["orders_30d"] == 0
    assert browser["spend_90d_bdt"] == 0.0
    assert browser["orders_lifetime"] == 0
    for ratio in ("avg_basket_bdt_90d", "cod_share_90d", "cod_refusal_rate", "return_rate"):
        assert np.isnan(browser[ratio]), ratio
    assert np.isnan(browser["days_since_last_order"])
    assert browser["views_30d"] == 2
    risk = fe.customer_risk(hand_tables())
    first = _row(risk, "customer_id", 1, at(0, 10, 1))  # customer 1's first payment
    assert first["payments_30d"] == 0
    assert (first["last_device_id"], first["last_wallet_account_id"]) == (-1, -1)
    assert np.isnan(first["avg_payment_amount_30d"])
    assert np.isnan(first["max_payment_amount_30d"])
    assert np.isnan(first["seconds_since_last_payment"])


def test_unknown_customers_get_null_attributes() -> None:
    rows = fe._customer_features(fe._Marketplace(hand_tables()))
    table = rows.to_arrow()
    assert table.schema.equals(fe.feature_schema("customer_features"))
    stranger = table.filter(table["customer_id"].to_numpy() == 99).to_pylist()
    assert len(stranger) == 1
    assert stranger[0]["division"] is None
    assert stranger[0]["account_age_days"] is None
    assert stranger[0]["is_urban"] is None
    assert stranger[0]["views_30d"] == 1


def test_festival_days_come_from_the_calendar_rules_without_a_calendar_table() -> None:
    tables = hand_tables()
    assert "calendar" not in tables
    day9 = _row(fe.customer_features(tables), "customer_id", 1, end_of(9))
    # 10-19 March 2025 are in Ramadan: every order of customer 1 is festival-season spend.
    assert day9["festival_spend_share_90d"] == 1.0
    assert day9["festival_order_share_90d"] == 1.0


def test_missing_tables_are_reported(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="has no customers table"):
        fe.build_offline_features(tmp_path, tmp_path / "out")
    with pytest.raises(UserError, match="table payments is missing"):
        fe.customer_risk({name: t for name, t in hand_tables().items() if name != "payments"})


def test_a_session_counts_once_it_is_complete() -> None:
    frame = fe.customer_features(hand_tables())
    # Customer 4's second session runs from day 5 23:58 to day 6 00:03: on day 5 it is not over
    # (its length is not known yet), so only the one-view session of 21:00 counts; its views
    # count on their own days.
    day5 = _row(frame, "customer_id", 4, end_of(5))
    assert (day5["sessions_7d"], day5["views_30d"]) == (1, 2)
    assert day5["avg_session_duration_s_30d"] == 0.0
    day6 = _row(frame, "customer_id", 4, end_of(6))
    assert (day6["sessions_7d"], day6["views_30d"]) == (2, 3)
    assert day6["avg_session_duration_s_30d"] == pytest.approx(150.0)
    assert day6["events_per_session_30d"] == pytest.approx(1.5)


def test_hand_computed_customer_risk() -> None:
    risk = fe.customer_risk(hand_tables())
    # Before payment 6 (day 9, 09:10): payments 3 (day 8 12:01, 21 hours before), 4 and 5 in 24
    # hours; all five of customer 1 in 30 days.
    row = _row(risk, "customer_id", 1, at(9, 9, 10))
    assert row["payments_24h"] == 3
    assert row["failed_payments_24h"] == 1
    assert row["amount_24h_bdt"] == pytest.approx(3900.0)
    assert row["payments_30d"] == 5
    assert row["avg_payment_amount_30d"] == pytest.approx(6900.0 / 5)
    assert row["max_payment_amount_30d"] == 3000.0
    # Device changes in 24 hours: payment 3 (11 -> 12) and payment 5 (12 -> 11); wallet change:
    # payment 5 (21 -> 22). Payment 6's own change (22 -> 23) is not history yet.
    assert row["device_changes_24h"] == 2
    assert row["device_changes_7d"] == 2
    assert row["wallet_changes_24h"] == 1
    assert row["devices_7d"] == 2
    assert row["wallets_30d"] == 2
    assert row["cards_7d"] == 1
    assert row["last_device_id"] == 11
    assert row["last_wallet_account_id"] == 22
    assert row["seconds_since_last_payment"] == pytest.approx(300.0)
    # Orders paid before: 1..4, all to address 701.
    assert row["order_addresses_30d"] == 1
    # Phone 500: customer 2 signed up before day 0, customer 3 on day 2 at 12:00.
    assert _row(risk, "customer_id", 1, at(0, 10, 1))["phone_shared_customers"] == 1
    assert row["phone_shared_customers"] == 2
    assert _row(risk, "customer_id", 2, at(3, 15, 1))["phone_shared_customers"] == 2
    assert row["address_shared_customers"] == 0
    assert row["account_age_hours"] == pytest.approx(69 * 24 - 50 / 60)


def test_hand_computed_velocity_excludes_the_current_payment() -> None:
    velocity = fe.customer_velocity(hand_tables())
    # Payment 4 (09:01): no payment in the 10 minutes before it (itself excluded); clicks 08:55,
    # 08:58 and 09:00 (08:50 is 11 minutes back).
    at_4 = _row(velocity, "customer_id", 1, at(9, 9, 1))
    assert (at_4["payments_10m"], at_4["payments_1h"], at_4["clicks_10m"]) == (0, 0, 3)
    # Payment 5 (09:05): payment 4; clicks 08:58, 09:00 (08:55 is exactly 10 minutes back: out;
    # the click at 09:05 is not before it).
    at_5 = _row(velocity, "customer_id", 1, at(9, 9, 5))
    assert (at_5["payments_10m"], at_5["amount_10m_bdt"], at_5["clicks_10m"]) == (1, 3000.0, 2)
    assert at_5["failed_payments_10m"] == 0
    # Payment 6 (09:10): payments 4 and 5 (failed); clicks 09:05 only (the search at 09:06 is
    # not a click; 09:00 is exactly 10 minutes back).
    at_6 = _row(velocity, "customer_id", 1, at(9, 9, 10))
    assert (at_6["payments_10m"], at_6["failed_payments_10m"]) == (2, 1)
    assert at_6["amount_10m_bdt"] == pytest.approx(3400.0)
    assert (at_6["payments_1h"], at_6["amount_1h_bdt"]) == (2, 3400.0)
    assert at_6["clicks_10m"] == 1


def test_hand_computed_device_features() -> None:
    devices = fe.device_features(hand_tables())
    # Device 11 before customer 2's payment (day 3, 15:01): customer 1 paid from it twice.
    shared = _row(devices, "device_id", 11, at(3, 15, 1))
    assert (shared["device_customers_30d"], shared["device_payments_total"]) == (1, 2)
    assert not shared["device_is_new"]
    assert shared["device_age_days"] == pytest.approx((3 * 24 + 5) / 24)
    assert shared["device_wallets_30d"] == 1
    # Before payment 5 (day 9): customers 1 and 2 paid from device 11.
    later = _row(devices, "device_id", 11, at(9, 9, 5))
    assert (later["device_customers_30d"], later["device_customers_total"]) == (2, 2)
    assert later["device_wallets_30d"] == 2
    # Device 12 is new at payment 3: never seen, however it is used afterwards.
    fresh = _row(devices, "device_id", 12, at(8, 12, 1))
    assert fresh["device_is_new"]
    assert fresh["device_payments_total"] == 0
    assert np.isnan(fresh["device_age_days"])
    # Before payment 5: payment 4 came from device 12 within 24 hours, none failed.
    repeat = _row(devices, "device_id", 12, at(9, 9, 1))
    assert (repeat["device_payments_24h"], repeat["device_failed_payments_24h"]) == (1, 0)
    assert repeat["device_amount_24h_bdt"] == 500.0


def test_hand_computed_product_features() -> None:
    frame = fe.product_features(hand_tables())
    # Product 1 on day 3: order lines from orders 1, 2 and 5 (day 3) in 7 days; 1 + 1 views.
    row = _row(frame, "product_id", 1, end_of(3))
    assert row["order_lines_7d"] == 3
    assert row["units_sold_1d"] == 1
    assert row["revenue_7d_bdt"] == pytest.approx(1000.0 + 2100.0 + 700.0)
    assert row["views_7d"] == 1
    assert row["conversion_rate_7d"] == pytest.approx(3.0)
    assert np.isnan(row["conversion_rate_1d"])  # no view on day 3
    assert row["category"] == "fashion"
    assert row["list_price_bdt"] == 1000.0
    # Price rank: product 1 is the only fashion product.
    assert row["price_rank_in_category"] == 1.0
    # No daily price table: the current price is the list price.
    assert row["current_price_bdt"] == 1000.0
    assert row["current_discount_pct"] == 0.0
    assert np.isnan(row["avg_review_rating"])
    assert row["review_count"] == 0
    assert np.isnan(_row(frame, "product_id", 2, end_of(9))["catalogue_rating"])


# ------------------------------------------------------------------------------ point in time


def test_planted_future_rows_change_nothing_before_them(tables: dict[str, pd.DataFrame]) -> None:
    """Plant a huge order, payment, events and a review at an instant T (the time of a real
    payment); every row stamped before T, and every payment-time row stamped at T, must stay
    exactly as it was, while rows after T see the planted data."""
    payments = tables["payments"]
    # A payment from the second half whose customer was also active the day before, and the
    # product most viewed that day: both have daily rows just before T that a leak would change.
    events = tables["events"]
    event_day = events["event_ts"].dt.tz_convert(DHAKA).dt.date
    active = set(zip(events["customer_id"], event_day, strict=True))
    later = payments.sort_values("payment_ts").iloc[len(payments) // 2 :]
    previous_day = later["payment_ts"].dt.tz_convert(DHAKA).dt.date - timedelta(days=1)
    candidates = [(c, d) in active for c, d in zip(later["customer_id"], previous_day, strict=True)]
    real = later[candidates].iloc[0]
    when, customer, device = real["payment_ts"], real["customer_id"], real["device_id"]
    day_before = when.tz_convert(DHAKA).date() - timedelta(days=1)
    product = int(events.loc[event_day == day_before, "product_id"].value_counts().index[0])
    planted = {name: frame.copy() for name, frame in tables.items()}

    def plant(name: str, row: dict[str, Any]) -> None:
        addition = pd.DataFrame([row], columns=list(fe.COLUMNS_USED[name]))
        empty = [c for c in addition.columns if addition[c].isna().all()]
        addition = addition.astype({c: planted[name][c].dtype for c in empty})
        planted[name] = pd.concat([planted[name], addition], ignore_index=True)

    order_id = int(tables["orders"]["order_id"].max()) + 1
    plant("orders", _order(order_id, customer, when, 1e7, "cod", "cod_refused"))
    plant("order_items", {"order_id": order_id, "product_id": product, "order_ts": when,
                          "quantity": 50, "unit_price_bdt": 2e5})  # fmt: skip
    next_payment = int(payments["payment_id"].max()) + 1
    for offset, status in ((0, "failed"), (60, "succeeded")):
        plant("payments", _payment(next_payment + offset, customer,
                                   when + pd.Timedelta(seconds=offset), 1e7, device,
                                   method="bkash", wallet=999_999, status=status))  # fmt: skip
    session = int(tables["events"]["session_id"].max()) + 1
    for offset in (0, 30):
        plant("events", _event(session, customer, when + pd.Timedelta(seconds=offset), "view",
                               product))  # fmt: skip
    plant("reviews", {"review_id": 10**9, "product_id": product, "customer_id": customer,
                      "review_ts": when, "rating": 1, "sentiment": "negative"})  # fmt: skip

    for name, function in FEATURE_FUNCTIONS.items():
        before, after = function(tables), function(planted)
        daily = name in ("customer_features", "product_features")
        # Daily rows are stamped at the end of a day, so T's own day already sees the planted
        # data; payment-time rows are computed strictly before their stamp, so those at T don't.
        old = (
            before[schemas.TIMESTAMP_FIELD] < when
            if daily
            else before[schemas.TIMESTAMP_FIELD] <= when
        )
        new = (
            after[schemas.TIMESTAMP_FIELD] < when
            if daily
            else after[schemas.TIMESTAMP_FIELD] <= when
        )
        pd.testing.assert_frame_equal(
            before[old].reset_index(drop=True), after[new].reset_index(drop=True), obj=name
        )
        assert len(after) > len(before[old]), name
    # ... and the planted data is seen from T on (so the comparison above could fail).
    rows = fe.customer_features(tables)
    assert ((rows["customer_id"] == customer) & (rows["event_timestamp"] < when)).any()
    rows = fe.product_features(tables)
    assert ((rows["product_id"] == product) & (rows["event_timestamp"] < when)).any()
    daily_after = fe.customer_features(planted)
    row = _row(daily_after, "customer_id", customer, _end_of_local_day(when))
    assert row["spend_7d_bdt"] >= 1e7
    velocity = fe.customer_velocity(planted)
    late = _row(velocity, "customer_id", customer, when + pd.Timedelta(seconds=60))
    assert late["failed_payments_10m"] >= 1
    assert late["amount_10m_bdt"] >= 1e7
    risk = fe.customer_risk(planted)
    assert (
        _row(risk, "customer_id", customer, when + pd.Timedelta(seconds=60))[
            "last_wallet_account_id"
        ]
        == 999_999
    )


def test_rows_before_a_cut_do_not_change_when_later_data_is_removed(
    tables: dict[str, pd.DataFrame],
) -> None:
    """Cut every time-stamped table at noon (Dhaka) of a day in the middle: each row stamped
    before the cut (payment-time rows: at or before it) must be the same with or without the
    data after it."""
    cut = pd.Timestamp("2025-03-30 12:00", tz=DHAKA).tz_convert("UTC")
    time_columns = {
        "events": "event_ts",
        "orders": "order_ts",
        "order_items": "order_ts",
        "payments": "payment_ts",
        "reviews": "review_ts",
    }
    truncated = {
        name: frame[frame[time_columns[name]] <= cut] if name in time_columns else frame
        for name, frame in tables.items()
    }
    assert all(len(truncated[n]) < len(tables[n]) for n in time_columns)
    for name, function in FEATURE_FUNCTIONS.items():
        full, cut_off = function(tables), function(truncated)
        daily = name in ("customer_features", "product_features")
        stamps = full[schemas.TIMESTAMP_FIELD], cut_off[schemas.TIMESTAMP_FIELD]
        keep = [(s < cut) if daily else (s <= cut) for s in stamps]
        expected = full[keep[0]].reset_index(drop=True)
        pd.testing.assert_frame_equal(expected, cut_off[keep[1]].reset_index(drop=True), obj=name)
        assert len(expected) > 0, name


def _end_of_local_day(ts: pd.Timestamp) -> pd.Timestamp:
    local = ts.tz_convert(DHAKA).normalize() + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
    return local.tz_convert("UTC")


def test_windows_match_a_direct_count(
    tables: dict[str, pd.DataFrame],
    offline: tuple[Path, dict[str, int]],
    labelled_payments: pd.DataFrame,
) -> None:
    """A sample of rows recomputed the slow way, straight from the definitions."""
    rng = np.random.default_rng(0)
    orders, payments, events = tables["orders"], tables["payments"], tables["events"]
    daily = _read(offline, "customer_features")
    for _, row in daily.iloc[rng.choice(len(daily), size=150, replace=False)].iterrows():
        stamp = row[schemas.TIMESTAMP_FIELD]
        mine = orders[orders["customer_id"] == row["customer_id"]]
        week = mine[(mine["order_ts"] > stamp - pd.Timedelta(days=7)) & (mine["order_ts"] <= stamp)]
        assert row["orders_7d"] == len(week)
        assert row["spend_7d_bdt"] == pytest.approx(week["total_bdt"].sum())
        month = events[events["customer_id"] == row["customer_id"]]
        month = month[
            (month["event_ts"] > stamp - pd.Timedelta(days=30)) & (month["event_ts"] <= stamp)
        ]
        assert row["views_30d"] == (month["event_type"] == "view").sum()
    velocity = _read(offline, "customer_velocity").set_index(["customer_id", "event_timestamp"])
    risk = _read(offline, "customer_risk").set_index(["customer_id", "event_timestamp"])
    devices = _read(offline, "device_features").set_index(["device_id", "event_timestamp"])
    sample = payments.iloc[rng.choice(len(payments), size=150, replace=False)]
    burst = labelled_payments[
        labelled_payments["fraud_pattern"].isin(["velocity_burst", "card_testing"])
    ]
    for _, pay in pd.concat([sample, burst.head(50)]).iterrows():
        t = pay["payment_ts"]
        mine = payments[
            (payments["customer_id"] == pay["customer_id"]) & (payments["payment_ts"] < t)
        ]
        recent = mine[mine["payment_ts"] > t - pd.Timedelta(minutes=10)]
        v = velocity.loc[(pay["customer_id"], t)]
        assert v["payments_10m"] == len(recent)
        assert v["amount_10m_bdt"] == pytest.approx(recent["amount_bdt"].sum())
        r = risk.loc[(pay["customer_id"], t)]
        month = mine[mine["payment_ts"] > t - pd.Timedelta(days=30)]
        assert r["payments_30d"] == len(month)
        assert (
            r["devices_7d"]
            == mine.loc[mine["payment_ts"] > t - pd.Timedelta(days=7), "device_id"].nunique()
        )
        if len(month):
            assert r["max_payment_amount_30d"] == month["amount_bdt"].max()
        shared = payments[
            (payments["device_id"] == pay["device_id"]) & (payments["payment_ts"] < t)
        ]
        d = devices.loc[(pay["device_id"], t)]
        assert (
            d["device_customers_30d"]
            == shared.loc[shared["payment_ts"] > t - pd.Timedelta(days=30), "customer_id"].nunique()
        )
        assert d["device_payments_total"] == len(shared)


# ------------------------------------------------------------------------------ fraud signal


def test_mule_ring_payments_share_devices_and_phones(
    labelled_payments: pd.DataFrame, offline: tuple[Path, dict[str, int]]
) -> None:
    payments = labelled_payments
    joined = payments.merge(
        _read(offline, "device_features"),
        left_on=["device_id", "payment_ts"],
        right_on=["device_id", "event_timestamp"],
    ).merge(
        _read(offline, "customer_risk"),
        left_on=["customer_id", "payment_ts"],
        right_on=["customer_id", "event_timestamp"],
    )
    assert len(joined) == len(payments)
    mule = joined[joined["fraud_pattern"] == "mule_ring"]
    genuine = joined[joined["fraud_pattern"].isna()]
    assert len(mule) >= 10
    assert mule["device_customers_30d"].mean() > genuine["device_customers_30d"].mean()
    assert mule["phone_shared_customers"].mean() > 1.0 > genuine["phone_shared_customers"].mean()
    assert mule["address_shared_customers"].mean() > genuine["address_shared_customers"].mean()


def test_velocity_bursts_show_in_the_velocity_counters(
    labelled_payments: pd.DataFrame, offline: tuple[Path, dict[str, int]]
) -> None:
    payments = labelled_payments
    joined = payments.merge(
        _read(offline, "customer_velocity"),
        left_on=["customer_id", "payment_ts"],
        right_on=["customer_id", "event_timestamp"],
    )
    by_pattern = joined.groupby(joined["fraud_pattern"].fillna("genuine"))["payments_10m"].mean()
    # Bursts pay many times in minutes; a genuine customer almost never twice in 10 minutes.
    assert by_pattern["velocity_burst"] > 1.0 > 0.05 > by_pattern["genuine"]
