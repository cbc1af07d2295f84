"""Drift detection quality: false alarms on unchanged traffic, power against controlled shifts.

The drift detector's tests (:class:`getit_ml.monitoring.detectors.Detectors`: alibi-detect's
TabularDrift — KS per numeric feature, Chi-square per categorical one — and KSDrift on the fraud
scores, one Bonferroni correction over the family, plus the IForest outlier detector) run on
windows of ``--window`` payments drawn from a synthetic population with the fraud model's real
input shape (125 features of ``fraud_scoring_v1``: :mod:`getit_ml.monitoring.synthetic`) and the
fraud family's monitoring hints (``getit_ml.families.fraud.TASK.monitoring``), so the features
left out of the test are those a trained fraud model's schema names (the calendar context,
constant within a window: the detectors' default, ``ignore_features=None``). The reference is
``--reference`` payments of the same population. Scenarios, ``--windows`` windows each:

* ``none`` — the reference distribution (every alarm is a false alarm);
* ``amount_log +0.5 SD`` — a 0.5-standard-deviation mean shift of one important feature;
* ``amount_vs_avg_30d +0.5 SD`` — the same for a heavy-tailed one;
* ``payment mix 20 pts`` — bKash and Nagad up 20 points, cash on delivery down 20 (a festival);
* ``amount_log +0.25 SD`` — a shift half as large, to show where power falls off.

The peer, run on the same windows: a per-feature z-test of the window mean against the reference
mean (Bonferroni), the simple monitor many teams start with.

Goals: false-alarm rate <= 5%, power >= 95% for the 0.5-SD mean shift and the payment-mix change.
The load average (``os.getloadavg()``) is printed at the start and at the end. Ends with

    RESULT false_alarm_rate=<x> power_mean_shift=<x> power_mix_shift=<x> ms_per_window=<x>

Usage (monitoring environment):

    .venv-monitoring/bin/python benchmarks/drift.py [--windows 200] [--window 500]
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from getit_ml.families.fraud import TASK
from getit_ml.monitoring.detectors import DetectorConfig, Detectors
from getit_ml.monitoring.synthetic import FESTIVAL_MIX, FraudPopulation, fraud_probability

P_VAL = 0.05


@dataclass(frozen=True)
class Scenario:
    name: str
    mean_shift: Mapping[str, float] | None = None
    payment_mix: Mapping[str, float] | None = None


SCENARIOS = (
    Scenario("none"),
    Scenario("amount_log +0.5 SD", mean_shift={"amount_log": 0.5}),
    Scenario("amount_vs_avg_30d +0.5 SD", mean_shift={"amount_vs_avg_30d": 0.5}),
    Scenario("payment mix 20 pts", payment_mix=FESTIVAL_MIX),
    Scenario("amount_log +0.25 SD", mean_shift={"amount_log": 0.25}),
)


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min, {os.cpu_count()} CPUs)"


def mean_z_test(reference: np.ndarray, alpha: float) -> Callable[[np.ndarray], bool]:
    """The peer: |window mean - reference mean| / (reference SD / sqrt(n)) per feature, NaN
    ignored, Bonferroni over the features."""
    means = np.nanmean(reference, axis=0)
    sds = np.nanstd(reference, axis=0)
    usable = sds > 0
    critical = stats.norm.ppf(1 - alpha / (2 * int(usable.sum())))

    def drifted(window: np.ndarray) -> bool:
        counts = np.sum(~np.isnan(window), axis=0)
        z = (np.nanmean(window, axis=0) - means) / (sds / np.sqrt(np.maximum(counts, 1)))
        return bool(np.any(np.abs(z[usable]) > critical))

    return drifted


def run(args: argparse.Namespace) -> dict[str, Any]:
    population = FraudPopulation(seed=args.seed, hints=TASK.monitoring)
    schema = population.schema
    reference = population.reference(args.reference, seed=args.seed + 100)
    started = time.perf_counter()
    detectors = Detectors(
        reference,
        DetectorConfig(p_val=P_VAL, correction=args.correction, outlier=args.outlier),
        reference_scores=fraud_probability(schema, reference.features),
    )
    fit_seconds = time.perf_counter() - started
    peer = mean_z_test(reference.features[:, detectors.tested], P_VAL)
    rng = np.random.default_rng(args.seed + 1)
    rows = []
    test_seconds: list[float] = []
    for scenario in SCENARIOS:
        hits = peer_hits = 0
        outlier_rates = []
        for _ in range(args.windows):
            window = population.sample(
                args.window, rng, mean_shift=scenario.mean_shift, payment_mix=scenario.payment_mix
            ).features
            scores = fraud_probability(schema, window)
            begin = time.perf_counter()
            flags = detectors.outliers(window)
            result = detectors.run(window, scores, flags)
            test_seconds.append(time.perf_counter() - begin)
            hits += result.is_drift
            peer_hits += peer(window[:, detectors.tested])
            if result.outlier_rate is not None:
                outlier_rates.append(result.outlier_rate)
        rows.append(
            {
                "scenario": scenario.name,
                "rate": hits / args.windows,
                "peer_rate": peer_hits / args.windows,
                "outlier_rate": float(np.mean(outlier_rates)) if outlier_rates else math.nan,
            }
        )
    return {
        "rows": rows,
        "ms_per_window": 1000 * float(np.mean(test_seconds)),
        "fit_seconds": fit_seconds,
        "features": len(detectors.tested),
        "ignored": list(detectors.ignored),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--windows", type=int, default=200, help="Windows per scenario.")
    parser.add_argument("--window", type=int, default=500, help="Payments per window.")
    parser.add_argument("--reference", type=int, default=5_000, help="Reference payments.")
    parser.add_argument("--correction", choices=["bonferroni", "fdr"], default="bonferroni")
    parser.add_argument("--outlier", choices=["iforest", "mahalanobis", "none"], default="iforest")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(f"start: {load_average()}")
    out = run(args)
    print(
        f"drift detector: {out['features']} features tested ({len(out['ignored'])} left out as "
        f"the schema's hints say: {', '.join(out['ignored'])}), reference {args.reference}, "
        f"{args.windows} windows x {args.window} payments per scenario, p_val {P_VAL} "
        f"({args.correction}), fitted in {out['fit_seconds']:.1f} s"
    )
    print()
    header = f"{'scenario':<28} {'alarm rate':>10} {'peer (mean z)':>14} {'outliers':>9}"
    print(header)
    print("-" * len(header))
    for row in out["rows"]:
        print(
            f"{row['scenario']:<28} {row['rate']:>10.3f} {row['peer_rate']:>14.3f} "
            f"{row['outlier_rate']:>9.4f}"
        )
    print()
    rates = {row["scenario"]: row["rate"] for row in out["rows"]}
    print(f"time per window (outliers + all tests): {out['ms_per_window']:.1f} ms")
    print(f"end: {load_average()}")
    print(
        f"RESULT false_alarm_rate={rates['none']:.3f} "
        f"power_mean_shift={rates['amount_log +0.5 SD']:.3f} "
        f"power_mix_shift={rates['payment mix 20 pts']:.3f} "
        f"ms_per_window={out['ms_per_window']:.1f}"
    )


if __name__ == "__main__":
    main()
