"""Test data for the training tests: the generated marketplace's bundle and synthetic matrices
whose difficulty is known."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from feast import FeatureStore

from getit_ml.data.generator import MarketplaceConfig
from getit_ml.training.dataset import FeatureMatrix, TrainingSet

#: 60,000 customers over 90 days: about 20,000 payments and 150 frauds (seed 11 is fixed, so the
#: counts are too), enough that each time-split part holds a few dozen; about 15 s to build.
MARKET = MarketplaceConfig(customers=60_000, days=90, seed=11)


@dataclass(frozen=True)
class Marketplace:
    payments: pd.DataFrame
    store: FeatureStore
    data: TrainingSet


def noisy_matrix(rows: int, seed: int, features: int = 8) -> FeatureMatrix:
    """A learnable but not separable problem: fraud when a noisy linear score is in its top 5%."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features))
    score = x[:, 0] + 0.5 * x[:, 1] - 0.5 * x[:, 2] + rng.normal(scale=1.0, size=rows)
    label = (score > np.quantile(score, 0.95)).astype(np.float64)
    amounts = rng.uniform(100, 5_000, size=rows).round(0)
    return FeatureMatrix(x, label, tuple(f"f{i}" for i in range(features)), {"amount_bdt": amounts})
