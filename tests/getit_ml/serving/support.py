"""A tiny real fraud model (XGBoost on four features of every kind) for the serving tests, and
models over a feature service's inputs (fraud's, churn's) for the transformer's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from getit_ml.families import get_family
from getit_ml.features.feature_schema import MonitoringHints, fit_schema
from getit_ml.training.dataset import service_feature_types, to_matrix
from getit_ml.training.xgb import save_model, train_xgboost

FRAUD_SERVICE = "fraud_scoring_v1"
CHURN_SERVICE = "churn_prediction_v1"
#: What training writes for the fraud family: the scorer's output is ``fraud_probability``.
FRAUD_HINTS = MonitoringHints(output="fraud_probability", positive_class="fraud",
                              negative_class="genuine")  # fmt: skip

#: The toy model's features in schema order, with their kinds.
FEATURES = {
    "payment_method": "string",
    "amount_bdt": "float64",
    "is_new_device": "bool",
    "orders_30d": "int64",
}
METHODS = ("bkash", "card", "cod", "nagad")


def toy_frame(rows: int, seed: int) -> pd.DataFrame:
    """Card payments, large amounts and new devices are riskier; about 10% fraud."""
    rng = np.random.default_rng(seed)
    method = rng.choice(METHODS, size=rows)
    amount = rng.lognormal(6, 1, size=rows)
    new_device = rng.random(rows) < 0.2
    orders = rng.poisson(3, size=rows)
    score = (
        (method == "card") * 1.5
        + np.log(amount) / 2
        + new_device * 1.0
        - orders * 0.1
        + rng.normal(scale=0.5, size=rows)
    )
    return pd.DataFrame(
        {
            "payment_method": method,
            "amount_bdt": amount,
            "is_new_device": new_device,
            "orders_30d": orders.astype(np.int64),
            "is_fraud": score > np.quantile(score, 0.9),
        }
    )


def build_toy_model(out_dir: Path, *, rounds: int = 20) -> Path:
    """Train and save the toy model into ``out_dir`` (``model.json`` + feature schema)."""
    train, valid = toy_frame(2_000, seed=1), toy_frame(500, seed=2)
    schema = fit_schema(train, FEATURES, label="is_fraud", monitoring=FRAUD_HINTS,
                        metadata={"family": "fraud"})  # fmt: skip
    booster = train_xgboost(
        to_matrix(train, schema),
        to_matrix(valid, schema),
        seed=0,
        num_boost_round=rounds,
        early_stopping_rounds=rounds,
        nthread=1,
    )
    save_model(booster, schema, out_dir)
    return out_dir


def service_frame(feature_types: dict[str, str], rows: int, seed: int) -> pd.DataFrame:
    """Random values of the right kind for every feature, about 10% nulls, and a label that
    depends on the amount and the payment rail (so the trees split on real columns)."""
    rng = np.random.default_rng(seed)
    columns: dict[str, object] = {}
    for name, kind in feature_types.items():
        if kind == "string":
            values = rng.choice(np.array(["bkash", "card", "cod", "nagad", "rocket"]), size=rows)
            column: pd.Series = pd.Series(values, dtype=object)
        elif kind == "bool":
            column = pd.Series(rng.random(rows) < 0.3, dtype=object)
        else:
            column = pd.Series(rng.normal(100, 50, size=rows))
        column[rng.random(rows) < 0.1] = None
        columns[name] = column
    frame = pd.DataFrame(columns)
    # The label follows the amount (fraud) or, without one, the first numeric feature.
    driver = (
        "amount_bdt"
        if "amount_bdt" in frame
        else next(name for name, kind in feature_types.items() if kind in ("int64", "float64"))
    )
    amount = pd.to_numeric(frame[driver], errors="coerce").fillna(0).to_numpy()
    score = amount / 50 + rng.normal(size=rows)
    frame["is_fraud"] = score > np.quantile(score, 0.9)
    return frame


def family_feature_types(store: Any, family: str = "fraud") -> dict[str, str]:
    """The model inputs a family's training would take from its feature service."""
    task = get_family(family).trainer.task  # type: ignore[attr-defined]
    return service_feature_types(store, task.feature_service, request_fields=task.request_fields,
                                 identifiers=task.identifiers)  # fmt: skip


def build_service_model(
    feature_types: dict[str, str], out_dir: Path, family: str = "fraud"
) -> Path:
    """A real model over a feature service's inputs (random data; 10 rounds), with the family's
    monitoring hints as training would write them."""
    task = get_family(family).trainer.task  # type: ignore[attr-defined]
    train, valid = service_frame(feature_types, 1_500, 1), service_frame(feature_types, 500, 2)
    schema = fit_schema(train, feature_types, label="is_fraud", monitoring=task.monitoring,
                        metadata={"family": family,
                                  "feature_service": task.feature_service})  # fmt: skip
    booster = train_xgboost(
        to_matrix(train, schema),
        to_matrix(valid, schema),
        seed=0,
        num_boost_round=10,
        early_stopping_rounds=10,
        nthread=1,
    )
    save_model(booster, schema, out_dir)
    return out_dir
