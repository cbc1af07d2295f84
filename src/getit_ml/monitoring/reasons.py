"""Reason codes: why a row scored high, in words a service can show.

A reason is derived from one feature of the explained instance — its name and kind in the
feature schema, its value, and where that value lies in the reference data — and carries a
stable machine code (``NEW_DEVICE``, ``AMOUNT_FAR_ABOVE_USUAL``) and a short human text ("new
device", "amount far above usual"). A model family's hand-written phrases travel in the feature
schema's monitoring hints (:class:`~getit_ml.features.feature_schema.ReasonPhrase`, written by
training from the family's declaration): this module holds none of its own. Any other feature
gets a phrase built from its name ("high payments in the last 7 days", "payment method: card").

A numeric feature is a reason only when its value is unusual: above the reference's 75th
percentile ("high") or below its 25th ("low"). A typical value that happens to push the score up
is not something to tell a customer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final, Literal

import numpy as np

from getit_ml.monitoring.schema import FeatureSchema, FeatureSpec, FloatArray

Direction = Literal["high", "low", "true", "false", "missing"]
HIGH_QUANTILE: Final = 0.75
LOW_QUANTILE: Final = 0.25
#: A feature is a reason only if it carries at least this share of the push towards fraud.
MIN_SHARE: Final = 0.05

_WINDOWS: Final = (
    ("_10m", " in the last 10 minutes"),
    ("_1h", " in the last hour"),
    ("_24h", " in the last 24 hours"),
    ("_1d", " today"),
    ("_7d", " in the last 7 days"),
    ("_30d", " in the last 30 days"),
    ("_90d", " in the last 90 days"),
)
_WORDS: Final = {
    "avg": "average",
    "vs": "versus",
    "bdt": "",
    "cod": "cash on delivery",
    "pct": "percent",
    "s": "seconds",
}


@dataclass(frozen=True)
class Reason:
    """One reason: machine code, human text, the feature, its value in words, its attribution."""

    code: str
    text: str
    feature: str
    value: str
    contribution: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def humanize(name: str) -> str:
    """A feature name in words: ``failed_payments_24h`` -> ``failed payments in the last 24
    hours``, ``avg_basket_bdt_90d`` -> ``average basket in the last 90 days``."""
    stem, window = name.removesuffix("_bdt"), ""
    for suffix, words in _WINDOWS:
        if stem.endswith(suffix):
            stem, window = stem[: -len(suffix)], words
            break
    if stem.startswith("is_"):
        stem = stem[3:]
    parts = [_WORDS.get(part, part) for part in stem.split("_")]
    return (" ".join(p for p in parts if p) + window).strip()


def _code(text: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", text.upper()).strip("_")


class ReasonCoder:
    """Turns (feature, value) pairs into reasons, with the reference data as "usual"."""

    def __init__(self, schema: FeatureSchema, reference: FloatArray) -> None:
        if reference.shape[1] != schema.width:
            raise ValueError(f"reference has {reference.shape[1]} columns for {schema.width}")
        self.schema = schema
        self.known = schema.monitoring.reason_table()
        self._sorted: dict[int, FloatArray] = {}
        for j, feature in enumerate(schema.features):
            if feature.kind == "numeric":
                column = reference[:, j]
                self._sorted[j] = np.sort(column[~np.isnan(column)])

    def quantile(self, index: int, value: float) -> float | None:
        """Where ``value`` lies in the reference values of numeric feature ``index`` (0..1):
        the mid-rank, so a value equal to most of the reference is near the middle."""
        ordered = self._sorted.get(index)
        if ordered is None or ordered.size == 0 or math.isnan(value):
            return None
        below = np.searchsorted(ordered, value, side="left")
        at_most = np.searchsorted(ordered, value, side="right")
        return float((below + at_most) / 2 / ordered.size)

    def direction(self, index: int, value: float) -> Direction | str | None:
        """``high``/``low`` for an unusual number, ``true``/``false`` for a flag, the category
        for a categorical feature, ``missing``; None for a typical number."""
        feature = self.schema.features[index]
        if math.isnan(value):
            return "missing"
        if feature.kind == "bool":
            return "true" if value >= 0.5 else "false"
        if feature.kind == "categorical":
            return feature.describe(value)
        rank = self.quantile(index, value)
        if rank is None:
            return None
        if rank >= HIGH_QUANTILE:
            return "high"
        if rank <= LOW_QUANTILE:
            return "low"
        return None

    def reason(self, index: int, value: float, contribution: float | None = None) -> Reason | None:
        feature = self.schema.features[index]
        direction = self.direction(index, value)
        if direction is None:
            return None
        shown = feature.describe(value)
        known = self.known.get((feature.name, direction))
        if known is not None:
            code, text = known
        else:
            code, text = _generic(feature, direction)
        return Reason(code, text, feature.name, shown, contribution)

    def reasons(
        self,
        instance: FloatArray,
        contributions: FloatArray | None = None,
        *,
        order: Sequence[int] = (),
        top_k: int = 3,
        min_share: float = MIN_SHARE,
    ) -> list[Reason]:
        """Up to ``top_k`` reasons: the features with the largest positive contributions (towards
        fraud) when ``contributions`` is given — each at least ``min_share`` of all the positive
        contributions together — else the features of ``order`` (an anchor's)."""
        if contributions is not None:
            floor = min_share * float(contributions[contributions > 0].sum())
            ranked = [
                int(j)
                for j in np.argsort(-contributions, kind="stable")
                if contributions[j] > 0 and contributions[j] >= floor
            ]
            ranked += [j for j in order if j not in ranked]
        else:
            ranked = list(order)
        out: list[Reason] = []
        codes: set[str] = set()
        for j in ranked:
            share = None if contributions is None else float(contributions[j])
            found = self.reason(j, float(instance[j]), share)
            if found is None or found.code in codes:
                continue
            codes.add(found.code)
            out.append(found)
            if len(out) == top_k:
                break
        return out


def _generic(feature: FeatureSpec, direction: str) -> tuple[str, str]:
    words = humanize(feature.name)
    if direction == "missing":
        text = f"{words} unknown"
    elif feature.kind == "bool":
        text = words if direction == "true" else f"not {words}"
    elif feature.kind == "categorical":
        text = f"{words}: {direction}"
    else:
        text = f"{direction} {words}"
    return _code(text), text
