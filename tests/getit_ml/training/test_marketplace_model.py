"""The whole model side on a generated marketplace: Feast join, time split, XGBoost, evaluation."""

from __future__ import annotations

import logging

from getit_ml.data import reference as ref
from getit_ml.training import evaluation as ev
from getit_ml.training.xgb import predict_matrix, predict_proba, train_xgboost
from tests.getit_ml.training.support import Marketplace

logger = logging.getLogger(__name__)


def test_the_model_learns_the_fraud_patterns(marketplace: Marketplace) -> None:
    data = marketplace.data
    booster = train_xgboost(data.train, data.validation, seed=0, nthread=1)
    valid, test = data.validation, data.test
    # The threshold is chosen on validation and applied unchanged to test.
    valid_scores = predict_matrix(booster, valid.features, valid.feature_names)
    chosen = ev.cost_optimal_threshold(valid.label, valid_scores, valid.columns["amount_bdt"])
    scores = predict_proba(booster, data.schema, data.split.test)
    result = ev.evaluate(test.label, scores, test.columns["amount_bdt"],
                         threshold=chosen.threshold,
                         patterns=test.columns["fraud_pattern"])  # fmt: skip
    logger.info("marketplace test part: %s", result.scalar_metrics())
    # The generator's patterns have learnable signatures: far above the ~1% base rate (a random
    # scorer's AUPRC is the prevalence). Fraud orders come with a clickstream like any other
    # order, so no single missing-data artefact gives them away.
    assert result.auprc > 10 * result.prevalence
    assert result.roc_auc > 0.9
    assert result.expected_cost_bdt < result.cost_without_model_bdt
    patterns = {p.pattern for p in result.per_pattern}
    assert patterns
    assert patterns <= set(ref.FRAUD_PATTERNS)
    assert sum(p.positives for p in result.per_pattern) == result.positives
    assert all(0.0 < p.auprc <= 1.0 for p in result.per_pattern)
