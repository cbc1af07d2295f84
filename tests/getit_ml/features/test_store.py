"""The embedded feature store: apply, point-in-time joins, materialize, online reads."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from feast import FeatureStore

from getit_ml.errors import UserError
from getit_ml.features import schemas
from getit_ml.features.store import (
    StoreLayout,
    apply_definitions,
    historical_features,
    materialize,
    online_features,
    open_store,
    push_velocity,
    redis_connection_string,
    sqlalchemy_url,
)
from getit_ml.settings import load_settings
from tests.getit_ml.features.offline_fixtures import value_of, write_offline

T0 = datetime(2025, 3, 1, tzinfo=UTC)
#: A customer feature whose value identifies the offline row it came from.
NUMERIC_CUSTOMER_FEATURE = next(n for n, t in schemas.CUSTOMER_FEATURES.items() if t == "int64")
DAY = timedelta(days=1)


def _store(root: Path, rows: dict[str, list[tuple[int, datetime, int]]]) -> FeatureStore:
    write_offline(StoreLayout(root).offline_dir, rows)
    store = open_store(load_settings(), root)
    apply_definitions(store, load_settings().feature_repo)
    return store


@pytest.fixture
def store(tmp_path: Path) -> FeatureStore:
    """Customers 1-3 with versions on days 1, 3 and 5; customer 2 also has a 'future' row."""
    customer_rows = [
        (1, T0 + 1 * DAY, 1),
        (1, T0 + 3 * DAY, 3),
        (2, T0 + 1 * DAY, 1),
        (2, T0 + 10 * DAY, 10),  # planted in the future of every label below
        (3, T0 + 5 * DAY, 5),
    ]
    return _store(
        tmp_path / "features",
        {
            "customer_features": customer_rows,
            "customer_risk": customer_rows,
            "device_features": [(7, T0 + 2 * DAY, 2)],
            "customer_velocity": [(1, T0 + 3 * DAY, 3)],
        },
    )


def _online_table(root: Path, view: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(root / "data" / "online_store.db") as connection:
        (name,) = connection.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name LIKE ?", (f"%{view}",)
        ).fetchone()
        return sorted(connection.execute(f'SELECT * FROM "{name}"').fetchall())


def test_apply_registers_the_repository(store: FeatureStore) -> None:
    views = {v.name for v in store.list_feature_views()}
    assert views == {
        "customer_features",
        "product_features",
        "device_features",
        "customer_risk",
        "customer_velocity",
    }
    odfvs = {v.name for v in store.list_on_demand_feature_views()}
    assert odfvs == {"calendar_context", "transaction_context", "scoring_calendar"}
    service = store.get_feature_service("fraud_scoring_v1")
    n_features = sum(len(p.features) for p in service.feature_view_projections)
    assert n_features >= 80
    churn = store.get_feature_service("churn_prediction_v1")
    assert [p.name for p in churn.feature_view_projections] == [
        "customer_features",
        "scoring_calendar",
    ]


def test_point_in_time_never_sees_the_future(store: FeatureStore) -> None:
    labels = pd.DataFrame(
        {
            "customer_id": [1, 1, 2, 3],
            "device_id": [7, 7, 7, 7],
            "event_timestamp": [T0 + 2 * DAY, T0 + 4 * DAY, T0 + 9 * DAY, T0 + 4 * DAY],
            "request_ts_us": [0, 0, 0, 0],
            "amount_bdt": [100.0, 100.0, 100.0, 100.0],
            "payment_method": ["bkash"] * 4,
            "checkout_device_id": [7] * 4,
            "checkout_wallet_account_id": [-1] * 4,
        }
    )
    frame = historical_features(store, "fraud_scoring_v1", labels)
    frame = frame.sort_values(["customer_id", "event_timestamp"]).reset_index(drop=True)
    name = NUMERIC_CUSTOMER_FEATURE
    # Customer 1 at day 2 sees day 1's row; at day 4, day 3's row.
    assert frame.loc[0, name] == value_of(1, 1)
    assert frame.loc[1, name] == value_of(1, 3)
    # Customer 2's day-10 row is after the label at day 9: still day 1's value.
    assert frame.loc[2, name] == value_of(2, 1)
    # Customer 3's only row is at day 5, after the label at day 4: unknown, not a future value.
    assert pd.isna(frame.loc[3, name])


def test_online_equals_the_latest_offline_values(store: FeatureStore) -> None:
    materialize(store, T0, T0 + 30 * DAY)
    result = online_features(
        store,
        "fraud_scoring_v1",
        [
            {"customer_id": c, "device_id": 7, "request_ts_us": 0, "amount_bdt": 10.0,
             "payment_method": "cod", "checkout_device_id": 7, "checkout_wallet_account_id": -1}
            for c in (1, 2, 3)
        ],
    )  # fmt: skip
    name = NUMERIC_CUSTOMER_FEATURE
    assert result.values[name].tolist() == [value_of(1, 3), value_of(2, 10), value_of(3, 5)]
    assert not result.missing[name].any()


def test_rematerializing_a_window_changes_nothing(store: FeatureStore, tmp_path: Path) -> None:
    materialize(store, T0, T0 + 30 * DAY)
    before = _online_table(tmp_path / "features", "customer_features")
    materialize(store, T0, T0 + 30 * DAY)
    assert _online_table(tmp_path / "features", "customer_features") == before


def test_backfill_never_overwrites_newer_values(store: FeatureStore) -> None:
    materialize(store, T0 + 2 * DAY, T0 + 30 * DAY)  # the newer window first
    materialize(store, T0, T0 + 2 * DAY)  # then an older backfill (day-1 rows)
    row = {"customer_id": 1, "device_id": 7}
    result = online_features(store, "fraud_scoring_v1", [row | _request()])
    name = NUMERIC_CUSTOMER_FEATURE
    assert result.values[name].tolist() == [value_of(1, 3)]


def test_feasts_plain_sqlite_store_would_go_back_in_time(tmp_path: Path) -> None:
    """Why the guard exists: the same backfill on Feast's stock SQLite store regresses."""
    root = tmp_path / "plain"
    write_offline(StoreLayout(root).offline_dir, {"customer_features": [
        (1, T0 + 1 * DAY, 1), (1, T0 + 3 * DAY, 3)]})  # fmt: skip
    repo = tmp_path / "repo"
    repo.mkdir()
    source = load_settings().feature_repo
    (repo / "marketplace_features.py").write_text((source / "marketplace_features.py").read_text())
    (repo / "feature_store.yaml").write_text(
        (source / "feature_store.yaml")
        .read_text()
        .replace("type: getit_ml.features.online_stores.GuardedSqliteOnlineStore", "type: sqlite")
    )
    settings = load_settings(feature_repo=repo)
    plain = open_store(settings, root)
    apply_definitions(plain, repo)
    materialize(plain, T0 + 2 * DAY, T0 + 30 * DAY, ["customer_features"])
    materialize(plain, T0, T0 + 2 * DAY, ["customer_features"])
    name = NUMERIC_CUSTOMER_FEATURE
    values = plain.get_online_features(
        features=[f"customer_features:{name}"], entity_rows=[{"customer_id": 1}]
    ).to_dict()
    assert values[name] == [value_of(1, 1)]


def _request() -> dict[str, object]:
    return {
        "request_ts_us": int((T0 + 3 * DAY).timestamp() * 1_000_000),
        "amount_bdt": 5000.0,
        "payment_method": "bkash",
        "checkout_device_id": 99,
        "checkout_wallet_account_id": 5,
    }


def test_unknown_entities_come_back_missing(store: FeatureStore) -> None:
    materialize(store, T0, T0 + 30 * DAY)
    result = online_features(
        store, "fraud_scoring_v1", [{"customer_id": 424242, "device_id": 1} | _request()]
    )
    name = NUMERIC_CUSTOMER_FEATURE
    assert result.values[name].isna().all()
    assert result.missing[name].all()
    # Request-time features are still computed.
    assert not result.missing["hour_local"].any()
    assert result.values["is_new_device"].tolist() == [True]


def test_on_demand_features_online_and_offline_agree(store: FeatureStore) -> None:
    materialize(store, T0, T0 + 30 * DAY)
    request = _request()
    online = online_features(
        store, "fraud_scoring_v1", [{"customer_id": 1, "device_id": 7} | request]
    )
    offline = historical_features(
        store,
        "fraud_scoring_v1",
        pd.DataFrame(
            [{"customer_id": 1, "device_id": 7, "event_timestamp": T0 + 4 * DAY} | request]
        ),
    )
    for name in ("hour_local", "days_to_eid_ul_fitr", "amount_vs_avg_30d", "is_new_device"):
        assert online.values[name].iloc[0] == offline[name].iloc[0], name
    expected_ratio = 5000.0 / value_of(1, 3)
    assert online.values["amount_vs_avg_30d"].iloc[0] == pytest.approx(expected_ratio)


def test_pushed_velocity_is_served(store: FeatureStore) -> None:
    now = datetime.now(UTC)
    keys = {"customer_id": [1], "event_timestamp": [now], "created_timestamp": [now]}
    velocity = {
        name: [3 if kind == "int64" else 4500.0] for name, kind in schemas.VELOCITY_FEATURES.items()
    }
    rows = pd.DataFrame(keys | velocity)
    push_velocity(store, rows)
    result = online_features(
        store, "fraud_scoring_v1", [{"customer_id": 1, "device_id": 7} | _request()]
    )
    assert result.values["payments_10m"].tolist() == [3]


def test_bad_requests_are_user_errors(store: FeatureStore) -> None:
    with pytest.raises(UserError, match="unknown feature service"):
        online_features(store, "no_such_service", [{"customer_id": 1}])
    with pytest.raises(UserError, match="no entity rows"):
        online_features(store, "fraud_scoring_v1", [])
    with pytest.raises(UserError, match="event_timestamp"):
        historical_features(store, "fraud_scoring_v1", pd.DataFrame({"customer_id": [1]}))


def test_production_addresses_are_translated() -> None:
    assert redis_connection_string("redis://127.0.0.1:6379/2") == "127.0.0.1:6379,db=2"
    assert (
        redis_connection_string("rediss://:s3cret@cache:6380/0")
        == "cache:6380,db=0,password=s3cret,ssl=true"
    )
    assert sqlalchemy_url("postgresql://u@h:5432/d") == "postgresql+psycopg://u@h:5432/d"
    with pytest.raises(UserError):
        redis_connection_string("http://nope")
    with pytest.raises(UserError):
        sqlalchemy_url("mysql://x")


def test_pandas_touching_sqlite_does_not_break_the_online_store(store: FeatureStore) -> None:
    """pandas' SQL layer re-registers sqlite3's process-wide timestamp codecs as ISO text."""
    materialize(store, T0 + 2 * DAY, T0 + 30 * DAY)  # newest values, written as epoch seconds
    with sqlite3.connect(":memory:") as connection:
        pd.DataFrame({"at": [datetime(2025, 1, 1)]}).to_sql("t", connection)  # hijacks codecs
    materialize(store, T0, T0 + 2 * DAY)  # a backfill after the hijack must still lose
    row = {"customer_id": 1, "device_id": 7} | _request()
    result = online_features(store, "fraud_scoring_v1", [row])
    assert result.values[NUMERIC_CUSTOMER_FEATURE].tolist() == [value_of(1, 3)]
