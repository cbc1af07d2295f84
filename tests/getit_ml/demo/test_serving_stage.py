"""The demo's serving stage on a small real marketplace: the champion from the embedded registry
behind the transformer, as two processes, scored over REST and gRPC, stopped with SIGTERM."""

from __future__ import annotations

from pathlib import Path

import pytest

from getit_ml.data.generator import MarketplaceConfig, generate
from getit_ml.demo import DemoContext, StageStatus, data_dir, store_dir
from getit_ml.demo.serving import DEMO_REQUESTS, ServingStage
from getit_ml.families import get_family
from getit_ml.features.store import build_feature_store
from getit_ml.registry.mlflow_registry import (
    Lineage,
    RegistryConfig,
    promote,
    register_model_version,
)
from getit_ml.settings import load_settings
from tests.getit_ml.serving.support import build_service_model, family_feature_types

FRAUD = get_family("fraud")
POPULATION = FRAUD.demo.population


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("demo-work")
    market = data_dir(work, POPULATION)
    generate(MarketplaceConfig(customers=1_500, days=20, seed=3), market)
    store, _ = build_feature_store(load_settings(), market, store_dir(work, POPULATION))
    model = build_service_model(family_feature_types(store), work / "model")
    registry = RegistryConfig.embedded(work)
    version = register_model_version(
        registry, name="fraud", model_dir=model, metrics={"test_auprc": 0.5}, params={},
        lineage=Lineage("snapshot", "fraud_scoring_v1", "run", "test"), experiment="demo",
    )  # fmt: skip
    promote(registry, "fraud", version.version, reason="serving stage test")
    return work


def test_sample_checkouts_mix_fraud_and_genuine(workdir: Path) -> None:
    checkouts = FRAUD.demo.sample_requests(data_dir(workdir, POPULATION), DEMO_REQUESTS)
    assert len(checkouts) == DEMO_REQUESTS
    assert any(c["label"] for c in checkouts)
    assert not all(c["label"] for c in checkouts)
    assert set(checkouts[0]) == {*FRAUD.serving.inputs, "label"}


def test_serving_stage_scores_and_shuts_down_cleanly(workdir: Path) -> None:
    result = ServingStage(FRAUD).run(DemoContext(load_settings(), workdir))
    assert result.status is StageStatus.OK, result.summary
    assert "REST and gRPC (identical)" in result.summary
    assert result.details["model version"] == "1"
    assert result.details["shutdown (SIGTERM)"] == "transformer exit 0, scorer exit 0"
    scored = [k for k in result.details if k.startswith("customer ")]
    assert len(scored) == DEMO_REQUESTS


def test_serving_stage_without_a_champion_fails_with_a_reason(tmp_path: Path) -> None:
    work = tmp_path / "empty"
    result = ServingStage(FRAUD).run(DemoContext(load_settings(), work))
    assert result.status is StageStatus.FAILED
    assert "no marketplace" in result.summary
