"""The generated marketplace, joined through the real feature store once per session."""

from __future__ import annotations

import pyarrow.dataset as ds
import pytest

from getit_ml.data.generator import generate
from getit_ml.families import get_family
from getit_ml.features.engineering import build_offline_features
from getit_ml.features.store import StoreLayout, apply_definitions, open_store
from getit_ml.settings import load_settings
from tests.getit_ml.training.support import MARKET, Marketplace


@pytest.fixture(scope="session")
def marketplace(tmp_path_factory: pytest.TempPathFactory) -> Marketplace:
    root = tmp_path_factory.mktemp("training-market")
    generate(MARKET, root / "market")
    build_offline_features(root / "market", StoreLayout(root / "features").offline_dir)
    settings = load_settings()
    store = open_store(settings, root / "features")
    apply_definitions(store, settings.feature_repo)
    payments = ds.dataset(root / "market" / "payments", partitioning="hive").to_table().to_pandas()
    trainer = get_family("fraud").trainer
    return Marketplace(payments, store, trainer.training_set(store, root / "market"))  # type: ignore[attr-defined]
