"""The toy model for the KServe adapters, and free ports chosen at run time."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.getit_ml.serving.support import build_toy_model


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_toy_model(tmp_path_factory.mktemp("adapter-model") / "model")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
