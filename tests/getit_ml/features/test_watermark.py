"""Materialization watermarks live in the online store: written by materialize and pushes, only
moving forward, and gone when the store is emptied (SQLite and a private Redis)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from feast import FeatureStore

from getit_ml.errors import UserError
from getit_ml.features import schemas
from getit_ml.features.store import (
    RedisTimeouts,
    StoreLayout,
    apply_definitions,
    materialize,
    materialize_incremental,
    materialized_views,
    online_features,
    open_store,
    push_velocity,
    redis_connection_string,
)
from getit_ml.features.watermark import (
    SQLITE_TABLE,
    RedisWatermarks,
    SqliteWatermarks,
    parse_redis_connection_string,
    redis_client,
    watermarks_for,
)
from getit_ml.settings import load_settings
from tests.getit_ml.features.offline_fixtures import write_offline
from tests.getit_ml.features.private_redis import PrivateRedis, redis_backed_store

T0 = datetime(2025, 3, 1, tzinfo=UTC)
DAY = timedelta(days=1)
ONLINE_VIEWS = {
    "customer_features",
    "product_features",
    "device_features",
    "customer_risk",
    "customer_velocity",
}


def _rows() -> dict[str, list[tuple[int, datetime, int]]]:
    customers = [(c, T0 + DAY, 1) for c in (1, 2, 3)]
    return {
        "customer_features": customers,
        "customer_risk": customers,
        "device_features": [(7, T0 + DAY, 1)],
        "customer_velocity": [(1, T0 + DAY, 1)],
    }


def _applied(store: FeatureStore, root: Path) -> FeatureStore:
    write_offline(StoreLayout(root).offline_dir, _rows())
    apply_definitions(store, load_settings().feature_repo)
    return store


@pytest.fixture
def sqlite_store(tmp_path: Path) -> FeatureStore:
    root = tmp_path / "features"
    write_offline(StoreLayout(root).offline_dir, _rows())
    return _applied(open_store(load_settings(), root), root)


def _marks(store: FeatureStore, views: list[str] | None = None) -> dict[str, datetime | None]:
    backend = watermarks_for(store.config)
    try:
        return backend.read(views or sorted(ONLINE_VIEWS))
    finally:
        backend.close()


def _velocity(customer: int, when: datetime) -> pd.DataFrame:
    row: dict[str, list[object]] = {
        "customer_id": [customer],
        "event_timestamp": [when],
        "created_timestamp": [when],
    }
    for name, kind in schemas.VELOCITY_FEATURES.items():
        row[name] = [2 if kind == "int64" else 10.0]
    return pd.DataFrame(row)


def test_a_new_store_has_no_watermarks(sqlite_store: FeatureStore) -> None:
    assert set(materialized_views(sqlite_store)) == ONLINE_VIEWS
    assert _marks(sqlite_store) == dict.fromkeys(sorted(ONLINE_VIEWS))


def test_materialize_advances_every_view_it_loads_and_never_back(
    sqlite_store: FeatureStore,
) -> None:
    materialize(sqlite_store, T0, T0 + 5 * DAY)
    assert _marks(sqlite_store) == dict.fromkeys(sorted(ONLINE_VIEWS), T0 + 5 * DAY)
    materialize(sqlite_store, T0 - 5 * DAY, T0 + DAY)  # an older backfill
    assert set(_marks(sqlite_store).values()) == {T0 + 5 * DAY}
    materialize(sqlite_store, T0, T0 + 8 * DAY, ["customer_features"])  # one view only
    marks = _marks(sqlite_store)
    assert marks["customer_features"] == T0 + 8 * DAY
    assert marks["customer_risk"] == T0 + 5 * DAY


def test_a_push_advances_the_pushed_views_to_the_newest_event(sqlite_store: FeatureStore) -> None:
    materialize(sqlite_store, T0, T0 + 5 * DAY)
    newest = datetime(2025, 6, 1, 12, 30, tzinfo=UTC)
    push_velocity(sqlite_store, pd.concat([_velocity(1, newest - timedelta(hours=1)),
                                           _velocity(2, newest)]))  # fmt: skip
    marks = _marks(sqlite_store)
    assert marks["customer_velocity"] == newest
    assert marks["customer_features"] == T0 + 5 * DAY  # not fed by the push
    push_velocity(sqlite_store, _velocity(3, newest - DAY))  # a late event: no step back
    assert _marks(sqlite_store)["customer_velocity"] == newest


def test_the_watermarks_live_in_the_online_database(
    sqlite_store: FeatureStore, tmp_path: Path
) -> None:
    materialize(sqlite_store, T0, T0 + 5 * DAY)
    database = tmp_path / "features" / "data" / "online_store.db"
    with sqlite3.connect(database) as connection:
        rows = connection.execute(f"SELECT project, view FROM {SQLITE_TABLE}").fetchall()
    assert {view for _, view in rows} == ONLINE_VIEWS
    assert {project for project, _ in rows} == {sqlite_store.project}
    # The store's file deleted (an emptied store): no watermark, and reading creates nothing.
    database.unlink()
    reader = SqliteWatermarks(database, sqlite_store.project)
    with pytest.raises(sqlite3.OperationalError):
        reader.read(["customer_features"])
    with pytest.raises(sqlite3.OperationalError):
        reader.ping()
    assert not database.exists()


def test_connection_strings() -> None:
    host, port, options = parse_redis_connection_string(
        "cache:6380,db=2,password=s3cret,ssl=true,socket_timeout=0.25"
    )
    assert (host, port) == ("cache", 6380)
    assert options == {"db": 2, "password": "s3cret", "ssl": True, "socket_timeout": 0.25}
    with pytest.raises(UserError, match="exactly one host"):
        parse_redis_connection_string("a:1,b:2")
    timeouts = RedisTimeouts(connect_s=0.25, read_s=0.5)
    assert redis_connection_string("redis://127.0.0.1:6379/2", timeouts) == (
        "127.0.0.1:6379,db=2,socket_connect_timeout=0.25,socket_timeout=0.5"
    )
    client = redis_client("127.0.0.1:1,socket_timeout=3", socket_timeout_s=0.1, fail_fast=True)
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == 0.1
    client.close()


# ------------------------------------------------------------------------------ on Redis
@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.integration
def test_redis_watermarks_are_keys_of_the_store_and_a_restart_loses_them(
    redis_server: PrivateRedis, tmp_path: Path
) -> None:
    root = tmp_path / "features"
    store = _applied(redis_backed_store(root, redis_server.url, project="wm_test"), root)
    backend = watermarks_for(store.config, timeout_s=0.5)
    assert isinstance(backend, RedisWatermarks)
    materialize(store, T0, T0 + 5 * DAY)
    client = redis_server.client()
    assert (
        client.get("getit_ml:watermark:wm_test:customer_features")
        == str(int((T0 + 5 * DAY).timestamp() * 1_000_000)).encode()
    )
    materialize(store, T0 - DAY, T0 + 2 * DAY)  # a backfill: the Lua script keeps the newer
    assert set(backend.read(sorted(ONLINE_VIEWS)).values()) == {T0 + 5 * DAY}
    backend.ping()
    redis_server.restart()  # no persistence: back empty, like the chart's Redis without AOF
    assert set(backend.read(sorted(ONLINE_VIEWS)).values()) == {None}
    backend.close()
    client.close()


@pytest.mark.integration
def test_incremental_materialize_refills_a_store_that_lost_its_data(
    redis_server: PrivateRedis, tmp_path: Path
) -> None:
    """Feast's registry remembers the last run, so after a Redis restart its incremental run
    would load only the time since: a view without a watermark is reloaded over its ttl."""
    root = tmp_path / "features"
    store = _applied(redis_backed_store(root, redis_server.url, project="refill"), root)
    end = T0 + 5 * DAY
    materialize_incremental(store, end)  # first run: nothing to go back to, loads the ttl
    rows = [{"customer_id": 1, "device_id": 7}]
    request = {"request_ts_us": 0, "amount_bdt": 1.0, "payment_method": "cod",
               "checkout_device_id": 7, "checkout_wallet_account_id": -1}  # fmt: skip
    before = online_features(store, "fraud_scoring_v1", [rows[0] | request])
    assert not before.missing["orders_lifetime"].iloc[0]
    redis_server.restart()
    empty = online_features(store, "fraud_scoring_v1", [rows[0] | request])
    assert empty.missing["orders_lifetime"].iloc[0]
    materialize_incremental(store, end + DAY)
    after = online_features(store, "fraud_scoring_v1", [rows[0] | request])
    assert not after.missing["orders_lifetime"].iloc[0]
    assert set(_marks(store).values()) == {end + DAY}
