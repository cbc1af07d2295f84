"""engineer_features as a plain function and as a kfp.local task."""

from __future__ import annotations

from pathlib import Path

import pytest
from kfp import local
from kfp.dsl import Artifact, Metrics

from components.engineer_features.component import engineer_features
from getit_ml.data.generator import MarketplaceConfig, generate
from getit_ml.data.snapshot import snapshot_id
from getit_ml.features.store import online_features, open_store
from getit_ml.settings import load_settings


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("market") / "data"
    generate(MarketplaceConfig(customers=500, days=5), out)
    return out


def test_python_func_builds_a_served_store(market: Path, tmp_path: Path) -> None:
    store_artifact = Artifact(uri=str(tmp_path / "store"))
    metrics = Metrics(uri=str(tmp_path / "metrics"))
    snapshot = snapshot_id(market)
    returned = engineer_features.python_func(
        data_dir=str(market), snapshot_id=snapshot, feature_store=store_artifact, metrics=metrics
    )
    assert returned == snapshot
    assert store_artifact.metadata["snapshot_id"] == snapshot
    assert metrics.metadata["rows_customer_features"] > 0
    store = open_store(load_settings(), Path(store_artifact.path))
    vector = online_features(
        store,
        "fraud_scoring_v1",
        [
            {
                "customer_id": 1,
                "device_id": 1,
                "request_ts_us": 1741600000000000,
                "amount_bdt": 900.0,
                "payment_method": "bkash",
                "checkout_device_id": 1,
                "checkout_wallet_account_id": -1,
            }
        ],
    )
    assert vector.values.shape[0] == 1


def test_runs_as_a_kfp_local_task(market: Path, tmp_path: Path) -> None:
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "kfp"))
    task = engineer_features(data_dir=str(market), snapshot_id=snapshot_id(market))
    root = Path(task.outputs["feature_store"].path)
    assert (root / "data" / "registry.db").is_file()
    assert (root / "offline" / "customer_features.parquet").is_file()
