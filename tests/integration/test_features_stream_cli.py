"""`getit-ml features stream`: events on a Redis Stream become online velocity features."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from typer.testing import CliRunner

from getit_ml.cli.main import app
from getit_ml.features.store import StoreLayout, online_features, open_store
from getit_ml.features.streaming import publish_events
from getit_ml.settings import load_settings
from tests.getit_ml.features.offline_fixtures import write_offline

pytestmark = pytest.mark.integration

runner = CliRunner()


@pytest.fixture
def stream_key(redis_url: str) -> Iterator[str]:
    key = f"getit-ml:test:cli:{uuid.uuid4().hex}"
    yield key
    client = redis.Redis.from_url(redis_url)
    client.delete(key)
    client.close()


def test_stream_pushes_velocity_to_the_online_store(
    tmp_path: Path, redis_url: str, stream_key: str
) -> None:
    root = tmp_path / "features"
    write_offline(StoreLayout(root).offline_dir, {})
    assert runner.invoke(app, ["features", "apply", "--workdir", str(root)]).exit_code == 0
    now = datetime.now(UTC)
    events = [
        {"kind": "payment", "customer_id": 42, "ts": now - timedelta(minutes=m),
         "amount_bdt": 1000.0, "status": "succeeded"}
        for m in (30, 8, 4, 1)
    ] + [{"kind": "click", "customer_id": 42, "ts": now - timedelta(minutes=2)}]  # fmt: skip
    client = redis.Redis.from_url(redis_url)
    events.sort(key=lambda e: e["ts"])
    assert publish_events(client, stream_key, events) == 5
    client.close()
    result = runner.invoke(
        app,
        ["features", "stream", "--workdir", str(root), "--stream", stream_key,
         "--max-events", "5", "--idle-timeout", "3"],
        env={"GETIT_ML_REDIS_URL": redis_url},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    store = open_store(load_settings(), root)
    request = {
        "request_ts_us": int(now.timestamp() * 1e6),
        "amount_bdt": 500.0,
        "payment_method": "nagad",
        "checkout_device_id": 1,
        "checkout_wallet_account_id": 7,
    }
    row = {"customer_id": 42, "device_id": 1} | request
    vector = online_features(store, "fraud_scoring_v1", [row])
    # As of the customer's last event (1 minute ago): three payments in 10 minutes, four in
    # the hour, one click.
    assert vector.values["payments_10m"].tolist() == [3]
    assert vector.values["payments_1h"].tolist() == [4]
    assert vector.values["clicks_10m"].tolist() == [1]
