"""Fixtures of the monitoring tests (monitoring environment: numpy 1.24, alibi, alibi-detect)."""

from __future__ import annotations

from pathlib import Path

import pytest

from getit_ml.families.fraud import TASK
from getit_ml.monitoring.schema import Reference
from getit_ml.monitoring.synthetic import FraudPopulation
from tests.monitoring.support.servers import write_reference

#: What training writes into a fraud model's feature schema: the sidecars read the family's
#: reason phrases, class names and drift-ignored features from there, and nowhere else.
FRAUD_HINTS = TASK.monitoring


@pytest.fixture(scope="session")
def population() -> FraudPopulation:
    return FraudPopulation(seed=0, hints=FRAUD_HINTS)


@pytest.fixture(scope="session")
def reference(population: FraudPopulation) -> Reference:
    return population.reference(3_000)


@pytest.fixture(scope="session")
def reference_dir(reference: Reference, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_reference(reference, tmp_path_factory.mktemp("reference"))
