"""The production profile against the real servers: Redis online store, PostgreSQL SQL registry."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from feast import FeatureStore

from getit_ml.features import schemas
from getit_ml.features.store import (
    Profile,
    StoreLayout,
    apply_definitions,
    materialize,
    online_features,
    open_store,
)
from getit_ml.settings import load_settings
from tests.getit_ml.features.offline_fixtures import value_of, write_offline

pytestmark = pytest.mark.integration

T0 = datetime(2025, 3, 1, tzinfo=UTC)
DAY = timedelta(days=1)
FEATURE = next(n for n, t in schemas.CUSTOMER_FEATURES.items() if t == "int64")


@pytest.fixture
def production_store(tmp_path: Path, redis_url: str, postgres_dsn: str) -> Iterator[FeatureStore]:
    rows = [(1, T0 + DAY, 1), (1, T0 + 3 * DAY, 3), (2, T0 + 2 * DAY, 2)]
    root = tmp_path / "features"
    write_offline(StoreLayout(root).offline_dir, {"customer_features": rows, "customer_risk": rows})
    project = f"getit_test_{uuid.uuid4().hex[:10]}"  # isolates this test in the shared servers
    settings = load_settings(redis_url=redis_url, postgres_dsn=postgres_dsn)
    store = open_store(settings, root, Profile.PRODUCTION, project=project)
    apply_definitions(store, settings.feature_repo)
    yield store
    store.teardown()  # removes the project's Redis keys and its registry rows


def test_registry_lives_in_postgres(production_store: FeatureStore, postgres_dsn: str) -> None:
    import psycopg

    with psycopg.connect(postgres_dsn) as connection:
        found = connection.execute(
            "SELECT count(*) FROM feature_views WHERE project_id = %s",
            (production_store.project,),
        ).fetchone()
    assert found is not None
    assert found[0] == 5


def test_materialized_values_come_from_redis(
    production_store: FeatureStore, redis_url: str
) -> None:
    materialize(production_store, T0, T0 + 10 * DAY)
    client = redis.Redis.from_url(redis_url)
    keys = [k for k in client.scan_iter(match=f"*{production_store.project}*".encode(), count=1000)]
    client.close()
    assert keys, "nothing was written to Redis"
    result = online_features(
        production_store,
        "fraud_scoring_v1",
        [{"customer_id": c, "device_id": 1, "request_ts_us": 0, "amount_bdt": 1.0,
          "payment_method": "cod", "checkout_device_id": 1, "checkout_wallet_account_id": -1}
         for c in (1, 2, 99)],
    )  # fmt: skip
    assert result.values[FEATURE].tolist()[:2] == [value_of(1, 3), value_of(2, 2)]
    assert result.missing[FEATURE].tolist() == [False, False, True]


def test_backfill_keeps_newer_values_in_redis(production_store: FeatureStore) -> None:
    materialize(production_store, T0 + 2 * DAY, T0 + 10 * DAY)
    materialize(production_store, T0, T0 + 2 * DAY)
    result = online_features(
        production_store,
        "fraud_scoring_v1",
        [{"customer_id": 1, "device_id": 1, "request_ts_us": 0, "amount_bdt": 1.0,
          "payment_method": "cod", "checkout_device_id": 1, "checkout_wallet_account_id": -1}],
    )  # fmt: skip
    assert result.values[FEATURE].tolist() == [value_of(1, 3)]
