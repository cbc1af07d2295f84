"""The transformer's direct online reads return exactly what Feast's ``get_online_features`` does.

On a real embedded (SQLite) store and on a real Redis (a private ``redis-server``): the same
columns, the same values of the same Python types, ``None`` for unknown entities, duplicates and
several rows in one read, values older than the view's ttl served (Feast's online read ignores the
ttl), a pushed null — for the fraud service's views (two join keys) and churn's.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from feast import FeatureStore

from getit_ml.features import schemas
from getit_ml.features.store import StoreLayout, apply_definitions, materialize, push_velocity
from getit_ml.serving.feature_reader import (
    RedisViewReader,
    StoreViewReader,
    ViewReader,
    plan_views,
    view_reader,
)
from getit_ml.serving.transformer import FeastLookup
from getit_ml.settings import load_settings
from tests.getit_ml.features.offline_fixtures import write_offline
from tests.getit_ml.features.private_redis import private_redis, redis_backed_store
from tests.getit_ml.serving.support import CHURN_SERVICE, FRAUD_SERVICE

T0 = datetime(2025, 3, 1, tzinfo=UTC)
DAY = timedelta(days=1)

ROWS: list[list[dict[str, int]]] = [
    [{"customer_id": 1, "device_id": 1}],
    [{"customer_id": 99_999, "device_id": 99_999}],  # unknown everywhere
    [{"customer_id": 2, "device_id": 99_998}],  # known customer, unknown device
    [  # several rows, a duplicate, an unknown in the middle
        {"customer_id": 3, "device_id": 3},
        {"customer_id": 99_997, "device_id": 2},
        {"customer_id": 3, "device_id": 3},
        {"customer_id": 4, "device_id": 1},
    ],
]


def _fill(store: FeatureStore, root: Path) -> FeatureStore:
    customers = [(c, T0 + DAY, 1) for c in range(1, 6)] + [(c, T0 + 3 * DAY, 3) for c in (1, 2)]
    write_offline(
        StoreLayout(root).offline_dir,
        {
            "customer_features": customers,
            "customer_risk": customers,
            "device_features": [(d, T0 + 2 * DAY, 2) for d in range(1, 4)],
            "customer_velocity": [(c, T0 + 2 * DAY, 2) for c in range(1, 5)],
        },
    )
    apply_definitions(store, load_settings().feature_repo)
    materialize(store, T0, T0 + 10 * DAY)  # months before now: older than every view's ttl
    # A null pushed for one customer's velocity: served as null, not as a made-up value.
    now = datetime.now(UTC)
    row: dict[str, list[Any]] = {
        "customer_id": [4],
        "event_timestamp": [now],
        "created_timestamp": [now],
    }
    for name, kind in schemas.VELOCITY_FEATURES.items():
        row[name] = [None if kind == "float64" else 1]
    push_velocity(store, pd.DataFrame(row))
    return store


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> FeatureStore:
    from getit_ml.features.store import open_store

    root = tmp_path_factory.mktemp("reader-sqlite") / "features"
    write_offline(StoreLayout(root).offline_dir, {"customer_features": [(1, T0, 1)]})
    return _fill(open_store(load_settings(), root), root)


@pytest.fixture(scope="module")
def redis_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FeatureStore]:
    folder = tmp_path_factory.mktemp("reader-redis")
    with private_redis(folder) as server:
        root = folder / "features"
        yield _fill(redis_backed_store(root, server.url), root)


def _same(expected: Mapping[str, Sequence[Any]], actual: Mapping[str, Sequence[Any]]) -> None:
    assert set(actual) == set(expected)
    for name, values in expected.items():
        got = list(actual[name])
        assert len(got) == len(values), name
        for want, have in zip(values, got, strict=True):
            assert type(have) is type(want), (name, want, have)
            if isinstance(want, float) and math.isnan(want):
                assert math.isnan(have), name
            else:
                assert have == want, (name, want, have)


def _check(store: FeatureStore, service: str, rows: list[list[dict[str, int]]]) -> ViewReader:
    refs = FeastLookup(store, service).refs
    reader = view_reader(store, plan_views(store, refs))
    for entity_rows in rows:
        expected = store.get_online_features(features=refs, entity_rows=entity_rows).to_dict()
        _same(expected, reader.read(entity_rows))
        _same(expected, asyncio.run(reader.aread(entity_rows)))
    asyncio.run(reader.aclose())
    return reader


def test_sqlite_reads_equal_get_online_features(sqlite_store: FeatureStore) -> None:
    reader = _check(sqlite_store, FRAUD_SERVICE, ROWS)
    assert isinstance(reader, StoreViewReader)
    churn_rows = [
        [{k: v for k, v in r.items() if k == "customer_id"} for r in rows] for rows in ROWS
    ]
    _check(sqlite_store, CHURN_SERVICE, churn_rows)


@pytest.mark.integration
def test_redis_reads_equal_get_online_features(redis_store: FeatureStore) -> None:
    reader = _check(redis_store, FRAUD_SERVICE, ROWS)
    assert isinstance(reader, RedisViewReader)
    churn_rows = [
        [{k: v for k, v in r.items() if k == "customer_id"} for r in rows] for rows in ROWS
    ]
    _check(redis_store, CHURN_SERVICE, churn_rows)


def test_what_the_reads_see(sqlite_store: FeatureStore) -> None:
    """The cases the equality covers are really there: old values served, unknowns null, the
    pushed null null."""
    refs = FeastLookup(sqlite_store, FRAUD_SERVICE).refs
    reader = view_reader(sqlite_store, plan_views(sqlite_store, refs))
    columns = reader.read(ROWS[3])
    assert columns["orders_lifetime"][0] is not None  # 10 months old, 90-day ttl: still served
    assert columns["orders_lifetime"][1] is None  # unknown customer
    amount = next(n for n, k in schemas.VELOCITY_FEATURES.items() if k == "float64")
    assert columns[amount][3] is None  # the pushed null
    assert columns["customer_id"] == [3, 99_997, 3, 4]
    asyncio.run(reader.aclose())


def test_a_plan_refuses_a_feature_the_view_does_not_have(sqlite_store: FeatureStore) -> None:
    from getit_ml.errors import UserError

    with pytest.raises(UserError, match="no feature"):
        plan_views(sqlite_store, ["customer_features:no_such_feature"])
