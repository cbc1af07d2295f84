"""Kernel SHAP for one instance against a background sample, in numpy.

The algorithm of Lundberg and Lee (2017) as the ``shap`` package implements it: coalitions of
features are drawn from the Shapley kernel — subset sizes whose every subset fits the budget are
enumerated completely, the rest are sampled in complementary pairs — the model is evaluated on
the background rows with the coalition's features set to the instance's values, and a weighted
linear regression constrained to ``sum(phi) = f(x) - E[f(background)]`` gives the attributions.
When the budget covers every coalition the values are the exact (interventional) Shapley values.

Alibi's ``KernelShap`` wraps the ``shap`` package, which the monitoring environment does not
have; :mod:`getit_ml.monitoring.explainer` uses alibi's when ``shap`` is importable and this
implementation otherwise. Features whose value equals every background row's value cannot change
any prediction and get exactly 0, so the budget goes to the features that can.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from getit_ml.monitoring.schema import FloatArray

BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class ShapResult:
    """Attributions of one instance: ``values[j]`` is feature j's share of ``prediction -
    base_value``; ``evaluations`` counts the model rows the estimate cost."""

    values: FloatArray
    base_value: float
    prediction: float
    evaluations: int
    exact: bool


def _same(a: FloatArray, b: FloatArray) -> BoolArray:
    """Elementwise equality where NaN equals NaN (a missing value replaced by a missing one)."""
    return np.asarray((a == b) | (np.isnan(a) & np.isnan(b)), dtype=np.bool_)


def coalitions(m: int, budget: int, rng: np.random.Generator) -> tuple[BoolArray, FloatArray, bool]:
    """Coalition masks ``(n, m)`` and their regression weights for ``m`` players, at most about
    ``budget`` of them; the flag says whether every coalition was enumerated."""
    if m < 2:
        raise ValueError("coalitions need at least two players")
    sizes = math.ceil((m - 1) / 2)
    paired = (m - 1) // 2
    kernel = np.array([(m - 1) / (s * (m - s)) for s in range(1, sizes + 1)], dtype=np.float64)
    kernel[:paired] *= 2
    kernel /= kernel.sum()
    masks: list[BoolArray] = []
    weights: list[float] = []
    left = budget
    remaining = kernel.copy()
    enumerated = 0
    for index, size in enumerate(range(1, sizes + 1)):
        count = math.comb(m, size) * (2 if size <= paired else 1)
        if left * remaining[index] / count < 1.0 - 1e-8:
            break
        enumerated += 1
        left -= count
        if remaining[index] < 1:
            remaining /= 1 - remaining[index]
        weight = kernel[index] / math.comb(m, size) / (2 if size <= paired else 1)
        for members in itertools.combinations(range(m), size):
            mask = np.zeros(m, dtype=np.bool_)
            mask[list(members)] = True
            masks.append(mask)
            weights.append(weight)
            if size <= paired:
                masks.append(~mask)
                weights.append(weight)
    exact = enumerated == sizes
    if not exact and left > 0:
        rest = kernel[enumerated:] / kernel[enumerated:].sum()
        drawn: dict[bytes, tuple[BoolArray, float]] = {}
        pairs = max(1, left // 2)
        for _ in range(pairs):
            size = enumerated + 1 + int(rng.choice(len(rest), p=rest))
            mask = np.zeros(m, dtype=np.bool_)
            mask[rng.choice(m, size=size, replace=False)] = True
            for member in (mask, ~mask) if size <= paired else (mask,):
                key = member.tobytes()
                old = drawn.get(key)
                drawn[key] = (member, (old[1] if old else 0.0) + 1.0)
        total = float(sum(w for _, w in drawn.values()))
        share = float(kernel[enumerated:].sum())
        for member, hits in drawn.values():
            masks.append(member)
            weights.append(share * hits / total)
    return np.array(masks, dtype=np.bool_), np.array(weights, dtype=np.float64), exact


def kernel_shap(
    predict: Callable[[FloatArray], FloatArray],
    instance: FloatArray,
    background: FloatArray,
    *,
    nsamples: int = 256,
    seed: int = 0,
    screen: bool = True,
    screen_rows: int = 6,
) -> ShapResult:
    """Kernel SHAP values of ``predict`` (rows -> scores) at ``instance``; ``background`` is
    the ``(k, features)`` sample the absent features are drawn from.

    With ``screen`` (the default), a first model call evaluates every coalition of one feature
    and of all features but one (which Kernel SHAP would enumerate first anyway) against the
    first ``screen_rows`` background rows; a feature that changes no prediction in any of them —
    neither added alone to a background row nor removed alone from the instance — is inert and
    gets 0, and the coalition budget goes to the others.
    This plays the part of the ``shap`` package's feature selection (``l1_reg``): with ~120
    inputs of which a handful matter for one payment, the estimate over the active features is
    exact or nearly so, instead of spreading sampling noise over every feature.
    """
    x = np.asarray(instance, dtype=np.float64).reshape(-1)
    width = x.shape[0]
    if background.ndim != 2 or background.shape[1] != width:
        raise ValueError(f"background of shape {background.shape} for {width} features")
    if nsamples < 2:
        raise ValueError("nsamples must be at least 2")
    rows = background.shape[0]
    varying = np.flatnonzero(~_same(background, x[None, :]).all(axis=0))
    probes = [x[None, :], background]
    probe_rows = max(1, min(screen_rows, rows))
    if screen and varying.size > 2:
        sample = background[:probe_rows]
        added = np.repeat(sample[None, :, :], varying.size, axis=0)
        removed = np.repeat(x[None, None, :], varying.size, axis=0).repeat(probe_rows, axis=1)
        for k, column in enumerate(varying):
            added[k, :, column] = x[column]
            removed[k, :, column] = sample[:, column]
        probes += [added.reshape(-1, width), removed.reshape(-1, width)]
    outputs = predict(np.vstack(probes))
    evaluations = outputs.shape[0]
    prediction, base_rows = float(outputs[0]), outputs[1 : 1 + rows]
    base = float(np.mean(base_rows))
    if len(probes) > 2:
        m0, k = varying.size, probe_rows
        added_out = outputs[1 + rows : 1 + rows + m0 * k].reshape(m0, k)
        removed_out = outputs[1 + rows + m0 * k :].reshape(m0, k)
        active = (np.abs(added_out - base_rows[None, :k]).max(axis=1) > 0) | (
            np.abs(prediction - removed_out).max(axis=1) > 0
        )
        varying = varying[active]
    values = np.zeros(width, dtype=np.float64)
    m = len(varying)
    if m == 0:
        return ShapResult(values, base, prediction, evaluations, True)
    if m == 1:
        values[varying[0]] = prediction - base
        return ShapResult(values, base, prediction, evaluations, True)
    masks, weights, exact = coalitions(m, nsamples, np.random.default_rng(seed))
    synthetic = np.repeat(background[None, :, :], len(masks), axis=0)
    for j, column in enumerate(varying):
        chosen = masks[:, j]
        synthetic[chosen, :, column] = x[column]
    mean_output = predict(synthetic.reshape(-1, width)).reshape(len(masks), rows).mean(axis=1)
    total = prediction - base
    # Eliminate the last player with the efficiency constraint, then weighted least squares.
    z = masks.astype(np.float64)
    target = mean_output - base - z[:, -1] * total
    design = z[:, :-1] - z[:, -1:]
    root = np.sqrt(weights)[:, None]
    solution, *_ = np.linalg.lstsq(design * root, target * root[:, 0], rcond=None)
    values[varying[:-1]] = solution
    values[varying[-1]] = total - solution.sum()
    return ShapResult(values, base, prediction, evaluations + len(masks) * rows, exact)
