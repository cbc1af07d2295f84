"""The toy model for the KServe adapters, and free ports chosen at run time."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.getit_ml.serving.support import build_toy_model


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_toy_model(tmp_path_factory.mktemp("adapter-model") / "model")
