"""Synthetic payments of the fraud model's input shape, for benchmarks, tests and the sidecars'
local runs when no training run has exported a reference yet.

:func:`fraud_schema` lists the inputs of ``fraud_scoring_v1`` in the order the training pipeline
uses (``getit_ml.training.dataset.service_feature_types``: the feature views of the service, the
on-demand views, then the request fields that are not identifiers), with the kinds and category
lists ``fit_schema`` would give them. :class:`FraudPopulation` draws encoded rows with plausible
marginals (counts, amounts, shares, flags with missing values where the features have them), a
payment-method mix, checkout flags consistent with the method, and a fraud label that depends on
a few known signals (new device, wallet change, amount against the usual, velocity).

Controlled shifts for the drift benchmark: :meth:`FraudPopulation.sample` takes ``mean_shift``
(feature -> shift in reference standard deviations) and ``payment_mix`` (method -> probability).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np

from getit_ml.features import context, schemas
from getit_ml.features.feature_schema import MonitoringHints
from getit_ml.monitoring.schema import (
    FeatureKind,
    FeatureSchema,
    FeatureSpec,
    FloatArray,
    IntArray,
    Reference,
)

#: The default payment mix of a normal week (shares of payments).
PAYMENT_MIX: Final[dict[str, float]] = {
    "bkash": 0.34,
    "nagad": 0.14,
    "rocket": 0.05,
    "card": 0.12,
    "cod": 0.35,
}
#: A festival week: mobile wallets up 20 points, cash on delivery down 20.
FESTIVAL_MIX: Final[dict[str, float]] = {
    "bkash": 0.48,
    "nagad": 0.20,
    "rocket": 0.05,
    "card": 0.12,
    "cod": 0.15,
}
_IDENTIFIERS: Final = frozenset({"last_device_id", "last_wallet_account_id"})
_CATEGORIES: Final[dict[str, tuple[str, ...]]] = {
    "division": (
        "barishal",
        "chattogram",
        "dhaka",
        "khulna",
        "mymensingh",
        "rajshahi",
        "rangpur",
        "sylhet",
    ),
    "district": tuple(f"district_{i:02d}" for i in range(64)),
    "preferred_language": ("bn", "en"),
    "signup_device_type": ("android", "ios", "web"),
    "acquisition_channel": ("facebook", "google", "organic", "referral"),
    "top_category_90d": tuple(sorted(schemas.CATEGORIES)),
    "payment_method": tuple(sorted(schemas.PAYMENT_METHODS)),
}


def fraud_feature_types() -> dict[str, str]:
    """Name -> Feast type of the fraud model's inputs, in model order."""
    types: dict[str, str] = {}
    for group in (
        schemas.CUSTOMER_FEATURES,
        schemas.CUSTOMER_RISK_FEATURES,
        schemas.DEVICE_FEATURES,
        schemas.VELOCITY_FEATURES,
        context.CALENDAR_CONTEXT_FEATURES,
        context.TRANSACTION_CONTEXT_FEATURES,
    ):
        for name, kind in group.items():
            if name not in _IDENTIFIERS:
                types[name] = kind
    types.setdefault("amount_bdt", "float64")
    types.setdefault("payment_method", "string")
    return types


#: What training writes for a fraud-shaped model, less its reason phrases (those are the fraud
#: family's; tests and benchmarks pass them in): the output, the classes, the calendar left out
#: of the drift test.
FRAUD_SHAPED_HINTS: Final = MonitoringHints(
    output="fraud_probability",
    positive_class="fraud",
    negative_class="genuine",
    drift_ignored=tuple(context.CALENDAR_CONTEXT_FEATURES),
)


def fraud_schema(hints: MonitoringHints | None = None) -> FeatureSchema:
    kinds: dict[str, FeatureKind] = {
        "int64": "numeric",
        "float64": "numeric",
        "bool": "bool",
        "string": "categorical",
    }
    features = []
    for name, dtype in fraud_feature_types().items():
        kind = kinds[dtype]
        categories = _CATEGORIES.get(name, ("a", "b", "c")) if kind == "categorical" else ()
        features.append(FeatureSpec(name, kind, dtype, categories))
    return FeatureSchema(
        tuple(features),
        "is_fraud",
        {"feature_service": "fraud_scoring_v1", "origin": "synthetic"},
        hints or FRAUD_SHAPED_HINTS,
    )


@dataclass(frozen=True)
class Sample:
    features: FloatArray
    labels: IntArray


class FraudPopulation:
    """A generator of encoded payments; the same seed gives the same population."""

    def __init__(self, seed: int = 0, hints: MonitoringHints | None = None) -> None:
        self.schema = fraud_schema(hints)
        self.seed = seed
        rng = np.random.default_rng(seed)
        # Per-feature parameters fixed by the seed, so every sample comes from one population.
        self._params = {f.name: rng.uniform(0.5, 2.0) for f in self.schema.features}
        self._category_probs = {
            f.name: rng.dirichlet(np.full(len(f.categories), 2.0))
            for f in self.schema.features
            if f.kind == "categorical"
        }
        self._std: dict[str, float] = {}
        reference = self._draw(20_000, np.random.default_rng(seed + 1), {}, None)
        for j, feature in enumerate(self.schema.features):
            column = reference[:, j]
            self._std[feature.name] = float(np.nanstd(column))

    def std(self, name: str) -> float:
        return self._std[name]

    def sample(
        self,
        n: int,
        rng: np.random.Generator,
        *,
        mean_shift: Mapping[str, float] | None = None,
        payment_mix: Mapping[str, float] | None = None,
    ) -> Sample:
        """``n`` encoded payments and their labels, optionally shifted."""
        matrix = self._draw(n, rng, mean_shift or {}, payment_mix)
        return Sample(matrix, self._labels(matrix, rng))

    def reference(self, n: int = 5_000, seed: int | None = None) -> Reference:
        rng = np.random.default_rng(self.seed + 2 if seed is None else seed)
        sample = self.sample(n, rng)
        return Reference(self.schema, sample.features, sample.labels)

    def _draw(
        self,
        n: int,
        rng: np.random.Generator,
        mean_shift: Mapping[str, float],
        payment_mix: Mapping[str, float] | None,
    ) -> FloatArray:
        schema = self.schema
        out = np.full((n, schema.width), np.nan, dtype=np.float64)
        activity = rng.gamma(2.0, 1.0, size=n)  # a latent "how active is this customer"
        for j, feature in enumerate(schema.features):
            name, scale = feature.name, self._params[feature.name]
            if feature.kind == "categorical":
                if name == "payment_method":
                    continue
                probs = self._category_probs[name]
                out[:, j] = rng.choice(len(probs), size=n, p=probs)
            elif feature.kind == "bool":
                out[:, j] = rng.random(n) < min(0.5, 0.05 * scale)
            elif "share" in name or "rate" in name or "affinity" in name:
                column = rng.beta(scale, 3.0, size=n)
                column[rng.random(n) < 0.1] = np.nan  # no denominator yet
                out[:, j] = column
            elif name.endswith("_bdt"):
                out[:, j] = rng.lognormal(6.0 + scale, 0.8, size=n) * (activity > 0.2)
            elif name.startswith(("days_", "account_age", "device_age", "seconds_")):
                column = rng.exponential(30.0 * scale, size=n)
                if name.startswith(("days_since", "device_age", "seconds_")):
                    column[rng.random(n) < 0.08] = np.nan  # never happened
                out[:, j] = column
            elif name.endswith(("_10m", "_1h", "_24h")):  # bursts are rare
                out[:, j] = rng.poisson(0.15 * scale, size=n)
            elif feature.dtype == "int64":
                out[:, j] = rng.poisson(activity * scale)
            else:
                out[:, j] = rng.normal(scale, 0.3 * scale, size=n)
        self._checkout(out, rng, payment_mix or PAYMENT_MIX)
        for name, shift in mean_shift.items():
            j = schema.index(name)
            out[:, j] = out[:, j] + shift * self._std[name]
        return out

    def _checkout(
        self, out: FloatArray, rng: np.random.Generator, mix: Mapping[str, float]
    ) -> None:
        """The checkout request and its derived flags, consistent with each other."""
        schema = self.schema
        methods = schema.feature("payment_method").categories
        probs = np.array([mix.get(m, 0.0) for m in methods], dtype=np.float64)
        probs = probs / probs.sum()
        n = out.shape[0]
        method = rng.choice(len(methods), size=n, p=probs)
        out[:, schema.index("payment_method")] = method
        names = np.array(methods)[method]
        wallet = np.isin(names, ("bkash", "nagad", "rocket"))
        out[:, schema.index("is_wallet")] = wallet
        out[:, schema.index("is_card")] = names == "card"
        out[:, schema.index("is_cod")] = names == "cod"
        amount = rng.lognormal(7.3, 0.9, size=n)
        usual = amount / rng.lognormal(0.0, 0.5, size=n)
        out[:, schema.index("amount_bdt")] = amount
        out[:, schema.index("amount_log")] = np.log1p(amount)
        ratio: FloatArray = np.asarray(amount / usual, dtype=np.float64)
        ratio[rng.random(n) < 0.15] = np.nan  # first payment: no 30-day history
        out[:, schema.index("amount_vs_avg_30d")] = ratio
        out[:, schema.index("amount_vs_max_30d")] = ratio / rng.uniform(1.0, 3.0, size=n)
        out[:, schema.index("is_new_device")] = rng.random(n) < 0.08
        out[:, schema.index("is_wallet_change")] = wallet & (rng.random(n) < 0.05)

    def _labels(self, matrix: FloatArray, rng: np.random.Generator) -> IntArray:
        return (rng.random(matrix.shape[0]) < fraud_probability(self.schema, matrix)).astype(
            np.int64
        )


def fraud_probability(schema: FeatureSchema, matrix: FloatArray) -> FloatArray:
    """The synthetic population's true fraud probability: driven only by new device, wallet
    change, the amount against the usual and payments in the last 10 minutes."""
    new_device = np.nan_to_num(matrix[:, schema.index("is_new_device")])
    wallet_change = np.nan_to_num(matrix[:, schema.index("is_wallet_change")])
    ratio = np.nan_to_num(matrix[:, schema.index("amount_vs_avg_30d")], nan=1.0)
    velocity = np.nan_to_num(matrix[:, schema.index("payments_10m")])
    logit = (
        -5.5
        + 2.5 * new_device
        + 2.0 * wallet_change
        + 1.5 * np.log(np.clip(ratio, 0.05, None))
        + 0.8 * velocity
    )
    return 1.0 / (1.0 + np.exp(-logit))
