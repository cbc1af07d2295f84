"""Shared pytest configuration for both environments.

This file is loaded by the platform AND the monitoring test runs, so it imports nothing beyond the
standard library and pytest at module level (the monitoring environment has neither
pydantic-settings nor numpy 2).
"""

from __future__ import annotations

import os

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--cluster",
        action="store_true",
        default=False,
        help="run tests marked `cluster` against the current kube context (kind or Kubernetes)",
    )


def pytest_configure(config: pytest.Config) -> None:
    # Tests never fetch models or data from a hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--cluster"):
        return
    skip_cluster = pytest.mark.skip(reason="needs a kind/Kubernetes cluster: pass --cluster")
    for item in items:
        if "cluster" in item.keywords:
            item.add_marker(skip_cluster)
