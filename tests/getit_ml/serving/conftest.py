"""A real toy model, its scorer, and v2 servers that every test module stops at its end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from getit_ml.serving.repository import ModelRepository
from getit_ml.serving.scorer import BinaryTabularScorer, load_scorer
from getit_ml.serving.server import ServerOptions, ServerThread
from tests.getit_ml.serving.support import build_toy_model

#: A small body limit so the 413 tests send kilobytes, not megabytes.
TEST_BODY_LIMIT = 64 * 1024


@pytest.fixture(scope="session")
def toy_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_toy_model(tmp_path_factory.mktemp("toy-model") / "model")


@pytest.fixture(scope="session")
def scorer(toy_model_dir: Path) -> BinaryTabularScorer:
    return load_scorer(model_dir=toy_model_dir)


def local_options(**overrides: object) -> ServerOptions:
    values: dict[str, object] = {
        "http_port": 0,
        "grpc_port": 0,
        "host": "127.0.0.1",
        "max_body_bytes": TEST_BODY_LIMIT,
        "grace_period_s": 5,
    }
    values.update(overrides)
    return ServerOptions(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def server(scorer: BinaryTabularScorer) -> Iterator[ServerThread]:
    """The toy scorer on free REST and gRPC ports (repository extension off)."""
    with ServerThread(ModelRepository([scorer]), local_options()) as running:
        yield running
